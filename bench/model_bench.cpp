// convoy-bench-models: Convoy's OpenCL throughput on whole models, the engine side of
// bench/run_model_bench.sh (see bench/README.md), which runs PyTorch on the same archives and inputs
// interleaved with this process and prints the table.
//
//   convoy-bench-models [--device SEL] MODEL.pt INPUT.npy [--batches N] [--output OUT.npy]
//       loads the model as `convoy-coordinator run` does (load_model, conv/batch-norm/activation and
//       linear/activation fusion, an OpenCLExecutor), runs one batch to compile the plan and one to
//       warm up, then times N batches (default 5) and prints seconds per batch and samples/s;
//       --output writes the first output of the last batch. CONVOY_OPENCL_PROFILE=1 adds the
//       per-kernel profile.
//   convoy-bench-models --serve [--device SEL]
//       reads commands on stdin, one per line, and answers each with one line, "ok ..." or
//       "error: ...":
//         load NAME MODEL.pt INPUT.npy   -> ok compute_units=C load_s=L plan_s=P warm_s=W
//         time NAME N                    -> ok T1 T2 ... TN        (seconds per batch)
//         save NAME OUT.npy              -> ok                     (first output of the last batch)
//         profile NAME                   -> the profile report, then a line "ok"
//         drop NAME                      -> ok
//         quit
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/executor.h"
#include "runtime/error.h"
#include "runtime/ivalue.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"

using namespace convoy;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Loaded {
  Model model;
  std::unique_ptr<opencl::OpenCLExecutor> executor;
  std::vector<IValue> inputs;
  std::vector<IValue> outputs;  // of the last run
  double load_s = 0, plan_s = 0, warm_s = 0;

  int64_t batch() const { return inputs.at(0).to_tensor().size(0); }
  void run() { outputs = executor->run(inputs); }
  Tensor first_output() const {
    const IValue* v = &outputs.at(0);
    while (!v->is_tensor()) v = &v->to_list_or_tuple().at(0);
    return v->to_tensor();
  }
};

std::unique_ptr<Loaded> load(const OpRegistry& registry, opencl::Device& device,
                             const std::string& model_path, const std::string& input_path) {
  auto m = std::make_unique<Loaded>();
  auto t0 = Clock::now();
  LoadOptions options;
  options.num_inputs = 1;
  m->model = load_model(model_path, registry, options);
  m->executor = opencl::make_fused_executor(*m->model.graph, device);
  m->load_s = seconds_since(t0);
  m->inputs.emplace_back(read_npy(input_path).clone());
  t0 = Clock::now();
  m->run();  // compiles the plan: programs, kernels, arena, GEMM choices
  m->plan_s = seconds_since(t0);
  t0 = Clock::now();
  m->run();
  m->warm_s = seconds_since(t0);
  return m;
}

std::vector<double> time_batches(Loaded& m, int n) {
  std::vector<double> times;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    m.run();
    times.push_back(seconds_since(t0));
  }
  return times;
}

int serve(const OpRegistry& registry, opencl::Device& device) {
  std::map<std::string, std::unique_ptr<Loaded>> models;
  std::string line;
  std::cout << std::setprecision(6);
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, name;
    in >> cmd >> name;
    if (cmd.empty()) continue;
    if (cmd == "quit") break;
    try {
      if (cmd == "load") {
        std::string model_path, input_path;
        in >> model_path >> input_path;
        CONVOY_CHECK(!input_path.empty(), "load NAME MODEL.pt INPUT.npy");
        models.erase(name);
        auto m = load(registry, device, model_path, input_path);
        std::cout << "ok compute_units=" << device.info().compute_units << " load_s=" << m->load_s
                  << " plan_s=" << m->plan_s << " warm_s=" << m->warm_s << "\n";
        models[name] = std::move(m);
      } else {
        auto it = models.find(name);
        CONVOY_CHECK(it != models.end(), "no model loaded as '", name, "'");
        Loaded& m = *it->second;
        if (cmd == "time") {
          int n = 0;
          in >> n;
          CONVOY_CHECK(n > 0, "time NAME N: N must be > 0");
          std::cout << "ok";
          for (double t : time_batches(m, n)) std::cout << " " << t;
          std::cout << "\n";
        } else if (cmd == "save") {
          std::string out;
          in >> out;
          write_npy(out, m.first_output());
          std::cout << "ok\n";
        } else if (cmd == "profile") {
          std::cout << m.executor->profile_report() << "ok\n";
        } else if (cmd == "drop") {
          models.erase(it);
          std::cout << "ok\n";
        } else {
          fail(ErrorKind::kInvalidInput, "unknown command '", cmd, "'");
        }
      }
    } catch (const Error& e) {
      std::cout << "error: " << e.what() << "\n";
    }
    std::cout.flush();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string device_sel, output;
  std::vector<std::string> positional;
  bool serve_mode = false;
  int batches = 5;
  try {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      auto value = [&]() -> std::string {
        CONVOY_CHECK(i + 1 < args.size(), a, " needs a value");
        return args[++i];
      };
      if (a == "--serve") {
        serve_mode = true;
      } else if (a == "--device") {
        device_sel = value();
      } else if (a == "--batches") {
        batches = std::atoi(value().c_str());
      } else if (a == "--output") {
        output = value();
      } else if (!a.empty() && a[0] == '-') {
        fail(ErrorKind::kInvalidInput, "unknown option ", a);
      } else {
        positional.push_back(a);
      }
    }
    if (!serve_mode && (positional.size() != 2 || batches < 1)) {
      std::cerr
          << "usage: convoy-bench-models [--device SEL] MODEL.pt INPUT.npy [--batches N] [--output OUT.npy]\n"
             "       convoy-bench-models --serve [--device SEL]   (see bench/README.md)\n";
      return 2;
    }
    OpRegistry registry = make_default_registry();
    auto device = opencl::Device::open(device_sel);
    if (serve_mode) return serve(registry, *device);

    auto m = load(registry, *device, positional[0], positional[1]);
    std::cout << std::fixed << std::setprecision(3) << "device: " << device->info().name << " ("
              << device->info().compute_units << " compute units)\n"
              << "load " << m->load_s << " s, first batch (plan) " << m->plan_s << " s, second " << m->warm_s
              << " s\n";
    std::vector<double> times = time_batches(*m, batches);
    double total = 0;
    for (double t : times) total += t;
    std::cout << "batch " << m->batch() << ", " << batches << " batches: " << total / batches << " s/batch, "
              << std::setprecision(2) << m->batch() * batches / total << " samples/s\n";
    if (!output.empty()) write_npy(output, m->first_output());
    if (m->executor->profiling()) std::cout << m->executor->profile_report();
    return 0;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
