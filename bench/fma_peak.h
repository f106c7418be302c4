// The machine's FP32 peak, measured rather than taken from a data sheet: clocks under load, SIMD
// width and FMA pipes all show up in the number the SGEMM benchmark divides by.
#pragma once

#include <string>
#include <string_view>

#include "opencl/gemm/gemm.h"

namespace convoy::bench {

struct PeakMeasurement {
  double gflops = 0;  // best of several runs, wall clock
  // Best of the same runs as FLOPs / (process CPU seconds / threads): what the cores deliver while this
  // process is on them, whatever else shares the machine. CPU devices only (0 otherwise).
  double cpu_time_gflops = 0;
  std::string how;  // what ran: "OpenCL float16 × 12 chains × 64 work-items", "AVX-512 × 2 threads"
};

// An OpenCL kernel of independent float16 FMA chains (bench/fma_peak.cl) over all compute units.
PeakMeasurement opencl_fma_peak(const opencl::gemm::ClTarget& target, std::string_view kernel_source);

// CPU seconds this process (all threads) has used so far.
double process_cpu_seconds();

// The same on the host: independent FMA chains on AVX-512 registers (AVX2 when the CPU lacks AVX-512)
// on `threads` threads. gflops is 0 when the CPU has neither.
PeakMeasurement cpu_fma_peak(int threads);

}  // namespace convoy::bench
