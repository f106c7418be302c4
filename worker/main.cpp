// convoy-worker: the worker process.
//   convoy-worker --list-devices            every OpenCL device with its limits
//   convoy-worker --tune [--device SEL]     measure GEMM parameters for a device and store them in the cache
// The daemon (`--config worker.yaml`) is not built yet (issue 4).
// Errors print one line "error: <message>" on stderr; exit 1 for a failed command, 2 for misuse.
#include <iostream>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "runtime/error.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  convoy-worker --list-devices\n"
    "      list the OpenCL devices of this machine with their limits\n"
    "  convoy-worker --tune [--device INDEX|NAME]\n"
    "      measure GEMM parameters for a device (minutes on a CPU) and store them in the cache folder\n"
    "  convoy-worker --config worker.yaml\n"
    "      the worker daemon (not built yet: issue 4)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int run(const std::vector<std::string>& args) {
  std::string command, device_selector;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--list-devices" || a == "--tune" || a == "--config") {
      if (!command.empty()) throw UsageError("give one of --list-devices, --tune, --config");
      command = a;
      if (a == "--config") {
        if (i + 1 >= args.size()) throw UsageError("--config needs a file");
        ++i;
      }
    } else if (a == "--device") {
      if (i + 1 >= args.size()) throw UsageError("--device needs an index or a name");
      device_selector = args[++i];
    } else {
      throw UsageError("unknown argument '" + a + "'");
    }
  }
  if (command.empty()) throw UsageError("nothing to do");
  if (command == "--config")
    convoy::fail(convoy::ErrorKind::kUnsupported,
                 "the worker daemon is not built yet (issue 4); this build of ",
                 "convoy-worker supports --list-devices and --tune");
  if (command == "--list-devices") {
    if (!device_selector.empty()) throw UsageError("--device does not apply to --list-devices");
    std::cout << convoy::opencl::list_devices_report(convoy::opencl::enumerate_devices());
    return 0;
  }
  auto device = convoy::opencl::Device::open(device_selector);
  std::cerr << "tuning GEMM on device " << device->info().index << ": " << device->info().name << "\n";
  return convoy::opencl::gemm::run_tune_command(*device, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  try {
    return run(args);
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
