// Tensor factories: zeros/ones/full/empty and their _like / new_ forms, arange, linspace,
// scalar_tensor and torch.tensor. The layout, device and pin_memory arguments of the schemas are
// accepted and ignored (every tensor is a strided CPU tensor here); only dtype matters.
#include <cmath>
#include <optional>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

// torch.full infers its dtype from the fill value when none is given.
DType dtype_of_number(const IValue& v) {
  if (v.is_bool()) return DType::kBool;
  if (v.is_int()) return DType::kInt64;
  return kDefaultFloatDType;
}

Shape size_arg(const IValue& v, const char* op) {
  std::vector<int64_t> size = v.to_int_list();
  for (int64_t d : size) CONVOY_CHECK(d >= 0, op, ": negative dimension ", d, " in size ", shape_str(size));
  return Shape(size.begin(), size.end());
}

Tensor filled(const Shape& shape, DType dtype, const IValue& value, const char* op) {
  Tensor out = Tensor::empty(shape, dtype);
  out.copy_from(scalar_to_tensor(value, op));
  return out;
}

Tensor arange(const IValue& start_v, const IValue& end_v, const IValue& step_v, const IValue& dtype_v,
              const char* op) {
  bool all_int = !start_v.is_double() && !end_v.is_double() && !step_v.is_double();
  DType dtype = optional_dtype_arg(dtype_v, op).value_or(all_int ? DType::kInt64 : kDefaultFloatDType);
  if (is_integral(dtype, true)) {
    // Integer results step in int64 from the truncated bounds, as PyTorch's integer kernel does.
    int64_t start = start_v.is_double() ? static_cast<int64_t>(start_v.to_double()) : start_v.to_int();
    int64_t end = end_v.is_double() ? static_cast<int64_t>(end_v.to_double()) : end_v.to_int();
    int64_t step = step_v.is_double() ? static_cast<int64_t>(step_v.to_double()) : step_v.to_int();
    CONVOY_CHECK(step != 0, op, ": step must be nonzero");
    CONVOY_CHECK((step > 0 && end >= start) || (step < 0 && end <= start), op,
                 ": upper bound and larger bound inconsistent with step sign (start ", start, ", end ", end,
                 ", step ", step, ")");
    int64_t n = static_cast<int64_t>(std::ceil(static_cast<double>(end - start) / static_cast<double>(step)));
    Tensor out = Tensor::empty({n}, dtype);
    for (int64_t i = 0; i < n; ++i) out.set_int(i, start + i * step);
    return out;
  }
  double start = start_v.to_double(), end = end_v.to_double(), step = step_v.to_double();
  CONVOY_CHECK(std::isfinite(start) && std::isfinite(end), op, ": unsupported range: ", start, " -> ", end);
  CONVOY_CHECK(step != 0, op, ": step must be nonzero");
  CONVOY_CHECK((step > 0 && end >= start) || (step < 0 && end <= start), op,
               ": upper bound and larger bound inconsistent with step sign (start ", start, ", end ", end,
               ", step ", step, ")");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor out = Tensor::empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) out.set_double(i, start + step * static_cast<double>(i));
  return out;
}

// Steps from both ends towards the middle, as PyTorch does, so the last value is exactly `end`.
Tensor linspace(double start, double end, int64_t steps, DType dtype, const char* op) {
  CONVOY_CHECK(steps >= 0, op, ": number of steps must be non-negative, got ", steps);
  Tensor out = Tensor::empty({steps}, dtype);
  if (steps == 0) return out;
  if (steps == 1) {
    out.set_double(0, start);
    return out;
  }
  const int64_t halfway = steps / 2;
  auto fill = [&](auto zero) {
    using T = decltype(zero);
    const T s = static_cast<T>(start), e = static_cast<T>(end);
    const T step = (e - s) / static_cast<T>(steps - 1);
    for (int64_t i = 0; i < steps; ++i)
      out.set_double(i,
                     i < halfway ? s + step * static_cast<T>(i) : e - step * static_cast<T>(steps - i - 1));
  };
  if (dtype == DType::kFloat32)
    fill(0.0f);
  else
    fill(0.0);
  return out;
}

// torch.tensor(data): nested lists of numbers; the dtype is float32 if any element is a float, else
// int64 if any is an int, else bool.
void flatten_nested(const IValue& v, size_t depth, Shape& shape, std::vector<IValue>& leaves,
                    const char* op) {
  if (v.is_list() || v.is_tuple()) {
    const IValueList& items = v.to_list_or_tuple();
    int64_t n = static_cast<int64_t>(items.size());
    if (depth == shape.size()) {
      CONVOY_CHECK(leaves.empty(), op, ": nested lists must be rectangular");
      shape.push_back(n);
    }
    CONVOY_CHECK(shape[depth] == n, op, ": expected sequence of length ", shape[depth], " at dim ", depth,
                 " (got ", n, ")");
    for (const IValue& item : items) flatten_nested(item, depth + 1, shape, leaves, op);
    return;
  }
  CONVOY_CHECK(v.is_number(), op, ": expected numbers in nested lists, found ", v.kind_name(), " ", v.repr());
  CONVOY_CHECK(depth == shape.size(), op, ": nested lists must be rectangular");
  leaves.push_back(v);
}

Tensor tensor_from_data(const IValue& data, const IValue& dtype_v, const char* op) {
  Shape shape;
  std::vector<IValue> leaves;
  flatten_nested(data, 0, shape, leaves, op);
  bool any_float = false, any_int = false;
  for (const IValue& v : leaves) {
    any_float = any_float || v.is_double();
    any_int = any_int || v.is_int();
  }
  DType inferred = any_float || leaves.empty() ? kDefaultFloatDType : any_int ? DType::kInt64 : DType::kBool;
  DType dtype = optional_dtype_arg(dtype_v, op).value_or(inferred);
  Tensor out = Tensor::empty(shape, dtype);
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (leaves[i].is_double())
      out.set_double(static_cast<int64_t>(i), leaves[i].to_double());
    else
      out.set_int(static_cast<int64_t>(i), leaves[i].to_int());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Shape inference: the size list and the dtype are usually constants in traced code.

using Types = std::vector<TypePtr>;
using Constants = std::vector<const IValue*>;

std::optional<Shape> const_shape(const Constants& constants, int index) {
  const IValue* v = arg_constant(constants, index);
  if (!v || !(v->is_list() || v->is_tuple())) return std::nullopt;
  for (const IValue& x : v->to_list_or_tuple())
    if (!x.is_int()) return std::nullopt;
  std::vector<int64_t> s = v->to_int_list();
  return Shape(s.begin(), s.end());
}

// The dtype argument when it is a constant; `fallback` when it is the constant None.
std::optional<DType> const_dtype(const Constants& constants, int index, std::optional<DType> fallback) {
  const IValue* v = arg_constant(constants, index);
  if (!v) return std::nullopt;
  if (v->is_none()) return fallback;
  if (!v->is_int()) return std::nullopt;
  return dtype_from_scalar_type(v->to_int());
}

// A factory with the size at `size_index` and the dtype at `dtype_index`.
InferFn infer_sized(int size_index, int dtype_index, std::optional<DType> default_dtype) {
  return [=](const Types&, const Constants& constants) -> Types {
    return {
        Type::tensor(const_dtype(constants, dtype_index, default_dtype), const_shape(constants, size_index))};
  };
}

// A _like / new_ factory: dtype defaults to self's; the shape is self's or the size argument.
InferFn infer_from_self(int size_index, int dtype_index) {
  return [=](const Types& args, const Constants& constants) -> Types {
    std::optional<Shape> shape = size_index < 0 ? arg_shape(args, 0) : const_shape(constants, size_index);
    return {Type::tensor(const_dtype(constants, dtype_index, arg_dtype(args, 0)), shape)};
  };
}

const char* const kFactoryOptions =
    "ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None";

}  // namespace

void register_factory_ops(OpRegistry& r) {
  const std::string opts = kFactoryOptions;
  r.add(
      "aten::zeros(SymInt[] size, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        return {Tensor::zeros(size_arg(a[0], "aten::zeros"),
                              optional_dtype_arg(a[1], "aten::zeros").value_or(kDefaultFloatDType))};
      },
      infer_sized(0, 1, kDefaultFloatDType));
  r.add(
      "aten::ones(SymInt[] size, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[1], "aten::ones").value_or(kDefaultFloatDType);
        return {filled(size_arg(a[0], "aten::ones"), dtype, IValue(int64_t{1}), "aten::ones")};
      },
      infer_sized(0, 1, kDefaultFloatDType));
  r.add(
      "aten::full(SymInt[] size, Scalar fill_value, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[2], "aten::full").value_or(dtype_of_number(a[1]));
        return {filled(size_arg(a[0], "aten::full"), dtype, a[1], "aten::full")};
      },
      [](const Types& args, const Constants& constants) -> Types {
        const IValue* fill = arg_constant(constants, 1);
        std::optional<DType> fallback;
        if (fill)
          fallback = dtype_of_number(*fill);
        else if (args.size() > 1 && args[1]->is(TypeKind::kInt))
          fallback = DType::kInt64;
        else if (args.size() > 1 && args[1]->is(TypeKind::kFloat))
          fallback = kDefaultFloatDType;
        else if (args.size() > 1 && args[1]->is(TypeKind::kBool))
          fallback = DType::kBool;
        return {Type::tensor(const_dtype(constants, 2, fallback), const_shape(constants, 0))};
      });
  r.add(
      "aten::empty.memory_format(SymInt[] size, *, " + opts + ", MemoryFormat? memory_format=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {Tensor::empty(size_arg(a[0], "aten::empty"),
                              optional_dtype_arg(a[1], "aten::empty").value_or(kDefaultFloatDType))};
      },
      infer_sized(0, 1, kDefaultFloatDType));

  // The _like forms: self's shape and (by default) dtype.
  r.add(
      "aten::zeros_like(Tensor self, *, " + opts + ", MemoryFormat? memory_format=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& self = a[0].to_tensor();
        return {
            Tensor::zeros(self.sizes(), optional_dtype_arg(a[1], "aten::zeros_like").value_or(self.dtype()))};
      },
      infer_from_self(-1, 1));
  r.add(
      "aten::ones_like(Tensor self, *, " + opts + ", MemoryFormat? memory_format=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& self = a[0].to_tensor();
        DType dtype = optional_dtype_arg(a[1], "aten::ones_like").value_or(self.dtype());
        return {filled(self.sizes(), dtype, IValue(int64_t{1}), "aten::ones_like")};
      },
      infer_from_self(-1, 1));
  r.add(
      "aten::full_like(Tensor self, Scalar fill_value, *, " + opts +
          ", MemoryFormat? memory_format=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& self = a[0].to_tensor();
        DType dtype = optional_dtype_arg(a[2], "aten::full_like").value_or(self.dtype());
        return {filled(self.sizes(), dtype, a[1], "aten::full_like")};
      },
      infer_from_self(-1, 2));
  r.add(
      "aten::empty_like(Tensor self, *, " + opts + ", MemoryFormat? memory_format=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        const Tensor& self = a[0].to_tensor();
        return {
            Tensor::empty(self.sizes(), optional_dtype_arg(a[1], "aten::empty_like").value_or(self.dtype()))};
      },
      infer_from_self(-1, 1));

  // The new_ forms: a given size, self's dtype by default.
  r.add(
      "aten::new_zeros(Tensor self, SymInt[] size, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[2], "aten::new_zeros").value_or(a[0].to_tensor().dtype());
        return {Tensor::zeros(size_arg(a[1], "aten::new_zeros"), dtype)};
      },
      infer_from_self(1, 2));
  r.add(
      "aten::new_ones(Tensor self, SymInt[] size, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[2], "aten::new_ones").value_or(a[0].to_tensor().dtype());
        return {filled(size_arg(a[1], "aten::new_ones"), dtype, IValue(int64_t{1}), "aten::new_ones")};
      },
      infer_from_self(1, 2));
  r.add(
      "aten::new_full(Tensor self, SymInt[] size, Scalar fill_value, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[3], "aten::new_full").value_or(a[0].to_tensor().dtype());
        return {filled(size_arg(a[1], "aten::new_full"), dtype, a[2], "aten::new_full")};
      },
      infer_from_self(1, 3));
  r.add(
      "aten::new_empty(Tensor self, SymInt[] size, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[2], "aten::new_empty").value_or(a[0].to_tensor().dtype());
        return {Tensor::empty(size_arg(a[1], "aten::new_empty"), dtype)};
      },
      infer_from_self(1, 2));

  r.add("aten::arange(Scalar end, *, " + opts + ") -> Tensor", [](IValueList& a) -> IValueList {
    return {arange(IValue(int64_t{0}), a[0], IValue(int64_t{1}), a[1], "aten::arange")};
  });
  r.add("aten::arange.start(Scalar start, Scalar end, *, " + opts + ") -> Tensor",
        [](IValueList& a) -> IValueList {
          return {arange(a[0], a[1], IValue(int64_t{1}), a[2], "aten::arange")};
        });
  r.add("aten::arange.start_step(Scalar start, Scalar end, Scalar step=1, *, " + opts + ") -> Tensor",
        [](IValueList& a) -> IValueList { return {arange(a[0], a[1], a[2], a[3], "aten::arange")}; });
  r.add(
      "aten::linspace(Scalar start, Scalar end, int steps, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[3], "aten::linspace").value_or(kDefaultFloatDType);
        return {linspace(a[0].to_double(), a[1].to_double(), a[2].to_int(), dtype, "aten::linspace")};
      },
      [](const Types&, const Constants& constants) -> Types {
        std::optional<Shape> shape;
        if (const IValue* steps = arg_constant(constants, 2); steps && steps->is_int())
          shape = Shape{steps->to_int()};
        return {Type::tensor(const_dtype(constants, 3, kDefaultFloatDType), shape)};
      });
  r.add(
      "aten::scalar_tensor(Scalar s, *, " + opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[1], "aten::scalar_tensor").value_or(kDefaultFloatDType);
        return {filled({}, dtype, a[0], "aten::scalar_tensor")};
      },
      [](const Types&, const Constants& constants) -> Types {
        return {Type::tensor(const_dtype(constants, 1, kDefaultFloatDType), Shape{})};
      });

  // torch.tensor(number) gives a 0-dim tensor: int64 for ints, float32 for floats, bool for bools.
  const std::string tensor_opts = "*, ScalarType? dtype=None, Device? device=None, bool requires_grad=False";
  auto scalar_tensor_infer = [](DType fallback) -> InferFn {
    return [fallback](const Types&, const Constants& constants) -> Types {
      return {Type::tensor(const_dtype(constants, 1, fallback), Shape{})};
    };
  };
  r.add(
      "aten::tensor.float(float t, " + tensor_opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[1], "aten::tensor").value_or(kDefaultFloatDType);
        return {filled({}, dtype, IValue(a[0].to_double()), "aten::tensor")};
      },
      scalar_tensor_infer(kDefaultFloatDType));
  r.add(
      "aten::tensor.int(int t, " + tensor_opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[1], "aten::tensor").value_or(DType::kInt64);
        return {filled({}, dtype, IValue(a[0].to_int()), "aten::tensor")};
      },
      scalar_tensor_infer(DType::kInt64));
  r.add(
      "aten::tensor.bool(bool t, " + tensor_opts + ") -> Tensor",
      [](IValueList& a) -> IValueList {
        DType dtype = optional_dtype_arg(a[1], "aten::tensor").value_or(DType::kBool);
        return {filled({}, dtype, IValue(a[0].to_bool()), "aten::tensor")};
      },
      scalar_tensor_infer(DType::kBool));
  r.add("aten::tensor(t[] data, " + tensor_opts + ") -> Tensor",
        [](IValueList& a) -> IValueList { return {tensor_from_data(a[0], a[1], "aten::tensor")}; });
}

}  // namespace convoy
