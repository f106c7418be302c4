// Runs one registry op through the OpenCL executor and through its reference kernel on the same values,
// and compares the results: the differential harness of the OpenCL op tests.
//
// The op becomes a one-node graph: tensor arguments are graph inputs (so they live in the plan's arena),
// model constants, or strided device views of an input (an aten::as_strided node in front), and tensor
// lists go through prim::ListConstruct. The reference kernel gets the same values on the host.
// Floating results must match within |got - want| <= atol + rtol·|want| elementwise (NaN where the
// reference has NaN); integer and bool results exactly.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/executor.h"
#include "runtime/graph/ir.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl::testing {

// ctest points CONVOY_CACHE_DIR into the build tree; run by hand, the binary uses a folder beside itself.
inline void use_test_cache_dir() {
  if (const char* dir = std::getenv("CONVOY_CACHE_DIR"); dir && *dir) return;
  const std::filesystem::path dir =
      std::filesystem::read_symlink("/proc/self/exe").parent_path() / "convoy-cache";
  setenv("CONVOY_CACHE_DIR", dir.c_str(), 0);
}

inline Device& test_device() {
  static std::unique_ptr<Device> d = [] {
    use_test_cache_dir();
    return Device::open();
  }();
  return *d;
}

inline const OpRegistry& test_registry() {
  static const OpRegistry r = make_default_registry();
  return r;
}

// Values in [lo, hi): integers are rounded, bools are x > 0.
inline Tensor random_tensor(const Shape& shape, uint32_t seed, DType dtype = DType::kFloat32, double lo = -3,
                            double hi = 3) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) {
    x = dist(rng);
    if (dtype == DType::kBool)
      x = x > 0 ? 1 : 0;
    else if (!is_floating(dtype))
      x = std::round(x);
  }
  return Tensor::from_doubles(shape, dtype, v);
}

struct Arg {
  enum class Kind { kConstant, kInput, kView, kList };
  Kind kind = Kind::kConstant;
  IValue value;  // the constant, the input, or the contiguous base of a view
  Shape sizes, strides;
  int64_t offset = 0;
  std::vector<Arg> items;
};

inline Arg constant(IValue v) {
  Arg a;
  a.value = std::move(v);
  return a;
}
inline Arg input(Tensor t) {
  Arg a;
  a.kind = Arg::Kind::kInput;
  a.value = IValue(std::move(t));
  return a;
}
inline Arg view(Tensor base, Shape sizes, Shape strides, int64_t offset = 0) {
  Arg a;
  a.kind = Arg::Kind::kView;
  a.value = IValue(std::move(base));
  a.sizes = std::move(sizes);
  a.strides = std::move(strides);
  a.offset = offset;
  return a;
}
// A view with dims d0 and d1 of a contiguous base exchanged, of the given (exchanged) sizes.
inline Arg transposed(const Shape& sizes, size_t d0, size_t d1, uint32_t seed,
                      DType dtype = DType::kFloat32) {
  Shape base = sizes;
  std::swap(base[d0], base[d1]);
  Shape strides = contiguous_strides(base);
  std::swap(strides[d0], strides[d1]);
  return view(random_tensor(base, seed, dtype), sizes, strides);
}
inline Arg list_of(std::vector<Arg> items) {
  Arg a;
  a.kind = Arg::Kind::kList;
  a.items = std::move(items);
  return a;
}
inline Arg ints(std::vector<int64_t> v) { return constant(IValue::int_list(v)); }

inline IValue host_value(const Arg& a) {
  switch (a.kind) {
    case Arg::Kind::kConstant:
      return a.value;
    case Arg::Kind::kInput:
      return IValue(a.value.to_tensor().clone());
    case Arg::Kind::kView:
      return IValue(a.value.to_tensor().clone().as_strided(a.sizes, a.strides, a.offset));
    case Arg::Kind::kList: {
      IValueList items;
      for (const Arg& x : a.items) items.push_back(host_value(x));
      return IValue::list(std::move(items));
    }
  }
  return IValue();
}

inline const OpOverload& overload(const std::string& full_name) {
  size_t dot = full_name.find('.');
  std::string name = full_name.substr(0, dot),
              over = dot == std::string::npos ? "" : full_name.substr(dot + 1);
  const OpOverload* op = test_registry().find(name, over);
  INFO("op " << full_name);
  REQUIRE(op != nullptr);
  return *op;
}

// Builds the one-node graph of `op` over `args`; graph inputs are appended to `inputs`.
inline std::unique_ptr<Graph> op_graph(const OpOverload& op, const std::vector<Arg>& args,
                                       std::vector<IValue>& inputs) {
  auto g = std::make_unique<Graph>();
  std::function<Value*(const Arg&)> value_of = [&](const Arg& a) -> Value* {
    switch (a.kind) {
      case Arg::Kind::kConstant:
        return g->constant(a.value);
      case Arg::Kind::kInput:
        inputs.push_back(a.value);
        return g->top()->add_param(Type::tensor());
      case Arg::Kind::kView: {
        inputs.push_back(a.value);
        Value* base = g->top()->add_param(Type::tensor());
        const OpOverload& strided = overload("aten::as_strided");
        Node* n = g->top()->append("aten::as_strided",
                                   {base, g->constant(IValue::int_list(a.sizes)),
                                    g->constant(IValue::int_list(a.strides)), g->constant(IValue(a.offset))},
                                   1, SourceRange{"test.py", 1});
        n->op = &strided;
        return n->outputs[0];
      }
      case Arg::Kind::kList: {
        std::vector<Value*> items;
        for (const Arg& x : a.items) items.push_back(value_of(x));
        return g->top()->append("prim::ListConstruct", items, 1)->outputs[0];
      }
    }
    return nullptr;
  };
  std::vector<Value*> values;
  for (const Arg& a : args) values.push_back(value_of(a));
  Node* n = g->top()->append(op.schema.name, values, op.schema.returns.size(), SourceRange{"test.py", 2});
  n->op = &op;
  for (size_t i = 0; i < n->outputs.size(); ++i) n->outputs[i]->type = op.schema.returns[i].type;
  g->top()->returns = n->outputs;
  return g;
}

inline std::vector<IValue> run_opencl(const OpOverload& op, const std::vector<Arg>& args) {
  std::vector<IValue> inputs;
  std::unique_ptr<Graph> g = op_graph(op, args, inputs);
  OpenCLExecutor executor(*g, test_device());
  return executor.run(inputs);
}

inline std::vector<IValue> run_reference(const OpOverload& op, const std::vector<Arg>& args) {
  IValueList host;
  for (const Arg& a : args) host.push_back(host_value(a));
  return op.kernel(host);
}

inline void check_close(const IValue& got, const IValue& want, double rtol, double atol,
                        const std::string& what) {
  INFO(what);
  if (want.is_tensor()) {
    REQUIRE(got.is_tensor());
    const Tensor &g = got.to_tensor(), &w = want.to_tensor();
    REQUIRE(g.dtype() == w.dtype());
    REQUIRE(shape_str(g.sizes()) == shape_str(w.sizes()));
    if (is_floating(w.dtype())) {
      std::vector<double> gv = g.to_doubles(), wv = w.to_doubles();
      for (size_t i = 0; i < wv.size(); ++i) {
        INFO("element " << i << ": got " << gv[i] << ", want " << wv[i]);
        if (std::isnan(wv[i])) {
          CHECK(std::isnan(gv[i]));
        } else if (std::isinf(wv[i])) {
          CHECK(gv[i] == wv[i]);
        } else {
          CHECK(std::fabs(gv[i] - wv[i]) <= atol + rtol * std::fabs(wv[i]));
        }
      }
    } else {
      CHECK(g.to_ints() == w.to_ints());
    }
    return;
  }
  if (want.is_list() || want.is_tuple()) {
    REQUIRE((got.is_list() || got.is_tuple()));
    const IValueList &gi = got.to_list_or_tuple(), &wi = want.to_list_or_tuple();
    REQUIRE(gi.size() == wi.size());
    for (size_t i = 0; i < wi.size(); ++i)
      check_close(gi[i], wi[i], rtol, atol, what + "[" + std::to_string(i) + "]");
    return;
  }
  CHECK(got.repr() == want.repr());
}

// Runs `full_name` on both backends and compares every output.
inline void check_op(const std::string& full_name, const std::vector<Arg>& args, double rtol = 1e-5,
                     double atol = 1e-6) {
  const OpOverload& op = overload(full_name);
  std::vector<IValue> want = run_reference(op, args);
  std::vector<IValue> got = run_opencl(op, args);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i)
    check_close(got[i], want[i], rtol, atol, full_name + " output " + std::to_string(i));
}

}  // namespace convoy::opencl::testing
