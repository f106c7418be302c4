// softmax / log_softmax over one dim. Three passes over each row (every index of the other dims): max,
// sum of exp(x - max), then the outputs.
// softmax: one work-group per row, the passes split over its work-items with tree reductions (GPUs).
// softmax_rows: one work-item per row (CPUs, see nn_rows_layout): on PoCL a work-group per row of 128
// spent most of its time in barriers and work-group scheduling.
// meta: rank R of the other dims, their sizes (R), input strides (R), output strides (R); the row has
// `n` elements `in_step` / `out_step` apart. Accumulation in ACC (float or double).
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
#ifndef IN_T
#define IN_T float
#define IN_LD LD_PLAIN
#endif
#ifndef OUT_T
#define OUT_T float
#define OUT_ST ST_PLAIN
#endif

__kernel void softmax(__global OUT_T* out, long out_off, __global const IN_T* in, long in_off,
                      __global const long* meta, int meta_off, long n, long in_step, long out_step,
                      __local ACC* part) {
  meta += meta_off;
  const int r = (int)meta[0];
  long row = get_group_id(0);
  long ib = in_off, ob = out_off;
  for (int d = r - 1; d >= 0; --d) {
    long s = meta[1 + d];
    long idx = row % s;
    row /= s;
    ib += idx * meta[1 + r + d];
    ob += idx * meta[1 + 2 * r + d];
  }
  const int lid = get_local_id(0);
  const int lsize = get_local_size(0);

  ACC m = -INFINITY;
  for (long j = lid; j < n; j += lsize) {
    ACC v = (ACC)IN_LD(in, ib + j * in_step);
    m = (isnan(v) || v > m) ? v : m;
  }
  part[lid] = m;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) {
      ACC a = part[lid], b = part[lid + s];
      part[lid] = (isnan(b) || b > a) ? b : a;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const ACC row_max = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);

  ACC sum = 0;
  for (long j = lid; j < n; j += lsize) sum += exp((ACC)IN_LD(in, ib + j * in_step) - row_max);
  part[lid] = sum;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const ACC total = part[0];
#ifdef LOG_SOFTMAX
  const ACC log_total = log(total);
  for (long j = lid; j < n; j += lsize) {
    ACC v = (ACC)IN_LD(in, ib + j * in_step) - row_max - log_total;
    OUT_ST(out, ob + j * out_step, v, OUT_T);
  }
#else
  const ACC inv = (ACC)1 / total;
  for (long j = lid; j < n; j += lsize) {
    ACC v = exp((ACC)IN_LD(in, ib + j * in_step) - row_max) * inv;
    OUT_ST(out, ob + j * out_step, v, OUT_T);
  }
#endif
}

__kernel void softmax_rows(__global OUT_T* out, long out_off, __global const IN_T* in, long in_off,
                           __global const long* meta, int meta_off, long n, long in_step, long out_step,
                           long rows) {
  meta += meta_off;
  const int r = (int)meta[0];
  long row = get_global_id(0);
  if (row >= rows) return;
  long ib = in_off, ob = out_off;
  for (int d = r - 1; d >= 0; --d) {
    long s = meta[1 + d];
    long idx = row % s;
    row /= s;
    ib += idx * meta[1 + r + d];
    ob += idx * meta[1 + 2 * r + d];
  }
  ACC m = -INFINITY;
  for (long j = 0; j < n; ++j) {
    ACC v = (ACC)IN_LD(in, ib + j * in_step);
    m = (isnan(v) || v > m) ? v : m;
  }
  ACC sum = 0;
#ifdef STORE_EXP
  // Output and accumulation are both float: write exp(x - max) once, then scale it in place.
  for (long j = 0; j < n; ++j) {
    const ACC e = exp((ACC)IN_LD(in, ib + j * in_step) - m);
    out[ob + j * out_step] = e;
    sum += e;
  }
  const ACC inv = (ACC)1 / sum;
  for (long j = 0; j < n; ++j) out[ob + j * out_step] *= inv;
#else
  for (long j = 0; j < n; ++j) sum += exp((ACC)IN_LD(in, ib + j * in_step) - m);
#ifdef LOG_SOFTMAX
  const ACC log_total = log(sum);
  for (long j = 0; j < n; ++j) {
    ACC v = (ACC)IN_LD(in, ib + j * in_step) - m - log_total;
    OUT_ST(out, ob + j * out_step, v, OUT_T);
  }
#else
  const ACC inv = (ACC)1 / sum;
  for (long j = 0; j < n; ++j) {
    ACC v = exp((ACC)IN_LD(in, ib + j * in_step) - m) * inv;
    OUT_ST(out, ob + j * out_step, v, OUT_T);
  }
#endif
#endif
}
