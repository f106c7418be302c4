// The worker processes of `convoy-coordinator run --workers N`: N convoy-worker processes started
// next to this executable, each with cores/N threads pinned to its share of the CPUs this process may
// use, configured (worker-K.yaml in `dir`) to dial `coordinator` with the keys in `keys_dir` ("" =
// insecure); killed with us (PR_SET_PDEATHSIG) and stopped by stop(): SIGTERM, then SIGKILL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

class LocalWorkers {
 public:
  LocalWorkers(uint32_t n, const std::string& coordinator, const std::string& backend,
               const std::string& device, const std::string& dir, const std::string& keys_dir);
  ~LocalWorkers();
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  // Throws when a worker has exited before being told to.
  void check();
  void stop(std::chrono::milliseconds grace);

 private:
  std::string dir_;
  std::vector<pid_t> pids_;
};

}  // namespace convoy
