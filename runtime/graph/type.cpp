#include "runtime/graph/type.h"

#include <cctype>

#include "runtime/error.h"

namespace convoy {

namespace {

TypePtr make(TypeKind kind, std::vector<TypePtr> contained = {}) {
  auto t = std::make_shared<Type>();
  t->kind = kind;
  t->contained = std::move(contained);
  return t;
}

TypePtr singleton(TypeKind kind) {
  // One shared instance per simple kind; types are immutable once built.
  static const TypePtr kTypes[] = {make(TypeKind::kTensor), make(TypeKind::kInt),      make(TypeKind::kFloat),
                                   make(TypeKind::kBool),   make(TypeKind::kNumber),   make(TypeKind::kNone),
                                   make(TypeKind::kString), make(TypeKind::kDevice),   make(TypeKind::kList),
                                   make(TypeKind::kTuple),  make(TypeKind::kOptional), make(TypeKind::kDict),
                                   make(TypeKind::kAny)};
  return kTypes[static_cast<int>(kind)];
}

}  // namespace

TypePtr Type::tensor() { return singleton(TypeKind::kTensor); }
TypePtr Type::tensor(std::optional<DType> dtype, std::optional<Shape> shape) {
  if (!dtype && !shape) return tensor();
  auto t = std::make_shared<Type>();
  t->kind = TypeKind::kTensor;
  t->dtype = dtype;
  t->shape = std::move(shape);
  return t;
}
TypePtr Type::integer() { return singleton(TypeKind::kInt); }
TypePtr Type::floating() { return singleton(TypeKind::kFloat); }
TypePtr Type::boolean() { return singleton(TypeKind::kBool); }
TypePtr Type::number() { return singleton(TypeKind::kNumber); }
TypePtr Type::none() { return singleton(TypeKind::kNone); }
TypePtr Type::string() { return singleton(TypeKind::kString); }
TypePtr Type::device() { return singleton(TypeKind::kDevice); }
TypePtr Type::any() { return singleton(TypeKind::kAny); }
TypePtr Type::list(TypePtr elem) { return make(TypeKind::kList, {std::move(elem)}); }
TypePtr Type::tuple(std::vector<TypePtr> elems) { return make(TypeKind::kTuple, std::move(elems)); }
TypePtr Type::optional(TypePtr elem) {
  if (elem->is(TypeKind::kOptional) || elem->is(TypeKind::kNone) || elem->is(TypeKind::kAny)) return elem;
  return make(TypeKind::kOptional, {std::move(elem)});
}
TypePtr Type::dict(TypePtr key, TypePtr value) {
  return make(TypeKind::kDict, {std::move(key), std::move(value)});
}

std::string Type::str() const {
  switch (kind) {
    case TypeKind::kTensor: {
      std::string s = "Tensor";
      if (dtype || shape) {
        s += "(";
        if (dtype) s += dtype_name(*dtype);
        if (shape) {
          s += "[";
          for (size_t i = 0; i < shape->size(); ++i) {
            if (i) s += ", ";
            s += (*shape)[i] < 0 ? std::string("?") : std::to_string((*shape)[i]);
          }
          s += "]";
        }
        s += ")";
      }
      return s;
    }
    case TypeKind::kInt:
      return "int";
    case TypeKind::kFloat:
      return "float";
    case TypeKind::kBool:
      return "bool";
    case TypeKind::kNumber:
      return "Scalar";
    case TypeKind::kNone:
      return "None";
    case TypeKind::kString:
      return "str";
    case TypeKind::kDevice:
      return "Device";
    case TypeKind::kList:
      return contained.empty() ? "list" : elem()->str() + "[]";
    case TypeKind::kOptional:
      return elem()->str() + "?";
    case TypeKind::kDict:
      return "Dict(" + contained[0]->str() + ", " + contained[1]->str() + ")";
    case TypeKind::kTuple: {
      std::string s = "(";
      for (size_t i = 0; i < contained.size(); ++i) {
        if (i) s += ", ";
        s += contained[i]->str();
      }
      return s + (contained.size() == 1 ? ",)" : ")");
    }
    case TypeKind::kAny:
      return "Any";
  }
  return "?";
}

bool type_accepts(const Type& formal, const Type& actual, bool allow_conversions) {
  if (formal.is(TypeKind::kAny) || actual.is(TypeKind::kAny)) return true;
  switch (formal.kind) {
    case TypeKind::kOptional:
      if (actual.is(TypeKind::kNone)) return true;
      if (actual.is(TypeKind::kOptional))
        return type_accepts(*formal.elem(), *actual.elem(), allow_conversions);
      return type_accepts(*formal.elem(), actual, allow_conversions);
    case TypeKind::kFloat:
      return actual.is(TypeKind::kFloat) || (allow_conversions && actual.is(TypeKind::kInt));
    case TypeKind::kNumber:
      if (actual.is(TypeKind::kNumber)) return true;
      return allow_conversions &&
             (actual.is(TypeKind::kInt) || actual.is(TypeKind::kFloat) || actual.is(TypeKind::kBool));
    case TypeKind::kList:
      if (!actual.is(TypeKind::kList)) return false;
      if (formal.contained.empty() || actual.contained.empty()) return true;
      // A list literal's element type may be Optional[T] where T[] is expected and vice versa
      // (e.g. Tensor?[] for aten::index); element-wise acceptance decides.
      return type_accepts(*formal.elem(), *actual.elem(), allow_conversions);
    case TypeKind::kTuple:
      if (!actual.is(TypeKind::kTuple)) return false;
      if (formal.contained.empty()) return true;
      if (formal.contained.size() != actual.contained.size()) return false;
      for (size_t i = 0; i < formal.contained.size(); ++i)
        if (!type_accepts(*formal.contained[i], *actual.contained[i], allow_conversions)) return false;
      return true;
    case TypeKind::kDict:
      return actual.is(TypeKind::kDict);
    default:
      return formal.kind == actual.kind;
  }
}

namespace {

class TypeParser {
 public:
  explicit TypeParser(const std::string& text) : text_(text) {}

  TypePtr parse_all() {
    TypePtr t = parse();
    skip_space();
    CONVOY_CHECK(pos_ == text_.size(), "cannot parse type '", text_, "': unexpected '", text_.substr(pos_),
                 "'");
    return t;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    CONVOY_CHECK(eat(c), "cannot parse type '", text_, "': expected '", c, "' at offset ", pos_);
  }
  std::string name() {
    skip_space();
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
                                   text_[pos_] == '_' || text_[pos_] == '.'))
      ++pos_;
    CONVOY_CHECK(pos_ > start, "cannot parse type '", text_, "': expected a type name at offset ", start);
    return text_.substr(start, pos_ - start);
  }

  TypePtr parse() {
    std::string n = name();
    TypePtr t;
    bool schema_dict = false;
    if (n == "Dict") {
      skip_space();
      schema_dict = pos_ < text_.size() && text_[pos_] == '(';  // schema notation "Dict(str, t)"
    }
    if (n == "List" || n == "Optional" || n == "Tuple" || n == "Dict") {
      std::vector<TypePtr> args;
      char close = schema_dict ? ')' : ']';
      expect(schema_dict ? '(' : '[');
      if (!eat(close)) {
        do {
          // "Tuple[()]" is the empty tuple.
          if (eat('(')) {
            expect(')');
            continue;
          }
          args.push_back(parse());
        } while (eat(','));
        expect(close);
      }
      if (n == "List") {
        CONVOY_CHECK(args.size() == 1, "List[] takes one type in '", text_, "'");
        t = Type::list(args[0]);
      } else if (n == "Optional") {
        CONVOY_CHECK(args.size() == 1, "Optional[] takes one type in '", text_, "'");
        t = Type::optional(args[0]);
      } else if (n == "Dict") {
        CONVOY_CHECK(args.size() == 2, "Dict[] takes two types in '", text_, "'");
        t = Type::dict(args[0], args[1]);
      } else {
        t = Type::tuple(args);
      }
    } else {
      t = base_type(n);
    }
    // Schema alias annotations: "Tensor(a!)", "t(a -> *)".
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      size_t close = text_.find(')', pos_);
      CONVOY_CHECK(close != std::string::npos, "unbalanced '(' in type '", text_, "'");
      pos_ = close + 1;
    }
    // Schema suffixes: "int[]", "int[2]", "Tensor?", "Tensor?[]", "int[]?".
    while (true) {
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == '[') {
        ++pos_;
        while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
        expect(']');
        t = Type::list(t);
        // Alias annotation on a list element type ("Tensor(a)[]") handled above; one after "[]" too.
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == '(') {
          size_t close = text_.find(')', pos_);
          CONVOY_CHECK(close != std::string::npos, "unbalanced '(' in type '", text_, "'");
          pos_ = close + 1;
        }
      } else if (pos_ < text_.size() && text_[pos_] == '?') {
        ++pos_;
        t = Type::optional(t);
      } else {
        break;
      }
    }
    return t;
  }

  TypePtr base_type(const std::string& n) {
    if (n == "Tensor") return Type::tensor();
    if (n == "int" || n == "ScalarType" || n == "Layout" || n == "MemoryFormat" || n == "SymInt")
      return Type::integer();
    if (n == "float") return Type::floating();
    if (n == "bool") return Type::boolean();
    if (n == "Scalar" || n == "number") return Type::number();
    if (n == "str") return Type::string();
    if (n == "None" || n == "NoneType") return Type::none();
    if (n == "Device") return Type::device();
    // Type variables in schemas ("t", "t1"), "Any", class types ("__torch__.X"), Generator, Storage.
    return Type::any();
  }

  const std::string& text_;
  size_t pos_ = 0;
};

}  // namespace

TypePtr parse_type(const std::string& text) { return TypeParser(text).parse_all(); }

}  // namespace convoy
