// Lowering of expressions: names, attributes, literals, Python operators, subscripts, builtins and
// calls, and the emission of registry ops (overload resolution, defaults, compile-time folding).
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <set>

#include "runtime/error.h"
#include "runtime/graph/passes.h"
#include "runtime/printable.h"
#include "runtime/torchscript/lowering_internal.h"
#include "runtime/torchscript/overload.h"

namespace convoy::lowering {

namespace {

using Keywords = std::vector<std::pair<std::string, SValue>>;

// Facts of this runtime that TorchScript code asks about: no CUDA or other accelerators behind the
// tensors, no nested/quantized/sparse layouts, inference only (no grad, no autocast).
std::optional<bool> runtime_fact(const std::string& kind) {
  static const std::set<std::string> kFalse = {"prim::is_cuda",
                                               "prim::is_nested",
                                               "prim::is_quantized",
                                               "prim::is_mkldnn",
                                               "prim::is_sparse",
                                               "prim::is_sparse_csr",
                                               "prim::is_meta",
                                               "prim::is_xpu",
                                               "prim::is_mps",
                                               "prim::is_vulkan",
                                               "prim::is_ipu",
                                               "prim::is_xla",
                                               "prim::is_ort",
                                               "prim::is_hpu",
                                               "prim::requires_grad",
                                               "aten::is_grad_enabled",
                                               "aten::is_autocast_enabled",
                                               "aten::is_autocast_cpu_enabled",
                                               "aten::is_tracing",
                                               "aten::requires_grad",
                                               "aten::is_inference_mode_enabled"};
  if (kFalse.count(kind)) return false;
  if (kind == "aten::is_scripting") return true;
  return std::nullopt;
}

bool is_scalar_type(const Type& t) {
  switch (t.kind) {
    case TypeKind::kInt:
    case TypeKind::kFloat:
    case TypeKind::kBool:
    case TypeKind::kNumber:
    case TypeKind::kNone:
    case TypeKind::kString:
    case TypeKind::kDevice:
      return true;
    default:
      return false;
  }
}

std::string scalar_key(const IValue& v) {
  if (v.is_none()) return "N";
  if (v.is_bool()) return v.to_bool() ? "b1" : "b0";
  if (v.is_int()) return "i" + std::to_string(v.to_int());
  if (v.is_double()) {
    double d = v.to_double();
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    return "d" + std::to_string(bits);
  }
  if (v.is_string()) return "s" + v.to_string();
  if (v.is_device()) return "D" + v.to_device().name;
  return "";
}

const TypePtr& strip_optional(const TypePtr& t) { return t->is(TypeKind::kOptional) ? t->elem() : t; }

std::string dotted(const ts::Expr& e) {
  if (e.kind == ts::ExprKind::kName) return e.text;
  if (e.kind == ts::ExprKind::kAttribute) {
    std::string base = dotted(*e.operands[0]);
    return base.empty() ? "" : base + "." + e.text;
  }
  return "";
}

}  // namespace

// ---- small helpers ------------------------------------------------------------------------------

Node* Lowerer::append(const std::string& kind, const std::vector<Value*>& inputs, size_t outputs, int line) {
  return block_->append(kind, inputs, outputs, here(line));
}

Value* Lowerer::as_value(const SValue& v, int line) const {
  if (v.is_value()) return v.value;
  if (v.kind == SValue::Kind::kPoisoned) error(ErrorKind::kInvalidInput, line, v.name);
  error(ErrorKind::kInvalidInput, line, "expected a value but found " + v.describe());
}

Value* Lowerer::lower_value(const ts::Expr& e) { return as_value(lower_expr(e), e.line); }

SValue Lowerer::constant(const IValue& v, TypePtr type) {
  std::string key = type ? "" : scalar_key(v);
  if (!key.empty()) {
    auto it = scalar_constants_.find(key);
    if (it != scalar_constants_.end()) return SValue::of(it->second);
  }
  Value* c = graph_->constant(v, std::move(type));
  if (!key.empty()) scalar_constants_[key] = c;
  return SValue::of(c);
}

std::optional<IValue> Lowerer::constant_of(const Value* v, int depth) const {
  if (!v->node || depth > 32) return std::nullopt;
  const Node* n = v->node;
  if (n->kind == "prim::Constant") return n->constant;
  // Tuples are immutable, so one built from constants is constant. Lists are not: an append later
  // in the code (or in a later loop iteration) would change what an earlier read sees.
  if (n->kind == "prim::TupleConstruct") {
    IValueList items;
    for (const Value* in : n->inputs) {
      auto c = constant_of(in, depth + 1);
      if (!c) return std::nullopt;
      items.push_back(*c);
    }
    return IValue::tuple(std::move(items));
  }
  return std::nullopt;
}

std::optional<bool> Lowerer::static_bool(const SValue& v) const {
  if (!v.is_value()) return std::nullopt;
  auto c = constant_of(v.value);
  if (c && c->is_bool()) return c->to_bool();
  return std::nullopt;
}

SValue Lowerer::tuple_item(const SValue& tuple, int64_t index, int line) {
  Value* t = as_value(tuple, line);
  const TypePtr& type = tuple.type;
  if (!type->is(TypeKind::kTuple))
    error(ErrorKind::kInvalidInput, line,
          "cannot take item " + std::to_string(index) + " of " + tuple.describe());
  int64_t n = static_cast<int64_t>(type->contained.size());
  int64_t i = index < 0 ? index + n : index;
  if (i < 0 || i >= n)
    error(ErrorKind::kInvalidInput, line,
          "tuple index " + std::to_string(index) + " out of range for " + type->str());
  const TypePtr& elem = type->contained[static_cast<size_t>(i)];
  if (t->node && t->node->kind == "prim::TupleConstruct" && t->node->inputs.size() == static_cast<size_t>(n))
    return SValue::of(t->node->inputs[static_cast<size_t>(i)], elem);
  if (auto c = constant_of(t)) return constant(c->to_tuple()[static_cast<size_t>(i)], elem);
  Node* node = append("prim::TupleIndex", {t, constant(IValue(i)).value}, 1, line);
  node->outputs[0]->type = elem;
  return SValue::of(node->outputs[0]);
}

std::vector<SValue> Lowerer::unpack(const SValue& v, size_t n, int line) {
  Value* value = as_value(v, line);
  std::vector<SValue> out;
  if (v.type->is(TypeKind::kTuple)) {
    if (v.type->contained.size() != n)
      error(ErrorKind::kInvalidInput, line,
            "cannot unpack " + v.type->str() + " into " + std::to_string(n) + " names");
    if ((value->node && value->node->kind == "prim::TupleConstruct") || constant_of(value)) {
      for (size_t i = 0; i < n; ++i) out.push_back(tuple_item(v, static_cast<int64_t>(i), line));
      return out;
    }
    Node* node = append("prim::TupleUnpack", {value}, n, line);
    for (size_t i = 0; i < n; ++i) {
      node->outputs[i]->type = v.type->contained[i];
      out.push_back(SValue::of(node->outputs[i]));
    }
    return out;
  }
  if (v.type->is(TypeKind::kList) || v.type->is(TypeKind::kAny)) {
    TypePtr elem = v.type->is(TypeKind::kList) && !v.type->contained.empty() ? v.type->elem() : Type::any();
    Node* node = append("prim::ListUnpack", {value}, n, line);
    for (size_t i = 0; i < n; ++i) {
      node->outputs[i]->type = elem;
      out.push_back(SValue::of(node->outputs[i]));
    }
    return out;
  }
  error(ErrorKind::kInvalidInput, line,
        "cannot unpack " + v.describe() + " into " + std::to_string(n) + " names");
}

SValue Lowerer::emit_if(Value* cond, int line, const std::function<SValue()>& then_fn,
                        const std::function<SValue()>& else_fn) {
  if (auto b = static_bool(SValue::of(cond))) return *b ? then_fn() : else_fn();
  Node* node = append("prim::If", {cond}, 0, line);
  Block* saved = block_;
  SValue results[2];
  for (int b = 0; b < 2; ++b) {
    block_ = node->add_block();
    results[b] = b == 0 ? then_fn() : else_fn();
    block_->returns = {as_value(results[b], line)};
  }
  block_ = saved;
  TypePtr type = unify_types(results[0].type, results[1].type);
  if (!type)
    error(ErrorKind::kInvalidInput, line,
          "the branches give " + results[0].type->str() + " and " + results[1].type->str());
  Value* out = graph_->new_value(type);
  out->node = node;
  node->outputs.push_back(out);
  return SValue::of(out);
}

// ---- op emission --------------------------------------------------------------------------------

std::vector<SValue> Lowerer::emit_op(const std::string& name, const std::vector<SValue>& args,
                                     const Keywords& kwargs, int line) {
  if (auto fact = runtime_fact(name)) return {constant_bool(*fact)};
  if (name == "prim::device") return {constant(IValue(Device{"cpu"}))};
  if ((name == "prim::dtype" || name == "aten::is_floating_point") && args.size() == 1 &&
      args[0].is_value() && args[0].type->is(TypeKind::kTensor) && args[0].type->dtype) {
    DType d = *args[0].type->dtype;
    if (name == "prim::dtype") return {constant(IValue(static_cast<int64_t>(d)))};
    return {constant_bool(d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 ||
                          d == DType::kBFloat16)};
  }
  if (name == "aten::warn") return {constant(IValue())};  // warnings do not change results
  if ((name == "aten::__is__" || name == "aten::__isnot__") && args.size() == 2 && args[0].is_value() &&
      args[1].is_value()) {
    // Identity is often known now: the same SSA value, or None against a type that cannot be None.
    const SValue& a = args[0];
    const SValue& b = args[1];
    std::optional<bool> same;
    auto cannot_be_none = [](const Type& t) {
      return !t.is(TypeKind::kNone) && !t.is(TypeKind::kOptional) && !t.is(TypeKind::kAny);
    };
    if (a.value == b.value || (a.type->is(TypeKind::kNone) && b.type->is(TypeKind::kNone)))
      same = true;
    else if ((a.type->is(TypeKind::kNone) && cannot_be_none(*b.type)) ||
             (b.type->is(TypeKind::kNone) && cannot_be_none(*a.type)))
      same = false;
    if (same) return {constant_bool(name == "aten::__is__" ? *same : !*same)};
  }

  std::vector<TypePtr> positional;
  Keywords kw = kwargs;
  std::vector<std::pair<std::string, TypePtr>> kw_types;
  for (const SValue& a : args) {
    as_value(a, line);
    positional.push_back(a.type);
  }
  for (const auto& [k, v] : kwargs) {
    as_value(v, line);
    kw_types.emplace_back(k, v.type);
  }
  auto overloads = registry_.overloads(name);
  if (overloads.empty())
    error(ErrorKind::kUnsupported, line,
          "unsupported op '" + name + "' (called with " + describe_call_types(positional, kw_types) + ")");
  auto match = resolve_overload(overloads, positional, kw_types);
  if (!match) {
    std::string candidates;
    for (const OpOverload* op : overloads) candidates += "\n  " + op->schema.text;
    error(ErrorKind::kUnsupported, line,
          "no overload of '" + name + "' accepts " + describe_call_types(positional, kw_types) +
              "; candidates:" + candidates);
  }
  const Schema& schema = match->op->schema;

  std::vector<Value*> inputs;
  for (size_t i = 0; i < schema.arguments.size(); ++i) {
    const Argument& formal = schema.arguments[i];
    const ArgSource& src = match->sources[i];
    if (src.kind == ArgSource::kDefault) {
      const IValue& d = *formal.default_value;
      TypePtr t = d.is_list() ? strip_optional(formal.type) : nullptr;
      inputs.push_back(constant(d, t).value);
      continue;
    }
    const SValue& actual = src.kind == ArgSource::kPositional ? args[src.index] : kwargs[src.index].second;
    if (src.repeat_scalar) {
      // "int[2] stride" given one int: the kernel always receives a list.
      std::vector<Value*> items(static_cast<size_t>(formal.fixed_list_size), actual.value);
      Node* list = append("prim::ListConstruct", items, 1, line);
      list->outputs[0]->type = Type::list(actual.type);
      inputs.push_back(list->outputs[0]);
      match->arg_types[i] = list->outputs[0]->type;
      continue;
    }
    inputs.push_back(actual.value);
  }

  std::vector<TypePtr> result_types = schema_result_types(*match);
  if (match->op->infer) {
    std::vector<std::optional<IValue>> held(inputs.size());
    std::vector<const IValue*> constants(inputs.size(), nullptr);
    for (size_t i = 0; i < inputs.size(); ++i) {
      held[i] = constant_of(inputs[i]);
      // Shape lists are built by ListConstruct; for inference (not folding) their items are enough.
      if (!held[i] && inputs[i]->node && inputs[i]->node->kind == "prim::ListConstruct") {
        IValueList items;
        bool all = true;
        for (const Value* in : inputs[i]->node->inputs) {
          auto c = constant_of(in);
          if (!c) {
            all = false;
            break;
          }
          items.push_back(*c);
        }
        if (all) held[i] = IValue::list(std::move(items));
      }
      if (held[i]) constants[i] = &*held[i];
    }
    try {
      std::vector<TypePtr> inferred = match->op->infer(match->arg_types, constants);
      CONVOY_CHECK_KIND(kInternal, inferred.size() == schema.returns.size(), schema.full_name(), " inferred ",
                        inferred.size(), " result types for ", schema.returns.size(), " results");
      for (size_t i = 0; i < inferred.size(); ++i)
        if (inferred[i]) result_types[i] = inferred[i];
    } catch (const Error& e) {
      error(e.kind(), line, schema.full_name() + ": " + e.what());
    }
  }

  // Pure scalar work on known values (sizes of weights, flags, string tests) is done now, so
  // conditions on it select a branch at load time.
  bool foldable = !op_has_effects(name) && !result_types.empty();
  for (const TypePtr& t : result_types) foldable = foldable && is_scalar_type(*t);
  if (foldable) {
    IValueList values;
    for (Value* in : inputs) {
      auto c = constant_of(in);
      if (!c) {
        foldable = false;
        break;
      }
      values.push_back(std::move(*c));
    }
    if (foldable) {
      try {
        IValueList results = match->op->kernel(values);
        if (results.size() == result_types.size()) {
          std::vector<SValue> out;
          for (const IValue& r : results) out.push_back(constant(r));
          return out;
        }
      } catch (const std::exception&) {
        // Not folded: if this code runs, the op raises then, as PyTorch would.
      }
    }
  }

  Node* node = append(name, inputs, schema.returns.size(), line);
  node->op = match->op;
  std::vector<SValue> out;
  for (size_t i = 0; i < node->outputs.size(); ++i) {
    node->outputs[i]->type = result_types[i];
    out.push_back(SValue::of(node->outputs[i]));
  }
  return out;
}

SValue Lowerer::emit_op1(const std::string& name, const std::vector<SValue>& args, int line,
                         const Keywords& kwargs) {
  std::vector<SValue> out = emit_op(name, args, kwargs, line);
  if (out.empty()) return constant(IValue());
  if (out.size() == 1) return out[0];
  std::vector<Value*> items;
  std::vector<TypePtr> types;
  for (const SValue& v : out) {
    items.push_back(v.value);
    types.push_back(v.type);
  }
  Node* t = append("prim::TupleConstruct", items, 1, line);
  t->outputs[0]->type = Type::tuple(std::move(types));
  return SValue::of(t->outputs[0]);
}

// ---- expressions --------------------------------------------------------------------------------

namespace {

const std::set<std::string>& builtin_functions() {
  static const std::set<std::string> kBuiltins = {"int",     "float",   "bool",  "str",   "len",
                                                  "getattr", "hasattr", "range", "print", "list",
                                                  "min",     "max",     "abs",   "divmod"};
  return kBuiltins;
}

const std::map<std::string, std::string>& binary_ops() {
  static const std::map<std::string, std::string> kOps = {
      {"+", "aten::add"},        {"-", "aten::sub"},       {"*", "aten::mul"},     {"/", "aten::div"},
      {"//", "aten::floordiv"},  {"%", "aten::remainder"}, {"**", "aten::pow"},    {"@", "aten::matmul"},
      {"&", "aten::__and__"},    {"|", "aten::__or__"},    {"^", "aten::__xor__"}, {"<<", "aten::__lshift__"},
      {">>", "aten::__rshift__"}};
  return kOps;
}

const std::map<std::string, std::string>& compare_ops() {
  static const std::map<std::string, std::string> kOps = {
      {"==", "aten::eq"}, {"!=", "aten::ne"}, {"<", "aten::lt"},      {"<=", "aten::le"},
      {">", "aten::gt"},  {">=", "aten::ge"}, {"is", "aten::__is__"}, {"is not", "aten::__isnot__"}};
  return kOps;
}

}  // namespace

SValue Lowerer::lower_expr(const ts::Expr& e) {
  using K = ts::ExprKind;
  switch (e.kind) {
    case K::kName:
      return lower_name(e);
    case K::kInt:
      return constant(IValue(e.int_value));
    case K::kFloat:
      return constant(IValue(e.float_value));
    case K::kString:
      return constant(IValue(e.text));
    case K::kBool:
      return constant_bool(e.bool_value);
    case K::kNone:
      return constant(IValue());
    case K::kEllipsis:
      error(ErrorKind::kUnsupported, e.line, "'...' is only supported inside a tensor subscript");
    case K::kAttribute:
      return lower_attribute(e);
    case K::kCall:
      return call(lower_expr(*e.operands[0]), e);
    case K::kSubscript:
      return lower_subscript(e);
    case K::kSlice:
      error(ErrorKind::kInvalidInput, e.line, "a slice is only allowed inside a subscript");
    case K::kTuple:
      return lower_tuple(e);
    case K::kList:
    case K::kDict:
      return lower_list_or_dict(e);
    case K::kUnary:
      return lower_unary(e);
    case K::kBinary:
      return lower_binary(e);
    case K::kCompare:
      return lower_compare(e);
    case K::kBoolOp:
      return lower_bool_op(e);
    case K::kIfExp:
      return lower_if_expr(e);
    case K::kAnnotate:
      return lower_annotate(e);
    case K::kUncheckedCast: {
      SValue v = lower_expr(*e.operands[0]);
      as_value(v, e.line);
      return SValue::of(v.value, to_type(e.types[0]));
    }
    case K::kUninitialized: {
      Node* n = append("prim::Uninitialized", {}, 1, e.line);
      n->outputs[0]->type = to_type(e.types[0]);
      return SValue::of(n->outputs[0]);
    }
    case K::kIsInstance:
      return lower_isinstance(e);
  }
  error(ErrorKind::kInternal, e.line, "unhandled expression kind");
}

SValue Lowerer::lower_name(const ts::Expr& e) {
  using K = ts::ExprKind;
  if (const SValue* v = scope_->lookup(e.text)) {
    if (v->kind == SValue::Kind::kPoisoned) error(ErrorKind::kInvalidInput, e.line, v->name);
    return *v;
  }
  if (e.text == "inf") return constant(IValue(std::numeric_limits<double>::infinity()));
  if (e.text == "nan") return constant(IValue(std::numeric_limits<double>::quiet_NaN()));
  if (e.text == "torch" || e.text == "ops" || e.text == "__torch__" || e.text == "CONSTANTS" ||
      e.text == "math")
    return SValue::named(SValue::Kind::kNamespace, e.text);
  if (builtin_functions().count(e.text)) return SValue::named(SValue::Kind::kBuiltin, e.text);
  error(ErrorKind::kInvalidInput, e.line, "undefined name '" + e.text + "'");
}

SValue Lowerer::lower_attribute(const ts::Expr& e) {
  using K = ts::ExprKind;
  SValue base = lower_expr(*e.operands[0]);
  switch (base.kind) {
    case SValue::Kind::kModule:
      return module_attribute(base.object, e.text, e.line);
    case SValue::Kind::kNamespace: {
      if (base.name == "CONSTANTS") {
        const std::string& c = e.text;
        size_t index = 0;
        bool ok = c.size() > 1 && c[0] == 'c' && c.size() < 12;
        for (size_t i = 1; ok && i < c.size(); ++i) {
          ok = std::isdigit(static_cast<unsigned char>(c[i])) != 0;
          index = index * 10 + static_cast<size_t>(c[i] - '0');
        }
        if (!ok || index >= archive_.constants.size())
          error(ErrorKind::kInvalidInput, e.line,
                "CONSTANTS." + c + " does not exist (the archive has " +
                    std::to_string(archive_.constants.size()) + " constants)");
        auto it = archive_constants_.find(index);
        if (it != archive_constants_.end()) return SValue::of(it->second);
        Value* v = graph_->constant(archive_.constants[index]);
        archive_constants_[index] = v;
        return SValue::of(v);
      }
      if (base.name == "math") {
        if (e.text == "pi") return constant(IValue(std::numbers::pi));
        if (e.text == "e") return constant(IValue(std::numbers::e));
        if (e.text == "inf") return constant(IValue(std::numeric_limits<double>::infinity()));
        if (e.text == "nan") return constant(IValue(std::numeric_limits<double>::quiet_NaN()));
      }
      return SValue::named(SValue::Kind::kNamespace, base.name + "." + e.text);
    }
    default:
      error(ErrorKind::kUnsupported, e.line,
            "attribute '" + e.text + "' of " + base.describe() + " is not supported");
  }
}

SValue Lowerer::lower_subscript(const ts::Expr& e) {
  using K = ts::ExprKind;
  SValue base = lower_expr(*e.operands[0]);
  const ts::Expr& index = *e.operands[1];
  if (base.kind == SValue::Kind::kModule) {
    // ModuleList/Sequential items by a constant index.
    SValue i = lower_expr(index);
    auto c = i.is_value() ? constant_of(i.value) : std::nullopt;
    if (!c || !(c->is_int() || c->is_string()))
      error(ErrorKind::kUnsupported, e.line, "a module can only be indexed by a constant");
    return module_attribute(base.object, c->is_int() ? std::to_string(c->to_int()) : c->to_string(), e.line);
  }
  as_value(base, e.line);
  const TypePtr& t = base.type;
  if (t->is(TypeKind::kTensor)) {
    std::vector<const ts::Expr*> items;
    if (index.kind == K::kTuple) {
      for (const auto& op : index.operands) items.push_back(op.get());
    } else {
      items.push_back(&index);
    }
    size_t consuming_after_ellipsis = 0;
    bool seen_ellipsis = false;
    for (const ts::Expr* it : items) {
      if (it->kind == K::kEllipsis) {
        if (seen_ellipsis)
          error(ErrorKind::kInvalidInput, e.line, "an index can only have a single ellipsis");
        seen_ellipsis = true;
      } else if (seen_ellipsis && it->kind != K::kNone) {
        ++consuming_after_ellipsis;
      }
    }
    SValue result = base;
    int64_t dim = 0;
    bool from_end = false;
    std::vector<std::pair<int64_t, SValue>> tensor_indices;
    for (size_t k = 0; k < items.size(); ++k) {
      const ts::Expr& it = *items[k];
      if (it.kind == K::kEllipsis) {
        from_end = true;
        dim = -static_cast<int64_t>(consuming_after_ellipsis);
        continue;
      }
      if (it.kind == K::kNone) {
        if (from_end && dim != 0)
          error(ErrorKind::kUnsupported, e.line, "None after '...' is only supported at the end of an index");
        result =
            emit_op1("aten::unsqueeze", {result, constant(IValue(from_end ? int64_t{-1} : dim))}, e.line);
        if (!from_end) ++dim;
        continue;
      }
      if (it.kind == K::kSlice) {
        auto part = [&](int p, const IValue& dflt) {
          return it.operands[static_cast<size_t>(p)] ? lower_expr(*it.operands[static_cast<size_t>(p)])
                                                     : constant(dflt);
        };
        SValue start = part(0, IValue()), end = part(1, IValue()), step = part(2, IValue(int64_t{1}));
        result = emit_op1("aten::slice", {result, constant(IValue(dim)), start, end, step}, e.line);
        ++dim;
        continue;
      }
      SValue i = lower_expr(it);
      as_value(i, it.line);
      if (i.type->is(TypeKind::kInt)) {
        result = emit_op1("aten::select", {result, constant(IValue(dim)), i}, e.line);
        continue;
      }
      if (from_end) error(ErrorKind::kUnsupported, e.line, "tensor indices after '...' are not supported");
      tensor_indices.emplace_back(dim, i);
      ++dim;
    }
    if (!tensor_indices.empty()) {
      std::vector<Value*> list;
      Value* none = constant(IValue()).value;
      for (auto& [d, v] : tensor_indices) {
        while (static_cast<int64_t>(list.size()) < d) list.push_back(none);
        list.push_back(v.value);
      }
      Node* l = append("prim::ListConstruct", list, 1, e.line);
      l->outputs[0]->type = Type::list(Type::optional(Type::tensor()));
      result = emit_op1("aten::index", {result, SValue::of(l->outputs[0])}, e.line);
    }
    return result;
  }
  if (t->is(TypeKind::kTuple)) {
    SValue i = lower_expr(index);
    auto c = i.is_value() ? constant_of(i.value) : std::nullopt;
    if (c && c->is_int()) return tuple_item(base, c->to_int(), e.line);
    Node* n = append("prim::TupleIndex", {base.value, as_value(i, e.line)}, 1, e.line);
    TypePtr elem = t->contained.empty() ? Type::any() : t->contained[0];
    for (const TypePtr& x : t->contained)
      if (x->str() != elem->str()) elem = Type::any();
    n->outputs[0]->type = elem;
    return SValue::of(n->outputs[0]);
  }
  if (index.kind == K::kSlice) {
    auto part = [&](int p, const IValue& dflt) {
      return index.operands[static_cast<size_t>(p)] ? lower_expr(*index.operands[static_cast<size_t>(p)])
                                                    : constant(dflt);
    };
    return emit_op1("aten::slice", {base, part(0, IValue()), part(1, IValue()), part(2, IValue(int64_t{1}))},
                    e.line);
  }
  return emit_op1("aten::__getitem__", {base, lower_expr(index)}, e.line);
}

SValue Lowerer::lower_tuple(const ts::Expr& e) {
  using K = ts::ExprKind;
  std::vector<Value*> items;
  std::vector<TypePtr> types;
  for (const auto& op : e.operands) {
    SValue v = lower_expr(*op);
    items.push_back(as_value(v, op->line));
    types.push_back(v.type);
  }
  Node* n = append("prim::TupleConstruct", items, 1, e.line);
  n->outputs[0]->type = Type::tuple(std::move(types));
  return SValue::of(n->outputs[0]);
}

SValue Lowerer::lower_list_or_dict(const ts::Expr& e) {
  using K = ts::ExprKind;
  // Items of a literal share one type; an empty literal without annotate() is TorchScript's
  // default (Tensor items, str keys).
  bool is_list = e.kind == K::kList;
  std::vector<Value*> items;
  TypePtr types[2];
  for (size_t i = 0; i < e.operands.size(); ++i) {
    SValue v = lower_expr(*e.operands[i]);
    items.push_back(as_value(v, e.operands[i]->line));
    TypePtr& slot = types[is_list ? 0 : i % 2];
    slot = slot ? unify_types(slot, v.type) : v.type;
    if (!slot)
      error(
          ErrorKind::kInvalidInput, e.line,
          std::string("the items of this ") + (is_list ? "list" : "dict") + " literal have different types");
  }
  Node* n = append(is_list ? "prim::ListConstruct" : "prim::DictConstruct", items, 1, e.line);
  if (is_list)
    n->outputs[0]->type = Type::list(types[0] ? types[0] : Type::tensor());
  else
    n->outputs[0]->type =
        Type::dict(types[0] ? types[0] : Type::string(), types[1] ? types[1] : Type::tensor());
  return SValue::of(n->outputs[0]);
}

SValue Lowerer::lower_unary(const ts::Expr& e) {
  using K = ts::ExprKind;
  SValue v = lower_expr(*e.operands[0]);
  if (e.text == "+") return v;
  if (e.text == "-") return emit_op1("aten::neg", {v}, e.line);
  if (e.text == "~") return emit_op1("aten::bitwise_not", {v}, e.line);
  as_value(v, e.line);
  if (!v.type->is(TypeKind::kBool)) v = emit_op1("aten::Bool", {v}, e.line);
  return emit_op1("aten::__not__", {v}, e.line);
}

SValue Lowerer::lower_binary(const ts::Expr& e) {
  using K = ts::ExprKind;
  SValue a = lower_expr(*e.operands[0]);
  SValue b = lower_expr(*e.operands[1]);
  as_value(a, e.line);
  as_value(b, e.line);
  std::string op = binary_ops().at(e.text);
  bool a_tensor = a.type->is(TypeKind::kTensor), b_tensor = b.type->is(TypeKind::kTensor);
  if (e.text == "//" && (a_tensor || b_tensor)) op = "aten::floor_divide";
  if (!a_tensor && b_tensor && (e.text == "+" || e.text == "*"))
    std::swap(a, b);  // 2 * t == t * 2
  else if (!a_tensor && b_tensor && e.text == "-")
    return emit_op1("aten::rsub", {b, a}, e.line);
  return emit_op1(op, {a, b}, e.line);
}

SValue Lowerer::lower_compare(const ts::Expr& e) {
  using K = ts::ExprKind;
  // a < b < c is (a < b) and (b < c), with b evaluated once.
  std::vector<SValue> operands;
  operands.push_back(lower_expr(*e.operands[0]));
  std::function<SValue(size_t)> chain = [&](size_t i) -> SValue {
    if (operands.size() <= i + 1) operands.push_back(lower_expr(*e.operands[i + 1]));
    const std::string& op = e.compare_ops[i];
    SValue r;
    if (op == "in" || op == "not in") {
      r = emit_op1("aten::__contains__", {operands[i + 1], operands[i]}, e.line);
      if (op == "not in") r = emit_op1("aten::__not__", {r}, e.line);
    } else {
      r = emit_op1(compare_ops().at(op), {operands[i], operands[i + 1]}, e.line);
    }
    if (i + 1 == e.compare_ops.size()) return r;
    Value* cond = as_value(r, e.line);
    return emit_if(
        cond, e.line, [&] { return chain(i + 1); }, [&] { return constant_bool(false); });
  };
  return chain(0);
}

SValue Lowerer::lower_bool_op(const ts::Expr& e) {
  using K = ts::ExprKind;
  bool is_and = e.text == "and";
  std::function<SValue(size_t)> chain = [&](size_t i) -> SValue {
    SValue v = lower_expr(*e.operands[i]);
    as_value(v, e.line);
    if (!v.type->is(TypeKind::kBool)) v = emit_op1("aten::Bool", {v}, e.line);
    if (i + 1 == e.operands.size()) return v;
    if (is_and)
      return emit_if(
          v.value, e.line, [&] { return chain(i + 1); }, [&] { return constant_bool(false); });
    return emit_if(
        v.value, e.line, [&] { return constant_bool(true); }, [&] { return chain(i + 1); });
  };
  return chain(0);
}

SValue Lowerer::lower_if_expr(const ts::Expr& e) {
  using K = ts::ExprKind;
  SValue c = lower_expr(*e.operands[1]);
  as_value(c, e.line);
  if (!c.type->is(TypeKind::kBool)) c = emit_op1("aten::Bool", {c}, e.line);
  return emit_if(
      c.value, e.line, [&] { return lower_expr(*e.operands[0]); },
      [&] { return lower_expr(*e.operands[2]); });
}

SValue Lowerer::lower_annotate(const ts::Expr& e) {
  using K = ts::ExprKind;
  TypePtr t = to_type(e.types[0]);
  const ts::Expr& operand = *e.operands[0];
  if (operand.kind == K::kList || operand.kind == K::kDict) {
    std::vector<Value*> items;
    for (const auto& op : operand.operands) items.push_back(lower_value(*op));
    Node* n =
        append(operand.kind == K::kList ? "prim::ListConstruct" : "prim::DictConstruct", items, 1, e.line);
    n->outputs[0]->type = t;
    return SValue::of(n->outputs[0]);
  }
  SValue v = lower_expr(operand);
  as_value(v, e.line);
  if (v.type->is(TypeKind::kTensor) &&
      (t->is(TypeKind::kNumber) || t->is(TypeKind::kInt) || t->is(TypeKind::kFloat))) {
    // Traced code annotates 0-dim tensors (sizes through NumToTensor) as numbers.
    if (t->is(TypeKind::kInt)) return emit_op1("aten::Int", {v}, e.line);
    if (t->is(TypeKind::kFloat)) return emit_op1("aten::Float", {v}, e.line);
    if (registry_.has("aten::ScalarImplicit")) return emit_op1("aten::ScalarImplicit", {v}, e.line);
    bool floating = v.type->dtype && (*v.type->dtype == DType::kFloat32 || *v.type->dtype == DType::kFloat64);
    return emit_op1(floating ? "aten::Float" : "aten::Int", {v}, e.line);
  }
  if (type_accepts(*t, *v.type, false) && !v.type->is(TypeKind::kAny)) return v;  // keep the narrower type
  return SValue::of(v.value, t);
}

SValue Lowerer::lower_isinstance(const ts::Expr& e) {
  using K = ts::ExprKind;
  SValue v = lower_expr(*e.operands[0]);
  as_value(v, e.line);
  const Type& actual = *v.type;
  bool any_maybe = false;
  for (const ts::TypeExpr& te : e.types) {
    TypePtr t = to_type(te);
    if (t->is(TypeKind::kAny) || actual.is(TypeKind::kAny)) {
      any_maybe = true;
      continue;
    }
    if (actual.is(TypeKind::kOptional) && !t->is(TypeKind::kNone) && !t->is(TypeKind::kOptional) &&
        type_accepts(*t, *actual.elem(), false))
      return emit_op1("aten::__isnot__", {v, constant(IValue())},
                      e.line);  // Optional[T] is T unless None
    if (t->kind == actual.kind) return constant_bool(true);
  }
  if (any_maybe)
    error(ErrorKind::kUnsupported, e.line,
          "isinstance on " + actual.str() + " cannot be decided at load time");
  return constant_bool(false);
}

}  // namespace convoy::lowering

namespace convoy::lowering {

// ---- calls --------------------------------------------------------------------------------------

SValue Lowerer::call(const SValue& callee, const ts::Expr& e) {
  std::vector<SValue> args;
  Keywords kwargs;
  for (size_t i = 1; i < e.operands.size(); ++i) args.push_back(lower_expr(*e.operands[i]));
  for (const ts::Keyword& kw : e.keywords) kwargs.emplace_back(kw.name, lower_expr(*kw.value));
  switch (callee.kind) {
    case SValue::Kind::kMethod:
    case SValue::Kind::kModule: {
      // Calling a module is calling its forward().
      std::string method = callee.kind == SValue::Kind::kMethod ? callee.name : "forward";
      const ts::ClassDef& cls = class_of(*callee.object, e.line);
      const ts::FunctionDef* def = cls.find_method(method);
      if (!def)
        error(ErrorKind::kInvalidInput, e.line,
              "module " + printable(callee.object->type_name) + " has no method '" + method + "'");
      auto [file, name] = resolve_qualified(callee.object->type_name, e.line);
      return call_function(*def, *file, callee.object, std::move(args), std::move(kwargs), e.line);
    }
    case SValue::Kind::kNamespace:
      return call_namespace(callee.name, args, kwargs, e.line);
    case SValue::Kind::kBuiltin:
      return call_builtin(callee.name, args, kwargs, e.line);
    case SValue::Kind::kPoisoned:
      error(ErrorKind::kInvalidInput, e.line, callee.name);
    case SValue::Kind::kValue:
      break;
  }
  error(ErrorKind::kInvalidInput, e.line, callee.describe() + " is not callable");
}

SValue Lowerer::call_namespace(const std::string& path, const std::vector<SValue>& args,
                               const Keywords& kwargs, int line) {
  auto starts = [&](const char* prefix) { return path.rfind(prefix, 0) == 0; };
  std::string leaf = path.substr(path.rfind('.') + 1);
  if (starts("__torch__.")) return call_qualified(path, args, kwargs, line);
  std::string op;
  if (path == "torch.device" && args.size() == 1 && kwargs.empty() && args[0].is_value()) {
    auto c = constant_of(args[0].value);
    if (c && c->is_string()) return constant(IValue(Device{c->to_string()}));
  }
  if (starts("torch.") || starts("math.")) {
    op = "aten::" + leaf;
  } else if (starts("ops.")) {
    size_t dot = path.find('.', 4);
    if (dot == std::string::npos || path.find('.', dot + 1) != std::string::npos)
      error(ErrorKind::kUnsupported, line, "call of '" + path + "' is not supported");
    op = path.substr(4, dot - 4) + "::" + leaf;
  } else {
    error(ErrorKind::kUnsupported, line, "call of '" + path + "' is not supported");
  }
  if (op == "aten::format" && !registry_.has(op)) return format_string(args, kwargs, line);
  if (op == "prim::RaiseException") {
    std::vector<Value*> inputs;
    for (const SValue& a : args) inputs.push_back(as_value(a, line));
    append(op, inputs, 0, line);
    return constant(IValue());
  }
  return emit_op1(op, args, line, kwargs);
}

SValue Lowerer::format_string(const std::vector<SValue>& args, const Keywords& kwargs, int line) {
  // str.format with "{}" and "{N}" fields (what TorchScript's own aten::format accepts), built
  // from aten::str and string concatenation; with constant arguments it folds to a constant.
  auto fmt = !args.empty() && args[0].is_value() ? constant_of(args[0].value) : std::nullopt;
  if (!fmt || !fmt->is_string() || !kwargs.empty())
    error(ErrorKind::kUnsupported, line, "format() needs a constant format string and no keyword arguments");
  const std::string& f = fmt->to_string();
  std::vector<SValue> parts;
  std::string literal;
  size_t next_field = 1;
  for (size_t i = 0; i < f.size(); ++i) {
    char c = f[i];
    if ((c == '{' || c == '}') && i + 1 < f.size() && f[i + 1] == c) {
      literal += c;
      ++i;
      continue;
    }
    if (c == '}') error(ErrorKind::kInvalidInput, line, "single '}' in format string \"" + f + "\"");
    if (c != '{') {
      literal += c;
      continue;
    }
    size_t close = f.find('}', i);
    if (close == std::string::npos)
      error(ErrorKind::kInvalidInput, line, "unclosed '{' in format string \"" + f + "\"");
    std::string field = f.substr(i + 1, close - i - 1);
    size_t index = next_field++;
    if (!field.empty()) {
      index = 0;
      for (char d : field) {
        if (!std::isdigit(static_cast<unsigned char>(d)) || index > 1000)
          error(ErrorKind::kUnsupported, line,
                "format field {" + field + "} is not supported (only {} and {N})");
        index = index * 10 + static_cast<size_t>(d - '0');
      }
      ++index;  // args[0] is the format string
    }
    if (index >= args.size())
      error(ErrorKind::kInvalidInput, line,
            "format string \"" + f + "\" needs more arguments than the " + std::to_string(args.size() - 1) +
                " given");
    if (!literal.empty()) parts.push_back(constant(IValue(literal)));
    literal.clear();
    const SValue& a = args[index];
    as_value(a, line);
    parts.push_back(a.type->is(TypeKind::kString) ? a : emit_op1("aten::str", {a}, line));
    i = close;
  }
  if (!literal.empty() || parts.empty()) parts.push_back(constant(IValue(literal)));
  SValue result = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) result = emit_op1("aten::add", {result, parts[i]}, line);
  return result;
}

SValue Lowerer::call_builtin(const std::string& name, const std::vector<SValue>& args, const Keywords& kwargs,
                             int line) {
  auto arity = [&](size_t lo, size_t hi) {
    if (args.size() < lo || args.size() > hi || !kwargs.empty())
      error(ErrorKind::kInvalidInput, line,
            name + "() takes " + std::to_string(lo) + (hi != lo ? " to " + std::to_string(hi) : "") +
                " positional arguments");
  };
  if (name == "getattr" || name == "hasattr") {
    arity(2, name == "getattr" ? 3 : 2);
    auto attr = args[1].is_value() ? constant_of(args[1].value) : std::nullopt;
    if (!attr || !attr->is_string())
      error(ErrorKind::kInvalidInput, line, name + "() needs a constant string attribute name");
    if (args[0].kind != SValue::Kind::kModule)
      error(ErrorKind::kUnsupported, line,
            name + "() is only supported on modules, not on " + args[0].describe());
    const Object& obj = *args[0].object;
    bool present = obj.find(attr->to_string()) != nullptr;
    if (!present) {
      const ts::ClassDef& cls = class_of(obj, line);
      const ts::ClassAttribute* a = cls.find_attribute(attr->to_string());
      present =
          (a && a->value) || cls.class_values.count(attr->to_string()) || cls.find_method(attr->to_string());
    }
    if (name == "hasattr") return constant_bool(present);
    if (!present && args.size() == 3) return args[2];
    return module_attribute(args[0].object, attr->to_string(), line);
  }
  if (name == "range")
    error(ErrorKind::kUnsupported, line, "range() is only supported as the iterable of a for loop");
  if (name == "print") return constant(IValue());  // output of the model is what counts
  for (const SValue& a : args) as_value(a, line);
  for (const auto& [k, v] : kwargs) as_value(v, line);
  if (name == "int" || name == "float" || name == "bool" || name == "str") {
    arity(1, 1);
    const SValue& x = args[0];
    TypeKind same = name == "int"     ? TypeKind::kInt
                    : name == "float" ? TypeKind::kFloat
                    : name == "bool"  ? TypeKind::kBool
                                      : TypeKind::kString;
    if (x.type->is(same)) return x;
    if (name == "float") {
      // float("inf"), float("-inf"), float("nan") are how Python spells those constants.
      auto c = constant_of(x.value);
      if (c && c->is_string()) {
        const std::string& s = c->to_string();
        if (s == "inf" || s == "+inf") return constant(IValue(std::numeric_limits<double>::infinity()));
        if (s == "-inf") return constant(IValue(-std::numeric_limits<double>::infinity()));
        if (s == "nan") return constant(IValue(std::numeric_limits<double>::quiet_NaN()));
      }
    }
    static const std::map<std::string, std::string> kOps = {
        {"int", "aten::Int"}, {"float", "aten::Float"}, {"bool", "aten::Bool"}, {"str", "aten::str"}};
    return emit_op1(kOps.at(name), args, line);
  }
  if (name == "len") return emit_op1("aten::len", args, line, kwargs);
  if (name == "list") return emit_op1("aten::list", args, line, kwargs);
  if (name == "divmod") return emit_op1("aten::divmod", args, line, kwargs);
  bool any_tensor = false;
  for (const SValue& a : args) any_tensor = any_tensor || a.type->is(TypeKind::kTensor);
  if (name == "min" || name == "max" || name == "abs")
    return emit_op1((any_tensor ? "aten::" : "prim::") + name, args, line, kwargs);
  error(ErrorKind::kUnsupported, line, "builtin '" + name + "' is not supported");
}

}  // namespace convoy::lowering
