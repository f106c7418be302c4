// Convolution kernels (opencl/ops/conv.cpp). Every convolution is lifted to 3 spatial dims (unit
// leading dims for 1-d and 2-d), as the reference kernel does, so one program serves conv1d/2d/3d.
//
//   im2col                 the column matrix of a chunk of samples, float32, [nb][C_in·kd·kh·kw][P]
//                          (P = Do·Ho·Wo), read from an input of any strides and storage dtype; a GEMM
//                          then multiplies each group's weight rows with its rows of the matrix.
//   conv_direct            one output element per work-item, the window a compile-time constant:
//                          depthwise and grouped convolutions with few channels per group, and every
//                          float64 one (the GEMM dispatcher is float32).
//   conv_transpose_direct  transposed convolution as a gather: each output element sums the input
//                          positions that a forward convolution would map onto it.
//
// im2col and the transposed kernel read their geometry from the plan's metadata buffer (layout in
// conv.cpp: ConvMeta), so a new shape needs no new program; conv_direct takes sizes as arguments and
// the window as defines. Storage macros as in copy.cl; CT is the compute type (float or double).
// The direct kernels apply an activation (ACT, the numbering of gemm::Activation) to their result.
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
#define M_N0 27      // first sample of an im2col chunk

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

// global: (Wo, rows·Do·Ho, nb) with rows = C_in·kd·kh·kw.
__kernel void im2col(__global float* col, long col_off, __global const X_T* x, long x_off,
                     __global const long* meta, int meta_off) {
  meta += meta_off;
  const long ox = get_global_id(0);
  const long g1 = get_global_id(1);
  const long n = get_global_id(2);
  const long Do = meta[M_OUT], Ho = meta[M_OUT + 1], Wo = meta[M_OUT + 2];
  const long kd = meta[M_KER], kh = meta[M_KER + 1], kw = meta[M_KER + 2];
  const long DHo = Do * Ho;
  const long oyz = g1 % DHo, row = g1 / DHo;
  const long oy = oyz % Ho, oz = oyz / Ho;
  long r = row;
  const long kx = r % kw;
  r /= kw;
  const long ky = r % kh;
  r /= kh;
  const long kz = r % kd;
  const long c = r / kd;
  const long iz = oz * meta[M_STRIDE] - meta[M_PAD] + kz * meta[M_DIL];
  const long iy = oy * meta[M_STRIDE + 1] - meta[M_PAD + 1] + ky * meta[M_DIL + 1];
  const long ix = ox * meta[M_STRIDE + 2] - meta[M_PAD + 2] + kx * meta[M_DIL + 2];
  float v = 0.0f;
  if (iz >= 0 && iz < meta[M_IN] && iy >= 0 && iy < meta[M_IN + 1] && ix >= 0 && ix < meta[M_IN + 2])
    v = (float)X_LD(x, x_off + (meta[M_N0] + n) * meta[M_XS] + c * meta[M_XS + 1] + iz * meta[M_XS + 2] +
                           iy * meta[M_XS + 3] + ix * meta[M_XS + 4]);
  const long rows = meta[M_CIN] * kd * kh * kw;
  col[col_off + n * rows * DHo * Wo + g1 * Wo + ox] = v;
}

// global: (Wo, Ho, N·C_out·Do). Weight [C_out][CIN_G][KD][KH][KW], contiguous. The window's shape,
// strides, dilations and CIN_G are compile-time constants, so every loop unrolls and the work-item loop
// of a CPU driver vectorises; taps outside the input are read at a clamped position and zeroed by a
// select, so there are no branches either.
#ifndef CIN_G
#define CIN_G 1
#endif
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
__kernel void conv_direct(__global OUT_T* out, long out_off, __global const X_T* x, long x_off,
                          __global const W_T* w, long w_off, __global const B_T* bias, long b_off, int Cout,
                          int cout_g, int Di, int Hi, int Wi, int Do, int Ho, int Wo, int pd, int ph, int pw,
                          long xs_n, long xs_c, long xs_d, long xs_h, long xs_w, CT act_lo, CT act_hi) {
  const int ox = get_global_id(0), oy = get_global_id(1);
  const long ncz = get_global_id(2);
  const int oz = (int)(ncz % Do);
  const long nc = ncz / Do;
  const int co = (int)(nc % Cout);
  const long n = nc / Cout;
  const int g = co / cout_g;
  const int z0 = oz * SD - pd, y0 = oy * SH - ph, x0 = ox * SW - pw;
  const long xb = x_off + n * xs_n + (long)g * CIN_G * xs_c;
  const long wb = w_off + (long)co * (CIN_G * KD * KH * KW);
  CT acc = (CT)0;
  for (int ci = 0; ci < CIN_G; ++ci) {
#pragma unroll
    for (int kz = 0; kz < KD; ++kz) {
      const int iz = z0 + kz * DD;
      const bool z_ok = iz >= 0 && iz < Di;
      const long xz = xb + ci * xs_c + (long)clamp(iz, 0, Di - 1) * xs_d;
#pragma unroll
      for (int ky = 0; ky < KH; ++ky) {
        const int iy = y0 + ky * DH;
        const bool zy_ok = z_ok && iy >= 0 && iy < Hi;
        const long xrow = xz + (long)clamp(iy, 0, Hi - 1) * xs_h;
#pragma unroll
        for (int kx = 0; kx < KW; ++kx) {
          const int ix = x0 + kx * DW;
          const CT v = (CT)X_LD(x, xrow + (long)clamp(ix, 0, Wi - 1) * xs_w);
          const CT wv = (CT)W_LD(w, wb + ((ci * KD + kz) * KH + ky) * KW + kx);
          acc += (zy_ok && ix >= 0 && ix < Wi) ? v * wv : (CT)0;
        }
      }
    }
  }
#ifdef HAS_BIAS
  acc += (CT)B_LD(bias, b_off + co);
#endif
  OUT_ST(out, out_off + (ncz * Ho + oy) * Wo + ox, activate(acc, act_lo, act_hi), OUT_T);
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
