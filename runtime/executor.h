// The reference executor: interprets a Graph node by node with the registry's reference kernels.
// It is the correctness oracle for every other backend and runs jobs with `--backend reference`.
#pragma once

#include <vector>

#include "runtime/graph/ir.h"
#include "runtime/ivalue.h"

namespace convoy {

class ReferenceExecutor {
 public:
  // Checks that every node is executable (a registry op with a resolved overload, or a structural
  // prim); a node that is not fails here, naming the op and its source line.
  explicit ReferenceExecutor(const Graph& graph);

  // Runs the graph on one set of inputs (one per graph input) and returns one value per output.
  // Errors from kernels are rethrown with the op and its source line prepended.
  std::vector<IValue> run(const std::vector<IValue>& inputs) const;

 private:
  struct Frame;
  void run_block(const Block* block, Frame& frame) const;
  void run_node(const Node* node, Frame& frame) const;

  const Graph& graph_;
  // For the top block: after node i runs, the values whose last use it was are released, so
  // activations do not pile up over a deep network.
  std::vector<std::vector<int>> release_after_;
};

// Whether `kind` is a structural prim the executor runs itself rather than through the registry.
bool is_structural_prim(const std::string& kind);

}  // namespace convoy
