// The OpenCL 3-d ops of torchvision's video models (opencl/ops/conv.cpp, pooling.cpp,
// normalization.cpp; kernels/conv.cl, pool.cl) first against PyTorch 1.13's own results: every case of
// tests/fixtures/ops/video/manifest_video.txt run as a one-node graph through OpenCLExecutor. Then
// against the registry's reference kernels (tests/unit/opencl_op_harness.h) on awkward shapes: each of
// the three convolution paths (pointwise GEMM, im2col + GEMM, direct) with 3-d weights, checked by the
// plan's GEMM count, the direct kernels and the pools in both layouts (CONVOY_NN_LAYOUT=rows and
// =elements), rows wide enough for pool_rows' vector interior, NaN in the interior and on a border,
// strided inputs, float16/float64, indices, adaptive sizes that do not divide the input, and
// batch_norm on 5-d inputs in inference and training mode.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "opencl/executor.h"
#include "opencl_op_harness.h"
#include "runtime/npy.h"
#include "tests/unit/nn_fixture_runner.h"

using namespace convoy;
using namespace convoy::opencl;
using namespace convoy::opencl::testing;

namespace {

Arg none() { return constant(IValue()); }
Arg flag(bool b) { return constant(IValue(b)); }
Arg integer(int64_t v) { return constant(IValue(v)); }

// A manifest token as a harness argument: the first tensor is a graph input (a strided view for "Gt:"
// tokens), the other tensors model constants (as weights are), everything else a constant.
Arg fixture_arg(const std::string& token, bool first_tensor) {
  if (token.rfind("Gt:", 0) == 0) {
    const Tensor base = nn_testing::generated_tensor(token.substr(3));
    Shape sizes = base.sizes(), strides = base.strides();
    std::swap(sizes[sizes.size() - 1], sizes[sizes.size() - 2]);
    std::swap(strides[strides.size() - 1], strides[strides.size() - 2]);
    return view(base, sizes, strides);
  }
  IValue v = nn_testing::parse_arg(token);
  if (v.is_tensor() && first_tensor) return input(v.to_tensor());
  return constant(std::move(v));
}

// _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, ...).
std::vector<Arg> conv_args(Arg x, const Tensor& w, const Tensor& b, std::vector<int64_t> stride,
                           std::vector<int64_t> pad, std::vector<int64_t> dil, int64_t groups,
                           bool transposed = false, std::vector<int64_t> outpad = {0, 0, 0}) {
  return {std::move(x),     constant(IValue(w)), b.defined() ? constant(IValue(b)) : none(),
          ints(stride),     ints(pad),           ints(dil),
          flag(transposed), ints(outpad),        integer(groups),
          flag(false),      flag(false),         flag(true),
          flag(true)};
}

// check_op, and the number of GEMMs the OpenCL plan ran.
int check_counting_gemms(const std::string& op, const std::vector<Arg>& args, double rtol = 1e-4,
                         double atol = 1e-5) {
  check_op(op, args, rtol, atol);
  std::vector<IValue> inputs;
  std::unique_ptr<Graph> g = op_graph(overload(op), args, inputs);
  OpenCLExecutor executor(*g, test_device());
  executor.run(inputs);
  std::smatch m;
  const std::string report = executor.plan_report();
  REQUIRE(std::regex_search(report, m, std::regex(R"(\((\d+) kernels, (\d+) GEMMs\))")));
  return std::stoi(m[2]);
}

// Sets CONVOY_NN_LAYOUT for the scope of a test, then unsets it.
struct Layout {
  explicit Layout(const char* layout) { setenv("CONVOY_NN_LAYOUT", layout, 1); }
  ~Layout() { unsetenv("CONVOY_NN_LAYOUT"); }
};

}  // namespace

TEST_CASE("OpenCL runs the 3-d fixture cases as PyTorch does", "[opencl][video]") {
  const std::vector<nn_testing::FixtureCase> cases = nn_testing::load_manifest("manifest_video.txt", "video");
  REQUIRE(cases.size() >= 60);
  for (const nn_testing::FixtureCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      if (!test_device().info().fp64 && c.args[0].find(":f8:") != std::string::npos) return;
      const OpOverload& op = overload(c.op);
      std::vector<Arg> args;
      for (size_t i = 0; i < c.args.size(); ++i) args.push_back(fixture_arg(c.args[i], i == 0));
      // The harness passes exactly the arguments given: the omitted trailing ones take their defaults.
      for (size_t i = args.size(); i < op.schema.arguments.size(); ++i)
        args.push_back(constant(*op.schema.arguments[i].default_value));
      std::vector<IValue> got = run_opencl(op, args);
      REQUIRE(got.size() == c.outputs.size());
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("result " << i << " vs " << c.outputs[i]);
        REQUIRE(got[i].is_tensor());
        const Tensor want = read_npy(nn_testing::fixture_dir("video") + "/" + c.outputs[i]);
        nn_testing::check_result(got[i].to_tensor(), want, c.tolerance);
      }
    }
  }
}

TEST_CASE("OpenCL 3-d convolution: pointwise, im2col and direct paths", "[opencl][video][conv]") {
  const std::string cv = "aten::_convolution";
  const Tensor x = random_tensor({3, 6, 5, 9, 7}, 400);
  SECTION("1x1x1 stride 1: one GEMM per group on the input itself; stride 2 gathers first") {
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({5, 6, 1, 1, 1}, 401),
                                             random_tensor({5}, 402), {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, 1)) >
          0);
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({5, 6, 1, 1, 1}, 403), Tensor(),
                                             {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, 1)) > 0);
  }
  SECTION("im2col + GEMM: 3x3x3, asymmetric kernels, stride, padding, dilation, groups 2") {
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({7, 6, 3, 3, 3}, 404),
                                             random_tensor({7}, 405), {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1)) >
          0);
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({4, 6, 3, 1, 2}, 406), Tensor(),
                                             {2, 1, 3}, {1, 0, 1}, {1, 1, 2}, 1)) > 0);
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({3, 6, 2, 3, 3}, 407),
                                             random_tensor({3}, 408), {1, 1, 1}, {2, 1, 2}, {2, 3, 1}, 1)) >
          0);
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({8, 3, 3, 3, 3}, 409),
                                             random_tensor({8}, 410), {1, 1, 2}, {1, 1, 1}, {1, 1, 1}, 2)) >
          0);
    // r(2+1)d's factorised pair.
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({9, 6, 1, 3, 3}, 411), Tensor(),
                                             {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, 1)) > 0);
    CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({4, 6, 3, 1, 1}, 412), Tensor(),
                                             {2, 1, 1}, {1, 0, 0}, {1, 1, 1}, 1)) > 0);
    // A channels-last-like strided input: dims 1 and 4 of the base exchanged.
    check_op(cv,
             conv_args(transposed(Shape{1, 6, 4, 5, 7}, 1, 4, 413), random_tensor({3, 6, 3, 3, 3}, 414),
                       random_tensor({3}, 415), {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1),
             1e-4, 1e-5);
  }
  SECTION("direct kernel: depthwise, two channels per group, transposed, float64; both layouts") {
    for (const char* layout : {"rows", "elements"}) {
      Layout scoped(layout);
      INFO("CONVOY_NN_LAYOUT=" << layout);
      CHECK(check_counting_gemms(
                cv, conv_args(input(x), random_tensor({6, 1, 3, 3, 3}, 420), random_tensor({6}, 421),
                              {1, 2, 2}, {1, 1, 1}, {1, 1, 1}, 6)) == 0);
      CHECK(check_counting_gemms(cv, conv_args(input(x), random_tensor({12, 1, 3, 1, 3}, 422), Tensor(),
                                               {2, 1, 1}, {1, 0, 1}, {1, 1, 2}, 6)) == 0);
      CHECK(check_counting_gemms(
                cv, conv_args(input(x), random_tensor({3, 2, 3, 3, 3}, 423), random_tensor({3}, 424),
                              {1, 1, 1}, {1, 1, 1}, {2, 1, 1}, 3)) == 0);
      // Rows wide enough for conv_direct_rows' vector loop.
      CHECK(check_counting_gemms(cv, conv_args(input(random_tensor({1, 4, 3, 5, 45}, 425)),
                                               random_tensor({4, 1, 3, 3, 3}, 426), Tensor(), {1, 1, 1},
                                               {1, 1, 1}, {1, 1, 1}, 4)) == 0);
      check_op(cv,
               conv_args(input(random_tensor({1, 4, 3, 4, 3}, 427)), random_tensor({4, 3, 3, 3, 3}, 428),
                         random_tensor({3}, 429), {2, 2, 1}, {1, 1, 1}, {1, 1, 1}, 1, true, {1, 0, 0}),
               1e-4, 1e-5);
      if (test_device().info().fp64)
        CHECK(check_counting_gemms(
                  cv,
                  conv_args(input(random_tensor({1, 3, 4, 5, 6}, 430, DType::kFloat64)),
                            random_tensor({4, 3, 3, 3, 3}, 431, DType::kFloat64),
                            random_tensor({4}, 432, DType::kFloat64), {2, 1, 2}, {1, 1, 1}, {1, 1, 1}, 1),
                  1e-12, 1e-12) == 0);
    }
  }
  SECTION("float16 computes in float32") {
    check_op(cv,
             conv_args(input(random_tensor({1, 3, 4, 6, 5}, 440, DType::kFloat16)),
                       random_tensor({4, 3, 3, 3, 3}, 441, DType::kFloat16),
                       random_tensor({4}, 442, DType::kFloat16), {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1),
             2e-3, 2e-3);
  }
  SECTION("conv3d and convolution overloads, unbatched input") {
    check_op("aten::conv3d",
             {input(random_tensor({3, 4, 5, 6}, 450)), constant(IValue(random_tensor({2, 3, 3, 3, 3}, 451))),
              none(), ints({1, 2, 1}), ints({1, 1, 0}), ints({1, 1, 1}), integer(1)},
             1e-4, 1e-5);
    check_op("aten::convolution",
             {input(x), constant(IValue(random_tensor({4, 3, 3, 3, 3}, 452))), none(), ints({1, 1, 1}),
              ints({1, 1, 1}), ints({1, 1, 1}), flag(false), ints({0, 0, 0}), integer(2)},
             1e-4, 1e-5);
  }
}

TEST_CASE("OpenCL 3-d max and average pooling, one output or one row per work-item",
          "[opencl][video][pool]") {
  // Rows wide enough for pool_rows' eight-wide vector interior, its scalar tail and its borders.
  Tensor x = random_tensor({2, 3, 5, 7, 45}, 460);
  x.set_double((1 * 7 + 3) * 45 + 20, std::nan(""));  // inside a vector of the interior
  x.set_double(45 * 7 * 5 + 1, std::nan(""));         // on a border of the second plane
  const std::string mp = "aten::max_pool3d", ap = "aten::avg_pool3d";
  for (const char* layout : {"rows", "elements"}) {
    Layout scoped(layout);
    INFO("CONVOY_NN_LAYOUT=" << layout);
    for (int64_t stride : {1, 2}) {
      for (bool ceil : {false, true}) {
        INFO("stride " << stride << " ceil " << ceil);
        check_op(
            mp,
            {input(x), ints({3, 3, 3}), ints({2, 2, stride}), ints({1, 1, 1}), ints({1, 1, 1}), flag(ceil)},
            0, 0);
        check_op(
            mp,
            {input(x), ints({2, 2, 3}), ints({1, 2, stride}), ints({1, 1, 1}), ints({2, 3, 2}), flag(ceil)},
            0, 0);
        for (bool include_pad : {false, true})
          check_op(ap, {input(x), ints({3, 2, 3}), ints({2, 1, stride}), ints({1, 1, 1}), flag(ceil),
                        flag(include_pad), none()});
      }
    }
    check_op(ap, {input(x), ints({2, 3, 2}), ints({1, 2, 1}), ints({1, 1, 1}), flag(true), flag(true),
                  integer(7)});
    check_op(mp, {input(x), ints({1, 3, 3}), ints({1, 2, 2}), ints({0, 1, 1}), ints({1, 1, 1}), flag(false)},
             0, 0);
    // Strided rows (no vector loads), an unbatched input, float16.
    check_op(mp,
             {transposed(Shape{1, 3, 4, 40, 9}, 3, 4, 461), ints({3, 3, 3}), ints({1, 1, 1}), ints({1, 1, 1}),
              ints({1, 1, 1}), flag(false)},
             0, 0);
    check_op(ap, {transposed(Shape{1, 3, 9, 5, 6}, 2, 4, 462), ints({3, 2, 3}), ints({2, 2, 2}),
                  ints({1, 1, 1}), flag(true), flag(false), none()});
    check_op(ap, {input(random_tensor({3, 5, 6, 20}, 463)), ints({2, 2, 2}), ints({2, 2, 1}), ints({1, 0, 1}),
                  flag(true), flag(true), none()});
    check_op(mp,
             {input(random_tensor({1, 2, 3, 4, 30}, 464, DType::kFloat16)), ints({2, 2, 3}), ints({1, 1, 2}),
              ints({0, 1, 1}), ints({1, 1, 1}), flag(false)},
             0, 0);
    if (test_device().info().fp64)
      check_op(ap,
               {input(random_tensor({1, 2, 5, 5, 20}, 465, DType::kFloat64)), ints({3, 3, 3}),
                ints({2, 2, 1}), ints({1, 1, 1}), flag(true), flag(false), none()},
               1e-12, 1e-12);
  }
}

TEST_CASE("OpenCL 3-d max pools with indices and adaptive pools", "[opencl][video][pool]") {
  Tensor x = random_tensor({2, 3, 5, 7, 9}, 470);
  x.set_double(17, std::nan(""));
  x.set_double(400, std::nan(""));
  for (bool ceil : {false, true})
    check_op("aten::max_pool3d_with_indices",
             {input(x), ints({3, 3, 2}), ints({2, 2, 2}), ints({1, 1, 1}), ints({1, 2, 1}), flag(ceil)}, 0,
             0);
  check_op("aten::max_pool3d_with_indices",
           {transposed(Shape{1, 3, 5, 6, 7}, 2, 4, 471), ints({2, 2, 2}), ints({}), ints({0, 0, 0}),
            ints({1, 1, 1}), flag(true)},
           0, 0);
  const Tensor y = random_tensor({2, 3, 5, 7, 9}, 472);
  for (const std::vector<int64_t>& size :
       {std::vector<int64_t>{2, 3, 4}, {1, 1, 1}, {3, 5, 2}, {5, 7, 9}, {7, 8, 11}}) {
    INFO("output_size " << shape_str(size));
    check_op("aten::adaptive_avg_pool3d", {input(y), ints(size)});
    check_op("aten::adaptive_max_pool3d", {input(y), ints(size)}, 0, 0);
  }
  check_op("aten::adaptive_max_pool3d", {input(x), ints({2, 3, 4})}, 0, 0);
  check_op("aten::adaptive_avg_pool3d", {transposed(Shape{1, 3, 5, 6, 7}, 1, 3, 473), ints({2, 4, 3})});
  check_op("aten::adaptive_avg_pool3d", {input(random_tensor({3, 5, 6, 7}, 474)), ints({1, 2, 3})});
}

TEST_CASE("OpenCL batch_norm on 5-d inputs", "[opencl][video][norm]") {
  const Tensor x = random_tensor({3, 5, 3, 7, 6}, 480);
  auto param = [](uint32_t seed, double lo, double hi) {
    return constant(IValue(random_tensor({5}, seed, DType::kFloat32, lo, hi)));
  };
  for (bool training : {false, true}) {
    INFO("training " << training);
    check_op("aten::batch_norm",
             {input(x), param(481, 0.5, 1.5), param(482, -1, 1), param(483, -1, 1), param(484, 0.5, 2),
              flag(training), constant(IValue(0.1)), constant(IValue(1e-5)), flag(true)});
  }
  check_op("aten::batch_norm",
           {transposed(Shape{2, 5, 4, 3, 6}, 2, 4, 485), none(), none(), param(486, -1, 1),
            param(487, 0.5, 2), flag(false), constant(IValue(0.1)), constant(IValue(1e-3)), flag(true)});
}
