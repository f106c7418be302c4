// Generic elementwise kernels: out = OP(a, b, c) over broadcast strides, for every unary, binary and
// ternary op of the registry. The op is a compile-time define (-DOP_ADD, -DOP_GELU, ...), so one file
// serves all ops and each op's program is built and cached on its own.
//
// NIN is the number of tensor operands (0 to 3). An operand given as a scalar (-DB_SCALAR) is read from
// the kernel argument sb instead of memory. CT is the compute type (float, double or long); s0..s2 are
// op parameters (alpha, clamp bounds, negative slope...). Operand storage follows copy.cl: X_T, X_LD,
// and OUT_T/OUT_ST.
//
// elementwise_contig: every tensor operand is dense with the output's layout; 1D launch.
// elementwise_strided: 2D launch as in copy.cl; meta = rank, sizes, then rank strides for out, a, b, c.
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
#ifndef NIN
#define NIN 1
#endif
#ifndef OUT_T
#define OUT_T float
#define OUT_ST ST_PLAIN
#endif
#if NIN >= 1 && !defined(A_T)
#define A_T float
#define A_LD LD_PLAIN
#endif
#if NIN >= 2 && !defined(B_T)
#define B_T float
#define B_LD LD_PLAIN
#endif
#if NIN >= 3 && !defined(C_T)
#define C_T float
#define C_LD LD_PLAIN
#endif

#ifdef OP_GELU
// GELU, erf form: 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2). PoCL's float erf costs ~40 ns per element
// on a CPU (it was a quarter of a GPT decoder's time), so float uses erfc(z), z = |x|/√2, from Numerical
// Recipes' Chebyshev fit (erfcc: fractional error < 1.2e-7 for every z >= 0) and one exp: x < 0 gives
// 0.5·x·erfc(z), x >= 0 gives x - 0.5·x·erfc(z), so both tails keep their relative accuracy. Infinities
// and NaN come out as the erf form gives them. Double keeps erf.
inline float __attribute__((overloadable)) gelu_erf(float x) {
  const float z = fabs(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float h = 0.5f * x * (t * exp(p - z * z));
  return x < 0.0f ? h : (isinf(x) ? x : x - h);
}
#ifdef USE_FP64
inline double __attribute__((overloadable)) gelu_erf(double x) {
  return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
}
#endif
#endif

#if defined(CT_IS_INT)
// Integer helpers: PyTorch's floor division and Python-style remainder; a zero divisor gives 0 here
// (PyTorch raises), and integer powers by repeated squaring.
inline long floor_div_l(long a, long b) {
  if (b == 0) return 0;
  long q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
inline long remainder_l(long a, long b) {
  if (b == 0) return 0;
  long m = a % b;
  if (m != 0 && ((b < 0) != (m < 0))) m += b;
  return m;
}
inline long pow_l(long base, long e) {
  if (e < 0) return base == 1 ? 1 : (base == -1 ? ((e & 1) ? -1 : 1) : 0);
  long r = 1;
  while (e) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return r;
}
#else
// PyTorch's div_floor_floating: floor of the true quotient, corrected where fmod's rounding differs.
inline CT floor_div_f(CT a, CT b) {
  if (b == (CT)0) return a / b;
  CT mod = fmod(a, b);
  CT div = (a - mod) / b;
  if (mod != (CT)0 && ((b < (CT)0) != (mod < (CT)0))) div -= (CT)1;
  CT fl;
  if (div != (CT)0) {
    fl = floor(div);
    if (div - fl > (CT)0.5) fl += (CT)1;
  } else {
    fl = copysign((CT)0, a / b);
  }
  return fl;
}
inline CT remainder_f(CT a, CT b) {
  CT m = fmod(a, b);
  if (m != (CT)0 && ((b < (CT)0) != (m < (CT)0))) m += b;
  return m;
}
#endif

// Irrational constants at the compute type's precision, without double literals on fp32-only devices.
#ifdef USE_FP64
#define K(v) ((CT)(v))
#else
#define K(v) ((CT)(v##f))
#endif

#define NAN_MAX(x, y) (isnan(x) ? (x) : (isnan(y) ? (y) : ((x) > (y) ? (x) : (y))))
#define NAN_MIN(x, y) (isnan(x) ? (x) : (isnan(y) ? (y) : ((x) < (y) ? (x) : (y))))
#define CLAMP_NAN(x, lo, hi) ((x) < (lo) ? (lo) : ((x) > (hi) ? (hi) : (x)))

// ---- the ops: an expression in x, y, z (operands) and s0, s1, s2 (parameters) ----
#if defined(OP_COPY)
#define EVAL(x, y, z) (x)
#elif defined(OP_FILL)
#define EVAL(x, y, z) (s0)
#elif defined(OP_NEG)
#define EVAL(x, y, z) (-(x))
#elif defined(OP_ABS)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) ((x) < 0 ? -(x) : (x))
#else
#define EVAL(x, y, z) fabs(x)
#endif
#elif defined(OP_RELU)
#define EVAL(x, y, z) ((x) <= (CT)0 ? (CT)0 : (x))
#elif defined(OP_HARDTANH)
#define EVAL(x, y, z) CLAMP_NAN(x, s0, s1)
#elif defined(OP_CLAMP)
#define EVAL(x, y, z) clamp_scalar(x)
#elif defined(OP_SIGMOID)
#define EVAL(x, y, z) ((CT)1 / ((CT)1 + exp(-(x))))
#elif defined(OP_TANH)
#define EVAL(x, y, z) tanh(x)
#elif defined(OP_EXP)
#define EVAL(x, y, z) exp(x)
#elif defined(OP_EXP2)
#define EVAL(x, y, z) exp2(x)
#elif defined(OP_EXPM1)
#define EVAL(x, y, z) expm1(x)
#elif defined(OP_LOG)
#define EVAL(x, y, z) log(x)
#elif defined(OP_LOG2)
#define EVAL(x, y, z) log2(x)
#elif defined(OP_LOG10)
#define EVAL(x, y, z) log10(x)
#elif defined(OP_LOG1P)
#define EVAL(x, y, z) log1p(x)
#elif defined(OP_SQRT)
#define EVAL(x, y, z) sqrt(x)
#elif defined(OP_RSQRT)
#define EVAL(x, y, z) ((CT)1 / sqrt(x))
#elif defined(OP_SIN)
#define EVAL(x, y, z) sin(x)
#elif defined(OP_COS)
#define EVAL(x, y, z) cos(x)
#elif defined(OP_TAN)
#define EVAL(x, y, z) tan(x)
#elif defined(OP_ASIN)
#define EVAL(x, y, z) asin(x)
#elif defined(OP_ACOS)
#define EVAL(x, y, z) acos(x)
#elif defined(OP_ATAN)
#define EVAL(x, y, z) atan(x)
#elif defined(OP_SINH)
#define EVAL(x, y, z) sinh(x)
#elif defined(OP_COSH)
#define EVAL(x, y, z) cosh(x)
#elif defined(OP_ERF)
#define EVAL(x, y, z) erf(x)
#elif defined(OP_ERFC)
#define EVAL(x, y, z) erfc(x)
#elif defined(OP_FLOOR)
#define EVAL(x, y, z) floor(x)
#elif defined(OP_CEIL)
#define EVAL(x, y, z) ceil(x)
#elif defined(OP_ROUND)
#define EVAL(x, y, z) rint(x)
#elif defined(OP_ROUND_DECIMALS)
#define EVAL(x, y, z) (s1 != (CT)0 ? rint((x) / s0) * s0 : rint((x) * s0) / s0)
#elif defined(OP_TRUNC)
#define EVAL(x, y, z) trunc(x)
#elif defined(OP_RECIPROCAL)
#define EVAL(x, y, z) ((CT)1 / (x))
#elif defined(OP_SQUARE)
#define EVAL(x, y, z) ((x) * (x))
#elif defined(OP_SIGN)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) ((CT)((x) > 0) - (CT)((x) < 0))
#else
#define EVAL(x, y, z) (isnan(x) ? (CT)0 : (CT)((x) > (CT)0) - (CT)((x) < (CT)0))
#endif
#elif defined(OP_GELU)
#define EVAL(x, y, z) gelu_erf(x)
#elif defined(OP_GELU_TANH)
#define EVAL(x, y, z) \
  ((CT)0.5 * (x) * ((CT)1 + tanh(K(0.79788456080286536) * ((x) + K(0.044715) * (x) * (x) * (x)))))
#elif defined(OP_SILU)
#define EVAL(x, y, z) ((x) / ((CT)1 + exp(-(x))))
#elif defined(OP_HARDSWISH)
#define EVAL(x, y, z) ((x) * CLAMP_NAN((x) + (CT)3, (CT)0, (CT)6) / (CT)6)
#elif defined(OP_HARDSIGMOID)
#define EVAL(x, y, z) (CLAMP_NAN((x) + (CT)3, (CT)0, (CT)6) / (CT)6)
#elif defined(OP_LEAKY_RELU)
#define EVAL(x, y, z) ((x) > (CT)0 ? (x) : (x) * s0)
#elif defined(OP_ELU)
#define EVAL(x, y, z) ((x) <= (CT)0 ? (exp((x) * s2) - (CT)1) * s0 * s1 : (x) * s1)
#elif defined(OP_SOFTPLUS)
#define EVAL(x, y, z) ((x) * s0 > s1 ? (x) : log1p(exp((x) * s0)) / s0)
#elif defined(OP_MISH)
#define EVAL(x, y, z) ((x) * tanh((x) > (CT)20 ? (x) : log1p(exp(x))))
#elif defined(OP_THRESHOLD)
#define EVAL(x, y, z) ((x) <= s0 ? s1 : (x))
#elif defined(OP_LOGICAL_NOT)
#define EVAL(x, y, z) ((x) == (CT)0)
#elif defined(OP_BITWISE_NOT)
#define EVAL(x, y, z) (~(x))
#elif defined(OP_ISNAN)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) 0
#else
#define EVAL(x, y, z) isnan(x)
#endif
#elif defined(OP_ISINF)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) 0
#else
#define EVAL(x, y, z) isinf(x)
#endif
#elif defined(OP_ISFINITE)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) 1
#else
#define EVAL(x, y, z) isfinite(x)
#endif
#elif defined(OP_NAN_TO_NUM)
#define EVAL(x, y, z) (isnan(x) ? s0 : (isinf(x) ? ((x) > (CT)0 ? s1 : s2) : (x)))
#elif defined(OP_POW_SCALAR)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) pow_l(x, s0)
#else
#define EVAL(x, y, z) pow(x, s0)
#endif
#elif defined(OP_RPOW)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) pow_l(s0, x)
#else
#define EVAL(x, y, z) pow(s0, x)
#endif
#elif defined(OP_ADD)
#define EVAL(x, y, z) ((x) + s0 * (y))
#elif defined(OP_SUB)
#define EVAL(x, y, z) ((x)-s0 * (y))
#elif defined(OP_RSUB)
#define EVAL(x, y, z) ((y)-s0 * (x))
#elif defined(OP_MUL)
#define EVAL(x, y, z) ((x) * (y))
#elif defined(OP_DIV)
#define EVAL(x, y, z) ((x) / (y))
#elif defined(OP_DIV_TRUNC)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) ((y) == 0 ? (CT)0 : (x) / (y))
#else
#define EVAL(x, y, z) trunc((x) / (y))
#endif
#elif defined(OP_DIV_FLOOR)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) floor_div_l(x, y)
#else
#define EVAL(x, y, z) floor_div_f(x, y)
#endif
#elif defined(OP_REMAINDER)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) remainder_l(x, y)
#else
#define EVAL(x, y, z) remainder_f(x, y)
#endif
#elif defined(OP_FMOD)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) ((y) == 0 ? (CT)0 : (x) % (y))
#else
#define EVAL(x, y, z) fmod(x, y)
#endif
#elif defined(OP_POW)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) pow_l(x, y)
#else
#define EVAL(x, y, z) pow(x, y)
#endif
#elif defined(OP_ATAN2)
#define EVAL(x, y, z) atan2(x, y)
#elif defined(OP_MAXIMUM)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) ((x) > (y) ? (x) : (y))
#else
#define EVAL(x, y, z) NAN_MAX(x, y)
#endif
#elif defined(OP_MINIMUM)
#if defined(CT_IS_INT)
#define EVAL(x, y, z) ((x) < (y) ? (x) : (y))
#else
#define EVAL(x, y, z) NAN_MIN(x, y)
#endif
#elif defined(OP_EQ)
#define EVAL(x, y, z) ((x) == (y))
#elif defined(OP_NE)
#define EVAL(x, y, z) ((x) != (y))
#elif defined(OP_LT)
#define EVAL(x, y, z) ((x) < (y))
#elif defined(OP_LE)
#define EVAL(x, y, z) ((x) <= (y))
#elif defined(OP_GT)
#define EVAL(x, y, z) ((x) > (y))
#elif defined(OP_GE)
#define EVAL(x, y, z) ((x) >= (y))
#elif defined(OP_LOGICAL_AND)
#define EVAL(x, y, z) ((x) != (CT)0 && (y) != (CT)0)
#elif defined(OP_LOGICAL_OR)
#define EVAL(x, y, z) ((x) != (CT)0 || (y) != (CT)0)
#elif defined(OP_LOGICAL_XOR)
#define EVAL(x, y, z) (((x) != (CT)0) != ((y) != (CT)0))
#elif defined(OP_BITWISE_AND)
#define EVAL(x, y, z) ((x) & (y))
#elif defined(OP_BITWISE_OR)
#define EVAL(x, y, z) ((x) | (y))
#elif defined(OP_BITWISE_XOR)
#define EVAL(x, y, z) ((x) ^ (y))
#elif defined(OP_WHERE)
#define EVAL(x, y, z) ((x) != (CT)0 ? (y) : (z))
#elif defined(OP_CLAMP_TENSOR)
// y and z are the bounds; a missing bound is given as a scalar +-infinity (or the integer limits).
#define EVAL(x, y, z) clamp_tensor(x, y, z)
#else
#error "elementwise.cl: no OP_ define given"
#endif

#if defined(OP_CLAMP)
// clamp(x, min, max) = min(max(x, lo), hi), NaN in x propagating; s2 bit 0: has min, bit 1: has max.
#define clamp_scalar(x) clamp_impl(x, s0, s1, s2)
#endif
#if defined(OP_CLAMP) || defined(OP_CLAMP_TENSOR)
inline CT clamp_impl(CT x, CT lo, CT hi, CT flags) {
  long f = (long)flags;
#if !defined(CT_IS_INT)
  if (isnan(x)) return x;
#endif
  if ((f & 1) && x < lo) x = lo;
  if ((f & 2) && x > hi) x = hi;
  return x;
}
#define clamp_tensor(x, y, z) clamp_impl(x, y, z, s2)
#endif

// ---- operand access ----
#if NIN >= 1
#ifdef A_SCALAR
#define A_PARAM
#define GET_A(i) sa
#else
#define A_PARAM __global const A_T *a, long a_off,
#define GET_A(i) ((CT)A_LD(a, i))
#endif
#endif
#if NIN >= 2
#ifdef B_SCALAR
#define B_PARAM
#define GET_B(i) sb
#else
#define B_PARAM __global const B_T *b, long b_off,
#define GET_B(i) ((CT)B_LD(b, i))
#endif
#endif
#if NIN >= 3
#ifdef C_SCALAR
#define C_PARAM
#define GET_C(i) sc
#else
#define C_PARAM __global const C_T *c, long c_off,
#define GET_C(i) ((CT)C_LD(c, i))
#endif
#endif
#if NIN < 1
#define A_PARAM
#define GET_A(i) ((CT)0)
#endif
#if NIN < 2
#define B_PARAM
#define GET_B(i) ((CT)0)
#endif
#if NIN < 3
#define C_PARAM
#define GET_C(i) ((CT)0)
#endif

#define SCALAR_PARAMS CT s0, CT s1, CT s2, CT sa, CT sb, CT sc

__kernel void elementwise_contig(__global OUT_T* out, long out_off, A_PARAM B_PARAM C_PARAM SCALAR_PARAMS) {
  long i = get_global_id(0);
  CT x = GET_A(a_off + i);
  CT y = GET_B(b_off + i);
  CT z = GET_C(c_off + i);
  OUT_ST(out, out_off + i, EVAL(x, y, z), OUT_T);
}

__kernel void elementwise_strided(__global OUT_T* out, long out_off, A_PARAM B_PARAM C_PARAM __global const long* meta,
                                  int meta_off, SCALAR_PARAMS) {
  meta += meta_off;
  int nd = (int)meta[0];
  long oo = out_off;
#if NIN >= 1 && !defined(A_SCALAR)
  long oa = a_off;
#else
  long oa = 0;
#endif
#if NIN >= 2 && !defined(B_SCALAR)
  long ob = b_off;
#else
  long ob = 0;
#endif
#if NIN >= 3 && !defined(C_SCALAR)
  long oc = c_off;
#else
  long oc = 0;
#endif
  if (nd > 0) {
    __global const long* st = meta + 1 + nd;  // strides: out, a, b, c (nd each)
    long i0 = get_global_id(0);
    oo += i0 * st[nd - 1];
    oa += i0 * st[2 * nd - 1];
    ob += i0 * st[3 * nd - 1];
    oc += i0 * st[4 * nd - 1];
    long rest = get_global_id(1);
    for (int d = nd - 2; d >= 0; --d) {
      long s = meta[1 + d];
      long idx = rest % s;
      rest /= s;
      oo += idx * st[d];
      oa += idx * st[nd + d];
      ob += idx * st[2 * nd + d];
      oc += idx * st[3 * nd + d];
    }
  }
  CT x = GET_A(oa);
  CT y = GET_B(ob);
  CT z = GET_C(oc);
  OUT_ST(out, oo, EVAL(x, y, z), OUT_T);
}
