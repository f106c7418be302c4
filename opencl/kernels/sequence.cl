// Recurrent cells and attention pieces of the sequence family (opencl/ops/sequence.cpp). The matrix
// products around them (input projections of all time steps, the recurrent projection of each step,
// attention scores and contexts) are GEMMs; these kernels do the rest, in float32.
//
// Cells: one work item per (hidden unit j, batch row b); 2D launch (hidden, batch). The step's input
// projection gx (with b_ih) and recurrent projection gh (with b_hh) hold the gates side by side, as
// PyTorch orders them: GRU r, z, n; LSTM i, f, g, o. Every row pointer is (buffer, offset) plus a row
// stride, so the cells read and write time-major or batch-first layouts alike.

inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp(-x)); }

// h' = (1 - z) * n + z * h, n = tanh(gx_n + r * gh_n); h is read and written in place.
__kernel void gru_cell(__global const float* gx, long gx_off, long gx_row, __global const float* gh,
                       long gh_off, long gh_row, __global float* h, long h_off, long h_row,
                       __global float* out, long out_off, long out_row, long hidden) {
  const long j = get_global_id(0), b = get_global_id(1);
  __global const float* x = gx + gx_off + b * gx_row;
  __global const float* g = gh + gh_off + b * gh_row;
  const float r = sigmoid_f(x[j] + g[j]);
  const float z = sigmoid_f(x[hidden + j] + g[hidden + j]);
  const float n = tanh(x[2 * hidden + j] + r * g[2 * hidden + j]);
  const long hi = h_off + b * h_row + j;
  const float v = (1.0f - z) * n + z * h[hi];
  h[hi] = v;
  out[out_off + b * out_row + j] = v;
}

// c' = f * c + i * g, h' = o * tanh(c'). With a projection (LSTM proj_size), h' goes to `target` (the
// unprojected state) and the host projects it; otherwise target is the state h and out gets h' too.
__kernel void lstm_cell(__global const float* gx, long gx_off, long gx_row, __global const float* gh,
                        long gh_off, long gh_row, __global float* c, long c_off, long c_row,
                        __global float* target, long target_off, long target_row, __global float* out,
                        long out_off, long out_row, long hidden, int write_out) {
  const long j = get_global_id(0), b = get_global_id(1);
  __global const float* x = gx + gx_off + b * gx_row;
  __global const float* g = gh + gh_off + b * gh_row;
  const float ig = sigmoid_f(x[j] + g[j]);
  const float fg = sigmoid_f(x[hidden + j] + g[hidden + j]);
  const float gg = tanh(x[2 * hidden + j] + g[2 * hidden + j]);
  const float og = sigmoid_f(x[3 * hidden + j] + g[3 * hidden + j]);
  const long ci = c_off + b * c_row + j;
  const float cv = fg * c[ci] + ig * gg;
  c[ci] = cv;
  const float v = og * tanh(cv);
  target[target_off + b * target_row + j] = v;
  if (write_out) out[out_off + b * out_row + j] = v;
}

// h' = tanh(gx + gh) or relu(gx + gh) (RELU).
__kernel void rnn_cell(__global const float* gx, long gx_off, long gx_row, __global const float* gh,
                       long gh_off, long gh_row, __global float* h, long h_off, long h_row,
                       __global float* out, long out_off, long out_row) {
  const long j = get_global_id(0), b = get_global_id(1);
  const float s = gx[gx_off + b * gx_row + j] + gh[gh_off + b * gh_row + j];
#ifdef RELU
  const float v = s > 0.0f ? s : 0.0f;
#else
  const float v = tanh(s);
#endif
  h[h_off + b * h_row + j] = v;
  out[out_off + b * out_row + j] = v;
}

// copies `rows` x `n` floats between strided row layouts (the projected LSTM state into the output).
__kernel void copy_rows(__global float* dst, long dst_off, long dst_row, __global const float* src,
                        long src_off, long src_row) {
  const long j = get_global_id(0), b = get_global_id(1);
  dst[dst_off + b * dst_row + j] = src[src_off + b * src_row + j];
}

// ---- attention --------------------------------------------------------------------------------------
// attn_softmax: in place over the rows of contiguous scores (rows x n, already scaled), one work-group
// per row, with the mask read through strides: row r decomposes over meta's sizes (the batch dims
// and L) into the mask's offset; along the row the mask steps by mask_step.
// MASK_NONZERO: a nonzero mask element (any dtype) masks out (native multi-head attention).
// MASK_BOOL: a false element masks out (scaled_dot_product_attention's bool masks).
// MASK_ADD: the mask is added to the scores (scaled_dot_product_attention's float masks).
// CAUSAL: element j of row i (i = row mod L) is masked out when j > i.
// ZERO_MASKED_ROWS: a row with every score -inf gives zeros instead of NaN.
// meta: rank r, sizes[r], mask strides[r]. M_T / M_LD: the mask's storage, as in copy.cl.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#define LD_PLAIN(p, i) ((p)[i])
#define LD_HALF(p, i) vload_half((i), (p))
#define LD_BF16(p, i) as_float(((uint)(p)[i]) << 16)
#define LD_BOOL(p, i) ((p)[i] != 0)
#ifndef M_T
#define M_T uchar
#define M_LD LD_BOOL
#endif

// Row element j of a score row (row i within its batch entry), masked.
inline float masked_score(__global const float* s, long base, long j, long i, __global const M_T* mask,
                          long mask_base, long mask_step) {
  float v = s[base + j];
#ifdef CAUSAL
  if (j > i) v = -INFINITY;
#endif
#if defined(MASK_NONZERO)
  if (M_LD(mask, mask_base + j * mask_step) != 0) v = -INFINITY;
#elif defined(MASK_BOOL)
  if (!(M_LD(mask, mask_base + j * mask_step))) v = -INFINITY;
#elif defined(MASK_ADD)
  v += (float)M_LD(mask, mask_base + j * mask_step);
#endif
  return v;
}

#define SCORE(j) masked_score(scores, base, (j), i, mask, mask_base, mask_step)

__kernel void attn_softmax(__global float* scores, long scores_off, long n, long rows_per_batch,
                           __global const M_T* mask, long mask_off, long mask_step, __global const long* meta,
                           int meta_off, __local float* part) {
  meta += meta_off;
  const long row = get_group_id(0);
  const long i = row % rows_per_batch;
  const long base = scores_off + row * n;
  long mask_base = mask_off;
  {
    const int r = (int)meta[0];
    long rest = row;
    for (int d = r - 1; d >= 0; --d) {
      const long s = meta[1 + d];
      mask_base += (rest % s) * meta[1 + r + d];
      rest /= s;
    }
  }
  const int lid = get_local_id(0), lsize = get_local_size(0);

  float m = -INFINITY;
  for (long j = lid; j < n; j += lsize) {
    const float v = SCORE(j);
    m = (isnan(v) || v > m) ? v : m;
  }
  part[lid] = m;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) {
      const float a = part[lid], b = part[lid + s];
      part[lid] = (isnan(b) || b > a) ? b : a;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float row_max = part[0];
  barrier(CLK_LOCAL_MEM_FENCE);
#ifdef ZERO_MASKED_ROWS
  if (row_max == -INFINITY) {
    for (long j = lid; j < n; j += lsize) scores[base + j] = 0.0f;
    return;
  }
#endif
  float sum = 0.0f;
  for (long j = lid; j < n; j += lsize) sum += exp(SCORE(j) - row_max);
  part[lid] = sum;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) part[lid] += part[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float inv = 1.0f / part[0];
  for (long j = lid; j < n; j += lsize) {
    const float v = exp(SCORE(j) - row_max) * inv;
    scores[base + j] = v;
  }
}

// attn_softmax_rows: attn_softmax with one work-item per row (CPUs, see nn_rows_layout); `rows` bounds
// a launch rounded up to whole work-groups.
__kernel void attn_softmax_rows(__global float* scores, long scores_off, long n, long rows_per_batch,
                                __global const M_T* mask, long mask_off, long mask_step,
                                __global const long* meta, int meta_off, long rows) {
  meta += meta_off;
  const long row = get_global_id(0);
  if (row >= rows) return;
  const long i = row % rows_per_batch;
  const long base = scores_off + row * n;
  long mask_base = mask_off;
  {
    const int r = (int)meta[0];
    long rest = row;
    for (int d = r - 1; d >= 0; --d) {
      const long s = meta[1 + d];
      mask_base += (rest % s) * meta[1 + r + d];
      rest /= s;
    }
  }
  float row_max = -INFINITY;
  for (long j = 0; j < n; ++j) {
    const float v = SCORE(j);
    row_max = (isnan(v) || v > row_max) ? v : row_max;
  }
#ifdef ZERO_MASKED_ROWS
  if (row_max == -INFINITY) {
    for (long j = 0; j < n; ++j) scores[base + j] = 0.0f;
    return;
  }
#endif
  // exp once per element: the row is written with exp(s - max), then scaled (scores are float32 and
  // the kernel works in place, so the masked score of an element is only read before it is written).
  float sum = 0.0f;
  for (long j = 0; j < n; ++j) {
    const float e = exp(SCORE(j) - row_max);
    scores[base + j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
  for (long j = 0; j < n; ++j) scores[base + j] *= inv;
}

// avg[b, e] = mean over h of w[b, h, e] for contiguous w (B, H, E); 2D launch (E, B). The sum runs in
// head order, as the reference's.
__kernel void mean_heads(__global float* avg, long avg_off, __global const float* w, long w_off, long heads,
                         long e_count) {
  const long e = get_global_id(0), b = get_global_id(1);
  float s = 0.0f;
  for (long h = 0; h < heads; ++h) s += w[w_off + (b * heads + h) * e_count + e];
  avg[avg_off + b * e_count + e] = s / (float)heads;
}
