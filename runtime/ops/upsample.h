// Interpolation (F.interpolate's aten ops): upsample_nearest1d/2d/3d, _upsample_nearest_exact1d/2d/3d,
// upsample_linear1d, upsample_bilinear2d, upsample_trilinear3d and upsample_bicubic2d, each with its
// default overload (output_size plus optional per-dim scales) and its .vec overload (output_size or
// scale_factors). Shared by the reference kernels (runtime/ops/upsample.cpp) and the OpenCL ones
// (opencl/ops/upsample.cpp): argument decoding, output sizes, and the per-dim source taps.
//
// Source positions follow PyTorch's CPU kernels (ATen/native/UpSample.h): a given scale s > 0 means a
// step of 1/s input pixels per output pixel, otherwise in/out; align_corners maps the corner pixels
// onto each other ((in-1)/(out-1)); otherwise the half-pixel rule scale·(o + ½) − ½, clamped at 0 for
// linear. Nearest is floor(o·scale) in float (with the exact copies at out == in and out == 2·in);
// nearest-exact is floor((o + ½)·scale). Linear taps at out == in copy. Bicubic uses A = −0.75 and
// clamps its four taps into the input. Index and weight arithmetic runs in the compute type T (float
// for float32/16/bf16 inputs, double for float64), as PyTorch's does, so indices agree bit for bit.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/ivalue.h"
#include "runtime/tensor.h"

namespace convoy::nn {

enum class UpsampleMode { kNearest, kNearestExact, kLinear, kCubic };

// One interpolation op (both of its overloads).
struct UpsampleOp {
  const char* name;  // "aten::upsample_bilinear2d"
  int64_t spatial;   // 1, 2 or 3
  UpsampleMode mode;

  bool has_align_corners() const { return mode == UpsampleMode::kLinear || mode == UpsampleMode::kCubic; }
};
// Every interpolation op, in registration order.
const std::vector<UpsampleOp>& upsample_ops();

// A validated interpolation call, lifted to three spatial dims (leading lifted dims: size 1).
struct UpsampleGeometry {
  Shape lead;  // (N, C)
  int64_t spatial = 2;
  UpsampleMode mode = UpsampleMode::kNearest;
  bool align_corners = false;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  std::optional<double> scales[3];  // the scale PyTorch's kernel receives per dim (None: from sizes)

  int64_t planes() const;      // product of lead
  Shape output_shape() const;  // lead + the real output dims
};

// Decodes and checks a call of `op`. `args` holds the call's arguments in schema order (defaults
// filled), either the default overload's (self, output_size[, align_corners], scales...) or, when `vec`,
// the .vec one's (input, output_size?[, align_corners], scale_factors?). Errors name the op.
UpsampleGeometry read_upsample(const UpsampleOp& op, bool vec, const Shape& input, const IValueList& args);

// Shape inference: the output shape when the input's spatial sizes and every non-tensor argument are
// known (`constants[i]` null: unknown); unknown lead dims (-1) stay unknown. nullopt otherwise, and for
// calls read_upsample would reject.
std::optional<Shape> infer_upsample_shape(const UpsampleOp& op, bool vec, const Shape& input,
                                          const std::vector<const IValue*>& constants);

// The source taps of one lifted dim: for output position o, `taps` input indices index[o·taps + j]
// with weights weight[o·taps + j] (nearest: one tap of weight 1).
template <typename T>
struct UpsampleTaps {
  int64_t taps = 1;
  std::vector<int64_t> index;
  std::vector<T> weight;
};
template <typename T>
UpsampleTaps<T> upsample_taps(const UpsampleGeometry& g, int dim);

}  // namespace convoy::nn
