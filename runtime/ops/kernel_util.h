// Shared helpers for reference kernels: PyTorch's type promotion (torch.result_type), broadcasting,
// a dtype dispatch helper for typed loops, a strided N-operand element loop, argument decoding, and
// the building blocks of InferFns (promoted dtype, broadcast shape, reduced shape).
//
// Conventions the kernels follow (and that callers of these helpers can rely on):
// - Values are computed in double for floating dtypes and in int64 (wrapping to the dtype's width when
//   stored) for integer and bool dtypes; results are rounded to the output dtype when stored.
// - A Python scalar argument (schema type "Scalar") takes part in promotion as a "wrapped number",
//   exactly as in PyTorch: it never raises the result above the category (bool < integer < floating)
//   of the tensors, and a float scalar with integer tensors gives the default dtype float32.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/error.h"
#include "runtime/graph/type.h"
#include "runtime/ivalue.h"
#include "runtime/tensor.h"

namespace convoy {

// torch.get_default_dtype() as TorchScript models see it.
constexpr DType kDefaultFloatDType = DType::kFloat32;

// ---------------------------------------------------------------------------------------------------
// Type promotion

// How torch.result_type ranks an operand: within one category (bool < integer < floating) tensors
// with dimensions decide over 0-dim tensors, which decide over Python scalars; an operand of a lower
// rank only matters when it is of a higher category.
enum class PromotionRank { kDimensioned, kZeroDim, kWrappedScalar };

struct PromotionOperand {
  DType dtype;
  PromotionRank rank;
};

// A tensor operand; its rank follows from tensor.dim().
PromotionOperand promotion_operand(const Tensor& tensor);
// A Tensor or a number IValue (bool, int, float: a wrapped scalar). Throws naming `op` otherwise.
PromotionOperand promotion_operand(const IValue& value, const char* op);

// torch.result_type over any number of operands (at least one).
DType result_type(const std::vector<PromotionOperand>& operands);

// The dtype PyTorch gives the 0-dim tensor that wraps a Python scalar: bool, int64 or float64.
DType wrapped_scalar_dtype(const IValue& value, const char* op);
// A number IValue as a 0-dim tensor of wrapped_scalar_dtype, so kernels can treat it as an operand.
Tensor scalar_to_tensor(const IValue& value, const char* op);

// torch.can_cast: floating → integral/bool and non-bool → bool are not allowed.
bool can_cast(DType from, DType to);
// The check PyTorch makes before writing a result of dtype `result` into `self` (in-place ops).
void check_can_cast_to_self(DType result, DType self, const char* op);

// PyTorch's checked Scalar conversion (c10::checked_convert), used where its kernels read a Scalar
// argument as the tensor's element type (clamp bounds, pow exponents, alpha, fill values): throws
// "value cannot be converted to type uint8 without overflow" naming `op` when `value` is outside the
// range of `dtype` (infinities and NaN fit floating dtypes).
void check_scalar_fits(const IValue& value, DType dtype, const char* op);

// PyTorch's ScalarType names ("Float", "Long") for messages that match PyTorch's wording.
const char* scalar_type_name(DType dtype);

// ---------------------------------------------------------------------------------------------------
// Value conversions used by kernels

// Rounds `v` to what a value of dtype `dtype` can hold: float32/float16/bfloat16 precision for those
// dtypes, truncation toward zero and wrap-around for integers, 0/1 for bool.
double round_to_dtype(double v, DType dtype);
// Wraps an integer to the width of an integer dtype (two's complement), or to 0/1 for bool.
int64_t wrap_to_dtype(int64_t v, DType dtype);

// Largest and lowest finite value of a floating dtype (as torch.finfo(dtype).max / .min).
double dtype_max(DType dtype);
double dtype_lowest(DType dtype);

// ---------------------------------------------------------------------------------------------------
// Dtype dispatch: calls fn(DTypeTag<T>{}) with T the C++ element type of `dtype`; use it to write one
// typed loop for all dtypes:
//   dispatch_dtype(t.dtype(), "aten::foo", [&](auto tag) {
//     using T = typename decltype(tag)::type;
//     const T* p = t.data<T>();
//     double v = to_double(p[0]);          // works for every T, including Half and BFloat16
//     p_out[0] = from_double<T>(v * 2);    // rounds and wraps as a cast to the dtype would
//   });
// float16 and bfloat16 elements are the 16-bit patterns wrapped in Half / BFloat16.

struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

template <typename T>
struct DTypeTag {
  using type = T;
};

template <typename T>
inline double to_double(T v) {
  if constexpr (std::is_same_v<T, Half>) {
    return half_to_float(v.bits);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return bfloat16_to_float(v.bits);
  } else {
    return static_cast<double>(v);
  }
}

template <typename T>
inline T from_double(double v) {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{float_to_half(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return BFloat16{float_to_bfloat16(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    // Through int64 so that out-of-range values wrap as PyTorch's casts do on x86.
    return static_cast<T>(static_cast<int64_t>(v));
  }
}

template <typename Fn>
decltype(auto) dispatch_dtype(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::kUInt8:
      return fn(DTypeTag<uint8_t>{});
    case DType::kInt8:
      return fn(DTypeTag<int8_t>{});
    case DType::kInt16:
      return fn(DTypeTag<int16_t>{});
    case DType::kInt32:
      return fn(DTypeTag<int32_t>{});
    case DType::kInt64:
      return fn(DTypeTag<int64_t>{});
    case DType::kFloat16:
      return fn(DTypeTag<Half>{});
    case DType::kFloat32:
      return fn(DTypeTag<float>{});
    case DType::kFloat64:
      return fn(DTypeTag<double>{});
    case DType::kBool:
      return fn(DTypeTag<bool>{});
    case DType::kBFloat16:
      return fn(DTypeTag<BFloat16>{});
  }
  fail(ErrorKind::kInternal, op, ": bad dtype code ", static_cast<int>(dtype));
}

// ---------------------------------------------------------------------------------------------------
// Broadcasting

// The broadcast of two shapes (numpy rules); throws naming `op` and both shapes when they differ in
// a dim where neither is 1.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
Shape broadcast_shapes(const std::vector<Shape>& shapes, const char* op);
// Element strides that read `tensor` as if expanded to `shape` (0 where it broadcasts).
Shape broadcast_strides(const Tensor& tensor, const Shape& shape, const char* op);
// A view of `tensor` expanded to `shape` (stride 0 in broadcast dims), as Tensor.expand does.
Tensor expand_to(const Tensor& tensor, const Shape& shape, const char* op);

// ---------------------------------------------------------------------------------------------------
// Strided element loop

// Calls fn(offsets) for every index of `sizes` in row-major order, where offsets[k] is operand k's
// element offset: start[k] + sum_d index[d] * strides[k][d] (each strides[k] has sizes.size()
// entries). The innermost dim runs in a tight loop, so this is the building block for fast naive
// kernels over strided and broadcast operands.
template <size_t N, typename Fn>
void for_each_element(const Shape& sizes, const std::array<const int64_t*, N>& strides,
                      std::array<int64_t, N> start, Fn&& fn) {
  for (int64_t s : sizes)
    if (s == 0) return;
  const size_t rank = sizes.size();
  if (rank == 0) {
    fn(start);
    return;
  }
  std::vector<int64_t> index(rank, 0);
  const int64_t inner = sizes[rank - 1];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = strides[k][rank - 1];
  while (true) {
    std::array<int64_t, N> off = start;
    for (int64_t i = 0; i < inner; ++i) {
      fn(off);
      for (size_t k = 0; k < N; ++k) off[k] += inner_stride[k];
    }
    // Advance the outer index (all dims but the last), odometer style.
    size_t d = rank - 1;
    while (true) {
      if (d == 0) return;
      --d;
      if (++index[d] < sizes[d]) {
        for (size_t k = 0; k < N; ++k) start[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k) start[k] -= strides[k][d] * (sizes[d] - 1);
      index[d] = 0;
    }
  }
}

// One operand of an elementwise loop: raw storage, dtype, and strides broadcast to the loop's shape.
struct StridedOperand {
  uint8_t* base = nullptr;  // storage start; offsets from for_each_element are relative to it
  DType dtype = DType::kFloat32;
  size_t element_size = 0;
  Shape strides;
  int64_t offset = 0;

  uint8_t* at(int64_t element_offset) const {
    return base + element_offset * static_cast<int64_t>(element_size);
  }
};
StridedOperand strided_operand(const Tensor& tensor, const Shape& loop_shape, const char* op);

// out = fn(in_0, ..., in_{N-1}) elementwise over `out`'s shape (inputs broadcast to it). Inputs are
// read as `Compute` (double or int64_t) after conversion to `compute_dtype` (round_to_dtype /
// wrap_to_dtype), so a float64 0-dim tensor or a float scalar mixed into a float32 op is rounded to
// float32 first, as in PyTorch. fn returns a double or int64_t (a bool result is stored as 0/1),
// which is stored into out with conversion to out's dtype. `out` may be any strided view.
template <typename Compute, size_t N, typename Fn>
void map_elements(const Tensor& out, const std::array<const Tensor*, N>& inputs, DType compute_dtype,
                  const char* op, Fn&& fn) {
  static_assert(std::is_same_v<Compute, double> || std::is_same_v<Compute, int64_t>);
  std::array<StridedOperand, N + 1> ops;
  ops[0] = strided_operand(out, out.sizes(), op);
  for (size_t k = 0; k < N; ++k) ops[k + 1] = strided_operand(*inputs[k], out.sizes(), op);
  std::array<const int64_t*, N + 1> strides;
  std::array<int64_t, N + 1> start;
  for (size_t k = 0; k <= N; ++k) {
    strides[k] = ops[k].strides.data();
    start[k] = ops[k].offset;
  }
  std::array<bool, N> needs_conversion;
  bool uniform = out.dtype() == compute_dtype;
  for (size_t k = 0; k < N; ++k) {
    needs_conversion[k] = ops[k + 1].dtype != compute_dtype;
    uniform = uniform && !needs_conversion[k];
  }
  if (uniform) {
    // Every operand already has the compute dtype: typed loads and stores, no per-element dispatch.
    dispatch_dtype(compute_dtype, op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      for_each_element<N + 1>(out.sizes(), strides, start, [&](const std::array<int64_t, N + 1>& off) {
        std::array<Compute, N> v;
        for (size_t k = 0; k < N; ++k) {
          T x = *reinterpret_cast<const T*>(ops[k + 1].at(off[k + 1]));
          if constexpr (std::is_same_v<Compute, double>) {
            v[k] = to_double(x);
          } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
            v[k] = static_cast<int64_t>(to_double(x));  // unreachable: integer compute of a float dtype
          } else {
            v[k] = static_cast<int64_t>(x);
          }
        }
        auto r = std::apply(fn, v);
        T* dst = reinterpret_cast<T*>(ops[0].at(off[0]));
        if constexpr (std::is_same_v<decltype(r), double>) {
          *dst = from_double<T>(r);
        } else if constexpr (std::is_same_v<T, bool>) {
          *dst = r != 0;
        } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
          *dst = from_double<T>(static_cast<double>(r));
        } else {
          *dst = static_cast<T>(r);  // wraps to the dtype's width, as store_int does
        }
      });
    });
    return;
  }
  const DType out_dtype = out.dtype();
  for_each_element<N + 1>(out.sizes(), strides, start, [&](const std::array<int64_t, N + 1>& off) {
    std::array<Compute, N> v;
    for (size_t k = 0; k < N; ++k) {
      const StridedOperand& in = ops[k + 1];
      if constexpr (std::is_same_v<Compute, double>) {
        double x = load_as_double(in.at(off[k + 1]), in.dtype);
        v[k] = needs_conversion[k] ? round_to_dtype(x, compute_dtype) : x;
      } else {
        int64_t x = load_as_int(in.at(off[k + 1]), in.dtype);
        v[k] = needs_conversion[k] ? wrap_to_dtype(x, compute_dtype) : x;
      }
    }
    auto r = std::apply(fn, v);
    if constexpr (std::is_same_v<decltype(r), double>) {
      store_double(ops[0].at(off[0]), out_dtype, r);
    } else {
      store_int(ops[0].at(off[0]), out_dtype, static_cast<int64_t>(r));
    }
  });
}

// Copies `src` into the strided view `dst` (same shape, or broadcastable to it), converting to dst's
// dtype; a fast typed loop when the dtypes agree. `src` must not overlap `dst` (Tensor::copy_from
// handles overlap).
void copy_into(const Tensor& dst, const Tensor& src, const char* op);

// ---------------------------------------------------------------------------------------------------
// Argument decoding (schema types that reach kernels as IValues)

// "ScalarType? dtype": None or a ScalarType code.
std::optional<DType> optional_dtype_arg(const IValue& v, const char* op);
// "int[1]? dim" / "int[] dim": None (→ nullopt), a list of ints, or a single int.
std::optional<std::vector<int64_t>> optional_int_list_arg(const IValue& v);
// Normalises reduction dims against `rank`: negative dims wrap, duplicates are an error naming `op`.
// An empty list means every dim (PyTorch's convention for sum/mean/amax dim=[]).
std::vector<bool> reduction_dim_mask(const std::vector<int64_t>& dims, int64_t rank, const char* op);

// ---------------------------------------------------------------------------------------------------
// InferFn building blocks. Each works on the static argument types an InferFn receives (refined with
// dtype and shape where known, -1 for an unknown dim) and the constant argument values (nullptr when
// not constant), and returns nullopt when the answer is not certain.

// The promotion operand an argument describes, when its dtype and rank are known.
std::optional<DType> infer_result_type(const std::vector<TypePtr>& args,
                                       const std::vector<const IValue*>& constants,
                                       const std::vector<int>& operand_indices);
// The broadcast of the shapes of the tensor arguments at `operand_indices` (number arguments are
// 0-dim); a dim that is -1 in one shape and 1 or -1 in the others stays -1.
std::optional<Shape> infer_broadcast_shape(const std::vector<TypePtr>& args,
                                           const std::vector<int>& operand_indices);
// The argument's tensor dtype/shape, when known.
std::optional<DType> arg_dtype(const std::vector<TypePtr>& args, int index);
std::optional<Shape> arg_shape(const std::vector<TypePtr>& args, int index);
// A constant argument, when it is one.
const IValue* arg_constant(const std::vector<const IValue*>& constants, int index);
// The shape a reduction leaves: dims (nullopt: all), keepdim; nullopt when the input shape is unknown.
std::optional<Shape> infer_reduced_shape(const std::optional<Shape>& input,
                                         const std::optional<std::vector<int64_t>>& dims, bool keepdim,
                                         const char* op);

}  // namespace convoy
