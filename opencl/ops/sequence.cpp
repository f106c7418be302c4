// OpenCL implementations of the sequence family (runtime/ops/sequence.cpp): gru / lstm / rnn_tanh /
// rnn_relu (multi-layer, bidirectional, batch_first, LSTM projections), _native_multi_head_attention,
// _transformer_encoder_layer_fwd, scaled_dot_product_attention (torch 2.x) and torch 1.13's
// _scaled_dot_product_attention. Float32 only: every matrix product goes through the GEMM dispatcher.
//
// Recurrences: per layer and direction, the input projection of all time steps (with b_ih) is one GEMM;
// each step is one GEMM for the recurrent projection (with b_hh as the epilogue's bias) and one cell
// kernel (sequence.cl) that applies the gates, updates the state in place and writes the step's output
// row. Layouts are handled by strides: a batch-first input is projected as it is and the last layer
// writes a batch-first output directly.
//
// Attention: the projections are GEMMs (one for q, k and v together when they are one tensor); heads
// are strided views of the projections, so the scores of all heads are batched GEMMs, the masked softmax
// runs in place on them (sequence.cl), and the context GEMM writes the heads back side by side, ready
// for the output projection.
#include <cmath>

#include "opencl/ops/launch_util.h"
#include "opencl/ops/linalg.h"
#include "opencl/ops/nn.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

namespace {

void check_f32(OpContext& cx, const Tensor& t, const char* what) {
  CONVOY_CHECK_KIND(kUnsupported, t.dtype() == DType::kFloat32, cx.where(), ": ", what, " is ", t.describe(),
                    "; the sequence ops run in float32 on OpenCL");
}

Tensor optional_tensor(const IValue& v) { return v.is_none() ? Tensor() : v.to_tensor(); }

// The 2-D (rows x cols) row-major view of `t` starting `offset` elements into it, rows `row` apart.
Tensor rows_view(const Tensor& t, int64_t offset, int64_t rows, int64_t cols, int64_t row) {
  return t.as_strided({rows, cols}, {row, 1}, t.offset() + offset);
}

// Wᵀ of a 2-D weight, as a view.
Tensor transposed(const Tensor& w) {
  return w.as_strided({w.size(1), w.size(0)}, {w.stride(1), w.stride(0)}, w.offset());
}

gemm::Epilogue bias_along_n(bool has_bias) {
  gemm::Epilogue e;
  if (has_bias) e.bias_axis = gemm::BiasAxis::kAlongN;
  return e;
}

// ---- recurrent layers -------------------------------------------------------------------------------------

using nn::CellKind;
using nn::RnnConfig;

struct RnnOutputs {
  Tensor output, h_n, c_n;
};

RnnOutputs run_rnn(OpContext& cx, const RnnConfig& cfg, const Tensor& input_in, const Tensor& hx_in,
                   const Tensor& c0_in, const std::vector<Tensor>& params) {
  const nn::RnnGeometry geo = nn::rnn_geometry(cfg, input_in, hx_in, c0_in, params);
  const int64_t D = geo.directions, T = geo.steps, B = geo.batch, H = geo.hidden, out_size = geo.out_size;
  const int64_t GH = geo.gates * H;
  const bool projected = geo.projected;
  check_f32(cx, input_in, "the input");
  for (const Tensor& p : params) check_f32(cx, p, "a parameter");
  check_f32(cx, hx_in, "hx");

  Tensor h_n = contiguous_copy(cx, hx_in);
  Tensor c_n = cfg.kind == CellKind::kLstm ? contiguous_copy(cx, c0_in) : Tensor();
  Tensor layer_in = cx.to_device(input_in);
  bool in_batch_first = cfg.batch_first;
  Tensor output;
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const int64_t in = layer_in.size(2);
    const bool last = l == cfg.num_layers - 1;
    const bool out_batch_first = last && cfg.batch_first;
    const int64_t width = D * out_size;
    Tensor layer_out = cx.empty(out_batch_first ? Shape{B, T, width} : Shape{T, B, width}, DType::kFloat32);
    const int64_t out_t = out_batch_first ? width : B * width, out_b = out_batch_first ? T * width : width;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t g = l * D + d;
      const nn::RnnLayerParams p = nn::rnn_layer_params(cfg, geo, params, l, d, in);
      const Tensor& w_ih = p.w_ih;
      const Tensor& w_hh = p.w_hh;
      const Tensor& b_ih = p.b_ih;
      const Tensor& w_hr = p.w_hr;
      const Tensor b_hh = p.b_hh.defined() ? contiguous(cx, cx.to_device(p.b_hh)) : Tensor();
      // Input projections of every step at once, in the input's own layout.
      Tensor gx = linear(cx, layer_in, w_ih, b_ih);
      const int64_t gx_t = in_batch_first ? GH : B * GH, gx_b = in_batch_first ? T * GH : GH;
      Tensor whh_t = transposed(cx.to_device(w_hh));
      Tensor whr_t = projected ? transposed(cx.to_device(w_hr)) : Tensor();
      Tensor gh = cx.empty({B, GH}, DType::kFloat32);
      Tensor full_h = projected ? cx.empty({B, H}, DType::kFloat32) : Tensor();
      Tensor h = rows_view(h_n, g * B * out_size, B, out_size, out_size);
      Tensor c = c_n.defined() ? rows_view(c_n, g * B * H, B, H, H) : Tensor();
      const bool reverse = d == 1;
      for (int64_t s = 0; s < T; ++s) {
        const int64_t t = reverse ? T - 1 - s : s;
        batched_gemm(cx, h, whh_t, gh, 1.0f, 0.0f, bias_along_n(cfg.has_biases), b_hh);
        Tensor gx_step = gx.as_strided({B, GH}, {gx_b, 1}, gx.offset() + t * gx_t);
        Tensor out_step =
            layer_out.as_strided({B, out_size}, {out_b, 1}, layer_out.offset() + t * out_t + d * out_size);
        KernelLaunch k;
        k.file = "sequence.cl";
        k.global = {static_cast<size_t>(H), static_cast<size_t>(B)};
        switch (cfg.kind) {
          case CellKind::kGru:
            k.kernel = "gru_cell";
            k.args = {gx_step, gx_b, gh, GH, h, out_size, out_step, out_b, H};
            break;
          case CellKind::kLstm:
            k.kernel = "lstm_cell";
            k.args = {gx_step,
                      gx_b,
                      gh,
                      GH,
                      c,
                      H,
                      projected ? full_h : h,
                      projected ? H : out_size,
                      out_step,
                      out_b,
                      H,
                      static_cast<int32_t>(projected ? 0 : 1)};
            break;
          case CellKind::kRnnTanh:
          case CellKind::kRnnRelu:
            k.kernel = "rnn_cell";
            k.options = cfg.kind == CellKind::kRnnRelu ? "-DRELU" : "";
            k.args = {gx_step, gx_b, gh, GH, h, out_size, out_step, out_b};
            break;
        }
        cx.launch(std::move(k));
        if (projected) {
          // h = (o ⊙ tanh(c)) · W_hrᵀ, then the step's output row.
          batched_gemm(cx, full_h, whr_t, h, 1.0f, 0.0f, {}, Tensor());
          KernelLaunch copy;
          copy.file = "sequence.cl";
          copy.kernel = "copy_rows";
          copy.args = {out_step, out_b, h, out_size};
          copy.global = {static_cast<size_t>(out_size), static_cast<size_t>(B)};
          cx.launch(std::move(copy));
        }
      }
    }
    layer_in = layer_out;
    in_batch_first = out_batch_first;
    output = layer_out;
  }
  return {output, h_n, c_n};
}

// ---- attention
// ---------------------------------------------------------------------------------------------

enum class MaskRule { kNone, kNonzeroMasksOut, kBoolAttends, kAdditive };

// In-place softmax over the rows of contiguous scores (batch..., L, S) with the (device) mask read
// through `mask_strides` over the same shape (0 where it broadcasts).
void attention_softmax(OpContext& cx, const Tensor& scores, const Tensor& mask, const Shape& mask_strides,
                       MaskRule rule, bool causal, bool zero_masked_rows) {
  if (scores.numel() == 0) return;
  const size_t r = static_cast<size_t>(scores.dim());
  const int64_t L = scores.sizes()[r - 2], S = scores.sizes()[r - 1];
  const int64_t rows = scores.numel() / S;
  size_t lsize = 1;
  const size_t limit = std::min<size_t>(256, cx.device().max_work_group_size);
  while (lsize * 2 <= limit && static_cast<int64_t>(lsize) < S) lsize *= 2;
  MetaBlock meta;
  Tensor m = scores;  // bound, never read, when there is no mask
  int64_t mask_step = 0;
  std::string options;
  if (rule != MaskRule::kNone) {
    m = mask;
    const Shape row_sizes(scores.sizes().begin(), scores.sizes().end() - 1);
    StridedLoop loop = collapse(row_sizes, {Shape(mask_strides.begin(), mask_strides.end() - 1)});
    meta = loop_meta(loop, 1);
    mask_step = mask_strides.back();
    options = load_defines(cx, "M", m.dtype());
    options += rule == MaskRule::kNonzeroMasksOut ? " -DMASK_NONZERO"
               : rule == MaskRule::kBoolAttends   ? " -DMASK_BOOL"
                                                  : " -DMASK_ADD";
  } else {
    meta.values = {0};
  }
  if (causal) options += " -DCAUSAL";
  if (zero_masked_rows) options += " -DZERO_MASKED_ROWS";
  KernelLaunch k;
  k.file = "sequence.cl";
  k.options = options;
  if (nn_rows_layout(cx)) {  // one work-item per row
    const size_t rows_lsize = std::min<size_t>(16, cx.device().max_work_group_size);
    k.kernel = "attn_softmax_rows";
    k.args = {scores, S, L, m, mask_step, meta, rows};
    k.global = {(static_cast<size_t>(rows) + rows_lsize - 1) / rows_lsize * rows_lsize};
    k.local = {rows_lsize};
    cx.launch(std::move(k));
    return;
  }
  k.kernel = "attn_softmax";
  k.args = {scores, S, L, m, mask_step, meta, LocalMemory{lsize * sizeof(float)}};
  k.global = {static_cast<size_t>(rows) * lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
}

// Mask strides over `shape` (right-aligned broadcast), with the reference's error.
Shape mask_strides_for(const Tensor& mask, const Shape& shape, const char* op) {
  return nn::broadcast_strides(mask, shape, op, "attention mask");
}

using nn::MhaArgs;

bool same_view(const Tensor& a, const Tensor& b) {
  return a.shares_storage_with(b) && a.offset() == b.offset() && a.sizes() == b.sizes() &&
         a.strides() == b.strides();
}

std::pair<Tensor, Tensor> native_mha(OpContext& cx, const MhaArgs& m, const char* op) {
  const Tensor& q_in = m.query;
  const nn::MhaGeometry geo = nn::mha_geometry(m, op);
  const int64_t B = geo.batch, L = geo.tgt_len, E = geo.embed_dim, H = geo.num_heads, S = geo.src_len;
  for (const Tensor* t : {&q_in, &m.key, &m.value, &m.qkv_weight, &m.qkv_bias, &m.proj_weight, &m.proj_bias})
    check_f32(cx, *t, "an argument");
  const int64_t dh = geo.head_dim;

  Tensor w = cx.to_device(m.qkv_weight);
  Tensor bias = contiguous(cx, cx.to_device(m.qkv_bias));
  bias = bias.as_strided({3 * E}, {1}, bias.offset());
  // q, k and v projections: (B, seq, E) rows `row` apart, starting `off` into `buf`.
  struct Projection {
    Tensor buf;
    int64_t off = 0, row = 0;
  };
  Projection pq, pk, pv;
  if (same_view(q_in, m.key) && same_view(q_in, m.value)) {
    // Self-attention: one GEMM for all three.
    Tensor qkv = linear(cx, q_in, w, bias);
    pq = {qkv, 0, 3 * E};
    pk = {qkv, E, 3 * E};
    pv = {qkv, 2 * E, 3 * E};
  } else {
    auto project = [&](const Tensor& x, int64_t part) {
      Tensor wp = w.as_strided({E, E}, w.strides(), w.offset() + part * E * w.stride(0));
      Tensor bp = bias.as_strided({E}, {1}, bias.offset() + part * E);
      return Projection{linear(cx, x, wp, bp), 0, E};
    };
    pq = project(q_in, 0);
    pk = project(m.key, 1);
    pv = project(m.value, 2);
  }
  // Heads as views: q (B, H, L, dh), kᵀ (B, H, dh, S), v (B, H, S, dh).
  Tensor qh = pq.buf.as_strided({B, H, L, dh}, {L * pq.row, dh, pq.row, 1}, pq.buf.offset() + pq.off);
  Tensor kt = pk.buf.as_strided({B, H, dh, S}, {S * pk.row, dh, 1, pk.row}, pk.buf.offset() + pk.off);
  Tensor vh = pv.buf.as_strided({B, H, S, dh}, {S * pv.row, dh, pv.row, 1}, pv.buf.offset() + pv.off);
  Tensor scores = cx.empty({B, H, L, S}, DType::kFloat32);
  if (dh > 0) {
    batched_gemm(cx, qh, kt, scores, static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh))), 0.0f, {},
                 Tensor());
  } else {
    fill(cx, scores, 0.0);
  }
  MaskRule rule = MaskRule::kNone;
  Shape mstrides;
  Tensor mk = m.mask.defined() ? cx.to_device(m.mask) : Tensor();
  if (mk.defined()) {
    rule = MaskRule::kNonzeroMasksOut;
    // mask_type 1 is a key-padding mask (B, S); others broadcast to (B, H, L, S).
    if (m.mask_type && *m.mask_type == 1) {
      CONVOY_CHECK(mk.dim() == 2 && mk.size(0) == B && mk.size(1) == S, op, ": key padding mask ",
                   mk.describe(), " must be [", B, ", ", S, "]");
      mstrides = {mk.stride(0), 0, 0, mk.stride(1)};
    } else {
      mstrides = mask_strides_for(mk, {B, H, L, S}, op);
    }
  }
  attention_softmax(cx, scores, mk, mstrides, rule, false, false);
  // The context lands heads side by side: (B, L, E) seen as (H, B, L, dh). Heads outermost, so each GEMM
  // batches over B, whose output blocks are disjoint (those of the heads interleave).
  Tensor ctx = cx.empty({B, L, E}, DType::kFloat32);
  if (S > 0) {
    auto heads_first = [](const Tensor& t) {
      Shape sizes = t.sizes(), strides = t.strides();
      std::swap(sizes[0], sizes[1]);
      std::swap(strides[0], strides[1]);
      return t.as_strided(sizes, strides, t.offset());
    };
    batched_gemm(cx, heads_first(scores), heads_first(vh),
                 ctx.as_strided({H, B, L, dh}, {dh, L * E, E, 1}, ctx.offset()), 1.0f, 0.0f, {}, Tensor());
  } else {
    fill(cx, ctx, 0.0);
  }
  Tensor out = linear(cx, ctx, m.proj_weight, m.proj_bias);
  Tensor weights;
  if (!m.need_weights) {
    // PyTorch returns None; an empty tensor keeps the value a Tensor, as the reference does.
    weights = cx.empty({0}, DType::kFloat32);
  } else if (m.average_attn_weights) {
    weights = cx.empty({B, L, S}, DType::kFloat32);
    KernelLaunch k;
    k.file = "sequence.cl";
    k.kernel = "mean_heads";
    k.args = {weights, scores, H, L * S};
    k.global = {static_cast<size_t>(L * S), static_cast<size_t>(B)};
    cx.launch(std::move(k));
  } else {
    weights = scores;
  }
  return {out, weights};
}

// Sizes and strides of a tensor padded on the left to `rank` dims (size 1, stride 0).
struct Dims {
  Shape sizes, strides;
};
Dims padded(const Tensor& t, size_t rank) {
  Dims d{Shape(rank - static_cast<size_t>(t.dim()), 1), Shape(rank - static_cast<size_t>(t.dim()), 0)};
  d.sizes.insert(d.sizes.end(), t.sizes().begin(), t.sizes().end());
  d.strides.insert(d.strides.end(), t.strides().begin(), t.strides().end());
  return d;
}

// Splits dim `d` of size hk·rep (or hk, with `repeat`: each entry serves rep consecutive heads) into
// (hk, rep).
void split_heads(Dims& x, size_t d, int64_t hk, int64_t rep, bool repeat) {
  const int64_t s = x.strides[d];
  x.sizes[d] = hk;
  x.strides[d] = repeat ? s : s * rep;
  x.sizes.insert(x.sizes.begin() + static_cast<int64_t>(d) + 1, rep);
  x.strides.insert(x.strides.begin() + static_cast<int64_t>(d) + 1, repeat ? 0 : s);
}

// scaled_dot_product_attention on (..., L, E), (..., S, E), (..., S, Ev); batch dims broadcast. Returns
// the output and the attention probabilities (batch..., L, S).
std::pair<Tensor, Tensor> sdpa(OpContext& cx, const Tensor& query_in, const Tensor& key_in,
                               const Tensor& value_in, const Tensor& attn_mask, double dropout_p,
                               bool is_causal, std::optional<double> scale, bool enable_gqa, const char* op) {
  CONVOY_CHECK_KIND(kUnsupported, dropout_p == 0.0, op, ": dropout_p=", dropout_p,
                    " makes the result random; export the model in eval mode (dropout_p=0)");
  CONVOY_CHECK(query_in.dim() >= 2 && key_in.dim() >= 2 && value_in.dim() >= 2, op,
               ": query, key and value need at least 2 dims, got ", query_in.describe(), ", ",
               key_in.describe(), ", ", value_in.describe());
  CONVOY_CHECK(!(is_causal && attn_mask.defined()), op, ": an explicit attn_mask ",
               attn_mask.defined() ? attn_mask.describe() : std::string(),
               " must not be given with is_causal=True");
  CONVOY_CHECK(query_in.dtype() == key_in.dtype() && query_in.dtype() == value_in.dtype(), op,
               ": query, key and value must have the same dtype, got ", query_in.describe(), ", ",
               key_in.describe(), " and ", value_in.describe());
  check_f32(cx, query_in, "the query");
  const int64_t L = query_in.size(-2), E = query_in.size(-1), S = key_in.size(-2), Ev = value_in.size(-1);
  CONVOY_CHECK(key_in.size(-1) == E && value_in.size(-2) == S, op, ": query ", query_in.describe(), ", key ",
               key_in.describe(), " and value ", value_in.describe(), " have mismatched sizes");
  if (attn_mask.defined() && attn_mask.dtype() != DType::kBool)
    CONVOY_CHECK(is_floating(attn_mask.dtype()), op, ": attention mask ", attn_mask.describe(),
                 " must be bool or floating point");
  Tensor query = cx.to_device(query_in), key = cx.to_device(key_in), value = cx.to_device(value_in);
  const size_t rank = static_cast<size_t>(std::max({query.dim(), key.dim(), value.dim()}));
  Dims q = padded(query, rank), k = padded(key, rank), v = padded(value, rank);
  bool gqa = false;
  int64_t hk = 0, rep = 1;
  if (enable_gqa && query.dim() >= 3 && key.dim() >= 3 && key.size(-3) != query.size(-3)) {
    // Grouped-query attention: each key/value head serves query.size(-3) / key.size(-3) query heads.
    const int64_t hq = query.size(-3);
    hk = key.size(-3);
    CONVOY_CHECK(hk > 0 && hq % hk == 0 && value.size(-3) == hk, op, ": enable_gqa needs query heads ", hq,
                 " to be a multiple of key/value heads ", hk, " (value ", value.describe(), ")");
    gqa = true;
    rep = hq / hk;
  }
  // The broadcast batch shape (unsplit), with the reference's error.
  Shape batch(rank - 2, 1);
  for (const Dims* t : {&q, &k, &v})
    for (size_t i = 0; i + 2 < rank; ++i) {
      int64_t s = t->sizes[i];
      if (gqa && i == rank - 3 && t != &q) s = s * rep;  // k/v heads stand for rep query heads each
      CONVOY_CHECK(batch[i] == 1 || s == 1 || s == batch[i], op, ": batch dims of query ", query.describe(),
                   ", key ", key.describe(), " and value ", value.describe(), " cannot be broadcast");
      if (s != 1) batch[i] = s;
    }
  Dims mask;
  const Tensor mask_dev = attn_mask.defined() ? cx.to_device(attn_mask) : Tensor();
  if (mask_dev.defined()) {
    Shape full = batch;
    full.push_back(L);
    full.push_back(S);
    mask.strides = mask_strides_for(mask_dev, full, op);
    mask.sizes = full;
  }
  Shape split_batch = batch;
  if (gqa) {
    const size_t hd = rank - 3;
    split_heads(q, hd, hk, rep, false);
    split_heads(k, hd, hk, rep, true);
    split_heads(v, hd, hk, rep, true);
    if (attn_mask.defined()) split_heads(mask, hd, hk, rep, false);
    split_batch[hd] = hk;
    split_batch.insert(split_batch.begin() + static_cast<int64_t>(hd) + 1, rep);
  }
  // Views over the (split) batch with stride 0 where an operand broadcasts.
  const size_t nb = split_batch.size();
  auto view = [&](const Tensor& t, const Dims& x, int64_t rows, int64_t cols, bool transpose) {
    Shape sizes = split_batch, strides;
    for (size_t i = 0; i < nb; ++i) strides.push_back(x.sizes[i] == 1 ? 0 : x.strides[i]);
    sizes.push_back(rows);
    sizes.push_back(cols);
    strides.push_back(transpose ? x.strides[nb + 1] : x.strides[nb]);
    strides.push_back(transpose ? x.strides[nb] : x.strides[nb + 1]);
    return t.as_strided(sizes, strides, t.offset());
  };
  Tensor qv = view(query, q, L, E, false), kt = view(key, k, E, S, true), vv = view(value, v, S, Ev, false);
  auto with = [&](const Shape& b, int64_t x, int64_t y) {
    Shape s = b;
    s.push_back(x);
    s.push_back(y);
    return s;
  };
  Tensor scores = cx.empty(with(split_batch, L, S), DType::kFloat32);
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));
  if (E > 0)
    batched_gemm(cx, qv, kt, scores, static_cast<float>(sc), 0.0f, {}, Tensor());
  else
    fill(cx, scores, 0.0);
  MaskRule rule = !attn_mask.defined()                ? MaskRule::kNone
                  : attn_mask.dtype() == DType::kBool ? MaskRule::kBoolAttends
                                                      : MaskRule::kAdditive;
  attention_softmax(cx, scores, mask_dev, mask.strides, rule, is_causal, true);
  Tensor out = cx.empty(with(batch, L, Ev), DType::kFloat32);
  Tensor out_split =
      out.as_strided(with(split_batch, L, Ev), contiguous_strides(with(split_batch, L, Ev)), out.offset());
  if (S > 0)
    batched_gemm(cx, scores, vv, out_split, 1.0f, 0.0f, {}, Tensor());
  else
    fill(cx, out, 0.0);
  const Shape weights_shape = with(batch, L, S);
  return {out, scores.as_strided(weights_shape, contiguous_strides(weights_shape), scores.offset())};
}

// layer_norm over the last dim of a contiguous float32 tensor (norm.cl's kernel).
Tensor layer_norm_rows(OpContext& cx, const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                       double eps, const char* op) {
  Tensor x = contiguous(cx, cx.to_device(x_in));
  const int64_t n = x.size(-1);
  CONVOY_CHECK(weight.numel() == n && bias.numel() == n, op, ": norm weight ", weight.describe(),
               " and bias ", bias.describe(), " must have ", n, " elements");
  Tensor out = cx.empty(x.sizes(), DType::kFloat32);
  if (x.numel() == 0) return out;
  size_t lsize = 1;
  const size_t limit = std::min<size_t>(256, cx.device().max_work_group_size);
  while (lsize * 2 <= limit && static_cast<int64_t>(lsize) < n) lsize *= 2;
  KernelLaunch k;
  k.file = "norm.cl";
  k.kernel = "layer_norm";
  k.options = "-DHAS_WEIGHT -DHAS_BIAS";
  k.args = {out,
            x,
            contiguous(cx, cx.to_device(weight)),
            contiguous(cx, cx.to_device(bias)),
            n,
            static_cast<float>(eps),
            LocalMemory{lsize * sizeof(float)}};
  k.global = {static_cast<size_t>(x.numel() / n) * lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
  return out;
}

Tensor add(OpContext& cx, const Tensor& a, const Tensor& b) {
  Tensor out = cx.empty(a.sizes(), DType::kFloat32);
  elementwise(cx, "ADD", out, {EwInput::of(a), EwInput::of(b)}, DType::kFloat32, {1, 0, 0});
  return out;
}

// nn.TransformerEncoderLayer's fused forward (batch-first src).
Tensor transformer_encoder_layer(OpContext& cx, IValueList& a) {
  constexpr const char* op = "aten::_transformer_encoder_layer_fwd";
  const nn::EncoderLayerArgs e = nn::read_encoder_layer_args(a);
  const Tensor& src = e.src;
  CONVOY_CHECK(src.dim() == 3, op, ": src ", src.describe(), " must be 3-D (batch, seq, embed)");
  check_f32(cx, src, "src");
  auto attend = [&](const Tensor& x) { return native_mha(cx, e.self_attention(x), op).first; };
  auto ffn = [&](const Tensor& x) {
    Tensor h = linear(cx, x, e.ffn1_weight, e.ffn1_bias,
                      e.use_gelu ? gemm::Activation::kGelu : gemm::Activation::kRelu);
    return linear(cx, h, e.ffn2_weight, e.ffn2_bias);
  };
  auto norm = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
    return layer_norm_rows(cx, x, w, b, e.eps, op);
  };
  Tensor x = cx.to_device(src);
  if (e.norm_first) {
    x = add(cx, x, attend(norm(x, e.norm1_weight, e.norm1_bias)));
    x = add(cx, x, ffn(norm(x, e.norm2_weight, e.norm2_bias)));
  } else {
    x = norm(add(cx, x, attend(x)), e.norm1_weight, e.norm1_bias);
    x = norm(add(cx, x, ffn(x)), e.norm2_weight, e.norm2_bias);
  }
  return x;
}

}  // namespace

void register_opencl_sequence_ops(OpenCLOpTable& t) {
  t.add("aten::gru.input", [](OpContext& cx, IValueList& a) {
    RnnOutputs o = run_rnn(cx, nn::read_rnn_config(CellKind::kGru, "aten::gru", a), a[0].to_tensor(),
                           a[1].to_tensor(), Tensor(), a[2].to_tensor_list());
    return IValueList{IValue(o.output), IValue(o.h_n)};
  });
  t.add("aten::lstm.input", [](OpContext& cx, IValueList& a) {
    std::vector<Tensor> hx = a[1].to_tensor_list();
    CONVOY_CHECK(hx.size() == 2, "aten::lstm: hx must hold (h_0, c_0), got ", hx.size(), " tensors");
    RnnOutputs o = run_rnn(cx, nn::read_rnn_config(CellKind::kLstm, "aten::lstm", a), a[0].to_tensor(), hx[0],
                           hx[1], a[2].to_tensor_list());
    return IValueList{IValue(o.output), IValue(o.h_n), IValue(o.c_n)};
  });
  for (bool relu : {false, true}) {
    const char* name = relu ? "aten::rnn_relu" : "aten::rnn_tanh";
    t.add(str_cat(name, ".input"), [relu, name](OpContext& cx, IValueList& a) {
      RnnOutputs o = run_rnn(cx, nn::read_rnn_config(relu ? CellKind::kRnnRelu : CellKind::kRnnTanh, name, a),
                             a[0].to_tensor(), a[1].to_tensor(), Tensor(), a[2].to_tensor_list());
      return IValueList{IValue(o.output), IValue(o.h_n)};
    });
  }
  t.add("aten::_native_multi_head_attention", [](OpContext& cx, IValueList& a) {
    auto [out, weights] = native_mha(cx, nn::read_native_mha_args(a), "aten::_native_multi_head_attention");
    return IValueList{IValue(out), IValue(weights)};
  });
  t.add("aten::_transformer_encoder_layer_fwd",
        [](OpContext& cx, IValueList& a) { return IValueList{IValue(transformer_encoder_layer(cx, a))}; });
  t.add("aten::scaled_dot_product_attention", [](OpContext& cx, IValueList& a) {
    std::optional<double> scale;
    if (!a[6].is_none()) scale = a[6].to_double();
    return IValueList{IValue(sdpa(cx, a[0].to_tensor(), a[1].to_tensor(), a[2].to_tensor(),
                                  optional_tensor(a[3]), a[4].to_double(), a[5].to_bool(), scale,
                                  a[7].to_bool(), "aten::scaled_dot_product_attention")
                                 .first)};
  });
  // torch 1.13's private form returns the probabilities as the second result whatever need_attn_weights says.
  t.add("aten::_scaled_dot_product_attention", [](OpContext& cx, IValueList& a) {
    auto [out, weights] =
        sdpa(cx, a[0].to_tensor(), a[1].to_tensor(), a[2].to_tensor(), optional_tensor(a[3]),
             a[4].to_double(), a[6].to_bool(), std::nullopt, false, "aten::_scaled_dot_product_attention");
    return IValueList{IValue(out), IValue(weights)};
  });
}

}  // namespace convoy::opencl
