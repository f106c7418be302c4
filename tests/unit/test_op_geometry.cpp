// The geometry and argument checks both executors share (runtime/ops/nn_geometry.h,
// runtime/ops/shape_geometry.h): output sizes, -1 propagation for shape inference, the messages, and
// the convolution overload table the reference registry and the OpenCL op table are built from.
#include <catch2/catch.hpp>
#include <string>

#include "runtime/error.h"
#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/shape_geometry.h"

using namespace convoy;

TEST_CASE("conv_geometry computes grouped, strided and transposed output sizes", "[geometry]") {
  nn::ConvGeometry g =
      nn::conv_geometry("aten::conv2d", {2, 4, 8, 8}, {6, 2, 3, 3}, {2}, {1}, {1}, {1}, false, {0}, 2);
  CHECK(g.output_shape() == Shape{2, 6, 4, 4});
  CHECK(g.spatial == 2);
  CHECK(g.stride == nn::ConvGeometry::Dims3{1, 2, 2});
  CHECK(g.pad_before == nn::ConvGeometry::Dims3{0, 1, 1});

  // Transposed: (in - 1)·stride - 2·pad + dilation·(k - 1) + output_padding + 1; unbatched input.
  g = nn::conv_geometry("aten::conv_transpose1d", {4, 5}, {4, 3, 3}, {2}, {1}, {1}, {1}, true, {1}, 1);
  CHECK(g.output_shape() == Shape{3, 10});
  CHECK_FALSE(g.batched);

  // Unknown sizes (shape inference) give unknown output sizes.
  g = nn::conv_geometry("aten::conv2d", {-1, 4, -1, 8}, {6, 4, 3, 3}, {1}, {0}, {0}, {1}, false, {0}, 1);
  CHECK(g.output_shape() == Shape{-1, 6, -1, 6});
}

TEST_CASE("conv_geometry and read_conv_params reject bad calls naming the op and the values", "[geometry]") {
  CHECK_THROWS_WITH(
      nn::conv_geometry("aten::conv2d", {1, 3, 8, 8}, {6, 2, 3, 3}, {1}, {0}, {0}, {1}, false, {0}, 2),
      Catch::Contains("aten::conv2d: input [1, 3, 8, 8] has 3 channels but weight [6, 2, 3, 3] with groups=2 "
                      "expects 4"));
  CHECK_THROWS_WITH(
      nn::conv_geometry("aten::conv2d", {1, 3, 2, 2}, {6, 3, 3, 3}, {1}, {0}, {0}, {1}, false, {0}, 1),
      Catch::Contains("too small") && Catch::Contains("the output size would be [0, 0]"));
  std::vector<int64_t> before, after;
  CHECK_THROWS_WITH(
      nn::conv_string_padding("aten::conv1d", "same", {2, 2, 3}, {2}, {1}, before, after),
      Catch::Contains("padding=\"same\" is not supported for strided convolutions (stride [2])"));
  nn::conv_string_padding("aten::conv2d", "same", {2, 2, 4, 3}, {1}, {1}, before, after);
  CHECK(before == std::vector<int64_t>{1, 1});
  CHECK(after == std::vector<int64_t>{2, 1});

  const IValueList args{IValue(),
                        IValue(),
                        IValue(),
                        IValue::int_list({1, 1, 1}),
                        IValue::int_list({0}),
                        IValue::int_list({1}),
                        IValue(int64_t{1})};
  CHECK_THROWS_WITH(nn::read_conv_params("aten::conv2d", nn::ConvArgs{3, 4, 5, -1, -1, 6, false, false, 2},
                                         args, {6, 3, 3, 3}),
                    Catch::Contains("aten::conv2d: stride must have 2 values"));
}

TEST_CASE("conv_overloads names each overload by its schema", "[geometry]") {
  const auto& overloads = nn::conv_overloads();
  REQUIRE(overloads.size() == 13);
  for (const nn::ConvOverload& o : overloads) {
    INFO(o.name);
    CHECK(o.schema.rfind(o.name + "(", 0) == 0);
    CHECK(o.name.rfind(o.op, 0) == 0);
  }
  CHECK(overloads[4].schema ==
        "aten::conv1d(Tensor input, Tensor weight, Tensor? bias=None, int[1] stride=[1], int[1] padding=[0], "
        "int[1] dilation=[1], int groups=1) -> Tensor");
  CHECK(overloads[12].schema ==
        "aten::conv_transpose3d.input(Tensor input, Tensor weight, Tensor? bias=None, int[3] stride=1, "
        "int[3] padding=0, int[3] output_padding=0, int groups=1, int[3] dilation=1) -> Tensor");
}

TEST_CASE("pooling geometry follows PyTorch's ceil_mode rule", "[geometry]") {
  CHECK(nn::pooled_size(5, 2, 0, 2, 1, false) == 2);
  CHECK(nn::pooled_size(5, 2, 0, 2, 1, true) == 3);
  // The last window would start in the right padding: dropped.
  CHECK(nn::pooled_size(1, 2, 1, 2, 1, true) == 1);

  nn::PoolGeometry g = nn::pool_window_geometry("aten::max_pool2d", {2, 3, 7, 6}, 2, {3}, {}, {1}, {1}, true);
  CHECK(g.output_shape(2) == Shape{2, 3, 3, 3});
  CHECK(g.planes == 6);
  g = nn::pool_window_geometry("aten::max_pool1d", {-1, 3, -1}, 1, {2}, {2}, {0}, {1}, false);
  CHECK(g.output_shape(1) == Shape{-1, 3, -1});
  CHECK(g.planes == -1);

  CHECK_THROWS_WITH(
      nn::pool_window_geometry("aten::max_pool2d", {1, 4, 4}, 2, {2}, {2}, {2}, {1}, false),
      Catch::Contains("aten::max_pool2d: padding [2, 2] must be at most half of kernel_size [2, 2]"));
  CHECK_THROWS_WITH(nn::pool_adaptive_geometry("aten::adaptive_avg_pool2d", {1, 0, 4}, 2, {2}),
                    Catch::Contains("has an empty spatial dim"));
}

TEST_CASE("shape geometry: view sizes and strides, cat, stack and padding", "[geometry]") {
  CHECK(infer_view_size({2, -1}, 12, "aten::view") == Shape{2, 6});
  CHECK_THROWS_WITH(infer_view_size({-1, -1}, 12, "aten::view"),
                    Catch::Contains("only one dimension can be inferred"));
  CHECK(view_strides({2, 3}, {3, 1}, {6}) == Shape{1});
  CHECK_FALSE(view_strides({3, 2}, {1, 3}, {6}).has_value());

  const std::vector<Tensor> parts{Tensor::empty({2, 3}, DType::kFloat32), Tensor::empty({0}, DType::kFloat64),
                                  Tensor::empty({4, 3}, DType::kInt32)};
  CatGeometry cat = cat_geometry(parts, -2, "aten::cat");
  CHECK(cat.out_shape == Shape{6, 3});
  CHECK(cat.dim == 0);
  CHECK(cat.dtype == DType::kFloat64);
  CHECK(cat_geometry({Tensor::empty({0}, DType::kFloat32)}, 0, "aten::cat").all_empty);
  StackGeometry stack = stack_geometry(
      {Tensor::empty({2, 3}, DType::kFloat32), Tensor::empty({2, 3}, DType::kFloat32)}, -1, "aten::stack");
  CHECK(stack.out_shape == Shape{2, 3, 2});

  PadDim p = index_map_pad_dim({2, 5}, {1, 2}, "reflect", 1, "aten::pad");
  CHECK(p.new_size == 8);
  CHECK_THROWS_WITH(index_map_pad_dim({2, 2}, {2, 0}, "reflect", 1, "aten::pad"),
                    Catch::Contains("padding size should be less than the corresponding input dimension"));
  CHECK_THROWS_WITH(constant_padded_size(2, -2, -1, 0, "aten::constant_pad_nd"),
                    Catch::Contains("resulted in a negative output size"));
}
