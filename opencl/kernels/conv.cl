// Convolution kernels (opencl/ops/conv.cpp). Every convolution is lifted to 3 spatial dims (unit
// leading dims for 1-d and 2-d), as the reference kernel does, so one program serves conv1d/2d/3d.
//
//   im2col                 the column matrix of a chunk of samples, float32, [nb][C_in·kd·kh·kw][P]
//                          (P = Do·Ho·Wo), read from an input of any strides and storage dtype; a GEMM
//                          then multiplies each group's weight rows with its rows of the matrix.
//   conv_direct(_rows)     the window a compile-time constant, one output element (GPUs) or one output
//                          row (CPUs) per work-item: depthwise and grouped convolutions with few
//                          channels per group, and every float64 one (the GEMM dispatcher is float32).
//   conv_transpose_direct  transposed convolution as a gather: each output element sums the input
//                          positions that a forward convolution would map onto it.
//
// im2col and conv_direct take sizes and strides as arguments and the window as defines (one program
// per window shape, stride and dilation); the transposed kernel reads all of its geometry from the
// plan's metadata buffer (layout in conv.cpp: ConvMeta). Storage macros as in copy.cl; CT is the
// compute type (float or double). The direct kernels apply an activation (ACT, the numbering of
// gemm::Activation) to their result.
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
#ifndef W_T
#define W_T float
#define W_LD LD_PLAIN
#endif
#ifndef B_T
#define B_T float
#define B_LD LD_PLAIN
#endif
#ifndef OUT_T
#define OUT_T float
#define OUT_ST ST_PLAIN
#endif
#ifndef ACT
#define ACT 0
#endif

#ifdef USE_FP64
#define K(v) ((CT)(v))
#else
#define K(v) ((CT)(v##f))
#endif

// ConvMeta: positions in the metadata block.
#define M_N 0
#define M_CIN 1
#define M_COUT 2
#define M_GROUPS 3
#define M_IN 4       // input D, H, W
#define M_OUT 7      // output D, H, W
#define M_KER 10     // kernel D, H, W
#define M_STRIDE 13  // D, H, W
#define M_PAD 16     // padding before, D, H, W
#define M_DIL 19     // dilation D, H, W
#define M_XS 22      // input strides: n, c, d, h, w

// PyTorch's activations as the GEMM epilogue computes them; NaN passes through the clamps.
inline CT activate(CT v, CT lo, CT hi) {
#if ACT == 1
  return v <= (CT)0 ? (CT)0 : v;
#elif ACT == 2
  return v < (CT)0 ? (CT)0 : (v > (CT)6 ? (CT)6 : v);
#elif ACT == 3
  return v < lo ? lo : (v > hi ? hi : v);
#elif ACT == 4
  return K(0.5) * v * ((CT)1 + erf(v * K(0.70710678118654752440)));
#elif ACT == 5
  const CT inner = K(0.79788456080286535588) * (v + K(0.044715) * v * v * v);
  return K(0.5) * v * ((CT)1 + tanh(inner));
#elif ACT == 6
  return v / ((CT)1 + exp(-v));
#elif ACT == 7
  const CT r = v + (CT)3;
  return v * (r < (CT)0 ? (CT)0 : (r > (CT)6 ? (CT)6 : r)) / (CT)6;
#elif ACT == 8
  return (CT)1 / ((CT)1 + exp(-v));
#else
  return v;
#endif
}

// The window (KD..KW), strides (SD..SW) and dilations (DD..DW) of im2col and conv_direct are
// compile-time constants: a network has few distinct ones, and every loop over them unrolls.
#ifndef KD
#define KD 1
#define KH 1
#define KW 1
#define SD 1
#define SH 1
#define SW 1
#define DD 1
#define DH 1
#define DW 1
#endif

// global: (Wo, Ho, nb·C_in·KD·KH·KW·Do). Writes col[n][c·KD·KH·KW + (kz·KH + ky)·KW + kx][(oz·Ho + oy)·Wo +
// ox] for samples first_sample .. first_sample + nb - 1. Taps outside the input read a clamped position and
// store 0 through a select: no branches, so a CPU driver vectorises over ox.
__kernel void im2col(__global float* col, long col_off, __global const X_T* x, long x_off, int Cin, int Di,
                     int Hi, int Wi, int Do, int Ho, int Wo, int pd, int ph, int pw, long xs_n, long xs_c,
                     long xs_d, long xs_h, long xs_w, long first_sample) {
  const int ox = get_global_id(0), oy = get_global_id(1);
  const long g2 = get_global_id(2);  // ((n·C_in + c)·KD·KH·KW + tap)·Do + oz
  const int oz = (int)(g2 % Do);
  const long row_n = g2 / Do;  // n·rows + row
  const int tap = (int)(row_n % (KD * KH * KW));
  const long cn = row_n / (KD * KH * KW);
  const int c = (int)(cn % Cin);
  const long n = cn / Cin;
  const int kx = tap % KW, ky = (tap / KW) % KH, kz = tap / (KW * KH);
  const int iz = oz * SD - pd + kz * DD, iy = oy * SH - ph + ky * DH, ix = ox * SW - pw + kx * DW;
  const bool ok = iz >= 0 && iz < Di && iy >= 0 && iy < Hi && ix >= 0 && ix < Wi;
  const float v =
      (float)X_LD(x, x_off + (first_sample + n) * xs_n + c * xs_c + (long)clamp(iz, 0, Di - 1) * xs_d +
                         (long)clamp(iy, 0, Hi - 1) * xs_h + (long)clamp(ix, 0, Wi - 1) * xs_w);
  col[col_off + (row_n * Do + oz) * ((long)Ho * Wo) + (long)oy * Wo + ox] = ok ? v : 0.0f;
}

// ---- direct convolution ----
#ifndef CIN_G
#define CIN_G 1
#endif
// Weight [C_out][CIN_G][KD][KH][KW], contiguous; CIN_G is a compile-time constant too. Taps outside the
// input read a clamped position and are zeroed by a select (no branches); where a whole output row's
// taps are known to be inside (CHECK_X 0), the clamp and the column test disappear.
#if CIN_G * KD * KH * KW <= 128
#define UNROLL_TAPS _Pragma("unroll")
#else
#define UNROLL_TAPS
#endif

struct DirectGeometry {
  int Di, Hi, Wi, pw;
  long xb, wb;  // the sample's first channel of the group; the output channel's weights
  long xs_c, xs_d, xs_h, xs_w;
  int z0, y0;  // first tap's depth and row
};

inline CT direct_point(__global const X_T* restrict x, __global const W_T* restrict w,
                       const struct DirectGeometry* d, int ox, bool check_x) {
  const int x0 = ox * SW - d->pw;
  CT acc = (CT)0;
  UNROLL_TAPS
  for (int ci = 0; ci < CIN_G; ++ci) {
    UNROLL_TAPS
    for (int kz = 0; kz < KD; ++kz) {
      const int iz = d->z0 + kz * DD;
      UNROLL_TAPS
      for (int ky = 0; ky < KH; ++ky) {
        const int iy = d->y0 + ky * DH;
        const bool row_ok = iz >= 0 && iz < d->Di && iy >= 0 && iy < d->Hi;
        const long xrow = d->xb + ci * d->xs_c + (long)clamp(iz, 0, d->Di - 1) * d->xs_d +
                          (long)clamp(iy, 0, d->Hi - 1) * d->xs_h;
        UNROLL_TAPS
        for (int kx = 0; kx < KW; ++kx) {
          const int ix = x0 + kx * DW;
          const bool ok = row_ok && (!check_x || (ix >= 0 && ix < d->Wi));
          const CT v = (CT)X_LD(x, xrow + (long)(check_x ? clamp(ix, 0, d->Wi - 1) : ix) * d->xs_w);
          const CT wv = (CT)W_LD(w, d->wb + ((ci * KD + kz) * KH + ky) * KW + kx);
          acc += ok ? v * wv : (CT)0;
        }
      }
    }
  }
  return acc;
}

inline struct DirectGeometry direct_geometry(long ncz, int oy, int Cout, int cout_g, int Di, int Hi, int Wi,
                                             int Do, int pd, int ph, int pw, long x_off, long w_off,
                                             long xs_n, long xs_c, long xs_d, long xs_h, long xs_w) {
  struct DirectGeometry d;
  const int oz = (int)(ncz % Do);
  const long nc = ncz / Do;
  const int co = (int)(nc % Cout);
  const long n = nc / Cout;
  d.Di = Di;
  d.Hi = Hi;
  d.Wi = Wi;
  d.pw = pw;
  d.xb = x_off + n * xs_n + (long)(co / cout_g) * CIN_G * xs_c;
  d.wb = w_off + (long)co * (CIN_G * KD * KH * KW);
  d.xs_c = xs_c;
  d.xs_d = xs_d;
  d.xs_h = xs_h;
  d.xs_w = xs_w;
  d.z0 = oz * SD - pd;
  d.y0 = oy * SH - ph;
  return d;
}

#define DIRECT_ARGS                                                                                        \
  __global OUT_T *restrict out, long out_off, __global const X_T *restrict x, long x_off,                  \
      __global const W_T *restrict w, long w_off, __global const B_T *restrict bias, long b_off, int Cout, \
      int cout_g, int Di, int Hi, int Wi, int Do, int Ho, int Wo, int pd, int ph, int pw, long xs_n,       \
      long xs_c, long xs_d, long xs_h, long xs_w, CT act_lo, CT act_hi

inline CT direct_finish(CT acc, __global const B_T* restrict bias, long b_off, long ncz, int Do, int Cout,
                        CT act_lo, CT act_hi) {
#ifdef HAS_BIAS
  acc += (CT)B_LD(bias, b_off + (ncz / Do) % Cout);
#endif
  return activate(acc, act_lo, act_hi);
}

// One output element per work-item, global (Wo, Ho, N·C_out·Do): what a GPU wants (neighbouring
// work-items read neighbouring inputs).
__kernel void conv_direct(DIRECT_ARGS) {
  const int ox = get_global_id(0), oy = get_global_id(1);
  const long ncz = get_global_id(2);
  const struct DirectGeometry d = direct_geometry(ncz, oy, Cout, cout_g, Di, Hi, Wi, Do, pd, ph, pw, x_off,
                                                  w_off, xs_n, xs_c, xs_d, xs_h, xs_w);
  const CT acc = direct_point(x, w, &d, ox, true);
  OUT_ST(out, out_off + (ncz * Ho + oy) * Wo + ox,
         direct_finish(acc, bias, b_off, ncz, Do, Cout, act_lo, act_hi), OUT_T);
}

// One output row per work-item, global (Ho, N·C_out·Do): what a CPU wants. The row's interior, where
// every tap is inside the input, runs without bounds checks, eight outputs at a time from vector loads
// where the input's rows are dense (X_VLOAD8: float32, float64 and float16 storage).
__kernel void conv_direct_rows(DIRECT_ARGS) {
  const int oy = get_global_id(0);
  const long ncz = get_global_id(1);
  const struct DirectGeometry d = direct_geometry(ncz, oy, Cout, cout_g, Di, Hi, Wi, Do, pd, ph, pw, x_off,
                                                  w_off, xs_n, xs_c, xs_d, xs_h, xs_w);
  // [lo, hi): the ox whose taps ox·SW − pw + kx·DW all lie in [0, Wi).
  const int lo = min(Wo, (pw + SW - 1) / SW);
  const int last = Wi - 1 + pw - (KW - 1) * DW;
  const int hi = last < 0 ? lo : clamp(last / SW + 1, lo, Wo);
  const long ob = out_off + (ncz * Ho + oy) * Wo;
  for (int ox = 0; ox < lo; ++ox)
    OUT_ST(out, ob + ox,
           direct_finish(direct_point(x, w, &d, ox, true), bias, b_off, ncz, Do, Cout, act_lo, act_hi),
           OUT_T);
  int ox = lo;
#if defined(X_VLOAD8) && (SW == 1 || SW == 2)
  // Eight outputs at a time from vector loads of the input row (every other element for stride 2).
  if (xs_w == 1) {
    for (; ox + 8 <= hi; ox += 8) {
      CT8 acc = (CT8)((CT)0);
      UNROLL_TAPS
      for (int ci = 0; ci < CIN_G; ++ci) {
        UNROLL_TAPS
        for (int kz = 0; kz < KD; ++kz) {
          const int iz = d.z0 + kz * DD;
          UNROLL_TAPS
          for (int ky = 0; ky < KH; ++ky) {
            const int iy = d.y0 + ky * DH;
            if (iz < 0 || iz >= Di || iy < 0 || iy >= Hi) continue;
            const long xrow = d.xb + ci * xs_c + (long)iz * xs_d + (long)iy * xs_h + ox * SW - pw;
            UNROLL_TAPS
            for (int kx = 0; kx < KW; ++kx) {
#if SW == 1
              const CT8 v = X_VLOAD8(xrow + kx * DW);
#else
              const CT8 v = (CT8)(X_VLOAD8(xrow + kx * DW).even, X_VLOAD8(xrow + kx * DW + 7).odd);
#endif
              acc += v * (CT)W_LD(w, d.wb + ((ci * KD + kz) * KH + ky) * KW + kx);
            }
          }
        }
      }
      CT lanes[8];
      vstore8(acc, 0, lanes);
      for (int l = 0; l < 8; ++l)
        OUT_ST(out, ob + ox + l, direct_finish(lanes[l], bias, b_off, ncz, Do, Cout, act_lo, act_hi), OUT_T);
    }
  }
#endif
  for (; ox < hi; ++ox)
    OUT_ST(out, ob + ox,
           direct_finish(direct_point(x, w, &d, ox, false), bias, b_off, ncz, Do, Cout, act_lo, act_hi),
           OUT_T);
  for (ox = hi; ox < Wo; ++ox)
    OUT_ST(out, ob + ox,
           direct_finish(direct_point(x, w, &d, ox, true), bias, b_off, ncz, Do, Cout, act_lo, act_hi),
           OUT_T);
}

// global: (Wo, Do·Ho, N·C_out); M_IN holds the input's (the transposed convolution's input) sizes.
// Weight [C_in][C_out/groups][kd][kh][kw], contiguous.
__kernel void conv_transpose_direct(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                                    __global const W_T* w, long w_off, __global const B_T* bias, long b_off,
                                    __global const long* meta, int meta_off, CT act_lo, CT act_hi) {
  meta += meta_off;
  const long ox = get_global_id(0), oyz = get_global_id(1), nc = get_global_id(2);
  const long Cin = meta[M_CIN], Cout = meta[M_COUT], G = meta[M_GROUPS];
  const long Di = meta[M_IN], Hi = meta[M_IN + 1], Wi = meta[M_IN + 2];
  const long Ho = meta[M_OUT + 1], Wo = meta[M_OUT + 2];
  const long kd = meta[M_KER], kh = meta[M_KER + 1], kw = meta[M_KER + 2];
  const long sz = meta[M_STRIDE], sy = meta[M_STRIDE + 1], sx = meta[M_STRIDE + 2];
  const long xs_n = meta[M_XS], xs_c = meta[M_XS + 1], xs_d = meta[M_XS + 2], xs_h = meta[M_XS + 3],
             xs_w = meta[M_XS + 4];
  const long co = nc % Cout, n = nc / Cout;
  const long cin_g = Cin / G, cout_g = Cout / G, g = co / cout_g, cog = co % cout_g;
  const long oy = oyz % Ho, oz = oyz / Ho;
  const long z0 = oz + meta[M_PAD], y0 = oy + meta[M_PAD + 1], x0 = ox + meta[M_PAD + 2];
  const long dz = meta[M_DIL], dy = meta[M_DIL + 1], dx = meta[M_DIL + 2];
  CT acc = (CT)0;
  for (long ci = g * cin_g; ci < (g + 1) * cin_g; ++ci) {
    const long xc = x_off + n * xs_n + ci * xs_c;
    const long wc = w_off + (ci * cout_g + cog) * kd * kh * kw;
    for (long kz = 0; kz < kd; ++kz) {
      const long tz = z0 - kz * dz;
      if (tz < 0 || tz % sz != 0 || tz / sz >= Di) continue;
      for (long ky = 0; ky < kh; ++ky) {
        const long ty = y0 - ky * dy;
        if (ty < 0 || ty % sy != 0 || ty / sy >= Hi) continue;
        const long xrow = xc + (tz / sz) * xs_d + (ty / sy) * xs_h;
        const long wrow = wc + (kz * kh + ky) * kw;
        for (long kx = 0; kx < kw; ++kx) {
          const long tx = x0 - kx * dx;
          if (tx < 0 || tx % sx != 0 || tx / sx >= Wi) continue;
          acc += (CT)X_LD(x, xrow + (tx / sx) * xs_w) * (CT)W_LD(w, wrow + kx);
        }
      }
    }
  }
#ifdef HAS_BIAS
  acc += (CT)B_LD(bias, b_off + co);
#endif
  OUT_ST(out, out_off + (nc * meta[M_OUT] * Ho + oyz) * Wo + ox, activate(acc, act_lo, act_hi), OUT_T);
}
