// A loaded model: the archive (kept mapped: weights alias its pages) and the lowered, optimised
// graph of its forward method.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/graph/ir.h"

namespace convoy {

class OpRegistry;
struct Archive;

struct LoadOptions {
  bool run_passes = true;  // in-place rewriting, constant folding, dead-code elimination
  // How many of forward()'s parameters (after self) the caller supplies; the rest take their
  // defaults (an error naming the parameter if one has none). -1: all of them.
  int num_inputs = -1;
};

struct Model {
  std::string path;
  std::shared_ptr<const Archive> archive;
  std::unique_ptr<Graph> graph;
  std::vector<std::string> input_names;  // forward()'s parameters after self
};

// Loads, lowers and checks a TorchScript archive. Every error names the archive and, for code, the
// file and line inside it; an op outside the registry fails here, not at run time.
Model load_model(const std::string& path, const OpRegistry& registry, const LoadOptions& options = {});

// "aten::linear: 12, aten::relu: 11, ..." counts by op, for `inspect`.
std::string op_summary(const Graph& graph);

}  // namespace convoy
