// See nn_geometry.h. The messages here are the reference kernels' (the tests check them).
#include "runtime/ops/nn_geometry.h"

#include "runtime/error.h"

namespace convoy::nn {

// ---- convolution -------------------------------------------------------------------------------

Shape ConvGeometry::output_shape() const {
  Shape s;
  if (batched) s.push_back(batch);
  s.push_back(out_channels);
  for (int64_t d = 3 - spatial; d < 3; ++d) s.push_back(out[static_cast<size_t>(d)]);
  return s;
}

ConvGeometry conv_geometry(std::string_view op, const Shape& input, const Shape& weight,
                           std::vector<int64_t> stride, std::vector<int64_t> pad_before,
                           std::vector<int64_t> pad_after, std::vector<int64_t> dilation, bool transposed,
                           std::vector<int64_t> output_padding, int64_t groups) {
  ConvGeometry s;
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

void conv_string_padding(std::string_view op, const std::string& mode, const Shape& weight,
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

namespace {

// conv1d/2d/3d, their "same"/"valid" padding forms and conv_transpose1d/2d/3d, as torch traces them:
// conv1d's defaults are one-element lists, conv2d/3d's plain ints.
void add_nd_overloads(std::vector<ConvOverload>& out, std::vector<ConvOverload>& transposes, int n) {
  const std::string nd = str_cat(n, "d"), ints = str_cat("int[", n, "] ");
  const bool lists = n == 1;
  const std::string one = lists ? "[1]" : "1", zero = lists ? "[0]" : "0";
  const size_t spatial = static_cast<size_t>(n);
  const std::string conv = "aten::conv" + nd;
  const std::string head =
      "(Tensor input, Tensor weight, Tensor? bias=None, " + ints + "stride=" + one + ", ";
  const std::string tail = ints + "dilation=" + one + ", int groups=1) -> Tensor";
  out.push_back({conv, conv, conv + head + ints + "padding=" + zero + ", " + tail,
                 ConvArgs{3, 4, 5, -1, -1, 6, false, false, spatial}});
  out.push_back({conv + ".padding", conv, conv + ".padding" + head + "str padding=\"valid\", " + tail,
                 ConvArgs{3, 4, 5, -1, -1, 6, true, false, spatial}});
  const std::string transpose = "aten::conv_transpose" + nd;
  const std::string name = lists ? transpose : transpose + ".input";
  transposes.push_back({name, transpose,
                        name + head + ints + "padding=" + zero + ", " + ints + "output_padding=" + zero +
                            ", int groups=1, " + ints + "dilation=" + one + ") -> Tensor",
                        ConvArgs{3, 4, 7, -1, 5, 6, false, true, spatial}});
}

std::vector<ConvOverload> make_conv_overloads() {
  const ConvArgs full{3, 4, 5, 6, 7, 8};
  const std::string args =
      "(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, bool "
      "transposed, "
      "int[] output_padding, int groups";
  // torch 1.13 and 2.x trace the 13-argument form; the 12-argument one (without allow_tf32) is what
  // older archives hold. torch 2.x prints SymInt[] where 1.13 prints int[]: the same values.
  std::vector<ConvOverload> out = {
      {"aten::_convolution.deprecated", "aten::_convolution",
       "aten::_convolution.deprecated" + args +
           ", bool benchmark, bool deterministic, bool cudnn_enabled) -> Tensor",
       full},
      {"aten::_convolution", "aten::_convolution",
       "aten::_convolution" + args +
           ", bool benchmark, bool deterministic, bool cudnn_enabled, bool allow_tf32) -> Tensor",
       full},
      {"aten::convolution", "aten::convolution", "aten::convolution" + args + ") -> Tensor", full},
      {"aten::_convolution_mode", "aten::_convolution_mode",
       "aten::_convolution_mode(Tensor input, Tensor weight, Tensor? bias, int[] stride, str padding, "
       "int[] dilation, int groups) -> Tensor",
       ConvArgs{3, 4, 5, -1, -1, 6, true}},
  };
  std::vector<ConvOverload> transposes;
  for (int n = 1; n <= 3; ++n) add_nd_overloads(out, transposes, n);
  out.insert(out.end(), transposes.begin(), transposes.end());
  return out;
}

}  // namespace

const std::vector<ConvOverload>& conv_overloads() {
  static const std::vector<ConvOverload> kOverloads = make_conv_overloads();
  return kOverloads;
}

namespace {

// An int-list argument: as given for a rank-generic overload (spatial 0), else repeated to `spatial`
// entries from one int or a one-element list, any other length being an error.
std::vector<int64_t> conv_int_list(const IValue& v, size_t spatial, std::string_view op, const char* name) {
  if (v.is_int()) return std::vector<int64_t>(spatial == 0 ? 1 : spatial, v.to_int());
  std::vector<int64_t> values = v.to_int_list();
  if (spatial == 0) return values;
  if (values.size() == 1 && spatial > 1) return std::vector<int64_t>(spatial, values[0]);
  CONVOY_CHECK(values.size() == spatial, op, ": ", name, " must have ", spatial, " values, got ", v.repr());
  return values;
}

}  // namespace

ConvParams read_conv_params(std::string_view op, const ConvArgs& c, const IValueList& a,
                            const Shape& weight) {
  auto at = [&](int i) -> const IValue& { return a[static_cast<size_t>(i)]; };
  ConvParams p;
  p.stride = conv_int_list(at(c.stride), c.spatial, op, "stride");
  p.dilation =
      c.dilation >= 0 ? conv_int_list(at(c.dilation), c.spatial, op, "dilation") : std::vector<int64_t>{1};
  if (c.string_padding)
    conv_string_padding(op, at(c.padding).to_string(), weight, p.stride, p.dilation, p.pad_before,
                        p.pad_after);
  else
    p.pad_before = p.pad_after = conv_int_list(at(c.padding), c.spatial, op, "padding");
  p.transposed = c.fixed_transposed || (c.transposed >= 0 && at(c.transposed).to_bool());
  p.output_padding = {0};
  if (c.output_padding >= 0)
    p.output_padding = conv_int_list(at(c.output_padding), c.spatial, op, "output_padding");
  p.groups = c.groups >= 0 ? at(c.groups).to_int() : 1;
  if (c.spatial != 0)
    CONVOY_CHECK(weight.size() == c.spatial + 2, op, ": weight ", shape_str(weight), " must have ",
                 c.spatial + 2, " dims");
  return p;
}

ConvGeometry read_conv_geometry(std::string_view op, const ConvArgs& c, const IValueList& args,
                                const Shape& input, const Shape& weight) {
  ConvParams p = read_conv_params(op, c, args, weight);
  return conv_geometry(op, input, weight, std::move(p.stride), std::move(p.pad_before),
                       std::move(p.pad_after), std::move(p.dilation), p.transposed,
                       std::move(p.output_padding), p.groups);
}

void check_conv_bias(std::string_view op, const Tensor& bias, const ConvGeometry& g, const Tensor& weight) {
  if (!bias.defined()) return;
  CONVOY_CHECK(bias.dim() == 1 && bias.size(0) == g.out_channels, op, ": bias ", bias.describe(),
               " must be [", g.out_channels, "] for weight ", weight.describe());
}

// ---- pooling -----------------------------------------------------------------------------------

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void check_pool_rank(std::string_view op, const Shape& in, size_t sp) {
  CONVOY_CHECK(in.size() == sp + 1 || in.size() == sp + 2, op, ": input ", shape_str(in), " must have ",
               sp + 1, " or ", sp + 2, " dims");
}

PoolGeometry pool_lead(const Shape& in, int64_t spatial) {
  PoolGeometry s;
  s.lead.assign(in.begin(), in.end() - spatial);
  s.planes = 1;
  for (int64_t d : s.lead) s.planes = (d < 0 || s.planes < 0) ? -1 : s.planes * d;
  return s;
}

}  // namespace

int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode) {
  int64_t out =
      floor_div(in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

Shape PoolGeometry::output_shape(int64_t spatial) const {
  Shape s = lead;
  if (spatial == 3) s.push_back(Do);
  if (spatial >= 2) s.push_back(Ho);
  s.push_back(Wo);
  return s;
}

namespace {

// The lifted dims of a pooling geometry as (D, H, W) triples, so that one loop fills the real ones.
struct PoolDims {
  std::array<int64_t*, 3> in, out, kernel, stride, pad, dilation;
  explicit PoolDims(PoolGeometry& s)
      : in{&s.D, &s.H, &s.W},
        out{&s.Do, &s.Ho, &s.Wo},
        kernel{&s.kd, &s.kh, &s.kw},
        stride{&s.sd, &s.sh, &s.sw},
        pad{&s.pd, &s.ph, &s.pw},
        dilation{&s.dd, &s.dh, &s.dw} {}
};

// The real (not lifted) output sizes, for messages.
Shape pool_spatial_out(const PoolGeometry& s, size_t sp) {
  const Shape all{s.Do, s.Ho, s.Wo};
  return Shape(all.end() - static_cast<std::ptrdiff_t>(sp), all.end());
}

}  // namespace

PoolGeometry pool_window_geometry(std::string_view op, const Shape& in, int64_t spatial,
                                  std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                  std::vector<int64_t> padding, std::vector<int64_t> dilation,
                                  bool ceil_mode) {
  const size_t sp = static_cast<size_t>(spatial);
  check_pool_rank(op, in, sp);
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
  PoolGeometry s = pool_lead(in, spatial);
  PoolDims dims(s);
  bool too_small = false;
  for (size_t i = 0; i < sp; ++i) {
    const size_t d = 3 - sp + i;
    const int64_t size = in[in.size() - sp + i];
    *dims.in[d] = size;
    *dims.kernel[d] = kernel[i];
    *dims.stride[d] = stride[i];
    *dims.pad[d] = padding[i];
    *dims.dilation[d] = dilation[i];
    *dims.out[d] =
        size < 0 ? -1 : pooled_size(size, kernel[i], padding[i], stride[i], dilation[i], ceil_mode);
    too_small = too_small || (*dims.out[d] != -1 && *dims.out[d] < 1);
  }
  CONVOY_CHECK(!too_small, op, ": input ", shape_str(in), " is too small for kernel_size ", shape_str(kernel),
               ", stride ", shape_str(stride), ", padding ", shape_str(padding), ", dilation ",
               shape_str(dilation), ": the output size would be ", shape_str(pool_spatial_out(s, sp)));
  return s;
}

PoolGeometry pool_adaptive_geometry(std::string_view op, const Shape& in, int64_t spatial,
                                    std::vector<int64_t> output_size) {
  const size_t sp = static_cast<size_t>(spatial);
  check_pool_rank(op, in, sp);
  if (output_size.size() == 1) output_size.assign(sp, output_size[0]);
  CONVOY_CHECK(output_size.size() == sp, op, ": output_size ", shape_str(output_size), " must have ", sp,
               " values");
  for (int64_t o : output_size)
    CONVOY_CHECK(o >= 0, op, ": output_size ", shape_str(output_size), " must be non-negative");
  for (size_t i = 0; i < sp; ++i)
    CONVOY_CHECK(in[in.size() - sp + i] != 0, op, ": input ", shape_str(in), " has an empty spatial dim");
  PoolGeometry s = pool_lead(in, spatial);
  PoolDims dims(s);
  for (size_t i = 0; i < sp; ++i) {
    *dims.in[3 - sp + i] = in[in.size() - sp + i];
    *dims.out[3 - sp + i] = output_size[i];
  }
  return s;
}

PoolGeometry read_pool_window(std::string_view op, const Shape& in, const PoolWindowArgs& w,
                              const IValue& kernel, const IValue& stride, const IValue& padding,
                              const IValue* dilation, bool ceil_mode) {
  const size_t sp = static_cast<size_t>(w.spatial);
  auto list = [&](const IValue& v) {
    return v.is_int() ? std::vector<int64_t>(sp, v.to_int()) : v.to_int_list();
  };
  return pool_window_geometry(op, in, w.spatial, list(kernel), list(stride), list(padding),
                              dilation ? list(*dilation) : std::vector<int64_t>{1}, ceil_mode);
}

AvgPoolOptions read_avg_pool_options(std::string_view op, const PoolWindowArgs& w, const IValueList& a) {
  AvgPoolOptions o;
  o.count_include_pad = a[w.ceil_mode + 1].to_bool();
  const size_t div = w.ceil_mode + 2;
  if (div < a.size() && !a[div].is_none()) {
    o.divisor_override = a[div].to_int();
    CONVOY_CHECK(o.divisor_override != 0, op, ": divisor_override must not be zero");
  }
  return o;
}

std::vector<int64_t> adaptive_output_size(const IValue& v) {
  return v.is_int() ? std::vector<int64_t>{v.to_int()} : v.to_int_list();
}

// ---- recurrent layers --------------------------------------------------------------------------

int64_t gate_count(CellKind kind) { return kind == CellKind::kGru ? 3 : kind == CellKind::kLstm ? 4 : 1; }

RnnConfig read_rnn_config(CellKind kind, const char* op, const IValueList& a) {
  // Arguments 3..8: has_biases, num_layers, dropout, train, bidirectional, batch_first.
  const double dropout = a[5].to_double();
  const bool train = a[6].to_bool();
  CONVOY_CHECK_KIND(kUnsupported, !(train && dropout > 0 && a[4].to_int() > 1), op, ": dropout=", dropout,
                    " with train=True is random between layers; export the model in eval mode");
  return RnnConfig{kind, op, a[3].to_bool(), a[4].to_int(), a[7].to_bool(), a[8].to_bool()};
}

RnnGeometry rnn_geometry(const RnnConfig& cfg, const Tensor& input, const Tensor& hx, const Tensor& cx,
                         const std::vector<Tensor>& params) {
  const char* op = cfg.op;
  CONVOY_CHECK(input.dim() == 3, op, ": input ", input.describe(), " must be 3-D (",
               cfg.batch_first ? "batch, seq, feature" : "seq, batch, feature", ")");
  CONVOY_CHECK(cfg.num_layers >= 1, op, ": num_layers must be at least 1, got ", cfg.num_layers);
  RnnGeometry g;
  g.directions = cfg.bidirectional ? 2 : 1;
  g.groups = cfg.num_layers * g.directions;
  const int64_t base = cfg.has_biases ? 4 : 2;
  const int64_t n_params = static_cast<int64_t>(params.size());
  g.projected = cfg.kind == CellKind::kLstm && n_params == g.groups * (base + 1);
  g.per_group = base + (g.projected ? 1 : 0);
  CONVOY_CHECK(n_params == g.groups * g.per_group, op, ": expected ", g.groups * base,
               " parameter tensors for ", cfg.num_layers, " layer(s), ", g.directions, " direction(s)",
               cfg.has_biases ? " with biases" : " without biases", ", got ", n_params);
  g.steps = cfg.batch_first ? input.size(1) : input.size(0);
  g.batch = cfg.batch_first ? input.size(0) : input.size(1);
  g.gates = gate_count(cfg.kind);
  const Tensor& w_hh0 = params[1];
  CONVOY_CHECK(w_hh0.dim() == 2 && w_hh0.size(0) % g.gates == 0, op, ": weight_hh_l0 ", w_hh0.describe(),
               " must be (", g.gates, "·hidden, hidden)");
  g.hidden = w_hh0.size(0) / g.gates;
  g.out_size = g.projected ? params[static_cast<size_t>(g.per_group - 1)].size(0) : g.hidden;
  CONVOY_CHECK(hx.dim() == 3 && hx.size(0) == g.groups && hx.size(1) == g.batch && hx.size(2) == g.out_size,
               op, ": initial hidden state ", hx.describe(), " must be [", g.groups, ", ", g.batch, ", ",
               g.out_size, "] for input ", input.describe());
  if (cfg.kind == CellKind::kLstm)
    CONVOY_CHECK(cx.dim() == 3 && cx.size(0) == g.groups && cx.size(1) == g.batch && cx.size(2) == g.hidden,
                 op, ": initial cell state ", cx.describe(), " must be [", g.groups, ", ", g.batch, ", ",
                 g.hidden, "]");
  return g;
}

RnnLayerParams rnn_layer_params(const RnnConfig& cfg, const RnnGeometry& g, const std::vector<Tensor>& params,
                                int64_t l, int64_t d, int64_t in) {
  const char* op = cfg.op;
  const int64_t GH = g.gates * g.hidden;
  const auto at = [&](int64_t i) {
    return params[static_cast<size_t>((l * g.directions + d) * g.per_group + i)];
  };
  RnnLayerParams p;
  p.w_ih = at(0);
  p.w_hh = at(1);
  CONVOY_CHECK(p.w_ih.dim() == 2 && p.w_ih.size(0) == GH && p.w_ih.size(1) == in, op, ": weight_ih of layer ",
               l, " direction ", d, " is ", p.w_ih.describe(), ", expected [", GH, ", ", in, "]");
  CONVOY_CHECK(p.w_hh.dim() == 2 && p.w_hh.size(0) == GH && p.w_hh.size(1) == g.out_size, op,
               ": weight_hh of layer ", l, " direction ", d, " is ", p.w_hh.describe(), ", expected [", GH,
               ", ", g.out_size, "]");
  if (cfg.has_biases) {
    p.b_ih = at(2);
    p.b_hh = at(3);
    CONVOY_CHECK(p.b_ih.numel() == GH && p.b_hh.numel() == GH, op, ": biases of layer ", l, " direction ", d,
                 " are ", p.b_ih.describe(), " and ", p.b_hh.describe(), ", expected [", GH, "]");
  }
  if (g.projected) {
    p.w_hr = at(g.per_group - 1);
    CONVOY_CHECK(p.w_hr.dim() == 2 && p.w_hr.size(0) == g.out_size && p.w_hr.size(1) == g.hidden, op,
                 ": weight_hr of layer ", l, " direction ", d, " is ", p.w_hr.describe(), ", expected [",
                 g.out_size, ", ", g.hidden, "]");
  }
  return p;
}

// ---- attention ---------------------------------------------------------------------------------

Shape broadcast_strides(const Tensor& t, const Shape& shape, const char* op, const char* what) {
  CONVOY_CHECK(t.dim() <= static_cast<int64_t>(shape.size()), op, ": ", what, " ", t.describe(),
               " cannot be broadcast to ", shape_str(shape));
  Shape strides(shape.size(), 0);
  const size_t lead = shape.size() - static_cast<size_t>(t.dim());
  for (size_t i = 0; i < static_cast<size_t>(t.dim()); ++i) {
    const int64_t s = t.sizes()[i];
    CONVOY_CHECK(s == shape[lead + i] || s == 1, op, ": ", what, " ", t.describe(),
                 " cannot be broadcast to ", shape_str(shape));
    strides[lead + i] = s == 1 ? 0 : t.strides()[i];
  }
  return strides;
}

namespace {

// An attention's sizes (embed_dim at `sizes`, num_heads after it), projection parameters (qkv_weight,
// qkv_bias, proj_weight, proj_bias from `first` on) and mask arguments.
void read_attention_params(MhaArgs& m, const IValueList& a, size_t sizes, size_t first, const IValue& mask,
                           const IValue& mask_type) {
  m.embed_dim = a[sizes].to_int();
  m.num_heads = a[sizes + 1].to_int();
  Tensor* params[] = {&m.qkv_weight, &m.qkv_bias, &m.proj_weight, &m.proj_bias};
  for (size_t i = 0; i < 4; ++i) *params[i] = a[first + i].to_tensor();
  m.mask = mask.is_none() ? Tensor() : mask.to_tensor();
  if (!mask_type.is_none()) m.mask_type = mask_type.to_int();
}

}  // namespace

MhaArgs read_native_mha_args(const IValueList& a) {
  MhaArgs m;
  m.query = a[0].to_tensor();
  m.key = a[1].to_tensor();
  m.value = a[2].to_tensor();
  read_attention_params(m, a, 3, 5, a[9], a[12]);
  m.need_weights = a[10].to_bool();
  m.average_attn_weights = a[11].to_bool();
  return m;
}

MhaGeometry mha_geometry(const MhaArgs& m, const char* op) {
  const Tensor& q_in = m.query;
  CONVOY_CHECK(q_in.dim() == 3 && m.key.dim() == 3 && m.value.dim() == 3, op,
               ": query, key and value must be 3-D (batch, seq, embed), got ", q_in.describe(), ", ",
               m.key.describe(), ", ", m.value.describe());
  const int64_t B = q_in.size(0), L = q_in.size(1), E = m.embed_dim, H = m.num_heads, S = m.key.size(1);
  CONVOY_CHECK(q_in.size(2) == E && m.key.size(2) == E && m.value.size(2) == E, op, ": query ",
               q_in.describe(), ", key ", m.key.describe(), " and value ", m.value.describe(),
               " must end in embed_dim=", E);
  CONVOY_CHECK(m.key.size(0) == B && m.value.size(0) == B && m.value.size(1) == S, op, ": key ",
               m.key.describe(), " and value ", m.value.describe(), " must match query ", q_in.describe(),
               " in batch and each other in length");
  CONVOY_CHECK(H > 0 && E % H == 0, op, ": embed_dim=", E, " is not divisible by num_head=", H);
  CONVOY_CHECK(m.qkv_weight.dim() == 2 && m.qkv_weight.size(0) == 3 * E && m.qkv_weight.size(1) == E, op,
               ": qkv_weight ", m.qkv_weight.describe(), " must be [", 3 * E, ", ", E, "]");
  CONVOY_CHECK(m.qkv_bias.numel() == 3 * E, op, ": qkv_bias ", m.qkv_bias.describe(), " must have ", 3 * E,
               " elements");
  CONVOY_CHECK(m.proj_weight.dim() == 2 && m.proj_weight.size(0) == E && m.proj_weight.size(1) == E, op,
               ": proj_weight ", m.proj_weight.describe(), " must be [", E, ", ", E, "]");
  CONVOY_CHECK(m.proj_bias.numel() == E, op, ": proj_bias ", m.proj_bias.describe(), " must have ", E,
               " elements");
  return MhaGeometry{B, L, S, E, H, E / H};
}

MhaArgs EncoderLayerArgs::self_attention(const Tensor& x) const {
  MhaArgs m = attention;
  m.query = m.key = m.value = x;
  return m;
}

EncoderLayerArgs read_encoder_layer_args(const IValueList& a) {
  EncoderLayerArgs e;
  e.src = a[0].to_tensor();
  read_attention_params(e.attention, a, 1, 3, a[18], a[19]);
  e.attention.need_weights = false;
  e.embed_dim = e.attention.embed_dim;
  e.num_heads = e.attention.num_heads;
  e.use_gelu = a[7].to_bool();
  e.norm_first = a[8].to_bool();
  e.eps = a[9].to_double();
  Tensor* params[] = {&e.norm1_weight, &e.norm1_bias, &e.norm2_weight, &e.norm2_bias,
                      &e.ffn1_weight,  &e.ffn1_bias,  &e.ffn2_weight,  &e.ffn2_bias};
  for (size_t i = 0; i < 8; ++i) *params[i] = a[10 + i].to_tensor();
  return e;
}

// ---- normalisation and embedding ---------------------------------------------------------------

int64_t check_layer_norm_shapes(const char* op, const Tensor& input, const Shape& normalized_shape,
                                const Tensor& weight, const Tensor& bias) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool match = k >= 1 && input.dim() >= k;
  for (int64_t i = 0; match && i < k; ++i)
    match =
        input.sizes()[static_cast<size_t>(input.dim() - k + i)] == normalized_shape[static_cast<size_t>(i)];
  CONVOY_CHECK(match, op, ": normalized_shape ", shape_str(normalized_shape),
               " does not match the trailing dims of input ", input.describe());
  if (weight.defined())
    CONVOY_CHECK(weight.sizes() == normalized_shape, op, ": weight ", weight.describe(), " must have shape ",
                 shape_str(normalized_shape));
  if (bias.defined())
    CONVOY_CHECK(bias.sizes() == normalized_shape, op, ": bias ", bias.describe(), " must have shape ",
                 shape_str(normalized_shape));
  return shape_numel(normalized_shape);
}

void check_embedding_args(const char* op, const Tensor& weight, const Tensor& indices) {
  CONVOY_CHECK(weight.dim() == 2, op, ": weight ", weight.describe(), " must be 2-D (num_embeddings, dim)");
  CONVOY_CHECK(indices.dtype() == DType::kInt64 || indices.dtype() == DType::kInt32, op, ": indices ",
               indices.describe(), " must be int64 or int32");
}

}  // namespace convoy::nn
