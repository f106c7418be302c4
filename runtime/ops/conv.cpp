// Convolution: _convolution (the 12- and 13-argument forms torch 1.13 and 2.x trace), convolution,
// _convolution_mode, conv1d/2d/3d (int and "same"/"valid" padding), conv_transpose1d/2d/3d.
// One N-d core (1 to 3 spatial dims, lifted to 3-D with unit leading dims): im2col into a column
// buffer, then the blocked GEMM of nn_kernels.h per group; 1×1 stride-1 convolutions skip im2col.
// Transposed convolution is the GEMM with the weight transposed followed by col2im.
// Argument decoding, checks and output sizes: nn_geometry.h (shared with the OpenCL backend).
#include <algorithm>
#include <array>

#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {
namespace {

// Valid output positions o (0 <= o < out) for which o*stride + offset lands in [0, in).
inline void valid_range(int64_t offset, int64_t stride, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  // lo = ceil(-offset / stride), hi = floor((in - 1 - offset) / stride) + 1, clamped to [0, out].
  auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  lo = std::clamp(-floor_div(offset, stride), int64_t{0}, out);
  hi = std::clamp(floor_div(in - 1 - offset, stride) + 1, lo, out);
}

template <typename T>
void im2col(const T* x, int64_t channels, const ConvGeometry& s, T* col) {
  const int64_t D = s.in[0], H = s.in[1], W = s.in[2];
  const int64_t Do = s.out[0], Ho = s.out[1], Wo = s.out[2];
  const int64_t P = Do * Ho * Wo;
  T* dst = col;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t kz = 0; kz < s.kernel[0]; ++kz) {
      for (int64_t ky = 0; ky < s.kernel[1]; ++ky) {
        for (int64_t kx = 0; kx < s.kernel[2]; ++kx, dst += P) {
          const int64_t ox_offset = kx * s.dilation[2] - s.pad_before[2];
          int64_t ox_lo, ox_hi;
          valid_range(ox_offset, s.stride[2], W, Wo, ox_lo, ox_hi);
          T* row = dst;
          for (int64_t oz = 0; oz < Do; ++oz) {
            const int64_t iz = oz * s.stride[0] - s.pad_before[0] + kz * s.dilation[0];
            for (int64_t oy = 0; oy < Ho; ++oy, row += Wo) {
              const int64_t iy = oy * s.stride[1] - s.pad_before[1] + ky * s.dilation[1];
              if (iz < 0 || iz >= D || iy < 0 || iy >= H) {
                std::fill(row, row + Wo, T(0));
                continue;
              }
              const T* src = x + ((c * D + iz) * H + iy) * W + ox_offset;
              std::fill(row, row + ox_lo, T(0));
              if (s.stride[2] == 1) {
                std::copy(src + ox_lo, src + ox_hi, row + ox_lo);
              } else {
                for (int64_t ox = ox_lo; ox < ox_hi; ++ox) row[ox] = src[ox * s.stride[2]];
              }
              std::fill(row + ox_hi, row + Wo, T(0));
            }
          }
        }
      }
    }
  }
}

// Adds each column-buffer entry into the output position it came from (the adjoint of im2col), for
// transposed convolution: here `s.in` is the transposed conv's output and `s.out` its input.
template <typename T>
void col2im_add(const T* col, int64_t channels, const ConvGeometry& s, T* y) {
  const int64_t D = s.in[0], H = s.in[1], W = s.in[2];        // output of the transposed conv
  const int64_t Di = s.out[0], Hi = s.out[1], Wi = s.out[2];  // its input
  const T* src = col;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t kz = 0; kz < s.kernel[0]; ++kz) {
      for (int64_t ky = 0; ky < s.kernel[1]; ++ky) {
        for (int64_t kx = 0; kx < s.kernel[2]; ++kx) {
          const int64_t ox_offset = kx * s.dilation[2] - s.pad_before[2];
          int64_t ix_lo, ix_hi;
          valid_range(ox_offset, s.stride[2], W, Wi, ix_lo, ix_hi);
          for (int64_t iz = 0; iz < Di; ++iz) {
            const int64_t oz = iz * s.stride[0] - s.pad_before[0] + kz * s.dilation[0];
            for (int64_t iy = 0; iy < Hi; ++iy, src += Wi) {
              const int64_t oy = iy * s.stride[1] - s.pad_before[1] + ky * s.dilation[1];
              if (oz < 0 || oz >= D || oy < 0 || oy >= H) continue;
              T* dst = y + ((c * D + oz) * H + oy) * W + ox_offset;
              for (int64_t ix = ix_lo; ix < ix_hi; ++ix) dst[ix * s.stride[2]] += src[ix];
            }
          }
        }
      }
    }
  }
}

template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, const ConvGeometry& s, T* y) {
  const int64_t G = s.groups;
  const int64_t cin_g = s.in_channels / G, cout_g = s.out_channels / G;
  const int64_t kvol = s.kernel[0] * s.kernel[1] * s.kernel[2];
  const int64_t K = cin_g * kvol;
  const int64_t in_p = s.in[0] * s.in[1] * s.in[2];
  const int64_t P = s.out[0] * s.out[1] * s.out[2];
  bool pointwise = kvol == 1;
  for (size_t d = 0; d < 3; ++d)
    pointwise = pointwise && s.stride[d] == 1 && s.pad_before[d] == 0 && s.pad_after[d] == 0;
  std::vector<T> col(pointwise ? 0 : static_cast<size_t>(K * P));
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const T* xg = x + (n * s.in_channels + g * cin_g) * in_p;
      T* yg = y + (n * s.out_channels + g * cout_g) * P;
      for (int64_t co = 0; co < cout_g; ++co)
        std::fill(yg + co * P, yg + (co + 1) * P, bias ? bias[g * cout_g + co] : T(0));
      const T* b = xg;
      if (!pointwise) {
        im2col(xg, cin_g, s, col.data());
        b = col.data();
      }
      gemm_accumulate<T>(cout_g, P, K, w + g * cout_g * K, K, 1, b, P, yg, P);
    }
  }
}

template <typename T>
void conv_transpose_forward(const T* x, const T* w, const T* bias, const ConvGeometry& s, T* y) {
  const int64_t G = s.groups;
  const int64_t cin_g = s.in_channels / G, cout_g = s.out_channels / G;
  const int64_t kvol = s.kernel[0] * s.kernel[1] * s.kernel[2];
  const int64_t rows = cout_g * kvol;
  const int64_t in_p = s.in[0] * s.in[1] * s.in[2];
  const int64_t out_p = s.out[0] * s.out[1] * s.out[2];
  // col2im's geometry is that of the forward convolution from the output back to the input.
  ConvGeometry back = s;
  back.in = s.out;
  back.out = s.in;
  std::vector<T> col(static_cast<size_t>(rows * in_p));
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const T* xg = x + (n * s.in_channels + g * cin_g) * in_p;
      T* yg = y + (n * s.out_channels + g * cout_g) * out_p;
      std::fill(col.begin(), col.end(), T(0));
      // col[rows, in_p] = w_gᵀ · x_g, with w_g the [cin_g, rows] slice of the weight.
      gemm_accumulate<T>(rows, in_p, cin_g, w + g * cin_g * rows, 1, rows, xg, in_p, col.data(), in_p);
      col2im_add(col.data(), cout_g, back, yg);
      if (bias)
        for (int64_t co = 0; co < cout_g; ++co)
          for (int64_t p = 0; p < out_p; ++p) yg[co * out_p + p] += bias[g * cout_g + co];
    }
  }
}

Tensor convolution(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const std::vector<int64_t>& stride, const std::vector<int64_t>& pad_before,
                   const std::vector<int64_t>& pad_after, const std::vector<int64_t>& dilation,
                   bool transposed, const std::vector<int64_t>& output_padding, int64_t groups) {
  check_same_dtype(op, input, "input", weight, "weight");
  const ConvGeometry s = conv_geometry(op, input.sizes(), weight.sizes(), stride, pad_before, pad_after,
                                       dilation, transposed, output_padding, groups);
  if (bias.defined()) check_same_dtype(op, input, "input", bias, "bias");
  check_conv_bias(op, bias, s, weight);
  const DType compute = float_compute_dtype(input, op, "input");
  Tensor out = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor x = contiguous_as(input, compute);
    Tensor w = contiguous_as(weight, compute);
    Tensor b = bias.defined() ? contiguous_as(bias, compute) : Tensor();
    Tensor y = Tensor::empty(s.output_shape(), compute);
    if (y.numel() == 0 || x.numel() == 0) return y;
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    if (transposed)
      conv_transpose_forward<T>(x.data<T>(), w.data<T>(), bp, s, y.data<T>());
    else
      conv_forward<T>(x.data<T>(), w.data<T>(), bp, s, y.data<T>());
    return y;
  });
  return to_result_dtype(out, input.dtype());
}

// ---- registration ------------------------------------------------------------------------------

Kernel make_kernel(const char* op, ConvArgs c) {
  return [op, c](IValueList& a) -> IValueList {
    const Tensor& input = a[0].to_tensor();
    const Tensor& weight = a[1].to_tensor();
    const Tensor bias = optional_tensor(a[2]);
    const ConvParams p = read_conv_params(op, c, a, weight.sizes());
    return {convolution(op, input, weight, bias, p.stride, p.pad_before, p.pad_after, p.dilation,
                        p.transposed, p.output_padding, p.groups)};
  };
}

InferFn make_infer(const char* op, ConvArgs c) {
  return [op, c](const std::vector<TypePtr>& args,
                 const std::vector<const IValue*>& k) -> std::vector<TypePtr> {
    auto in = known_shape(args, 0), w = known_shape(args, 1);
    auto dtype = known_dtype(args, 0);
    if (!in || !w || w->size() < 3) return tensor_result(dtype, std::nullopt);
    for (size_t i = 1; i < w->size(); ++i)
      if ((*w)[i] < 0) return tensor_result(dtype, std::nullopt);
    const size_t sp = w->size() - 2;
    auto stride = const_ints(k, static_cast<size_t>(c.stride), sp);
    auto dilation = c.dilation >= 0 ? const_ints(k, static_cast<size_t>(c.dilation), sp)
                                    : std::optional<std::vector<int64_t>>(std::vector<int64_t>{1});
    std::optional<bool> transposed = c.fixed_transposed  ? std::optional<bool>(true)
                                     : c.transposed >= 0 ? const_bool(k, static_cast<size_t>(c.transposed))
                                                         : std::optional<bool>(false);
    auto output_padding = c.output_padding >= 0
                              ? const_ints(k, static_cast<size_t>(c.output_padding), sp)
                              : std::optional<std::vector<int64_t>>(std::vector<int64_t>{0});
    auto groups = c.groups >= 0 ? const_int(k, static_cast<size_t>(c.groups)) : std::optional<int64_t>(1);
    std::vector<int64_t> before, after;
    if (!stride || !dilation || !transposed || !output_padding || !groups)
      return tensor_result(dtype, std::nullopt);
    try {
      if (c.string_padding) {
        const size_t pi = static_cast<size_t>(c.padding);
        if (pi >= k.size() || !k[pi] || !k[pi]->is_string()) return tensor_result(dtype, std::nullopt);
        conv_string_padding(op, k[pi]->to_string(), *w, *stride, *dilation, before, after);
      } else {
        auto pad = const_ints(k, static_cast<size_t>(c.padding), sp);
        if (!pad) return tensor_result(dtype, std::nullopt);
        before = after = *pad;
      }
      ConvGeometry s = conv_geometry(op, *in, *w, *stride, before, after, *dilation, *transposed,
                                     *output_padding, *groups);
      return tensor_result(dtype, s.output_shape());
    } catch (const Error&) {
      return tensor_result(dtype, std::nullopt);  // the kernel reports the problem with the real values
    }
  };
}

void add_conv(OpRegistry& r, const char* schema, const char* op, ConvArgs c) {
  r.add(schema, make_kernel(op, c), make_infer(op, c));
}

}  // namespace

void register_conv_ops(OpRegistry& r) {
  for (const ConvOverload& o : conv_overloads()) add_conv(r, o.schema.c_str(), o.op.c_str(), o.args);
}

}  // namespace convoy::nn
