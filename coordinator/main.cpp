// convoy-coordinator: inspect a model, run a batch job, serve as the coordinator daemon, and the
// client commands that talk to one (coordinator/cli.h).
// Errors print one line "error: <message>" on stderr; exit 1 for a failed command, 2 for misuse.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "coordinator/cli.h"
#include "coordinator/job_spec.h"
#include "coordinator/local_runner.h"
#include "runtime/error.h"
#include "runtime/graph/serialize.h"
#include "runtime/model.h"
#include "runtime/ops/registry.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  convoy-coordinator inspect MODEL.pt [--no-passes] [--wire]\n"
    "      print the lowered graph and an op summary (--wire: also the size of its Cap'n Proto form)\n"
    "  convoy-coordinator run JOB.yaml [--workers 0] [--backend opencl|reference] [--device INDEX|NAME]\n"
    "      run a batch job on this machine and write output_<i>.npy into the job's output folder; the\n"
    "      default backend is opencl (--device picks the device by index or name substring, see\n"
    "      convoy-worker --list-devices); reference is the CPU oracle\n"
    "  convoy-coordinator run JOB.yaml --workers N [--backend opencl|reference] [--device INDEX|NAME]\n"
    "      N >= 1: start a coordinator in this process and N convoy-worker processes on loopback, run\n"
    "      the job through them, stop them\n"
    "  convoy-coordinator serve [--config cluster.yaml]\n"
    "      the coordinator daemon (configs/cluster.yaml documents the keys); SIGINT/SIGTERM stop it\n"
    "  convoy-coordinator submit JOB.yaml [--wait] [--backend opencl|reference] [CLIENT]\n"
    "      queue a job; --wait shows its progress and exits 1 if it fails or is cancelled\n"
    "  convoy-coordinator status [JOB] [--json] [CLIENT]\n"
    "  convoy-coordinator cancel JOB [CLIENT]\n"
    "  convoy-coordinator workers [--json] [CLIENT]\n"
    "  convoy-coordinator plan JOB.yaml [--workers N] [--backend opencl|reference] [CLIENT]\n"
    "      the partitioner's plan: over N simulated local workers, or the coordinator's workers\n"
    "  convoy-coordinator keygen --out DIR [--name NAME] [--role client|admin|worker]\n"
    "      a new CURVE key pair DIR/NAME.key (public: copy it into the coordinator's keys_dir/authorized/)\n"
    "      and DIR/NAME.key_secret (keep it private)\n"
    "  CLIENT: [--coordinator EP] [--keys DIR] [--insecure]. EP defaults to tcp://127.0.0.1:7700; DIR\n"
    "      (client.key_secret and coordinator.key) to $CONVOY_KEYS, else ~/.local/state/convoy/keys;\n"
    "      --insecure talks plain text to a coordinator with insecure: true (docs/security.md)\n";

using convoy::UsageError;

int cmd_inspect(const std::vector<std::string>& args) {
  std::string path;
  convoy::LoadOptions options;
  bool wire = false;
  for (const std::string& a : args) {
    if (a == "--no-passes")
      options.run_passes = false;
    else if (a == "--wire")
      wire = true;
    else if (!a.empty() && a[0] == '-')
      throw UsageError("inspect: unknown option " + a);
    else if (path.empty())
      path = a;
    else
      throw UsageError("inspect: more than one model given");
  }
  if (path.empty()) throw UsageError("inspect: no model given");
  convoy::OpRegistry registry = convoy::make_default_registry();
  convoy::Model model = convoy::load_model(path, registry, options);
  std::cout << convoy::print_graph(*model.graph);
  std::cout << "\nops: " << convoy::op_summary(*model.graph) << "\n";
  if (wire) std::cout << "wire: " << convoy::serialize_graph(*model.graph).size() << " bytes\n";
  return 0;
}

int cmd_run(const std::vector<std::string>& args) {
  std::string job_path;
  long workers = 0;
  convoy::RunOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError("run: " + a + " needs a value");
      return args[++i];
    };
    if (a == "--workers") {
      std::string v = value();
      char* end = nullptr;
      workers = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || workers < 0)
        throw UsageError("run: --workers takes a number >= 0, not '" + v + "'");
    } else if (a == "--backend") {
      options.backend = value();
    } else if (a == "--device") {
      options.device = value();
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError("run: unknown option " + a);
    } else if (job_path.empty()) {
      job_path = a;
    } else {
      throw UsageError("run: more than one job file given");
    }
  }
  if (job_path.empty()) throw UsageError("run: no job file given");
  if (options.backend != "reference" && options.backend != "opencl")
    throw UsageError("run: unknown backend '" + options.backend + "' (this build has: reference, opencl)");
  if (!options.device.empty() && options.backend != "opencl")
    throw UsageError("run: --device applies to --backend opencl only");
  if (workers > 1024) throw UsageError("run: --workers takes a number in [0, 1024]");
  if (workers > 0)
    return convoy::run_distributed(job_path, static_cast<uint32_t>(workers), options.backend, options.device);
  convoy::JobSpec job = convoy::load_job_spec(job_path);
  convoy::OpRegistry registry = convoy::make_default_registry();
  convoy::JobResult r = convoy::run_job_in_process(job, registry, &std::cerr, options);
  std::cout << "done: " << r.samples << " samples in " << r.micro_batches << " micro-batches, " << r.outputs
            << " output(s) in " << job.output << " (load " << r.load_seconds << " s, run " << r.run_seconds
            << " s)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "inspect") return cmd_inspect(args);
    if (command == "run") return cmd_run(args);
    if (command == "serve") return convoy::cmd_serve(args);
    if (command == "submit") return convoy::cmd_submit(args);
    if (command == "status") return convoy::cmd_status(args);
    if (command == "cancel") return convoy::cmd_cancel(args);
    if (command == "workers") return convoy::cmd_workers(args);
    if (command == "plan") return convoy::cmd_plan(args);
    if (command == "keygen") return convoy::cmd_keygen(args, "client");
    throw UsageError("unknown command '" + command + "'");
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const convoy::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
