// The coordinator daemon's settings (`convoy-coordinator serve --config cluster.yaml`); every key is
// documented in configs/cluster.yaml. Unknown keys and bad values are errors naming the file, the
// line and the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

struct ClusterConfig {
  std::string listen = "tcp://127.0.0.1:7700";  // the control ROUTER: workers and clients connect here
  uint32_t heartbeat_ms = 200;                  // told to workers in Registered
  uint32_t missed_heartbeats = 3;               // a worker silent this many periods is dead
  uint32_t max_in_flight = 4;                   // micro-batches outstanding per pipeline
  std::string backend = "opencl";               // for jobs that do not name one
  uint32_t min_workers = 1;                     // a job waits in the queue for this many idle workers
  uint32_t job_workers = 0;                     // the most workers a job holds unless it says; 0: all idle
  double stage_ready_timeout_s = 600;           // compiling and warming a stage (PoCL builds are slow)
  double progress_timeout_s = 60;  // a running job with no result this long is diagnosed; 0: never
  uint32_t max_replicas = 0;       // replicas per stage the planner may use; 0: any
  double op_overhead_us = 30;      // the cost model's fixed cost per device op
  std::string http_listen = "127.0.0.1:7701";  // HOST:PORT of /healthz and /metrics; "": none
  // The job ledger's folder (absolute once loaded; "~/" is $HOME). "": jobs are not durable.
  std::string state_dir;

  // Security (docs/security.md). Plain text only when set, loudly logged.
  bool insecure = false;
  // The coordinator's key pair and the allow-list (keys_dir/authorized/*.key); "" = state_dir/keys,
  // else ~/.local/state/convoy/keys (default_keys_dir). Created on first start.
  std::string keys_dir;
  // Models, inputs and outputs must resolve (realpath, symlinks followed) inside one of these; the
  // default is $HOME (filled in by the loader).
  std::vector<std::string> allowed_roots;
  std::string http_token_file;         // the bearer token /metrics requires; needed off loopback
  uint32_t max_message_mb = 256;       // the largest message any peer may send (ZMQ_MAXMSGSIZE)
  uint32_t max_jobs_per_client = 256;  // queued or running jobs of one client key
};

// The keys folder `c` uses (see ClusterConfig::keys_dir).
std::string default_keys_dir(const ClusterConfig& c);
// Fills the defaults that depend on the environment (allowed_roots) and checks the settings that
// depend on each other; `file` names the config in messages. load/parse call it.
void validate_cluster_config(ClusterConfig& c, const std::string& file);

// Reads and validates a cluster file. Errors are convoy::Error(kInvalidInput) like
//   "cluster.yaml:4: 'max_in_flight' must be an integer in [1, 4096], not 'many'".
ClusterConfig load_cluster_config(const std::string& path);
// The same from YAML text; `name` stands for the file in messages.
ClusterConfig parse_cluster_config(const std::string& yaml, const std::string& name);

}  // namespace convoy
