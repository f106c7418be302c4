// Internal to runtime/partition: facts about a graph's top level that the cost model, the cut rules
// and extract_stage share (where each value is defined and last used, which nodes are constant-like).
#pragma once

#include <unordered_map>
#include <vector>

#include "runtime/graph/ir.h"

namespace convoy::partition_detail {

struct GraphFacts {
  int n = 0;                                       // top-level nodes
  std::vector<uint8_t> constant_like;              // per top-level node
  std::unordered_map<const Value*, int> def;       // top-level index of the producer (-1: graph input)
  std::unordered_map<const Value*, int> last_use;  // top-level index of the last use (n: a graph return)
  std::unordered_map<const Node*, int> top_index;  // every node (nested too) → its top-level ancestor
  std::vector<const Value*> crossing_candidates;   // graph inputs, then non-constant node outputs, in order
};

GraphFacts graph_facts(const Graph& graph);

// The values crossing cut `cut` (before top-level node `cut`): graph inputs, then node outputs in
// order, that are defined before it and used at or after it. extract_stage's parameter order.
std::vector<const Value*> values_crossing(const GraphFacts& f, int cut);

}  // namespace convoy::partition_detail
