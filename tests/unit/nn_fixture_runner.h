// Runs the PyTorch-generated op cases of tests/fixtures/ops/nn (see make_nn_fixtures.py there for the
// manifest format): rebuilds each call's arguments, fills schema defaults, runs the registered kernel
// and compares every result with PyTorch's by relative L2 error (integers exactly). It also checks that
// the op's shape inference, given the arguments' static types, agrees with the shapes actually produced.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"

namespace convoy::nn_testing {

// The fixture folder of a family: tests/fixtures/ops/nn by default, tests/fixtures/ops/upsample, ...
inline std::string fixture_dir(const std::string& family = "nn") {
  return std::string(CONVOY_SOURCE_DIR) + "/tests/fixtures/ops/" + family;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
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

inline std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

inline Shape parse_shape(const std::string& text) {
  Shape shape;
  if (text.empty()) return shape;
  for (const std::string& d : split(text, 'x')) shape.push_back(std::stoll(d));
  return shape;
}

// splitmix64 of state seed + i·golden (i = 1..n), top 53 bits → [-1, 1); the fixture script's
// generator, bit for bit.
inline std::vector<double> splitmix_uniform(uint64_t seed, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = seed + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    out[static_cast<size_t>(i)] = static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0;
  }
  return out;
}

// "f4:2x3:17:1.0:0.0" → a generated tensor.
inline Tensor generated_tensor(const std::string& spec) {
  std::vector<std::string> f = split(spec, ':');
  REQUIRE(f.size() == 5);
  const DType dtype = f[0] == "f8" ? DType::kFloat64 : DType::kFloat32;
  const Shape shape = parse_shape(f[1]);
  const double scale = std::stod(f[3]), shift = std::stod(f[4]);
  std::vector<double> values = splitmix_uniform(std::stoull(f[2]), shape_numel(shape));
  for (double& v : values) v = v * scale + shift;
  // from_doubles rounds each double once to the dtype, as numpy's astype does.
  return Tensor::from_doubles(shape, dtype, values);
}

inline Tensor parse_tensor_token(const std::string& token) {
  if (token.rfind("G:", 0) == 0) return generated_tensor(token.substr(2));
  if (token.rfind("Gt:", 0) == 0) {
    Tensor t = generated_tensor(token.substr(3));
    Shape sizes = t.sizes(), strides = t.strides();
    std::swap(sizes[sizes.size() - 1], sizes[sizes.size() - 2]);
    std::swap(strides[strides.size() - 1], strides[strides.size() - 2]);
    return t.as_strided(sizes, strides, t.offset());
  }
  if (token.rfind("I:", 0) == 0) {
    std::vector<std::string> f = split(token.substr(2), ':');
    REQUIRE(f.size() == 3);
    if (f[0] == "f4") {
      std::vector<double> values;
      for (const std::string& v : split(f[2], ',')) values.push_back(std::stod(v));  // "-inf" included
      return Tensor::from_doubles(parse_shape(f[1]), DType::kFloat32, values);
    }
    const DType dtype = f[0] == "i8" ? DType::kInt64 : f[0] == "i4" ? DType::kInt32 : DType::kBool;
    std::vector<int64_t> values;
    for (const std::string& v : split(f[2], ',')) values.push_back(std::stoll(v));
    return Tensor::from_ints(parse_shape(f[1]), dtype, values);
  }
  FAIL("unknown tensor token " << token);
  return Tensor();
}

inline IValue parse_arg(const std::string& token) {
  if (token == "N") return IValue();
  if (token.rfind("TL:", 0) == 0) {
    IValueList items;
    for (const std::string& t : split(token.substr(3), '|')) items.emplace_back(parse_tensor_token(t));
    return IValue::list(std::move(items));
  }
  const std::string value = token.size() > 2 ? token.substr(token.find(':') + 1) : "";
  if (token.rfind("i:", 0) == 0) return IValue(static_cast<int64_t>(std::stoll(value)));
  if (token.rfind("f:", 0) == 0) return IValue(std::stod(value));
  if (token.rfind("b:", 0) == 0) return IValue(value == "1");
  if (token.rfind("s:", 0) == 0) return IValue(value);
  if (token.rfind("il:", 0) == 0) {
    std::vector<int64_t> ints;
    if (!value.empty())
      for (const std::string& v : split(value, ',')) ints.push_back(std::stoll(v));
    return IValue::int_list(ints);
  }
  if (token.rfind("fl:", 0) == 0) {  // a float list (scale_factors)
    IValueList items;
    for (const std::string& v : split(value, ',')) items.emplace_back(std::stod(v));
    return IValue::list(std::move(items));
  }
  return IValue(parse_tensor_token(token));
}

struct FixtureCase {
  std::string name;
  std::string op;  // "aten::conv2d.padding"
  std::vector<std::string> args;
  std::vector<std::string> outputs;
  double tolerance = 1e-5;
  std::string family = "nn";  // the fixture folder (fixture_dir) holding the outputs
};

inline std::vector<FixtureCase> load_manifest(const std::string& file, const std::string& family = "nn") {
  std::ifstream in(fixture_dir(family) + "/" + file);
  REQUIRE(in.good());
  std::vector<FixtureCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f = split(line, '\t');
    REQUIRE(f.size() == 5);
    FixtureCase c;
    c.name = f[0];
    c.op = f[1];
    for (const std::string& a : split(f[2], ';'))
      if (!trim(a).empty()) c.args.push_back(trim(a));
    c.outputs = split(f[3], ',');
    c.tolerance = std::stod(f[4]);
    c.family = family;
    cases.push_back(std::move(c));
  }
  return cases;
}

inline const OpOverload& resolve(const OpRegistry& registry, const std::string& qualified) {
  const size_t colon = qualified.find("::");
  const size_t dot = qualified.find('.', colon);
  const std::string name = qualified.substr(0, dot);
  const std::string overload = dot == std::string::npos ? "" : qualified.substr(dot + 1);
  const OpOverload* op = registry.find(name, overload);
  INFO("op " << qualified);
  REQUIRE(op != nullptr);
  return *op;
}

// Appends the schema defaults of the arguments the call omitted.
inline IValueList with_defaults(const OpOverload& op, IValueList args) {
  const auto& formal = op.schema.arguments;
  REQUIRE(args.size() <= formal.size());
  for (size_t i = args.size(); i < formal.size(); ++i) {
    INFO("argument " << formal[i].name << " of " << op.schema.text);
    REQUIRE(formal[i].default_value.has_value());
    args.push_back(*formal[i].default_value);
  }
  return args;
}

// Runs a registered op on explicit arguments (defaults filled), as the executor would.
inline IValueList call_op(const OpRegistry& registry, const std::string& qualified, IValueList args) {
  const OpOverload& op = resolve(registry, qualified);
  IValueList full = with_defaults(op, std::move(args));
  return op.kernel(full);
}

// ||got − want|| / ||want||, with NaNs required at the same positions and left out of the norms.
inline double relative_l2(const Tensor& got, const Tensor& want) {
  std::vector<double> g = got.to_doubles(), w = want.to_doubles();
  REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      INFO("element " << i << ": got " << g[i] << ", want " << w[i]);
      REQUIRE((std::isnan(w[i]) && std::isnan(g[i])));
      continue;
    }
    num += (g[i] - w[i]) * (g[i] - w[i]);
    den += w[i] * w[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

inline void check_result(const Tensor& got, const Tensor& want, double tolerance) {
  REQUIRE(got.defined());
  CHECK(got.sizes() == want.sizes());
  if (got.sizes() != want.sizes()) {
    FAIL_CHECK("shape " << shape_str(got.sizes()) << " vs expected " << shape_str(want.sizes()));
    return;
  }
  CHECK(dtype_name(got.dtype()) == std::string(dtype_name(want.dtype())));
  if (is_integral(want.dtype(), true)) {
    CHECK(got.to_ints() == want.to_ints());
  } else {
    const double err = relative_l2(got, want);
    INFO("relative L2 error " << err << ", tolerance " << tolerance);
    CHECK(err <= tolerance);
  }
}

inline TypePtr static_type_of(const IValue& v) {
  if (v.is_tensor()) return Type::tensor(v.to_tensor().dtype(), v.to_tensor().sizes());
  if (v.is_none()) return Type::none();
  if (v.is_bool()) return Type::boolean();
  if (v.is_int()) return Type::integer();
  if (v.is_double()) return Type::floating();
  if (v.is_string()) return Type::string();
  if (v.is_list()) {
    const IValueList& items = v.to_list();
    if (!items.empty() && items[0].is_tensor()) return Type::list(Type::tensor());
    if (!items.empty() && items[0].is_double()) return Type::list(Type::floating());
    return Type::list(Type::integer());
  }
  return Type::any();
}

// The inference function, given the arguments' exact static types and every non-tensor argument as a
// constant, must agree with the results' shapes and dtypes wherever it refines them.
inline void check_inference(const OpOverload& op, const IValueList& args, const IValueList& results) {
  if (!op.infer) return;
  std::vector<TypePtr> types;
  std::vector<const IValue*> constants;
  for (const IValue& a : args) {
    types.push_back(static_type_of(a));
    constants.push_back(
        a.is_tensor() || (a.is_list() && !a.to_list().empty() && a.to_list()[0].is_tensor()) ? nullptr : &a);
  }
  std::vector<TypePtr> inferred = op.infer(types, constants);
  REQUIRE(inferred.size() == results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].is_tensor() || !inferred[i]) continue;
    const Tensor& t = results[i].to_tensor();
    INFO("inferred result " << i << ": " << inferred[i]->str());
    if (inferred[i]->shape) CHECK(*inferred[i]->shape == t.sizes());
    if (inferred[i]->dtype) CHECK(*inferred[i]->dtype == t.dtype());
  }
}

inline void run_fixture_case(const OpRegistry& registry, const FixtureCase& c) {
  INFO("case " << c.name << " (" << c.op << ")");
  const OpOverload& op = resolve(registry, c.op);
  IValueList args;
  for (const std::string& token : c.args) args.push_back(parse_arg(token));
  IValueList full = with_defaults(op, args);
  std::vector<std::vector<double>> before_values;  // kernels must not write into their inputs
  for (const IValue& a : full)
    if (a.is_tensor()) before_values.push_back(a.to_tensor().to_doubles());
  IValueList results = op.kernel(full);
  REQUIRE(results.size() == c.outputs.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (c.outputs[i] == "-") continue;
    INFO("result " << i << " vs " << c.outputs[i]);
    REQUIRE(results[i].is_tensor());
    check_result(results[i].to_tensor(), read_npy(fixture_dir(c.family) + "/" + c.outputs[i]), c.tolerance);
  }
  size_t k = 0;
  for (const IValue& a : full)
    if (a.is_tensor()) {
      std::vector<double> now = a.to_tensor().to_doubles();
      const std::vector<double>& was = before_values[k++];
      bool same = now.size() == was.size();
      for (size_t j = 0; same && j < now.size(); ++j)
        same = now[j] == was[j] || (std::isnan(now[j]) && std::isnan(was[j]));
      CHECK(same);
    }
  check_inference(op, full, results);
}

}  // namespace convoy::nn_testing
