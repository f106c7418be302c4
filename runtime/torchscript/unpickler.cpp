#include "runtime/torchscript/unpickler.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "runtime/error.h"
#include "runtime/printable.h"

namespace convoy {
namespace {

static_assert(std::endian::native == std::endian::little, "the unpickler assumes a little-endian host");

struct OpcodeName {
  uint8_t op;
  const char* name;
};
// clang-format off
constexpr OpcodeName kOpcodeNames[] = {
    {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"}, {'F', "FLOAT"},
    {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"}, {'L', "LONG"}, {'M', "BININT2"}, {'N', "NONE"},
    {'P', "PERSID"}, {'Q', "BINPERSID"}, {'R', "REDUCE"}, {'S', "STRING"}, {'T', "BINSTRING"},
    {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"}, {'X', "BINUNICODE"}, {'a', "APPEND"}, {'b', "BUILD"},
    {'c', "GLOBAL"}, {'d', "DICT"}, {'}', "EMPTY_DICT"}, {'e', "APPENDS"}, {'g', "GET"}, {'h', "BINGET"},
    {'i', "INST"}, {'j', "LONG_BINGET"}, {'l', "LIST"}, {']', "EMPTY_LIST"}, {'o', "OBJ"}, {'p', "PUT"},
    {'q', "BINPUT"}, {'r', "LONG_BINPUT"}, {'s', "SETITEM"}, {'t', "TUPLE"}, {')', "EMPTY_TUPLE"},
    {'u', "SETITEMS"}, {'G', "BINFLOAT"}, {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"}, {0x80, "PROTO"},
    {0x81, "NEWOBJ"}, {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"},
    {0x87, "TUPLE3"}, {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"},
    {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"}, {0x8e, "BINBYTES8"}, {0x8f, "EMPTY_SET"},
    {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {0x92, "NEWOBJ_EX"}, {0x93, "STACK_GLOBAL"},
    {0x94, "MEMOIZE"}, {0x95, "FRAME"}, {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"},
    {0x98, "READONLY_BUFFER"}
};
// clang-format on

const char* opcode_name(uint8_t op) {
  for (const OpcodeName& o : kOpcodeNames) {
    if (o.op == op) return o.name;
  }
  return nullptr;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The address of the shared box behind a container value (list, tuple, dict, object), or nullptr
// for a leaf. Boxes are what can nest and form cycles.
const void* box_of(const IValue& v) {
  if (auto* p = std::get_if<std::shared_ptr<ListBox>>(&v.v)) return p->get();
  if (auto* p = std::get_if<std::shared_ptr<TupleBox>>(&v.v)) return p->get();
  if (auto* p = std::get_if<std::shared_ptr<DictBox>>(&v.v)) return p->get();
  if (auto* p = std::get_if<std::shared_ptr<Object>>(&v.v)) return p->get();
  return nullptr;
}

size_t child_count(const IValue& v) {
  if (auto* p = std::get_if<std::shared_ptr<ListBox>>(&v.v)) return (*p)->items.size();
  if (auto* p = std::get_if<std::shared_ptr<TupleBox>>(&v.v)) return (*p)->items.size();
  if (auto* p = std::get_if<std::shared_ptr<DictBox>>(&v.v)) return 2 * (*p)->items.size();
  if (auto* p = std::get_if<std::shared_ptr<Object>>(&v.v)) return (*p)->attrs.size();
  return 0;
}

const IValue& child_at(const IValue& v, size_t i) {
  if (auto* p = std::get_if<std::shared_ptr<ListBox>>(&v.v)) return (*p)->items[i];
  if (auto* p = std::get_if<std::shared_ptr<TupleBox>>(&v.v)) return (*p)->items[i];
  if (auto* p = std::get_if<std::shared_ptr<DictBox>>(&v.v)) {
    auto& kv = (*p)->items[i / 2];
    return i % 2 == 0 ? kv.first : kv.second;
  }
  return std::get<std::shared_ptr<Object>>(v.v)->attrs[i].second;
}

// Moves every child of a container out into `out` and leaves the container empty.
void take_children(IValue& v, std::vector<IValue>& out) {
  if (auto* p = std::get_if<std::shared_ptr<ListBox>>(&v.v)) {
    for (auto& c : (*p)->items) out.push_back(std::move(c));
    (*p)->items.clear();
  } else if (auto* p = std::get_if<std::shared_ptr<TupleBox>>(&v.v)) {
    for (auto& c : (*p)->items) out.push_back(std::move(c));
    (*p)->items.clear();
  } else if (auto* p = std::get_if<std::shared_ptr<DictBox>>(&v.v)) {
    for (auto& kv : (*p)->items) {
      out.push_back(std::move(kv.first));
      out.push_back(std::move(kv.second));
    }
    (*p)->items.clear();
  } else if (auto* p = std::get_if<std::shared_ptr<Object>>(&v.v)) {
    for (auto& kv : (*p)->attrs) out.push_back(std::move(kv.second));
    (*p)->attrs.clear();
  }
}

// A stack or memo slot: a value, or a reference to a global (a class or function that only REDUCE,
// NEWOBJ and friends may use; anywhere else it is turned into a value by the global_value hook).
struct Item {
  IValue value;
  std::shared_ptr<const PickleGlobal> global;
};

class Machine {
 public:
  Machine(std::string_view bytes, const std::string& source, const UnpicklerHooks& hooks)
      : in_(bytes), source_(source), hooks_(hooks) {
    copy_budget_ = static_cast<int64_t>(bytes.size()) * 64 + (int64_t{1} << 20);
  }
  ~Machine() { dismantle_unkept(); }

  IValue run();

 private:
  template <typename... Args>
  [[noreturn]] void error(Args&&... args) const {
    fail(ErrorKind::kInvalidInput, source_, ": ", std::forward<Args>(args)..., " (", op_label(), " at byte ",
         op_offset_, ")");
  }
  std::string op_label() const {
    const char* name = opcode_name(op_);
    return name != nullptr ? name : "opcode";
  }

  // Input.
  const uint8_t* take(uint64_t n) {
    if (n > in_.size() - pos_) {
      error("truncated pickle: needs ", n, " more bytes but only ", in_.size() - pos_, " are left");
    }
    const uint8_t* p = reinterpret_cast<const uint8_t*>(in_.data()) + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return *take(1); }
  uint16_t u16() {
    uint16_t v;
    std::memcpy(&v, take(2), 2);
    return v;
  }
  uint32_t u32() {
    uint32_t v;
    std::memcpy(&v, take(4), 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    std::memcpy(&v, take(8), 8);
    return v;
  }
  std::string_view line() {
    size_t end = in_.find('\n', pos_);
    if (end == std::string_view::npos) error("truncated pickle: unterminated text argument");
    std::string_view s = in_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  std::string bytes_of(uint64_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  int64_t parse_decimal(std::string_view s, const char* what) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range) error(what, " '", printable(s), "' does not fit in 64 bits");
    if (ec != std::errc() || end != s.data() + s.size()) error("malformed ", what, " '", printable(s), "'");
    return v;
  }
  int64_t little_endian_long(uint64_t n);
  std::string python_string_literal(std::string_view s);
  std::string raw_unicode_escape(std::string_view s);

  // Stack.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(IValue v) { stack_.push_back(Item{std::move(v), nullptr}); }
  // Popped containers stay referenced by the graveyard, so that no local variable ever holds the
  // last reference to a deep structure when an error unwinds the stack (see dismantle_unkept).
  Item pop_item() {
    if (stack_.size() <= floor()) error("stack underflow");
    Item it = std::move(stack_.back());
    stack_.pop_back();
    retain(it.value);
    return it;
  }
  IValue pop_value() { return value_of(pop_item()); }
  Item& top() {
    if (stack_.size() <= floor()) error("stack underflow");
    return stack_.back();
  }
  std::vector<Item> pop_mark() {
    if (marks_.empty()) error("no MARK to pop to");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Item> items(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(m)),
                            std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    for (const auto& it : items) retain(it.value);
    return items;
  }
  IValueList values_of(std::vector<Item> items) {
    IValueList out;
    out.reserve(items.size());
    for (auto& it : items) out.push_back(value_of(std::move(it)));
    return out;
  }
  IValue value_of(Item it) {
    if (!it.global) return std::move(it.value);
    if (!hooks_.global_value)
      error("global '", printable(it.global->qualified()), "' cannot be used as a value");
    const PickleGlobal& g = *it.global;
    return guarded(str_cat("global '", printable(g.qualified()), "'"),
                   [&] { return hooks_.global_value(g); });
  }
  void charge_copy(const Item& it) {
    if (auto* s = std::get_if<std::string>(&it.value.v)) {
      copy_budget_ -= static_cast<int64_t>(s->size());
      if (copy_budget_ < 0) error("memo copies of strings exceed ", in_.size() * 64 + (1 << 20), " bytes");
    }
  }

  // Runs a hook; its errors get this pickle's name and position.
  template <typename F>
  IValue guarded(const std::string& what, F&& f) {
    try {
      return f();
    } catch (const Error& e) {
      fail(e.kind(), source_, ": ", what, " (", op_label(), " at byte ", op_offset_, "): ", e.what());
    }
  }
  // Values handed to hooks stay referenced here until the end, so that whatever a hook drops never
  // destroys a deep structure recursively (see dismantle_unkept).
  void retain(const IValue& v) {
    if (box_of(v) != nullptr) graveyard_.push_back(v);
  }
  void retain(const IValueList& vs) {
    for (const auto& v : vs) retain(v);
  }
  void discard(IValue v) {
    if (box_of(v) != nullptr) graveyard_.push_back(std::move(v));
  }

  const PickleGlobal& callable(const Item& it, const char* op) {
    if (!it.global) error(op, " needs a class or function but found a ", it.value.kind_name());
    return *it.global;
  }
  void push_global(std::string module, std::string name);
  IValue call_global(const PickleGlobal& g, IValueList args, bool new_object);

  // Containers.
  std::optional<std::string> dict_key(const IValue& key);
  void set_item(const std::shared_ptr<DictBox>& dict, IValue key, IValue value);
  ListBox& list_on_top(const char* op) {
    Item& t = top();
    auto* p = std::get_if<std::shared_ptr<ListBox>>(&t.value.v);
    if (p == nullptr || t.global) error(op, " needs a list on the stack but found a ", t.value.kind_name());
    return **p;
  }
  std::shared_ptr<DictBox> dict_on_top(const char* op) {
    Item& t = top();
    auto* p = std::get_if<std::shared_ptr<DictBox>>(&t.value.v);
    if (p == nullptr || t.global) error(op, " needs a dict on the stack but found a ", t.value.kind_name());
    return *p;
  }

  // Memo.
  void memo_put(uint64_t index) {
    Item& t = top();
    auto it = memo_.find(index);
    if (it != memo_.end()) {
      discard(std::move(it->second.value));
      it->second = t;
    } else {
      memo_.emplace(index, t);
    }
  }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) error("memo index ", index, " is not set");
    charge_copy(it->second);
    stack_.push_back(it->second);
  }

  void check_result(const IValue& result);
  void dismantle_unkept();

  std::string_view in_;
  const std::string& source_;
  const UnpicklerHooks& hooks_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  uint8_t op_ = 0;
  std::vector<Item> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Item> memo_;
  std::vector<IValue> graveyard_;
  std::unordered_map<const DictBox*, std::unordered_map<std::string, size_t>> dict_index_;
  std::unordered_set<const void*> kept_;  // boxes reachable from the returned value
  int64_t copy_budget_;
};

int64_t Machine::little_endian_long(uint64_t n) {
  const uint8_t* p = take(n);
  if (n == 0) return 0;
  // Two's complement, little-endian. Bytes past the eighth must only extend the sign.
  bool negative = (p[n - 1] & 0x80) != 0;
  for (uint64_t i = 8; i < n; ++i) {
    if (p[i] != (negative ? 0xff : 0x00)) error("integer of ", n, " bytes does not fit in 64 bits");
  }
  uint64_t v = negative ? ~uint64_t{0} : 0;
  uint64_t used = std::min<uint64_t>(n, 8);
  for (uint64_t i = 0; i < used; ++i) {
    v &= ~(uint64_t{0xff} << (8 * i));
    v |= uint64_t{p[i]} << (8 * i);
  }
  if (n > 8 && ((v >> 63) != 0) != negative) error("integer of ", n, " bytes does not fit in 64 bits");
  return static_cast<int64_t>(v);
}

// The protocol 0 STRING argument: a Python string literal, quoted, with backslash escapes.
std::string Machine::python_string_literal(std::string_view s) {
  if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front()) {
    error("STRING argument is not a quoted string");
  }
  s = s.substr(1, s.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\' || i + 1 == s.size()) {
      out += c;
      continue;
    }
    char e = s[++i];
    switch (e) {
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
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
      case 'x': {
        int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) error("bad \\x escape in STRING argument");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) {
            v = v * 8 + (s[++i] - '0');
          }
          out += static_cast<char>(v & 0xff);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

// The protocol 0 UNICODE argument: latin-1 bytes with \uXXXX and \UXXXXXXXX escapes; returned as UTF-8.
std::string Machine::raw_unicode_escape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
      size_t digits = s[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + digits > s.size()) error("truncated \\u escape in UNICODE argument");
      uint32_t cp = 0;
      for (size_t k = 0; k < digits; ++k) {
        int h = hex_value(s[i + 2 + k]);
        if (h < 0) error("bad \\u escape in UNICODE argument");
        cp = cp * 16 + static_cast<uint32_t>(h);
      }
      if (cp > 0x10ffff) error("code point ", cp, " out of range in UNICODE argument");
      append_utf8(out, cp);
      i += 1 + digits;
    } else {
      append_utf8(out, static_cast<uint8_t>(s[i]));
    }
  }
  return out;
}

void Machine::push_global(std::string module, std::string name) {
  auto g = std::make_shared<PickleGlobal>(PickleGlobal{std::move(module), std::move(name)});
  if (!hooks_.allow_global || !hooks_.allow_global(*g))
    error("global '", printable(g->qualified()), "' is not allowed");
  stack_.push_back(Item{IValue(), std::move(g)});
}

IValue Machine::call_global(const PickleGlobal& g, IValueList args, bool new_object) {
  retain(args);
  const auto& hook = new_object ? hooks_.new_object : hooks_.call;
  if (!hook)
    error(new_object ? "instantiating '" : "calling '", printable(g.qualified()), "' is not supported");
  return guarded(str_cat(new_object ? "instantiating '" : "calling '", printable(g.qualified()), "'"),
                 [&] { return hook(g, args); });
}

// Python dicts merge keys that compare equal; this is the identity under which they do, for the
// hashable kinds a pickle can produce (1, 1.0 and True are one key, as in Python).
std::optional<std::string> Machine::dict_key(const IValue& key) {
  if (key.is_none()) return std::string("n");
  if (key.is_bool()) return str_cat("i", std::get<bool>(key.v) ? 1 : 0);
  if (key.is_int()) return str_cat("i", std::get<int64_t>(key.v));
  if (key.is_double()) {
    double d = std::get<double>(key.v);
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2e18) {
      return str_cat("i", static_cast<int64_t>(d));
    }
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    return str_cat("d", bits);
  }
  if (key.is_string()) return "s" + std::get<std::string>(key.v);
  if (key.is_list() || key.is_dict()) error("unhashable dict key of type ", key.kind_name());
  return std::nullopt;  // tuples, tensors, objects: kept apart, by identity
}

void Machine::set_item(const std::shared_ptr<DictBox>& dict, IValue key, IValue value) {
  auto found = dict_index_.find(dict.get());
  if (found == dict_index_.end()) {
    // First write through the VM to a dict a hook may have filled: index what it holds.
    found = dict_index_.emplace(dict.get(), std::unordered_map<std::string, size_t>{}).first;
    for (size_t i = 0; i < dict->items.size(); ++i) {
      if (auto k = dict_key(dict->items[i].first)) found->second[*k] = i;
    }
  }
  std::optional<std::string> k = dict_key(key);
  if (k) {
    auto [slot, inserted] = found->second.emplace(*k, dict->items.size());
    if (!inserted) {
      discard(std::move(dict->items[slot->second].second));
      dict->items[slot->second].second = std::move(value);
      discard(std::move(key));
      return;
    }
  }
  dict->items.emplace_back(std::move(key), std::move(value));
}

IValue Machine::run() {
  while (true) {
    op_offset_ = pos_;
    if (pos_ >= in_.size()) {
      op_ = 0;
      error("pickle ends without STOP (truncated?)");
    }
    op_ = static_cast<uint8_t>(in_[pos_++]);
    switch (op_) {
      case 0x80: {  // PROTO
        uint8_t proto = u8();
        if (proto > 5)
          fail(ErrorKind::kUnsupported, source_, ": pickle protocol ", int{proto}, " is not supported");
        break;
      }
      case 0x95:  // FRAME: only a hint for buffered readers
        u64();
        break;
      case '.': {  // STOP
        IValue result = pop_value();
        check_result(result);
        return result;
      }
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '0':
        if (stack_.size() > floor()) {
          pop_item();
        } else if (!marks_.empty()) {
          marks_.pop_back();  // as CPython does: POP on an empty frame pops the mark
        } else {
          error("stack underflow");
        }
        break;
      case '1':
        pop_mark();
        break;
      case '2': {
        Item copy = top();
        charge_copy(copy);
        stack_.push_back(std::move(copy));
        break;
      }

      // Numbers.
      case 'I': {
        std::string_view s = line();
        if (s == "00")
          push(false);
        else if (s == "01")
          push(true);
        else
          push(parse_decimal(s, "INT argument"));
        break;
      }
      case 'L': {
        std::string_view s = line();
        if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
        push(parse_decimal(s, "LONG argument"));
        break;
      }
      case 'J':
        push(static_cast<int64_t>(static_cast<int32_t>(u32())));
        break;
      case 'K':
        push(static_cast<int64_t>(u8()));
        break;
      case 'M':
        push(static_cast<int64_t>(u16()));
        break;
      case 0x8a:
        push(little_endian_long(u8()));
        break;
      case 0x8b: {
        int32_t n = static_cast<int32_t>(u32());
        if (n < 0) error("negative LONG4 length ", n);
        push(little_endian_long(static_cast<uint64_t>(n)));
        break;
      }
      case 'F': {
        std::string_view s = line();
        double d = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec != std::errc() || end != s.data() + s.size())
          error("malformed FLOAT argument '", printable(s), "'");
        push(d);
        break;
      }
      case 'G': {
        uint64_t bits = __builtin_bswap64(u64());  // big-endian on the wire
        double d;
        std::memcpy(&d, &bits, 8);
        push(d);
        break;
      }
      case 'N':
        push(IValue());
        break;
      case 0x88:
        push(true);
        break;
      case 0x89:
        push(false);
        break;

      // Strings and bytes (bytes become strings: IValue has no separate bytes kind).
      case 'S':
        push(python_string_literal(line()));
        break;
      case 'V':
        push(raw_unicode_escape(line()));
        break;
      case 'T': {
        int32_t n = static_cast<int32_t>(u32());
        if (n < 0) error("negative BINSTRING length ", n);
        push(bytes_of(static_cast<uint64_t>(n)));
        break;
      }
      case 'U':
      case 'C':
      case 0x8c:
        push(bytes_of(u8()));
        break;
      case 'X':
      case 'B':
        push(bytes_of(u32()));
        break;
      case 0x8d:
      case 0x8e:
        push(bytes_of(u64()));
        break;

      // Tuples.
      case ')':
        push(IValue::tuple({}));
        break;
      case 't':
        push(IValue::tuple(values_of(pop_mark())));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        size_t n = op_ - 0x84u;
        IValueList items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop_value();
        push(IValue::tuple(std::move(items)));
        break;
      }

      // Lists.
      case ']':
        push(IValue::list({}));
        break;
      case 'l':
        push(IValue::list(values_of(pop_mark())));
        break;
      case 'a': {
        IValue v = pop_value();
        list_on_top("APPEND").items.push_back(std::move(v));
        break;
      }
      case 'e': {
        IValueList vs = values_of(pop_mark());
        auto& items = list_on_top("APPENDS").items;
        for (auto& v : vs) items.push_back(std::move(v));
        break;
      }

      // Dicts.
      case '}':
        push(IValue::dict({}));
        break;
      case 'd': {
        IValueList kv = values_of(pop_mark());
        if (kv.size() % 2 != 0) error("odd number of items (", kv.size(), ") for a dict");
        IValue d = IValue::dict({});
        auto box = std::get<std::shared_ptr<DictBox>>(d.v);
        for (size_t i = 0; i < kv.size(); i += 2) set_item(box, std::move(kv[i]), std::move(kv[i + 1]));
        push(std::move(d));
        break;
      }
      case 's': {
        IValue v = pop_value();
        IValue k = pop_value();
        set_item(dict_on_top("SETITEM"), std::move(k), std::move(v));
        break;
      }
      case 'u': {
        IValueList kv = values_of(pop_mark());
        if (kv.size() % 2 != 0) error("odd number of items (", kv.size(), ") for SETITEMS");
        auto box = dict_on_top("SETITEMS");
        for (size_t i = 0; i < kv.size(); i += 2) set_item(box, std::move(kv[i]), std::move(kv[i + 1]));
        break;
      }

      // Memo.
      case 'p':
        memo_put(static_cast<uint64_t>(parse_decimal(line(), "PUT index")));
        break;
      case 'q':
        memo_put(u8());
        break;
      case 'r':
        memo_put(u32());
        break;
      case 0x94:
        memo_put(memo_.size());
        break;
      case 'g':
        memo_get(static_cast<uint64_t>(parse_decimal(line(), "GET index")));
        break;
      case 'h':
        memo_get(u8());
        break;
      case 'j':
        memo_get(u32());
        break;

      // Globals, calls, objects.
      case 'c': {
        std::string module(line());
        std::string name(line());
        push_global(std::move(module), std::move(name));
        break;
      }
      case 0x93: {
        IValue name = pop_value();
        IValue module = pop_value();
        if (!name.is_string() || !module.is_string()) error("STACK_GLOBAL needs two strings");
        push_global(std::get<std::string>(module.v), std::get<std::string>(name.v));
        break;
      }
      case 'R':
      case 0x81: {
        IValue args = pop_value();
        Item fn = pop_item();
        bool is_new = op_ == 0x81;
        const PickleGlobal& g = callable(fn, is_new ? "NEWOBJ" : "REDUCE");
        if (!args.is_tuple())
          error("arguments of '", printable(g.qualified()), "' are a ", args.kind_name(), ", not a tuple");
        IValueList a = std::get<std::shared_ptr<TupleBox>>(args.v)->items;
        retain(args);
        push(call_global(g, std::move(a), is_new));
        break;
      }
      case 'i': {  // INST: class named inline, arguments above the mark
        std::string module(line());
        std::string name(line());
        IValueList args = values_of(pop_mark());
        push_global(std::move(module), std::move(name));
        Item cls = pop_item();
        push(call_global(*cls.global, std::move(args), /*new_object=*/true));
        break;
      }
      case 'o': {  // OBJ: class and arguments above the mark
        std::vector<Item> items = pop_mark();
        if (items.empty()) error("OBJ without a class");
        Item cls = std::move(items.front());
        const PickleGlobal& g = callable(cls, "OBJ");
        items.erase(items.begin());
        push(call_global(g, values_of(std::move(items)), /*new_object=*/true));
        break;
      }
      case 'b': {
        IValue state = pop_value();
        IValue obj = pop_value();
        if (!hooks_.build) error("BUILD is not supported here");
        push(guarded(str_cat("building a ", obj.kind_name()), [&] { return hooks_.build(obj, state); }));
        break;
      }
      case 'P':
      case 'Q': {
        IValue pid = op_ == 'P' ? IValue(std::string(line())) : pop_value();
        if (!hooks_.persistent_load) error("persistent ids are not supported here");
        retain(pid);
        push(guarded("persistent id", [&] { return hooks_.persistent_load(pid); }));
        break;
      }

      default: {
        const char* name = opcode_name(op_);
        if (name != nullptr)
          fail(ErrorKind::kUnsupported, source_, ": opcode ", name, " is not supported (at byte ", op_offset_,
               ")");
        error("unknown opcode 0x", "0123456789abcdef"[op_ >> 4], "0123456789abcdef"[op_ & 15]);
      }
    }
  }
}

// Refuses results that nest deeper than kMaxPickleNesting or contain themselves, and records which
// boxes the result reaches so that the destructor leaves them alone. Iterative, so hostile input
// cannot overflow the stack here either.
void Machine::check_result(const IValue& result) {
  if (box_of(result) == nullptr) return;
  struct Frame {
    const IValue* value;
    size_t next;
  };
  std::unordered_map<const void*, int> height;  // finished boxes
  std::unordered_set<const void*> on_path;
  std::vector<Frame> path{{&result, 0}};
  on_path.insert(box_of(result));
  while (!path.empty()) {
    Frame& f = path.back();
    if (f.next < child_count(*f.value)) {
      const IValue& c = child_at(*f.value, f.next++);
      const void* b = box_of(c);
      if (b == nullptr || height.count(b) != 0) continue;
      if (on_path.count(b) != 0) error("the result contains itself (a reference cycle)");
      if (path.size() >= static_cast<size_t>(kMaxPickleNesting)) {
        error("the result nests deeper than ", kMaxPickleNesting, " levels");
      }
      on_path.insert(b);
      path.push_back({&c, 0});
      continue;
    }
    const void* b = box_of(*f.value);
    int h = 1;
    for (size_t i = 0; i < child_count(*f.value); ++i) {
      auto it = height.find(box_of(child_at(*f.value, i)));
      if (it != height.end()) h = std::max(h, it->second + 1);
    }
    if (h > kMaxPickleNesting) error("the result nests deeper than ", kMaxPickleNesting, " levels");
    height[b] = h;
    on_path.erase(b);
    path.pop_back();
  }
  for (const auto& kv : height) kept_.insert(kv.first);
}

// Empties every box that the VM saw and the result does not reach, without recursion: deep or
// cyclic garbage built by a hostile pickle is taken apart one level at a time.
void Machine::dismantle_unkept() {
  std::vector<IValue> work;
  for (auto& it : stack_) work.push_back(std::move(it.value));
  for (auto& kv : memo_) work.push_back(std::move(kv.second.value));
  for (auto& v : graveyard_) work.push_back(std::move(v));
  stack_.clear();
  memo_.clear();
  graveyard_.clear();
  while (!work.empty()) {
    IValue v = std::move(work.back());
    work.pop_back();
    const void* b = box_of(v);
    if (b == nullptr || kept_.count(b) != 0) continue;
    take_children(v, work);
  }
}

}  // namespace

IValue unpickle(std::string_view bytes, const std::string& source, const UnpicklerHooks& hooks) {
  Machine m(bytes, source, hooks);
  return m.run();
}

}  // namespace convoy
