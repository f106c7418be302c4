// Convolution: _convolution (the 12- and 13-argument forms torch 1.13 and 2.x trace), convolution,
// _convolution_mode, conv1d/2d/3d (int and "same"/"valid" padding), conv_transpose1d/2d/3d.
// One N-d core (1 to 3 spatial dims, lifted to 3-D with unit leading dims): im2col into a column
// buffer, then the blocked GEMM of nn_kernels.h per group; 1×1 stride-1 convolutions skip im2col.
// Transposed convolution is the GEMM with the weight transposed followed by col2im.
#include <algorithm>
#include <array>

#include "runtime/ops/nn_kernels.h"

namespace convoy::nn {
namespace {

using Dims3 = std::array<int64_t, 3>;

struct ConvSpec {
  int64_t spatial = 2;  // 1, 2 or 3
  int64_t batch = 1;
  bool batched = true;  // false: the input had no batch dim (PyTorch's unbatched conv)
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  bool transposed = false;
  // Spatial quantities lifted to 3-D: index 3 - spatial .. 2 are the real dims.
  Dims3 in{1, 1, 1}, kernel{1, 1, 1}, out{1, 1, 1};
  Dims3 stride{1, 1, 1}, pad_before{0, 0, 0}, pad_after{0, 0, 0}, dilation{1, 1, 1}, output_padding{0, 0, 0};

  Shape output_shape() const {
    Shape s;
    if (batched) s.push_back(batch);
    s.push_back(out_channels);
    for (int64_t d = 3 - spatial; d < 3; ++d) s.push_back(out[static_cast<size_t>(d)]);
    return s;
  }
};

// Validates shapes and parameters and computes output sizes. Sizes of -1 (unknown, for shape
// inference) propagate to -1 outputs.
ConvSpec make_spec(const char* op, const Shape& input, const Shape& weight, std::vector<int64_t> stride,
                   std::vector<int64_t> pad_before, std::vector<int64_t> pad_after,
                   std::vector<int64_t> dilation, bool transposed, std::vector<int64_t> output_padding,
                   int64_t groups) {
  ConvSpec s;
  CONVOY_CHECK(weight.size() >= 3 && weight.size() <= 5, op, ": weight ", shape_str(weight),
               " must have 3 to 5 dims (1 to 3 spatial dims)");
  s.spatial = static_cast<int64_t>(weight.size()) - 2;
  const size_t sp = static_cast<size_t>(s.spatial);
  CONVOY_CHECK(input.size() == sp + 2 || input.size() == sp + 1, op, ": input ", shape_str(input),
               " must have ", sp + 2, " dims (or ", sp + 1, " without a batch dim) for weight ",
               shape_str(weight));
  s.batched = input.size() == sp + 2;
  s.batch = s.batched ? input[0] : 1;
  s.in_channels = input[s.batched ? 1 : 0];
  CONVOY_CHECK(groups > 0, op, ": groups must be positive, got ", groups);
  s.groups = groups;
  s.transposed = transposed;
  // A single value stands for every spatial dim (PyTorch's expand_param_if_needed).
  auto expand = [&](std::vector<int64_t>& v, const char* name) {
    if (v.size() == 1 && sp > 1) v.assign(sp, v[0]);
    CONVOY_CHECK(v.size() == sp, op, ": ", name, " ", shape_str(v), " must have ", sp, " values for a ", sp,
                 "-d convolution");
  };
  expand(stride, "stride");
  expand(pad_before, "padding");
  expand(pad_after, "padding");
  expand(dilation, "dilation");
  if (transposed) expand(output_padding, "output_padding");
  for (size_t i = 0; i < sp; ++i) {
    const size_t d = 3 - sp + i;
    CONVOY_CHECK(stride[i] > 0, op, ": stride ", shape_str(stride), " must be positive");
    CONVOY_CHECK(dilation[i] > 0, op, ": dilation ", shape_str(dilation), " must be positive");
    CONVOY_CHECK(pad_before[i] >= 0 && pad_after[i] >= 0, op, ": padding ", shape_str(pad_before),
                 " must be non-negative");
    s.stride[d] = stride[i];
    s.pad_before[d] = pad_before[i];
    s.pad_after[d] = pad_after[i];
    s.dilation[d] = dilation[i];
    s.in[d] = input[input.size() - sp + i];
    s.kernel[d] = weight[2 + i];
    if (transposed) {
      CONVOY_CHECK(
          output_padding[i] >= 0 && (output_padding[i] < stride[i] || output_padding[i] < dilation[i]), op,
          ": output_padding ", shape_str(output_padding), " must be smaller than stride ", shape_str(stride),
          " or dilation ", shape_str(dilation));
      s.output_padding[d] = output_padding[i];
    }
  }
  const int64_t w_out = weight[0], w_in = weight[1];
  if (!transposed) {
    CONVOY_CHECK(w_out % groups == 0, op, ": weight ", shape_str(weight), " has ", w_out,
                 " output channels, not divisible by groups=", groups);
    CONVOY_CHECK(s.in_channels == -1 || s.in_channels == w_in * groups, op, ": input ", shape_str(input),
                 " has ", s.in_channels, " channels but weight ", shape_str(weight), " with groups=", groups,
                 " expects ", w_in * groups);
    s.out_channels = w_out;
  } else {
    CONVOY_CHECK(w_out % groups == 0, op, ": transposed weight ", shape_str(weight), " has ", w_out,
                 " input channels, not divisible by groups=", groups);
    CONVOY_CHECK(s.in_channels == -1 || s.in_channels == w_out, op, ": input ", shape_str(input), " has ",
                 s.in_channels, " channels but transposed weight ", shape_str(weight), " expects ", w_out);
    s.out_channels = w_in * groups;
  }
  bool empty = false;
  for (size_t d = 3 - sp; d < 3; ++d) {
    if (s.in[d] < 0) {
      s.out[d] = -1;
      continue;
    }
    const int64_t span = s.dilation[d] * (s.kernel[d] - 1);
    if (!transposed) {
      const int64_t padded = s.in[d] + s.pad_before[d] + s.pad_after[d];
      s.out[d] = padded - span - 1 < 0 ? 0 : (padded - span - 1) / s.stride[d] + 1;
    } else {
      s.out[d] =
          (s.in[d] - 1) * s.stride[d] - s.pad_before[d] - s.pad_after[d] + span + s.output_padding[d] + 1;
    }
    if (s.out[d] <= 0) empty = true;
  }
  if (empty) {
    std::vector<int64_t> spatial_out;
    for (size_t d = 3 - sp; d < 3; ++d) spatial_out.push_back(s.out[d]);
    fail(ErrorKind::kInvalidInput, op, ": input ", shape_str(input), " is too small for weight ",
         shape_str(weight), " with stride ", shape_str(stride), ", padding ", shape_str(pad_before),
         ", dilation ", shape_str(dilation), ": the output size would be ", shape_str(spatial_out));
  }
  return s;
}

// Valid output positions o (0 <= o < out) for which o*stride + offset lands in [0, in).
inline void valid_range(int64_t offset, int64_t stride, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  // lo = ceil(-offset / stride), hi = floor((in - 1 - offset) / stride) + 1, clamped to [0, out].
  auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  lo = std::clamp(-floor_div(offset, stride), int64_t{0}, out);
  hi = std::clamp(floor_div(in - 1 - offset, stride) + 1, lo, out);
}

template <typename T>
void im2col(const T* x, int64_t channels, const ConvSpec& s, T* col) {
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
void col2im_add(const T* col, int64_t channels, const ConvSpec& s, T* y) {
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
void conv_forward(const T* x, const T* w, const T* bias, const ConvSpec& s, T* y) {
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
void conv_transpose_forward(const T* x, const T* w, const T* bias, const ConvSpec& s, T* y) {
  const int64_t G = s.groups;
  const int64_t cin_g = s.in_channels / G, cout_g = s.out_channels / G;
  const int64_t kvol = s.kernel[0] * s.kernel[1] * s.kernel[2];
  const int64_t rows = cout_g * kvol;
  const int64_t in_p = s.in[0] * s.in[1] * s.in[2];
  const int64_t out_p = s.out[0] * s.out[1] * s.out[2];
  // col2im's geometry is that of the forward convolution from the output back to the input.
  ConvSpec back = s;
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
  const ConvSpec s = make_spec(op, input.sizes(), weight.sizes(), stride, pad_before, pad_after, dilation,
                               transposed, output_padding, groups);
  if (bias.defined()) {
    check_same_dtype(op, input, "input", bias, "bias");
    CONVOY_CHECK(bias.dim() == 1 && bias.size(0) == s.out_channels, op, ": bias ", bias.describe(),
                 " must be [", s.out_channels, "] for weight ", weight.describe());
  }
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

// "same" splits the total padding dilation·(k−1) with the odd element after, as PyTorch does.
void string_padding(const char* op, const std::string& mode, const Shape& weight,
                    const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation,
                    std::vector<int64_t>& before, std::vector<int64_t>& after) {
  const size_t sp = weight.size() >= 2 ? weight.size() - 2 : 0;
  before.assign(sp, 0);
  after.assign(sp, 0);
  if (mode == "valid") return;
  CONVOY_CHECK(mode == "same", op, ": padding must be \"same\" or \"valid\", got \"", mode, "\"");
  for (size_t i = 0; i < sp; ++i) {
    const int64_t st = stride.size() == 1 ? stride[0] : stride.at(i);
    const int64_t dil = dilation.size() == 1 ? dilation[0] : dilation.at(i);
    CONVOY_CHECK(st == 1, op, ": padding=\"same\" is not supported for strided convolutions (stride ",
                 shape_str(stride), ")");
    const int64_t total = dil * (weight[2 + i] - 1);
    before[i] = total / 2;
    after[i] = total - before[i];
  }
}

// ---- registration ------------------------------------------------------------------------------

// Argument positions of one schema family.
struct ConvArgs {
  int stride, padding, dilation, transposed, output_padding, groups;  // -1: absent
  bool string_padding = false;
  bool fixed_transposed = false;  // conv_transposeNd: transposed without an argument for it
  size_t spatial = 0;             // 0: taken from the weight's rank
};

std::vector<int64_t> list_or_expand(const IValue& v, size_t spatial, const char* op, const char* name) {
  if (spatial == 0) return v.is_int() ? std::vector<int64_t>{v.to_int()} : v.to_int_list();
  return int_list_arg(v, spatial, op, name);
}

Kernel make_kernel(const char* op, ConvArgs c) {
  return [op, c](IValueList& a) -> IValueList {
    const Tensor& input = a[0].to_tensor();
    const Tensor& weight = a[1].to_tensor();
    const Tensor bias = optional_tensor(a[2]);
    const std::vector<int64_t> stride = list_or_expand(a[c.stride], c.spatial, op, "stride");
    const std::vector<int64_t> dilation =
        c.dilation >= 0 ? list_or_expand(a[c.dilation], c.spatial, op, "dilation") : std::vector<int64_t>{1};
    std::vector<int64_t> before, after;
    if (c.string_padding) {
      string_padding(op, a[c.padding].to_string(), weight.sizes(), stride, dilation, before, after);
    } else {
      before = after = list_or_expand(a[c.padding], c.spatial, op, "padding");
    }
    const bool transposed = c.fixed_transposed || (c.transposed >= 0 && a[c.transposed].to_bool());
    std::vector<int64_t> output_padding{0};
    if (c.output_padding >= 0)
      output_padding = list_or_expand(a[c.output_padding], c.spatial, op, "output_padding");
    const int64_t groups = c.groups >= 0 ? a[c.groups].to_int() : 1;
    if (c.spatial != 0)
      CONVOY_CHECK(weight.dim() == static_cast<int64_t>(c.spatial) + 2, op, ": weight ", weight.describe(),
                   " must have ", c.spatial + 2, " dims");
    return {convolution(op, input, weight, bias, stride, before, after, dilation, transposed, output_padding,
                        groups)};
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
        string_padding(op, k[pi]->to_string(), *w, *stride, *dilation, before, after);
      } else {
        auto pad = const_ints(k, static_cast<size_t>(c.padding), sp);
        if (!pad) return tensor_result(dtype, std::nullopt);
        before = after = *pad;
      }
      ConvSpec s =
          make_spec(op, *in, *w, *stride, before, after, *dilation, *transposed, *output_padding, *groups);
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
  const ConvArgs full{3, 4, 5, 6, 7, 8};
  // torch 1.13 and 2.x trace the 13-argument form; the 12-argument one (without allow_tf32) is what
  // older archives hold. torch 2.x prints SymInt[] where 1.13 prints int[]: the same values.
  add_conv(
      r,
      "aten::_convolution.deprecated(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, "
      "int[] dilation, bool transposed, int[] output_padding, int groups, bool benchmark, bool "
      "deterministic, "
      "bool cudnn_enabled) -> Tensor",
      "aten::_convolution", full);
  add_conv(r,
           "aten::_convolution(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, "
           "int[] dilation, bool transposed, int[] output_padding, int groups, bool benchmark, bool "
           "deterministic, "
           "bool cudnn_enabled, bool allow_tf32) -> Tensor",
           "aten::_convolution", full);
  add_conv(r,
           "aten::convolution(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, "
           "int[] dilation, bool transposed, int[] output_padding, int groups) -> Tensor",
           "aten::convolution", full);
  add_conv(r,
           "aten::_convolution_mode(Tensor input, Tensor weight, Tensor? bias, int[] stride, str padding, "
           "int[] dilation, int groups) -> Tensor",
           "aten::_convolution_mode", ConvArgs{3, 4, 5, -1, -1, 6, true});

  add_conv(
      r,
      "aten::conv1d(Tensor input, Tensor weight, Tensor? bias=None, int[1] stride=[1], int[1] padding=[0], "
      "int[1] dilation=[1], int groups=1) -> Tensor",
      "aten::conv1d", ConvArgs{3, 4, 5, -1, -1, 6, false, false, 1});
  add_conv(r,
           "aten::conv1d.padding(Tensor input, Tensor weight, Tensor? bias=None, int[1] stride=[1], "
           "str padding=\"valid\", int[1] dilation=[1], int groups=1) -> Tensor",
           "aten::conv1d", ConvArgs{3, 4, 5, -1, -1, 6, true, false, 1});
  add_conv(r,
           "aten::conv2d(Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=1, int[2] padding=0, "
           "int[2] dilation=1, int groups=1) -> Tensor",
           "aten::conv2d", ConvArgs{3, 4, 5, -1, -1, 6, false, false, 2});
  add_conv(r,
           "aten::conv2d.padding(Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=1, "
           "str padding=\"valid\", int[2] dilation=1, int groups=1) -> Tensor",
           "aten::conv2d", ConvArgs{3, 4, 5, -1, -1, 6, true, false, 2});
  add_conv(r,
           "aten::conv3d(Tensor input, Tensor weight, Tensor? bias=None, int[3] stride=1, int[3] padding=0, "
           "int[3] dilation=1, int groups=1) -> Tensor",
           "aten::conv3d", ConvArgs{3, 4, 5, -1, -1, 6, false, false, 3});
  add_conv(r,
           "aten::conv3d.padding(Tensor input, Tensor weight, Tensor? bias=None, int[3] stride=1, "
           "str padding=\"valid\", int[3] dilation=1, int groups=1) -> Tensor",
           "aten::conv3d", ConvArgs{3, 4, 5, -1, -1, 6, true, false, 3});

  add_conv(r,
           "aten::conv_transpose1d(Tensor input, Tensor weight, Tensor? bias=None, int[1] stride=[1], "
           "int[1] padding=[0], int[1] output_padding=[0], int groups=1, int[1] dilation=[1]) -> Tensor",
           "aten::conv_transpose1d", ConvArgs{3, 4, 7, -1, 5, 6, false, true, 1});
  add_conv(r,
           "aten::conv_transpose2d.input(Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=1, "
           "int[2] padding=0, int[2] output_padding=0, int groups=1, int[2] dilation=1) -> Tensor",
           "aten::conv_transpose2d", ConvArgs{3, 4, 7, -1, 5, 6, false, true, 2});
  add_conv(r,
           "aten::conv_transpose3d.input(Tensor input, Tensor weight, Tensor? bias=None, int[3] stride=1, "
           "int[3] padding=0, int[3] output_padding=0, int groups=1, int[3] dilation=1) -> Tensor",
           "aten::conv_transpose3d", ConvArgs{3, 4, 7, -1, 5, 6, false, true, 3});
}

}  // namespace convoy::nn
