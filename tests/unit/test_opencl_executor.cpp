// The OpenCL executor (opencl/executor.h): plans per input signature, no OpenCL buffer or program created
// after warm-up, data-dependent branches and loops, outputs (views, tuples, host values), errors at
// construction for ops without an OpenCL implementation, and the memory plan (offsets from lifetimes).
#include <catch2/catch.hpp>

#include "opencl/plan.h"
#include "opencl/program_cache.h"
#include "opencl_op_harness.h"
#include "runtime/executor.h"

using namespace convoy;
using namespace convoy::opencl;
using namespace convoy::opencl::testing;
using Catch::Matchers::Contains;

namespace {

// Appends a registry op node to `block` and returns its first output.
Value* op(Block* block, const std::string& full_name, const std::vector<Value*>& inputs, int line = 1) {
  const OpOverload& o = overload(full_name);
  Node* n = block->append(o.schema.name, inputs, o.schema.returns.size(), SourceRange{"model.py", line});
  n->op = &o;
  for (size_t i = 0; i < n->outputs.size(); ++i) n->outputs[i]->type = o.schema.returns[i].type;
  return n->outputs[0];
}

Value* int_const(Graph& g, int64_t v) { return g.constant(IValue(v)); }

void check_same(const std::vector<IValue>& got, const std::vector<IValue>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i)
    check_close(got[i], want[i], 1e-5, 1e-5, "output " + std::to_string(i));
}

// y = relu(linear(x, W, b)) * 2 + x[..., :4], reduced to its sum per row: a little of everything.
std::unique_ptr<Graph> small_model() {
  auto g = std::make_unique<Graph>();
  Block* top = g->top();
  Value* x = top->add_param(Type::tensor(), "x");
  Value* w = g->constant(IValue(random_tensor({4, 6}, 1)));
  Value* b = g->constant(IValue(random_tensor({4}, 2)));
  Value* h = op(top, "aten::linear", {x, w, b});
  Value* r = op(top, "aten::relu", {h});
  Value* s = op(top, "aten::mul.Scalar", {r, g->constant(IValue(2.0))});
  Value* part = op(top, "aten::slice.Tensor",
                   {x, int_const(*g, -1), int_const(*g, 0), int_const(*g, 4), int_const(*g, 1)});
  Value* y = op(top, "aten::add.Tensor", {s, part, int_const(*g, 1)});
  Value* dims = top->append("prim::ListConstruct", {int_const(*g, -1)}, 1)->outputs[0];
  Value* sum = op(top, "aten::sum.dim_IntList", {y, dims, g->constant(IValue(false)), g->constant(IValue())});
  top->returns = {sum, y};
  return g;
}

}  // namespace

TEST_CASE("opencl executor: a warm plan creates no buffers, programs or kernels", "[opencl][executor]") {
  std::unique_ptr<Graph> g = small_model();
  ReferenceExecutor reference(*g);
  OpenCLExecutor executor(*g, test_device());
  std::vector<IValue> in8 = {IValue(random_tensor({8, 6}, 3))};
  std::vector<IValue> in3 = {IValue(random_tensor({3, 6}, 4))};

  check_same(executor.run(in8), reference.run(in8));  // compiles the plan for [8, 6]
  Counters::Snapshot warm = counters().snapshot();
  for (int i = 0; i < 3; ++i) check_same(executor.run(in8), reference.run(in8));
  Counters::Snapshot after = counters().snapshot();
  CHECK(after.buffers_created == warm.buffers_created);
  CHECK(after.programs_built == warm.programs_built);
  CHECK(after.programs_loaded == warm.programs_loaded);
  CHECK(after.kernels_created == warm.kernels_created);

  // Another shape is another plan (its own arena), after which both run without creating anything.
  check_same(executor.run(in3), reference.run(in3));
  CHECK(counters().buffers_created > after.buffers_created);
  Counters::Snapshot both = counters().snapshot();
  check_same(executor.run(in8), reference.run(in8));
  check_same(executor.run(in3), reference.run(in3));
  CHECK(counters().buffers_created == both.buffers_created);
  CHECK(counters().kernels_created == both.kernels_created);
  CHECK_THAT(executor.plan_report(),
             Contains("float32[8, 6]") && Contains("float32[3, 6]") && Contains("arena"));
}

TEST_CASE("opencl executor: a branch on device data reads one scalar and compiles each path once",
          "[opencl][executor]") {
  // y = x if x.sum() > 0 else -x, then y * 3
  auto g = std::make_unique<Graph>();
  Block* top = g->top();
  Value* x = top->add_param(Type::tensor(), "x");
  Value* total = op(top, "aten::sum", {x, g->constant(IValue())}, 2);
  Value* positive = op(top, "aten::gt.Scalar", {total, int_const(*g, 0)}, 2);
  Value* cond = op(top, "aten::Bool.Tensor", {positive}, 2);
  Node* branch = top->append("prim::If", {cond}, 1, SourceRange{"model.py", 3});
  Block* then_block = branch->add_block();
  then_block->returns = {x};
  Block* else_block = branch->add_block();
  else_block->returns = {op(else_block, "aten::neg", {x}, 4)};
  Value* y = op(top, "aten::mul.Scalar", {branch->outputs[0], g->constant(IValue(3.0))}, 5);
  top->returns = {y};

  ReferenceExecutor reference(*g);
  OpenCLExecutor executor(*g, test_device());
  Tensor pos = random_tensor({5, 7}, 1, DType::kFloat32, 0.1, 2);
  Tensor neg = random_tensor({5, 7}, 2, DType::kFloat32, -2, -0.1);
  check_same(executor.run({IValue(pos)}), reference.run({IValue(pos)}));
  check_same(executor.run({IValue(neg)}), reference.run({IValue(neg)}));  // the other path: compiled now
  Counters::Snapshot warm = counters().snapshot();
  for (const Tensor& t : {pos, neg, neg, pos})
    check_same(executor.run({IValue(t)}), reference.run({IValue(t)}));
  CHECK(counters().buffers_created == warm.buffers_created);
  CHECK(counters().kernels_created == warm.kernels_created);
  CHECK_THAT(executor.plan_report(), Contains("3 segment(s)"));
}

TEST_CASE("opencl executor: loops are unrolled with their carried tensors", "[opencl][executor]") {
  // for i in range(x.size(0)): h = tanh(h * 0.5 + x[i])
  auto g = std::make_unique<Graph>();
  Block* top = g->top();
  Value* x = top->add_param(Type::tensor(), "x");
  Value* h0 = top->add_param(Type::tensor(), "h");
  Value* trips = op(top, "aten::size.int", {x, int_const(*g, 0)});
  Node* loop =
      top->append("prim::Loop", {trips, g->constant(IValue(true)), h0}, 1, SourceRange{"model.py", 7});
  Block* body = loop->add_block();
  Value* i = body->add_param(Type::integer(), "i");
  Value* h = body->add_param(Type::tensor(), "h");
  Value* row = op(body, "aten::select.int", {x, int_const(*g, 0), i});
  Value* half = op(body, "aten::mul.Scalar", {h, g->constant(IValue(0.5))});
  Value* sum = op(body, "aten::add.Tensor", {half, row, int_const(*g, 1)});
  body->returns = {g->constant(IValue(true)), op(body, "aten::tanh", {sum})};
  top->returns = {loop->outputs[0]};
  ReferenceExecutor reference(*g);
  OpenCLExecutor executor(*g, test_device());
  std::vector<IValue> in = {IValue(random_tensor({6, 70}, 1)), IValue(random_tensor({70}, 2))};
  check_same(executor.run(in), reference.run(in));
  std::vector<IValue> in2 = {IValue(random_tensor({2, 70}, 3)), IValue(random_tensor({70}, 4))};
  check_same(executor.run(in2), reference.run(in2));
}

TEST_CASE("opencl executor: outputs may be views, inputs, tuples and host values", "[opencl][executor]") {
  auto g = std::make_unique<Graph>();
  Block* top = g->top();
  Value* x = top->add_param(Type::tensor(), "x");
  Value* t = op(top, "aten::transpose.int", {x, int_const(*g, 0), int_const(*g, 1)});
  Value* n = op(top, "aten::size.int", {x, int_const(*g, 1)});
  Value* tuple = top->append("prim::TupleConstruct", {t, x}, 1)->outputs[0];
  top->returns = {tuple, n, t};
  ReferenceExecutor reference(*g);
  OpenCLExecutor executor(*g, test_device());
  std::vector<IValue> in = {IValue(random_tensor({9, 11}, 1))};
  std::vector<IValue> got = executor.run(in);
  check_same(got, reference.run(in));
  CHECK(got[2].to_tensor().is_contiguous());
  CHECK(got[1].to_int() == 11);
}

TEST_CASE("opencl executor: an op without an OpenCL implementation fails at construction",
          "[opencl][executor]") {
  OpRegistry local;
  const OpOverload& custom = local.add("test::mystery(Tensor x) -> Tensor", [](IValueList& a) { return a; });
  auto g = std::make_unique<Graph>();
  Value* x = g->top()->add_param(Type::tensor(), "x");
  Node* n = g->top()->append("test::mystery", {x}, 1, SourceRange{"code/__torch__/model.py", 42});
  n->op = &custom;
  g->top()->returns = {n->outputs[0]};
  try {
    OpenCLExecutor executor(*g, test_device());
    FAIL("the executor accepted an op it cannot run");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kUnsupported);
    CHECK_THAT(e.what(), Contains("test::mystery") && Contains("code/__torch__/model.py:42"));
  }
}

TEST_CASE("opencl executor: writing into a model constant is refused", "[opencl][executor]") {
  auto g = std::make_unique<Graph>();
  Value* x = g->top()->add_param(Type::tensor(), "x");
  Value* w = g->constant(IValue(random_tensor({9, 9}, 1)));
  Value* y = op(g->top(), "aten::add_.Tensor", {w, x, int_const(*g, 1)}, 5);
  g->top()->returns = {y};
  OpenCLExecutor executor(*g, test_device());
  CHECK_THROWS_WITH(executor.run({IValue(random_tensor({9, 9}, 2))}),
                    Contains("model.py:5") && Contains("model constant"));
}

TEST_CASE("opencl executor: memory is reused across a chain of activations", "[opencl][executor]") {
  // Twelve elementwise steps of 1 MiB each: the arena holds about two, not twelve.
  auto g = std::make_unique<Graph>();
  Value* v = g->top()->add_param(Type::tensor(), "x");
  for (int i = 0; i < 12; ++i) v = op(g->top(), i % 2 ? "aten::relu" : "aten::neg", {v}, i);
  g->top()->returns = {v};
  OpenCLExecutor executor(*g, test_device());
  std::vector<IValue> in = {IValue(random_tensor({512, 512}, 1))};
  check_same(executor.run(in), ReferenceExecutor(*g).run(in));
  std::optional<MemoryReport> m = executor.memory(in);
  REQUIRE(m.has_value());
  const int64_t mib = 1 << 20;
  CHECK(m->largest_pair_bytes[0] == mib);
  CHECK(m->largest_pair_bytes[1] == mib);
  CHECK(m->arena_bytes >= 2 * mib);
  CHECK(m->arena_bytes <= 3 * mib);
}

TEST_CASE("memory placement: live allocations never overlap, dead ones are reused", "[opencl][executor]") {
  // [birth, death) in instructions; bytes.
  std::vector<AllocationRecord> allocs = {
      {100, 0, 3, false, "a"}, {100, 1, 4, false, "b"}, {100, 3, 6, false, "c"},  // c reuses a
      {250, 4, 8, false, "d"}, {50, 6, 9, false, "e"},  {10, 5, 5, false, "never live"},
  };
  std::vector<int64_t> offsets;
  int64_t arena = place_allocations(allocs, offsets, 16);
  REQUIRE(offsets.size() == allocs.size());
  for (size_t i = 0; i < allocs.size(); ++i) {
    CHECK(offsets[i] % 16 == 0);
    for (size_t j = i + 1; j < allocs.size(); ++j) {
      bool co_live = allocs[i].birth < allocs[j].death && allocs[j].birth < allocs[i].death &&
                     allocs[i].birth < allocs[i].death && allocs[j].birth < allocs[j].death;
      bool apart = offsets[i] + allocs[i].bytes <= offsets[j] || offsets[j] + allocs[j].bytes <= offsets[i];
      INFO(allocs[i].what << " and " << allocs[j].what);
      if (co_live) CHECK(apart);
    }
  }
  // At most d (256) and one 112-byte slot are live with it, plus e: far less than the 610 bytes of the sum.
  CHECK(arena <= 256 + 112 + 112);
  CHECK(arena >= 256 + 64);

  // Fixed offsets (from an earlier segment) stay where they are; new allocations avoid them while live.
  std::vector<int64_t> fixed = {0, 112, -1};
  std::vector<AllocationRecord> more = {{100, 0, AllocationRecord::kAlive, false, "kept"},
                                        {100, 0, 2, false, "dies"},
                                        {100, 3, 5, false, "new"}};
  place_allocations(more, fixed, 16);
  CHECK(fixed[0] == 0);
  CHECK(fixed[1] == 112);
  CHECK(fixed[2] == 112);  // reuses "dies", never "kept"

  MemoryReport r = memory_report(allocs, arena);
  CHECK(r.largest_pair_bytes[0] == 250);
  CHECK(r.largest_pair_bytes[1] == 100);
}
