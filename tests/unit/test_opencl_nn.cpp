// The OpenCL neural-network family (opencl/ops/conv.cpp, pooling.cpp, normalization.cpp, nn.cpp)
// against the registry's reference kernels: each case builds a one-node graph (inputs as graph inputs,
// weights as model constants, optionally a transpose view in front so the op sees a strided device
// tensor), runs it through OpenCLExecutor and compares with the reference kernel on the same host
// values by relative L2 error (1e-5 for float32; integer outputs exactly; NaN where the reference has
// NaN). Shapes are awkward on purpose: 13 channels, odd sizes with stride 2, groups 3, depthwise,
// dilation 2, ceil_mode, adaptive pools to sizes that do not divide the input, batch 1, unbatched
// inputs, rows wide enough for the row kernels' vector loops. Some cases also check which convolution
// path ran, from the plan's count of kernels and GEMMs; the direct convolution and pooling kernels run
// in both layouts (CONVOY_NN_LAYOUT=rows and =elements) whatever the device. The conv → batch_norm →
// activation fusion is checked as a graph rewrite and against the unfused graph on the reference
// executor.
//
// Kernel builds are the slow part on PoCL; the program cache lives under the build folder
// (CONVOY_CACHE_DIR) so reruns load binaries.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/executor.h"
#include "opencl/ops/nn.h"
#include "opencl_op_harness.h"
#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/ir.h"
#include "runtime/ops/registry.h"

using namespace convoy;
using namespace convoy::opencl;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The shared test device and registry (opencl_op_harness.h).
opencl::Device& device() { return testing::test_device(); }
const OpRegistry& registry() { return testing::test_registry(); }

Tensor rand_tensor(const Shape& shape, uint32_t seed, DType dtype = DType::kFloat32, double scale = 1.0,
                   double shift = 0.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = dist(rng) * scale + shift;
  return Tensor::from_doubles(shape, dtype, v);
}

Tensor transposed_view(const Tensor& t, int64_t d0, int64_t d1) {
  Shape sizes = t.sizes(), strides = t.strides();
  std::swap(sizes[static_cast<size_t>(d0)], sizes[static_cast<size_t>(d1)]);
  std::swap(strides[static_cast<size_t>(d0)], strides[static_cast<size_t>(d1)]);
  return t.as_strided(sizes, strides, t.offset());
}

// One argument of the op under test.
struct Arg {
  enum class Kind { kInput, kConstant, kTransposedInput };
  Kind kind = Kind::kConstant;
  IValue value;  // kTransposedInput: the contiguous base; the op sees it with d0 and d1 swapped
  int64_t d0 = 0, d1 = 0;
};
Arg input(Tensor t) { return {Arg::Kind::kInput, IValue(std::move(t))}; }
Arg transposed_input(Tensor base, int64_t d0, int64_t d1) {
  return {Arg::Kind::kTransposedInput, IValue(std::move(base)), d0, d1};
}
Arg constant(IValue v) { return {Arg::Kind::kConstant, std::move(v)}; }
Arg ints(std::vector<int64_t> v) { return constant(IValue::int_list(v)); }
Arg none() { return constant(IValue()); }

struct Outcome {
  std::vector<IValue> opencl;
  IValueList reference;
  int kernels = 0, gemms = 0;  // instructions of the compiled plan
};

Node* op_node(Graph& g, const OpOverload& op, const std::vector<Value*>& inputs) {
  Node* n =
      g.top()->append(op.schema.name, inputs, op.schema.returns.size(), SourceRange{"test_opencl_nn.py", 1});
  n->op = &op;
  for (size_t i = 0; i < n->outputs.size(); ++i) n->outputs[i]->type = op.schema.returns[i].type;
  return n;
}

void count_plan(const OpenCLExecutor& ex, Outcome& out) {
  std::smatch m;
  const std::string report = ex.plan_report();
  REQUIRE(std::regex_search(report, m, std::regex(R"(\((\d+) kernels, (\d+) GEMMs\))")));
  out.kernels = std::stoi(m[1]);
  out.gemms = std::stoi(m[2]);
}

// Runs `name.overload` on OpenCL through a one-node graph and with its reference kernel; arguments not
// given take their schema defaults.
Outcome run_op(const std::string& name, const std::string& overload, const std::vector<Arg>& args) {
  const OpOverload* op = registry().find(name, overload);
  REQUIRE(op != nullptr);
  Graph g;
  std::vector<IValue> inputs;
  std::vector<Value*> node_inputs;
  IValueList ref_args;
  const auto& params = op->schema.arguments;
  REQUIRE(args.size() <= params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    if (i >= args.size()) {
      REQUIRE(params[i].default_value.has_value());
      node_inputs.push_back(g.constant(*params[i].default_value));
      ref_args.push_back(*params[i].default_value);
      continue;
    }
    const Arg& a = args[i];
    switch (a.kind) {
      case Arg::Kind::kConstant:
        node_inputs.push_back(g.constant(a.value));
        ref_args.push_back(a.value);
        break;
      case Arg::Kind::kInput:
        node_inputs.push_back(g.top()->add_param(type_of(a.value), "x" + std::to_string(i)));
        inputs.push_back(a.value);
        ref_args.push_back(a.value);
        break;
      case Arg::Kind::kTransposedInput: {
        Value* base = g.top()->add_param(type_of(a.value), "x" + std::to_string(i));
        inputs.push_back(a.value);
        const OpOverload* t = registry().find("aten::transpose", "int");
        REQUIRE(t != nullptr);
        Node* view = op_node(g, *t, {base, g.constant(IValue(a.d0)), g.constant(IValue(a.d1))});
        node_inputs.push_back(view->outputs[0]);
        ref_args.push_back(IValue(transposed_view(a.value.to_tensor(), a.d0, a.d1)));
        break;
      }
    }
  }
  Node* n = op_node(g, *op, node_inputs);
  g.top()->returns = n->outputs;
  Outcome out;
  OpenCLExecutor ex(g, device());
  out.opencl = ex.run(inputs);
  count_plan(ex, out);
  out.reference = op->kernel(ref_args);
  return out;
}

double default_tolerance(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return 1e-10;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 4e-3;
    default:
      return 1e-5;
  }
}

void expect_close(const IValue& got, const IValue& want, const std::string& what, double tol = -1) {
  INFO(what);
  if (want.is_tuple() || want.is_list()) {
    REQUIRE((got.is_tuple() || got.is_list()));
    const IValueList &g = got.to_list_or_tuple(), &w = want.to_list_or_tuple();
    REQUIRE(g.size() == w.size());
    for (size_t i = 0; i < g.size(); ++i)
      expect_close(g[i], w[i], what + " [" + std::to_string(i) + "]", tol);
    return;
  }
  REQUIRE(got.is_tensor());
  const Tensor& a = got.to_tensor();
  const Tensor& b = want.to_tensor();
  INFO("opencl " << a.describe() << " reference " << b.describe());
  REQUIRE(a.dtype() == b.dtype());
  REQUIRE(a.sizes() == b.sizes());
  if (!is_floating(b.dtype())) {
    CHECK(a.to_ints() == b.to_ints());
    return;
  }
  if (tol < 0) tol = default_tolerance(b.dtype());
  const std::vector<double> x = a.to_doubles(), y = b.to_doubles();
  double diff = 0, norm = 0;
  size_t nan_mismatch = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) {
      nan_mismatch += std::isnan(x[i]) != std::isnan(y[i]);
      continue;
    }
    diff += (x[i] - y[i]) * (x[i] - y[i]);
    norm += y[i] * y[i];
  }
  CHECK(nan_mismatch == 0);
  const double rel = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
  INFO("relative L2 error " << rel << " (tolerance " << tol << ")");
  CHECK(rel <= tol);
}

void expect_matches(const Outcome& out, const std::string& what, double tol = -1) {
  REQUIRE(out.opencl.size() == out.reference.size());
  for (size_t i = 0; i < out.opencl.size(); ++i) expect_close(out.opencl[i], out.reference[i], what, tol);
}

// conv2d(input, weight, bias, stride, padding, dilation, groups).
Outcome conv2d(Arg x, const Shape& weight, bool bias, int64_t stride, int64_t padding, int64_t dilation,
               int64_t groups, uint32_t seed, DType dtype = DType::kFloat32) {
  return run_op(
      "aten::conv2d", "",
      {std::move(x), constant(IValue(rand_tensor(weight, seed, dtype, 0.5))),
       bias ? constant(IValue(rand_tensor({weight[0]}, seed + 1, dtype))) : none(), ints({stride, stride}),
       ints({padding, padding}), ints({dilation, dilation}), constant(IValue(groups))});
}

}  // namespace

TEST_CASE("OpenCL conv2d: im2col + GEMM, 1x1 as a plain GEMM, and direct kernels", "[opencl][nn][conv]") {
  SECTION("3x3 padded, 13 channels, odd sizes: im2col + one GEMM with the bias in its epilogue") {
    Outcome o = conv2d(input(rand_tensor({2, 13, 11, 9}, 1)), {13, 13, 3, 3}, true, 1, 1, 1, 1, 10);
    expect_matches(o, "conv2d 3x3 13ch");
    CHECK(o.gemms == 1);
    CHECK(o.kernels == 1);  // im2col
  }
  SECTION("1x1 stride 1: a GEMM straight on the input, no im2col") {
    Outcome o = conv2d(input(rand_tensor({2, 13, 7, 5}, 2)), {17, 13, 1, 1}, true, 1, 0, 1, 1, 11);
    expect_matches(o, "conv2d 1x1");
    CHECK(o.gemms == 1);
    CHECK(o.kernels == 0);
  }
  SECTION("1x1 stride 2 subsamples through im2col") {
    expect_matches(conv2d(input(rand_tensor({1, 13, 9, 7}, 3)), {16, 13, 1, 1}, false, 2, 0, 1, 1, 12),
                   "conv2d 1x1 stride 2");
  }
  SECTION("7x7 stride 2 padding 3 on odd sizes, batch 1") {
    Outcome o = conv2d(input(rand_tensor({1, 3, 15, 13}, 4)), {16, 3, 7, 7}, true, 2, 3, 1, 1, 13);
    expect_matches(o, "conv2d 7x7 s2");
    CHECK(o.gemms == 1);
  }
  SECTION("3x3 stride 2, dilation 2, padding 2") {
    expect_matches(conv2d(input(rand_tensor({2, 13, 11, 9}, 5)), {13, 13, 3, 3}, true, 2, 2, 2, 1, 14),
                   "conv2d dilation 2");
  }
  SECTION("groups=3 through GEMMs, one per group with its own slice of the bias") {
    Outcome o = conv2d(input(rand_tensor({2, 27, 9, 7}, 6)), {27, 9, 3, 3}, true, 1, 1, 1, 3, 15);
    expect_matches(o, "conv2d groups 3");
    CHECK(o.gemms == 3);
  }
  SECTION("groups=3 with few channels per group: direct kernel") {
    Outcome o = conv2d(input(rand_tensor({2, 6, 9, 7}, 7)), {9, 2, 3, 3}, true, 2, 1, 1, 3, 16);
    expect_matches(o, "conv2d groups 3 small");
    CHECK(o.gemms == 0);
  }
  SECTION("depthwise 3x3 stride 2 on 13 channels: direct kernel") {
    Outcome o = conv2d(input(rand_tensor({2, 13, 11, 9}, 8)), {13, 1, 3, 3}, true, 2, 1, 1, 13, 17);
    expect_matches(o, "depthwise");
    CHECK(o.gemms == 0);
    CHECK(o.kernels == 1);
  }
  SECTION("depthwise with a channel multiplier and dilation") {
    expect_matches(conv2d(input(rand_tensor({1, 13, 10, 9}, 9)), {26, 1, 3, 3}, false, 1, 2, 2, 13, 18),
                   "depthwise x2");
  }
  SECTION("strided (transposed) input: im2col reads through the strides") {
    Outcome o =
        conv2d(transposed_input(rand_tensor({2, 13, 9, 11}, 19), 2, 3), {13, 13, 3, 3}, true, 1, 1, 1, 1, 20);
    expect_matches(o, "conv2d transposed input");
    CHECK(o.kernels == 1);  // im2col only: no copy of the input
  }
  SECTION("strided input of a 1x1 convolution is made dense first") {
    expect_matches(
        conv2d(transposed_input(rand_tensor({2, 13, 9, 11}, 21), 2, 3), {12, 13, 1, 1}, true, 1, 0, 1, 1, 22),
        "conv2d 1x1 transposed input");
  }
  SECTION("channels-last view of the input (N, H, W, C) permuted") {
    // (N, H, C, W) with C and W swapped: channel planes are not dense.
    expect_matches(
        conv2d(transposed_input(rand_tensor({2, 7, 13, 8}, 23), 1, 2), {9, 13, 3, 3}, false, 2, 1, 1, 1, 24),
        "conv2d permuted input");
  }
  SECTION("unbatched (C, H, W) input") {
    expect_matches(conv2d(input(rand_tensor({13, 9, 8}, 25)), {16, 13, 3, 3}, true, 1, 1, 1, 1, 26),
                   "unbatched");
    expect_matches(conv2d(input(rand_tensor({13, 9, 8}, 27)), {16, 13, 1, 1}, true, 1, 0, 1, 1, 28),
                   "unbatched 1x1");
  }
  SECTION("a batch whose column matrix exceeds the im2col budget runs in chunks of samples") {
    // 32 channels · 9 taps · 128·128 positions · 4 bytes = 18.9 MB per sample: one sample per chunk.
    Outcome o = conv2d(input(rand_tensor({2, 32, 128, 128}, 29)), {8, 32, 3, 3}, true, 1, 1, 1, 1, 30);
    expect_matches(o, "conv2d chunked");
    CHECK(o.gemms == 2);
    CHECK(o.kernels == 2);
  }
}

TEST_CASE("OpenCL direct convolution kernels, one output or one row per work-item", "[opencl][nn][conv]") {
  // Rows wide enough for conv_direct_rows' eight-wide vector interior, its scalar tail and its borders.
  for (const char* layout : {"rows", "elements"}) {
    setenv("CONVOY_NN_LAYOUT", layout, 1);
    INFO("CONVOY_NN_LAYOUT=" << layout);
    const Tensor x = rand_tensor({2, 12, 9, 37}, 140);
    for (int64_t stride : {1, 2}) {
      Outcome o = conv2d(input(x), {12, 1, 3, 3}, true, stride, 1, 1, 12, 141);
      expect_matches(o, str_cat("depthwise 3x3 stride ", stride));
      CHECK(o.gemms == 0);
    }
    expect_matches(conv2d(input(x), {24, 1, 5, 5}, false, 1, 4, 2, 12, 142), "depthwise x2 5x5 dilation 2");
    expect_matches(conv2d(input(x), {18, 2, 3, 3}, true, 2, 0, 1, 6, 143),
                   "groups 6, 2 channels each, unpadded");
    expect_matches(conv2d(transposed_input(rand_tensor({1, 12, 40, 9}, 144), 2, 3), {12, 1, 3, 3}, true, 1, 1,
                          1, 12, 145),
                   "depthwise on a transposed input (no vector loads)");
    expect_matches(conv2d(input(rand_tensor({1, 12, 5, 40}, 146, DType::kFloat16)), {12, 1, 3, 3}, true, 2, 1,
                          1, 12, 147, DType::kFloat16),
                   "depthwise float16");
    expect_matches(conv2d(input(rand_tensor({1, 6, 5, 3}, 148)), {6, 1, 3, 7}, true, 1, 3, 1, 6, 149),
                   "a window wider than the input: no interior");
    if (device().info().fp64)
      expect_matches(conv2d(input(rand_tensor({1, 6, 7, 33}, 150, DType::kFloat64)), {8, 3, 3, 3}, true, 1, 1,
                            1, 2, 151, DType::kFloat64),
                     "float64");
  }
  unsetenv("CONVOY_NN_LAYOUT");
}

TEST_CASE("OpenCL convolution overloads: conv1d, conv3d, string padding, _convolution, transposed",
          "[opencl][nn][conv]") {
  const Tensor x1 = rand_tensor({2, 13, 17}, 40);
  const Tensor w1 = rand_tensor({11, 13, 5}, 41, DType::kFloat32, 0.5);
  const Tensor b1 = rand_tensor({11}, 42);
  SECTION("conv1d stride 2 dilation 2") {
    expect_matches(run_op("aten::conv1d", "",
                          {input(x1), constant(IValue(w1)), constant(IValue(b1)), ints({2}), ints({3}),
                           ints({2}), constant(IValue(int64_t{1}))}),
                   "conv1d");
  }
  SECTION("conv1d padding='same' with an even kernel pads asymmetrically") {
    expect_matches(run_op("aten::conv1d", "padding",
                          {input(x1), constant(IValue(rand_tensor({9, 13, 4}, 43))), none(), ints({1}),
                           constant(IValue("same")), ints({2}), constant(IValue(int64_t{1}))}),
                   "conv1d same");
  }
  SECTION("conv2d padding='same' and 'valid'") {
    const Tensor x = rand_tensor({1, 13, 10, 7}, 44);
    for (const char* mode : {"same", "valid"})
      expect_matches(run_op("aten::conv2d", "padding",
                            {input(x), constant(IValue(rand_tensor({8, 13, 4, 3}, 45))), none(), ints({1, 1}),
                             constant(IValue(mode)), ints({1, 2}), constant(IValue(int64_t{1}))}),
                     std::string("conv2d padding=") + mode);
  }
  SECTION("conv3d") {
    expect_matches(
        run_op("aten::conv3d", "",
               {input(rand_tensor({2, 5, 6, 7, 5}, 46)), constant(IValue(rand_tensor({13, 5, 3, 2, 3}, 47))),
                constant(IValue(rand_tensor({13}, 48))), ints({1, 2, 1}), ints({1, 0, 1}), ints({1, 1, 2}),
                constant(IValue(int64_t{1}))}),
        "conv3d");
  }
  SECTION("_convolution (13 and 12 arguments) and convolution, forward and transposed") {
    const Tensor x = rand_tensor({2, 12, 9, 8}, 49);
    const Tensor w = rand_tensor({12, 4, 3, 3}, 50, DType::kFloat32, 0.5);
    const Tensor wt = rand_tensor({12, 5, 3, 2}, 51, DType::kFloat32, 0.5);  // transposed: [C_in, C_out/g, k]
    for (bool transposed : {false, true}) {
      for (const char* overload : {"", "deprecated"}) {
        std::vector<Arg> args = {input(x),
                                 constant(IValue(transposed ? wt : w)),
                                 constant(IValue(rand_tensor({transposed ? 10 : 12}, 52))),
                                 ints({2, 1}),
                                 ints({1, 1}),
                                 ints({1, 2}),
                                 constant(IValue(transposed)),
                                 ints({transposed ? 1 : 0, 0}),
                                 constant(IValue(int64_t{transposed ? 2 : 3})),
                                 constant(IValue(false)),
                                 constant(IValue(false)),
                                 constant(IValue(true))};
        if (*overload == '\0') args.push_back(constant(IValue(false)));
        expect_matches(run_op("aten::_convolution", overload, args),
                       std::string("_convolution ") + overload + (transposed ? " transposed" : ""));
      }
    }
    expect_matches(run_op("aten::convolution", "",
                          {input(x), constant(IValue(w)), none(), ints({1, 1}), ints({0, 0}), ints({1, 1}),
                           constant(IValue(false)), ints({0, 0}), constant(IValue(int64_t{3}))}),
                   "convolution");
  }
  SECTION("conv_transpose1d and conv_transpose2d with stride, output_padding, groups and dilation") {
    expect_matches(run_op("aten::conv_transpose1d", "",
                          {input(x1), constant(IValue(rand_tensor({13, 4, 3}, 53))),
                           constant(IValue(rand_tensor({4}, 54))), ints({3}), ints({1}), ints({2}),
                           constant(IValue(int64_t{1})), ints({2})}),
                   "conv_transpose1d");
    expect_matches(
        run_op("aten::conv_transpose2d", "input",
               {transposed_input(rand_tensor({1, 6, 9, 7}, 55), 2, 3),
                constant(IValue(rand_tensor({6, 4, 3, 3}, 56))), constant(IValue(rand_tensor({8}, 57))),
                ints({2, 2}), ints({1, 0}), ints({1, 0}), constant(IValue(int64_t{2})), ints({1, 1})}),
        "conv_transpose2d");
  }
  SECTION("input and weight dtypes must agree") {
    CHECK_THROWS_WITH(run_op("aten::conv2d", "",
                             {input(rand_tensor({1, 3, 5, 5}, 58)),
                              constant(IValue(rand_tensor({4, 3, 3, 3}, 59, DType::kFloat64))), none(),
                              ints({1, 1}), ints({0, 0}), ints({1, 1}), constant(IValue(int64_t{1}))}),
                      Contains("same dtype"));
  }
}

TEST_CASE("OpenCL convolution in float16 and float64", "[opencl][nn][conv]") {
  SECTION("float16 computes in float32 (GEMM and direct paths)") {
    expect_matches(conv2d(input(rand_tensor({2, 13, 9, 7}, 60, DType::kFloat16)), {13, 13, 3, 3}, true, 1, 1,
                          1, 1, 61, DType::kFloat16),
                   "conv2d float16");
    expect_matches(conv2d(input(rand_tensor({2, 13, 9, 7}, 62, DType::kFloat16)), {13, 1, 3, 3}, true, 2, 1,
                          1, 13, 63, DType::kFloat16),
                   "depthwise float16");
  }
  SECTION("float64 runs the direct kernel in double") {
    if (!device().info().fp64) {
      WARN("device " << device().info().name << " has no fp64: float64 convolution not tested");
      return;
    }
    Outcome o = conv2d(input(rand_tensor({2, 13, 9, 7}, 64, DType::kFloat64)), {13, 13, 3, 3}, true, 2, 1, 2,
                       1, 65, DType::kFloat64);
    expect_matches(o, "conv2d float64");
    CHECK(o.gemms == 0);
  }
}

TEST_CASE("OpenCL max and average pooling", "[opencl][nn][pool]") {
  const Tensor x = rand_tensor({2, 13, 11, 9}, 70);
  SECTION("max_pool2d: padding, stride 2, ceil_mode, dilation 2, transposed input") {
    for (bool ceil : {false, true}) {
      expect_matches(
          run_op("aten::max_pool2d", "",
                 {input(x), ints({3, 3}), ints({2, 2}), ints({1, 1}), ints({1, 1}), constant(IValue(ceil))}),
          std::string("max_pool2d ceil_mode=") + (ceil ? "1" : "0"));
      expect_matches(
          run_op("aten::max_pool2d", "",
                 {input(x), ints({3, 2}), ints({2, 3}), ints({1, 0}), ints({2, 1}), constant(IValue(ceil))}),
          "max_pool2d dilation 2");
    }
    expect_matches(run_op("aten::max_pool2d", "",
                          {transposed_input(x, 2, 3), ints({2, 2}), ints({}), ints({0, 0}), ints({1, 1}),
                           constant(IValue(true))}),
                   "max_pool2d transposed input, default stride");
  }
  SECTION("max_pool2d_with_indices returns PyTorch's flat indices; NaN wins") {
    Tensor nan_x = x.clone();
    nan_x.set_double(5, std::nan(""));
    nan_x.set_double(200, std::nan(""));
    expect_matches(run_op("aten::max_pool2d_with_indices", "",
                          {input(nan_x), ints({3, 3}), ints({2, 2}), ints({1, 1}), ints({1, 1}),
                           constant(IValue(true))}),
                   "max_pool2d_with_indices");
  }
  SECTION("max_pool1d on an unbatched input") {
    expect_matches(run_op("aten::max_pool1d", "",
                          {input(rand_tensor({13, 17}, 71)), ints({4}), ints({3}), ints({2}), ints({1}),
                           constant(IValue(true))}),
                   "max_pool1d");
  }
  SECTION("avg_pool2d: count_include_pad, ceil_mode, divisor_override") {
    for (bool ceil : {false, true})
      for (bool include_pad : {false, true})
        expect_matches(run_op("aten::avg_pool2d", "",
                              {input(x), ints({3, 3}), ints({2, 2}), ints({1, 1}), constant(IValue(ceil)),
                               constant(IValue(include_pad)), none()}),
                       str_cat("avg_pool2d ceil=", ceil, " include_pad=", include_pad));
    expect_matches(run_op("aten::avg_pool2d", "",
                          {transposed_input(x, 2, 3), ints({2, 3}), ints({2, 1}), ints({1, 0}),
                           constant(IValue(true)), constant(IValue(true)), constant(IValue(int64_t{5}))}),
                   "avg_pool2d divisor_override");
  }
  SECTION("avg_pool1d") {
    expect_matches(run_op("aten::avg_pool1d", "",
                          {input(rand_tensor({2, 13, 17}, 72)), ints({4}), ints({3}), ints({2}),
                           constant(IValue(true)), constant(IValue(false))}),
                   "avg_pool1d");
  }
  SECTION("float64 pools") {
    if (!device().info().fp64) return;
    expect_matches(run_op("aten::avg_pool2d", "",
                          {input(rand_tensor({1, 13, 7, 9}, 73, DType::kFloat64)), ints({3, 3}), ints({2, 2}),
                           ints({1, 1}), constant(IValue(true)), constant(IValue(false)), none()}),
                   "avg_pool2d float64");
  }
}

TEST_CASE("OpenCL max and average pooling, one output or one row per work-item", "[opencl][nn][pool]") {
  // Rows wide enough for pool_rows' eight-wide vector interior, its scalar tail and its borders.
  Tensor x = rand_tensor({2, 5, 9, 45}, 160);
  x.set_double(3 * 45 + 20, std::nan(""));  // inside a vector of the interior
  x.set_double(45 * 9 + 1, std::nan(""));   // on a border
  for (const char* layout : {"rows", "elements"}) {
    setenv("CONVOY_NN_LAYOUT", layout, 1);
    INFO("CONVOY_NN_LAYOUT=" << layout);
    for (int64_t stride : {1, 2}) {
      for (bool ceil : {false, true}) {
        expect_matches(run_op("aten::max_pool2d", "",
                              {input(x), ints({3, 3}), ints({stride, stride}), ints({1, 1}), ints({1, 1}),
                               constant(IValue(ceil))}),
                       str_cat("max_pool2d stride ", stride, " ceil ", ceil));
        expect_matches(run_op("aten::max_pool2d", "",
                              {input(x), ints({2, 3}), ints({2, stride}), ints({1, 1}), ints({2, 2}),
                               constant(IValue(ceil))}),
                       str_cat("max_pool2d dilation 2 stride ", stride, " ceil ", ceil));
        for (bool include_pad : {false, true})
          expect_matches(run_op("aten::avg_pool2d", "",
                                {input(x), ints({3, 3}), ints({2, stride}), ints({1, 1}),
                                 constant(IValue(ceil)), constant(IValue(include_pad)), none()}),
                         str_cat("avg_pool2d stride ", stride, " ceil ", ceil, " include_pad ", include_pad));
      }
    }
    expect_matches(run_op("aten::avg_pool2d", "",
                          {input(x), ints({3, 2}), ints({1, 1}), ints({1, 1}), constant(IValue(false)),
                           constant(IValue(true)), constant(IValue(int64_t{7}))}),
                   "avg_pool2d divisor_override");
    expect_matches(run_op("aten::max_pool2d", "",
                          {transposed_input(rand_tensor({1, 3, 40, 9}, 161), 2, 3), ints({3, 3}),
                           ints({1, 1}), ints({1, 1}), ints({1, 1}), constant(IValue(false))}),
                   "max_pool2d strided rows (no vector loads)");
    expect_matches(run_op("aten::max_pool1d", "",
                          {input(rand_tensor({3, 50}, 162, DType::kFloat16)), ints({3}), ints({2}), ints({1}),
                           ints({1}), constant(IValue(false))}),
                   "max_pool1d float16");
    expect_matches(run_op("aten::avg_pool1d", "",
                          {input(rand_tensor({2, 3, 50}, 163)), ints({5}), ints({1}), ints({2}),
                           constant(IValue(true)), constant(IValue(false))}),
                   "avg_pool1d");
  }
  unsetenv("CONVOY_NN_LAYOUT");
}

TEST_CASE("OpenCL adaptive pooling to sizes that do not divide the input", "[opencl][nn][pool]") {
  const Tensor x = rand_tensor({2, 13, 11, 9}, 80);
  for (const std::vector<int64_t>& size : {std::vector<int64_t>{3, 5}, {1, 1}, {7, 4}, {11, 9}, {13, 12}}) {
    expect_matches(run_op("aten::adaptive_avg_pool2d", "", {input(x), ints(size)}),
                   "adaptive_avg_pool2d " + shape_str(size));
    expect_matches(run_op("aten::adaptive_max_pool2d", "", {input(x), ints(size)}),
                   "adaptive_max_pool2d " + shape_str(size));
  }
  expect_matches(run_op("aten::adaptive_avg_pool2d", "", {transposed_input(x, 1, 3), ints({4, 3})}),
                 "adaptive_avg_pool2d transposed input");
  expect_matches(run_op("aten::adaptive_avg_pool1d", "", {input(rand_tensor({2, 13, 17}, 81)), ints({5})}),
                 "adaptive_avg_pool1d");
  expect_matches(run_op("aten::adaptive_max_pool1d", "", {input(rand_tensor({13, 17}, 82)), ints({6})}),
                 "adaptive_max_pool1d");
}

TEST_CASE("OpenCL batch_norm, instance_norm, layer_norm, group_norm", "[opencl][nn][norm]") {
  const Tensor x = rand_tensor({2, 13, 7, 5}, 90, DType::kFloat32, 2.0, 0.5);
  auto param = [](uint32_t seed, int64_t n, double shift = 0) {
    return rand_tensor({n}, seed, DType::kFloat32, 0.5, shift);
  };
  SECTION("batch_norm inference with constant parameters: a per-channel multiply-add") {
    Outcome o =
        run_op("aten::batch_norm", "",
               {input(x), constant(IValue(param(91, 13, 1))), constant(IValue(param(92, 13))),
                constant(IValue(param(93, 13))), constant(IValue(param(94, 13, 1))), constant(IValue(false)),
                constant(IValue(0.1)), constant(IValue(1e-5)), constant(IValue(false))});
    expect_matches(o, "batch_norm");
    CHECK(o.kernels == 1);
    expect_matches(
        run_op("aten::batch_norm", "",
               {transposed_input(rand_tensor({2, 5, 13}, 95), 1, 2), none(), none(),
                constant(IValue(param(96, 13))), constant(IValue(param(97, 13, 1))), constant(IValue(false)),
                constant(IValue(0.1)), constant(IValue(1e-3)), constant(IValue(false))}),
        "batch_norm 3-d, no affine, strided");
    expect_matches(run_op("aten::batch_norm", "",
                          {input(rand_tensor({3, 13}, 98)), constant(IValue(param(99, 13, 1))), none(),
                           constant(IValue(param(100, 13))), constant(IValue(param(101, 13, 1))),
                           constant(IValue(false)), constant(IValue(0.1)), constant(IValue(1e-5)),
                           constant(IValue(false))}),
                   "batch_norm 2-d");
  }
  SECTION("batch_norm with parameters computed on the device") {
    expect_matches(run_op("aten::batch_norm", "",
                          {input(x), input(param(102, 13, 1)), input(param(103, 13)), input(param(104, 13)),
                           input(param(105, 13, 1)), constant(IValue(false)), constant(IValue(0.1)),
                           constant(IValue(1e-5)), constant(IValue(false))}),
                   "batch_norm device parameters");
  }
  SECTION("batch_norm training=True normalises with the batch's statistics") {
    expect_matches(run_op("aten::batch_norm", "",
                          {input(x), constant(IValue(param(106, 13, 1))), constant(IValue(param(107, 13))),
                           none(), none(), constant(IValue(true)), constant(IValue(0.1)),
                           constant(IValue(1e-5)), constant(IValue(false))}),
                   "batch_norm training");
    // Three channels: a work-group per channel sums with a tree (many channels: one work-item each on CPUs).
    expect_matches(run_op("aten::batch_norm", "",
                          {input(rand_tensor({4, 3, 5, 7}, 164, DType::kFloat32, 2.0, 1.0)), none(), none(),
                           none(), none(), constant(IValue(true)), constant(IValue(0.1)),
                           constant(IValue(1e-5)), constant(IValue(false))}),
                   "batch_norm training, 3 channels");
  }
  SECTION("instance_norm with input statistics and with running statistics") {
    for (bool use_input_stats : {true, false})
      expect_matches(run_op("aten::instance_norm", "",
                            {input(x), constant(IValue(param(108, 13, 1))), constant(IValue(param(109, 13))),
                             constant(IValue(param(110, 13))), constant(IValue(param(111, 13, 1))),
                             constant(IValue(use_input_stats)), constant(IValue(0.1)), constant(IValue(1e-5)),
                             constant(IValue(false))}),
                     str_cat("instance_norm use_input_stats=", use_input_stats));
  }
  SECTION("layer_norm over the last one and two dims, with and without affine, strided input") {
    const Tensor t = rand_tensor({3, 7, 13}, 112, DType::kFloat32, 3.0, 1.0);
    expect_matches(run_op("aten::layer_norm", "",
                          {input(t), ints({13}), constant(IValue(param(113, 13, 1))),
                           constant(IValue(param(114, 13))), constant(IValue(1e-5))}),
                   "layer_norm last dim");
    expect_matches(run_op("aten::layer_norm", "",
                          {transposed_input(t, 1, 2), ints({13, 7}),
                           constant(IValue(rand_tensor({13, 7}, 115))), none(), constant(IValue(1e-6))}),
                   "layer_norm last two dims, strided");
    expect_matches(
        run_op("aten::layer_norm", "", {input(rand_tensor({5, 1000}, 116)), ints({1000}), none(), none()}),
        "layer_norm long rows");
  }
  SECTION("group_norm") {
    expect_matches(run_op("aten::group_norm", "",
                          {input(rand_tensor({2, 15, 7, 5}, 117)), constant(IValue(int64_t{3})),
                           constant(IValue(param(118, 15, 1))), constant(IValue(param(119, 15))),
                           constant(IValue(1e-5))}),
                   "group_norm 3 groups");
    expect_matches(run_op("aten::group_norm", "", {input(x), constant(IValue(int64_t{1})), none(), none()}),
                   "group_norm 1 group");
    expect_matches(run_op("aten::group_norm", "", {input(x), constant(IValue(int64_t{13})), none(), none()}),
                   "group_norm 13 groups");
  }
  SECTION("float16 and float64") {
    expect_matches(run_op("aten::layer_norm", "",
                          {input(rand_tensor({4, 13}, 120, DType::kFloat16)), ints({13}),
                           constant(IValue(rand_tensor({13}, 121, DType::kFloat16))), none()}),
                   "layer_norm float16");
    if (!device().info().fp64) return;
    expect_matches(
        run_op("aten::batch_norm", "",
               {input(rand_tensor({2, 13, 5}, 122, DType::kFloat64)), none(), none(),
                constant(IValue(rand_tensor({13}, 123, DType::kFloat64))),
                constant(IValue(rand_tensor({13}, 124, DType::kFloat64, 0.5, 1.0))), constant(IValue(false)),
                constant(IValue(0.1)), constant(IValue(1e-5)), constant(IValue(false))}),
        "batch_norm float64");
    expect_matches(
        run_op("aten::group_norm", "",
               {input(rand_tensor({2, 6, 11}, 125, DType::kFloat64)), constant(IValue(int64_t{2}))}),
        "group_norm float64");
  }
}

TEST_CASE("OpenCL embedding", "[opencl][nn][embedding]") {
  const Tensor table = rand_tensor({13, 7}, 130);
  SECTION("int64 indices from the device, int32 indices as a constant, other table dtypes") {
    expect_matches(run_op("aten::embedding", "",
                          {constant(IValue(table)),
                           input(Tensor::from_ints({2, 3}, DType::kInt64, {0, 12, 5, 5, 3, 1}))}),
                   "embedding int64");
    expect_matches(run_op("aten::embedding", "",
                          {constant(IValue(table)),
                           constant(IValue(Tensor::from_ints({4}, DType::kInt32, {7, 0, 12, 7})))}),
                   "embedding int32");
    expect_matches(run_op("aten::embedding", "",
                          {input(rand_tensor({9, 3}, 131, DType::kFloat16)),
                           input(Tensor::from_ints({5}, DType::kInt32, {8, 0, 4, 4, 2}))}),
                   "embedding float16 table");
    expect_matches(
        run_op("aten::embedding", "",
               {constant(IValue(Tensor::from_ints({4, 2}, DType::kInt64, {1, 2, 3, 4, 5, 6, 7, 8}))),
                input(Tensor::from_ints({3}, DType::kInt64, {3, 0, 2}))}),
        "embedding int64 table");
  }
  SECTION("indices known on the host are checked while the plan is built") {
    CHECK_THROWS_WITH(run_op("aten::embedding", "",
                             {constant(IValue(table)),
                              constant(IValue(Tensor::from_ints({3}, DType::kInt64, {1, 13, 2})))}),
                      Contains("index 13 at position 1") && Contains("out of range"));
  }
  SECTION("device indices out of range are reported after the run; the next good run succeeds") {
    Graph g;
    const OpOverload* op = registry().find("aten::embedding", "");
    Value* indices = g.top()->add_param(Type::tensor(), "indices");
    Node* n = op_node(g, *op,
                      {g.constant(IValue(table)), indices, g.constant(IValue(int64_t{-1})),
                       g.constant(IValue(false)), g.constant(IValue(false))});
    g.top()->returns = n->outputs;
    OpenCLExecutor ex(g, device());
    const Tensor good = Tensor::from_ints({3}, DType::kInt64, {2, 12, 3});
    IValueList ref_args = {IValue(table), IValue(good), IValue(int64_t{-1}), IValue(false), IValue(false)};
    const IValue want = op->kernel(ref_args).at(0);
    expect_close(ex.run({IValue(good)}).at(0), want, "good indices");
    for (int64_t bad : {int64_t{13}, int64_t{-1}}) {
      const Tensor idx = Tensor::from_ints({3}, DType::kInt64, {2, bad, 3});
      CHECK_THROWS_WITH(ex.run({IValue(idx)}), Contains("out of range for an embedding table of 13 rows") &&
                                                   Contains(str_cat("reported by the device: 1, ", bad)));
    }
    // The flag is cleared by every run.
    expect_close(ex.run({IValue(good)}).at(0), want, "good indices after bad ones");
    // int32 indices go through the same check.
    const Tensor idx32 = Tensor::from_ints({2, 2}, DType::kInt32, {0, 1, 99, 3});
    CHECK_THROWS_WITH(ex.run({IValue(idx32)}), Contains("reported by the device: 2, 99"));
  }
}

namespace {

// A graph x → conv → [batch_norm] → [activation] with constant weights, as torchvision traces it.
struct ConvChain {
  Graph graph;
  Tensor weight, bias, gamma, beta, mean, var;
};

Node* add_node(Graph& g, const std::string& name, const std::string& overload,
               const std::vector<Value*>& inputs) {
  const OpOverload* op = registry().find(name, overload);
  REQUIRE(op != nullptr);
  return op_node(g, *op, inputs);
}

std::unique_ptr<ConvChain> conv_chain(int64_t cin, int64_t cout, int64_t k, int64_t groups, bool with_bn,
                                      const std::string& activation, uint32_t seed, int extra_uses = 0) {
  auto c = std::make_unique<ConvChain>();
  Graph& g = c->graph;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  c->weight = rand_tensor({cout, cin / groups, k, k}, seed, DType::kFloat32, 0.5);
  c->bias = rand_tensor({cout}, seed + 1);
  auto cst = [&](IValue v) { return g.constant(std::move(v)); };
  Node* conv = add_node(g, "aten::_convolution", "",
                        {x, cst(IValue(c->weight)), cst(IValue(c->bias)), cst(IValue::int_list({1, 1})),
                         cst(IValue::int_list({k / 2, k / 2})), cst(IValue::int_list({1, 1})),
                         cst(IValue(false)), cst(IValue::int_list({0, 0})), cst(IValue(groups)),
                         cst(IValue(false)), cst(IValue(false)), cst(IValue(true)), cst(IValue(true))});
  Value* y = conv->outputs[0];
  std::vector<Value*> outputs;
  if (with_bn) {
    c->gamma = rand_tensor({cout}, seed + 2, DType::kFloat32, 0.5, 1.0);
    c->beta = rand_tensor({cout}, seed + 3);
    c->mean = rand_tensor({cout}, seed + 4);
    c->var = rand_tensor({cout}, seed + 5, DType::kFloat32, 0.5, 1.0);
    Node* bn =
        add_node(g, "aten::batch_norm", "",
                 {y, cst(IValue(c->gamma)), cst(IValue(c->beta)), cst(IValue(c->mean)), cst(IValue(c->var)),
                  cst(IValue(false)), cst(IValue(0.1)), cst(IValue(1e-5)), cst(IValue(true))});
    if (extra_uses) outputs.push_back(y);
    y = bn->outputs[0];
  }
  if (activation == "relu_") {
    y = add_node(g, "aten::relu_", "", {y})->outputs[0];
  } else if (activation == "hardtanh_") {
    y = add_node(g, "aten::hardtanh_", "", {y, cst(IValue(0.0)), cst(IValue(6.0))})->outputs[0];
  } else if (activation == "silu") {
    y = add_node(g, "aten::silu", "", {y})->outputs[0];
  }
  outputs.insert(outputs.begin(), y);
  g.top()->returns = outputs;
  return c;
}

int count_kind(const Graph& g, const std::string& kind) {
  int n = 0;
  for_each_node(const_cast<Block*>(g.top()), [&](Node* node) { n += node->kind == kind; });
  return n;
}

}  // namespace

TEST_CASE("conv → batch_norm → activation fusion folds the batch-norm into the convolution",
          "[opencl][nn][fusion]") {
  struct Case {
    const char* what;
    int64_t cin, cout, k, groups;
    bool bn;
    const char* act;
    int gemms;
  };
  for (const Case& c :
       {Case{"3x3 + bn + relu_ (im2col GEMM)", 13, 16, 3, 1, true, "relu_", 1},
        Case{"1x1 + bn (plain GEMM)", 13, 17, 1, 1, true, "", 1},
        Case{"depthwise + bn + hardtanh_(0, 6) (direct)", 13, 13, 3, 13, true, "hardtanh_", 0},
        Case{"3x3 + silu, no bn", 12, 16, 3, 1, false, "silu", 1}}) {
    INFO(c.what);
    std::unique_ptr<ConvChain> chain = conv_chain(c.cin, c.cout, c.k, c.groups, c.bn, c.act, 200);
    const Tensor x = rand_tensor({2, c.cin, 9, 7}, 201);
    std::vector<IValue> want = ReferenceExecutor(chain->graph).run({IValue(x)});

    CHECK(fuse_conv_batch_norm_activation(chain->graph) == 1);
    CHECK(count_kind(chain->graph, "convoy::conv_bn_act") == 1);
    CHECK(count_kind(chain->graph, "aten::_convolution") == 0);
    CHECK(count_kind(chain->graph, "aten::batch_norm") == 0);
    // The fused graph still runs on the reference executor (the fused op's composed reference kernel).
    expect_close(ReferenceExecutor(chain->graph).run({IValue(x)}).at(0), want.at(0),
                 "reference, fused graph");

    OpenCLExecutor ex(chain->graph, device());
    expect_close(ex.run({IValue(x)}).at(0), want.at(0), "opencl, fused graph");
    Outcome counts;
    count_plan(ex, counts);
    CHECK(counts.gemms == c.gemms);
    // One launch at most (im2col or the direct kernel): batch-norm and activation cost nothing.
    CHECK(counts.kernels == (c.k == 1 ? 0 : 1));
    // A second run reuses the plan and the folded weights.
    expect_close(ex.run({IValue(x)}).at(0), want.at(0), "opencl, second run");
  }
}

TEST_CASE("conv fusion leaves chains alone that it cannot fuse", "[opencl][nn][fusion]") {
  SECTION("the convolution's output has another use") {
    std::unique_ptr<ConvChain> chain = conv_chain(4, 8, 3, 1, true, "relu_", 300, /*extra_uses=*/1);
    CHECK(fuse_conv_batch_norm_activation(chain->graph) == 0);
    CHECK(count_kind(chain->graph, "aten::batch_norm") == 1);
  }
  SECTION("a batch-norm in training mode") {
    auto chain = conv_chain(4, 8, 3, 1, true, "", 301);
    Node* bn = nullptr;
    for_each_node(chain->graph.top(), [&](Node* n) {
      if (n->kind == "aten::batch_norm") bn = n;
    });
    REQUIRE(bn != nullptr);
    bn->inputs[5] = chain->graph.constant(IValue(true));
    CHECK(fuse_conv_batch_norm_activation(chain->graph) == 0);
  }
}

namespace {

// x → [aten::transpose(1, 2) →] aten::linear(·, W, b) → activation, returned. `extra_use` also returns the
// linear's output (the rewrite must then leave the chain alone).
struct LinearChain {
  Graph graph;
  Tensor weight, bias;
};

std::unique_ptr<LinearChain> linear_chain(int64_t k, int64_t n, bool bias, const std::string& activation,
                                          bool transpose_input, uint32_t seed, bool extra_use = false) {
  auto c = std::make_unique<LinearChain>();
  Graph& g = c->graph;
  auto cst = [&](IValue v) { return g.constant(std::move(v)); };
  Value* x = g.top()->add_param(Type::tensor(), "x");
  if (transpose_input)
    x = add_node(g, "aten::transpose", "int", {x, cst(IValue(int64_t{1})), cst(IValue(int64_t{2}))})
            ->outputs[0];
  c->weight = rand_tensor({n, k}, seed, DType::kFloat32, 1.0 / std::sqrt(static_cast<double>(k)));
  if (bias) c->bias = rand_tensor({n}, seed + 1, DType::kFloat32, 2.0);
  Value* y = add_node(g, "aten::linear", "",
                      {x, cst(IValue(c->weight)), bias ? cst(IValue(c->bias)) : cst(IValue())})
                 ->outputs[0];
  Value* lin = y;
  if (activation == "gelu" || activation == "gelu_tanh") {
    y = add_node(g, "aten::gelu", "", {y, cst(IValue(activation == "gelu" ? "none" : "tanh"))})->outputs[0];
  } else if (activation == "relu_") {
    y = add_node(g, "aten::relu_", "", {y})->outputs[0];
  } else if (activation == "hardtanh") {
    y = add_node(g, "aten::hardtanh", "", {y, cst(IValue(-0.5)), cst(IValue(0.75))})->outputs[0];
  } else if (activation == "silu" || activation == "sigmoid") {
    y = add_node(g, "aten::" + activation, "", {y})->outputs[0];
  }
  g.top()->returns = extra_use ? std::vector<Value*>{y, lin} : std::vector<Value*>{y};
  return c;
}

}  // namespace

TEST_CASE("linear → activation fusion runs the activation in the GEMM epilogue", "[opencl][nn][fusion]") {
  struct Case {
    const char* what;
    Shape x;  // the graph input; with `transpose`, dims 1 and 2 are swapped before the linear
    int64_t n;
    bool bias, transpose;
    const char* act;
  };
  for (const Case& c : {
           Case{"2-D, gelu none, M N K off the tiles", {37, 29}, 45, true, false, "gelu"},
           Case{"3-D x·Wᵀ, gelu none", {3, 17, 29}, 70, true, false, "gelu"},
           Case{"3-D x·Wᵀ, gelu tanh", {3, 17, 29}, 70, true, false, "gelu_tanh"},
           Case{"4-D, no bias, gelu none", {2, 3, 5, 33}, 19, false, false, "gelu"},
           Case{"no bias, gelu tanh, one row", {1, 130}, 67, false, false, "gelu_tanh"},
           Case{"strided input (a transpose in front), gelu none", {3, 29, 17}, 33, true, true, "gelu"},
           Case{"wide rows (vector stores and a tail), gelu none", {9, 64}, 131, true, false, "gelu"},
           Case{"relu_", {13, 21}, 35, true, false, "relu_"},
           Case{"hardtanh(-0.5, 0.75)", {13, 21}, 35, true, false, "hardtanh"},
           Case{"silu", {2, 7, 21}, 35, false, false, "silu"},
           Case{"sigmoid", {2, 7, 21}, 35, true, false, "sigmoid"},
       }) {
    INFO(c.what);
    const int64_t k = c.transpose ? c.x[1] : c.x.back();
    auto unfused = linear_chain(k, c.n, c.bias, c.act, c.transpose, 400);
    auto chain = linear_chain(k, c.n, c.bias, c.act, c.transpose, 400);
    // Pre-activations over roughly ±6, so GELU's tails and the clamps are exercised.
    const Tensor x = rand_tensor(c.x, 401, DType::kFloat32, 3.0);
    std::vector<IValue> want = ReferenceExecutor(unfused->graph).run({IValue(x)});

    CHECK(fuse_linear_activation(chain->graph) == 1);
    CHECK(count_kind(chain->graph, "convoy::linear_act") == 1);
    CHECK(count_kind(chain->graph, "aten::linear") == 0);
    for (const char* act : {"aten::gelu", "aten::relu_", "aten::hardtanh", "aten::silu", "aten::sigmoid"})
      CHECK(count_kind(chain->graph, act) == 0);
    // The fused graph still runs on the reference executor (the composed reference kernel).
    expect_close(ReferenceExecutor(chain->graph).run({IValue(x)}).at(0), want.at(0),
                 "reference, fused graph");

    // Fused against unfused on OpenCL, and both against the reference.
    OpenCLExecutor plain(unfused->graph, device());
    expect_close(plain.run({IValue(x)}).at(0), want.at(0), "opencl, unfused graph");
    OpenCLExecutor ex(chain->graph, device());
    const IValue got = ex.run({IValue(x)}).at(0);
    expect_close(got, want.at(0), "opencl, fused graph");
    expect_close(got, plain.run({IValue(x)}).at(0), "opencl, fused against unfused");
    Outcome fused_counts, plain_counts;
    count_plan(ex, fused_counts);
    count_plan(plain, plain_counts);
    CHECK(fused_counts.gemms == 1);
    CHECK(plain_counts.gemms == 1);
    // The activation's launch is gone (a strided input still costs its copy in both).
    CHECK(fused_counts.kernels == plain_counts.kernels - 1);
    expect_close(ex.run({IValue(x)}).at(0), want.at(0), "opencl, second run");
  }
}

TEST_CASE("linear fusion leaves chains alone that it cannot fuse", "[opencl][nn][fusion]") {
  SECTION("the linear's output has another use") {
    auto chain = linear_chain(29, 45, true, "gelu", false, 500, /*extra_use=*/true);
    CHECK(fuse_linear_activation(chain->graph) == 0);
    CHECK(count_kind(chain->graph, "aten::linear") == 1);
    CHECK(count_kind(chain->graph, "aten::gelu") == 1);
    // And the graph still runs, both outputs.
    const Tensor x = rand_tensor({5, 29}, 501);
    std::vector<IValue> want = ReferenceExecutor(chain->graph).run({IValue(x)});
    OpenCLExecutor ex(chain->graph, device());
    std::vector<IValue> got = ex.run({IValue(x)});
    REQUIRE(got.size() == 2);
    expect_close(got[0], want[0], "gelu output");
    expect_close(got[1], want[1], "linear output");
  }
  SECTION("no activation after the linear") {
    auto chain = linear_chain(29, 45, true, "", false, 502);
    CHECK(fuse_linear_activation(chain->graph) == 0);
  }
  SECTION("gelu whose approximate is not a constant") {
    auto chain = linear_chain(29, 45, true, "gelu", false, 503);
    Node* gelu = nullptr;
    for_each_node(chain->graph.top(), [&](Node* n) {
      if (n->kind == "aten::gelu") gelu = n;
    });
    REQUIRE(gelu != nullptr);
    gelu->inputs[1] = chain->graph.top()->add_param(Type::string(), "approximate");
    CHECK(fuse_linear_activation(chain->graph) == 0);
  }
}
