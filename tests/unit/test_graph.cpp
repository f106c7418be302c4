// Schema parsing, the Graph IR, the reference executor, the passes and the wire format, on graphs
// built by hand with a small private registry (the real op families have their own tests).
#include <catch2/catch.hpp>

#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/ir.h"
#include "runtime/graph/passes.h"
#include "runtime/graph/serialize.h"
#include "runtime/ops/registry.h"

using namespace convoy;

namespace {

// A few ops with real semantics, enough to exercise the executor and the passes.
OpRegistry test_registry() {
  OpRegistry r;
  r.add("aten::add.int(int a, int b) -> int",
        [](IValueList& a) { return IValueList{IValue(a[0].to_int() + a[1].to_int())}; });
  r.add("aten::lt.int(int a, int b) -> bool",
        [](IValueList& a) { return IValueList{IValue(a[0].to_int() < a[1].to_int())}; });
  r.add("aten::size.int(Tensor self, int dim) -> int",
        [](IValueList& a) { return IValueList{IValue(a[0].to_tensor().size(a[1].to_int()))}; });
  auto mul_scalar = [](IValueList& a, bool inplace) {
    Tensor x = a[0].to_tensor();
    Tensor out = inplace ? x : Tensor::empty(x.sizes(), x.dtype());
    std::vector<double> v = x.to_doubles();
    for (size_t i = 0; i < v.size(); ++i) out.set_double(static_cast<int64_t>(i), v[i] * a[1].to_double());
    return IValueList{IValue(out)};
  };
  r.add("aten::mul.Scalar(Tensor self, Scalar other) -> Tensor",
        [=](IValueList& a) { return mul_scalar(a, false); });
  r.add("aten::mul_.Scalar(Tensor(a!) self, Scalar other) -> Tensor(a!)",
        [=](IValueList& a) { return mul_scalar(a, true); });
  r.add("aten::neg(Tensor self) -> Tensor", [](IValueList& a) {
    Tensor x = a[0].to_tensor();
    Tensor out = Tensor::empty(x.sizes(), x.dtype());
    std::vector<double> v = x.to_doubles();
    for (size_t i = 0; i < v.size(); ++i) out.set_double(static_cast<int64_t>(i), -v[i]);
    return IValueList{IValue(out)};
  });
  r.add("aten::view(Tensor(a) self, int[] size) -> Tensor(a)", [](IValueList& a) {
    Tensor x = a[0].to_tensor();
    std::vector<int64_t> s = a[1].to_int_list();
    return IValueList{IValue(x.as_strided(s, contiguous_strides(s), x.offset()))};
  });
  return r;
}

Node* op_node(Block* b, const OpRegistry& r, const std::string& name, const std::string& overload,
              std::vector<Value*> inputs) {
  const OpOverload* op = r.find(name, overload);
  REQUIRE(op != nullptr);
  Node* n = b->append(name, inputs, op->schema.returns.size(), SourceRange{"code/__torch__.py", 7});
  n->op = op;
  for (size_t i = 0; i < n->outputs.size(); ++i) n->outputs[i]->type = op->schema.returns[i].type;
  return n;
}

}  // namespace

TEST_CASE("schemas parse names, overloads, types, defaults and kwarg-only markers", "[schema]") {
  Schema s = parse_schema(
      "aten::max_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, "
      "int[2] dilation=1, bool ceil_mode=False) -> Tensor");
  CHECK(s.name == "aten::max_pool2d");
  CHECK(s.overload.empty());
  REQUIRE(s.arguments.size() == 6);
  CHECK(s.arguments[1].fixed_list_size == 2);
  CHECK(s.arguments[3].default_value->to_int_list() == std::vector<int64_t>{0, 0});
  CHECK(s.arguments[4].default_value->to_int_list() == std::vector<int64_t>{1, 1});
  CHECK(s.arguments[2].default_value->to_int_list().empty());
  CHECK(s.arguments[5].default_value->to_bool() == false);

  Schema add = parse_schema("aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
  CHECK(add.overload == "Tensor");
  CHECK(add.arguments[2].kwarg_only);
  CHECK(add.arguments[2].type->is(TypeKind::kNumber));

  Schema mha = parse_schema(
      "aten::max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)");
  REQUIRE(mha.returns.size() == 2);
  CHECK(mha.returns[1].name == "indices");

  Schema idx = parse_schema("aten::index.Tensor(Tensor self, Tensor?[] indices) -> Tensor");
  CHECK(idx.arguments[1].type->str() == "Tensor?[]");
  Schema ln = parse_schema(
      "aten::layer_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None, "
      "float eps=1e-05, bool cudnn_enable=True) -> Tensor");
  CHECK(ln.arguments[4].default_value->is_double());
  CHECK(ln.arguments[2].default_value->is_none());
  Schema gelu = parse_schema("aten::gelu(Tensor self, *, str approximate=\"none\") -> Tensor");
  CHECK(gelu.arguments[1].default_value->to_string() == "none");
  Schema alias = parse_schema("aten::transpose.int(Tensor(a) self, int dim0, int dim1) -> Tensor(a)");
  CHECK(alias.arguments[0].name == "self");
  CHECK(alias.returns[0].type->is(TypeKind::kTensor));
  CHECK_THROWS_AS(parse_schema("add(Tensor a) -> Tensor"), Error);
  CHECK_THROWS_AS(parse_schema("aten::add(Tensor a"), Error);
}

TEST_CASE("types parse from annotations and accept what TorchScript accepts", "[schema]") {
  CHECK(parse_type("List[Optional[Tensor]]")->str() == "Tensor?[]");
  CHECK(parse_type("Tuple[Tensor, int]")->str() == "(Tensor, int)");
  CHECK(parse_type("Dict[str, Tensor]")->is(TypeKind::kDict));
  CHECK(parse_type("Dict(str, t)")->str() == "Dict(str, Any)");  // schema notation
  CHECK(parse_schema("aten::__getitem__.Dict_str(Dict(str, t) self, str key) -> t(*)")
            .arguments[0]
            .type->is(TypeKind::kDict));
  CHECK(parse_type("__torch__.torch.nn.modules.linear.Linear")->is(TypeKind::kAny));
  CHECK(type_accepts(*parse_type("float"), *Type::integer()));
  CHECK_FALSE(type_accepts(*parse_type("float"), *Type::integer(), false));
  CHECK(type_accepts(*parse_type("Scalar"), *Type::floating()));
  CHECK_FALSE(type_accepts(*parse_type("Scalar"), *Type::tensor()));
  CHECK(type_accepts(*parse_type("Tensor?"), *Type::none()));
  CHECK(type_accepts(*parse_type("int[]"), *Type::list(Type::integer())));
  CHECK_FALSE(type_accepts(*parse_type("int[]"), *Type::list(Type::tensor())));
  CHECK_THROWS_WITH(parse_type("List[int"), Catch::Contains("List[int"));
}

TEST_CASE("the executor runs ops, branches and loops, and names the failing op", "[executor]") {
  OpRegistry r = test_registry();
  Graph g;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  Value* n = g.top()->add_param(Type::integer(), "n");
  // y = x; for i in range(n): y = y * 2 ;  if n < 3: out = -y else: out = y
  Value* t = g.constant(IValue(true));
  Node* loop = g.top()->append("prim::Loop", {n, t, x}, 1);
  Block* body = loop->add_block();
  body->add_param(Type::integer(), "i");
  Value* y = body->add_param(Type::tensor(), "y");
  Value* two = g.constant(IValue(2));
  Node* m = op_node(body, r, "aten::mul", "Scalar", {y, two});
  body->returns = {t, m->outputs[0]};
  Value* three = g.constant(IValue(3));
  Node* lt = op_node(g.top(), r, "aten::lt", "int", {n, three});
  Node* iff = g.top()->append("prim::If", {lt->outputs[0]}, 1);
  Block* then_b = iff->add_block();
  Node* neg = op_node(then_b, r, "aten::neg", "", {loop->outputs[0]});
  then_b->returns = {neg->outputs[0]};
  Block* else_b = iff->add_block();
  else_b->returns = {loop->outputs[0]};
  g.top()->returns = {iff->outputs[0]};

  ReferenceExecutor exec(g);
  Tensor in = Tensor::from_doubles({2}, DType::kFloat32, {1, -3});
  auto out2 = exec.run({IValue(in), IValue(int64_t{2})});
  CHECK(out2[0].to_tensor().to_doubles() == std::vector<double>{-4, 12});
  auto out3 = exec.run({IValue(in), IValue(int64_t{3})});
  CHECK(out3[0].to_tensor().to_doubles() == std::vector<double>{8, -24});
  CHECK(in.to_doubles() == std::vector<double>{1, -3});  // inputs untouched
  CHECK_THROWS_WITH(exec.run({IValue(in)}), Catch::Contains("takes 2 inputs"));

  // A bad control-flow input names the node.
  CHECK_THROWS_WITH(exec.run({IValue(in), IValue(std::string("two"))}),
                    Catch::Contains("prim::Loop trip count must be an int"));
  // A kernel error carries the op and the source line.
  Graph g2;
  Value* t2 = g2.top()->add_param(Type::tensor(), "t");
  Node* bad = op_node(g2.top(), r, "aten::size", "int", {t2, g2.constant(IValue(5))});
  g2.top()->returns = {bad->outputs[0]};
  CHECK_THROWS_WITH(ReferenceExecutor(g2).run({IValue(in)}), Catch::Contains("code/__torch__.py:7") &&
                                                                 Catch::Contains("aten::size.int") &&
                                                                 Catch::Contains("dimension 5 out of range"));
  // The wire format round-trips the structure exactly and the result runs the same.
  std::vector<uint8_t> bytes = serialize_graph(g);
  std::unique_ptr<Graph> back = deserialize_graph(bytes.data(), bytes.size(), r);
  CHECK(print_graph(*back) == print_graph(g));
  CHECK(ReferenceExecutor(*back).run({IValue(in), IValue(int64_t{2})})[0].to_tensor().to_doubles() ==
        std::vector<double>{-4, 12});
}

TEST_CASE("a node without a kernel is refused before anything runs", "[executor]") {
  Graph g;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  Node* n = g.top()->append("aten::frobnicate", {x}, 1, SourceRange{"code/__torch__/m.py", 12});
  g.top()->returns = {n->outputs[0]};
  CHECK_THROWS_WITH(ReferenceExecutor(g),
                    Catch::Contains("code/__torch__/m.py:12") && Catch::Contains("aten::frobnicate"));
}

TEST_CASE("passes fold shape arithmetic, drop dead code and un-inplace safe ops", "[passes]") {
  OpRegistry r = test_registry();
  Graph g;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  Value* w = g.constant(IValue(Tensor::from_doubles({2, 3}, DType::kFloat32, {1, 2, 3, 4, 5, 6})));
  Value* one = g.constant(IValue(1));
  Node* sz = op_node(g.top(), r, "aten::size", "int", {w, one});               // 3, foldable
  Node* sum = op_node(g.top(), r, "aten::add", "int", {sz->outputs[0], one});  // 4, foldable
  Node* dead = op_node(g.top(), r, "aten::neg", "", {x});                      // unused
  (void)dead;
  Node* fresh = op_node(g.top(), r, "aten::neg", "", {x});
  Node* inplace = op_node(g.top(), r, "aten::mul_", "Scalar", {fresh->outputs[0], sum->outputs[0]});
  Node* on_input = op_node(g.top(), r, "aten::mul_", "Scalar", {x, one});  // graph input: must stay in-place
  g.top()->returns = {inplace->outputs[0], on_input->outputs[0]};

  Tensor in = Tensor::from_doubles({2}, DType::kFloat32, {1, 2});
  auto before = ReferenceExecutor(g).run({IValue(in.clone())});

  CHECK(make_inplace_functional(g, r) == 1);
  CHECK(inplace->kind == "aten::mul");
  CHECK(on_input->kind == "aten::mul_");
  CHECK(fold_constants(g) >= 2);
  CHECK(eliminate_dead_code(g) == 0);  // folding removed the shape arithmetic it replaced
  std::string printed = print_graph(g);
  CHECK(printed.find("aten::size") == std::string::npos);
  CHECK(printed.find("aten::add") == std::string::npos);
  CHECK(printed.find("[value=4]") != std::string::npos);
  size_t negs = 0;
  for (const auto& n : g.top()->nodes) negs += n->kind == "aten::neg";
  CHECK(negs == 1);

  auto after = ReferenceExecutor(g).run({IValue(in.clone())});
  CHECK(after[0].to_tensor().to_doubles() == before[0].to_tensor().to_doubles());
  CHECK(after[0].to_tensor().to_doubles() == std::vector<double>{-4, -8});
}

TEST_CASE("malformed graph messages are refused with a reason, never a crash", "[serialize]") {
  OpRegistry r = test_registry();
  Graph g;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  Node* n = op_node(g.top(), r, "aten::neg", "", {x});
  g.top()->returns = {n->outputs[0]};
  std::vector<uint8_t> bytes = serialize_graph(g);
  CHECK_THROWS_WITH(deserialize_graph(bytes.data(), bytes.size() - 3, r),
                    Catch::Contains("whole number of words"));
  CHECK_THROWS_AS(deserialize_graph(bytes.data(), bytes.size() - 8, r), Error);
  OpRegistry empty;
  CHECK_THROWS_WITH(deserialize_graph(bytes.data(), bytes.size(), empty),
                    Catch::Contains("unknown op 'aten::neg'"));
  // Flip every byte in turn: each result either parses to a valid graph or is an Error.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> bad = bytes;
    bad[i] ^= 0x5a;
    try {
      deserialize_graph(bad.data(), bad.size(), r);
    } catch (const Error&) {
    }
  }
}
