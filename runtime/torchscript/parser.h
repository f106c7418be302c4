// Recursive-descent parser for printed TorchScript (`code/**.py` of an archive). Errors are
// kInvalidInput and name the file and line: "code/__torch__/foo.py:12: expected ')' but found 'NAME x'".
#pragma once

#include <string>

#include "runtime/torchscript/ast.h"

namespace convoy::ts {

// Parses one file. `path` names it in errors and in every node's source location.
SourceFile parse_source(const std::string& source, const std::string& path);

// Parses a single expression (no statements): for tests and tools.
ExprPtr parse_expression(const std::string& source, const std::string& path = "<expr>");

}  // namespace convoy::ts
