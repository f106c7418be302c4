// The worker's YAML config (errors name file:line and the key; configs/worker.yaml loads as shipped)
// and its weight cache (hash-checked, least recently used evicted, pinned while a stage uses it).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <vector>

#include "runtime/error.h"
#include "runtime/sha256.h"
#include "worker/config.h"
#include "worker/weight_cache.h"

using namespace convoy;
using namespace convoy::worker;

namespace {

std::string write_config(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / "convoy-worker-config-test";
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

std::string load_error(const std::string& text) {
  std::string path = write_config("bad.yaml", text);
  try {
    load_worker_config(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string hash_of(const std::vector<uint8_t>& bytes) {
  auto d = sha256(bytes.data(), bytes.size());
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace

TEST_CASE("worker config: configs/worker.yaml loads as shipped with the documented defaults") {
  WorkerConfig c = load_worker_config(std::string(CONVOY_SOURCE_DIR) + "/configs/worker.yaml");
  WorkerConfig d;
  CHECK(c.coordinator == d.coordinator);
  CHECK(c.data_bind == "tcp://127.0.0.1:*");
  CHECK(c.backend == "opencl");
  CHECK(c.name.empty());
  CHECK(c.threads == 0);
  CHECK(c.cpus.empty());
  CHECK(c.heartbeat_ms == d.heartbeat_ms);
  CHECK(c.weight_cache_bytes == d.weight_cache_bytes);
  CHECK(c.cache_dir.empty());
  CHECK(c.log_level == LogLevel::kInfo);
  validate_worker_config(c);
}

TEST_CASE("worker config: every key parsed") {
  std::string path = write_config("full.yaml",
                                  "coordinator: tcp://10.0.0.1:7800\n"
                                  "data_bind: tcp://0.0.0.0:*\n"
                                  "advertise_host: node7\n"
                                  "name: w1\n"
                                  "backend: reference\n"
                                  "device: pthread\n"
                                  "threads: 3\n"
                                  "cpus: [2, 0]\n"
                                  "heartbeat_ms: 100\n"
                                  "weight_cache_mb: 16\n"
                                  "cache_dir: cache\n"
                                  "log_level: debug\n");
  WorkerConfig c = load_worker_config(path);
  CHECK(c.coordinator == "tcp://10.0.0.1:7800");
  CHECK(c.data_bind == "tcp://0.0.0.0:*");
  CHECK(c.advertise_host == "node7");
  CHECK(c.name == "w1");
  CHECK(c.backend == "reference");
  CHECK(c.device == "pthread");
  CHECK(c.threads == 3);
  CHECK(c.cpus == std::vector<int>{0, 2});
  CHECK(c.heartbeat_ms == 100);
  CHECK(c.weight_cache_bytes == (16u << 20));
  CHECK(c.cache_dir == (std::filesystem::path(path).parent_path() / "cache").string());
  CHECK(c.log_level == LogLevel::kDebug);
  // A CPU list as text, an empty file.
  CHECK(load_worker_config(write_config("cpus.yaml", "cpus: 0-2,5\n")).cpus == std::vector<int>{0, 1, 2, 5});
  CHECK(load_worker_config(write_config("empty.yaml", "")).backend == "opencl");
}

TEST_CASE("worker config: errors name the file, the line and the key") {
  struct BadConfig {
    const char* yaml;
    std::vector<const char*> says;  // each a part of the error
  };
  const std::vector<BadConfig> cases = {
      {"backend: opencl\nname: w\nheartbeat: 100\n",
       {"bad.yaml:3: unknown key 'heartbeat'", "heartbeat_ms"}},  // lists the keys it knows
      {"name: w\nbackend: cuda\n", {"bad.yaml:2: 'backend' must be opencl or reference, not 'cuda'"}},
      {"threads: many\n", {"bad.yaml:1: 'threads' must be an integer from 0 to 4096, not 'many'"}},
      {"\n\nthreads: -1\n", {"bad.yaml:3: 'threads' must be an integer"}},
      {"coordinator: localhost:7700\n", {"bad.yaml:1: 'coordinator' must be a ZeroMQ endpoint"}},
      {"coordinator: tcp://127.0.0.1:*\n", {"bad.yaml:1: 'coordinator'"}},  // a port '*' only binds
      {"data_bind: udp://x:1\n", {"bad.yaml:1: 'data_bind'"}},
      {"cpus: [0, x]\n", {"bad.yaml:1: 'cpus'"}},
      {"cpus: 3-1\n", {"bad.yaml:1", "empty"}},
      {"heartbeat_ms: 1\n", {"bad.yaml:1: 'heartbeat_ms' must be an integer from 10 to 60000, not 1"}},
      {"log_level: loud\n", {"bad.yaml:1: 'log_level' must be error, warning, info or debug, not 'loud'"}},
      {"advertise_host: tcp://x\n", {"bad.yaml:1: 'advertise_host'"}},
      {"name: [a, b]\n", {"bad.yaml:1: 'name' must be a string"}},
      {"- a\n- b\n", {"bad.yaml: a worker config must be a mapping"}},
      {"name: [unclosed\n", {"bad.yaml:", "invalid YAML"}},
  };
  for (const BadConfig& c : cases) {
    CAPTURE(c.yaml);
    std::string e = load_error(c.yaml);
    for (const char* part : c.says) CHECK_THAT(e, Catch::Contains(part));
  }

  CHECK_THROWS_WITH(load_worker_config("/nonexistent/worker.yaml"), Catch::Contains("not found"));
}

TEST_CASE("worker config: endpoints and CPU lists") {
  CHECK(is_valid_endpoint("tcp://127.0.0.1:7700", false));
  CHECK(is_valid_endpoint("tcp://127.0.0.1:*", true));
  CHECK_FALSE(is_valid_endpoint("tcp://127.0.0.1:*", false));
  CHECK_FALSE(is_valid_endpoint("tcp://127.0.0.1:0", false));
  CHECK_FALSE(is_valid_endpoint("tcp://127.0.0.1:70000", false));
  CHECK_FALSE(is_valid_endpoint("tcp://:7700", false));
  CHECK(is_valid_endpoint("ipc:///tmp/convoy.sock", false));
  CHECK(is_valid_endpoint("inproc://data", true));
  CHECK_FALSE(is_valid_endpoint("", false));
  CHECK(parse_cpu_list("1", "--cpus") == std::vector<int>{1});
  CHECK(parse_cpu_list("0-1,3,3", "--cpus") == std::vector<int>{0, 1, 3});
  CHECK_THROWS_WITH(parse_cpu_list("a", "--cpus"), Catch::Contains("--cpus"));
  CHECK_THROWS(parse_cpu_list("", "--cpus"));
}

TEST_CASE("weight cache: checks hashes, shares bytes, evicts least recently used unpinned weights") {
  WeightCache cache(100);
  std::vector<uint8_t> a(64, 1), b(64, 2), c(16, 3);
  std::string ha = hash_of(a), hb = hash_of(b), hc = hash_of(c);

  CHECK_THROWS_WITH(cache.put(ha, b.data(), b.size(), "AssignStage.weights[0]"),
                    Catch::Contains("AssignStage.weights[0]") && Catch::Contains("hash to"));
  CHECK_THROWS_WITH(cache.put("short", a.data(), a.size(), "w"), Catch::Contains("32 bytes"));
  CHECK(cache.put(ha, a.data(), a.size(), "w"));
  CHECK_FALSE(cache.put(ha, a.data(), a.size(), "w"));  // already there
  CHECK(cache.bytes() == 64);

  Tensor ta = cache.tensor(ha, DType::kFloat32, {4, 4});
  CHECK(ta.describe() == "float32[4, 4]");
  CHECK_THROWS_WITH(cache.tensor(ha, DType::kFloat32, {3}), Catch::Contains("bytes"));
  CHECK_THROWS_WITH(cache.tensor(hb, DType::kFloat32, {16}), Catch::Contains(hex_string(hb)));

  // a is pinned by `ta`: adding b goes over the limit, but nothing unpinned is older than b.
  CHECK(cache.put(hb, b.data(), b.size(), "w"));
  cache.evict();
  CHECK(cache.contains(ha));
  CHECK_FALSE(cache.contains(hb));  // the only unpinned entry
  CHECK(cache.bytes() == 64);

  ta = Tensor();  // unpinned now
  CHECK(cache.put(hb, b.data(), b.size(), "w"));
  CHECK(cache.put(hc, c.data(), c.size(), "w"));
  (void)cache.tensor(hb, DType::kUInt8, {64});  // b used more recently than a
  cache.evict();
  CHECK_FALSE(cache.contains(ha));
  CHECK(cache.contains(hb));
  CHECK(cache.contains(hc));
  CHECK(cache.bytes() == 80);
  CHECK(cache.hashes().size() == 2);
}
