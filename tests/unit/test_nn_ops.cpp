// Reference kernels of the nn families (conv, pooling, normalisation, matrix products, embedding)
// against PyTorch 1.13's own results on awkward shapes (tests/fixtures/ops/nn/manifest_nn.txt), plus
// the error paths, dtype handling and shape inference that the fixtures do not reach.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/registry.h"
#include "tests/unit/nn_fixture_runner.h"

using namespace convoy;
using namespace convoy::nn_testing;

namespace {

const OpRegistry& nn_registry() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_nn_ops(r);
    return r;
  }();
  return registry;
}

Tensor iota(const Shape& shape, DType dtype = DType::kFloat32, double scale = 1.0) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7 * static_cast<double>(i) + 0.3) * scale;
  return Tensor::from_doubles(shape, dtype, v);
}

std::string error_of(const std::function<void()>& fn, ErrorKind* kind = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("nn ops match PyTorch on the fixture cases", "[nn_ops]") {
  const std::vector<FixtureCase> cases = load_manifest("manifest_nn.txt");
  REQUIRE(cases.size() >= 75);
  for (const FixtureCase& c : cases) {
    DYNAMIC_SECTION(c.name) { run_fixture_case(nn_registry(), c); }
  }
}

TEST_CASE("nn ops are registered under PyTorch's schemas", "[nn_ops]") {
  const OpRegistry& r = nn_registry();
  // torch 1.13 and 2.x trace the 13-argument _convolution; older archives hold the 12-argument one.
  REQUIRE(r.find("aten::_convolution", "") != nullptr);
  CHECK(r.find("aten::_convolution", "")->schema.arguments.size() == 13);
  REQUIRE(r.find("aten::_convolution", "deprecated") != nullptr);
  CHECK(r.find("aten::_convolution", "deprecated")->schema.arguments.size() == 12);
  for (const char* name : {"aten::conv1d", "aten::conv2d", "aten::conv3d"}) {
    CHECK(r.find(name, "") != nullptr);
    CHECK(r.find(name, "padding") != nullptr);
  }
  for (const char* name : {"aten::batch_norm",
                           "aten::layer_norm",
                           "aten::group_norm",
                           "aten::instance_norm",
                           "aten::linear",
                           "aten::matmul",
                           "aten::mm",
                           "aten::bmm",
                           "aten::addmm",
                           "aten::baddbmm",
                           "aten::dot",
                           "aten::mv",
                           "aten::embedding",
                           "aten::max_pool2d",
                           "aten::avg_pool2d",
                           "aten::adaptive_avg_pool2d",
                           "aten::adaptive_max_pool2d",
                           "aten::max_pool1d",
                           "aten::avg_pool1d",
                           "aten::adaptive_avg_pool1d",
                           "aten::convolution"})
    CHECK(r.find(name, "") != nullptr);
  CHECK(r.find("aten::conv_transpose2d", "input") != nullptr);
  // Defaults come from the schema text: "int[2] stride=1" is [1, 1].
  const OpOverload* conv2d = r.find("aten::conv2d", "");
  REQUIRE(conv2d->schema.arguments[3].default_value.has_value());
  CHECK(conv2d->schema.arguments[3].default_value->to_int_list() == std::vector<int64_t>{1, 1});
  CHECK(r.find("aten::max_pool2d", "")->schema.arguments[2].default_value->to_int_list().empty());
}

TEST_CASE("conv2d with defaults equals an explicit naive convolution", "[nn_ops]") {
  // Independent of PyTorch: a direct six-loop convolution on a tiny case.
  const Tensor x = iota({1, 2, 4, 5});
  const Tensor w = iota({3, 2, 2, 3}, DType::kFloat32, 0.5);
  IValueList out = call_op(nn_registry(), "aten::conv2d", {x, w});
  const Tensor& y = out[0].to_tensor();
  REQUIRE(y.sizes() == Shape{1, 3, 3, 3});
  for (int64_t co = 0; co < 3; ++co)
    for (int64_t oy = 0; oy < 3; ++oy)
      for (int64_t ox = 0; ox < 3; ++ox) {
        double s = 0;
        for (int64_t ci = 0; ci < 2; ++ci)
          for (int64_t ky = 0; ky < 2; ++ky)
            for (int64_t kx = 0; kx < 3; ++kx)
              s += x.get_double(((ci * 4) + oy + ky) * 5 + ox + kx) *
                   w.get_double(((co * 2 + ci) * 2 + ky) * 3 + kx);
        CHECK(y.get_double((co * 3 + oy) * 3 + ox) == Approx(s).epsilon(1e-5));
      }
}

TEST_CASE("linear reports mismatched inner dimensions with the shapes", "[nn_ops]") {
  const std::string msg = error_of([] {
    call_op(nn_registry(), "aten::linear",
            {Tensor::zeros({3, 5}, DType::kFloat32), Tensor::zeros({2, 4}, DType::kFloat32)});
  });
  CHECK(msg ==
        "aten::linear: input float32[3, 5] and weight float32[2, 4] have mismatched inner dimensions 5 vs 4");
}

TEST_CASE("nn ops reject bad shapes and values with messages naming them", "[nn_ops]") {
  const OpRegistry& r = nn_registry();
  const Tensor table = iota({10, 4});
  std::string msg = error_of([&] {
    call_op(r, "aten::embedding", {table, Tensor::from_ints({3}, DType::kInt64, {1, 10, 2})});
  });
  CHECK_THAT(msg,
             Catch::Contains("aten::embedding") && Catch::Contains("index 10") && Catch::Contains("10 rows"));
  msg = error_of([&] {
    call_op(r, "aten::embedding", {table, Tensor::from_ints({1}, DType::kInt64, {-1})});
  });
  CHECK_THAT(msg, Catch::Contains("index -1"));
  msg = error_of([&] { call_op(r, "aten::embedding", {table, Tensor::zeros({2}, DType::kFloat32)}); });
  CHECK_THAT(msg, Catch::Contains("int64 or int32"));

  msg = error_of([&] { call_op(r, "aten::conv2d", {iota({1, 3, 2, 2}), iota({4, 3, 3, 3})}); });
  CHECK_THAT(msg, Catch::Contains("aten::conv2d") && Catch::Contains("too small") &&
                      Catch::Contains("[1, 3, 2, 2]"));
  msg = error_of([&] { call_op(r, "aten::conv2d", {iota({1, 4, 5, 5}), iota({4, 3, 3, 3})}); });
  CHECK_THAT(msg, Catch::Contains("has 4 channels") && Catch::Contains("expects 3"));
  msg = error_of([&] {
    call_op(r, "aten::conv2d",
            {iota({1, 6, 5, 5}), iota({4, 3, 3, 3}), IValue(), IValue::int_list({1, 1}),
             IValue::int_list({0, 0}), IValue::int_list({1, 1}), IValue(int64_t{3})});
  });
  CHECK_THAT(msg, Catch::Contains("groups=3"));
  msg = error_of([&] {
    call_op(r, "aten::conv2d.padding",
            {iota({1, 3, 5, 5}), iota({4, 3, 3, 3}), IValue(), IValue::int_list({2, 2}), IValue("same")});
  });
  CHECK_THAT(msg, Catch::Contains("strided"));
  msg = error_of([&] {
    call_op(r, "aten::conv2d", {iota({1, 3, 5, 5}), iota({4, 3, 3, 3}, DType::kFloat64)});
  });
  CHECK_THAT(msg, Catch::Contains("same dtype"));

  msg = error_of([&] {
    call_op(
        r, "aten::max_pool2d",
        {iota({1, 1, 5, 5}), IValue::int_list({2, 2}), IValue::int_list({2, 2}), IValue::int_list({2, 2})});
  });
  CHECK_THAT(msg, Catch::Contains("half of kernel_size"));
  msg = error_of([&] { call_op(r, "aten::max_pool2d", {iota({1, 1, 2, 2}), IValue::int_list({3, 3})}); });
  CHECK_THAT(msg, Catch::Contains("too small"));

  msg = error_of([&] {
    call_op(r, "aten::batch_norm",
            {iota({2, 3}), IValue(), IValue(), IValue(), IValue(), IValue(false), IValue(0.1), IValue(1e-5),
             IValue(true)});
  });
  CHECK_THAT(msg, Catch::Contains("running_mean"));
  msg = error_of([&] { call_op(r, "aten::layer_norm", {iota({2, 3}), IValue::int_list({4})}); });
  CHECK_THAT(msg, Catch::Contains("normalized_shape [4]") && Catch::Contains("[2, 3]"));
  msg = error_of([&] { call_op(r, "aten::group_norm", {iota({2, 6, 3}), IValue(int64_t{4})}); });
  CHECK_THAT(msg, Catch::Contains("num_groups=4"));
  msg = error_of([&] { call_op(r, "aten::matmul", {iota({2, 3, 4}), iota({3, 5, 2})}); });
  CHECK_THAT(msg, Catch::Contains("aten::matmul") && Catch::Contains("4 vs 5"));
  msg = error_of([&] { call_op(r, "aten::bmm", {iota({2, 3, 4}), iota({3, 4, 2})}); });
  CHECK_THAT(msg, Catch::Contains("aten::bmm"));
}

TEST_CASE("integer inputs to floating kernels are unsupported, not miscomputed", "[nn_ops]") {
  ErrorKind kind = ErrorKind::kInternal;
  const std::string msg = error_of(
      [] {
        call_op(nn_registry(), "aten::conv2d",
                {Tensor::zeros({1, 1, 3, 3}, DType::kInt64), Tensor::zeros({1, 1, 1, 1}, DType::kInt64)});
      },
      &kind);
  CHECK(kind == ErrorKind::kUnsupported);
  CHECK_THAT(msg, Catch::Contains("aten::conv2d") && Catch::Contains("int64"));
}

TEST_CASE("matmul of integer tensors is exact", "[nn_ops]") {
  const Tensor a = Tensor::from_ints({2, 2}, DType::kInt64, {1, 2, 3, 4});
  const Tensor b = Tensor::from_ints({2, 1}, DType::kInt64, {5, 6});
  const Tensor y = call_op(nn_registry(), "aten::matmul", {a, b})[0].to_tensor();
  CHECK(y.dtype() == DType::kInt64);
  CHECK(y.to_ints() == std::vector<int64_t>{17, 39});
}

TEST_CASE("max pooling propagates NaN and reports the first maximum's index", "[nn_ops]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = Tensor::from_doubles({1, 1, 2, 4}, DType::kFloat32, {1, nan, 5, 5, 3, 2, 1, 5});
  IValueList out = call_op(nn_registry(), "aten::max_pool2d_with_indices", {x, IValue::int_list({2, 2})});
  const Tensor& v = out[0].to_tensor();
  CHECK(std::isnan(v.get_double(0)));
  CHECK(v.get_double(1) == 5.0);
  CHECK(out[1].to_tensor().to_ints() == std::vector<int64_t>{1, 2});  // NaN at (0,1); the first 5 at (0,2)
}

TEST_CASE("half-precision inputs compute in float and return half", "[nn_ops]") {
  const Tensor x = iota({1, 3, 6, 5}, DType::kFloat16);
  const Tensor w = iota({2, 3, 3, 3}, DType::kFloat16, 0.25);
  const Tensor y16 = call_op(nn_registry(), "aten::conv2d", {x, w})[0].to_tensor();
  const Tensor y32 =
      call_op(nn_registry(), "aten::conv2d", {x.to(DType::kFloat32), w.to(DType::kFloat32)})[0].to_tensor();
  CHECK(y16.dtype() == DType::kFloat16);
  REQUIRE(y16.sizes() == y32.sizes());
  CHECK(relative_l2(y16, y32) < 1e-3);  // one rounding to half at the end
  const Tensor l = call_op(nn_registry(), "aten::linear",
                           {iota({2, 4}, DType::kBFloat16), iota({3, 4}, DType::kBFloat16)})[0]
                       .to_tensor();
  CHECK(l.dtype() == DType::kBFloat16);
}

TEST_CASE("shape inference keeps an unknown batch dim and computes the rest", "[nn_ops]") {
  const OpRegistry& r = nn_registry();
  auto infer = [&](const std::string& op, const std::vector<TypePtr>& types, const IValueList& constants) {
    const OpOverload& o = resolve(r, op);
    IValueList values = constants;
    std::vector<const IValue*> ptrs;
    for (const IValue& v : values) ptrs.push_back(v.is_none() ? nullptr : &v);
    for (size_t i = ptrs.size(); i < o.schema.arguments.size(); ++i) {
      const auto& d = o.schema.arguments[i].default_value;
      ptrs.push_back(d ? &*d : nullptr);
    }
    std::vector<TypePtr> t = types;
    while (t.size() < o.schema.arguments.size()) t.push_back(Type::any());
    return o.infer(t, ptrs);
  };
  const TypePtr x = Type::tensor(DType::kFloat32, Shape{-1, 13, 9, 7});
  auto conv = infer("aten::conv2d", {x, Type::tensor(DType::kFloat32, Shape{8, 13, 3, 3}), Type::none()},
                    {IValue(), IValue(), IValue(), IValue::int_list({2, 2}), IValue::int_list({1, 1})});
  REQUIRE(conv[0]->shape);
  CHECK(*conv[0]->shape == Shape{-1, 8, 5, 4});
  CHECK(conv[0]->dtype == DType::kFloat32);
  // ceil_mode's last-window rule: 5 wide, kernel 2, stride 2, padding 1 → 3, not 4.
  auto pool = infer("aten::max_pool2d", {Type::tensor(DType::kFloat32, Shape{-1, 2, 5, 5})},
                    {IValue(), IValue::int_list({2, 2}), IValue::int_list({2, 2}), IValue::int_list({1, 1}),
                     IValue::int_list({1, 1}), IValue(true)});
  REQUIRE(pool[0]->shape);
  CHECK(*pool[0]->shape == Shape{-1, 2, 3, 3});
  auto adaptive = infer("aten::adaptive_avg_pool2d", {x}, {IValue(), IValue::int_list({1, 1})});
  CHECK(*adaptive[0]->shape == Shape{-1, 13, 1, 1});
  auto lin =
      infer("aten::linear",
            {Type::tensor(DType::kFloat32, Shape{-1, 7, 5}), Type::tensor(DType::kFloat32, Shape{3, 5})}, {});
  CHECK(*lin[0]->shape == Shape{-1, 7, 3});
  auto mm = infer(
      "aten::matmul",
      {Type::tensor(DType::kFloat32, Shape{-1, 1, 3, 4}), Type::tensor(DType::kFloat32, Shape{5, 4, 2})}, {});
  CHECK(*mm[0]->shape == Shape{-1, 5, 3, 2});
  // Without constant arguments the result is an unrefined tensor of the input's dtype.
  auto unknown =
      infer("aten::conv2d", {x, Type::tensor(DType::kFloat32, Shape{8, 13, 3, 3})}, IValueList(7, IValue()));
  CHECK_FALSE(unknown[0]->shape.has_value());
}
