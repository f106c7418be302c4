// The worker daemon's configuration (`convoy-worker --config worker.yaml`; configs/worker.yaml is the
// documented example). Every key is optional; unknown keys and bad values are errors naming the file,
// the line and the key: "worker.yaml:7: 'backend' must be opencl or reference, not 'cuda'".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy::worker {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

struct WorkerConfig {
  std::string config_file;                           // where it came from ("" = defaults), for messages
  std::string coordinator = "tcp://127.0.0.1:7700";  // the coordinator's control ROUTER
  std::string data_bind = "tcp://127.0.0.1:*";       // this worker's data ROUTER; '*' port = ephemeral
  std::string advertise_host;      // host in the advertised data endpoint ("" = the bound address)
  std::string name;                // unique worker name ("" = host:pid)
  std::string backend = "opencl";  // "opencl" or "reference"
  std::string device;              // OpenCL device: index or name substring ("" = device 0)
  int threads = 0;                 // compute threads; 0 = one per CPU this process may run on
  std::vector<int> cpus;           // CPUs to pin the process to (sched_setaffinity); empty = no pinning
  int heartbeat_ms = 250;          // heartbeat interval (the coordinator's heartbeatMs caps it)
  uint64_t weight_cache_bytes = 4096ull << 20;  // weights kept beyond those of held stages
  std::string cache_dir;  // "" = $CONVOY_CACHE_DIR, else $XDG_CACHE_HOME/convoy, else ~/.cache/convoy
  LogLevel log_level = LogLevel::kInfo;
  // CURVE (docs/security.md): KEYS/worker.key_secret is this worker's key pair, KEYS/coordinator.key
  // the coordinator's public key. "" = $CONVOY_KEYS, else ~/.local/state/convoy/keys (where a
  // coordinator on this machine writes them on first start).
  std::string keys;
  bool insecure = false;          // plain text: only with a coordinator that says insecure: true
  uint32_t max_message_mb = 256;  // the largest message the data socket takes (ZMQ_MAXMSGSIZE)
};

// Parses and validates `path`. Throws convoy::Error(kInvalidInput) naming file:line and the key, or
// kIo when the file cannot be read.
WorkerConfig load_worker_config(const std::string& path);

// Checks a whole config (also one built by hand or changed by command-line flags); `source` prefixes
// the messages ("--threads" or the file name).
void validate_worker_config(const WorkerConfig& config);

// Parses "0-3,6" / "2" into CPU ids; throws kInvalidInput naming `what`.
std::vector<int> parse_cpu_list(const std::string& text, const std::string& what);

// Whether `endpoint` is a ZeroMQ endpoint this build connects to or binds: tcp://HOST:PORT (PORT may
// be '*' when `bind`), ipc://PATH or inproc://NAME.
bool is_valid_endpoint(const std::string& endpoint, bool bind);

LogLevel parse_log_level(const std::string& text, const std::string& what);
const char* log_level_name(LogLevel level);

}  // namespace convoy::worker
