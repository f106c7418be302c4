// Matrix products: linear, matmul (every rank case of torch.matmul, batch dims broadcast), mm, bmm,
// addmm, baddbmm, mv, dot; and the GEMM and typed-copy helpers the other nn families share.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {

// ---- dtypes and copies ---------------------------------------------------------------------------

DType float_compute_dtype(const Tensor& t, const char* op, const char* what) {
  switch (t.dtype()) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
      return DType::kFloat32;
    case DType::kFloat64:
      return DType::kFloat64;
    default:
      fail(ErrorKind::kUnsupported, op, ": ", what, " ", t.describe(),
           " has an integer or bool dtype; this op computes on floating tensors only");
  }
}

void check_same_dtype(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                      const char* b_name) {
  CONVOY_CHECK(a.dtype() == b.dtype(), op, ": ", a_name, " ", a.describe(), " and ", b_name, " ",
               b.describe(), " must have the same dtype");
}

namespace {

// Copies a strided view into a contiguous buffer of D, converting S → D; the innermost dim is a
// tight loop, the outer dims advance an index counter.
template <typename S, typename D, typename Load>
void strided_copy(const S* src, const Shape& sizes, const Shape& strides, D* dst, Load load) {
  int64_t rank = static_cast<int64_t>(sizes.size());
  int64_t n = shape_numel(sizes);
  if (n == 0) return;
  if (rank == 0) {
    dst[0] = static_cast<D>(load(src));
    return;
  }
  int64_t inner = sizes[rank - 1], inner_stride = strides[rank - 1];
  std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
  int64_t off = 0;
  for (int64_t done = 0; done < n; done += inner) {
    const S* s = src + off;
    for (int64_t j = 0; j < inner; ++j) dst[done + j] = static_cast<D>(load(s + j * inner_stride));
    for (int64_t d = rank - 2; d >= 0; --d) {
      if (++idx[static_cast<size_t>(d)] < sizes[static_cast<size_t>(d)]) {
        off += strides[static_cast<size_t>(d)];
        break;
      }
      off -= strides[static_cast<size_t>(d)] * (sizes[static_cast<size_t>(d)] - 1);
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}

template <typename D>
bool copy_typed(const Tensor& t, D* dst) {
  switch (t.dtype()) {
    case DType::kFloat32:
      strided_copy(t.data<float>(), t.sizes(), t.strides(), dst, [](const float* p) { return *p; });
      return true;
    case DType::kFloat64:
      strided_copy(t.data<double>(), t.sizes(), t.strides(), dst, [](const double* p) { return *p; });
      return true;
    case DType::kFloat16:
      strided_copy(t.data<uint16_t>(), t.sizes(), t.strides(), dst,
                   [](const uint16_t* p) { return half_to_float(*p); });
      return true;
    case DType::kBFloat16:
      strided_copy(t.data<uint16_t>(), t.sizes(), t.strides(), dst,
                   [](const uint16_t* p) { return bfloat16_to_float(*p); });
      return true;
    default:
      return false;
  }
}

}  // namespace

Tensor copy_as(const Tensor& t, DType dtype) {
  if (dtype == DType::kFloat32 || dtype == DType::kFloat64) {
    Tensor out = Tensor::empty(t.sizes(), dtype);
    bool done =
        dtype == DType::kFloat32 ? copy_typed(t, out.data<float>()) : copy_typed(t, out.data<double>());
    if (done) return out;
  }
  Tensor out = Tensor::empty(t.sizes(), dtype);
  out.copy_from(t);
  return out;
}

Tensor contiguous_as(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype && t.is_contiguous()) return t;
  return copy_as(t, dtype);
}

// ---- GEMM ------------------------------------------------------------------------------------

namespace {

// 16-byte vectors (SSE2/NEON width) through the GCC/Clang vector extension, so the micro-kernel's code
// does not depend on the optimisation level's auto-vectoriser.
typedef float Float4 __attribute__((vector_size(16)));
typedef double Double2 __attribute__((vector_size(16)));

template <typename T>
struct Vec16;
template <>
struct Vec16<float> {
  using type = Float4;
  static constexpr int kLanes = 4;
};
template <>
struct Vec16<double> {
  using type = Double2;
  static constexpr int kLanes = 2;
};

template <typename V, typename T>
inline V load_vec(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}

// One MR × (2·lanes) tile of C accumulated in registers over kn steps of k: per step, two vectors of a
// B row and MR broadcasts of A feed 2·MR vector multiply-adds.
template <typename T, int MR>
inline void gemm_tile(int64_t kn, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t ldb, T* c,
                      int64_t ldc) {
  using V = typename Vec16<T>::type;
  constexpr int L = Vec16<T>::kLanes;
  V acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = V{};
  for (int64_t k = 0; k < kn; ++k) {
    const T* br = b + k * ldb;
    const V b0 = load_vec<V>(br), b1 = load_vec<V>(br + L);
    for (int r = 0; r < MR; ++r) {
      const V av = V{} + a[r * a_rs + k * a_cs];
      acc0[r] += av * b0;
      acc1[r] += av * b1;
    }
  }
  for (int r = 0; r < MR; ++r) {
    T* cr = c + r * ldc;
    V c0 = load_vec<V>(cr) + acc0[r], c1 = load_vec<V>(cr + L) + acc1[r];
    __builtin_memcpy(cr, &c0, sizeof(V));
    __builtin_memcpy(cr + L, &c1, sizeof(V));
  }
}

// Edge of C (fewer than MR rows or NR columns left): row-by-row axpy over B's rows.
template <typename T>
void gemm_edge(int64_t m, int64_t n, int64_t kn, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
               int64_t ldb, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict ci = c + i * ldc;
    for (int64_t k = 0; k < kn; ++k) {
      const T av = a[i * a_rs + k * a_cs];
      const T* __restrict br = b + k * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += av * br[j];
    }
  }
}

}  // namespace

template <typename T>
void gemm_accumulate(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                     int64_t ldb, T* c, int64_t ldc) {
  // Tiles of MR rows × two vectors of columns; blocks of B (kKB × kNB) stay in L2 across the rows of A.
  constexpr int MR = 6;
  constexpr int NR = 2 * Vec16<T>::kLanes;
  constexpr int64_t kNB = 256;
  constexpr int64_t kKB = 256;
  for (int64_t j0 = 0; j0 < N; j0 += kNB) {
    const int64_t jn = std::min(kNB, N - j0);
    const int64_t jfull = jn / NR * NR;
    for (int64_t k0 = 0; k0 < K; k0 += kKB) {
      const int64_t kn = std::min(kKB, K - k0);
      const T* ak = a + k0 * a_cs;
      const T* bk = b + k0 * ldb + j0;
      int64_t i = 0;
      for (; i + MR <= M; i += MR) {
        for (int64_t j = 0; j < jfull; j += NR)
          gemm_tile<T, MR>(kn, ak + i * a_rs, a_rs, a_cs, bk + j, ldb, c + i * ldc + j0 + j, ldc);
        if (jfull < jn)
          gemm_edge<T>(MR, jn - jfull, kn, ak + i * a_rs, a_rs, a_cs, bk + jfull, ldb,
                       c + i * ldc + j0 + jfull, ldc);
      }
      if (i < M) gemm_edge<T>(M - i, jn, kn, ak + i * a_rs, a_rs, a_cs, bk, ldb, c + i * ldc + j0, ldc);
    }
  }
}

template <typename T>
const T* rows_contiguous(const T* b, int64_t K, int64_t N, int64_t b_rs, int64_t b_cs, std::vector<T>& buffer,
                         int64_t& ldb) {
  if (b_cs == 1 || N == 1) {
    ldb = b_rs;
    return b;
  }
  buffer.resize(static_cast<size_t>(K * N));
  // Walk the source in its own contiguous direction when it is a transposed matrix (b_rs == 1).
  if (b_rs == 1) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) buffer[static_cast<size_t>(k * N + n)] = b[k + n * b_cs];
  } else {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) buffer[static_cast<size_t>(k * N + n)] = b[k * b_rs + n * b_cs];
  }
  ldb = N;
  return buffer.data();
}

namespace {

// Dot product with several independent partial sums so the compiler can vectorise it without
// reassociation flags.
template <typename T>
inline T dot_contiguous(const T* x, const T* y, int64_t n) {
  T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int u = 0; u < 8; ++u) s[u] += x[k + u] * y[k + u];
  T total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; k < n; ++k) total += x[k] * y[k];
  return total;
}

}  // namespace

template <typename T>
void linear_rows(const T* x, int64_t M, int64_t K, const T* w, int64_t N, const T* bias, T* y) {
  if (M <= 2) {
    // One or two rows: packing wᵀ would cost as much as the product itself.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n)
        y[i * N + n] = dot_contiguous(x + i * K, w + n * K, K) + (bias ? bias[n] : T(0));
    return;
  }
  for (int64_t i = 0; i < M; ++i) {
    T* row = y + i * N;
    if (bias)
      std::copy(bias, bias + N, row);
    else
      std::fill(row, row + N, T(0));
  }
  std::vector<T> packed;
  int64_t ldb = 0;
  const T* bt = rows_contiguous(w, K, N, /*b_rs=*/1, /*b_cs=*/K, packed, ldb);
  gemm_accumulate(M, N, K, x, K, 1, bt, ldb, y, N);
}

template <typename T>
void softmax_rows(T* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = x + r * n;
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  }
}

template void gemm_accumulate<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                                     int64_t, float*, int64_t);
template void gemm_accumulate<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                      const double*, int64_t, double*, int64_t);
template const float* rows_contiguous<float>(const float*, int64_t, int64_t, int64_t, int64_t,
                                             std::vector<float>&, int64_t&);
template const double* rows_contiguous<double>(const double*, int64_t, int64_t, int64_t, int64_t,
                                               std::vector<double>&, int64_t&);
template void linear_rows<float>(const float*, int64_t, int64_t, const float*, int64_t, const float*, float*);
template void linear_rows<double>(const double*, int64_t, int64_t, const double*, int64_t, const double*,
                                  double*);
template void softmax_rows<float>(float*, int64_t, int64_t);
template void softmax_rows<double>(double*, int64_t, int64_t);

// ---- linear --------------------------------------------------------------------------------------

Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const char* op) {
  CONVOY_CHECK(input.dim() >= 1, op, ": input ", input.describe(), " must have at least one dimension");
  CONVOY_CHECK(weight.dim() == 1 || weight.dim() == 2, op, ": weight ", weight.describe(),
               " must be 1-D or 2-D");
  check_same_dtype(op, input, "input", weight, "weight");
  const int64_t K = input.size(-1);
  const int64_t wk = weight.size(-1);
  CONVOY_CHECK(K == wk, op, ": input ", input.describe(), " and weight ", weight.describe(),
               " have mismatched inner dimensions ", K, " vs ", wk);
  const int64_t N = weight.dim() == 2 ? weight.size(0) : 1;
  if (bias.defined()) {
    check_same_dtype(op, input, "input", bias, "bias");
    CONVOY_CHECK(bias.numel() == N || bias.numel() == 1, op, ": bias ", bias.describe(),
                 " does not match the ", N, " output features of weight ", weight.describe());
  }
  Shape out_shape(input.sizes().begin(), input.sizes().end() - 1);
  if (weight.dim() == 2) out_shape.push_back(N);
  const int64_t M = K == 0 ? shape_numel(out_shape) / std::max<int64_t>(N, 1) : input.numel() / K;
  const DType compute = float_compute_dtype(input, op, "input");
  Tensor result = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor x = contiguous_as(input, compute);
    Tensor w = contiguous_as(weight, compute);
    Tensor out = Tensor::empty(out_shape, compute);
    std::vector<T> bias_row;
    if (bias.defined()) {
      Tensor b = contiguous_as(bias, compute);
      bias_row.assign(static_cast<size_t>(N), b.data<T>()[0]);
      if (b.numel() == N) std::copy(b.data<T>(), b.data<T>() + N, bias_row.begin());
    }
    linear_rows<T>(x.data<T>(), M, K, w.data<T>(), N, bias.defined() ? bias_row.data() : nullptr,
                   out.data<T>());
    return out;
  });
  return to_result_dtype(result, input.dtype());
}

namespace {

// ---- batched matrix product ------------------------------------------------------------------------

// The dtype a product computes in: float for float32/16/bf16, double for float64 and (exactly, within
// 2^53) for integers, as torch.matmul accepts integer tensors on CPU.
DType product_compute_dtype(const Tensor& t, const char* op) {
  if (is_floating(t.dtype())) return float_compute_dtype(t, op, "operand");
  CONVOY_CHECK_KIND(kUnsupported, t.dtype() != DType::kBool, op, ": bool operand ", t.describe(),
                    " is not supported");
  return DType::kFloat64;
}

// out[batch..., M, N] = a[batch..., M, K] · b[batch..., K, N], batch dims of a and b broadcast
// (a and b have at least 2 dims). Both must already be of dtype T; strides are honoured.
template <typename T>
Tensor batched_product(const Tensor& a, const Tensor& b, const char* op) {
  const int64_t ra = a.dim(), rb = b.dim();
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  CONVOY_CHECK(b.size(-2) == K, op, ": ", a.describe(), " and ", b.describe(),
               " have mismatched inner dimensions ", K, " vs ", b.size(-2));
  const int64_t batch_rank = std::max(ra, rb) - 2;
  Shape batch(static_cast<size_t>(batch_rank));
  Shape a_bs(static_cast<size_t>(batch_rank), 0), b_bs(static_cast<size_t>(batch_rank), 0);
  for (int64_t d = 0; d < batch_rank; ++d) {
    const int64_t da = d - (batch_rank - (ra - 2)), db = d - (batch_rank - (rb - 2));
    const int64_t sa = da >= 0 ? a.sizes()[static_cast<size_t>(da)] : 1;
    const int64_t sb = db >= 0 ? b.sizes()[static_cast<size_t>(db)] : 1;
    CONVOY_CHECK(sa == sb || sa == 1 || sb == 1, op, ": batch dimensions of ", a.describe(), " and ",
                 b.describe(), " cannot be broadcast (", sa, " vs ", sb, " at batch dim ", d, ")");
    batch[static_cast<size_t>(d)] = std::max(sa, sb);
    if (sa == 0 || sb == 0) batch[static_cast<size_t>(d)] = 0;
    a_bs[static_cast<size_t>(d)] = (da >= 0 && sa != 1) ? a.strides()[static_cast<size_t>(da)] : 0;
    b_bs[static_cast<size_t>(d)] = (db >= 0 && sb != 1) ? b.strides()[static_cast<size_t>(db)] : 0;
  }
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, dtype_of<T>());
  const int64_t nbatch = shape_numel(batch);
  if (M == 0 || N == 0 || nbatch == 0) return out;
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  T* op_ = out.data<T>();
  const int64_t a_rs = a.stride(-2), a_cs = a.stride(-1), b_rs = b.stride(-2), b_cs = b.stride(-1);
  std::vector<T> packed;
  std::vector<int64_t> idx(static_cast<size_t>(batch_rank), 0);
  for (int64_t bi = 0; bi < nbatch; ++bi) {
    int64_t a_off = 0, b_off = 0;
    for (int64_t d = 0; d < batch_rank; ++d) {
      a_off += idx[static_cast<size_t>(d)] * a_bs[static_cast<size_t>(d)];
      b_off += idx[static_cast<size_t>(d)] * b_bs[static_cast<size_t>(d)];
    }
    int64_t ldb = 0;
    const T* brows = rows_contiguous(bp + b_off, K, N, b_rs, b_cs, packed, ldb);
    gemm_accumulate<T>(M, N, K, ap + a_off, a_rs, a_cs, brows, ldb, op_ + bi * M * N, N);
    for (int64_t d = batch_rank - 1; d >= 0; --d) {
      if (++idx[static_cast<size_t>(d)] < batch[static_cast<size_t>(d)]) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
  return out;
}

// Prepares both operands in one compute dtype (views keep their strides when no conversion is
// needed) and runs batched_product. Result in the operands' dtype.
Tensor product(const Tensor& a, const Tensor& b, const char* op) {
  check_same_dtype(op, a, "self", b, "other");
  const DType compute = product_compute_dtype(a, op);
  Tensor ac = a.dtype() == compute ? a : contiguous_as(a, compute);
  Tensor bc = b.dtype() == compute ? b : contiguous_as(b, compute);
  Tensor out = dispatch_float(compute, [&](auto tag) { return batched_product<decltype(tag)>(ac, bc, op); });
  return to_result_dtype(out, a.dtype());
}

// A view of t with a size-1 dim inserted at `dim` (no copy).
Tensor unsqueeze_view(const Tensor& t, int64_t dim) {
  Shape sizes = t.sizes(), strides = t.strides();
  const int64_t stride =
      dim < t.dim() ? sizes[static_cast<size_t>(dim)] * strides[static_cast<size_t>(dim)] : 1;
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return t.as_strided(sizes, strides, t.offset());
}

Tensor reshape_result(const Tensor& t, const Shape& shape) {
  return t.as_strided(shape, contiguous_strides(shape), t.offset());
}

Tensor matmul(const Tensor& a, const Tensor& b, const char* op) {
  CONVOY_CHECK(a.dim() >= 1 && b.dim() >= 1, op, ": both arguments need at least one dimension, got ",
               a.describe(), " and ", b.describe());
  if (a.dim() == 1 && b.dim() == 1) {
    CONVOY_CHECK(a.size(0) == b.size(0), op, ": 1-D tensors ", a.describe(), " and ", b.describe(),
                 " have different lengths");
    Tensor r = product(unsqueeze_view(a, 0), unsqueeze_view(b, 1), op);
    return reshape_result(r, {});
  }
  if (a.dim() == 1) {
    Tensor r = product(unsqueeze_view(a, 0), b, op);  // (..., 1, N)
    Shape shape = r.sizes();
    shape.erase(shape.end() - 2);
    return reshape_result(r, shape);
  }
  if (b.dim() == 1) {
    Tensor r = product(a, unsqueeze_view(b, 1), op);  // (..., M, 1)
    Shape shape = r.sizes();
    shape.pop_back();
    return reshape_result(r, shape);
  }
  return product(a, b, op);
}

// beta·self + alpha·product, self broadcast to the product's shape; beta = 0 ignores self entirely
// (NaN in self does not propagate), as PyTorch does.
Tensor add_scaled(const Tensor& self, Tensor prod, double beta, double alpha, const char* op) {
  CONVOY_CHECK(self.dtype() == prod.dtype(), op, ": self ", self.describe(),
               " must have the dtype of the product ", dtype_name(prod.dtype()));
  const DType compute = product_compute_dtype(prod, op);
  // prod is a fresh result of this op, so scaling it in place is safe.
  Tensor p = contiguous_as(prod, compute);
  Tensor s;
  if (beta != 0.0) {
    const int64_t cols = prod.dim() >= 1 ? prod.size(-1) : 1;
    const bool row = self.dim() == 1 && self.size(0) == cols;
    if (self.sizes() == prod.sizes()) {
      s = contiguous_as(self, compute);
    } else {
      // A bias row (the common addmm case) or any other broadcastable shape.
      Tensor expanded = Tensor::empty(prod.sizes(), compute);
      if (row && cols > 0) {
        Tensor b = contiguous_as(self, compute);
        const size_t bytes = static_cast<size_t>(cols) * dtype_size(compute);
        for (int64_t i = 0; i < prod.numel() / cols; ++i)
          std::memcpy(static_cast<uint8_t*>(expanded.raw_data()) + static_cast<size_t>(i) * bytes,
                      b.raw_data(), bytes);
      } else {
        try {
          expanded.copy_from(self);
        } catch (const Error&) {
          fail(ErrorKind::kInvalidInput, op, ": self ", self.describe(),
               " cannot be broadcast to the product shape ", shape_str(prod.sizes()));
        }
      }
      s = expanded;
    }
  }
  dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    T* pp = p.data<T>();
    const int64_t n = p.numel();
    const T a = static_cast<T>(alpha), bt = static_cast<T>(beta);
    if (beta == 0.0) {
      for (int64_t i = 0; i < n; ++i) pp[i] *= a;
    } else {
      const T* sp = s.data<T>();
      for (int64_t i = 0; i < n; ++i) pp[i] = bt * sp[i] + a * pp[i];
    }
    return 0;
  });
  return to_result_dtype(p, prod.dtype());
}

// ---- shape inference ---------------------------------------------------------------------------

std::optional<Shape> broadcast_batch(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t da = i + a.size() >= out.size() ? a[i + a.size() - out.size()] : 1;
    const int64_t db = i + b.size() >= out.size() ? b[i + b.size() - out.size()] : 1;
    if (da == 1)
      out[i] = db;
    else if (db == 1)
      out[i] = da;
    else if (da == -1 || db == -1)
      out[i] = da == -1 ? db : da;
    else if (da == db)
      out[i] = da;
    else
      return std::nullopt;
  }
  return out;
}

std::optional<Shape> matmul_shape(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) return std::nullopt;
  if (a.size() == 1 && b.size() == 1) return Shape{};
  if (a.size() == 1) {
    Shape r(b.begin(), b.end() - 2);
    r.push_back(b.back());
    return r;
  }
  if (b.size() == 1) return Shape(a.begin(), a.end() - 1);
  auto batch = broadcast_batch(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  if (!batch) return std::nullopt;
  batch->push_back(a[a.size() - 2]);
  batch->push_back(b.back());
  return batch;
}

std::vector<TypePtr> infer_matmul(const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
  auto a = known_shape(args, 0), b = known_shape(args, 1);
  std::optional<Shape> shape;
  if (a && b) shape = matmul_shape(*a, *b);
  return tensor_result(known_dtype(args, 0), shape);
}

// addmm/baddbmm: the product's shape (self only broadcasts into it).
std::vector<TypePtr> infer_add_product(const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
  auto a = known_shape(args, 1), b = known_shape(args, 2);
  std::optional<Shape> shape;
  if (a && b && a->size() == b->size() && a->size() >= 2) shape = matmul_shape(*a, *b);
  return tensor_result(known_dtype(args, 0), shape);
}

std::vector<TypePtr> infer_linear(const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
  auto x = known_shape(args, 0), w = known_shape(args, 1);
  std::optional<Shape> shape;
  if (x && w && !x->empty() && (w->size() == 1 || w->size() == 2)) {
    shape = Shape(x->begin(), x->end() - 1);
    if (w->size() == 2) shape->push_back((*w)[0]);
  }
  return tensor_result(known_dtype(args, 0), shape);
}

}  // namespace

void register_linalg_ops(OpRegistry& r) {
  r.add(
      "aten::linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {linear_forward(a[0].to_tensor(), a[1].to_tensor(), optional_tensor(a[2]), "aten::linear")};
      },
      infer_linear);
  r.add(
      "aten::matmul(Tensor self, Tensor other) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {matmul(a[0].to_tensor(), a[1].to_tensor(), "aten::matmul")};
      },
      infer_matmul);
  r.add(
      "aten::mm(Tensor self, Tensor mat2) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& x = a[0].to_tensor();
        const Tensor& y = a[1].to_tensor();
        CONVOY_CHECK(x.dim() == 2 && y.dim() == 2, "aten::mm: both arguments must be 2-D, got ", x.describe(),
                     " and ", y.describe());
        return {product(x, y, "aten::mm")};
      },
      infer_matmul);
  r.add(
      "aten::bmm(Tensor self, Tensor mat2) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& x = a[0].to_tensor();
        const Tensor& y = a[1].to_tensor();
        CONVOY_CHECK(x.dim() == 3 && y.dim() == 3 && x.size(0) == y.size(0),
                     "aten::bmm: arguments must be 3-D with the same batch size, got ", x.describe(), " and ",
                     y.describe());
        return {product(x, y, "aten::bmm")};
      },
      infer_matmul);
  r.add(
      "aten::mv(Tensor self, Tensor vec) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& x = a[0].to_tensor();
        const Tensor& v = a[1].to_tensor();
        CONVOY_CHECK(x.dim() == 2 && v.dim() == 1, "aten::mv: expected a 2-D matrix and a 1-D vector, got ",
                     x.describe(), " and ", v.describe());
        return {matmul(x, v, "aten::mv")};
      },
      infer_matmul);
  r.add(
      "aten::dot(Tensor self, Tensor tensor) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& x = a[0].to_tensor();
        const Tensor& y = a[1].to_tensor();
        CONVOY_CHECK(x.dim() == 1 && y.dim() == 1, "aten::dot: both arguments must be 1-D, got ",
                     x.describe(), " and ", y.describe());
        return {matmul(x, y, "aten::dot")};
      },
      infer_matmul);
  r.add(
      "aten::addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& m1 = a[1].to_tensor();
        const Tensor& m2 = a[2].to_tensor();
        CONVOY_CHECK(m1.dim() == 2 && m2.dim() == 2, "aten::addmm: mat1 and mat2 must be 2-D, got ",
                     m1.describe(), " and ", m2.describe());
        return {add_scaled(a[0].to_tensor(), product(m1, m2, "aten::addmm"), a[3].to_double(),
                           a[4].to_double(), "aten::addmm")};
      },
      infer_add_product);
  r.add(
      "aten::baddbmm(Tensor self, Tensor batch1, Tensor batch2, *, Scalar beta=1, Scalar alpha=1) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& b1 = a[1].to_tensor();
        const Tensor& b2 = a[2].to_tensor();
        CONVOY_CHECK(b1.dim() == 3 && b2.dim() == 3 && b1.size(0) == b2.size(0),
                     "aten::baddbmm: batch1 and batch2 must be 3-D with the same batch size, got ",
                     b1.describe(), " and ", b2.describe());
        return {add_scaled(a[0].to_tensor(), product(b1, b2, "aten::baddbmm"), a[3].to_double(),
                           a[4].to_double(), "aten::baddbmm")};
      },
      infer_add_product);
  r.add(
      "aten::addmv(Tensor self, Tensor mat, Tensor vec, *, Scalar beta=1, Scalar alpha=1) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& m = a[1].to_tensor();
        const Tensor& v = a[2].to_tensor();
        CONVOY_CHECK(m.dim() == 2 && v.dim() == 1,
                     "aten::addmv: expected a 2-D matrix and a 1-D vector, got ", m.describe(), " and ",
                     v.describe());
        return {add_scaled(a[0].to_tensor(), matmul(m, v, "aten::addmv"), a[3].to_double(), a[4].to_double(),
                           "aten::addmv")};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
        auto m = known_shape(args, 1);
        std::optional<Shape> shape;
        if (m && m->size() == 2) shape = Shape{(*m)[0]};
        return tensor_result(known_dtype(args, 0), shape);
      });
}

}  // namespace convoy::nn
