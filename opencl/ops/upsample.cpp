// OpenCL interpolation (runtime/ops/upsample.h's ops, both overloads each): upsample_nearest1d/2d/3d,
// _upsample_nearest_exact1d/2d/3d, upsample_linear1d, upsample_bilinear2d, upsample_trilinear3d,
// upsample_bicubic2d. Arguments, output sizes and the per-dim source taps are the reference's
// (read_upsample, upsample_taps), computed on the host when the plan is built and passed in the launch's
// metadata, so the device uses PyTorch's indices and weights exactly; upsample.cl does the sums. The input
// is read through its strides, so a transposed or sliced input is not copied first.
#include "runtime/ops/upsample.h"

#include <bit>

#include "opencl/ops/launch_util.h"

namespace convoy::opencl {

namespace {

// upsample.cl's metadata: C, Do, Ho, Wo, KD, KH, KW, strides n, c, d, h, w, table offsets, tables.
template <typename T>
MetaBlock upsample_meta(const nn::UpsampleGeometry& g, const Tensor& x) {
  const nn::UpsampleTaps<T> taps[3] = {nn::upsample_taps<T>(g, 0), nn::upsample_taps<T>(g, 1),
                                       nn::upsample_taps<T>(g, 2)};
  // Input strides as (n, c, d, h, w); lifted dims have size 1, so their stride is never used (0).
  const Shape& st = x.strides();
  int64_t xs[5] = {st[0], st[1], 0, 0, 0};
  for (int64_t i = 0; i < g.spatial; ++i) xs[5 - g.spatial + i] = st[static_cast<size_t>(2 + i)];
  MetaBlock m;
  m.values = {g.lead[1], g.out[0], g.out[1], g.out[2], taps[0].taps, taps[1].taps, taps[2].taps};
  for (int64_t s : xs) m.values.push_back(s);
  const size_t table_offsets = m.values.size();
  m.values.resize(table_offsets + 3);
  for (int d = 0; d < 3; ++d) {
    m.values[table_offsets + static_cast<size_t>(d)] = static_cast<int64_t>(m.values.size());
    for (int64_t i : taps[d].index) m.values.push_back(i);
    for (T w : taps[d].weight) {
      if constexpr (std::is_same_v<T, double>)
        m.values.push_back(std::bit_cast<int64_t>(w));
      else
        m.values.push_back(static_cast<int64_t>(std::bit_cast<uint32_t>(w)));
    }
  }
  return m;
}

Tensor run_upsample(OpContext& cx, const nn::UpsampleOp& op, bool vec, const IValueList& a) {
  const Tensor& input = a[0].to_tensor();
  const nn::UpsampleGeometry g = nn::read_upsample(op, vec, input.sizes(), a);
  const bool nearest = op.mode == nn::UpsampleMode::kNearest || op.mode == nn::UpsampleMode::kNearestExact;
  CONVOY_CHECK_KIND(kUnsupported, nearest || is_floating(input.dtype()), cx.where(), ": ", op.name,
                    " supports floating tensors only, got ", input.describe());
  Tensor out = cx.empty(g.output_shape(), input.dtype());
  if (out.numel() == 0) return out;
  Tensor x = cx.to_device(input);
  const DType ct = compute_dtype_of(input.dtype());
  KernelLaunch k;
  k.file = "upsample.cl";
  k.kernel = "interpolate";  // not "upsample": an OpenCL C built-in (upsample(hi, lo))
  k.options =
      compute_defines(cx, ct) + load_defines(cx, "X", x.dtype()) + store_defines(cx, "OUT", out.dtype());
  if (nearest) {
    k.options += " -DNEAREST";
  } else if (ct == DType::kFloat64) {
    k.options += " -DWEIGHTS_DOUBLE";
  }
  // Nearest taps carry no weights worth passing; float ones are as good as any there.
  MetaBlock meta =
      ct == DType::kFloat64 && !nearest ? upsample_meta<double>(g, x) : upsample_meta<float>(g, x);
  k.args = {out, x, std::move(meta)};
  k.global = {static_cast<size_t>(g.out[2]), static_cast<size_t>(g.out[1]),
              static_cast<size_t>(g.planes() * g.out[0])};
  cx.launch(std::move(k));
  return out;
}

}  // namespace

void register_opencl_upsample_ops(OpenCLOpTable& table) {
  for (const nn::UpsampleOp& op : nn::upsample_ops()) {
    for (bool vec : {false, true}) {
      table.add(std::string(op.name) + (vec ? ".vec" : ""),
                [op, vec](OpContext& cx, IValueList& a) -> IValueList {
                  return {IValue(run_upsample(cx, op, vec, a))};
                });
    }
  }
}

}  // namespace convoy::opencl
