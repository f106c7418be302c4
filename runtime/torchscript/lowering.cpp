// Lowering of modules, functions, statements and control flow. Expressions and op emission are in
// lowering_exprs.cpp, overload resolution in overload.cpp.
#include "runtime/torchscript/lowering.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <set>

#include "runtime/error.h"
#include "runtime/printable.h"
#include "runtime/torchscript/lowering_internal.h"
#include "runtime/torchscript/parser.h"

namespace convoy {

namespace lowering {

namespace {

// Inlining depth: real models nest modules a few dozen levels; recursion in the code never ends.
constexpr int kMaxCallDepth = 100;
// Early returns copy the rest of a function into both branches; this bounds the blowup.
constexpr size_t kMaxStatements = 500'000;

std::vector<const ts::Stmt*> stmt_views(const std::vector<ts::StmtPtr>& stmts) {
  std::vector<const ts::Stmt*> out;
  out.reserve(stmts.size());
  for (const auto& s : stmts) out.push_back(s.get());
  return out;
}

bool contains_return(const std::vector<ts::StmtPtr>& stmts) {
  for (const auto& s : stmts) {
    if (s->kind == ts::StmtKind::kReturn) return true;
    if (contains_return(s->body) || contains_return(s->orelse)) return true;
  }
  return false;
}

void collect_assigned(const ts::Expr& target, std::vector<std::string>& out) {
  if (target.kind == ts::ExprKind::kName) {
    if (std::find(out.begin(), out.end(), target.text) == out.end()) out.push_back(target.text);
  } else if (target.kind == ts::ExprKind::kTuple || target.kind == ts::ExprKind::kList) {
    for (const auto& op : target.operands) collect_assigned(*op, out);
  }
}

// Names a loop body assigns, in order of first assignment (nested blocks included).
void collect_assigned(const std::vector<ts::StmtPtr>& stmts, std::vector<std::string>& out) {
  for (const auto& s : stmts) {
    switch (s->kind) {
      case ts::StmtKind::kAssign:
      case ts::StmtKind::kAnnAssign:
      case ts::StmtKind::kAugAssign:
      case ts::StmtKind::kFor:
        for (const auto& t : s->targets) collect_assigned(*t, out);
        break;
      default:
        break;
    }
    collect_assigned(s->body, out);
    collect_assigned(s->orelse, out);
  }
}

// `ops.prim.RaiseException(...)` as a statement ends its block, like `raise`.
bool is_raise_call(const ts::Expr& e) {
  if (e.kind != ts::ExprKind::kCall) return false;
  const ts::Expr& f = *e.operands[0];
  return f.kind == ts::ExprKind::kAttribute && f.text == "RaiseException" &&
         f.operands[0]->kind == ts::ExprKind::kAttribute && f.operands[0]->text == "prim" &&
         f.operands[0]->operands[0]->kind == ts::ExprKind::kName && f.operands[0]->operands[0]->text == "ops";
}

bool same_shape_rank(const Type& a, const Type& b) {
  return a.shape && b.shape && a.shape->size() == b.shape->size();
}

}  // namespace

// ---- SValue and Scope ----------------------------------------------------------------------------

std::string SValue::describe() const {
  switch (kind) {
    case Kind::kValue:
      return "a value of type " + type->str();
    case Kind::kModule:
      return "module " + printable(object->type_name);
    case Kind::kMethod:
      return "method " + name + " of " + printable(object->type_name);
    case Kind::kNamespace:
      return "'" + name + "'";
    case Kind::kBuiltin:
      return "builtin '" + name + "'";
    case Kind::kPoisoned:
      return "an undefined name";
  }
  return "?";
}

const SValue* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent_) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

TypePtr unify_types(const TypePtr& a, const TypePtr& b) {
  if (a->str() == b->str()) return a;
  if (a->is(TypeKind::kAny) || b->is(TypeKind::kAny)) return Type::any();
  if (a->is(TypeKind::kNone)) return Type::optional(b);
  if (b->is(TypeKind::kNone)) return Type::optional(a);
  if (a->is(TypeKind::kOptional) || b->is(TypeKind::kOptional)) {
    TypePtr ea = a->is(TypeKind::kOptional) ? a->elem() : a;
    TypePtr eb = b->is(TypeKind::kOptional) ? b->elem() : b;
    TypePtr u = unify_types(ea, eb);
    return u ? Type::optional(u) : nullptr;
  }
  if (a->kind != b->kind) return nullptr;
  switch (a->kind) {
    case TypeKind::kTensor: {
      std::optional<DType> dtype = a->dtype == b->dtype ? a->dtype : std::nullopt;
      std::optional<Shape> shape;
      if (same_shape_rank(*a, *b)) {
        Shape s = *a->shape;
        for (size_t i = 0; i < s.size(); ++i)
          if (s[i] != (*b->shape)[i]) s[i] = -1;
        shape = s;
      }
      return Type::tensor(dtype, shape);
    }
    case TypeKind::kList: {
      if (a->contained.empty() || b->contained.empty()) return Type::list(Type::any());
      TypePtr u = unify_types(a->elem(), b->elem());
      return u ? Type::list(u) : nullptr;
    }
    case TypeKind::kTuple: {
      if (a->contained.size() != b->contained.size()) return nullptr;
      std::vector<TypePtr> elems;
      for (size_t i = 0; i < a->contained.size(); ++i) {
        TypePtr u = unify_types(a->contained[i], b->contained[i]);
        if (!u) return nullptr;
        elems.push_back(u);
      }
      return Type::tuple(std::move(elems));
    }
    case TypeKind::kDict: {
      if (a->contained.size() != 2 || b->contained.size() != 2) return Type::dict(Type::any(), Type::any());
      TypePtr k = unify_types(a->contained[0], b->contained[0]);
      TypePtr v = unify_types(a->contained[1], b->contained[1]);
      return k && v ? Type::dict(k, v) : nullptr;
    }
    default:
      return a;
  }
}

TypePtr widen_for_loop(const TypePtr& t) {
  if (t->is(TypeKind::kTensor) && t->shape) return Type::tensor(t->dtype, std::nullopt);
  return t;
}

// ---- archive structure ---------------------------------------------------------------------------

Lowerer::Lowerer(const Archive& archive, const OpRegistry& registry)
    : archive_(archive), registry_(registry) {}

void Lowerer::error(ErrorKind kind, int line, const std::string& what) const {
  std::string where =
      frame_ && frame_->file ? printable(frame_->file->path) + ":" + std::to_string(line) : archive_.path;
  fail(kind, where, ": ", what);
}

SourceRange Lowerer::here(int line) const {
  SourceRange r;
  if (frame_ && frame_->file) r.file = printable(frame_->file->path);  // shown in messages
  r.line = line;
  return r;
}

const ts::SourceFile& Lowerer::source_file(const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return *it->second;
  const std::string* code = archive_.find_code(path);
  if (!code) fail(ErrorKind::kInvalidInput, archive_.path, ": the archive has no '", printable(path), "'");
  auto file = std::make_unique<ts::SourceFile>(ts::parse_source(*code, path));
  return *files_.emplace(path, std::move(file)).first->second;
}

std::pair<const ts::SourceFile*, std::string> Lowerer::resolve_qualified(const std::string& qualified,
                                                                         int line) {
  size_t dot = qualified.rfind('.');
  if (dot == std::string::npos || qualified.rfind("__torch__", 0) != 0)
    error(ErrorKind::kInvalidInput, line, "'" + printable(qualified) + "' is not a __torch__ name");
  std::string module = qualified.substr(0, dot);
  std::string path = "code/" + module + ".py";
  std::replace(path.begin() + 5, path.end() - 3, '.', '/');
  if (!files_.count(path) && !archive_.find_code(path))
    error(ErrorKind::kInvalidInput, line,
          "the archive has no '" + printable(path) + "' (for " + printable(qualified) + ")");
  return {&source_file(path), qualified.substr(dot + 1)};
}

const ts::ClassDef& Lowerer::class_of(const Object& object, int line) {
  auto [file, name] = resolve_qualified(object.type_name, line);
  const ts::ClassDef* cls = file->find_class(name);
  if (!cls)
    error(ErrorKind::kInvalidInput, line,
          "class '" + printable(name) + "' (of module " + printable(object.type_name) + ") is not in " +
              printable(file->path));
  return *cls;
}

TypePtr Lowerer::to_type(const ts::TypeExpr& t) {
  auto arity = [&](size_t n) {
    if (t.args.size() != n)
      error(ErrorKind::kInvalidInput, t.line,
            "type " + t.str() + " needs " + std::to_string(n) + " argument(s)");
  };
  const std::string& n = t.name;
  if (n == "Tensor") return Type::tensor();
  if (n == "int" || n == "ScalarType" || n == "Layout" || n == "MemoryFormat" || n == "SymInt")
    return Type::integer();
  if (n == "float") return Type::floating();
  if (n == "bool") return Type::boolean();
  if (n == "str") return Type::string();
  if (n == "NoneType" || n == "None") return Type::none();
  if (n == "Device") return Type::device();
  if (n == "number" || n == "Scalar") return Type::number();
  if (n == "List") {
    arity(1);
    return Type::list(to_type(t.args[0]));
  }
  if (n == "Optional") {
    arity(1);
    return Type::optional(to_type(t.args[0]));
  }
  if (n == "Final") {
    arity(1);
    return to_type(t.args[0]);
  }
  if (n == "Dict") {
    arity(2);
    return Type::dict(to_type(t.args[0]), to_type(t.args[1]));
  }
  if (n == "Tuple") {
    std::vector<TypePtr> elems;
    for (const auto& a : t.args) elems.push_back(to_type(a));
    return Type::tuple(std::move(elems));
  }
  if (n.rfind("__torch__.", 0) == 0) {
    // A NamedTuple is a tuple of its fields; other classes (modules) exist only at compile time.
    auto [file, name] = resolve_qualified(n, t.line);
    const ts::ClassDef* cls = file->find_class(name);
    if (cls && std::find(cls->bases.begin(), cls->bases.end(), "NamedTuple") != cls->bases.end()) {
      std::vector<TypePtr> elems;
      for (const auto& a : cls->attributes) elems.push_back(to_type(a.type));
      return Type::tuple(std::move(elems));
    }
    return Type::any();
  }
  return Type::any();  // Any, Union, Future, Storage, Generator: nothing to check statically
}

SValue Lowerer::module_attribute(const std::shared_ptr<Object>& object, const std::string& name, int line) {
  if (const IValue* iv = object->find(name)) {
    if (iv->is_object()) return SValue::module(iv->to_object());
    auto key = std::make_pair(object.get(), name);
    auto it = attribute_constants_.find(key);
    if (it != attribute_constants_.end()) return SValue::of(it->second);
    TypePtr type = type_of(*iv);
    if (iv->is_list() || iv->is_dict() || iv->is_tuple()) {
      // The declared element types are more precise than what an (empty) value shows.
      const ts::ClassDef& cls = class_of(*object, line);
      if (const ts::ClassAttribute* attr = cls.find_attribute(name)) {
        TypePtr declared = to_type(attr->type);
        if (declared->kind == type->kind) type = declared;
      }
    }
    Value* v = graph_->constant(*iv, type);
    v->name = name;
    attribute_constants_[key] = v;
    return SValue::of(v);
  }
  const ts::ClassDef& cls = class_of(*object, line);
  if (const ts::ClassAttribute* attr = cls.find_attribute(name); attr && attr->value)
    return lower_expr(*attr->value);
  if (auto it = cls.class_values.find(name); it != cls.class_values.end()) return lower_expr(*it->second);
  if (cls.find_method(name)) return SValue::named(SValue::Kind::kMethod, name, object);
  error(ErrorKind::kInvalidInput, line,
        "module " + printable(object->type_name) + " has no attribute '" + name + "'");
}

// ---- functions -----------------------------------------------------------------------------------

SValue Lowerer::call_function(const ts::FunctionDef& def, const ts::SourceFile& file,
                              const std::shared_ptr<Object>& self, std::vector<SValue> args,
                              std::vector<std::pair<std::string, SValue>> kwargs, int line) {
  std::string fname =
      self ? def.name + " of " + printable(self->type_name) : def.name + " in " + printable(file.path);
  if (call_depth_ >= kMaxCallDepth)
    error(ErrorKind::kUnsupported, line,
          "calls nested more than " + std::to_string(kMaxCallDepth) + " deep while inlining " + fname +
              " (recursion?)");
  size_t first = self ? 1 : 0;
  if (self && def.params.empty())
    error(ErrorKind::kInvalidInput, line, "method " + fname + " has no self parameter");
  if (args.size() > def.params.size() - first)
    error(ErrorKind::kInvalidInput, line,
          fname + " takes " + std::to_string(def.params.size() - first) + " arguments but " +
              std::to_string(args.size()) + " were given");
  for (const auto& [kw, v] : kwargs) {
    bool known = false;
    for (size_t i = first; i < def.params.size(); ++i) known = known || def.params[i].name == kw;
    if (!known) error(ErrorKind::kInvalidInput, line, fname + " has no parameter '" + kw + "'");
  }
  std::string caller_where = here(line).str();

  Scope root;
  Frame frame;
  frame.file = &file;
  frame.function = fname;
  Scope* saved_scope = scope_;
  Frame* saved_frame = frame_;
  scope_ = &root;
  frame_ = &frame;
  ++call_depth_;
  if (self) root.set(def.params[0].name, SValue::module(self));
  for (size_t i = first; i < def.params.size(); ++i) {
    const ts::Param& p = def.params[i];
    SValue v;
    bool found = false;
    if (i - first < args.size()) {
      v = args[i - first];
      found = true;
    } else {
      for (auto& [kw, kv] : kwargs) {
        if (kw == p.name) {
          v = kv;
          found = true;
        }
      }
    }
    if (!found) {
      if (!p.default_value)
        fail(ErrorKind::kInvalidInput, caller_where, ": missing argument '", p.name, "' in the call to ",
             fname);
      v = lower_expr(*p.default_value);
    }
    if (v.is_value() && p.type) {
      TypePtr declared = to_type(*p.type);
      if (declared->is(TypeKind::kFloat) && v.type->is(TypeKind::kInt)) {
        if (auto c = constant_of(v.value)) v = constant(IValue(static_cast<double>(c->to_int())));
      }
      // Either direction: printed code passes Scalars to int parameters and refined values around.
      if (!type_accepts(*declared, *v.type, true) && !type_accepts(*v.type, *declared, true))
        fail(ErrorKind::kInvalidInput, caller_where, ": argument '", p.name, "' of ", fname, " is declared ",
             declared->str(), " but receives ", v.type->str());
    }
    root.set(p.name, v);
  }
  Exit exit = lower_body(stmt_views(def.body));
  SValue result;
  if (const SValue* r = root.lookup(kReturnSlot)) {
    result = *r;
  } else if (exit == Exit::kRaise) {
    TypePtr t = def.returns ? to_type(*def.returns) : Type::any();
    result = SValue::of(append("prim::Uninitialized", {}, 1, def.line)->outputs[0], t);
    result.value->type = t;
  } else {
    result = constant(IValue());
  }
  --call_depth_;
  scope_ = saved_scope;
  frame_ = saved_frame;
  return result;
}

SValue Lowerer::call_qualified(const std::string& qualified, std::vector<SValue> args,
                               std::vector<std::pair<std::string, SValue>> kwargs, int line) {
  auto [file, name] = resolve_qualified(qualified, line);
  if (const ts::FunctionDef* def = file->find_function(name))
    return call_function(*def, *file, nullptr, std::move(args), std::move(kwargs), line);
  const ts::ClassDef* cls = file->find_class(name);
  if (!cls)
    error(ErrorKind::kInvalidInput, line,
          "'" + printable(qualified) + "' is neither a function nor a class in " + printable(file->path));
  if (std::find(cls->bases.begin(), cls->bases.end(), "NamedTuple") == cls->bases.end())
    error(ErrorKind::kUnsupported, line,
          "constructing an instance of class " + printable(qualified) + " is not supported");
  // A NamedTuple is built as a plain tuple of its fields in declaration order.
  std::vector<SValue> fields(cls->attributes.size());
  std::vector<bool> set(cls->attributes.size(), false);
  if (args.size() > fields.size()) error(ErrorKind::kInvalidInput, line, "too many fields for " + qualified);
  for (size_t i = 0; i < args.size(); ++i) {
    fields[i] = args[i];
    set[i] = true;
  }
  for (auto& [kw, v] : kwargs) {
    bool known = false;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (cls->attributes[i].name == kw) {
        fields[i] = v;
        set[i] = known = true;
      }
    }
    if (!known) error(ErrorKind::kInvalidInput, line, qualified + " has no field '" + kw + "'");
  }
  std::vector<Value*> inputs;
  std::vector<TypePtr> types;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!set[i])
      error(ErrorKind::kInvalidInput, line,
            "field '" + cls->attributes[i].name + "' of " + qualified + " is not given");
    inputs.push_back(as_value(fields[i], line));
    types.push_back(fields[i].type);
  }
  Node* n = append("prim::TupleConstruct", inputs, 1, line);
  n->outputs[0]->type = Type::tuple(std::move(types));
  return SValue::of(n->outputs[0]);
}

// ---- statements ----------------------------------------------------------------------------------

Exit Lowerer::lower_body(const std::vector<const ts::Stmt*>& stmts) {
  for (size_t i = 0; i < stmts.size(); ++i) {
    const ts::Stmt& s = *stmts[i];
    if (++statements_lowered_ > kMaxStatements)
      error(ErrorKind::kUnsupported, s.line,
            "the code is too large to lower (more than " + std::to_string(kMaxStatements) +
                " statements after inlining)");
    if (s.kind == ts::StmtKind::kIf && (contains_return(s.body) || contains_return(s.orelse))) {
      // An early return: the rest of the function runs only on the paths that do not return, so
      // it is lowered into both branches, and the if's result is the function's.
      std::vector<const ts::Stmt*> rest(stmts.begin() + static_cast<std::ptrdiff_t>(i) + 1, stmts.end());
      return lower_if(s, rest);
    }
    Exit e = lower_stmt(s);
    if (e != Exit::kNone) return e;  // what follows is unreachable
  }
  return Exit::kNone;
}

Exit Lowerer::lower_stmt(const ts::Stmt& s) {
  switch (s.kind) {
    case ts::StmtKind::kExpr:
      if (is_raise_call(*s.value)) {
        const ts::Expr& call = *s.value;
        std::vector<Value*> inputs;
        for (size_t i = 1; i < call.operands.size(); ++i) inputs.push_back(lower_value(*call.operands[i]));
        append("prim::RaiseException", inputs, 0, s.line);
        return Exit::kRaise;
      }
      lower_expr(*s.value);
      return Exit::kNone;
    case ts::StmtKind::kAssign:
    case ts::StmtKind::kAnnAssign:
    case ts::StmtKind::kAugAssign:
      lower_assign(s);
      return Exit::kNone;
    case ts::StmtKind::kIf:
      return lower_if(s, {});
    case ts::StmtKind::kFor:
    case ts::StmtKind::kWhile:
      return lower_loop(s);
    case ts::StmtKind::kReturn: {
      SValue v = s.value ? lower_expr(*s.value) : constant(IValue());
      scope_->set(kReturnSlot, v);
      return Exit::kReturn;
    }
    case ts::StmtKind::kPass:
      return Exit::kNone;
    case ts::StmtKind::kRaise: {
      std::string message = "Exception";
      if (s.value && s.value->kind == ts::ExprKind::kCall &&
          s.value->operands[0]->kind == ts::ExprKind::kName) {
        message = s.value->operands[0]->text;
        if (s.value->operands.size() > 1 && s.value->operands[1]->kind == ts::ExprKind::kString)
          message += ": " + s.value->operands[1]->text;
      } else if (s.value && s.value->kind == ts::ExprKind::kString) {
        message = s.value->text;
      }
      return lower_raise(constant(IValue(message)).value, s.line);
    }
    case ts::StmtKind::kAssert: {
      Value* cond = lower_condition(*s.value);
      if (auto b = static_bool(SValue::of(cond)); b && *b) return Exit::kNone;
      Node* n = append("prim::If", {cond}, 0, s.line);
      n->add_block();
      Block* else_block = n->add_block();
      Block* saved = block_;
      block_ = else_block;
      Value* msg =
          s.message ? lower_value(*s.message) : constant(IValue(std::string("AssertionError"))).value;
      append("prim::RaiseException", {msg}, 0, s.line);
      block_ = saved;
      return Exit::kNone;
    }
    case ts::StmtKind::kBreak:
    case ts::StmtKind::kContinue:
      // The printer turns both into loop conditions; hand-written code with them is not printed.
      error(ErrorKind::kUnsupported, s.line,
            std::string("'") + (s.kind == ts::StmtKind::kBreak ? "break" : "continue") +
                "' is not supported (printed TorchScript never contains it)");
    case ts::StmtKind::kDef:
    case ts::StmtKind::kClass:
      error(ErrorKind::kUnsupported, s.line, "nested function or class definitions are not supported");
    case ts::StmtKind::kImport:
    case ts::StmtKind::kVersion:
      return Exit::kNone;
  }
  return Exit::kNone;
}

Exit Lowerer::lower_raise(Value* message, int line) {
  append("prim::RaiseException", {message}, 0, line);
  return Exit::kRaise;
}

Value* Lowerer::lower_condition(const ts::Expr& e) {
  SValue v = lower_expr(e);
  Value* value = as_value(v, e.line);
  if (v.type->is(TypeKind::kBool)) return value;
  if (v.type->is(TypeKind::kNone)) return constant_bool(false).value;
  // Python truthiness of a tensor or number, as bool(x).
  return as_value(emit_op1("aten::Bool", {v}, e.line), e.line);
}

void Lowerer::lower_assign(const ts::Stmt& s) {
  if (s.kind == ts::StmtKind::kAnnAssign) {
    if (!s.value) return;  // a bare declaration
    SValue v = lower_expr(*s.value);
    assign(*s.targets[0], v, s.line);
    return;
  }
  if (s.kind == ts::StmtKind::kAugAssign) {
    lower_aug_assign(s);
    return;
  }
  // "a, b = x, y" evaluates every right-hand value before assigning any; the printer writes loop
  // and branch results this way, so it is done without building a tuple.
  const ts::Expr& rhs = *s.value;
  if (s.targets.size() == 1 && s.targets[0]->kind == ts::ExprKind::kTuple &&
      rhs.kind == ts::ExprKind::kTuple && rhs.operands.size() == s.targets[0]->operands.size()) {
    std::vector<SValue> values;
    for (const auto& op : rhs.operands) values.push_back(lower_expr(*op));
    for (size_t i = 0; i < values.size(); ++i) assign(*s.targets[0]->operands[i], values[i], s.line);
    return;
  }
  SValue v = lower_expr(rhs);
  for (const auto& target : s.targets) assign(*target, v, s.line);
}

void Lowerer::lower_aug_assign(const ts::Stmt& s) {
  const ts::Expr& target = *s.targets[0];
  if (target.kind != ts::ExprKind::kName)
    error(ErrorKind::kUnsupported, s.line, "augmented assignment to anything but a name is not supported");
  SValue left = lower_expr(target);
  SValue right = lower_expr(*s.value);
  static const std::map<std::string, std::string> kInplace = {
      {"+", "aten::add_"}, {"-", "aten::sub_"}, {"*", "aten::mul_"}, {"/", "aten::div_"}};
  SValue result;
  if (left.is_value() && left.type->is(TypeKind::kTensor) && kInplace.count(s.op)) {
    result = emit_op1(kInplace.at(s.op), {left, right}, s.line);  // Tensor += is in place, as in Python
  } else {
    static const std::map<std::string, std::string> kOps = {
        {"+", "aten::add"},     {"-", "aten::sub"},         {"*", "aten::mul"},
        {"/", "aten::div"},     {"//", "aten::floordiv"},   {"%", "aten::remainder"},
        {"**", "aten::pow"},    {"&", "aten::__and__"},     {"|", "aten::__or__"},
        {"^", "aten::__xor__"}, {"<<", "aten::__lshift__"}, {">>", "aten::__rshift__"},
        {"@", "aten::matmul"}};
    auto it = kOps.find(s.op);
    if (it == kOps.end()) error(ErrorKind::kUnsupported, s.line, "operator '" + s.op + "=' is not supported");
    result = emit_op1(it->second, {left, right}, s.line);
  }
  assign(target, result, s.line);
}

void Lowerer::assign(const ts::Expr& target, const SValue& value, int line) {
  switch (target.kind) {
    case ts::ExprKind::kName:
      if (value.is_value() && value.value->name.empty() && target.text.rfind('_', 0) != 0)
        value.value->name = target.text;
      scope_->set(target.text, value);
      return;
    case ts::ExprKind::kTuple:
    case ts::ExprKind::kList: {
      std::vector<SValue> items = unpack(value, target.operands.size(), line);
      for (size_t i = 0; i < items.size(); ++i) assign(*target.operands[i], items[i], line);
      return;
    }
    default:
      error(ErrorKind::kUnsupported, line, "assignment to an attribute or a subscript is not supported");
  }
}

// ---- control flow ---------------------------------------------------------------------------------

Exit Lowerer::lower_if(const ts::Stmt& s, const std::vector<const ts::Stmt*>& rest) {
  bool tail = !rest.empty() || contains_return(s.body) || contains_return(s.orelse);
  Value* cond = lower_condition(*s.value);
  auto with_rest = [&](const std::vector<ts::StmtPtr>& branch) {
    std::vector<const ts::Stmt*> stmts = stmt_views(branch);
    stmts.insert(stmts.end(), rest.begin(), rest.end());
    return stmts;
  };
  if (auto taken = static_bool(SValue::of(cond))) {
    // A condition known now: only the taken branch exists (this is also how Optional refinement
    // by `is None` works on values whose type is known).
    Exit e = lower_body(with_rest(*taken ? s.body : s.orelse));
    if (tail && e == Exit::kNone) {
      scope_->set(kReturnSlot, constant(IValue()));
      e = Exit::kReturn;
    }
    return e;
  }

  Node* node = append("prim::If", {cond}, 0, s.line);
  Block* blocks[2] = {node->add_block(), node->add_block()};
  Scope scopes[2] = {Scope(scope_), Scope(scope_)};
  Exit exits[2];
  Block* saved_block = block_;
  Scope* saved_scope = scope_;
  for (int b = 0; b < 2; ++b) {
    block_ = blocks[b];
    scope_ = &scopes[b];
    exits[b] = lower_body(with_rest(b == 0 ? s.body : s.orelse));
    if (tail && exits[b] == Exit::kNone) {
      // The function ends here on this path without a return statement: it returns None.
      scope_->set(kReturnSlot, constant(IValue()));
      exits[b] = Exit::kReturn;
    }
  }
  block_ = saved_block;
  scope_ = saved_scope;

  bool both_exit = exits[0] != Exit::kNone && exits[1] != Exit::kNone;
  std::vector<std::string> names;
  for (int b = 0; b < 2; ++b)
    for (const auto& [name, v] : scopes[b].local())
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);

  std::vector<std::pair<std::string, SValue>> merged_sugared;
  std::vector<std::string> out_names;
  std::vector<TypePtr> out_types;
  std::vector<Value*> branch_values[2];
  for (const std::string& name : names) {
    // After an if where both paths exit, only the return value is still observable.
    if (both_exit && name != kReturnSlot) continue;
    const SValue* vals[2] = {nullptr, nullptr};
    for (int b = 0; b < 2; ++b) {
      auto it = scopes[b].local().find(name);
      if (it != scopes[b].local().end())
        vals[b] = &it->second;
      else if (exits[b] == Exit::kNone)
        vals[b] = scope_->lookup(name);  // defined before the if
    }
    int missing = !vals[0] ? 0 : !vals[1] ? 1 : -1;
    if (missing >= 0 && exits[missing] == Exit::kNone) {
      // Defined on one path only: using it later is an error, reported where it is used.
      merged_sugared.emplace_back(
          name, SValue::named(SValue::Kind::kPoisoned, "'" + name + "' is defined only in the " +
                                                           (missing == 0 ? "false" : "true") +
                                                           " branch of the if at " + here(s.line).str()));
      continue;
    }
    const SValue& present = missing >= 0 ? *vals[1 - missing] : *vals[0];
    if (!present.is_value() || (missing < 0 && !vals[1]->is_value())) {
      if (missing >= 0 || present.same_as(*vals[1])) {
        merged_sugared.emplace_back(name, present);
      } else {
        merged_sugared.emplace_back(
            name, SValue::named(SValue::Kind::kPoisoned,
                                "'" + name + "' refers to different things in the branches of the if at " +
                                    here(s.line).str()));
      }
      continue;
    }
    if (missing < 0 && vals[0]->value == vals[1]->value) {
      // Both paths leave the value that existed before (or the same one): no output needed.
      TypePtr type = unify_types(vals[0]->type, vals[1]->type);
      merged_sugared.emplace_back(name, SValue::of(vals[0]->value, type ? type : vals[0]->value->type));
      continue;
    }
    TypePtr type = present.type;
    if (missing < 0) {
      type = unify_types(vals[0]->type, vals[1]->type);
      if (!type)
        error(ErrorKind::kInvalidInput, s.line,
              "'" + (name == kReturnSlot ? std::string("the return value") : name) + "' is " +
                  vals[0]->type->str() + " in the true branch but " + vals[1]->type->str() +
                  " in the false branch");
    }
    for (int b = 0; b < 2; ++b) {
      if (vals[b]) {
        branch_values[b].push_back(vals[b]->value);
      } else {
        // This path raised; the value is never read on it.
        Block* saved = block_;
        block_ = blocks[b];
        Node* u = append("prim::Uninitialized", {}, 1, s.line);
        u->outputs[0]->type = type;
        block_ = saved;
        branch_values[b].push_back(u->outputs[0]);
      }
    }
    out_names.push_back(name);
    out_types.push_back(type);
  }
  for (int b = 0; b < 2; ++b) blocks[b]->returns = branch_values[b];
  for (size_t i = 0; i < out_names.size(); ++i) {
    Value* out = graph_->new_value(out_types[i], out_names[i] == kReturnSlot ? "" : out_names[i]);
    out->node = node;
    out->index = i;
    node->outputs.push_back(out);
    scope_->set(out_names[i], SValue::of(out, out_types[i]));
  }
  for (auto& [name, v] : merged_sugared) scope_->set(name, v);

  if (both_exit) return exits[0] == Exit::kReturn || exits[1] == Exit::kReturn ? Exit::kReturn : Exit::kRaise;
  return Exit::kNone;
}

Exit Lowerer::lower_loop(const ts::Stmt& s) {
  if (contains_return(s.body))
    error(ErrorKind::kUnsupported, s.line, "'return' inside a loop is not supported");
  bool is_for = s.kind == ts::StmtKind::kFor;
  Value* max_trips = nullptr;
  Value* start = nullptr;  // range(start, stop): the index is start + iteration
  Value* init_cond = nullptr;
  if (is_for) {
    const ts::Expr& iter = *s.value;
    bool is_range = iter.kind == ts::ExprKind::kCall && iter.operands[0]->kind == ts::ExprKind::kName &&
                    iter.operands[0]->text == "range" && !scope_->lookup("range");
    if (!is_range)
      error(ErrorKind::kUnsupported, s.line,
            "only 'for ... in range(...)' loops are supported (the printer writes every loop so)");
    size_t nargs = iter.operands.size() - 1;
    if (nargs < 1 || nargs > 2 || !iter.keywords.empty())
      error(ErrorKind::kUnsupported, s.line,
            "range() with " + std::to_string(nargs) + " arguments is not supported");
    if (s.targets[0]->kind != ts::ExprKind::kName)
      error(ErrorKind::kUnsupported, s.line, "a range loop needs a single loop variable");
    SValue a = lower_expr(*iter.operands[1]);
    if (nargs == 1) {
      max_trips = as_value(a, s.line);
    } else {
      SValue b = lower_expr(*iter.operands[2]);
      start = as_value(a, s.line);
      max_trips = as_value(emit_op1("aten::sub", {b, a}, s.line), s.line);
    }
    init_cond = constant_bool(true).value;
  } else {
    init_cond = lower_condition(*s.value);
    if (auto c = static_bool(SValue::of(init_cond)); c && !*c) return Exit::kNone;  // never entered
    max_trips = constant(IValue(std::numeric_limits<int64_t>::max())).value;
  }

  std::vector<std::string> assigned;
  collect_assigned(s.body, assigned);
  std::vector<std::string> carried;
  std::vector<TypePtr> carried_types;
  std::vector<Value*> carried_init;
  for (const std::string& name : assigned) {
    const SValue* before = scope_->lookup(name);
    if (!before || !before->is_value()) continue;
    if (is_for && name == s.targets[0]->text) continue;
    carried.push_back(name);
    carried_types.push_back(widen_for_loop(before->type));
    carried_init.push_back(before->value);
  }

  // Lowered again with wider types if the body changes a carried variable's type.
  for (int attempt = 0;; ++attempt) {
    std::vector<Value*> inputs = {max_trips, init_cond};
    inputs.insert(inputs.end(), carried_init.begin(), carried_init.end());
    Node* node = append("prim::Loop", inputs, 0, s.line);
    Block* body = node->add_block();
    Value* iteration = body->add_param(Type::integer(), is_for ? s.targets[0]->text : "");
    Scope body_scope(scope_);
    for (size_t i = 0; i < carried.size(); ++i) {
      Value* p = body->add_param(carried_types[i], carried[i]);
      body_scope.set(carried[i], SValue::of(p));
    }
    Block* saved_block = block_;
    Scope* saved_scope = scope_;
    block_ = body;
    scope_ = &body_scope;
    if (is_for) {
      SValue index = SValue::of(iteration);
      if (start) index = emit_op1("aten::add", {SValue::of(start), index}, s.line);
      body_scope.set(s.targets[0]->text, index);
    }
    Exit exit = lower_body(stmt_views(s.body));
    Value* next_cond = nullptr;
    std::vector<SValue> finals;
    if (exit == Exit::kNone) {
      next_cond = is_for ? constant_bool(true).value : lower_condition(*s.value);
      for (const std::string& name : carried) finals.push_back(*body_scope.lookup(name));
    } else {
      // The body always raises; it never reaches its end, so what it "returns" is never read.
      next_cond = constant_bool(false).value;
      for (size_t i = 0; i < carried.size(); ++i) finals.push_back(SValue::of(body->params[1 + i]));
    }
    bool retry = false;
    for (size_t i = 0; i < carried.size(); ++i) {
      if (!finals[i].is_value())
        error(ErrorKind::kUnsupported, s.line,
              "loop variable '" + carried[i] + "' becomes " + finals[i].describe());
      TypePtr u = unify_types(carried_types[i], finals[i].type);
      if (!u)
        error(ErrorKind::kInvalidInput, s.line,
              "loop variable '" + carried[i] + "' is " + carried_types[i]->str() + " before the loop but " +
                  finals[i].type->str() + " in it");
      if (u->str() != carried_types[i]->str()) {
        carried_types[i] = widen_for_loop(u);
        retry = true;
      }
    }
    std::map<std::string, SValue> body_locals = body_scope.local();
    block_ = saved_block;
    scope_ = saved_scope;
    if (retry && attempt < 3) {
      auto& nodes = block_->nodes;
      nodes.erase(std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.get() == node; }));
      continue;
    }
    body->returns = {next_cond};
    for (const SValue& f : finals) body->returns.push_back(f.value);
    for (size_t i = 0; i < carried.size(); ++i) {
      Value* out = graph_->new_value(carried_types[i], carried[i]);
      out->node = node;
      out->index = i;
      node->outputs.push_back(out);
      scope_->set(carried[i], SValue::of(out));
    }
    // Names first assigned inside the body are not defined after it (the loop may not run), and a
    // module or function rebound in it is only usable if it is the same one as before.
    for (const std::string& name : assigned) {
      if (std::find(carried.begin(), carried.end(), name) != carried.end()) continue;
      auto it = body_locals.find(name);
      const SValue* before = scope_->lookup(name);
      if (it != body_locals.end() && before && before->same_as(it->second)) continue;
      if (!before && it == body_locals.end()) continue;
      scope_->set(name, SValue::named(SValue::Kind::kPoisoned,
                                      "'" + name + "' is assigned inside the loop at " + here(s.line).str() +
                                          " and is not defined after it"));
    }
    return Exit::kNone;
  }
}

// ---- entry point -----------------------------------------------------------------------------------

std::unique_ptr<Graph> Lowerer::run(const LoweringOptions& options) {
  if (!archive_.module.is_object())
    fail(ErrorKind::kInvalidInput, archive_.path, ": the root of data.pkl is not a module");
  std::shared_ptr<Object> root = archive_.module.to_object();
  graph_ = std::make_unique<Graph>();
  block_ = graph_->top();
  const ts::ClassDef& cls = class_of(*root, 0);
  const ts::FunctionDef* def = cls.find_method(options.method);
  auto [file, class_name] = resolve_qualified(root->type_name, 0);
  if (!def)
    fail(ErrorKind::kInvalidInput, archive_.path, ": module ", printable(root->type_name), " has no method '",
         options.method, "'");
  if (def->params.empty())
    fail(ErrorKind::kInvalidInput, printable(file->path), ":", def->line, ": method ", def->name,
         " has no self parameter");

  Frame frame;
  frame.file = file;
  frame.function = def->name + " of " + printable(root->type_name);
  Scope top_scope;
  frame_ = &frame;
  scope_ = &top_scope;
  top_scope.set(def->params[0].name, SValue::module(root));
  int num_inputs = options.num_inputs;
  for (size_t i = 1; i < def->params.size(); ++i) {
    const ts::Param& p = def->params[i];
    if (num_inputs < 0 || static_cast<int>(i - 1) < num_inputs) {
      TypePtr t = p.type ? to_type(*p.type) : Type::tensor();
      top_scope.set(p.name, SValue::of(graph_->top()->add_param(t, p.name)));
    } else {
      if (!p.default_value) {
        std::string names;
        for (size_t j = 1; j < def->params.size(); ++j) names += (j > 1 ? ", " : "") + def->params[j].name;
        error(ErrorKind::kInvalidInput, p.line,
              def->name + "() takes " + std::to_string(def->params.size() - 1) + " inputs (" + names +
                  ") but " + std::to_string(num_inputs) + " were given, and parameter '" + p.name +
                  "' has no default");
      }
      top_scope.set(p.name, lower_expr(*p.default_value));
    }
  }
  if (num_inputs > static_cast<int>(def->params.size()) - 1)
    fail(ErrorKind::kInvalidInput, archive_.path, ": ", def->name, " takes ", def->params.size() - 1,
         " inputs, not ", num_inputs);

  Exit exit = lower_body(stmt_views(def->body));
  SValue result = exit == Exit::kNone ? constant(IValue()) : SValue();
  if (const SValue* r = top_scope.lookup(kReturnSlot)) result = *r;
  if (exit == Exit::kRaise && !top_scope.lookup(kReturnSlot))
    error(ErrorKind::kInvalidInput, def->line, def->name + " always raises an exception");

  // One output per returned element; nested tuples are flattened in order too.
  std::vector<Value*> outputs;
  std::function<void(const SValue&)> flatten = [&](const SValue& v) {
    if (v.is_value() && v.type->is(TypeKind::kTuple)) {
      for (const SValue& item : unpack(v, v.type->contained.size(), def->line)) flatten(item);
      return;
    }
    outputs.push_back(as_value(v, def->line));
  };
  flatten(result);
  graph_->top()->returns = outputs;
  return std::move(graph_);
}

}  // namespace lowering

std::unique_ptr<Graph> lower_module(const Archive& archive, const OpRegistry& registry,
                                    const LoweringOptions& options) {
  return lowering::Lowerer(archive, registry).run(options);
}

std::unique_ptr<Graph> lower_module(const Archive& archive, const OpRegistry& registry,
                                    const std::string& method) {
  LoweringOptions options;
  options.method = method;
  return lower_module(archive, registry, options);
}

}  // namespace convoy
