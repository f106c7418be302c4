// The worker daemon (docs/distributed.md, "A worker's life"): a Boost.Asio control loop that talks to
// the coordinator over a DEALER and receives micro-batches on a bound data ROUTER, and a compute thread
// that builds, warms and runs the stages it is assigned. Only the control-loop thread touches ZeroMQ
// sockets; the compute thread hands replies back by posting them to the io_context.
//
// Usage (main.cpp, tests):
//   WorkerConfig config = load_worker_config("worker.yaml");
//   prepare_process(config);            // CPU pinning and PoCL's thread count, before OpenCL starts
//   Worker worker(config, registry);    // opens the device, measures it, binds the data socket
//   int status = worker.run();          // until SIGTERM/SIGINT (or stop()): drains, deregisters
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "worker/config.h"

namespace convoy {
class OpRegistry;
}

namespace convoy::worker {

// What must happen before OpenCL is first used in this process: pins the process to config.cpus
// (sched_setaffinity), sets PoCL's CPU thread count (POCL_MAX_PTHREAD_COUNT, which PoCL 3.1's pthread
// device reads at platform initialisation) to the thread count, and CONVOY_CACHE_DIR to cache_dir.
// Fills config.threads when it was 0 (the CPUs this process may run on). Throws kInvalidInput when a
// CPU cannot be used.
void prepare_process(WorkerConfig& config);

class Worker {
 public:
  // Opens the backend's device (`device` selector), measures or loads its profile, binds the data
  // socket. Throws convoy::Error with a clear message (no device, bad selector, bind failure).
  Worker(WorkerConfig config, const OpRegistry& registry);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the control loop until a stop: SIGTERM/SIGINT when `handle_signals`, or stop(). Stopping stops
  // taking assignments, finishes the micro-batches already received, sends `deregister` and returns 0.
  // A second signal during the drain returns at once (1). Returns 1 as well when the coordinator refuses
  // this worker for good (protocol version or op set differ).
  int run(bool handle_signals = true);
  // Thread-safe: begins the same drain as SIGTERM.
  void stop();

  // The data endpoint advertised in Register ("tcp://127.0.0.1:40123").
  const std::string& data_endpoint() const;
  const std::string& name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convoy::worker
