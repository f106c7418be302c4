// FMA-throughput probe: each work-item runs CHAINS independent chains of float16 FMAs, enough to cover
// the FMA latency of every pipe (on AVX-512 CPUs: 2 pipes × 4 cycles = 8 chains in flight), so the
// device's floating-point peak, not latency, bounds the run. The result is written out so the
// compiler cannot drop the work.
#ifndef CHAINS
#define CHAINS 12
#endif

__kernel void fma_peak(const int iterations, const float multiplier, __global float* out) {
  float16 acc[CHAINS];
  const float seed = (float)get_global_id(0) * 1e-7f;
#pragma unroll
  for (int c = 0; c < CHAINS; ++c) acc[c] = (float16)(seed + c * 1e-3f);
  // acc = acc·m + m with m slightly below 1 converges to m/(1-m): no overflow, no denormals.
  const float16 m = (float16)(multiplier);
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int c = 0; c < CHAINS; ++c) acc[c] = fma(acc[c], m, m);
  }
  float16 sum = acc[0];
#pragma unroll
  for (int c = 1; c < CHAINS; ++c) sum += acc[c];
  out[get_global_id(0)] = sum.s0 + sum.s1 + sum.s2 + sum.s3 + sum.s4 + sum.s5 + sum.s6 + sum.s7 + sum.s8 +
                          sum.s9 + sum.sa + sum.sb + sum.sc + sum.sd + sum.se + sum.sf;
}
