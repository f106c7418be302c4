// extract_stage: one stage's node range as a Graph of its own.
#include <unordered_map>

#include "runtime/error.h"
#include "runtime/partition/graph_facts.h"
#include "runtime/partition/partition.h"

namespace convoy {

using partition_detail::graph_facts;
using partition_detail::GraphFacts;

namespace {

struct Cloner {
  Graph& dst;
  std::unordered_map<const Value*, Value*> map;

  Value* get(const Value* v) const {
    auto it = map.find(v);
    CONVOY_ASSERT(it != map.end(), "extract_stage: value %", v->id, " used before its definition");
    return it->second;
  }

  void clone_into(Block* block, const Node* src) {
    std::vector<Value*> ins;
    for (const Value* v : src->inputs) ins.push_back(get(v));
    Node* n = block->append(src->kind, ins, src->outputs.size(), src->source);
    n->op = src->op;
    n->constant = src->constant;
    for (size_t i = 0; i < src->outputs.size(); ++i) {
      n->outputs[i]->type = src->outputs[i]->type;
      n->outputs[i]->name = src->outputs[i]->name;
      map[src->outputs[i]] = n->outputs[i];
    }
    for (const auto& sb : src->blocks) {
      Block* b = n->add_block();
      for (const Value* p : sb->params) map[p] = b->add_param(p->type, p->name);
      for (const auto& sn : sb->nodes) clone_into(b, sn.get());
      for (const Value* r : sb->returns) b->returns.push_back(get(r));
    }
  }
};

void collect_used(const Node* node, std::vector<const Value*>& out) {
  for (const Value* v : node->inputs) out.push_back(v);
  for (const auto& b : node->blocks) {
    for (const auto& n : b->nodes) collect_used(n.get(), out);
    for (const Value* v : b->returns) out.push_back(v);
  }
}

}  // namespace

std::vector<const Value*> values_across_cut(const Graph& graph, int cut) {
  GraphFacts f = graph_facts(graph);
  CONVOY_CHECK(cut >= 0 && cut <= f.n, "cut ", cut, " is outside the graph's ", f.n, " top-level nodes");
  return partition_detail::values_crossing(f, cut);
}

std::unique_ptr<Graph> extract_stage(const Graph& graph, int first, int last) {
  GraphFacts f = graph_facts(graph);
  CONVOY_CHECK(first >= 0 && first <= last && last < f.n, "extract_stage: node range [", first, ", ", last,
               "] is empty or outside the graph's ", f.n, " top-level nodes");
  const Block* top = graph.top();
  auto g = std::make_unique<Graph>();
  Cloner c{*g, {}};

  std::vector<const Value*> params;
  if (first == 0) {
    params.assign(graph.inputs().begin(), graph.inputs().end());
  } else {
    params = partition_detail::values_crossing(f, first);
  }
  for (const Value* v : params) c.map[v] = g->top()->add_param(v->type, v->name);

  std::vector<const Value*> returns;
  if (last == f.n - 1) {
    returns.assign(top->returns.begin(), top->returns.end());
  } else {
    returns = partition_detail::values_crossing(f, last + 1);
  }

  // Constant-like nodes this stage needs (used by its nodes or returned), copied first in their
  // original order so each precedes its uses.
  std::vector<const Value*> used;
  for (int i = first; i <= last; ++i) {
    const Node* n = top->nodes[static_cast<size_t>(i)].get();
    if (!f.constant_like[static_cast<size_t>(i)]) collect_used(n, used);
  }
  used.insert(used.end(), returns.begin(), returns.end());
  std::vector<uint8_t> need(static_cast<size_t>(f.n), 0);
  // Constant-like lists pull in their items: walk producers backwards.
  std::vector<const Value*> work = used;
  while (!work.empty()) {
    const Value* v = work.back();
    work.pop_back();
    auto d = f.def.find(v);
    if (d == f.def.end() || d->second < 0) continue;
    size_t i = static_cast<size_t>(d->second);
    if (!f.constant_like[i] || need[i]) continue;
    need[i] = 1;
    for (const Value* in : top->nodes[i]->inputs) work.push_back(in);
  }
  for (int i = 0; i < f.n; ++i)
    if (need[static_cast<size_t>(i)]) c.clone_into(g->top(), top->nodes[static_cast<size_t>(i)].get());
  for (int i = first; i <= last; ++i)
    if (!f.constant_like[static_cast<size_t>(i)])
      c.clone_into(g->top(), top->nodes[static_cast<size_t>(i)].get());
  for (const Value* v : returns) g->top()->returns.push_back(c.get(v));
  return g;
}

}  // namespace convoy
