#include "runtime/graph/ir.h"

#include <sstream>

#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy {

Block* Node::add_block() {
  blocks.push_back(std::make_unique<Block>());
  Block* b = blocks.back().get();
  b->owner_node = this;
  b->graph = owner ? owner->graph : nullptr;
  return b;
}

static Node* make_node(Block* block, const std::string& kind, const std::vector<Value*>& inputs,
                       size_t num_outputs, const SourceRange& source) {
  CONVOY_ASSERT(block->graph != nullptr, "block without a graph");
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->inputs = inputs;
  node->source = source;
  node->owner = block;
  for (size_t i = 0; i < num_outputs; ++i) {
    Value* v = block->graph->new_value(Type::any());
    v->node = node.get();
    v->index = i;
    node->outputs.push_back(v);
  }
  return node.release();
}

Node* Block::append(const std::string& kind, const std::vector<Value*>& inputs, size_t num_outputs,
                    const SourceRange& source) {
  nodes.emplace_back(make_node(this, kind, inputs, num_outputs, source));
  return nodes.back().get();
}

Node* Block::insert_before(Node* before, const std::string& kind, const std::vector<Value*>& inputs,
                           size_t num_outputs, const SourceRange& source) {
  for (auto it = nodes.begin(); it != nodes.end(); ++it) {
    if (it->get() == before) {
      auto pos = nodes.emplace(it, make_node(this, kind, inputs, num_outputs, source));
      return pos->get();
    }
  }
  fail(ErrorKind::kInternal, "insert_before: node ", before->kind, " is not in this block");
}

Value* Block::add_param(TypePtr type, const std::string& name) {
  Value* v = graph->new_value(std::move(type), name);
  v->param_of = this;
  v->index = params.size();
  params.push_back(v);
  return v;
}

std::vector<Node*> Block::node_list() const {
  std::vector<Node*> list;
  list.reserve(nodes.size());
  for (const auto& n : nodes) list.push_back(n.get());
  return list;
}

std::unique_ptr<Node> Block::detach(const Node* node) {
  for (auto it = nodes.begin(); it != nodes.end(); ++it) {
    if (it->get() == node) {
      std::unique_ptr<Node> taken = std::move(*it);
      nodes.erase(it);
      return taken;
    }
  }
  fail(ErrorKind::kInternal, "detach: node ", node->kind, " is not in this block");
}

Graph::Graph() : top_(std::make_unique<Block>()) { top_->graph = this; }

Value* Graph::new_value(TypePtr type, const std::string& name) {
  values_.push_back(std::make_unique<Value>());
  Value* v = values_.back().get();
  v->id = static_cast<int>(values_.size()) - 1;
  v->type = type ? std::move(type) : Type::any();
  v->name = name;
  return v;
}

Value* Graph::constant(IValue value, TypePtr type) {
  Node* n = make_node(top_.get(), "prim::Constant", {}, 1, {});
  top_->nodes.emplace(top_->nodes.begin(), n);
  n->outputs[0]->type = type ? std::move(type) : type_of(value);
  n->constant = std::move(value);
  return n->outputs[0];
}

TypePtr type_of(const IValue& value) {
  if (value.is_none()) return Type::none();
  if (value.is_bool()) return Type::boolean();
  if (value.is_int()) return Type::integer();
  if (value.is_double()) return Type::floating();
  if (value.is_string()) return Type::string();
  if (value.is_device()) return Type::device();
  if (value.is_tensor()) {
    const Tensor& t = value.to_tensor();
    return Type::tensor(t.dtype(), t.sizes());
  }
  if (value.is_tuple()) {
    std::vector<TypePtr> elems;
    for (const IValue& v : value.to_tuple()) elems.push_back(type_of(v));
    return Type::tuple(std::move(elems));
  }
  if (value.is_list()) {
    const IValueList& items = value.to_list();
    if (items.empty()) return Type::list(Type::any());
    TypePtr elem = type_of(items[0]);
    for (const IValue& v : items) {
      TypePtr t = type_of(v);
      if (t->kind != elem->kind) return Type::list(Type::any());
      if (t->is(TypeKind::kTensor)) elem = Type::tensor();  // element shapes may differ
    }
    return Type::list(elem);
  }
  if (value.is_dict()) return Type::dict(Type::any(), Type::any());
  return Type::any();
}

void for_each_node(Block* block, const std::function<void(Node*)>& fn) {
  for (Node* n : block->node_list()) {
    fn(n);
    for (auto& b : n->blocks) for_each_node(b.get(), fn);
  }
}

namespace {

std::string value_name(const Value* v) {
  return "%" + (v->name.empty() ? std::to_string(v->id) : v->name + "." + std::to_string(v->id));
}

std::string value_list(const std::vector<Value*>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) s += ", ";
    s += value_name(values[i]);
  }
  return s;
}

void print_block(std::ostringstream& out, const Block* block, int indent) {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  for (const auto& n : block->nodes) {
    out << pad;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (i) out << ", ";
      out << value_name(n->outputs[i]) << " : " << n->outputs[i]->type->str();
    }
    if (!n->outputs.empty()) out << " = ";
    out << n->kind;
    if (n->op && !n->op->schema.overload.empty()) out << "." << n->op->schema.overload;
    if (n->kind == "prim::Constant") {
      out << "[value=" << n->constant.repr() << "]";
    } else {
      out << "(" << value_list(n->inputs) << ")";
    }
    if (!n->source.file.empty()) out << "  # " << n->source.str();
    out << "\n";
    for (size_t b = 0; b < n->blocks.size(); ++b) {
      const Block* blk = n->blocks[b].get();
      out << pad << "  block" << b << "(" << value_list(blk->params) << "):\n";
      print_block(out, blk, indent + 2);
      out << pad << "    -> (" << value_list(blk->returns) << ")\n";
    }
  }
}

}  // namespace

std::string print_graph(const Graph& graph) {
  std::ostringstream out;
  out << "graph(";
  const auto& inputs = graph.inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) out << ",\n      ";
    out << value_name(inputs[i]) << " : " << inputs[i]->type->str();
  }
  out << "):\n";
  print_block(out, graph.top(), 1);
  out << "  return (" << value_list(graph.outputs()) << ")\n";
  return out.str();
}

}  // namespace convoy
