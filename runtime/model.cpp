#include "runtime/model.h"

#include <map>
#include <sstream>

#include "runtime/error.h"
#include "runtime/graph/passes.h"
#include "runtime/ops/registry.h"
#include "runtime/torchscript/archive.h"
#include "runtime/torchscript/lowering.h"

namespace convoy {

Model load_model(const std::string& path, const OpRegistry& registry, const LoadOptions& options) {
  Model model;
  model.path = path;
  auto archive = std::make_shared<Archive>(load_archive(path));
  try {
    LoweringOptions lowering;
    lowering.num_inputs = options.num_inputs;
    model.graph = lower_module(*archive, registry, lowering);
  } catch (const Error& e) {
    fail(e.kind(), path, ": ", e.what());
  }
  if (options.run_passes) run_default_passes(*model.graph, registry);
  for (const Value* v : model.graph->inputs()) model.input_names.push_back(v->name);
  model.archive = std::move(archive);
  return model;
}

std::string op_summary(const Graph& graph) {
  std::map<std::string, size_t> counts;
  for_each_node(const_cast<Block*>(graph.top()), [&](Node* n) {
    if (n->kind != "prim::Constant") ++counts[n->kind];
  });
  std::ostringstream out;
  size_t total = 0;
  bool first = true;
  for (const auto& [kind, n] : counts) {
    out << (first ? "" : ", ") << kind << " " << n;
    first = false;
    total += n;
  }
  out << " (" << total << " nodes)";
  return out.str();
}

}  // namespace convoy
