// The OpenCL shape and indexing family (opencl/ops/shape.cpp) against the registry's reference kernels:
// each case builds a one-node graph (tensors as graph inputs, so they live on the device, or as model
// constants; optionally an aten::as_strided view in front so the op sees a strided device tensor; tensor
// lists through prim::ListConstruct), runs it through OpenCLExecutor and compares with the reference
// kernel on the same host values: floating results by relative L2 error (1e-5 for float32), the others
// exactly. Shapes are awkward on purpose: odd sizes, size-1 dims, negative dims and indices,
// broadcasting index tensors, separated advanced indices, bool masks known on the host and computed on
// the device (whose count is read back, so such plans are also run again with other masks).
//
// Kernel builds are the slow part on PoCL; the program cache lives under the build folder
// (CONVOY_CACHE_DIR) so reruns load binaries.
#include <catch2/catch.hpp>
#include <cmath>
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
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-4.0, 4.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = dist(rng);
  if (!is_floating(dtype))
    for (double& x : v) x = std::round(x);
  if (dtype == DType::kBool)
    for (double& x : v) x = x > 0 ? 1 : 0;
  return Tensor::from_doubles(shape, dtype, v);
}

Tensor ints_tensor(const Shape& shape, std::vector<int64_t> v, DType dtype = DType::kInt64) {
  return Tensor::from_ints(shape, dtype, v);
}

Tensor bools(const Shape& shape, std::vector<int64_t> v) { return Tensor::from_ints(shape, DType::kBool, v); }

// One argument of the op under test.
struct Arg {
  enum class Kind { kConstant, kInput, kView, kList };
  Kind kind = Kind::kConstant;
  IValue value;  // constant, input, or the contiguous base of a view
  Shape sizes, strides;
  int64_t offset = 0;
  std::vector<Arg> items;
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
Arg ints(std::vector<int64_t> v) { return constant(IValue::int_list(v)); }
Arg integer(int64_t v) { return constant(IValue(v)); }
Arg none() { return constant(IValue()); }

Node* op_node(Graph& g, const OpOverload& op, const std::vector<Value*>& inputs) {
  Node* n = g.top()->append(op.schema.name, inputs, op.schema.returns.size(),
                            SourceRange{"test_opencl_shape.py", 1});
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
IValue reference_value(const Arg& a, const std::vector<IValue>& values, size_t& next) {
  switch (a.kind) {
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
      for (const Arg& item : a.items) items.push_back(reference_value(item, values, next));
      return IValue::list(std::move(items));
    }
  }
  return IValue();
}

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return 1e-12;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 4e-3;
    default:
      return 1e-5;
  }
}

void expect_close(const IValue& got, const IValue& want, const std::string& what) {
  INFO(what);
  if (want.is_tuple() || want.is_list()) {
    REQUIRE((got.is_tuple() || got.is_list()));
    const IValueList &g = got.to_list_or_tuple(), &w = want.to_list_or_tuple();
    REQUIRE(g.size() == w.size());
    for (size_t i = 0; i < g.size(); ++i) expect_close(g[i], w[i], what + " [" + std::to_string(i) + "]");
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
  CHECK(rel <= tolerance(b.dtype()));
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
    Builder b{g, {}};
    std::vector<Value*> node_inputs;
    for (const Arg& a : args) node_inputs.push_back(b.build(a));
    inputs = b.inputs;
    Node* n = op_node(g, *op, node_inputs);
    g.top()->returns = n->outputs;
    ex = std::make_unique<OpenCLExecutor>(g, device());
  }

  IValueList reference(const std::vector<IValue>& values) const {
    size_t next = 0;
    IValueList ref_args;
    for (const Arg& a : args) ref_args.push_back(reference_value(a, values, next));
    return op->kernel(ref_args);
  }

  // Runs on OpenCL with `values` for the graph inputs (default: the ones given) and checks against the
  // reference kernel.
  void check(const std::string& what, std::vector<IValue> values = {}) {
    if (values.empty()) values = inputs;
    std::vector<IValue> got = ex->run(values);
    IValueList want = reference(values);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], what);
  }
};

void check_op(const std::string& name, const std::string& overload, std::vector<Arg> args,
              const std::string& what) {
  OpGraph(name, overload, std::move(args)).check(what);
}

// The error the OpenCL executor raises for an op (at plan time or after the run).
std::string opencl_error(const std::string& name, const std::string& overload, std::vector<Arg> args) {
  OpGraph og(name, overload, std::move(args));
  try {
    og.ex->run(og.inputs);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("OpenCL cat and stack", "[opencl][shape]") {
  SECTION("cat along an odd middle dim, a strided input and a model constant") {
    check_op("aten::cat", "",
             {list({input(rand_tensor({3, 5, 2}, 1)), transposed({3, 1, 2}, 0, 2, 2),
                    constant(IValue(rand_tensor({3, 4, 2}, 3)))}),
              integer(1)},
             "cat dim 1");
  }
  SECTION("cat along a negative dim promotes int32 with float32; legacy empty 1-D inputs are skipped") {
    check_op("aten::cat", "",
             {list({input(rand_tensor({2, 3}, 4, DType::kInt32)), input(Tensor::empty({0}, DType::kFloat32)),
                    input(rand_tensor({2, 7}, 5))}),
              integer(-1)},
             "cat promote");
  }
  SECTION("cat of bools along dim 0") {
    check_op(
        "aten::cat", "",
        {list({input(rand_tensor({1, 9}, 6, DType::kBool)), input(rand_tensor({4, 9}, 7, DType::kBool))})},
        "cat bool");
  }
  SECTION("stack in front, at the end (negative dim) and of strided inputs") {
    check_op("aten::stack", "", {list({input(rand_tensor({3, 5}, 8)), transposed({3, 5}, 0, 1, 9)})},
             "stack 0");
    check_op(
        "aten::stack", "",
        {list({input(rand_tensor({3, 5}, 10, DType::kInt64)), input(rand_tensor({3, 5}, 11, DType::kInt64)),
               input(rand_tensor({3, 5}, 12, DType::kInt64))}),
         integer(-1)},
        "stack -1");
  }
  SECTION("mismatched sizes raise the reference's error") {
    CHECK_THAT(
        opencl_error("aten::cat", "",
                     {list({input(rand_tensor({2, 3}, 1)), input(rand_tensor({3, 3}, 2))}), integer(1)}),
        Contains("sizes of tensors must match except in dimension 1"));
  }
}

TEST_CASE("OpenCL repeat, roll and flip", "[opencl][shape]") {
  SECTION("repeat adding a leading dim, on a strided input") {
    check_op("aten::repeat", "", {transposed({3, 2}, 0, 1, 1), ints({2, 1, 3})}, "repeat");
  }
  SECTION("repeat of int64 with a zero repeat and size-1 dims") {
    check_op("aten::repeat", "", {input(rand_tensor({1, 3, 1}, 2, DType::kInt64)), ints({4, 2, 5})},
             "repeat int64");
    check_op("aten::repeat", "", {input(rand_tensor({2, 3}, 3)), ints({0, 2})}, "repeat 0");
  }
  SECTION("roll two dims (one negative shift, one negative dim) on a strided input") {
    check_op("aten::roll", "", {transposed({5, 3, 4}, 0, 2, 4), ints({2, -1}), ints({0, -1})}, "roll dims");
  }
  SECTION("roll the flattened tensor by more than its size, and one dim twice") {
    check_op("aten::roll", "", {transposed({3, 4}, 0, 1, 5), ints({17})}, "roll flat");
    check_op("aten::roll", "", {input(rand_tensor({7, 2}, 6, DType::kBool)), ints({3, 5}), ints({0, 0})},
             "roll twice");
  }
  SECTION("flip two dims of a strided input, float16 and int8") {
    check_op("aten::flip", "", {transposed({3, 4, 5}, 0, 1, 7), ints({0, 2})}, "flip");
    check_op("aten::flip", "", {input(rand_tensor({3, 1, 5}, 8, DType::kFloat16)), ints({-1, 1})},
             "flip half");
    check_op("aten::flip", "", {input(rand_tensor({6, 5}, 9, DType::kInt8)), ints({0})}, "flip int8");
  }
}

TEST_CASE("OpenCL pad and constant_pad_nd", "[opencl][shape]") {
  SECTION("constant pads on the last two dims with a value, and a negative pad that crops") {
    check_op("aten::constant_pad_nd", "",
             {input(rand_tensor({2, 3, 4}, 1)), ints({1, 2, 0, 3}), constant(IValue(1.5))}, "constant pad");
    check_op("aten::constant_pad_nd", "", {transposed({2, 5, 4}, 1, 2, 2), ints({-1, 2, 2, -3})}, "crop");
    check_op("aten::pad", "",
             {input(rand_tensor({3, 5}, 3, DType::kInt64)), ints({2, 1}), constant(IValue("constant")),
              constant(IValue(7.0))},
             "pad int64");
  }
  SECTION("reflect, replicate and circular") {
    check_op("aten::pad", "",
             {input(rand_tensor({2, 3, 5}, 4)), ints({2, 1, 2, 0}), constant(IValue("reflect"))}, "reflect");
    check_op("aten::pad", "",
             {transposed({2, 3, 5}, 0, 2, 5), ints({1, 3, 2, 2}), constant(IValue("replicate"))},
             "replicate");
    check_op("aten::pad", "",
             {input(rand_tensor({1, 2, 4, 3}, 6)), ints({2, 3, 1, 4}), constant(IValue("circular"))},
             "circular");
  }
  SECTION("reflect padding as large as the dim raises the reference's error") {
    CHECK_THAT(opencl_error("aten::pad", "",
                            {input(rand_tensor({2, 3}, 1)), ints({3, 0}), constant(IValue("reflect"))}),
               Contains("padding size should be less than the corresponding input dimension"));
  }
}

TEST_CASE("OpenCL tril and triu", "[opencl][shape]") {
  check_op("aten::tril", "", {transposed({2, 5, 4}, 1, 2, 1)}, "tril");
  check_op("aten::tril", "", {input(rand_tensor({3, 6}, 2)), integer(-2)}, "tril -2");
  check_op("aten::triu", "", {input(rand_tensor({4, 4}, 3, DType::kBool)), integer(1)}, "triu bool");
  check_op("aten::triu", "", {input(rand_tensor({2, 1, 3, 7}, 4, DType::kInt64)), integer(-1)}, "triu int64");
}

TEST_CASE("OpenCL advanced indexing reads (aten::index)", "[opencl][shape][index]") {
  const Tensor x = rand_tensor({5, 6, 7}, 1);
  SECTION("one index tensor on the device, int32 with negative values") {
    check_op("aten::index", "Tensor",
             {input(x), list({input(ints_tensor({4}, {0, -1, 3, -5}, DType::kInt32))})}, "x[i]");
  }
  SECTION("None then a 2-D constant index: B replaces the indexed dim") {
    check_op("aten::index", "Tensor",
             {input(x), list({none(), constant(IValue(ints_tensor({2, 3}, {5, 0, 2, 1, -6, 4})))})},
             "x[:, i2d]");
  }
  SECTION("separated advanced indices broadcast together and go first") {
    check_op(
        "aten::index", "Tensor",
        {input(x), list({input(ints_tensor({2, 1}, {4, 1})), none(), input(ints_tensor({3}, {6, 0, -2}))})},
        "x[a, :, b]");
  }
  SECTION("adjacent advanced indices after a slice keep their place, on a strided self") {
    check_op("aten::index", "Tensor",
             {transposed({7, 6, 5}, 0, 2, 2),
              list({none(), input(ints_tensor({3}, {1, 5, 0})), input(ints_tensor({1}, {4}))})},
             "xt[:, a, b]");
  }
  SECTION("0-dim index tensors drop their dims; int64 self") {
    check_op("aten::index", "Tensor",
             {input(rand_tensor({4, 3}, 3, DType::kInt64)),
              list({input(ints_tensor({}, {2})), input(ints_tensor({}, {-1}))})},
             "x[i, j] scalars");
  }
  SECTION("a bool mask known on the host") {
    std::vector<int64_t> m(30);
    for (size_t i = 0; i < m.size(); ++i) m[i] = (i * 7) % 3 == 0;
    check_op("aten::index", "Tensor", {input(x), list({constant(IValue(bools({5, 6}, m)))})}, "x[host mask]");
  }
  SECTION("a bool mask computed on the device: its count is read back, and other masks run other segments") {
    OpGraph og("aten::index", "Tensor", {input(x), list({none(), input(bools({6}, {1, 0, 0, 1, 1, 0}))})});
    og.check("x[:, mask] 3 set");
    og.check("x[:, mask] 5 set", {IValue(x), IValue(bools({6}, {1, 1, 0, 1, 1, 1}))});
    og.check("x[:, mask] none set", {IValue(x), IValue(bools({6}, {0, 0, 0, 0, 0, 0}))});
    og.check("x[:, mask] 3 set again",
             {IValue(rand_tensor({5, 6, 7}, 9)), IValue(bools({6}, {0, 1, 1, 0, 1, 0}))});
  }
  SECTION("a device mask next to an index tensor") {
    check_op("aten::index", "Tensor",
             {input(x), list({input(bools({5}, {0, 1, 1, 0, 1})), none(), input(ints_tensor({1}, {3}))})},
             "x[mask, :, i]");
  }
  SECTION("an out-of-range index known on the host raises the reference's error") {
    CHECK_THAT(
        opencl_error("aten::index", "Tensor", {input(x), list({constant(IValue(ints_tensor({2}, {1, 5})))})}),
        Contains("index 5 is out of bounds for dimension 0 with size 5"));
  }
  SECTION("an out-of-range index computed on the device raises after the run") {
    CHECK_THAT(
        opencl_error("aten::index", "Tensor", {input(x), list({none(), input(ints_tensor({2}, {1, -7}))})}),
        Contains("out of bounds"));
  }
}

TEST_CASE("OpenCL advanced indexing writes (index_put_, index_put)", "[opencl][shape][index]") {
  SECTION("unique indices on the device, values broadcast over a row") {
    check_op("aten::index_put_", "",
             {input(rand_tensor({4, 5}, 1)), list({input(ints_tensor({3}, {2, 0, -1}))}),
              input(rand_tensor({5}, 2))},
             "x[i] = row");
  }
  SECTION("accumulate with repeated indices adds them all up, in float32 and int32") {
    check_op("aten::index_put_", "",
             {input(rand_tensor({4, 5}, 3)), list({input(ints_tensor({5}, {0, 2, 0, 2, 1}))}),
              input(rand_tensor({5, 5}, 4)), constant(IValue(true))},
             "x[i] += v");
    check_op("aten::index_put_", "",
             {input(rand_tensor({6, 3}, 5, DType::kInt32)),
              list({constant(IValue(ints_tensor({4}, {5, 5, 5, 0}))), input(ints_tensor({1}, {2}))}),
              input(rand_tensor({4}, 6, DType::kInt32)), constant(IValue(true))},
             "x[i, j] += v int32");
  }
  SECTION("separated indices on a strided self, values converted from float64") {
    check_op("aten::index_put_", "",
             {transposed({4, 3, 5}, 0, 2, 7),
              list({input(ints_tensor({2}, {3, 0})), none(), input(ints_tensor({2, 1}, {4, 1}))}),
              input(rand_tensor({2, 2, 3}, 8, DType::kFloat64))},
             "xt[a, :, b] = v");
  }
  SECTION("a device bool mask with a scalar value, and with one value per selected element") {
    check_op(
        "aten::index_put_", "",
        {input(rand_tensor({3, 4}, 9)), list({input(bools({3, 4}, {1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0}))}),
         input(Tensor::scalar_double(-2.5, DType::kFloat32))},
        "x[mask] = s");
    OpGraph og("aten::index_put_", "",
               {input(rand_tensor({3, 4, 2}, 10)), list({none(), input(bools({4}, {0, 1, 0, 1}))}),
                input(rand_tensor({3, 2, 1}, 11)), constant(IValue(true))});
    og.check("x[:, mask] += v");
    og.check("x[:, mask] += v again", {IValue(rand_tensor({3, 4, 2}, 12)), IValue(bools({4}, {1, 0, 0, 1})),
                                       IValue(rand_tensor({3, 2, 1}, 13))});
  }
  SECTION("values that do not match the mask's count raise after the run") {
    CHECK_THAT(opencl_error("aten::index_put_", "",
                            {input(rand_tensor({5}, 14)), list({input(bools({5}, {1, 1, 0, 0, 0}))}),
                             input(rand_tensor({3}, 15))}),
               Contains("shape mismatch"));
  }
  SECTION("index_put returns a new tensor and leaves self alone") {
    check_op("aten::index_put", "",
             {input(rand_tensor({3, 6}, 16)), list({none(), constant(IValue(ints_tensor({2}, {5, 1})))}),
              input(rand_tensor({3, 1}, 17))},
             "index_put");
  }
}

TEST_CASE("OpenCL index_select and gather", "[opencl][shape][index]") {
  SECTION("index_select along a negative dim of a strided self, int32 index on the device") {
    check_op("aten::index_select", "",
             {transposed({4, 3, 5}, 0, 2, 1), integer(-1), input(ints_tensor({3}, {4, 0, 4}, DType::kInt32))},
             "index_select");
    check_op(
        "aten::index_select", "",
        {input(rand_tensor({4, 3}, 2, DType::kInt64)), integer(0), constant(IValue(ints_tensor({}, {2})))},
        "index_select 0-dim index");
  }
  SECTION("an index_select index out of range raises the reference's error") {
    CHECK_THAT(
        opencl_error("aten::index_select", "",
                     {input(rand_tensor({4, 3}, 3)), integer(1), constant(IValue(ints_tensor({2}, {0, 3})))}),
        Contains("out of range for dimension 1"));
  }
  SECTION("gather with a smaller index, negative values, on the device and as a constant") {
    const Tensor idx = ints_tensor({2, 3, 3}, {0, 1, 2, -1, -2, 3, 0, 0, 3, 2, 1, -4, 3, 3, 0, 1, 1, 2});
    check_op("aten::gather", "", {input(rand_tensor({3, 4, 5}, 4)), integer(1), input(idx)}, "gather dim 1");
    check_op("aten::gather", "", {transposed({3, 4, 5}, 0, 1, 5), integer(-2), constant(IValue(idx))},
             "gather const");
    check_op(
        "aten::gather", "",
        {input(rand_tensor({3, 4}, 6, DType::kInt64)), integer(0), input(ints_tensor({1, 4}, {2, 0, 1, 2}))},
        "gather dim 0");
  }
  SECTION("a gather index out of range computed on the device raises after the run") {
    CHECK_THAT(opencl_error("aten::gather", "",
                            {input(rand_tensor({3, 4}, 7)), integer(1), input(ints_tensor({1, 2}, {0, 4}))}),
               Contains("out of bounds"));
  }
}

TEST_CASE("OpenCL masked_select, nonzero and where(condition)", "[opencl][shape][index]") {
  SECTION("masked_select with a broadcast device mask, run with several masks") {
    OpGraph og("aten::masked_select", "", {transposed({3, 4}, 0, 1, 1), input(bools({4}, {1, 0, 1, 1}))});
    og.check("masked_select 3 of 4");
    og.check("masked_select 1 of 4", {og.inputs[0], IValue(bools({4}, {0, 0, 1, 0}))});
  }
  SECTION("masked_select with a host mask broadcasting self") {
    check_op("aten::masked_select", "",
             {input(rand_tensor({1, 5}, 2, DType::kInt32)), constant(IValue(bools({3, 1}, {1, 0, 1})))},
             "masked_select host mask");
  }
  SECTION("nonzero and where of device values, with other values on a second run") {
    const Tensor a = ints_tensor({3, 1, 4}, {0, 2, 0, 1, 0, 0, 0, 0, 5, 0, -1, 0}, DType::kInt32);
    const Tensor b = ints_tensor({3, 1, 4}, {1, 1, 0, 1, 1, 1, 0, 0, 5, 0, -1, 0}, DType::kInt32);
    OpGraph nz("aten::nonzero", "", {input(a)});
    nz.check("nonzero");
    nz.check("nonzero again", {IValue(b)});
    OpGraph w("aten::where", "", {input(rand_tensor({4, 5}, 3, DType::kBool))});
    w.check("where(cond)");
    w.check("where(cond) again", {IValue(rand_tensor({4, 5}, 4, DType::kBool))});
  }
}
