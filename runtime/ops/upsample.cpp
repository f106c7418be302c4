// Interpolation: the ops of upsample.h, their argument decoding, source taps and reference kernels.
// Nearest modes gather elements of any dtype; linear and cubic compute in float (double for float64)
// and return the input's dtype. Each output is Σ_a w_a · (Σ_b w_b · (Σ_c w_c · x)) over the taps of
// the three lifted dims, outermost first, which is PyTorch's order of the sums.
#include "runtime/ops/upsample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {

const std::vector<UpsampleOp>& upsample_ops() {
  static const std::vector<UpsampleOp> kOps = {
      {"aten::upsample_nearest1d", 1, UpsampleMode::kNearest},
      {"aten::upsample_nearest2d", 2, UpsampleMode::kNearest},
      {"aten::upsample_nearest3d", 3, UpsampleMode::kNearest},
      {"aten::_upsample_nearest_exact1d", 1, UpsampleMode::kNearestExact},
      {"aten::_upsample_nearest_exact2d", 2, UpsampleMode::kNearestExact},
      {"aten::_upsample_nearest_exact3d", 3, UpsampleMode::kNearestExact},
      {"aten::upsample_linear1d", 1, UpsampleMode::kLinear},
      {"aten::upsample_bilinear2d", 2, UpsampleMode::kLinear},
      {"aten::upsample_trilinear3d", 3, UpsampleMode::kLinear},
      {"aten::upsample_bicubic2d", 2, UpsampleMode::kCubic},
  };
  return kOps;
}

int64_t UpsampleGeometry::planes() const { return shape_numel(lead); }

Shape UpsampleGeometry::output_shape() const {
  Shape s = lead;
  for (int64_t d = 3 - spatial; d < 3; ++d) s.push_back(out[d]);
  return s;
}

namespace {

// Where the output size and the scales sit in each overload's arguments.
size_t size_position() { return 1; }
size_t scales_position(const UpsampleOp& op) { return op.has_align_corners() ? 3 : 2; }

std::string sizes_text(const char* what, const int64_t* v, int64_t n) {
  static const char* const kNames[] = {"D", "H", "W"};
  std::string s = std::string(what) + " (";
  for (int64_t i = 0; i < n; ++i)
    s += std::string(i ? ", " : "") + kNames[3 - n + i] + ": " + std::to_string(v[i]);
  return s + ")";
}

// The call's output sizes and per-dim scales before the lifting; `args[i]` null means unknown.
struct RawCall {
  std::vector<int64_t> out;
  std::vector<std::optional<double>> scales;
  bool align_corners = false;
};

std::optional<RawCall> read_raw(const UpsampleOp& op, bool vec, const Shape& input,
                                const std::vector<const IValue*>& args, bool throw_errors) {
  const size_t n = static_cast<size_t>(op.spatial);
  auto reject = [&](auto&&... message) -> std::optional<RawCall> {
    if (throw_errors) fail(ErrorKind::kInvalidInput, op.name, vec ? ".vec" : "", ": ", message...);
    return std::nullopt;
  };
  if (input.size() != n + 2)
    return reject("expected a ", n + 2, "-d input (N, C", n == 3 ? ", D" : "", n >= 2 ? ", H" : "",
                  ", W), got a tensor with sizes ", shape_str(input));
  RawCall call;
  const size_t sp = scales_position(op);
  if (op.has_align_corners()) {
    if (args.size() <= 2 || !args[2] || !args[2]->is_bool()) return std::nullopt;
    call.align_corners = args[2]->to_bool();
  }
  if (args.size() <= sp || !args[size_position()]) return std::nullopt;
  const IValue& size = *args[size_position()];
  if (!vec) {
    if (size.is_none()) return reject("output_size must be given");
    call.out = size.is_int() ? std::vector<int64_t>(n, size.to_int()) : size.to_int_list();
    if (call.out.size() != n) return reject("output_size must have ", n, " values, got ", size.repr());
    for (size_t i = 0; i < n; ++i) {
      if (args.size() <= sp + i || !args[sp + i]) return std::nullopt;
      call.scales.push_back(args[sp + i]->is_none() ? std::nullopt
                                                    : std::optional<double>(args[sp + i]->to_double()));
    }
    return call;
  }
  if (!args[sp]) return std::nullopt;
  const IValue& factors = *args[sp];
  if (size.is_none() == factors.is_none())
    return reject("must specify exactly one of output_size and scale_factors");
  call.scales.assign(n, std::nullopt);
  if (!size.is_none()) {
    call.out = size.to_int_list();
    if (call.out.size() != n) return reject("output_size must have ", n, " values, got ", size.repr());
    return call;
  }
  std::vector<double> f = factors.to_double_list();
  if (f.size() != n) return reject("scale_factors must have ", n, " values, got ", factors.repr());
  for (size_t i = 0; i < n; ++i) {
    const int64_t in = input[2 + i];
    if (in < 0) return std::nullopt;  // unknown (inference)
    // PyTorch converts in · factor to int64, truncating.
    call.out.push_back(static_cast<int64_t>(static_cast<double>(in) * f[i]));
    call.scales[i] = f[i];
  }
  return call;
}

std::optional<UpsampleGeometry> build(const UpsampleOp& op, bool vec, const Shape& input,
                                      const std::vector<const IValue*>& args, bool throw_errors) {
  std::optional<RawCall> call = read_raw(op, vec, input, args, throw_errors);
  if (!call) return std::nullopt;
  UpsampleGeometry g;
  g.spatial = op.spatial;
  g.mode = op.mode;
  g.align_corners = call->align_corners;
  g.lead = {input[0], input[1]};
  const int64_t first = 3 - op.spatial;
  bool positive = true, known = true;
  for (int64_t i = 0; i < op.spatial; ++i) {
    g.in[first + i] = input[static_cast<size_t>(2 + i)];
    g.out[first + i] = call->out[static_cast<size_t>(i)];
    g.scales[first + i] = call->scales[static_cast<size_t>(i)];
    known = known && g.in[first + i] >= 0;
    positive = positive && g.in[first + i] > 0 && g.out[first + i] > 0;
  }
  if (known && !positive) {
    if (!throw_errors) return std::nullopt;
    fail(ErrorKind::kInvalidInput, op.name, vec ? ".vec" : "",
         ": input and output sizes should be greater than 0, but got ",
         sizes_text("input", g.in + first, op.spatial), " output ",
         sizes_text("output", g.out + first, op.spatial));
  }
  return g;
}

}  // namespace

UpsampleGeometry read_upsample(const UpsampleOp& op, bool vec, const Shape& input, const IValueList& args) {
  std::vector<const IValue*> ptrs;
  for (const IValue& a : args) ptrs.push_back(&a);
  std::optional<UpsampleGeometry> g = build(op, vec, input, ptrs, true);
  CONVOY_CHECK(g.has_value(), op.name, vec ? ".vec" : "", ": bad arguments");
  return *g;
}

std::optional<Shape> infer_upsample_shape(const UpsampleOp& op, bool vec, const Shape& input,
                                          const std::vector<const IValue*>& constants) {
  std::optional<UpsampleGeometry> g;
  try {
    g = build(op, vec, input, constants, false);
  } catch (const Error&) {
    return std::nullopt;  // a malformed constant: the kernel reports it
  }
  if (!g) return std::nullopt;
  return g->output_shape();
}

// ---- source taps (ATen/native/UpSample.h's semantics) ----------------------------------------------

namespace {

// A given scale s > 0 steps 1/s input pixels per output pixel; otherwise in/out.
template <typename T>
T scale_from(const std::optional<double>& scale, int64_t in, int64_t out) {
  if (scale && *scale > 0) return static_cast<T>(1.0 / *scale);
  return static_cast<T>(in) / static_cast<T>(out);
}

template <typename T>
T linear_scale(int64_t in, int64_t out, bool align_corners, const std::optional<double>& scale) {
  if (align_corners) return out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  return scale_from<T>(scale, in, out);
}

template <typename T>
T source_position(T scale, int64_t o, bool align_corners, bool cubic) {
  if (align_corners) return scale * static_cast<T>(o);
  const T src = scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
  return !cubic && src < T(0) ? T(0) : src;
}

int64_t nearest_source(int64_t o, int64_t in, int64_t out, const std::optional<double>& scale) {
  if (out == in) return o;
  if (out == 2 * in) return o >> 1;
  const float s = scale_from<float>(scale, in, out);
  return std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * s)), in - 1);
}

int64_t nearest_exact_source(int64_t o, int64_t in, int64_t out, const std::optional<double>& scale) {
  const float s = scale_from<float>(scale, in, out);
  // (o + 0.5) · s is formed in double and rounded to float before the floor, as PyTorch's floorf does.
  const float pos = static_cast<float>((static_cast<double>(o) + 0.5) * static_cast<double>(s));
  return std::min(static_cast<int64_t>(std::floor(pos)), in - 1);
}

// Keys' cubic convolution weights with A = -0.75 for the taps at offsets -1, 0, 1, 2 from floor.
template <typename T>
void cubic_weights(T t, T* w) {
  const T A = T(-0.75);
  auto near = [A](T x) { return ((A + T(2)) * x - (A + T(3))) * x * x + T(1); };       // |x| <= 1
  auto far = [A](T x) { return ((A * x - T(5) * A) * x + T(8) * A) * x - T(4) * A; };  // 1 < |x| < 2
  w[0] = far(t + T(1));
  w[1] = near(t);
  w[2] = near(T(1) - t);
  w[3] = far(T(2) - t);
}

}  // namespace

template <typename T>
UpsampleTaps<T> upsample_taps(const UpsampleGeometry& g, int dim) {
  const int64_t in = g.in[dim], out = g.out[dim];
  const std::optional<double>& scale = g.scales[dim];
  UpsampleTaps<T> t;
  const bool lifted = dim < 3 - g.spatial;
  t.taps = lifted || g.mode == UpsampleMode::kNearest || g.mode == UpsampleMode::kNearestExact ? 1
           : g.mode == UpsampleMode::kLinear                                                   ? 2
                                                                                               : 4;
  t.index.resize(static_cast<size_t>(out * t.taps));
  t.weight.assign(static_cast<size_t>(out * t.taps), T(1));
  for (int64_t o = 0; o < out; ++o) {
    int64_t* idx = &t.index[static_cast<size_t>(o * t.taps)];
    T* w = &t.weight[static_cast<size_t>(o * t.taps)];
    if (lifted) {
      idx[0] = 0;
      continue;
    }
    switch (g.mode) {
      case UpsampleMode::kNearest:
        idx[0] = nearest_source(o, in, out, scale);
        break;
      case UpsampleMode::kNearestExact:
        idx[0] = nearest_exact_source(o, in, out, scale);
        break;
      case UpsampleMode::kLinear: {
        if (out == in) {  // PyTorch copies, whatever the scale
          idx[0] = idx[1] = o;
          w[0] = T(1);
          w[1] = T(0);
          break;
        }
        const T pos =
            source_position<T>(linear_scale<T>(in, out, g.align_corners, scale), o, g.align_corners, false);
        const int64_t i0 = static_cast<int64_t>(pos);
        idx[0] = i0;
        idx[1] = i0 + (i0 < in - 1 ? 1 : 0);
        const T l1 = std::min(std::max(pos - static_cast<T>(i0), T(0)), T(1));
        w[0] = T(1) - l1;
        w[1] = l1;
        break;
      }
      case UpsampleMode::kCubic: {
        const T pos =
            source_position<T>(linear_scale<T>(in, out, g.align_corners, scale), o, g.align_corners, true);
        const int64_t i0 = static_cast<int64_t>(std::floor(pos));
        cubic_weights<T>(pos - static_cast<T>(i0), w);
        for (int64_t j = 0; j < 4; ++j) idx[j] = std::clamp<int64_t>(i0 - 1 + j, 0, in - 1);
        break;
      }
    }
  }
  return t;
}

template UpsampleTaps<float> upsample_taps<float>(const UpsampleGeometry&, int);
template UpsampleTaps<double> upsample_taps<double>(const UpsampleGeometry&, int);

// ---- reference kernels -------------------------------------------------------------------------

namespace {

// Nearest: a gather of whole elements, any dtype.
Tensor nearest_gather(const Tensor& input, const UpsampleGeometry& g) {
  Tensor x = input.contiguous();
  Tensor y = Tensor::empty(g.output_shape(), input.dtype());
  if (y.numel() == 0) return y;
  UpsampleTaps<float> t[3] = {upsample_taps<float>(g, 0), upsample_taps<float>(g, 1),
                              upsample_taps<float>(g, 2)};
  const size_t es = input.element_size();
  const auto* src = static_cast<const uint8_t*>(x.raw_data());
  auto* dst = static_cast<uint8_t*>(y.raw_data());
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
  int64_t o = 0;
  for (int64_t p = 0; p < g.planes(); ++p)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          const int64_t i =
              p * in_plane + (t[0].index[od] * g.in[1] + t[1].index[oh]) * g.in[2] + t[2].index[ow];
          std::memcpy(dst + static_cast<size_t>(o) * es, src + static_cast<size_t>(i) * es, es);
        }
  return y;
}

template <typename T>
void interpolate_planes(const T* x, const UpsampleGeometry& g, T* y) {
  const UpsampleTaps<T> t[3] = {upsample_taps<T>(g, 0), upsample_taps<T>(g, 1), upsample_taps<T>(g, 2)};
  const int64_t kd = t[0].taps, kh = t[1].taps, kw = t[2].taps;
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2];
  int64_t o = 0;
  for (int64_t p = 0; p < g.planes(); ++p) {
    const T* plane = x + p * in_plane;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          T acc = 0;
          for (int64_t a = 0; a < kd; ++a) {
            const T* slab = plane + t[0].index[od * kd + a] * g.in[1] * g.in[2];
            T acc_h = 0;
            for (int64_t b = 0; b < kh; ++b) {
              const T* row = slab + t[1].index[oh * kh + b] * g.in[2];
              T acc_w = 0;
              for (int64_t c = 0; c < kw; ++c)
                acc_w += t[2].weight[ow * kw + c] * row[t[2].index[ow * kw + c]];
              acc_h += t[1].weight[oh * kh + b] * acc_w;
            }
            acc += t[0].weight[od * kd + a] * acc_h;
          }
          y[o] = acc;
        }
  }
}

Tensor upsample_forward(const UpsampleOp& op, bool vec, IValueList& a) {
  const Tensor& input = a[0].to_tensor();
  const UpsampleGeometry g = read_upsample(op, vec, input.sizes(), a);
  if (op.mode == UpsampleMode::kNearest || op.mode == UpsampleMode::kNearestExact)
    return nearest_gather(input, g);
  const DType compute = float_compute_dtype(input, op.name, "input");
  Tensor y = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor x = contiguous_as(input, compute);
    Tensor out = Tensor::empty(g.output_shape(), compute);
    if (out.numel() > 0) interpolate_planes<T>(x.data<T>(), g, out.data<T>());
    return out;
  });
  return to_result_dtype(y, input.dtype());
}

std::string schema_of(const UpsampleOp& op, bool vec) {
  const std::string align = op.has_align_corners() ? "bool align_corners, " : "";
  if (vec)
    return std::string(op.name) + ".vec(Tensor input, int[]? output_size, " + align +
           "float[]? scale_factors) -> Tensor";
  static const char* const kScales[4] = {"", "float? scales=None",
                                         "float? scales_h=None, float? scales_w=None",
                                         "float? scales_d=None, float? scales_h=None, float? scales_w=None"};
  return std::string(op.name) + "(Tensor self, int[" + std::to_string(op.spatial) + "] output_size, " +
         align + kScales[op.spatial] + ") -> Tensor";
}

}  // namespace

void register_upsample_ops(OpRegistry& r) {
  for (const UpsampleOp& op : upsample_ops()) {
    for (bool vec : {false, true}) {
      r.add(
          schema_of(op, vec),
          [op, vec](IValueList& a) -> IValueList { return {upsample_forward(op, vec, a)}; },
          [op, vec](const std::vector<TypePtr>& args, const std::vector<const IValue*>& k) {
            std::optional<Shape> shape;
            if (auto in = known_shape(args, 0)) shape = infer_upsample_shape(op, vec, *in, k);
            return tensor_result(known_dtype(args, 0), shape);
          });
    }
  }
}

}  // namespace convoy::nn
