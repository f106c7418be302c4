// OpenCL normalisation (runtime/ops/normalization.cpp's overloads): batch_norm, instance_norm,
// layer_norm, group_norm, with the reference's argument checks.
//
// Inference batch_norm is one multiply-add per element: its per-channel scale and shift are computed on
// the host in double, exactly as the reference computes them, once per executor when the parameters are
// model constants (else by nn_norm.cl's bn_params on the device). Training-mode batch_norm and the
// row normalisations compute their statistics in float (double for float64) with a work-group tree
// sum, two passes as the reference. As the reference, running statistics are never updated.
#include <cmath>

#include "opencl/ops/launch_util.h"
#include "opencl/ops/nn.h"
#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

Tensor optional_tensor(const IValue& v) { return v.is_none() ? Tensor() : v.to_tensor(); }

void check_float(OpContext& cx, const char* op, const Tensor& input) {
  CONVOY_CHECK_KIND(kUnsupported, is_floating(input.dtype()), cx.where(), ": ", op,
                    " supports floating tensors only, got ", input.describe());
}

void check_param(const char* op, const Tensor& input, const Tensor& p, const char* name, int64_t numel,
                 const char* what) {
  if (!p.defined()) return;
  CONVOY_CHECK(p.dtype() == input.dtype(), op, ": input ", input.describe(), " and ", name, " ", p.describe(),
               " must have the same dtype");
  CONVOY_CHECK(p.numel() == numel, op, ": ", name, " ", p.describe(), " must have ", numel, " elements (",
               what, ") for input ", input.describe());
}

// The statistics' type: float for float32/float16/bfloat16, double for float64.
DType acc_dtype(DType dtype) { return dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32; }

std::string acc_defines(OpContext& cx, DType dtype) {
  return acc_dtype(dtype) == DType::kFloat64 ? compute_defines(cx, DType::kFloat64) + " -DACC=double"
                                             : std::string(" -DACC=float");
}

// Work-items per row (or channel): its `count` elements are summed by a work-group tree. A CPU driver
// runs a work-group's items one after another between barriers, so there a row is one work-item's
// loop, unless there are too few rows to keep every compute unit busy.
size_t group_size(OpContext& cx, int64_t rows, int64_t count) {
  const DeviceInfo& device = cx.device();
  if ((device.type & CL_DEVICE_TYPE_CPU) &&
      rows >= 4 * static_cast<int64_t>(std::max<uint32_t>(device.compute_units, 1)))
    return 1;
  const size_t limit = std::min<size_t>(256, device.max_work_group_size);
  size_t g = 1;
  while (g * 2 <= limit && static_cast<int64_t>(g) < count) g *= 2;
  return g;
}

// The defines and arguments every nn_norm.cl kernel starts with: out, x, weight, bias (absent ones
// replaced by x, which the kernel then never reads).
struct NormOperands {
  Tensor out, x, weight, bias;
  std::string options;
};

NormOperands norm_operands(OpContext& cx, const Tensor& input, const Tensor& weight, const Tensor& bias) {
  NormOperands o;
  o.x = contiguous(cx, cx.to_device(input));
  o.out = cx.empty(input.sizes(), input.dtype());
  if (weight.defined()) o.weight = contiguous(cx, cx.to_device(weight));
  if (bias.defined()) o.bias = contiguous(cx, cx.to_device(bias));
  const DType param_dtype = weight.defined() ? weight.dtype() : bias.defined() ? bias.dtype() : input.dtype();
  o.options = acc_defines(cx, input.dtype()) + load_defines(cx, "X", input.dtype()) +
              store_defines(cx, "OUT", input.dtype()) + load_defines(cx, "W", param_dtype) +
              (weight.defined() ? " -DHAS_WEIGHT" : "") + (bias.defined() ? " -DHAS_BIAS" : "");
  return o;
}

// Normalises `rows` contiguous rows of `n` elements; per channel affine when channels_per_group > 0.
Tensor row_norm(OpContext& cx, const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t rows,
                int64_t n, int64_t inner, int64_t channels_per_group, int64_t groups, double eps) {
  NormOperands o = norm_operands(cx, input, weight, bias);
  if (o.out.numel() == 0) return o.out;
  const size_t lsize = group_size(cx, rows, n);
  const DType acc = acc_dtype(input.dtype());
  KernelLaunch k;
  k.file = "nn_norm.cl";
  k.kernel = "row_norm";
  k.options = o.options + (channels_per_group > 0 ? " -DAFFINE_CHANNEL" : "");
  k.args = {o.out,
            o.x,
            o.weight.defined() ? o.weight : o.x,
            o.bias.defined() ? o.bias : o.x,
            n,
            inner,
            channels_per_group,
            groups,
            compute_scalar(eps, acc),
            LocalMemory{lsize * dtype_size(acc)}};
  k.global = {static_cast<size_t>(rows) * lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
  return o.out;
}

Tensor batch_norm_training(OpContext& cx, const Tensor& input, const Tensor& weight, const Tensor& bias,
                           double eps) {
  const int64_t N = input.size(0), C = input.size(1);
  const int64_t inner = N * C == 0 ? 0 : input.numel() / (N * C);
  NormOperands o = norm_operands(cx, input, weight, bias);
  if (o.out.numel() == 0) return o.out;
  const size_t lsize = group_size(cx, C, N * inner);
  const DType acc = acc_dtype(input.dtype());
  KernelLaunch k;
  k.file = "nn_norm.cl";
  k.kernel = "batch_norm_train";
  k.options = o.options;
  k.args = {o.out,
            o.x,
            o.weight.defined() ? o.weight : o.x,
            o.bias.defined() ? o.bias : o.x,
            N,
            C,
            inner,
            compute_scalar(eps, acc),
            LocalMemory{lsize * dtype_size(acc)}};
  k.global = {static_cast<size_t>(C) * lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
  return o.out;
}

// [scale; shift] per channel, in the statistics' type.
Tensor batch_norm_params(OpContext& cx, const Tensor& input, const BatchNormParams& bn) {
  const int64_t C = input.size(1);
  const DType acc = acc_dtype(input.dtype());
  auto host = [&](const Tensor& t) { return !t.defined() || !cx.is_device(t); };
  if (host(bn.weight) && host(bn.bias) && host(bn.running_mean) && host(bn.running_var)) {
    // As the reference: α = rstd·γ and β = b − mean·α in double, each rounded once to the compute type.
    const std::string key =
        str_cat("bn-", dtype_name(acc), ":", host_tensor_key(bn.weight), "|", host_tensor_key(bn.bias), "|",
                host_tensor_key(bn.running_mean), "|", host_tensor_key(bn.running_var), "|", bn.eps);
    return cx.derived_weight(key, [bn, C, acc] {
      const std::vector<double> mean = bn.running_mean.to_doubles(), var = bn.running_var.to_doubles();
      const std::vector<double> w =
          bn.weight.defined() ? bn.weight.to_doubles() : std::vector<double>(C, 1.0);
      const std::vector<double> b = bn.bias.defined() ? bn.bias.to_doubles() : std::vector<double>(C, 0.0);
      std::vector<double> params(static_cast<size_t>(2 * C));
      for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
        const double scale = w[c] / std::sqrt(var[c] + bn.eps);
        params[c] = scale;
        params[static_cast<size_t>(C) + c] = b[c] - mean[c] * scale;
      }
      return Tensor::from_doubles({2 * C}, acc, params);
    });
  }
  Tensor params = cx.empty({2 * C}, acc);
  Tensor mean = contiguous(cx, cx.to_device(bn.running_mean));
  Tensor var = contiguous(cx, cx.to_device(bn.running_var));
  Tensor w = bn.weight.defined() ? contiguous(cx, cx.to_device(bn.weight)) : mean;
  Tensor b = bn.bias.defined() ? contiguous(cx, cx.to_device(bn.bias)) : mean;
  KernelLaunch k;
  k.file = "nn_norm.cl";
  k.kernel = "bn_params";
  k.options = acc_defines(cx, input.dtype()) + load_defines(cx, "W", bn.running_mean.dtype()) +
              (bn.weight.defined() ? " -DHAS_WEIGHT" : "") + (bn.bias.defined() ? " -DHAS_BIAS" : "");
  k.args = {params, w, b, mean, var, C, compute_scalar(bn.eps, acc)};
  k.global = {static_cast<size_t>(C)};
  cx.launch(std::move(k));
  return params;
}

Tensor batch_norm_op(OpContext& cx, IValueList& a, const char* op) {
  const Tensor& input = a[0].to_tensor();
  CONVOY_CHECK(input.dim() >= 2, op, ": input ", input.describe(), " must have at least 2 dims (N, C, ...)");
  check_float(cx, op, input);
  BatchNormParams bn{optional_tensor(a[1]), optional_tensor(a[2]), optional_tensor(a[3]),
                     optional_tensor(a[4]), a[7].to_double()};
  const int64_t C = input.size(1);
  check_param(op, input, bn.weight, "weight", C, "one per channel");
  check_param(op, input, bn.bias, "bias", C, "one per channel");
  check_param(op, input, bn.running_mean, "running_mean", C, "one per channel");
  check_param(op, input, bn.running_var, "running_var", C, "one per channel");
  if (a[5].to_bool()) return batch_norm_training(cx, input, bn.weight, bn.bias, bn.eps);
  return lower_batch_norm_inference(cx, input, bn, op);
}

}  // namespace

Tensor lower_batch_norm_inference(OpContext& cx, const Tensor& input, const BatchNormParams& bn,
                                  const char* op) {
  CONVOY_CHECK(bn.running_mean.defined() && bn.running_var.defined(), op,
               ": running_mean and running_var must be given when training=False (input ", input.describe(),
               ")");
  check_float(cx, op, input);
  Tensor x = contiguous(cx, cx.to_device(input));
  Tensor out = cx.empty(input.sizes(), input.dtype());
  if (out.numel() == 0) return out;
  const int64_t C = input.size(1), inner = input.numel() / (input.size(0) * C);
  Tensor params = batch_norm_params(cx, input, bn);
  KernelLaunch k;
  k.file = "nn_norm.cl";
  k.kernel = "channel_affine";
  k.options = acc_defines(cx, input.dtype()) + load_defines(cx, "X", input.dtype()) +
              store_defines(cx, "OUT", input.dtype());
  k.args = {out, x, params, C, inner};
  k.global = {static_cast<size_t>(inner), static_cast<size_t>(input.size(0) * C)};
  cx.launch(std::move(k));
  return out;
}

void register_opencl_normalization_ops(OpenCLOpTable& table) {
  table.add("aten::batch_norm", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(batch_norm_op(cx, a, "aten::batch_norm"))};
  });

  table.add("aten::instance_norm", [](OpContext& cx, IValueList& a) {
    constexpr const char* op = "aten::instance_norm";
    if (!a[5].to_bool()) return IValueList{IValue(batch_norm_op(cx, a, op))};  // running statistics
    const Tensor& input = a[0].to_tensor();
    CONVOY_CHECK(input.dim() >= 2, op, ": input ", input.describe(),
                 " must have at least 2 dims (N, C, ...)");
    check_float(cx, op, input);
    const int64_t N = input.size(0), C = input.size(1);
    const int64_t inner = N * C == 0 ? 0 : input.numel() / (N * C);
    const Tensor weight = optional_tensor(a[1]), bias = optional_tensor(a[2]);
    check_param(op, input, weight, "weight", C, "one per channel");
    check_param(op, input, bias, "bias", C, "one per channel");
    return IValueList{IValue(row_norm(cx, input, weight, bias, N * C, inner, inner, 1, C, a[7].to_double()))};
  });

  table.add("aten::group_norm", [](OpContext& cx, IValueList& a) {
    constexpr const char* op = "aten::group_norm";
    const Tensor& input = a[0].to_tensor();
    CONVOY_CHECK(input.dim() >= 2, op, ": input ", input.describe(),
                 " must have at least 2 dims (N, C, ...)");
    check_float(cx, op, input);
    const int64_t N = input.size(0), C = input.size(1), groups = a[1].to_int();
    CONVOY_CHECK(groups > 0 && C % groups == 0, op, ": input ", input.describe(), " has ", C,
                 " channels, not divisible into num_groups=", groups);
    const int64_t inner = N * C == 0 ? 0 : input.numel() / (N * C);
    const Tensor weight = optional_tensor(a[2]), bias = optional_tensor(a[3]);
    check_param(op, input, weight, "weight", C, "one per channel");
    check_param(op, input, bias, "bias", C, "one per channel");
    const int64_t cpg = C / groups;
    return IValueList{IValue(
        row_norm(cx, input, weight, bias, N * groups, cpg * inner, inner, cpg, groups, a[4].to_double()))};
  });

  table.add("aten::layer_norm", [](OpContext& cx, IValueList& a) {
    constexpr const char* op = "aten::layer_norm";
    const Tensor& input = a[0].to_tensor();
    const Shape normalized = a[1].is_int() ? Shape{a[1].to_int()} : a[1].to_int_list();
    const Tensor weight = optional_tensor(a[2]), bias = optional_tensor(a[3]);
    const int64_t n = nn::check_layer_norm_shapes(op, input, normalized, weight, bias);
    check_param(op, input, weight, "weight", n, "normalized_shape");
    check_param(op, input, bias, "bias", n, "normalized_shape");
    check_float(cx, op, input);
    const int64_t rows = n == 0 ? 0 : input.numel() / n;
    return IValueList{IValue(row_norm(cx, input, weight, bias, rows, n, 1, 0, 1, a[4].to_double()))};
  });
}

}  // namespace convoy::opencl
