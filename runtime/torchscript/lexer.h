// Tokenizer for the printed TorchScript in an archive's `code/**.py`: Python's lexical rules for the
// subset the printer emits (indentation, bracket continuation, comments, quoted strings with
// escapes, ints up to 2^63, floats in repr form). Every token keeps its line; errors name
// "<file>:<line>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy::ts {

enum class TokenKind {
  kName,     // identifiers and keywords ("def", "if", "None" are names; the parser decides)
  kInt,      // non-negative integer literal; `int_value` holds it (2^63 only as the operand of '-')
  kFloat,    // floating literal; `float_value`
  kString,   // string literal; `text` holds the decoded bytes
  kOp,       // operator or delimiter; `text` holds it ("(", "->", "**", "//=", "...")
  kNewline,  // end of a logical line
  kIndent,
  kDedent,
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  uint64_t int_value = 0;
  double float_value = 0.0;
  int line = 0;

  bool is_op(const char* op) const { return kind == TokenKind::kOp && text == op; }
  bool is_name(const char* name) const { return kind == TokenKind::kName && text == name; }
  // "NAME x", "INT 3", "STRING \"a\"", "')'", "NEWLINE", "end of file": for error messages.
  std::string describe() const;
};

// Splits `source` into tokens, ending with NEWLINE (if the last line had tokens), the DEDENTs that
// close open blocks, and END. `file` names the source in errors ("code/__torch__.py").
std::vector<Token> tokenize(const std::string& source, const std::string& file);

}  // namespace convoy::ts
