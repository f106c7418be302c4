// OpenCL pooling (runtime/ops/pooling.cpp's overloads): max_pool1d/2d (+ max_pool2d_with_indices),
// avg_pool1d/2d, adaptive_avg_pool1d/2d, adaptive_max_pool1d/2d. Output sizes and argument checks
// follow the reference (PyTorch's pooling_output_shape_pad_lr, ceil_mode's last-window rule); pool.cl
// reads the input through its strides, so a transposed or sliced input is not copied first. On CPU
// devices max_pool and avg_pool compute a row of outputs per work-item (pool_rows), elsewhere and with
// indices one output per work-item.
#include "opencl/ops/launch_util.h"
#include "opencl/ops/nn.h"
#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode) {
  int64_t out =
      floor_div(in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

struct PoolSpec {
  Shape lead;  // the dims before the pooled ones: (N, C) or (C)
  int64_t H = 1, W = 1, Ho = 1, Wo = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool count_include_pad = true;
  int64_t divisor_override = 0;

  Shape output_shape(int64_t spatial) const {
    Shape s = lead;
    if (spatial == 2) s.push_back(Ho);
    s.push_back(Wo);
    return s;
  }
};

PoolSpec window_spec(const std::string& op, const Shape& in, int64_t spatial, std::vector<int64_t> kernel,
                     std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                     bool ceil_mode) {
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
  if (sp == 2) {
    s.H = in[in.size() - 2];
    s.kh = kernel[0], s.sh = stride[0], s.ph = padding[0], s.dh = dilation[0];
  }
  s.W = in.back();
  s.kw = kernel[sp - 1], s.sw = stride[sp - 1], s.pw = padding[sp - 1], s.dw = dilation[sp - 1];
  s.Ho = pooled_size(s.H, s.kh, s.ph, s.sh, s.dh, ceil_mode);
  s.Wo = pooled_size(s.W, s.kw, s.pw, s.sw, s.dw, ceil_mode);
  CONVOY_CHECK(s.Ho >= 1 && s.Wo >= 1, op, ": input ", shape_str(in), " is too small for kernel_size ",
               shape_str(kernel), ", stride ", shape_str(stride), ", padding ", shape_str(padding),
               ", dilation ", shape_str(dilation), ": the output size would be ",
               spatial == 2 ? shape_str({s.Ho, s.Wo}) : shape_str({s.Wo}));
  return s;
}

PoolSpec adaptive_spec(const std::string& op, const Shape& in, int64_t spatial,
                       std::vector<int64_t> output_size) {
  const size_t sp = static_cast<size_t>(spatial);
  CONVOY_CHECK(in.size() == sp + 1 || in.size() == sp + 2, op, ": input ", shape_str(in), " must have ",
               sp + 1, " or ", sp + 2, " dims");
  if (output_size.size() == 1) output_size.assign(sp, output_size[0]);
  CONVOY_CHECK(output_size.size() == sp, op, ": output_size ", shape_str(output_size), " must have ", sp,
               " values");
  for (int64_t o : output_size)
    CONVOY_CHECK(o >= 0, op, ": output_size ", shape_str(output_size), " must be non-negative");
  for (size_t i = 0; i < sp; ++i)
    CONVOY_CHECK(in[in.size() - sp + i] != 0, op, ": input ", shape_str(in), " has an empty spatial dim");
  PoolSpec s;
  s.lead.assign(in.begin(), in.end() - spatial);
  if (sp == 2) {
    s.H = in[in.size() - 2];
    s.Ho = output_size[0];
  }
  s.W = in.back();
  s.Wo = output_size.back();
  return s;
}

// pool.cl's PoolMeta. The input is read as (N, C, H, W) through its strides.
MetaBlock pool_meta(const PoolSpec& s, const Tensor& x, int64_t spatial) {
  const Shape& st = x.strides();
  const size_t lead = s.lead.size();
  const int64_t N = lead == 2 ? s.lead[0] : 1, C = s.lead.back();
  const int64_t xs_n = lead == 2 ? st[0] : 0, xs_c = st[lead - 1];
  const int64_t xs_h = spatial == 2 ? st[lead] : 0, xs_w = st.back();
  MetaBlock m;
  m.values = {N,
              C,
              s.H,
              s.W,
              s.Ho,
              s.Wo,
              s.kh,
              s.kw,
              s.sh,
              s.sw,
              s.ph,
              s.pw,
              s.dh,
              s.dw,
              xs_n,
              xs_c,
              xs_h,
              xs_w,
              s.count_include_pad ? 1 : 0,
              s.divisor_override};
  return m;
}

enum class PoolKind { kMax, kAvg, kAdaptiveAvg, kAdaptiveMax };

IValueList run_pool(OpContext& cx, const std::string& op, const Tensor& input, const PoolSpec& s,
                    int64_t spatial, PoolKind kind, bool with_indices) {
  CONVOY_CHECK_KIND(kUnsupported, is_floating(input.dtype()), cx.where(), ": ", op,
                    " supports floating tensors only, got ", input.describe());
  const Shape shape = s.output_shape(spatial);
  Tensor out = cx.empty(shape, input.dtype());
  Tensor indices = with_indices ? cx.empty(shape, DType::kInt64) : Tensor();
  if (out.numel() > 0) {
    Tensor x = cx.to_device(input);
    const DType ct = compute_dtype_of(input.dtype());
    KernelLaunch k;
    k.file = "pool.cl";
    k.options =
        compute_defines(cx, ct) + load_defines(cx, "X", x.dtype()) + store_defines(cx, "OUT", out.dtype());
    if ((kind == PoolKind::kMax || kind == PoolKind::kAvg) && !with_indices && nn_rows_layout(cx)) {
      k.kernel = "pool_rows";
      k.options += str_cat(kind == PoolKind::kMax ? " -DPOOL_MAX" : " -DPOOL_AVG", " -DKH=", s.kh,
                           " -DKW=", s.kw, " -DSH=", s.sh, " -DSW=", s.sw, " -DDH=", s.dh, " -DDW=", s.dw) +
                   vector_load_defines(x.dtype(), ct);
      const MetaBlock m = pool_meta(s, x, spatial);  // N, C, H, W, Ho, Wo, ..., strides at 14
      k.args = {out, x};
      for (int64_t v : {m.values[1], s.H, s.W, s.Ho, s.Wo, s.ph, s.pw})
        k.args.push_back(static_cast<int32_t>(v));
      for (size_t i = 14; i < 18; ++i) k.args.push_back(m.values[i]);
      k.args.push_back(static_cast<int32_t>(s.count_include_pad ? 1 : 0));
      k.args.push_back(static_cast<int32_t>(s.divisor_override));
      k.global = {static_cast<size_t>(s.Ho), static_cast<size_t>(shape_numel(s.lead))};
    } else {
      k.kernel = kind == PoolKind::kMax ? "max_pool" : kind == PoolKind::kAvg ? "avg_pool" : "adaptive_pool";
      k.options += str_cat(kind == PoolKind::kAdaptiveMax ? " -DADAPTIVE_MAX" : "",
                           with_indices ? " -DWITH_INDICES" : "");
      k.args = {out};
      if (with_indices) k.args.push_back(indices);
      k.args.push_back(x);
      k.args.push_back(pool_meta(s, x, spatial));
      k.global = {static_cast<size_t>(s.Wo), static_cast<size_t>(s.Ho),
                  static_cast<size_t>(shape_numel(s.lead))};
    }
    cx.launch(std::move(k));
  }
  if (with_indices) return {IValue(out), IValue(indices)};
  return {IValue(out)};
}

std::vector<int64_t> ints(const IValue& v, size_t spatial) {
  return v.is_int() ? std::vector<int64_t>(spatial, v.to_int()) : v.to_int_list();
}

// Positions: kernel 1, stride 2, padding 3, then dilation 4 (max pools) or ceil_mode 4 (avg pools).
struct WindowOp {
  const char* name;
  int64_t spatial;
  bool has_dilation;
  size_t ceil_mode;
  PoolKind kind;
  bool with_indices;
};

}  // namespace

void register_opencl_pooling_ops(OpenCLOpTable& table) {
  const WindowOp window_ops[] = {
      {"aten::max_pool2d", 2, true, 5, PoolKind::kMax, false},
      {"aten::max_pool2d_with_indices", 2, true, 5, PoolKind::kMax, true},
      {"aten::max_pool1d", 1, true, 5, PoolKind::kMax, false},
      {"aten::avg_pool2d", 2, false, 4, PoolKind::kAvg, false},
      {"aten::avg_pool1d", 1, false, 4, PoolKind::kAvg, false},
  };
  for (const WindowOp& w : window_ops) {
    table.add(w.name, [w](OpContext& cx, IValueList& a) {
      const Tensor& input = a[0].to_tensor();
      const size_t sp = static_cast<size_t>(w.spatial);
      PoolSpec s =
          window_spec(w.name, input.sizes(), w.spatial, ints(a[1], sp), ints(a[2], sp), ints(a[3], sp),
                      w.has_dilation ? ints(a[4], sp) : std::vector<int64_t>{1}, a[w.ceil_mode].to_bool());
      if (w.kind == PoolKind::kAvg) {
        s.count_include_pad = a[w.ceil_mode + 1].to_bool();
        const size_t div = w.ceil_mode + 2;
        if (div < a.size() && !a[div].is_none()) {
          s.divisor_override = a[div].to_int();
          CONVOY_CHECK(s.divisor_override != 0, w.name, ": divisor_override must not be zero");
        }
      }
      return run_pool(cx, w.name, input, s, w.spatial, w.kind, w.with_indices);
    });
  }
  struct AdaptiveOp {
    const char* name;
    int64_t spatial;
    PoolKind kind;
  };
  for (const AdaptiveOp& ad : {AdaptiveOp{"aten::adaptive_avg_pool2d", 2, PoolKind::kAdaptiveAvg},
                               AdaptiveOp{"aten::adaptive_avg_pool1d", 1, PoolKind::kAdaptiveAvg},
                               AdaptiveOp{"aten::adaptive_max_pool2d", 2, PoolKind::kAdaptiveMax},
                               AdaptiveOp{"aten::adaptive_max_pool1d", 1, PoolKind::kAdaptiveMax}}) {
    table.add(ad.name, [ad](OpContext& cx, IValueList& a) {
      const Tensor& input = a[0].to_tensor();
      std::vector<int64_t> size = a[1].is_int() ? std::vector<int64_t>{a[1].to_int()} : a[1].to_int_list();
      PoolSpec s = adaptive_spec(ad.name, input.sizes(), ad.spatial, size);
      return run_pool(cx, ad.name, input, s, ad.spatial, ad.kind, ad.kind == PoolKind::kAdaptiveMax);
    });
  }
}

}  // namespace convoy::opencl
