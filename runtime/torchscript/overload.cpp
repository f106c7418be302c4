#include "runtime/torchscript/overload.h"

#include <cctype>
#include <map>

#include "runtime/error.h"
#include "runtime/graph/ir.h"

namespace convoy::lowering {

namespace {

bool is_list_of_int(const Type& t) {
  const Type* x = &t;
  if (x->is(TypeKind::kOptional)) x = x->elem().get();
  return x->is(TypeKind::kList) && !x->contained.empty() &&
         (x->elem()->is(TypeKind::kInt) || x->elem()->is(TypeKind::kFloat));
}

// ---- type variables in schemas ----------------------------------------------------------------
// The registry's parsed types turn "t" into Any; binding `t` needs the declared text
// (Argument::type_text).

bool is_type_var(const std::string& name) {
  if (name == "T" || name == "K" || name == "V") return true;
  if (name.empty() || name[0] != 't') return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return name == "t" || std::isdigit(static_cast<unsigned char>(name[1])) ||
         std::isupper(static_cast<unsigned char>(name[1]));
}

// A schema type with its variables kept: "t", "t[]", "Dict(str, t)", "t?".
struct TypePattern {
  enum Kind { kVar, kConcrete, kList, kOptional, kDict, kTuple } kind = kConcrete;
  std::string var;
  TypePtr concrete;
  std::vector<TypePattern> sub;
};

class PatternParser {
 public:
  explicit PatternParser(const std::string& text) : s_(text) {}
  TypePattern parse() {
    skip();
    TypePattern p;
    if (pos_ < s_.size() && s_[pos_] == '(') {  // a tuple "(t, t)"
      ++pos_;
      p.kind = TypePattern::kTuple;
      while (true) {
        skip();
        if (pos_ >= s_.size() || s_[pos_] == ')') break;
        p.sub.push_back(parse());
        skip();
        if (pos_ < s_.size() && s_[pos_] == ',') ++pos_;
      }
      if (pos_ < s_.size()) ++pos_;
      return suffixes(std::move(p));
    }
    size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '.'))
      ++pos_;
    std::string name = s_.substr(start, pos_ - start);
    // Containers in schema notation "Dict(str, t)" or annotation notation "Dict[str, t]",
    // "List[t]", "Optional[t]", "Tuple[t, t]".
    bool paren = pos_ < s_.size() && s_[pos_] == '(' && name == "Dict";
    bool bracket = pos_ < s_.size() && s_[pos_] == '[' &&
                   (name == "Dict" || name == "List" || name == "Optional" || name == "Tuple");
    if (paren || bracket) {
      char close = paren ? ')' : ']';
      ++pos_;
      p.kind = name == "Dict"       ? TypePattern::kDict
               : name == "List"     ? TypePattern::kList
               : name == "Optional" ? TypePattern::kOptional
                                    : TypePattern::kTuple;
      while (true) {
        skip();
        if (pos_ >= s_.size() || s_[pos_] == close) break;
        p.sub.push_back(parse());
        skip();
        if (pos_ < s_.size() && s_[pos_] == ',') ++pos_;
      }
      if (pos_ < s_.size()) ++pos_;
      size_t want = p.kind == TypePattern::kDict ? 2 : p.kind == TypePattern::kTuple ? p.sub.size() : 1;
      if (p.sub.size() != want) {
        p = TypePattern();
        p.concrete = Type::any();
      }
      return suffixes(std::move(p));
    }
    if (is_type_var(name)) {
      p.kind = TypePattern::kVar;
      p.var = name;
    } else {
      p.kind = TypePattern::kConcrete;
      try {
        p.concrete = parse_type(name.empty() ? "Any" : name);
      } catch (const Error&) {
        p.concrete = Type::any();
      }
    }
    return suffixes(std::move(p));
  }

 private:
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void skip_alias() {
    skip();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      size_t close = s_.find(')', pos_);
      pos_ = close == std::string::npos ? s_.size() : close + 1;
    }
  }
  TypePattern suffixes(TypePattern p) {
    while (true) {
      skip_alias();
      if (pos_ < s_.size() && s_[pos_] == '[') {
        while (pos_ < s_.size() && s_[pos_] != ']') ++pos_;
        if (pos_ < s_.size()) ++pos_;
        TypePattern list;
        list.kind = TypePattern::kList;
        list.sub.push_back(std::move(p));
        p = std::move(list);
      } else if (pos_ < s_.size() && s_[pos_] == '?') {
        ++pos_;
        TypePattern opt;
        opt.kind = TypePattern::kOptional;
        opt.sub.push_back(std::move(p));
        p = std::move(opt);
      } else {
        return p;
      }
    }
  }
  const std::string& s_;
  size_t pos_ = 0;
};

using Bindings = std::map<std::string, TypePtr>;

void bind_type_vars(const TypePattern& p, const TypePtr& actual, Bindings& b) {
  if (!actual || actual->is(TypeKind::kAny)) return;
  switch (p.kind) {
    case TypePattern::kVar:
      if (!b.count(p.var)) b[p.var] = actual;
      return;
    case TypePattern::kList:
      if (actual->is(TypeKind::kList) && !actual->contained.empty())
        bind_type_vars(p.sub[0], actual->elem(), b);
      return;
    case TypePattern::kOptional:
      if (actual->is(TypeKind::kNone)) return;
      bind_type_vars(p.sub[0], actual->is(TypeKind::kOptional) ? actual->elem() : actual, b);
      return;
    case TypePattern::kDict:
      if (actual->is(TypeKind::kDict) && actual->contained.size() == 2) {
        bind_type_vars(p.sub[0], actual->contained[0], b);
        bind_type_vars(p.sub[1], actual->contained[1], b);
      }
      return;
    case TypePattern::kTuple:
      if (actual->is(TypeKind::kTuple) && actual->contained.size() == p.sub.size())
        for (size_t i = 0; i < p.sub.size(); ++i) bind_type_vars(p.sub[i], actual->contained[i], b);
      return;
    case TypePattern::kConcrete:
      return;
  }
}

TypePtr substitute_type_vars(const TypePattern& p, const Bindings& b) {
  switch (p.kind) {
    case TypePattern::kVar: {
      auto it = b.find(p.var);
      return it == b.end() ? Type::any() : it->second;
    }
    case TypePattern::kList:
      return Type::list(substitute_type_vars(p.sub[0], b));
    case TypePattern::kOptional:
      return Type::optional(substitute_type_vars(p.sub[0], b));
    case TypePattern::kDict:
      return Type::dict(substitute_type_vars(p.sub[0], b), substitute_type_vars(p.sub[1], b));
    case TypePattern::kTuple: {
      std::vector<TypePtr> elems;
      for (const auto& s : p.sub) elems.push_back(substitute_type_vars(s, b));
      return Type::tuple(std::move(elems));
    }
    case TypePattern::kConcrete:
      return p.concrete;
  }
  return Type::any();
}

bool contains_any(const Type& t) {
  if (t.is(TypeKind::kAny)) return true;
  for (const auto& c : t.contained)
    if (contains_any(*c)) return true;
  return false;
}

}  // namespace

std::optional<OverloadMatch> match_schema(const OpOverload& op, const std::vector<TypePtr>& positional,
                                          const std::vector<std::pair<std::string, TypePtr>>& keywords,
                                          bool allow_conversions) {
  const auto& formals = op.schema.arguments;
  size_t positional_capable = 0;
  while (positional_capable < formals.size() && !formals[positional_capable].kwarg_only) ++positional_capable;
  if (positional.size() > positional_capable) return std::nullopt;
  OverloadMatch m;
  m.op = &op;
  m.sources.resize(formals.size());
  m.arg_types.resize(formals.size());
  std::vector<bool> keyword_used(keywords.size(), false);
  for (size_t i = 0; i < formals.size(); ++i) {
    const Argument& formal = formals[i];
    ArgSource src;
    TypePtr actual;
    if (i < positional.size()) {
      src.kind = ArgSource::kPositional;
      src.index = i;
      actual = positional[i];
    } else {
      for (size_t k = 0; k < keywords.size(); ++k) {
        if (keywords[k].first == formal.name) {
          src.kind = ArgSource::kKeyword;
          src.index = k;
          actual = keywords[k].second;
          keyword_used[k] = true;
          break;
        }
      }
      if (!actual) {
        if (!formal.default_value) return std::nullopt;
        src.kind = ArgSource::kDefault;
        m.sources[i] = src;
        m.arg_types[i] = type_of(*formal.default_value);
        continue;
      }
    }
    if (!type_accepts(*formal.type, *actual, false)) {
      if (!allow_conversions) return std::nullopt;
      if (type_accepts(*formal.type, *actual, true)) {
        ++m.conversions;
      } else if (formal.fixed_list_size > 0 && is_list_of_int(*formal.type) &&
                 (actual->is(TypeKind::kInt) || actual->is(TypeKind::kFloat))) {
        src.repeat_scalar = true;
        ++m.conversions;
      } else {
        return std::nullopt;
      }
    }
    m.sources[i] = src;
    m.arg_types[i] = actual;
  }
  for (bool used : keyword_used)
    if (!used) return std::nullopt;
  return m;
}

std::optional<OverloadMatch> resolve_overload(const std::vector<const OpOverload*>& overloads,
                                              const std::vector<TypePtr>& positional,
                                              const std::vector<std::pair<std::string, TypePtr>>& keywords) {
  for (const OpOverload* op : overloads)
    if (auto m = match_schema(*op, positional, keywords, false)) return m;
  for (const OpOverload* op : overloads)
    if (auto m = match_schema(*op, positional, keywords, true)) return m;
  return std::nullopt;
}

std::vector<TypePtr> schema_result_types(const OverloadMatch& match) {
  const Schema& schema = match.op->schema;
  std::vector<TypePtr> out;
  bool needs_binding = false;
  for (const Argument& r : schema.returns) {
    out.push_back(r.type);
    needs_binding = needs_binding || contains_any(*r.type);
  }
  if (!needs_binding) return out;
  Bindings bindings;
  for (size_t i = 0; i < schema.arguments.size() && i < match.arg_types.size(); ++i)
    bind_type_vars(PatternParser(schema.arguments[i].type_text).parse(), match.arg_types[i], bindings);
  for (size_t i = 0; i < out.size(); ++i)
    if (contains_any(*out[i]))
      out[i] = substitute_type_vars(PatternParser(schema.returns[i].type_text).parse(), bindings);
  return out;
}

std::string describe_call_types(const std::vector<TypePtr>& positional,
                                const std::vector<std::pair<std::string, TypePtr>>& keywords) {
  std::string s = "(";
  for (size_t i = 0; i < positional.size(); ++i) {
    if (i) s += ", ";
    s += positional[i]->str();
  }
  for (size_t i = 0; i < keywords.size(); ++i) {
    if (i || !positional.empty()) s += ", ";
    s += keywords[i].first + "=" + keywords[i].second->str();
  }
  return s + ")";
}

}  // namespace convoy::lowering
