// Shared pieces of the neural-network op families (conv.cpp, pooling.cpp, normalization.cpp,
// linalg.cpp, upsample.cpp, nn.cpp, sequence.cpp): the compute-dtype rule, fast typed copies, a cache-blocked
// GEMM, argument helpers and shape-inference helpers. Internal to runtime/ops; not a public API.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/error.h"
#include "runtime/graph/type.h"
#include "runtime/ivalue.h"
#include "runtime/ops/registry.h"
#include "runtime/tensor.h"

namespace convoy::nn {

// Families registered by register_nn_ops (nn.cpp).
void register_conv_ops(OpRegistry& registry);           // conv.cpp
void register_pooling_ops(OpRegistry& registry);        // pooling.cpp
void register_normalization_ops(OpRegistry& registry);  // normalization.cpp
void register_linalg_ops(OpRegistry& registry);         // linalg.cpp
void register_upsample_ops(OpRegistry& registry);       // upsample.cpp

// ---- dtypes ----------------------------------------------------------------------------------

// Floating kernels run in float for float32/float16/bfloat16 and in double for float64, as PyTorch's
// CPU kernels do; anything else is kUnsupported naming the op and the tensor.
DType float_compute_dtype(const Tensor& t, const char* op, const char* what);

// Calls fn(T{}) with T = float or double for a compute dtype from float_compute_dtype.
template <typename Fn>
decltype(auto) dispatch_float(DType compute, Fn&& fn) {
  if (compute == DType::kFloat64) return fn(double{});
  return fn(float{});
}

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, double>)
    return DType::kFloat64;
  else
    return DType::kFloat32;
}

// A contiguous tensor of `dtype` holding t's values; t itself when it already is one. Strided float
// sources are copied with typed loops (Tensor::contiguous goes element by element through doubles).
Tensor contiguous_as(const Tensor& t, DType dtype);
// Always a new contiguous tensor of `dtype` (for kernels that then work in place).
Tensor copy_as(const Tensor& t, DType dtype);

// Throws when two operands of an op have different dtypes (PyTorch's conv/linear/mm refuse too).
void check_same_dtype(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                      const char* b_name);

// Converts a kernel's float/double result back to the dtype of the op's input (float16/bfloat16).
inline Tensor to_result_dtype(Tensor t, DType dtype) { return t.dtype() == dtype ? t : t.to(dtype); }

// ---- GEMM ------------------------------------------------------------------------------------

// C[M, N] += A[M, K] · B[K, N]. A is any strided matrix (element (i, k) at a[i*a_rs + k*a_cs]); B's
// rows are contiguous with row stride ldb; C's rows are contiguous with row stride ldc. Blocked over
// N and K, with a register tile of six rows × two 16-byte vectors written with the compiler's vector
// extension, so the speed does not hinge on the optimisation level's auto-vectoriser.
template <typename T>
void gemm_accumulate(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                     int64_t ldb, T* c, int64_t ldc);

// A K×N matrix with element (k, n) at b[k*b_rs + n*b_cs], as contiguous rows: `b` itself when
// b_cs == 1, else packed into `buffer`. Returns the pointer to use and sets `ldb`.
template <typename T>
const T* rows_contiguous(const T* b, int64_t K, int64_t N, int64_t b_rs, int64_t b_cs, std::vector<T>& buffer,
                         int64_t& ldb);

// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]): nn.Linear on contiguous buffers. y is overwritten.
template <typename T>
void linear_rows(const T* x, int64_t M, int64_t K, const T* w, int64_t N, const T* bias, T* y);

// Normalises each of `rows` contiguous rows of length n in place: (x - mean) / sqrt(var + eps), then
// · weight + bias when given (both length n). Statistics accumulate in double.
template <typename T>
void layer_norm_rows(T* x, int64_t rows, int64_t n, const T* weight, const T* bias, double eps);

// In-place softmax over each of `rows` contiguous rows of length n (max-subtracted; a row that is
// all -inf yields NaN, as PyTorch's softmax does).
template <typename T>
void softmax_rows(T* x, int64_t rows, int64_t n);

// Linear-layer forward on tensors of any rank: input (*, K), weight (N, K), bias (N) or undefined.
// Checks shapes and dtypes, naming `op`. Returns (*, N) in input's dtype.
Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const char* op);

// layer_norm over the trailing dims `normalized_shape`; weight/bias may be undefined.
Tensor layer_norm_forward(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                          const Tensor& bias, double eps, const char* op);

// ---- arguments ---------------------------------------------------------------------------------

// An int-list argument that may arrive as one int or a one-element list ("int[2] stride=1"), repeated
// to n entries; anything else of the wrong length is an error naming op and argument.
std::vector<int64_t> int_list_arg(const IValue& v, size_t n, const char* op, const char* name);

// An optional tensor argument: undefined Tensor for None.
inline Tensor optional_tensor(const IValue& v) { return v.is_none() ? Tensor() : v.to_tensor(); }

// ---- shape inference helpers ------------------------------------------------------------------

// The shape of a tensor-typed argument when its static type carries one.
std::optional<Shape> known_shape(const std::vector<TypePtr>& args, size_t i);
std::optional<DType> known_dtype(const std::vector<TypePtr>& args, size_t i);
// A constant int list argument (also accepting a single int, repeated to n when n > 0).
std::optional<std::vector<int64_t>> const_ints(const std::vector<const IValue*>& constants, size_t i,
                                               size_t n = 0);
std::optional<int64_t> const_int(const std::vector<const IValue*>& constants, size_t i);
std::optional<bool> const_bool(const std::vector<const IValue*>& constants, size_t i);
// The result dtype of a floating op: the input's dtype when known.
inline std::vector<TypePtr> tensor_result(std::optional<DType> dtype, std::optional<Shape> shape) {
  return {Type::tensor(dtype, std::move(shape))};
}

}  // namespace convoy::nn
