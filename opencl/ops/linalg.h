// Matrix products on the device, shared by the linalg, convolution and attention implementations.
#pragma once

#include "opencl/gemm/gemm.h"
#include "opencl/op_context.h"

namespace convoy::opencl {

// c[..., M, N] = epilogue(alpha·a[..., M, K]·b[..., K, N] + beta·c): all three of one rank, batch dims of a
// and b already broadcast to c's (stride 0 where they repeat); c row-major in its last two dims. bias
// (float32, contiguous) is required when the epilogue has a bias axis.
void batched_gemm(OpContext& cx, const Tensor& a, const Tensor& b, const Tensor& c, float alpha, float beta,
                  const gemm::Epilogue& epilogue, const Tensor& bias);

// input[..., K] · weightᵀ (+ bias) with an optional fused activation; float32.
Tensor linear(OpContext& cx, const Tensor& input, const Tensor& weight, const Tensor& bias,
              gemm::Activation activation = gemm::Activation::kIdentity, float min_value = 0,
              float max_value = 0);

// torch.matmul (float32), with 1-D operands and broadcast batch dims.
Tensor matmul(OpContext& cx, const Tensor& a, const Tensor& b);

}  // namespace convoy::opencl
