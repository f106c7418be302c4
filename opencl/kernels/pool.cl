// Pooling kernels (opencl/ops/pooling.cpp): one output element per work-item, global (Wo, Ho, N·C·Do),
// the output contiguous. The input is read through its strides as (N, C, D, H, W); 2-d pools are 3-d
// ones with D = 1, 1-d pools also have H = 1. Window bounds, divisors and NaN handling follow PyTorch's
// CPU kernels (and the reference kernels in runtime/ops/pooling.cpp) exactly, including the order of
// the sums.
//
// Metadata (PoolMeta in pooling.cpp): N, C, D, H, W, Do, Ho, Wo, kd, kh, kw, sd, sh, sw, pd, ph, pw,
// dd, dh, dw, input strides n, c, d, h, w, count_include_pad, divisor_override (0: none).
//
// pool_rows is what a CPU wants for max_pool and avg_pool without indices: one output row per
// work-item, global (Ho, N·C·Do), the window a compile-time constant (KD, KH, KW, SD, SH, SW, DD, DH,
// DW), sizes as arguments, and the row's interior (every tap inside the input) eight outputs at a time
// from vector loads (X_VLOAD8) where the input's rows are dense.
// Storage macros as in copy.cl; CT is float or double. WITH_INDICES adds an int64 output of the flat
// index ((d·H + h)·W + w) of each maximum.
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
#define P_D 2
#define P_H 3
#define P_W 4
#define P_DO 5
#define P_HO 6
#define P_WO 7
#define P_K 8     // kd, kh, kw
#define P_S 11    // sd, sh, sw
#define P_P 14    // pd, ph, pw
#define P_DIL 17  // dd, dh, dw
#define P_XS 20   // strides n, c, d, h, w
#define P_INCLUDE_PAD 25
#define P_DIVISOR 26

#ifdef WITH_INDICES
#define INDEX_ARGS , __global long *indices, long indices_off
#else
#define INDEX_ARGS
#endif

// The work-item's output (ow, oh, od), its (n, c) plane and the input offset of that plane.
typedef struct {
  long ow, oh, od, nc, base, o;
} PoolSite;

inline PoolSite pool_site(__global const long* meta, long x_off) {
  PoolSite p;
  const long Do = meta[P_DO], z = get_global_id(2), C = meta[P_C];
  p.ow = get_global_id(0);
  p.oh = get_global_id(1);
  p.od = z % Do;
  p.nc = z / Do;
  p.base = x_off + (p.nc / C) * meta[P_XS] + (p.nc % C) * meta[P_XS + 1];
  p.o = (z * meta[P_HO] + p.oh) * meta[P_WO] + p.ow;
  return p;
}

// A max pool's taps along dim i (0: d, 1: h, 2: w) for output o: lo, lo + dilation, ... below hi.
inline long2 max_window(__global const long* meta, int i, long o) {
  const long dil = meta[P_DIL + i];
  long lo = o * meta[P_S + i] - meta[P_P + i];
  const long hi = min(lo + (meta[P_K + i] - 1) * dil + 1, meta[P_D + i]);
  while (lo < 0) lo += dil;
  return (long2)(lo, hi);
}

__kernel void max_pool(__global OUT_T* out, long out_off INDEX_ARGS, __global const X_T* x, long x_off,
                       __global const long* meta, int meta_off) {
  meta += meta_off;
  const PoolSite p = pool_site(meta, x_off);
  const long H = meta[P_H], W = meta[P_W];
  const long dd = meta[P_DIL], dh = meta[P_DIL + 1], dw = meta[P_DIL + 2];
  const long xs_d = meta[P_XS + 2], xs_h = meta[P_XS + 3], xs_w = meta[P_XS + 4];
  const long2 wd = max_window(meta, 0, p.od), wh = max_window(meta, 1, p.oh), ww = max_window(meta, 2, p.ow);
  CT best = -INFINITY;
  long best_index = (wd.x * H + wh.x) * W + ww.x;
  for (long id = wd.x; id < wd.y; id += dd) {
    for (long ih = wh.x; ih < wh.y; ih += dh) {
      for (long iw = ww.x; iw < ww.y; iw += dw) {
        const CT v = (CT)X_LD(x, p.base + id * xs_d + ih * xs_h + iw * xs_w);
        if (v > best || isnan(v)) {  // NaN wins, as in PyTorch
          best = v;
          best_index = (id * H + ih) * W + iw;
        }
      }
    }
  }
  OUT_ST(out, out_off + p.o, best, OUT_T);
#ifdef WITH_INDICES
  indices[indices_off + p.o] = best_index;
#endif
}

// An avg pool's window along dim i: [lo, hi) inside the input, and its extent counting the padding.
inline long3 avg_window(__global const long* meta, int i, long o) {
  const long pad = meta[P_P + i], in = meta[P_D + i];
  const long lo = o * meta[P_S + i] - pad;
  const long hi = min(lo + meta[P_K + i], in + pad);
  return (long3)(max(lo, 0L), min(hi, in), hi - lo);
}

__kernel void avg_pool(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                       __global const long* meta, int meta_off) {
  meta += meta_off;
  const PoolSite p = pool_site(meta, x_off);
  const long xs_d = meta[P_XS + 2], xs_h = meta[P_XS + 3], xs_w = meta[P_XS + 4];
  const long3 wd = avg_window(meta, 0, p.od), wh = avg_window(meta, 1, p.oh), ww = avg_window(meta, 2, p.ow);
  if (wd.x >= wd.y || wh.x >= wh.y || ww.x >= ww.y) {
    OUT_ST(out, out_off + p.o, (CT)0, OUT_T);
    return;
  }
  CT sum = (CT)0;
  for (long id = wd.x; id < wd.y; ++id)
    for (long ih = wh.x; ih < wh.y; ++ih)
      for (long iw = ww.x; iw < ww.y; ++iw) sum += (CT)X_LD(x, p.base + id * xs_d + ih * xs_h + iw * xs_w);
  const long divisor = meta[P_DIVISOR] != 0  ? meta[P_DIVISOR]
                       : meta[P_INCLUDE_PAD] ? wd.z * wh.z * ww.z
                                             : (wd.y - wd.x) * (wh.y - wh.x) * (ww.y - ww.x);
  OUT_ST(out, out_off + p.o, sum / (CT)divisor, OUT_T);
}

// PyTorch's adaptive windows: [floor(o·in/out), ceil((o+1)·in/out)).
inline long2 adaptive_window(long o, long in, long out) {
  return (long2)((o * in) / out, ((o + 1) * in + out - 1) / out);
}

__kernel void adaptive_pool(__global OUT_T* out, long out_off INDEX_ARGS, __global const X_T* x, long x_off,
                            __global const long* meta, int meta_off) {
  meta += meta_off;
  const PoolSite p = pool_site(meta, x_off);
  const long H = meta[P_H], W = meta[P_W];
  const long xs_d = meta[P_XS + 2], xs_h = meta[P_XS + 3], xs_w = meta[P_XS + 4];
  const long2 wd = adaptive_window(p.od, meta[P_D], meta[P_DO]);
  const long2 wh = adaptive_window(p.oh, H, meta[P_HO]), ww = adaptive_window(p.ow, W, meta[P_WO]);
#ifdef ADAPTIVE_MAX
  CT best = -INFINITY;
  long best_index = (wd.x * H + wh.x) * W + ww.x;
  for (long id = wd.x; id < wd.y; ++id) {
    for (long ih = wh.x; ih < wh.y; ++ih) {
      for (long iw = ww.x; iw < ww.y; ++iw) {
        const CT v = (CT)X_LD(x, p.base + id * xs_d + ih * xs_h + iw * xs_w);
        if (v > best || isnan(v)) {
          best = v;
          best_index = (id * H + ih) * W + iw;
        }
      }
    }
  }
  OUT_ST(out, out_off + p.o, best, OUT_T);
#ifdef WITH_INDICES
  indices[indices_off + p.o] = best_index;
#endif
#else
  CT sum = (CT)0;
  for (long id = wd.x; id < wd.y; ++id)
    for (long ih = wh.x; ih < wh.y; ++ih)
      for (long iw = ww.x; iw < ww.y; ++iw) sum += (CT)X_LD(x, p.base + id * xs_d + ih * xs_h + iw * xs_w);
  OUT_ST(out, out_off + p.o, sum / (CT)((wd.y - wd.x) * (wh.y - wh.x) * (ww.y - ww.x)), OUT_T);
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
#ifndef KD
#define KD 1
#define SD 1
#define DD 1
#endif

__kernel void pool_rows(__global OUT_T* restrict out, long out_off, __global const X_T* restrict x,
                        long x_off, int C, int D, int H, int W, int Do, int Ho, int Wo, int pd, int ph,
                        int pw, long xs_n, long xs_c, long xs_d, long xs_h, long xs_w, int count_include_pad,
                        int divisor_override) {
  const int oh = get_global_id(0);
  const long z = get_global_id(1);  // nc·Do + od
  const int od = z % Do;
  const long nc = z / Do;
  const long base = x_off + (nc / C) * xs_n + (nc % C) * xs_c;
  const long ob = out_off + (z * Ho + oh) * Wo;
#ifdef POOL_MAX
  int d0 = od * SD - pd;
  const int d1 = min(d0 + (KD - 1) * DD + 1, D);
  while (d0 < 0) d0 += DD;
  int h0 = oh * SH - ph;
  const int h1 = min(h0 + (KH - 1) * DH + 1, H);
  while (h0 < 0) h0 += DH;
  // [lo, hi): the ow whose taps ow·SW − pw + kx·DW all lie in [0, W).
  const int last = W - 1 + pw - (KW - 1) * DW;
#else
  int d0 = od * SD - pd;
  int d1 = min(d0 + KD, D + pd);
  int h0 = oh * SH - ph;
  int h1 = min(h0 + KH, H + ph);
  const int span = (d1 - d0) * (h1 - h0);  // the window's depth × height, padding counted
  d0 = max(d0, 0);
  d1 = min(d1, D);
  h0 = max(h0, 0);
  h1 = min(h1, H);
  const bool nonempty = d0 < d1 && h0 < h1;
  const int inside = (d1 - d0) * (h1 - h0);
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
        for (int id = d0; id < d1; id += DD) {
          for (int ih = h0; ih < h1; ih += DH) {
            const long row = base + id * xs_d + ih * xs_h + col;
            for (int kx = 0; kx < KW; ++kx) {
#if SW == 1
              const CT8 v = X_VLOAD8(row + kx * DW);
#else
              const CT8 v = (CT8)(X_VLOAD8(row + kx * DW).even, X_VLOAD8(row + kx * DW + 7).odd);
#endif
              best = select(best, v, isnan(v) || v > best);  // NaN wins, as in PyTorch
            }
          }
        }
        CT lanes[8];
        vstore8(best, 0, lanes);
#else
        CT8 sum = (CT8)((CT)0);
        for (int id = d0; id < d1; ++id) {
          for (int ih = h0; ih < h1; ++ih) {
            const long row = base + id * xs_d + ih * xs_h + col;
            for (int kx = 0; kx < KW; ++kx) {
#if SW == 1
              sum += X_VLOAD8(row + kx);
#else
              sum += (CT8)(X_VLOAD8(row + kx).even, X_VLOAD8(row + kx + 7).odd);
#endif
            }
          }
        }
        const int divisor = divisor_override != 0 ? divisor_override
                            : count_include_pad   ? span * KW
                                                  : inside * KW;
        CT lanes[8];
        vstore8(nonempty ? sum / (CT)divisor : (CT8)((CT)0), 0, lanes);
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
      for (int id = d0; id < d1; id += DD) {
        for (int ih = h0; ih < h1; ih += DH) {
          for (int iw = w0; iw < w1; iw += DW) {
            const CT v = (CT)X_LD(x, base + id * xs_d + ih * xs_h + iw * xs_w);
            if (v > best || isnan(v)) best = v;
          }
        }
      }
      OUT_ST(out, ob + ow, best, OUT_T);
#else
      int w0 = ow * SW - pw;
      int w1 = min(w0 + KW, W + pw);
      const int pool_size = span * (w1 - w0);
      w0 = max(w0, 0);
      w1 = min(w1, W);
      CT v = (CT)0;
      if (nonempty && w0 < w1) {
        CT sum = (CT)0;
        for (int id = d0; id < d1; ++id)
          for (int ih = h0; ih < h1; ++ih)
            for (int iw = w0; iw < w1; ++iw) sum += (CT)X_LD(x, base + id * xs_d + ih * xs_h + iw * xs_w);
        const int divisor = divisor_override != 0 ? divisor_override
                            : count_include_pad   ? pool_size
                                                  : inside * (w1 - w0);
        v = sum / (CT)divisor;
      }
      OUT_ST(out, ob + ow, v, OUT_T);
#endif
    }
    if (pass == 0) ow = lo;
  }
}
