// Recurrent and attention kernels against PyTorch (tests/fixtures/ops/nn/manifest_sequence.txt: torch
// 1.13's gru/lstm/rnn, _native_multi_head_attention, _transformer_encoder_layer_fwd, and a float64
// reference of torch 2.x's scaled_dot_product_attention), a hand-computed GRU step, and error paths.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/registry.h"
#include "tests/unit/nn_fixture_runner.h"

using namespace convoy;
using namespace convoy::nn_testing;

namespace {

const OpRegistry& sequence_registry() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_sequence_ops(r);
    return r;
  }();
  return registry;
}

Tensor values(const Shape& shape, std::vector<double> v, DType dtype = DType::kFloat32) {
  return Tensor::from_doubles(shape, dtype, v);
}

Tensor wave(const Shape& shape, double phase = 0.0) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.9 * static_cast<double>(i) + phase) * 0.5;
  return Tensor::from_doubles(shape, DType::kFloat32, v);
}

std::string error_of(const std::function<void()>& fn, ErrorKind* kind = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

TEST_CASE("sequence ops match PyTorch on the fixture cases", "[sequence_ops]") {
  const std::vector<FixtureCase> cases = load_manifest("manifest_sequence.txt");
  REQUIRE(cases.size() >= 20);
  for (const FixtureCase& c : cases) {
    DYNAMIC_SECTION(c.name) { run_fixture_case(sequence_registry(), c); }
  }
}

TEST_CASE("a GRU step follows the r, z, n gate order with the reset gate inside", "[sequence_ops]") {
  // input size 1, hidden 1, one step: gate rows are r, z, n.
  const double x = 0.7, h0 = -0.4;
  const double wi[3] = {0.3, -0.5, 0.8}, wh[3] = {0.6, 0.2, -0.9}, bi[3] = {0.1, 0.05, -0.2},
               bh[3] = {-0.3, 0.4, 0.25};
  IValueList params{values({3, 1}, {wi[0], wi[1], wi[2]}), values({3, 1}, {wh[0], wh[1], wh[2]}),
                    values({3}, {bi[0], bi[1], bi[2]}), values({3}, {bh[0], bh[1], bh[2]})};
  IValueList out =
      call_op(sequence_registry(), "aten::gru.input",
              {values({1, 1, 1}, {x}), values({1, 1, 1}, {h0}), IValue::list(params), IValue(true),
               IValue(int64_t{1}), IValue(0.0), IValue(false), IValue(false), IValue(false)});
  const double r = sigmoid(wi[0] * x + bi[0] + wh[0] * h0 + bh[0]);
  const double z = sigmoid(wi[1] * x + bi[1] + wh[1] * h0 + bh[1]);
  const double n = std::tanh(wi[2] * x + bi[2] + r * (wh[2] * h0 + bh[2]));
  const double h1 = (1 - z) * n + z * h0;
  CHECK(out[0].to_tensor().item_double() == Approx(h1).epsilon(1e-6));
  CHECK(out[1].to_tensor().item_double() == Approx(h1).epsilon(1e-6));
}

TEST_CASE("an LSTM step follows the i, f, g, o gate order", "[sequence_ops]") {
  const double x = -0.6, h0 = 0.3, c0 = 0.8;
  const double wi[4] = {0.5, -0.4, 0.9, 0.2}, wh[4] = {-0.7, 0.1, 0.3, 0.6};
  IValueList params{values({4, 1}, {wi[0], wi[1], wi[2], wi[3]}),
                    values({4, 1}, {wh[0], wh[1], wh[2], wh[3]})};
  IValueList hx{values({1, 1, 1}, {h0}), values({1, 1, 1}, {c0})};
  IValueList out = call_op(sequence_registry(), "aten::lstm.input",
                           {values({1, 1, 1}, {x}), IValue::list(hx), IValue::list(params), IValue(false),
                            IValue(int64_t{1}), IValue(0.0), IValue(false), IValue(false), IValue(false)});
  const double i = sigmoid(wi[0] * x + wh[0] * h0), f = sigmoid(wi[1] * x + wh[1] * h0);
  const double g = std::tanh(wi[2] * x + wh[2] * h0), o = sigmoid(wi[3] * x + wh[3] * h0);
  const double c1 = f * c0 + i * g, h1 = o * std::tanh(c1);
  CHECK(out[0].to_tensor().item_double() == Approx(h1).epsilon(1e-6));
  CHECK(out[1].to_tensor().item_double() == Approx(h1).epsilon(1e-6));
  CHECK(out[2].to_tensor().item_double() == Approx(c1).epsilon(1e-6));
}

TEST_CASE("recurrent ops reject inconsistent parameters and random dropout", "[sequence_ops]") {
  const OpRegistry& r = sequence_registry();
  IValueList three{wave({6, 2}), wave({6, 2}), wave({6})};
  std::string msg = error_of([&] {
    call_op(r, "aten::gru.input",
            {wave({3, 1, 2}), wave({1, 1, 2}), IValue::list(three), IValue(true), IValue(int64_t{1}),
             IValue(0.0), IValue(false), IValue(false), IValue(false)});
  });
  CHECK_THAT(msg, Catch::Contains("aten::gru") && Catch::Contains("expected 4 parameter tensors") &&
                      Catch::Contains("got 3"));
  IValueList four{wave({6, 2}), wave({6, 2}), wave({6}), wave({6})};
  msg = error_of([&] {
    call_op(r, "aten::gru.input",
            {wave({3, 1, 2}), wave({1, 2, 2}), IValue::list(four), IValue(true), IValue(int64_t{1}),
             IValue(0.0), IValue(false), IValue(false), IValue(false)});
  });
  CHECK_THAT(msg, Catch::Contains("initial hidden state") && Catch::Contains("[1, 1, 2]"));
  IValueList eight = four;
  eight.insert(eight.end(), {wave({6, 2}), wave({6, 2}), wave({6}), wave({6})});
  ErrorKind kind = ErrorKind::kInternal;
  msg = error_of(
      [&] {
        call_op(r, "aten::gru.input",
                {wave({3, 1, 2}), wave({2, 1, 2}), IValue::list(eight), IValue(true), IValue(int64_t{2}),
                 IValue(0.5), IValue(true), IValue(false), IValue(false)});
      },
      &kind);
  CHECK(kind == ErrorKind::kUnsupported);
  CHECK_THAT(msg, Catch::Contains("dropout"));
}

TEST_CASE("multi-head attention without weights returns an empty second result", "[sequence_ops]") {
  const int64_t E = 4;
  const Tensor x = wave({1, 3, E});
  IValueList out = call_op(sequence_registry(), "aten::_native_multi_head_attention",
                           {x, x, x, IValue(E), IValue(int64_t{2}), wave({3 * E, E}, 1.0), wave({3 * E}, 2.0),
                            wave({E, E}, 3.0), wave({E}, 4.0), IValue(), IValue(false)});
  CHECK(out[0].to_tensor().sizes() == Shape{1, 3, E});
  CHECK(out[1].to_tensor().sizes() == Shape{0});
  const std::string msg = error_of([&] {
    call_op(
        sequence_registry(), "aten::_native_multi_head_attention",
        {x, x, x, IValue(E), IValue(int64_t{3}), wave({3 * E, E}), wave({3 * E}), wave({E, E}), wave({E})});
  });
  CHECK_THAT(msg, Catch::Contains("not divisible by num_head=3"));
}

TEST_CASE("scaled_dot_product_attention's inference-only rules", "[sequence_ops]") {
  const OpRegistry& r = sequence_registry();
  const Tensor q = wave({1, 2, 3}), k = wave({1, 4, 3}, 0.5), v = wave({1, 4, 2}, 1.0);
  ErrorKind kind = ErrorKind::kInternal;
  std::string msg = error_of(
      [&] {
        call_op(r, "aten::scaled_dot_product_attention", {q, k, v, IValue(), IValue(0.1)});
      },
      &kind);
  CHECK(kind == ErrorKind::kUnsupported);
  CHECK_THAT(msg, Catch::Contains("dropout_p=0.1"));
  const Tensor mask = Tensor::from_ints({2, 4}, DType::kBool, {1, 1, 0, 0, 0, 0, 0, 0});
  msg = error_of([&] {
    call_op(r, "aten::scaled_dot_product_attention", {q, k, v, mask, IValue(0.0), IValue(true)});
  });
  CHECK_THAT(msg, Catch::Contains("is_causal"));
  // A query row that may attend to nothing yields zeros rather than NaN.
  const Tensor out = call_op(r, "aten::scaled_dot_product_attention", {q, k, v, mask})[0].to_tensor();
  REQUIRE(out.sizes() == Shape{1, 2, 2});
  CHECK(out.get_double(2) == 0.0);
  CHECK(out.get_double(3) == 0.0);
  CHECK(std::isfinite(out.get_double(0)));
}

TEST_CASE("multi-head attention reads torch 2.x's attention masks (mask_type 0 and 2)", "[sequence_ops]") {
  // torch 1.13's kernel rejects these mask types, so the expectation is built by hand: masked
  // probabilities are 0, the others sum to 1, and an (L, S) mask equals its (B, H, L, S) expansion.
  const int64_t E = 4, H = 2, B = 2, L = 3;
  const Tensor x = wave({B, L, E});
  const Tensor causal = Tensor::from_ints({L, L}, DType::kBool, {0, 1, 1, 0, 0, 1, 0, 0, 0});
  std::vector<double> expanded;
  for (int64_t i = 0; i < B * H; ++i)
    for (int64_t v : causal.to_ints()) expanded.push_back(v ? -std::numeric_limits<double>::infinity() : 0.0);
  const Tensor float4d = values({B, H, L, L}, expanded);
  auto run = [&](const Tensor& mask, int64_t type) {
    return call_op(sequence_registry(), "aten::_native_multi_head_attention",
                   {x, x, x, IValue(E), IValue(H), wave({3 * E, E}, 1.0), wave({3 * E}, 2.0),
                    wave({E, E}, 3.0), wave({E}, 4.0), mask, IValue(true), IValue(false), IValue(type)});
  };
  IValueList a = run(causal, 0), b = run(float4d, 2);
  const Tensor& w = a[1].to_tensor();
  REQUIRE(w.sizes() == Shape{B, H, L, L});
  for (int64_t row = 0; row < B * H * L; ++row) {
    double sum = 0;
    for (int64_t j = 0; j < L; ++j) {
      const double p = w.get_double(row * L + j);
      if (j > row % L) CHECK(p == 0.0);
      sum += p;
    }
    CHECK(sum == Approx(1.0).epsilon(1e-6));
  }
  CHECK(relative_l2(a[0].to_tensor(), b[0].to_tensor()) < 1e-7);
  CHECK(relative_l2(w, b[1].to_tensor()) < 1e-7);
}
