#include "runtime/torchscript/lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "runtime/error.h"
#include "runtime/printable.h"

namespace convoy::ts {

namespace {

// Deeper than any printed code (the printer nests a few dozen levels); keeps hostile input from
// building unbounded indentation or bracket stacks.
constexpr size_t kMaxNesting = 500;

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& file) : src_(src), file_(file) {}

  std::vector<Token> run() {
    indents_.push_back(0);
    while (pos_ < src_.size()) {
      if (at_line_start_ && depth_ == 0) {
        if (!handle_indentation()) continue;  // blank or comment-only line
      }
      char c = src_[pos_];
      if (c == '\n') {
        ++pos_;
        if (depth_ == 0 && !tokens_.empty() && tokens_.back().kind != TokenKind::kNewline &&
            tokens_.back().kind != TokenKind::kIndent && tokens_.back().kind != TokenKind::kDedent)
          push(TokenKind::kNewline, "");
        ++line_;
        // Inside brackets a newline is only whitespace: no NEWLINE and no indentation.
        if (depth_ == 0) at_line_start_ = true;
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
        ++pos_;
        continue;
      }
      if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
        continue;
      }
      if (c == '\\') {
        // Explicit line joining: the next physical line continues this logical line.
        size_t p = pos_ + 1;
        if (p < src_.size() && src_[p] == '\r') ++p;
        if (p < src_.size() && src_[p] == '\n') {
          pos_ = p + 1;
          ++line_;
          continue;
        }
        error("unexpected '\\'");
      }
      if (is_ident_start(c)) {
        size_t start = pos_;
        while (pos_ < src_.size() && is_ident_char(src_[pos_])) ++pos_;
        push(TokenKind::kName, src_.substr(start, pos_ - start));
        continue;
      }
      if (is_digit(c) || (c == '.' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1]))) {
        lex_number();
        continue;
      }
      if (c == '"' || c == '\'') {
        lex_string();
        continue;
      }
      if (static_cast<unsigned char>(c) >= 0x80) error("unexpected non-ASCII byte outside a string");
      lex_operator();
    }
    if (!tokens_.empty() && tokens_.back().kind != TokenKind::kNewline &&
        tokens_.back().kind != TokenKind::kDedent && tokens_.back().kind != TokenKind::kIndent)
      push(TokenKind::kNewline, "");
    if (!brackets_.empty()) {
      line_ = brackets_.back().second;
      error(std::string("'") + brackets_.back().first + "' is never closed");
    }
    while (indents_.size() > 1) {
      indents_.pop_back();
      push(TokenKind::kDedent, "");
    }
    push(TokenKind::kEnd, "");
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(const std::string& what) {
    fail(ErrorKind::kInvalidInput, printable(file_), ":", line_, ": ", what);
  }

  void push(TokenKind kind, std::string text) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // Measures the indentation of a new line and emits INDENT/DEDENT. Returns false (having consumed
  // the line) when the line is blank or holds only a comment: those never change indentation.
  bool handle_indentation() {
    size_t width = 0;
    size_t p = pos_;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\f')) {
      width = src_[p] == '\t' ? (width / 8 + 1) * 8 : width + (src_[p] == ' ' ? 1 : 0);
      ++p;
    }
    if (p < src_.size() && src_[p] == '\r') ++p;
    if (p >= src_.size() || src_[p] == '\n' || src_[p] == '#') {
      while (p < src_.size() && src_[p] != '\n') ++p;
      if (p < src_.size()) {
        ++p;
        ++line_;
      }
      pos_ = p;
      return false;
    }
    pos_ = p;
    at_line_start_ = false;
    if (width > indents_.back()) {
      if (indents_.size() >= kMaxNesting) error("indentation nested too deeply");
      indents_.push_back(width);
      push(TokenKind::kIndent, "");
    } else {
      while (width < indents_.back()) {
        indents_.pop_back();
        push(TokenKind::kDedent, "");
      }
      if (width != indents_.back()) error("unindent does not match any outer indentation level");
    }
    return true;
  }

  void lex_number() {
    size_t start = pos_;
    if (src_[pos_] == '0' && pos_ + 1 < src_.size() &&
        (src_[pos_ + 1] == 'x' || src_[pos_ + 1] == 'X' || src_[pos_ + 1] == 'o' || src_[pos_ + 1] == 'O' ||
         src_[pos_ + 1] == 'b' || src_[pos_ + 1] == 'B')) {
      char base_char = static_cast<char>(src_[pos_ + 1] | 0x20);
      int base = base_char == 'x' ? 16 : base_char == 'o' ? 8 : 2;
      pos_ += 2;
      size_t digits = pos_;
      while (pos_ < src_.size() &&
             (std::isxdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
        ++pos_;
      std::string text = src_.substr(digits, pos_ - digits);
      std::erase(text, '_');
      if (text.empty()) error("malformed number '" + src_.substr(start, pos_ - start) + "'");
      push_int(text, base, src_.substr(start, pos_ - start));
      return;
    }
    bool is_float = false;
    while (pos_ < src_.size() && (is_digit(src_[pos_]) || src_[pos_] == '_')) ++pos_;
    if (pos_ < src_.size() && src_[pos_] == '.') {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && (is_digit(src_[pos_]) || src_[pos_] == '_')) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && is_digit(src_[p])) {
        is_float = true;
        pos_ = p;
        while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
      }
    }
    std::string raw = src_.substr(start, pos_ - start);
    if (pos_ < src_.size() && is_ident_start(src_[pos_]))
      error("malformed number '" + raw + src_[pos_] + "'");
    std::string text = raw;
    std::erase(text, '_');
    if (!is_float) {
      push_int(text, 10, raw);
      return;
    }
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) error("malformed number '" + raw + "'");
    // Overflow to inf is what Python does too ("1e999" is inf); underflow to 0 likewise.
    push(TokenKind::kFloat, raw);
    tokens_.back().float_value = v;
  }

  void push_int(const std::string& digits, int base, const std::string& raw) {
    // 2^63 is allowed so that "-9223372036854775808" can be folded by the parser.
    constexpr uint64_t kLimit = uint64_t{1} << 63;
    uint64_t v = 0;
    for (char ch : digits) {
      int d = is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10;
      if (d < 0 || d >= base) error("malformed number '" + raw + "'");
      if (v > (kLimit - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base))
        error("integer literal " + raw + " does not fit in 64 bits");
      v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    }
    push(TokenKind::kInt, raw);
    tokens_.back().int_value = v;
  }

  void lex_string() {
    int start_line = line_;
    char quote = src_[pos_];
    bool triple = pos_ + 2 < src_.size() && src_[pos_ + 1] == quote && src_[pos_ + 2] == quote;
    pos_ += triple ? 3 : 1;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) {
        line_ = start_line;
        error("unterminated string literal");
      }
      char c = src_[pos_];
      if (c == quote) {
        if (!triple) {
          ++pos_;
          break;
        }
        if (pos_ + 2 < src_.size() && src_[pos_ + 1] == quote && src_[pos_ + 2] == quote) {
          pos_ += 3;
          break;
        }
      }
      if (c == '\n') {
        if (!triple) {
          line_ = start_line;
          error("unterminated string literal");
        }
        ++line_;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) error("unterminated string literal");
      char e = src_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          ++line_;
          break;  // an escaped newline continues the string
        case 'x': {
          int v = 0;
          for (int i = 0; i < 2; ++i) {
            if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
              error("malformed \\x escape in string literal");
            char h = src_[pos_++];
            v = v * 16 + (is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          out += static_cast<char>(v);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            // Up to three octal digits: the printer writes control characters as "\001".
            int v = e - '0';
            for (int i = 0; i < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++i)
              v = v * 8 + (src_[pos_++] - '0');
            if (v > 255) error("octal escape out of range in string literal");
            out += static_cast<char>(v);
          } else {
            // Python keeps unknown escapes verbatim.
            out += '\\';
            out += e;
          }
      }
    }
    Token t;
    t.kind = TokenKind::kString;
    t.text = std::move(out);
    t.line = start_line;
    tokens_.push_back(std::move(t));
  }

  void lex_operator() {
    static const char* kOps[] = {"**=", "//=", ">>=", "<<=", "...", "->", "**", "//", "==", "!=", "<=", ">=",
                                 "<<",  ">>",  "+=",  "-=",  "*=",  "/=", "%=", "&=", "|=", "^=", "@=", ":="};
    for (const char* op : kOps) {
      size_t n = std::char_traits<char>::length(op);
      if (src_.compare(pos_, n, op) == 0) {
        pos_ += n;
        push(TokenKind::kOp, op);
        return;
      }
    }
    char c = src_[pos_];
    static const std::string kSingle = "()[]{},:.;@=+-*/%<>&|^~";
    if (kSingle.find(c) == std::string::npos)
      error("unexpected character '" + printable(std::string_view(&c, 1)) + "'");
    if (c == '(' || c == '[' || c == '{') {
      if (brackets_.size() >= kMaxNesting) error("brackets nested too deeply");
      brackets_.emplace_back(c, line_);
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets_.empty()) error(std::string("unmatched '") + c + "'");
      char open = brackets_.back().first;
      if ((c == ')' && open != '(') || (c == ']' && open != '[') || (c == '}' && open != '{'))
        error(std::string("closing '") + c + "' does not match '" + open + "' opened on line " +
              std::to_string(brackets_.back().second));
      brackets_.pop_back();
    }
    depth_ = brackets_.size();
    ++pos_;
    push(TokenKind::kOp, std::string(1, c));
  }

  const std::string& src_;
  const std::string& file_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t depth_ = 0;  // open brackets: inside them newlines and indentation mean nothing
  std::vector<std::pair<char, int>> brackets_;  // each open bracket and its line
  bool at_line_start_ = true;
  std::vector<size_t> indents_;
  std::vector<Token> tokens_;
};

// At most 40 bytes of a string literal, between double quotes, with every byte that is not printable
// UTF-8 escaped (a string from a corrupted archive may hold anything).
std::string quote_for_message(const std::string& s) { return "\"" + printable(s, 40) + "\""; }

}  // namespace

std::string Token::describe() const {
  switch (kind) {
    case TokenKind::kName:
      return "NAME " + text;
    case TokenKind::kInt:
      return "INT " + text;
    case TokenKind::kFloat:
      return "FLOAT " + text;
    case TokenKind::kString:
      return "STRING " + quote_for_message(text);
    case TokenKind::kOp:
      return text;
    case TokenKind::kNewline:
      return "NEWLINE";
    case TokenKind::kIndent:
      return "INDENT";
    case TokenKind::kDedent:
      return "DEDENT";
    case TokenKind::kEnd:
      return "end of file";
  }
  return "?";
}

std::vector<Token> tokenize(const std::string& source, const std::string& file) {
  return Lexer(source, file).run();
}

}  // namespace convoy::ts
