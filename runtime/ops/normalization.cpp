// Normalisation: batch_norm, layer_norm, group_norm, instance_norm. Statistics accumulate in double
// (two passes: mean, then the biased variance PyTorch normalises with); the per-element work runs in
// the compute type.
//
// batch_norm with training=True (an archive traced in train mode, or a BatchNorm without running
// stats) normalises with the batch's own statistics, as PyTorch's forward does, but does not update
// running_mean/running_var: inference must not mutate the model's buffers between micro-batches.
#include <algorithm>
#include <cmath>

#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {

template <typename T>
void layer_norm_rows(T* x, int64_t rows, int64_t n, const T* weight, const T* bias, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = x + r * n;
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += row[j];
    const double mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
    double sq = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double d = row[j] - mean;
      sq += d * d;
    }
    const double var = n > 0 ? sq / static_cast<double>(n) : 0.0;
    const T rstd = static_cast<T>(1.0 / std::sqrt(var + eps));
    const T m = static_cast<T>(mean);
    if (weight && bias) {
      for (int64_t j = 0; j < n; ++j) row[j] = (row[j] - m) * rstd * weight[j] + bias[j];
    } else {
      for (int64_t j = 0; j < n; ++j) {
        T v = (row[j] - m) * rstd;
        if (weight) v *= weight[j];
        if (bias) v += bias[j];
        row[j] = v;
      }
    }
  }
}

template void layer_norm_rows<float>(float*, int64_t, int64_t, const float*, const float*, double);
template void layer_norm_rows<double>(double*, int64_t, int64_t, const double*, const double*, double);

namespace {

void check_param(const char* op, const Tensor& input, const Tensor& p, const char* name, int64_t numel,
                 const char* what) {
  if (!p.defined()) return;
  check_same_dtype(op, input, "input", p, name);
  CONVOY_CHECK(p.numel() == numel, op, ": ", name, " ", p.describe(), " must have ", numel, " elements (",
               what, ") for input ", input.describe());
}

// A parameter as a contiguous T buffer, or nullptr when absent.
template <typename T>
const T* param_data(const Tensor& p, DType compute, Tensor& keep) {
  if (!p.defined()) return nullptr;
  keep = contiguous_as(p, compute);
  return keep.data<T>();
}

// Mean and 1/sqrt(var + eps) over `count` contiguous values.
template <typename T>
void plane_stats(const T* x, int64_t count, double eps, double& mean, double& rstd) {
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += x[i];
  mean = count > 0 ? sum / static_cast<double>(count) : 0.0;
  double sq = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double d = x[i] - mean;
    sq += d * d;
  }
  rstd = 1.0 / std::sqrt((count > 0 ? sq / static_cast<double>(count) : 0.0) + eps);
}

// ---- batch_norm / instance_norm ------------------------------------------------------------------

Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double eps, const char* op) {
  CONVOY_CHECK(input.dim() >= 2, op, ": input ", input.describe(), " must have at least 2 dims (N, C, ...)");
  const int64_t N = input.size(0), C = input.size(1);
  const int64_t inner = C == 0 || N == 0 ? 0 : input.numel() / (N * C);
  check_param(op, input, weight, "weight", C, "one per channel");
  check_param(op, input, bias, "bias", C, "one per channel");
  check_param(op, input, running_mean, "running_mean", C, "one per channel");
  check_param(op, input, running_var, "running_var", C, "one per channel");
  if (!training)
    CONVOY_CHECK(running_mean.defined() && running_var.defined(), op,
                 ": running_mean and running_var must be given when training=False (input ", input.describe(),
                 ")");
  const DType compute = float_compute_dtype(input, op, "input");
  Tensor out = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor x = contiguous_as(input, compute);
    Tensor y = Tensor::empty(input.sizes(), compute);
    Tensor kw, kb, km, kv;
    const T* w = param_data<T>(weight, compute, kw);
    const T* b = param_data<T>(bias, compute, kb);
    const T* rm = training ? nullptr : param_data<T>(running_mean, compute, km);
    const T* rv = training ? nullptr : param_data<T>(running_var, compute, kv);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      double mean, rstd;
      if (training) {
        double sum = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < inner; ++i) sum += xp[(n * C + c) * inner + i];
        const double count = static_cast<double>(N * inner);
        mean = sum / count;
        double sq = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < inner; ++i) {
            const double d = xp[(n * C + c) * inner + i] - mean;
            sq += d * d;
          }
        rstd = 1.0 / std::sqrt(sq / count + eps);
      } else {
        mean = rm[c];
        rstd = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
      }
      const double scale = rstd * (w ? static_cast<double>(w[c]) : 1.0);
      const T alpha = static_cast<T>(scale);
      const T beta = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mean * scale);
      for (int64_t n = 0; n < N; ++n) {
        const T* src = xp + (n * C + c) * inner;
        T* dst = yp + (n * C + c) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = src[i] * alpha + beta;
      }
    }
    return y;
  });
  return to_result_dtype(out, input.dtype());
}

Tensor instance_norm(const Tensor& input, const Tensor& weight, const Tensor& bias,
                     const Tensor& running_mean, const Tensor& running_var, bool use_input_stats,
                     double eps) {
  constexpr const char* op = "aten::instance_norm";
  if (!use_input_stats) return batch_norm(input, weight, bias, running_mean, running_var, false, eps, op);
  CONVOY_CHECK(input.dim() >= 2, op, ": input ", input.describe(), " must have at least 2 dims (N, C, ...)");
  const int64_t N = input.size(0), C = input.size(1);
  const int64_t inner = C == 0 || N == 0 ? 0 : input.numel() / (N * C);
  check_param(op, input, weight, "weight", C, "one per channel");
  check_param(op, input, bias, "bias", C, "one per channel");
  const DType compute = float_compute_dtype(input, op, "input");
  Tensor out = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor y = copy_as(input, compute);
    Tensor kw, kb;
    const T* w = param_data<T>(weight, compute, kw);
    const T* b = param_data<T>(bias, compute, kb);
    T* yp = y.data<T>();
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = 0; c < C; ++c) {
        T* plane = yp + (n * C + c) * inner;
        double mean, rstd;
        plane_stats(plane, inner, eps, mean, rstd);
        const double scale = rstd * (w ? static_cast<double>(w[c]) : 1.0);
        const T alpha = static_cast<T>(scale);
        const T beta = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mean * scale);
        for (int64_t i = 0; i < inner; ++i) plane[i] = plane[i] * alpha + beta;
      }
    }
    return y;
  });
  return to_result_dtype(out, input.dtype());
}

// ---- group_norm -----------------------------------------------------------------------------------

Tensor group_norm(const Tensor& input, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  constexpr const char* op = "aten::group_norm";
  CONVOY_CHECK(input.dim() >= 2, op, ": input ", input.describe(), " must have at least 2 dims (N, C, ...)");
  const int64_t N = input.size(0), C = input.size(1);
  CONVOY_CHECK(groups > 0 && C % groups == 0, op, ": input ", input.describe(), " has ", C,
               " channels, not divisible into num_groups=", groups);
  const int64_t inner = C == 0 || N == 0 ? 0 : input.numel() / (N * C);
  check_param(op, input, weight, "weight", C, "one per channel");
  check_param(op, input, bias, "bias", C, "one per channel");
  const int64_t cpg = C / groups;
  const DType compute = float_compute_dtype(input, op, "input");
  Tensor out = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor y = copy_as(input, compute);
    Tensor kw, kb;
    const T* w = param_data<T>(weight, compute, kw);
    const T* b = param_data<T>(bias, compute, kb);
    T* yp = y.data<T>();
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t g = 0; g < groups; ++g) {
        T* block = yp + (n * C + g * cpg) * inner;
        double mean, rstd;
        plane_stats(block, cpg * inner, eps, mean, rstd);
        for (int64_t cc = 0; cc < cpg; ++cc) {
          const int64_t c = g * cpg + cc;
          const double scale = rstd * (w ? static_cast<double>(w[c]) : 1.0);
          const T alpha = static_cast<T>(scale);
          const T beta = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mean * scale);
          T* plane = block + cc * inner;
          for (int64_t i = 0; i < inner; ++i) plane[i] = plane[i] * alpha + beta;
        }
      }
    }
    return y;
  });
  return to_result_dtype(out, input.dtype());
}

std::vector<TypePtr> same_as_input(const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
  return tensor_result(known_dtype(args, 0), known_shape(args, 0));
}

}  // namespace

Tensor layer_norm_forward(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                          const Tensor& bias, double eps, const char* op) {
  const int64_t n = check_layer_norm_shapes(op, input, normalized_shape, weight, bias);
  check_param(op, input, weight, "weight", n, "normalized_shape");
  check_param(op, input, bias, "bias", n, "normalized_shape");
  const DType compute = float_compute_dtype(input, op, "input");
  Tensor out = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor y = copy_as(input, compute);
    Tensor kw, kb;
    const T* w = param_data<T>(weight, compute, kw);
    const T* b = param_data<T>(bias, compute, kb);
    const int64_t rows = n == 0 ? 0 : input.numel() / n;
    layer_norm_rows<T>(y.data<T>(), rows, n, w, b, eps);
    return y;
  });
  return to_result_dtype(out, input.dtype());
}

void register_normalization_ops(OpRegistry& r) {
  r.add(
      "aten::batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? "
      "running_var, "
      "bool training, float momentum, float eps, bool cudnn_enabled) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {batch_norm(a[0].to_tensor(), optional_tensor(a[1]), optional_tensor(a[2]),
                           optional_tensor(a[3]), optional_tensor(a[4]), a[5].to_bool(), a[7].to_double(),
                           "aten::batch_norm")};
      },
      same_as_input);
  r.add(
      "aten::instance_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, "
      "Tensor? running_var, bool use_input_stats, float momentum, float eps, bool cudnn_enabled) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {instance_norm(a[0].to_tensor(), optional_tensor(a[1]), optional_tensor(a[2]),
                              optional_tensor(a[3]), optional_tensor(a[4]), a[5].to_bool(),
                              a[7].to_double())};
      },
      same_as_input);
  // torch 2.x prints SymInt[] normalized_shape; the values are the same ints.
  r.add(
      "aten::layer_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None, "
      "float eps=1.0000000000000001e-05, bool cudnn_enable=True) -> Tensor",
      [](IValueList& a) -> IValueList {
        const IValue& shape = a[1];
        Shape normalized = shape.is_int() ? Shape{shape.to_int()} : shape.to_int_list();
        return {layer_norm_forward(a[0].to_tensor(), normalized, optional_tensor(a[2]), optional_tensor(a[3]),
                                   a[4].to_double(), "aten::layer_norm")};
      },
      same_as_input);
  r.add(
      "aten::group_norm(Tensor input, int num_groups, Tensor? weight=None, Tensor? bias=None, "
      "float eps=1.0000000000000001e-05, bool cudnn_enabled=True) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {group_norm(a[0].to_tensor(), a[1].to_int(), optional_tensor(a[2]), optional_tensor(a[3]),
                           a[4].to_double())};
      },
      same_as_input);
}

}  // namespace convoy::nn
