#include "runtime/torchscript/parser.h"

#include <cstdint>
#include <limits>

#include "runtime/error.h"
#include "runtime/printable.h"
#include "runtime/torchscript/lexer.h"

namespace convoy::ts {

std::string TypeExpr::str() const {
  std::string s = name;
  if (has_brackets) {
    s += "[";
    if (args.empty()) s += "()";
    for (size_t i = 0; i < args.size(); ++i) {
      if (i) s += ", ";
      s += args[i].str();
    }
    s += "]";
  }
  return s;
}

const FunctionDef* ClassDef::find_method(const std::string& method) const {
  for (const auto& m : methods)
    if (m->name == method) return m.get();
  return nullptr;
}

const ClassAttribute* ClassDef::find_attribute(const std::string& attr) const {
  for (const auto& a : attributes)
    if (a.name == attr) return &a;
  return nullptr;
}

const ClassDef* SourceFile::find_class(const std::string& name) const {
  auto it = classes.find(name);
  return it == classes.end() ? nullptr : it->second.get();
}

const FunctionDef* SourceFile::find_function(const std::string& name) const {
  auto it = functions.find(name);
  return it == functions.end() ? nullptr : it->second.get();
}

namespace {

// Printed code nests a few dozen levels; the limit keeps hostile input from exhausting the stack.
constexpr int kMaxDepth = 200;

bool is_keyword(const std::string& s) {
  static const char* kKeywords[] = {"and",    "as",     "assert", "break",   "class",   "continue", "def",
                                    "del",    "elif",   "else",   "for",     "from",    "global",   "if",
                                    "import", "in",     "is",     "lambda",  "not",     "or",       "pass",
                                    "raise",  "return", "while",  "with",    "yield",   "None",     "True",
                                    "False",  "try",    "except", "finally", "nonlocal"};
  for (const char* k : kKeywords)
    if (s == k) return true;
  return false;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& path) : toks_(std::move(tokens)), path_(path) {}

  SourceFile parse_file() {
    SourceFile file;
    file.path = path_;
    while (!(peek().kind == TokenKind::kEnd)) {
      if (peek().kind == TokenKind::kNewline) {
        next();
        continue;
      }
      parse_statement(file.body);
    }
    for (auto& stmt : file.body) {
      if (stmt->kind == StmtKind::kClass) {
        if (!file.classes.emplace(stmt->cls->name, stmt->cls).second)
          error_at(stmt->line, "class '" + stmt->cls->name + "' is defined twice");
      } else if (stmt->kind == StmtKind::kDef) {
        if (!file.functions.emplace(stmt->def->name, stmt->def).second)
          error_at(stmt->line, "function '" + stmt->def->name + "' is defined twice");
      } else if (stmt->kind == StmtKind::kVersion) {
        file.op_version_set = stmt->int_value;
      }
    }
    return file;
  }

  ExprPtr parse_single_expression() {
    while (peek().kind == TokenKind::kNewline) next();
    ExprPtr e = parse_testlist();
    while (peek().kind == TokenKind::kNewline) next();
    if (peek().kind != TokenKind::kEnd) error_expected("end of expression");
    return e;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser* parser) : parser(parser) {
      if (++parser->depth_ > kMaxDepth) parser->error("code nested too deeply");
    }
    ~DepthGuard() { --parser->depth_; }
    Parser* parser;
  };

  const Token& peek(size_t ahead = 0) const {
    size_t i = pos_ + ahead;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < toks_.size() - 1) ++pos_;
    return t;
  }
  bool accept_op(const char* op) {
    if (!peek().is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(const char* name) {
    if (!peek().is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error_expected(std::string("'") + op + "'");
  }
  void expect_name_kw(const char* kw) {
    if (!accept_name(kw)) error_expected(std::string("'") + kw + "'");
  }
  std::string expect_identifier() {
    if (peek().kind != TokenKind::kName || is_keyword(peek().text)) error_expected("a name");
    return next().text;
  }
  void expect_newline() {
    if (peek().kind == TokenKind::kNewline) {
      next();
      return;
    }
    // A statement ending the file or a block (after ';') needs no NEWLINE of its own.
    if (peek().kind == TokenKind::kEnd || peek().kind == TokenKind::kDedent) return;
    error_expected("end of line");
  }

  [[noreturn]] void error_at(int line, const std::string& what) {
    fail(ErrorKind::kInvalidInput, printable(path_), ":", line, ": ", what);
  }
  [[noreturn]] void error(const std::string& what) { error_at(peek().line, what); }
  [[noreturn]] void error_expected(const std::string& what) {
    error("expected " + what + " but found '" + peek().describe() + "'");
  }

  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements -------------------------------------------------------------------------

  void parse_statement(std::vector<StmtPtr>& out) {
    DepthGuard guard(this);
    const Token& t = peek();
    if (t.kind == TokenKind::kIndent) error("unexpected indentation");
    if (t.kind == TokenKind::kName) {
      if (t.text == "def") {
        out.push_back(parse_def());
        return;
      }
      if (t.text == "class") {
        out.push_back(parse_class());
        return;
      }
      if (t.text == "if") {
        next();
        out.push_back(parse_if_rest(t.line));
        return;
      }
      if (t.text == "for") {
        out.push_back(parse_for());
        return;
      }
      if (t.text == "while") {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kWhile;
        s->line = next().line;
        s->value = parse_test();
        expect_op(":");
        s->body = parse_suite();
        if (peek().is_name("else")) error("'while ... else' is not supported");
        out.push_back(std::move(s));
        return;
      }
    }
    parse_simple_statements(out);
  }

  // One or more simple statements separated by ';', ending the line.
  void parse_simple_statements(std::vector<StmtPtr>& out) {
    while (true) {
      out.push_back(parse_simple_statement());
      if (!accept_op(";")) break;
      if (peek().kind == TokenKind::kNewline) break;
    }
    expect_newline();
  }

  StmtPtr parse_simple_statement() {
    auto s = std::make_unique<Stmt>();
    const Token& t = peek();
    s->line = t.line;
    if (t.kind == TokenKind::kName) {
      if (t.text == "pass" || t.text == "break" || t.text == "continue") {
        s->kind = t.text == "pass"    ? StmtKind::kPass
                  : t.text == "break" ? StmtKind::kBreak
                                      : StmtKind::kContinue;
        next();
        return s;
      }
      if (t.text == "return") {
        next();
        s->kind = StmtKind::kReturn;
        if (!at_statement_end()) s->value = parse_testlist();
        return s;
      }
      if (t.text == "raise") {
        next();
        s->kind = StmtKind::kRaise;
        if (!at_statement_end()) s->value = parse_test();
        if (accept_name("from")) parse_test();  // the cause does not change what is raised
        return s;
      }
      if (t.text == "assert") {
        next();
        s->kind = StmtKind::kAssert;
        s->value = parse_test();
        if (accept_op(",")) s->message = parse_test();
        return s;
      }
      if (t.text == "import" || t.text == "from") return parse_import();
      if (t.text == "__annotations__" && peek(1).is_op("[")) return parse_annotations_entry();
      if (t.text == "global" || t.text == "nonlocal" || t.text == "del" || t.text == "with" ||
          t.text == "try" || t.text == "lambda" || t.text == "yield")
        error("'" + t.text + "' is not supported in TorchScript code");
    }
    ExprPtr first = parse_testlist();
    if (accept_op(":")) {
      s->kind = StmtKind::kAnnAssign;
      check_target(*first);
      s->targets.push_back(std::move(first));
      s->type = parse_type();
      if (accept_op("=")) s->value = parse_testlist();
      return s;
    }
    static const char* kAugOps[] = {
        "+=", "-=", "*=", "/=", "//=", "%=", "**=", "&=", "|=", "^=", "<<=", ">>=", "@="};
    for (const char* op : kAugOps) {
      if (peek().is_op(op)) {
        next();
        s->kind = StmtKind::kAugAssign;
        check_target(*first);
        s->op = std::string(op, std::char_traits<char>::length(op) - 1);
        s->targets.push_back(std::move(first));
        s->value = parse_testlist();
        return s;
      }
    }
    if (peek().is_op("=")) {
      s->kind = StmtKind::kAssign;
      ExprPtr value = std::move(first);
      while (accept_op("=")) {
        check_target(*value);
        s->targets.push_back(std::move(value));
        value = parse_testlist();
      }
      s->value = std::move(value);
      // Older archives start with "op_version_set = N".
      if (s->targets.size() == 1 && s->targets[0]->kind == ExprKind::kName &&
          s->targets[0]->text == "op_version_set" && s->value->kind == ExprKind::kInt && depth_ == 1) {
        s->kind = StmtKind::kVersion;
        s->int_value = s->value->int_value;
      }
      return s;
    }
    s->kind = StmtKind::kExpr;
    s->value = std::move(first);
    return s;
  }

  bool at_statement_end() const {
    const Token& t = peek();
    return t.kind == TokenKind::kNewline || t.kind == TokenKind::kEnd || t.kind == TokenKind::kDedent ||
           t.is_op(";");
  }

  void check_target(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kName:
        if (is_keyword(e.text)) error_at(e.line, "cannot assign to keyword '" + e.text + "'");
        return;
      case ExprKind::kAttribute:
      case ExprKind::kSubscript:
        return;
      case ExprKind::kTuple:
      case ExprKind::kList:
        for (const auto& op : e.operands) check_target(*op);
        return;
      default:
        error_at(e.line, "cannot assign to this expression");
    }
  }

  StmtPtr parse_import() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kImport;
    s->line = peek().line;
    // Keep the statement's text for tools; lowering never needs what it imports.
    std::string text;
    while (!at_statement_end()) {
      const Token& t = next();
      if (!text.empty() && !(t.kind == TokenKind::kOp && (t.text == "." || t.text == ",")) &&
          !(text.back() == '.'))
        text += ' ';
      text += t.kind == TokenKind::kString ? "\"" + t.text + "\"" : t.text;
    }
    s->text = text;
    return s;
  }

  // `__annotations__["0"] = __torch__.X` in a class body declares attribute "0".
  StmtPtr parse_annotations_entry() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kAnnAssign;
    s->line = next().line;
    expect_op("[");
    if (peek().kind != TokenKind::kString) error_expected("an attribute name string");
    auto target = make(ExprKind::kName, peek().line);
    target->text = next().text;
    expect_op("]");
    expect_op("=");
    s->type = parse_type();
    s->targets.push_back(std::move(target));
    return s;
  }

  StmtPtr parse_if_rest(int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kIf;
    s->line = line;
    s->value = parse_test();
    expect_op(":");
    s->body = parse_suite();
    if (peek().is_name("elif")) {
      int l = next().line;
      s->orelse.push_back(parse_if_rest(l));
    } else if (peek().is_name("else")) {
      next();
      expect_op(":");
      s->orelse = parse_suite();
    }
    return s;
  }

  StmtPtr parse_for() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFor;
    s->line = next().line;
    ExprPtr target = parse_target_list();
    check_target(*target);
    s->targets.push_back(std::move(target));
    expect_name_kw("in");
    s->value = parse_testlist();
    expect_op(":");
    s->body = parse_suite();
    if (peek().is_name("else")) error("'for ... else' is not supported");
    return s;
  }

  // Loop targets stop at 'in', so they are parsed below the comparison level.
  ExprPtr parse_target_list() {
    int line = peek().line;
    ExprPtr first = parse_bitor();
    if (!peek().is_op(",")) return first;
    auto tuple = make(ExprKind::kTuple, line);
    tuple->operands.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().is_name("in")) break;
      tuple->operands.push_back(parse_bitor());
    }
    return tuple;
  }

  // The body after ':' — an indented block, or simple statements on the same line.
  std::vector<StmtPtr> parse_suite() {
    std::vector<StmtPtr> body;
    if (peek().kind != TokenKind::kNewline) {
      parse_simple_statements(body);
      return body;
    }
    next();
    if (peek().kind != TokenKind::kIndent) error_expected("an indented block");
    next();
    while (peek().kind != TokenKind::kDedent && peek().kind != TokenKind::kEnd) {
      if (peek().kind == TokenKind::kNewline) {
        next();
        continue;
      }
      parse_statement(body);
    }
    if (peek().kind == TokenKind::kDedent) next();
    return body;
  }

  StmtPtr parse_def() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kDef;
    s->line = next().line;
    auto def = std::make_shared<FunctionDef>();
    def->line = s->line;
    def->name = expect_identifier();
    expect_op("(");
    while (!peek().is_op(")")) {
      Param p;
      p.line = peek().line;
      if (peek().is_op("*")) error("'*' parameters are not supported");
      p.name = expect_identifier();
      for (const Param& other : def->params)
        if (other.name == p.name) error_at(p.line, "duplicate parameter '" + p.name + "'");
      if (accept_op(":")) p.type = parse_type();
      if (accept_op("="))
        p.default_value = parse_test();
      else if (!def->params.empty() && def->params.back().default_value)
        error_at(p.line, "parameter '" + p.name + "' without a default follows one with a default");
      def->params.push_back(std::move(p));
      if (!accept_op(",")) break;
    }
    expect_op(")");
    if (accept_op("->")) def->returns = parse_type();
    expect_op(":");
    def->body = parse_suite();
    s->def = std::move(def);
    return s;
  }

  StmtPtr parse_class() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kClass;
    s->line = next().line;
    auto cls = std::make_shared<ClassDef>();
    cls->line = s->line;
    cls->name = expect_identifier();
    if (accept_op("(")) {
      while (!peek().is_op(")")) {
        cls->bases.push_back(parse_type().str());
        if (!accept_op(",")) break;
      }
      expect_op(")");
    }
    expect_op(":");
    cls->body = parse_suite();
    for (const auto& stmt : cls->body) add_class_member(*cls, *stmt);
    s->cls = std::move(cls);
    return s;
  }

  static bool is_string_list(const Expr& e) {
    if (e.kind != ExprKind::kList && e.kind != ExprKind::kTuple) return false;
    for (const auto& op : e.operands)
      if (op->kind != ExprKind::kString) return false;
    return true;
  }

  void add_class_member(ClassDef& cls, const Stmt& stmt) {
    switch (stmt.kind) {
      case StmtKind::kDef:
        if (cls.find_method(stmt.def->name))
          error_at(stmt.line, "method '" + stmt.def->name + "' is defined twice");
        cls.methods.push_back(stmt.def);
        return;
      case StmtKind::kAnnAssign: {
        if (stmt.targets[0]->kind != ExprKind::kName)
          error_at(stmt.line, "a class attribute annotation needs a plain name");
        ClassAttribute attr;
        attr.name = stmt.targets[0]->text;
        attr.type = stmt.type;
        attr.value = stmt.value.get();
        attr.line = stmt.line;
        if (cls.find_attribute(attr.name))
          error_at(stmt.line, "attribute '" + attr.name + "' is declared twice");
        cls.attributes.push_back(std::move(attr));
        return;
      }
      case StmtKind::kAssign: {
        if (stmt.targets.size() != 1 || stmt.targets[0]->kind != ExprKind::kName)
          error_at(stmt.line, "unexpected assignment in the body of class '" + cls.name + "'");
        const std::string& name = stmt.targets[0]->text;
        if (name == "__parameters__" || name == "__buffers__") {
          if (!is_string_list(*stmt.value)) error_at(stmt.line, name + " must be a list of strings");
          auto& list = name == "__parameters__" ? cls.parameters : cls.buffers;
          for (const auto& op : stmt.value->operands) list.push_back(op->text);
          return;
        }
        cls.class_values[name] = stmt.value.get();
        return;
      }
      case StmtKind::kPass:
        return;
      case StmtKind::kExpr:
        if (stmt.value->kind == ExprKind::kString) return;  // a docstring
        [[fallthrough]];
      default:
        error_at(stmt.line, "unexpected statement in the body of class '" + cls.name + "'");
    }
  }

  // ---- types ------------------------------------------------------------------------------

  TypeExpr parse_type() {
    DepthGuard guard(this);
    TypeExpr t;
    t.line = peek().line;
    if (accept_name("None")) {
      t.name = "NoneType";
      return t;
    }
    t.name = expect_identifier();
    while (peek().is_op(".") && peek(1).kind == TokenKind::kName) {
      next();
      t.name += "." + next().text;
    }
    if (accept_op("[")) {
      t.has_brackets = true;
      while (!peek().is_op("]")) {
        if (peek().is_op("(") && peek(1).is_op(")")) {
          next();
          next();
        } else {
          t.args.push_back(parse_type());
        }
        if (!accept_op(",")) break;
      }
      expect_op("]");
    }
    return t;
  }

  // ---- expressions ------------------------------------------------------------------------

  // test (',' test)* [','] — a bare comma list is a tuple.
  ExprPtr parse_testlist() {
    int line = peek().line;
    ExprPtr first = parse_test();
    if (!peek().is_op(",")) return first;
    auto tuple = make(ExprKind::kTuple, line);
    tuple->operands.push_back(std::move(first));
    while (accept_op(",")) {
      if (at_statement_end() || peek().is_op("=") || peek().is_op(")") || peek().is_op(":")) break;
      tuple->operands.push_back(parse_test());
    }
    return tuple;
  }

  ExprPtr parse_test() {
    DepthGuard guard(this);
    int line = peek().line;
    if (peek().is_name("lambda")) error("lambda is not supported in TorchScript code");
    ExprPtr body = parse_or();
    if (!peek().is_name("if")) return body;
    next();
    ExprPtr cond = parse_or();
    expect_name_kw("else");
    ExprPtr orelse = parse_test();
    auto e = make(ExprKind::kIfExp, line);
    e->operands.push_back(std::move(body));
    e->operands.push_back(std::move(cond));
    e->operands.push_back(std::move(orelse));
    return e;
  }

  ExprPtr parse_bool_chain(const char* op, ExprPtr (Parser::*sub)()) {
    int line = peek().line;
    ExprPtr first = (this->*sub)();
    if (!peek().is_name(op)) return first;
    auto e = make(ExprKind::kBoolOp, line);
    e->text = op;
    e->operands.push_back(std::move(first));
    while (accept_name(op)) e->operands.push_back((this->*sub)());
    return e;
  }
  ExprPtr parse_or() { return parse_bool_chain("or", &Parser::parse_and); }
  ExprPtr parse_and() { return parse_bool_chain("and", &Parser::parse_not); }

  ExprPtr parse_not() {
    if (!peek().is_name("not")) return parse_comparison();
    DepthGuard guard(this);
    int line = next().line;
    auto e = make(ExprKind::kUnary, line);
    e->text = "not";
    e->operands.push_back(parse_not());
    return e;
  }

  // Returns the comparison operator at the cursor (consuming it), or "" if there is none.
  std::string accept_compare_op() {
    static const char* kOps[] = {"==", "!=", "<=", ">=", "<", ">"};
    for (const char* op : kOps)
      if (accept_op(op)) return op;
    if (accept_name("in")) return "in";
    if (peek().is_name("not") && peek(1).is_name("in")) {
      next();
      next();
      return "not in";
    }
    if (accept_name("is")) return accept_name("not") ? "is not" : "is";
    return "";
  }

  ExprPtr parse_comparison() {
    int line = peek().line;
    ExprPtr first = parse_bitor();
    std::string op = accept_compare_op();
    if (op.empty()) return first;
    auto e = make(ExprKind::kCompare, line);
    e->operands.push_back(std::move(first));
    while (!op.empty()) {
      e->compare_ops.push_back(op);
      e->operands.push_back(parse_bitor());
      op = accept_compare_op();
    }
    return e;
  }

  ExprPtr parse_binary_level(std::initializer_list<const char*> ops, ExprPtr (Parser::*sub)()) {
    int line = peek().line;
    ExprPtr left = (this->*sub)();
    while (true) {
      const char* matched = nullptr;
      for (const char* op : ops)
        if (peek().is_op(op)) matched = op;
      if (!matched) return left;
      next();
      auto e = make(ExprKind::kBinary, line);
      e->text = matched;
      e->operands.push_back(std::move(left));
      e->operands.push_back((this->*sub)());
      left = std::move(e);
    }
  }
  ExprPtr parse_bitor() { return parse_binary_level({"|"}, &Parser::parse_xor); }
  ExprPtr parse_xor() { return parse_binary_level({"^"}, &Parser::parse_bitand); }
  ExprPtr parse_bitand() { return parse_binary_level({"&"}, &Parser::parse_shift); }
  ExprPtr parse_shift() { return parse_binary_level({"<<", ">>"}, &Parser::parse_arith); }
  ExprPtr parse_arith() { return parse_binary_level({"+", "-"}, &Parser::parse_term); }
  ExprPtr parse_term() { return parse_binary_level({"*", "/", "//", "%", "@"}, &Parser::parse_factor); }

  ExprPtr parse_factor() {
    const Token& t = peek();
    if (!(t.is_op("-") || t.is_op("+") || t.is_op("~"))) return parse_power();
    DepthGuard guard(this);
    int line = t.line;
    std::string op = next().text;
    // "-<int>" is one literal (so that -9223372036854775808 is representable), unless a power
    // follows: "-2 ** 2" is -(2 ** 2).
    if (op == "-" && peek().kind == TokenKind::kInt && !peek(1).is_op("**") && !peek(1).is_op(".") &&
        !peek(1).is_op("(") && !peek(1).is_op("[")) {
      const Token& lit = next();
      if (lit.int_value > uint64_t{1} << 63)
        error_at(lit.line, "integer literal -" + lit.text + " out of range");
      auto e = make(ExprKind::kInt, line);
      e->int_value = lit.int_value == uint64_t{1} << 63 ? std::numeric_limits<int64_t>::min()
                                                        : -static_cast<int64_t>(lit.int_value);
      return e;
    }
    ExprPtr operand = parse_factor();
    if (op == "-" && operand->kind == ExprKind::kFloat) {
      operand->float_value = -operand->float_value;
      operand->line = line;
      return operand;
    }
    auto e = make(ExprKind::kUnary, line);
    e->text = op;
    e->operands.push_back(std::move(operand));
    return e;
  }

  ExprPtr parse_power() {
    int line = peek().line;
    ExprPtr base = parse_primary();
    if (!accept_op("**")) return base;
    DepthGuard guard(this);
    auto e = make(ExprKind::kBinary, line);
    e->text = "**";
    e->operands.push_back(std::move(base));
    e->operands.push_back(parse_factor());  // right-associative, and "2 ** -1" is allowed
    return e;
  }

  ExprPtr parse_primary() {
    ExprPtr e = parse_atom();
    int trailers = 0;
    while (true) {
      if (++trailers > 4 * kMaxDepth) error("expression too long");
      int line = peek().line;
      if (accept_op(".")) {
        auto a = make(ExprKind::kAttribute, line);
        if (peek().kind != TokenKind::kName) error_expected("an attribute name");
        a->text = next().text;
        a->operands.push_back(std::move(e));
        e = std::move(a);
      } else if (peek().is_op("(")) {
        e = parse_call(std::move(e));
      } else if (accept_op("[")) {
        DepthGuard guard(this);
        auto s = make(ExprKind::kSubscript, line);
        s->operands.push_back(std::move(e));
        s->operands.push_back(parse_subscript_list());
        expect_op("]");
        e = std::move(s);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    DepthGuard guard(this);
    int line = next().line;  // '('
    // The printer's typed builtins take a type where an expression would be.
    if (callee->kind == ExprKind::kName) {
      const std::string& f = callee->text;
      if (f == "annotate" || f == "unchecked_cast") {
        auto e = make(f == "annotate" ? ExprKind::kAnnotate : ExprKind::kUncheckedCast, line);
        e->types.push_back(parse_type());
        expect_op(",");
        e->operands.push_back(parse_test());
        accept_op(",");
        expect_op(")");
        return e;
      }
      if (f == "uninitialized") {
        auto e = make(ExprKind::kUninitialized, line);
        e->types.push_back(parse_type());
        accept_op(",");
        expect_op(")");
        return e;
      }
      if (f == "isinstance") {
        auto e = make(ExprKind::kIsInstance, line);
        e->operands.push_back(parse_test());
        expect_op(",");
        if (accept_op("(")) {
          while (!peek().is_op(")")) {
            e->types.push_back(parse_type());
            if (!accept_op(",")) break;
          }
          expect_op(")");
        } else {
          e->types.push_back(parse_type());
        }
        accept_op(",");
        expect_op(")");
        return e;
      }
    }
    auto call = make(ExprKind::kCall, line);
    call->operands.push_back(std::move(callee));
    while (!peek().is_op(")")) {
      if (peek().is_op("*") || peek().is_op("**")) error("'*' and '**' arguments are not supported");
      if (peek().kind == TokenKind::kName && peek(1).is_op("=")) {
        Keyword kw;
        kw.name = next().text;
        next();
        kw.value = parse_test();
        for (const Keyword& other : call->keywords)
          if (other.name == kw.name) error("keyword argument '" + kw.name + "' repeated");
        call->keywords.push_back(std::move(kw));
      } else {
        if (!call->keywords.empty()) error("positional argument follows keyword argument");
        call->operands.push_back(parse_test());
      }
      if (!accept_op(",")) break;
    }
    expect_op(")");
    return call;
  }

  ExprPtr parse_subscript_list() {
    int line = peek().line;
    ExprPtr first = parse_subscript_item();
    if (!peek().is_op(",")) return first;
    auto tuple = make(ExprKind::kTuple, line);
    tuple->operands.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().is_op("]")) break;
      tuple->operands.push_back(parse_subscript_item());
    }
    return tuple;
  }

  ExprPtr parse_subscript_item() {
    int line = peek().line;
    ExprPtr lower;
    if (!peek().is_op(":")) {
      lower = parse_test();
      if (!peek().is_op(":")) return lower;
    }
    next();  // ':'
    auto slice = make(ExprKind::kSlice, line);
    ExprPtr upper, step;
    if (!peek().is_op(":") && !peek().is_op("]") && !peek().is_op(",")) upper = parse_test();
    if (accept_op(":")) {
      if (!peek().is_op("]") && !peek().is_op(",")) step = parse_test();
    }
    slice->operands.push_back(std::move(lower));
    slice->operands.push_back(std::move(upper));
    slice->operands.push_back(std::move(step));
    return slice;
  }

  ExprPtr parse_atom() {
    DepthGuard guard(this);
    const Token& t = peek();
    int line = t.line;
    switch (t.kind) {
      case TokenKind::kName: {
        if (t.text == "None") {
          next();
          return make(ExprKind::kNone, line);
        }
        if (t.text == "True" || t.text == "False") {
          auto e = make(ExprKind::kBool, line);
          e->bool_value = next().text == "True";
          return e;
        }
        if (is_keyword(t.text)) error_expected("an expression");
        auto e = make(ExprKind::kName, line);
        e->text = next().text;
        return e;
      }
      case TokenKind::kInt: {
        if (t.int_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          error("integer literal " + t.text + " does not fit in int64");
        auto e = make(ExprKind::kInt, line);
        e->int_value = static_cast<int64_t>(next().int_value);
        return e;
      }
      case TokenKind::kFloat: {
        auto e = make(ExprKind::kFloat, line);
        e->float_value = next().float_value;
        return e;
      }
      case TokenKind::kString: {
        auto e = make(ExprKind::kString, line);
        // Adjacent literals concatenate, as in Python.
        while (peek().kind == TokenKind::kString) e->text += next().text;
        return e;
      }
      case TokenKind::kOp:
        if (t.text == "(") return parse_paren();
        if (t.text == "[") {
          next();
          auto e = make(ExprKind::kList, line);
          while (!peek().is_op("]")) {
            e->operands.push_back(parse_test());
            if (!accept_op(",")) break;
          }
          expect_op("]");
          return e;
        }
        if (t.text == "{") {
          next();
          auto e = make(ExprKind::kDict, line);
          while (!peek().is_op("}")) {
            e->operands.push_back(parse_test());
            expect_op(":");
            e->operands.push_back(parse_test());
            if (!accept_op(",")) break;
          }
          expect_op("}");
          return e;
        }
        if (t.text == "...") {
          next();
          return make(ExprKind::kEllipsis, line);
        }
        break;
      default:
        break;
    }
    error_expected("an expression");
  }

  ExprPtr parse_paren() {
    int line = next().line;  // '('
    if (accept_op(")")) return make(ExprKind::kTuple, line);
    ExprPtr first = parse_test();
    if (accept_op(")")) return first;
    auto tuple = make(ExprKind::kTuple, line);
    tuple->operands.push_back(std::move(first));
    while (accept_op(",")) {
      if (peek().is_op(")")) break;
      tuple->operands.push_back(parse_test());
    }
    expect_op(")");
    return tuple;
  }

  std::vector<Token> toks_;
  const std::string& path_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

SourceFile parse_source(const std::string& source, const std::string& path) {
  return Parser(tokenize(source, path), path).parse_file();
}

ExprPtr parse_expression(const std::string& source, const std::string& path) {
  return Parser(tokenize(source, path), path).parse_single_expression();
}

}  // namespace convoy::ts
