// The coordinator daemon's settings (`convoy-coordinator serve --config cluster.yaml`); every key is
// documented in configs/cluster.yaml. Unknown keys and bad values are errors naming the file, the
// line and the key.
#pragma once

#include <cstdint>
#include <string>

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
};

// Reads and validates a cluster file. Errors are convoy::Error(kInvalidInput) like
//   "cluster.yaml:4: 'max_in_flight' must be an integer in [1, 4096], not 'many'".
ClusterConfig load_cluster_config(const std::string& path);
// The same from YAML text; `name` stands for the file in messages.
ClusterConfig parse_cluster_config(const std::string& yaml, const std::string& name);

}  // namespace convoy
