// layer_norm over rows: one work-group per row of `n` contiguous elements; mean and variance (two
// passes over the row), then (x - mean) * rstd * weight + bias, weight and bias over the row (HAS_WEIGHT,
// HAS_BIAS). Statistics accumulate in ACC (float or double); storage macros as in copy.cl. (The
// registry's normalisation ops use nn_norm.cl; this kernel serves the fused transformer layers.)
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define LD_PLAIN(p, i) ((p)[i])
#define LD_HALF(p, i) vload_half((i), (p))
#define LD_BF16(p, i) as_float(((uint)(p)[i]) << 16)
#define ST_PLAIN(p, i, v, T) ((p)[i] = (T)(v))
#define ST_HALF(p, i, v, T) vstore_half_rte((float)(v), (i), (p))
#define ST_BF16(p, i, v, T) ((p)[i] = float_to_bf16((float)(v)))

inline ushort float_to_bf16(float f) {
  uint b = as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (ushort)((b >> 16) | 0x40u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (ushort)(b >> 16);
}

#ifndef ACC
#define ACC float
#endif
#ifndef T
#define T float
#define T_LD LD_PLAIN
#define T_ST ST_PLAIN
#endif
#ifndef W_T
#define W_T float
#define W_LD LD_PLAIN
#endif

// Sum over the work-group of each item's `v`; every item gets the total.
inline ACC group_sum(ACC v, __local ACC* part) {
  const int lid = get_local_id(0);
  part[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = get_local_size(0) / 2; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  ACC total = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

__kernel void layer_norm(__global T* out, long out_off, __global const T* in, long in_off,
                         __global const W_T* weight, long w_off, __global const W_T* bias, long b_off, long n, ACC eps,
                         __local ACC* part) {
  const long row = get_group_id(0);
  const int lid = get_local_id(0), lsize = get_local_size(0);
  const long base = in_off + row * n, obase = out_off + row * n;
  ACC s = 0;
  for (long j = lid; j < n; j += lsize) s += (ACC)T_LD(in, base + j);
  const ACC mean = group_sum(s, part) / (ACC)n;
  ACC q = 0;
  for (long j = lid; j < n; j += lsize) {
    ACC d = (ACC)T_LD(in, base + j) - mean;
    q += d * d;
  }
  const ACC rstd = (ACC)1 / sqrt(group_sum(q, part) / (ACC)n + eps);
  for (long j = lid; j < n; j += lsize) {
    ACC v = ((ACC)T_LD(in, base + j) - mean) * rstd;
#ifdef HAS_WEIGHT
    v *= (ACC)W_LD(weight, w_off + j);
#endif
#ifdef HAS_BIAS
    v += (ACC)W_LD(bias, b_off + j);
#endif
    T_ST(out, obase + j, v, T);
  }
}
