// OpenCL implementations of the elementwise family (runtime/ops/elementwise.cpp): unary math and
// activations, binary arithmetic with broadcasting, comparisons, logical and bitwise ops, clamps,
// where/masked_fill, fills and copies, dtype conversions and the identities of inference.
//
// Result dtypes and argument errors come from the reference kernel itself, run on one-element proxies
// of the arguments (dtype_proxy), so they match PyTorch's rules exactly without restating them here;
// the device computes the values with one elementwise.cl launch.
#include <cmath>
#include <functional>
#include <optional>

#include "opencl/ops/launch_util.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

namespace {

using Params = std::array<double, 3>;

struct EwDef {
  // The OP_ define, given the arguments (most ops have one; div and gelu pick by an argument).
  std::function<std::string(const IValueList& args)> define;
  std::vector<int> operands;   // argument positions of the operands (tensors or scalars)
  std::vector<int> promoted;   // operands that take part in type promotion (default: all)
  bool inplace = false;        // writes into args[0]
  bool shape_of_self = false;  // the result has self's shape (masked_fill_)
  std::function<Params(const IValueList& args, DType compute, DType out)> params;
};

EwInput input_of(OpContext& cx, const IValue& v) {
  if (v.is_none()) return EwInput::of_scalar(0);
  if (is_host_scalar(cx, v)) {
    if (v.is_int() || v.is_bool()) return EwInput::of_int(v.to_int());
    if (v.is_tensor() && !is_floating(v.to_tensor().dtype()))
      return EwInput::of_int(v.to_tensor().item_int());
    return EwInput::of_scalar(host_scalar_value(v));
  }
  return EwInput::of(v.to_tensor());
}

IValueList run_elementwise(OpContext& cx, IValueList& args, const EwDef& def) {
  const OpOverload& overload = *cx.node().op;
  const char* op = overload.schema.name.c_str();
  // PyTorch's result dtype and argument checks, from the reference kernel on proxies.
  IValueList proxies = proxy_args(args);
  IValueList reference = overload.kernel(proxies);
  DType out_dtype = reference.at(0).to_tensor().dtype();

  std::vector<Shape> shapes;
  std::vector<PromotionOperand> promo;
  const std::vector<int>& promoted = def.promoted.empty() ? def.operands : def.promoted;
  for (int i : def.operands) {
    const IValue& v = args[static_cast<size_t>(i)];
    if (v.is_none()) continue;
    if (v.is_tensor()) shapes.push_back(v.to_tensor().sizes());
  }
  for (int i : promoted) {
    const IValue& v = args[static_cast<size_t>(i)];
    if (v.is_none()) continue;
    promo.push_back(promotion_operand(v, op));
  }
  Shape shape = shapes.empty() ? Shape{} : broadcast_shapes(shapes, op);
  DType common = promo.empty() ? out_dtype : result_type(promo);
  DType compute = is_floating(out_dtype)      ? compute_dtype_of(out_dtype)
                  : out_dtype == DType::kBool ? compute_dtype_of(common)
                                              : compute_dtype_of(out_dtype);
  Tensor out;
  if (def.inplace) {
    out = cx.writable(args[0].to_tensor());
    CONVOY_CHECK(def.shape_of_self || out.sizes() == shape, op, ": output with shape ",
                 shape_str(out.sizes()), " doesn't match the broadcast shape ", shape_str(shape));
  } else {
    out = cx.empty(def.shape_of_self ? args[0].to_tensor().sizes() : shape, out_dtype);
  }
  std::vector<EwInput> inputs;
  for (int i : def.operands) inputs.push_back(input_of(cx, args[static_cast<size_t>(i)]));
  Params params = def.params ? def.params(args, compute, out_dtype) : Params{0, 0, 0};
  elementwise(cx, def.define(args), out, inputs, compute, params);
  return {IValue(out)};
}

std::function<std::string(const IValueList&)> fixed(const std::string& define) {
  return [define](const IValueList&) { return define; };
}

void add_ew(OpenCLOpTable& table, const std::string& name, std::initializer_list<const char*> overloads,
            EwDef def) {
  add_overloads(table, name, overloads,
                [def](OpContext& cx, IValueList& args) { return run_elementwise(cx, args, def); });
}

// Registers NAME and NAME_ (in place) for each overload.
void add_ew_pair(OpenCLOpTable& table, const std::string& name, std::initializer_list<const char*> overloads,
                 std::initializer_list<const char*> inplace_overloads, EwDef def) {
  add_ew(table, "aten::" + name, overloads, def);
  def.inplace = true;
  add_ew(table, "aten::" + name + "_", inplace_overloads, def);
}

double arg_double(const IValueList& args, size_t i) { return host_scalar_value(args[i]); }

}  // namespace

void register_opencl_elementwise_ops(OpenCLOpTable& t) {
  // ---- unary ----
  struct Unary {
    const char* name;
    const char* define;
    bool inplace;
    bool integer_identity;  // rounding ops are the identity on integers
  };
  const Unary unary[] = {
      {"exp", "EXP", true, false},
      {"exp2", "EXP2", true, false},
      {"expm1", "EXPM1", true, false},
      {"log", "LOG", true, false},
      {"log2", "LOG2", true, false},
      {"log10", "LOG10", true, false},
      {"log1p", "LOG1P", true, false},
      {"sqrt", "SQRT", true, false},
      {"rsqrt", "RSQRT", true, false},
      {"sin", "SIN", true, false},
      {"cos", "COS", true, false},
      {"tan", "TAN", true, false},
      {"asin", "ASIN", true, false},
      {"acos", "ACOS", true, false},
      {"atan", "ATAN", true, false},
      {"sinh", "SINH", true, false},
      {"cosh", "COSH", true, false},
      {"tanh", "TANH", true, false},
      {"sigmoid", "SIGMOID", true, false},
      {"erf", "ERF", true, false},
      {"erfc", "ERFC", true, false},
      {"reciprocal", "RECIPROCAL", true, false},
      {"abs", "ABS", true, false},
      {"floor", "FLOOR", true, true},
      {"ceil", "CEIL", true, true},
      {"round", "ROUND", true, true},
      {"trunc", "TRUNC", true, true},
      {"sign", "SIGN", true, false},
      {"logical_not", "LOGICAL_NOT", true, false},
      {"isnan", "ISNAN", false, false},
      {"isinf", "ISINF", false, false},
      {"isfinite", "ISFINITE", false, false},
      {"hardswish", "HARDSWISH", true, false},
      {"hardsigmoid", "HARDSIGMOID", true, false},
      {"silu", "SILU", true, false},
      {"mish", "MISH", true, false},
      {"neg", "NEG", true, false},
      {"relu", "RELU", true, false},
      {"square", "SQUARE", true, false},
  };
  for (const Unary& u : unary) {
    EwDef def;
    std::string define = u.define;
    bool identity = u.integer_identity;
    def.define = [define, identity](const IValueList& args) {
      return identity && !is_floating(args[0].to_tensor().dtype()) ? std::string("COPY") : define;
    };
    def.operands = {0};
    if (u.inplace)
      add_ew_pair(t, u.name, {""}, {""}, def);
    else
      add_ew(t, std::string("aten::") + u.name, {""}, def);
  }
  {
    EwDef def;
    def.define = [](const IValueList& args) {
      return args[0].to_tensor().dtype() == DType::kBool ? std::string("LOGICAL_NOT")
                                                         : std::string("BITWISE_NOT");
    };
    def.operands = {0};
    add_ew_pair(t, "bitwise_not", {""}, {""}, def);
  }
  {
    EwDef def;
    def.define = fixed("ROUND_DECIMALS");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType) {
      int64_t d = args[1].to_int();
      return Params{std::pow(10.0, static_cast<double>(d < 0 ? -d : d)), d < 0 ? 1.0 : 0.0, 0};
    };
    add_ew_pair(t, "round", {"decimals"}, {"decimals"}, def);
  }
  // Activations with parameters.
  {
    EwDef def;
    def.define = fixed("HARDTANH");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType out) {
      double lo = arg_double(args, 1), hi = arg_double(args, 2);
      if (!is_floating(out)) lo = std::trunc(lo), hi = std::trunc(hi);
      return Params{lo, hi, 0};
    };
    add_ew_pair(t, "hardtanh", {""}, {""}, def);
    def.params = [](const IValueList&, DType, DType) { return Params{0, 6, 0}; };
    add_ew_pair(t, "relu6", {""}, {""}, def);
  }
  {
    EwDef def;
    def.define = [](const IValueList& args) {
      return args[1].to_string() == "tanh" ? std::string("GELU_TANH") : std::string("GELU");
    };
    def.operands = {0};
    add_ew_pair(t, "gelu", {""}, {""}, def);
  }
  {
    EwDef def;
    def.define = fixed("LEAKY_RELU");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType) { return Params{arg_double(args, 1), 0, 0}; };
    add_ew_pair(t, "leaky_relu", {""}, {""}, def);
  }
  {
    EwDef def;
    def.define = fixed("ELU");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType) {
      return Params{arg_double(args, 1), arg_double(args, 2), arg_double(args, 3)};
    };
    add_ew_pair(t, "elu", {""}, {""}, def);
  }
  {
    EwDef def;
    def.define = fixed("SOFTPLUS");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType) {
      return Params{arg_double(args, 1), arg_double(args, 2), 0};
    };
    add_ew(t, "aten::softplus", {""}, def);
  }
  {
    EwDef def;
    def.define = fixed("THRESHOLD");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType) {
      return Params{arg_double(args, 1), arg_double(args, 2), 0};
    };
    add_ew_pair(t, "threshold", {""}, {""}, def);
  }
  {
    EwDef def;
    def.define = fixed("NAN_TO_NUM");
    def.operands = {0};
    def.params = [](const IValueList& args, DType, DType out) {
      if (!is_floating(out)) return Params{0, 0, 0};
      return Params{args[1].is_none() ? 0.0 : args[1].to_double(),
                    args[2].is_none() ? dtype_max(out) : args[2].to_double(),
                    args[3].is_none() ? dtype_lowest(out) : args[3].to_double()};
    };
    def.define = [](const IValueList& args) {
      return is_floating(args[0].to_tensor().dtype()) ? std::string("NAN_TO_NUM") : std::string("COPY");
    };
    add_ew_pair(t, "nan_to_num", {""}, {""}, def);
  }

  // ---- binary arithmetic ----
  auto alpha = [](const IValueList& args, DType, DType) { return Params{arg_double(args, 2), 0, 0}; };
  {
    EwDef def;
    def.operands = {0, 1};
    def.params = alpha;
    def.define = fixed("ADD");
    add_ew_pair(t, "add", {"Tensor", "Scalar"}, {"Tensor", "Scalar"}, def);
    def.define = fixed("SUB");
    add_ew_pair(t, "sub", {"Tensor", "Scalar"}, {"Tensor", "Scalar"}, def);
    def.define = fixed("RSUB");
    add_ew(t, "aten::rsub", {"Tensor", "Scalar"}, def);
  }
  {
    EwDef def;
    def.operands = {0, 1};
    def.define = fixed("MUL");
    add_ew_pair(t, "mul", {"Tensor", "Scalar"}, {"Tensor", "Scalar"}, def);
    def.define = [](const IValueList& args) -> std::string {
      if (args.size() < 3 || args[2].is_none()) return "DIV";
      const std::string& mode = args[2].to_string();
      return mode == "trunc" ? "DIV_TRUNC" : "DIV_FLOOR";  // other modes were rejected by the reference
    };
    add_ew_pair(t, "div", {"Tensor", "Scalar", "Tensor_mode", "Scalar_mode"},
                {"Tensor", "Scalar", "Tensor_mode", "Scalar_mode"}, def);
    def.define = fixed("DIV_FLOOR");
    add_ew_pair(t, "floor_divide", {"", "Scalar"}, {"Tensor", "Scalar"}, def);
    def.define = fixed("REMAINDER");
    add_ew_pair(t, "remainder", {"Tensor", "Scalar", "Scalar_Tensor"}, {"Tensor", "Scalar"}, def);
    def.define = fixed("FMOD");
    add_ew_pair(t, "fmod", {"Tensor", "Scalar"}, {"Tensor", "Scalar"}, def);
    def.define = fixed("ATAN2");
    add_ew_pair(t, "atan2", {""}, {""}, def);
    def.define = fixed("MAXIMUM");
    add_ew(t, "aten::maximum", {""}, def);
    add_ew(t, "aten::max", {"other"}, def);
    def.define = fixed("MINIMUM");
    add_ew(t, "aten::minimum", {""}, def);
    add_ew(t, "aten::min", {"other"}, def);
    def.define = fixed("POW");
    add_ew(t, "aten::pow", {"Tensor_Tensor", "Scalar"}, def);
    add_ew(t, "aten::pow_", {"Tensor"}, EwDef{def.define, def.operands, {}, true, false, nullptr});
  }
  {
    // pow(Tensor, Scalar): small integral exponents as multiplications, like PyTorch's pow kernels.
    EwDef def;
    def.operands = {0};
    def.promoted = {0, 1};
    def.define = [](const IValueList& args) -> std::string {
      double e = args[1].to_double();
      if (e == 2) return "SQUARE";
      if (e == 1) return "COPY";
      return "POW_SCALAR";
    };
    def.params = [](const IValueList& args, DType, DType) { return Params{args[1].to_double(), 0, 0}; };
    add_ew(t, "aten::pow", {"Tensor_Scalar"}, def);
    def.inplace = true;
    add_ew(t, "aten::pow_", {"Scalar"}, def);
  }
  // ---- comparisons, logical, bitwise ----
  {
    struct Cmp {
      const char* name;
      const char* define;
    };
    for (const Cmp& c : {Cmp{"eq", "EQ"}, Cmp{"ne", "NE"}, Cmp{"lt", "LT"}, Cmp{"le", "LE"}, Cmp{"gt", "GT"},
                         Cmp{"ge", "GE"}}) {
      EwDef def;
      def.operands = {0, 1};
      def.define = fixed(c.define);
      add_ew_pair(t, c.name, {"Tensor", "Scalar"}, {"Tensor", "Scalar"}, def);
    }
    for (const Cmp& c : {Cmp{"logical_and", "LOGICAL_AND"}, Cmp{"logical_or", "LOGICAL_OR"},
                         Cmp{"logical_xor", "LOGICAL_XOR"}}) {
      EwDef def;
      def.operands = {0, 1};
      def.define = fixed(c.define);
      add_ew_pair(t, c.name, {""}, {""}, def);
    }
    for (const Cmp& c : {Cmp{"bitwise_and", "BITWISE_AND"}, Cmp{"bitwise_or", "BITWISE_OR"},
                         Cmp{"bitwise_xor", "BITWISE_XOR"}}) {
      EwDef def;
      def.operands = {0, 1};
      def.define = fixed(c.define);
      add_ew_pair(t, c.name, {"Tensor", "Scalar", "Scalar_Tensor"}, {"Tensor", "Scalar"}, def);
    }
    for (const Cmp& c : {Cmp{"and", "BITWISE_AND"}, Cmp{"or", "BITWISE_OR"}, Cmp{"xor", "BITWISE_XOR"}}) {
      EwDef def;
      def.operands = {0, 1};
      def.define = fixed(c.define);
      add_ew(t, std::string("aten::__") + c.name + "__", {"Tensor", "Scalar"}, def);
      def.inplace = true;
      add_ew(t, std::string("aten::__i") + c.name + "__", {"Tensor", "Scalar"}, def);
    }
  }
  // ---- clamps ----
  {
    EwDef def;
    def.operands = {0};
    def.promoted = {0, 1, 2};
    def.define = fixed("CLAMP");
    def.params = [](const IValueList& args, DType, DType) {
      return Params{args[1].is_none() ? 0.0 : args[1].to_double(),
                    args[2].is_none() ? 0.0 : args[2].to_double(),
                    static_cast<double>((args[1].is_none() ? 0 : 1) | (args[2].is_none() ? 0 : 2))};
    };
    add_ew_pair(t, "clamp", {""}, {""}, def);
    EwDef tensor_def;
    tensor_def.operands = {0, 1, 2};
    tensor_def.define = fixed("CLAMP_TENSOR");
    tensor_def.params = [](const IValueList& args, DType, DType) {
      return Params{0, 0, static_cast<double>((args[1].is_none() ? 0 : 1) | (args[2].is_none() ? 0 : 2))};
    };
    add_ew_pair(t, "clamp", {"Tensor"}, {"Tensor"}, tensor_def);
    for (bool is_min : {true, false}) {
      EwDef d;
      d.operands = {0};
      d.promoted = {0, 1};
      d.define = fixed("CLAMP");
      d.params = [is_min](const IValueList& args, DType, DType) {
        double v = args[1].to_double();
        return is_min ? Params{v, 0, 1} : Params{0, v, 2};
      };
      add_ew_pair(t, is_min ? "clamp_min" : "clamp_max", {""}, {""}, d);
      // (x, min, max) with the bound given twice: the flags make the kernel read only the one present.
      EwDef dt;
      dt.operands = {0, 1, 1};
      dt.promoted = {0, 1};
      dt.define = fixed("CLAMP_TENSOR");
      dt.params = [is_min](const IValueList&, DType, DType) { return Params{0, 0, is_min ? 1.0 : 2.0}; };
      add_ew_pair(t, is_min ? "clamp_min" : "clamp_max", {"Tensor"}, {"Tensor"}, dt);
    }
  }
  // ---- selection ----
  {
    EwDef def;
    def.operands = {0, 1, 2};
    def.promoted = {1, 2};
    def.define = fixed("WHERE");
    add_ew(t, "aten::where", {"self", "ScalarOther", "ScalarSelf", "Scalar"}, def);
  }
  for (bool inplace : {false, true}) {
    // masked_fill(self, mask, value) = where(mask, value, self), in self's dtype.
    add_overloads(
        t, inplace ? "aten::masked_fill_" : "aten::masked_fill", {"Scalar", "Tensor"},
        [inplace](OpContext& cx, IValueList& args) {
          const OpOverload& overload = *cx.node().op;
          IValueList proxies = proxy_args(args);
          overload.kernel(proxies);  // PyTorch's checks (mask dtype, 0-dim value)
          const Tensor& self = args[0].to_tensor();
          const Tensor& mask = args[1].to_tensor();
          Shape shape = inplace ? self.sizes() : broadcast_shapes(self.sizes(), mask.sizes(), "masked_fill");
          CONVOY_CHECK(broadcast_shapes(shape, mask.sizes(), "masked_fill") == shape, "masked_fill: mask ",
                       shape_str(mask.sizes()), " does not broadcast to ", shape_str(shape));
          Tensor out = inplace ? cx.writable(self) : cx.empty(shape, self.dtype());
          DType compute = compute_dtype_of(self.dtype());
          std::vector<EwInput> inputs = {EwInput::of(mask), input_of(cx, args[2]), EwInput::of(self)};
          elementwise(cx, "WHERE", out, inputs, compute);
          return IValueList{IValue(out)};
        });
  }
}

}  // namespace convoy::opencl
