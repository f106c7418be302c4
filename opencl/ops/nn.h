// The neural-network family on OpenCL (conv.cpp, pooling.cpp, normalization.cpp, nn.cpp): what the
// family's files share, and what the executor calls to fuse a convolution with the batch_norm and the
// activation that follow it.
//
// Fusion is a graph rewrite: fuse_conv_batch_norm_activation(graph) replaces each chain
//   conv → batch_norm(training=False, constant parameters) [→ activation]   or   conv → activation
// whose intermediate values have no other use by one `convoy::conv_bn_act` node (fused_conv_overload()).
// Its OpenCL implementation folds the batch-norm into the convolution's weight and bias once per
// executor (OpContext::derived_weight) and runs the activation in the GEMM epilogue (or in the direct
// kernel), so the chain costs one convolution. fuse_linear_activation(graph) does the same for
// aten::linear → activation (convoy::linear_act, fused_linear_overload()). Run it on the graph an
// OpenCLExecutor is built from, before the executor is constructed; the reference executor does not need it
// (the fused op has a reference kernel composed of the registry's own kernels, so a fused graph runs there
// too).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "opencl/gemm/gemm.h"
#include "opencl/op_context.h"
#include "opencl/tracer.h"
#include "runtime/graph/ir.h"
#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

// What a weight derived from host tensor `t` (OpContext::derived_weight) is keyed by: its storage and
// view, since model constants live as long as the executor, plus its values when it is small enough
// to be a plan-time host tensor (the tracer's kSmallHostElements) rather than a constant.
std::string host_tensor_key(const Tensor& t);

// Whether the direct convolution and pooling kernels compute a row of outputs per work-item (what a CPU
// driver vectorises) rather than one output (what a GPU wants): true on CPU devices.
// CONVOY_NN_LAYOUT=rows or =elements overrides it (the tests run both layouts on any device).
bool nn_rows_layout(OpContext& cx);
// Defines for the row kernels' eight-wide vector loads of input `x` (X_VLOAD8, CT8) where its storage
// type has them (float32, float64, float16); "" otherwise.
std::string vector_load_defines(DType storage, DType compute);

// ---- convolution -------------------------------------------------------------------------------

// A convolution's geometry (argument checks and output sizes shared with the reference kernels).
using ConvGeometry = nn::ConvGeometry;

// One convolution call, its arguments read and checked as the reference kernel checks them.
struct ConvCall {
  std::string op;  // "aten::conv2d": names errors
  Tensor input, weight, bias;
  ConvGeometry geometry;
};
// Reads the arguments of any convolution overload of the registry (by its full name,
// "aten::conv2d.padding") or of convoy::conv_bn_act.
ConvCall read_convolution(const std::string& full_name, const IValueList& args);

// What the fused epilogue applies after the bias (gemm::Epilogue's set).
struct ConvActivation {
  gemm::Activation kind = gemm::Activation::kIdentity;
  float min_value = 0, max_value = 0;  // kHardtanh
};
// "relu", "relu6", "hardtanh", "gelu", "gelu_tanh", "silu", "hardswish", "sigmoid" or "none".
ConvActivation activation_named(const std::string& name, double min_value, double max_value);
std::string activation_name_of(const ConvActivation& activation);
// Applies the activation to `out` in place (one elementwise launch), for chains that cannot fuse it.
void apply_conv_activation(OpContext& cx, const Tensor& out, const ConvActivation& activation);

// The convolution on the device; input, weight and bias may have any floating dtypes (the result has
// the input's). The activation is fused where the path allows, else applied by one more launch.
Tensor lower_convolution(OpContext& cx, const ConvCall& call, const ConvActivation& activation = {});

// Inference batch_norm parameters (weight and bias may be undefined).
struct BatchNormParams {
  Tensor weight, bias, running_mean, running_var;
  double eps = 1e-5;
};
// The convolution with the batch-norm folded into its weight and bias (computed on the host in double,
// once per executor) and the activation fused. Needs the convolution's weight and bias and every
// batch-norm parameter to be host tensors (model constants) and a non-transposed convolution; returns
// nullopt otherwise, having emitted nothing.
std::optional<Tensor> lower_convolution_batch_norm(OpContext& cx, const ConvCall& call,
                                                   const BatchNormParams& bn,
                                                   const ConvActivation& activation);

// ---- normalisation -----------------------------------------------------------------------------

// y = (x - mean) / sqrt(var + eps) · weight + bias per channel (dim 1), with running statistics.
Tensor lower_batch_norm_inference(OpContext& cx, const Tensor& input, const BatchNormParams& bn,
                                  const char* op);

// ---- fusion -----------------------------------------------------------------------------------

// The `convoy::conv_bn_act` overload fused nodes point at:
//   convoy::conv_bn_act(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding,
//       int[] dilation, int groups, Tensor? bn_weight, Tensor? bn_bias, Tensor? bn_running_mean,
//       Tensor? bn_running_var, float bn_eps, str activation, float act_min, float act_max) -> Tensor
// (bn_running_mean None: no batch-norm). Its reference kernel runs aten::convolution, aten::batch_norm
// and the activation through make_default_registry()'s kernels. Built on first use; lives forever.
const OpOverload& fused_conv_overload();

// Rewrites every fusable chain of `graph` (see the top of this file) into one conv_bn_act node, in
// every block; returns how many chains it fused.
int fuse_conv_batch_norm_activation(Graph& graph);

// The `convoy::linear_act` overload linear → activation chains become:
//   convoy::linear_act(Tensor input, Tensor weight, Tensor? bias, str activation, float act_min,
//       float act_max) -> Tensor
// (activation as activation_named() reads it). Its OpenCL implementation is the linear's GEMM with the
// bias and the activation in the epilogue; its reference kernel runs aten::linear and the activation
// through make_default_registry()'s kernels. Built on first use; lives forever.
const OpOverload& fused_linear_overload();

// Rewrites every aten::linear whose output has exactly one use, an activation the GEMM epilogue
// computes (relu, relu6, hardtanh with constant bounds, gelu with approximate 'none' or 'tanh', silu,
// hardswish, sigmoid; in-place forms too), into one convoy::linear_act node, in every block; returns
// how many it fused. Saves a pass over the activation (read and write) and a launch per layer. Run it,
// like fuse_conv_batch_norm_activation, on the graph an OpenCLExecutor is built from.
int fuse_linear_activation(Graph& graph);

// Registration of the family's parts (nn.cpp's register_opencl_nn_ops calls them).
void register_opencl_conv_ops(OpenCLOpTable& table);
void register_opencl_pooling_ops(OpenCLOpTable& table);
void register_opencl_normalization_ops(OpenCLOpTable& table);

}  // namespace convoy::opencl
