// Tensor queries and conversions between tensors and TorchScript scalars (size, dim, numel, len,
// NumToTensor, Int/Float/Bool, item, dtype, device), str(), identity tests and the range helpers of
// lowered loops. register_prim_ops also registers the scalar and list families.
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy {

void register_scalar_ops(OpRegistry& registry);  // scalar_ops.cpp
void register_list_ops(OpRegistry& registry);    // list_ops.cpp

namespace {

// A tensor element as the TorchScript scalar of its category: bool, int or float.
IValue tensor_to_scalar(const Tensor& t) {
  if (t.dtype() == DType::kBool) return IValue(t.item_bool());
  if (is_integral(t.dtype(), false)) return IValue(t.item_int());
  return IValue(t.item_double());
}

// Implicit tensor → number conversions (a tensor passed where a number is expected) accept only
// 0-dim tensors.
const Tensor& implicit_scalar_tensor(const IValue& v, const char* op) {
  const Tensor& t = v.to_tensor();
  CONVOY_CHECK(t.dim() == 0, op,
               ": cannot input a tensor of dimension other than 0 as a scalar argument (got ", t.describe(),
               ")");
  return t;
}

int64_t checked_float_to_int(double d, const char* op) {
  CONVOY_CHECK(std::isfinite(d), op, ": cannot convert float ", d, " to integer");
  return static_cast<int64_t>(d);
}

int64_t parse_int(const std::string& s, const char* op) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  while (end && *end == ' ') ++end;
  CONVOY_CHECK(!s.empty() && end && *end == '\0' && errno == 0, op, ": invalid literal for int(): \"", s,
               "\"");
  return static_cast<int64_t>(v);
}

double parse_float(const std::string& s, const char* op) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  while (end && *end == ' ') ++end;
  CONVOY_CHECK(!s.empty() && end && *end == '\0', op, ": could not convert string to float: \"", s, "\"");
  return v;
}

// str(x) as TorchScript prints it: strings as-is, floats with up to 17 significant digits.
std::string str_of(const IValue& v) {
  if (v.is_string()) return v.to_string();
  if (v.is_list() || v.is_tuple()) {
    bool tuple = v.is_tuple();
    const IValueList& items = v.to_list_or_tuple();
    std::string s = tuple ? "(" : "[";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) s += ", ";
      s += items[i].is_string() ? "'" + items[i].to_string() + "'" : str_of(items[i]);
    }
    if (tuple && items.size() == 1) s += ",";
    return s + (tuple ? ")" : "]");
  }
  return v.repr();
}

// `a is b`: None is only None; containers and tensors by identity; numbers, strings and devices,
// which TorchScript holds by value, by equality.
bool is_same_object(const IValue& a, const IValue& b) {
  if (a.v.index() != b.v.index()) return false;
  if (a.is_none()) return true;
  if (a.is_tensor()) {
    const Tensor& x = a.to_tensor();
    const Tensor& y = b.to_tensor();
    return x.shares_storage_with(y) && x.sizes() == y.sizes() && x.strides() == y.strides() &&
           x.offset() == y.offset() && x.dtype() == y.dtype();
  }
  if (a.is_list()) return &a.to_list() == &b.to_list();
  if (a.is_tuple()) return &a.to_tuple() == &b.to_tuple();
  if (a.is_dict()) return &a.to_dict() == &b.to_dict();
  if (a.is_object()) return a.to_object() == b.to_object();
  if (a.is_string()) return a.to_string() == b.to_string();
  if (a.is_device()) return a.to_device() == b.to_device();
  if (a.is_double()) return a.to_double() == b.to_double();
  return a.to_int() == b.to_int();
}

using Types = std::vector<TypePtr>;
using Constants = std::vector<const IValue*>;

}  // namespace

static void register_tensor_query_ops(OpRegistry& r) {
  r.add("aten::size(Tensor self) -> int[]", [](IValueList& a) -> IValueList {
    const Shape& s = a[0].to_tensor().sizes();
    return {IValue::int_list(std::vector<int64_t>(s.begin(), s.end()))};
  });
  r.add("aten::size.int(Tensor self, int dim) -> int", [](IValueList& a) -> IValueList {
    const Tensor& self = a[0].to_tensor();
    int64_t dim = a[1].to_int();
    CONVOY_CHECK(self.dim() > 0, "aten::size: dimension ", dim,
                 " specified, but the tensor has no dimensions");
    return {self.sizes()[static_cast<size_t>(wrap_dim(dim, self.dim(), "aten::size"))]};
  });
  r.add("aten::dim(Tensor self) -> int",
        [](IValueList& a) -> IValueList { return {a[0].to_tensor().dim()}; });
  r.add("aten::numel(Tensor self) -> int",
        [](IValueList& a) -> IValueList { return {a[0].to_tensor().numel()}; });
  r.add("aten::len.Tensor(Tensor t) -> int", [](IValueList& a) -> IValueList {
    const Tensor& t = a[0].to_tensor();
    CONVOY_CHECK(t.dim() > 0, "aten::len: len() of a 0-d tensor");
    return {t.sizes()[0]};
  });
  r.add("prim::dtype(Tensor a) -> int",
        [](IValueList& a) -> IValueList { return {scalar_type_code(a[0].to_tensor().dtype())}; });
  r.add("prim::device(Tensor a) -> Device", [](IValueList& a) -> IValueList {
    a[0].to_tensor();
    return {Device{"cpu"}};
  });
  r.add("prim::is_cuda(Tensor a) -> bool", [](IValueList& a) -> IValueList {
    a[0].to_tensor();
    return {false};
  });
  r.add("aten::is_floating_point(Tensor self) -> bool",
        [](IValueList& a) -> IValueList { return {is_floating(a[0].to_tensor().dtype())}; });
  r.add("aten::device(str a) -> Device", [](IValueList& a) -> IValueList {
    const std::string& name = a[0].to_string();
    bool known = name == "cpu" || name.rfind("cpu:", 0) == 0 || name.rfind("cuda", 0) == 0 ||
                 name.rfind("meta", 0) == 0 || name.rfind("mps", 0) == 0;
    CONVOY_CHECK(
        known,
        "aten::device: expected one of cpu, cuda, meta, mps device type at start of device string: ", name);
    return {Device{name}};
  });
}

static void register_conversion_ops(OpRegistry& r) {
  r.add(
      "prim::NumToTensor.Scalar(Scalar a) -> Tensor",
      [](IValueList& a) -> IValueList { return {scalar_to_tensor(a[0], "prim::NumToTensor")}; },
      [](const Types& args, const Constants&) -> Types {
        std::optional<DType> dtype;
        if (args[0]->is(TypeKind::kInt)) dtype = DType::kInt64;
        if (args[0]->is(TypeKind::kFloat)) dtype = DType::kFloat64;
        if (args[0]->is(TypeKind::kBool)) dtype = DType::kBool;
        return {Type::tensor(dtype, Shape{})};
      });
  r.add(
      "prim::NumToTensor.bool(bool a) -> Tensor",
      [](IValueList& a) -> IValueList { return {Tensor::scalar_bool(a[0].to_bool())}; },
      [](const Types&, const Constants&) -> Types { return {Type::tensor(DType::kBool, Shape{})}; });

  r.add("aten::Int.Tensor(Tensor a) -> int", [](IValueList& a) -> IValueList {
    const Tensor& t = a[0].to_tensor();
    if (is_floating(t.dtype())) return {checked_float_to_int(t.item_double(), "aten::Int")};
    return {t.item_int()};
  });
  r.add("aten::Int.bool(bool a) -> int", [](IValueList& a) -> IValueList { return {a[0].to_int()}; });
  r.add("aten::Int.float(float a) -> int",
        [](IValueList& a) -> IValueList { return {checked_float_to_int(a[0].to_double(), "aten::Int")}; });
  r.add("aten::Int.Scalar(Scalar a) -> int", [](IValueList& a) -> IValueList {
    if (a[0].is_double()) return {checked_float_to_int(a[0].to_double(), "aten::Int")};
    return {a[0].to_int()};
  });
  r.add("aten::Int.str(str a) -> int",
        [](IValueList& a) -> IValueList { return {parse_int(a[0].to_string(), "aten::Int")}; });
  r.add("aten::Float.Tensor(Tensor a) -> float",
        [](IValueList& a) -> IValueList { return {a[0].to_tensor().item_double()}; });
  r.add("aten::Float.Scalar(Scalar a) -> float",
        [](IValueList& a) -> IValueList { return {a[0].to_double()}; });
  r.add("aten::Float.int(int a) -> float", [](IValueList& a) -> IValueList { return {a[0].to_double()}; });
  r.add("aten::Float.bool(bool a) -> float", [](IValueList& a) -> IValueList { return {a[0].to_double()}; });
  r.add("aten::Float.str(str a) -> float",
        [](IValueList& a) -> IValueList { return {parse_float(a[0].to_string(), "aten::Float")}; });
  r.add("aten::Bool.Tensor(Tensor a) -> bool",
        [](IValueList& a) -> IValueList { return {a[0].to_tensor().item_bool()}; });
  r.add("aten::Bool.int(int a) -> bool", [](IValueList& a) -> IValueList { return {a[0].to_int() != 0}; });
  r.add("aten::Bool.float(float a) -> bool",
        [](IValueList& a) -> IValueList { return {a[0].to_double() != 0.0}; });
  r.add("aten::ScalarImplicit(Tensor a) -> Scalar", [](IValueList& a) -> IValueList {
    return {tensor_to_scalar(implicit_scalar_tensor(a[0], "aten::ScalarImplicit"))};
  });
  r.add("aten::IntImplicit(Tensor a) -> int", [](IValueList& a) -> IValueList {
    const Tensor& t = implicit_scalar_tensor(a[0], "aten::IntImplicit");
    CONVOY_CHECK(is_integral(t.dtype(), true), "aten::IntImplicit: cannot input a tensor of type ",
                 dtype_name(t.dtype()), " as an integral argument");
    return {t.item_int()};
  });
  r.add("aten::FloatImplicit(Tensor a) -> float", [](IValueList& a) -> IValueList {
    return {implicit_scalar_tensor(a[0], "aten::FloatImplicit").item_double()};
  });
  r.add("aten::item(Tensor self) -> Scalar",
        [](IValueList& a) -> IValueList { return {tensor_to_scalar(a[0].to_tensor())}; });
}

static void register_misc_prim_ops(OpRegistry& r) {
  r.add("aten::str(t elem) -> str", [](IValueList& a) -> IValueList { return {str_of(a[0])}; });
  r.add("aten::__is__(t1 self, t2 obj) -> bool",
        [](IValueList& a) -> IValueList { return {is_same_object(a[0], a[1])}; });
  r.add("aten::__isnot__(t1 self, t2 obj) -> bool",
        [](IValueList& a) -> IValueList { return {!is_same_object(a[0], a[1])}; });
  r.add("aten::warn(str message, int stacklevel=2) -> ()", [](IValueList& a) -> IValueList {
    std::cerr << "warning (from the model): " << a[0].to_string() << "\n";
    return {};
  });
  // The trip count and loop variable of `for i in range(lo, hi, step)` after lowering.
  r.add("aten::__range_length(int lo, int hi, int step) -> int", [](IValueList& a) -> IValueList {
    int64_t lo = a[0].to_int(), hi = a[1].to_int(), step = a[2].to_int();
    CONVOY_CHECK(step != 0, "range() arg 3 must not be zero");
    if (step > 0 && lo < hi) return {1 + (hi - 1 - lo) / step};
    if (step < 0 && lo > hi) return {1 + (lo - 1 - hi) / (-step)};
    return {int64_t{0}};
  });
  r.add("aten::__derive_index(int index, int start, int step) -> int",
        [](IValueList& a) -> IValueList { return {a[1].to_int() + a[0].to_int() * a[2].to_int()}; });
}

void register_prim_ops(OpRegistry& registry) {
  register_tensor_query_ops(registry);
  register_conversion_ops(registry);
  register_misc_prim_ops(registry);
  register_scalar_ops(registry);
  register_list_ops(registry);
}

}  // namespace convoy
