// The TorchScript source frontend: tokenizer and parser, on the seed's printed code, pieces of real
// printed torchvision / nn code (torch 1.13), and malformed input that must fail with file:line.
#include <catch2/catch.hpp>
#include <functional>
#include <sstream>
#include <string>

#include "runtime/error.h"
#include "runtime/torchscript/lexer.h"
#include "runtime/torchscript/parser.h"

using namespace convoy;
using namespace convoy::ts;

namespace {

std::string kinds(const std::vector<Token>& toks) {
  std::string s;
  for (const Token& t : toks) {
    if (!s.empty()) s += " ";
    switch (t.kind) {
      case TokenKind::kName:
        s += t.text;
        break;
      case TokenKind::kInt:
        s += "#" + t.text;
        break;
      case TokenKind::kFloat:
        s += "F" + t.text;
        break;
      case TokenKind::kString:
        s += "'" + t.text + "'";
        break;
      case TokenKind::kOp:
        s += t.text;
        break;
      case TokenKind::kNewline:
        s += "NL";
        break;
      case TokenKind::kIndent:
        s += "IN";
        break;
      case TokenKind::kDedent:
        s += "DE";
        break;
      case TokenKind::kEnd:
        s += "END";
        break;
    }
  }
  return s;
}

// Renders an expression with explicit parentheses so precedence is visible.
std::string show(const Expr& e) {
  auto ops = [&](size_t from, const char* sep) {
    std::string s;
    for (size_t i = from; i < e.operands.size(); ++i) {
      if (i > from) s += sep;
      s += e.operands[i] ? show(*e.operands[i]) : "_";
    }
    return s;
  };
  switch (e.kind) {
    case ExprKind::kName:
      return e.text;
    case ExprKind::kInt:
      return std::to_string(e.int_value);
    case ExprKind::kFloat: {
      std::ostringstream o;
      o.precision(17);
      o << e.float_value << "f";
      return o.str();
    }
    case ExprKind::kString:
      return "\"" + e.text + "\"";
    case ExprKind::kBool:
      return e.bool_value ? "True" : "False";
    case ExprKind::kNone:
      return "None";
    case ExprKind::kEllipsis:
      return "...";
    case ExprKind::kAttribute:
      return show(*e.operands[0]) + "." + e.text;
    case ExprKind::kCall: {
      std::string s = show(*e.operands[0]) + "(" + ops(1, ", ");
      for (const Keyword& k : e.keywords) s += (s.back() == '(' ? "" : ", ") + k.name + "=" + show(*k.value);
      return s + ")";
    }
    case ExprKind::kSubscript:
      return show(*e.operands[0]) + "[" + show(*e.operands[1]) + "]";
    case ExprKind::kSlice:
      return ops(0, ":");
    case ExprKind::kTuple:
      return "(" + ops(0, ", ") + ",)";
    case ExprKind::kList:
      return "[" + ops(0, ", ") + "]";
    case ExprKind::kDict:
      return "{" + ops(0, ", ") + "}";
    case ExprKind::kUnary:
      return "(" + e.text + " " + show(*e.operands[0]) + ")";
    case ExprKind::kBinary:
      return "(" + show(*e.operands[0]) + " " + e.text + " " + show(*e.operands[1]) + ")";
    case ExprKind::kCompare: {
      std::string s = "(" + show(*e.operands[0]);
      for (size_t i = 0; i < e.compare_ops.size(); ++i)
        s += " " + e.compare_ops[i] + " " + show(*e.operands[i + 1]);
      return s + ")";
    }
    case ExprKind::kBoolOp:
      return "(" + ops(0, (" " + e.text + " ").c_str()) + ")";
    case ExprKind::kIfExp:
      return "(" + show(*e.operands[0]) + " if " + show(*e.operands[1]) + " else " + show(*e.operands[2]) +
             ")";
    case ExprKind::kAnnotate:
      return "annotate<" + e.types[0].str() + ">(" + show(*e.operands[0]) + ")";
    case ExprKind::kUncheckedCast:
      return "cast<" + e.types[0].str() + ">(" + show(*e.operands[0]) + ")";
    case ExprKind::kUninitialized:
      return "uninitialized<" + e.types[0].str() + ">";
    case ExprKind::kIsInstance: {
      std::string s = "isinstance(" + show(*e.operands[0]);
      for (const TypeExpr& t : e.types) s += ", " + t.str();
      return s + ")";
    }
  }
  return "?";
}

std::string expr(const std::string& src) { return show(*parse_expression(src)); }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kInvalidInput);
    return e.what();
  }
  return "no error";
}

// The seed model's printed code, verbatim (torch 1.13, archive top folder `jit/`).
const char* kSeedTorch = R"(class TestScript(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  linear : __torch__.torch.nn.modules.linear.Linear
  relu : __torch__.torch.nn.modules.activation.ReLU
  def forward(self: __torch__.TestScript,
    x: Tensor,
    h: Tensor) -> Tensor:
    relu = self.relu
    linear = self.linear
    input = __torch__.my_abs(x, )
    input0 = torch.add((linear).forward(input, ), h)
    return (relu).forward(input0, )
def my_abs(x: Tensor) -> Tensor:
  if bool(torch.gt(torch.sum(x), 0)):
    _0 = x
  else:
    _0 = torch.neg(x)
  return _0
)";

const char* kSeedLinear = R"(class Linear(Module):
  __parameters__ = ["weight", "bias", ]
  __buffers__ = []
  weight : Tensor
  bias : Tensor
  training : bool
  _is_full_backward_hook : Optional[bool]
  def forward(self: __torch__.torch.nn.modules.linear.Linear,
    input: Tensor) -> Tensor:
    bias = self.bias
    weight = self.weight
    return torch.linear(input, weight, bias)
)";

}  // namespace

TEST_CASE("tokenizer: indentation, newlines inside brackets and line numbers", "[frontend][lexer]") {
  std::string src =
      "def f(a,\n"
      "      b):\n"
      "  # a comment line does not change indentation\n"
      "  if a:\n"
      "\n"
      "    return b  # trailing comment\n"
      "  return a\n";
  auto toks = tokenize(src, "t.py");
  CHECK(kinds(toks) == "def f ( a , b ) : NL IN if a : NL IN return b NL DE return a NL DE END");
  // Lines: 'def' on 1, 'b' on 2, 'if' on 4, 'return b' on 6, 'return a' on 7.
  REQUIRE(toks.size() > 20);
  CHECK(toks[0].line == 1);
  CHECK(toks[5].text == "b");
  CHECK(toks[5].line == 2);
  CHECK(toks[10].text == "if");
  CHECK(toks[10].line == 4);
  CHECK(toks[15].text == "return");
  CHECK(toks[15].line == 6);
  CHECK(toks[19].text == "return");
  CHECK(toks[19].line == 7);
}

TEST_CASE("tokenizer: numbers as torch prints them", "[frontend][lexer]") {
  auto toks = tokenize("9223372036854775807 1.0000000000000001e-05 0. 0.10000000000000001 1e+301 3 .5 0x1F\n",
                       "n.py");
  REQUIRE(toks.size() == 10);
  CHECK(toks[0].kind == TokenKind::kInt);
  CHECK(toks[0].int_value == 9223372036854775807ull);
  CHECK(toks[1].kind == TokenKind::kFloat);
  CHECK(toks[1].float_value == 1e-05);
  CHECK(toks[2].kind == TokenKind::kFloat);
  CHECK(toks[2].float_value == 0.0);
  CHECK(toks[3].float_value == 0.1);
  CHECK(toks[4].float_value == 1e301);
  CHECK(toks[5].kind == TokenKind::kInt);
  CHECK(toks[5].int_value == 3);
  CHECK(toks[6].float_value == 0.5);
  CHECK(toks[7].int_value == 31);
  CHECK_THROWS_WITH(tokenize("x = 18446744073709551616\n", "code/big.py"),
                    Catch::Contains("code/big.py:1") && Catch::Contains("does not fit in 64 bits"));
  CHECK_THROWS_WITH(tokenize("x = 12abc\n", "n.py"), Catch::Contains("malformed number"));
}

TEST_CASE("tokenizer: strings with the printer's escapes", "[frontend][lexer]") {
  auto toks = tokenize(R"(a = "dtypes of ({}) don\'t match" + 'q"x' + "\n\t\\\"\001\x41")"
                       "\n",
                       "s.py");
  REQUIRE(toks.size() >= 8);
  CHECK(toks[2].kind == TokenKind::kString);
  CHECK(toks[2].text == "dtypes of ({}) don't match");
  CHECK(toks[4].text == "q\"x");
  CHECK(toks[6].text == std::string("\n\t\\\"\001A"));
  CHECK_THROWS_WITH(tokenize("x = 1\ny = \"abc\n", "code/s.py"),
                    Catch::Contains("code/s.py:2: unterminated string literal"));
}

TEST_CASE("tokenizer: layout errors name file and line", "[frontend][lexer]") {
  CHECK_THROWS_WITH(tokenize("if a:\n    b\n  c\n", "code/i.py"),
                    Catch::Contains("code/i.py:3: unindent does not match any outer indentation level"));
  CHECK_THROWS_WITH(tokenize("f(a))\n", "code/p.py"), Catch::Contains("code/p.py:1: unmatched ')'"));
  CHECK_THROWS_WITH(tokenize("x = 1\nf(a,\n b\n", "code/q.py"),
                    Catch::Contains("code/q.py:2: '(' is never closed"));
  CHECK_THROWS_WITH(tokenize("f([a)\n", "code/r.py"),
                    Catch::Contains("code/r.py:1: closing ')' does not match '[' opened on line 1"));
  CHECK_THROWS_WITH(tokenize("a = $\n", "code/d.py"),
                    Catch::Contains("code/d.py:1: unexpected character '$'"));
  // Deep nesting is an error, not a stack overflow.
  CHECK_THROWS_WITH(tokenize(std::string(5000, '(') + "\n", "deep.py"), Catch::Contains("nested too deeply"));
}

TEST_CASE("parser: the seed's printed code", "[frontend][parser]") {
  SourceFile f = parse_source(kSeedTorch, "code/__torch__.py");
  REQUIRE(f.classes.size() == 1);
  REQUIRE(f.functions.size() == 1);
  const ClassDef* cls = f.find_class("TestScript");
  REQUIRE(cls != nullptr);
  CHECK(cls->bases == std::vector<std::string>{"Module"});
  CHECK(cls->parameters.empty());
  CHECK(cls->buffers.empty());
  REQUIRE(cls->attributes.size() == 4);
  CHECK(cls->attributes[0].name == "training");
  CHECK(cls->attributes[0].type.str() == "bool");
  CHECK(cls->attributes[1].type.str() == "Optional[bool]");
  CHECK(cls->find_attribute("linear")->type.str() == "__torch__.torch.nn.modules.linear.Linear");
  CHECK(cls->find_attribute("relu")->line == 7);

  const FunctionDef* fwd = cls->find_method("forward");
  REQUIRE(fwd != nullptr);
  REQUIRE(fwd->params.size() == 3);
  CHECK(fwd->params[0].name == "self");
  CHECK(fwd->params[0].type->str() == "__torch__.TestScript");
  CHECK(fwd->params[2].name == "h");
  CHECK(fwd->params[2].type->str() == "Tensor");
  CHECK(fwd->returns->str() == "Tensor");
  REQUIRE(fwd->body.size() == 5);
  CHECK(fwd->body[2]->kind == StmtKind::kAssign);
  CHECK(fwd->body[2]->line == 13);
  CHECK(show(*fwd->body[2]->value) == "__torch__.my_abs(x)");
  CHECK(show(*fwd->body[3]->value) == "torch.add(linear.forward(input), h)");
  CHECK(fwd->body[4]->kind == StmtKind::kReturn);
  CHECK(show(*fwd->body[4]->value) == "relu.forward(input0)");

  const FunctionDef* my_abs = f.find_function("my_abs");
  REQUIRE(my_abs != nullptr);
  REQUIRE(my_abs->body.size() == 2);
  const Stmt& s = *my_abs->body[0];
  CHECK(s.kind == StmtKind::kIf);
  CHECK(s.line == 17);
  CHECK(show(*s.value) == "bool(torch.gt(torch.sum(x), 0))");
  REQUIRE(s.body.size() == 1);
  REQUIRE(s.orelse.size() == 1);
  CHECK(show(*s.orelse[0]->value) == "torch.neg(x)");
  CHECK(s.orelse[0]->line == 20);

  SourceFile lin = parse_source(kSeedLinear, "code/__torch__/torch/nn/modules/linear.py");
  const ClassDef* linear = lin.find_class("Linear");
  REQUIRE(linear != nullptr);
  CHECK(linear->parameters == std::vector<std::string>{"weight", "bias"});
  CHECK(show(*linear->find_method("forward")->body[2]->value) == "torch.linear(input, weight, bias)");
}

TEST_CASE("parser: operator precedence and literals", "[frontend][parser]") {
  CHECK(expr("a + b * c ** -d") == "(a + (b * (c ** (- d))))");
  CHECK(expr("-2 ** 2") == "(- (2 ** 2))");
  CHECK(expr("-9223372036854775808") == "-9223372036854775808");
  CHECK(expr("-1.0000000000000001e-05") == "-1.0000000000000001e-05f");
  CHECK(expr("-0.5 * x") == "(-0.5f * x)");
  CHECK(expr("not a == b and c or d") == "(((not (a == b)) and c) or d)");
  CHECK(expr("a < b <= c is not None") == "(a < b <= c is not None)");
  CHECK(expr("x not in y") == "(x not in y)");
  CHECK(expr("a if c else b if d else e") == "(a if c else (b if d else e))");
  CHECK(expr("a // b % c - d << 1 & e | f ^ g") == "((((((a // b) % c) - d) << 1) & e) | (f ^ g))");
  CHECK(expr("x[1:2, ::3, ..., None, i]") == "x[(1:2:_, _:_:3, ..., None, i,)]");
  CHECK(expr("(torch.size(query))[0]") == "torch.size(query)[0]");
  CHECK(expr("f(a, b=1, c=[], )") == "f(a, b=1, c=[])");
  CHECK(expr("{\"a\": y, \"b\": (1,), \"c\": ()}") == "{\"a\", y, \"b\", (1,), \"c\", (,)}");
  CHECK(expr("(a, b, )") == "(a, b,)");
  CHECK(expr("\"ab\" 'cd'") == "\"abcd\"");
  CHECK(expr("True if None else False") == "(True if None else False)");
}

TEST_CASE("parser: typed builtins take types", "[frontend][parser]") {
  CHECK(expr("annotate(List[Optional[Tensor]], [relative_position_index])") ==
        "annotate<List[Optional[Tensor]]>([relative_position_index])");
  CHECK(expr("annotate(List[int], [])") == "annotate<List[int]>([])");
  CHECK(expr("annotate(number, T)") == "annotate<number>(T)");
  CHECK(expr("unchecked_cast(Tensor, hx)") == "cast<Tensor>(hx)");
  CHECK(expr("uninitialized(Tuple[Tensor, Tensor])") == "uninitialized<Tuple[Tensor, Tensor]>");
  CHECK(expr("uninitialized(Tuple[()])") == "uninitialized<Tuple[()]>");
  CHECK(expr("isinstance(x, (int, float))") == "isinstance(x, int, float)");
  CHECK(expr("isinstance(x, Dict[str, Tensor])") == "isinstance(x, Dict[str, Tensor])");
}

TEST_CASE("parser: real printed code from torch 1.13 archives", "[frontend][parser]") {
  // Pieces of nn.GRU (scripted), Sequential, swin_t and MultiheadAttention as torch prints them.
  const char* src = R"(class GRU(Module):
  __parameters__ = ["weight_ih_l0", ]
  __buffers__ = []
  weight_ih_l0 : Tensor
  _flat_weights : List[Tensor]
  num_layers : Final[int] = 2
  dropout : Final[float] = 0.
  mode : Final[str] = "GRU"
  def forward__0(self: __torch__.torch.nn.modules.rnn.___torch_mangle_9.GRU,
    input: Tensor,
    hx: Optional[Tensor]=None) -> Tuple[Tensor, Tensor]:
    _2 = uninitialized(Optional[Tensor])
    if torch.__isnot__(hx, None):
      hx2 = unchecked_cast(Tensor, hx)
      hx1 : Optional[Tensor] = torch.unsqueeze(hx2, 1)
    else:
      hx1 = hx
    _18 = __torch__.torch.nn.modules.rnn._apply_permutation
    _28, _29, _30, = expected_hidden_size
    _9, _10 = torch.gru(input, hx1, self._flat_weights, True, 2, 0., False, False, True)
    ops.prim.RaiseException(_3, "builtins.RuntimeError")
    return (_9, _10)
class Sequential(Module):
  __parameters__ = []
  __buffers__ = []
  __annotations__["0"] = __torch__.torchvision.models.resnet.BasicBlock
  __annotations__["1"] = __torch__.torchvision.models.resnet.___torch_mangle_10.BasicBlock
  def forward(self: __torch__.torch.nn.modules.container.Sequential,
    argument_1: Tensor) -> Tensor:
    _1 = getattr(self, "1")
    _0 = getattr(self, "0")
    _2 = (_1).forward((_0).forward(argument_1, ), )
    return _2
class PackedSequence(NamedTuple):
  data : Tensor
  sorted_indices : Optional[Tensor]
def attention(x: Tensor, n_h: Tensor, relative_position_index: Tensor, t: Tensor) -> Tensor:
  n = ops.prim.NumToTensor(torch.size(x, 0))
  _0 = int(n)
  x0 = torch.reshape(x, [_0, 768, int(torch.mul(n_h, n_w))])
  _1 = torch.slice(t, 0, 0, 9223372036854775807)
  _7 = annotate(List[Optional[Tensor]], [relative_position_index])
  b = torch.index(t, _7)
  input, _8 = torch._native_multi_head_attention(a, a, a, 768, 12, w, b, w2, b2, None, False)
  _9 = torch.fill_(_35, CONSTANTS.c2)
  _10 = torch.arange(0, annotate(number, n), dtype=4, layout=None, device=torch.device("cpu"), pin_memory=False)
  _11 = torch._convolution(x, w, None, [2, 2], [3, 3], [1, 1], False, [0, 0], 1, False, False, True, True)
  _12 = torch.masked_fill(m, k, -inf)
  while _2:
    _2, z0, j = _3, z1, j0
  for i in range(n):
    pass
  return x0
)";
  SourceFile f = parse_source(src, "code/__torch__/mixed.py");
  const ClassDef* gru = f.find_class("GRU");
  REQUIRE(gru != nullptr);
  REQUIRE(gru->find_attribute("num_layers") != nullptr);
  CHECK(gru->find_attribute("num_layers")->type.str() == "Final[int]");
  REQUIRE(gru->find_attribute("num_layers")->value != nullptr);
  CHECK(gru->find_attribute("num_layers")->value->int_value == 2);
  CHECK(gru->find_attribute("mode")->value->text == "GRU");
  CHECK(gru->find_attribute("_flat_weights")->value == nullptr);
  const FunctionDef* fwd = gru->find_method("forward__0");
  REQUIRE(fwd != nullptr);
  CHECK(fwd->params[2].type->str() == "Optional[Tensor]");
  CHECK(fwd->params[2].default_value->kind == ExprKind::kNone);
  CHECK(fwd->returns->str() == "Tuple[Tensor, Tensor]");
  const Stmt& branch = *fwd->body[1];
  REQUIRE(branch.body.size() == 2);
  CHECK(branch.body[1]->kind == StmtKind::kAnnAssign);
  CHECK(branch.body[1]->type.str() == "Optional[Tensor]");
  CHECK(show(*fwd->body[3]->targets[0]) == "(_28, _29, _30,)");
  CHECK(show(*fwd->body[4]->targets[0]) == "(_9, _10,)");

  const ClassDef* seq = f.find_class("Sequential");
  REQUIRE(seq != nullptr);
  REQUIRE(seq->attributes.size() == 2);
  CHECK(seq->attributes[1].name == "1");
  CHECK(seq->attributes[1].type.str() == "__torch__.torchvision.models.resnet.___torch_mangle_10.BasicBlock");
  CHECK(show(*seq->find_method("forward")->body[2]->value) == "_1.forward(_0.forward(argument_1))");

  const ClassDef* packed = f.find_class("PackedSequence");
  REQUIRE(packed != nullptr);
  CHECK(packed->bases == std::vector<std::string>{"NamedTuple"});
  CHECK(packed->attributes.size() == 2);

  const FunctionDef* att = f.find_function("attention");
  REQUIRE(att != nullptr);
  REQUIRE(att->body.size() == 14);
  CHECK(show(*att->body[3]->value) == "torch.slice(t, 0, 0, 9223372036854775807)");
  CHECK(show(*att->body[8]->value) ==
        "torch.arange(0, annotate<number>(n), dtype=4, layout=None, device=torch.device(\"cpu\"), "
        "pin_memory=False)");
  CHECK(show(*att->body[10]->value) == "torch.masked_fill(m, k, (- inf))");
  CHECK(att->body[11]->kind == StmtKind::kWhile);
  CHECK(att->body[12]->kind == StmtKind::kFor);
  CHECK(show(*att->body[12]->value) == "range(n)");
}

TEST_CASE("parser: imports, op_version_set and statement forms", "[frontend][parser]") {
  const char* src = R"(op_version_set = 1
import __torch__.torch.nn.modules.linear
from typing import List, Tuple
def f(x: int, y: float=1.5) -> int:
  a = b = x
  a += 1
  if a:
    pass
  elif b:
    a = 2
  else:
    assert a, "msg"
  if x: return a
  raise ValueError("bad")
)";
  SourceFile f = parse_source(src, "code/f.py");
  CHECK(f.op_version_set == 1);
  REQUIRE(f.body.size() == 4);
  CHECK(f.body[1]->kind == StmtKind::kImport);
  CHECK(f.body[1]->text == "import __torch__.torch.nn.modules.linear");
  CHECK(f.body[2]->text == "from typing import List, Tuple");
  const FunctionDef* fn = f.find_function("f");
  REQUIRE(fn != nullptr);
  CHECK(fn->params[1].default_value->float_value == 1.5);
  REQUIRE(fn->body.size() == 5);
  CHECK(fn->body[0]->targets.size() == 2);
  CHECK(fn->body[1]->kind == StmtKind::kAugAssign);
  CHECK(fn->body[1]->op == "+");
  const Stmt& chain = *fn->body[2];
  REQUIRE(chain.orelse.size() == 1);
  CHECK(chain.orelse[0]->kind == StmtKind::kIf);
  CHECK(chain.orelse[0]->orelse[0]->kind == StmtKind::kAssert);
  CHECK(fn->body[3]->body[0]->kind == StmtKind::kReturn);
  CHECK(fn->body[4]->kind == StmtKind::kRaise);
}

TEST_CASE("parser: errors name the file and line", "[frontend][parser]") {
  std::string src;
  for (int i = 1; i <= 11; ++i) src += "x" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  src += "y = f(a x)\n";  // line 12
  CHECK(error_of([&] { parse_source(src, "code/__torch__/foo.py"); }) ==
        "code/__torch__/foo.py:12: expected ')' but found 'NAME x'");
  CHECK(error_of([] { parse_source("def f(x)\n  return x\n", "code/a.py"); }) ==
        "code/a.py:1: expected ':' but found 'NEWLINE'");
  CHECK(error_of([] { parse_source("def f(x):\nreturn x\n", "code/b.py"); }) ==
        "code/b.py:2: expected an indented block but found 'NAME return'");
  CHECK(error_of([] { parse_source("x = (1, \n  2\n", "code/c.py"); }) == "code/c.py:1: '(' is never closed");
  CHECK(error_of([] { parse_source("f(x) = 3\n", "code/d.py"); }) ==
        "code/d.py:1: cannot assign to this expression");
  CHECK(error_of([] { parse_source("class A(Module):\n  return 1\n", "code/e.py"); }) ==
        "code/e.py:2: unexpected statement in the body of class 'A'");
  CHECK(error_of([] { parse_source("def f(a=1, b):\n  pass\n", "code/g.py"); }) ==
        "code/g.py:1: parameter 'b' without a default follows one with a default");
  CHECK(error_of([] { parse_source("x = 1\nx = [1, 2\n  y]\n", "code/h.py"); }) ==
        "code/h.py:3: expected ']' but found 'NAME y'");
  CHECK(error_of([] { parse_source("def f():\n  pass\ndef f():\n  pass\n", "code/k.py"); }) ==
        "code/k.py:3: function 'f' is defined twice");
  // Nesting that would exhaust the stack of a naive recursive parser is refused.
  std::string deep = "x = " + std::string(400, '[') + std::string(400, ']') + "\n";
  CHECK_THROWS_WITH(parse_source(deep, "code/deep.py"),
                    Catch::Contains("code/deep.py:1: code nested too deeply"));
  std::string nots = "x = ";
  for (int i = 0; i < 1000; ++i) nots += "not ";
  CHECK_THROWS_WITH(parse_source(nots + "y\n", "code/nots.py"), Catch::Contains("nested too deeply"));
}
