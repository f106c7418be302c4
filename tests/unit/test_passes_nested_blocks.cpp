// Graph passes on nested blocks (prim::Loop and prim::If bodies, two deep): a rewrite inside a body
// adds constants to the top block, which an enclosing walk may be walking. Each pass must leave a
// graph that computes what the original did, on the reference executor and on OpenCL. Under
// AddressSanitizer (scripts/test.sh runs these there too) a walk left dangling is a report.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "opencl/ops/nn.h"
#include "opencl_op_harness.h"
#include "runtime/executor.h"
#include "runtime/graph/passes.h"
#include "runtime/torchscript/archive.h"
#include "runtime/torchscript/lowering.h"

namespace convoy {
namespace {

using opencl::testing::random_tensor;

// Enough chains in one body that the constants the fusions add reallocate the top block's vector
// many times over while the top block is being walked.
constexpr int kChains = 12;

// A module whose forward runs fusable linear -> activation chains in a loop body, in an If inside
// that loop, and in a loop inside an If; the If conditions read the symbolic batch dimension.
std::string nested_code() {
  std::string body;
  for (int i = 0; i < kChains; ++i)
    body += "      x0 = torch.add(torch.relu(torch.linear(x0, self.w, self.b)), 0.25)\n";
  return R"(class M(Module):
  __parameters__ = ["w", "b", ]
  __buffers__ = []
  w : Tensor
  b : Tensor
  training : bool
  def forward(self: __torch__.M,
    x: Tensor,
    n: int) -> Tensor:
    x0 = x
    for i in range(n):
)" + body +
         R"(      if torch.gt(torch.size(x0, 0), 2):
        x0 = torch.sigmoid(torch.linear(x0, self.w, self.b))
      else:
        x0 = torch.neg(x0)
    if torch.gt(torch.size(x0, 0), 2):
      for j in range(2):
        x0 = torch.gelu(torch.linear(x0, self.w, self.b))
    else:
      x0 = torch.mul(x0, 2.0)
    return x0
)";
}

std::unique_ptr<Graph> lower_nested(const Tensor& w, const Tensor& b) {
  auto root = std::make_shared<Object>();
  root->type_name = "__torch__.M";
  root->set("training", IValue(false));
  root->set("w", IValue(w));
  root->set("b", IValue(b));
  Archive a;
  a.path = "memory.pt";
  a.top_folder = "memory";
  a.version = 3;
  a.module = IValue(root);
  a.code = {{"code/__torch__.py", nested_code()}};
  return lower_module(a, opencl::testing::test_registry());
}

int count_kind(Graph& g, const std::string& kind) {
  int n = 0;
  for_each_node(g.top(), [&](Node* node) { n += node->kind == kind; });
  return n;
}

void expect_same(const IValue& got, const IValue& want, const std::string& what) {
  INFO(what);
  const Tensor& g = got.to_tensor();
  const Tensor& w = want.to_tensor();
  REQUIRE(g.sizes() == w.sizes());
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double a = g.get_double(i), e = w.get_double(i);
    REQUIRE(std::abs(a - e) <= 1e-5 + 1e-4 * std::abs(e));
  }
}

}  // namespace

TEST_CASE("fusion rewrites chains inside loop and branch bodies, two deep", "[opencl][passes][fusion]") {
  const Tensor w = random_tensor({8, 8}, 11, DType::kFloat32, -0.35, 0.35);
  const Tensor b = random_tensor({8}, 12, DType::kFloat32, -0.2, 0.2);
  std::unique_ptr<Graph> plain = lower_nested(w, b);
  std::unique_ptr<Graph> fused = lower_nested(w, b);
  const int linears = count_kind(*fused, "aten::linear");
  REQUIRE(linears == kChains + 2);

  CHECK(opencl::fuse_linear_activation(*fused) == linears);
  CHECK(count_kind(*fused, "aten::linear") == 0);
  CHECK(count_kind(*fused, "convoy::linear_act") == linears);
  for (const char* act : {"aten::relu", "aten::sigmoid", "aten::gelu"}) CHECK(count_kind(*fused, act) == 0);
  // A second run finds nothing left to fuse, and the rest of the graph is untouched.
  CHECK(opencl::fuse_linear_activation(*fused) == 0);
  CHECK(opencl::fuse_conv_batch_norm_activation(*fused) == 0);
  CHECK(count_kind(*fused, "prim::Loop") == 2);
  CHECK(count_kind(*fused, "prim::If") == 2);

  ReferenceExecutor reference(*plain);
  ReferenceExecutor fused_reference(*fused);
  opencl::OpenCLExecutor device(*fused, opencl::testing::test_device());
  // Batch 4 takes the branches' then-sides, batch 2 their else-sides.
  for (int64_t batch : {4, 2}) {
    const Tensor x = random_tensor({batch, 8}, 13 + static_cast<uint32_t>(batch));
    const std::vector<IValue> in = {IValue(x), IValue(int64_t{3})};
    const IValue want = reference.run(in).at(0);
    expect_same(fused_reference.run(in).at(0), want,
                "reference, fused graph, batch " + std::to_string(batch));
    expect_same(device.run(in).at(0), want, "opencl, fused graph, batch " + std::to_string(batch));
  }
}

TEST_CASE("constant folding inside a branch keeps the enclosing walk on its nodes", "[passes]") {
  // An If at the top whose condition folds in the same round as the arithmetic in its taken
  // branch: folding the branch adds constants to the top block, and the If must still be replaced
  // by its branch, not whatever node its old position in the top block now holds.
  const Tensor w = random_tensor({8, 8}, 21, DType::kFloat32, -0.35, 0.35);
  const Tensor b = random_tensor({8}, 22, DType::kFloat32, -0.2, 0.2);
  std::unique_ptr<Graph> g = lower_nested(w, b);
  const OpRegistry& registry = opencl::testing::test_registry();
  auto int_op = [&](Block* block, const std::string& name, int64_t lhs, int64_t rhs) {
    Node* n = block->append(name, {g->constant(IValue(lhs)), g->constant(IValue(rhs))}, 1);
    n->op = registry.find(name, "int");
    REQUIRE(n->op != nullptr);
    n->outputs[0]->type = name == "aten::gt" ? Type::boolean() : Type::integer();
    return n->outputs[0];
  };
  Block* top = g->top();
  Node* branch = top->append("prim::If", {int_op(top, "aten::gt", 3, 2)}, 1);
  branch->outputs[0]->type = Type::integer();
  Block* then_block = branch->add_block();
  then_block->returns = {int_op(then_block, "aten::mul", 4, 5)};
  Block* else_block = branch->add_block();
  else_block->returns = {g->constant(IValue(int64_t{7}))};
  top->returns.push_back(branch->outputs[0]);

  const Tensor x = random_tensor({4, 8}, 23);
  const std::vector<IValue> in = {IValue(x), IValue(int64_t{2})};
  const std::vector<IValue> want = ReferenceExecutor(*g).run(in);
  REQUIRE(want.at(1).to_int() == 20);

  CHECK(fold_constants(*g) >= 3);
  CHECK(count_kind(*g, "aten::gt") == 2);  // the two on the batch dimension stay
  CHECK(count_kind(*g, "aten::mul") == 1);  // the tensor one in the else-branch of the batch test
  CHECK(count_kind(*g, "prim::If") == 2);
  REQUIRE(g->outputs().at(1)->node->kind == "prim::Constant");
  const std::vector<IValue> got = ReferenceExecutor(*g).run(in);
  CHECK(got.at(1).to_int() == 20);
  expect_same(got.at(0), want.at(0), "folded graph");
}

}  // namespace convoy
