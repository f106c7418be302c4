// Pooling kernels (opencl/ops/pooling.cpp): one output element per work-item, global (Wo, Ho, N·C),
// the output contiguous. The input is read through its strides as (N, C, H, W); 1-d pools are 2-d
// ones with H = 1. Window bounds, divisors and NaN handling follow PyTorch's CPU kernels (and the
// reference kernels in runtime/ops/pooling.cpp) exactly, including the order of the sums.
//
// Metadata (PoolMeta in pooling.cpp): N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw,
// input strides n, c, h, w, count_include_pad, divisor_override (0: none).
// Storage macros as in copy.cl; CT is float or double. WITH_INDICES adds an int64 output of the flat
// index (h·W + w) of each maximum.
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

#ifndef CT
#define CT float
#endif
#ifndef X_T
#define X_T float
#define X_LD LD_PLAIN
#endif
#ifndef OUT_T
#define OUT_T float
#define OUT_ST ST_PLAIN
#endif

#define P_N 0
#define P_C 1
#define P_H 2
#define P_W 3
#define P_HO 4
#define P_WO 5
#define P_KH 6
#define P_KW 7
#define P_SH 8
#define P_SW 9
#define P_PH 10
#define P_PW 11
#define P_DH 12
#define P_DW 13
#define P_XS 14  // strides n, c, h, w
#define P_INCLUDE_PAD 18
#define P_DIVISOR 19

#ifdef WITH_INDICES
#define INDEX_ARGS , __global long *indices, long indices_off
#else
#define INDEX_ARGS
#endif

inline long plane_base(__global const long* meta, long nc) {
  const long C = meta[P_C];
  return (nc / C) * meta[P_XS] + (nc % C) * meta[P_XS + 1];
}

__kernel void max_pool(__global OUT_T* out, long out_off INDEX_ARGS, __global const X_T* x, long x_off,
                       __global const long* meta, int meta_off) {
  meta += meta_off;
  const long ow = get_global_id(0), oh = get_global_id(1), nc = get_global_id(2);
  const long H = meta[P_H], W = meta[P_W], Ho = meta[P_HO], Wo = meta[P_WO];
  const long dh = meta[P_DH], dw = meta[P_DW];
  const long xs_h = meta[P_XS + 2], xs_w = meta[P_XS + 3];
  const long base = x_off + plane_base(meta, nc);
  long h0 = oh * meta[P_SH] - meta[P_PH];
  const long h1 = min(h0 + (meta[P_KH] - 1) * dh + 1, H);
  while (h0 < 0) h0 += dh;
  long w0 = ow * meta[P_SW] - meta[P_PW];
  const long w1 = min(w0 + (meta[P_KW] - 1) * dw + 1, W);
  while (w0 < 0) w0 += dw;
  CT best = -INFINITY;
  long best_index = h0 * W + w0;
  for (long ih = h0; ih < h1; ih += dh) {
    for (long iw = w0; iw < w1; iw += dw) {
      const CT v = (CT)X_LD(x, base + ih * xs_h + iw * xs_w);
      if (v > best || isnan(v)) {  // NaN wins, as in PyTorch
        best = v;
        best_index = ih * W + iw;
      }
    }
  }
  const long o = (nc * Ho + oh) * Wo + ow;
  OUT_ST(out, out_off + o, best, OUT_T);
#ifdef WITH_INDICES
  indices[indices_off + o] = best_index;
#endif
}

__kernel void avg_pool(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                       __global const long* meta, int meta_off) {
  meta += meta_off;
  const long ow = get_global_id(0), oh = get_global_id(1), nc = get_global_id(2);
  const long H = meta[P_H], W = meta[P_W], Ho = meta[P_HO], Wo = meta[P_WO];
  const long ph = meta[P_PH], pw = meta[P_PW];
  const long xs_h = meta[P_XS + 2], xs_w = meta[P_XS + 3];
  const long base = x_off + plane_base(meta, nc);
  long h0 = oh * meta[P_SH] - ph, w0 = ow * meta[P_SW] - pw;
  long h1 = min(h0 + meta[P_KH], H + ph), w1 = min(w0 + meta[P_KW], W + pw);
  const long pool_size = (h1 - h0) * (w1 - w0);
  h0 = max(h0, 0L);
  w0 = max(w0, 0L);
  h1 = min(h1, H);
  w1 = min(w1, W);
  const long o = (nc * Ho + oh) * Wo + ow;
  if (h0 >= h1 || w0 >= w1) {
    OUT_ST(out, out_off + o, (CT)0, OUT_T);
    return;
  }
  CT sum = (CT)0;
  for (long ih = h0; ih < h1; ++ih)
    for (long iw = w0; iw < w1; ++iw) sum += (CT)X_LD(x, base + ih * xs_h + iw * xs_w);
  const long divisor = meta[P_DIVISOR] != 0  ? meta[P_DIVISOR]
                       : meta[P_INCLUDE_PAD] ? pool_size
                                             : (h1 - h0) * (w1 - w0);
  OUT_ST(out, out_off + o, sum / (CT)divisor, OUT_T);
}

// PyTorch's adaptive windows: [floor(o·in/out), ceil((o+1)·in/out)).
__kernel void adaptive_pool(__global OUT_T* out, long out_off INDEX_ARGS, __global const X_T* x, long x_off,
                            __global const long* meta, int meta_off) {
  meta += meta_off;
  const long ow = get_global_id(0), oh = get_global_id(1), nc = get_global_id(2);
  const long H = meta[P_H], W = meta[P_W], Ho = meta[P_HO], Wo = meta[P_WO];
  const long xs_h = meta[P_XS + 2], xs_w = meta[P_XS + 3];
  const long base = x_off + plane_base(meta, nc);
  const long h0 = (oh * H) / Ho, h1 = ((oh + 1) * H + Ho - 1) / Ho;
  const long w0 = (ow * W) / Wo, w1 = ((ow + 1) * W + Wo - 1) / Wo;
  const long o = (nc * Ho + oh) * Wo + ow;
#ifdef ADAPTIVE_MAX
  CT best = -INFINITY;
  long best_index = h0 * W + w0;
  for (long ih = h0; ih < h1; ++ih) {
    for (long iw = w0; iw < w1; ++iw) {
      const CT v = (CT)X_LD(x, base + ih * xs_h + iw * xs_w);
      if (v > best || isnan(v)) {
        best = v;
        best_index = ih * W + iw;
      }
    }
  }
  OUT_ST(out, out_off + o, best, OUT_T);
#ifdef WITH_INDICES
  indices[indices_off + o] = best_index;
#endif
#else
  CT sum = (CT)0;
  for (long ih = h0; ih < h1; ++ih)
    for (long iw = w0; iw < w1; ++iw) sum += (CT)X_LD(x, base + ih * xs_h + iw * xs_w);
  OUT_ST(out, out_off + o, sum / (CT)((h1 - h0) * (w1 - w0)), OUT_T);
#endif
}
