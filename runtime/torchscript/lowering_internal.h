// Internals of lowering shared by lowering.cpp (modules, functions, statements, control flow) and
// lowering_exprs.cpp (expressions, builtins, operators, op emission). Not a public header.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/graph/ir.h"
#include "runtime/ops/registry.h"
#include "runtime/torchscript/archive.h"
#include "runtime/torchscript/ast.h"
#include "runtime/torchscript/lowering.h"

namespace convoy::lowering {

// What an expression denotes at compile time (TorchScript's "sugared value"): an SSA value, or
// something that only exists while lowering — a module object, a method bound to one, a dotted
// name (`torch`, `ops.prim`, `__torch__.torch.nn.functional`), or a builtin function.
struct SValue {
  enum class Kind { kValue, kModule, kMethod, kNamespace, kBuiltin, kPoisoned };
  Kind kind = Kind::kValue;
  Value* value = nullptr;
  // The static type lowering reasons with. It may be narrower than value->type: unchecked_cast
  // and parameter binding refine it without a node.
  TypePtr type;
  std::shared_ptr<Object> object;  // kModule, kMethod
  std::string name;                // kMethod: method; kNamespace: dotted path; kBuiltin: name;
                                   // kPoisoned: why the name may not be used

  static SValue of(Value* v) { return SValue{Kind::kValue, v, v->type, nullptr, {}}; }
  static SValue of(Value* v, TypePtr t) { return SValue{Kind::kValue, v, std::move(t), nullptr, {}}; }
  static SValue module(std::shared_ptr<Object> o) {
    return SValue{Kind::kModule, nullptr, nullptr, std::move(o), {}};
  }
  static SValue named(Kind k, std::string n, std::shared_ptr<Object> o = nullptr) {
    return SValue{k, nullptr, nullptr, std::move(o), std::move(n)};
  }
  bool is_value() const { return kind == Kind::kValue; }
  // The same compile-time entity (for merging branches).
  bool same_as(const SValue& o) const {
    return kind == o.kind && value == o.value && object == o.object && name == o.name &&
           (kind != Kind::kValue || type->str() == o.type->str());
  }
  std::string describe() const;
};

// Variables of one block of code. Lookups fall back to the enclosing scope; assignments land in
// this one and are merged into the parent when the if/loop that opened it ends.
class Scope {
 public:
  explicit Scope(Scope* parent = nullptr) : parent_(parent) {}
  const SValue* lookup(const std::string& name) const;
  void set(const std::string& name, SValue v) { vars_[name] = std::move(v); }
  const std::map<std::string, SValue>& local() const { return vars_; }
  Scope* parent() const { return parent_; }

 private:
  Scope* parent_;
  std::map<std::string, SValue> vars_;
};

enum class Exit { kNone, kReturn, kRaise };

// One inlined function or method.
struct Frame {
  const ts::SourceFile* file = nullptr;
  std::string function;  // "forward of __torch__.X", for messages
};

// The name the return value travels under through branch merging.
inline const char* kReturnSlot = "$return";

class Lowerer {
 public:
  Lowerer(const Archive& archive, const OpRegistry& registry);
  std::unique_ptr<Graph> run(const LoweringOptions& options);

  // ---- lowering.cpp -------------------------------------------------------------------------
  [[noreturn]] void error(ErrorKind kind, int line, const std::string& what) const;
  SourceRange here(int line) const;
  const ts::SourceFile& source_file(const std::string& path);
  // "__torch__.a.b.C" -> the file "code/__torch__/a/b.py" and the name "C".
  std::pair<const ts::SourceFile*, std::string> resolve_qualified(const std::string& qualified, int line);
  const ts::ClassDef& class_of(const Object& object, int line);
  TypePtr to_type(const ts::TypeExpr& t);
  SValue module_attribute(const std::shared_ptr<Object>& object, const std::string& name, int line);
  SValue call_function(const ts::FunctionDef& def, const ts::SourceFile& file,
                       const std::shared_ptr<Object>& self, std::vector<SValue> args,
                       std::vector<std::pair<std::string, SValue>> kwargs, int line);
  SValue call_qualified(const std::string& qualified, std::vector<SValue> args,
                        std::vector<std::pair<std::string, SValue>> kwargs, int line);
  Exit lower_body(const std::vector<const ts::Stmt*>& stmts);
  void assign(const ts::Expr& target, const SValue& value, int line);

  // ---- lowering_exprs.cpp ---------------------------------------------------------------------
  SValue lower_expr(const ts::Expr& e);
  Value* lower_value(const ts::Expr& e);  // lower_expr that must give an SSA value
  Value* as_value(const SValue& v, int line) const;
  SValue call(const SValue& callee, const ts::Expr& call_expr);
  // `torch.X`, `ops.NS.X`, `math.X`, `__torch__.a.b.f` called with lowered arguments.
  SValue call_namespace(const std::string& path, const std::vector<SValue>& args,
                        const std::vector<std::pair<std::string, SValue>>& kwargs, int line);
  // `"...{}...".format(args)` as aten::str and string concatenation (the registry has no varargs).
  SValue format_string(const std::vector<SValue>& args,
                       const std::vector<std::pair<std::string, SValue>>& kwargs, int line);
  SValue call_builtin(const std::string& name, const std::vector<SValue>& args,
                      const std::vector<std::pair<std::string, SValue>>& kwargs, int line);
  // Emits `name` (e.g. "aten::add") for the arguments, resolving the overload; folds it to
  // constants when every input is constant and the op is pure and returns scalars.
  std::vector<SValue> emit_op(const std::string& name, const std::vector<SValue>& args,
                              const std::vector<std::pair<std::string, SValue>>& kwargs, int line);
  SValue emit_op1(const std::string& name, const std::vector<SValue>& args, int line,
                  const std::vector<std::pair<std::string, SValue>>& kwargs = {});
  SValue constant(const IValue& v, TypePtr type = nullptr);
  SValue constant_bool(bool b) { return constant(IValue(b)); }
  std::optional<IValue> constant_of(const Value* v, int depth = 0) const;
  std::optional<bool> static_bool(const SValue& v) const;
  Node* append(const std::string& kind, const std::vector<Value*>& inputs, size_t outputs, int line);
  SValue tuple_item(const SValue& tuple, int64_t index, int line);
  std::vector<SValue> unpack(const SValue& v, size_t n, int line);
  SValue emit_if(Value* cond, int line, const std::function<SValue()>& then_fn,
                 const std::function<SValue()>& else_fn);

  // ---- state ----------------------------------------------------------------------------------
  const Archive& archive_;
  const OpRegistry& registry_;
  std::unique_ptr<Graph> graph_;
  Block* block_ = nullptr;  // where nodes are appended
  Scope* scope_ = nullptr;
  Frame* frame_ = nullptr;
  int call_depth_ = 0;
  size_t statements_lowered_ = 0;

 private:
  Exit lower_stmt(const ts::Stmt& s);
  Exit lower_if(const ts::Stmt& s, const std::vector<const ts::Stmt*>& rest);
  Exit lower_loop(const ts::Stmt& s);
  void lower_assign(const ts::Stmt& s);
  void lower_aug_assign(const ts::Stmt& s);
  Exit lower_raise(Value* message, int line);
  Value* lower_condition(const ts::Expr& e);
  // One per expression kind, so that lower_expr's own frame stays small: expressions and inlined
  // calls recurse through it, hundreds of levels deep in big models.
  SValue lower_name(const ts::Expr& e);
  SValue lower_attribute(const ts::Expr& e);
  SValue lower_subscript(const ts::Expr& e);
  SValue lower_tuple(const ts::Expr& e);
  SValue lower_list_or_dict(const ts::Expr& e);
  SValue lower_unary(const ts::Expr& e);
  SValue lower_binary(const ts::Expr& e);
  SValue lower_compare(const ts::Expr& e);
  SValue lower_bool_op(const ts::Expr& e);
  SValue lower_if_expr(const ts::Expr& e);
  SValue lower_annotate(const ts::Expr& e);
  SValue lower_isinstance(const ts::Expr& e);

  std::map<std::string, std::unique_ptr<ts::SourceFile>> files_;
  std::map<std::pair<const Object*, std::string>, Value*> attribute_constants_;
  std::map<std::string, Value*> scalar_constants_;
  std::map<size_t, Value*> archive_constants_;
};

// Types of both branches of an if, or of a loop's entry and body: a common type, or nullptr.
TypePtr unify_types(const TypePtr& a, const TypePtr& b);
// A Tensor type without shape refinement (loop-carried tensors change shape).
TypePtr widen_for_loop(const TypePtr& t);

}  // namespace convoy::lowering
