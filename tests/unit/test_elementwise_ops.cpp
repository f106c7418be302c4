// Elementwise kernels and the kernel_util helpers, checked against values PyTorch 1.13 computed
// (tests/fixtures/ops/make_elementwise_expectations.py writes the tables included below) and against
// hand-computed values for aliasing, errors and type inference.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "tests/fixtures/ops/op_cases.h"

namespace convoy {
namespace {

using namespace op_cases;

const std::vector<OpCase>& recorded_cases() {
  static const std::vector<OpCase> cases = load_cases("elementwise_cases.txt");
  return cases;
}

struct PromotionCase {
  int a, a_zero_dim, b, b_zero_dim_or_scalar_kind, expected;
};
#include "tests/fixtures/ops/promotion_cases.inc"

const OpRegistry& registry() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_elementwise_ops(reg);
    register_reduction_ops(reg);
    return reg;
  }();
  return r;
}

IValueList call(const char* name, const char* overload, IValueList args) {
  const OpOverload* op = registry().find(name, overload);
  REQUIRE(op != nullptr);
  return op->kernel(args);
}

Tensor call1(const char* name, const char* overload, IValueList args) {
  return call(name, overload, std::move(args)).at(0).to_tensor();
}

// ---------------------------------------------------------------------------------------------------
// Table-driven families (PyTorch's values)

const std::vector<std::string> kUnaryMath = {
    "aten::exp",     "aten::exp2",    "aten::expm1", "aten::log",        "aten::log2", "aten::log10",
    "aten::log1p",   "aten::sqrt",    "aten::rsqrt", "aten::sin",        "aten::cos",  "aten::tan",
    "aten::asin",    "aten::acos",    "aten::atan",  "aten::sinh",       "aten::cosh", "aten::tanh",
    "aten::sigmoid", "aten::erf",     "aten::erfc",  "aten::reciprocal", "aten::abs",  "aten::neg",
    "aten::square",  "aten::positive"};
const std::vector<std::string> kUnaryDiscrete = {"aten::floor",       "aten::ceil",      "aten::round",
                                                 "aten::trunc",       "aten::sign",      "aten::logical_not",
                                                 "aten::isnan",       "aten::isinf",     "aten::isfinite",
                                                 "aten::bitwise_not", "aten::nan_to_num"};
const std::vector<std::string> kActivations = {"aten::relu",      "aten::relu6",       "aten::hardtanh",
                                               "aten::hardswish", "aten::hardsigmoid", "aten::silu",
                                               "aten::mish",      "aten::gelu",        "aten::leaky_relu",
                                               "aten::elu",       "aten::softplus",    "aten::threshold"};
const std::vector<std::string> kArithmetic = {
    "aten::add",     "aten::sub",          "aten::rsub",      "aten::mul",  "aten::div",
    "aten::pow",     "aten::floor_divide", "aten::remainder", "aten::fmod", "aten::maximum",
    "aten::minimum", "aten::atan2",        "aten::max",       "aten::min"};
const std::vector<std::string> kLogical = {
    "aten::eq",         "aten::ne",          "aten::lt",         "aten::le",          "aten::gt",
    "aten::ge",         "aten::logical_and", "aten::logical_or", "aten::logical_xor", "aten::bitwise_and",
    "aten::bitwise_or", "aten::bitwise_xor", "aten::__and__",    "aten::__or__",      "aten::__xor__",
    "aten::__iand__",   "aten::__ior__",     "aten::__ixor__"};
const std::vector<std::string> kClamps = {"aten::clamp", "aten::clamp_min", "aten::clamp_max"};
const std::vector<std::string> kSelection = {"aten::where", "aten::masked_fill"};
const std::vector<std::string> kConversions = {
    "aten::to",      "aten::type_as",         "aten::detach",        "aten::clone",
    "aten::dropout", "aten::feature_dropout", "aten::alpha_dropout", "aten::feature_alpha_dropout"};

TEST_CASE("elementwise: unary math matches PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kUnaryMath) > 250);
}

TEST_CASE("elementwise: rounding, sign, logical and bitwise unary ops match PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kUnaryDiscrete) > 100);
}

TEST_CASE("elementwise: activations match PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kActivations) > 100);
}

TEST_CASE("elementwise: binary arithmetic with broadcasting and scalars matches PyTorch",
          "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kArithmetic) > 800);
}

TEST_CASE("elementwise: comparisons, logical and bitwise ops match PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kLogical) > 500);
}

TEST_CASE("elementwise: clamps match PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kClamps) > 100);
}

TEST_CASE("elementwise: where and masked_fill match PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kSelection) > 40);
}

TEST_CASE("elementwise: conversions and inference identities match PyTorch", "[ops][elementwise]") {
  CHECK(run_cases(registry(), recorded_cases(), kConversions) > 30);
}

TEST_CASE("elementwise: every recorded case belongs to a tested family", "[ops][elementwise]") {
  std::vector<std::string> all;
  for (const auto* family : {&kUnaryMath, &kUnaryDiscrete, &kActivations, &kArithmetic, &kLogical, &kClamps,
                             &kSelection, &kConversions})
    all.insert(all.end(), family->begin(), family->end());
  for (const OpCase& c : recorded_cases()) {
    INFO(describe_case(c));
    CHECK(case_matches(c, all));
  }
}

// ---------------------------------------------------------------------------------------------------
// Type promotion

PromotionOperand table_operand(int dtype, int zero_dim) {
  return {dtype_from_scalar_type(dtype), zero_dim ? PromotionRank::kZeroDim : PromotionRank::kDimensioned};
}

IValue table_value(int dtype, int zero_dim) {
  DType d = dtype_from_scalar_type(dtype);
  return IValue(Tensor::empty(zero_dim ? Shape{} : Shape{2}, d));
}

IValue table_scalar(int kind) {
  if (kind == 0) return IValue(int64_t{3});
  if (kind == 1) return IValue(2.5);
  return IValue(true);
}

TEST_CASE("kernel_util: result_type matches torch.result_type for every dtype and operand kind",
          "[ops][kernel_util]") {
  for (const PromotionCase& c : kPromotionCases) {
    INFO("a=" << c.a << " zero_dim=" << c.a_zero_dim << " b=" << c.b
              << " kind=" << c.b_zero_dim_or_scalar_kind);
    DType expected = dtype_from_scalar_type(c.expected);
    PromotionOperand a = table_operand(c.a, c.a_zero_dim);
    if (c.b >= 0) {
      PromotionOperand b = table_operand(c.b, c.b_zero_dim_or_scalar_kind);
      CHECK(result_type({a, b}) == expected);
      // The same through aten::mul (add refuses nothing but bool-alpha cases) and its InferFn.
      Tensor r = call1("aten::mul", "Tensor",
                       {table_value(c.a, c.a_zero_dim), table_value(c.b, c.b_zero_dim_or_scalar_kind)});
      CHECK(r.dtype() == expected);
    } else {
      IValue s = table_scalar(c.b_zero_dim_or_scalar_kind);
      CHECK(result_type({a, promotion_operand(s, "test")}) == expected);
      Tensor r = call1("aten::mul", "Scalar", {table_value(c.a, c.a_zero_dim), s});
      CHECK(r.dtype() == expected);
      const OpOverload* op = registry().find("aten::mul", "Scalar");
      std::vector<TypePtr> types{Type::tensor(dtype_from_scalar_type(c.a), c.a_zero_dim ? Shape{} : Shape{2}),
                                 s.is_bool()  ? Type::boolean()
                                 : s.is_int() ? Type::integer()
                                              : Type::floating()};
      auto inferred = op->infer(types, {nullptr, nullptr});
      REQUIRE(inferred.at(0)->dtype.has_value());
      CHECK(*inferred[0]->dtype == expected);
    }
  }
}

TEST_CASE("kernel_util: result_type of three operands and can_cast", "[ops][kernel_util]") {
  using R = PromotionRank;
  // A 0-dim float64 over an int32 tensor gives float64; with a float32 tensor present it gives float32.
  CHECK(result_type({{DType::kInt32, R::kDimensioned}, {DType::kFloat64, R::kZeroDim}}) == DType::kFloat64);
  CHECK(result_type({{DType::kInt32, R::kDimensioned},
                     {DType::kFloat32, R::kDimensioned},
                     {DType::kFloat64, R::kZeroDim}}) == DType::kFloat32);
  // A float scalar with integer tensors is the default dtype, whatever the tensors' width.
  CHECK(result_type({{DType::kInt64, R::kDimensioned}, {DType::kFloat64, R::kWrappedScalar}}) ==
        DType::kFloat32);
  CHECK(result_type({{DType::kBool, R::kDimensioned}, {DType::kInt64, R::kWrappedScalar}}) == DType::kInt64);
  CHECK(result_type({{DType::kFloat64, R::kWrappedScalar}, {DType::kInt64, R::kWrappedScalar}}) ==
        DType::kFloat32);
  CHECK(can_cast(DType::kInt32, DType::kFloat16));
  CHECK(can_cast(DType::kBool, DType::kUInt8));
  CHECK_FALSE(can_cast(DType::kFloat32, DType::kInt64));
  CHECK_FALSE(can_cast(DType::kInt8, DType::kBool));
  CHECK_THROWS_WITH(
      check_can_cast_to_self(DType::kFloat32, DType::kInt32, "aten::add_"),
      Catch::Contains("aten::add_") && Catch::Contains("Float can't be cast") && Catch::Contains("Int"));
}

TEST_CASE("kernel_util: infer_result_type is certain only when every possible rank agrees",
          "[ops][kernel_util]") {
  // int32 tensor of unknown rank with a float64 tensor of known rank 1: the float wins either way.
  std::vector<TypePtr> args{Type::tensor(DType::kInt32, std::nullopt),
                            Type::tensor(DType::kFloat64, Shape{3})};
  CHECK(infer_result_type(args, {nullptr, nullptr}, {0, 1}) == DType::kFloat64);
  // float64 tensor of unknown rank with a float32 vector: float32 if the first is 0-dim, else float64.
  args = {Type::tensor(DType::kFloat64, std::nullopt), Type::tensor(DType::kFloat32, Shape{3})};
  CHECK_FALSE(infer_result_type(args, {nullptr, nullptr}, {0, 1}).has_value());
  // Unknown dtype: nothing is certain.
  args = {Type::tensor(), Type::integer()};
  CHECK_FALSE(infer_result_type(args, {nullptr, nullptr}, {0, 1}).has_value());
  // A constant Scalar is used for its kind.
  IValue half(0.5);
  args = {Type::tensor(DType::kInt64, Shape{2}), Type::number()};
  CHECK(infer_result_type(args, {nullptr, &half}, {0, 1}) == DType::kFloat32);
}

TEST_CASE("kernel_util: broadcasting shapes, strides and symbolic dims", "[ops][kernel_util]") {
  CHECK(broadcast_shapes(Shape{3, 1, 7}, Shape{5, 1}, "t") == Shape{3, 5, 7});
  CHECK(broadcast_shapes(Shape{}, Shape{2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes(std::vector<Shape>{{4, 1}, {1, 5}, {1}}, "t") == Shape{4, 5});
  CHECK_THROWS_WITH(broadcast_shapes(Shape{3, 4}, Shape{5}, "aten::add"),
                    Catch::Contains("aten::add") && Catch::Contains("[3, 4]") && Catch::Contains("[5]"));
  Tensor t = Tensor::from_doubles({3, 1}, DType::kFloat32, {1, 2, 3});
  CHECK(broadcast_strides(t, {2, 3, 4}, "t") == Shape{0, 1, 0});
  Tensor e = expand_to(t, {2, 3, 4}, "t");
  CHECK(e.to_doubles()[4 * 3 + 5] == 2.0);  // element [1, 1, 1]
  // Symbolic (-1) dims: unknown stays unknown unless the other side knows the size.
  std::vector<TypePtr> args{Type::tensor(DType::kFloat32, Shape{-1, 1, 7}),
                            Type::tensor(DType::kFloat32, Shape{5, 1}), Type::floating()};
  CHECK(infer_broadcast_shape(args, {0, 1, 2}) == Shape{-1, 5, 7});
  args = {Type::tensor(DType::kFloat32, Shape{-1, 4}), Type::tensor(DType::kFloat32, Shape{3, -1})};
  CHECK(infer_broadcast_shape(args, {0, 1}) == Shape{3, 4});
  args = {Type::tensor(DType::kFloat32, Shape{2, 4}), Type::tensor(DType::kFloat32, Shape{3, 4})};
  CHECK_FALSE(infer_broadcast_shape(args, {0, 1}).has_value());
  args = {Type::tensor(), Type::tensor(DType::kFloat32, Shape{3})};
  CHECK_FALSE(infer_broadcast_shape(args, {0, 1}).has_value());
}

TEST_CASE("kernel_util: dispatch_dtype gives each dtype its C++ element type", "[ops][kernel_util]") {
  for (DType d : {DType::kUInt8, DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64, DType::kFloat16,
                  DType::kFloat32, DType::kFloat64, DType::kBool, DType::kBFloat16}) {
    INFO(dtype_name(d));
    Tensor t = Tensor::from_doubles({4}, d, {0, 1, 2, 3});
    double sum = dispatch_dtype(d, "test", [&](auto tag) {
      using T = typename decltype(tag)::type;
      CHECK(sizeof(T) == dtype_size(d));
      T* p = t.data<T>();
      double s = 0;
      for (int i = 0; i < 4; ++i) {
        s += to_double(p[i]);
        p[i] = from_double<T>(to_double(p[i]) * 2);
      }
      return s;
    });
    CHECK(sum == (d == DType::kBool ? 3.0 : 6.0));
    CHECK(t.get_double(3) == (d == DType::kBool ? 1.0 : 6.0));
  }
  CHECK(from_double<int8_t>(200.0) == int8_t{-56});  // wraps like a cast through int64
  CHECK(to_double(from_double<Half>(0.1)) == Approx(0.0999755859375).epsilon(0));
  CHECK(round_to_dtype(0.1, DType::kFloat32) == static_cast<double>(0.1f));
  CHECK(round_to_dtype(300, DType::kUInt8) == 44);
  CHECK(wrap_to_dtype(-129, DType::kInt8) == 127);
}

TEST_CASE("kernel_util: copy_into writes through strides and converts like a cast", "[ops][kernel_util]") {
  Tensor base = Tensor::from_ints({2, 3}, DType::kInt8, {0, 0, 0, 0, 0, 0});
  Tensor view = base.as_strided({3, 2}, {1, 3}, 0);  // transposed
  Tensor src = Tensor::from_ints({3, 2}, DType::kInt64, {1, 2, 3, 4, 300, -129});
  copy_into(view, src, "test");
  CHECK(base.to_ints() == std::vector<int64_t>{1, 3, 44, 2, 4, 127});  // 300 and -129 wrap to int8
  Tensor halves = Tensor::empty({2}, DType::kFloat16);
  copy_into(halves, Tensor::from_doubles({2}, DType::kFloat64, {0.1, 65519.0}), "test");
  CHECK(halves.to_doubles() == std::vector<double>{0.0999755859375, 65504.0});
}

TEST_CASE("kernel_util: for_each_element walks strided operands in logical order", "[ops][kernel_util]") {
  // A 3x4 transposed view of a 4x3 base, and a broadcast row.
  Tensor base = Tensor::from_doubles({4, 3}, DType::kFloat64, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor view = base.as_strided({3, 4}, {1, 3}, 0);
  Tensor row = Tensor::from_doubles({4}, DType::kFloat32, {100, 200, 300, 400});
  Tensor out = Tensor::empty({3, 4}, DType::kFloat32);
  map_elements<double, 2>(out, {&view, &row}, DType::kFloat64, "test",
                          [](double a, double b) { return a + b; });
  CHECK(out.to_doubles() == std::vector<double>{100, 203, 306, 409, 101, 204, 307, 410, 102, 205, 308, 411});
  // Empty shapes call nothing; 0-dim shapes call once.
  int calls = 0;
  Shape no_strides{0, 0};
  for_each_element<1>(Shape{0, 3}, {no_strides.data()}, {0}, [&](const std::array<int64_t, 1>&) { ++calls; });
  CHECK(calls == 0);
  for_each_element<1>(Shape{}, {no_strides.data()}, {7}, [&](const std::array<int64_t, 1>& off) {
    ++calls;
    CHECK(off[0] == 7);
  });
  CHECK(calls == 1);
}

// ---------------------------------------------------------------------------------------------------
// Aliasing, errors and inference (hand-computed)

TEST_CASE("elementwise: in-place ops write through a view and every alias sees it", "[ops][elementwise]") {
  Tensor base = Tensor::from_doubles({3, 4}, DType::kFloat32, {-1, 2, -3, 4, -5, 6, -7, 8, -9, 10, -11, 12});
  Tensor cols = base.as_strided({3, 2}, {4, 2}, 0);  // every other column: -1 -3 / -5 -7 / -9 -11
  Tensor alias = base.as_strided({12}, {1}, 0);
  IValueList out = call("aten::relu_", "", {IValue(cols)});
  CHECK(out[0].to_tensor().shares_storage_with(base));
  CHECK(alias.to_doubles() == std::vector<double>{0, 2, 0, 4, 0, 6, 0, 8, 0, 10, 0, 12});
  // add_ with a broadcast scalar tensor and alpha, on the transposed base.
  Tensor t = base.as_strided({4, 3}, {1, 4}, 0);
  call("aten::add_", "Tensor", {IValue(t), IValue(Tensor::scalar_double(1.5)), IValue(int64_t{2})});
  CHECK(alias.to_doubles() == std::vector<double>{3, 5, 3, 7, 3, 9, 3, 11, 3, 13, 3, 15});
  // masked_fill_ writes only the masked elements of the view.
  Tensor mask = Tensor::from_ints({2}, DType::kBool, {0, 1});
  call("aten::masked_fill_", "Scalar", {IValue(cols), IValue(mask), IValue(-2.0)});
  CHECK(alias.to_doubles() == std::vector<double>{3, 5, -2, 7, 3, 9, -2, 11, 3, 13, -2, 15});
}

TEST_CASE("elementwise: in-place ops keep self's dtype and refuse results that cannot be cast",
          "[ops][elementwise]") {
  Tensor ints = Tensor::from_ints({3}, DType::kInt32, {1, 2, 3});
  CHECK_THROWS_WITH(call("aten::add_", "Scalar", {IValue(ints), IValue(1.5), IValue(int64_t{1})}),
                    Catch::Contains("aten::add_") && Catch::Contains("Float can't be cast"));
  CHECK_THROWS_WITH(call("aten::sigmoid_", "", {IValue(ints)}), Catch::Contains("aten::sigmoid_"));
  CHECK(ints.to_ints() == std::vector<int64_t>{1, 2, 3});
  Tensor half = Tensor::from_doubles({2}, DType::kFloat16, {1, 2});
  call("aten::mul_", "Tensor", {IValue(half), IValue(Tensor::from_doubles({2}, DType::kFloat64, {0.5, 3}))});
  CHECK(half.dtype() == DType::kFloat16);
  CHECK(half.to_doubles() == std::vector<double>{0.5, 6});
}

TEST_CASE("elementwise: integer division by zero and bad arguments raise clear errors",
          "[ops][elementwise]") {
  Tensor a = Tensor::from_ints({2}, DType::kInt64, {1, 2});
  Tensor z = Tensor::from_ints({2}, DType::kInt64, {1, 0});
  CHECK_THROWS_WITH(call("aten::floor_divide", "", {IValue(a), IValue(z)}),
                    Catch::Contains("aten::floor_divide") && Catch::Contains("ZeroDivisionError"));
  CHECK_THROWS_WITH(call("aten::div", "Tensor_mode", {IValue(a), IValue(a), IValue("round")}),
                    Catch::Contains("'round'"));
  CHECK_THROWS_WITH(call("aten::gelu", "", {IValue(Tensor::scalar_double(1.0)), IValue("exact")}),
                    Catch::Contains("aten::gelu") && Catch::Contains("exact"));
  CHECK_THROWS_WITH(call("aten::clamp", "", {IValue(a), IValue(), IValue()}), Catch::Contains("aten::clamp"));
  CHECK_THROWS_WITH(call("aten::add", "Scalar", {IValue(a), IValue("x"), IValue(int64_t{1})}),
                    Catch::Contains("aten::add") && Catch::Contains("Scalar"));
}

TEST_CASE("elementwise: dropout is an identity in inference and refuses training", "[ops][elementwise]") {
  Tensor x = Tensor::from_doubles({3}, DType::kFloat32, {1, 2, 3});
  IValueList out = call("aten::dropout", "", {IValue(x), IValue(0.1), IValue(false)});
  CHECK(out[0].to_tensor().shares_storage_with(x));
  try {
    call("aten::feature_dropout", "", {IValue(x), IValue(0.1), IValue(true)});
    FAIL("training dropout did not raise");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kUnsupported);
    CHECK_THAT(e.what(), Catch::Contains("aten::feature_dropout") && Catch::Contains("train=True"));
  }
  CHECK_THROWS_WITH(call("aten::dropout", "", {IValue(x), IValue(1.5), IValue(false)}),
                    Catch::Contains("1.5"));
}

TEST_CASE("elementwise: to, type_as and detach alias their input when nothing changes",
          "[ops][elementwise]") {
  Tensor x = Tensor::from_doubles({2, 2}, DType::kFloat32, {1.7, -2.7, 3, 4}).as_strided({2, 2}, {1, 2}, 0);
  CHECK(call1("aten::to", "dtype", {IValue(x), IValue(int64_t{6}), IValue(false), IValue(false), IValue()})
            .shares_storage_with(x));
  Tensor copy =
      call1("aten::to", "dtype", {IValue(x), IValue(int64_t{6}), IValue(false), IValue(true), IValue()});
  CHECK_FALSE(copy.shares_storage_with(x));
  CHECK(copy.to_doubles() == x.to_doubles());
  Tensor ints = call1("aten::type_as", "", {IValue(x), IValue(Tensor::scalar_int(0, DType::kInt16))});
  CHECK(ints.dtype() == DType::kInt16);
  CHECK(ints.to_ints() == std::vector<int64_t>{1, 3, -2, 4});
  CHECK(call1("aten::detach", "", {IValue(x)}).shares_storage_with(x));
}

TEST_CASE("elementwise: where(condition) lists the indices of nonzero elements per dim",
          "[ops][elementwise]") {
  Tensor cond = Tensor::from_ints({2, 3}, DType::kBool, {0, 1, 0, 1, 0, 1});
  IValueList out = call("aten::where", "", {IValue(cond.as_strided({3, 2}, {1, 3}, 0))});  // transposed
  std::vector<Tensor> idx = out.at(0).to_tensor_list();
  REQUIRE(idx.size() == 2);
  // Transposed: [[0, 1], [1, 0], [0, 1]] -> nonzero at (0,1), (1,0), (2,1).
  CHECK(idx[0].to_ints() == std::vector<int64_t>{0, 1, 2});
  CHECK(idx[1].to_ints() == std::vector<int64_t>{1, 0, 1});
}

TEST_CASE("elementwise: InferFns give broadcast shapes and promoted dtypes, or nothing when unknown",
          "[ops][elementwise]") {
  const OpOverload* add = registry().find("aten::add", "Tensor");
  auto types = add->infer({Type::tensor(DType::kInt32, Shape{-1, 1, 7}),
                           Type::tensor(DType::kFloat16, Shape{5, 1}), Type::integer()},
                          {nullptr, nullptr, nullptr});
  CHECK(types.at(0)->dtype == DType::kFloat16);
  CHECK(types.at(0)->shape == Shape{-1, 5, 7});
  types = add->infer({Type::tensor(), Type::tensor(DType::kFloat32, Shape{3}), Type::integer()},
                     {nullptr, nullptr, nullptr});
  CHECK_FALSE(types.at(0)->dtype.has_value());
  CHECK_FALSE(types.at(0)->shape.has_value());
  const OpOverload* div = registry().find("aten::div", "Tensor_mode");
  IValue floor_mode("floor"), no_mode;
  std::vector<TypePtr> args{Type::tensor(DType::kInt64, Shape{2}), Type::tensor(DType::kInt64, Shape{2}),
                            Type::optional(Type::string())};
  CHECK(div->infer(args, {nullptr, nullptr, &floor_mode}).at(0)->dtype == DType::kInt64);
  CHECK(div->infer(args, {nullptr, nullptr, &no_mode}).at(0)->dtype == DType::kFloat32);
  CHECK_FALSE(div->infer(args, {nullptr, nullptr, nullptr}).at(0)->dtype.has_value());
  const OpOverload* to = registry().find("aten::to", "dtype");
  IValue f16(int64_t{5});
  auto to_types = to->infer({Type::tensor(DType::kFloat32, Shape{-1, 3}), Type::integer(), Type::boolean(),
                             Type::boolean(), Type::none()},
                            {nullptr, &f16, nullptr, nullptr, nullptr});
  CHECK(to_types.at(0)->dtype == DType::kFloat16);
  CHECK(to_types.at(0)->shape == Shape{-1, 3});
}

TEST_CASE("elementwise: every registered overload infers its result types", "[ops][elementwise]") {
  OpRegistry r;
  register_elementwise_ops(r);
  CHECK(r.size() > 200);
  for (const std::string& name : r.names())
    for (const OpOverload* op : r.overloads(name)) {
      // The registry already refuses an overload without a kernel; what it does not check is shape
      // inference, which the partitioner and the OpenCL planner need for every op.
      INFO(op->schema.full_name());
      CHECK(op->infer != nullptr);
    }
}

}  // namespace
}  // namespace convoy
