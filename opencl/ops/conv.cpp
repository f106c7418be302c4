// OpenCL convolution (runtime/ops/conv.cpp's overloads): _convolution (both arities), convolution,
// _convolution_mode, conv1d/2d/3d (int and "same"/"valid" padding), conv_transpose1d/2d/3d.
//
// Three paths, chosen per call at plan time:
//   - 1×1, stride 1, unpadded: one GEMM per group straight on the input (its channel planes are the
//     GEMM's B matrix), batched over samples; no copy unless the input's planes are not dense.
//   - otherwise, when the GEMM has enough work: im2col (conv.cl) into convolution scratch, a chunk of
//     samples at a time so the scratch stays under kIm2colBudgetBytes, then one GEMM per group and chunk.
//   - depthwise and other grouped convolutions with one or two input channels per group, float64 (the
//     GEMM dispatcher is float32) and transposed convolutions: a direct kernel, its window compiled in,
//     one output row per work-item on CPUs (vectorised eight wide) and one output element on GPUs.
// The bias and a fused activation run in the GEMM's epilogue. float16/bfloat16 convolutions compute in
// float32 (im2col converts while gathering; weights are converted once per executor), as PyTorch's
// CPU kernels do.
#include <algorithm>
#include <cmath>

#include "opencl/ops/launch_util.h"
#include "opencl/ops/nn.h"
#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

using Dims3 = ConvGeometry::Dims3;

// Largest im2col scratch a convolution takes; a batch whose column matrix is larger is done in chunks
// of samples (at least one sample, whatever its size).
constexpr int64_t kIm2colBudgetBytes = 32 << 20;
// Grouped convolutions with at most this many input channels per group run the direct kernel. With
// PoCL on this machine (batch 8, 3x3 and 5x5, 14x14 to 112x112) the direct kernel took 0.1-0.25x the
// time of im2col + one GEMM per group for depthwise convolutions (0.9x for 96 channels at 56x56), about
// the same with 4 channels per group and 1.5-2.4x with 8 to 32; with groups=1 the GEMM won at every
// size tried, even with one input channel (5x).
constexpr int64_t kDirectMaxGroupChannels = 2;

// ---- arguments ---------------------------------------------------------------------------------

// The argument positions of a convolution overload of the registry (nn::conv_overloads()) or of
// convoy::conv_bn_act(input, weight, bias, stride, padding, dilation, groups, ...); null for others.
const nn::ConvArgs* find_conv_args(const std::string& full_name) {
  static const nn::ConvArgs kConvBnAct{3, 4, 5, -1, -1, 6};
  if (full_name == "convoy::conv_bn_act") return &kConvBnAct;
  for (const nn::ConvOverload& o : nn::conv_overloads())
    if (full_name == o.name) return &o.args;
  return nullptr;
}

// ---- device operands ---------------------------------------------------------------------------

// `t` on the device as a contiguous tensor of `dtype`; a host constant of another dtype is converted
// once per executor.
Tensor device_as(OpContext& cx, const Tensor& t, DType dtype) {
  if (t.dtype() == dtype || cx.is_device(t)) return contiguous(cx, cx.to_device(t), dtype);
  return cx.derived_weight(str_cat("as-", dtype_name(dtype), ":", host_tensor_key(t)),
                           [t, dtype] { return t.contiguous().to(dtype); });
}

int64_t volume(const Dims3& d) { return d[0] * d[1] * d[2]; }

// The input's strides as (n, c, d, h, w), zero for the dims a lifted or unbatched input lacks.
std::array<int64_t, 5> input_strides(const ConvGeometry& s, const Tensor& x) {
  std::array<int64_t, 5> st{0, 0, 0, 0, 0};
  const Shape& xs = x.strides();
  st[0] = s.batched ? xs[0] : 0;
  st[1] = xs[s.batched ? 1 : 0];
  for (size_t d = 3 - static_cast<size_t>(s.spatial); d < 3; ++d)
    st[2 + d] = xs[static_cast<size_t>(x.dim()) - 3 + d];
  return st;
}

// conv.cl's ConvMeta (the transposed kernel's geometry).
MetaBlock conv_meta(const ConvGeometry& s, const Tensor& x) {
  MetaBlock m;
  m.values = {s.batch, s.in_channels, s.out_channels, s.groups};
  for (const Dims3* d : {&s.in, &s.out, &s.kernel, &s.stride, &s.pad_before, &s.dilation})
    m.values.insert(m.values.end(), d->begin(), d->end());
  for (int64_t v : input_strides(s, x)) m.values.push_back(v);
  return m;
}

// conv.cl's compile-time window: shape, strides and dilations.
std::string window_defines(const ConvGeometry& s) {
  return str_cat(" -DKD=", s.kernel[0], " -DKH=", s.kernel[1], " -DKW=", s.kernel[2], " -DSD=", s.stride[0],
                 " -DSH=", s.stride[1], " -DSW=", s.stride[2], " -DDD=", s.dilation[0],
                 " -DDH=", s.dilation[1], " -DDW=", s.dilation[2]);
}

// Input sizes, output sizes and leading padding as int arguments, then the input's strides.
void push_geometry_args(KernelLaunch& k, const ConvGeometry& s, const Tensor& x) {
  for (int64_t v : {s.in[0], s.in[1], s.in[2], s.out[0], s.out[1], s.out[2], s.pad_before[0], s.pad_before[1],
                    s.pad_before[2]})
    k.args.push_back(static_cast<int32_t>(v));
  for (int64_t v : input_strides(s, x)) k.args.push_back(v);
}

std::string act_define(const ConvActivation& a) { return str_cat(" -DACT=", static_cast<int>(a.kind)); }

}  // namespace

std::string host_tensor_key(const Tensor& t) {
  if (!t.defined()) return "none";
  std::string key = str_cat(static_cast<const void*>(t.storage().get()), "+", t.offset(), t.describe(),
                            shape_str(t.strides()));
  if (t.numel() <= kSmallHostElements)
    for (double v : t.to_doubles()) key += str_cat(",", v);
  return key;
}

std::string vector_load_defines(DType storage, DType compute) {
  const char* ct8 = compute == DType::kFloat64 ? "double8" : "float8";
  switch (storage) {
    case DType::kFloat32:
    case DType::kFloat64:
      return str_cat(" -DCT8=", ct8, " -DX_VLOAD8(i)=vload8(0,x+(i))");
    case DType::kFloat16:
      return str_cat(" -DCT8=", ct8, " -DX_VLOAD8(i)=vload_half8(0,x+(i))");
    default:
      return "";
  }
}

bool nn_rows_layout(OpContext& cx) {
  if (const char* e = std::getenv("CONVOY_NN_LAYOUT"); e && *e) return std::string(e) == "rows";
  return (cx.device().type & CL_DEVICE_TYPE_CPU) != 0;
}

void apply_conv_activation(OpContext& cx, const Tensor& out, const ConvActivation& a) {
  using gemm::Activation;
  const DType compute = compute_dtype_of(out.dtype());
  switch (a.kind) {
    case Activation::kIdentity:
      return;
    case Activation::kRelu:
      return elementwise(cx, "RELU", out, {EwInput::of(out)}, compute);
    case Activation::kRelu6:
      return elementwise(cx, "HARDTANH", out, {EwInput::of(out)}, compute, {0, 6, 0});
    case Activation::kHardtanh:
      return elementwise(cx, "HARDTANH", out, {EwInput::of(out)}, compute, {a.min_value, a.max_value, 0});
    case Activation::kGelu:
      return elementwise(cx, "GELU", out, {EwInput::of(out)}, compute);
    case Activation::kGeluTanh:
      return elementwise(cx, "GELU_TANH", out, {EwInput::of(out)}, compute);
    case Activation::kSilu:
      return elementwise(cx, "SILU", out, {EwInput::of(out)}, compute);
    case Activation::kHardswish:
      return elementwise(cx, "HARDSWISH", out, {EwInput::of(out)}, compute);
    case Activation::kSigmoid:
      return elementwise(cx, "SIGMOID", out, {EwInput::of(out)}, compute);
  }
}

namespace {

// ---- the three paths ---------------------------------------------------------------------------

void conv_direct(OpContext& cx, const ConvGeometry& s, const Tensor& input, const Tensor& weight,
                 const Tensor& bias, const ConvActivation& act, const Tensor& out) {
  const DType ct = compute_dtype_of(out.dtype());
  Tensor x = cx.to_device(input);
  Tensor w = contiguous(cx, cx.to_device(weight));
  Tensor b = bias.defined() ? contiguous(cx, cx.to_device(bias)) : Tensor();
  KernelLaunch k;
  k.file = "conv.cl";
  k.options = compute_defines(cx, ct) + load_defines(cx, "X", x.dtype()) + load_defines(cx, "W", w.dtype()) +
              load_defines(cx, "B", b.defined() ? b.dtype() : w.dtype()) +
              store_defines(cx, "OUT", out.dtype()) + (b.defined() ? " -DHAS_BIAS" : "") + act_define(act);
  // Without a bias the kernel never reads its bias argument; the weight stands in for it.
  k.args = {out, x, w, b.defined() ? b : w};
  if (s.transposed) {
    k.kernel = "conv_transpose_direct";
    k.args.push_back(conv_meta(s, x));
    k.global = {static_cast<size_t>(s.out[2]), static_cast<size_t>(s.out[0] * s.out[1]),
                static_cast<size_t>(s.batch * s.out_channels)};
  } else {
    // The window is compiled in: a network has few distinct ones, and each unrolls completely.
    k.options += str_cat(" -DCIN_G=", s.in_channels / s.groups) + window_defines(s);
    k.args.push_back(static_cast<int32_t>(s.out_channels));
    k.args.push_back(static_cast<int32_t>(s.out_channels / s.groups));
    push_geometry_args(k, s, x);
    const size_t planes = static_cast<size_t>(s.batch * s.out_channels * s.out[0]);
    if (nn_rows_layout(cx)) {
      k.kernel = "conv_direct_rows";
      k.options += vector_load_defines(x.dtype(), ct);
      k.global = {static_cast<size_t>(s.out[1]), planes};
    } else {
      k.kernel = "conv_direct";
      k.global = {static_cast<size_t>(s.out[2]), static_cast<size_t>(s.out[1]), planes};
    }
  }
  k.args.push_back(compute_scalar(act.min_value, ct));
  k.args.push_back(compute_scalar(act.max_value, ct));
  cx.launch(std::move(k));
}

// Is each channel plane of `x` one dense run of P elements, as a GEMM operand needs?
bool planes_dense(const ConvGeometry& s, const Tensor& x) {
  const std::array<int64_t, 5> st = input_strides(s, x);
  int64_t expected = 1;
  for (size_t d = 3; d-- > 0;) {
    if (s.in[d] != 1 && st[2 + d] != expected) return false;
    expected *= s.in[d];
  }
  return s.in_channels == 1 || st[1] >= expected;
}

void conv_gemm(OpContext& cx, const ConvGeometry& s, const Tensor& input, const Tensor& weight,
               const Tensor& bias, const ConvActivation& act, const Tensor& y) {
  const int64_t G = s.groups, cin_g = s.in_channels / G, cout_g = s.out_channels / G;
  const int64_t kvol = volume(s.kernel), K = cin_g * kvol, P = volume(s.out), N = s.batch;
  Tensor w = device_as(cx, weight, DType::kFloat32);  // [C_out][K]
  Tensor b = bias.defined() ? device_as(cx, bias, DType::kFloat32) : Tensor();
  gemm::Epilogue epilogue;
  epilogue.bias_axis = b.defined() ? gemm::BiasAxis::kAlongM : gemm::BiasAxis::kNone;
  epilogue.activation = act.kind;
  epilogue.min_value = act.min_value;
  epilogue.max_value = act.max_value;

  // For every group: C[cout_g × P] = W_g[cout_g × K] · B_g[K × P], batched over `count` samples.
  auto group_gemms = [&](const Tensor& bmat, int64_t b_group_offset, int64_t ldb, int64_t b_sample_stride,
                         int64_t first_sample, int64_t count) {
    for (int64_t g = 0; g < G; ++g) {
      GemmCall call;
      gemm::GemmArgs& a = call.args;
      a.m = static_cast<size_t>(cout_g);
      a.n = static_cast<size_t>(P);
      a.k = static_cast<size_t>(K);
      a.a_offset = static_cast<size_t>(g * cout_g * K);
      a.lda = static_cast<size_t>(K);
      a.a_stride = 0;
      a.b_offset = static_cast<size_t>(g * b_group_offset);
      a.ldb = static_cast<size_t>(ldb);
      a.b_stride = static_cast<size_t>(b_sample_stride);
      a.c_offset = static_cast<size_t>((first_sample * s.out_channels + g * cout_g) * P);
      a.ldc = static_cast<size_t>(P);
      a.c_stride = static_cast<size_t>(s.out_channels * P);
      a.batch_count = static_cast<size_t>(count);
      a.epilogue = epilogue;
      call.a = w;
      call.b = bmat;
      call.c = y;
      if (b.defined()) call.bias = b.as_strided({cout_g}, {1}, b.offset() + g * cout_g);
      cx.gemm(call);
    }
  };

  bool pointwise = kvol == 1;
  for (size_t d = 0; d < 3; ++d)
    pointwise = pointwise && s.stride[d] == 1 && s.pad_before[d] == 0 && s.pad_after[d] == 0;
  if (pointwise) {
    Tensor x = cx.to_device(input);
    if (x.dtype() != DType::kFloat32 || !planes_dense(s, x)) x = contiguous_copy(cx, x, DType::kFloat32);
    const std::array<int64_t, 5> st = input_strides(s, x);
    const int64_t ldb = s.in_channels == 1 ? P : st[1];
    // A sample stride of 0 (unbatched input) is only read once: batch_count is 1 then.
    group_gemms(x, cin_g * ldb, ldb, st[0], 0, N);
    return;
  }
  Tensor x = cx.to_device(input);
  const int64_t rows = s.in_channels * kvol;
  const int64_t per_sample = rows * P * static_cast<int64_t>(sizeof(float));
  const int64_t chunk = std::clamp<int64_t>(kIm2colBudgetBytes / std::max<int64_t>(per_sample, 1), 1, N);
  Tensor col = cx.scratch({chunk, rows, P}, DType::kFloat32);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t count = std::min(chunk, N - n0);
    KernelLaunch k;
    k.file = "conv.cl";
    k.kernel = "im2col";
    k.options = load_defines(cx, "X", x.dtype()) + window_defines(s);
    k.args = {col, x, static_cast<int32_t>(s.in_channels)};
    push_geometry_args(k, s, x);
    k.args.push_back(n0);
    k.global = {static_cast<size_t>(s.out[2]), static_cast<size_t>(s.out[1]),
                static_cast<size_t>(count * rows * s.out[0])};
    cx.launch(std::move(k));
    group_gemms(col, K * P, P, rows * P, n0, count);
  }
}

bool use_direct(const ConvGeometry& s, DType dtype) {
  if (s.transposed || dtype == DType::kFloat64) return true;
  return s.groups > 1 && s.in_channels / s.groups <= kDirectMaxGroupChannels;
}

}  // namespace

ConvCall read_convolution(const std::string& full_name, const IValueList& a) {
  const nn::ConvArgs* c = find_conv_args(full_name);
  CONVOY_ASSERT(c != nullptr, "read_convolution: ", full_name, " is not a convolution overload");
  ConvCall call;
  call.op = full_name;
  call.input = a[0].to_tensor();
  call.weight = a[1].to_tensor();
  call.bias = a[2].is_none() ? Tensor() : a[2].to_tensor();
  call.geometry = nn::read_conv_geometry(call.op, *c, a, call.input.sizes(), call.weight.sizes());
  nn::check_conv_bias(call.op, call.bias, call.geometry, call.weight);
  return call;
}

ConvActivation activation_named(const std::string& name, double min_value, double max_value) {
  using gemm::Activation;
  static const std::pair<const char*, Activation> kNames[] = {
      {"none", Activation::kIdentity},  {"relu", Activation::kRelu},
      {"relu6", Activation::kRelu6},    {"hardtanh", Activation::kHardtanh},
      {"gelu", Activation::kGelu},      {"gelu_tanh", Activation::kGeluTanh},
      {"silu", Activation::kSilu},      {"hardswish", Activation::kHardswish},
      {"sigmoid", Activation::kSigmoid}};
  for (const auto& [n, kind] : kNames) {
    if (name != n) continue;
    ConvActivation a;
    a.kind = kind;
    if (kind == Activation::kHardtanh) {
      CONVOY_CHECK(min_value <= max_value, "conv activation hardtanh: min_val ", min_value,
                   " exceeds max_val ", max_value);
      a.min_value = static_cast<float>(min_value);
      a.max_value = static_cast<float>(max_value);
    }
    return a;
  }
  fail(ErrorKind::kInvalidInput, "unknown fused convolution activation '", name, "'");
}

std::string activation_name_of(const ConvActivation& activation) {
  return activation.kind == gemm::Activation::kIdentity ? std::string("none")
                                                        : std::string(gemm::activation_name(activation.kind));
}

Tensor lower_convolution(OpContext& cx, const ConvCall& call, const ConvActivation& act) {
  const ConvGeometry& s = call.geometry;
  for (const Tensor* t : {&call.input, &call.weight, &call.bias})
    if (t->defined())
      CONVOY_CHECK_KIND(kUnsupported, is_floating(t->dtype()), cx.where(), ": ", call.op,
                        " supports floating ", "tensors only, got ", t->describe());
  Tensor out = cx.empty(s.output_shape(), call.input.dtype());
  if (out.numel() == 0) return out;
  if (use_direct(s, out.dtype())) {
    conv_direct(cx, s, call.input, call.weight, call.bias, act, out);
    return out;
  }
  Tensor y = out.dtype() == DType::kFloat32 ? out : cx.empty(out.sizes(), DType::kFloat32);
  conv_gemm(cx, s, call.input, call.weight, call.bias, act, y);
  if (!y.shares_storage_with(out)) copy_into(cx, out, y);
  return out;
}

std::optional<Tensor> lower_convolution_batch_norm(OpContext& cx, const ConvCall& call,
                                                   const BatchNormParams& bn, const ConvActivation& act) {
  const ConvGeometry& s = call.geometry;
  const int64_t C = s.out_channels;
  auto host = [&](const Tensor& t) { return !t.defined() || !cx.is_device(t); };
  if (s.transposed || !host(call.weight) || !host(call.bias) || !bn.running_mean.defined() ||
      !bn.running_var.defined())
    return std::nullopt;
  for (const Tensor* t : {&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var}) {
    if (!t->defined()) continue;
    if (!host(*t) || !is_floating(t->dtype())) return std::nullopt;
    CONVOY_CHECK(t->numel() == C, cx.where(), ": batch_norm parameter ", t->describe(), " must have ", C,
                 " elements, one per output channel of ", call.op);
  }
  if (!is_floating(call.input.dtype()) || !is_floating(call.weight.dtype())) return std::nullopt;
  // float64 convolutions stay float64; everything else computes in float32, like the GEMM.
  const DType dtype = call.input.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  const std::string key =
      str_cat("bnfold-", dtype_name(dtype), ":", host_tensor_key(call.weight), "|",
              host_tensor_key(call.bias), "|", host_tensor_key(bn.weight), "|", host_tensor_key(bn.bias), "|",
              host_tensor_key(bn.running_mean), "|", host_tensor_key(bn.running_var), "|", bn.eps);
  // scale = γ / sqrt(var + eps); W' = W · scale (per output channel); b' = (b - mean) · scale + β.
  auto scales = [bn, C] {
    std::vector<double> var = bn.running_var.to_doubles();
    std::vector<double> gamma = bn.weight.defined() ? bn.weight.to_doubles() : std::vector<double>(C, 1.0);
    std::vector<double> out(static_cast<size_t>(C));
    for (size_t c = 0; c < out.size(); ++c) out[c] = gamma[c] / std::sqrt(var[c] + bn.eps);
    return out;
  };
  const Tensor weight = call.weight, bias = call.bias;
  Tensor folded_w = cx.derived_weight(key + "|w", [=] {
    std::vector<double> w = weight.to_doubles();
    std::vector<double> scale = scales();
    const size_t per_channel = w.size() / static_cast<size_t>(C);
    for (size_t i = 0; i < w.size(); ++i) w[i] *= scale[i / per_channel];
    return Tensor::from_doubles(weight.sizes(), dtype, w);
  });
  Tensor folded_b = cx.derived_weight(key + "|b", [=] {
    std::vector<double> scale = scales();
    std::vector<double> mean = bn.running_mean.to_doubles();
    std::vector<double> beta = bn.bias.defined() ? bn.bias.to_doubles() : std::vector<double>(C, 0.0);
    std::vector<double> b = bias.defined() ? bias.to_doubles() : std::vector<double>(C, 0.0);
    for (size_t c = 0; c < b.size(); ++c) b[c] = (b[c] - mean[c]) * scale[c] + beta[c];
    return Tensor::from_doubles({C}, dtype, b);
  });
  ConvCall folded = call;
  folded.weight = folded_w;
  folded.bias = folded_b;
  return lower_convolution(cx, folded, act);
}

void register_opencl_conv_ops(OpenCLOpTable& table) {
  for (const nn::ConvOverload& o : nn::conv_overloads()) {
    table.add(o.name, [name = o.name](OpContext& cx, IValueList& a) {
      ConvCall call = read_convolution(name, a);
      for (const Tensor* t : {&call.weight, &call.bias})
        if (t->defined())
          CONVOY_CHECK(t->dtype() == call.input.dtype(), name, ": input ", call.input.describe(), " and ",
                       t == &call.weight ? "weight " : "bias ", t->describe(), " must have the same dtype");
      return IValueList{IValue(lower_convolution(cx, call))};
    });
  }
}

}  // namespace convoy::opencl
