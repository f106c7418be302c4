#include "runtime/ops/kernel_util.h"

#include <cmath>
#include <limits>

namespace convoy {

// ---------------------------------------------------------------------------------------------------
// Type promotion

PromotionOperand promotion_operand(const Tensor& tensor) {
  return {tensor.dtype(), tensor.dim() == 0 ? PromotionRank::kZeroDim : PromotionRank::kDimensioned};
}

PromotionOperand promotion_operand(const IValue& value, const char* op) {
  if (value.is_tensor()) return promotion_operand(value.to_tensor());
  return {wrapped_scalar_dtype(value, op), PromotionRank::kWrappedScalar};
}

DType wrapped_scalar_dtype(const IValue& value, const char* op) {
  if (value.is_bool()) return DType::kBool;
  if (value.is_int()) return DType::kInt64;
  if (value.is_double()) return DType::kFloat64;
  fail(ErrorKind::kInvalidInput, op, ": expected a number (Scalar) but got ", value.kind_name(), " ",
       value.repr());
}

Tensor scalar_to_tensor(const IValue& value, const char* op) {
  DType dtype = wrapped_scalar_dtype(value, op);
  if (dtype == DType::kFloat64) return Tensor::scalar_double(value.to_double(), dtype);
  return Tensor::scalar_int(value.to_int(), dtype);
}

namespace {

// PyTorch's combine_categories: the higher-priority result decides unless the lower-priority one is
// of a higher category (bool < integral < floating).
std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating(*higher)) return higher;
  if (*higher == DType::kBool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}

}  // namespace

DType result_type(const std::vector<PromotionOperand>& operands) {
  CONVOY_ASSERT(!operands.empty(), "result_type of no operands");
  std::optional<DType> by_rank[3];
  for (const PromotionOperand& o : operands) {
    DType d = o.dtype;
    // A Python float is a double, but it takes part as the default dtype: int_tensor * 0.5 is float32.
    if (o.rank == PromotionRank::kWrappedScalar && is_floating(d)) d = kDefaultFloatDType;
    auto& slot = by_rank[static_cast<int>(o.rank)];
    slot = slot ? promote_types(*slot, d) : d;
  }
  return *combine(by_rank[0], combine(by_rank[1], by_rank[2]));
}

bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != DType::kBool && to == DType::kBool) return false;
  return true;
}

const char* scalar_type_name(DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return "Byte";
    case DType::kInt8:
      return "Char";
    case DType::kInt16:
      return "Short";
    case DType::kInt32:
      return "Int";
    case DType::kInt64:
      return "Long";
    case DType::kFloat16:
      return "Half";
    case DType::kFloat32:
      return "Float";
    case DType::kFloat64:
      return "Double";
    case DType::kBool:
      return "Bool";
    case DType::kBFloat16:
      return "BFloat16";
  }
  return "?";
}

void check_can_cast_to_self(DType result, DType self, const char* op) {
  CONVOY_CHECK(can_cast(result, self), op, ": result type ", scalar_type_name(result),
               " can't be cast to the desired output type ", scalar_type_name(self));
}

void check_scalar_fits(const IValue& value, DType dtype, const char* op) {
  if (dtype == DType::kBool || !value.is_number()) return;
  double lo, hi;
  switch (dtype) {
    case DType::kUInt8:
      lo = 0, hi = 255;
      break;
    case DType::kInt8:
      lo = -128, hi = 127;
      break;
    case DType::kInt16:
      lo = -32768, hi = 32767;
      break;
    case DType::kInt32:
      lo = -2147483648.0, hi = 2147483647.0;
      break;
    case DType::kInt64:
      if (value.is_int() || value.is_bool()) return;
      lo = -9223372036854775808.0, hi = 9223372036854775807.0;
      break;
    default:
      hi = dtype_max(dtype), lo = -hi;
      break;
  }
  double v = value.to_double();
  if (is_floating(dtype) && !std::isfinite(v)) return;
  // Negative ints may wrap into uint8 (c10 allows `a - b` as `a + 255 * b`); negative floats may not.
  if (dtype == DType::kUInt8 && !value.is_double()) lo = -255;
  CONVOY_CHECK(!(v < lo || v > hi), op, ": value ", value.repr(), " cannot be converted to type ",
               dtype_name(dtype), " without overflow");
}

// ---------------------------------------------------------------------------------------------------
// Value conversions

int64_t wrap_to_dtype(int64_t v, DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return static_cast<uint8_t>(v);
    case DType::kInt8:
      return static_cast<int8_t>(v);
    case DType::kInt16:
      return static_cast<int16_t>(v);
    case DType::kInt32:
      return static_cast<int32_t>(v);
    case DType::kBool:
      return v != 0 ? 1 : 0;
    default:
      return v;
  }
}

double round_to_dtype(double v, DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return v;
    case DType::kFloat32:
      return static_cast<float>(v);
    case DType::kFloat16:
      return half_to_float(float_to_half(static_cast<float>(v)));
    case DType::kBFloat16:
      return bfloat16_to_float(float_to_bfloat16(static_cast<float>(v)));
    case DType::kBool:
      return v != 0.0 ? 1.0 : 0.0;
    default:
      // NaN and out-of-range values have no integer: mirror what x86 conversions give (INT64_MIN).
      if (!(std::fabs(v) < 9.2e18))
        return static_cast<double>(wrap_to_dtype(std::numeric_limits<int64_t>::min(), dtype));
      return static_cast<double>(wrap_to_dtype(static_cast<int64_t>(v), dtype));
  }
}

double dtype_max(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return 65504.0;
    case DType::kBFloat16:
      return 3.3895313892515355e38;
    case DType::kFloat32:
      return std::numeric_limits<float>::max();
    case DType::kFloat64:
      return std::numeric_limits<double>::max();
    default:
      fail(ErrorKind::kInternal, "dtype_max of non-floating dtype ", dtype_name(dtype));
  }
}

double dtype_lowest(DType dtype) { return -dtype_max(dtype); }

// ---------------------------------------------------------------------------------------------------
// Broadcasting

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    CONVOY_CHECK(da == db || da == 1 || db == 1, op, ": the size of tensor a (", da,
                 ") must match the size of tensor b (", db, ") at non-singleton dimension ", i, " (shapes ",
                 shape_str(a), " and ", shape_str(b), ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_shapes(const std::vector<Shape>& shapes, const char* op) {
  Shape out;
  for (const Shape& s : shapes) out = broadcast_shapes(out, s, op);
  return out;
}

Shape broadcast_strides(const Tensor& tensor, const Shape& shape, const char* op) {
  CONVOY_CHECK(tensor.dim() <= static_cast<int64_t>(shape.size()), op, ": cannot broadcast ",
               tensor.describe(), " to shape ", shape_str(shape));
  Shape strides(shape.size(), 0);
  size_t lead = shape.size() - static_cast<size_t>(tensor.dim());
  for (size_t i = 0; i < static_cast<size_t>(tensor.dim()); ++i) {
    int64_t s = tensor.sizes()[i];
    CONVOY_CHECK(s == shape[lead + i] || s == 1, op, ": cannot broadcast ", tensor.describe(), " to shape ",
                 shape_str(shape));
    strides[lead + i] = (s == 1 && shape[lead + i] != 1) ? 0 : tensor.strides()[i];
  }
  return strides;
}

Tensor expand_to(const Tensor& tensor, const Shape& shape, const char* op) {
  return tensor.as_strided(shape, broadcast_strides(tensor, shape, op), tensor.offset());
}

StridedOperand strided_operand(const Tensor& tensor, const Shape& loop_shape, const char* op) {
  CONVOY_CHECK(tensor.defined(), op, ": undefined tensor operand");
  StridedOperand o;
  o.base = tensor.storage()->data();
  o.dtype = tensor.dtype();
  o.element_size = tensor.element_size();
  o.strides = broadcast_strides(tensor, loop_shape, op);
  o.offset = tensor.offset();
  return o;
}

void copy_into(const Tensor& dst, const Tensor& src, const char* op) {
  if (is_floating(dst.dtype())) {
    map_elements<double, 1>(dst, {&src}, dst.dtype(), op, [](double v) { return v; });
  } else {
    map_elements<int64_t, 1>(dst, {&src}, dst.dtype(), op, [](int64_t v) { return v; });
  }
}

// ---------------------------------------------------------------------------------------------------
// Argument decoding

std::optional<DType> optional_dtype_arg(const IValue& v, const char* op) {
  if (v.is_none()) return std::nullopt;
  CONVOY_CHECK(v.is_int(), op, ": expected a dtype (ScalarType code) but got ", v.kind_name(), " ", v.repr());
  return dtype_from_scalar_type(v.to_int());
}

std::optional<std::vector<int64_t>> optional_int_list_arg(const IValue& v) {
  if (v.is_none()) return std::nullopt;
  if (v.is_int()) return std::vector<int64_t>{v.to_int()};
  return v.to_int_list();
}

std::vector<bool> reduction_dim_mask(const std::vector<int64_t>& dims, int64_t rank, const char* op) {
  std::vector<bool> mask(static_cast<size_t>(rank), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, rank, op);
    if (rank == 0) continue;  // a 0-dim tensor accepts dim 0/-1 and has nothing to reduce
    CONVOY_CHECK(!mask[static_cast<size_t>(w)], op, ": dim ", w,
                 " appears multiple times in the list of dims");
    mask[static_cast<size_t>(w)] = true;
  }
  return mask;
}

// ---------------------------------------------------------------------------------------------------
// InferFn building blocks

const IValue* arg_constant(const std::vector<const IValue*>& constants, int index) {
  if (index < 0 || static_cast<size_t>(index) >= constants.size()) return nullptr;
  return constants[static_cast<size_t>(index)];
}

namespace {

const Type* arg_type(const std::vector<TypePtr>& args, int index) {
  if (index < 0 || static_cast<size_t>(index) >= args.size() || !args[static_cast<size_t>(index)])
    return nullptr;
  return args[static_cast<size_t>(index)].get();
}

// What promotion knows about one argument: its dtype, and its rank when known (nullopt: a tensor of
// unknown rank, which may be 0-dim or not).
struct StaticOperand {
  DType dtype;
  std::optional<PromotionRank> rank;
};

std::optional<StaticOperand> static_operand(const std::vector<TypePtr>& args,
                                            const std::vector<const IValue*>& constants, int index) {
  if (const IValue* c = arg_constant(constants, index)) {
    if (c->is_tensor()) return StaticOperand{c->to_tensor().dtype(), promotion_operand(c->to_tensor()).rank};
    if (c->is_number())
      return StaticOperand{wrapped_scalar_dtype(*c, "infer"), PromotionRank::kWrappedScalar};
    return std::nullopt;
  }
  const Type* t = arg_type(args, index);
  if (!t) return std::nullopt;
  switch (t->kind) {
    case TypeKind::kTensor:
      if (!t->dtype) return std::nullopt;
      if (!t->shape) return StaticOperand{*t->dtype, std::nullopt};
      return StaticOperand{*t->dtype,
                           t->shape->empty() ? PromotionRank::kZeroDim : PromotionRank::kDimensioned};
    case TypeKind::kInt:
      return StaticOperand{DType::kInt64, PromotionRank::kWrappedScalar};
    case TypeKind::kFloat:
      return StaticOperand{DType::kFloat64, PromotionRank::kWrappedScalar};
    case TypeKind::kBool:
      return StaticOperand{DType::kBool, PromotionRank::kWrappedScalar};
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<DType> infer_result_type(const std::vector<TypePtr>& args,
                                       const std::vector<const IValue*>& constants,
                                       const std::vector<int>& operand_indices) {
  std::vector<StaticOperand> ops;
  std::vector<size_t> unknown_rank;
  for (int i : operand_indices) {
    // An omitted optional operand (clamp's min=None) takes no part.
    const IValue* c = arg_constant(constants, i);
    const Type* t = arg_type(args, i);
    if ((c && c->is_none()) || (!c && t && t->is(TypeKind::kNone))) continue;
    auto o = static_operand(args, constants, i);
    if (!o) return std::nullopt;
    if (!o->rank) unknown_rank.push_back(ops.size());
    ops.push_back(*o);
  }
  if (ops.empty()) return std::nullopt;
  // A tensor of unknown rank may be 0-dim or not: the answer is certain only if every case agrees.
  std::optional<DType> answer;
  size_t cases = size_t{1} << unknown_rank.size();
  for (size_t mask = 0; mask < cases; ++mask) {
    std::vector<PromotionOperand> concrete;
    for (size_t k = 0; k < ops.size(); ++k) {
      PromotionRank rank = ops[k].rank.value_or(PromotionRank::kDimensioned);
      for (size_t u = 0; u < unknown_rank.size(); ++u)
        if (unknown_rank[u] == k && (mask >> u & 1)) rank = PromotionRank::kZeroDim;
      concrete.push_back({ops[k].dtype, rank});
    }
    DType d = result_type(concrete);
    if (answer && *answer != d) return std::nullopt;
    answer = d;
  }
  return answer;
}

std::optional<Shape> infer_broadcast_shape(const std::vector<TypePtr>& args,
                                           const std::vector<int>& operand_indices) {
  Shape out;
  for (int i : operand_indices) {
    const Type* t = arg_type(args, i);
    if (!t) return std::nullopt;
    if (t->is(TypeKind::kInt) || t->is(TypeKind::kFloat) || t->is(TypeKind::kBool) ||
        t->is(TypeKind::kNumber) || t->is(TypeKind::kNone))
      continue;  // a scalar broadcasts like a 0-dim tensor; an omitted optional operand not at all
    if (!t->is(TypeKind::kTensor) || !t->shape) return std::nullopt;
    const Shape& s = *t->shape;
    size_t rank = std::max(out.size(), s.size());
    Shape merged(rank);
    for (size_t d = 0; d < rank; ++d) {
      int64_t a = d < rank - out.size() ? 1 : out[d - (rank - out.size())];
      int64_t b = d < rank - s.size() ? 1 : s[d - (rank - s.size())];
      if (a == 1)
        merged[d] = b;
      else if (b == 1)
        merged[d] = a;
      else if (a == -1)
        merged[d] = b;  // b is -1 or a known size the unknown dim must equal
      else if (b == -1 || a == b)
        merged[d] = a;
      else
        return std::nullopt;  // a definite mismatch: the kernel reports it with the values
    }
    out = std::move(merged);
  }
  return out;
}

std::optional<DType> arg_dtype(const std::vector<TypePtr>& args, int index) {
  const Type* t = arg_type(args, index);
  if (!t || !t->is(TypeKind::kTensor)) return std::nullopt;
  return t->dtype;
}

std::optional<Shape> arg_shape(const std::vector<TypePtr>& args, int index) {
  const Type* t = arg_type(args, index);
  if (!t || !t->is(TypeKind::kTensor)) return std::nullopt;
  return t->shape;
}

std::optional<Shape> infer_reduced_shape(const std::optional<Shape>& input,
                                         const std::optional<std::vector<int64_t>>& dims, bool keepdim,
                                         const char* op) {
  if (!input) return std::nullopt;
  int64_t rank = static_cast<int64_t>(input->size());
  std::vector<bool> mask = reduction_dim_mask(dims.value_or(std::vector<int64_t>{}), rank, op);
  Shape out;
  for (size_t d = 0; d < input->size(); ++d) {
    if (!mask[d])
      out.push_back((*input)[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

}  // namespace convoy
