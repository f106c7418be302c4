#include "runtime/partition/graph_facts.h"

#include <string>

#include "runtime/graph/passes.h"

namespace convoy::partition_detail {

namespace {

void index_nested(const Node* node, int top, GraphFacts& f,
                  std::unordered_map<const Value*, std::vector<const Node*>>& users) {
  f.top_index[node] = top;
  for (const Value* v : node->inputs) users[v].push_back(node);
  for (const auto& b : node->blocks) {
    for (const auto& n : b->nodes) index_nested(n.get(), top, f, users);
    for (const Value* v : b->returns) {
      int& lu = f.last_use[v];
      lu = std::max(lu, top);
      users[v].push_back(node);  // a block return: used by the structured node itself
    }
  }
}

}  // namespace

GraphFacts graph_facts(const Graph& graph) {
  GraphFacts f;
  const Block* top = graph.top();
  f.n = static_cast<int>(top->nodes.size());
  std::unordered_map<const Value*, std::vector<const Node*>> users;
  for (const Value* v : graph.inputs()) f.def[v] = -1;
  for (int i = 0; i < f.n; ++i) {
    const Node* node = top->nodes[static_cast<size_t>(i)].get();
    index_nested(node, i, f, users);
    for (const Value* v : node->outputs) f.def[v] = i;
  }
  for (const auto& [v, us] : users) {
    int& lu = f.last_use[v];
    for (const Node* u : us) lu = std::max(lu, f.top_index.at(u));
  }
  for (const Value* v : top->returns) f.last_use[v] = f.n;

  // Constant-like: prim::Constant, or a list/tuple built only from constant-like values that nothing
  // mutates or carries into control flow (so a copy in each stage behaves the same).
  f.constant_like.assign(static_cast<size_t>(f.n), 0);
  for (int i = 0; i < f.n; ++i) {
    const Node* node = top->nodes[static_cast<size_t>(i)].get();
    if (node->kind == "prim::Constant") {
      f.constant_like[static_cast<size_t>(i)] = 1;
      continue;
    }
    if (node->kind != "prim::ListConstruct" && node->kind != "prim::TupleConstruct") continue;
    bool ok = true;
    for (const Value* in : node->inputs) {
      auto it = f.def.find(in);
      ok = ok && it != f.def.end() && it->second >= 0 && f.constant_like[static_cast<size_t>(it->second)];
    }
    auto it = users.find(node->outputs[0]);
    if (ok && it != users.end()) {
      for (const Node* u : it->second) {
        bool safe = u->kind == "prim::ListConstruct" || u->kind == "prim::TupleConstruct" ||
                    u->kind == "prim::ListUnpack" || u->kind == "prim::TupleUnpack" ||
                    u->kind == "prim::TupleIndex" || (u->op != nullptr && !op_has_effects(u->kind));
        ok = ok && safe;
      }
    }
    f.constant_like[static_cast<size_t>(i)] = ok ? 1 : 0;
  }
  for (const Value* v : graph.inputs()) f.crossing_candidates.push_back(v);
  for (int i = 0; i < f.n; ++i) {
    if (f.constant_like[static_cast<size_t>(i)]) continue;
    for (const Value* v : top->nodes[static_cast<size_t>(i)]->outputs) f.crossing_candidates.push_back(v);
  }
  return f;
}

std::vector<const Value*> values_crossing(const GraphFacts& f, int cut) {
  std::vector<const Value*> out;
  for (const Value* v : f.crossing_candidates) {
    auto lu = f.last_use.find(v);
    if (lu == f.last_use.end()) continue;
    if (f.def.at(v) < cut && lu->second >= cut) out.push_back(v);
  }
  return out;
}

}  // namespace convoy::partition_detail
