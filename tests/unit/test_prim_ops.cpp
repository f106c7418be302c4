// Scalar, list and tensor-query prim ops. Number and typed-list overloads are checked against the
// TorchScript interpreter's own results (tests/fixtures/ops/shape/make_prim_expectations.py); generic
// list ops (t[] arguments cannot be called from Python) and tensor queries are checked by hand.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy {
namespace {

// One generated case; values use the token format described in make_prim_expectations.py.
struct PrimCase {
  const char* op;
  const char* args;      // space-separated value tokens
  const char* expected;  // one value token
  bool raises;
};

#include "tests/fixtures/ops/shape/prim_cases.inc"

IValue Int(int64_t v) { return IValue(v); }
IValue Flt(double v) { return IValue(v); }
IValue Bool(bool v) { return IValue(v); }
IValue Str(const char* v) { return IValue(v); }
IValue IntL(std::vector<int64_t> v) { return IValue::int_list(v); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

IValue parse_scalar(char kind, const std::string& text) {
  switch (kind) {
    case 'i':
      return IValue(static_cast<int64_t>(std::stoll(text)));
    case 'f':
      return IValue(std::strtod(text.c_str(), nullptr));
    case 'b':
      return IValue(text == "1");
    default:
      return IValue(text);
  }
}

IValue parse_value(const std::string& token) {
  if (token == "N") return IValue();
  size_t colon = token.find(':');
  REQUIRE(colon != std::string::npos);
  const std::string kind = token.substr(0, colon), rest = token.substr(colon + 1);
  if (kind.size() == 1) return parse_scalar(kind[0], rest);
  REQUIRE((kind.size() == 2 && kind[1] == 'l'));
  IValueList items;
  if (!rest.empty())
    for (const std::string& item : split(rest, ',')) items.push_back(parse_scalar(kind[0], item));
  return IValue::list(std::move(items));
}

OpRegistry& prim_registry() {
  static OpRegistry registry = [] {
    OpRegistry r;
    register_prim_ops(r);
    return r;
  }();
  return registry;
}

const OpOverload* find_op(const std::string& full) {
  size_t dot = full.find('.', full.find("::"));
  std::string name = full.substr(0, dot);
  std::string overload = dot == std::string::npos ? "" : full.substr(dot + 1);
  return prim_registry().find(name, overload);
}

IValueList call(const std::string& op_name, IValueList args) {
  const OpOverload* op = find_op(op_name);
  INFO("op " << op_name);
  REQUIRE(op != nullptr);
  const auto& formals = op->schema.arguments;
  for (size_t i = args.size(); i < formals.size(); ++i) {
    REQUIRE(formals[i].default_value.has_value());
    args.push_back(*formals[i].default_value);
  }
  return op->kernel(args);
}

IValue call1(const std::string& op_name, IValueList args) {
  IValueList out = call(op_name, std::move(args));
  REQUIRE(out.size() == 1);
  return out[0];
}

// Same kind (an int result must stay an int) and same value; floats to the last bit, nan == nan.
bool same(const IValue& a, const IValue& b) {
  if (a.kind_name() != std::string(b.kind_name())) return false;
  if (a.is_double()) {
    double x = a.to_double(), y = b.to_double();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return x == y && std::signbit(x) == std::signbit(y);
  }
  if (a.is_list()) {
    const IValueList &x = a.to_list(), &y = b.to_list();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!same(x[i], y[i])) return false;
    return true;
  }
  if (a.is_string()) return a.to_string() == b.to_string();
  if (a.is_none()) return true;
  return a.to_int() == b.to_int();
}

TEST_CASE("scalar and typed-list prim ops match TorchScript on generated cases", "[ops][prim]") {
  for (const PrimCase& c : kPrimCases) {
    IValueList in;
    if (*c.args)
      for (const std::string& token : split(c.args, ' ')) in.push_back(parse_value(token));
    const IValue expected = parse_value(c.expected);
    INFO(c.op << "(" << c.args << ")");
    const OpOverload* op = find_op(c.op);
    REQUIRE(op != nullptr);
    if (c.raises) {
      CHECK_THROWS_AS(op->kernel(in), Error);
      continue;
    }
    IValueList out;
    REQUIRE_NOTHROW(out = op->kernel(in));
    REQUIRE(out.size() == 1);
    INFO("got " << out[0].kind_name() << " " << out[0].repr() << ", want " << expected.kind_name() << " "
                << expected.repr());
    CHECK(same(out[0], expected));
  }
}

TEST_CASE("integer division and modulo by zero are errors, not crashes", "[ops][prim]") {
  CHECK_THROWS_AS(call1("aten::remainder.int", {Int(5), Int(0)}), Error);
  CHECK_THROWS_AS(call1("aten::remainder", {Int(5), Int(0)}), Error);
  CHECK_THROWS_AS(call1("aten::floordiv", {Int(5), Int(0)}), Error);
  // INT64_MIN // -1 wraps instead of trapping.
  CHECK(call1("aten::floordiv.int", {Int(INT64_MIN), Int(-1)}).to_int() == INT64_MIN);
  CHECK(call1("aten::remainder.int", {Int(INT64_MIN), Int(-1)}).to_int() == 0);
  // pow.int_to_int keeps ints (the schema's return type) and rejects negative exponents.
  IValue p = call1("aten::pow.int_to_int", {Int(3), Int(4)});
  CHECK(p.is_int());
  CHECK(p.to_int() == 81);
  CHECK_THROWS_AS(call1("aten::pow.int_to_int", {Int(3), Int(-1)}), Error);
  CHECK_THROWS_AS(call1("aten::pow.float", {Flt(0.0), Flt(-1.0)}), Error);
}

TEST_CASE("generic list ops follow Python semantics and mutate shared lists", "[ops][prim]") {
  IValue l = IntL({0, 1, 2, 3, 4});
  CHECK(call1("aten::__getitem__.t", {l, Int(-1)}).to_int() == 4);
  CHECK(call1("aten::select.t", {l, Int(1)}).to_int() == 1);
  CHECK_THROWS_AS(call1("aten::__getitem__.t", {l, Int(5)}), Error);
  CHECK_THROWS_AS(call1("aten::__getitem__.t", {l, Int(-6)}), Error);
  CHECK(call1("aten::len.t", {l}).to_int() == 5);
  // Slicing (values checked with TorchScript's x[a:b:c]).
  CHECK(call1("aten::slice.t", {l, Int(4), Int(0), Int(-1)}).to_int_list() ==
        std::vector<int64_t>{4, 3, 2, 1});
  CHECK(call1("aten::slice.t", {l, Int(1)}).to_int_list() == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(call1("aten::slice.t", {l, IValue(), IValue(), Int(-2)}).to_int_list() ==
        std::vector<int64_t>{4, 2, 0});
  CHECK(call1("aten::slice.t", {l, Int(-100), Int(100), Int(3)}).to_int_list() == std::vector<int64_t>{0, 3});
  CHECK(call1("aten::slice.t", {l, Int(3), Int(1)}).to_int_list().empty());
  CHECK_THROWS_AS(call1("aten::slice.t", {l, Int(0), Int(2), Int(0)}), Error);

  // A mutation is seen through every alias of the list; copies are independent.
  IValue alias = l;
  IValue copy = call1("aten::list.t", {l});
  IValue appended = call1("aten::append.t", {l, Int(5)});
  CHECK(alias.to_list().size() == 6);
  CHECK(&appended.to_list() == &l.to_list());
  CHECK(copy.to_list().size() == 5);
  call("aten::_set_item.t", {l, Int(-1), Int(50)});
  CHECK(alias.to_int_list().back() == 50);
  call("aten::insert.t", {l, Int(-100), Int(-1)});
  CHECK(l.to_int_list().front() == -1);
  CHECK(call1("aten::pop.t", {l}).to_int() == 50);
  CHECK(call1("aten::pop.t", {l, Int(0)}).to_int() == -1);
  CHECK(l.to_int_list() == std::vector<int64_t>{0, 1, 2, 3, 4});
  call("aten::extend.t", {l, l});
  CHECK(l.to_list().size() == 10);
  call("aten::reverse.t", {l});
  CHECK(l.to_int_list().front() == 4);
  call("aten::clear.t", {l});
  CHECK(alias.to_list().empty());
  CHECK_THROWS_AS(call1("aten::pop.t", {l}), Error);

  IValue a = IntL({1, 2});
  IValue sum = call1("aten::add.t", {a, IntL({3})});
  CHECK(sum.to_int_list() == std::vector<int64_t>{1, 2, 3});
  CHECK(a.to_list().size() == 2);
  CHECK(call1("aten::mul.left_t", {a, Int(2)}).to_int_list() == std::vector<int64_t>{1, 2, 1, 2});
  CHECK(call1("aten::mul.right_", {Int(0), a}).to_list().empty());
  IValue same_list = call1("aten::add_.t", {a, a});
  CHECK(a.to_int_list() == std::vector<int64_t>{1, 2, 1, 2});
  CHECK(&same_list.to_list() == &a.to_list());
}

Tensor tensor_f32(const Shape& shape) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i) - 1.5;
  return Tensor::from_doubles(shape, DType::kFloat32, v);
}

TEST_CASE("tensor queries: size, dim, numel, len, dtype, device", "[ops][prim]") {
  Tensor x = tensor_f32({2, 3, 5});
  CHECK(call1("aten::size", {x}).to_int_list() == std::vector<int64_t>{2, 3, 5});
  CHECK(call1("aten::size.int", {x, Int(-1)}).to_int() == 5);
  CHECK(call1("aten::size.int", {x, Int(0)}).to_int() == 2);
  CHECK_THROWS_AS(call1("aten::size.int", {x, Int(3)}), Error);
  CHECK_THROWS_AS(call1("aten::size.int", {Tensor::scalar_double(1.0), Int(0)}), Error);
  CHECK(call1("aten::dim", {x}).to_int() == 3);
  CHECK(call1("aten::numel", {x}).to_int() == 30);
  CHECK(call1("aten::len.Tensor", {x}).to_int() == 2);
  CHECK_THROWS_AS(call1("aten::len.Tensor", {Tensor::scalar_int(3)}), Error);
  CHECK(call1("prim::dtype", {x}).to_int() == 6);
  CHECK(call1("prim::dtype", {Tensor::scalar_int(3)}).to_int() == 4);
  CHECK(call1("prim::device", {x}).to_device().name == "cpu");
  CHECK(call1("aten::device", {Str("cpu")}).to_device().name == "cpu");
  CHECK_THROWS_AS(call1("aten::device", {Str("gpu")}), Error);
  CHECK(
      call1("aten::eq.device", {call1("prim::device", {x}), call1("aten::device", {Str("cpu")})}).to_bool());
}

TEST_CASE("tensor <-> number conversions follow PyTorch", "[ops][prim]") {
  Tensor n = call1("prim::NumToTensor.Scalar", {Int(7)}).to_tensor();
  CHECK(n.dim() == 0);
  CHECK(n.dtype() == DType::kInt64);
  CHECK(n.item_int() == 7);
  Tensor f = call1("prim::NumToTensor.Scalar", {Flt(0.1)}).to_tensor();
  CHECK(f.dtype() == DType::kFloat64);
  CHECK(f.item_double() == 0.1);
  CHECK(call1("prim::NumToTensor.bool", {Bool(true)}).to_tensor().dtype() == DType::kBool);

  Tensor x = Tensor::from_doubles({1}, DType::kFloat32, {-2.75});
  IValue i = call1("aten::Int.Tensor", {x});
  CHECK(i.is_int());
  CHECK(i.to_int() == -2);
  CHECK(call1("aten::Float.Tensor", {x}).to_double() == -2.75);
  CHECK(call1("aten::Bool.Tensor", {x}).to_bool());
  CHECK_THROWS_AS(call1("aten::Int.Tensor", {tensor_f32({2})}), Error);

  IValue s = call1("aten::ScalarImplicit", {Tensor::scalar_int(5, DType::kInt32)});
  CHECK(s.is_int());
  CHECK(s.to_int() == 5);
  CHECK(call1("aten::ScalarImplicit", {Tensor::scalar_double(1.5, DType::kFloat32)}).is_double());
  CHECK(call1("aten::ScalarImplicit", {Tensor::scalar_bool(true)}).is_bool());
  // Implicit conversions need a 0-dim tensor; item() takes any one-element tensor.
  CHECK_THROWS_AS(call1("aten::ScalarImplicit", {Tensor::from_ints({1}, DType::kInt64, {5})}), Error);
  CHECK(call1("aten::item", {Tensor::from_ints({1, 1}, DType::kInt64, {5})}).to_int() == 5);
  CHECK(call1("aten::IntImplicit", {Tensor::scalar_int(9)}).to_int() == 9);
  CHECK_THROWS_AS(call1("aten::IntImplicit", {Tensor::scalar_double(9.0)}), Error);
  CHECK(call1("aten::FloatImplicit", {Tensor::scalar_double(0.5)}).to_double() == 0.5);
}

TEST_CASE("str, identity and loop helpers", "[ops][prim]") {
  // Values as TorchScript's str() prints them (checked with torch.jit.script).
  CHECK(call1("aten::str", {Flt(2.5)}).to_string() == "2.5");
  CHECK(call1("aten::str", {Flt(0.1)}).to_string() == "0.10000000000000001");
  CHECK(call1("aten::str", {Flt(1e16)}).to_string() == "10000000000000000.");
  CHECK(call1("aten::str", {Int(7)}).to_string() == "7");
  CHECK(call1("aten::str", {Bool(true)}).to_string() == "True");
  CHECK(call1("aten::str", {IntL({1, 2})}).to_string() == "[1, 2]");
  CHECK(call1("aten::str", {Str("abc")}).to_string() == "abc");

  IValue none;
  IValue l = IntL({1});
  CHECK(call1("aten::__is__", {none, IValue()}).to_bool());
  CHECK_FALSE(call1("aten::__is__", {l, IValue()}).to_bool());
  CHECK(call1("aten::__isnot__", {l, IValue()}).to_bool());
  CHECK(call1("aten::__is__", {l, l}).to_bool());
  CHECK_FALSE(call1("aten::__is__", {l, IntL({1})}).to_bool());
  Tensor t = tensor_f32({2});
  CHECK(call1("aten::__is__", {t, t}).to_bool());
  CHECK_FALSE(call1("aten::__is__", {t, t.clone()}).to_bool());

  CHECK(call("aten::warn", {Str("a model warning")}).empty());
}

}  // namespace
}  // namespace convoy
