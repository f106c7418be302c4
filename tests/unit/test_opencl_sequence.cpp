// The OpenCL sequence family (opencl/ops/sequence.cpp) against the registry's reference kernels: each
// case builds a one-node graph (activations as graph inputs on the device, weights as model constants,
// optionally a strided view in front), runs it through OpenCLExecutor and compares with the reference
// kernel on the same host values by relative L2 error: 1e-4 for the recurrent layers (their float32
// rounding compounds over the steps), 1e-5 for attention. Shapes are awkward on purpose: hidden 13,
// sequence 7, batch 1 and 3, two layers, both directions, batch_first both ways, LSTM projections,
// attention with 3 heads of 4, key lengths that differ from query lengths, bool, float and key-padding
// masks, causal masks, broadcast batch dims and grouped-query attention.
//
// Kernel builds and the GEMM dispatcher's measurements are the slow part on PoCL; both are cached under
// the build folder (CONVOY_CACHE_DIR), so reruns are fast.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/executor.h"
#include "opencl_op_harness.h"
#include "runtime/error.h"
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

Tensor rand_tensor(const Shape& shape, uint32_t seed, DType dtype = DType::kFloat32) {
  // Values in [-1, 1): recurrent gates and attention scores stay in their interesting range.
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = dist(rng);
  if (!is_floating(dtype))
    for (double& x : v) x = std::round(x);
  if (dtype == DType::kBool)
    for (double& x : v) x = x > 0 ? 1 : 0;
  return Tensor::from_doubles(shape, dtype, v);
}

Tensor bools(const Shape& shape, std::vector<int64_t> v) { return Tensor::from_ints(shape, DType::kBool, v); }

// One argument of the op under test.
struct Arg {
  enum class Kind { kConstant, kInput, kView, kList, kSame };
  Kind kind = Kind::kConstant;
  IValue value;  // constant, input, or the contiguous base of a view
  Shape sizes, strides;
  int64_t offset = 0;
  std::vector<Arg> items;
  size_t same = 0;  // kSame: the op sees the value of its argument `same` again
};
Arg make_arg(Arg::Kind kind, IValue value) {
  Arg a;
  a.kind = kind;
  a.value = std::move(value);
  return a;
}
Arg constant(IValue v) { return make_arg(Arg::Kind::kConstant, std::move(v)); }
Arg input(Tensor t) { return make_arg(Arg::Kind::kInput, IValue(std::move(t))); }
// The op sees base.as_strided(sizes, strides, offset), computed on the device.
Arg view(Tensor base, Shape sizes, Shape strides, int64_t offset = 0) {
  Arg a = make_arg(Arg::Kind::kView, IValue(std::move(base)));
  a.sizes = std::move(sizes);
  a.strides = std::move(strides);
  a.offset = offset;
  return a;
}
// A transposed view of a contiguous base with the given (already transposed) sizes.
Arg transposed(const Shape& sizes, int64_t d0, int64_t d1, uint32_t seed, DType dtype = DType::kFloat32) {
  Shape base_sizes = sizes;
  std::swap(base_sizes[static_cast<size_t>(d0)], base_sizes[static_cast<size_t>(d1)]);
  Shape strides = contiguous_strides(base_sizes);
  std::swap(strides[static_cast<size_t>(d0)], strides[static_cast<size_t>(d1)]);
  return view(rand_tensor(base_sizes, seed, dtype), sizes, strides);
}
Arg list(std::vector<Arg> items) {
  Arg a = make_arg(Arg::Kind::kList, IValue());
  a.items = std::move(items);
  return a;
}
Arg same_as(size_t i) {
  Arg a = make_arg(Arg::Kind::kSame, IValue());
  a.same = i;
  return a;
}
Arg integer(int64_t v) { return constant(IValue(v)); }
Arg none() { return constant(IValue()); }

Node* op_node(Graph& g, const OpOverload& op, const std::vector<Value*>& inputs) {
  Node* n = g.top()->append(op.schema.name, inputs, op.schema.returns.size(),
                            SourceRange{"test_opencl_sequence.py", 1});
  n->op = &op;
  for (size_t i = 0; i < n->outputs.size(); ++i) n->outputs[i]->type = op.schema.returns[i].type;
  return n;
}

IValue clone_value(const IValue& v) {
  if (v.is_tensor() && v.to_tensor().defined()) return IValue(v.to_tensor().clone());
  return v;
}

// A graph input per input tensor (in order of appearance) and the graph value the op sees.
struct Builder {
  Graph& g;
  std::vector<IValue> inputs;
  std::vector<Value*> built;  // per top-level argument

  // The value for `a`, and the host value the reference sees, computed from `values` (the graph
  // inputs' values in order, consumed from `next`).
  Value* build(const Arg& a) {
    switch (a.kind) {
      case Arg::Kind::kConstant:
        return g.constant(a.value);
      case Arg::Kind::kInput: {
        Value* v = g.top()->add_param(type_of(a.value), "x" + std::to_string(inputs.size()));
        inputs.push_back(a.value);
        return v;
      }
      case Arg::Kind::kView: {
        Value* base = g.top()->add_param(type_of(a.value), "x" + std::to_string(inputs.size()));
        inputs.push_back(a.value);
        const OpOverload* s = registry().find("aten::as_strided", "");
        REQUIRE(s != nullptr);
        Node* n = op_node(g, *s,
                          {base, g.constant(IValue::int_list(a.sizes)),
                           g.constant(IValue::int_list(a.strides)), g.constant(IValue(a.offset))});
        return n->outputs[0];
      }
      case Arg::Kind::kSame:
        return built.at(a.same);
      case Arg::Kind::kList: {
        std::vector<Value*> items;
        bool optional = false;
        for (const Arg& item : a.items) {
          items.push_back(build(item));
          optional = optional || (item.kind == Arg::Kind::kConstant && item.value.is_none());
        }
        Node* n = g.top()->append("prim::ListConstruct", items, 1);
        n->outputs[0]->type = Type::list(optional ? Type::optional(Type::tensor()) : Type::tensor());
        return n->outputs[0];
      }
    }
    return nullptr;
  }
};

// The reference's view of `a`, given the graph inputs' values in order (consumed from `next`).
IValue reference_value(const Arg& a, const std::vector<IValue>& values, size_t& next,
                       const IValueList& done) {
  switch (a.kind) {
    case Arg::Kind::kSame:
      return done.at(a.same);
    case Arg::Kind::kConstant:
      return clone_value(a.value);
    case Arg::Kind::kInput:
      return clone_value(values[next++]);
    case Arg::Kind::kView: {
      Tensor base = values[next++].to_tensor().clone();
      return IValue(base.as_strided(a.sizes, a.strides, a.offset));
    }
    case Arg::Kind::kList: {
      IValueList items;
      for (const Arg& item : a.items) items.push_back(reference_value(item, values, next, {}));
      return IValue::list(std::move(items));
    }
  }
  return IValue();
}

void expect_close(const IValue& got, const IValue& want, const std::string& what, double tol) {
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
  const double rel = norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
  INFO("relative L2 error " << rel);
  CHECK(rel <= tol);
}

// A one-node graph of `name.overload` on OpenCL; arguments not given take their schema defaults.
struct OpGraph {
  const OpOverload* op = nullptr;
  Graph g;
  std::vector<Arg> args;
  std::vector<IValue> inputs;
  std::unique_ptr<OpenCLExecutor> ex;

  OpGraph(const std::string& name, const std::string& overload, std::vector<Arg> args_in)
      : args(std::move(args_in)) {
    op = registry().find(name, overload);
    REQUIRE(op != nullptr);
    const auto& params = op->schema.arguments;
    REQUIRE(args.size() <= params.size());
    for (size_t i = args.size(); i < params.size(); ++i) {
      REQUIRE(params[i].default_value.has_value());
      args.push_back(constant(*params[i].default_value));
    }
    Builder b{g, {}, {}};
    std::vector<Value*> node_inputs;
    for (const Arg& a : args) {
      node_inputs.push_back(b.build(a));
      b.built.push_back(node_inputs.back());
    }
    inputs = b.inputs;
    Node* n = op_node(g, *op, node_inputs);
    g.top()->returns = n->outputs;
    ex = std::make_unique<OpenCLExecutor>(g, device());
  }

  IValueList reference(const std::vector<IValue>& values) const {
    size_t next = 0;
    IValueList ref_args;
    for (const Arg& a : args) ref_args.push_back(reference_value(a, values, next, ref_args));
    return op->kernel(ref_args);
  }

  // Runs on OpenCL with `values` for the graph inputs (default: the ones given) and checks against the
  // reference kernel.
  void check(const std::string& what, double tol) {
    std::vector<IValue> got = ex->run(inputs);
    IValueList want = reference(inputs);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], what, tol);
  }
};

void check_op(const std::string& name, const std::string& overload, std::vector<Arg> args,
              const std::string& what, double tol = 1e-5) {
  OpGraph(name, overload, std::move(args)).check(what, tol);
}

constexpr double kRnnTol = 1e-4;

Tensor weight(const Shape& shape, uint32_t seed, double scale) {
  Tensor t = rand_tensor(shape, seed);
  std::vector<double> v = t.to_doubles();
  for (double& x : v) x *= scale;
  return Tensor::from_doubles(shape, DType::kFloat32, v);
}

// The parameters of a recurrent layer as model constants, in PyTorch's order: per layer and direction
// w_ih, w_hh, [b_ih, b_hh], [w_hr].
Arg rnn_params(int64_t gates, int64_t input_size, int64_t hidden, int64_t layers, bool bidirectional,
               bool biases, int64_t proj, uint32_t seed) {
  const int64_t D = bidirectional ? 2 : 1, out = proj > 0 ? proj : hidden;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hidden));
  std::vector<Arg> items;
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t in = l == 0 ? input_size : D * out;
      items.push_back(constant(IValue(weight({gates * hidden, in}, seed++, scale))));
      items.push_back(constant(IValue(weight({gates * hidden, out}, seed++, scale))));
      if (biases) {
        items.push_back(constant(IValue(weight({gates * hidden}, seed++, scale))));
        items.push_back(constant(IValue(weight({gates * hidden}, seed++, scale))));
      }
      if (proj > 0) items.push_back(constant(IValue(weight({proj, hidden}, seed++, scale))));
    }
  return list(std::move(items));
}

// (has_biases, num_layers, dropout, train, bidirectional, batch_first)
std::vector<Arg> rnn_flags(bool biases, int64_t layers, bool bidirectional, bool batch_first) {
  return {constant(IValue(biases)),        integer(layers),
          constant(IValue(0.0)),           constant(IValue(false)),
          constant(IValue(bidirectional)), constant(IValue(batch_first))};
}

std::vector<Arg> concat(std::vector<Arg> a, const std::vector<Arg>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("OpenCL GRU", "[opencl][sequence][rnn]") {
  SECTION("2 layers, bidirectional, time-major, batch 3, hidden 13") {
    check_op("aten::gru", "input",
             concat({input(rand_tensor({7, 3, 5}, 1)), input(rand_tensor({4, 3, 13}, 2)),
                     rnn_params(3, 5, 13, 2, true, true, 0, 100)},
                    rnn_flags(true, 2, true, false)),
             "gru 2x2", kRnnTol);
  }
  SECTION("batch_first, batch 1, no biases, a strided input") {
    check_op("aten::gru", "input",
             concat({transposed({1, 7, 5}, 1, 2, 3), input(rand_tensor({1, 1, 13}, 4)),
                     rnn_params(3, 5, 13, 1, false, false, 0, 200)},
                    rnn_flags(false, 1, false, true)),
             "gru batch_first", kRnnTol);
  }
}

TEST_CASE("OpenCL LSTM", "[opencl][sequence][rnn]") {
  SECTION("2 layers, bidirectional, batch_first, batch 3") {
    check_op("aten::lstm", "input",
             concat({input(rand_tensor({3, 7, 6}, 1)),
                     list({input(rand_tensor({4, 3, 13}, 2)), input(rand_tensor({4, 3, 13}, 3))}),
                     rnn_params(4, 6, 13, 2, true, true, 0, 300)},
                    rnn_flags(true, 2, true, true)),
             "lstm 2x2 batch_first", kRnnTol);
  }
  SECTION("time-major, batch 1, with projections (proj_size 4), 2 layers, bidirectional") {
    check_op("aten::lstm", "input",
             concat({input(rand_tensor({7, 1, 5}, 4)),
                     list({input(rand_tensor({4, 1, 4}, 5)), input(rand_tensor({4, 1, 13}, 6))}),
                     rnn_params(4, 5, 13, 2, true, true, 4, 400)},
                    rnn_flags(true, 2, true, false)),
             "lstm proj", kRnnTol);
  }
  SECTION("one layer, no biases, batch_first, batch 3") {
    check_op("aten::lstm", "input",
             concat({input(rand_tensor({3, 7, 5}, 7)),
                     list({input(rand_tensor({1, 3, 13}, 8)), input(rand_tensor({1, 3, 13}, 9))}),
                     rnn_params(4, 5, 13, 1, false, false, 0, 500)},
                    rnn_flags(false, 1, false, true)),
             "lstm 1 layer", kRnnTol);
  }
}

TEST_CASE("OpenCL rnn_tanh and rnn_relu", "[opencl][sequence][rnn]") {
  check_op("aten::rnn_tanh", "input",
           concat({input(rand_tensor({7, 3, 5}, 1)), input(rand_tensor({1, 3, 13}, 2)),
                   rnn_params(1, 5, 13, 1, false, true, 0, 600)},
                  rnn_flags(true, 1, false, false)),
           "rnn_tanh", kRnnTol);
  check_op("aten::rnn_relu", "input",
           concat({input(rand_tensor({3, 7, 5}, 3)), input(rand_tensor({4, 3, 13}, 4)),
                   rnn_params(1, 5, 13, 2, true, true, 0, 700)},
                  rnn_flags(true, 2, true, true)),
           "rnn_relu", kRnnTol);
}

namespace {

// _native_multi_head_attention's weights: qkv_weight, qkv_bias, proj_weight, proj_bias.
std::vector<Arg> mha_weights(int64_t E, uint32_t seed) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(E));
  return {constant(IValue(weight({3 * E, E}, seed, scale))), constant(IValue(weight({3 * E}, seed + 1, 0.1))),
          constant(IValue(weight({E, E}, seed + 2, scale))), constant(IValue(weight({E}, seed + 3, 0.1)))};
}

std::vector<Arg> mha_args(Arg q, Arg k, Arg v, int64_t E, int64_t H, uint32_t seed, Arg mask,
                          bool need_weights, bool average, Arg mask_type) {
  std::vector<Arg> a = {std::move(q), std::move(k), std::move(v), integer(E), integer(H)};
  for (Arg& w : mha_weights(E, seed)) a.push_back(std::move(w));
  a.push_back(std::move(mask));
  a.push_back(constant(IValue(need_weights)));
  a.push_back(constant(IValue(average)));
  a.push_back(std::move(mask_type));
  return a;
}

// A (rows x cols) bool mask with pseudo-random set elements, none of its rows entirely set.
Tensor sparse_mask(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> v(static_cast<size_t>(shape_numel(shape)));
  for (int64_t& x : v) x = rng() % 3 == 0;
  const int64_t cols = shape.back();
  for (size_t i = 0; i < v.size(); i += static_cast<size_t>(cols)) v[i] = 0;  // column 0 always attended
  return bools(shape, v);
}

}  // namespace

TEST_CASE("OpenCL _native_multi_head_attention", "[opencl][sequence][attention]") {
  SECTION("self-attention (one q/k/v tensor), 3 heads of 4, averaged weights") {
    check_op("aten::_native_multi_head_attention", "",
             mha_args(input(rand_tensor({2, 5, 12}, 1)), same_as(0), same_as(0), 12, 3, 10, none(), true,
                      true, none()),
             "mha self");
  }
  SECTION("self-attention with a bool attention mask, per-head weights") {
    check_op("aten::_native_multi_head_attention", "",
             mha_args(input(rand_tensor({2, 5, 12}, 2)), same_as(0), same_as(0), 12, 3, 20,
                      constant(IValue(sparse_mask({5, 5}, 3))), true, false, integer(0)),
             "mha masked");
  }
  SECTION("cross-attention, key length 7, a key-padding mask on the device, batch 1, no weights") {
    check_op("aten::_native_multi_head_attention", "",
             mha_args(input(rand_tensor({1, 5, 12}, 4)), input(rand_tensor({1, 7, 12}, 5)),
                      input(rand_tensor({1, 7, 12}, 6)), 12, 3, 30,
                      input(bools({1, 7}, {0, 0, 1, 0, 1, 1, 0})), false, true, integer(1)),
             "mha key padding");
  }
  SECTION("a float mask broadcast over heads: nonzero masks out; a strided query") {
    std::vector<double> m(2 * 5 * 7, 0.0);
    for (size_t i = 0; i < m.size(); ++i)
      if (i % 7 != 0 && i % 4 == 1) m[i] = -3.0;
    check_op("aten::_native_multi_head_attention", "",
             mha_args(transposed({2, 5, 12}, 0, 1, 7), input(rand_tensor({2, 7, 12}, 8)),
                      input(rand_tensor({2, 7, 12}, 9)), 12, 3, 40,
                      input(Tensor::from_doubles({2, 1, 5, 7}, DType::kFloat32, m)), true, true, integer(2)),
             "mha float mask");
  }
}

TEST_CASE("OpenCL _transformer_encoder_layer_fwd", "[opencl][sequence][attention]") {
  const int64_t E = 12, F = 20;
  auto args = [&](bool gelu, bool norm_first, Arg mask, Arg mask_type, uint32_t seed) {
    const double s = 1.0 / std::sqrt(static_cast<double>(E));
    std::vector<Arg> a = {input(rand_tensor({2, 5, E}, seed)), integer(E), integer(3)};
    for (Arg& w : mha_weights(E, seed + 1)) a.push_back(std::move(w));
    a.push_back(constant(IValue(gelu)));
    a.push_back(constant(IValue(norm_first)));
    a.push_back(constant(IValue(1e-5)));
    for (uint32_t i = 0; i < 2; ++i) {
      a.push_back(constant(IValue(weight({E}, seed + 10 + i, 0.5))));  // norm weight
      a.push_back(constant(IValue(weight({E}, seed + 20 + i, 0.1))));  // norm bias
    }
    a.push_back(constant(IValue(weight({F, E}, seed + 30, s))));
    a.push_back(constant(IValue(weight({F}, seed + 31, 0.1))));
    a.push_back(constant(IValue(weight({E, F}, seed + 32, 1.0 / std::sqrt(static_cast<double>(F))))));
    a.push_back(constant(IValue(weight({E}, seed + 33, 0.1))));
    a.push_back(std::move(mask));
    a.push_back(std::move(mask_type));
    return a;
  };
  check_op("aten::_transformer_encoder_layer_fwd", "", args(false, false, none(), none(), 1),
           "encoder relu post-norm");
  check_op("aten::_transformer_encoder_layer_fwd", "",
           args(true, true, input(bools({2, 5}, {0, 0, 0, 1, 1, 0, 1, 0, 0, 0})), integer(1), 100),
           "encoder gelu pre-norm key padding");
}

TEST_CASE("OpenCL scaled_dot_product_attention", "[opencl][sequence][attention]") {
  SECTION("no mask; key length differs from query length; value width differs") {
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 3, 5, 8}, 1)), input(rand_tensor({2, 3, 7, 8}, 2)),
              input(rand_tensor({2, 3, 7, 6}, 3))},
             "sdpa");
  }
  SECTION("a broadcast bool mask with a fully masked row (zeros), and a float mask on the device") {
    std::vector<int64_t> m(35, 1);
    for (int64_t j = 0; j < 7; ++j) m[static_cast<size_t>(2 * 7 + j)] = 0;
    m[3] = m[10] = m[30] = 0;
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 3, 5, 8}, 4)), input(rand_tensor({2, 3, 7, 8}, 5)),
              input(rand_tensor({2, 3, 7, 6}, 6)), constant(IValue(bools({5, 7}, m)))},
             "sdpa bool mask");
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 3, 5, 8}, 7)), input(rand_tensor({2, 3, 7, 8}, 8)),
              input(rand_tensor({2, 3, 7, 6}, 9)), input(rand_tensor({2, 1, 5, 7}, 10))},
             "sdpa float mask");
  }
  SECTION("causal with an explicit scale, on a strided query") {
    check_op("aten::scaled_dot_product_attention", "",
             {transposed({2, 3, 5, 8}, 1, 2, 11), input(rand_tensor({2, 3, 7, 8}, 12)),
              input(rand_tensor({2, 3, 7, 8}, 13)), none(), constant(IValue(0.0)), constant(IValue(true)),
              constant(IValue(0.3))},
             "sdpa causal");
  }
  SECTION("batch dims broadcast across query, key and value of different ranks") {
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 3, 5, 8}, 14)), input(rand_tensor({3, 7, 8}, 15)),
              input(rand_tensor({1, 1, 7, 6}, 16))},
             "sdpa broadcast");
  }
  SECTION("grouped-query attention: 4 query heads share 2 key/value heads, with a per-head mask") {
    std::vector<int64_t> m(4 * 5 * 7);
    for (size_t i = 0; i < m.size(); ++i) m[i] = (i % 7 == 0) || (i * 5) % 3 != 0;
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 4, 5, 8}, 17)), input(rand_tensor({2, 2, 7, 8}, 18)),
              input(rand_tensor({2, 2, 7, 6}, 19)), constant(IValue(bools({4, 5, 7}, m))),
              constant(IValue(0.0)), constant(IValue(false)), none(), constant(IValue(true))},
             "sdpa gqa");
  }
  SECTION("torch 1.13's _scaled_dot_product_attention returns the probabilities too") {
    check_op("aten::_scaled_dot_product_attention", "",
             {input(rand_tensor({2, 5, 8}, 20)), input(rand_tensor({2, 7, 8}, 21)),
              input(rand_tensor({2, 7, 8}, 22)), input(rand_tensor({5, 7}, 23)), constant(IValue(0.0)),
              constant(IValue(true))},
             "_sdpa");
  }
  SECTION("float64 runs are refused with a clear error") {
    OpGraph og("aten::scaled_dot_product_attention", "",
               {input(rand_tensor({2, 5, 8}, 24, DType::kFloat64)),
                input(rand_tensor({2, 7, 8}, 25, DType::kFloat64)),
                input(rand_tensor({2, 7, 8}, 26, DType::kFloat64))});
    try {
      og.ex->run(og.inputs);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::kUnsupported);
      CHECK_THAT(std::string(e.what()), Contains("float32"));
    }
  }
}

TEST_CASE("OpenCL attention softmax: a work-group per row and a work-item per row",
          "[opencl][sequence][attention]") {
  for (const char* layout : {"rows", "elements"}) {
    setenv("CONVOY_NN_LAYOUT", layout, 1);
    INFO("CONVOY_NN_LAYOUT=" << layout);
    std::vector<int64_t> m(35, 1);
    for (int64_t j = 0; j < 7; ++j) m[static_cast<size_t>(2 * 7 + j)] = 0;  // a fully masked row: zeros
    m[3] = m[10] = m[30] = 0;
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 3, 5, 8}, 31)), input(rand_tensor({2, 3, 7, 8}, 32)),
              input(rand_tensor({2, 3, 7, 6}, 33)), constant(IValue(bools({5, 7}, m)))},
             "sdpa bool mask");
    check_op("aten::scaled_dot_product_attention", "",
             {input(rand_tensor({2, 3, 5, 8}, 34)), input(rand_tensor({2, 3, 7, 8}, 35)),
              input(rand_tensor({2, 3, 7, 6}, 36)), input(rand_tensor({2, 1, 5, 7}, 37))},
             "sdpa float mask");
    check_op("aten::scaled_dot_product_attention", "",
             {transposed({2, 3, 5, 8}, 1, 2, 38), input(rand_tensor({2, 3, 7, 8}, 39)),
              input(rand_tensor({2, 3, 7, 8}, 40)), none(), constant(IValue(0.0)), constant(IValue(true)),
              constant(IValue(0.3))},
             "sdpa causal");
    std::vector<double> f(2 * 5 * 7, 0.0);
    for (size_t i = 0; i < f.size(); ++i)
      if (i % 7 != 0 && i % 4 == 1) f[i] = -3.0;
    check_op("aten::_native_multi_head_attention", "",
             mha_args(transposed({2, 5, 12}, 0, 1, 41), input(rand_tensor({2, 7, 12}, 42)),
                      input(rand_tensor({2, 7, 12}, 43)), 12, 3, 44,
                      input(Tensor::from_doubles({2, 1, 5, 7}, DType::kFloat32, f)), true, true, integer(2)),
             "mha float mask");
  }
  unsetenv("CONVOY_NN_LAYOUT");
}
