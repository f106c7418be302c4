// Lowering: turns a loaded TorchScript archive into one static Graph for a method of its root
// module. Every method and free-function call is inlined, `self.x` and `getattr(self, "0")` are
// resolved at compile time (submodules to their objects, parameters and buffers to constants that
// alias the archive's tensors, plain attributes to constants), each Python operator and builtin
// becomes the registry overload its argument types select (omitted arguments filled from schema
// defaults), and if/for/while become prim::If / prim::Loop in SSA form.
//
// Conditions known at compile time are folded while lowering, so only the taken branch is emitted:
// `is None` on a value whose static type is None or not Optional, isinstance, constant attributes
// (`self.training`), and scalar ops on constants. Facts of this inference runtime are constants
// too: tensors are never on CUDA, nested, quantized or requiring grad, grad and autocast are off.
//
// Errors are convoy::Error naming the code file and line: an op missing from the registry or with
// no overload for the argument types is kUnsupported ("code/__torch__/foo.py:12: unsupported op
// 'aten::frobnicate'"), malformed code is kInvalidInput. They are raised here, at load time.
#pragma once

#include <memory>
#include <string>

#include "runtime/graph/ir.h"

namespace convoy {

struct Archive;
class OpRegistry;

struct LoweringOptions {
  std::string method = "forward";
  // How many leading parameters (after self) become graph inputs; the rest take their default
  // values (an error if one has none). -1: every parameter is an input.
  int num_inputs = -1;
};

// The graph's inputs are the method's parameters after `self`, typed from their annotations and
// named after them. Its outputs are the returned value, or, when the method returns a tuple, its
// elements (nested tuples flattened too), so a runner writes output_0, output_1, ... in order.
std::unique_ptr<Graph> lower_module(const Archive& archive, const OpRegistry& registry,
                                    const LoweringOptions& options);
std::unique_ptr<Graph> lower_module(const Archive& archive, const OpRegistry& registry,
                                    const std::string& method = "forward");

}  // namespace convoy
