// Register-tiled float32 GEMM with a fused bias+activation epilogue (opencl/gemm/tiled_provider.cpp).
//
// Each work-item owns a tile of C and keeps it in float16 registers for the whole K loop: on a CPU with
// AVX-512 that is one zmm register per accumulator, every loaded vector of B is used TM times and every
// element of A 16·TNV times, which is what turns a load-bound loop into an FMA-bound one. Work-items
// walk down the rows of C first (dimension 0), so consecutive ones reuse the same panel of B from cache.
//
// Two kernels, chosen on the host by where the operands are contiguous:
//   gemm_nvec: C(i, j..j+16·TNV) += A(i,k) broadcast × B(k, j..j+16·TNV): B rows contiguous along N.
//              Serves NN and TN directly, and TT as C^T = B·A stored transposed.
//   gemm_kvec: C(i,j) += dot(A(i, k..k+15), B(k..k+15, j)): A rows and B columns contiguous along K.
//              Serves NT (linear: x·W^T, attention: Q·K^T).
// Operand element (r, c) sits at base[offset + r·stride_r + c·stride_c], so transposes are strides
// passed at run time and one compiled program serves every transpose, activation and bias mode.
//
// Compile-time defines (the host passes them; the defaults let the file compile on its own):
//   TM, TNV    gemm_nvec tile: TM rows × 16·TNV columns per work-item
//   KTM, KTN   gemm_kvec tile: KTM rows × KTN columns per work-item

#ifndef TM
#define TM 8
#endif
#ifndef TNV
#define TNV 2
#endif
#ifndef KTM
#define KTM 4
#endif
#ifndef KTN
#define KTN 4
#endif

#define TN (16 * TNV)

// Activation codes: must match gemm::Activation in opencl/gemm/gemm.h.
#define ACT_IDENTITY 0
#define ACT_RELU 1
#define ACT_RELU6 2
#define ACT_HARDTANH 3
#define ACT_GELU 4
#define ACT_GELU_TANH 5
#define ACT_SILU 6
#define ACT_HARDSWISH 7
#define ACT_SIGMOID 8

// Bias modes: must match gemm::BiasAxis. The bias index is (i) for along-M, (j) for along-N.
#define BIAS_NONE 0
#define BIAS_ALONG_N 1
#define BIAS_ALONG_M 2

// GELU, erf form, exactly as elementwise.cl's gelu_erf computes it for float (PoCL's float erf costs
// ~40 ns per element on a CPU): z = |v|/√2, erfc(z) from Numerical Recipes' Chebyshev fit (fractional
// error < 1.2e-7) and one exp; v < 0 gives h = 0.5·v·erfc(z), v >= 0 gives v - h, so both tails keep
// their relative accuracy; infinities and NaN come out as the erf form gives them. For vectors, select
// picks per lane where the scalar form branches.
#define DEFINE_GELU_ERF(T)                                                \
  inline T gelu_erf_##T(T v) {                                            \
    const T z = fabs(v) * (T)(0.70710678118654752f);                      \
    const T t = (T)(1.0f) / ((T)(1.0f) + (T)(0.5f) * z);                  \
    T p = (T)(0.17087277f);                                               \
    p = p * t - (T)(0.82215223f);                                         \
    p = p * t + (T)(1.48851587f);                                         \
    p = p * t - (T)(1.13520398f);                                         \
    p = p * t + (T)(0.27886807f);                                         \
    p = p * t - (T)(0.18628806f);                                         \
    p = p * t + (T)(0.09678418f);                                         \
    p = p * t + (T)(0.37409196f);                                         \
    p = p * t + (T)(1.00002368f);                                         \
    p = p * t - (T)(1.26551223f);                                         \
    const T h = (T)(0.5f) * v * (t * exp(p - z * z));                     \
    return select(select(v - h, v, isinf(v)), h, v < (T)(0.0f));          \
  }
DEFINE_GELU_ERF(float)
DEFINE_GELU_ERF(float16)

#define DEFINE_ACTIVATE(T)                                                                       \
  inline T activate_##T(T v, int act, float min_value, float max_value) {                      \
    switch (act) {                                                                               \
      case ACT_RELU:                                                                             \
        return fmax(v, (T)(0.0f));                                                               \
      case ACT_RELU6:                                                                            \
        return fmin(fmax(v, (T)(0.0f)), (T)(6.0f));                                              \
      case ACT_HARDTANH:                                                                         \
        return fmin(fmax(v, (T)(min_value)), (T)(max_value));                                    \
      case ACT_GELU:                                                                             \
        return gelu_erf_##T(v);                                                                  \
      case ACT_GELU_TANH:                                                                        \
        return (T)(0.5f) * v *                                                                   \
               ((T)(1.0f) + tanh((T)(0.79788456080286536f) * (v + (T)(0.044715f) * v * v * v))); \
      case ACT_SILU:                                                                             \
        return v / ((T)(1.0f) + exp(-v));                                                        \
      case ACT_HARDSWISH:                                                                        \
        return v * fmin(fmax(v + (T)(3.0f), (T)(0.0f)), (T)(6.0f)) / (T)(6.0f);                  \
      case ACT_SIGMOID:                                                                          \
        return (T)(1.0f) / ((T)(1.0f) + exp(-v));                                                \
      default:                                                                                   \
        return v;                                                                                \
    }                                                                                            \
  }
DEFINE_ACTIVATE(float)
DEFINE_ACTIVATE(float16)

// One C element: alpha, beta, bias and activation all apply here. With beta == 0, C is not read.
inline void store_scalar(__global float* c, ulong c_index, float acc, float alpha, float beta,
                         int bias_mode, __global const float* bias, ulong bi, ulong bj, int act,
                         float min_value, float max_value) {
  float v = alpha * acc;
  if (beta != 0.0f) v += beta * c[c_index];
  if (bias_mode == BIAS_ALONG_N) v += bias[bj];
  if (bias_mode == BIAS_ALONG_M) v += bias[bi];
  c[c_index] = activate_float(v, act, min_value, max_value);
}

// 16 contiguous C elements of row i, columns j..j+15, all in bounds.
inline void store_vector(__global float* c_row, float16 acc, float alpha, float beta, int bias_mode,
                         __global const float* bias, ulong i, ulong j, int act, float min_value,
                         float max_value) {
  float16 v = alpha * acc;
  if (beta != 0.0f) v += beta * vload16(0, c_row);
  if (bias_mode == BIAS_ALONG_N) v += vload16(0, bias + j);
  if (bias_mode == BIAS_ALONG_M) v += (float16)(bias[i]);
  vstore16(activate_float16(v, act, min_value, max_value), 0, c_row);
}

// op(B)(k, j..j+15) when those columns are contiguous; columns at or past n read as zero.
inline float16 load_b_row(__global const float* b_row, ulong j, ulong n) {
  if (j + 16 <= n) return vload16(0, b_row);
  float tmp[16];
#pragma unroll
  for (int t = 0; t < 16; ++t) tmp[t] = (j + t < n) ? b_row[t] : 0.0f;
  return vload16(0, tmp);
}

// Global size (ceil(M/TM), ceil(N/TN), batch). B(k, j) is b[k·b_sk + j] unpacked, or in the panel
// layout of gemm_pack_b when b_panel (= K·TN) is nonzero. C(i,j) is c[i·c_si + j·c_sj]. With
// `swap_bias` the kernel computes C^T (the TT case), so the bias index pair is swapped back to the
// caller's (i, j).
__kernel void gemm_nvec(const ulong m, const ulong n, const ulong k, const float alpha, const float beta,
                        __global const float* a, const ulong a_offset, const ulong a_si, const ulong a_sk,
                        const ulong a_batch, __global const float* b, const ulong b_offset, const ulong b_sk,
                        const ulong b_batch, const ulong b_panel, __global float* c, const ulong c_offset,
                        const ulong c_si, const ulong c_sj, const ulong c_batch, const int bias_mode,
                        __global const float* bias, const ulong bias_offset, const int swap_bias,
                        const int act, const float min_value, const float max_value) {
  const ulong i0 = get_global_id(0) * TM;
  const ulong j0 = get_global_id(1) * TN;
  const ulong batch = get_global_id(2);
  if (i0 >= m || j0 >= n) return;
  a += a_offset + batch * a_batch;
  // Packed B (b_panel != 0, see gemm_pack_b): this tile's columns are one zero-padded panel.
  const bool packed = b_panel != 0;
  b += b_offset + batch * b_batch + (packed ? (j0 / TN) * b_panel : j0);
  c += c_offset + batch * c_batch;
  bias += bias_offset;

  float16 acc[TM][TNV];
#pragma unroll
  for (int r = 0; r < TM; ++r)
#pragma unroll
    for (int v = 0; v < TNV; ++v) acc[r][v] = (float16)(0.0f);

  // Rows past m re-read row m-1 so the inner loop has no branch; their results are never stored.
  __global const float* a_row[TM];
#pragma unroll
  for (int r = 0; r < TM; ++r) a_row[r] = a + min(i0 + r, m - 1) * a_si;

  if (packed || j0 + TN <= n) {
    for (ulong kk = 0; kk < k; ++kk) {
      __global const float* b_row = b + kk * b_sk;
      float16 bv[TNV];
#pragma unroll
      for (int v = 0; v < TNV; ++v) bv[v] = vload16(v, b_row);
      const ulong ak = kk * a_sk;
#pragma unroll
      for (int r = 0; r < TM; ++r) {
        const float16 av = (float16)(a_row[r][ak]);
#pragma unroll
        for (int v = 0; v < TNV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
      }
    }
  } else {
    for (ulong kk = 0; kk < k; ++kk) {
      __global const float* b_row = b + kk * b_sk;
      float16 bv[TNV];
#pragma unroll
      for (int v = 0; v < TNV; ++v) bv[v] = load_b_row(b_row + 16 * v, j0 + 16 * v, n);
      const ulong ak = kk * a_sk;
#pragma unroll
      for (int r = 0; r < TM; ++r) {
        const float16 av = (float16)(a_row[r][ak]);
#pragma unroll
        for (int v = 0; v < TNV; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
      }
    }
  }

  const bool vector_store = c_sj == 1 && !swap_bias;
#pragma unroll
  for (int r = 0; r < TM; ++r) {
    const ulong i = i0 + r;
    if (i < m) {
#pragma unroll
      for (int v = 0; v < TNV; ++v) {
        const ulong jv = j0 + 16 * v;
        if (vector_store && jv + 16 <= n) {
          store_vector(c + i * c_si + jv, acc[r][v], alpha, beta, bias_mode, bias, i, jv, act, min_value,
                       max_value);
        } else if (jv < n) {
          float vals[16];
          vstore16(acc[r][v], 0, vals);
          for (int t = 0; t < 16 && jv + t < n; ++t) {
            const ulong j = jv + t;
            store_scalar(c, i * c_si + j * c_sj, vals[t], alpha, beta, bias_mode, bias, swap_bias ? j : i,
                         swap_bias ? i : j, act, min_value, max_value);
          }
        }
      }
    }
  }
}

// Copies op(B) (K×N, element (k,j) at b[k·b_sk + j·b_sj]) into panels of TN columns, each K×TN and
// contiguous, zero-padded past column N: packed[batch·packed_batch + (j/TN)·K·TN + k·TN + j%TN].
// gemm_nvec then streams each panel sequentially instead of one cache line per row of B: with N a
// power of two, B's rows are a page apart and alias in the caches' sets, which halves throughput at
// 2048². Also turns a transposed B (stored N×K) into what gemm_nvec reads.
// Global size (ceil(N/TN)·TN/16, K, batches).
__kernel void gemm_pack_b(const ulong k, const ulong n, __global const float* b, const ulong b_offset,
                          const ulong b_sk, const ulong b_sj, const ulong b_batch, __global float* packed,
                          const ulong packed_batch) {
  const ulong j = get_global_id(0) * 16;
  const ulong kk = get_global_id(1);
  const ulong batch = get_global_id(2);
  if (kk >= k) return;
  b += b_offset + batch * b_batch + kk * b_sk;
  float16 v;
  if (b_sj == 1 && j + 16 <= n) {
    v = vload16(0, b + j);
  } else {
    float tmp[16];
#pragma unroll
    for (int t = 0; t < 16; ++t) tmp[t] = j + t < n ? b[(j + t) * b_sj] : 0.0f;
    v = vload16(0, tmp);
  }
  vstore16(v, 0, packed + batch * packed_batch + (j / TN) * k * TN + kk * TN + j % TN);
}

// gemm_pack_b for a B stored transposed (element (k,j) at b[j·b_sj + k]: linear weights, K^T in
// attention): each work-item moves a 16×16 block, reading 16 contiguous runs along K and writing 16
// contiguous runs along N, instead of 16 single floats from 16 rows per output vector.
// Global size (ceil(N/TN)·TN/16, ceil(K/16), batches).
__kernel void gemm_pack_b_transposed(const ulong k, const ulong n, __global const float* b,
                                     const ulong b_offset, const ulong b_sj, const ulong b_batch,
                                     __global float* packed, const ulong packed_batch) {
  const ulong j0 = get_global_id(0) * 16;
  const ulong k0 = get_global_id(1) * 16;
  const ulong batch = get_global_id(2);
  b += b_offset + batch * b_batch;
  float tile[16][16];  // [k - k0][j - j0]
#pragma unroll
  for (int jj = 0; jj < 16; ++jj) {
    const ulong j = j0 + jj;
    if (j < n && k0 + 16 <= k) {
      float run[16];
      vstore16(vload16(0, b + j * b_sj + k0), 0, run);
#pragma unroll
      for (int kk = 0; kk < 16; ++kk) tile[kk][jj] = run[kk];
    } else {
#pragma unroll
      for (int kk = 0; kk < 16; ++kk) tile[kk][jj] = (j < n && k0 + kk < k) ? b[j * b_sj + k0 + kk] : 0.0f;
    }
  }
  __global float* out = packed + batch * packed_batch + (j0 / TN) * k * TN + j0 % TN;
#pragma unroll
  for (int kk = 0; kk < 16; ++kk)
    if (k0 + kk < k) vstore16(vload16(0, tile[kk]), 0, out + (k0 + kk) * TN);
}

// Global size (ceil(M/KTM), ceil(N/KTN), batch). A(i,k) = a[i·a_si + k], B(k,j) = b[j·b_sj + k]:
// both contiguous along K, so each (i,j) accumulates a float16 of partial dot products and reduces it
// once at the end.
__kernel void gemm_kvec(const ulong m, const ulong n, const ulong k, const float alpha, const float beta,
                        __global const float* a, const ulong a_offset, const ulong a_si, const ulong a_batch,
                        __global const float* b, const ulong b_offset, const ulong b_sj, const ulong b_batch,
                        __global float* c, const ulong c_offset, const ulong c_si, const ulong c_batch,
                        const int bias_mode, __global const float* bias, const ulong bias_offset,
                        const int act, const float min_value, const float max_value) {
  const ulong i0 = get_global_id(0) * KTM;
  const ulong j0 = get_global_id(1) * KTN;
  const ulong batch = get_global_id(2);
  if (i0 >= m || j0 >= n) return;
  a += a_offset + batch * a_batch;
  b += b_offset + batch * b_batch;
  c += c_offset + batch * c_batch;
  bias += bias_offset;

  __global const float* a_row[KTM];
  __global const float* b_col[KTN];
#pragma unroll
  for (int r = 0; r < KTM; ++r) a_row[r] = a + min(i0 + r, m - 1) * a_si;
#pragma unroll
  for (int s = 0; s < KTN; ++s) b_col[s] = b + min(j0 + s, n - 1) * b_sj;

  float16 acc[KTM][KTN];
#pragma unroll
  for (int r = 0; r < KTM; ++r)
#pragma unroll
    for (int s = 0; s < KTN; ++s) acc[r][s] = (float16)(0.0f);

  const ulong k16 = k & ~(ulong)15;
  for (ulong kk = 0; kk < k16; kk += 16) {
    float16 bv[KTN];
#pragma unroll
    for (int s = 0; s < KTN; ++s) bv[s] = vload16(0, b_col[s] + kk);
#pragma unroll
    for (int r = 0; r < KTM; ++r) {
      const float16 av = vload16(0, a_row[r] + kk);
#pragma unroll
      for (int s = 0; s < KTN; ++s) acc[r][s] = fma(av, bv[s], acc[r][s]);
    }
  }

#pragma unroll
  for (int r = 0; r < KTM; ++r) {
    const ulong i = i0 + r;
#pragma unroll
    for (int s = 0; s < KTN; ++s) {
      const ulong j = j0 + s;
      const float16 x = acc[r][s];
      const float8 h8 = x.lo + x.hi;
      const float4 h4 = h8.lo + h8.hi;
      const float2 h2 = h4.lo + h4.hi;
      float sum = h2.x + h2.y;
      for (ulong kk = k16; kk < k; ++kk) sum = fma(a_row[r][kk], b_col[s][kk], sum);
      if (i < m && j < n)
        store_scalar(c, i * c_si + j, sum, alpha, beta, bias_mode, bias, i, j, act, min_value, max_value);
    }
  }
}

// The epilogue alone, for providers that cannot fuse it (CLBlast): C = act(C + bias) in place.
// Global size (N, M, batch).
__kernel void gemm_epilogue(const ulong m, const ulong n, __global float* c, const ulong c_offset,
                            const ulong ldc, const ulong c_batch, const int bias_mode,
                            __global const float* bias, const ulong bias_offset, const int act,
                            const float min_value, const float max_value) {
  const ulong j = get_global_id(0);
  const ulong i = get_global_id(1);
  if (i >= m || j >= n) return;
  const ulong index = c_offset + get_global_id(2) * c_batch + i * ldc + j;
  float v = c[index];
  if (bias_mode == BIAS_ALONG_N) v += bias[bias_offset + j];
  if (bias_mode == BIAS_ALONG_M) v += bias[bias_offset + i];
  c[index] = activate_float(v, act, min_value, max_value);
}
