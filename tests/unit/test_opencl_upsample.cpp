// The OpenCL interpolation ops (opencl/ops/upsample.cpp, kernels/upsample.cl) against the registry's
// reference kernels on awkward shapes (tests/unit/opencl_op_harness.h: a one-node graph through
// OpenCLExecutor, compared elementwise): 3 channels, odd sizes, non-integer and downscaling factors,
// align_corners both ways, strided inputs, float16/float64 and integer nearest; then the traced
// F.interpolate model of tests/fixtures/ops/upsample against PyTorch's outputs on the OpenCL executor.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "opencl/executor.h"
#include "opencl_op_harness.h"
#include "runtime/model.h"
#include "runtime/npy.h"

using namespace convoy;
using namespace convoy::opencl;
using namespace convoy::opencl::testing;

namespace {

IValue floats(std::vector<double> v) {
  IValueList items;
  for (double x : v) items.emplace_back(x);
  return IValue::list(std::move(items));
}
Arg none() { return constant(IValue()); }
Arg flag(bool b) { return constant(IValue(b)); }

// check_op with the trailing optional scales the call leaves out passed as None: the harness gives the
// kernels exactly the arguments it is handed, with no schema defaults filled in.
void check(const std::string& op, std::vector<Arg> args, double rtol = 1e-5, double atol = 1e-6) {
  const size_t n = overload(op).schema.arguments.size();
  REQUIRE(args.size() <= n);
  while (args.size() < n) args.push_back(none());
  check_op(op, args, rtol, atol);
}

}  // namespace

TEST_CASE("OpenCL bilinear and bicubic interpolation: sizes, factors, align_corners", "[opencl][upsample]") {
  const Tensor x = random_tensor({2, 3, 5, 7}, 300);
  for (const char* op : {"aten::upsample_bilinear2d", "aten::upsample_bicubic2d"}) {
    for (bool ac : {false, true}) {
      INFO(op << " align_corners=" << ac);
      for (const std::vector<int64_t>& size : {std::vector<int64_t>{11, 13}, {4, 5}, {1, 1}, {5, 7}, {9, 3}})
        check(op, {input(x), ints(size), flag(ac)});
      check(op, {input(x), ints({8, 11}), flag(ac), constant(IValue(1.7)), constant(IValue(1.6))});
      check(std::string(op) + ".vec", {input(x), none(), flag(ac), constant(floats({1.7, 1.7}))});
      check(std::string(op) + ".vec", {input(x), none(), flag(ac), constant(floats({0.6, 0.45}))});
      check(std::string(op) + ".vec", {input(x), ints({6, 10}), flag(ac), none()});
      check(op, {transposed(Shape{1, 3, 6, 5}, 2, 3, 301), ints({11, 13}), flag(ac)});
      // Channels-last, and every other column of a wider input from element 1.
      check(op, {view(random_tensor({2, 5, 7, 3}, 304), {2, 3, 5, 7}, {105, 1, 21, 3}), ints({11, 13}),
                 flag(ac)});
      check(op, {view(random_tensor({1, 3, 5, 15}, 305), {1, 3, 5, 7}, {225, 75, 15, 2}, 1), ints({4, 12}),
                 flag(ac)});
    }
  }
  check("aten::upsample_bilinear2d",
        {input(random_tensor({1, 3, 5, 7}, 302, DType::kFloat16)), ints({11, 13}), flag(false)}, 1e-3, 1e-3);
  if (test_device().info().fp64)
    check("aten::upsample_bilinear2d.vec",
          {input(random_tensor({1, 3, 5, 7}, 303, DType::kFloat64)), none(), flag(true),
           constant(floats({1.7, 2.3}))},
          1e-12, 1e-12);
}

TEST_CASE("OpenCL nearest interpolation gathers exactly, any dtype", "[opencl][upsample]") {
  const Tensor x = random_tensor({2, 3, 5, 7}, 310);
  for (const char* op : {"aten::upsample_nearest2d", "aten::_upsample_nearest_exact2d"}) {
    INFO(op);
    for (const std::vector<int64_t>& size : {std::vector<int64_t>{11, 13}, {10, 14}, {4, 5}, {1, 1}})
      check(op, {input(x), ints(size)}, 0, 0);
    check(op, {input(x), ints({8, 11}), constant(IValue(1.7)), constant(IValue(1.7))}, 0, 0);
    check(std::string(op) + ".vec", {input(x), none(), constant(floats({1.7, 0.6}))}, 0, 0);
    check(op, {transposed(Shape{1, 3, 6, 5}, 2, 3, 311), ints({11, 13})}, 0, 0);
    check(op, {view(random_tensor({2, 5, 7, 3}, 314), {2, 3, 5, 7}, {105, 1, 21, 3}), ints({11, 13})}, 0, 0);
    check(op, {input(random_tensor({1, 2, 3, 4}, 312, DType::kInt64)), ints({7, 5})}, 0, 0);
    check(op, {input(random_tensor({1, 2, 3, 4}, 313, DType::kFloat16)), ints({7, 5})}, 0, 0);
    check(op, {input(random_tensor({1, 2, 3, 4}, 315, DType::kUInt8, 0, 200)), ints({7, 5})}, 0, 0);
    check(op, {input(random_tensor({1, 2, 3, 4}, 316, DType::kBool)), ints({7, 5})}, 0, 0);
    check(op, {input(random_tensor({1, 2, 3, 4}, 317, DType::kBFloat16)), ints({7, 5})}, 0, 0);
  }
}

TEST_CASE("OpenCL 1-d and 3-d interpolation", "[opencl][upsample]") {
  const Tensor x1 = random_tensor({2, 3, 7}, 320), x3 = random_tensor({1, 3, 3, 5, 4}, 321);
  for (bool ac : {false, true}) {
    check("aten::upsample_linear1d", {input(x1), ints({13}), flag(ac)});
    check("aten::upsample_linear1d.vec", {input(x1), none(), flag(ac), constant(floats({0.6}))});
    check("aten::upsample_trilinear3d", {input(x3), ints({5, 7, 9}), flag(ac)});
    check("aten::upsample_trilinear3d.vec", {input(x3), none(), flag(ac), constant(floats({1.7, 0.6, 2.0}))});
  }
  check("aten::upsample_linear1d", {transposed(Shape{2, 3, 7}, 1, 2, 322), ints({4}), flag(false)});
  check("aten::upsample_trilinear3d",
        {transposed(Shape{1, 3, 3, 5, 4}, 2, 4, 323), ints({2, 9, 7}), flag(false)});
  check("aten::upsample_nearest1d", {input(x1), ints({13})}, 0, 0);
  check("aten::upsample_nearest3d", {transposed(Shape{1, 3, 3, 5, 4}, 1, 3, 324), ints({4, 3, 9})}, 0, 0);
  check("aten::_upsample_nearest_exact1d.vec", {input(x1), none(), constant(floats({1.7}))}, 0, 0);
  check("aten::upsample_nearest3d", {input(x3), ints({5, 7, 9})}, 0, 0);
  check("aten::_upsample_nearest_exact3d.vec", {input(x3), none(), constant(floats({1.7, 0.6, 2.0}))}, 0, 0);
}

TEST_CASE("OpenCL runs the traced F.interpolate model as PyTorch does", "[opencl][upsample][model]") {
  const std::string dir = std::string(CONVOY_SOURCE_DIR) + "/tests/fixtures/ops/upsample/";
  Model model = load_model(dir + "interpolate.pt", test_registry());
  OpenCLExecutor executor(*model.graph, test_device());
  std::vector<IValue> outs = executor.run({IValue(read_npy(dir + "interpolate_input_0.npy"))});
  REQUIRE(outs.size() == 10);
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor want = read_npy(dir + "interpolate_expected_" + std::to_string(i) + ".npy");
    check_close(outs[i], IValue(want), 1e-4, 1e-5, "output " + std::to_string(i));
  }
}
