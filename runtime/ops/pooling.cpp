// Pooling: max_pool1d/2d/3d (+ max_pool2d/3d_with_indices), avg_pool1d/2d/3d, adaptive_avg_pool1d/2d/3d,
// adaptive_max_pool1d/2d/3d. Output sizes, window bounds, divisors and NaN handling follow PyTorch's CPU
// kernels, including ceil_mode's rule that the last window must start inside the input or the left
// padding. One 3-d path: a 2-d pool is the 3-d one on volumes of depth 1, a 1-d pool also has height 1.
// Argument checks and output sizes: nn_geometry.h (shared with the OpenCL backend).
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {
namespace {

// A max pool's window along one dim for output o: taps lo, lo + dilation, ... below hi, the first
// one inside the input (PyTorch's start and end, the start stepped past the padding).
struct MaxWindow {
  int64_t lo, hi;
};
inline MaxWindow max_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t dilation,
                            int64_t in) {
  int64_t lo = o * stride - pad;
  const int64_t hi = std::min(lo + (kernel - 1) * dilation + 1, in);
  while (lo < 0) lo += dilation;
  return {lo, hi};
}

// The planes are (D, H, W) volumes; a 2-d pool has D = 1 and a 1-d one H = 1 too. Indices are flat
// positions in the volume (d·H + h)·W + w, PyTorch's.
template <typename T>
void max_pool_planes(const T* x, const PoolGeometry& s, T* y, int64_t* indices) {
  const int64_t volume = s.D * s.H * s.W;
  int64_t o = 0;
  for (int64_t p = 0; p < s.planes; ++p) {
    const T* plane = x + p * volume;
    for (int64_t od = 0; od < s.Do; ++od) {
      const MaxWindow wd = max_window(od, s.sd, s.pd, s.kd, s.dd, s.D);
      for (int64_t oh = 0; oh < s.Ho; ++oh) {
        const MaxWindow wh = max_window(oh, s.sh, s.ph, s.kh, s.dh, s.H);
        for (int64_t ow = 0; ow < s.Wo; ++ow, ++o) {
          const MaxWindow ww = max_window(ow, s.sw, s.pw, s.kw, s.dw, s.W);
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_index = (wd.lo * s.H + wh.lo) * s.W + ww.lo;
          for (int64_t id = wd.lo; id < wd.hi; id += s.dd) {
            for (int64_t ih = wh.lo; ih < wh.hi; ih += s.dh) {
              for (int64_t iw = ww.lo; iw < ww.hi; iw += s.dw) {
                const int64_t i = (id * s.H + ih) * s.W + iw;
                const T v = plane[i];
                // NaN wins and stays, as in PyTorch.
                if (v > best || std::isnan(v)) {
                  best = v;
                  best_index = i;
                }
              }
            }
          }
          y[o] = best;
          if (indices) indices[o] = best_index;
        }
      }
    }
  }
}

// An avg pool's window along one dim: [lo, hi) inside the input, and its extent counting the padding.
struct AvgWindow {
  int64_t lo, hi, padded;
};
inline AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  const int64_t lo = o * stride - pad;
  const int64_t hi = std::min(lo + kernel, in + pad);
  return {std::max<int64_t>(lo, 0), std::min(hi, in), hi - lo};
}

template <typename T>
void avg_pool_planes(const T* x, const PoolGeometry& s, bool count_include_pad, int64_t divisor_override,
                     T* y) {
  const int64_t volume = s.D * s.H * s.W;
  int64_t o = 0;
  for (int64_t p = 0; p < s.planes; ++p) {
    const T* plane = x + p * volume;
    for (int64_t od = 0; od < s.Do; ++od) {
      const AvgWindow wd = avg_window(od, s.sd, s.pd, s.kd, s.D);
      for (int64_t oh = 0; oh < s.Ho; ++oh) {
        const AvgWindow wh = avg_window(oh, s.sh, s.ph, s.kh, s.H);
        for (int64_t ow = 0; ow < s.Wo; ++ow, ++o) {
          const AvgWindow ww = avg_window(ow, s.sw, s.pw, s.kw, s.W);
          if (wd.lo >= wd.hi || wh.lo >= wh.hi || ww.lo >= ww.hi) {
            y[o] = 0;
            continue;
          }
          T sum = 0;
          for (int64_t id = wd.lo; id < wd.hi; ++id)
            for (int64_t ih = wh.lo; ih < wh.hi; ++ih)
              for (int64_t iw = ww.lo; iw < ww.hi; ++iw) sum += plane[(id * s.H + ih) * s.W + iw];
          const int64_t divisor = divisor_override != 0 ? divisor_override
                                  : count_include_pad   ? wd.padded * wh.padded * ww.padded
                                                        : (wd.hi - wd.lo) * (wh.hi - wh.lo) * (ww.hi - ww.lo);
          y[o] = sum / static_cast<T>(divisor);
        }
      }
    }
  }
}

// PyTorch's adaptive window bounds: [floor(o·in/out), ceil((o+1)·in/out)).
inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

template <typename T>
void adaptive_pool_planes(const T* x, const PoolGeometry& s, bool is_max, T* y, int64_t* indices) {
  const int64_t volume = s.D * s.H * s.W;
  int64_t o = 0;
  for (int64_t p = 0; p < s.planes; ++p) {
    const T* plane = x + p * volume;
    for (int64_t od = 0; od < s.Do; ++od) {
      const int64_t d0 = adaptive_start(od, s.D, s.Do), d1 = adaptive_end(od, s.D, s.Do);
      for (int64_t oh = 0; oh < s.Ho; ++oh) {
        const int64_t h0 = adaptive_start(oh, s.H, s.Ho), h1 = adaptive_end(oh, s.H, s.Ho);
        for (int64_t ow = 0; ow < s.Wo; ++ow, ++o) {
          const int64_t w0 = adaptive_start(ow, s.W, s.Wo), w1 = adaptive_end(ow, s.W, s.Wo);
          if (is_max) {
            T best = -std::numeric_limits<T>::infinity();
            int64_t best_index = (d0 * s.H + h0) * s.W + w0;
            for (int64_t id = d0; id < d1; ++id) {
              for (int64_t ih = h0; ih < h1; ++ih) {
                for (int64_t iw = w0; iw < w1; ++iw) {
                  const int64_t i = (id * s.H + ih) * s.W + iw;
                  const T v = plane[i];
                  if (v > best || std::isnan(v)) {
                    best = v;
                    best_index = i;
                  }
                }
              }
            }
            y[o] = best;
            if (indices) indices[o] = best_index;
          } else {
            T sum = 0;
            for (int64_t id = d0; id < d1; ++id)
              for (int64_t ih = h0; ih < h1; ++ih)
                for (int64_t iw = w0; iw < w1; ++iw) sum += plane[(id * s.H + ih) * s.W + iw];
            y[o] = sum / static_cast<T>((d1 - d0) * (h1 - h0) * (w1 - w0));
          }
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
IValueList run_pool(const char* op, const Tensor& input, const PoolGeometry& s, int64_t spatial,
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

// ---- registration ------------------------------------------------------------------------------

InferFn window_infer(const char* op, PoolWindowArgs w, int returns) {
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
        PoolGeometry s = read_pool_window(op, *in, w, *k[1], *k[2], *k[3], w.has_dilation ? k[4] : nullptr,
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

void add_window_pool(OpRegistry& r, const char* schema, const char* op, PoolWindowArgs w, PoolKind kind,
                     bool with_indices) {
  r.add(
      schema,
      [op, w, kind, with_indices](IValueList& a) -> IValueList {
        const Tensor& input = a[0].to_tensor();
        const bool ceil_mode = a[static_cast<size_t>(w.ceil_mode)].to_bool();
        PoolGeometry s = read_pool_window(op, input.sizes(), w, a[1], a[2], a[3],
                                          w.has_dilation ? &a[4] : nullptr, ceil_mode);
        PoolCall call{kind, with_indices};
        if (kind == PoolKind::kAvg) {
          const AvgPoolOptions avg = read_avg_pool_options(op, w, a);
          call.count_include_pad = avg.count_include_pad;
          call.divisor_override = avg.divisor_override;
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
        PoolGeometry s = pool_adaptive_geometry(op, input.sizes(), spatial, adaptive_output_size(a[1]));
        return run_pool(op, input, s, spatial, PoolCall{kind, with_indices});
      },
      [op, spatial, with_indices](const std::vector<TypePtr>& args, const std::vector<const IValue*>& k) {
        auto in = known_shape(args, 0);
        auto size = const_ints(k, 1, static_cast<size_t>(spatial));
        std::optional<Shape> shape;
        if (in && size) {
          try {
            shape = pool_adaptive_geometry(op, *in, spatial, *size).output_shape(spatial);
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
                  "aten::max_pool2d", PoolWindowArgs{2, true, 5}, PoolKind::kMax, false);
  add_window_pool(r,
                  "aten::max_pool2d_with_indices(Tensor self, int[2] kernel_size, int[2] stride=[], "
                  "int[2] padding=0, int[2] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)",
                  "aten::max_pool2d_with_indices", PoolWindowArgs{2, true, 5}, PoolKind::kMax, true);
  add_window_pool(r,
                  "aten::max_pool1d(Tensor self, int[1] kernel_size, int[1] stride=[], int[1] padding=[0], "
                  "int[1] dilation=[1], bool ceil_mode=False) -> Tensor",
                  "aten::max_pool1d", PoolWindowArgs{1, true, 5}, PoolKind::kMax, false);
  add_window_pool(r,
                  "aten::avg_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, "
                  "bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor",
                  "aten::avg_pool2d", PoolWindowArgs{2, false, 4}, PoolKind::kAvg, false);
  add_window_pool(r,
                  "aten::avg_pool1d(Tensor self, int[1] kernel_size, int[1] stride=[], int[1] padding=[0], "
                  "bool ceil_mode=False, bool count_include_pad=True) -> Tensor",
                  "aten::avg_pool1d", PoolWindowArgs{1, false, 4}, PoolKind::kAvg, false);
  // torch 2.x prints SymInt[2] output_size; the values are the same ints.
  add_adaptive_pool(r, "aten::adaptive_avg_pool2d(Tensor self, int[2] output_size) -> Tensor",
                    "aten::adaptive_avg_pool2d", 2, PoolKind::kAdaptiveAvg);
  add_adaptive_pool(r, "aten::adaptive_avg_pool1d(Tensor self, int[1] output_size) -> Tensor",
                    "aten::adaptive_avg_pool1d", 1, PoolKind::kAdaptiveAvg);
  add_adaptive_pool(r, "aten::adaptive_max_pool2d(Tensor self, int[2] output_size) -> (Tensor, Tensor)",
                    "aten::adaptive_max_pool2d", 2, PoolKind::kAdaptiveMax);
  add_adaptive_pool(r, "aten::adaptive_max_pool1d(Tensor self, int[1] output_size) -> (Tensor, Tensor)",
                    "aten::adaptive_max_pool1d", 1, PoolKind::kAdaptiveMax);
  add_window_pool(r,
                  "aten::max_pool3d(Tensor self, int[3] kernel_size, int[3] stride=[], int[3] padding=0, "
                  "int[3] dilation=1, bool ceil_mode=False) -> Tensor",
                  "aten::max_pool3d", PoolWindowArgs{3, true, 5}, PoolKind::kMax, false);
  add_window_pool(r,
                  "aten::max_pool3d_with_indices(Tensor self, int[3] kernel_size, int[3] stride=[], "
                  "int[3] padding=0, int[3] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)",
                  "aten::max_pool3d_with_indices", PoolWindowArgs{3, true, 5}, PoolKind::kMax, true);
  add_window_pool(r,
                  "aten::avg_pool3d(Tensor self, int[3] kernel_size, int[3] stride=[], int[3] padding=0, "
                  "bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor",
                  "aten::avg_pool3d", PoolWindowArgs{3, false, 4}, PoolKind::kAvg, false);
  add_adaptive_pool(r, "aten::adaptive_avg_pool3d(Tensor self, int[3] output_size) -> Tensor",
                    "aten::adaptive_avg_pool3d", 3, PoolKind::kAdaptiveAvg);
  add_adaptive_pool(r, "aten::adaptive_max_pool3d(Tensor self, int[3] output_size) -> (Tensor, Tensor)",
                    "aten::adaptive_max_pool3d", 3, PoolKind::kAdaptiveMax);
}

}  // namespace convoy::nn
