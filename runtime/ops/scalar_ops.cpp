// Arithmetic, comparisons and math on TorchScript ints, floats, bools and strings (the host-side
// shape arithmetic of traced and scripted models). Semantics follow TorchScript's interpreter, which
// differs from Python in places: int / int is true division, float // 0.0 is inf, float % 0.0 is nan,
// int // 0 is an error, int overflow wraps.
#include <cmath>
#include <functional>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

using IntBinary = std::function<int64_t(int64_t, int64_t)>;
using FloatBinary = std::function<double(double, double)>;

int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

int64_t int_floordiv(int64_t a, int64_t b) {
  CONVOY_CHECK(b != 0, "division by 0 (", a, " // ", b, ")");
  if (b == -1) return wrap_sub(0, a);
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_remainder(int64_t a, int64_t b) {
  CONVOY_CHECK(b != 0, "modulo by 0 (", a, " % ", b, ")");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// The sign of the result follows the divisor, as in Python.
double float_remainder(double a, double b) { return std::fmod(b + std::fmod(a, b), b); }

int64_t int_pow(int64_t base, int64_t exp) {
  CONVOY_CHECK(exp >= 0, "integers to negative integer powers are not allowed (", base, " ** ", exp, ")");
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = wrap_mul(result, base);
    base = wrap_mul(base, base);
    exp >>= 1;
  }
  return result;
}

double float_pow(double a, double b) {
  CONVOY_CHECK(!(a == 0.0 && b < 0), "0.0 cannot be raised to a negative power");
  return std::pow(a, b);
}

// Registers the int/float overloads of a binary number op. `int_fn` computes int (int, int)
// results; without it, every overload computes in float. `scalar_overload` names the overload
// that takes two Scalars ("" for the default one), whose result is an int when both inputs are.
struct BinaryOp {
  std::string name;  // "aten::add"
  IntBinary int_fn;
  FloatBinary float_fn;
  bool mixed_overloads = true;           // .int_float and .float_int exist
  std::string scalar_overload;           // overload name of the (Scalar, Scalar) form
  std::string scalar_return = "Scalar";  // its return type
  std::string int_return = "int";        // the return type of .int
};

void register_binary(OpRegistry& r, const BinaryOp& op) {
  const IntBinary int_fn = op.int_fn;
  const FloatBinary float_fn = op.float_fn;
  auto as_float = [float_fn](IValueList& a) -> IValueList {
    return {float_fn(a[0].to_double(), a[1].to_double())};
  };
  auto by_value = [int_fn, float_fn](IValueList& a) -> IValueList {
    if (int_fn && !a[0].is_double() && !a[1].is_double()) return {int_fn(a[0].to_int(), a[1].to_int())};
    return {float_fn(a[0].to_double(), a[1].to_double())};
  };
  if (op.int_return == "int")
    r.add(op.name + ".int(int a, int b) -> int", by_value);
  else
    r.add(op.name + ".int(int a, int b) -> " + op.int_return, as_float);
  r.add(op.name + ".float(float a, float b) -> float", as_float);
  if (op.mixed_overloads) {
    r.add(op.name + ".int_float(int a, float b) -> float", as_float);
    r.add(op.name + ".float_int(float a, int b) -> float", as_float);
  }
  std::string scalar_name = op.scalar_overload.empty() ? op.name : op.name + "." + op.scalar_overload;
  if (op.scalar_return == "Scalar")
    r.add(scalar_name + "(Scalar a, Scalar b) -> Scalar", by_value);
  else
    r.add(scalar_name + "(Scalar a, Scalar b) -> " + op.scalar_return, as_float);
}

// Comparisons: int, float, mixed, Scalar, and (where given) str and bool overloads.
void register_comparison(OpRegistry& r, const std::string& name, std::function<bool(int)> test,
                         bool equality) {
  // `test` receives the three-way comparison of the operands (<0, 0, >0).
  auto numbers = [test, equality](IValueList& a) -> IValueList {
    if (!a[0].is_double() && !a[1].is_double()) {
      int64_t x = a[0].to_int(), y = a[1].to_int();
      return {test(x < y ? -1 : x > y ? 1 : 0)};
    }
    double x = a[0].to_double(), y = a[1].to_double();
    if (std::isnan(x) || std::isnan(y)) return {equality && test(1) && test(-1)};
    return {test(x < y ? -1 : x > y ? 1 : 0)};
  };
  r.add(name + ".int(int a, int b) -> bool", numbers);
  r.add(name + ".float(float a, float b) -> bool", numbers);
  r.add(name + ".int_float(int a, float b) -> bool", numbers);
  r.add(name + ".float_int(float a, int b) -> bool", numbers);
  r.add(name + "(Scalar a, Scalar b) -> bool", numbers);
  r.add(name + ".str(str a, str b) -> bool", [test](IValueList& a) -> IValueList {
    int c = a[0].to_string().compare(a[1].to_string());
    return {test(c < 0 ? -1 : c > 0 ? 1 : 0)};
  });
  if (equality) r.add(name + ".bool(bool a, bool b) -> bool", numbers);
}

bool list_equal(const IValueList& x, const IValueList& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    const IValue &a = x[i], &b = y[i];
    if (a.is_string() || b.is_string()) {
      if (!(a.is_string() && b.is_string() && a.to_string() == b.to_string())) return false;
    } else if (a.is_double() || b.is_double()) {
      if (a.to_double() != b.to_double()) return false;
    } else if (a.to_int() != b.to_int()) {
      return false;
    }
  }
  return true;
}

void register_list_equality(OpRegistry& r) {
  for (const char* type : {"int", "float", "bool", "str"}) {
    std::string t = type;
    r.add("aten::eq." + t + "_list(" + t + "[] a, " + t + "[] b) -> bool", [](IValueList& a) -> IValueList {
      return {list_equal(a[0].to_list_or_tuple(), a[1].to_list_or_tuple())};
    });
    r.add("aten::ne." + t + "_list(" + t + "[] a, " + t + "[] b) -> bool", [](IValueList& a) -> IValueList {
      return {!list_equal(a[0].to_list_or_tuple(), a[1].to_list_or_tuple())};
    });
  }
  r.add("aten::eq.device(Device a, Device b) -> bool",
        [](IValueList& a) -> IValueList { return {a[0].to_device() == a[1].to_device()}; });
  r.add("aten::ne.device(Device a, Device b) -> bool",
        [](IValueList& a) -> IValueList { return {!(a[0].to_device() == a[1].to_device())}; });
}

// int → int, float → float and Scalar → same-kind unary ops.
void register_unary_same_kind(OpRegistry& r, const std::string& name, std::function<int64_t(int64_t)> int_fn,
                              std::function<double(double)> float_fn) {
  r.add(name + ".int(int a) -> int",
        [int_fn](IValueList& a) -> IValueList { return {int_fn(a[0].to_int())}; });
  r.add(name + ".float(float a) -> float",
        [float_fn](IValueList& a) -> IValueList { return {float_fn(a[0].to_double())}; });
  r.add(name + ".Scalar(Scalar a) -> Scalar", [int_fn, float_fn](IValueList& a) -> IValueList {
    if (a[0].is_double()) return {float_fn(a[0].to_double())};
    return {int_fn(a[0].to_int())};
  });
}

// Math functions with a float result for int and float inputs.
void register_unary_float(OpRegistry& r, const std::string& name, std::function<double(double)> fn) {
  auto kernel = [fn](IValueList& a) -> IValueList { return {fn(a[0].to_double())}; };
  r.add(name + ".int(int a) -> float", kernel);
  r.add(name + ".float(float a) -> float", kernel);
  r.add(name + ".Scalar(Scalar a) -> Scalar", kernel);
}

// floor/ceil of a float give an int; of an int, the int itself.
int64_t float_to_int_checked(double v, const char* op) {
  CONVOY_CHECK(std::isfinite(v) && v >= -9.2233720368547758e18 && v < 9.2233720368547758e18, op,
               ": cannot convert float ", v, " to integer");
  return static_cast<int64_t>(v);
}

void register_min_max(OpRegistry& r, const std::string& name, bool is_min) {
  auto pick = [is_min](IValueList& a) -> IValueList {
    if (!a[0].is_double() && !a[1].is_double()) {
      int64_t x = a[0].to_int(), y = a[1].to_int();
      return {is_min ? std::min(x, y) : std::max(x, y)};
    }
    // TorchScript's `a < b ? a : b` (and `a > b ? a : b`): a NaN first operand yields the second.
    double x = a[0].to_double(), y = a[1].to_double();
    return {is_min ? (x < y ? x : y) : (x > y ? x : y)};
  };
  r.add(name + ".int(int a, int b) -> int", pick);
  r.add(name + ".float(float a, float b) -> float", [pick](IValueList& a) -> IValueList {
    IValueList args{a[0].to_double(), a[1].to_double()};
    return pick(args);
  });
  r.add(name + ".int_float(int a, float b) -> float", [pick](IValueList& a) -> IValueList {
    IValueList args{a[0].to_double(), a[1].to_double()};
    return pick(args);
  });
  r.add(name + ".float_int(float a, int b) -> float", [pick](IValueList& a) -> IValueList {
    IValueList args{a[0].to_double(), a[1].to_double()};
    return pick(args);
  });
  r.add(name + "(Scalar a, Scalar b) -> Scalar", pick);
}

}  // namespace

void register_scalar_ops(OpRegistry& r) {
  register_binary(r, {"aten::add", wrap_add, [](double a, double b) { return a + b; }, true, ""});
  register_binary(r, {"aten::sub", wrap_sub, [](double a, double b) { return a - b; }, true, ""});
  register_binary(r, {"aten::mul", wrap_mul, [](double a, double b) { return a * b; }, true, ""});
  // True division; division by zero gives inf/nan as in TorchScript.
  register_binary(
      r, {"aten::div", nullptr, [](double a, double b) { return a / b; }, false, "", "float", "float"});
  register_binary(
      r, {"aten::floordiv", int_floordiv, [](double a, double b) { return std::floor(a / b); }, true, ""});
  register_binary(r, {"aten::remainder", int_remainder, float_remainder, true, ""});
  register_binary(r, {"aten::pow", nullptr, float_pow, true, "Scalar_Scalar", "float", "float"});
  r.add("aten::pow.int_to_int(int a, int b) -> int",
        [](IValueList& a) -> IValueList { return {int_pow(a[0].to_int(), a[1].to_int())}; });

  register_comparison(
      r, "aten::eq", [](int c) { return c == 0; }, true);
  register_comparison(
      r, "aten::ne", [](int c) { return c != 0; }, true);
  register_comparison(
      r, "aten::lt", [](int c) { return c < 0; }, false);
  register_comparison(
      r, "aten::le", [](int c) { return c <= 0; }, false);
  register_comparison(
      r, "aten::gt", [](int c) { return c > 0; }, false);
  register_comparison(
      r, "aten::ge", [](int c) { return c >= 0; }, false);
  register_list_equality(r);

  r.add("aten::__not__(bool self) -> bool", [](IValueList& a) -> IValueList { return {!a[0].to_bool()}; });
  r.add("aten::__and__.bool(bool a, bool b) -> bool",
        [](IValueList& a) -> IValueList { return {a[0].to_bool() && a[1].to_bool()}; });
  r.add("aten::__or__.bool(bool a, bool b) -> bool",
        [](IValueList& a) -> IValueList { return {a[0].to_bool() || a[1].to_bool()}; });
  r.add("aten::__xor__.bool(bool a, bool b) -> bool",
        [](IValueList& a) -> IValueList { return {a[0].to_bool() != a[1].to_bool()}; });
  r.add("aten::__and__.int(int a, int b) -> int",
        [](IValueList& a) -> IValueList { return {a[0].to_int() & a[1].to_int()}; });
  r.add("aten::__or__.int(int a, int b) -> int",
        [](IValueList& a) -> IValueList { return {a[0].to_int() | a[1].to_int()}; });
  r.add("aten::__xor__.int(int a, int b) -> int",
        [](IValueList& a) -> IValueList { return {a[0].to_int() ^ a[1].to_int()}; });

  register_unary_same_kind(
      r, "aten::neg", [](int64_t v) { return wrap_sub(0, v); }, [](double v) { return -v; });
  register_unary_same_kind(
      r, "prim::abs", [](int64_t v) { return v < 0 ? wrap_sub(0, v) : v; },
      [](double v) { return std::fabs(v); });
  register_min_max(r, "prim::min", true);
  register_min_max(r, "prim::max", false);

  for (bool is_floor : {true, false}) {
    std::string name = is_floor ? "aten::floor" : "aten::ceil";
    r.add(name + ".int(int a) -> int", [](IValueList& a) -> IValueList { return {a[0].to_int()}; });
    r.add(name + ".float(float a) -> int", [is_floor](IValueList& a) -> IValueList {
      double v = a[0].to_double();
      return {float_to_int_checked(is_floor ? std::floor(v) : std::ceil(v), is_floor ? "floor" : "ceil")};
    });
    r.add(name + ".Scalar(Scalar a) -> Scalar", [is_floor](IValueList& a) -> IValueList {
      if (!a[0].is_double()) return {a[0].to_int()};
      double v = a[0].to_double();
      return {float_to_int_checked(is_floor ? std::floor(v) : std::ceil(v), is_floor ? "floor" : "ceil")};
    });
  }
  // round() rounds half to even in TorchScript (round(2.5) == 2.0) and always returns a float.
  register_unary_float(r, "aten::round", [](double v) { return std::nearbyint(v); });
  register_unary_float(r, "aten::sqrt", [](double v) { return std::sqrt(v); });
  register_unary_float(r, "aten::exp", [](double v) { return std::exp(v); });
  register_unary_float(r, "aten::log", [](double v) { return std::log(v); });

  r.add("aten::add.str(str a, str b) -> str",
        [](IValueList& a) -> IValueList { return {a[0].to_string() + a[1].to_string()}; });
}

}  // namespace convoy
