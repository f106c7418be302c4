// FMA-throughput probes: see fma_peak.h.
#include "bench/fma_peak.h"

#include <immintrin.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::bench {
namespace {

using opencl::cl_check;
using Clock = std::chrono::steady_clock;

// Independent accumulators: at least FMA latency × pipes (4 cycles × 2 on AVX-512 server cores, 8) with
// margin for 5-cycle cores. AVX2 has 16 vector registers, so it gets fewer.
constexpr int kAvx512Chains = 16;
constexpr int kAvx2Chains = 12;
constexpr int kOpenclChains = 12;  // float16 each: 12 zmm registers per work-item

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Each returns a checksum so the loop cannot be removed.
template <int kChains>
__attribute__((target("avx512f"))) float chains_avx512(long iterations) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1e-3f * c);
  const __m512 m = _mm512_set1_ps(0.999999f);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 32
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, m);
  }
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

template <int kChains>
__attribute__((target("avx2,fma"))) float chains_avx2(long iterations) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(1e-3f * c);
  const __m256 m = _mm256_set1_ps(0.999999f);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 32
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, m);
  }
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

// Clock probes: a dependent chain of instructions of known latency, timed by the thread's own CPU clock.
// Integer multiply has a 3-cycle latency on every x86 core since Nehalem and Zen. (A chain of adds
// does not time the clock: Golden Cove and later fold add-immediate chains at rename.)
void imul_chain(long iterations) {
  long x = 3;
  const long one = 1;
  for (long i = 0; i < iterations; ++i)
    asm volatile(
        "imul %1, %0\n\timul %1, %0\n\timul %1, %0\n\timul %1, %0\n\t"
        "imul %1, %0\n\timul %1, %0\n\timul %1, %0\n\timul %1, %0"
        : "+r"(x)
        : "r"(one));
}
constexpr int kImulsPerIteration = 8, kImulLatency = 3;

// FMA latency is 4 cycles on Skylake-SP and later Intel cores and on Zen 4/5: the clock while the FMA
// units run, which AVX-512 licences may hold below the integer clock.
__attribute__((target("avx512f"))) void fma_chain_avx512(long iterations) {
  __m512 a = _mm512_set1_ps(1.0f);
  const __m512 m = _mm512_set1_ps(0.999999f);
  for (long i = 0; i < iterations; ++i)
    asm volatile(
        "vfmadd213ps %1, %1, %0\n\tvfmadd213ps %1, %1, %0\n\t"
        "vfmadd213ps %1, %1, %0\n\tvfmadd213ps %1, %1, %0"
        : "+v"(a)
        : "v"(m));
}
__attribute__((target("avx2,fma"))) void fma_chain_avx2(long iterations) {
  __m256 a = _mm256_set1_ps(1.0f);
  const __m256 m = _mm256_set1_ps(0.999999f);
  for (long i = 0; i < iterations; ++i)
    asm volatile(
        "vfmadd213ps %1, %1, %0\n\tvfmadd213ps %1, %1, %0\n\t"
        "vfmadd213ps %1, %1, %0\n\tvfmadd213ps %1, %1, %0"
        : "+x"(a)
        : "x"(m));
}
constexpr int kFmasPerIteration = 4, kFmaLatency = 4;

// Best (highest) rate of `run(iterations)` in instructions per CPU-nanosecond, i.e. GHz once divided
// by the latency, over a few attempts.
template <typename Run>
double best_rate(Run run, long iterations, int per_iteration) {
  double best = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const double start = thread_cpu_seconds();
    run(iterations);
    const double seconds = thread_cpu_seconds() - start;
    if (seconds > 0) best = std::max(best, double(per_iteration) * double(iterations) / seconds * 1e-9);
  }
  return best;
}

// Distinct (package, core) pairs among the online CPUs; the online count where sysfs does not say.
int physical_cores() {
  const long configured = sysconf(_SC_NPROCESSORS_CONF);
  std::set<std::pair<int, int>> cores;
  for (long cpu = 0; cpu < configured; ++cpu) {
    const std::string dir = str_cat("/sys/devices/system/cpu/cpu", cpu);
    int online = 1;
    if (std::ifstream in(dir + "/online"); in) in >> online;
    if (!online) continue;
    int package = -1, core = -1;
    std::ifstream(dir + "/topology/physical_package_id") >> package;
    std::ifstream(dir + "/topology/core_id") >> core;
    if (package < 0 || core < 0) return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    cores.insert({package, core});
  }
  return cores.empty() ? static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) : static_cast<int>(cores.size());
}

}  // namespace

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

PeakMeasurement cpu_fma_peak(int threads) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512 && !avx2) return {0, 0, "no AVX2/AVX-512 on this CPU"};
  const int lanes = avx512 ? 16 : 8;
  const int chains = avx512 ? kAvx512Chains : kAvx2Chains;
  const long iterations = 20'000'000;  // 40–80 ms per thread at 2–4 GHz
  const double flops_per_thread = 2.0 * lanes * chains * double(iterations);
  double best = 0, best_per_cpu = 0;
  std::atomic<float> sink{0};
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<double> cpu_seconds(threads);
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const double cpu_start = thread_cpu_seconds();
        const float checksum =
            avx512 ? chains_avx512<kAvx512Chains>(iterations) : chains_avx2<kAvx2Chains>(iterations);
        cpu_seconds[t] = thread_cpu_seconds() - cpu_start;
        sink = sink + checksum;
      });
    for (auto& th : pool) th.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, flops_per_thread * threads / seconds * 1e-9);
    // Each thread's rate on the CPU it ran on, summed: the machine's rate with the cores to itself.
    double per_cpu = 0;
    for (double s : cpu_seconds) per_cpu += s > 0 ? flops_per_thread / s * 1e-9 : 0;
    best_per_cpu = std::max(best_per_cpu, per_cpu);
  }
  return {best, best_per_cpu,
          str_cat(avx512 ? "AVX-512" : "AVX2", " FMA, ", chains, " chains × ", threads, " threads")};
}

double TheoreticalPeak::gflops() const {
  return double(cores) * fma_ports * lanes * 2 * std::max(clock_ghz, fma_clock_ghz);
}

std::string TheoreticalPeak::text() const {
  if (lanes == 0) return "no AVX2/AVX-512 on this CPU: no theoretical bound";
  char clocks[160];
  std::snprintf(clocks, sizeof(clocks), "%.2f GHz (integer-multiply chain; %.2f GHz in a %s FMA chain)",
                std::max(clock_ghz, fma_clock_ghz), fma_clock_ghz, lanes == 16 ? "512-bit" : "256-bit");
  char total[32];
  std::snprintf(total, sizeof(total), "%.1f", gflops());
  return str_cat(cores, " cores × ", fma_ports, " FMA ports × ", lanes, " lanes × 2 FLOP × ", clocks, " = ",
                 total, " GFLOP/s");
}

TheoreticalPeak cpu_theoretical_peak(int fma_ports) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  TheoreticalPeak peak;
  peak.cores = physical_cores();
  peak.fma_ports = fma_ports;
  peak.lanes = avx512 ? 16 : avx2 ? 8 : 0;
  // ~60 ms per attempt at 4 GHz.
  peak.clock_ghz = best_rate(imul_chain, 10'000'000, kImulsPerIteration) * kImulLatency;
  if (avx512)
    peak.fma_clock_ghz = best_rate(fma_chain_avx512, 10'000'000, kFmasPerIteration) * kFmaLatency;
  else if (avx2)
    peak.fma_clock_ghz = best_rate(fma_chain_avx2, 10'000'000, kFmasPerIteration) * kFmaLatency;
  return peak;
}

PeakMeasurement opencl_fma_peak(const opencl::gemm::ClTarget& target, std::string_view kernel_source) {
  cl_device_type type = 0;
  cl_uint units = 0;
  cl_check(clGetDeviceInfo(target.device, CL_DEVICE_TYPE, sizeof(type), &type, nullptr), "clGetDeviceInfo");
  cl_check(clGetDeviceInfo(target.device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(units), &units, nullptr),
           "clGetDeviceInfo");
  const bool cpu = type & CL_DEVICE_TYPE_CPU;
  // CPU: a few work-items per core, one per work-group, each filling the SIMD unit by itself.
  // GPU: enough work-groups of 64 to fill every unit many times over.
  const size_t items = cpu ? size_t{units} * 8 : size_t{units} * 64 * 32;
  const size_t local = cpu ? 1 : 64;
  // CPU: ~12 GFLOP per run, 25–50 ms on two AVX-512 cores, long enough to hide the launch.
  const int iterations = cpu ? 2'000'000 : 20'000;

  const char* text = kernel_source.data();
  const size_t length = kernel_source.size();
  cl_int status = CL_SUCCESS;
  cl_program program = clCreateProgramWithSource(target.context, 1, &text, &length, &status);
  cl_check(status, "clCreateProgramWithSource", "fma_peak.cl");
  const std::string options = str_cat("-DCHAINS=", kOpenclChains);
  cl_check(clBuildProgram(program, 1, &target.device, options.c_str(), nullptr, nullptr), "clBuildProgram",
           "fma_peak.cl");
  cl_kernel kernel = clCreateKernel(program, "fma_peak", &status);
  cl_check(status, "clCreateKernel", "fma_peak");
  cl_mem out = clCreateBuffer(target.context, CL_MEM_WRITE_ONLY, items * sizeof(float), nullptr, &status);
  cl_check(status, "clCreateBuffer", "fma_peak output");
  const float multiplier = 0.999999f;
  cl_check(clSetKernelArg(kernel, 0, sizeof(int), &iterations), "clSetKernelArg");
  cl_check(clSetKernelArg(kernel, 1, sizeof(float), &multiplier), "clSetKernelArg");
  cl_check(clSetKernelArg(kernel, 2, sizeof(cl_mem), &out), "clSetKernelArg");
  double best = 0, best_per_cpu = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {  // the first run includes PoCL's kernel specialisation
    const double cpu_start = process_cpu_seconds();
    const auto start = Clock::now();
    cl_check(clEnqueueNDRangeKernel(target.queue, kernel, 1, nullptr, &items, &local, 0, nullptr, nullptr),
             "clEnqueueNDRangeKernel", "fma_peak");
    cl_check(clFinish(target.queue), "clFinish", "fma_peak");
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_seconds = process_cpu_seconds() - cpu_start;
    const double flops = 2.0 * 16 * kOpenclChains * double(iterations) * items;
    if (attempt == 0) continue;
    best = std::max(best, flops / seconds * 1e-9);
    if (cpu) best_per_cpu = std::max(best_per_cpu, flops / (cpu_seconds / units) * 1e-9);
  }
  clReleaseMemObject(out);
  clReleaseKernel(kernel);
  clReleaseProgram(program);
  return {best, best_per_cpu,
          str_cat("OpenCL float16 FMA, ", kOpenclChains, " chains × ", items, " work-items")};
}

}  // namespace convoy::bench
