// The neural-network family on OpenCL: registration (convolution in conv.cpp, pooling in pooling.cpp,
// normalisation in normalization.cpp), embedding, the conv → batch_norm → activation fusion (a graph
// rewrite into convoy::conv_bn_act) and the linear → activation fusion (into convoy::linear_act); see
// nn.h.
//
// Embedding indices out of range: when the indices are host tensors (model constants, plan-time
// values) they are checked on the host while the plan is built, raising the reference's error. Device
// indices are checked by the kernel itself: a bad index zeroes its output row (the table is never read
// out of bounds) and sets a flag that the executor reads back after the run
// (OpContext::check_flag_after_run); an executor that does not read flags cannot report it.
#include "opencl/ops/nn.h"

#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "opencl/ops/launch_util.h"
#include "opencl/ops/linalg.h"
#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

// ---- embedding -----------------------------------------------------------------------------------

const char* bits_type(size_t element_size) {
  switch (element_size) {
    case 1:
      return "uchar";
    case 2:
      return "ushort";
    case 4:
      return "uint";
    default:
      return "ulong";
  }
}

// padding_idx, scale_grad_by_freq and sparse only change the gradient; the forward pass is a lookup.
Tensor embedding(OpContext& cx, const Tensor& weight, const Tensor& indices) {
  constexpr const char* op = "aten::embedding";
  nn::check_embedding_args(op, weight, indices);
  const int64_t rows = weight.size(0), dim = weight.size(1);
  Shape shape = indices.sizes();
  shape.push_back(dim);
  const bool host_indices = !cx.is_device(indices);
  if (host_indices) {
    const std::vector<int64_t> idx = indices.to_ints();
    for (size_t i = 0; i < idx.size(); ++i)
      CONVOY_CHECK(idx[i] >= 0 && idx[i] < rows, op, ": index ", idx[i], " at position ", i, " of indices ",
                   indices.describe(), " is out of range for an embedding table of ", rows, " rows ",
                   weight.describe());
  }
  Tensor out = cx.empty(shape, weight.dtype());
  if (out.numel() == 0) return out;
  Tensor w = contiguous(cx, cx.to_device(weight));
  Tensor idx = contiguous(cx, cx.to_device(indices));
  KernelLaunch k;
  k.file = "embedding.cl";
  k.kernel = "embedding";
  k.options = str_cat("-DE_T=", bits_type(weight.element_size()),
                      " -DIDX_T=", indices.dtype() == DType::kInt64 ? "long" : "int");
  k.args = {out, w, idx};
  if (!host_indices) {
    Tensor flag = cx.empty({3}, DType::kInt32);
    if (cx.check_flag_after_run(flag, str_cat(cx.where(), ": an index of indices ", indices.describe(),
                                              " is out of range for an embedding table of ", rows, " rows ",
                                              weight.describe(), " (position, index)"))) {
      fill(cx, flag, 0);
      k.options += " -DCHECK_FLAG";
      k.args.push_back(flag);
    }
  }
  k.args.push_back(rows);
  k.args.push_back(dim);
  k.global = {static_cast<size_t>(dim), static_cast<size_t>(indices.numel())};
  cx.launch(std::move(k));
  return out;
}

// ---- the fused op --------------------------------------------------------------------------------

constexpr const char* kFusedSchema =
    "convoy::conv_bn_act(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] "
    "dilation, "
    "int groups, Tensor? bn_weight, Tensor? bn_bias, Tensor? bn_running_mean, Tensor? bn_running_var, "
    "float bn_eps, str activation, float act_min, float act_max) -> Tensor";

Tensor optional_tensor(const IValue& v) { return v.is_none() ? Tensor() : v.to_tensor(); }

const OpRegistry& reference_registry() {
  static const OpRegistry registry = make_default_registry();
  return registry;
}

IValue run_reference_op(const char* name, const char* overload, IValueList args) {
  const OpOverload* op = reference_registry().find(name, overload);
  CONVOY_ASSERT(op != nullptr, "convoy::conv_bn_act: the registry has no ", name);
  return op->kernel(args).at(0);
}

IValue reference_activation(IValue y, const std::string& act, const IValue& min_value,
                            const IValue& max_value);

IValueList fused_reference(IValueList& a) {
  auto list = [](const IValue& v) { return v.is_int() ? IValue::int_list({v.to_int()}) : v; };
  IValue y = run_reference_op(
      "aten::convolution", "",
      {a[0], a[1], a[2], list(a[3]), list(a[4]), list(a[5]), IValue(false), IValue::int_list({0}), a[6]});
  if (!a[10].is_none())
    y = run_reference_op("aten::batch_norm", "",
                         {y, a[7], a[8], a[9], a[10], IValue(false), IValue(0.1), a[11], IValue(false)});
  y = reference_activation(std::move(y), a[12].to_string(), a[13], a[14]);
  return {y};
}

IValueList fused_opencl(OpContext& cx, IValueList& a) {
  ConvCall call = read_convolution("convoy::conv_bn_act", a);
  for (const Tensor* t : {&call.weight, &call.bias})
    if (t->defined())
      CONVOY_CHECK(t->dtype() == call.input.dtype(), call.op, ": input ", call.input.describe(), " and ",
                   t->describe(), " must have the same dtype");
  const ConvActivation act = activation_named(a[12].to_string(), a[13].to_double(), a[14].to_double());
  if (a[10].is_none()) return {IValue(lower_convolution(cx, call, act))};
  const BatchNormParams bn{optional_tensor(a[7]), optional_tensor(a[8]), optional_tensor(a[9]),
                           optional_tensor(a[10]), a[11].to_double()};
  if (std::optional<Tensor> folded = lower_convolution_batch_norm(cx, call, bn, act))
    return {IValue(*folded)};
  // Parameters computed on the device: the three ops one after the other.
  Tensor y = lower_batch_norm_inference(cx, lower_convolution(cx, call), bn, "convoy::conv_bn_act");
  apply_conv_activation(cx, y, act);
  return {IValue(y)};
}

constexpr const char* kLinearActSchema =
    "convoy::linear_act(Tensor input, Tensor weight, Tensor? bias, str activation, float act_min, float "
    "act_max) -> Tensor";

// The activation after y, through the registry's own kernels (shared by both fused ops' reference).
IValue reference_activation(IValue y, const std::string& act, const IValue& min_value,
                            const IValue& max_value) {
  if (act == "relu") y = run_reference_op("aten::relu", "", {y});
  if (act == "relu6") y = run_reference_op("aten::hardtanh", "", {y, IValue(0.0), IValue(6.0)});
  if (act == "hardtanh") y = run_reference_op("aten::hardtanh", "", {y, min_value, max_value});
  if (act == "gelu") y = run_reference_op("aten::gelu", "", {y, IValue("none")});
  if (act == "gelu_tanh") y = run_reference_op("aten::gelu", "", {y, IValue("tanh")});
  if (act == "silu") y = run_reference_op("aten::silu", "", {y});
  if (act == "hardswish") y = run_reference_op("aten::hardswish", "", {y});
  if (act == "sigmoid") y = run_reference_op("aten::sigmoid", "", {y});
  activation_named(act, min_value.to_double(), max_value.to_double());  // rejects unknown names
  return y;
}

IValueList linear_act_reference(IValueList& a) {
  IValue y = run_reference_op("aten::linear", "", {a[0], a[1], a[2]});
  return {reference_activation(std::move(y), a[3].to_string(), a[4], a[5])};
}

// The linear's GEMM with the bias and the activation in its epilogue: one launch, C written once.
IValueList linear_act_opencl(OpContext& cx, IValueList& a) {
  const ConvActivation act = activation_named(a[3].to_string(), a[4].to_double(), a[5].to_double());
  const Tensor bias = optional_tensor(a[2]);
  return {
      IValue(linear(cx, a[0].to_tensor(), a[1].to_tensor(), bias, act.kind, act.min_value, act.max_value))};
}

// ---- the fusion pass -----------------------------------------------------------------------------

bool is_constant(const Value* v) { return v->node && v->node->kind == "prim::Constant"; }
const IValue& constant_of(const Value* v) { return v->node->constant; }

// Positions of the groups argument in the convolution overloads the pass fuses; -1: not fusable.
int fusable_conv_groups_index(const Node& n) {
  if (!n.op || n.outputs.size() != 1) return -1;
  const std::string name = n.op->schema.full_name();
  if (name == "aten::conv1d" || name == "aten::conv2d" || name == "aten::conv3d") return 6;
  if (name == "aten::_convolution" || name == "aten::_convolution.deprecated" ||
      name == "aten::convolution") {
    const Value* transposed = n.inputs[6];
    if (!is_constant(transposed) || !constant_of(transposed).is_bool() || constant_of(transposed).to_bool())
      return -1;
    return 8;
  }
  return -1;
}

bool is_foldable_batch_norm(const Node& n, const Value* input) {
  if (!n.op || n.op->schema.full_name() != "aten::batch_norm" || n.inputs[0] != input) return false;
  for (size_t i = 1; i <= 7; ++i)
    if (i != 6 && !is_constant(n.inputs[i])) return false;  // 6 is momentum, unused in inference
  const IValue& training = constant_of(n.inputs[5]);
  if (!training.is_bool() || training.to_bool()) return false;
  for (size_t i = 1; i <= 4; ++i) {
    const IValue& p = constant_of(n.inputs[i]);
    if (!(p.is_none() && i <= 2) && !(p.is_tensor() && p.to_tensor().defined())) return false;
  }
  return constant_of(n.inputs[7]).is_number();
}

// The activation `n` applies to `input`, when it is one the epilogue computes and its parameters are
// constants.
std::optional<std::array<IValue, 3>> fusable_activation(const Node& n, const Value* input) {
  if (!n.op || n.inputs.empty() || n.inputs[0] != input || n.outputs.size() != 1) return std::nullopt;
  std::string name = n.op->schema.name;
  if (name.size() > 1 && name.back() == '_') name.pop_back();  // relu_ and relu compute the same
  for (const char* simple : {"aten::relu", "aten::relu6", "aten::silu", "aten::hardswish", "aten::sigmoid"})
    if (name == simple && n.inputs.size() == 1)
      return std::array<IValue, 3>{IValue(std::string(simple).substr(6)), IValue(0.0), IValue(0.0)};
  if (name == "aten::hardtanh" && n.inputs.size() == 3 && is_constant(n.inputs[1]) &&
      is_constant(n.inputs[2]) && constant_of(n.inputs[1]).is_number() &&
      constant_of(n.inputs[2]).is_number())
    return std::array<IValue, 3>{IValue("hardtanh"), IValue(constant_of(n.inputs[1]).to_double()),
                                 IValue(constant_of(n.inputs[2]).to_double())};
  if (name == "aten::gelu" && n.inputs.size() == 2 && is_constant(n.inputs[1]) &&
      constant_of(n.inputs[1]).is_string()) {
    const std::string& approximate = constant_of(n.inputs[1]).to_string();
    if (approximate == "none" || approximate == "tanh")
      return std::array<IValue, 3>{IValue(approximate == "none" ? "gelu" : "gelu_tanh"), IValue(0.0),
                                   IValue(0.0)};
  }
  return std::nullopt;
}

void count_uses(const Block* block, std::unordered_map<const Value*, int>& uses) {
  for (const auto& n : block->nodes) {
    for (const Value* v : n->inputs) uses[v]++;
    for (const auto& b : n->blocks) count_uses(b.get(), uses);
  }
  for (const Value* v : block->returns) uses[v]++;
}

// The only node of `block` that reads `v` when `v` has exactly one use, and that use is there.
Node* single_consumer(Block* block, const Value* v, const std::unordered_map<const Value*, int>& uses) {
  auto it = uses.find(v);
  if (it == uses.end() || it->second != 1) return nullptr;
  for (const auto& n : block->nodes)
    for (const Value* in : n->inputs)
      if (in == v) return n.get();
  return nullptr;
}

// A rewrite at one node of a block: it inserts its fused node and returns the nodes that node
// replaces (none when `node` starts no fusable chain).
using FuseAt = std::function<std::vector<Node*>(Graph&, Block*, Node*)>;

// Applies `fuse_at` at every node of `block`, inner blocks first, and counts the rewrites. Each walk
// goes over a node_list() copy, and replaced nodes stay alive until their block's walk is over:
// the fused nodes and the constants the rewrites add (Graph::constant inserts them into the top
// block, which an enclosing walk may be walking) never invalidate a walk, and no pointer in one
// dangles.
int fuse_nodes(Graph& graph, Block* block, const FuseAt& fuse_at) {
  int fused = 0;
  const std::vector<Node*> nodes = block->node_list();
  for (Node* n : nodes)
    for (const auto& b : n->blocks) fused += fuse_nodes(graph, b.get(), fuse_at);
  std::vector<std::unique_ptr<Node>> replaced;
  std::unordered_set<const Node*> gone;
  for (Node* n : nodes) {
    if (gone.count(n)) continue;
    const std::vector<Node*> chain = fuse_at(graph, block, n);
    if (chain.empty()) continue;
    for (Node* c : chain) {
      gone.insert(c);
      replaced.push_back(block->detach(c));
    }
    ++fused;
  }
  return fused;
}

// The fused node takes the place of `head` and produces `tail`'s output.
Node* insert_fused(Block* block, Node* head, Node* tail, const char* kind, const OpOverload& op,
                   const std::vector<Value*>& inputs) {
  Node* node = block->insert_before(head, kind, inputs, 1, head->source);
  node->op = &op;
  Value* out = tail->outputs[0];
  node->outputs[0] = out;
  out->node = node;
  out->index = 0;
  return node;
}

// conv -> [batch_norm] -> [activation], when each link is the only use of its input.
std::vector<Node*> fuse_conv_at(Graph& graph, Block* block, Node* conv,
                                const std::unordered_map<const Value*, int>& uses) {
  const int groups_index = fusable_conv_groups_index(*conv);
  if (groups_index < 0) return {};
  Node* consumer = single_consumer(block, conv->outputs[0], uses);
  if (!consumer) return {};
  Node* bn = nullptr;
  Node* act = nullptr;
  std::optional<std::array<IValue, 3>> activation;
  if (is_foldable_batch_norm(*consumer, conv->outputs[0])) {
    bn = consumer;
    if (Node* next = single_consumer(block, bn->outputs[0], uses))
      if ((activation = fusable_activation(*next, bn->outputs[0]))) act = next;
  } else if ((activation = fusable_activation(*consumer, conv->outputs[0]))) {
    act = consumer;
  }
  if (!bn && !act) return {};
  // Parameters of the batch-norm and the activation become constants at the top of the graph, so
  // they dominate the fused node wherever it is.
  auto top_constant = [&](IValue v) { return graph.constant(std::move(v)); };
  std::vector<Value*> inputs = {conv->inputs[0],
                                conv->inputs[1],
                                conv->inputs[2],
                                conv->inputs[3],
                                conv->inputs[4],
                                conv->inputs[5],
                                conv->inputs[static_cast<size_t>(groups_index)]};
  for (size_t p = 1; p <= 4; ++p) inputs.push_back(top_constant(bn ? constant_of(bn->inputs[p]) : IValue()));
  inputs.push_back(top_constant(bn ? IValue(constant_of(bn->inputs[7]).to_double()) : IValue(1e-5)));
  const std::array<IValue, 3> act_args =
      activation ? *activation : std::array<IValue, 3>{IValue("none"), IValue(0.0), IValue(0.0)};
  for (const IValue& v : act_args) inputs.push_back(top_constant(v));
  insert_fused(block, conv, act ? act : bn, "convoy::conv_bn_act", fused_conv_overload(), inputs);
  std::vector<Node*> chain = {conv};
  if (bn) chain.push_back(bn);
  if (act) chain.push_back(act);
  return chain;
}

// aten::linear whose output's only use is a fusable activation.
std::vector<Node*> fuse_linear_at(Graph& graph, Block* block, Node* lin,
                                  const std::unordered_map<const Value*, int>& uses) {
  if (!lin->op || lin->outputs.size() != 1 || lin->inputs.size() != 3 ||
      lin->op->schema.full_name() != "aten::linear")
    return {};
  Node* act = single_consumer(block, lin->outputs[0], uses);
  if (!act) return {};
  const std::optional<std::array<IValue, 3>> activation = fusable_activation(*act, lin->outputs[0]);
  if (!activation) return {};
  std::vector<Value*> inputs = {lin->inputs[0], lin->inputs[1], lin->inputs[2]};
  for (const IValue& v : *activation) inputs.push_back(graph.constant(v));
  insert_fused(block, lin, act, "convoy::linear_act", fused_linear_overload(), inputs);
  return {lin, act};
}

}  // namespace

const OpOverload& fused_conv_overload() {
  static const OpOverload overload{parse_schema(kFusedSchema), fused_reference, nullptr};
  return overload;
}

int fuse_conv_batch_norm_activation(Graph& graph) {
  std::unordered_map<const Value*, int> uses;
  count_uses(graph.top(), uses);
  return fuse_nodes(graph, graph.top(),
                    [&](Graph& g, Block* block, Node* n) { return fuse_conv_at(g, block, n, uses); });
}

const OpOverload& fused_linear_overload() {
  static const OpOverload overload{parse_schema(kLinearActSchema), linear_act_reference, nullptr};
  return overload;
}

int fuse_linear_activation(Graph& graph) {
  std::unordered_map<const Value*, int> uses;
  count_uses(graph.top(), uses);
  return fuse_nodes(graph, graph.top(),
                    [&](Graph& g, Block* block, Node* n) { return fuse_linear_at(g, block, n, uses); });
}

void register_opencl_nn_ops(OpenCLOpTable& table) {
  register_opencl_conv_ops(table);
  register_opencl_pooling_ops(table);
  register_opencl_normalization_ops(table);
  table.add("aten::embedding", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(embedding(cx, a[0].to_tensor(), a[1].to_tensor()))};
  });
  table.add("convoy::conv_bn_act", fused_opencl);
  table.add("convoy::linear_act", linear_act_opencl);
}

}  // namespace convoy::opencl
