// Load benchmark: time to load + lower a TorchScript archive, and how much resident memory that
// adds compared with the archive's size. Weights stay in the archive's mapped pages, so the growth
// should be about the archive's size at most (pages touched while checking), not a second copy.
//   convoy-bench-load MODEL.pt [MODEL.pt ...]   (one process per model gives clean peaks:
//   bench/run_load_bench.sh does that)
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "runtime/error.h"
#include "runtime/model.h"
#include "runtime/ops/registry.h"

namespace {

// Reads a "VmRSS:" / "VmHWM:" line of /proc/self/status, in MiB.
double proc_status_mib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::strlen(key))) / 1024.0;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: convoy-bench-load MODEL.pt [MODEL.pt ...]\n";
    return 2;
  }
  convoy::OpRegistry registry = convoy::make_default_registry();
  std::printf("%-28s %10s %12s %12s %12s %12s\n", "model", "archive", "load", "rss before", "rss after",
              "peak rss");
  for (int i = 1; i < argc; ++i) {
    struct stat st {};
    if (stat(argv[i], &st) != 0) {
      std::cerr << "error: " << argv[i] << ": not found\n";
      return 1;
    }
    double before = proc_status_mib("VmRSS:");
    auto t0 = std::chrono::steady_clock::now();
    try {
      convoy::Model model = convoy::load_model(argv[i], registry);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double after = proc_status_mib("VmRSS:");
      double peak = proc_status_mib("VmHWM:");
      std::printf("%-28s %8.1f MiB %10.3f s %8.1f MiB %8.1f MiB %8.1f MiB\n", argv[i],
                  static_cast<double>(st.st_size) / (1024.0 * 1024.0), secs, before, after, peak);
    } catch (const convoy::Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }
  return 0;
}
