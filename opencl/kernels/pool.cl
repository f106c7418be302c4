// Pooling kernels (opencl/ops/pooling.cpp): one output element per work-item, global (Wo, Ho, N·C),
// the output contiguous. The input is read through its strides as (N, C, H, W); 1-d pools are 2-d
// ones with H = 1. Window bounds, divisors and NaN handling follow PyTorch's CPU kernels (and the
// reference kernels in runtime/ops/pooling.cpp) exactly, including the order of the sums.
//
// Metadata (PoolMeta in pooling.cpp): N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw,
// input strides n, c, h, w, count_include_pad, divisor_override (0: none).
//
// pool_rows is what a CPU wants for max_pool and avg_pool without indices: one output row per
// work-item, global (Ho, N·C), the window a compile-time constant (KH, KW, SH, SW, DH, DW), sizes as
// arguments, and the row's interior (every tap inside the input) eight outputs at a time from vector
// loads (X_VLOAD8) where the input's rows are dense.
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

// ---- one output row per work-item ----
#ifndef KH
#define KH 1
#define KW 1
#define SH 1
#define SW 1
#define DH 1
#define DW 1
#endif

__kernel void pool_rows(__global OUT_T* restrict out, long out_off, __global const X_T* restrict x,
                        long x_off, int C, int H, int W, int Ho, int Wo, int ph, int pw, long xs_n, long xs_c,
                        long xs_h, long xs_w, int count_include_pad, int divisor_override) {
  const int oh = get_global_id(0);
  const long nc = get_global_id(1);
  const long base = x_off + (nc / C) * xs_n + (nc % C) * xs_c;
  const long ob = out_off + (nc * Ho + oh) * Wo;
#ifdef POOL_MAX
  int h0 = oh * SH - ph;
  const int h1 = min(h0 + (KH - 1) * DH + 1, H);
  while (h0 < 0) h0 += DH;
  // [lo, hi): the ow whose taps ow·SW − pw + kx·DW all lie in [0, W).
  const int last = W - 1 + pw - (KW - 1) * DW;
#else
  int h0 = oh * SH - ph;
  int h1 = min(h0 + KH, H + ph);
  const int hspan = h1 - h0;
  h0 = max(h0, 0);
  h1 = min(h1, H);
  const int last = W - KW + pw;
#endif
  const int lo = min(Wo, (pw + SW - 1) / SW);
  const int hi = last < 0 ? lo : clamp(last / SW + 1, lo, Wo);
  int ow = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const int end = pass == 0 ? lo : Wo;
#if defined(X_VLOAD8) && (SW == 1 || SW == 2)
    if (pass == 1 && xs_w == 1) {
      for (; ow + 8 <= hi; ow += 8) {
        const long col = ow * SW - pw;
#ifdef POOL_MAX
        CT8 best = (CT8)(-INFINITY);
        for (int ih = h0; ih < h1; ih += DH) {
          for (int kx = 0; kx < KW; ++kx) {
#if SW == 1
            const CT8 v = X_VLOAD8(base + ih * xs_h + col + kx * DW);
#else
            const CT8 v = (CT8)(X_VLOAD8(base + ih * xs_h + col + kx * DW).even,
                                X_VLOAD8(base + ih * xs_h + col + kx * DW + 7).odd);
#endif
            best = select(best, v, isnan(v) || v > best);  // NaN wins, as in PyTorch
          }
        }
        CT lanes[8];
        vstore8(best, 0, lanes);
#else
        CT8 sum = (CT8)((CT)0);
        for (int ih = h0; ih < h1; ++ih) {
          for (int kx = 0; kx < KW; ++kx) {
#if SW == 1
            sum += X_VLOAD8(base + ih * xs_h + col + kx);
#else
            sum += (CT8)(X_VLOAD8(base + ih * xs_h + col + kx).even,
                         X_VLOAD8(base + ih * xs_h + col + kx + 7).odd);
#endif
          }
        }
        const int divisor = divisor_override != 0 ? divisor_override
                            : count_include_pad   ? hspan * KW
                                                  : (h1 - h0) * KW;
        CT lanes[8];
        vstore8(h0 < h1 ? sum / (CT)divisor : (CT8)((CT)0), 0, lanes);
#endif
        for (int l = 0; l < 8; ++l) OUT_ST(out, ob + ow + l, lanes[l], OUT_T);
      }
    }
#endif
    // The borders and what the vector loop left: each output as the reference computes it.
    for (; ow < end; ++ow) {
#ifdef POOL_MAX
      int w0 = ow * SW - pw;
      const int w1 = min(w0 + (KW - 1) * DW + 1, W);
      while (w0 < 0) w0 += DW;
      CT best = -INFINITY;
      for (int ih = h0; ih < h1; ih += DH) {
        for (int iw = w0; iw < w1; iw += DW) {
          const CT v = (CT)X_LD(x, base + ih * xs_h + iw * xs_w);
          if (v > best || isnan(v)) best = v;
        }
      }
      OUT_ST(out, ob + ow, best, OUT_T);
#else
      int w0 = ow * SW - pw;
      int w1 = min(w0 + KW, W + pw);
      const int pool_size = hspan * (w1 - w0);
      w0 = max(w0, 0);
      w1 = min(w1, W);
      CT v = (CT)0;
      if (h0 < h1 && w0 < w1) {
        CT sum = (CT)0;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) sum += (CT)X_LD(x, base + ih * xs_h + iw * xs_w);
        const int divisor = divisor_override != 0 ? divisor_override
                            : count_include_pad   ? pool_size
                                                  : (h1 - h0) * (w1 - w0);
        v = sum / (CT)divisor;
      }
      OUT_ST(out, ob + ow, v, OUT_T);
#endif
    }
    if (pass == 0) ow = lo;
  }
}
