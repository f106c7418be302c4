// TorchScript list and string ops. Lists are shared, mutable references (IValue::list), so the
// mutating ops (append, insert, pop, _set_item, ...) change the list every alias sees; the others
// build new lists, as Python does.
#include <algorithm>
#include <optional>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

// A Python index into a sequence of `size` items; negative counts from the end.
size_t checked_index(int64_t idx, size_t size, const char* what) {
  int64_t n = static_cast<int64_t>(size);
  CONVOY_CHECK(idx >= -n && idx < n, what, " index ", idx, " out of range for ", n, " items");
  return static_cast<size_t>(idx < 0 ? idx + n : idx);
}

// The positions a Python slice [start:end:step] visits in a sequence of `size` items.
std::vector<size_t> slice_positions(size_t size, const IValue& start_v, const IValue& end_v, int64_t step) {
  CONVOY_CHECK(step != 0, "slice step cannot be zero");
  const int64_t n = static_cast<int64_t>(size);
  auto adjust = [&](const IValue& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t i = v.to_int();
    if (i < 0) {
      i = i < -n ? (step < 0 ? -1 : 0) : i + n;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t start = adjust(start_v, step < 0 ? n - 1 : 0);
  int64_t end = adjust(end_v, step < 0 ? -1 : n);
  std::vector<size_t> out;
  for (int64_t i = start; step > 0 ? i < end : i > end; i += step) out.push_back(static_cast<size_t>(i));
  return out;
}

IValueList repeated(const IValueList& items, int64_t times) {
  IValueList out;
  for (int64_t k = 0; k < times; ++k) out.insert(out.end(), items.begin(), items.end());
  return out;
}

// Python equality of two list elements of one of the element types the schemas name.
bool same_value(const IValue& a, const IValue& b) {
  if (a.is_string() || b.is_string()) return a.is_string() && b.is_string() && a.to_string() == b.to_string();
  if (a.is_double() || b.is_double()) return a.to_double() == b.to_double();
  return a.to_int() == b.to_int();
}

// Python ordering of numbers (ints compare exactly, mixed through float).
bool less_than(const IValue& a, const IValue& b) {
  if (a.is_double() || b.is_double()) return a.to_double() < b.to_double();
  return a.to_int() < b.to_int();
}

// min()/max() of two lists: the lexicographically smaller / larger one.
const IValue& pick_list(const IValue& l, const IValue& r, bool is_min) {
  const IValueList& a = l.to_list_or_tuple();
  const IValueList& b = r.to_list_or_tuple();
  bool l_less = std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), less_than);
  bool r_less = std::lexicographical_compare(b.begin(), b.end(), a.begin(), a.end(), less_than);
  if (is_min) return r_less ? r : l;
  return l_less ? r : l;
}

IValue pick_item(const IValueList& items, bool is_min, const char* op) {
  CONVOY_CHECK(!items.empty(), op, "() arg is an empty sequence");
  const IValue* best = &items[0];
  for (const IValue& v : items)
    if (is_min ? less_than(v, *best) : less_than(*best, v)) best = &v;
  return *best;
}

}  // namespace

void register_list_ops(OpRegistry& r) {
  auto getitem = [](IValueList& a) -> IValueList {
    const IValueList& items = a[0].to_list_or_tuple();
    return {items[checked_index(a[1].to_int(), items.size(), "list")]};
  };
  r.add("aten::__getitem__.t(t[](a) list, int idx) -> t(*)", getitem);
  r.add("aten::select.t(t[](a) list, int idx) -> t(*)", getitem);
  r.add("aten::__getitem__.str(str s, int index) -> str", [](IValueList& a) -> IValueList {
    const std::string& s = a[0].to_string();
    return {std::string(1, s[checked_index(a[1].to_int(), s.size(), "string")])};
  });
  r.add("aten::len.t(t[] a) -> int",
        [](IValueList& a) -> IValueList { return {static_cast<int64_t>(a[0].to_list_or_tuple().size())}; });
  r.add("aten::len.str(str s) -> int",
        [](IValueList& a) -> IValueList { return {static_cast<int64_t>(a[0].to_string().size())}; });
  r.add("aten::list.t(t[] l) -> t[]",
        [](IValueList& a) -> IValueList { return {IValue::list(a[0].to_list_or_tuple())}; });
  r.add("aten::list(str t) -> str[]", [](IValueList& a) -> IValueList {
    IValueList chars;
    for (char c : a[0].to_string()) chars.emplace_back(std::string(1, c));
    return {IValue::list(std::move(chars))};
  });
  r.add("aten::copy.t(t[](a) self) -> t[]",
        [](IValueList& a) -> IValueList { return {IValue::list(a[0].to_list_or_tuple())}; });
  r.add("aten::slice.t(t[] l, int? start=None, int? end=None, int step=1) -> t[]",
        [](IValueList& a) -> IValueList {
          const IValueList& items = a[0].to_list_or_tuple();
          IValueList out;
          for (size_t i : slice_positions(items.size(), a[1], a[2], a[3].to_int())) out.push_back(items[i]);
          return {IValue::list(std::move(out))};
        });
  r.add("aten::slice.str(str string, int? start=None, int? end=None, int step=1) -> str",
        [](IValueList& a) -> IValueList {
          const std::string& s = a[0].to_string();
          std::string out;
          for (size_t i : slice_positions(s.size(), a[1], a[2], a[3].to_int())) out += s[i];
          return {out};
        });

  // Concatenation and repetition build new lists.
  r.add("aten::add.t(t[] a, t[] b) -> t[]", [](IValueList& a) -> IValueList {
    IValueList out = a[0].to_list_or_tuple();
    const IValueList& b = a[1].to_list_or_tuple();
    out.insert(out.end(), b.begin(), b.end());
    return {IValue::list(std::move(out))};
  });
  r.add("aten::mul.left_t(t[] l, int n) -> t[]", [](IValueList& a) -> IValueList {
    return {IValue::list(repeated(a[0].to_list_or_tuple(), a[1].to_int()))};
  });
  r.add("aten::mul.right_(int n, t[] l) -> t[]", [](IValueList& a) -> IValueList {
    return {IValue::list(repeated(a[1].to_list_or_tuple(), a[0].to_int()))};
  });

  // Mutating ops: they change the list in place and every alias sees it.
  r.add("aten::append.t(t[](a!) self, t(c -> *) el) -> t[](a!)", [](IValueList& a) -> IValueList {
    a[0].to_list().push_back(a[1]);
    return {a[0]};
  });
  r.add("aten::add_.t(t[](a!) self, t[] b) -> t[]", [](IValueList& a) -> IValueList {
    IValueList b = a[1].to_list_or_tuple();  // copy first: `l += l` must double the list once
    a[0].to_list().insert(a[0].to_list().end(), b.begin(), b.end());
    return {a[0]};
  });
  r.add("aten::extend.t(t[](a!) self, t[] other) -> ()", [](IValueList& a) -> IValueList {
    IValueList b = a[1].to_list_or_tuple();
    a[0].to_list().insert(a[0].to_list().end(), b.begin(), b.end());
    return {};
  });
  r.add("aten::mul_.t(t[](a!) l, int n) -> t[](a!)", [](IValueList& a) -> IValueList {
    IValueList& items = a[0].to_list();
    items = repeated(items, a[1].to_int());
    return {a[0]};
  });
  r.add("aten::insert.t(t[](a!) self, int idx, t(b -> *) el) -> ()", [](IValueList& a) -> IValueList {
    IValueList& items = a[0].to_list();
    int64_t n = static_cast<int64_t>(items.size());
    int64_t idx = a[1].to_int();
    // Python clamps an insert position instead of failing.
    idx = idx < 0 ? std::max<int64_t>(idx + n, 0) : std::min(idx, n);
    items.insert(items.begin() + idx, a[2]);
    return {};
  });
  r.add("aten::pop.t(t[](a!) self, int idx=-1) -> t(*)", [](IValueList& a) -> IValueList {
    IValueList& items = a[0].to_list();
    CONVOY_CHECK(!items.empty(), "pop from empty list");
    size_t i = checked_index(a[1].to_int(), items.size(), "pop");
    IValue out = items[i];
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
    return {out};
  });
  r.add("aten::reverse.t(t[](a!) self) -> ()", [](IValueList& a) -> IValueList {
    IValueList& items = a[0].to_list();
    std::reverse(items.begin(), items.end());
    return {};
  });
  r.add("aten::clear.t(t[](a!) self) -> ()", [](IValueList& a) -> IValueList {
    a[0].to_list().clear();
    return {};
  });
  r.add("aten::_set_item.t(t[](a!) l, int idx, t(b -> *) el) -> t[](a!)", [](IValueList& a) -> IValueList {
    IValueList& items = a[0].to_list();
    items[checked_index(a[1].to_int(), items.size(), "list assignment")] = a[2];
    return {a[0]};
  });

  // Searches over lists of ints, floats, bools and strings.
  for (std::string type : {"int", "float", "bool", "str"}) {
    r.add("aten::count." + type + "(" + type + "[] self, " + type + " el) -> int",
          [](IValueList& a) -> IValueList {
            const IValueList& items = a[0].to_list_or_tuple();
            return {static_cast<int64_t>(std::count_if(
                items.begin(), items.end(), [&](const IValue& v) { return same_value(v, a[1]); }))};
          });
    r.add("aten::index.list_" + type + "(" + type + "[] self, " + type + " el) -> int",
          [](IValueList& a) -> IValueList {
            const IValueList& items = a[0].to_list_or_tuple();
            for (size_t i = 0; i < items.size(); ++i)
              if (same_value(items[i], a[1])) return {static_cast<int64_t>(i)};
            fail(ErrorKind::kInvalidInput, a[1].repr(), " is not in list");
          });
  }
  for (std::string type : {"int", "float", "str"}) {
    r.add("aten::__contains__." + type + "_list(" + type + "[] l, " + type + " item) -> bool",
          [](IValueList& a) -> IValueList {
            const IValueList& items = a[0].to_list_or_tuple();
            return {std::any_of(items.begin(), items.end(),
                                [&](const IValue& v) { return same_value(v, a[1]); })};
          });
  }

  // min()/max() of one list, or of two lists (lexicographic).
  for (bool is_min : {true, false}) {
    std::string name = is_min ? "prim::min" : "prim::max";
    const char* word = is_min ? "min" : "max";
    for (std::string type : {"int", "float", "bool"}) {
      r.add(name + "." + type + "_list(" + type + "[] l, " + type + "[] r) -> " + type + "[]",
            [is_min](IValueList& a) -> IValueList {
              return {IValue::list(pick_list(a[0], a[1], is_min).to_list_or_tuple())};
            });
      r.add(name + ".self_" + type + "(" + type + "[] self) -> " + type,
            [is_min, word](IValueList& a) -> IValueList {
              return {pick_item(a[0].to_list_or_tuple(), is_min, word)};
            });
    }
  }

  r.add("aten::sum.int(int[] self) -> int", [](IValueList& a) -> IValueList {
    int64_t total = 0;
    for (const IValue& v : a[0].to_list_or_tuple()) total += v.to_int();
    return {total};
  });
  r.add("aten::sum.float(float[] self) -> float", [](IValueList& a) -> IValueList {
    double total = 0;
    for (const IValue& v : a[0].to_list_or_tuple()) total += v.to_double();
    return {total};
  });
  r.add("aten::sum.bool(bool[] self) -> int", [](IValueList& a) -> IValueList {
    int64_t total = 0;
    for (const IValue& v : a[0].to_list_or_tuple()) total += v.to_bool() ? 1 : 0;
    return {total};
  });
}

}  // namespace convoy
