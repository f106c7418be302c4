// The partitioner's cost model: concrete shapes propagated through the graph, then FLOPs, bytes and
// activation sizes per top-level node, and the cut rules.
#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/passes.h"
#include "runtime/ops/registry.h"
#include "runtime/partition/graph_facts.h"
#include "runtime/partition/partition.h"

namespace convoy {

using partition_detail::graph_facts;
using partition_detail::GraphFacts;

namespace {

// What is known of a value while propagating: its type (shape refined where known), its value when
// it is computable without tensor data, and the items of a list/tuple built in the graph.
struct Info {
  TypePtr type;
  std::optional<IValue> known;
  std::vector<Info> items;
  bool has_items = false;
};

bool concrete(const Type& t) {
  if (!t.is(TypeKind::kTensor) || !t.shape || !t.dtype) return false;
  for (int64_t d : *t.shape)
    if (d < 0) return false;
  return true;
}

uint64_t tensor_bytes(const Type& t) {
  if (!concrete(t)) return 0;
  return static_cast<uint64_t>(shape_numel(*t.shape)) * dtype_size(*t.dtype);
}

double numel(const Type& t) { return concrete(t) ? static_cast<double>(shape_numel(*t.shape)) : 0; }

bool type_has_tensor(const Type& t) {
  if (t.is(TypeKind::kTensor)) return true;
  for (const TypePtr& c : t.contained)
    if (c && type_has_tensor(*c)) return true;
  return false;
}

// A tensor with the given shape and dtype whose elements all alias one zero: enough for kernels that
// read only metadata (aten::size, aten::dim, prim::dtype).
Tensor fake_tensor(const Type& t) {
  auto storage = Storage::allocate(dtype_size(*t.dtype));
  Shape strides(t.shape->size(), 0);
  return Tensor::from_storage(storage, *t.dtype, *t.shape, strides, 0, "shape propagation");
}

const std::set<std::string>& metadata_ops() {
  static const std::set<std::string> k = {
      "aten::dim",  "aten::is_floating_point", "aten::len", "aten::numel", "aten::size", "prim::device",
      "prim::dtype"};
  return k;
}

struct Propagator {
  std::vector<Info> info;  // by Value::id
  bool guessed = false;

  Info& at(const Value* v) { return info[static_cast<size_t>(v->id)]; }
  TypePtr type_of_value(const Value* v) {
    Info& i = at(v);
    return i.type ? i.type : v->type;
  }

  void set(const Value* v, Info i) {
    if (!i.type) i.type = v->type;
    at(v) = std::move(i);
  }

  void run_block(const Block* b) {
    for (const auto& n : b->nodes) run_node(n.get());
  }

  void run_node(const Node* node) {
    const std::string& kind = node->kind;
    if (kind == "prim::Constant") {
      Info i;
      i.known = node->constant;
      i.type = node->constant.is_tensor() ? convoy::type_of(node->constant) : node->outputs[0]->type;
      set(node->outputs[0], std::move(i));
      return;
    }
    if (kind == "prim::ListConstruct" || kind == "prim::TupleConstruct") {
      Info out;
      out.has_items = true;
      bool all_known = true;
      IValueList vals;
      std::vector<TypePtr> elem_types;
      for (const Value* in : node->inputs) {
        Info& ii = at(in);
        out.items.push_back(ii);
        elem_types.push_back(type_of_value(in));
        if (ii.known && !ii.known->is_tensor())
          vals.push_back(*ii.known);
        else
          all_known = false;
      }
      if (all_known) out.known = kind == "prim::ListConstruct" ? IValue::list(vals) : IValue::tuple(vals);
      out.type = kind == "prim::TupleConstruct" ? Type::tuple(elem_types) : node->outputs[0]->type;
      set(node->outputs[0], std::move(out));
      return;
    }
    if (kind == "prim::ListUnpack" || kind == "prim::TupleUnpack") {
      Info& src = at(node->inputs[0]);
      for (size_t i = 0; i < node->outputs.size(); ++i) {
        Info o;
        if (src.has_items && i < src.items.size()) {
          o = src.items[i];
        } else if (src.known && (src.known->is_list() || src.known->is_tuple())) {
          const IValueList& l = src.known->to_list_or_tuple();
          if (i < l.size()) o.known = l[i];
        } else if (src.type && src.type->is(TypeKind::kTuple) && i < src.type->contained.size()) {
          o.type = src.type->contained[i];
        }
        set(node->outputs[i], std::move(o));
      }
      return;
    }
    if (kind == "prim::TupleIndex") {
      Info& src = at(node->inputs[0]);
      Info& idx = at(node->inputs[1]);
      Info o;
      if (idx.known && idx.known->is_int()) {
        int64_t k = idx.known->to_int();
        if (src.has_items) {
          int64_t n = static_cast<int64_t>(src.items.size());
          if (k < 0) k += n;
          if (k >= 0 && k < n) o = src.items[static_cast<size_t>(k)];
        }
      }
      set(node->outputs[0], std::move(o));
      return;
    }
    if (kind == "prim::If") {
      Info& cond = at(node->inputs[0]);
      std::optional<size_t> taken;
      if (cond.known && (cond.known->is_bool() || cond.known->is_int()))
        taken = cond.known->to_bool() ? 0 : 1;
      for (const auto& b : node->blocks) run_block(b.get());
      for (size_t i = 0; i < node->outputs.size(); ++i) {
        Info o;
        if (taken) {
          o = at(node->blocks[*taken]->returns[i]);
        } else {
          const Info& a = at(node->blocks[0]->returns[i]);
          const Info& b = at(node->blocks[1]->returns[i]);
          if (a.type && b.type && a.type->str() == b.type->str() && a.type->shape == b.type->shape &&
              a.type->dtype == b.type->dtype)
            o.type = a.type;
        }
        set(node->outputs[i], std::move(o));
      }
      return;
    }
    if (kind == "prim::Loop") {
      const Block* body = node->blocks[0].get();
      Info iter;
      iter.type = Type::integer();
      set(body->params[0], iter);
      for (size_t i = 1; i < body->params.size(); ++i) {
        Info carried;
        carried.type = type_of_value(node->inputs[1 + i]);
        set(body->params[i], carried);
      }
      run_block(body);
      for (size_t i = 0; i < node->outputs.size(); ++i) {
        Info o;
        TypePtr before = type_of_value(node->inputs[2 + i]);
        TypePtr after = type_of_value(body->returns[1 + i]);
        if (before && after && before->str() == after->str() && before->shape == after->shape &&
            before->dtype == after->dtype)
          o.type = before;
        set(node->outputs[i], std::move(o));
      }
      return;
    }
    if (!node->op) {
      for (const Value* o : node->outputs) set(o, Info{});
      return;
    }
    run_op(node);
  }

  void run_op(const Node* node) {
    const OpOverload& op = *node->op;
    const std::string& name = op.schema.name;
    bool tensor_returns = false, tensor_args = false;
    for (const Argument& a : op.schema.returns) tensor_returns |= type_has_tensor(*a.type);
    for (const Argument& a : op.schema.arguments) tensor_args |= type_has_tensor(*a.type);

    // Scalar work: evaluate when every input is known (metadata ops see a fake tensor).
    bool evaluate = !tensor_returns && !op_has_effects(node->kind) &&
                    node->outputs.size() == op.schema.returns.size() &&
                    (!tensor_args || metadata_ops().count(name));
    if (evaluate) {
      IValueList args;
      for (const Value* in : node->inputs) {
        Info& ii = at(in);
        TypePtr t = type_of_value(in);
        if (ii.known && !ii.known->is_tensor()) {
          args.push_back(*ii.known);
        } else if (t && concrete(*t)) {
          args.push_back(IValue(fake_tensor(*t)));
        } else if (ii.known) {
          args.push_back(*ii.known);
        } else {
          evaluate = false;
          break;
        }
      }
      if (evaluate) {
        try {
          IValueList results = op.kernel(args);
          if (results.size() == node->outputs.size()) {
            for (size_t i = 0; i < results.size(); ++i) {
              Info o;
              o.known = results[i];
              set(node->outputs[i], std::move(o));
            }
            return;
          }
        } catch (const std::exception&) {
          // fall through to static types
        }
      }
    }

    std::vector<TypePtr> types;
    if (op.infer) {
      std::vector<TypePtr> arg_types;
      std::vector<const IValue*> constants;
      for (const Value* in : node->inputs) {
        arg_types.push_back(type_of_value(in));
        Info& ii = at(in);
        constants.push_back(ii.known ? &*ii.known : nullptr);
      }
      try {
        types = op.infer(arg_types, constants);
      } catch (const std::exception&) {
        types.clear();
      }
    }
    if (name == "aten::cat" || name == "aten::stack") types = infer_cat(node, name == "aten::stack");
    for (size_t i = 0; i < node->outputs.size(); ++i) {
      Info o;
      if (i < types.size() && types[i]) o.type = types[i];
      if (!o.type || (o.type->is(TypeKind::kTensor) && !concrete(*o.type))) {
        TypePtr st = node->outputs[i]->type;
        if (st && st->is(TypeKind::kTensor) && !concrete(*st)) {
          // Unknown: guess the shape of the first tensor input (elementwise-like ops).
          for (const Value* in : node->inputs) {
            TypePtr t = type_of_value(in);
            if (t && concrete(*t)) {
              o.type = Type::tensor(st->dtype ? st->dtype : t->dtype, t->shape);
              break;
            }
          }
          guessed = true;
        }
      }
      set(node->outputs[i], std::move(o));
    }
  }

  std::vector<TypePtr> infer_cat(const Node* node, bool stack) {
    Info& list = at(node->inputs[0]);
    if (!list.has_items || list.items.empty() || node->inputs.size() < 2) return {};
    Info& dim_info = at(node->inputs[1]);
    if (!dim_info.known || !dim_info.known->is_int()) return {};
    std::optional<Shape> shape;
    std::optional<DType> dtype;
    int64_t total = 0;
    int64_t dim = dim_info.known->to_int();
    for (const Info& it : list.items) {
      if (!it.type || !concrete(*it.type)) return {};
      const Shape& s = *it.type->shape;
      int64_t rank = static_cast<int64_t>(s.size()) + (stack ? 1 : 0);
      int64_t d = dim < 0 ? dim + rank : dim;
      if (d < 0 || d >= rank) return {};
      if (!stack && s.empty()) continue;  // legacy: 1-d empty tensors are skipped
      if (!shape) {
        shape = s;
        dtype = it.type->dtype;
        if (stack) shape->insert(shape->begin() + d, 0);
      }
      total += stack ? 1 : s[static_cast<size_t>(d)];
      (*shape)[static_cast<size_t>(d)] = total;
    }
    if (!shape) return {};
    return {Type::tensor(dtype, shape)};
  }
};

double conv_flops(const Type& out, const Type& weight, bool transposed, const Type& input) {
  if (!concrete(weight) || weight.shape->empty()) return 0;
  double wn = numel(weight);
  double first = static_cast<double>((*weight.shape)[0]);
  if (first <= 0) return 0;
  // Regular: each output element takes Cin/groups × kernel MACs (= weight numel / Cout).
  // Transposed (weight [Cin, Cout/groups, k...]): each input element scatters weight numel / Cin.
  return transposed ? 2 * numel(input) * wn / first : 2 * numel(out) * wn / first;
}

double last_dim(const Type& t) {
  return concrete(t) && !t.shape->empty() ? static_cast<double>(t.shape->back()) : 0;
}

// FLOPs of one op node given propagated types.
double op_flops(const Node* node, Propagator& p) {
  const std::string& k = node->kind;
  auto in = [&](size_t i) -> const Type& { return *p.type_of_value(node->inputs[i]); };
  auto out = [&](size_t i) -> const Type& { return *p.type_of_value(node->outputs[i]); };
  double out_numel = 0;
  for (size_t i = 0; i < node->outputs.size(); ++i) out_numel += numel(out(i));
  if (k == "aten::_convolution" || k == "aten::convolution") {
    bool transposed = node->inputs.size() > 6 && p.at(node->inputs[6]).known &&
                      p.at(node->inputs[6]).known->is_bool() && p.at(node->inputs[6]).known->to_bool();
    return conv_flops(out(0), in(1), transposed, in(0)) + out_numel;
  }
  if (k == "aten::conv1d" || k == "aten::conv2d" || k == "aten::conv3d" || k == "aten::_convolution_mode")
    return conv_flops(out(0), in(1), false, in(0)) + out_numel;
  if (k.rfind("aten::conv_transpose", 0) == 0) return conv_flops(out(0), in(1), true, in(0)) + out_numel;
  if (k == "aten::linear") return 2 * out_numel * last_dim(in(0)) + out_numel;
  if (k == "aten::matmul" || k == "aten::mm" || k == "aten::bmm" || k == "aten::mv" || k == "aten::dot")
    return 2 * std::max(out_numel, 1.0) * last_dim(in(0));
  if (k == "aten::addmm" || k == "aten::baddbmm" || k == "aten::addmv")
    return 2 * out_numel * last_dim(in(1)) + 2 * out_numel;
  if (k == "aten::scaled_dot_product_attention" || k == "aten::_scaled_dot_product_attention") {
    // q [..., L, E], k [..., S, E], v [..., S, Ev]: QKᵀ, softmax, ·V.
    const Type &q = in(0), &kk = in(1), &v = in(2);
    if (!concrete(q) || !concrete(kk) || !concrete(v) || q.shape->size() < 2) return out_numel;
    double e = last_dim(q), ev = last_dim(v);
    double l = static_cast<double>((*q.shape)[q.shape->size() - 2]);
    double s = static_cast<double>((*kk.shape)[kk.shape->size() - 2]);
    double batch = numel(q) / (l * e > 0 ? l * e : 1);
    return batch * (2 * l * s * e + 5 * l * s + 2 * l * s * ev);
  }
  if (k == "aten::_native_multi_head_attention") {
    // query [B, L, E], key/value [B, S, E]; in/out projections plus attention.
    const Type &q = in(0), &kk = in(1);
    if (!concrete(q) || !concrete(kk) || q.shape->size() != 3) return out_numel;
    double b = static_cast<double>((*q.shape)[0]), l = static_cast<double>((*q.shape)[1]);
    double e = last_dim(q), s = static_cast<double>((*kk.shape)[kk.shape->size() - 2]);
    return b * (2 * l * e * e + 4 * s * e * e + 4 * l * s * e + 5 * l * s + 2 * l * e * e);
  }
  // Ops with weight-like tensor constants of rank >= 2 (RNNs, fused encoder layers, embedding bags):
  // each token multiplies every weight once.
  double weight_numel = 0;
  bool embedding = k == "aten::embedding";
  for (const Value* v : node->inputs) {
    const Info& i = p.at(v);
    if (i.known && i.known->is_tensor() && i.known->to_tensor().dim() >= 2) weight_numel += numel(*i.type);
    if (i.has_items)
      for (const Info& it : i.items)
        if (it.known && it.known->is_tensor() && it.known->to_tensor().dim() >= 2)
          weight_numel += numel(*it.type);
  }
  if (weight_numel > 0 && !embedding && !node->inputs.empty()) {
    const Type& x = in(0);
    double tokens = concrete(x) && !x.shape->empty() ? numel(x) / std::max(1.0, last_dim(x)) : 1;
    if (k == "aten::_transformer_encoder_layer_fwd" && concrete(x) && x.shape->size() == 3) {
      double l = static_cast<double>((*x.shape)[1]), e = last_dim(x);
      return 2 * tokens * weight_numel + static_cast<double>((*x.shape)[0]) * (4 * l * l * e + 5 * l * l);
    }
    return 2 * tokens * weight_numel + out_numel;
  }
  return out_numel;  // elementwise, reductions, shape ops: ~one op per output element
}

uint64_t value_bytes(const Info& i) {
  uint64_t b = i.type ? tensor_bytes(*i.type) : 0;
  for (const Info& it : i.items) b += value_bytes(it);
  return b;
}

struct BlockCost {
  double flops = 0, bytes = 0;
  double ops = 0;  // device ops (launches): registry ops producing a tensor
};

BlockCost cost_of_node(const Node* node, Propagator& p);

BlockCost cost_of_block(const Block* b, Propagator& p) {
  BlockCost c;
  for (const auto& n : b->nodes) {
    BlockCost nc = cost_of_node(n.get(), p);
    c.flops += nc.flops;
    c.bytes += nc.bytes;
    c.ops += nc.ops;
  }
  return c;
}

BlockCost cost_of_node(const Node* node, Propagator& p) {
  if (node->kind == "prim::If") {
    BlockCost a = cost_of_block(node->blocks[0].get(), p), b = cost_of_block(node->blocks[1].get(), p);
    return {std::max(a.flops, b.flops), std::max(a.bytes, b.bytes), std::max(a.ops, b.ops)};
  }
  if (node->kind == "prim::Loop") {
    BlockCost body = cost_of_block(node->blocks[0].get(), p);
    double trips = 1;
    const Info& t = p.at(node->inputs[0]);
    if (t.known && t.known->is_int() && t.known->to_int() >= 0 && t.known->to_int() < (int64_t{1} << 40))
      trips = static_cast<double>(t.known->to_int());
    return {body.flops * trips, body.bytes * trips, body.ops * trips};
  }
  if (!node->op) return {};
  BlockCost c;
  c.flops = op_flops(node, p);
  for (const Value* v : node->inputs) c.bytes += static_cast<double>(value_bytes(p.at(v)));
  for (const Value* v : node->outputs) {
    c.bytes += static_cast<double>(value_bytes(p.at(v)));
    if (v->type && v->type->is(TypeKind::kTensor)) c.ops = 1;
  }
  return c;
}

bool is_convolution(const Node* n) {
  return n->kind == "aten::_convolution" || n->kind == "aten::conv1d" || n->kind == "aten::conv2d" ||
         n->kind == "aten::conv3d" || n->kind == "aten::convolution";
}

bool is_fusable_activation(const Node* n) {
  std::string k = n->kind;
  if (k.size() > 1 && k.back() == '_') k.pop_back();
  return k == "aten::relu" || k == "aten::relu6" || k == "aten::hardtanh" || k == "aten::silu" ||
         k == "aten::hardswish" || k == "aten::sigmoid";
}

bool consumes(const Node* user, const Node* producer) {
  return !user->inputs.empty() && !producer->outputs.empty() && user->inputs[0] == producer->outputs[0];
}

// Whether a cut between top-level nodes `before` and `after` separates a convolution from the
// batch_norm or activation applied to its result (or a batch_norm of a convolution from its
// activation), or a linear layer from its activation.
bool splits_fusable_chain(const Node* before, const Node* after) {
  if (!consumes(after, before)) return false;
  if (is_convolution(before)) return after->kind == "aten::batch_norm" || is_fusable_activation(after);
  if (before->kind == "aten::linear")  // linear → activation runs as one GEMM with an epilogue
    return is_fusable_activation(after) || after->kind == "aten::gelu";
  if (before->kind == "aten::batch_norm" && !before->inputs.empty() && before->inputs[0]->node &&
      is_convolution(before->inputs[0]->node))
    return is_fusable_activation(after);
  return false;
}

struct Analysis {
  ChainCosts chain;
  std::vector<NodeCost> nodes;
};

Analysis analyse(const Graph& graph, const std::vector<TypePtr>& input_types) {
  CONVOY_CHECK(input_types.size() == graph.inputs().size(), "the partitioner was given ", input_types.size(),
               " input types for a graph of ", graph.inputs().size(), " inputs");
  GraphFacts f = graph_facts(graph);
  Propagator p;
  p.info.resize(graph.num_values());
  for (size_t i = 0; i < input_types.size(); ++i) {
    Info in;
    in.type = input_types[i] ? input_types[i] : graph.inputs()[i]->type;
    p.set(graph.inputs()[i], std::move(in));
  }
  const Block* top = graph.top();
  const size_t n = static_cast<size_t>(f.n);
  Analysis a;
  ChainCosts& c = a.chain;
  c.flops.assign(n, 0);
  c.bytes.assign(n, 0);
  c.live_bytes.assign(n, 0);
  c.ops.assign(n, 0);
  c.names.resize(n);
  a.nodes.resize(n);
  std::unordered_map<const Node*, size_t> weight_of;  // prim::Constant tensor node → weights index
  for (size_t i = 0; i < n; ++i) {
    const Node* node = top->nodes[i].get();
    p.guessed = false;
    p.run_node(node);
    c.names[i] = node->kind;
    if (f.constant_like[i]) {
      if (node->kind == "prim::Constant" && node->constant.is_tensor()) {
        weight_of[node] = c.weights.size();
        c.weights.push_back({static_cast<uint64_t>(node->constant.to_tensor().nbytes()), {}});
      }
      continue;
    }
    BlockCost bc = cost_of_node(node, p);
    c.flops[i] = bc.flops;
    c.bytes[i] = bc.bytes;
    c.ops[i] = bc.ops;
    NodeCost& nc = a.nodes[i];
    nc.flops = bc.flops;
    nc.bytes = bc.bytes;
    for (const Value* v : node->outputs) nc.out_bytes += value_bytes(p.at(v));
    nc.shapes_known = !p.guessed;
  }
  // Weight users: top-level ancestors of every use of a tensor constant, seen through constant-like
  // lists (an RNN's weight list is built by a ListConstruct that is copied into the using stage).
  std::function<void(const Value*, int)> note_use = [&](const Value* v, int user) {
    if (!v->node) return;
    auto it = weight_of.find(v->node);
    if (it != weight_of.end()) {
      c.weights[it->second].users.push_back(user);
      return;
    }
    auto d = f.def.find(v);
    if (d != f.def.end() && d->second >= 0 && f.constant_like[static_cast<size_t>(d->second)] &&
        v->node->kind != "prim::Constant")
      for (const Value* in : v->node->inputs) note_use(in, user);
  };
  for_each_node(const_cast<Block*>(top), [&](Node* node) {
    int user = f.top_index.at(node);
    if (node->owner == top && f.constant_like[static_cast<size_t>(user)]) return;
    for (const Value* v : node->inputs) note_use(v, user);
    for (const auto& b : node->blocks)
      for (const Value* v : b->returns) note_use(v, user);
  });
  for (WeightUse& w : c.weights) {
    std::sort(w.users.begin(), w.users.end());
    w.users.erase(std::unique(w.users.begin(), w.users.end()), w.users.end());
  }
  // Cut sizes and the non-tensor rule: a value defined at d (-1 for inputs) and last used at u
  // crosses cuts d+1 .. u.
  std::vector<int64_t> bytes_diff(n + 2, 0), bad_diff(n + 2, 0);
  for (const Value* v : f.crossing_candidates) {
    auto lu = f.last_use.find(v);
    if (lu == f.last_use.end()) continue;
    int d = f.def.at(v), u = lu->second;
    if (u < d + 1) continue;
    const Info& i = p.at(v);
    TypePtr t = i.type ? i.type : v->type;
    bool tensor = t && t->is(TypeKind::kTensor);
    uint64_t b = tensor ? tensor_bytes(*t) : value_bytes(i);
    bytes_diff[static_cast<size_t>(d + 1)] += static_cast<int64_t>(b);
    bytes_diff[static_cast<size_t>(u + 1)] -= static_cast<int64_t>(b);
    if (!tensor) {
      bad_diff[static_cast<size_t>(d + 1)] += 1;
      bad_diff[static_cast<size_t>(u + 1)] -= 1;
    }
  }
  c.cut_bytes.assign(n + 1, 0);
  c.cut_allowed.assign(n + 1, 0);
  int64_t bytes = 0, bad = 0;
  for (size_t cut = 0; cut <= n; ++cut) {
    bytes += bytes_diff[cut];
    bad += bad_diff[cut];
    c.cut_bytes[cut] = static_cast<uint64_t>(bytes);
    // Cutting right after a constant-like node is the same as cutting before it: keep one of them.
    bool after_real = cut == 0 || cut == n || !f.constant_like[cut - 1];
    c.cut_allowed[cut] = (cut == 0 || cut == n || (bad == 0 && after_real)) ? 1 : 0;
  }
  // Never cut inside a convolution → batch_norm → activation chain: backends fold the chain into
  // one convolution (opencl::fuse_conv_batch_norm_activation), which a cut would prevent, and the
  // cut would ship the largest activation of the block.
  for (size_t cut = 1; cut < n; ++cut)
    if (c.cut_allowed[cut] && splits_fusable_chain(top->nodes[cut - 1].get(), top->nodes[cut].get()))
      c.cut_allowed[cut] = 0;
  for (size_t i = 0; i < n; ++i) {
    c.live_bytes[i] = c.cut_bytes[i] + a.nodes[i].out_bytes;
    a.nodes[i].live_bytes = c.live_bytes[i];
  }
  // What each possible stage receives, with the shapes propagated above.
  c.cut_types.assign(n + 1, {});
  for (size_t cut = 0; cut <= n; ++cut) {
    if (!c.cut_allowed[cut] || cut == n) continue;
    std::vector<const Value*> values;
    if (cut == 0) {
      values.assign(graph.inputs().begin(), graph.inputs().end());
    } else {
      values = partition_detail::values_crossing(f, static_cast<int>(cut));
    }
    for (const Value* v : values) {
      const Info& i = p.at(v);
      c.cut_types[cut].push_back(i.type ? i.type : v->type);
    }
  }
  return a;
}

}  // namespace

ChainCosts analyse_graph(const Graph& graph, const std::vector<TypePtr>& input_types) {
  return analyse(graph, input_types).chain;
}

std::vector<NodeCost> node_costs(const Graph& graph, const std::vector<TypePtr>& input_types) {
  return analyse(graph, input_types).nodes;
}

Plan partition(const Graph& graph, const std::vector<TypePtr>& input_types,
               const std::vector<DeviceProfile>& devices, const PartitionOptions& options) {
  return partition_chain(analyse_graph(graph, input_types), devices, options);
}

}  // namespace convoy
