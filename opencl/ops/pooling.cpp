// OpenCL pooling (runtime/ops/pooling.cpp's overloads): max_pool1d/2d/3d (+ max_pool2d/3d_with_indices),
// avg_pool1d/2d/3d, adaptive_avg_pool1d/2d/3d, adaptive_max_pool1d/2d/3d; 1-d and 2-d pools are 3-d ones
// on volumes of depth 1 (and height 1). Output sizes and argument checks
// are the reference's (runtime/ops/nn_geometry.h: PyTorch's pooling_output_shape_pad_lr, ceil_mode's
// last-window rule); pool.cl reads the input through its strides, so a transposed or sliced input is not
// copied first. On CPU devices max_pool and avg_pool compute a row of outputs per work-item (pool_rows),
// elsewhere and with indices one output per work-item.
#include <array>

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

// The input's strides as (n, c, d, h, w), zero for the dims an unbatched or lower-rank input lacks.
std::array<int64_t, 5> pool_strides(const PoolSpec& s, const Tensor& x, int64_t spatial) {
  const Shape& st = x.strides();
  const size_t lead = s.lead.size(), sp = static_cast<size_t>(spatial);
  std::array<int64_t, 5> xs{lead == 2 ? st[0] : 0, st[lead - 1], 0, 0, 0};
  for (size_t i = 0; i < sp; ++i) xs[5 - sp + i] = st[lead + i];
  return xs;
}

// pool.cl's PoolMeta. The input is read as (N, C, D, H, W) through its strides.
MetaBlock pool_meta(const PoolSpec& s, const Tensor& x, int64_t spatial) {
  const int64_t N = s.lead.size() == 2 ? s.lead[0] : 1, C = s.lead.back();
  MetaBlock m;
  m.values = {N,    C,    s.D,  s.H,  s.W,  s.Do, s.Ho, s.Wo, s.kd, s.kh,
              s.kw, s.sd, s.sh, s.sw, s.pd, s.ph, s.pw, s.dd, s.dh, s.dw};
  for (int64_t v : pool_strides(s, x, spatial)) m.values.push_back(v);
  m.values.push_back(s.count_include_pad ? 1 : 0);
  m.values.push_back(s.divisor_override);
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
      k.options += str_cat(kind == PoolKind::kMax ? " -DPOOL_MAX" : " -DPOOL_AVG", " -DKD=", s.kd,
                           " -DKH=", s.kh, " -DKW=", s.kw, " -DSD=", s.sd, " -DSH=", s.sh, " -DSW=", s.sw,
                           " -DDD=", s.dd, " -DDH=", s.dh, " -DDW=", s.dw) +
                   vector_load_defines(x.dtype(), ct);
      k.args = {out, x};
      for (int64_t v : {s.lead.back(), s.D, s.H, s.W, s.Do, s.Ho, s.Wo, s.pd, s.ph, s.pw})
        k.args.push_back(static_cast<int32_t>(v));
      for (int64_t v : pool_strides(s, x, spatial)) k.args.push_back(v);
      k.args.push_back(static_cast<int32_t>(s.count_include_pad ? 1 : 0));
      k.args.push_back(static_cast<int32_t>(s.divisor_override));
      k.global = {static_cast<size_t>(s.Ho), static_cast<size_t>(shape_numel(s.lead) * s.Do)};
    } else {
      k.kernel = kind == PoolKind::kMax ? "max_pool" : kind == PoolKind::kAvg ? "avg_pool" : "adaptive_pool";
      k.options += str_cat(kind == PoolKind::kAdaptiveMax ? " -DADAPTIVE_MAX" : "",
                           with_indices ? " -DWITH_INDICES" : "");
      k.args = {out};
      if (with_indices) k.args.push_back(indices);
      k.args.push_back(x);
      k.args.push_back(pool_meta(s, x, spatial));
      k.global = {static_cast<size_t>(s.Wo), static_cast<size_t>(s.Ho),
                  static_cast<size_t>(shape_numel(s.lead) * s.Do)};
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
      {"aten::max_pool3d", 3, true, 5, PoolKind::kMax, false},
      {"aten::max_pool3d_with_indices", 3, true, 5, PoolKind::kMax, true},
      {"aten::avg_pool3d", 3, false, 4, PoolKind::kAvg, false},
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
                               AdaptiveOp{"aten::adaptive_max_pool1d", 1, PoolKind::kAdaptiveMax},
                               AdaptiveOp{"aten::adaptive_avg_pool3d", 3, PoolKind::kAdaptiveAvg},
                               AdaptiveOp{"aten::adaptive_max_pool3d", 3, PoolKind::kAdaptiveMax}}) {
    table.add(ad.name, [ad](OpContext& cx, IValueList& a) {
      const Tensor& input = a[0].to_tensor();
      PoolSpec s(
          nn::pool_adaptive_geometry(ad.name, input.sizes(), ad.spatial, nn::adaptive_output_size(a[1])));
      return run_pool(cx, ad.name, input, s, ad.spatial, ad.kind, ad.kind == PoolKind::kAdaptiveMax);
    });
  }
}

}  // namespace convoy::opencl
