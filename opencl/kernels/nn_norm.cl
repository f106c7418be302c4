// Normalisation kernels (opencl/ops/normalization.cpp). Inputs are contiguous (the op copies others).
//
//   row_norm           one work-group per row of `n` contiguous elements: mean, then the biased variance
//                      of the deviations (two passes, as the reference), then the affine. layer_norm's
//                      affine is per element of the row; with AFFINE_CHANNEL (group_norm, instance_norm)
//                      a row is one (sample, group) and the affine is per channel, `inner` elements each.
//   batch_norm_train   one work-group per channel: the batch's own statistics over (N, inner), then
//                      y = x·α + β with α = rstd·weight, β = bias − mean·α (training=True forward).
//   bn_params          [scale; shift] per channel from device-resident weight, bias and running stats.
//   channel_affine     y = x·scale[c] + shift[c] over (outer, C, inner): inference batch_norm, with
//                      scale and shift computed on the host (model constants) or by bn_params.
// Statistics accumulate in ACC (float, or double for float64); X_T and OUT_T are the storage types of
// input and output (one dtype), W_T that of the parameters. Storage macros as in copy.cl.
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
#ifndef X_T
#define X_T float
#define X_LD LD_PLAIN
#endif
#ifndef OUT_T
#define OUT_T float
#define OUT_ST ST_PLAIN
#endif
#ifndef W_T
#define W_T float
#define W_LD LD_PLAIN
#endif

// The sum over the work-group of each item's `v`; every item gets it. Local size: a power of two.
inline ACC group_sum(ACC v, __local ACC* part) {
  const int lid = get_local_id(0);
  part[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = get_local_size(0) / 2; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const ACC total = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

__kernel void row_norm(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                       __global const W_T* weight, long w_off, __global const W_T* bias, long b_off, long n,
                       long inner, long channels_per_group, long groups, ACC eps, __local ACC* part) {
  const long row = get_group_id(0);
  const int lid = get_local_id(0), lsize = get_local_size(0);
  const long base = x_off + row * n, obase = out_off + row * n;
  ACC s = 0;
  for (long j = lid; j < n; j += lsize) s += (ACC)X_LD(x, base + j);
  const ACC mean = group_sum(s, part) / (ACC)n;
  ACC q = 0;
  for (long j = lid; j < n; j += lsize) {
    const ACC d = (ACC)X_LD(x, base + j) - mean;
    q += d * d;
  }
  const ACC rstd = (ACC)1 / sqrt(group_sum(q, part) / (ACC)n + eps);
#ifdef AFFINE_CHANNEL
  const long first_channel = (row % groups) * channels_per_group;
#endif
  for (long j = lid; j < n; j += lsize) {
#ifdef AFFINE_CHANNEL
    const long p = first_channel + j / inner;
#else
    const long p = j;
#endif
    ACC v = ((ACC)X_LD(x, base + j) - mean) * rstd;
#ifdef HAS_WEIGHT
    v *= (ACC)W_LD(weight, w_off + p);
#endif
#ifdef HAS_BIAS
    v += (ACC)W_LD(bias, b_off + p);
#endif
    OUT_ST(out, obase + j, v, OUT_T);
  }
}

__kernel void batch_norm_train(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                               __global const W_T* weight, long w_off, __global const W_T* bias, long b_off,
                               long N, long C, long inner, ACC eps, __local ACC* part) {
  const long c = get_group_id(0);
  const int lid = get_local_id(0), lsize = get_local_size(0);
  const long count = N * inner;
  ACC s = 0;
  for (long j = lid; j < count; j += lsize)
    s += (ACC)X_LD(x, x_off + ((j / inner) * C + c) * inner + j % inner);
  const ACC mean = group_sum(s, part) / (ACC)count;
  ACC q = 0;
  for (long j = lid; j < count; j += lsize) {
    const ACC d = (ACC)X_LD(x, x_off + ((j / inner) * C + c) * inner + j % inner) - mean;
    q += d * d;
  }
  const ACC rstd = (ACC)1 / sqrt(group_sum(q, part) / (ACC)count + eps);
  ACC alpha = rstd;
#ifdef HAS_WEIGHT
  alpha *= (ACC)W_LD(weight, w_off + c);
#endif
  ACC beta = -mean * alpha;
#ifdef HAS_BIAS
  beta += (ACC)W_LD(bias, b_off + c);
#endif
  for (long j = lid; j < count; j += lsize) {
    const long idx = ((j / inner) * C + c) * inner + j % inner;
    OUT_ST(out, out_off + idx, (ACC)X_LD(x, x_off + idx) * alpha + beta, OUT_T);
  }
}

// global: (C). params: [scale(C); shift(C)].
__kernel void bn_params(__global ACC* params, long p_off, __global const W_T* weight, long w_off,
                        __global const W_T* bias, long b_off, __global const W_T* mean, long m_off,
                        __global const W_T* var, long v_off, long C, ACC eps) {
  const long c = get_global_id(0);
  ACC scale = (ACC)1 / sqrt((ACC)W_LD(var, v_off + c) + eps);
#ifdef HAS_WEIGHT
  scale *= (ACC)W_LD(weight, w_off + c);
#endif
  ACC shift = -(ACC)W_LD(mean, m_off + c) * scale;
#ifdef HAS_BIAS
  shift += (ACC)W_LD(bias, b_off + c);
#endif
  params[p_off + c] = scale;
  params[p_off + C + c] = shift;
}

// global: (inner, outer·C).
__kernel void channel_affine(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                             __global const ACC* params, long p_off, long C, long inner) {
  const long i = get_global_id(0), oc = get_global_id(1);
  const long c = oc % C;
  const long idx = oc * inner + i;
  const ACC v = (ACC)X_LD(x, x_off + idx) * params[p_off + c] + params[p_off + C + c];
  OUT_ST(out, out_off + idx, v, OUT_T);
}
