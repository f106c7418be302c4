// Reductions over one or more dims: one work-group per output element. The work-items of a group
// stride over the reduced elements (the "inner" index space), then combine their partial results in
// local memory. Two-pass ops (VAR, STD, LOGSUMEXP) run the loop twice, the second with the first
// pass's result (mean, max) broadcast through local memory.
//
// meta: outer rank R, outer sizes (R), output strides (R), input outer strides (R),
//       inner rank Q, inner sizes (Q), input inner strides (Q).
// The op is a define: OP_SUM, OP_MEAN, OP_PROD, OP_MAX, OP_MIN, OP_ARGMAX, OP_ARGMIN, OP_ALL, OP_ANY,
// OP_VAR, OP_STD, OP_NORM (p in `p`), OP_LOGSUMEXP. With WITH_INDEX, max/min also write the index.
// ACC is the accumulation type (float, double or long); storage macros as in copy.cl.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define LD_PLAIN(p, i) ((p)[i])
#define LD_HALF(p, i) vload_half((i), (p))
#define LD_BF16(p, i) as_float(((uint)(p)[i]) << 16)
#define LD_BOOL(p, i) ((p)[i] != 0)
#define ST_PLAIN(p, i, v, T) ((p)[i] = (T)(v))
#define ST_INT(p, i, v, T) ((p)[i] = (T)(long)(v))
#define ST_HALF(p, i, v, T) vstore_half_rte((float)(v), (i), (p))
#define ST_BF16(p, i, v, T) ((p)[i] = float_to_bf16((float)(v)))
#define ST_BOOL(p, i, v, T) ((p)[i] = (uchar)((v) != 0))

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

#if defined(ACC_IS_INT)
#define IS_NAN(v) 0
#define ACC_LOWEST LONG_MIN
#define ACC_HIGHEST LONG_MAX
#else
#define IS_NAN(v) isnan(v)
#define ACC_LOWEST (-INFINITY)
#define ACC_HIGHEST INFINITY
#endif

#if defined(OP_MAX) || defined(OP_ARGMAX)
#define EXTREME_MAX 1
#endif
#if defined(OP_MAX) || defined(OP_MIN) || defined(OP_ARGMAX) || defined(OP_ARGMIN)
#define EXTREME 1
// (a, ia) wins over (b, ib): NaN beats everything, then the larger (smaller) value, then the lower index.
inline int wins(ACC a, long ia, ACC b, long ib) {
  if (IS_NAN(a) || IS_NAN(b)) {
    if (IS_NAN(a) && IS_NAN(b)) return ia < ib;
    return IS_NAN(a);
  }
#ifdef EXTREME_MAX
  if (a != b) return a > b;
#else
  if (a != b) return a < b;
#endif
  return ia < ib;
}
#endif

// Input element offset of inner index j.
inline long inner_offset(__global const long* inner, int q, long j) {
  long off = 0;
  for (int d = q - 1; d >= 0; --d) {
    long s = inner[d];
    off += (j % s) * inner[q + d];
    j /= s;
  }
  return off;
}

__kernel void reduce(__global OUT_T* out, long out_off,
#ifdef WITH_INDEX
                     __global long* index_out, long index_off,
#endif
                     __global const IN_T* in, long in_off, __global const long* meta, int meta_off, long count,
                     __local ACC* part, __local long* part_index, ACC p) {
  meta += meta_off;
  const int r = (int)meta[0];
  __global const long* outer_sizes = meta + 1;
  __global const long* out_strides = meta + 1 + r;
  __global const long* in_outer_strides = meta + 1 + 2 * r;
  __global const long* inner = meta + 1 + 3 * r + 1;  // inner sizes, then inner strides
  const int q = (int)meta[1 + 3 * r];

  long o = get_group_id(0);
  long oo = out_off, base = in_off;
  for (int d = r - 1; d >= 0; --d) {
    long s = outer_sizes[d];
    long idx = o % s;
    o /= s;
    oo += idx * out_strides[d];
    base += idx * in_outer_strides[d];
  }
#ifdef WITH_INDEX
  long io = index_off;
  {
    long o2 = get_group_id(0);
    for (int d = r - 1; d >= 0; --d) {
      long s = outer_sizes[d];
      io += (o2 % s) * out_strides[d];
      o2 /= s;
    }
  }
#endif
  const int lid = get_local_id(0);
  const int lsize = get_local_size(0);

  // ---- pass 1 ----
#if defined(EXTREME)
  ACC acc = 0;
  long acc_i = LONG_MAX;
  for (long j = lid; j < count; j += lsize) {
    ACC v = (ACC)IN_LD(in, base + inner_offset(inner, q, j));
    if (acc_i == LONG_MAX || wins(v, j, acc, acc_i)) {
      acc = v;
      acc_i = j;
    }
  }
  part[lid] = acc;
  part_index[lid] = acc_i;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) {
      long bi = part_index[lid + s];
      if (bi != LONG_MAX && (part_index[lid] == LONG_MAX || wins(part[lid + s], bi, part[lid], part_index[lid]))) {
        part[lid] = part[lid + s];
        part_index[lid] = bi;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) {
#if defined(OP_ARGMAX) || defined(OP_ARGMIN)
    OUT_ST(out, oo, part_index[0], OUT_T);
#else
    OUT_ST(out, oo, part[0], OUT_T);
#ifdef WITH_INDEX
    index_out[io] = part_index[0];
#endif
#endif
  }
#else  // not EXTREME
#if defined(OP_PROD)
  ACC acc = (ACC)1;
#elif defined(OP_ALL)
  ACC acc = (ACC)1;
#elif defined(OP_LOGSUMEXP)
  ACC acc = ACC_LOWEST;
#elif defined(OP_NORM)
  ACC acc = (p == INFINITY) ? (ACC)0 : ((p == -INFINITY) ? (ACC)INFINITY : (ACC)0);
#else
  ACC acc = (ACC)0;
#endif
  for (long j = lid; j < count; j += lsize) {
    ACC v = (ACC)IN_LD(in, base + inner_offset(inner, q, j));
#if defined(OP_PROD)
    acc *= v;
#elif defined(OP_ALL)
    acc = acc && (v != (ACC)0);
#elif defined(OP_ANY)
    acc = acc || (v != (ACC)0);
#elif defined(OP_LOGSUMEXP)
    acc = (IS_NAN(v) || v > acc) ? v : acc;
#elif defined(OP_NORM)
    ACC a = fabs(v);
    if (p == INFINITY) acc = (IS_NAN(a) || a > acc) ? a : acc;
    else if (p == -INFINITY) acc = (IS_NAN(a) || a < acc) ? a : acc;
    else if (p == (ACC)0) acc += (v != (ACC)0);
    else if (p == (ACC)1) acc += a;
    else if (p == (ACC)2) acc += a * a;
    else acc += pow(a, p);
#else  // SUM, MEAN, VAR/STD first pass (the sum)
    acc += v;
#endif
  }
  part[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) {
      ACC a = part[lid], b = part[lid + s];
#if defined(OP_PROD)
      part[lid] = a * b;
#elif defined(OP_ALL)
      part[lid] = a && b;
#elif defined(OP_ANY)
      part[lid] = a || b;
#elif defined(OP_LOGSUMEXP)
      part[lid] = (IS_NAN(b) || b > a) ? b : a;
#elif defined(OP_NORM)
      if (p == INFINITY) part[lid] = (IS_NAN(b) || b > a) ? b : a;
      else if (p == -INFINITY) part[lid] = (IS_NAN(b) || b < a) ? b : a;
      else part[lid] = a + b;
#else
      part[lid] = a + b;
#endif
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  ACC total = part[0];

#if defined(OP_VAR) || defined(OP_STD) || defined(OP_LOGSUMEXP)
  // ---- pass 2: squared deviations from the mean, or exp(x - max) ----
  barrier(CLK_LOCAL_MEM_FENCE);
#if defined(OP_LOGSUMEXP)
  ACC center = (isinf(total)) ? (ACC)0 : total;
#else
  ACC center = total / (ACC)count;
#endif
  ACC acc2 = (ACC)0;
  for (long j = lid; j < count; j += lsize) {
    ACC v = (ACC)IN_LD(in, base + inner_offset(inner, q, j));
#if defined(OP_LOGSUMEXP)
    acc2 += exp(v - center);
#else
    ACC dv = v - center;
    acc2 += dv * dv;
#endif
  }
  part[lid] = acc2;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  ACC total2 = part[0];
#endif

  if (lid == 0) {
    ACC result;
#if defined(OP_MEAN)
    result = total / (ACC)count;
#elif defined(OP_VAR)
    result = total2 / ((ACC)count - p);
#elif defined(OP_STD)
    result = sqrt(total2 / ((ACC)count - p));
#elif defined(OP_LOGSUMEXP)
    result = (IS_NAN(total) || isinf(total)) ? (IS_NAN(total) ? total : (total > 0 ? total : log(total2) + center)) : log(total2) + center;
#elif defined(OP_NORM)
    if (p == INFINITY || p == -INFINITY || p == (ACC)0 || p == (ACC)1) result = total;
    else if (p == (ACC)2) result = sqrt(total);
    else result = pow(total, (ACC)1 / p);
#else
    result = total;
#endif
    OUT_ST(out, oo, result, OUT_T);
  }
#endif
}

// Inclusive prefix sum along one dim: one work-item per row (every index of the other dims).
// meta: rank R of the other dims, sizes (R), input strides (R), output strides (R).
__kernel void cumsum(__global OUT_T* out, long out_off, __global const IN_T* in, long in_off,
                     __global const long* meta, int meta_off, long n, long in_step, long out_step) {
  meta += meta_off;
  const int r = (int)meta[0];
  long row = get_global_id(0);
  long ib = in_off, ob = out_off;
  for (int d = r - 1; d >= 0; --d) {
    long s = meta[1 + d];
    long idx = row % s;
    row /= s;
    ib += idx * meta[1 + r + d];
    ob += idx * meta[1 + 2 * r + d];
  }
  ACC acc = 0;
  for (long j = 0; j < n; ++j) {
    acc += (ACC)IN_LD(in, ib + j * in_step);
    OUT_ST(out, ob + j * out_step, acc, OUT_T);
  }
}
