// convoy-bench-sgemm: SGEMM GFLOP/s of each GEMM provider (CLBlast with default and with tuned
// parameters, our tiled kernel), of the dispatcher's choice and of OpenBLAS, at square sizes and at the
// GEMM shapes resnet18 (batch 8) and vit_b_16 (batch 2) run, each as a fraction of the machine's FP32
// peak measured by FMA-throughput probes in the same run, themselves checked against the theoretical
// peak from the measured clock. Every provider's output is checked against OpenBLAS; a wrong result, or
// a figure above the peak, fails the run. See bench/README.md.
#include <cblas.h>
#include <clblast.h>  // after gemm.h, which selects the OpenCL 1.2 API
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/fma_peak.h"
#include "fma_peak_cl.h"  // generated: bench::fma_peak_source(), the text of bench/fma_peak.cl
#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "opencl/gemm/providers.h"
#include "runtime/error.h"

using namespace convoy;
using namespace convoy::opencl::gemm;
using convoy::opencl::cl_check;
using Clock = std::chrono::steady_clock;

namespace {

struct Shape {
  std::string group;  // "square", "resnet18", "vit_b_16"
  std::string name;
  Transpose ta, tb;
  size_t m, n, k, batch;
  int count;  // how many times the model runs this shape per forward pass

  double flops() const { return 2.0 * m * n * k * batch; }
};

// resnet18 at batch 8, 224×224, convolutions as im2col GEMMs: M = C_out, N = batch·H_out·W_out,
// K = C_in·kh·kw, C = W[M×K]·cols[K×N]; the classifier is x[8×512]·W^T with W of 1000×512.
// vit_b_16 at batch 2: 197 tokens per image, so 394 rows through every linear (x·W^T); attention is
// 2·12 = 24 heads of Q·K^T (197×197×64) and P·V (197×64×197); the patch embedding is a 16×16/16 conv.
std::vector<Shape> model_shapes() {
  const Transpose N = Transpose::kNo, T = Transpose::kYes;
  return {
      {"resnet18", "conv1 7x7/2 3->64", N, N, 64, 8 * 112 * 112, 3 * 49, 1, 1},
      {"resnet18", "layer1 3x3 64->64", N, N, 64, 8 * 56 * 56, 64 * 9, 1, 4},
      {"resnet18", "layer2.0 3x3/2 64->128", N, N, 128, 8 * 28 * 28, 64 * 9, 1, 1},
      {"resnet18", "layer2 3x3 128->128", N, N, 128, 8 * 28 * 28, 128 * 9, 1, 3},
      {"resnet18", "layer2 down 1x1/2", N, N, 128, 8 * 28 * 28, 64, 1, 1},
      {"resnet18", "layer3.0 3x3/2 128->256", N, N, 256, 8 * 14 * 14, 128 * 9, 1, 1},
      {"resnet18", "layer3 3x3 256->256", N, N, 256, 8 * 14 * 14, 256 * 9, 1, 3},
      {"resnet18", "layer3 down 1x1/2", N, N, 256, 8 * 14 * 14, 128, 1, 1},
      {"resnet18", "layer4.0 3x3/2 256->512", N, N, 512, 8 * 7 * 7, 256 * 9, 1, 1},
      {"resnet18", "layer4 3x3 512->512", N, N, 512, 8 * 7 * 7, 512 * 9, 1, 3},
      {"resnet18", "layer4 down 1x1/2", N, N, 512, 8 * 7 * 7, 256, 1, 1},
      {"resnet18", "fc 512->1000", N, T, 8, 1000, 512, 1, 1},
      {"vit_b_16", "patch embed 16x16/16", N, N, 768, 2 * 196, 3 * 256, 1, 1},
      {"vit_b_16", "qkv 768->2304", N, T, 394, 2304, 768, 1, 12},
      {"vit_b_16", "attn Q.K^T", N, T, 197, 197, 64, 24, 12},
      {"vit_b_16", "attn P.V", N, N, 197, 64, 197, 24, 12},
      {"vit_b_16", "out proj 768->768", N, T, 394, 768, 768, 1, 12},
      {"vit_b_16", "mlp fc1 768->3072", N, T, 394, 3072, 768, 1, 12},
      {"vit_b_16", "mlp fc2 3072->768", N, T, 394, 768, 3072, 1, 12},
      {"vit_b_16", "head 768->1000", N, T, 2, 1000, 768, 1, 1},
  };
}

// One shape's operands on host and device, and OpenBLAS's result to check against.
struct Case {
  Shape shape;
  GemmArgs args;
  std::vector<float> a, b, reference, magnitude;
  cl_mem da = nullptr, db = nullptr, dc = nullptr;

  Case(const ClTarget& target, Shape s) : shape(std::move(s)) {
    args = dense_gemm(shape.ta, shape.tb, shape.m, shape.n, shape.k, nullptr, nullptr, nullptr, shape.batch);
    std::mt19937 rng(static_cast<uint32_t>(shape.m * 31 + shape.n * 17 + shape.k));
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    a.resize(a_extent(args));
    b.resize(b_extent(args));
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
    cl_int status = CL_SUCCESS;
    da = clCreateBuffer(target.context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, a.size() * 4, a.data(),
                        &status);
    cl_check(status, "clCreateBuffer", "A");
    db = clCreateBuffer(target.context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.size() * 4, b.data(),
                        &status);
    cl_check(status, "clCreateBuffer", "B");
    dc = clCreateBuffer(target.context, CL_MEM_READ_WRITE, c_extent(args) * 4, nullptr, &status);
    cl_check(status, "clCreateBuffer", "C");
    args.a = da;
    args.b = db;
    args.c = dc;
  }
  ~Case() {
    for (cl_mem m : {da, db, dc}) clReleaseMemObject(m);
  }

  // OpenBLAS on (a, b) into `out`, one cblas_sgemm per batch entry.
  void openblas(const std::vector<float>& x, const std::vector<float>& y, std::vector<float>& out) const {
    out.resize(c_extent(args));
    for (size_t e = 0; e < shape.batch; ++e)
      cblas_sgemm(CblasRowMajor, shape.ta == Transpose::kYes ? CblasTrans : CblasNoTrans,
                  shape.tb == Transpose::kYes ? CblasTrans : CblasNoTrans, int(shape.m), int(shape.n),
                  int(shape.k), 1.0f, x.data() + e * args.a_stride, int(args.lda),
                  y.data() + e * args.b_stride, int(args.ldb), 0.0f, out.data() + e * args.c_stride,
                  int(args.ldc));
  }

  void make_reference() {
    openblas(a, b, reference);
    // Σ|a·b| bounds the rounding error of any summation order: the tolerance scales with it.
    std::vector<float> abs_a(a), abs_b(b);
    for (float& x : abs_a) x = std::abs(x);
    for (float& x : abs_b) x = std::abs(x);
    openblas(abs_a, abs_b, magnitude);
  }

  // Empty when the device's C matches OpenBLAS; else a description of the worst element.
  std::string verify(const ClTarget& target) const {
    std::vector<float> got(reference.size());
    cl_check(
        clEnqueueReadBuffer(target.queue, dc, CL_TRUE, 0, got.size() * 4, got.data(), 0, nullptr, nullptr),
        "clEnqueueReadBuffer", "C");
    for (size_t i = 0; i < got.size(); ++i) {
      const double tolerance = 1e-5 + 2e-4 * magnitude[i];
      if (!(std::abs(double(got[i]) - reference[i]) <= tolerance))
        return str_cat("C[", i, "] = ", got[i], ", OpenBLAS says ", reference[i]);
    }
    return {};
  }
};

using bench::process_cpu_seconds;

// Wall-clock seconds, and CPU seconds of the whole process, of one run; 0 wall: not run.
struct Timing {
  double wall = 0, cpu = 0;
};

// Medians over the runs of `run` (each run enqueues and waits): one untimed run first, then at least 3
// timed runs and more until ~0.6 s have passed, at most 9.
template <typename Run>
Timing median_timing(Run run) {
  run();
  std::vector<double> walls, cpus;
  double total = 0;
  while (walls.size() < 3 || (total < 0.6 && walls.size() < 9)) {
    const double cpu_start = process_cpu_seconds();
    const auto start = Clock::now();
    run();
    walls.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    cpus.push_back(process_cpu_seconds() - cpu_start);
    total += walls.back();
  }
  std::sort(walls.begin(), walls.end());
  std::sort(cpus.begin(), cpus.end());
  return {walls[walls.size() / 2], cpus[cpus.size() / 2]};
}

struct Cell {
  Timing timing;
  std::string note;
};

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one.empty() ? "unknown" : one + " " + five + " " + fifteen;
}

void usage() {
  std::cerr << "usage: convoy-bench-sgemm [--device SEL] [--quick] [--only square|resnet18|vit_b_16] "
               "[--threads N] [--fma-ports N] [--openblas-env-as-is]\n"
               "  --quick    256 and 512 square plus the model shapes' first few; for a smoke test\n"
               "  --threads  OpenBLAS and CPU-probe threads (default: all online CPUs)\n"
               "  --fma-ports  FMA instructions a core starts per cycle, for the theoretical peak "
               "(default 2)\n"
               "  --openblas-env-as-is  keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (by default the "
               "benchmark\n"
               "             re-executes itself without them, so OpenBLAS picks its kernel for this CPU)\n"
               "  cache folder (tuned CLBlast parameters, dispatcher choices): $CONVOY_CACHE_DIR or "
               "~/.cache/convoy\n";
}

// The environment variables that override OpenBLAS's choice of kernel. OpenBLAS reads them when the
// library loads, before main, so the only way to run it without them is a fresh process image.
constexpr const char* kOpenblasOverrides[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
constexpr const char* kUnsetNote = "CONVOY_BENCH_OPENBLAS_UNSET";  // what the re-executed image lost

// Unless `keep`, re-executes this binary without kOpenblasOverrides when any is set (returns only when
// none is, or on failure); the values removed travel in kUnsetNote for the report.
void exec_without_openblas_overrides(char** argv, bool keep) {
  if (keep) return;
  std::string removed;
  for (const char* name : kOpenblasOverrides)
    if (const char* value = std::getenv(name)) {
      removed += str_cat(removed.empty() ? "" : " ", name, "=", value);
      unsetenv(name);
    }
  if (removed.empty()) return;
  setenv(kUnsetNote, removed.c_str(), 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "convoy-bench-sgemm: re-exec without %s failed (%s); OpenBLAS keeps them\n",
               removed.c_str(), std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  bool keep_openblas_env = false;
  for (int i = 1; i < argc; ++i) keep_openblas_env |= std::strcmp(argv[i], "--openblas-env-as-is") == 0;
  exec_without_openblas_overrides(argv, keep_openblas_env);

  bool quick = false;
  int fma_ports = 2;
  std::string only, device_selector;
  int threads = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--device" && i + 1 < argc) {
      device_selector = argv[++i];
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--fma-ports" && i + 1 < argc) {
      fma_ports = std::atoi(argv[++i]);
    } else if (arg == "--openblas-env-as-is") {
    } else {
      usage();
      return 2;
    }
  }
  try {
    const std::unique_ptr<opencl::Device> device = opencl::Device::open(device_selector);
    const ClTarget target = target_of(*device);
    const std::filesystem::path cache_dir = default_cache_dir();
    openblas_set_num_threads(threads);
    std::printf("device: %s\ncache folder: %s\nload average at start: %s\n",
                device_key(target.device).c_str(), cache_dir.string().c_str(), load_average().c_str());
    const char* unset = std::getenv(kUnsetNote);
    std::printf("OpenBLAS: %s, core %s (%s)\n", openblas_get_config(), openblas_get_corename(),
                keep_openblas_env ? "--openblas-env-as-is"
                : unset           ? str_cat("re-executed without ", unset).c_str()
                                  : "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set");
    const bool cpu_device = device->info().type & CL_DEVICE_TYPE_CPU;
    bool figures_sound = true;  // false once a figure exceeds a bound: a bound or a timing is wrong

    const bench::PeakMeasurement cl_peak = bench::opencl_fma_peak(target, bench::fma_peak_source());
    const bench::PeakMeasurement cpu_peak = bench::cpu_fma_peak(threads);
    const bench::TheoreticalPeak bound = bench::cpu_theoretical_peak(fma_ports);
    std::printf("FMA probes, wall clock: %.1f GFLOP/s (%s); %.1f GFLOP/s (%s)\n", cl_peak.gflops,
                cl_peak.how.c_str(), cpu_peak.gflops, cpu_peak.how.c_str());
    std::printf("FMA probes per CPU time: %.1f and %.1f GFLOP/s\n", cl_peak.cpu_time_gflops,
                cpu_peak.cpu_time_gflops);
    std::printf("theoretical peak of the host: %s\n", bound.text().c_str());
    // The peak the tables divide by: the best any probe did. A probe's figure per CPU time is what the
    // cores deliver with the machine to themselves, so on a shared machine it is the one that bounds a
    // wall-clock run measured at a quieter moment than the probe (a wall-clock probe caught behind a
    // neighbour's compile is not an upper bound: that is how 172 % of "peak" was once printed).
    const double peak =
        std::max({cl_peak.gflops, cpu_peak.gflops, cl_peak.cpu_time_gflops, cpu_peak.cpu_time_gflops});
    if (cpu_device && bound.lanes > 0) {
      const double fraction = peak / bound.gflops();
      std::printf(
          "the probes reach %.1f%% of the theoretical peak (%.1f%% of it at the FMA chain's clock)\n",
          100 * fraction,
          100 * peak /
              (bound.gflops() / std::max(bound.clock_ghz, bound.fma_clock_ghz) * bound.fma_clock_ghz));
      if (fraction > 1.0) {
        figures_sound = false;
        std::printf(
            "ERROR: a probe ran above the theoretical peak: the clock, the core count or "
            "--fma-ports %d is wrong, or a probe's timing is\n",
            fma_ports);
      } else if (fraction < 0.7) {
        std::printf(
            "WARNING: the probes reach under 70%% of the theoretical peak: they are not "
            "saturating the FMA ports (or the CPU has fewer than %d per core: --fma-ports)\n",
            fma_ports);
      }
    }

    std::vector<Shape> shapes;
    for (size_t s : {256, 512, 1024, 2048})
      if (!quick || s <= 512)
        shapes.push_back({"square", str_cat(s, "^3"), Transpose::kNo, Transpose::kNo, s, s, s, 1, 1});
    for (const Shape& s : model_shapes()) shapes.push_back(s);
    if (!only.empty()) std::erase_if(shapes, [&](const Shape& s) { return s.group != only; });
    if (quick) {
      std::map<std::string, int> per_group;
      std::erase_if(shapes, [&](const Shape& s) { return s.group != "square" && ++per_group[s.group] > 3; });
    }

    std::vector<std::unique_ptr<Case>> cases;
    for (const Shape& s : shapes) {
      cases.push_back(std::make_unique<Case>(target, s));
      cases.back()->make_reference();
    }

    enum Column { kClblastDefault, kClblastTuned, kTiled, kTiledNarrow, kDispatcher, kOpenblas, kColumns };
    const char* column_names[kColumns] = {"CLBlast",      "CLBlast tuned", "tiled",
                                          "tiled narrow", "dispatcher",    "OpenBLAS"};
    std::vector<std::array<Cell, kColumns>> cells(cases.size());
    bool all_correct = true;

    auto run_provider = [&](Column column, GemmProvider& provider) {
      for (size_t i = 0; i < cases.size(); ++i) {
        Case& c = *cases[i];
        provider.warm_up(c.args);
        cells[i][column].timing = median_timing([&] {
          provider.enqueue(c.args);
          cl_check(clFinish(target.queue), "clFinish");
        });
        if (std::string error = c.verify(target); !error.empty()) {
          all_correct = false;
          cells[i][column].note = "WRONG";
          std::printf("WRONG: %s on %s: %s\n", column_names[column], c.shape.name.c_str(), error.c_str());
        }
      }
    };

    // CLBlast's parameters are process-wide per device, so the default column runs before any tuned
    // parameters are applied.
    ProgramSource programs(target);
    {
      ClblastProvider defaults(programs);
      run_provider(kClblastDefault, defaults);
    }
    const bool tuned = !load_clblast_parameters(cache_dir, target.device).empty();
    if (tuned) {
      clblast::ClearCache();
      ClblastProvider clblast_tuned(programs);
      run_provider(kClblastTuned, clblast_tuned);
    }
    const TiledConfig tiled_config = load_tiled_config(cache_dir, target.device);
    {
      TiledProvider tiled(programs, tiled_config);
      run_provider(kTiled, tiled);
      TiledProvider narrow(programs, tiled_config.narrowed(), "tiled_narrow");
      run_provider(kTiledNarrow, narrow);
    }
    GemmDispatcher dispatcher(target, cache_dir);
    {
      // All warm-ups (and any measurements) first, as a plan build would, then the timed runs.
      for (auto& c : cases) dispatcher.warm_up(c->args);
      struct DispatcherAsProvider final : GemmProvider {
        GemmDispatcher& d;
        explicit DispatcherAsProvider(GemmDispatcher& dispatcher) : d(dispatcher) {}
        std::string_view name() const override { return "dispatcher"; }
        void warm_up(const GemmArgs& args) override { d.warm_up(args); }
        void enqueue(const GemmArgs& args, cl_event* event) override { d.enqueue(args, event); }
      } as_provider(dispatcher);
      run_provider(kDispatcher, as_provider);
      for (size_t i = 0; i < cases.size(); ++i)
        cells[i][kDispatcher].note = dispatcher.choice(ShapeClass::of(cases[i]->args));
      CONVOY_ASSERT(dispatcher.unwarmed_calls() == 0);
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      Case& c = *cases[i];
      std::vector<float> out;
      cells[i][kOpenblas].timing = median_timing([&] { c.openblas(c.a, c.b, out); });
    }

    // GFLOP/s and, in brackets, the fraction of the measured peak; `seconds_of` picks wall-clock time
    // or CPU time per core. A figure above the peak is marked ^ and fails the run: either the
    // peak is not an upper bound or that timing is wrong.
    std::vector<std::string> above_peak;
    auto check_bound = [&](const char* title, const std::string& what, double gflops, double table_peak) {
      if (gflops <= table_peak) return false;
      above_peak.push_back(str_cat(title, ": ", what, ": ", std::lround(gflops), " GFLOP/s > the ",
                                   std::lround(table_peak), " GFLOP/s peak"));
      return true;
    };
    auto print_table = [&](const char* title, double table_peak, auto seconds_of) {
      std::printf("\n%s (%% of the %.0f GFLOP/s peak)\n", title, table_peak);
      std::printf("%-9s %-26s %-22s", "model", "GEMM", "M x N x K (x batch) op");
      for (const char* name : column_names) std::printf(" %17s", name);
      std::printf("  %s\n", "dispatcher chose");
      std::map<std::string, std::array<std::pair<double, double>, kColumns>> totals;  // flops, seconds
      for (size_t i = 0; i < cases.size(); ++i) {
        const Shape& s = cases[i]->shape;
        const std::string dims =
            str_cat(s.m, "x", s.n, "x", s.k, s.batch > 1 ? str_cat("x", s.batch) : "", " ",
                    s.ta == Transpose::kYes ? "T" : "N", s.tb == Transpose::kYes ? "T" : "N");
        std::printf("%-9s %-26s %-22s", s.group.c_str(), s.name.c_str(), dims.c_str());
        for (int col = 0; col < kColumns; ++col) {
          const Cell& cell = cells[i][col];
          if (cell.timing.wall == 0) {
            std::printf(" %17s", "-");
            continue;
          }
          const double seconds = seconds_of(cell.timing);
          const double gflops = s.flops() / seconds * 1e-9;
          const bool above =
              check_bound(title, str_cat(column_names[col], " on ", s.name), gflops, table_peak);
          std::printf(" %8.1f (%4.1f%%)%s", gflops, 100 * gflops / table_peak,
                      cell.note == "WRONG" ? "!"
                      : above              ? "^"
                                           : " ");
          totals[s.group][col].first += s.flops() * s.count;
          totals[s.group][col].second += seconds * s.count;
        }
        std::printf("  %s\n", cells[i][kDispatcher].note.c_str());
      }
      for (const auto& [group, per_column] : totals) {
        if (group == "square") continue;
        std::printf("%-9s %-49s", group.c_str(),
                    str_cat("whole pass: ", std::lround(per_column[kTiled].first * 1e-9), " GFLOP").c_str());
        for (const auto& [flops, seconds] : per_column) {
          if (seconds == 0)
            std::printf(" %17s", "-");
          else
            std::printf(
                " %8.1f (%4.1f%%)%s", flops / seconds * 1e-9, 100 * flops / seconds * 1e-9 / table_peak,
                check_bound(title, str_cat(group, " whole pass"), flops / seconds * 1e-9, table_peak) ? "^"
                                                                                                      : " ");
        }
        std::printf("\n");
      }
    };

    std::printf("\ntiled kernel: %s; CLBlast tuned: %s\n", tiled_config.text().c_str(),
                tuned ? "yes" : "no tuned parameters (run convoy-worker --tune)");
    std::printf("'whole pass' rows: every shape of the model times how often one forward pass runs it\n");
    print_table("SGEMM GFLOP/s, wall clock, median of runs", peak, [](const Timing& t) { return t.wall; });
    if (cpu_device) {
      // On a machine shared with other work, wall-clock numbers measure the neighbours as much as the
      // code. FLOPs per CPU-second of this process, times the threads it runs on, estimate what the same
      // run would do with the cores to itself (OpenBLAS's spinning threads make its estimate low).
      print_table("SGEMM GFLOP/s per CPU time, i.e. FLOPs / (process CPU seconds / threads)", peak,
                  [&](const Timing& t) { return t.cpu / threads; });
    }
    if (!above_peak.empty()) {
      figures_sound = false;
      std::printf(
          "\nERROR: %zu figure(s) marked ^ are above the measured peak, which must bound them: "
          "the peak probe or these timings are wrong\n",
          above_peak.size());
      for (const std::string& line : above_peak) std::printf("  %s\n", line.c_str());
    }
    std::printf("\nload average at end: %s\n", load_average().c_str());
    std::printf("results %s\n", all_correct ? "verified against OpenBLAS" : "WRONG (see above)");
    if (!figures_sound) std::printf("figures NOT sound: see the ERROR lines above\n");
    return all_correct && figures_sound ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convoy-bench-sgemm: %s\n", e.what());
    return 1;
  }
}
