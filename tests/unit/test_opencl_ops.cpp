// Differential tests of the generic OpenCL kernels (elementwise.cl, copy.cl, reduce.cl, softmax.cl) and
// of the op families built on them (opencl/ops/elementwise.cpp, reduction.cpp, views.cpp,
// factories.cpp, linalg.cpp) against the registry's reference kernels, on awkward shapes: odd sizes,
// size-1 dims, broadcasting, strided and transposed inputs, 0-dim tensors and scalars.
//
// Every OP_ define of elementwise.cl and reduce.cl runs at least once. Each distinct op and dtype is a
// PoCL compilation (cached on disk, and by PoCL itself), so the cases share shapes and dtypes where
// they can.
#include <catch2/catch.hpp>
#include <limits>

#include "opencl_op_harness.h"

using namespace convoy;
using namespace convoy::opencl;
using namespace convoy::opencl::testing;

namespace {

const Shape kOdd = {3, 5, 7};  // 105 elements: above the tracer's small-host limit, a multiple of nothing

Arg x_input(uint32_t seed = 1, DType dtype = DType::kFloat32, Shape shape = kOdd) {
  return input(random_tensor(shape, seed, dtype));
}

}  // namespace

TEST_CASE("opencl: unary elementwise ops match the reference", "[opencl][ops]") {
  const char* ops[] = {
      "aten::exp",   "aten::exp2",       "aten::expm1",     "aten::log",         "aten::log2",
      "aten::log10", "aten::log1p",      "aten::sqrt",      "aten::rsqrt",       "aten::sin",
      "aten::cos",   "aten::tan",        "aten::asin",      "aten::acos",        "aten::atan",
      "aten::sinh",  "aten::cosh",       "aten::tanh",      "aten::sigmoid",     "aten::erf",
      "aten::erfc",  "aten::reciprocal", "aten::abs",       "aten::floor",       "aten::ceil",
      "aten::round", "aten::trunc",      "aten::sign",      "aten::logical_not", "aten::isnan",
      "aten::isinf", "aten::isfinite",   "aten::hardswish", "aten::hardsigmoid", "aten::silu",
      "aten::mish",  "aten::neg",        "aten::relu",      "aten::square"};
  for (const char* op : ops) {
    INFO(op);
    // log/sqrt of negatives and asin outside [-1, 1] give NaN on both sides.
    check_op(op, {x_input(7)}, 2e-6, 1e-6);
  }
  check_op("aten::gelu", {x_input(2), constant(IValue("none"))});
  check_op("aten::gelu", {x_input(2), constant(IValue("tanh"))}, 2e-6);
  check_op("aten::hardtanh", {x_input(3), constant(IValue(-0.5)), constant(IValue(1.25))});
  check_op("aten::relu6", {input(random_tensor(kOdd, 3, DType::kFloat32, -8, 8))});
  check_op("aten::leaky_relu", {x_input(4), constant(IValue(0.2))});
  check_op("aten::elu", {x_input(5), constant(IValue(1.5)), constant(IValue(2.0)), constant(IValue(0.5))});
  check_op("aten::softplus", {x_input(6), constant(IValue(2.0)), constant(IValue(3.0))});
  check_op("aten::threshold", {x_input(8), constant(IValue(0.3)), constant(IValue(-7.0))});
  check_op("aten::round.decimals", {x_input(9), constant(IValue(int64_t{2}))});
  check_op("aten::round.decimals", {x_input(9), constant(IValue(int64_t{-1}))});
  // Integer, bool, half, bfloat16 and double storage.
  check_op("aten::abs", {x_input(10, DType::kInt32)});
  check_op("aten::neg", {x_input(10, DType::kInt64)});
  check_op("aten::exp", {x_input(11, DType::kInt64)});  // integer input, float32 result
  check_op("aten::bitwise_not", {x_input(12, DType::kInt16)});
  check_op("aten::bitwise_not", {x_input(12, DType::kBool)});
  check_op("aten::sign", {x_input(13, DType::kInt8)});
  check_op("aten::relu", {x_input(14, DType::kFloat16)});
  check_op("aten::sigmoid", {x_input(15, DType::kBFloat16)}, 1e-2);
  if (test_device().info().fp64) check_op("aten::exp", {x_input(16, DType::kFloat64)}, 1e-12);
  // NaN and infinities.
  Tensor special = Tensor::from_doubles({2, 3, 11}, DType::kFloat32, std::vector<double>(66, 0.0));
  for (int64_t i = 0; i < 66; ++i)
    special.set_double(i,
                       i % 3 == 0 ? std::nan("") : (i % 3 == 1 ? (i % 2 ? 1 : -1) * INFINITY : i * 0.37 - 9));
  check_op("aten::nan_to_num", {input(special), constant(IValue()), constant(IValue()), constant(IValue())});
  check_op("aten::nan_to_num",
           {input(special), constant(IValue(1.5)), constant(IValue(2.5)), constant(IValue(-3.5))});
  check_op("aten::relu", {input(special)});
  check_op("aten::isinf", {input(special)});
  // Strided inputs and in-place ops through views.
  check_op("aten::tanh", {transposed({7, 5, 3}, 0, 2, 17)});
  check_op("aten::sigmoid_", {transposed({7, 5, 3}, 0, 2, 18)});
  check_op("aten::relu_", {view(random_tensor({9, 13}, 19), {4, 6}, {26, 2}, 3)});
}

TEST_CASE("opencl: binary elementwise ops broadcast like the reference", "[opencl][ops]") {
  Arg a = input(random_tensor({3, 1, 7}, 1));
  Arg b = input(random_tensor({5, 1}, 2, DType::kFloat32, 0.5, 3));  // positive: a safe divisor
  const char* ops[] = {
      "aten::mul.Tensor",  "aten::div.Tensor",        "aten::floor_divide", "aten::remainder.Tensor",
      "aten::fmod.Tensor", "aten::pow.Tensor_Tensor", "aten::atan2",        "aten::maximum",
      "aten::minimum",     "aten::max.other",         "aten::min.other",    "aten::eq.Tensor",
      "aten::ne.Tensor",   "aten::lt.Tensor",         "aten::le.Tensor",    "aten::gt.Tensor",
      "aten::ge.Tensor",   "aten::logical_and",       "aten::logical_or",   "aten::logical_xor"};
  for (const char* op : ops) {
    INFO(op);
    check_op(op, {a, b}, 1e-5, 1e-6);
  }
  check_op("aten::add.Tensor", {a, b, constant(IValue(2.5))});
  check_op("aten::sub.Tensor", {a, b, constant(IValue(int64_t{3}))});
  check_op("aten::rsub.Tensor", {a, b, constant(IValue(0.5))});
  check_op("aten::div.Tensor_mode", {a, b, constant(IValue("trunc"))});
  check_op("aten::div.Tensor_mode", {a, b, constant(IValue("floor"))});
  // Scalars (Python numbers), 0-dim device tensors and 0-dim host constants as operands.
  check_op("aten::mul.Scalar", {x_input(3), constant(IValue(-1.75))});
  check_op("aten::add.Scalar", {x_input(3), constant(IValue(int64_t{2})), constant(IValue(int64_t{3}))});
  check_op("aten::gt.Scalar", {x_input(4), constant(IValue(0.25))});
  check_op("aten::remainder.Scalar_Tensor",
           {constant(IValue(5.5)), input(random_tensor(kOdd, 5, DType::kFloat32, 1, 4))});
  check_op("aten::pow.Scalar", {constant(IValue(1.5)), x_input(6)});
  check_op("aten::pow.Tensor_Scalar", {x_input(7), constant(IValue(3.0))});
  check_op("aten::pow.Tensor_Scalar", {x_input(7), constant(IValue(2))});
  check_op("aten::mul.Tensor", {x_input(8), input(Tensor::scalar_double(0.5, DType::kFloat32))});
  check_op("aten::mul.Tensor", {x_input(8), constant(IValue(Tensor::scalar_double(-2.0, DType::kFloat64)))});
  // Integer and bool arithmetic, with PyTorch's promotion (int32 + int64 -> int64, int / int -> float).
  Arg i32 = input(random_tensor({4, 9}, 9, DType::kInt32, -20, 20));
  Arg i64 = input(random_tensor({9}, 10, DType::kInt64, 1, 6));
  Arg neg = input(random_tensor({9}, 10, DType::kInt64, -6, -1));
  check_op("aten::add.Tensor", {i32, i64, constant(IValue(int64_t{2}))});
  check_op("aten::mul.Tensor", {i32, i64});
  check_op("aten::div.Tensor", {i32, i64});
  check_op("aten::floor_divide", {i32, neg});
  check_op("aten::remainder.Tensor", {i32, neg});
  check_op("aten::fmod.Tensor", {i32, neg});
  check_op("aten::pow.Tensor_Tensor", {input(random_tensor({4, 9}, 11, DType::kInt64, -3, 3)), i64});
  check_op("aten::bitwise_and.Tensor", {i32, i64});
  check_op("aten::bitwise_or.Scalar", {i32, constant(IValue(int64_t{6}))});
  check_op("aten::bitwise_xor.Tensor", {x_input(12, DType::kBool, {4, 9}), x_input(13, DType::kBool, {9})});
  check_op("aten::__and__.Tensor", {x_input(12, DType::kBool, {4, 9}), x_input(13, DType::kBool, {9})});
  check_op("aten::eq.Tensor", {i32, x_input(14, DType::kFloat32, {9})});
  check_op("aten::lt.Scalar", {x_input(15, DType::kUInt8, {4, 9}), constant(IValue(int64_t{1}))});
  // Strided, transposed and in-place.
  check_op("aten::add.Tensor",
           {transposed({7, 5, 3}, 0, 2, 16), transposed({7, 5, 3}, 1, 2, 17), constant(IValue(1.0))});
  check_op("aten::mul_.Tensor", {transposed({7, 5, 3}, 0, 2, 18), input(random_tensor({5, 3}, 19))});
  check_op("aten::add_.Scalar", {view(random_tensor({6, 10}, 20), {3, 5}, {20, 2}, 1), constant(IValue(4.0)),
                                 constant(IValue(0.5))});
}

TEST_CASE("opencl: selection and clamps match the reference", "[opencl][ops]") {
  Arg cond = input(random_tensor({5, 1}, 1, DType::kBool));
  Arg x = x_input(2, DType::kFloat32, {3, 5, 7});
  Arg y = input(random_tensor({7}, 3));
  check_op("aten::where.self", {cond, x, y});
  check_op("aten::where.ScalarOther", {cond, x, constant(IValue(-9.5))});
  check_op("aten::where.ScalarSelf", {cond, constant(IValue(2.5)), y});
  check_op("aten::where.Scalar",
           {input(random_tensor(kOdd, 4, DType::kBool)), constant(IValue(1.0)), constant(IValue(0.0))});
  check_op("aten::masked_fill.Scalar", {x, cond, constant(IValue(-1e9))});
  check_op("aten::masked_fill.Tensor", {x, cond, input(Tensor::scalar_double(7.0, DType::kFloat32))});
  check_op(
      "aten::masked_fill_.Scalar",
      {transposed({7, 5, 3}, 0, 2, 5), input(random_tensor({5, 1}, 6, DType::kBool)), constant(IValue(3.0))});
  check_op("aten::masked_fill.Scalar",
           {x_input(7, DType::kInt64), input(random_tensor(kOdd, 8, DType::kBool)),
            constant(IValue(int64_t{-4}))});
  check_op("aten::clamp", {x, constant(IValue(-0.5)), constant(IValue(0.75))});
  check_op("aten::clamp", {x, constant(IValue()), constant(IValue(1.0))});
  check_op("aten::clamp", {x_input(9, DType::kInt32), constant(IValue(int64_t{-1})), constant(IValue())});
  check_op("aten::clamp.Tensor", {x, input(random_tensor({7}, 10, DType::kFloat32, -3, 0)),
                                  input(random_tensor({5, 1}, 11, DType::kFloat32, 0, 3))});
  check_op("aten::clamp_min.Tensor", {x, input(random_tensor({7}, 12))});
  check_op("aten::clamp_max.Tensor", {x, input(random_tensor({7}, 13))});
  check_op("aten::clamp_max", {x, constant(IValue(0.1))});
  check_op("aten::clamp_",
           {transposed({7, 5, 3}, 0, 2, 14), constant(IValue(-0.25)), constant(IValue(0.25))});
}

TEST_CASE("opencl: conversions, copies and fills match the reference", "[opencl][ops]") {
  check_op("aten::to.dtype",
           {x_input(1), constant(IValue(int64_t{3})), constant(false), constant(false), constant(IValue())});
  check_op("aten::to.dtype", {x_input(2, DType::kInt64), constant(IValue(int64_t{5})), constant(false),
                              constant(false), constant(IValue())});  // to float16
  check_op("aten::to.dtype", {x_input(3, DType::kBool), constant(IValue(int64_t{6})), constant(false),
                              constant(false), constant(IValue())});
  check_op("aten::to.dtype", {x_input(4), constant(IValue(int64_t{15})), constant(false), constant(false),
                              constant(IValue())});  // to bfloat16
  check_op("aten::type_as", {x_input(5), input(random_tensor({2}, 6, DType::kUInt8))});
  check_op("aten::contiguous", {transposed({7, 5, 3}, 0, 2, 7), constant(IValue(int64_t{0}))});
  check_op("aten::clone", {view(random_tensor({8, 9}, 8), {3, 4}, {18, 2}, 5), constant(IValue())});
  check_op("aten::copy_", {transposed({7, 5, 3}, 0, 1, 9), input(random_tensor({5, 1}, 10, DType::kInt32)),
                           constant(false)});
  check_op("aten::fill_.Scalar",
           {view(random_tensor({9, 10}, 11), {4, 5}, {20, 2}, 1), constant(IValue(2.5))});
  check_op("aten::fill_.Tensor", {x_input(12), input(Tensor::scalar_double(-3.0, DType::kFloat32))});
  check_op("aten::zero_", {transposed({7, 5, 3}, 0, 2, 13)});
  check_op("aten::dropout", {x_input(14), constant(IValue(0.5)), constant(false)});
}

TEST_CASE("opencl: views are metadata and reshape copies only when it must", "[opencl][ops]") {
  Arg t = transposed({7, 5, 3}, 0, 2, 1);
  check_op("aten::reshape", {t, ints({35, 3})});           // not viewable: a copy
  check_op("aten::reshape", {x_input(2), ints({-1, 7})});  // viewable
  check_op("aten::flatten.using_ints", {t, constant(IValue(int64_t{1})), constant(IValue(int64_t{-1}))});
  check_op("aten::view", {x_input(3), ints({15, 7})});
  check_op("aten::permute", {x_input(4), ints({2, 0, 1})});
  check_op("aten::transpose.int", {x_input(5), constant(IValue(int64_t{-1})), constant(IValue(int64_t{0}))});
  check_op("aten::select.int", {t, constant(IValue(int64_t{1})), constant(IValue(int64_t{-2}))});
  check_op("aten::slice.Tensor", {t, constant(IValue(int64_t{0})), constant(IValue(int64_t{1})),
                                  constant(IValue()), constant(IValue(int64_t{2}))});
  check_op("aten::expand", {input(random_tensor({3, 1, 7}, 6)), ints({2, 3, 5, 7}), constant(false)});
  check_op("aten::unsqueeze", {t, constant(IValue(int64_t{1}))});
  check_op("aten::squeeze.dim", {input(random_tensor({3, 1, 33}, 7)), constant(IValue(int64_t{1}))});
  check_op("aten::chunk", {x_input(8), constant(IValue(int64_t{2})), constant(IValue(int64_t{1}))});
  check_op("aten::split.Tensor", {t, constant(IValue(int64_t{2})), constant(IValue(int64_t{2}))});
  check_op("aten::unbind.int", {x_input(9), constant(IValue(int64_t{0}))});
  check_op("aten::t", {input(random_tensor({9, 11}, 10))});
  check_op("aten::narrow",
           {t, constant(IValue(int64_t{0})), constant(IValue(int64_t{2})), constant(IValue(int64_t{4}))});
}

TEST_CASE("opencl: reductions match the reference", "[opencl][ops]") {
  Arg x = x_input(1);
  Arg t = transposed({7, 5, 3}, 0, 2, 2);
  check_op("aten::sum", {x, constant(IValue())}, 1e-5, 1e-5);
  check_op("aten::sum.dim_IntList", {t, ints({0, 2}), constant(true), constant(IValue())}, 1e-5, 1e-5);
  check_op("aten::sum.dim_IntList",
           {x_input(3, DType::kBool), ints({1}), constant(false), constant(IValue())});
  check_op("aten::sum.dim_IntList",
           {x_input(4, DType::kInt32), ints({-1}), constant(false), constant(IValue())});
  check_op("aten::mean", {x, constant(IValue())}, 1e-5, 1e-6);
  check_op("aten::mean.dim", {t, ints({1}), constant(false), constant(IValue())});
  check_op("aten::prod.dim_int", {x, constant(IValue(int64_t{1})), constant(true), constant(IValue())}, 1e-5);
  check_op("aten::prod", {x_input(5, DType::kInt64, {2, 33}), constant(IValue())});
  // Ties: the first index wins, like the reference.
  Arg ties =
      input(random_tensor({4, 3, 9}, 6, DType::kFloat32, -1, 1.5).to(DType::kInt32).to(DType::kFloat32));
  check_op("aten::max.dim", {ties, constant(IValue(int64_t{2})), constant(false)});
  check_op("aten::min.dim", {ties, constant(IValue(int64_t{0})), constant(true)});
  check_op("aten::max", {t});
  check_op("aten::min", {x_input(7, DType::kInt16)});
  check_op("aten::amax", {t, ints({0, 1}), constant(false)});
  check_op("aten::amin", {x, ints({2}), constant(true)});
  check_op("aten::argmax", {ties, constant(IValue()), constant(false)});
  check_op("aten::argmax", {ties, constant(IValue(int64_t{1})), constant(true)});
  check_op("aten::argmin", {t, constant(IValue(int64_t{-1})), constant(false)});
  check_op("aten::all", {x_input(8, DType::kFloat32)});
  check_op("aten::any.dim", {x_input(9, DType::kBool), constant(IValue(int64_t{1})), constant(false)});
  check_op("aten::var.correction", {t, ints({1, 2}), constant(IValue(int64_t{1})), constant(false)}, 1e-5,
           1e-6);
  check_op("aten::std.dim", {x, ints({0}), constant(true), constant(true)}, 1e-5, 1e-6);
  check_op("aten::var", {x, constant(false)}, 1e-5, 1e-6);
  check_op("aten::norm.ScalarOpt_dim", {t, constant(IValue(2.0)), ints({1}), constant(false)}, 1e-5, 1e-6);
  check_op("aten::norm.ScalarOpt_dim", {x, constant(IValue(3.0)), ints({2}), constant(true)}, 1e-5, 1e-6);
  check_op("aten::norm.ScalarOpt_dim", {x, constant(IValue(INFINITY)), ints({0}), constant(false)});
  check_op("aten::norm.Scalar", {x, constant(IValue(1.0))}, 1e-5, 1e-5);
  check_op("aten::logsumexp", {t, ints({2}), constant(false)}, 1e-5, 1e-6);
  check_op("aten::cumsum", {t, constant(IValue(int64_t{1})), constant(IValue())}, 1e-5, 1e-6);
  check_op("aten::cumsum", {x_input(10, DType::kInt32), constant(IValue(int64_t{2})), constant(IValue())});
  // A 0-dim input, and empty reductions.
  check_op("aten::sum", {input(Tensor::scalar_double(2.5, DType::kFloat32)), constant(IValue())});
  check_op("aten::sum.dim_IntList",
           {input(Tensor::zeros({0, 5}, DType::kFloat32)), ints({0}), constant(false), constant(IValue())});
}

// Softmax rows of awkward lengths, strides, dims, log and fully masked rows.
static void check_softmax_family() {
  check_op("aten::softmax.int", {x_input(1), constant(IValue(int64_t{-1})), constant(IValue())}, 1e-5, 1e-7);
  check_op("aten::softmax.int",
           {transposed({7, 5, 3}, 0, 2, 2), constant(IValue(int64_t{1})), constant(IValue())}, 1e-5, 1e-7);
  check_op("aten::log_softmax.int", {x_input(3), constant(IValue(int64_t{0})), constant(IValue())}, 1e-5,
           1e-6);
  check_op("aten::_softmax",
           {input(random_tensor({2, 1000}, 4, DType::kFloat32, -30, 30)), constant(IValue(int64_t{1})),
            constant(false)},
           1e-5, 1e-7);
  // Masked rows (-inf) as attention masks produce them.
  Tensor masked = random_tensor({4, 9}, 5);
  for (int64_t i = 0; i < 36; i += 2) masked.set_double(i, -INFINITY);
  check_op("aten::softmax.int", {input(masked), constant(IValue(int64_t{1})), constant(IValue())}, 1e-5,
           1e-7);
  // float16 in and out: the output is stored per element, not rescaled in place.
  check_op("aten::softmax.int",
           {x_input(6, DType::kFloat16), constant(IValue(int64_t{-1})), constant(IValue())}, 2e-3, 1e-4);
}

TEST_CASE("opencl: softmax and log_softmax match the reference", "[opencl][ops]") {
  // Both kernels: a work-group per row (GPUs) and a work-item per row (CPUs).
  for (const char* layout : {"rows", "elements"}) {
    setenv("CONVOY_NN_LAYOUT", layout, 1);
    INFO("CONVOY_NN_LAYOUT=" << layout);
    check_softmax_family();
  }
  unsetenv("CONVOY_NN_LAYOUT");
}

TEST_CASE("opencl: gelu over both tails, infinities and NaN", "[opencl][ops]") {
  // The float kernel goes through erfc (relative accuracy in the negative tail), not erf.
  check_op("aten::gelu",
           {input(random_tensor({3, 701}, 11, DType::kFloat32, -12, 12)), constant(IValue("none"))});
  Tensor special = random_tensor({2, 8}, 12);
  const double values[] = {INFINITY, -INFINITY, NAN, 0.0, -0.0, -40.0, 40.0, 1e-30};
  for (int64_t i = 0; i < 8; ++i) special.set_double(i, values[i]);
  check_op("aten::gelu", {input(special), constant(IValue("none"))});
}

TEST_CASE("opencl: factories match the reference", "[opencl][ops]") {
  // Large enough that the tracer runs them on the device, not as host scalar work.
  check_op("aten::zeros",
           {ints({9, 11}), constant(IValue()), constant(IValue()), constant(IValue()), constant(IValue())});
  check_op("aten::ones_like", {x_input(1, DType::kInt32), constant(IValue()), constant(IValue()),
                               constant(IValue()), constant(IValue()), constant(IValue())});
  check_op("aten::full", {ints({5, 20}), constant(IValue(2.5)), constant(IValue()), constant(IValue()),
                          constant(IValue()), constant(IValue())});
  check_op("aten::new_zeros", {x_input(2), ints({7, 13}), constant(IValue(int64_t{4})), constant(IValue()),
                               constant(IValue()), constant(IValue())});
  check_op("aten::arange.start_step",
           {constant(IValue(int64_t{3})), constant(IValue(int64_t{500})), constant(IValue(int64_t{3})),
            constant(IValue()), constant(IValue()), constant(IValue()), constant(IValue())});
}

TEST_CASE("opencl: matrix products match the reference", "[opencl][ops]") {
  Arg w = constant(IValue(random_tensor({13, 9}, 1)));
  Arg b = constant(IValue(random_tensor({13}, 2)));
  check_op("aten::linear", {input(random_tensor({2, 5, 9}, 3)), w, b}, 1e-5, 1e-5);
  check_op("aten::linear", {transposed({5, 9}, 0, 1, 4), w, constant(IValue())}, 1e-5, 1e-5);
  check_op("aten::matmul", {input(random_tensor({9}, 5)), input(random_tensor({9}, 6))}, 1e-5, 1e-5);
  check_op("aten::matmul", {input(random_tensor({7, 9}, 7)), input(random_tensor({9}, 8))}, 1e-5, 1e-5);
  check_op("aten::matmul", {input(random_tensor({9}, 9)), input(random_tensor({9, 11}, 10))}, 1e-5, 1e-5);
  check_op("aten::matmul", {input(random_tensor({2, 1, 3, 4}, 11)), input(random_tensor({5, 4, 6}, 12))},
           1e-5, 1e-5);
  check_op("aten::matmul", {input(random_tensor({3, 5, 4}, 13)), transposed({4, 7}, 0, 1, 14)}, 1e-5, 1e-5);
  check_op("aten::mm", {transposed({6, 5}, 0, 1, 15), transposed({5, 3}, 0, 1, 16)}, 1e-5, 1e-5);
  check_op("aten::bmm", {input(random_tensor({4, 3, 5}, 17)), transposed({4, 5, 6}, 1, 2, 18)}, 1e-5, 1e-5);
  // Heads side by side: the output's batch entries interleave, so they cannot be one strided batch.
  check_op("aten::matmul",
           {view(random_tensor({2, 3, 4 * 5}, 19), {2, 4, 3, 5}, {60, 5, 20, 1}),
            input(random_tensor({2, 4, 5, 3}, 20))},
           1e-5, 1e-5);
  check_op("aten::addmm",
           {input(random_tensor({7}, 21)), input(random_tensor({3, 5}, 22)), input(random_tensor({5, 7}, 23)),
            constant(IValue(0.5)), constant(IValue(2.0))},
           1e-5, 1e-5);
  check_op("aten::baddbmm",
           {input(random_tensor({2, 3, 4}, 24)), input(random_tensor({2, 3, 5}, 25)),
            input(random_tensor({2, 5, 4}, 26)), constant(IValue(1.0)), constant(IValue(-1.0))},
           1e-5, 1e-5);
  check_op("aten::mv", {input(random_tensor({6, 5}, 27)), input(random_tensor({5}, 28))}, 1e-5, 1e-5);
  check_op("aten::dot", {input(random_tensor({17}, 29)), input(random_tensor({17}, 30))}, 1e-5, 1e-5);
  check_op("aten::addmv",
           {input(random_tensor({6}, 31)), input(random_tensor({6, 5}, 32)), input(random_tensor({5}, 33)),
            constant(IValue(0.0)), constant(IValue(1.5))},
           1e-5, 1e-5);
}
