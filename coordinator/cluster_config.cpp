#include "coordinator/cluster_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "coordinator/http.h"
#include "runtime/error.h"
#include "runtime/yaml_fields.h"

namespace convoy {

namespace {

using yaml::where;

// An integer or a number in [lo, hi] (`what`: "an integer", "a number").
template <typename T>
T in_range(const std::string& file, const YAML::Node& node, const std::string& key, const char* what, T lo,
           T hi) {
  std::optional<T> v = yaml::scalar_as<T>(node);
  CONVOY_CHECK(v && *v >= lo && *v <= hi, where(file, node), ": '", key, "' must be ", what, " in [", lo,
               ", ", hi, "], not '", yaml::text_of(node), "'");
  return *v;
}

uint32_t integer(const std::string& file, const YAML::Node& node, const std::string& key, int64_t lo,
                 int64_t hi) {
  return static_cast<uint32_t>(in_range(file, node, key, "an integer", lo, hi));
}

double number(const std::string& file, const YAML::Node& node, const std::string& key, double lo, double hi) {
  return in_range(file, node, key, "a number", lo, hi);
}

std::string string(const std::string& file, const YAML::Node& node, const std::string& key) {
  CONVOY_CHECK(node.IsScalar() && !node.as<std::string>().empty(), where(file, node), ": '", key,
               "' must be a non-empty string");
  return node.as<std::string>();
}

// A path setting: absolute, "~/..." ($HOME), or relative to the cluster file's folder. `allow_empty`:
// "" (quoted) is a value ("no such folder").
std::string folder(const std::string& file, const YAML::Node& at, const YAML::Node& v, const std::string& key,
                   bool allow_empty) {
  std::optional<std::string> text = v.IsScalar() ? yaml::scalar_as<std::string>(v) : std::nullopt;
  CONVOY_CHECK(
      text && (allow_empty || !text->empty()) && text->find('\0') == std::string::npos && text->size() < 4096,
      where(file, at), ": '", key, "' must be a path (absolute, ~/..., or relative to this file)",
      allow_empty ? " or \"\" for none" : "");
  std::string path = *text;
  if (path == "~" || path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    CONVOY_CHECK(home && *home, where(file, at), ": '", key, "' starts with ~ but HOME is not set");
    path = std::string(home) + path.substr(1);
  } else if (!path.empty() && path[0] != '/') {
    path = (std::filesystem::absolute(file).parent_path() / path).lexically_normal().string();
  }
  return path;
}

bool loopback_host(const std::string& host_port) {
  std::optional<http::HostPort> hp = http::parse_host_port(host_port);
  if (!hp) return false;
  return hp->host.rfind("127.", 0) == 0 || hp->host == "::1" || hp->host == "localhost";
}

}  // namespace

std::string default_keys_dir(const ClusterConfig& c) {
  if (!c.keys_dir.empty()) return c.keys_dir;
  if (!c.state_dir.empty()) return (std::filesystem::path(c.state_dir) / "keys").string();
  const char* home = std::getenv("HOME");
  CONVOY_CHECK(home && *home, "the coordinator's keys folder: set keys_dir or state_dir (HOME is not set)");
  return std::string(home) + "/.local/state/convoy/keys";
}

void validate_cluster_config(ClusterConfig& c, const std::string& file) {
  if (c.allowed_roots.empty()) {
    const char* home = std::getenv("HOME");
    CONVOY_CHECK(home && *home, file, ": set 'allowed_roots' (the default is $HOME, which is not set)");
    c.allowed_roots.push_back(home);
  }
  if (!c.http_listen.empty() && !loopback_host(c.http_listen))
    CONVOY_CHECK(!c.http_token_file.empty() || c.insecure, file, ": 'http_listen' ", c.http_listen,
                 " is not a loopback address: set 'http_token_file' (a file holding the bearer token that "
                 "/metrics requires)");
}

ClusterConfig parse_cluster_config(const std::string& text, const std::string& file) {
  YAML::Node root = yaml::load(text, file);
  ClusterConfig c;
  if (root.IsNull()) {  // an empty file: every default
    validate_cluster_config(c, file);
    return c;
  }
  CONVOY_CHECK(root.IsMap(), where(file, root), ": a cluster file must be a mapping of settings");
  static const char* kKeys =
      "listen, heartbeat_ms, missed_heartbeats, max_in_flight, backend, min_workers, stage_ready_timeout_s, "
      "max_replicas, op_overhead_us, http_listen, state_dir, progress_timeout_s, job_workers, insecure, "
      "keys_dir, allowed_roots, http_token_file, max_message_mb, max_jobs_per_client";
  for (const auto& kv : root) {
    CONVOY_CHECK(kv.first.IsScalar(), where(file, kv.first), ": keys must be names (", kKeys, ")");
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "listen") {
      c.listen = string(file, v, key);
      CONVOY_CHECK(c.listen.rfind("tcp://", 0) == 0 || c.listen.rfind("ipc://", 0) == 0 ||
                       c.listen.rfind("inproc://", 0) == 0,
                   where(file, v),
                   ": 'listen' must be a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH), not '", c.listen,
                   "'");
    } else if (key == "heartbeat_ms") {
      c.heartbeat_ms = integer(file, v, key, 10, 60000);
    } else if (key == "missed_heartbeats") {
      c.missed_heartbeats = integer(file, v, key, 1, 1000);
    } else if (key == "max_in_flight") {
      c.max_in_flight = integer(file, v, key, 1, 4096);
    } else if (key == "backend") {
      c.backend = string(file, v, key);
      CONVOY_CHECK(c.backend == "opencl" || c.backend == "reference", where(file, v),
                   ": 'backend' must be opencl or reference, not '", c.backend, "'");
    } else if (key == "min_workers") {
      c.min_workers = integer(file, v, key, 1, 65536);
    } else if (key == "stage_ready_timeout_s") {
      c.stage_ready_timeout_s = number(file, v, key, 0.1, 86400);
    } else if (key == "job_workers") {
      c.job_workers = integer(file, v, key, 0, 65536);
    } else if (key == "progress_timeout_s") {
      c.progress_timeout_s = number(file, v, key, 0, 86400);
    } else if (key == "max_replicas") {
      c.max_replicas = integer(file, v, key, 0, 65536);
    } else if (key == "op_overhead_us") {
      c.op_overhead_us = number(file, v, key, 0, 1e6);
    } else if (key == "http_listen") {
      // "" (quoted) turns the HTTP server off.
      std::optional<std::string> text = v.IsScalar() ? yaml::scalar_as<std::string>(v) : std::nullopt;
      CONVOY_CHECK(text && (text->empty() || http::parse_host_port(*text)),
                   where(file, v.IsNull() ? kv.first : v),  // a null value has the next line's mark
                   ": 'http_listen' must be HOST:PORT (an IP address or localhost, a port in [0, 65535]) or "
                   "\"\" for no HTTP server, not '",
                   v.IsNull() ? std::string("null") : yaml::text_of(v), "'");
      c.http_listen = *text;
    } else if (key == "state_dir") {
      // "" (quoted) keeps no ledger: jobs do not survive the coordinator.
      c.state_dir = folder(file, v.IsNull() ? kv.first : v, v, key, true);
    } else if (key == "keys_dir") {
      c.keys_dir = folder(file, v.IsNull() ? kv.first : v, v, key, false);
    } else if (key == "http_token_file") {
      c.http_token_file = folder(file, v.IsNull() ? kv.first : v, v, key, false);
    } else if (key == "insecure") {
      std::optional<bool> b = v.IsScalar() ? yaml::scalar_as<bool>(v) : std::nullopt;
      CONVOY_CHECK(b.has_value(), where(file, v.IsNull() ? kv.first : v),
                   ": 'insecure' must be true or false");
      c.insecure = *b;
    } else if (key == "allowed_roots") {
      CONVOY_CHECK(v.IsSequence() && v.size() > 0 && v.size() <= 256, where(file, v.IsNull() ? kv.first : v),
                   ": 'allowed_roots' must be a list of folders (absolute, ~/..., or relative to this file)");
      c.allowed_roots.clear();
      for (const YAML::Node& r : v) c.allowed_roots.push_back(folder(file, r, r, key, false));
    } else if (key == "max_message_mb") {
      c.max_message_mb = integer(file, v, key, 1, 65536);
    } else if (key == "max_jobs_per_client") {
      c.max_jobs_per_client = integer(file, v, key, 1, 1000000);
    } else {
      fail(ErrorKind::kInvalidInput, where(file, kv.first), ": unknown key '", key,
           "' (expected one of: ", kKeys, ")");
    }
  }
  validate_cluster_config(c, file);
  return c;
}

ClusterConfig load_cluster_config(const std::string& path) {
  CONVOY_CHECK_KIND(kIo, std::filesystem::is_regular_file(path), path, ": cluster file not found");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  CONVOY_CHECK_KIND(kIo, !in.bad(), path, ": cannot read the cluster file");
  return parse_cluster_config(text.str(), path);
}

}  // namespace convoy
