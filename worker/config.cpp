#include "worker/config.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "runtime/error.h"
#include "runtime/yaml_fields.h"

namespace convoy::worker {

namespace {

constexpr const char* kKeyList =
    "coordinator, data_bind, advertise_host, name, backend, device, threads, cpus, heartbeat_ms, "
    "weight_cache_mb, cache_dir, log_level, keys, insecure, max_message_mb";

using yaml::where;

// A string value; null (`key:` with nothing) is the empty string.
std::string string_value(const std::string& file, const YAML::Node& node, const std::string& key) {
  if (node.IsNull()) return {};
  CONVOY_CHECK(node.IsScalar(), where(file, node), ": '", key, "' must be a string");
  return node.as<std::string>();
}

int64_t int_value(const std::string& file, const YAML::Node& node, const std::string& key, int64_t lo,
                  int64_t hi) {
  std::optional<int64_t> v = yaml::scalar_as<int64_t>(node);
  CONVOY_CHECK(v, where(file, node), ": '", key, "' must be an integer from ", lo, " to ", hi,
               node.IsScalar() ? ", not '" + node.as<std::string>() + "'" : std::string());
  CONVOY_CHECK(*v >= lo && *v <= hi, where(file, node), ": '", key, "' must be an integer from ", lo, " to ",
               hi, ", not ", *v);
  return *v;
}

}  // namespace

bool is_valid_endpoint(const std::string& endpoint, bool bind) {
  if (endpoint.size() > 1024) return false;
  auto starts = [&](const char* p) { return endpoint.rfind(p, 0) == 0; };
  if (starts("ipc://")) return endpoint.size() > 6;
  if (starts("inproc://")) return endpoint.size() > 9;
  if (!starts("tcp://")) return false;
  std::string rest = endpoint.substr(6);
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string port = rest.substr(colon + 1);
  if (port == "*") return bind;
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
  int p = std::stoi(port);
  return p > 0 && p < 65536;
}

std::vector<int> parse_cpu_list(const std::string& text, const std::string& what) {
  std::vector<int> cpus;
  size_t pos = 0;
  auto number = [&](const std::string& s) {
    CONVOY_CHECK(!s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), ::isdigit), what, ": '", text,
                 "' is not a CPU list (e.g. 0-3,6)");
    return std::stoi(s);
  };
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    size_t dash = item.find('-');
    if (dash == std::string::npos) {
      cpus.push_back(number(item));
    } else {
      int lo = number(item.substr(0, dash)), hi = number(item.substr(dash + 1));
      CONVOY_CHECK(lo <= hi, what, ": '", text, "': range ", lo, "-", hi, " is empty");
      for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  CONVOY_CHECK(!cpus.empty() && cpus.back() < 4096, what, ": '", text, "': CPU ids go from 0 to 4095");
  return cpus;
}

LogLevel parse_log_level(const std::string& text, const std::string& what) {
  static const std::map<std::string, LogLevel> kLevels = {{"error", LogLevel::kError},
                                                          {"warning", LogLevel::kWarning},
                                                          {"info", LogLevel::kInfo},
                                                          {"debug", LogLevel::kDebug}};
  auto it = kLevels.find(text);
  CONVOY_CHECK(it != kLevels.end(), what, ": 'log_level' must be error, warning, info or debug, not '", text,
               "'");
  return it->second;
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

void validate_worker_config(const WorkerConfig& c) {
  const std::string& f = c.config_file.empty() ? std::string("worker config") : c.config_file;
  CONVOY_CHECK(is_valid_endpoint(c.coordinator, false), f, ": 'coordinator' must be a ZeroMQ endpoint ",
               "such as tcp://127.0.0.1:7700, not '", c.coordinator, "'");
  CONVOY_CHECK(is_valid_endpoint(c.data_bind, true), f, ": 'data_bind' must be a ZeroMQ endpoint ",
               "such as tcp://127.0.0.1:* (port '*' = ephemeral), not '", c.data_bind, "'");
  CONVOY_CHECK(c.backend == "opencl" || c.backend == "reference", f,
               ": 'backend' must be opencl or reference, not '", c.backend, "'");
  CONVOY_CHECK(c.threads >= 0 && c.threads <= 4096, f, ": 'threads' must be from 0 to 4096, not ", c.threads);
  CONVOY_CHECK(c.heartbeat_ms >= 10 && c.heartbeat_ms <= 60000, f,
               ": 'heartbeat_ms' must be from 10 to 60000, not ", c.heartbeat_ms);
  CONVOY_CHECK(c.advertise_host.find_first_of("/ :") == std::string::npos, f,
               ": 'advertise_host' must be a host name or address, not '", c.advertise_host, "'");
  for (int cpu : c.cpus) CONVOY_CHECK(cpu >= 0 && cpu < 4096, f, ": 'cpus': CPU ids go from 0 to 4095");
}

WorkerConfig load_worker_config(const std::string& path) {
  CONVOY_CHECK_KIND(kIo, std::filesystem::is_regular_file(path), path, ": worker config file not found");
  YAML::Node root = yaml::load_file(path);
  WorkerConfig c;
  c.config_file = path;
  if (root.IsNull()) return c;  // an empty file: every default
  CONVOY_CHECK(root.IsMap(), path, ": a worker config must be a mapping of keys (", kKeyList, ")");
  static const std::set<std::string> kKeys = {
      "coordinator", "data_bind", "advertise_host", "name",         "backend",
      "device",      "threads",   "cpus",           "heartbeat_ms", "weight_cache_mb",
      "cache_dir",   "log_level", "keys",           "insecure",     "max_message_mb"};
  for (const auto& kv : root) {
    CONVOY_CHECK(kv.first.IsScalar(), where(path, kv.first), ": keys must be names (", kKeyList, ")");
    std::string key = kv.first.as<std::string>();
    CONVOY_CHECK(kKeys.count(key), where(path, kv.first), ": unknown key '", key,
                 "' (expected one of: ", kKeyList, ")");
  }
  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  auto at = [&](const char* key) { return where(path, root[key]); };

  if (root["coordinator"]) {
    c.coordinator = string_value(path, root["coordinator"], "coordinator");
    CONVOY_CHECK(is_valid_endpoint(c.coordinator, false), at("coordinator"),
                 ": 'coordinator' must be a ZeroMQ endpoint such as tcp://127.0.0.1:7700, not '",
                 c.coordinator, "'");
  }
  if (root["data_bind"]) {
    c.data_bind = string_value(path, root["data_bind"], "data_bind");
    CONVOY_CHECK(is_valid_endpoint(c.data_bind, true), at("data_bind"),
                 ": 'data_bind' must be a ZeroMQ endpoint such as tcp://127.0.0.1:* (port '*' = ",
                 "ephemeral), not '", c.data_bind, "'");
  }
  if (root["advertise_host"]) {
    c.advertise_host = string_value(path, root["advertise_host"], "advertise_host");
    CONVOY_CHECK(c.advertise_host.find_first_of("/ :") == std::string::npos, at("advertise_host"),
                 ": 'advertise_host' must be a host name or address, not '", c.advertise_host, "'");
  }
  if (root["name"]) {
    c.name = string_value(path, root["name"], "name");
    CONVOY_CHECK(c.name.size() <= 200, at("name"), ": 'name' is longer than 200 characters");
  }
  if (root["backend"]) {
    c.backend = string_value(path, root["backend"], "backend");
    CONVOY_CHECK(c.backend == "opencl" || c.backend == "reference", at("backend"),
                 ": 'backend' must be opencl or reference, not '", c.backend, "'");
  }
  if (root["device"]) c.device = string_value(path, root["device"], "device");
  if (root["threads"]) c.threads = static_cast<int>(int_value(path, root["threads"], "threads", 0, 4096));
  if (YAML::Node cpus = root["cpus"]) {
    if (cpus.IsSequence()) {
      std::string joined;
      for (const auto& item : cpus) {
        int cpu = static_cast<int>(int_value(path, item, "cpus", 0, 4095));
        joined += (joined.empty() ? "" : ",") + std::to_string(cpu);
      }
      if (!joined.empty()) c.cpus = parse_cpu_list(joined, at("cpus"));
    } else if (!cpus.IsNull()) {
      CONVOY_CHECK(cpus.IsScalar(), at("cpus"),
                   ": 'cpus' must be a list of CPU ids or a CPU list such as 0-3,6");
      std::string text = cpus.as<std::string>();
      if (!text.empty()) c.cpus = parse_cpu_list(text, at("cpus") + ": 'cpus'");
    }
  }
  if (root["heartbeat_ms"])
    c.heartbeat_ms = static_cast<int>(int_value(path, root["heartbeat_ms"], "heartbeat_ms", 10, 60000));
  if (root["weight_cache_mb"])
    c.weight_cache_bytes =
        static_cast<uint64_t>(int_value(path, root["weight_cache_mb"], "weight_cache_mb", 0, 1 << 30)) << 20;
  if (root["cache_dir"]) {
    c.cache_dir = string_value(path, root["cache_dir"], "cache_dir");
    if (!c.cache_dir.empty() && c.cache_dir[0] == '~') {
      const char* home = std::getenv("HOME");
      CONVOY_CHECK(home != nullptr, at("cache_dir"), ": 'cache_dir' starts with ~ but HOME is not set");
      c.cache_dir = std::string(home) + c.cache_dir.substr(1);
    }
    if (!c.cache_dir.empty()) c.cache_dir = (base / c.cache_dir).lexically_normal().string();
  }
  if (root["keys"]) {
    c.keys = string_value(path, root["keys"], "keys");
    if (c.keys == "~" || c.keys.rfind("~/", 0) == 0) {
      const char* home = std::getenv("HOME");
      CONVOY_CHECK(home != nullptr, at("keys"), ": 'keys' starts with ~ but HOME is not set");
      c.keys = std::string(home) + c.keys.substr(1);
    }
    if (!c.keys.empty()) c.keys = (base / c.keys).lexically_normal().string();
  }
  if (YAML::Node v = root["insecure"]) {
    std::optional<bool> b = v.IsScalar() ? yaml::scalar_as<bool>(v) : std::nullopt;
    CONVOY_CHECK(b.has_value(), at("insecure"), ": 'insecure' must be true or false");
    c.insecure = *b;
  }
  if (root["max_message_mb"])
    c.max_message_mb =
        static_cast<uint32_t>(int_value(path, root["max_message_mb"], "max_message_mb", 1, 65536));
  if (root["log_level"])
    c.log_level = parse_log_level(string_value(path, root["log_level"], "log_level"), at("log_level"));
  return c;
}

}  // namespace convoy::worker
