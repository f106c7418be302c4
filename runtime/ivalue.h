// IValue: one runtime value of a TorchScript program — a tensor, a scalar, a string, a list, a
// tuple, a dict, a device, None, or a module object (only while loading an archive).
// Lists are reference types, as in TorchScript (aten::append mutates the list every alias sees);
// tuples are immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/tensor.h"

namespace convoy {

struct IValue;
struct Object;
using IValueList = std::vector<IValue>;

struct ListBox {
  IValueList items;
};
struct TupleBox {
  IValueList items;
};
struct DictBox {
  std::vector<std::pair<IValue, IValue>> items;  // insertion order, as Python dicts keep it
};
struct Device {
  std::string name;  // "cpu", "cuda:0": TorchScript only uses it to name where tensors go
  bool operator==(const Device& o) const { return name == o.name; }
};

struct IValue {
  using Variant =
      std::variant<std::monostate, bool, int64_t, double, std::string, Tensor, std::shared_ptr<ListBox>,
                   std::shared_ptr<TupleBox>, std::shared_ptr<DictBox>, Device, std::shared_ptr<Object>>;
  Variant v;

  IValue() = default;
  IValue(bool b) : v(b) {}
  IValue(int64_t i) : v(i) {}
  IValue(int i) : v(static_cast<int64_t>(i)) {}
  IValue(double d) : v(d) {}
  IValue(std::string s) : v(std::move(s)) {}
  IValue(const char* s) : v(std::string(s)) {}
  IValue(Tensor t) : v(std::move(t)) {}
  IValue(Device d) : v(std::move(d)) {}
  IValue(std::shared_ptr<Object> o) : v(std::move(o)) {}
  static IValue list(IValueList items);
  static IValue tuple(IValueList items);
  static IValue int_list(const std::vector<int64_t>& items);
  static IValue dict(std::vector<std::pair<IValue, IValue>> items);

  bool is_none() const { return v.index() == 0; }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_int() const { return std::holds_alternative<int64_t>(v); }
  bool is_double() const { return std::holds_alternative<double>(v); }
  bool is_number() const { return is_int() || is_double() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_tensor() const { return std::holds_alternative<Tensor>(v); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<ListBox>>(v); }
  bool is_tuple() const { return std::holds_alternative<std::shared_ptr<TupleBox>>(v); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<DictBox>>(v); }
  bool is_device() const { return std::holds_alternative<Device>(v); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(v); }

  // Checked accessors: a wrong kind throws kInvalidInput naming what was expected and found.
  bool to_bool() const;
  int64_t to_int() const;    // int or bool
  double to_double() const;  // int, float or bool (a "Scalar")
  const std::string& to_string() const;
  const Tensor& to_tensor() const;
  Tensor& to_tensor();
  IValueList& to_list() const;  // list items (mutable: lists are shared references)
  const IValueList& to_tuple() const;
  const IValueList& to_list_or_tuple() const;
  std::vector<int64_t> to_int_list() const;  // list/tuple of ints
  std::vector<double> to_double_list() const;
  std::vector<Tensor> to_tensor_list() const;
  DictBox& to_dict() const;
  const Device& to_device() const;
  const std::shared_ptr<Object>& to_object() const;

  const char* kind_name() const;  // "Tensor", "int", "float", "List", ... for error messages
  std::string repr() const;       // short printable form for messages and the graph printer
};

// A module instance from an archive: its class (`__torch__.torch.nn.modules.linear.Linear`) and its
// attributes in the order the pickle set them.
struct Object {
  std::string type_name;
  std::vector<std::pair<std::string, IValue>> attrs;

  const IValue* find(const std::string& name) const;
  void set(const std::string& name, IValue value);
};

}  // namespace convoy
