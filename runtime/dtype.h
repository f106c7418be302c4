// Element types of tensors, with PyTorch's ScalarType codes (TorchScript code prints dtypes as
// these integers, e.g. `torch.to(x, 6)` for float32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace convoy {

enum class DType : int8_t {
  kUInt8 = 0,
  kInt8 = 1,
  kInt16 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kFloat16 = 5,
  kFloat32 = 6,
  kFloat64 = 7,
  kBool = 11,
  kBFloat16 = 15,
};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "int64", ... as numpy and torch print them
bool is_floating(DType dtype);
bool is_integral(DType dtype, bool include_bool);

// PyTorch ScalarType code → DType; throws kUnsupported naming the code for complex/quantized types.
DType dtype_from_scalar_type(int64_t code);
inline int64_t scalar_type_code(DType dtype) { return static_cast<int64_t>(dtype); }

// Storage class names in archives: "FloatStorage" → kFloat32, ...; throws naming the class.
DType dtype_from_storage_class(const std::string& name);

// IEEE half and bfloat16 conversions (round to nearest even).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

// The type PyTorch's type promotion gives two dtypes (torch.promote_types).
DType promote_types(DType a, DType b);

}  // namespace convoy
