#include "runtime/ops/registry.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "runtime/error.h"

namespace convoy {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Splits on commas that are not nested in (), [] or quotes.
std::vector<std::string> split_top_level(const std::string& s) {
  std::vector<std::string> parts;
  int depth = 0;
  char quote = 0;
  std::string cur;
  for (char c : s) {
    if (quote) {
      cur += c;
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') quote = c;
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) parts.push_back(trim(cur));
  return parts;
}

// Named constants that appear as defaults in PyTorch schemas.
bool named_default(const std::string& text, IValue& out) {
  static const std::pair<const char*, int64_t> kNames[] = {
      {"contiguous_format", 0},
      {"preserve_format", 1},
      {"channels_last", 2},
      {"channels_last_3d", 3},
      {"strided", 0},
      {"long", 4},
      {"float", 6},
      {"Mean", 1},
      {"Sum", 2},
  };
  for (const auto& [name, value] : kNames) {
    if (text == name) {
      out = IValue(value);
      return true;
    }
  }
  return false;
}

IValue parse_literal(const std::string& raw, const std::string& schema) {
  std::string text = trim(raw);
  CONVOY_CHECK_KIND(kInternal, !text.empty(), "schema '", schema, "': empty default value");
  if (text == "None") return IValue();
  if (text == "True") return IValue(true);
  if (text == "False") return IValue(false);
  if (text.front() == '"' || text.front() == '\'') {
    CONVOY_CHECK_KIND(kInternal, text.size() >= 2 && text.back() == text.front(), "schema '", schema,
                      "': bad string default ", text);
    return IValue(text.substr(1, text.size() - 2));
  }
  if (text.front() == '[') {
    CONVOY_CHECK_KIND(kInternal, text.back() == ']', "schema '", schema, "': bad list default ", text);
    IValueList items;
    for (const std::string& part : split_top_level(text.substr(1, text.size() - 2)))
      items.push_back(parse_literal(part, schema));
    return IValue::list(std::move(items));
  }
  IValue named;
  if (named_default(text, named)) return named;
  if (text == "inf") return IValue(std::numeric_limits<double>::infinity());
  if (text == "-inf") return IValue(-std::numeric_limits<double>::infinity());
  bool is_float = text.find_first_of(".eE") != std::string::npos && text.find("0x") == std::string::npos;
  char* end = nullptr;
  if (is_float) {
    double d = std::strtod(text.c_str(), &end);
    CONVOY_CHECK_KIND(kInternal, end && *end == '\0', "schema '", schema, "': bad default ", text);
    return IValue(d);
  }
  long long v = std::strtoll(text.c_str(), &end, 0);
  CONVOY_CHECK_KIND(kInternal, end && *end == '\0', "schema '", schema, "': bad default ", text);
  return IValue(static_cast<int64_t>(v));
}

// Adjusts a parsed default to its argument's type: `float eps=1` is 1.0, `int[2] stride=1` is [1, 1].
IValue coerce_default(IValue value, const Argument& arg) {
  const Type* t = arg.type.get();
  if (t->is(TypeKind::kOptional)) {
    if (value.is_none()) return value;
    t = t->elem().get();
  }
  if (t->is(TypeKind::kFloat) && value.is_int()) return IValue(static_cast<double>(value.to_int()));
  if (t->is(TypeKind::kList) && (value.is_int() || value.is_double() || value.is_bool())) {
    int n = arg.fixed_list_size > 0 ? arg.fixed_list_size : 1;
    return IValue::list(IValueList(static_cast<size_t>(n), value));
  }
  if (t->is(TypeKind::kList) && value.is_list() && t->elem()->is(TypeKind::kFloat)) {
    IValueList items;
    for (const IValue& v : value.to_list()) items.emplace_back(v.to_double());
    return IValue::list(std::move(items));
  }
  return value;
}

Argument parse_argument(const std::string& text, const std::string& schema, bool is_return, size_t index) {
  Argument arg;
  std::string decl = text;
  std::string def;
  // The default is after the first '=' outside brackets.
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (c == '=' && depth == 0) {
      decl = trim(text.substr(0, i));
      def = trim(text.substr(i + 1));
      break;
    }
  }
  // The name is the last identifier, unless the declaration is only a type (returns may be unnamed).
  std::string type_text = decl;
  size_t sp = decl.find_last_of(" \t");
  if (sp != std::string::npos) {
    std::string last = decl.substr(sp + 1);
    bool ident = !last.empty() && (std::isalpha(static_cast<unsigned char>(last[0])) || last[0] == '_');
    for (char c : last) ident = ident && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    // Alias annotations may contain spaces ("Tensor(a -> *)"): only split outside parentheses.
    int d = 0;
    for (size_t i = 0; i < sp; ++i) {
      if (decl[i] == '(') ++d;
      if (decl[i] == ')') --d;
    }
    if (ident && d == 0) {
      arg.name = last;
      type_text = trim(decl.substr(0, sp));
    }
  }
  if (arg.name.empty()) {
    CONVOY_CHECK_KIND(kInternal, is_return, "schema '", schema, "': argument '", text, "' has no name");
    arg.name = "result" + std::to_string(index);
  }
  // "int[2]": remember the fixed size for single-int broadcasting.
  size_t lb = type_text.find('[');
  if (lb != std::string::npos && lb + 1 < type_text.size() &&
      std::isdigit(static_cast<unsigned char>(type_text[lb + 1])))
    arg.fixed_list_size = std::atoi(type_text.c_str() + lb + 1);
  arg.type_text = type_text;
  try {
    arg.type = parse_type(type_text);
  } catch (const Error& e) {
    fail(ErrorKind::kInternal, "schema '", schema, "': ", e.what());
  }
  if (!def.empty()) arg.default_value = coerce_default(parse_literal(def, schema), arg);
  return arg;
}

}  // namespace

Schema parse_schema(const std::string& text) {
  Schema schema;
  schema.text = text;
  size_t open = text.find('(');
  CONVOY_CHECK_KIND(kInternal, open != std::string::npos, "schema '", text, "': missing '('");
  std::string qualified = trim(text.substr(0, open));
  CONVOY_CHECK_KIND(kInternal, qualified.find("::") != std::string::npos, "schema '", text,
                    "': name needs a namespace (aten::, prim::)");
  size_t dot = qualified.find('.', qualified.find("::"));
  schema.name = qualified.substr(0, dot);
  if (dot != std::string::npos) schema.overload = qualified.substr(dot + 1);
  // Find the ')' matching the argument list's '('.
  int depth = 0;
  size_t close = std::string::npos;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '(' || text[i] == '[') ++depth;
    if (text[i] == ')' || text[i] == ']') {
      if (--depth == 0) {
        close = i;
        break;
      }
    }
  }
  CONVOY_CHECK_KIND(kInternal, close != std::string::npos, "schema '", text, "': unbalanced parentheses");
  bool kwarg_only = false;
  size_t index = 0;
  for (const std::string& part : split_top_level(text.substr(open + 1, close - open - 1))) {
    if (part == "*") {
      kwarg_only = true;
      continue;
    }
    Argument arg = parse_argument(part, text, false, index++);
    arg.kwarg_only = kwarg_only;
    schema.arguments.push_back(std::move(arg));
  }
  std::string rest = trim(text.substr(close + 1));
  CONVOY_CHECK_KIND(kInternal, rest.rfind("->", 0) == 0, "schema '", text, "': missing '->'");
  std::string ret = trim(rest.substr(2));
  index = 0;
  if (!ret.empty() && ret.front() == '(' && ret.back() == ')') {
    for (const std::string& part : split_top_level(ret.substr(1, ret.size() - 2)))
      schema.returns.push_back(parse_argument(part, text, true, index++));
  } else if (!ret.empty()) {
    schema.returns.push_back(parse_argument(ret, text, true, 0));
  }
  return schema;
}

const OpOverload& OpRegistry::add(const std::string& schema_text, Kernel kernel, InferFn infer) {
  Schema schema = parse_schema(schema_text);
  CONVOY_CHECK_KIND(kInternal, kernel != nullptr, "op ", schema.full_name(), " registered without a kernel");
  auto& list = ops_[schema.name];
  for (const auto& existing : list)
    CONVOY_CHECK_KIND(kInternal, existing->schema.overload != schema.overload, "op ", schema.full_name(),
                      " registered twice");
  auto op = std::make_unique<OpOverload>();
  op->schema = std::move(schema);
  op->kernel = std::move(kernel);
  op->infer = std::move(infer);
  list.push_back(std::move(op));
  return *list.back();
}

std::vector<const OpOverload*> OpRegistry::overloads(const std::string& name) const {
  std::vector<const OpOverload*> out;
  auto it = ops_.find(name);
  if (it == ops_.end()) return out;
  for (const auto& op : it->second) out.push_back(op.get());
  return out;
}

const OpOverload* OpRegistry::find(const std::string& name, const std::string& overload) const {
  auto it = ops_.find(name);
  if (it == ops_.end()) return nullptr;
  for (const auto& op : it->second)
    if (op->schema.overload == overload) return op.get();
  return nullptr;
}

std::vector<std::string> OpRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, list] : ops_) out.push_back(name);
  return out;
}

size_t OpRegistry::size() const {
  size_t n = 0;
  for (const auto& [name, list] : ops_) n += list.size();
  return n;
}

std::string OpRegistry::opset_hash() const {
  std::vector<std::string> texts;
  for (const auto& [name, list] : ops_)
    for (const auto& op : list) texts.push_back(op->schema.text);
  std::sort(texts.begin(), texts.end());
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const std::string& t : texts) {
    for (unsigned char c : t) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

OpRegistry make_default_registry() {
  OpRegistry registry;
  register_prim_ops(registry);
  register_elementwise_ops(registry);
  register_reduction_ops(registry);
  register_shape_ops(registry);
  register_nn_ops(registry);
  register_sequence_ops(registry);
  return registry;
}

}  // namespace convoy
