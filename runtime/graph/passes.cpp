#include "runtime/graph/passes.h"

#include <algorithm>
#include <map>
#include <set>

#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy {

bool is_inplace_kind(const std::string& kind) {
  return kind.size() > 2 && kind.back() == '_' && kind[kind.size() - 2] != '_';
}

bool op_has_effects(const std::string& kind) {
  static const std::set<std::string> kEffectful = {
      "prim::RaiseException", "aten::append",  "aten::insert",     "aten::pop",         "aten::remove",
      "aten::clear",          "aten::extend",  "aten::_set_item",  "aten::__setitem__", "prim::Print",
      "aten::warn",           "aten::reverse", "aten::sort",       "aten::copy_",       "aten::update",
      "aten::setdefault",     "aten::popitem", "aten::manual_seed"};
  return is_inplace_kind(kind) || kEffectful.count(kind) != 0;
}

namespace {

// An op with an effect, or a control-flow node whose blocks hold one: never removed or folded.
bool has_side_effects(const Node* node) {
  if (op_has_effects(node->kind)) return true;
  for (const auto& b : node->blocks)
    for (const auto& n : b->nodes)
      if (has_side_effects(n.get())) return true;
  return false;
}

// Counts uses of every value anywhere in the graph (node inputs and block returns).
void count_uses(const Block* block, std::map<const Value*, size_t>& uses) {
  for (const auto& n : block->nodes) {
    for (const Value* v : n->inputs) ++uses[v];
    for (const auto& b : n->blocks) count_uses(b.get(), uses);
  }
  for (const Value* v : block->returns) ++uses[v];
}

size_t dce_block(Block* block, std::map<const Value*, size_t>& uses) {
  size_t removed = 0;
  for (size_t i = block->nodes.size(); i-- > 0;) {
    Node* n = block->nodes[i].get();
    bool used = false;
    for (const Value* v : n->outputs) used = used || uses[v] > 0;
    if (!used && !has_side_effects(n)) {
      std::function<void(const Node*)> drop = [&](const Node* x) {
        for (const Value* v : x->inputs) --uses[v];
        for (const auto& b : x->blocks) {
          for (const auto& m : b->nodes) drop(m.get());
          for (const Value* v : b->returns) --uses[v];
        }
      };
      drop(n);
      block->nodes.erase(block->nodes.begin() + static_cast<std::ptrdiff_t>(i));
      ++removed;
      continue;
    }
    for (auto& b : n->blocks) removed += dce_block(b.get(), uses);
  }
  return removed;
}

void replace_uses(Block* block, const Value* from, Value* to) {
  for (auto& n : block->nodes) {
    for (Value*& v : n->inputs)
      if (v == from) v = to;
    for (auto& b : n->blocks) replace_uses(b.get(), from, to);
  }
  for (Value*& v : block->returns)
    if (v == from) v = to;
}

bool is_constant(const Value* v) { return v->node && v->node->kind == "prim::Constant"; }

bool produces_only_non_tensors(const Node* n) {
  for (const Value* v : n->outputs) {
    TypeKind k = v->type->kind;
    if (k == TypeKind::kTensor || k == TypeKind::kAny || k == TypeKind::kOptional) return false;
    if (k == TypeKind::kList || k == TypeKind::kTuple) {
      for (const TypePtr& c : v->type->contained)
        if (c->is(TypeKind::kTensor) || c->is(TypeKind::kAny)) return false;
    }
  }
  return !n->outputs.empty();
}

// Lists are mutable references: a folded list would become one object shared by every run.
bool folds_to_list(const Node* n) {
  for (const Value* v : n->outputs)
    if (v->type->is(TypeKind::kList)) return true;
  return false;
}

// Walks a node_list() copy: folding inside a nested block inserts constants into the top block,
// which would shift any position (or invalidate any iterator) held in an enclosing walk.
size_t fold_block(Graph& graph, Block* block) {
  size_t changed = 0;
  for (Node* n : block->node_list()) {
    for (auto& b : n->blocks) changed += fold_block(graph, b.get());
    if (n->kind == "prim::If" && is_constant(n->inputs[0]) && n->inputs[0]->node->constant.is_bool()) {
      // Splice the taken branch's nodes in place of the If (they were folded above; a change
      // that splicing enables is found by fold_constants' next round).
      bool cond = n->inputs[0]->node->constant.to_bool();
      // Uses are replaced while the If still holds both blocks (replace_uses walks them too).
      for (size_t o = 0; o < n->outputs.size(); ++o)
        replace_uses(graph.top(), n->outputs[o], n->blocks[cond ? 0 : 1]->returns[o]);
      std::unique_ptr<Block> taken = std::move(n->blocks[cond ? 0 : 1]);
      std::vector<std::unique_ptr<Node>> moved = std::move(taken->nodes);
      for (auto& m : moved) m->owner = block;
      auto pos = std::find_if(block->nodes.begin(), block->nodes.end(),
                              [&](const std::unique_ptr<Node>& m) { return m.get() == n; });
      pos = block->nodes.erase(pos);
      block->nodes.insert(pos, std::make_move_iterator(moved.begin()), std::make_move_iterator(moved.end()));
      ++changed;
      continue;
    }
    if (!n->op || n->inputs.empty() || has_side_effects(n) || !produces_only_non_tensors(n) ||
        folds_to_list(n))
      continue;
    bool all_const = true;
    for (const Value* v : n->inputs) all_const = all_const && is_constant(v);
    if (!all_const) continue;
    IValueList args;
    for (const Value* v : n->inputs) args.push_back(v->node->constant);
    IValueList results;
    try {
      results = n->op->kernel(args);
    } catch (const Error&) {
      continue;  // leave it: the error belongs to run time (e.g. a guarded branch never taken)
    }
    if (results.size() != n->outputs.size()) continue;
    for (size_t o = 0; o < results.size(); ++o) {
      Value* c = graph.constant(results[o], n->outputs[o]->type);
      replace_uses(graph.top(), n->outputs[o], c);
    }
    ++changed;
  }
  return changed;
}

}  // namespace

size_t eliminate_dead_code(Graph& graph) {
  std::map<const Value*, size_t> uses;
  count_uses(graph.top(), uses);
  return dce_block(graph.top(), uses);
}

size_t fold_constants(Graph& graph) {
  size_t total = 0;
  while (true) {
    size_t changed = fold_block(graph, graph.top());
    if (changed == 0) break;
    total += changed;
    eliminate_dead_code(graph);
  }
  return total;
}

bool op_may_alias(const Node& node) {
  if (!node.op) return node.kind != "prim::Constant";  // structural prims pass values through
  static const std::set<std::string> kAliasing = {"aten::view",
                                                  "aten::reshape",
                                                  "aten::flatten",
                                                  "aten::permute",
                                                  "aten::transpose",
                                                  "aten::t",
                                                  "aten::select",
                                                  "aten::slice",
                                                  "aten::unsqueeze",
                                                  "aten::squeeze",
                                                  "aten::expand",
                                                  "aten::expand_as",
                                                  "aten::narrow",
                                                  "aten::unbind",
                                                  "aten::chunk",
                                                  "aten::split",
                                                  "aten::split_with_sizes",
                                                  "aten::alias",
                                                  "aten::detach",
                                                  "aten::contiguous",
                                                  "aten::to",
                                                  "aten::type_as",
                                                  "aten::dropout",
                                                  "aten::feature_dropout",
                                                  "aten::alpha_dropout",
                                                  "aten::view_as",
                                                  "aten::reshape_as",
                                                  "aten::unflatten",
                                                  "aten::movedim",
                                                  "aten::swapaxes",
                                                  "aten::__getitem__",
                                                  "aten::numpy_T",
                                                  "aten::as_strided",
                                                  "aten::diagonal",
                                                  "aten::unfold",
                                                  "aten::real",
                                                  "aten::_reshape_alias",
                                                  "aten::lift_fresh",
                                                  "aten::clone"};
  if (kAliasing.count(node.kind) || is_inplace_kind(node.kind)) return true;
  // PyTorch schemas mark aliasing returns as "Tensor(a)".
  const std::string& text = node.op->schema.text;
  size_t arrow = text.rfind("->");
  return arrow != std::string::npos && text.find("(a", arrow) != std::string::npos;
}

size_t make_inplace_functional(Graph& graph, const OpRegistry& registry) {
  std::map<const Value*, size_t> uses;
  count_uses(graph.top(), uses);
  size_t changed = 0;
  for_each_node(graph.top(), [&](Node* n) {
    if (!n->op || !is_inplace_kind(n->kind) || n->inputs.empty()) return;
    const Value* self = n->inputs[0];
    if (!self->node || self->node->kind == "prim::Constant" || op_may_alias(*self->node)) return;
    if (!self->type->is(TypeKind::kTensor) || uses[self] != 1) return;
    std::string functional = n->kind.substr(0, n->kind.size() - 1);
    const OpOverload* f = registry.find(functional, n->op->schema.overload);
    if (!f || f->schema.arguments.size() != n->op->schema.arguments.size()) return;
    n->kind = functional;
    n->op = f;
    ++changed;
  });
  return changed;
}

void run_default_passes(Graph& graph, const OpRegistry& registry) {
  make_inplace_functional(graph, registry);
  fold_constants(graph);
  eliminate_dead_code(graph);
}

}  // namespace convoy
