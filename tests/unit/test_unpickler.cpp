// The pickle VM on hand-written pickles: every opcode family, the allow-list, the hooks, and
// hostile input (truncation, underflow, bad memo indices, cycles, deep nesting, memo bombs).
#include <catch2/catch.hpp>
#include <string>

#include "runtime/error.h"
#include "runtime/torchscript/unpickler.h"

using namespace convoy;

namespace {

// A pickle from its bytes; `\x80\x02` (PROTO 2) is written out where a test wants it.
std::string P(std::initializer_list<unsigned char> bytes) { return std::string(bytes.begin(), bytes.end()); }

UnpicklerHooks no_globals() {
  UnpicklerHooks h;
  h.allow_global = [](const PickleGlobal&) { return false; };
  return h;
}

IValue run(const std::string& pickle, const UnpicklerHooks& hooks = no_globals()) {
  return unpickle(pickle, "test.pkl", hooks);
}

std::string error_of(const std::string& pickle, const UnpicklerHooks& hooks = no_globals()) {
  try {
    run(pickle, hooks);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

using Catch::Matchers::Contains;

}  // namespace

TEST_CASE("unpickler: integers of every encoding", "[unpickler]") {
  CHECK(run("\x80\x02K\x05.").to_int() == 5);                         // BININT1
  CHECK(run(P({0x80, 2, 'M', 0x34, 0x12, '.'})).to_int() == 0x1234);  // BININT2
  CHECK(run(P({'J', 0xfe, 0xff, 0xff, 0xff, '.'})).to_int() == -2);   // BININT, signed
  CHECK(run("I42\n.").to_int() == 42);
  CHECK(run("I-7\n.").to_int() == -7);
  CHECK(run("I01\n.").is_bool());  // protocol 0 True
  CHECK(run("I01\n.").to_bool() == true);
  CHECK(run("I00\n.").to_bool() == false);
  CHECK(run("L123456789012L\n.").to_int() == 123456789012);
  // LONG1: little-endian two's complement.
  CHECK(run(P({0x8a, 0, '.'})).to_int() == 0);
  CHECK(run(P({0x8a, 1, 0xff, '.'})).to_int() == -1);
  CHECK(run(P({0x8a, 2, 0x00, 0x80, '.'})).to_int() == -32768);
  CHECK(run(P({0x8a, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '.'})).to_int() == INT64_MAX);
  CHECK(run(P({0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80, '.'})).to_int() == INT64_MIN);
  // Nine bytes that only extend the sign still fit.
  CHECK(run(P({0x8a, 9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '.'})).to_int() == -2);
  // LONG4 with a 3-byte payload.
  CHECK(run(P({0x8b, 3, 0, 0, 0, 0x01, 0x00, 0x01, '.'})).to_int() == 65537);
}

TEST_CASE("unpickler: integers wider than 64 bits are refused", "[unpickler]") {
  // 2**63 needs a ninth byte.
  CHECK_THAT(error_of(P({0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, '.'})),
             Contains("does not fit in 64 bits"));
  CHECK_THAT(error_of(P({0x8a, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, '.'})), Contains("does not fit in 64 bits"));
  CHECK_THAT(error_of("L99999999999999999999L\n."), Contains("does not fit in 64 bits"));
  CHECK_THAT(error_of("I12x\n."), Contains("malformed INT argument '12x'"));
}

TEST_CASE("unpickler: floats, None and booleans", "[unpickler]") {
  // BINFLOAT is big-endian: 1.5 = 0x3ff8000000000000.
  CHECK(run(P({'G', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, '.'})).to_double() == 1.5);
  CHECK(run(P({'G', 0xc0, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, '.'})).to_double() == -3.141592653589793);
  CHECK(run("F2.25\n.").to_double() == 2.25);
  CHECK(run("N.").is_none());
  CHECK(run(P({0x88, '.'})).to_bool() == true);
  CHECK(run(P({0x89, '.'})).to_bool() == false);
}

TEST_CASE("unpickler: strings and bytes", "[unpickler]") {
  CHECK(run(P({'X', 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', '.'})).to_string() == "hello");
  CHECK(run(P({'U', 2, 'a', 'b', '.'})).to_string() == "ab");
  CHECK(run(P({'T', 3, 0, 0, 0, 'x', 'y', 'z', '.'})).to_string() == "xyz");
  CHECK(run(P({0x8c, 1, 'q', '.'})).to_string() == "q");
  CHECK(run(P({'C', 2, 0x00, 0xff, '.'})).to_string() == std::string("\x00\xff", 2));
  CHECK(run("S'a\\nb\\'c\\x41'\n.").to_string() == "a\nb'cA");
  CHECK(run("S\"dq\"\n.").to_string() == "dq");
  // raw-unicode-escape: \u escapes and latin-1 bytes, returned as UTF-8.
  CHECK(run("Vcaf\\u00e9\n.").to_string() == "caf\xc3\xa9");
  CHECK(run(P({'V', 0xe9, '\n', '.'})).to_string() == "\xc3\xa9");
  CHECK_THAT(error_of("Sunquoted\n."), Contains("not a quoted string"));
}

TEST_CASE("unpickler: tuples, lists and dicts", "[unpickler]") {
  CHECK(run(").").to_tuple().empty());
  IValue t1 = run(P({'K', 1, 0x85, '.'}));
  REQUIRE(t1.to_tuple().size() == 1);
  IValue t3 = run(P({'K', 1, 'K', 2, 'K', 3, 0x87, '.'}));
  CHECK(t3.to_int_list() == std::vector<int64_t>{1, 2, 3});
  IValue t2 = run(P({'K', 1, 'K', 2, 0x86, '.'}));
  CHECK(t2.to_int_list() == std::vector<int64_t>{1, 2});
  IValue t = run(P({'(', 'K', 4, 'K', 5, 'K', 6, 'K', 7, 't', '.'}));
  CHECK(t.to_int_list() == std::vector<int64_t>{4, 5, 6, 7});

  IValue l = run(P({']', '(', 'K', 1, 'K', 2, 'e', 'K', 3, 'a', '.'}));  // EMPTY_LIST APPENDS APPEND
  REQUIRE(l.is_list());
  CHECK(l.to_int_list() == std::vector<int64_t>{1, 2, 3});
  CHECK(run(P({'(', 'K', 9, 'l', '.'})).to_int_list() == std::vector<int64_t>{9});  // LIST

  // EMPTY_DICT SETITEMS SETITEM; re-setting a key replaces its value in place, as in Python.
  IValue d = run(P({'}', '(', 'U', 1, 'a', 'K', 1, 'U', 1, 'b', 'K', 2, 'u', 'U', 1, 'a', 'K', 3, 's', '.'}));
  REQUIRE(d.is_dict());
  auto& items = d.to_dict().items;
  REQUIRE(items.size() == 2);
  CHECK(items[0].first.to_string() == "a");
  CHECK(items[0].second.to_int() == 3);
  CHECK(items[1].first.to_string() == "b");
  CHECK(items[1].second.to_int() == 2);
  IValue d2 = run(P({'(', 'K', 1, 'K', 2, 'd', '.'}));  // DICT
  REQUIRE(d2.to_dict().items.size() == 1);
  CHECK(d2.to_dict().items[0].second.to_int() == 2);
  // True and 1 are the same key, as in Python.
  IValue d3 = run(P({'}', 'K', 1, 'U', 1, 'x', 's', 0x88, 'U', 1, 'y', 's', '.'}));
  CHECK(d3.to_dict().items.size() == 1);
  CHECK_THAT(error_of(P({'}', ']', 'K', 1, 's', '.'})), Contains("unhashable dict key of type List"));
  CHECK_THAT(error_of(P({'(', 'K', 1, 'd', '.'})), Contains("odd number of items"));
}

TEST_CASE("unpickler: memo, DUP, POP and POP_MARK", "[unpickler]") {
  // The list is memoised, fetched again and appended to: both references see one list.
  IValue v = run(P({']', 'q', 0, 'h', 0, 'K', 7, 'a', 0x86, '.'}));
  const auto& pair = v.to_tuple();
  REQUIRE(pair.size() == 2);
  CHECK(pair[0].to_int_list() == std::vector<int64_t>{7});
  CHECK(pair[1].to_int_list() == std::vector<int64_t>{7});
  pair[0].to_list().push_back(IValue(int64_t{8}));
  CHECK(pair[1].to_list().size() == 2);  // shared, as TorchScript lists are

  CHECK(run(P({'K', 3, 'r', 0x10, 0x27, 0, 0, '0', 'j', 0x10, 0x27, 0, 0, '.'})).to_int() ==
        3);                                                                             // LONG_BINPUT 10000
  CHECK(run("K\x05p12\n0g12\n.").to_int() == 5);                                        // PUT/GET text
  CHECK(run(P({'K', 4, 0x94, '0', 'h', 0, '.'})).to_int() == 4);                        // MEMOIZE
  CHECK(run(P({'K', 2, '2', 0x86, '.'})).to_int_list() == std::vector<int64_t>{2, 2});  // DUP
  CHECK(run(P({'K', 1, 'K', 2, '0', '.'})).to_int() == 1);                              // POP
  CHECK(run(P({'K', 1, '(', 'K', 2, 'K', 3, '1', '.'})).to_int() == 1);                 // POP_MARK
  CHECK_THAT(error_of(P({'h', 7, '.'})), Contains("memo index 7 is not set") && Contains("BINGET at byte 0"));
  CHECK_THAT(error_of(P({'K', 1, 'j', 1, 0, 0, 0, '.'})), Contains("memo index 1 is not set"));
}

TEST_CASE("unpickler: globals go through the allow-list and hooks", "[unpickler]") {
  CHECK_THAT(error_of("cos\nsystem\n(S'echo hi'\ntR."),
             Contains("test.pkl: global 'os.system' is not allowed") && Contains("GLOBAL at byte 0"));
  CHECK_THAT(error_of(P({0x80, 2, 'c', 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm', '\n', '.'})),
             Contains("global 'os.system' is not allowed") && Contains("at byte 2"));

  std::vector<std::string> calls;
  UnpicklerHooks h;
  h.allow_global = [](const PickleGlobal& g) { return g.module == "m"; };
  h.call = [&](const PickleGlobal& g, IValueList& args) -> IValue {
    calls.push_back(g.qualified());
    int64_t sum = 0;
    for (auto& a : args) sum += a.to_int();
    return IValue(sum);
  };
  h.new_object = [](const PickleGlobal& g, IValueList& args) -> IValue {
    auto o = std::make_shared<Object>();
    o->type_name = g.qualified();
    return IValue(o);
  };
  h.build = [](IValue obj, IValue state) -> IValue {
    obj.to_object()->set("state", state);
    return obj;
  };
  h.persistent_load = [](const IValue& pid) -> IValue {
    return IValue("pid:" + pid.to_tuple()[0].to_string());
  };

  CHECK(run("cm\nadd\n(K\x02K\x03tR.", h).to_int() == 5);
  CHECK(calls == std::vector<std::string>{"m.add"});
  IValue obj = run(P({'c', 'm', '\n', 'C', '\n', ')', 0x81, 'K', 9, 'b', '.'}), h);
  REQUIRE(obj.is_object());
  CHECK(obj.to_object()->type_name == "m.C");
  CHECK(obj.to_object()->find("state")->to_int() == 9);
  CHECK(run(P({'U', 1, 'k', 0x85, 'Q', '.'}), h).to_string() == "pid:k");            // BINPERSID
  CHECK_THAT(error_of("Pabc\n.", h), Contains("persistent id (PERSID at byte 0)"));  // PERSID passes a str
  // A global where a value is expected needs global_value.
  CHECK_THAT(error_of("cm\nX\n\x85.", h), Contains("global 'm.X' cannot be used as a value"));
  h.global_value = [](const PickleGlobal& g) { return IValue("G:" + g.name); };
  CHECK(run("cm\nX\n\x85.", h).to_tuple()[0].to_string() == "G:X");
  // REDUCE of something that is not a global.
  CHECK_THAT(error_of(P({'K', 1, ')', 'R', '.'}), h),
             Contains("REDUCE needs a class or function but found a int"));
  // Errors thrown by hooks name the pickle, the opcode and its position.
  h.call = [](const PickleGlobal&, IValueList&) -> IValue { fail(ErrorKind::kInvalidInput, "boom"); };
  CHECK_THAT(error_of("cm\nf\n)R.", h), Contains("test.pkl: calling 'm.f' (REDUCE at byte 6): boom"));
}

TEST_CASE("unpickler: malformed input is an error with its byte offset", "[unpickler]") {
  CHECK_THAT(error_of(""), Contains("test.pkl: pickle ends without STOP"));
  CHECK_THAT(error_of("K\x01"), Contains("pickle ends without STOP") && Contains("at byte 2"));
  CHECK_THAT(error_of(P({0x80, 2, 'J', 1, 2})), Contains("truncated pickle") && Contains("BININT at byte 2"));
  CHECK_THAT(error_of(P({'X', 100, 0, 0, 0, 'a', '.'})),
             Contains("needs 100 more bytes but only 2 are left"));
  CHECK_THAT(error_of(P({'X', 0xff, 0xff, 0xff, 0xff})), Contains("truncated pickle"));
  CHECK_THAT(error_of(P({0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
             Contains("truncated pickle"));
  CHECK_THAT(error_of("I12"), Contains("unterminated text argument"));
  CHECK_THAT(error_of("a."), Contains("stack underflow") && Contains("APPEND at byte 0"));
  CHECK_THAT(error_of("K\x01K\x02t."), Contains("no MARK to pop to") && Contains("TUPLE at byte 4"));
  CHECK_THAT(error_of(P({'(', 'a', '.'})), Contains("stack underflow"));  // the mark hides what is below
  CHECK_THAT(error_of("."), Contains("stack underflow") && Contains("STOP at byte 0"));
  CHECK_THAT(error_of(P({'K', 1, 'K', 2, 'a', '.'})),
             Contains("APPEND needs a list on the stack but found a int"));
  CHECK_THAT(error_of(P({0xff, '.'})), Contains("unknown opcode 0xff") && Contains("at byte 0"));
  CHECK_THAT(error_of(P({0x80, 9, '.'})), Contains("pickle protocol 9 is not supported"));
  try {
    run(P({0x82, 1, '.'}));  // EXT1: the extension registry is a Python-process concept
    FAIL("EXT1 accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kUnsupported);
    CHECK_THAT(e.what(), Contains("opcode EXT1 is not supported"));
  }
}

TEST_CASE("unpickler: hostile structures fail cleanly", "[unpickler]") {
  // A list that contains itself.
  CHECK_THAT(error_of(P({']', 'q', 0, 'h', 0, 'a', '.'})), Contains("contains itself"));
  // 200000 nested lists: refused, and neither checking nor destroying them recurses.
  const int depth = 200000;
  std::string deep(depth, ']');
  deep += std::string(depth - 1, 'a');
  CHECK_THAT(error_of(deep + "."), Contains("nests deeper than 1000 levels"));
  // The same garbage left behind on a successful run is taken apart safely too.
  CHECK(run(deep + "0N.").is_none());
  // Just within the limit is fine.
  std::string ok(kMaxPickleNesting, ']');
  ok += std::string(kMaxPickleNesting - 1, 'a');
  CHECK(run(ok + ".").is_list());
  // A wide DAG (each level holds the level below twice) is checked in linear time.
  std::string dag = "]";
  for (int i = 0; i < 500; ++i) dag += "2\x86";
  CHECK(run(dag + ".").is_tuple());
  // A 10 KB string copied by BINGET 100000 times would need 1 GB: refused by the copy budget.
  std::string bomb = P({'X', 0x10, 0x27, 0, 0}) + std::string(10000, 'z') + P({'q', 0});
  for (int i = 0; i < 100000; ++i) bomb += P({'h', 0});
  bomb += ".";
  CHECK_THAT(error_of(bomb), Contains("memo copies of strings exceed"));
}
