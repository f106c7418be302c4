// The 3-d ops of torchvision's video models on the reference kernels (runtime/ops/conv.cpp,
// pooling.cpp, normalization.cpp) against PyTorch 1.13's own results on awkward shapes
// (tests/fixtures/ops/video/manifest_video.txt, by make_video_fixtures.py there): conv3d through
// _convolution, convolution and conv3d (groups, depthwise, dilation, stride, "same"), max/avg/adaptive
// 3-d pools (ceil_mode, count_include_pad, divisor_override, indices), batch_norm on 5-d inputs. Then
// their schemas, errors and shape inference, and hand-computed values independent of PyTorch.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/registry.h"
#include "tests/unit/nn_fixture_runner.h"

using namespace convoy;
using namespace convoy::nn_testing;
using Catch::Matchers::Contains;

namespace {

const OpRegistry& registry() {
  static const OpRegistry r = make_default_registry();
  return r;
}

Tensor ramp(const Shape& shape, DType dtype = DType::kFloat32) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return Tensor::from_doubles(shape, dtype, v);
}

}  // namespace

TEST_CASE("3-d convolution, pooling and batch_norm match PyTorch on the fixture cases", "[video]") {
  const std::vector<FixtureCase> cases = load_manifest("manifest_video.txt", "video");
  REQUIRE(cases.size() >= 60);
  for (const FixtureCase& c : cases) {
    DYNAMIC_SECTION(c.name) { run_fixture_case(registry(), c); }
  }
}

TEST_CASE("3-d pools are registered under PyTorch's schemas", "[video]") {
  const OpRegistry& r = registry();
  CHECK(r.find("aten::max_pool3d", "")->schema.text ==
        "aten::max_pool3d(Tensor self, int[3] kernel_size, int[3] stride=[], int[3] padding=0, "
        "int[3] dilation=1, bool ceil_mode=False) -> Tensor");
  CHECK(r.find("aten::avg_pool3d", "")->schema.text ==
        "aten::avg_pool3d(Tensor self, int[3] kernel_size, int[3] stride=[], int[3] padding=0, "
        "bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor");
  CHECK(r.find("aten::adaptive_avg_pool3d", "")->schema.text ==
        "aten::adaptive_avg_pool3d(Tensor self, int[3] output_size) -> Tensor");
  CHECK(r.find("aten::adaptive_max_pool3d", "")->schema.returns.size() == 2);
  CHECK(r.find("aten::max_pool3d_with_indices", "")->schema.returns.size() == 2);
  // "int[3] padding=0" is [0, 0, 0]; a single int given for an int[3] is repeated.
  CHECK(r.find("aten::max_pool3d", "")->schema.arguments[3].default_value->to_int_list() ==
        std::vector<int64_t>{0, 0, 0});
  IValueList out = call_op(r, "aten::max_pool3d", {IValue(ramp({1, 1, 4, 4, 4})), IValue(int64_t{2})});
  CHECK(out[0].to_tensor().sizes() == Shape{1, 1, 2, 2, 2});
}

TEST_CASE("3-d pools on hand-computed values", "[video]") {
  // A 1x1x3x3x3 ramp: value = 9d + 3h + w.
  const Tensor x = ramp({1, 1, 3, 3, 3});
  // max over 2x2x2 windows, stride 1: the window's far corner, 9(d+1) + 3(h+1) + (w+1).
  IValueList mp = call_op(registry(), "aten::max_pool3d_with_indices",
                          {IValue(x), IValue::int_list({2, 2, 2}), IValue::int_list({1, 1, 1})});
  CHECK(mp[0].to_tensor().to_doubles() == std::vector<double>{13, 14, 16, 17, 22, 23, 25, 26});
  CHECK(mp[1].to_tensor().to_ints() == std::vector<int64_t>{13, 14, 16, 17, 22, 23, 25, 26});
  // avg, kernel 3, padding 1, stride 2: the corner window holds (0..1)^3 of 27 padded taps.
  auto avg = [&](bool include_pad) {
    return call_op(registry(), "aten::avg_pool3d",
                   {IValue(x), IValue::int_list({3, 3, 3}), IValue::int_list({2, 2, 2}),
                    IValue::int_list({1, 1, 1}), IValue(false), IValue(include_pad), IValue()})[0]
        .to_tensor()
        .to_doubles();
  };
  // Taps d, h, w in {0, 1}: sum 4·(0 + 9) + 4·(0 + 3) + 4·(0 + 1) = 52 over 8 taps.
  CHECK(avg(true)[0] == Approx(52.0 / 27));
  CHECK(avg(false)[0] == Approx(52.0 / 8));
  // adaptive to (2, 1, 1): depth windows [0, 2) and [1, 3), each over all of h and w.
  IValueList ad = call_op(registry(), "aten::adaptive_avg_pool3d", {IValue(x), IValue::int_list({2, 1, 1})});
  CHECK(ad[0].to_tensor().sizes() == Shape{1, 1, 2, 1, 1});
  CHECK(ad[0].to_tensor().to_doubles()[0] == Approx(4.5 + 4));
  CHECK(ad[0].to_tensor().to_doubles()[1] == Approx(13.5 + 4));
}

TEST_CASE("3-d max pools let NaN win, as PyTorch does", "[video]") {
  Tensor x = ramp({1, 1, 2, 2, 4});
  x.set_double(9, std::nan(""));
  IValueList out = call_op(registry(), "aten::max_pool3d_with_indices",
                           {IValue(x), IValue::int_list({2, 2, 2}), IValue::int_list({2, 2, 2})});
  const std::vector<double> v = out[0].to_tensor().to_doubles();
  CHECK(std::isnan(v[0]));
  CHECK(v[1] == 15);
  CHECK(out[1].to_tensor().to_ints() == std::vector<int64_t>{9, 15});
  IValueList ad = call_op(registry(), "aten::adaptive_max_pool3d", {IValue(x), IValue::int_list({1, 1, 2})});
  CHECK(std::isnan(ad[0].to_tensor().to_doubles()[0]));
  CHECK(ad[1].to_tensor().to_ints() == std::vector<int64_t>{9, 15});
}

TEST_CASE("3-d pools reject bad calls with messages naming them", "[video]") {
  const Tensor x = ramp({1, 2, 3, 4, 5});
  CHECK_THROWS_WITH(call_op(registry(), "aten::max_pool3d", {IValue(ramp({4, 5, 6})), IValue::int_list({2})}),
                    Contains("aten::max_pool3d: input [4, 5, 6] must have 4 or 5 dims"));
  CHECK_THROWS_WITH(
      call_op(registry(), "aten::avg_pool3d",
              {IValue(x), IValue::int_list({2, 2, 2}), IValue::int_list({}), IValue::int_list({1, 2, 1})}),
      Contains("aten::avg_pool3d: padding [1, 2, 1] must be at most half of kernel_size [2, 2, 2]"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::max_pool3d", {IValue(x), IValue::int_list({4, 2, 2})}),
                    Contains("is too small for kernel_size [4, 2, 2]"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::max_pool3d", {IValue(x), IValue::int_list({2, 2})}),
                    Contains("kernel_size [2, 2] must have 1 or 3 values"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::avg_pool3d",
                            {IValue(x), IValue::int_list({2}), IValue::int_list({}), IValue::int_list({0}),
                             IValue(false), IValue(true), IValue(int64_t{0})}),
                    Contains("aten::avg_pool3d: divisor_override must not be zero"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::adaptive_avg_pool3d",
                            {IValue(ramp({1, 2, 0, 4, 5})), IValue::int_list({1})}),
                    Contains("has an empty spatial dim"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::adaptive_avg_pool3d", {IValue(x), IValue::int_list({1, 1})}),
                    Contains("output_size [1, 1] must have 3 values"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::conv3d", {IValue(x), IValue(ramp({3, 2, 2, 2}))}),
                    Contains("aten::conv3d: weight [3, 2, 2, 2] must have 5 dims"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::conv3d", {IValue(x), IValue(ramp({3, 2, 4, 2, 2}))}),
                    Contains("aten::conv3d"));
}

TEST_CASE("3-d shape inference with the batch unknown", "[video]") {
  const TypePtr in = Type::tensor(DType::kFloat32, Shape{-1, 3, 5, 7, 9});
  const OpOverload* mp = registry().find("aten::max_pool3d", "");
  IValue k = IValue::int_list({3, 3, 3}), s = IValue::int_list({2, 2, 2}), p = IValue::int_list({1, 1, 1}),
         d = IValue::int_list({1, 1, 1}), ceil(true);
  std::vector<TypePtr> args{in,
                            Type::list(Type::integer()),
                            Type::list(Type::integer()),
                            Type::list(Type::integer()),
                            Type::list(Type::integer()),
                            Type::boolean()};
  std::vector<TypePtr> out = mp->infer(args, {nullptr, &k, &s, &p, &d, &ceil});
  REQUIRE(out[0]->shape);
  CHECK(*out[0]->shape == Shape{-1, 3, 3, 4, 5});
  // A non-constant kernel size: no shape, no error.
  CHECK_FALSE(mp->infer(args, {nullptr, nullptr, &s, &p, &d, &ceil})[0]->shape);

  const OpOverload* ad = registry().find("aten::adaptive_avg_pool3d", "");
  IValue size = IValue::int_list({1, 2, 3});
  out = ad->infer({in, Type::list(Type::integer())}, {nullptr, &size});
  REQUIRE(out[0]->shape);
  CHECK(*out[0]->shape == Shape{-1, 3, 1, 2, 3});

  const OpOverload* conv = registry().find("aten::conv3d", "");
  IValue stride = IValue::int_list({1, 2, 2}), pad = IValue::int_list({0, 1, 1}),
         dil = IValue::int_list({1, 1, 1}), groups(int64_t{1});
  out = conv->infer(
      {in, Type::tensor(DType::kFloat32, Shape{8, 3, 3, 3, 3}), Type::none(), Type::list(Type::integer()),
       Type::list(Type::integer()), Type::list(Type::integer()), Type::integer()},
      {nullptr, nullptr, nullptr, &stride, &pad, &dil, &groups});
  REQUIRE(out[0]->shape);
  CHECK(*out[0]->shape == Shape{-1, 8, 3, 4, 5});
}
