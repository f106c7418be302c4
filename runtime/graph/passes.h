// Graph passes run after lowering. Each returns how many nodes it changed, so tests can see it act.
#pragma once

#include <cstddef>

#include "runtime/graph/ir.h"

namespace convoy {

// Removes nodes whose outputs are unused and that have no side effects (in-place ops, list
// mutation, prim::RaiseException, and control flow containing them are kept). Recurses into blocks.
size_t eliminate_dead_code(Graph& graph);

// Evaluates pure, non-tensor-producing nodes whose inputs are all constants (shape arithmetic:
// aten::size of a constant, int math, comparisons, aten::Int of a constant 0-dim tensor, ...) and
// replaces their outputs by constants; a prim::If on a constant condition is replaced by the taken
// branch. Repeats until nothing changes.
size_t fold_constants(Graph& graph);

// Rewrites an in-place op (aten::relu_) into its functional form (aten::relu) where no alias can
// observe the difference: its `self` is a tensor produced by a non-aliasing op and this node is its
// only use. Weights, graph inputs and views are never rewritten.
size_t make_inplace_functional(Graph& graph, const class OpRegistry& registry);

// Whether an op kind is in-place by its name: "aten::relu_" is, "aten::__and__" is not.
bool is_inplace_kind(const std::string& kind);

// Whether an op must run even when its inputs are known or its outputs unused: in-place ops, list and
// dict mutation, prim::RaiseException, printing, warnings, reseeding. Lowering's compile-time folding
// and the partitioner's cost model ask it.
bool op_has_effects(const std::string& kind);

// Whether an op may return a tensor that aliases one of its inputs (views, and ops like
// aten::contiguous that return their input unchanged when they can).
bool op_may_alias(const Node& node);

// The standard pipeline: in-place rewriting, constant folding, dead-code elimination.
void run_default_passes(Graph& graph, const class OpRegistry& registry);

}  // namespace convoy
