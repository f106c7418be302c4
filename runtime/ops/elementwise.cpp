// Elementwise ops: unary math, activations, clamps, binary arithmetic with broadcasting and scalar
// overloads, comparisons, logical and bitwise ops, selection (where, masked_fill), dtype conversion
// (to, type_as) and the identities of inference (detach, clone, dropout).
//
// Every op follows PyTorch's dtype rules (torch.result_type, see kernel_util.h): results are computed
// in double (floating) or int64 (integer, bool) from inputs first converted to the promoted dtype, and
// rounded or wrapped to the output dtype when stored. In-place variants compute the out-of-place result
// and copy it into args[0] through its strides, after PyTorch's check that the result dtype can be cast
// to self's dtype, so they see aliasing exactly as PyTorch does and never change self's dtype.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

// ---------------------------------------------------------------------------------------------------
// Drivers

// Marks an op without a floating or without an integer kernel (its dtype checks reject those
// compute dtypes before the kernel runs).
struct NoKernel {};

// Evaluates an elementwise function over the broadcast of `inputs`: ff (doubles) when compute_dtype
// is floating, fi (int64) otherwise; the result has dtype out_dtype.
template <size_t N, typename FloatFn, typename IntFn>
Tensor elementwise(const char* op, const std::array<const Tensor*, N>& inputs, DType compute_dtype,
                   DType out_dtype, FloatFn ff, IntFn fi) {
  Shape shape = inputs[0]->sizes();
  for (size_t k = 1; k < N; ++k) shape = broadcast_shapes(shape, inputs[k]->sizes(), op);
  Tensor out = Tensor::empty(shape, out_dtype);
  if (is_floating(compute_dtype)) {
    if constexpr (!std::is_same_v<FloatFn, NoKernel>) {
      map_elements<double, N>(out, inputs, compute_dtype, op, ff);
      return out;
    }
  } else {
    if constexpr (!std::is_same_v<IntFn, NoKernel>) {
      map_elements<int64_t, N>(out, inputs, compute_dtype, op, fi);
      return out;
    }
  }
  fail(ErrorKind::kInternal, op, ": no kernel for compute dtype ", dtype_name(compute_dtype));
}

// Returns `result`, or for in-place ops writes it into args[0] (through its strides) and returns that.
IValueList finish(const char* op, IValueList& args, Tensor result, bool inplace) {
  if (!inplace) return {IValue(std::move(result))};
  Tensor& self = args[0].to_tensor();
  check_can_cast_to_self(result.dtype(), self.dtype(), op);
  CONVOY_CHECK(result.sizes() == self.sizes(), op, ": output with shape ", shape_str(self.sizes()),
               " doesn't match the broadcast shape ", shape_str(result.sizes()));
  copy_into(self, result, op);  // result is fresh: no overlap with self
  return {args[0]};
}

// A Tensor or Scalar argument as a tensor operand plus its place in type promotion.
struct Operand {
  Tensor tensor;
  PromotionOperand promo;
};

Operand operand(const IValue& v, const char* op) {
  if (v.is_tensor()) return {v.to_tensor(), promotion_operand(v.to_tensor())};
  return {scalar_to_tensor(v, op), promotion_operand(v, op)};
}

DType promoted(std::initializer_list<const Operand*> ops) {
  std::vector<PromotionOperand> p;
  for (const Operand* o : ops) p.push_back(o->promo);
  return result_type(p);
}

DType int_to_float(DType d) { return is_floating(d) ? d : kDefaultFloatDType; }

[[noreturn]] void not_implemented(const char* op, DType dtype) {
  fail(ErrorKind::kInvalidInput, op, ": not implemented for '", scalar_type_name(dtype), "'");
}

// The precision PyTorch uses for scalar parameters (alpha, negative_slope): float unless double.
double opmath_round(double v, DType compute) {
  return compute == DType::kFloat64 ? v : round_to_dtype(v, DType::kFloat32);
}

// Wrapping int64 arithmetic (PyTorch's integer ops wrap; signed overflow is undefined in C++).
int64_t wadd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t wsub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t wmul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
int64_t wneg(int64_t a) { return wsub(0, a); }

// ---------------------------------------------------------------------------------------------------
// Unary ops

enum class UnaryRule {
  kFloatResult,   // integer and bool inputs give float32 (exp, sin, sigmoid, ...)
  kFloatOnly,     // floating inputs only (activations: "silu_cpu" not implemented for 'Int')
  kKeepNoBool,    // keeps the dtype; bool is an error (neg, abs, floor, relu)
  kKeep,          // keeps the dtype, bool included (sign)
  kBoolResult,    // bool result (logical_not, isnan)
  kIntegralOnly,  // integer and bool only (bitwise_not)
};

using FloatUnary = double (*)(double);
using IntUnary = int64_t (*)(int64_t);

int64_t logical_not_int(int64_t a) { return a == 0; }

Tensor unary(const char* op, const Tensor& x, UnaryRule rule, FloatUnary ff, IntUnary fi) {
  DType in = x.dtype();
  DType compute = in, out = in;
  switch (rule) {
    case UnaryRule::kFloatResult:
      compute = out = int_to_float(in);
      break;
    case UnaryRule::kFloatOnly:
      if (!is_floating(in)) not_implemented(op, in);
      break;
    case UnaryRule::kKeepNoBool:
      if (in == DType::kBool) not_implemented(op, in);
      break;
    case UnaryRule::kKeep:
      break;
    case UnaryRule::kBoolResult:
      out = DType::kBool;
      break;
    case UnaryRule::kIntegralOnly:
      if (is_floating(in)) not_implemented(op, in);
      break;
  }
  if (rule == UnaryRule::kIntegralOnly && in == DType::kBool) fi = logical_not_int;
  CONVOY_ASSERT(is_floating(compute) || fi != nullptr, op, " has no integer kernel");
  return elementwise<1>(
      op, {&x}, compute, out, [ff](double a) { return ff(a); }, [fi](int64_t a) { return fi(a); });
}

struct UnaryDef {
  const char* name;
  UnaryRule rule;
  FloatUnary ff;
  IntUnary fi;   // nullptr: no integer inputs reach the kernel
  bool inplace;  // PyTorch has NAME_
};

int64_t int_identity(int64_t a) { return a; }

const UnaryDef kUnaryOps[] = {
    {"exp", UnaryRule::kFloatResult, [](double a) { return std::exp(a); }, nullptr, true},
    {"exp2", UnaryRule::kFloatResult, [](double a) { return std::exp2(a); }, nullptr, true},
    {"expm1", UnaryRule::kFloatResult, [](double a) { return std::expm1(a); }, nullptr, true},
    {"log", UnaryRule::kFloatResult, [](double a) { return std::log(a); }, nullptr, true},
    {"log2", UnaryRule::kFloatResult, [](double a) { return std::log2(a); }, nullptr, true},
    {"log10", UnaryRule::kFloatResult, [](double a) { return std::log10(a); }, nullptr, true},
    {"log1p", UnaryRule::kFloatResult, [](double a) { return std::log1p(a); }, nullptr, true},
    {"sqrt", UnaryRule::kFloatResult, [](double a) { return std::sqrt(a); }, nullptr, true},
    {"rsqrt", UnaryRule::kFloatResult, [](double a) { return 1.0 / std::sqrt(a); }, nullptr, true},
    {"sin", UnaryRule::kFloatResult, [](double a) { return std::sin(a); }, nullptr, true},
    {"cos", UnaryRule::kFloatResult, [](double a) { return std::cos(a); }, nullptr, true},
    {"tan", UnaryRule::kFloatResult, [](double a) { return std::tan(a); }, nullptr, true},
    {"asin", UnaryRule::kFloatResult, [](double a) { return std::asin(a); }, nullptr, true},
    {"acos", UnaryRule::kFloatResult, [](double a) { return std::acos(a); }, nullptr, true},
    {"atan", UnaryRule::kFloatResult, [](double a) { return std::atan(a); }, nullptr, true},
    {"sinh", UnaryRule::kFloatResult, [](double a) { return std::sinh(a); }, nullptr, true},
    {"cosh", UnaryRule::kFloatResult, [](double a) { return std::cosh(a); }, nullptr, true},
    {"tanh", UnaryRule::kFloatResult, [](double a) { return std::tanh(a); }, nullptr, true},
    {"sigmoid", UnaryRule::kFloatResult, [](double a) { return 1.0 / (1.0 + std::exp(-a)); }, nullptr, true},
    {"erf", UnaryRule::kFloatResult, [](double a) { return std::erf(a); }, nullptr, true},
    {"erfc", UnaryRule::kFloatResult, [](double a) { return std::erfc(a); }, nullptr, true},
    {"reciprocal", UnaryRule::kFloatResult, [](double a) { return 1.0 / a; }, nullptr, true},
    {"abs", UnaryRule::kKeepNoBool, [](double a) { return std::fabs(a); },
     [](int64_t a) { return a < 0 ? wneg(a) : a; }, true},
    {"floor", UnaryRule::kKeepNoBool, [](double a) { return std::floor(a); }, int_identity, true},
    {"ceil", UnaryRule::kKeepNoBool, [](double a) { return std::ceil(a); }, int_identity, true},
    // Round half to even, as torch.round.
    {"round", UnaryRule::kKeepNoBool, [](double a) { return std::nearbyint(a); }, int_identity, true},
    {"trunc", UnaryRule::kKeepNoBool, [](double a) { return std::trunc(a); }, int_identity, true},
    // NaN gives 0, as PyTorch's (0 < a) - (a < 0).
    {"sign", UnaryRule::kKeep, [](double a) { return static_cast<double>((0.0 < a) - (a < 0.0)); },
     [](int64_t a) { return static_cast<int64_t>((0 < a) - (a < 0)); }, true},
    {"logical_not", UnaryRule::kBoolResult, [](double a) { return a == 0.0 ? 1.0 : 0.0; },
     [](int64_t a) { return static_cast<int64_t>(a == 0); }, true},
    {"isnan", UnaryRule::kBoolResult, [](double a) { return std::isnan(a) ? 1.0 : 0.0; },
     [](int64_t) { return int64_t{0}; }, false},
    {"isinf", UnaryRule::kBoolResult, [](double a) { return std::isinf(a) ? 1.0 : 0.0; },
     [](int64_t) { return int64_t{0}; }, false},
    {"isfinite", UnaryRule::kBoolResult, [](double a) { return std::isfinite(a) ? 1.0 : 0.0; },
     [](int64_t) { return int64_t{1}; }, false},
    {"bitwise_not", UnaryRule::kIntegralOnly, nullptr, nullptr, true},  // integer kernel below
    {"hardswish", UnaryRule::kFloatOnly,
     [](double a) { return a * std::min(std::max(a + 3.0, 0.0), 6.0) / 6.0; }, nullptr, true},
    {"hardsigmoid", UnaryRule::kFloatOnly,
     [](double a) { return std::min(std::max(a + 3.0, 0.0), 6.0) / 6.0; }, nullptr, true},
    {"silu", UnaryRule::kFloatOnly, [](double a) { return a / (1.0 + std::exp(-a)); }, nullptr, true},
    {"mish", UnaryRule::kFloatOnly, [](double a) { return a * std::tanh(std::log1p(std::exp(a))); }, nullptr,
     true},
};

// ~x for integers; bool needs !x, which unary() picks for bool inputs.
int64_t bitwise_not_int(int64_t a) { return ~a; }

// ---------------------------------------------------------------------------------------------------
// Clamps

// PyTorch's std::min(std::max(a, lo), hi): a NaN input stays NaN, a NaN bound is ignored.
double clamp_float(double a, const double* lo, const double* hi) {
  if (lo && a < *lo) a = *lo;
  if (hi && *hi < a) a = *hi;
  return a;
}

// clamp(self, Scalar? min, Scalar? max) and its Tensor? overload: both bounds are operands of type
// promotion and of broadcasting (torch 1.13 semantics).
Tensor clamp(const char* op, const IValue& self, const IValue& min, const IValue& max) {
  CONVOY_CHECK(!min.is_none() || !max.is_none(), op, ": at least one of 'min' or 'max' must not be None");
  std::vector<Operand> ops{operand(self, op)};
  if (!min.is_none()) ops.push_back(operand(min, op));
  if (!max.is_none()) ops.push_back(operand(max, op));
  std::vector<PromotionOperand> promo;
  for (const Operand& o : ops) promo.push_back(o.promo);
  DType common = result_type(promo);
  // Scalar bounds are read as the element type, with PyTorch's overflow check.
  for (const IValue* bound : {&min, &max})
    if (!bound->is_tensor()) check_scalar_fits(*bound, common, op);
  DType out = common;
  bool has_min = !min.is_none();
  if (ops.size() == 3) {
    return elementwise<3>(
        op, {&ops[0].tensor, &ops[1].tensor, &ops[2].tensor}, common, out,
        [](double a, double lo, double hi) { return clamp_float(a, &lo, &hi); },
        [](int64_t a, int64_t lo, int64_t hi) { return std::min(std::max(a, lo), hi); });
  }
  return elementwise<2>(
      op, {&ops[0].tensor, &ops[1].tensor}, common, out,
      [has_min](double a, double b) {
        return has_min ? clamp_float(a, &b, nullptr) : clamp_float(a, nullptr, &b);
      },
      [has_min](int64_t a, int64_t b) { return has_min ? std::max(a, b) : std::min(a, b); });
}

// hardtanh (and relu6): unlike clamp, the result keeps self's dtype; for integer tensors the bounds
// are first truncated to integers (PyTorch's legacy behaviour), then checked like clamp's.
Tensor hardtanh(const char* op, const Tensor& x, const IValue& min_v, const IValue& max_v) {
  DType d = x.dtype();
  CONVOY_CHECK(d != DType::kBool, op, ": bool inputs not supported for hardtanh");
  IValue lo_v = min_v, hi_v = max_v;
  if (!is_floating(d)) {
    lo_v = IValue(static_cast<int64_t>(min_v.to_double()));
    hi_v = IValue(static_cast<int64_t>(max_v.to_double()));
    CONVOY_CHECK(d != DType::kUInt8 || (lo_v.to_int() >= 0 && hi_v.to_int() >= 0), op,
                 ": cannot do hardtanh on an unsigned type with negative limits (", min_v.repr(), ", ",
                 max_v.repr(), ")");
  }
  check_scalar_fits(lo_v, d, op);
  check_scalar_fits(hi_v, d, op);
  double lo = round_to_dtype(lo_v.to_double(), d), hi = round_to_dtype(hi_v.to_double(), d);
  int64_t lo_i = static_cast<int64_t>(lo), hi_i = static_cast<int64_t>(hi);
  return elementwise<1>(
      op, {&x}, d, d, [lo, hi](double a) { return clamp_float(a, &lo, &hi); },
      [lo_i, hi_i](int64_t a) { return std::min(std::max(a, lo_i), hi_i); });
}

// ---------------------------------------------------------------------------------------------------
// Binary arithmetic

void check_alpha(const char* op, DType result, const IValue& alpha) {
  CONVOY_CHECK(!alpha.is_bool() || result == DType::kBool, op,
               ": boolean alpha only supported for boolean results");
  CONVOY_CHECK(is_floating(result) || !alpha.is_double(), op,
               ": for integral input tensors, argument alpha must not be a floating point number (alpha=",
               alpha.repr(), ")");
}

void check_sub_bool(const char* op, const Operand& a, const Operand& b) {
  CONVOY_CHECK(a.tensor.dtype() != DType::kBool || b.tensor.dtype() != DType::kBool, op,
               ": subtraction, the `-` operator, with two bool tensors is not supported; use the `^` or "
               "`logical_xor()` operator instead");
  CONVOY_CHECK(a.tensor.dtype() != DType::kBool && b.tensor.dtype() != DType::kBool, op,
               ": subtraction, the `-` operator, with a bool tensor is not supported; to invert a mask use "
               "the `~` or `logical_not()` operator instead");
}

// a + alpha * b (sign = +1) or a - alpha * b (sign = -1).
Tensor add_sub(const char* op, const IValue& av, const IValue& bv, const IValue& alpha, int sign) {
  Operand a = operand(av, op), b = operand(bv, op);
  if (sign < 0) check_sub_bool(op, a, b);
  DType common = promoted({&a, &b});
  check_alpha(op, common, alpha);
  check_scalar_fits(alpha, common, op);
  double alpha_f = opmath_round(alpha.to_double(), common) * sign;
  int64_t alpha_i = wmul(alpha.is_double() ? 0 : alpha.to_int(), sign);
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, common, [alpha_f](double x, double y) { return x + alpha_f * y; },
      [alpha_i](int64_t x, int64_t y) { return wadd(x, wmul(alpha_i, y)); });
}

Tensor mul(const char* op, const IValue& av, const IValue& bv) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, common, [](double x, double y) { return x * y; },
      [](int64_t x, int64_t y) { return wmul(x, y); });
}

[[noreturn]] void zero_division(const char* op) {
  fail(ErrorKind::kInvalidInput, op, ": ZeroDivisionError (integer division by zero)");
}

int64_t div_trunc_int(int64_t a, int64_t b, const char* op) {
  if (b == 0) zero_division(op);
  if (b == -1) return wneg(a);  // INT64_MIN / -1 overflows in C++; PyTorch wraps
  return a / b;
}

// Python's floor division.
int64_t div_floor_int(int64_t a, int64_t b, const char* op) {
  if (b == 0) zero_division(op);
  if (b == -1) return wneg(a);
  int64_t q = a / b, r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) --q;
  return q;
}

// PyTorch's div_floor_floating (Python's floor division), step by step in the precision of `dtype`:
// the rounding of each intermediate decides which side of an integer the quotient lands on, so
// float32 must round like float32 arithmetic (1 / 0.1f is 10 there, 9.99999985 in double).
double div_floor_float(double a, double b, DType dtype) {
  auto r = [dtype](double v) { return round_to_dtype(v, dtype); };
  if (b == 0) return a / b;
  double mod = std::fmod(a, b);
  double div = r(r(a - mod) / b);
  if (mod != 0 && (b < 0) != (mod < 0)) div = r(div - 1.0);
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (r(div - floordiv) > 0.5) floordiv = r(floordiv + 1.0);
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return floordiv;
}

// div with rounding_mode None (true division: integers give float32), "trunc" or "floor".
Tensor div(const char* op, const IValue& av, const IValue& bv, const IValue& mode_v) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  if (mode_v.is_none()) {
    DType f = int_to_float(common);
    return elementwise<2>(
        op, {&a.tensor, &b.tensor}, f, f, [](double x, double y) { return x / y; }, NoKernel{});
  }
  const std::string& mode = mode_v.to_string();
  if (common == DType::kBool) not_implemented(op, common);
  if (mode == "trunc") {
    return elementwise<2>(
        op, {&a.tensor, &b.tensor}, common, common,
        [common](double x, double y) { return std::trunc(round_to_dtype(x / y, common)); },
        [op](int64_t x, int64_t y) { return div_trunc_int(x, y, op); });
  }
  if (mode == "floor") {
    return elementwise<2>(
        op, {&a.tensor, &b.tensor}, common, common,
        [common](double x, double y) { return div_floor_float(x, y, common); },
        [op](int64_t x, int64_t y) { return div_floor_int(x, y, op); });
  }
  fail(ErrorKind::kInvalidInput, op,
       ": expected rounding_mode to be one of None, 'trunc', or 'floor' but found '", mode, "'");
}

Tensor remainder(const char* op, const IValue& av, const IValue& bv) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  if (common == DType::kBool) not_implemented(op, common);
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, common,
      [common](double x, double y) {
        double mod = std::fmod(x, y);
        if (mod != 0 && (y < 0) != (mod < 0)) mod = round_to_dtype(mod + y, common);
        return mod;
      },
      [op](int64_t x, int64_t y) {
        if (y == 0) zero_division(op);
        if (y == -1) return int64_t{0};
        int64_t r = x % y;
        if (r != 0 && (r < 0) != (y < 0)) r += y;
        return r;
      });
}

Tensor fmod(const char* op, const IValue& av, const IValue& bv) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  if (common == DType::kBool) not_implemented(op, common);
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, common, [](double x, double y) { return std::fmod(x, y); },
      [op](int64_t x, int64_t y) {
        if (y == 0) zero_division(op);
        return y == -1 ? int64_t{0} : x % y;
      });
}

// Integer power with wrap-around; negative exponents give 0 except for bases 1 and -1 (PyTorch's powi).
int64_t pow_int(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exp % 2) ? -1 : 1;
    return 0;
  }
  uint64_t result = 1, b = static_cast<uint64_t>(base);
  while (exp) {
    if (exp & 1) result *= b;
    b *= b;
    exp >>= 1;
  }
  return static_cast<int64_t>(result);
}

Tensor pow(const char* op, const IValue& base_v, const IValue& exp_v) {
  Operand base = operand(base_v, op), exp = operand(exp_v, op);
  DType common = promoted({&base, &exp});
  if (common == DType::kBool) not_implemented(op, common);
  if (base_v.is_tensor() && !exp_v.is_tensor()) {
    CONVOY_CHECK(!(is_integral(base.tensor.dtype(), true) && !exp_v.is_double() && exp_v.to_int() < 0), op,
                 ": integers to negative integer powers are not allowed (exponent ", exp_v.repr(), ")");
    if (common != DType::kFloat32 && common != DType::kFloat64) check_scalar_fits(exp_v, common, op);
    // PyTorch's pow(Tensor, Scalar) kernel special-cases these exponents (sqrt(-inf) is NaN where
    // std::pow gives inf), except for float16; each multiplication rounds to the dtype.
    double e = exp_v.to_double();
    if (is_floating(common) && common != DType::kFloat16 &&
        (e == 0.5 || e == -0.5 || e == -1 || e == 2 || e == 3 || e == -2)) {
      return elementwise<1>(
          op, {&base.tensor}, common, common,
          [e, common](double x) {
            auto r = [common](double v) { return round_to_dtype(v, common); };
            if (e == 0.5) return std::sqrt(x);
            if (e == -0.5) return 1.0 / std::sqrt(x);
            if (e == -1) return 1.0 / x;
            if (e == 2) return x * x;
            if (e == 3) return r(x * x) * x;
            return 1.0 / r(x * x);
          },
          NoKernel{});
    }
  }
  // pow(1, exponent) is 1 everywhere, NaN exponents included, as PyTorch special-cases it.
  if (!base_v.is_tensor() && base_v.to_double() == 1.0) {
    return Tensor::full(exp.tensor.sizes(), common, 1.0);
  }
  return elementwise<2>(
      op, {&base.tensor, &exp.tensor}, common, common, [](double x, double y) { return std::pow(x, y); },
      [](int64_t x, int64_t y) { return pow_int(x, y); });
}

Tensor maximum_minimum(const char* op, const IValue& av, const IValue& bv, bool is_max) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, common,
      [is_max](double x, double y) {
        if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<double>::quiet_NaN();
        return is_max ? std::max(x, y) : std::min(x, y);
      },
      [is_max](int64_t x, int64_t y) { return is_max ? std::max(x, y) : std::min(x, y); });
}

Tensor atan2(const char* op, const IValue& av, const IValue& bv) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType f = int_to_float(promoted({&a, &b}));
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, f, f, [](double x, double y) { return std::atan2(x, y); }, NoKernel{});
}

enum class BitOp { kAnd, kOr, kXor };

Tensor bitwise(const char* op, const IValue& av, const IValue& bv, BitOp bit) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  if (is_floating(common)) not_implemented(op, common);
  return elementwise<2>(op, {&a.tensor, &b.tensor}, common, common, NoKernel{}, [bit](int64_t x, int64_t y) {
    switch (bit) {
      case BitOp::kAnd:
        return x & y;
      case BitOp::kOr:
        return x | y;
      case BitOp::kXor:
        return x ^ y;
    }
    return int64_t{0};
  });
}

Tensor logical(const char* op, const IValue& av, const IValue& bv, BitOp bit) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  auto apply = [bit](bool x, bool y) -> int64_t {
    switch (bit) {
      case BitOp::kAnd:
        return x && y;
      case BitOp::kOr:
        return x || y;
      case BitOp::kXor:
        return x != y;
    }
    return 0;
  };
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, DType::kBool,
      [apply](double x, double y) { return static_cast<double>(apply(x != 0, y != 0)); },
      [apply](int64_t x, int64_t y) { return apply(x != 0, y != 0); });
}

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

template <typename T>
int64_t compare(CmpOp c, T x, T y) {
  switch (c) {
    case CmpOp::kEq:
      return x == y;
    case CmpOp::kNe:
      return x != y;
    case CmpOp::kLt:
      return x < y;
    case CmpOp::kLe:
      return x <= y;
    case CmpOp::kGt:
      return x > y;
    case CmpOp::kGe:
      return x >= y;
  }
  return 0;
}

// Compares in the promoted dtype (uint8 > -1 compares with 255, as PyTorch does); bool result.
Tensor comparison(const char* op, const IValue& av, const IValue& bv, CmpOp c) {
  Operand a = operand(av, op), b = operand(bv, op);
  DType common = promoted({&a, &b});
  return elementwise<2>(
      op, {&a.tensor, &b.tensor}, common, DType::kBool,
      [c](double x, double y) { return static_cast<double>(compare(c, x, y)); },
      [c](int64_t x, int64_t y) { return compare(c, x, y); });
}

// ---------------------------------------------------------------------------------------------------
// Selection

void check_condition(const char* op, const Tensor& cond, const char* what) {
  CONVOY_CHECK(cond.dtype() == DType::kBool || cond.dtype() == DType::kUInt8, op, ": expected ", what,
               " to be a boolean tensor, but got a tensor with dtype ", dtype_name(cond.dtype()));
}

Tensor where(const char* op, const Tensor& cond, const IValue& self, const IValue& other) {
  check_condition(op, cond, "condition");
  Operand a = operand(self, op), b = operand(other, op);
  DType common = promoted({&a, &b});
  // The condition is read as a plain 0/1 operand: converting a nonzero byte to any compute dtype keeps
  // it nonzero.
  Tensor c = cond.dtype() == DType::kBool ? cond : cond.to(DType::kBool);
  return elementwise<3>(
      op, {&c, &a.tensor, &b.tensor}, common, common,
      [](double k, double x, double y) { return k != 0 ? x : y; },
      [](int64_t k, int64_t x, int64_t y) { return k != 0 ? x : y; });
}

// torch.where(condition): the indices of nonzero elements, one int64 tensor per dim.
IValue where_nonzero(const Tensor& cond) {
  Tensor c = cond.dim() == 0 ? cond.as_strided({1}, {1}, cond.offset()) : cond;
  std::vector<double> values = c.to_doubles();
  Shape strides = contiguous_strides(c.sizes());
  int64_t count = 0;
  for (double v : values) count += v != 0;
  IValueList out;
  std::vector<Tensor> idx;
  for (int64_t d = 0; d < c.dim(); ++d) idx.push_back(Tensor::empty({count}, DType::kInt64));
  int64_t k = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(values.size()); ++i) {
    if (values[static_cast<size_t>(i)] == 0) continue;
    for (int64_t d = 0; d < c.dim(); ++d)
      idx[static_cast<size_t>(d)].data<int64_t>()[k] =
          (i / strides[static_cast<size_t>(d)]) % c.sizes()[static_cast<size_t>(d)];
    ++k;
  }
  for (Tensor& t : idx) out.emplace_back(std::move(t));
  return IValue::list(std::move(out));
}

// Writes `value` into `dst` wherever `mask` (broadcast to dst's shape) is true.
void masked_fill_into(const char* op, const Tensor& dst, const Tensor& mask, const IValue& value) {
  StridedOperand d = strided_operand(dst, dst.sizes(), op);
  StridedOperand m = strided_operand(mask, dst.sizes(), op);
  bool as_int = value.is_int() || value.is_bool();
  int64_t vi = as_int ? value.to_int() : 0;
  double vd = value.to_double();
  for_each_element<2>(dst.sizes(), {d.strides.data(), m.strides.data()}, {d.offset, m.offset},
                      [&](const std::array<int64_t, 2>& off) {
                        if (load_as_int(m.at(off[1]), m.dtype) == 0) return;
                        if (as_int)
                          store_int(d.at(off[0]), d.dtype, vi);
                        else
                          store_double(d.at(off[0]), d.dtype, vd);
                      });
}

IValue masked_fill_value(const char* op, const IValue& value) {
  if (!value.is_tensor()) return value;
  const Tensor& v = value.to_tensor();
  CONVOY_CHECK(v.dim() == 0, op, ": only supports a 0-dimensional value tensor, but got tensor with ",
               v.dim(), " dimension(s)");
  if (is_floating(v.dtype())) return IValue(v.item_double());
  if (v.dtype() == DType::kBool) return IValue(v.item_bool());
  return IValue(v.item_int());
}

IValueList masked_fill(const char* op, IValueList& args, bool inplace) {
  const Tensor& self = args[0].to_tensor();
  const Tensor& mask = args[1].to_tensor();
  CONVOY_CHECK(mask.dtype() == DType::kBool || mask.dtype() == DType::kUInt8, op,
               ": only supports boolean masks, but got mask with dtype ", dtype_name(mask.dtype()));
  IValue value = masked_fill_value(op, args[2]);
  check_scalar_fits(value, self.dtype(), op);
  if (mask.dtype() == DType::kUInt8) {
    for (int64_t v : mask.to_ints())
      CONVOY_CHECK(v == 0 || v == 1, op, ": a uint8 mask can take 0 and 1 values only, found ", v);
  }
  if (inplace) {
    masked_fill_into(op, self, mask, value);
    return {args[0]};
  }
  Shape shape = broadcast_shapes(self.sizes(), mask.sizes(), op);
  Tensor out = Tensor::empty(shape, self.dtype());
  out.copy_from(self);
  masked_fill_into(op, out, mask, value);
  return {IValue(out)};
}

// ---------------------------------------------------------------------------------------------------
// Conversion and identities

// Convoy runs every op on its executor's device, so the device arguments of aten::to are accepted and
// ignored; only the dtype (and `copy`) matter.
IValue convert(const Tensor& self, std::optional<DType> dtype, bool copy) {
  DType target = dtype.value_or(self.dtype());
  if (target == self.dtype() && !copy) return IValue(self);
  Tensor out = Tensor::empty(self.sizes(), target);
  out.copy_from(self);
  return IValue(out);
}

// Inference-only dropout: identity unless training, where only the deterministic cases are computed
// (p = 0: identity; p = 1: zeros, as input * 0, like PyTorch's CPU path).
IValueList dropout(const char* op, IValueList& args, bool inplace) {
  const Tensor& input = args[0].to_tensor();
  double p = args[1].to_double();
  bool train = args[2].to_bool();
  CONVOY_CHECK(p >= 0 && p <= 1, op, ": dropout probability has to be between 0 and 1, but got ", p);
  if (!train || p == 0 || input.numel() == 0) return {args[0]};
  if (p == 1) {
    Tensor zero = Tensor::scalar_double(0.0, input.dtype());
    Tensor r = elementwise<2>(
        op, {&input, &zero}, input.dtype(), input.dtype(), [](double x, double z) { return x * z; },
        [](int64_t x, int64_t z) { return x * z; });
    return finish(op, args, r, inplace);
  }
  fail(ErrorKind::kUnsupported, op, " with train=True (p=", p,
       ") is not supported: Convoy runs inference only; export the model in eval() mode");
}

// ---------------------------------------------------------------------------------------------------
// Type inference

enum class InferRule { kPromote, kPromoteIntToFloat, kBool, kFirstDType };

InferFn infer_elementwise(std::vector<int> dtype_operands, std::vector<int> shape_operands, InferRule rule) {
  return [=](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
    std::optional<DType> dtype;
    switch (rule) {
      case InferRule::kPromote:
        dtype = infer_result_type(args, constants, dtype_operands);
        break;
      case InferRule::kPromoteIntToFloat:
        dtype = infer_result_type(args, constants, dtype_operands);
        if (dtype) dtype = int_to_float(*dtype);
        break;
      case InferRule::kBool:
        dtype = DType::kBool;
        break;
      case InferRule::kFirstDType:
        dtype = arg_dtype(args, dtype_operands.at(0));
        break;
    }
    return std::vector<TypePtr>{Type::tensor(dtype, infer_broadcast_shape(args, shape_operands))};
  };
}

InferFn infer_binary(InferRule rule) { return infer_elementwise({0, 1}, {0, 1}, rule); }

// In-place ops return self: same dtype and shape.
InferFn infer_self() {
  return [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
    return std::vector<TypePtr>{Type::tensor(arg_dtype(args, 0), arg_shape(args, 0))};
  };
}

InferFn infer_unary(UnaryRule rule) {
  return [rule](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
    std::optional<DType> dtype = arg_dtype(args, 0);
    if (dtype && rule == UnaryRule::kFloatResult) dtype = int_to_float(*dtype);
    if (rule == UnaryRule::kBoolResult) dtype = DType::kBool;
    return std::vector<TypePtr>{Type::tensor(dtype, arg_shape(args, 0))};
  };
}

// aten::to / type_as: the target dtype comes from a constant ScalarType argument or another tensor.
InferFn infer_to_dtype_arg(int dtype_index) {
  return [dtype_index](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
    std::optional<DType> dtype;
    const IValue* c = arg_constant(constants, dtype_index);
    if (c && c->is_int())
      dtype = dtype_from_scalar_type(c->to_int());
    else if (c && c->is_none())
      dtype = arg_dtype(args, 0);
    return std::vector<TypePtr>{Type::tensor(dtype, arg_shape(args, 0))};
  };
}

InferFn infer_to_other(int other_index) {
  return [other_index](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
    return std::vector<TypePtr>{Type::tensor(arg_dtype(args, other_index), arg_shape(args, 0))};
  };
}

const Tensor& self_of(IValueList& args) { return args[0].to_tensor(); }

// ---------------------------------------------------------------------------------------------------
// Registration

void register_unary_ops(OpRegistry& r) {
  for (const UnaryDef& def : kUnaryOps) {
    std::string name = def.name;
    UnaryDef d = def;
    if (name == "bitwise_not") d.fi = bitwise_not_int;
    for (bool inplace : {false, true}) {
      if (inplace && !def.inplace) continue;
      std::string full = "aten::" + name + (inplace ? "_" : "");
      std::string schema =
          inplace ? full + "(Tensor(a!) self) -> Tensor(a!)" : full + "(Tensor self) -> Tensor";
      auto op_name = std::make_shared<std::string>(full);
      r.add(
          schema,
          [d, inplace, op_name](IValueList& args) {
            return finish(op_name->c_str(), args, unary(op_name->c_str(), self_of(args), d.rule, d.ff, d.fi),
                          inplace);
          },
          inplace ? infer_self() : infer_unary(def.rule));
    }
  }
  // Negation of bool has its own message in PyTorch; the rest is a kKeepNoBool unary op.
  for (bool inplace : {false, true}) {
    const char* op = inplace ? "aten::neg_" : "aten::neg";
    r.add(
        inplace ? "aten::neg_(Tensor(a!) self) -> Tensor(a!)" : "aten::neg(Tensor self) -> Tensor",
        [op, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          CONVOY_CHECK(
              x.dtype() != DType::kBool, op,
              ": negation, the `-` operator, on a bool tensor is not supported; to invert a mask use "
              "the `~` or `logical_not()` operator instead");
          Tensor y = unary(
              op, x, UnaryRule::kKeepNoBool, [](double a) { return -a; }, wneg);
          return finish(op, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));
  }
  // round.decimals computes in the tensor's own precision (float for float32/16), like PyTorch, so
  // that 0.125 * 10 rounds the way it does there.
  for (bool inplace : {false, true}) {
    const char* op = inplace ? "aten::round_.decimals" : "aten::round.decimals";
    r.add(
        inplace ? "aten::round_.decimals(Tensor(a!) self, *, int decimals) -> Tensor(a!)"
                : "aten::round.decimals(Tensor self, *, int decimals) -> Tensor",
        [op, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          if (!is_floating(x.dtype())) not_implemented(op, x.dtype());
          int64_t decimals = args[1].to_int();
          bool neg = decimals < 0;
          double ten_pow = std::pow(10.0, static_cast<double>(neg ? -decimals : decimals));
          bool single = x.dtype() != DType::kFloat64;
          Tensor y = elementwise<1>(
              op, {&x}, x.dtype(), x.dtype(),
              [=](double a) {
                if (single) {
                  float fa = static_cast<float>(a), fp = static_cast<float>(ten_pow);
                  return static_cast<double>(neg ? std::nearbyint(fa / fp) * fp
                                                 : std::nearbyint(fa * fp) / fp);
                }
                return neg ? std::nearbyint(a / ten_pow) * ten_pow : std::nearbyint(a * ten_pow) / ten_pow;
              },
              NoKernel{});
          return finish(op, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));
  }
  // square is pow(self, 2): bool squares to int64.
  for (bool inplace : {false, true}) {
    const char* op = inplace ? "aten::square_" : "aten::square";
    r.add(
        inplace ? "aten::square_(Tensor(a!) self) -> Tensor(a!)" : "aten::square(Tensor self) -> Tensor",
        [op, inplace](IValueList& args) {
          return finish(op, args, pow(op, args[0], IValue(int64_t{2})), inplace);
        },
        inplace ? infer_self() : [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
          std::optional<DType> d = arg_dtype(args, 0);
          if (d == DType::kBool) d = DType::kInt64;  // bool ** 2 promotes with the int exponent
          return std::vector<TypePtr>{Type::tensor(d, arg_shape(args, 0))};
        });
  }
}

void register_activation_ops(OpRegistry& r) {
  for (bool inplace : {false, true}) {
    const char* op = inplace ? "aten::relu_" : "aten::relu";
    r.add(
        inplace ? "aten::relu_(Tensor(a!) self) -> Tensor(a!)" : "aten::relu(Tensor self) -> Tensor",
        [op, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          CONVOY_CHECK(x.dtype() != DType::kBool, op, ": boolean inputs not supported for relu");
          Tensor y = unary(
              op, x, UnaryRule::kKeepNoBool, [](double a) { return a < 0 ? 0.0 : a; },
              [](int64_t a) { return a < 0 ? int64_t{0} : a; });
          return finish(op, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));

    const char* ht = inplace ? "aten::hardtanh_" : "aten::hardtanh";
    r.add(
        inplace ? "aten::hardtanh_(Tensor(a!) self, Scalar min_val=-1, Scalar max_val=1) -> Tensor(a!)"
                : "aten::hardtanh(Tensor self, Scalar min_val=-1, Scalar max_val=1) -> Tensor",
        [ht, inplace](IValueList& args) {
          return finish(ht, args, hardtanh(ht, self_of(args), args[1], args[2]), inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));
    const char* r6 = inplace ? "aten::relu6_" : "aten::relu6";
    r.add(
        inplace ? "aten::relu6_(Tensor(a!) self) -> Tensor(a!)" : "aten::relu6(Tensor self) -> Tensor",
        [r6, inplace](IValueList& args) {
          return finish(r6, args, hardtanh(r6, self_of(args), IValue(int64_t{0}), IValue(int64_t{6})),
                        inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));

    const char* gelu = inplace ? "aten::gelu_" : "aten::gelu";
    r.add(
        inplace ? "aten::gelu_(Tensor(a!) self, *, str approximate=\"none\") -> Tensor(a!)"
                : "aten::gelu(Tensor self, *, str approximate=\"none\") -> Tensor",
        [gelu, inplace](IValueList& args) {
          const std::string& approximate = args[1].to_string();
          FloatUnary f;
          if (approximate == "none") {
            f = [](double a) { return 0.5 * a * (1.0 + std::erf(a * 0.70710678118654752440)); };
          } else if (approximate == "tanh") {
            f = [](double a) {
              const double k = 0.79788456080286535588;  // sqrt(2 / pi)
              return 0.5 * a * (1.0 + std::tanh(k * (a + 0.044715 * a * a * a)));
            };
          } else {
            fail(ErrorKind::kInvalidInput, gelu, ": approximate must be 'none' or 'tanh', got '", approximate,
                 "'");
          }
          return finish(gelu, args, unary(gelu, self_of(args), UnaryRule::kFloatOnly, f, nullptr), inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));

    const char* lr = inplace ? "aten::leaky_relu_" : "aten::leaky_relu";
    r.add(
        inplace ? "aten::leaky_relu_(Tensor(a!) self, Scalar negative_slope=0.01) -> Tensor(a!)"
                : "aten::leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor",
        [lr, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          if (!is_floating(x.dtype())) not_implemented(lr, x.dtype());
          double slope = opmath_round(args[1].to_double(), x.dtype());
          Tensor y = elementwise<1>(
              lr, {&x}, x.dtype(), x.dtype(), [slope](double a) { return a > 0 ? a : a * slope; },
              NoKernel{});
          return finish(lr, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));

    const char* elu = inplace ? "aten::elu_" : "aten::elu";
    r.add(
        inplace ? "aten::elu_(Tensor(a!) self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1) -> "
                  "Tensor(a!)"
                : "aten::elu(Tensor self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1) -> Tensor",
        [elu, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          if (!is_floating(x.dtype())) not_implemented(elu, x.dtype());
          double alpha = args[1].to_double(), scale = args[2].to_double(), input_scale = args[3].to_double();
          Tensor y = elementwise<1>(
              elu, {&x}, x.dtype(), x.dtype(),
              [=](double a) { return a <= 0 ? std::expm1(a * input_scale) * alpha * scale : a * scale; },
              NoKernel{});
          return finish(elu, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));
  }

  r.add(
      "aten::softplus(Tensor self, Scalar beta=1, Scalar threshold=20) -> Tensor",
      [](IValueList& args) {
        const char* op = "aten::softplus";
        const Tensor& x = self_of(args);
        if (!is_floating(x.dtype())) not_implemented(op, x.dtype());
        double beta = args[1].to_double(), threshold = args[2].to_double();
        Tensor y = elementwise<1>(
            op, {&x}, x.dtype(), x.dtype(),
            [=](double a) { return a * beta > threshold ? a : std::log1p(std::exp(a * beta)) / beta; },
            NoKernel{});
        return IValueList{IValue(y)};
      },
      infer_unary(UnaryRule::kKeep));

  for (bool inplace : {false, true}) {
    const char* op = inplace ? "aten::threshold_" : "aten::threshold";
    r.add(
        inplace ? "aten::threshold_(Tensor(a!) self, Scalar threshold, Scalar value) -> Tensor(a!)"
                : "aten::threshold(Tensor self, Scalar threshold, Scalar value) -> Tensor",
        [op, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          if (x.dtype() == DType::kBool) not_implemented(op, x.dtype());
          // Threshold and value are cast to self's dtype, as PyTorch's kernel does.
          DType d = x.dtype();
          double th = round_to_dtype(args[1].to_double(), d), v = round_to_dtype(args[2].to_double(), d);
          int64_t thi = static_cast<int64_t>(th), vi = static_cast<int64_t>(v);
          Tensor y = elementwise<1>(
              op, {&x}, d, d, [=](double a) { return a <= th ? v : a; },
              [=](int64_t a) { return a <= thi ? vi : a; });
          return finish(op, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));
  }

  for (bool inplace : {false, true}) {
    const char* op = inplace ? "aten::nan_to_num_" : "aten::nan_to_num";
    r.add(
        inplace ? "aten::nan_to_num_(Tensor(a!) self, float? nan=None, float? posinf=None, float? "
                  "neginf=None) -> "
                  "Tensor(a!)"
                : "aten::nan_to_num(Tensor self, float? nan=None, float? posinf=None, float? neginf=None) -> "
                  "Tensor",
        [op, inplace](IValueList& args) {
          const Tensor& x = self_of(args);
          DType d = x.dtype();
          if (!is_floating(d)) return finish(op, args, x.clone(), inplace);
          double nan = args[1].is_none() ? 0.0 : args[1].to_double();
          double posinf = args[2].is_none() ? dtype_max(d) : args[2].to_double();
          double neginf = args[3].is_none() ? dtype_lowest(d) : args[3].to_double();
          Tensor y = elementwise<1>(
              op, {&x}, d, d,
              [=](double a) {
                if (std::isnan(a)) return nan;
                if (std::isinf(a)) return a > 0 ? posinf : neginf;
                return a;
              },
              NoKernel{});
          return finish(op, args, y, inplace);
        },
        inplace ? infer_self() : infer_unary(UnaryRule::kKeep));
  }
}

void register_clamp_ops(OpRegistry& r) {
  // Result dtype: the promotion of self with the bounds (1.13: clamp(int_tensor, 0.5) is float32).
  InferFn infer_clamp = infer_elementwise({0, 1, 2}, {0, 1, 2}, InferRule::kPromote);
  InferFn infer_clamp1 = infer_elementwise({0, 1}, {0, 1}, InferRule::kPromote);
  for (bool inplace : {false, true}) {
    for (bool tensor_bounds : {false, true}) {
      std::string name = inplace ? "aten::clamp_" : "aten::clamp";
      std::string schema = name + (tensor_bounds ? ".Tensor" : "") +
                           (inplace ? "(Tensor(a!) self" : "(Tensor self") +
                           (tensor_bounds ? ", Tensor? min=None, Tensor? max=None)"
                                          : ", Scalar? min=None, Scalar? max=None)") +
                           (inplace ? " -> Tensor(a!)" : " -> Tensor");
      auto op = std::make_shared<std::string>(name);
      r.add(
          schema,
          [op, inplace](IValueList& args) {
            return finish(op->c_str(), args, clamp(op->c_str(), args[0], args[1], args[2]), inplace);
          },
          inplace ? infer_self() : infer_clamp);
    }
    for (bool is_min : {true, false}) {
      for (bool tensor_bound : {false, true}) {
        std::string name = std::string(is_min ? "aten::clamp_min" : "aten::clamp_max") + (inplace ? "_" : "");
        std::string bound = is_min ? "min" : "max";
        std::string schema = name + (tensor_bound ? ".Tensor" : "") +
                             (inplace ? "(Tensor(a!) self, " : "(Tensor self, ") +
                             (tensor_bound ? "Tensor " : "Scalar ") + bound + ")" +
                             (inplace ? " -> Tensor(a!)" : " -> Tensor");
        auto op = std::make_shared<std::string>(name);
        r.add(
            schema,
            [op, inplace, is_min](IValueList& args) {
              IValue none;
              Tensor y = is_min ? clamp(op->c_str(), args[0], args[1], none)
                                : clamp(op->c_str(), args[0], none, args[1]);
              return finish(op->c_str(), args, y, inplace);
            },
            inplace ? infer_self() : infer_clamp1);
      }
    }
  }
}

// Registers NAME.overload and NAME_.overload (when `inplace_too`) for a binary op whose kernel takes
// (args) and returns the out-of-place result.
using BinaryKernel = std::function<Tensor(const char* op, IValueList& args)>;

void add_binary(OpRegistry& r, const std::string& name, const std::string& overload,
                const std::string& params, BinaryKernel kernel, InferRule rule, bool inplace_too) {
  for (bool inplace : {false, true}) {
    if (inplace && !inplace_too) continue;
    std::string full = "aten::" + name + (inplace ? "_" : "");
    std::string qualified = full + (overload.empty() ? "" : "." + overload);
    std::string schema = qualified + (inplace ? "(Tensor(a!) self, " : "(Tensor self, ") + params +
                         (inplace ? ") -> Tensor(a!)" : ") -> Tensor");
    auto op = std::make_shared<std::string>(qualified);
    r.add(
        schema,
        [op, kernel, inplace](IValueList& args) {
          return finish(op->c_str(), args, kernel(op->c_str(), args), inplace);
        },
        inplace ? infer_self() : infer_binary(rule));
  }
}

void register_arithmetic_ops(OpRegistry& r) {
  for (const char* name : {"add", "sub"}) {
    int sign = std::string(name) == "add" ? 1 : -1;
    BinaryKernel k = [sign](const char* op, IValueList& args) {
      return add_sub(op, args[0], args[1], args[2], sign);
    };
    add_binary(r, name, "Tensor", "Tensor other, *, Scalar alpha=1", k, InferRule::kPromote, true);
    add_binary(r, name, "Scalar", "Scalar other, Scalar alpha=1", k, InferRule::kPromote, true);
  }
  BinaryKernel rsub = [](const char* op, IValueList& args) {
    return add_sub(op, args[1], args[0], args[2], -1);
  };
  add_binary(r, "rsub", "Tensor", "Tensor other, *, Scalar alpha=1", rsub, InferRule::kPromote, false);
  add_binary(r, "rsub", "Scalar", "Scalar other, Scalar alpha=1", rsub, InferRule::kPromote, false);

  BinaryKernel mul_k = [](const char* op, IValueList& args) { return mul(op, args[0], args[1]); };
  add_binary(r, "mul", "Tensor", "Tensor other", mul_k, InferRule::kPromote, true);
  add_binary(r, "mul", "Scalar", "Scalar other", mul_k, InferRule::kPromote, true);

  BinaryKernel div_k = [](const char* op, IValueList& args) { return div(op, args[0], args[1], IValue()); };
  BinaryKernel div_mode = [](const char* op, IValueList& args) { return div(op, args[0], args[1], args[2]); };
  add_binary(r, "div", "Tensor", "Tensor other", div_k, InferRule::kPromoteIntToFloat, true);
  add_binary(r, "div", "Scalar", "Scalar other", div_k, InferRule::kPromoteIntToFloat, true);
  // The result dtype of the mode overloads depends on the mode (None: true division); it is known
  // when the mode is a constant.
  InferFn infer_div_mode = [](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
    const IValue* mode = arg_constant(constants, 2);
    std::optional<DType> dtype;
    if (mode) {
      dtype = infer_result_type(args, constants, {0, 1});
      if (dtype && mode->is_none()) dtype = int_to_float(*dtype);
    }
    return std::vector<TypePtr>{Type::tensor(dtype, infer_broadcast_shape(args, {0, 1}))};
  };
  for (bool inplace : {false, true}) {
    for (bool tensor_other : {true, false}) {
      std::string name = inplace ? "aten::div_" : "aten::div";
      std::string schema = name + (tensor_other ? ".Tensor_mode" : ".Scalar_mode") +
                           (inplace ? "(Tensor(a!) self, " : "(Tensor self, ") +
                           (tensor_other ? "Tensor" : "Scalar") + " other, *, str? rounding_mode)" +
                           (inplace ? " -> Tensor(a!)" : " -> Tensor");
      auto op = std::make_shared<std::string>(name);
      r.add(
          schema,
          [op, div_mode, inplace](IValueList& args) {
            return finish(op->c_str(), args, div_mode(op->c_str(), args), inplace);
          },
          inplace ? infer_self() : infer_div_mode);
    }
  }

  BinaryKernel floor_div = [](const char* op, IValueList& args) {
    return div(op, args[0], args[1], IValue("floor"));
  };
  add_binary(r, "floor_divide", "", "Tensor other", floor_div, InferRule::kPromote, false);
  add_binary(r, "floor_divide", "Scalar", "Scalar other", floor_div, InferRule::kPromote, false);
  r.add(
      "aten::floor_divide_.Tensor(Tensor(a!) self, Tensor other) -> Tensor(a!)",
      [floor_div](IValueList& args) {
        return finish("aten::floor_divide_", args, floor_div("aten::floor_divide_", args), true);
      },
      infer_self());
  r.add(
      "aten::floor_divide_.Scalar(Tensor(a!) self, Scalar other) -> Tensor(a!)",
      [floor_div](IValueList& args) {
        return finish("aten::floor_divide_", args, floor_div("aten::floor_divide_", args), true);
      },
      infer_self());

  BinaryKernel rem = [](const char* op, IValueList& args) { return remainder(op, args[0], args[1]); };
  add_binary(r, "remainder", "Tensor", "Tensor other", rem, InferRule::kPromote, true);
  add_binary(r, "remainder", "Scalar", "Scalar other", rem, InferRule::kPromote, true);
  r.add(
      "aten::remainder.Scalar_Tensor(Scalar self, Tensor other) -> Tensor",
      [rem](IValueList& args) { return IValueList{IValue(rem("aten::remainder.Scalar_Tensor", args))}; },
      infer_binary(InferRule::kPromote));

  BinaryKernel fmod_k = [](const char* op, IValueList& args) { return fmod(op, args[0], args[1]); };
  add_binary(r, "fmod", "Tensor", "Tensor other", fmod_k, InferRule::kPromote, true);
  add_binary(r, "fmod", "Scalar", "Scalar other", fmod_k, InferRule::kPromote, true);

  BinaryKernel pow_k = [](const char* op, IValueList& args) { return pow(op, args[0], args[1]); };
  add_binary(r, "pow", "Tensor_Tensor", "Tensor exponent", pow_k, InferRule::kPromote, false);
  add_binary(r, "pow", "Tensor_Scalar", "Scalar exponent", pow_k, InferRule::kPromote, false);
  r.add(
      "aten::pow.Scalar(Scalar self, Tensor exponent) -> Tensor",
      [pow_k](IValueList& args) { return IValueList{IValue(pow_k("aten::pow.Scalar", args))}; },
      infer_binary(InferRule::kPromote));
  r.add(
      "aten::pow_.Scalar(Tensor(a!) self, Scalar exponent) -> Tensor(a!)",
      [pow_k](IValueList& args) { return finish("aten::pow_", args, pow_k("aten::pow_", args), true); },
      infer_self());
  r.add(
      "aten::pow_.Tensor(Tensor(a!) self, Tensor exponent) -> Tensor(a!)",
      [pow_k](IValueList& args) { return finish("aten::pow_", args, pow_k("aten::pow_", args), true); },
      infer_self());

  for (bool is_max : {true, false}) {
    std::string name = is_max ? "maximum" : "minimum";
    add_binary(
        r, name, "", "Tensor other",
        [is_max](const char* op, IValueList& args) { return maximum_minimum(op, args[0], args[1], is_max); },
        InferRule::kPromote, false);
  }
  BinaryKernel atan2_k = [](const char* op, IValueList& args) { return atan2(op, args[0], args[1]); };
  add_binary(r, "atan2", "", "Tensor other", atan2_k, InferRule::kPromoteIntToFloat, true);
}

void register_logical_ops(OpRegistry& r) {
  const std::pair<const char*, BitOp> kBits[] = {
      {"and", BitOp::kAnd}, {"or", BitOp::kOr}, {"xor", BitOp::kXor}};
  for (const auto& [suffix, bit] : kBits) {
    BitOp b = bit;
    BinaryKernel k = [b](const char* op, IValueList& args) { return bitwise(op, args[0], args[1], b); };
    std::string name = std::string("bitwise_") + suffix;
    add_binary(r, name, "Tensor", "Tensor other", k, InferRule::kPromote, true);
    add_binary(r, name, "Scalar", "Scalar other", k, InferRule::kPromote, true);
    auto st_op = std::make_shared<std::string>("aten::" + name + ".Scalar_Tensor");
    r.add(
        "aten::" + name + ".Scalar_Tensor(Scalar self, Tensor other) -> Tensor",
        [k, st_op](IValueList& args) { return IValueList{IValue(k(st_op->c_str(), args))}; },
        infer_binary(InferRule::kPromote));
    // Python's operators on tensors: x & y is aten::__and__, x &= y is aten::__iand__.
    std::string dunder = std::string("__") + suffix + "__";
    add_binary(r, dunder, "Tensor", "Tensor other", k, InferRule::kPromote, false);
    add_binary(r, dunder, "Scalar", "Scalar other", k, InferRule::kPromote, false);
    for (const char* overload : {"Tensor", "Scalar"}) {
      std::string iname = std::string("aten::__i") + suffix + "__";
      auto op = std::make_shared<std::string>(iname);
      r.add(
          iname + "." + overload + "(Tensor(a!) self, " +
              (std::string(overload) == "Tensor" ? "Tensor" : "Scalar") + " other) -> Tensor(a!)",
          [k, op](IValueList& args) { return finish(op->c_str(), args, k(op->c_str(), args), true); },
          infer_self());
    }

    BinaryKernel lk = [b](const char* op, IValueList& args) { return logical(op, args[0], args[1], b); };
    add_binary(r, std::string("logical_") + suffix, "", "Tensor other", lk, InferRule::kBool, true);
  }

  const std::pair<const char*, CmpOp> kCmps[] = {{"eq", CmpOp::kEq}, {"ne", CmpOp::kNe}, {"lt", CmpOp::kLt},
                                                 {"le", CmpOp::kLe}, {"gt", CmpOp::kGt}, {"ge", CmpOp::kGe}};
  for (const auto& [name, cmp] : kCmps) {
    CmpOp c = cmp;
    BinaryKernel k = [c](const char* op, IValueList& args) { return comparison(op, args[0], args[1], c); };
    add_binary(r, name, "Tensor", "Tensor other", k, InferRule::kBool, true);
    add_binary(r, name, "Scalar", "Scalar other", k, InferRule::kBool, true);
  }
}

void register_selection_ops(OpRegistry& r) {
  struct WhereDef {
    const char* overload;
    const char* params;
  };
  const WhereDef kWheres[] = {{"self", "Tensor condition, Tensor self, Tensor other"},
                              {"ScalarOther", "Tensor condition, Tensor self, Scalar other"},
                              {"ScalarSelf", "Tensor condition, Scalar self, Tensor other"},
                              {"Scalar", "Tensor condition, Scalar self, Scalar other"}};
  for (const WhereDef& w : kWheres) {
    auto op = std::make_shared<std::string>(std::string("aten::where.") + w.overload);
    r.add(
        *op + "(" + w.params + ") -> Tensor",
        [op](IValueList& args) {
          return IValueList{IValue(where(op->c_str(), args[0].to_tensor(), args[1], args[2]))};
        },
        infer_elementwise({1, 2}, {0, 1, 2}, InferRule::kPromote));
  }
  // One int64 index tensor per dimension of the condition, each as long as its count of true
  // elements: how many is data, so only the element type is known.
  r.add(
      "aten::where(Tensor condition) -> Tensor[]",
      [](IValueList& args) {
        const Tensor& cond = args[0].to_tensor();
        return IValueList{where_nonzero(cond)};
      },
      [](const std::vector<TypePtr>&, const std::vector<const IValue*>&) {
        return std::vector<TypePtr>{Type::list(Type::tensor(DType::kInt64, std::nullopt))};
      });

  for (bool inplace : {false, true}) {
    for (const char* overload : {"Scalar", "Tensor"}) {
      std::string name = inplace ? "aten::masked_fill_" : "aten::masked_fill";
      std::string value_type = std::string(overload) == "Scalar" ? "Scalar" : "Tensor";
      std::string schema = name + "." + overload + (inplace ? "(Tensor(a!) self" : "(Tensor self") +
                           ", Tensor mask, " + value_type + " value)" +
                           (inplace ? " -> Tensor(a!)" : " -> Tensor");
      auto op = std::make_shared<std::string>(name);
      r.add(
          schema, [op, inplace](IValueList& args) { return masked_fill(op->c_str(), args, inplace); },
          inplace ? infer_self() : infer_elementwise({0}, {0, 1}, InferRule::kFirstDType));
    }
  }
}

void register_conversion_ops(OpRegistry& r) {
  // Device arguments are accepted and ignored: every value lives on the executor's device.
  r.add(
      "aten::to.dtype(Tensor(a) self, ScalarType dtype, bool non_blocking=False, bool copy=False, "
      "MemoryFormat? memory_format=None) -> Tensor(a)",
      [](IValueList& args) {
        return IValueList{
            convert(args[0].to_tensor(), optional_dtype_arg(args[1], "aten::to"), args[3].to_bool())};
      },
      infer_to_dtype_arg(1));
  r.add(
      "aten::to.device(Tensor(a) self, Device device, ScalarType dtype, bool non_blocking=False, bool "
      "copy=False, "
      "MemoryFormat? memory_format=None) -> Tensor(a)",
      [](IValueList& args) {
        return IValueList{
            convert(args[0].to_tensor(), optional_dtype_arg(args[2], "aten::to"), args[4].to_bool())};
      },
      infer_to_dtype_arg(2));
  r.add(
      "aten::to.other(Tensor(a) self, Tensor other, bool non_blocking=False, bool copy=False, "
      "MemoryFormat? memory_format=None) -> Tensor(a)",
      [](IValueList& args) {
        return IValueList{convert(args[0].to_tensor(), args[1].to_tensor().dtype(), args[3].to_bool())};
      },
      infer_to_other(1));
  r.add(
      "aten::to.dtype_layout(Tensor(a) self, *, ScalarType? dtype=None, Layout? layout=None, Device? "
      "device=None, "
      "bool? pin_memory=None, bool non_blocking=False, bool copy=False, MemoryFormat? memory_format=None) -> "
      "Tensor(a)",
      [](IValueList& args) {
        return IValueList{
            convert(args[0].to_tensor(), optional_dtype_arg(args[1], "aten::to"), args[6].to_bool())};
      },
      infer_to_dtype_arg(1));
  r.add(
      "aten::to.prim_Device(Tensor(a) self, Device? device, int? dtype=None, bool non_blocking=False, "
      "bool copy=False) -> Tensor(b|a)",
      [](IValueList& args) {
        return IValueList{
            convert(args[0].to_tensor(), optional_dtype_arg(args[2], "aten::to"), args[4].to_bool())};
      },
      infer_to_dtype_arg(2));
  r.add(
      "aten::to.prim_dtype(Tensor(a) self, int? dtype=None, bool non_blocking=False, bool copy=False) -> "
      "Tensor(b|a)",
      [](IValueList& args) {
        return IValueList{
            convert(args[0].to_tensor(), optional_dtype_arg(args[1], "aten::to"), args[3].to_bool())};
      },
      infer_to_dtype_arg(1));
  r.add(
      "aten::to.prim_other(Tensor(a) self, bool non_blocking=False, bool copy=False) -> Tensor(b|a)",
      [](IValueList& args) {
        return IValueList{convert(args[0].to_tensor(), std::nullopt, args[2].to_bool())};
      },
      infer_to_other(0));
  r.add(
      "aten::type_as(Tensor self, Tensor other) -> Tensor",
      [](IValueList& args) {
        return IValueList{convert(args[0].to_tensor(), args[1].to_tensor().dtype(), false)};
      },
      infer_to_other(1));

  // detach shares storage with its input, as in PyTorch (there is no autograd state to drop).
  r.add(
      "aten::detach(Tensor(a) self) -> Tensor(a)", [](IValueList& args) { return IValueList{args[0]}; },
      infer_self());
  r.add(
      "aten::detach_(Tensor(a!) self) -> Tensor(a!)", [](IValueList& args) { return IValueList{args[0]}; },
      infer_self());
  r.add(
      "aten::positive(Tensor(a) self) -> Tensor(a)",
      [](IValueList& args) {
        CONVOY_CHECK(args[0].to_tensor().dtype() != DType::kBool,
                     "aten::positive: the `+` operator, on a bool tensor is not supported");
        return IValueList{args[0]};
      },
      infer_self());
  // Values do not depend on the memory format, so every clone is contiguous.
  r.add(
      "aten::clone(Tensor self, *, MemoryFormat? memory_format=None) -> Tensor",
      [](IValueList& args) { return IValueList{IValue(args[0].to_tensor().clone())}; }, infer_self());

  for (const char* name : {"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"}) {
    for (bool inplace : {false, true}) {
      auto op = std::make_shared<std::string>(std::string("aten::") + name + (inplace ? "_" : ""));
      std::string schema = *op + (inplace ? "(Tensor(a!) self, float p, bool train) -> Tensor(a!)"
                                          : "(Tensor input, float p, bool train) -> Tensor");
      r.add(
          schema, [op, inplace](IValueList& args) { return dropout(op->c_str(), args, inplace); },
          infer_self());
    }
  }
}

}  // namespace

void register_elementwise_ops(OpRegistry& registry) {
  register_unary_ops(registry);
  register_activation_ops(registry);
  register_clamp_ops(registry);
  register_arithmetic_ops(registry);
  register_logical_ops(registry);
  register_selection_ops(registry);
  register_conversion_ops(registry);
}

}  // namespace convoy
