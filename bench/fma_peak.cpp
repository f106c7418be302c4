// FMA-throughput probes: see fma_peak.h.
#include "bench/fma_peak.h"

#include <immintrin.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::bench {
namespace {

using opencl::cl_check;
using Clock = std::chrono::steady_clock;

constexpr int kChains = 12;  // independent accumulators: ≥ FMA latency × pipes on current x86 cores

// Each returns a checksum so the loop cannot be removed.
__attribute__((target("avx512f"))) float chains_avx512(long iterations) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1e-3f * c);
  const __m512 m = _mm512_set1_ps(0.999999f);
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, m);
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

__attribute__((target("avx2,fma"))) float chains_avx2(long iterations) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(1e-3f * c);
  const __m256 m = _mm256_set1_ps(0.999999f);
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, m);
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
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
  const long iterations = 20'000'000;  // ~0.1 s per thread at 2–4 GHz
  double best = 0, best_per_cpu = 0;
  std::atomic<float> sink{0};
  for (int attempt = 0; attempt < 5; ++attempt) {
    const double cpu_start = process_cpu_seconds();
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back(
          [&] { sink = sink + (avx512 ? chains_avx512(iterations) : chains_avx2(iterations)); });
    for (auto& th : pool) th.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_seconds = process_cpu_seconds() - cpu_start;
    const double flops = 2.0 * lanes * kChains * iterations * threads;
    best = std::max(best, flops / seconds * 1e-9);
    best_per_cpu = std::max(best_per_cpu, flops / (cpu_seconds / threads) * 1e-9);
  }
  return {best, best_per_cpu,
          str_cat(avx512 ? "AVX-512" : "AVX2", " FMA, ", kChains, " chains × ", threads, " threads")};
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
  const int iterations = cpu ? 200'000 : 20'000;

  const char* text = kernel_source.data();
  const size_t length = kernel_source.size();
  cl_int status = CL_SUCCESS;
  cl_program program = clCreateProgramWithSource(target.context, 1, &text, &length, &status);
  cl_check(status, "clCreateProgramWithSource", "fma_peak.cl");
  const std::string options = str_cat("-DCHAINS=", kChains);
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
    const double flops = 2.0 * 16 * kChains * double(iterations) * items;
    if (attempt == 0) continue;
    best = std::max(best, flops / seconds * 1e-9);
    if (cpu) best_per_cpu = std::max(best_per_cpu, flops / (cpu_seconds / units) * 1e-9);
  }
  clReleaseMemObject(out);
  clReleaseKernel(kernel);
  clReleaseProgram(program);
  return {best, best_per_cpu, str_cat("OpenCL float16 FMA, ", kChains, " chains × ", items, " work-items")};
}

}  // namespace convoy::bench
