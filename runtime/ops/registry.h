// The op registry: one table keyed by the TorchScript symbol ("aten::linear", "prim::NumToTensor").
// Each overload has a schema in PyTorch's notation (names, types, defaults), an optional shape and
// dtype inference function, and a reference CPU kernel (naive loops: the correctness oracle).
// main() builds the registry with make_default_registry(); nothing registers itself.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/graph/type.h"
#include "runtime/ivalue.h"

namespace convoy {

struct Argument {
  std::string name;
  TypePtr type;
  std::string type_text;  // as written ("t[]", "Tensor(a!)"): type variables like `t` parse to Any
  std::optional<IValue> default_value;  // None default is an IValue holding None
  bool kwarg_only = false;
  int fixed_list_size = -1;  // "int[2]": a single int may be given and is repeated
};

struct Schema {
  std::string name;      // "aten::add"
  std::string overload;  // "Tensor" ("" for the default overload)
  std::vector<Argument> arguments;
  std::vector<Argument> returns;
  std::string text;  // the schema as registered

  std::string full_name() const { return overload.empty() ? name : name + "." + overload; }
};

// Parses "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor".
// Defaults may be ints, floats, bools (True/False), None, strings ("tanh"), lists ([0, 0], []),
// and "contiguous_format"/"long" style named constants are not used (write their integer codes).
Schema parse_schema(const std::string& text);

// A kernel receives exactly one value per schema argument (defaults already filled in) and returns
// one value per schema return. In-place ops ("relu_") write into args[0] and return it.
using Kernel = std::function<IValueList(IValueList& args)>;

// Given the static types of the arguments (refined with dtype/shape where known) and the constant
// values of the arguments that are constants (nullptr otherwise), returns the static types of the
// returns. Optional: without one the return types come from the schema.
using InferFn = std::function<std::vector<TypePtr>(const std::vector<TypePtr>& args,
                                                   const std::vector<const IValue*>& constants)>;

struct OpOverload {
  Schema schema;
  Kernel kernel;
  InferFn infer;
};

class OpRegistry {
 public:
  // Registers one overload; throws kInternal on a malformed or duplicate schema.
  const OpOverload& add(const std::string& schema, Kernel kernel, InferFn infer = nullptr);

  bool has(const std::string& name) const { return ops_.count(name) != 0; }
  // All overloads of an op in registration order (empty if unknown).
  std::vector<const OpOverload*> overloads(const std::string& name) const;
  const OpOverload* find(const std::string& name, const std::string& overload) const;
  std::vector<std::string> names() const;
  size_t size() const;
  // Stable hash of every registered schema text: workers and coordinator compare it in Hello.
  std::string opset_hash() const;

 private:
  std::map<std::string, std::vector<std::unique_ptr<OpOverload>>> ops_;
};

// Every op family of the reference runtime. Each family lives in one file under runtime/ops/.
void register_prim_ops(OpRegistry& registry);         // prim_ops.cpp: lists, tuples, scalars, size
void register_elementwise_ops(OpRegistry& registry);  // elementwise.cpp: arithmetic, comparisons, activations
void register_reduction_ops(OpRegistry& registry);    // reduction.cpp: sum, mean, softmax, ...
void register_shape_ops(OpRegistry& registry);        // shape.cpp: view, permute, cat, slice, index, ...
void register_nn_ops(OpRegistry& registry);           // nn.cpp: conv, pools, norms, linear, matmul, embedding, upsample
void register_sequence_ops(OpRegistry& registry);     // sequence.cpp: gru, lstm, multi-head attention

OpRegistry make_default_registry();

}  // namespace convoy
