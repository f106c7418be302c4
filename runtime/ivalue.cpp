#include "runtime/ivalue.h"

#include <cmath>
#include <sstream>

#include "runtime/error.h"

namespace convoy {

IValue IValue::list(IValueList items) {
  IValue r;
  r.v = std::make_shared<ListBox>(ListBox{std::move(items)});
  return r;
}
IValue IValue::tuple(IValueList items) {
  IValue r;
  r.v = std::make_shared<TupleBox>(TupleBox{std::move(items)});
  return r;
}
IValue IValue::int_list(const std::vector<int64_t>& items) {
  IValueList l;
  l.reserve(items.size());
  for (int64_t i : items) l.emplace_back(i);
  return list(std::move(l));
}
IValue IValue::dict(std::vector<std::pair<IValue, IValue>> items) {
  IValue r;
  r.v = std::make_shared<DictBox>(DictBox{std::move(items)});
  return r;
}

const char* IValue::kind_name() const {
  switch (v.index()) {
    case 0:
      return "None";
    case 1:
      return "bool";
    case 2:
      return "int";
    case 3:
      return "float";
    case 4:
      return "str";
    case 5:
      return "Tensor";
    case 6:
      return "List";
    case 7:
      return "Tuple";
    case 8:
      return "Dict";
    case 9:
      return "Device";
    case 10:
      return "Object";
  }
  return "?";
}

#define CONVOY_EXPECT_KIND(cond, expected) \
  CONVOY_CHECK(cond, "expected a value of type ", expected, " but found ", kind_name(), " ", repr())

bool IValue::to_bool() const {
  if (is_int()) return std::get<int64_t>(v) != 0;
  CONVOY_EXPECT_KIND(is_bool(), "bool");
  return std::get<bool>(v);
}
int64_t IValue::to_int() const {
  if (is_bool()) return std::get<bool>(v) ? 1 : 0;
  CONVOY_EXPECT_KIND(is_int(), "int");
  return std::get<int64_t>(v);
}
double IValue::to_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(v));
  if (is_bool()) return std::get<bool>(v) ? 1.0 : 0.0;
  CONVOY_EXPECT_KIND(is_double(), "float");
  return std::get<double>(v);
}
const std::string& IValue::to_string() const {
  CONVOY_EXPECT_KIND(is_string(), "str");
  return std::get<std::string>(v);
}
const Tensor& IValue::to_tensor() const {
  CONVOY_EXPECT_KIND(is_tensor(), "Tensor");
  return std::get<Tensor>(v);
}
Tensor& IValue::to_tensor() {
  CONVOY_EXPECT_KIND(is_tensor(), "Tensor");
  return std::get<Tensor>(v);
}
IValueList& IValue::to_list() const {
  CONVOY_EXPECT_KIND(is_list(), "List");
  return std::get<std::shared_ptr<ListBox>>(v)->items;
}
const IValueList& IValue::to_tuple() const {
  CONVOY_EXPECT_KIND(is_tuple(), "Tuple");
  return std::get<std::shared_ptr<TupleBox>>(v)->items;
}
const IValueList& IValue::to_list_or_tuple() const {
  if (is_tuple()) return to_tuple();
  return to_list();
}
std::vector<int64_t> IValue::to_int_list() const {
  std::vector<int64_t> out;
  for (const IValue& x : to_list_or_tuple()) out.push_back(x.to_int());
  return out;
}
std::vector<double> IValue::to_double_list() const {
  std::vector<double> out;
  for (const IValue& x : to_list_or_tuple()) out.push_back(x.to_double());
  return out;
}
std::vector<Tensor> IValue::to_tensor_list() const {
  std::vector<Tensor> out;
  for (const IValue& x : to_list_or_tuple()) out.push_back(x.to_tensor());
  return out;
}
DictBox& IValue::to_dict() const {
  CONVOY_EXPECT_KIND(is_dict(), "Dict");
  return *std::get<std::shared_ptr<DictBox>>(v);
}
const Device& IValue::to_device() const {
  CONVOY_EXPECT_KIND(is_device(), "Device");
  return std::get<Device>(v);
}
const std::shared_ptr<Object>& IValue::to_object() const {
  CONVOY_EXPECT_KIND(is_object(), "Object");
  return std::get<std::shared_ptr<Object>>(v);
}

static void repr_items(std::ostringstream& out, const IValueList& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out << ", ";
    if (i == 8 && items.size() > 10) {
      out << "... (" << items.size() << " items)";
      break;
    }
    out << items[i].repr();
  }
}

std::string IValue::repr() const {
  std::ostringstream out;
  switch (v.index()) {
    case 0:
      return "None";
    case 1:
      return std::get<bool>(v) ? "True" : "False";
    case 2:
      return std::to_string(std::get<int64_t>(v));
    case 3: {
      double d = std::get<double>(v);
      out.precision(17);
      out << d;
      std::string s = out.str();
      if (std::isfinite(d) && s.find_first_of(".e") == std::string::npos) s += ".";
      return s;
    }
    case 4:
      return "\"" + std::get<std::string>(v) + "\"";
    case 5:
      return std::get<Tensor>(v).describe();
    case 6:
      out << "[";
      repr_items(out, to_list());
      out << "]";
      return out.str();
    case 7:
      out << "(";
      repr_items(out, to_tuple());
      out << (to_tuple().size() == 1 ? ",)" : ")");
      return out.str();
    case 8:
      return "{dict of " + std::to_string(to_dict().items.size()) + "}";
    case 9:
      return "device(\"" + to_device().name + "\")";
    case 10:
      return "<" + to_object()->type_name + ">";
  }
  return "?";
}

const IValue* Object::find(const std::string& name) const {
  for (const auto& [k, val] : attrs)
    if (k == name) return &val;
  return nullptr;
}

void Object::set(const std::string& name, IValue value) {
  for (auto& [k, val] : attrs)
    if (k == name) {
      val = std::move(value);
      return;
    }
  attrs.emplace_back(name, std::move(value));
}

}  // namespace convoy
