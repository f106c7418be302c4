// OpenCL pooling (runtime/ops/pooling.cpp's overloads): max_pool1d/2d (+ max_pool2d_with_indices),
// avg_pool1d/2d, adaptive_avg_pool1d/2d, adaptive_max_pool1d/2d. Output sizes and argument checks
// are the reference's (runtime/ops/nn_geometry.h: PyTorch's pooling_output_shape_pad_lr, ceil_mode's
// last-window rule); pool.cl reads the input through its strides, so a transposed or sliced input is not
// copied first. On CPU devices max_pool and avg_pool compute a row of outputs per work-item (pool_rows),
// elsewhere and with indices one output per work-item.
#include "opencl/ops/launch_util.h"
#include "opencl/ops/nn.h"
#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

// The geometry (shared with the reference kernels) and an avg pool's divisor rule.
struct PoolSpec : nn::PoolGeometry {
  bool count_include_pad = true;
  int64_t divisor_override = 0;

  explicit PoolSpec(nn::PoolGeometry g) : nn::PoolGeometry(std::move(g)) {}
};

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
      const nn::PoolWindowArgs args{w.spatial, w.has_dilation, w.ceil_mode};
      PoolSpec s(nn::read_pool_window(w.name, input.sizes(), args, a[1], a[2], a[3],
                                      w.has_dilation ? &a[4] : nullptr, a[w.ceil_mode].to_bool()));
      if (w.kind == PoolKind::kAvg) {
        const nn::AvgPoolOptions avg = nn::read_avg_pool_options(w.name, args, a);
        s.count_include_pad = avg.count_include_pad;
        s.divisor_override = avg.divisor_override;
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
      PoolSpec s(
          nn::pool_adaptive_geometry(ad.name, input.sizes(), ad.spatial, nn::adaptive_output_size(a[1])));
      return run_pool(cx, ad.name, input, s, ad.spatial, ad.kind, ad.kind == PoolKind::kAdaptiveMax);
    });
  }
}

}  // namespace convoy::opencl
