// Syntax tree of printed TorchScript: the Python subset that `torch.jit.save` writes into
// `code/**.py`. Every node keeps its source line; the file is named by the SourceFile that owns it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace convoy::ts {

// A type annotation: "Tensor", "List[Optional[Tensor]]", "Tuple[()]" (no args), "Final[int]",
// "__torch__.torch.nn.modules.linear.Linear" (a class, dotted).
struct TypeExpr {
  std::string name;
  std::vector<TypeExpr> args;
  bool has_brackets = false;  // "Tuple[()]" vs "Tuple"
  int line = 0;

  std::string str() const;
};

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;

enum class ExprKind {
  kName,           // text
  kInt,            // int_value (negative literals are folded by the parser)
  kFloat,          // float_value
  kString,         // text (decoded)
  kBool,           // bool_value
  kNone,           // None
  kEllipsis,       // ...
  kAttribute,      // operands[0].text
  kCall,           // operands[0](operands[1:], keywords)
  kSubscript,      // operands[0][operands[1]]; a multi-index is a kTuple
  kSlice,          // lower:upper:step as operands[0..2], each may be null (only inside a subscript)
  kTuple,          // operands
  kList,           // operands
  kDict,           // operands: key0, value0, key1, value1, ...
  kUnary,          // text in {"-", "+", "~", "not"}, operands[0]
  kBinary,         // text in {"+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "^", "<<", ">>"}
  kCompare,        // operands[i] compare_ops[i] operands[i+1] ("==", "<", "is", "is not", "in", ...)
  kBoolOp,         // text "and"/"or", operands (two or more)
  kIfExp,          // operands[0] if operands[1] else operands[2]
  kAnnotate,       // annotate(types[0], operands[0])
  kUncheckedCast,  // unchecked_cast(types[0], operands[0])
  kUninitialized,  // uninitialized(types[0])
  kIsInstance,     // isinstance(operands[0], types) — a tuple of types lists each
};

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind = ExprKind::kNone;
  int line = 0;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
  bool bool_value = false;
  std::vector<ExprPtr> operands;
  std::vector<Keyword> keywords;
  std::vector<std::string> compare_ops;
  std::vector<TypeExpr> types;
};

struct Param {
  std::string name;
  std::optional<TypeExpr> type;
  ExprPtr default_value;  // null when there is none
  int line = 0;
};

struct FunctionDef {
  std::string name;
  std::vector<Param> params;
  std::optional<TypeExpr> returns;
  std::vector<StmtPtr> body;
  int line = 0;
};

// An attribute declared in a class body: "training : bool", "out_features : Final[int] = 4",
// "__annotations__[\"0\"] = __torch__.X".
struct ClassAttribute {
  std::string name;
  TypeExpr type;
  const Expr* value = nullptr;  // Final constants carry their value (owned by the class body)
  int line = 0;
};

struct ClassDef {
  std::string name;
  std::vector<std::string> bases;  // "Module", "NamedTuple", "Enum[int]"
  std::vector<std::string> parameters;
  std::vector<std::string> buffers;
  std::vector<ClassAttribute> attributes;
  std::vector<std::shared_ptr<FunctionDef>> methods;
  // "name = value" statements of the class body other than __parameters__/__buffers__.
  std::map<std::string, const Expr*> class_values;
  std::vector<StmtPtr> body;  // owns everything above
  int line = 0;

  const FunctionDef* find_method(const std::string& name) const;
  const ClassAttribute* find_attribute(const std::string& name) const;
};

enum class StmtKind {
  kExpr,       // value
  kAssign,     // targets = value ("a = b = v" has two targets; "a, b = v" one kTuple target)
  kAnnAssign,  // targets[0] : type [= value]
  kAugAssign,  // targets[0] op= value
  kIf,         // if value: body else: orelse ("elif" is an else holding one kIf)
  kFor,        // for targets[0] in value: body
  kWhile,      // while value: body
  kReturn,     // return [value]
  kPass,
  kBreak,
  kContinue,
  kRaise,    // raise [value]
  kAssert,   // assert value[, message]
  kDef,      // def
  kClass,    // cls
  kImport,   // text: the statement as written ("import torch", "from typing import List")
  kVersion,  // op_version_set = int_value (older archives)
};

struct Stmt {
  StmtKind kind = StmtKind::kPass;
  int line = 0;
  std::vector<ExprPtr> targets;
  ExprPtr value;
  ExprPtr message;
  std::string op;
  TypeExpr type;
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> orelse;
  std::shared_ptr<FunctionDef> def;
  std::shared_ptr<ClassDef> cls;
  std::string text;
  int64_t int_value = 0;
};

// One parsed `code/**.py` file.
struct SourceFile {
  std::string path;  // "code/__torch__/torch/nn/modules/linear.py"
  std::vector<StmtPtr> body;
  std::map<std::string, std::shared_ptr<ClassDef>> classes;
  std::map<std::string, std::shared_ptr<FunctionDef>> functions;
  int64_t op_version_set = -1;

  const ClassDef* find_class(const std::string& name) const;
  const FunctionDef* find_function(const std::string& name) const;
};

}  // namespace convoy::ts
