// Recurrent and attention ops: gru / lstm / rnn_tanh / rnn_relu (multi-layer, bidirectional,
// batch_first both ways, LSTM projections), _native_multi_head_attention (the fast path that
// nn.MultiheadAttention takes in eval mode), _transformer_encoder_layer_fwd (nn.TransformerEncoderLayer's
// fast path, which torch 1.13 traces in eval mode under no_grad), scaled_dot_product_attention (torch 2.x)
// and torch 1.13's _scaled_dot_product_attention.
//
// Recurrences run time-major on contiguous buffers: the input projection of all time steps is one GEMM,
// then each step multiplies the hidden state by a pre-packed W_hhᵀ.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/nn_kernels.h"

namespace convoy {
namespace nn {
namespace {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// A view of t with dims 0 and 1 exchanged (no copy).
Tensor swap01(const Tensor& t) {
  Shape sizes = t.sizes(), strides = t.strides();
  std::swap(sizes[0], sizes[1]);
  std::swap(strides[0], strides[1]);
  return t.as_strided(sizes, strides, t.offset());
}

// A view of t broadcast (right-aligned) to `shape`; an error naming op and what otherwise.
Tensor expand_view(const Tensor& t, const Shape& shape, const char* op, const char* what) {
  return t.as_strided(shape, broadcast_strides(t, shape, op, what), t.offset());
}

// ---- recurrent layers --------------------------------------------------------------------------

struct RnnOutputs {
  Tensor output, h_n, c_n;
};

// Runs one direction of one layer over the whole sequence. x: (T, B, in) contiguous; writes h_t into
// out (T, B, out_stride) at column offset `column`; h and c hold the initial state and receive the final.
template <typename T>
void run_direction(CellKind kind, const T* x, int64_t steps, int64_t batch, int64_t in, const T* w_ih,
                   const T* w_hh, const T* b_ih, const T* b_hh, const T* w_hr, int64_t hidden,
                   int64_t out_size, bool reverse, T* out, int64_t out_stride, int64_t column, T* h, T* c) {
  const int64_t G = gate_count(kind) * hidden;
  // Input projections of every step at once: (T·B, G).
  std::vector<T> gx(static_cast<size_t>(steps * batch * G));
  linear_rows<T>(x, steps * batch, in, w_ih, G, b_ih, gx.data());
  std::vector<T> w_hh_t;
  int64_t ld_hh = 0;
  const T* whh = rows_contiguous(w_hh, out_size, G, 1, out_size, w_hh_t, ld_hh);
  std::vector<T> w_hr_t;
  int64_t ld_hr = 0;
  const T* whr = w_hr ? rows_contiguous(w_hr, hidden, out_size, 1, hidden, w_hr_t, ld_hr) : nullptr;
  std::vector<T> gh(static_cast<size_t>(batch * G));
  std::vector<T> full_h(w_hr ? static_cast<size_t>(batch * hidden) : 0);
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t t = reverse ? steps - 1 - s : s;
    for (int64_t b = 0; b < batch; ++b) {
      T* row = gh.data() + b * G;
      if (b_hh)
        std::copy(b_hh, b_hh + G, row);
      else
        std::fill(row, row + G, T(0));
    }
    gemm_accumulate<T>(batch, G, out_size, h, out_size, 1, whh, ld_hh, gh.data(), G);
    for (int64_t b = 0; b < batch; ++b) {
      const T* gxr = gx.data() + (t * batch + b) * G;
      const T* ghr = gh.data() + b * G;
      T* hb = h + b * out_size;
      switch (kind) {
        case CellKind::kGru:
          // Gates r, z, n; the reset gate scales W_hn·h + b_hn, as PyTorch's GRU does.
          for (int64_t j = 0; j < hidden; ++j) {
            const T r = sigmoid(gxr[j] + ghr[j]);
            const T z = sigmoid(gxr[hidden + j] + ghr[hidden + j]);
            const T n = std::tanh(gxr[2 * hidden + j] + r * ghr[2 * hidden + j]);
            hb[j] = (T(1) - z) * n + z * hb[j];
          }
          break;
        case CellKind::kLstm: {
          // Gates i, f, g, o.
          T* cb = c + b * hidden;
          T* target = w_hr ? full_h.data() + b * hidden : hb;
          for (int64_t j = 0; j < hidden; ++j) {
            const T ig = sigmoid(gxr[j] + ghr[j]);
            const T fg = sigmoid(gxr[hidden + j] + ghr[hidden + j]);
            const T gg = std::tanh(gxr[2 * hidden + j] + ghr[2 * hidden + j]);
            const T og = sigmoid(gxr[3 * hidden + j] + ghr[3 * hidden + j]);
            cb[j] = fg * cb[j] + ig * gg;
            target[j] = og * std::tanh(cb[j]);
          }
          break;
        }
        case CellKind::kRnnTanh:
          for (int64_t j = 0; j < hidden; ++j) hb[j] = std::tanh(gxr[j] + ghr[j]);
          break;
        case CellKind::kRnnRelu:
          for (int64_t j = 0; j < hidden; ++j) hb[j] = std::max(gxr[j] + ghr[j], T(0));
          break;
      }
    }
    if (w_hr) {
      // LSTM projection: h = (o ⊙ tanh(c)) · W_hrᵀ.
      std::fill(h, h + batch * out_size, T(0));
      gemm_accumulate<T>(batch, out_size, hidden, full_h.data(), hidden, 1, whr, ld_hr, h, out_size);
    }
    for (int64_t b = 0; b < batch; ++b)
      std::copy(h + b * out_size, h + (b + 1) * out_size, out + (t * batch + b) * out_stride + column);
  }
}

RnnOutputs run_rnn(const RnnConfig& cfg, const Tensor& input, const Tensor& hx, const Tensor& cx,
                   const std::vector<Tensor>& params) {
  const char* op = cfg.op;
  const RnnGeometry geo = rnn_geometry(cfg, input, hx, cx, params);
  const int64_t D = geo.directions, steps = geo.steps, batch = geo.batch, hidden = geo.hidden,
                out_size = geo.out_size;
  for (const Tensor& p : params) check_same_dtype(op, input, "input", p, "parameter");
  check_same_dtype(op, input, "input", hx, "hx");

  const DType compute = float_compute_dtype(input, op, "input");
  return dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor layer_in = contiguous_as(cfg.batch_first ? swap01(input) : input, compute);  // (T, B, in)
    Tensor h_n = copy_as(hx, compute);
    Tensor c_n = cfg.kind == CellKind::kLstm ? copy_as(cx, compute) : Tensor();
    Tensor layer_out;
    for (int64_t l = 0; l < cfg.num_layers; ++l) {
      const int64_t in = layer_in.size(2);
      layer_out = Tensor::empty({steps, batch, D * out_size}, compute);
      for (int64_t d = 0; d < D; ++d) {
        const int64_t g = l * D + d;
        const RnnLayerParams p = rnn_layer_params(cfg, geo, params, l, d, in);
        Tensor wi = contiguous_as(p.w_ih, compute), wh = contiguous_as(p.w_hh, compute);
        Tensor bi = p.b_ih.defined() ? contiguous_as(p.b_ih, compute) : Tensor();
        Tensor bh = p.b_hh.defined() ? contiguous_as(p.b_hh, compute) : Tensor();
        Tensor wr = p.w_hr.defined() ? contiguous_as(p.w_hr, compute) : Tensor();
        T* h = h_n.data<T>() + g * batch * out_size;
        T* c = c_n.defined() ? c_n.data<T>() + g * batch * hidden : nullptr;
        run_direction<T>(cfg.kind, layer_in.data<T>(), steps, batch, in, wi.data<T>(), wh.data<T>(),
                         bi.defined() ? bi.data<T>() : nullptr, bh.defined() ? bh.data<T>() : nullptr,
                         wr.defined() ? wr.data<T>() : nullptr, hidden, out_size, d == 1, layer_out.data<T>(),
                         D * out_size, d * out_size, h, c);
      }
      layer_in = layer_out;
    }
    RnnOutputs r;
    r.output = cfg.batch_first ? copy_as(swap01(layer_out), compute) : layer_out;
    r.output = to_result_dtype(r.output, input.dtype());
    r.h_n = to_result_dtype(h_n, input.dtype());
    if (c_n.defined()) r.c_n = to_result_dtype(c_n, input.dtype());
    return r;
  });
}

std::vector<TypePtr> infer_rnn(const std::vector<TypePtr>& args, int returns) {
  std::vector<TypePtr> out;
  for (int i = 0; i < returns; ++i) out.push_back(Type::tensor(known_dtype(args, 0), std::nullopt));
  return out;
}

// ---- attention -------------------------------------------------------------------------------------

// How a mask reads. The native multi-head attention kernels mask out wherever the mask is non-zero,
// whatever its dtype (torch 2.x hands them float masks of 0 / -inf; any other non-zero float masks out
// too, as PyTorch's CPU kernel does). scaled_dot_product_attention attends where a bool mask is True
// and adds a float mask to the scores.
enum class MaskRule { kNonzeroMasksOut, kSdpa };

// The mask as an additive T buffer of shape `shape` (broadcast), or empty when there is none.
template <typename T>
std::vector<T> additive_mask(const Tensor& mask, const Shape& shape, MaskRule rule, const char* op) {
  if (!mask.defined()) return {};
  Tensor view = expand_view(mask, shape, op, "attention mask");
  std::vector<T> out(static_cast<size_t>(shape_numel(shape)));
  const T inf = std::numeric_limits<T>::infinity();
  if (mask.dtype() == DType::kBool) {
    Tensor bytes = view.to(DType::kUInt8).contiguous();
    const uint8_t* p = bytes.data<uint8_t>();
    for (size_t i = 0; i < out.size(); ++i) {
      const bool masked = rule == MaskRule::kNonzeroMasksOut ? p[i] != 0 : p[i] == 0;
      out[i] = masked ? -inf : T(0);
    }
    return out;
  }
  if (rule == MaskRule::kNonzeroMasksOut) {
    const std::vector<double> values = view.to_doubles();
    for (size_t i = 0; i < out.size(); ++i) out[i] = values[i] != 0.0 ? -inf : T(0);
    return out;
  }
  float_compute_dtype(mask, op, "attention mask");
  Tensor m = contiguous_as(view, dtype_of<T>());
  std::copy(m.data<T>(), m.data<T>() + out.size(), out.begin());
  return out;
}

// For each of `batches` independent problems: scores = q·kᵀ (q already scaled) + mask, softmax over S,
// ctx = scores·v. q: (L, E), k: (S, E), v: (S, Ev), all contiguous per problem. `weights` (L, S per
// problem) receives the probabilities when non-null. Rows that are entirely masked give NaN (PyTorch's
// softmax) or zeros when zero_masked_rows.
template <typename T>
void attention(const T* q, const T* k, const T* v, int64_t batches, int64_t L, int64_t S, int64_t E,
               int64_t Ev, const T* mask, bool zero_masked_rows, T* ctx, T* weights) {
  std::vector<T> kt, scores(static_cast<size_t>(L * S));
  for (int64_t b = 0; b < batches; ++b) {
    const T* qb = q + b * L * E;
    const T* kb = k + b * S * E;
    const T* vb = v + b * S * Ev;
    std::fill(scores.begin(), scores.end(), T(0));
    int64_t ldk = 0;
    const T* ktp = rows_contiguous(kb, E, S, 1, E, kt, ldk);  // kᵀ: (E, S)
    gemm_accumulate<T>(L, S, E, qb, E, 1, ktp, ldk, scores.data(), S);
    if (mask) {
      const T* mb = mask + b * L * S;
      for (int64_t i = 0; i < L * S; ++i) scores[static_cast<size_t>(i)] += mb[i];
    }
    for (int64_t i = 0; i < L; ++i) {
      T* row = scores.data() + i * S;
      bool all_masked = S > 0;
      for (int64_t j = 0; j < S && all_masked; ++j)
        all_masked = row[j] == -std::numeric_limits<T>::infinity();
      if (all_masked && zero_masked_rows)
        std::fill(row, row + S, T(0));
      else
        softmax_rows<T>(row, 1, S);
    }
    if (weights) std::copy(scores.begin(), scores.end(), weights + b * L * S);
    T* cb = ctx + b * L * Ev;
    std::fill(cb, cb + L * Ev, T(0));
    gemm_accumulate<T>(L, Ev, S, scores.data(), S, 1, vb, Ev, cb, Ev);
  }
}

std::pair<Tensor, Tensor> native_mha(const MhaArgs& m, const char* op) {
  const Tensor& q_in = m.query;
  const MhaGeometry geo = mha_geometry(m, op);
  const int64_t B = geo.batch, L = geo.tgt_len, E = geo.embed_dim, H = geo.num_heads, S = geo.src_len;
  for (const Tensor* t : {&m.key, &m.value, &m.qkv_weight, &m.qkv_bias, &m.proj_weight, &m.proj_bias})
    check_same_dtype(op, q_in, "query", *t, "argument");
  const int64_t dh = geo.head_dim;
  const DType compute = float_compute_dtype(q_in, op, "query");
  auto result = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor w = contiguous_as(m.qkv_weight, compute), bias = contiguous_as(m.qkv_bias, compute);
    const T* wp = w.data<T>();
    const T* bp = bias.data<T>();
    auto project = [&](const Tensor& x, int64_t part, int64_t rows) {
      Tensor xc = contiguous_as(x, compute);
      std::vector<T> y(static_cast<size_t>(rows * E));
      linear_rows<T>(xc.data<T>(), rows, E, wp + part * E * E, E, bp + part * E, y.data());
      return y;
    };
    std::vector<T> q = project(q_in, 0, B * L), k = project(m.key, 1, B * S), v = project(m.value, 2, B * S);
    // (B, seq, H, dh) → (B, H, seq, dh); q scaled by 1/sqrt(dh) as the native kernel does.
    auto split_heads = [&](const std::vector<T>& x, int64_t seq, T scale) {
      std::vector<T> out(x.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t s = 0; s < seq; ++s)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t d = 0; d < dh; ++d)
              out[static_cast<size_t>(((b * H + h) * seq + s) * dh + d)] =
                  x[static_cast<size_t>((b * seq + s) * E + h * dh + d)] * scale;
      return out;
    };
    const T q_scale = T(1) / static_cast<T>(std::sqrt(static_cast<double>(dh)));
    std::vector<T> qh = split_heads(q, L, q_scale), kh = split_heads(k, S, T(1)),
                   vh = split_heads(v, S, T(1));
    std::vector<T> mask;
    if (m.mask.defined()) {
      Tensor mk = m.mask;
      // mask_type 1 is a key-padding mask (B, S); others broadcast to (B, H, L, S).
      if (m.mask_type && *m.mask_type == 1) {
        CONVOY_CHECK(mk.dim() == 2 && mk.size(0) == B && mk.size(1) == S, op, ": key padding mask ",
                     mk.describe(), " must be [", B, ", ", S, "]");
        mk = mk.as_strided({B, 1, 1, S}, {mk.stride(0), 0, 0, mk.stride(1)}, mk.offset());
      }
      mask = additive_mask<T>(mk, {B, H, L, S}, MaskRule::kNonzeroMasksOut, op);
    }
    std::vector<T> ctx(static_cast<size_t>(B * H * L * dh));
    Tensor weights = m.need_weights ? Tensor::empty({B, H, L, S}, compute) : Tensor();
    attention<T>(qh.data(), kh.data(), vh.data(), B * H, L, S, dh, dh, mask.empty() ? nullptr : mask.data(),
                 false, ctx.data(), weights.defined() ? weights.data<T>() : nullptr);
    std::vector<T> merged(static_cast<size_t>(B * L * E));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t l = 0; l < L; ++l)
          std::copy_n(ctx.data() + ((b * H + h) * L + l) * dh, dh, merged.data() + (b * L + l) * E + h * dh);
    Tensor pw = contiguous_as(m.proj_weight, compute), pb = contiguous_as(m.proj_bias, compute);
    Tensor out = Tensor::empty({B, L, E}, compute);
    linear_rows<T>(merged.data(), B * L, E, pw.data<T>(), E, pb.data<T>(), out.data<T>());
    if (weights.defined() && m.average_attn_weights) {
      Tensor avg = Tensor::empty({B, L, S}, compute);
      const T* wsrc = weights.data<T>();
      T* dst = avg.data<T>();
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < L * S; ++i) dst[b * L * S + i] += wsrc[(b * H + h) * L * S + i];
        for (int64_t i = 0; i < L * S; ++i) dst[b * L * S + i] /= static_cast<T>(H);
      }
      weights = avg;
    }
    return std::make_pair(out, weights);
  });
  Tensor out = to_result_dtype(result.first, q_in.dtype());
  // PyTorch returns an undefined tensor (None in Python) when need_weights=False; an empty tensor keeps
  // the value a Tensor for the executor.
  Tensor weights = result.second.defined() ? to_result_dtype(result.second, q_in.dtype())
                                           : Tensor::empty({0}, q_in.dtype());
  return {out, weights};
}

// scaled_dot_product_attention on tensors (..., L, E), (..., S, E), (..., S, Ev); batch dims broadcast.
std::pair<Tensor, Tensor> sdpa(const Tensor& query, const Tensor& key, const Tensor& value,
                               const Tensor& attn_mask, double dropout_p, bool is_causal,
                               std::optional<double> scale, bool enable_gqa, bool want_weights,
                               const char* op) {
  CONVOY_CHECK_KIND(kUnsupported, dropout_p == 0.0, op, ": dropout_p=", dropout_p,
                    " makes the result random; export the model in eval mode (dropout_p=0)");
  CONVOY_CHECK(query.dim() >= 2 && key.dim() >= 2 && value.dim() >= 2, op,
               ": query, key and value need at least 2 dims, got ", query.describe(), ", ", key.describe(),
               ", ", value.describe());
  CONVOY_CHECK(!(is_causal && attn_mask.defined()), op, ": an explicit attn_mask ", attn_mask.describe(),
               " must not be given with is_causal=True");
  check_same_dtype(op, query, "query", key, "key");
  check_same_dtype(op, query, "query", value, "value");
  const int64_t L = query.size(-2), E = query.size(-1), S = key.size(-2), Ev = value.size(-1);
  CONVOY_CHECK(key.size(-1) == E && value.size(-2) == S, op, ": query ", query.describe(), ", key ",
               key.describe(), " and value ", value.describe(), " have mismatched sizes");
  Tensor k_in = key, v_in = value;
  if (enable_gqa && query.dim() >= 3 && key.dim() >= 3 && key.size(-3) != query.size(-3)) {
    // Grouped-query attention: each key/value head serves query.size(-3) / key.size(-3) query heads.
    const int64_t hq = query.size(-3), hk = key.size(-3);
    CONVOY_CHECK(hk > 0 && hq % hk == 0 && value.size(-3) == hk, op, ": enable_gqa needs query heads ", hq,
                 " to be a multiple of key/value heads ", hk, " (value ", value.describe(), ")");
    auto repeat_heads = [&](const Tensor& t) {
      Shape sizes = t.sizes(), strides = t.strides();
      const size_t hd = sizes.size() - 3;
      sizes.insert(sizes.begin() + static_cast<int64_t>(hd) + 1, hq / hk);
      strides.insert(strides.begin() + static_cast<int64_t>(hd) + 1, 0);
      Tensor expanded = t.as_strided(sizes, strides, t.offset()).contiguous();
      Shape merged = t.sizes();
      merged[hd] = hq;
      return expanded.as_strided(merged, contiguous_strides(merged), expanded.offset());
    };
    k_in = repeat_heads(key);
    v_in = repeat_heads(value);
  }
  // Broadcast batch dims of q, k and v.
  const size_t rank = static_cast<size_t>(std::max({query.dim(), k_in.dim(), v_in.dim()}));
  Shape batch(rank - 2, 1);
  for (const Tensor* t : {&query, static_cast<const Tensor*>(&k_in), static_cast<const Tensor*>(&v_in)}) {
    for (size_t i = 0; i + 2 < static_cast<size_t>(t->dim()); ++i) {
      const size_t d = rank - static_cast<size_t>(t->dim()) + i;
      const int64_t s = t->sizes()[i];
      CONVOY_CHECK(batch[d] == 1 || s == 1 || s == batch[d], op, ": batch dims of query ", query.describe(),
                   ", key ", key.describe(), " and value ", value.describe(), " cannot be broadcast");
      if (s != 1) batch[d] = s;
    }
  }
  auto with = [&](int64_t a, int64_t b) {
    Shape s = batch;
    s.push_back(a);
    s.push_back(b);
    return s;
  };
  const int64_t nb = shape_numel(batch);
  const DType compute = float_compute_dtype(query, op, "query");
  auto result = dispatch_float(compute, [&](auto tag) {
    using T = decltype(tag);
    Tensor q = copy_as(expand_view(query, with(L, E), op, "query"), compute);
    Tensor k = contiguous_as(expand_view(k_in, with(S, E), op, "key"), compute);
    Tensor v = contiguous_as(expand_view(v_in, with(S, Ev), op, "value"), compute);
    const T sc = static_cast<T>(scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E)));
    T* qp = q.data<T>();
    for (int64_t i = 0; i < q.numel(); ++i) qp[i] *= sc;
    std::vector<T> mask;
    if (is_causal) {
      mask.assign(static_cast<size_t>(nb * L * S), T(0));
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t i = 0; i < L; ++i)
          for (int64_t j = i + 1; j < S; ++j)
            mask[static_cast<size_t>((b * L + i) * S + j)] = -std::numeric_limits<T>::infinity();
    } else {
      mask = additive_mask<T>(attn_mask, with(L, S), MaskRule::kSdpa, op);
    }
    Tensor out = Tensor::empty(with(L, Ev), compute);
    Tensor weights = want_weights ? Tensor::empty(with(L, S), compute) : Tensor::empty({0}, compute);
    attention<T>(qp, k.data<T>(), v.data<T>(), nb, L, S, E, Ev, mask.empty() ? nullptr : mask.data(), true,
                 out.data<T>(), want_weights ? weights.data<T>() : nullptr);
    return std::make_pair(out, weights);
  });
  return {to_result_dtype(result.first, query.dtype()), to_result_dtype(result.second, query.dtype())};
}

// nn.TransformerEncoderLayer's fused forward (batch-first src).
Tensor transformer_encoder_layer(IValueList& a) {
  constexpr const char* op = "aten::_transformer_encoder_layer_fwd";
  const EncoderLayerArgs e = read_encoder_layer_args(a);
  const Tensor& src = e.src;
  const bool use_gelu = e.use_gelu;
  auto norm = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
    return layer_norm_forward(x, Shape{e.embed_dim}, w, b, e.eps, op);
  };
  auto attend = [&](const Tensor& x) { return native_mha(e.self_attention(x), op).first; };
  auto add = [&](const Tensor& x, const Tensor& y) {
    const DType compute = float_compute_dtype(x, op, "src");
    Tensor out = copy_as(x, compute);
    Tensor yc = contiguous_as(y, compute);
    dispatch_float(compute, [&](auto tag) {
      using T = decltype(tag);
      T* o = out.data<T>();
      const T* p = yc.data<T>();
      for (int64_t i = 0; i < out.numel(); ++i) o[i] += p[i];
      return 0;
    });
    return to_result_dtype(out, x.dtype());
  };
  auto ffn = [&](const Tensor& x) {
    Tensor h = linear_forward(x, e.ffn1_weight, e.ffn1_bias, op);
    const DType compute = float_compute_dtype(h, op, "src");
    Tensor hc = copy_as(h, compute);
    dispatch_float(compute, [&](auto tag) {
      using T = decltype(tag);
      T* p = hc.data<T>();
      for (int64_t i = 0; i < hc.numel(); ++i) {
        const T v = p[i];
        p[i] = use_gelu ? static_cast<T>(0.5) * v * (T(1) + std::erf(v * static_cast<T>(M_SQRT1_2)))
                        : std::max(v, T(0));
      }
      return 0;
    });
    return linear_forward(to_result_dtype(hc, h.dtype()), e.ffn2_weight, e.ffn2_bias, op);
  };
  CONVOY_CHECK(src.dim() == 3, op, ": src ", src.describe(), " must be 3-D (batch, seq, embed)");
  Tensor x = src;
  if (e.norm_first) {
    x = add(x, attend(norm(x, e.norm1_weight, e.norm1_bias)));
    x = add(x, ffn(norm(x, e.norm2_weight, e.norm2_bias)));
  } else {
    x = norm(add(x, attend(x)), e.norm1_weight, e.norm1_bias);
    x = norm(add(x, ffn(x)), e.norm2_weight, e.norm2_bias);
  }
  return x;
}

std::vector<TypePtr> same_as_first(const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
  return tensor_result(known_dtype(args, 0), known_shape(args, 0));
}

}  // namespace
}  // namespace nn

void register_sequence_ops(OpRegistry& r) {
  using namespace nn;
  r.add(
      "aten::gru.input(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, float "
      "dropout, "
      "bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)",
      [](IValueList& a) -> IValueList {
        RnnOutputs o = run_rnn(read_rnn_config(CellKind::kGru, "aten::gru", a), a[0].to_tensor(),
                               a[1].to_tensor(), Tensor(), a[2].to_tensor_list());
        return {o.output, o.h_n};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) { return infer_rnn(args, 2); });
  r.add(
      "aten::lstm.input(Tensor input, Tensor[] hx, Tensor[] params, bool has_biases, int num_layers, float "
      "dropout, "
      "bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor, Tensor)",
      [](IValueList& a) -> IValueList {
        std::vector<Tensor> hx = a[1].to_tensor_list();
        CONVOY_CHECK(hx.size() == 2, "aten::lstm: hx must hold (h_0, c_0), got ", hx.size(), " tensors");
        RnnOutputs o = run_rnn(read_rnn_config(CellKind::kLstm, "aten::lstm", a), a[0].to_tensor(), hx[0],
                               hx[1], a[2].to_tensor_list());
        return {o.output, o.h_n, o.c_n};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) { return infer_rnn(args, 3); });
  r.add(
      "aten::rnn_tanh.input(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, "
      "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)",
      [](IValueList& a) -> IValueList {
        RnnOutputs o = run_rnn(read_rnn_config(CellKind::kRnnTanh, "aten::rnn_tanh", a), a[0].to_tensor(),
                               a[1].to_tensor(), Tensor(), a[2].to_tensor_list());
        return {o.output, o.h_n};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) { return infer_rnn(args, 2); });
  r.add(
      "aten::rnn_relu.input(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, "
      "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)",
      [](IValueList& a) -> IValueList {
        RnnOutputs o = run_rnn(read_rnn_config(CellKind::kRnnRelu, "aten::rnn_relu", a), a[0].to_tensor(),
                               a[1].to_tensor(), Tensor(), a[2].to_tensor_list());
        return {o.output, o.h_n};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) { return infer_rnn(args, 2); });

  // The same schema in torch 1.13 and 2.x.
  r.add(
      "aten::_native_multi_head_attention(Tensor query, Tensor key, Tensor value, int embed_dim, int "
      "num_head, "
      "Tensor qkv_weight, Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, Tensor? mask=None, "
      "bool need_weights=True, bool average_attn_weights=True, int? mask_type=None) -> (Tensor, Tensor)",
      [](IValueList& a) -> IValueList {
        auto [out, weights] = native_mha(read_native_mha_args(a), "aten::_native_multi_head_attention");
        return {out, weights};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
        return std::vector<TypePtr>{Type::tensor(known_dtype(args, 0), known_shape(args, 0)),
                                    Type::tensor(known_dtype(args, 0), std::nullopt)};
      });
  r.add(
      "aten::_transformer_encoder_layer_fwd(Tensor src, int embed_dim, int num_heads, Tensor qkv_weight, "
      "Tensor qkv_bias, Tensor proj_weight, Tensor proj_bias, bool use_gelu, bool norm_first, float eps, "
      "Tensor norm_weight_1, Tensor norm_bias_1, Tensor norm_weight_2, Tensor norm_bias_2, Tensor "
      "ffn_weight_1, "
      "Tensor ffn_bias_1, Tensor ffn_weight_2, Tensor ffn_bias_2, Tensor? mask=None, int? mask_type=None) -> "
      "Tensor",
      [](IValueList& a) -> IValueList { return {transformer_encoder_layer(a)}; }, same_as_first);
  // torch 2.0 has the first six arguments, 2.1 added `scale`, 2.5 `enable_gqa`; omitted trailing
  // arguments take these defaults.
  r.add(
      "aten::scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, "
      "float dropout_p=0., bool is_causal=False, *, float? scale=None, bool enable_gqa=False) -> Tensor",
      [](IValueList& a) -> IValueList {
        std::optional<double> scale;
        if (!a[6].is_none()) scale = a[6].to_double();
        return {sdpa(a[0].to_tensor(), a[1].to_tensor(), a[2].to_tensor(), optional_tensor(a[3]),
                     a[4].to_double(), a[5].to_bool(), scale, a[7].to_bool(), false,
                     "aten::scaled_dot_product_attention")
                    .first};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
        auto q = known_shape(args, 0), v = known_shape(args, 2);
        std::optional<Shape> shape;
        if (q && v && q->size() >= 2 && v->size() == q->size()) {
          shape = *q;
          shape->back() = v->back();
        }
        return tensor_result(known_dtype(args, 0), shape);
      });
  // torch 1.13's private form: it returns the attention probabilities as the second result whatever
  // need_attn_weights says.
  r.add(
      "aten::_scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, "
      "float dropout_p=0., bool need_attn_weights=False, bool is_causal=False) -> (Tensor, Tensor)",
      [](IValueList& a) -> IValueList {
        auto [out, weights] = sdpa(a[0].to_tensor(), a[1].to_tensor(), a[2].to_tensor(),
                                   optional_tensor(a[3]), a[4].to_double(), a[6].to_bool(), std::nullopt,
                                   false, true, "aten::_scaled_dot_product_attention");
        return {out, weights};
      });
}

}  // namespace convoy
