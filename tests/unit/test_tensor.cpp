#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "runtime/error.h"
#include "runtime/tensor.h"

using namespace convoy;

TEST_CASE("half and bfloat16 conversions round to nearest even", "[dtype]") {
  // Values and bit patterns as numpy/torch produce them.
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(-2.0f) == 0xc000);
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(65520.0f) == 0x7c00);                // rounds up to inf
  CHECK(float_to_half(5.960464477539063e-08f) == 0x0001);  // smallest subnormal
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);      // tie → even
  CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);      // tie → even (up)
  CHECK(half_to_float(0x3555) == Approx(0.333251953125f));
  CHECK(half_to_float(0x0001) == Approx(5.960464477539063e-08f));
  CHECK(std::isinf(half_to_float(0x7c00)));
  CHECK(float_to_bfloat16(1.0f) == 0x3f80);
  CHECK(bfloat16_to_float(0x4049) == Approx(3.140625f));
  CHECK(float_to_bfloat16(3.14159265f) == 0x4049);
  for (int bits = 0; bits < 0x7c00; bits += 7)  // every 7th finite positive half round-trips
    CHECK(float_to_half(half_to_float(static_cast<uint16_t>(bits))) == bits);
}

TEST_CASE("type promotion follows torch.promote_types", "[dtype]") {
  CHECK(promote_types(DType::kUInt8, DType::kInt8) == DType::kInt16);
  CHECK(promote_types(DType::kInt32, DType::kInt64) == DType::kInt64);
  CHECK(promote_types(DType::kBool, DType::kInt8) == DType::kInt8);
  CHECK(promote_types(DType::kInt64, DType::kFloat16) == DType::kFloat16);
  CHECK(promote_types(DType::kFloat16, DType::kBFloat16) == DType::kFloat32);
  CHECK(promote_types(DType::kFloat32, DType::kFloat64) == DType::kFloat64);
  CHECK(dtype_from_scalar_type(6) == DType::kFloat32);
  CHECK_THROWS_WITH(dtype_from_scalar_type(9), Catch::Contains("ScalarType code 9"));
}

TEST_CASE("views alias storage and copies broadcast", "[tensor]") {
  Tensor t = Tensor::from_doubles({2, 3}, DType::kFloat32, {0, 1, 2, 3, 4, 5});
  Tensor tt = t.as_strided({3, 2}, {1, 3}, 0);  // transpose
  CHECK_FALSE(tt.is_contiguous());
  CHECK(tt.to_doubles() == std::vector<double>{0, 3, 1, 4, 2, 5});
  tt.set_double(1, 30);  // element [0][1] of the transpose is t[1][0]
  CHECK(t.get_double(3) == 30);
  Tensor c = tt.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(c.shares_storage_with(t));

  Tensor row = Tensor::from_doubles({3}, DType::kFloat64, {7, 8, 9});
  t.copy_from(row);  // broadcast over rows, float64 → float32
  CHECK(t.to_doubles() == std::vector<double>{7, 8, 9, 7, 8, 9});

  // Overlapping copy within one storage goes through a temporary.
  Tensor v = Tensor::from_doubles({5}, DType::kInt64, {1, 2, 3, 4, 5});
  Tensor dst = v.as_strided({4}, {1}, 1);
  Tensor src = v.as_strided({4}, {1}, 0);
  dst.copy_from(src);
  CHECK(v.to_ints() == std::vector<int64_t>{1, 1, 2, 3, 4});
}

TEST_CASE("views outside their storage are refused with the numbers involved", "[tensor]") {
  Tensor t = Tensor::empty({4}, DType::kFloat32);
  CHECK_THROWS_WITH(t.as_strided({2, 2}, {2, 2}, 0), Catch::Contains("storage of 4 float32 elements"));
  CHECK_THROWS_WITH(t.as_strided({2}, {1}, -1), Catch::Contains("negative storage offset"));
  CHECK_THROWS_WITH(t.as_strided({3}, {-2}, 1), Catch::Contains("reaches element -3"));
  CHECK_NOTHROW(t.as_strided({0, 100}, {1000, 1000}, 0));  // empty views touch nothing
  CHECK_THROWS_AS(t.as_strided({2, 4611686018427387904}, {4611686018427387904, 2}, 0), Error);
  CHECK_THROWS_AS(t.as_strided({3, 3}, {4611686018427387903, 4611686018427387903}, 0), Error);
  CHECK_THROWS_WITH(Tensor::empty({int64_t{1} << 40, int64_t{1} << 40}, DType::kFloat32),
                    Catch::Contains("overflows"));
}

TEST_CASE("conversions truncate toward zero and items check their element count", "[tensor]") {
  Tensor f = Tensor::from_doubles({3}, DType::kFloat32, {-1.7, 2.5, 3.9});
  CHECK(f.to(DType::kInt32).to_ints() == std::vector<int64_t>{-1, 2, 3});
  CHECK(f.to(DType::kBool).to_ints() == std::vector<int64_t>{1, 1, 1});
  CHECK_THROWS_WITH(f.item_double(), Catch::Contains("3 elements"));
  CHECK(Tensor::scalar_int(-5).item_int() == -5);
  CHECK_THROWS_WITH(Tensor::scalar_int(1).size(0), Catch::Contains("0-dim"));
  Tensor h = f.to(DType::kFloat16);
  CHECK(h.to_doubles()[0] == Approx(-1.7).epsilon(1e-3));
  CHECK(f.to(DType::kBFloat16).to_doubles()[2] == Approx(3.9).epsilon(1e-2));
}
