// Reduction and scan kernels, checked against values PyTorch 1.13 computed (the table comes from
// tests/fixtures/ops/make_elementwise_expectations.py) and against hand-computed values for
// precision, index semantics and type inference.
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "tests/fixtures/ops/op_cases.h"

namespace convoy {
namespace {

using namespace op_cases;

const std::vector<OpCase>& recorded_cases() {
  static const std::vector<OpCase> cases = load_cases("reduction_cases.txt");
  return cases;
}

const OpRegistry& registry() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_elementwise_ops(reg);
    register_reduction_ops(reg);
    return reg;
  }();
  return r;
}

IValueList call(const char* name, const char* overload, IValueList args) {
  const OpOverload* op = registry().find(name, overload);
  REQUIRE(op != nullptr);
  return op->kernel(args);
}

const std::vector<std::string> kSums = {"aten::sum", "aten::mean", "aten::prod", "aten::cumsum"};
const std::vector<std::string> kExtremes = {"aten::max",  "aten::min",    "aten::amax",
                                            "aten::amin", "aten::argmax", "aten::argmin"};
const std::vector<std::string> kStatistics = {"aten::var", "aten::std", "aten::norm", "aten::logsumexp"};
const std::vector<std::string> kLogical = {"aten::all", "aten::any"};
const std::vector<std::string> kSoftmax = {"aten::softmax", "aten::log_softmax", "aten::_softmax",
                                           "aten::_log_softmax"};

TEST_CASE("reduction: sum, mean, prod and cumsum match PyTorch", "[ops][reduction]") {
  CHECK(run_cases(registry(), recorded_cases(), kSums) > 250);
}

TEST_CASE("reduction: max, min, amax, amin, argmax and argmin match PyTorch", "[ops][reduction]") {
  CHECK(run_cases(registry(), recorded_cases(), kExtremes) > 300);
}

TEST_CASE("reduction: var, std, norm and logsumexp match PyTorch", "[ops][reduction]") {
  CHECK(run_cases(registry(), recorded_cases(), kStatistics) > 150);
}

TEST_CASE("reduction: all and any match PyTorch", "[ops][reduction]") {
  CHECK(run_cases(registry(), recorded_cases(), kLogical) > 50);
}

TEST_CASE("reduction: softmax and log_softmax match PyTorch", "[ops][reduction]") {
  CHECK(run_cases(registry(), recorded_cases(), kSoftmax) > 30);
}

TEST_CASE("reduction: every recorded case belongs to a tested family", "[ops][reduction]") {
  std::vector<std::string> all;
  for (const auto* family : {&kSums, &kExtremes, &kStatistics, &kLogical, &kSoftmax})
    all.insert(all.end(), family->begin(), family->end());
  for (const OpCase& c : recorded_cases()) {
    INFO(describe_case(c));
    CHECK(case_matches(c, all));
  }
}

TEST_CASE("reduction: float32 sums accumulate in double", "[ops][reduction]") {
  // 1 followed by a million 1e-8: float32 accumulation would stay at 1.0.
  std::vector<double> v(1000001, 1e-8);
  v[0] = 1.0;
  Tensor x = Tensor::from_doubles({static_cast<int64_t>(v.size())}, DType::kFloat32, v);
  Tensor s = call("aten::sum", "", {IValue(x), IValue()}).at(0).to_tensor();
  CHECK(s.dtype() == DType::kFloat32);
  CHECK(s.item_double() == Approx(1.01).epsilon(1e-6));
  // int64 sums wrap around and stay exact beyond 2^53.
  Tensor big = Tensor::from_ints({2}, DType::kInt64, {INT64_MAX, 2});
  CHECK(call("aten::sum", "", {IValue(big), IValue()}).at(0).to_tensor().item_int() == INT64_MIN + 1);
  Tensor exact = Tensor::from_ints({2}, DType::kInt64, {(int64_t{1} << 60) + 1, (int64_t{1} << 60)});
  IValueList mx = call("aten::max", "dim", {IValue(exact), IValue(int64_t{0}), IValue(false)});
  CHECK(mx[0].to_tensor().item_int() == (int64_t{1} << 60) + 1);
  CHECK(mx[1].to_tensor().item_int() == 0);
}

TEST_CASE("reduction: dims wrap, and bad dims name the op", "[ops][reduction]") {
  Tensor x = Tensor::from_doubles({2, 3}, DType::kFloat32, {1, 2, 3, 4, 5, 6});
  Tensor s = call("aten::sum", "dim_IntList", {IValue(x), IValue::int_list({-1}), IValue(true), IValue()})
                 .at(0)
                 .to_tensor();
  CHECK(s.sizes() == Shape{2, 1});
  CHECK(s.to_doubles() == std::vector<double>{6, 15});
  // A single int where the schema says int[1] is accepted as a one-element list.
  Tensor m =
      call("aten::mean", "dim", {IValue(x), IValue(int64_t{0}), IValue(false), IValue()}).at(0).to_tensor();
  CHECK(m.to_doubles() == std::vector<double>{2.5, 3.5, 4.5});
  CHECK_THROWS_WITH(
      call("aten::sum", "dim_IntList", {IValue(x), IValue::int_list({2}), IValue(false), IValue()}),
      Catch::Contains("aten::sum") && Catch::Contains("2"));
  CHECK_THROWS_WITH(call("aten::amax", "", {IValue(x), IValue::int_list({1, -1}), IValue(false)}),
                    Catch::Contains("aten::amax") && Catch::Contains("multiple times"));
  CHECK_THROWS_WITH(call("aten::mean", "", {IValue(Tensor::from_ints({2}, DType::kInt64, {1, 2})), IValue()}),
                    Catch::Contains("aten::mean") && Catch::Contains("Long"));
}

TEST_CASE("reduction: softmax over a strided view writes a contiguous result", "[ops][reduction]") {
  Tensor base = Tensor::from_doubles({3, 2}, DType::kFloat64, {0, 1, 2, 3, 4, 5});
  Tensor t = base.as_strided({2, 3}, {1, 2}, 0);  // [[0, 2, 4], [1, 3, 5]]
  Tensor s = call("aten::softmax", "int", {IValue(t), IValue(int64_t{1}), IValue()}).at(0).to_tensor();
  REQUIRE(s.is_contiguous());
  double z = 1 + std::exp(2.0) + std::exp(4.0);
  std::vector<double> expected{1 / z, std::exp(2.0) / z, std::exp(4.0) / z};
  std::vector<double> got = s.to_doubles();
  for (int i = 0; i < 3; ++i) {
    CHECK(got[i] == Approx(expected[i]).epsilon(1e-14));
    CHECK(got[i + 3] == Approx(expected[i]).epsilon(1e-14));  // rows differ by a constant
  }
  Tensor ls =
      call("aten::log_softmax", "int", {IValue(t), IValue(int64_t{0}), IValue(int64_t{6})}).at(0).to_tensor();
  CHECK(ls.dtype() == DType::kFloat32);
  CHECK(ls.to_doubles()[0] == Approx(-std::log1p(std::exp(1.0))).epsilon(1e-6));
}

TEST_CASE("reduction: InferFns give reduced shapes when dims are constants", "[ops][reduction]") {
  const OpOverload* sum = registry().find("aten::sum", "dim_IntList");
  IValue dims = IValue::int_list({1, -1});
  IValue keep(true), drop(false), none;
  std::vector<TypePtr> args{Type::tensor(DType::kInt32, Shape{-1, 5, 7}), Type::list(Type::integer()),
                            Type::boolean(), Type::none()};
  auto t = sum->infer(args, {nullptr, &dims, &keep, &none});
  CHECK(t.at(0)->shape == Shape{-1, 1, 1});
  CHECK(t.at(0)->dtype == DType::kInt64);
  t = sum->infer(args, {nullptr, &dims, &drop, &none});
  CHECK(t.at(0)->shape == Shape{-1});
  t = sum->infer(args, {nullptr, nullptr, &drop, &none});
  CHECK_FALSE(t.at(0)->shape.has_value());
  const OpOverload* maxdim = registry().find("aten::max", "dim");
  IValue d0(int64_t{0});
  auto mt = maxdim->infer({Type::tensor(DType::kFloat16, Shape{4, 3}), Type::integer(), Type::boolean()},
                          {nullptr, &d0, &drop});
  REQUIRE(mt.size() == 2);
  CHECK(mt[0]->dtype == DType::kFloat16);
  CHECK(mt[1]->dtype == DType::kInt64);
  CHECK(mt[1]->shape == Shape{3});
  const OpOverload* all = registry().find("aten::all", "");
  CHECK(all->infer({Type::tensor(DType::kUInt8, Shape{2})}, {nullptr}).at(0)->dtype == DType::kUInt8);
  CHECK(all->infer({Type::tensor(DType::kFloat32, Shape{2})}, {nullptr}).at(0)->shape == Shape{});
}

TEST_CASE("reduction: every registered overload infers its result types", "[ops][reduction]") {
  OpRegistry r;
  register_reduction_ops(r);
  CHECK(r.size() > 30);
  for (const std::string& name : r.names())
    for (const OpOverload* op : r.overloads(name)) {
      // The registry already refuses an overload without a kernel; what it does not check is shape
      // inference, which the partitioner and the OpenCL planner need for every op.
      INFO(op->schema.full_name());
      CHECK(op->infer != nullptr);
    }
}

}  // namespace
}  // namespace convoy
