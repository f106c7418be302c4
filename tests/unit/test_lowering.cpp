// Lowering printed TorchScript to the Graph IR: the seed model, traced shape arithmetic and a
// scripted model with loops and branches (archives made by tests/fixtures/frontend/
// make_frontend_fixtures.py), plus small in-memory archives for single features and errors.
// The assertions are on the graph's structure (op kinds, overloads, blocks, types); numbers are
// the end-to-end tests' job.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "runtime/error.h"
#include "runtime/graph/ir.h"
#include "runtime/graph/passes.h"
#include "runtime/ops/registry.h"
#include "runtime/torchscript/archive.h"
#include "runtime/torchscript/lowering.h"
#include "runtime/torchscript/overload.h"

using namespace convoy;

namespace {

std::string fixture(const std::string& name) {
  return std::string(CONVOY_SOURCE_DIR) + "/tests/fixtures/frontend/" + name;
}

const OpRegistry& default_registry() {
  static const OpRegistry registry = make_default_registry();
  return registry;
}

// Node kinds of a block in order, without constants; "kind.overload" when `overloads` is set.
std::vector<std::string> kinds(const Block* block, bool overloads = false) {
  std::vector<std::string> out;
  for (const auto& n : block->nodes) {
    if (n->kind == "prim::Constant") continue;
    std::string k = n->kind;
    if (overloads && n->op && !n->op->schema.overload.empty()) k += "." + n->op->schema.overload;
    out.push_back(k);
  }
  return out;
}

std::vector<const Node*> all_nodes(const Graph& g, const std::string& kind) {
  std::vector<const Node*> out;
  for_each_node(const_cast<Block*>(g.top()), [&](Node* n) {
    if (n->kind == kind) out.push_back(n);
  });
  return out;
}

const Node* first_node(const Block* block, const std::string& kind) {
  for (const auto& n : block->nodes)
    if (n->kind == kind) return n.get();
  return nullptr;
}

const IValue* constant_value(const Value* v) {
  return v->node && v->node->kind == "prim::Constant" ? &v->node->constant : nullptr;
}

// An archive held in memory: the root module object and code files keyed as in an archive.
Archive memory_archive(std::shared_ptr<Object> root, std::map<std::string, std::string> code,
                       IValueList constants = {}) {
  Archive a;
  a.path = "memory.pt";
  a.top_folder = "memory";
  a.version = 3;
  a.module = IValue(std::move(root));
  a.code = std::move(code);
  a.constants = std::move(constants);
  return a;
}

std::shared_ptr<Object> module_object(const std::string& type) {
  auto o = std::make_shared<Object>();
  o->type_name = type;
  o->set("training", IValue(false));
  return o;
}

// The message of the convoy::Error `fn` throws, checking its kind.
std::string error_of(const std::function<void()>& fn, ErrorKind kind) {
  try {
    fn();
  } catch (const Error& e) {
    CHECK(e.kind() == kind);
    return e.what();
  }
  return "no error";
}

Tensor small_tensor(const Shape& shape) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return Tensor::from_doubles(shape, DType::kFloat32, v);
}

}  // namespace

TEST_CASE("lowering: the seed model becomes exactly its ops", "[frontend][lowering]") {
  Archive archive = load_archive(fixture("seed.pt"));
  auto g = lower_module(archive, default_registry());
  // my_abs inlined as a prim::If, Linear and ReLU inlined, `+` resolved to add.Tensor.
  CHECK(kinds(g->top(), true) == std::vector<std::string>{"aten::sum", "aten::gt.Scalar", "aten::Bool.Tensor",
                                                          "prim::If", "aten::linear", "aten::add.Tensor",
                                                          "aten::relu"});
  REQUIRE(g->inputs().size() == 2);
  CHECK(g->inputs()[0]->name == "x");
  CHECK(g->inputs()[1]->name == "h");
  CHECK(g->inputs()[0]->type->str() == "Tensor");
  REQUIRE(g->outputs().size() == 1);
  CHECK(g->outputs()[0]->node->kind == "aten::relu");

  const Node* branch = first_node(g->top(), "prim::If");
  REQUIRE(branch->blocks.size() == 2);
  CHECK(branch->outputs.size() == 1);
  CHECK(kinds(branch->blocks[0].get()).empty());
  CHECK(branch->blocks[0]->returns == std::vector<Value*>{g->inputs()[0]});  // `_0 = x`
  CHECK(kinds(branch->blocks[1].get()) == std::vector<std::string>{"aten::neg"});
  CHECK(branch->source.str() == "code/__torch__.py:17");

  // The sum's omitted dtype comes from the schema default; gt compares with the literal 0.
  const Node* sum = first_node(g->top(), "aten::sum");
  REQUIRE(sum->inputs.size() == 2);
  CHECK(constant_value(sum->inputs[1])->is_none());
  const Node* gt = first_node(g->top(), "aten::gt");
  CHECK(constant_value(gt->inputs[1])->to_int() == 0);
  CHECK(gt->inputs[0] == sum->outputs[0]);

  // Linear's weight and bias are constants aliasing the archive's storage, not copies.
  const Node* linear = first_node(g->top(), "aten::linear");
  CHECK(linear->source.str() == "code/__torch__/torch/nn/modules/linear.py:12");
  CHECK(linear->inputs[0] == branch->outputs[0]);
  const Object& lin = *archive.root().find("linear")->to_object();
  const IValue* weight = constant_value(linear->inputs[1]);
  REQUIRE(weight != nullptr);
  CHECK(weight->to_tensor().shares_storage_with(lin.find("weight")->to_tensor()));
  CHECK(weight->to_tensor().data<float>() == lin.find("weight")->to_tensor().data<float>());
  CHECK(linear->inputs[1]->type->str() == "Tensor(float32[2, 4])");
  CHECK(constant_value(linear->inputs[2])->to_tensor().sizes() == Shape{2});

  const Node* add = first_node(g->top(), "aten::add");
  CHECK(add->inputs[0] == linear->outputs[0]);
  CHECK(add->inputs[1] == g->inputs()[1]);
  CHECK(constant_value(add->inputs[2])->to_int() == 1);  // alpha's default
  CHECK(add->source.str() == "code/__torch__.py:14");
  CHECK(first_node(g->top(), "aten::relu")->source.str() ==
        "code/__torch__/torch/nn/modules/activation.py:8");
  CHECK(print_graph(*g).find("aten::linear") != std::string::npos);
}

TEST_CASE("lowering: traced shape arithmetic, Sequential and CONSTANTS", "[frontend][lowering]") {
  Archive archive = load_archive(fixture("traced_shapes.pt"));
  auto g = lower_module(archive, default_registry());
  std::vector<std::string> k = kinds(g->top());
  for (const char* op :
       {"aten::_convolution", "aten::batch_norm", "aten::relu", "prim::NumToTensor", "aten::Int",
        "aten::floor_divide", "aten::view", "aten::reshape", "aten::slice", "aten::linear", "aten::sum"})
    CHECK(std::count(k.begin(), k.end(), op) > 0);
  CHECK(std::count(k.begin(), k.end(), "prim::NumToTensor") == 4);
  CHECK(std::count(k.begin(), k.end(), "prim::If") == 0);
  // A tuple return is one graph output per element.
  REQUIRE(g->outputs().size() == 2);
  CHECK(g->outputs()[0]->node->kind == "aten::linear");
  CHECK(g->outputs()[1]->node->kind == "aten::sum");

  // `getattr(self, "2")` of the Sequential is the ReLU, whose class file is mangled.
  CHECK(first_node(g->top(), "aten::relu")->source.str() ==
        "code/__torch__/torch/nn/modules/activation/___torch_mangle_3.py:8");
  // CONSTANTS.c0 is the archive's constant tensor itself.
  REQUIRE(!archive.constants.empty());
  const Node* div = first_node(g->top(), "aten::floor_divide");
  const IValue* c0 = constant_value(div->inputs[1]);
  REQUIRE(c0 != nullptr);
  CHECK(c0->to_tensor().shares_storage_with(archive.constants[0].to_tensor()));
  // The slice to the end uses the printed 9223372036854775807.
  const Node* slice = first_node(g->top(), "aten::slice");
  CHECK(constant_value(slice->inputs[3])->to_int() == std::numeric_limits<int64_t>::max());
  // The conv's int lists are built from the printed list literals.
  const Node* conv = first_node(g->top(), "aten::_convolution");
  REQUIRE(conv->inputs.size() == 13);
  CHECK(conv->inputs[3]->node->kind == "prim::ListConstruct");
}

TEST_CASE("lowering: loops and branches of a scripted model in SSA form", "[frontend][lowering]") {
  Archive archive = load_archive(fixture("scripted_control.pt"));
  auto g = lower_module(archive, default_registry());
  REQUIRE(g->inputs().size() == 3);
  CHECK(g->inputs()[1]->type->str() == "int");
  CHECK(g->inputs()[2]->type->str() == "Tensor?");
  REQUIRE(g->outputs().size() == 2);

  auto loops = all_nodes(*g, "prim::Loop");
  REQUIRE(loops.size() == 3);
  // for i in range(self.n): y carried through the body, the branch on i % 2 inside.
  const Node* for_loop = loops[0];
  CHECK(constant_value(for_loop->inputs[0])->to_int() == 3);
  CHECK(constant_value(for_loop->inputs[1])->to_bool() == true);
  REQUIRE(for_loop->inputs.size() == 3);
  CHECK(for_loop->inputs[2] == g->inputs()[0]);
  CHECK(for_loop->outputs.size() == 1);
  const Block* body = for_loop->blocks[0].get();
  REQUIRE(body->params.size() == 2);
  CHECK(body->params[0]->type->str() == "int");
  CHECK(kinds(body) ==
        std::vector<std::string>{"aten::linear", "aten::mul", "aten::remainder", "aten::eq", "prim::If"});
  const Node* inner_if = first_node(body, "prim::If");
  CHECK(kinds(inner_if->blocks[0].get()) == std::vector<std::string>{"aten::add"});
  CHECK(kinds(inner_if->blocks[1].get()) == std::vector<std::string>{"aten::sub"});
  REQUIRE(body->returns.size() == 2);
  CHECK(body->returns[1] == inner_if->outputs[0]);
  // The remainder reads the loop index.
  CHECK(first_node(body, "aten::remainder")->inputs[0] == body->params[0]);

  // The branch on a shape produces z from either reduction.
  const Node* shape_if = nullptr;
  for (const auto& n : g->top()->nodes)
    if (n->kind == "prim::If" && !shape_if) shape_if = n.get();
  REQUIRE(shape_if != nullptr);
  CHECK(shape_if->inputs[0]->node->kind == "aten::gt");
  CHECK(kinds(shape_if->blocks[0].get(), true) ==
        std::vector<std::string>{"prim::ListConstruct", "aten::sum.dim_IntList"});
  CHECK(kinds(shape_if->blocks[1].get(), true) ==
        std::vector<std::string>{"prim::ListConstruct", "aten::mean.dim"});
  CHECK(loops[1]->inputs[3] == shape_if->outputs[0]);

  // The while loop: unbounded trip count, condition and three carried values (_2, z0, j).
  const Node* while_loop = loops[1];
  CHECK(constant_value(while_loop->inputs[0])->to_int() == std::numeric_limits<int64_t>::max());
  CHECK(while_loop->inputs[1]->node->kind == "aten::lt");
  CHECK(while_loop->outputs.size() == 3);
  const Block* wbody = while_loop->blocks[0].get();
  REQUIRE(wbody->returns.size() == 4);
  CHECK(wbody->returns[0] == first_node(wbody, "prim::If")->outputs[0]);

  // Building a list in a loop: nothing is carried (the list is mutated in place), and
  // __getitem__ on int[] gives an int.
  const Node* list_loop = loops[2];
  CHECK(list_loop->outputs.empty());
  const Node* getitem = first_node(list_loop->blocks[0].get(), "aten::__getitem__");
  REQUIRE(getitem != nullptr);
  CHECK(getitem->outputs[0]->type->str() == "int");
  CHECK(first_node(list_loop->blocks[0].get(), "aten::append") != nullptr);

  // `bias is not None` on an Optional input is a runtime test; the assert and raise stay.
  CHECK(all_nodes(*g, "aten::__isnot__").size() == 1);
  auto raises = all_nodes(*g, "prim::RaiseException");
  REQUIRE(raises.size() == 2);
  CHECK(constant_value(raises[0]->inputs[0])->to_string() == "AssertionError: need 2d");
  CHECK(constant_value(raises[1]->inputs[0])->to_string() == "bad k");
  // The free function scale_rows is inlined with its default n=3.
  const Node* scale = g->outputs()[0]->node->inputs[0]->node;
  CHECK(scale->kind == "aten::mul");
  CHECK(constant_value(scale->inputs[1])->to_int() == 3);
}

TEST_CASE("lowering: defaults of omitted inputs fold the branches that test them", "[frontend][lowering]") {
  Archive archive = load_archive(fixture("scripted_control.pt"));
  LoweringOptions options;
  options.num_inputs = 1;  // k=2 and bias=None from their defaults
  auto g = lower_module(archive, default_registry(), options);
  CHECK(g->inputs().size() == 1);
  CHECK(all_nodes(*g, "aten::__isnot__").empty());  // bias is None: the branch is gone
  CHECK(all_nodes(*g, "aten::add").size() == 3);    // y + 1, j + 1 and + len(sizes); no y + bias
  auto raises = all_nodes(*g, "prim::RaiseException");
  REQUIRE(raises.size() == 1);  // k < 0 is false at load time
  CHECK(constant_value(raises[0]->inputs[0])->to_string() == "AssertionError: need 2d");
  auto loops = all_nodes(*g, "prim::Loop");
  REQUIRE(loops.size() == 3);
  CHECK(constant_value(loops[1]->inputs[1])->to_bool() == true);  // 0 < k folded

  options.num_inputs = 4;
  CHECK_THAT(error_of([&] { lower_module(archive, default_registry(), options); }, ErrorKind::kInvalidInput),
             Catch::EndsWith("scripted_control.pt: forward takes 3 inputs, not 4"));
}

TEST_CASE("lowering: an op outside the registry fails at load time", "[frontend][lowering]") {
  Archive archive = load_archive(fixture("unsupported_op.pt"));
  CHECK(error_of([&] { lower_module(archive, default_registry()); }, ErrorKind::kUnsupported) ==
        "code/__torch__.py:9: unsupported op 'aten::frobnicate' (called with (Tensor))");
}

TEST_CASE("lowering: early returns and expressions in memory archives", "[frontend][lowering]") {
  const char* code = R"(class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.M,
    x: Tensor,
    n: int) -> Tensor:
    if torch.gt(n, 0):
      return torch.neg(x)
    y = torch.relu(x)
    if torch.eq(n, 0):
      return y
    else:
      return torch.sigmoid(y)
)";
  Archive a = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", code}});
  auto g = lower_module(a, default_registry());
  // The code after the first `if` runs only when it does not return: it lands in its else.
  CHECK(kinds(g->top()) == std::vector<std::string>{"aten::gt", "prim::If"});
  const Node* outer = first_node(g->top(), "prim::If");
  REQUIRE(g->outputs().size() == 1);
  CHECK(g->outputs()[0] == outer->outputs[0]);
  CHECK(kinds(outer->blocks[0].get()) == std::vector<std::string>{"aten::neg"});
  CHECK(kinds(outer->blocks[1].get()) == std::vector<std::string>{"aten::relu", "aten::eq", "prim::If"});
  const Node* inner = first_node(outer->blocks[1].get(), "prim::If");
  CHECK(kinds(inner->blocks[0].get()).empty());
  CHECK(kinds(inner->blocks[1].get()) == std::vector<std::string>{"aten::sigmoid"});
  CHECK(outer->blocks[1]->returns[0] == inner->outputs[0]);
}

TEST_CASE("lowering: Python operators, short-circuits and builtins", "[frontend][lowering]") {
  const char* code = R"(class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.M,
    x: Tensor,
    n: int) -> Tuple[Tensor, int, bool, float]:
    a = x + 1 if 0 < n < 10 else -x
    b = n // 2 % 3 + len([1, 2, n])
    c = not (n == 1 or n is None)
    d = float(n) * 2.5
    e = annotate(List[int], [])
    f = torch.format("n={} x{}", n, "s")
    return (a * x, b, c, d + float(len(f)))
)";
  Archive a = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", code}});
  auto g = lower_module(a, default_registry());
  REQUIRE(g->outputs().size() == 4);
  CHECK(g->outputs()[1]->type->str() == "int");
  CHECK(g->outputs()[2]->type->str() == "bool");
  CHECK(g->outputs()[3]->type->str() == "float");
  std::vector<std::string> top = kinds(g->top(), true);
  // `0 < n < 10` short-circuits through a prim::If whose false branch is the constant False.
  auto ifs = all_nodes(*g, "prim::If");
  REQUIRE(ifs.size() == 3);
  const Node* chain = ifs[0];
  CHECK(kinds(chain->blocks[0].get(), true) == std::vector<std::string>{"aten::lt.int"});
  CHECK(constant_value(chain->blocks[1]->returns[0])->to_bool() == false);
  // The conditional expression: x + 1 (add.Scalar) or neg.
  CHECK(kinds(ifs[1]->blocks[0].get(), true) == std::vector<std::string>{"aten::add.Scalar"});
  CHECK(kinds(ifs[1]->blocks[1].get(), true) == std::vector<std::string>{"aten::neg"});
  // `n is None` on an int is known to be False: no runtime identity test is emitted.
  CHECK(std::count(top.begin(), top.end(), "aten::__is__") == 0);
  CHECK(constant_value(ifs[2]->blocks[1]->returns[0])->to_bool() == false);
  CHECK(std::count(top.begin(), top.end(), "aten::floordiv.int") == 1);
  CHECK(std::count(top.begin(), top.end(), "aten::remainder.int") == 1);
  CHECK(std::count(top.begin(), top.end(), "aten::__not__") == 1);
  CHECK(std::count(top.begin(), top.end(), "aten::Float.int") == 2);
  CHECK(std::count(top.begin(), top.end(), "aten::len.str") == 1);
  CHECK(std::count(top.begin(), top.end(), "aten::mul.float") == 1);
  CHECK(std::count(top.begin(), top.end(), "aten::len.t") == 1);
  // format() is built from str() and concatenation.
  CHECK(std::count(top.begin(), top.end(), "aten::str") == 1);
  CHECK(std::count(top.begin(), top.end(), "aten::add.str") == 3);
}

TEST_CASE("lowering: module attributes, methods, functions and tuples", "[frontend][lowering]") {
  const char* top_code = R"(class Top(Module):
  __parameters__ = []
  __buffers__ = ["buf", ]
  buf : Tensor
  training : bool
  scale : float
  flags : List[int]
  name : str
  maybe : Optional[Tensor]
  size : Final[int] = 7
  __annotations__["0"] = __torch__.sub.Sub
  def forward(self: __torch__.Top,
    x: Tensor) -> Tuple[Tensor, Tuple[Tensor, int]]:
    _0 = getattr(self, "0")
    w = _0.weight
    _f = __torch__.sub.helper
    y = _f(x, )
    if self.training:
      y = torch.neg(y)
    if torch.__is__(self.maybe, None):
      z = (self).twice(y, )
    else:
      z = torch.relu(y)
    p = __torch__.sub.Pair(z, 2)
    q, r, = p
    s = torch.mul(w, self.scale)
    return (torch.add(s, self.buf), (q, torch.add(self.size, r)))
  def twice(self: __torch__.Top,
    t: Tensor) -> Tensor:
    return torch.add(t, t)
)";
  const char* sub_code = R"(class Sub(Module):
  __parameters__ = ["weight", ]
  __buffers__ = []
  weight : Tensor
  training : bool
class Pair(NamedTuple):
  a : Tensor
  b : int
def helper(x: Tensor,
    k: int=4) -> Tensor:
  return torch.mul(x, k)
)";
  auto root = module_object("__torch__.Top");
  auto sub = module_object("__torch__.sub.Sub");
  Tensor weight = small_tensor({2, 3});
  sub->set("weight", IValue(weight));
  root->set("buf", IValue(small_tensor({3})));
  root->set("scale", IValue(0.5));
  root->set("flags", IValue::int_list({1, 2}));
  root->set("name", IValue(std::string("top")));
  root->set("maybe", IValue());
  root->set("0", IValue(sub));
  Archive a = memory_archive(root, {{"code/__torch__.py", top_code}, {"code/__torch__/sub.py", sub_code}});
  auto g = lower_module(a, default_registry());
  eliminate_dead_code(*g);  // the tuples built and taken apart again
  // training is False and maybe is None: both ifs are decided at load time.
  CHECK(kinds(g->top(), true) == std::vector<std::string>{"aten::mul.Scalar", "aten::add.Tensor",
                                                          "aten::mul.Scalar", "aten::add.Tensor"});
  const Node* helper = first_node(g->top(), "aten::mul");
  CHECK(helper->inputs[0] == g->inputs()[0]);
  CHECK(constant_value(helper->inputs[1])->to_int() == 4);
  CHECK(helper->source.str() == "code/__torch__/sub.py:11");
  // Nested tuples are flattened into the outputs: s + buf, q (the twice() result), 7 + 2.
  REQUIRE(g->outputs().size() == 3);
  CHECK(g->outputs()[1]->node->source.str() == "code/__torch__.py:30");
  CHECK(constant_value(g->outputs()[2])->to_int() == 9);  // Final size 7 + the tuple's 2, folded
  const Node* scaled = g->outputs()[0]->node->inputs[0]->node;
  CHECK(scaled->kind == "aten::mul");
  CHECK(constant_value(scaled->inputs[0])->to_tensor().shares_storage_with(weight));
  CHECK(constant_value(scaled->inputs[1])->to_double() == 0.5);
}

TEST_CASE("lowering: load-time errors name the code file and line", "[frontend][lowering]") {
  auto lower = [](const std::string& body, const std::string& params = "x: Tensor") {
    std::string code =
        "class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n"
        "  def forward(self: __torch__.M, " +
        params + ") -> Tensor:\n" + body;
    Archive a = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", code}});
    lower_module(a, default_registry());
  };
  CHECK(error_of([&] { lower("    return torch.relu(zz)\n"); }, ErrorKind::kInvalidInput) ==
        "code/__torch__.py:6: undefined name 'zz'");
  CHECK(error_of([&] { lower("    if torch.gt(n, 0):\n      y = x\n    return y\n", "x: Tensor, n: int"); },
                 ErrorKind::kInvalidInput) ==
        "code/__torch__.py:8: 'y' is defined only in the true branch of the if at code/__torch__.py:6");
  CHECK(error_of([&] { lower("    for i in range(n):\n      y = x\n    return y\n", "x: Tensor, n: int"); },
                 ErrorKind::kInvalidInput) ==
        "code/__torch__.py:8: 'y' is assigned inside the loop at code/__torch__.py:6 and is not defined "
        "after it");
  CHECK(error_of([&] { lower("    return torch.add(x, \"s\")\n"); }, ErrorKind::kUnsupported)
            .find("code/__torch__.py:6: no overload of 'aten::add' accepts (Tensor, str); candidates:") == 0);
  CHECK(error_of([&] { lower("    return self.nothing\n"); }, ErrorKind::kInvalidInput) ==
        "code/__torch__.py:6: module __torch__.M has no attribute 'nothing'");
  CHECK(error_of([&] { lower("    return (self).forward(x, x, )\n"); }, ErrorKind::kInvalidInput) ==
        "code/__torch__.py:6: forward of __torch__.M takes 1 arguments but 2 were given");
  CHECK(error_of([&] { lower("    return (self).forward(x, )\n"); }, ErrorKind::kUnsupported)
            .find("calls nested more than 100 deep while inlining forward of __torch__.M") !=
        std::string::npos);
  CHECK(error_of([&] { lower("    return __torch__.missing.f(x, )\n"); }, ErrorKind::kInvalidInput) ==
        "code/__torch__.py:6: the archive has no 'code/__torch__/missing.py' (for __torch__.missing.f)");
  CHECK(error_of(
            [&] {
              lower("    if torch.gt(n, 0):\n      y = x\n    else:\n      y = 1\n    return y\n",
                    "x: Tensor, n: int");
            },
            ErrorKind::kInvalidInput) ==
        "code/__torch__.py:6: 'y' is Tensor in the true branch but int in the false branch");
  CHECK(error_of([&] { lower("    return x\n  def forward(self: __torch__.M) -> int:\n    return 1\n"); },
                 ErrorKind::kInvalidInput) == "code/__torch__.py:7: method 'forward' is defined twice");
}

TEST_CASE("lowering: loop-carried values widen to a common type", "[frontend][lowering]") {
  const char* code = R"(class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.M,
    x: Tensor,
    n: int) -> Optional[Tensor]:
    h = None
    for i in range(n):
      h = torch.relu(x)
    return h
)";
  Archive a = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", code}});
  auto g = lower_module(a, default_registry());
  auto loops = all_nodes(*g, "prim::Loop");
  REQUIRE(loops.size() == 1);
  REQUIRE(loops[0]->outputs.size() == 1);
  CHECK(loops[0]->outputs[0]->type->str() == "Tensor?");
  CHECK(loops[0]->blocks[0]->params[1]->type->str() == "Tensor?");
  CHECK(g->outputs()[0] == loops[0]->outputs[0]);
  // Only the final attempt's loop is in the graph.
  CHECK(kinds(g->top()) == std::vector<std::string>{"prim::Loop"});
}

TEST_CASE("lowering: range(start, stop), augmented assignment and argument checks", "[frontend][lowering]") {
  const char* code = R"(class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.M,
    x: Tensor,
    n: int) -> Tensor:
    acc = torch.clone(x)
    for i in range(2, n):
      acc += i
    return (self).scaled(acc, )
  def scaled(self: __torch__.M,
    t: Tensor,
    f: float=2) -> Tensor:
    return torch.mul(t, f)
)";
  Archive a = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", code}});
  auto g = lower_module(a, default_registry());
  const Node* loop = first_node(g->top(), "prim::Loop");
  REQUIRE(loop != nullptr);
  // The trip count is stop - start; the index is start + iteration.
  CHECK(loop->inputs[0]->node->kind == "aten::sub");
  CHECK(loop->inputs[0]->node->inputs[0] == g->inputs()[1]);
  CHECK(constant_value(loop->inputs[0]->node->inputs[1])->to_int() == 2);
  const Block* body = loop->blocks[0].get();
  CHECK(kinds(body, true) == std::vector<std::string>{"aten::add.int", "aten::add_.Scalar"});
  CHECK(body->nodes.back()->inputs[1] == first_node(body, "aten::add")->outputs[0]);
  // Tensor `+=` is in place, as in Python: the value carried is add_'s result.
  CHECK(body->returns[1] == body->nodes.back()->outputs[0]);
  // An int default for a float parameter becomes a float constant.
  const Node* mul = first_node(g->top(), "aten::mul");
  CHECK(constant_value(mul->inputs[1])->is_double());
  CHECK(constant_value(mul->inputs[1])->to_double() == 2.0);

  std::string bad = std::string(code).replace(std::string(code).find("(self).scaled(acc, )"), 20, "(self).scaled(acc, \"s\", )");
  Archive b = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", bad}});
  CHECK(error_of([&] { lower_module(b, default_registry()); }, ErrorKind::kInvalidInput) ==
        "code/__torch__.py:11: argument 'f' of scaled of __torch__.M is declared float but receives str");
}

TEST_CASE("overload resolution: exact types first, then conversions, defaults and type variables",
          "[frontend][lowering]") {
  OpRegistry r;
  auto echo = [](IValueList& a) { return IValueList{a[0]}; };
  r.add("test::f.float(float a) -> float", echo);
  r.add("test::f.int(int a) -> int", echo);
  r.add("test::g.Scalar(Scalar a) -> Scalar", echo);
  r.add("test::pool(Tensor self, int[2] kernel, int dim=1, *, bool keepdim=False) -> Tensor", echo);
  r.add("test::pick(t[] l, int i) -> t", echo);
  r.add("test::lookup(Dict[str, t] d, str k) -> t?", echo);
  using lowering::resolve_overload;
  auto pick = [&](const std::string& op, std::vector<TypePtr> pos,
                  std::vector<std::pair<std::string, TypePtr>> kw = {}) {
    auto m = resolve_overload(r.overloads(op), pos, kw);
    return m ? m->op->schema.full_name() + "/" + std::to_string(m->conversions) : std::string("none");
  };
  // An int matches f.int exactly even though f.float (registered first) accepts it by conversion.
  CHECK(pick("test::f", {Type::integer()}) == "test::f.int/0");
  CHECK(pick("test::f", {Type::floating()}) == "test::f.float/0");
  CHECK(pick("test::f", {Type::boolean()}) == "none");
  CHECK(pick("test::g", {Type::boolean()}) == "test::g.Scalar/1");
  CHECK(pick("test::g", {Type::tensor()}) == "none");
  // int[2] takes one int (repeated), keyword-only arguments only by keyword.
  CHECK(pick("test::pool", {Type::tensor(), Type::integer()}) == "test::pool/1");
  CHECK(pick("test::pool", {Type::tensor(), Type::list(Type::integer()), Type::integer(), Type::boolean()}) ==
        "none");
  CHECK(pick("test::pool", {Type::tensor(), Type::list(Type::integer())}, {{"keepdim", Type::boolean()}}) ==
        "test::pool/0");
  CHECK(pick("test::pool", {Type::tensor(), Type::list(Type::integer())}, {{"nope", Type::boolean()}}) ==
        "none");
  auto m = resolve_overload(r.overloads("test::pool"), {Type::tensor(), Type::integer()}, {});
  REQUIRE(m);
  CHECK(m->sources[1].repeat_scalar);
  CHECK(m->sources[2].kind == lowering::ArgSource::kDefault);
  CHECK(m->sources[3].kind == lowering::ArgSource::kDefault);
  // Type variables bind from the arguments.
  auto p = resolve_overload(r.overloads("test::pick"), {Type::list(Type::floating()), Type::integer()}, {});
  REQUIRE(p);
  CHECK(lowering::schema_result_types(*p)[0]->str() == "float");
  auto d = resolve_overload(r.overloads("test::lookup"),
                            {Type::dict(Type::string(), Type::tensor()), Type::string()}, {});
  REQUIRE(d);
  CHECK(lowering::schema_result_types(*d)[0]->str() == "Tensor?");
}

TEST_CASE("lowering: the chosen overload gets defaults and repeated ints as nodes", "[frontend][lowering]") {
  OpRegistry r;
  r.add("test::pool(Tensor self, int[2] kernel, int dim=1, *, bool keepdim=False) -> Tensor",
        [](IValueList& a) { return IValueList{a[0]}; });
  const char* code = R"(class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.M,
    x: Tensor) -> Tensor:
    return ops.test.pool(x, 3, keepdim=True)
)";
  Archive a = memory_archive(module_object("__torch__.M"), {{"code/__torch__.py", code}});
  auto g = lower_module(a, r);
  const Node* pool = first_node(g->top(), "test::pool");
  REQUIRE(pool != nullptr);
  REQUIRE(pool->inputs.size() == 4);
  CHECK(pool->op == r.find("test::pool", ""));
  const Node* list = pool->inputs[1]->node;
  REQUIRE(list->kind == "prim::ListConstruct");
  CHECK(list->inputs.size() == 2);
  CHECK(constant_value(list->inputs[0])->to_int() == 3);
  CHECK(constant_value(pool->inputs[2])->to_int() == 1);
  CHECK(constant_value(pool->inputs[3])->to_bool() == true);
  CHECK(pool->source.str() == "code/__torch__.py:7");
}
