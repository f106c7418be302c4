// Pooling: max_pool1d/2d (+ max_pool2d_with_indices), avg_pool1d/2d, adaptive_avg_pool1d/2d,
// adaptive_max_pool2d. Output sizes, window bounds, divisors and NaN handling follow PyTorch's CPU
// kernels, including ceil_mode's rule that the last window must start inside the input or the left
// padding. A 1-d pool is the 2-d one on planes of height 1.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// PyTorch's pooling_output_shape_pad_lr.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode) {
  int64_t out =
      floor_div(in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

struct PoolSpec {
  Shape lead;  // the dims before the pooled ones: (N, C) or (C)
  int64_t planes = 1;
  int64_t H = 1, W = 1, Ho = 1, Wo = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;

  Shape output_shape(int64_t spatial) const {
    Shape s = lead;
    if (spatial == 2) s.push_back(Ho);
    s.push_back(Wo);
    return s;
  }
};

// Validates a (1- or 2-d) pooling call and computes its output size. `kernel`, `stride`, `padding` and
// `dilation` have `spatial` entries (stride empty: equal to the kernel). Unknown sizes (-1) propagate.
PoolSpec make_pool_spec(const char* op, const Shape& in, int64_t spatial, std::vector<int64_t> kernel,
                        std::vector<int64_t> stride, std::vector<int64_t> padding,
                        std::vector<int64_t> dilation, bool ceil_mode) {
  const size_t sp = static_cast<size_t>(spatial);
  CONVOY_CHECK(in.size() == sp + 1 || in.size() == sp + 2, op, ": input ", shape_str(in), " must have ",
               sp + 1, " or ", sp + 2, " dims");
  auto expand = [&](std::vector<int64_t>& v, const char* name) {
    if (v.size() == 1) v.assign(sp, v[0]);
    CONVOY_CHECK(v.size() == sp, op, ": ", name, " ", shape_str(v), " must have 1 or ", sp, " values");
  };
  expand(kernel, "kernel_size");
  if (stride.empty()) stride = kernel;
  expand(stride, "stride");
  expand(padding, "padding");
  expand(dilation, "dilation");
  for (size_t i = 0; i < sp; ++i) {
    CONVOY_CHECK(kernel[i] > 0, op, ": kernel_size ", shape_str(kernel), " must be positive");
    CONVOY_CHECK(stride[i] > 0, op, ": stride ", shape_str(stride), " must be positive");
    CONVOY_CHECK(dilation[i] > 0, op, ": dilation ", shape_str(dilation), " must be positive");
    CONVOY_CHECK(padding[i] >= 0 && padding[i] <= kernel[i] / 2, op, ": padding ", shape_str(padding),
                 " must be at most half of kernel_size ", shape_str(kernel));
  }
  PoolSpec s;
  s.lead.assign(in.begin(), in.end() - spatial);
  s.planes = 1;
  for (int64_t d : s.lead) s.planes = (d < 0 || s.planes < 0) ? -1 : s.planes * d;
  if (sp == 2) {
    s.H = in[in.size() - 2];
    s.kh = kernel[0], s.sh = stride[0], s.ph = padding[0], s.dh = dilation[0];
  }
  s.W = in.back();
  s.kw = kernel[sp - 1], s.sw = stride[sp - 1], s.pw = padding[sp - 1], s.dw = dilation[sp - 1];
  s.Ho = s.H < 0 ? -1 : pooled_size(s.H, s.kh, s.ph, s.sh, s.dh, ceil_mode);
  s.Wo = s.W < 0 ? -1 : pooled_size(s.W, s.kw, s.pw, s.sw, s.dw, ceil_mode);
  CONVOY_CHECK((s.Ho == -1 || s.Ho >= 1) && (s.Wo == -1 || s.Wo >= 1), op, ": input ", shape_str(in),
               " is too small for kernel_size ", shape_str(kernel), ", stride ", shape_str(stride),
               ", padding ", shape_str(padding), ", dilation ", shape_str(dilation),
               ": the output size would be ", spatial == 2 ? shape_str({s.Ho, s.Wo}) : shape_str({s.Wo}));
  return s;
}

template <typename T>
void max_pool_planes(const T* x, const PoolSpec& s, T* y, int64_t* indices) {
  for (int64_t p = 0; p < s.planes; ++p) {
    const T* plane = x + p * s.H * s.W;
    for (int64_t oh = 0; oh < s.Ho; ++oh) {
      int64_t h0 = oh * s.sh - s.ph;
      const int64_t h1 = std::min(h0 + (s.kh - 1) * s.dh + 1, s.H);
      while (h0 < 0) h0 += s.dh;
      for (int64_t ow = 0; ow < s.Wo; ++ow) {
        int64_t w0 = ow * s.sw - s.pw;
        const int64_t w1 = std::min(w0 + (s.kw - 1) * s.dw + 1, s.W);
        while (w0 < 0) w0 += s.dw;
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_index = h0 * s.W + w0;
        for (int64_t ih = h0; ih < h1; ih += s.dh) {
          for (int64_t iw = w0; iw < w1; iw += s.dw) {
            const T v = plane[ih * s.W + iw];
            // NaN wins and stays, as in PyTorch.
            if (v > best || std::isnan(v)) {
              best = v;
              best_index = ih * s.W + iw;
            }
          }
        }
        const int64_t o = (p * s.Ho + oh) * s.Wo + ow;
        y[o] = best;
        if (indices) indices[o] = best_index;
      }
    }
  }
}

template <typename T>
void avg_pool_planes(const T* x, const PoolSpec& s, bool count_include_pad, int64_t divisor_override, T* y) {
  for (int64_t p = 0; p < s.planes; ++p) {
    const T* plane = x + p * s.H * s.W;
    for (int64_t oh = 0; oh < s.Ho; ++oh) {
      for (int64_t ow = 0; ow < s.Wo; ++ow) {
        int64_t h0 = oh * s.sh - s.ph, w0 = ow * s.sw - s.pw;
        int64_t h1 = std::min(h0 + s.kh, s.H + s.ph), w1 = std::min(w0 + s.kw, s.W + s.pw);
        const int64_t pool_size = (h1 - h0) * (w1 - w0);
        h0 = std::max<int64_t>(h0, 0);
        w0 = std::max<int64_t>(w0, 0);
        h1 = std::min(h1, s.H);
        w1 = std::min(w1, s.W);
        T& out = y[(p * s.Ho + oh) * s.Wo + ow];
        if (h0 >= h1 || w0 >= w1) {
          out = 0;
          continue;
        }
        T sum = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) sum += plane[ih * s.W + iw];
        const int64_t divisor = divisor_override != 0 ? divisor_override
                                : count_include_pad   ? pool_size
                                                      : (h1 - h0) * (w1 - w0);
        out = sum / static_cast<T>(divisor);
      }
    }
  }
}

// PyTorch's adaptive window bounds: [floor(o·in/out), ceil((o+1)·in/out)).
inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

template <typename T>
void adaptive_pool_planes(const T* x, const PoolSpec& s, bool is_max, T* y, int64_t* indices) {
  for (int64_t p = 0; p < s.planes; ++p) {
    const T* plane = x + p * s.H * s.W;
    for (int64_t oh = 0; oh < s.Ho; ++oh) {
      const int64_t h0 = adaptive_start(oh, s.H, s.Ho), h1 = adaptive_end(oh, s.H, s.Ho);
      for (int64_t ow = 0; ow < s.Wo; ++ow) {
        const int64_t w0 = adaptive_start(ow, s.W, s.Wo), w1 = adaptive_end(ow, s.W, s.Wo);
        const int64_t o = (p * s.Ho + oh) * s.Wo + ow;
        if (is_max) {
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_index = h0 * s.W + w0;
          for (int64_t ih = h0; ih < h1; ++ih) {
            for (int64_t iw = w0; iw < w1; ++iw) {
              const T v = plane[ih * s.W + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                best_index = ih * s.W + iw;
              }
            }
          }
          y[o] = best;
          if (indices) indices[o] = best_index;
        } else {
          T sum = 0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) sum += plane[ih * s.W + iw];
          y[o] = sum / static_cast<T>((h1 - h0) * (w1 - w0));
        }
      }
    }
  }
}

enum class PoolKind { kMax, kAvg, kAdaptiveAvg, kAdaptiveMax };

struct PoolCall {
  PoolKind kind;
  bool with_indices = false;
  bool count_include_pad = true;
  int64_t divisor_override = 0;
};

// Runs one pooling kernel on a validated spec; returns the values (and the indices when asked).
IValueList run_pool(const char* op, const Tensor& input, const PoolSpec& s, int64_t spatial,
                    const PoolCall& call) {
  const DType compute = float_compute_dtype(input, op, "input");
  Shape out_shape = s.output_shape(spatial);
  Tensor indices = call.with_indices ? Tensor::empty(out_shape, DType::kInt64) : Tensor();
  Tensor values = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor x = contiguous_as(input, compute);
    Tensor y = Tensor::empty(out_shape, compute);
    if (y.numel() == 0) return y;
    int64_t* ip = call.with_indices ? indices.data<int64_t>() : nullptr;
    switch (call.kind) {
      case PoolKind::kMax:
        max_pool_planes<T>(x.data<T>(), s, y.data<T>(), ip);
        break;
      case PoolKind::kAvg:
        avg_pool_planes<T>(x.data<T>(), s, call.count_include_pad, call.divisor_override, y.data<T>());
        break;
      case PoolKind::kAdaptiveAvg:
      case PoolKind::kAdaptiveMax:
        adaptive_pool_planes<T>(x.data<T>(), s, call.kind == PoolKind::kAdaptiveMax, y.data<T>(), ip);
        break;
    }
    return y;
  });
  values = to_result_dtype(values, input.dtype());
  if (call.with_indices) return {values, indices};
  return {values};
}

PoolSpec make_adaptive_spec(const char* op, const Shape& in, int64_t spatial,
                            std::vector<int64_t> output_size) {
  const size_t sp = static_cast<size_t>(spatial);
  CONVOY_CHECK(in.size() == sp + 1 || in.size() == sp + 2, op, ": input ", shape_str(in), " must have ",
               sp + 1, " or ", sp + 2, " dims");
  if (output_size.size() == 1) output_size.assign(sp, output_size[0]);
  CONVOY_CHECK(output_size.size() == sp, op, ": output_size ", shape_str(output_size), " must have ", sp,
               " values");
  for (int64_t o : output_size)
    CONVOY_CHECK(o >= 0, op, ": output_size ", shape_str(output_size), " must be non-negative");
  PoolSpec s;
  s.lead.assign(in.begin(), in.end() - spatial);
  s.planes = 1;
  for (int64_t d : s.lead) s.planes = (d < 0 || s.planes < 0) ? -1 : s.planes * d;
  for (size_t i = 0; i < sp; ++i)
    CONVOY_CHECK(in[in.size() - sp + i] != 0, op, ": input ", shape_str(in), " has an empty spatial dim");
  if (sp == 2) {
    s.H = in[in.size() - 2];
    s.Ho = output_size[0];
  }
  s.W = in.back();
  s.Wo = output_size.back();
  return s;
}

// ---- registration ------------------------------------------------------------------------------

// Positions: kernel 1, stride 2, padding 3, dilation 4 (max) / ceil_mode 4 (avg).
struct WindowArgs {
  int64_t spatial;
  bool has_dilation;
  int ceil_mode;
};

PoolSpec window_spec(const char* op, const Shape& in, const WindowArgs& w, const IValue& kernel,
                     const IValue& stride, const IValue& padding, const IValue* dilation, bool ceil_mode) {
  const size_t sp = static_cast<size_t>(w.spatial);
  auto list = [&](const IValue& v) {
    return v.is_int() ? std::vector<int64_t>(sp, v.to_int()) : v.to_int_list();
  };
  return make_pool_spec(op, in, w.spatial, list(kernel), list(stride), list(padding),
                        dilation ? list(*dilation) : std::vector<int64_t>{1}, ceil_mode);
}

InferFn window_infer(const char* op, WindowArgs w, int returns) {
  return [op, w, returns](const std::vector<TypePtr>& args, const std::vector<const IValue*>& k) {
    auto in = known_shape(args, 0);
    auto dtype = known_dtype(args, 0);
    std::optional<Shape> shape;
    const bool all_const = k.size() > 4 && k[1] && k[2] && k[3] && (!w.has_dilation || k[4]) &&
                           k.size() > static_cast<size_t>(w.ceil_mode) &&
                           k[static_cast<size_t>(w.ceil_mode)] &&
                           k[static_cast<size_t>(w.ceil_mode)]->is_bool();
    if (in && all_const) {
      try {
        PoolSpec s = window_spec(op, *in, w, *k[1], *k[2], *k[3], w.has_dilation ? k[4] : nullptr,
                                 k[static_cast<size_t>(w.ceil_mode)]->to_bool());
        shape = s.output_shape(w.spatial);
      } catch (const Error&) {
      }
    }
    std::vector<TypePtr> out{Type::tensor(dtype, shape)};
    if (returns == 2) out.push_back(Type::tensor(DType::kInt64, shape));
    return out;
  };
}

void add_window_pool(OpRegistry& r, const char* schema, const char* op, WindowArgs w, PoolKind kind,
                     bool with_indices) {
  r.add(
      schema,
      [op, w, kind, with_indices](IValueList& a) -> IValueList {
        const Tensor& input = a[0].to_tensor();
        const bool ceil_mode = a[static_cast<size_t>(w.ceil_mode)].to_bool();
        PoolSpec s =
            window_spec(op, input.sizes(), w, a[1], a[2], a[3], w.has_dilation ? &a[4] : nullptr, ceil_mode);
        PoolCall call{kind, with_indices};
        if (kind == PoolKind::kAvg) {
          call.count_include_pad = a[static_cast<size_t>(w.ceil_mode) + 1].to_bool();
          const size_t div = static_cast<size_t>(w.ceil_mode) + 2;
          if (div < a.size() && !a[div].is_none()) {
            call.divisor_override = a[div].to_int();
            CONVOY_CHECK(call.divisor_override != 0, op, ": divisor_override must not be zero");
          }
        }
        return run_pool(op, input, s, w.spatial, call);
      },
      window_infer(op, w, with_indices ? 2 : 1));
}

void add_adaptive_pool(OpRegistry& r, const char* schema, const char* op, int64_t spatial, PoolKind kind) {
  const bool with_indices = kind == PoolKind::kAdaptiveMax;
  r.add(
      schema,
      [op, spatial, kind, with_indices](IValueList& a) -> IValueList {
        const Tensor& input = a[0].to_tensor();
        std::vector<int64_t> size = a[1].is_int() ? std::vector<int64_t>{a[1].to_int()} : a[1].to_int_list();
        PoolSpec s = make_adaptive_spec(op, input.sizes(), spatial, size);
        return run_pool(op, input, s, spatial, PoolCall{kind, with_indices});
      },
      [op, spatial, with_indices](const std::vector<TypePtr>& args, const std::vector<const IValue*>& k) {
        auto in = known_shape(args, 0);
        auto size = const_ints(k, 1, static_cast<size_t>(spatial));
        std::optional<Shape> shape;
        if (in && size) {
          try {
            shape = make_adaptive_spec(op, *in, spatial, *size).output_shape(spatial);
          } catch (const Error&) {
          }
        }
        std::vector<TypePtr> out{Type::tensor(known_dtype(args, 0), shape)};
        if (with_indices) out.push_back(Type::tensor(DType::kInt64, shape));
        return out;
      });
}

}  // namespace

void register_pooling_ops(OpRegistry& r) {
  add_window_pool(r,
                  "aten::max_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, "
                  "int[2] dilation=1, bool ceil_mode=False) -> Tensor",
                  "aten::max_pool2d", WindowArgs{2, true, 5}, PoolKind::kMax, false);
  add_window_pool(r,
                  "aten::max_pool2d_with_indices(Tensor self, int[2] kernel_size, int[2] stride=[], "
                  "int[2] padding=0, int[2] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)",
                  "aten::max_pool2d_with_indices", WindowArgs{2, true, 5}, PoolKind::kMax, true);
  add_window_pool(r,
                  "aten::max_pool1d(Tensor self, int[1] kernel_size, int[1] stride=[], int[1] padding=[0], "
                  "int[1] dilation=[1], bool ceil_mode=False) -> Tensor",
                  "aten::max_pool1d", WindowArgs{1, true, 5}, PoolKind::kMax, false);
  add_window_pool(r,
                  "aten::avg_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, "
                  "bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor",
                  "aten::avg_pool2d", WindowArgs{2, false, 4}, PoolKind::kAvg, false);
  add_window_pool(r,
                  "aten::avg_pool1d(Tensor self, int[1] kernel_size, int[1] stride=[], int[1] padding=[0], "
                  "bool ceil_mode=False, bool count_include_pad=True) -> Tensor",
                  "aten::avg_pool1d", WindowArgs{1, false, 4}, PoolKind::kAvg, false);
  // torch 2.x prints SymInt[2] output_size; the values are the same ints.
  add_adaptive_pool(r, "aten::adaptive_avg_pool2d(Tensor self, int[2] output_size) -> Tensor",
                    "aten::adaptive_avg_pool2d", 2, PoolKind::kAdaptiveAvg);
  add_adaptive_pool(r, "aten::adaptive_avg_pool1d(Tensor self, int[1] output_size) -> Tensor",
                    "aten::adaptive_avg_pool1d", 1, PoolKind::kAdaptiveAvg);
  add_adaptive_pool(r, "aten::adaptive_max_pool2d(Tensor self, int[2] output_size) -> (Tensor, Tensor)",
                    "aten::adaptive_max_pool2d", 2, PoolKind::kAdaptiveMax);
  add_adaptive_pool(r, "aten::adaptive_max_pool1d(Tensor self, int[1] output_size) -> (Tensor, Tensor)",
                    "aten::adaptive_max_pool1d", 1, PoolKind::kAdaptiveMax);
}

}  // namespace convoy::nn
