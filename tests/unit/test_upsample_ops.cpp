// Interpolation reference kernels (runtime/ops/upsample.cpp) against PyTorch 1.13's own results on
// awkward shapes (tests/fixtures/ops/upsample/manifest_upsample.txt, by make_upsample_fixtures.py
// there), their schemas, errors and shape inference, and a small traced model calling F.interpolate
// (interpolate.pt, by make_interpolate_model.py) loaded and run end to end on the reference executor.
#include <catch2/catch.hpp>
#include <string>

#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/npy.h"
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

IValue floats(std::vector<double> v) {
  IValueList items;
  for (double x : v) items.emplace_back(x);
  return IValue::list(std::move(items));
}

}  // namespace

TEST_CASE("interpolation ops match PyTorch on the fixture cases", "[upsample]") {
  const std::vector<FixtureCase> cases = load_manifest("manifest_upsample.txt", "upsample");
  REQUIRE(cases.size() >= 45);
  for (const FixtureCase& c : cases) {
    DYNAMIC_SECTION(c.name) { run_fixture_case(registry(), c); }
  }
}

TEST_CASE("interpolation ops are registered under PyTorch's schemas", "[upsample]") {
  const OpRegistry& r = registry();
  for (const char* name :
       {"aten::upsample_nearest1d", "aten::upsample_nearest2d", "aten::upsample_nearest3d",
        "aten::_upsample_nearest_exact1d", "aten::_upsample_nearest_exact2d",
        "aten::_upsample_nearest_exact3d", "aten::upsample_linear1d", "aten::upsample_bilinear2d",
        "aten::upsample_trilinear3d", "aten::upsample_bicubic2d"}) {
    INFO(name);
    CHECK(r.find(name, "") != nullptr);
    CHECK(r.find(name, "vec") != nullptr);
  }
  CHECK(
      r.find("aten::upsample_bilinear2d", "")->schema.text ==
      "aten::upsample_bilinear2d(Tensor self, int[2] output_size, bool align_corners, float? scales_h=None, "
      "float? scales_w=None) -> Tensor");
  CHECK(r.find("aten::upsample_nearest2d", "vec")->schema.text ==
        "aten::upsample_nearest2d.vec(Tensor input, int[]? output_size, float[]? scale_factors) -> Tensor");
}

TEST_CASE("nearest interpolation gathers integer tensors exactly", "[upsample]") {
  // 2x: output o reads input o >> 1 in each dim.
  Tensor x = ramp({1, 2, 2, 3}, DType::kInt64);
  IValueList out = call_op(registry(), "aten::upsample_nearest2d", {IValue(x), IValue::int_list({4, 6})});
  Tensor y = out[0].to_tensor();
  CHECK(y.dtype() == DType::kInt64);
  CHECK(y.sizes() == Shape{1, 2, 4, 6});
  const std::vector<int64_t> v = y.to_ints();
  CHECK(std::vector<int64_t>(v.begin(), v.begin() + 12) ==
        std::vector<int64_t>{0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2});
  CHECK(v[12 * 3 + 11] == 11);
}

TEST_CASE("interpolation rejects bad calls with messages naming them", "[upsample]") {
  Tensor x = ramp({1, 3, 5, 7});
  CHECK_THROWS_WITH(call_op(registry(), "aten::upsample_bilinear2d.vec",
                            {IValue(x), IValue::int_list({4, 4}), IValue(false), floats({2.0, 2.0})}),
                    Contains("exactly one of output_size and scale_factors"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::upsample_nearest2d.vec", {IValue(x), IValue(), IValue()}),
                    Contains("exactly one of output_size and scale_factors"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::upsample_bilinear2d.vec",
                            {IValue(x), IValue(), IValue(false), floats({2.0})}),
                    Contains("scale_factors must have 2 values"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::upsample_bilinear2d",
                            {IValue(ramp({3, 5, 7})), IValue::int_list({4, 4}), IValue(false)}),
                    Contains("aten::upsample_bilinear2d: expected a 4-d input"));
  CHECK_THROWS_WITH(call_op(registry(), "aten::upsample_nearest2d", {IValue(x), IValue::int_list({0, 4})}),
                    Contains("input and output sizes should be greater than 0"));
  CHECK_THROWS_WITH(
      call_op(registry(), "aten::upsample_nearest2d.vec", {IValue(x), IValue(), floats({0.1, 1.0})}),
      Contains("output (H: 0, W: 7)"));
  ErrorKind kind = ErrorKind::kInternal;
  try {
    call_op(registry(), "aten::upsample_bilinear2d",
            {IValue(ramp({1, 1, 2, 2}, DType::kInt64)), IValue::int_list({3, 3}), IValue(false)});
  } catch (const Error& e) {
    kind = e.kind();
  }
  CHECK(kind == ErrorKind::kUnsupported);
}

TEST_CASE("interpolation shape inference from sizes or factors, batch unknown", "[upsample]") {
  const OpOverload* vec = registry().find("aten::upsample_bilinear2d", "vec");
  REQUIRE(vec);
  IValue none, align(false), factors = floats({1.7, 0.5});
  std::vector<TypePtr> args{Type::tensor(DType::kFloat32, Shape{-1, 3, 5, 7}), Type::none(), Type::boolean(),
                            Type::list(Type::floating())};
  std::vector<TypePtr> out = vec->infer(args, {nullptr, &none, &align, &factors});
  REQUIRE(out[0]->shape);
  CHECK(*out[0]->shape == Shape{-1, 3, 8, 3});
  // Unknown spatial sizes with factors: no shape.
  args[0] = Type::tensor(DType::kFloat32, Shape{1, 3, -1, 7});
  CHECK_FALSE(vec->infer(args, {nullptr, &none, &align, &factors})[0]->shape);
  // Non-constant scale factors: no shape, no error.
  CHECK_FALSE(vec->infer(args, {nullptr, &none, &align, nullptr})[0]->shape);
}

TEST_CASE("a traced model calling F.interpolate loads and matches PyTorch", "[upsample][model]") {
  const std::string dir = fixture_dir("upsample") + "/";
  Model model = load_model(dir + "interpolate.pt", registry());
  ReferenceExecutor executor(*model.graph);
  std::vector<IValue> outs = executor.run({IValue(read_npy(dir + "interpolate_input_0.npy"))});
  REQUIRE(outs.size() == 10);
  for (size_t i = 0; i < outs.size(); ++i) {
    INFO("output " << i);
    REQUIRE(outs[i].is_tensor());
    check_result(outs[i].to_tensor(), read_npy(dir + "interpolate_expected_" + std::to_string(i) + ".npy"),
                 1e-5);
  }
}
