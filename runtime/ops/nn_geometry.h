// Argument decoding, validation and output-size formulas of the neural-network ops, shared by the
// reference kernels (runtime/ops/conv.cpp, pooling.cpp, sequence.cpp, normalization.cpp, nn.cpp) and
// the OpenCL implementations (opencl/ops/*.cpp), so that both backends accept the same calls, compute
// the same output sizes and reject bad calls with the same messages (which name the op and the values).
// Plain data and pure functions on shapes and arguments: no kernel runs here.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/ivalue.h"
#include "runtime/tensor.h"

namespace convoy::nn {

// ---- convolution -------------------------------------------------------------------------------

// A convolution's geometry, lifted to three spatial dims: index 3 - spatial .. 2 are the real ones,
// the leading lifted dims have size 1, stride 1, no padding. Sizes of -1 (unknown, in shape inference)
// give -1 output sizes.
struct ConvGeometry {
  using Dims3 = std::array<int64_t, 3>;
  int64_t spatial = 2;  // 1, 2 or 3
  bool batched = true;  // false: the input has no batch dim (PyTorch's unbatched convolution)
  int64_t batch = 1, in_channels = 0, out_channels = 0, groups = 1;
  bool transposed = false;
  Dims3 in{1, 1, 1}, kernel{1, 1, 1}, out{1, 1, 1};
  Dims3 stride{1, 1, 1}, pad_before{0, 0, 0}, pad_after{0, 0, 0}, dilation{1, 1, 1}, output_padding{0, 0, 0};

  // (N, C_out, *out) or (C_out, *out) for an unbatched input.
  Shape output_shape() const;
};

// Validates a convolution of `input` by `weight` ([C_out, C_in/groups, *k], or [C_in, C_out/groups, *k]
// when transposed) and computes its output sizes. A single stride/padding/dilation/output_padding
// value stands for every spatial dim (PyTorch's expand_param_if_needed). Errors name `op`.
ConvGeometry conv_geometry(std::string_view op, const Shape& input, const Shape& weight,
                           std::vector<int64_t> stride, std::vector<int64_t> pad_before,
                           std::vector<int64_t> pad_after, std::vector<int64_t> dilation, bool transposed,
                           std::vector<int64_t> output_padding, int64_t groups);

// padding="same" / "valid" as explicit per-dim padding: "same" splits the total padding
// dilation·(k−1) with the odd element after, as PyTorch does, and refuses strided convolutions.
void conv_string_padding(std::string_view op, const std::string& mode, const Shape& weight,
                         const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation,
                         std::vector<int64_t>& before, std::vector<int64_t>& after);

// Argument positions of one convolution overload family (-1: absent).
struct ConvArgs {
  int stride, padding, dilation, transposed, output_padding, groups;
  bool string_padding = false;    // padding is "same" / "valid"
  bool fixed_transposed = false;  // conv_transposeNd: transposed without an argument for it
  size_t spatial = 0;             // 0: taken from the weight's rank
};

// One convolution overload of the registry.
struct ConvOverload {
  std::string name;    // "aten::conv2d.padding": the overload's full name
  std::string op;      // "aten::conv2d": what the reference kernel's errors name
  std::string schema;  // the schema the reference registry registers
  ConvArgs args;
};
// _convolution (both arities), convolution, _convolution_mode, conv1d/2d/3d (int and string padding),
// conv_transpose1d/2d/3d, in the registry's order. Built on first use; lives forever (so c_str() of its
// strings may be kept).
const std::vector<ConvOverload>& conv_overloads();

// A convolution call's non-tensor arguments, decoded (lists not yet expanded to the spatial rank).
struct ConvParams {
  std::vector<int64_t> stride, pad_before, pad_after, dilation, output_padding;
  bool transposed = false;
  int64_t groups = 1;
};
// Reads them from the arguments of an overload with positions `c` (input, weight, bias at 0, 1, 2);
// checks the weight's rank against a fixed-rank overload.
ConvParams read_conv_params(std::string_view op, const ConvArgs& c, const IValueList& args,
                            const Shape& weight);
// read_conv_params then conv_geometry.
ConvGeometry read_conv_geometry(std::string_view op, const ConvArgs& c, const IValueList& args,
                                const Shape& input, const Shape& weight);
// The bias of a convolution must be [C_out].
void check_conv_bias(std::string_view op, const Tensor& bias, const ConvGeometry& g, const Tensor& weight);

// ---- pooling -----------------------------------------------------------------------------------

// PyTorch's pooling_output_shape_pad_lr, with ceil_mode's rule that the last window must start inside
// the input or the left padding.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode);

// A 1-, 2- or 3-d pooling's geometry, lifted to three spatial dims (D, H, W): a 2-d pool is the 3-d one
// on volumes of depth 1, a 1-d pool also has height 1 (the lifted dims: size 1, kernel 1, stride 1, no
// padding).
struct PoolGeometry {
  Shape lead;          // the dims before the pooled ones: (N, C) or (C)
  int64_t planes = 1;  // their product (-1 when one is unknown)
  int64_t D = 1, H = 1, W = 1, Do = 1, Ho = 1, Wo = 1;
  int64_t kd = 1, kh = 1, kw = 1, sd = 1, sh = 1, sw = 1, pd = 0, ph = 0, pw = 0, dd = 1, dh = 1, dw = 1;

  // lead + the `spatial` real output sizes.
  Shape output_shape(int64_t spatial) const;
};

// Validates a windowed (max/avg) pooling call and computes its output size. `kernel`, `stride`,
// `padding` and `dilation` have 1 or `spatial` entries (stride empty: equal to the kernel). Unknown
// sizes (-1) propagate.
PoolGeometry pool_window_geometry(std::string_view op, const Shape& in, int64_t spatial,
                                  std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                  std::vector<int64_t> padding, std::vector<int64_t> dilation,
                                  bool ceil_mode);
// Validates an adaptive pooling call: output_size has 1 or `spatial` non-negative entries.
PoolGeometry pool_adaptive_geometry(std::string_view op, const Shape& in, int64_t spatial,
                                    std::vector<int64_t> output_size);

// Argument positions of the windowed pools: kernel 1, stride 2, padding 3, then dilation 4 (max
// pools) and ceil_mode 5, or ceil_mode 4, count_include_pad 5, divisor_override 6 (avg pools).
struct PoolWindowArgs {
  int64_t spatial;
  bool has_dilation;
  size_t ceil_mode;
};
// pool_window_geometry on the argument values (kernel, stride, padding, dilation: an int or a list;
// dilation null: 1).
PoolGeometry read_pool_window(std::string_view op, const Shape& in, const PoolWindowArgs& w,
                              const IValue& kernel, const IValue& stride, const IValue& padding,
                              const IValue* dilation, bool ceil_mode);
// An avg pool's count_include_pad and divisor_override (0: none; an explicit 0 is an error).
struct AvgPoolOptions {
  bool count_include_pad = true;
  int64_t divisor_override = 0;
};
AvgPoolOptions read_avg_pool_options(std::string_view op, const PoolWindowArgs& w, const IValueList& args);
// An adaptive pool's output_size argument (an int or a list).
std::vector<int64_t> adaptive_output_size(const IValue& v);

// ---- recurrent layers --------------------------------------------------------------------------

enum class CellKind { kGru, kLstm, kRnnTanh, kRnnRelu };
// Gates per cell: 3 (GRU: r, z, n), 4 (LSTM: i, f, g, o) or 1.
int64_t gate_count(CellKind kind);

struct RnnConfig {
  CellKind kind;
  const char* op;
  bool has_biases;
  int64_t num_layers;
  bool bidirectional;
  bool batch_first;
};
// gru/lstm/rnn_*.input's arguments 3..8: has_biases, num_layers, dropout, train, bidirectional,
// batch_first (dropout in training between layers is refused: it is random).
RnnConfig read_rnn_config(CellKind kind, const char* op, const IValueList& args);

// A recurrent call's sizes, checked against the input, the initial state and the parameter count.
struct RnnGeometry {
  int64_t directions = 1;  // D
  int64_t groups = 1;      // num_layers · D parameter groups
  int64_t per_group = 2;   // tensors per group: w_ih, w_hh [, b_ih, b_hh] [, w_hr]
  bool projected = false;  // LSTM with projections (w_hr)
  int64_t steps = 0, batch = 0;
  int64_t gates = 1;  // gate_count(kind)
  int64_t hidden = 0, out_size = 0;
};
RnnGeometry rnn_geometry(const RnnConfig& cfg, const Tensor& input, const Tensor& hx, const Tensor& cx,
                         const std::vector<Tensor>& params);

// The parameters of one layer and direction, shape-checked (b_ih, b_hh and w_hr undefined when absent).
struct RnnLayerParams {
  Tensor w_ih, w_hh, b_ih, b_hh, w_hr;
};
RnnLayerParams rnn_layer_params(const RnnConfig& cfg, const RnnGeometry& g, const std::vector<Tensor>& params,
                                int64_t layer, int64_t direction, int64_t input_size);

// ---- attention ---------------------------------------------------------------------------------

// Strides that read `t` broadcast (right-aligned) to `shape`; an error naming op and `what` otherwise.
Shape broadcast_strides(const Tensor& t, const Shape& shape, const char* op, const char* what);

// _native_multi_head_attention's arguments.
struct MhaArgs {
  Tensor query, key, value;
  int64_t embed_dim = 0, num_heads = 0;
  Tensor qkv_weight, qkv_bias, proj_weight, proj_bias, mask;
  bool need_weights = true, average_attn_weights = true;
  std::optional<int64_t> mask_type;
};
MhaArgs read_native_mha_args(const IValueList& args);

// Its sizes, checked: query (B, L, E), key and value (B, S, E), E divisible by the heads.
struct MhaGeometry {
  int64_t batch = 0, tgt_len = 0, src_len = 0, embed_dim = 0, num_heads = 0, head_dim = 0;
};
MhaGeometry mha_geometry(const MhaArgs& m, const char* op);

// _transformer_encoder_layer_fwd's arguments.
struct EncoderLayerArgs {
  Tensor src;
  int64_t embed_dim = 0, num_heads = 0;
  bool use_gelu = false, norm_first = false;
  double eps = 1e-5;
  Tensor norm1_weight, norm1_bias, norm2_weight, norm2_bias;
  Tensor ffn1_weight, ffn1_bias, ffn2_weight, ffn2_bias;
  MhaArgs attention;  // the self-attention's parameters (query, key and value unset)

  // The self-attention of `x` (need_weights false).
  MhaArgs self_attention(const Tensor& x) const;
};
EncoderLayerArgs read_encoder_layer_args(const IValueList& args);

// ---- normalisation and embedding ---------------------------------------------------------------

// layer_norm's shape checks: normalized_shape must be the input's trailing dims and weight and bias
// (when defined) must have that shape. Returns its element count.
int64_t check_layer_norm_shapes(const char* op, const Tensor& input, const Shape& normalized_shape,
                                const Tensor& weight, const Tensor& bias);

// embedding's checks: a 2-D weight and int64/int32 indices.
void check_embedding_args(const char* op, const Tensor& weight, const Tensor& indices);

}  // namespace convoy::nn
