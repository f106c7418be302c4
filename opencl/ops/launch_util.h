// Building blocks the OpenCL op implementations share: dtype build options for the kernels'
// operand macros, collapsing strided loops to few dims, and emitters for the generic kernels (strided
// copy and cast, fill, elementwise).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "opencl/op_context.h"

namespace convoy::opencl {

// The type kernels compute in for a dtype: float32 for float32/float16/bfloat16 (PyTorch's "opmath"),
// float64 for float64, int64 for integers and bool.
DType compute_dtype_of(DType dtype);
// "-DCT=float", "-DCT=long -DCT_IS_INT", "-DCT=double -DUSE_FP64"; throws kUnsupported naming `what` when
// the device has no fp64 and float64 is asked for.
std::string compute_defines(OpContext& cx, DType compute);
// Storage macros of an operand: prefix "A" gives "-DA_T=float -DA_LD=LD_PLAIN"; "OUT" and "DST" give the
// store accessor (-DOUT_ST=...). float64 storage adds -DUSE_FP64.
std::string load_defines(OpContext& cx, const std::string& prefix, DType dtype);
std::string store_defines(OpContext& cx, const std::string& prefix, DType dtype);
// A scalar kernel argument of the compute type.
KernelArgValue compute_scalar(double value, DType compute);
KernelArgValue compute_scalar_int(int64_t value, DType compute);

// A loop over `sizes` with one stride vector per operand, simplified: size-1 dims dropped and
// neighbouring dims merged where every operand's strides allow.
struct StridedLoop {
  Shape sizes;
  std::vector<Shape> strides;
  int64_t numel() const { return shape_numel(sizes); }
  bool contiguous() const;  // a single dim (or none) with stride 1 for every operand
};
StridedLoop collapse(const Shape& sizes, const std::vector<Shape>& strides);
// meta block: rank, sizes, then the strides of `slots` operands (missing ones are zero).
MetaBlock loop_meta(const StridedLoop& loop, size_t slots);
// Global size of a 2D strided launch: innermost dim, product of the others.
std::vector<size_t> loop_global(const StridedLoop& loop);

// dst = src converted to dst's dtype, src broadcast to dst's shape; dst may be any strided view.
void copy_into(OpContext& cx, const Tensor& dst, const Tensor& src);
// A fresh contiguous copy of `t` (optionally converted).
Tensor contiguous_copy(OpContext& cx, const Tensor& t, std::optional<DType> dtype = std::nullopt);
// `t` itself when contiguous (and of `dtype`), else a contiguous copy.
Tensor contiguous(OpContext& cx, const Tensor& t, std::optional<DType> dtype = std::nullopt);
// Sets every element of the view dst to `value`.
void fill(OpContext& cx, const Tensor& dst, double value);

// One input of an elementwise kernel: a device tensor, or a value passed as a kernel scalar.
struct EwInput {
  Tensor tensor;
  bool scalar = false;
  double value = 0;
  bool is_int = false;  // exact integer scalars (int64 values beyond 2^53 survive)
  int64_t int_value = 0;
  static EwInput of(const Tensor& t) { return {t, false, 0, false, 0}; }
  static EwInput of_scalar(double v) { return {Tensor(), true, v, false, 0}; }
  static EwInput of_int(int64_t v) { return {Tensor(), true, static_cast<double>(v), true, v}; }
};
// out = OP(inputs...) in `compute`, inputs broadcast to out's shape; `op` names the OP_ define
// without the prefix ("ADD", "GELU"); params are s0..s2.
void elementwise(OpContext& cx, const std::string& op, const Tensor& out, const std::vector<EwInput>& inputs,
                 DType compute, std::array<double, 3> params = {0, 0, 0});

// Standard PyTorch helpers used by several families.
Shape broadcast_all(const std::vector<Shape>& shapes, const char* op);

// Registers `op` under base + "." + overload for each overload ("" is the default overload).
void add_overloads(OpenCLOpTable& table, const std::string& base,
                   std::initializer_list<const char*> overloads, const OpenCLOp& op);

// An argument read as a number: a Python scalar, or a 0-dim host tensor.
bool is_host_scalar(OpContext& cx, const IValue& v);
double host_scalar_value(const IValue& v);

// A host tensor standing in for `t` in a reference kernel called only to learn PyTorch's result dtype
// and to raise PyTorch's argument errors: same dtype and rank, every size 1, every value 1.
Tensor dtype_proxy(const Tensor& t);
// `args` with every tensor (also inside lists) replaced by its proxy.
IValueList proxy_args(const IValueList& args);

}  // namespace convoy::opencl
