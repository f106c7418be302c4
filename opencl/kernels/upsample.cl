// Interpolation kernels (opencl/ops/upsample.cpp): one output element per work-item, global
// (Wo, Ho, N·C·Do), the output contiguous, the input read through its strides as (N, C, D, H, W) with
// 1-d and 2-d ops lifted (size-1 leading dims). The source taps of each dim come from the host, computed
// by the reference's code (runtime/ops/upsample.h), so indices and weights are PyTorch's bit for bit:
// for dim d, meta[meta[P_TABLE + d]] starts out_d·K_d tap indices followed by out_d·K_d weights, each
// weight the bit pattern of a CT (a float's in the low 32 bits).
// The kernel is "interpolate": "upsample" is an OpenCL C built-in (upsample(hi, lo)), so a kernel of that
// name is an overload with a mangled name and clCreateKernel cannot find it.
//
// Metadata: C, Do, Ho, Wo, KD, KH, KW, input strides n, c, d, h, w, table offsets d, h, w.
// NEAREST: one tap per dim, the element copied (any dtype). Otherwise each output is
// Σ_a w_a · (Σ_b w_b · (Σ_c w_c · x)), outermost dim first, as the reference sums.
// Storage macros as in copy.cl; CT is float or double.
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

#ifdef WEIGHTS_DOUBLE
#define WEIGHT(bits) as_double(bits)
#else
#define WEIGHT(bits) as_float((uint)(bits))
#endif

#define P_C 0
#define P_DO 1
#define P_HO 2
#define P_WO 3
#define P_K 4       // KD, KH, KW
#define P_XS 7      // strides n, c, d, h, w
#define P_TABLE 12  // offsets of the d, h, w tables

__kernel void interpolate(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                          __global const long* meta, int meta_off) {
  meta += meta_off;
  const long ow = get_global_id(0), oh = get_global_id(1), z = get_global_id(2);
  const long Do = meta[P_DO], Ho = meta[P_HO], Wo = meta[P_WO];
  const long od = z % Do, nc = z / Do;
  const long C = meta[P_C];
  const long xs_d = meta[P_XS + 2], xs_h = meta[P_XS + 3], xs_w = meta[P_XS + 4];
  const long base = x_off + (nc / C) * meta[P_XS] + (nc % C) * meta[P_XS + 1];
  __global const long* td = meta + meta[P_TABLE];
  __global const long* th = meta + meta[P_TABLE + 1];
  __global const long* tw = meta + meta[P_TABLE + 2];
  const long o = ((nc * Do + od) * Ho + oh) * Wo + ow;
#ifdef NEAREST
  OUT_ST(out, out_off + o, X_LD(x, base + td[od] * xs_d + th[oh] * xs_h + tw[ow] * xs_w), OUT_T);
#else
  const long kd = meta[P_K], kh = meta[P_K + 1], kw = meta[P_K + 2];
  __global const long* wd = td + Do * kd;
  __global const long* wh = th + Ho * kh;
  __global const long* ww = tw + Wo * kw;
  CT acc = (CT)0;
  for (long a = 0; a < kd; ++a) {
    const long slab = base + td[od * kd + a] * xs_d;
    CT acc_h = (CT)0;
    for (long b = 0; b < kh; ++b) {
      const long row = slab + th[oh * kh + b] * xs_h;
      CT acc_w = (CT)0;
      for (long c = 0; c < kw; ++c)
        acc_w += WEIGHT(ww[ow * kw + c]) * (CT)X_LD(x, row + tw[ow * kw + c] * xs_w);
      acc_h += WEIGHT(wh[oh * kh + b]) * acc_w;
    }
    acc += WEIGHT(wd[od * kd + a]) * acc_h;
  }
  OUT_ST(out, out_off + o, acc, OUT_T);
#endif
}
