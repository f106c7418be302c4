// convoy-worker: the worker process.
//   convoy-worker --config worker.yaml [overrides]   the worker daemon (docs/distributed.md)
//   convoy-worker --list-devices                     every OpenCL device with its limits
//   convoy-worker --tune [--device SEL]              measure GEMM parameters and store them in the cache
//   convoy-worker keygen --out DIR [--name NAME]     a CURVE key pair for a worker on another host
// Errors print one line "error: <message>" on stderr; exit 1 for a failed command, 2 for misuse.
#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "runtime/error.h"
#include "runtime/ops/registry.h"
#include "schema/auth.h"
#include "worker/config.h"
#include "worker/worker.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  convoy-worker --config worker.yaml [--coordinator EP] [--name NAME] [--backend opencl|reference]\n"
    "                [--device INDEX|NAME] [--threads N] [--cpus LIST] [--data-bind EP]\n"
    "                [--advertise-host HOST] [--cache-dir DIR] [--log-level LEVEL] [--keys DIR]\n"
    "                [--insecure]\n"
    "      the worker daemon: registers with the coordinator, runs the stages it is assigned, and on\n"
    "      SIGTERM/SIGINT finishes its queued micro-batches and deregisters (configs/worker.yaml documents\n"
    "      every key; a flag overrides its key; without --config every key takes its default)\n"
    "  convoy-worker --list-devices\n"
    "      list the OpenCL devices of this machine with their limits\n"
    "  convoy-worker --tune [--device INDEX|NAME]\n"
    "      measure GEMM parameters for a device (minutes on a CPU) and store them in the cache folder\n"
    "  convoy-worker keygen --out DIR [--name NAME]\n"
    "      a new CURVE key pair for this worker: DIR/NAME.key_secret stays here (NAME defaults to worker,\n"
    "      the name the daemon looks for in its 'keys' folder), DIR/NAME.key goes into the coordinator's\n"
    "      keys_dir/authorized/ (docs/security.md)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int parse_int(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    int v = std::stoi(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " needs an integer, not '" + text + "'");
}

int keygen(const std::vector<std::string>& args) {
  std::string out, name = "worker";
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--out" || args[i] == "--name") && i + 1 < args.size()) {
      (args[i] == "--out" ? out : name) = args[i + 1];
      ++i;
    } else {
      throw UsageError("keygen: unknown argument '" + args[i] + "' (keygen --out DIR [--name NAME])");
    }
  }
  if (out.empty()) throw UsageError("keygen: --out DIR is required");
  std::string key = convoy::auth::keygen(out, name, convoy::auth::Role::kWorker);
  std::cout << "wrote " << convoy::auth::public_file(out, name) << " and "
            << convoy::auth::secret_file(out, name) << " (worker, public key " << key << ")\n"
            << "admit it: copy " << convoy::auth::public_file(out, name)
            << " into the coordinator's keys_dir/authorized/ under a name of its own (docs/security.md)\n";
  return 0;
}

int run(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "keygen") return keygen({args.begin() + 1, args.end()});
  std::string command, config_file, device_selector;
  bool have_device = false;
  std::map<std::string, std::string> overrides;  // daemon flags
  static const std::vector<std::string> kDaemonFlags = {
      "--coordinator", "--name",           "--backend",   "--threads",   "--cpus",
      "--data-bind",   "--advertise-host", "--cache-dir", "--log-level", "--keys"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--list-devices" || a == "--tune" || a == "--config") {
      if (!command.empty()) throw UsageError("give one of --list-devices, --tune, --config");
      command = a;
      if (a == "--config") {
        if (i + 1 >= args.size()) throw UsageError("--config needs a file");
        config_file = args[++i];
      }
    } else if (a == "--device") {
      if (i + 1 >= args.size()) throw UsageError("--device needs an index or a name");
      device_selector = args[++i];
      have_device = true;
    } else if (a == "--insecure") {
      overrides[a] = "true";
    } else if (std::find(kDaemonFlags.begin(), kDaemonFlags.end(), a) != kDaemonFlags.end()) {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      overrides[a] = args[++i];
    } else {
      throw UsageError("unknown argument '" + a + "'");
    }
  }
  if (command.empty() && !overrides.empty()) command = "--config";  // the daemon with default keys
  if (command.empty()) throw UsageError("nothing to do");
  if (command != "--config" && !overrides.empty())
    throw UsageError(overrides.begin()->first + " applies to the daemon (--config) only");

  if (command == "--list-devices") {
    if (have_device) throw UsageError("--device does not apply to --list-devices");
    std::cout << convoy::opencl::list_devices_report(convoy::opencl::enumerate_devices());
    return 0;
  }
  if (command == "--tune") {
    auto device = convoy::opencl::Device::open(device_selector);
    std::cerr << "tuning GEMM on device " << device->info().index << ": " << device->info().name << "\n";
    return convoy::opencl::gemm::run_tune_command(*device, std::cerr);
  }

  using convoy::worker::WorkerConfig;
  WorkerConfig config =
      config_file.empty() ? WorkerConfig{} : convoy::worker::load_worker_config(config_file);
  if (have_device) config.device = device_selector;
  for (const auto& [flag, value] : overrides) {
    if (flag == "--coordinator") config.coordinator = value;
    if (flag == "--name") config.name = value;
    if (flag == "--backend") config.backend = value;
    if (flag == "--threads") config.threads = parse_int(flag, value);
    if (flag == "--cpus")
      config.cpus = value.empty() ? std::vector<int>{} : convoy::worker::parse_cpu_list(value, flag);
    if (flag == "--data-bind") config.data_bind = value;
    if (flag == "--advertise-host") config.advertise_host = value;
    if (flag == "--cache-dir") config.cache_dir = value;
    if (flag == "--log-level") config.log_level = convoy::worker::parse_log_level(value, flag);
    if (flag == "--keys") config.keys = value;
    if (flag == "--insecure") config.insecure = true;
  }
  // A bad flag value is named as the flag, not as the config file's key.
  if (overrides.count("--backend") && config.backend != "opencl" && config.backend != "reference")
    throw UsageError("--backend must be opencl or reference, not '" + config.backend + "'");
  if (overrides.count("--coordinator") && !convoy::worker::is_valid_endpoint(config.coordinator, false))
    throw UsageError("--coordinator must be a ZeroMQ endpoint such as tcp://127.0.0.1:7700, not '" +
                     config.coordinator + "'");
  if (overrides.count("--data-bind") && !convoy::worker::is_valid_endpoint(config.data_bind, true))
    throw UsageError("--data-bind must be a ZeroMQ endpoint such as tcp://127.0.0.1:*, not '" +
                     config.data_bind + "'");
  if (overrides.count("--threads") && (config.threads < 0 || config.threads > 4096))
    throw UsageError("--threads must be from 0 to 4096");
  convoy::worker::validate_worker_config(config);
  // Before anything touches OpenCL: CPU pinning, PoCL's thread count, the cache folder.
  convoy::worker::prepare_process(config);
  convoy::OpRegistry registry = convoy::make_default_registry();
  convoy::worker::Worker worker(config, registry);
  return worker.run(true);
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
