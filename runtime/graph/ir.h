// Graph IR: typed SSA values, nodes named by their TorchScript symbol, nested blocks for
// prim::If and prim::Loop. Semantics of the structured nodes follow TorchScript's own IR:
//   prim::If      inputs {cond}; blocks {then, else}, each with no params; each block's returns
//                 become the node's outputs.
//   prim::Loop    inputs {max_trip_count, initial_condition, carried...}; one block with params
//                 {iteration, carried...} and returns {continue_condition, carried...}; outputs
//                 {carried...}.
//   prim::Constant no inputs, one output; the value is Node::constant (weights are tensors that
//                 alias the archive's mapped storage).
// Every other node is an op of the registry (Node::op is its resolved overload) or one of the
// structural prims the executor knows (ListConstruct, TupleConstruct, ListUnpack, TupleUnpack,
// TupleIndex, Uninitialized, RaiseException).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/graph/type.h"
#include "runtime/ivalue.h"

namespace convoy {

struct OpOverload;
class Node;
class Block;
class Graph;

// Where a node came from in the archive's code: "code/__torch__/torchvision/models/resnet.py:42".
struct SourceRange {
  std::string file;
  int line = 0;
  std::string str() const {
    return file.empty() ? std::string("<unknown>") : file + ":" + std::to_string(line);
  }
};

struct Value {
  int id = 0;
  TypePtr type;
  std::string name;           // a debug hint from the source ("x", "input0"); may be empty
  Node* node = nullptr;       // producer, or nullptr for a block parameter
  Block* param_of = nullptr;  // the block this is a parameter of, if any
  size_t index = 0;           // position among the producer's outputs or the block's params
};

class Node {
 public:
  std::string kind;                // "aten::linear", "prim::If"
  const OpOverload* op = nullptr;  // resolved overload for registry ops
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::vector<std::unique_ptr<Block>> blocks;
  IValue constant;  // prim::Constant only
  SourceRange source;
  Block* owner = nullptr;

  Block* add_block();
};

class Block {
 public:
  std::vector<Value*> params;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<Value*> returns;
  Node* owner_node = nullptr;  // nullptr for the graph's top block
  Graph* graph = nullptr;

  // Creates a node at the end of this block (or before `before`, a node of this block).
  Node* append(const std::string& kind, const std::vector<Value*>& inputs, size_t num_outputs,
               const SourceRange& source = {});
  Node* insert_before(Node* before, const std::string& kind, const std::vector<Value*>& inputs,
                      size_t num_outputs, const SourceRange& source = {});
  Value* add_param(TypePtr type, const std::string& name = "");

  // The nodes as they are now. A pass that inserts or removes nodes while it walks a block walks
  // this copy: Graph::constant() inserts into the top block, a fusion inserts its fused node, and
  // either may reallocate `nodes` under a walk of the vector itself.
  std::vector<Node*> node_list() const;
  // Takes `node` (a node of this block) out of it and hands it over; a pass that still holds a
  // node_list() keeps it alive until its walk ends, so no pointer in that list dangles.
  std::unique_ptr<Node> detach(const Node* node);
};

class Graph {
 public:
  Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  Block* top() { return top_.get(); }
  const Block* top() const { return top_.get(); }
  const std::vector<Value*>& inputs() const { return top_->params; }
  const std::vector<Value*>& outputs() const { return top_->returns; }

  Value* new_value(TypePtr type, const std::string& name = "");
  // A prim::Constant at the start of the top block (constants dominate every use, nested blocks
  // included). It shifts every position in top()->nodes and may reallocate it: a pass that can
  // create constants walks Block::node_list(), never the vector.
  Value* constant(IValue value, TypePtr type = nullptr);
  size_t num_values() const { return values_.size(); }

 private:
  std::unique_ptr<Block> top_;
  std::vector<std::unique_ptr<Value>> values_;
};

// The static type of a constant value ("int", "List[int]", "Tensor" with dtype and shape).
TypePtr type_of(const IValue& value);

// Visits every node, recursing into nested blocks, in program order. Nodes `fn` inserts are not
// visited; `fn` must not remove nodes.
void for_each_node(Block* block, const std::function<void(Node*)>& fn);

// Readable listing, one node per line, nested blocks indented:
//   %3 : Tensor = aten::linear(%x, %w, %b)  # code/__torch__/.../linear.py:12
std::string print_graph(const Graph& graph);

}  // namespace convoy
