// The machine's FP32 peak, measured rather than taken from a data sheet: clocks under load, SIMD
// width and FMA pipes all show up in the number the SGEMM benchmark divides by. The probes are
// cross-checked against a theoretical bound (cores × FMA ports × lanes × 2 × measured clock): a probe
// or a GEMM above that bound means a clock, a port count or a timing is wrong.
#pragma once

#include <string>
#include <string_view>

#include "opencl/gemm/gemm.h"

namespace convoy::bench {

struct PeakMeasurement {
  double gflops = 0;  // best of several runs, wall clock
  // Best of the same runs as FLOPs per CPU-second of the threads doing them, times the threads: what the
  // cores deliver while this process is on them, whatever else shares the machine. Never below the wall
  // figure of a run using at most that many CPUs. CPU devices only (0 otherwise).
  double cpu_time_gflops = 0;
  std::string how;  // what ran: "OpenCL float16 FMA, 12 chains × 16 work-items", "AVX-512 FMA, ..."
};

// An OpenCL kernel of independent float16 FMA chains (bench/fma_peak.cl) over all compute units.
PeakMeasurement opencl_fma_peak(const opencl::gemm::ClTarget& target, std::string_view kernel_source);

// CPU seconds this process (all threads) has used so far.
double process_cpu_seconds();

// The same on the host: independent FMA chains on AVX-512 registers (AVX2 when the CPU lacks AVX-512)
// on `threads` threads, each timed by its own CPU clock. gflops is 0 when the CPU has neither.
PeakMeasurement cpu_fma_peak(int threads);

// The host's theoretical FP32 peak from its measured clock. The clock is timed per CPU-second of the
// measuring thread, so other load on the machine does not lower it.
struct TheoreticalPeak {
  int cores = 0;             // physical cores of the online CPUs (SMT siblings count once)
  int fma_ports = 0;         // FMA instructions a core can start per cycle (not discoverable: an assumption)
  int lanes = 0;             // FP32 lanes per FMA: 16 with AVX-512, 8 with AVX2, 0 when neither
  double clock_ghz = 0;      // a dependent chain of 3-cycle integer multiplies
  double fma_clock_ghz = 0;  // a dependent chain of FMAs at the widest width, taken as 4-cycle latency
  // cores × fma_ports × lanes × 2 × the larger clock: nothing this CPU runs can do more.
  double gflops() const;
  std::string text() const;
};
TheoreticalPeak cpu_theoretical_peak(int fma_ports);

}  // namespace convoy::bench
