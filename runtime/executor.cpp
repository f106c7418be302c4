#include "runtime/executor.h"

#include <set>
#include <unordered_map>

#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

const std::set<std::string>& structural_prims() {
  static const std::set<std::string> kPrims = {"prim::Constant",       "prim::If",
                                               "prim::Loop",           "prim::ListConstruct",
                                               "prim::TupleConstruct", "prim::ListUnpack",
                                               "prim::TupleUnpack",    "prim::TupleIndex",
                                               "prim::Uninitialized",  "prim::RaiseException",
                                               "prim::DictConstruct"};
  return kPrims;
}

// Values read by a node, including those read inside its nested blocks (defined outside them).
void collect_reads(const Node* node, std::set<int>& out) {
  for (const Value* v : node->inputs) out.insert(v->id);
  for (const auto& b : node->blocks) {
    for (const auto& n : b->nodes) collect_reads(n.get(), out);
    for (const Value* v : b->returns) out.insert(v->id);
  }
}

// Checks the kind of a control-flow input here, so a bad value names the node and its source line.
const IValue& structural_input(const Node* node, const IValue& v, const char* what) {
  bool ok = std::string(what) == "condition" ? (v.is_bool() || v.is_int()) : v.is_int();
  CONVOY_CHECK(ok, node->source.str(), ": ", node->kind, " ", what, " must be ",
               std::string(what) == "condition" ? "a bool" : "an int", ", not ", v.kind_name(), " ",
               v.repr());
  return v;
}

}  // namespace

bool is_structural_prim(const std::string& kind) { return structural_prims().count(kind) != 0; }

struct ReferenceExecutor::Frame {
  std::vector<IValue> env;  // indexed by Value::id
};

ReferenceExecutor::ReferenceExecutor(const Graph& graph) : graph_(graph) {
  for_each_node(const_cast<Block*>(graph.top()), [](Node* n) {
    if (is_structural_prim(n->kind)) return;
    CONVOY_CHECK_KIND(kUnsupported, n->op != nullptr, n->source.str(), ": op '", n->kind,
                      "' has no kernel in the reference runtime");
  });
  // Last use of each value in the top block (graph outputs are never released).
  const Block* top = graph.top();
  std::unordered_map<int, size_t> last_use;
  for (size_t i = 0; i < top->nodes.size(); ++i) {
    std::set<int> reads;
    collect_reads(top->nodes[i].get(), reads);
    for (int id : reads) last_use[id] = i;
  }
  std::set<int> keep;
  for (const Value* v : top->returns) keep.insert(v->id);
  release_after_.assign(top->nodes.size(), {});
  for (const auto& [id, i] : last_use)
    if (!keep.count(id)) release_after_[i].push_back(id);
}

std::vector<IValue> ReferenceExecutor::run(const std::vector<IValue>& inputs) const {
  const auto& params = graph_.inputs();
  CONVOY_CHECK(inputs.size() == params.size(), "the model takes ", params.size(), " inputs but ",
               inputs.size(), " were given");
  Frame frame;
  frame.env.resize(graph_.num_values());
  for (size_t i = 0; i < params.size(); ++i) frame.env[static_cast<size_t>(params[i]->id)] = inputs[i];
  const Block* top = graph_.top();
  for (size_t i = 0; i < top->nodes.size(); ++i) {
    run_node(top->nodes[i].get(), frame);
    for (int id : release_after_[i]) frame.env[static_cast<size_t>(id)] = IValue();
  }
  std::vector<IValue> out;
  for (const Value* v : top->returns) out.push_back(frame.env[static_cast<size_t>(v->id)]);
  return out;
}

void ReferenceExecutor::run_block(const Block* block, Frame& frame) const {
  for (const auto& n : block->nodes) run_node(n.get(), frame);
}

void ReferenceExecutor::run_node(const Node* node, Frame& frame) const {
  auto& env = frame.env;
  auto in = [&](size_t i) -> IValue& { return env[static_cast<size_t>(node->inputs[i]->id)]; };
  auto set_out = [&](size_t i, IValue v) { env[static_cast<size_t>(node->outputs[i]->id)] = std::move(v); };
  const std::string& kind = node->kind;

  if (node->op) {
    IValueList args;
    args.reserve(node->inputs.size());
    for (const Value* v : node->inputs) args.push_back(env[static_cast<size_t>(v->id)]);
    IValueList results;
    try {
      results = node->op->kernel(args);
    } catch (const Error& e) {
      fail(e.kind(), node->source.str(), ": ", node->op->schema.full_name(), ": ", e.what());
    } catch (const std::exception& e) {
      fail(ErrorKind::kInternal, node->source.str(), ": ", node->op->schema.full_name(), ": ", e.what());
    }
    CONVOY_CHECK_KIND(kInternal, results.size() == node->outputs.size(), node->op->schema.full_name(),
                      " returned ", results.size(), " values, the graph expects ", node->outputs.size());
    for (size_t i = 0; i < results.size(); ++i) set_out(i, std::move(results[i]));
    return;
  }
  if (kind == "prim::Constant") {
    set_out(0, node->constant);
  } else if (kind == "prim::If") {
    const Block* branch =
        structural_input(node, in(0), "condition").to_bool() ? node->blocks[0].get() : node->blocks[1].get();
    run_block(branch, frame);
    for (size_t i = 0; i < node->outputs.size(); ++i)
      set_out(i, env[static_cast<size_t>(branch->returns[i]->id)]);
  } else if (kind == "prim::Loop") {
    int64_t max_trips = structural_input(node, in(0), "trip count").to_int();
    bool cond = structural_input(node, in(1), "condition").to_bool();
    size_t carried = node->inputs.size() - 2;
    std::vector<IValue> state(carried);
    for (size_t i = 0; i < carried; ++i) state[i] = in(2 + i);
    const Block* body = node->blocks[0].get();
    for (int64_t trip = 0; trip < max_trips && cond; ++trip) {
      env[static_cast<size_t>(body->params[0]->id)] = IValue(trip);
      for (size_t i = 0; i < carried; ++i) env[static_cast<size_t>(body->params[1 + i]->id)] = state[i];
      run_block(body, frame);
      cond = env[static_cast<size_t>(body->returns[0]->id)].to_bool();
      for (size_t i = 0; i < carried; ++i) state[i] = env[static_cast<size_t>(body->returns[1 + i]->id)];
    }
    for (size_t i = 0; i < carried; ++i) set_out(i, state[i]);
  } else if (kind == "prim::ListConstruct" || kind == "prim::TupleConstruct") {
    IValueList items;
    for (size_t i = 0; i < node->inputs.size(); ++i) items.push_back(in(i));
    set_out(0,
            kind == "prim::ListConstruct" ? IValue::list(std::move(items)) : IValue::tuple(std::move(items)));
  } else if (kind == "prim::ListUnpack" || kind == "prim::TupleUnpack") {
    const IValueList& items = in(0).to_list_or_tuple();
    CONVOY_CHECK(items.size() == node->outputs.size(), node->source.str(), ": cannot unpack ", items.size(),
                 " values into ", node->outputs.size());
    for (size_t i = 0; i < items.size(); ++i) set_out(i, items[i]);
  } else if (kind == "prim::TupleIndex") {
    const IValueList& items = in(0).to_list_or_tuple();
    int64_t idx = in(1).to_int();
    int64_t n = static_cast<int64_t>(items.size());
    if (idx < 0) idx += n;
    CONVOY_CHECK(idx >= 0 && idx < n, node->source.str(), ": tuple index ", in(1).to_int(),
                 " out of range for ", n, " items");
    set_out(0, items[static_cast<size_t>(idx)]);
  } else if (kind == "prim::DictConstruct") {
    std::vector<std::pair<IValue, IValue>> items;
    for (size_t i = 0; i + 1 < node->inputs.size(); i += 2) items.emplace_back(in(i), in(i + 1));
    set_out(0, IValue::dict(std::move(items)));
  } else if (kind == "prim::Uninitialized") {
    set_out(0, IValue());
  } else if (kind == "prim::RaiseException") {
    std::string message = node->inputs.empty() ? std::string("exception") : in(0).repr();
    fail(ErrorKind::kInvalidInput, node->source.str(), ": the model raised an exception: ", message);
  } else {
    fail(ErrorKind::kUnsupported, node->source.str(), ": no implementation of '", kind, "'");
  }
}

}  // namespace convoy
