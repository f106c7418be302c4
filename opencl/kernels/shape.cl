// Data movement of the shape and indexing family: pad, roll, flip, repeat (remap), tril/triu
// (triangle), advanced indexing reads and writes (index_gather, index_put, index_put_acc), gather
// along a dim (gather_dim) and the stream compaction behind boolean masks (mask_scan, mask_coords,
// mask_compact, mask_put).
//
// Pure moves copy elements as raw bits: E_T is the unsigned type of the element's size (uchar, ushort,
// uint, ulong), so one program serves every dtype of that size and no fp64 support is needed.
// index_put_acc and mask_put convert and add: they use copy.cl's typed accessors (DST_T, DST_LD,
// DST_ST, SRC_T, SRC_LD) and the compute type CT.
//
// Every kernel takes a device tensor as (buffer, long element offset) and its sizes and strides from
// `meta` (a block of the plan's metadata buffer at meta_off), laid out as each kernel describes.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#ifndef E_T
#define E_T uint
#endif

// With FLAG, kernels that read indices computed on the device report the first bad one they meet in an
// int32 flag tensor: flag[0] = 1, flag[1] = which index tensor (or the dim), flag[2] = the value
// (truncated to int). The host zeroes the flag and the executor checks it after the run.
#ifdef FLAG
#define FLAG_PARAMS , __global int *flag, long flag_off
#define REPORT(k, v) (flag[flag_off] = 1, flag[flag_off + 1] = (int)(k), flag[flag_off + 2] = (int)(v))
#else
#define FLAG_PARAMS
#define REPORT(k, v) ((void)0)
#endif

// Per-dim source index rules of remap (shared with the host: opencl/ops/shape.cpp).
#define REMAP_CONSTANT 0   // j = i - p; outside [0, n) reads the fill value (constant pad, crop)
#define REMAP_WRAP 1       // j = (i - p) mod n (roll, circular pad, repeat)
#define REMAP_REFLECT 2    // j = i - p mirrored at both ends without repeating the edge
#define REMAP_REPLICATE 3  // j = clamp(i - p, 0, n - 1)
#define REMAP_FLIP 4       // j = n - 1 - i

// out (contiguous) = src read through a per-dim index rule. meta: rank r, out sizes[r], src sizes[r],
// src strides[r], rules[r], params[r]. 1D launch over out's elements.
__kernel void remap(__global E_T* out, long out_off, __global const E_T* src, long src_off,
                    __global const long* meta, int meta_off, ulong fill_bits) {
  meta += meta_off;
  const int r = (int)meta[0];
  const long i = get_global_id(0);
  long rest = i, so = src_off;
  bool inside = true;
  for (int d = r - 1; d >= 0; --d) {
    const long osize = meta[1 + d];
    const long idx = rest % osize;
    rest /= osize;
    const long n = meta[1 + r + d];
    const long rule = meta[1 + 3 * r + d];
    long j = idx - meta[1 + 4 * r + d];
    if (rule == REMAP_WRAP) {
      j %= n;
      if (j < 0) j += n;
    } else if (rule == REMAP_REFLECT) {
      if (j < 0) j = -j;
      if (j >= n) j = 2 * (n - 1) - j;
    } else if (rule == REMAP_REPLICATE) {
      j = j < 0 ? 0 : (j >= n ? n - 1 : j);
    } else if (rule == REMAP_FLIP) {
      j = n - 1 - idx;
    } else if (j < 0 || j >= n) {
      inside = false;
    }
    so += j * meta[1 + 2 * r + d];
  }
  out[out_off + i] = inside ? src[so] : (E_T)fill_bits;
}

// out (contiguous, batch of rows x cols matrices) = src where the element is on the kept side of the
// diagonal, else zero bits (0 in every dtype). meta: rank r, sizes[r], src strides[r].
__kernel void triangle(__global E_T* out, long out_off, __global const E_T* src, long src_off,
                       __global const long* meta, int meta_off, long rows, long cols, long diagonal,
                       int lower) {
  meta += meta_off;
  const int r = (int)meta[0];
  const long i = get_global_id(0);
  long rest = i, so = src_off;
  for (int d = r - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    so += (rest % s) * meta[1 + r + d];
    rest /= s;
  }
  const long col = i % cols, row = (i / cols) % rows;
  const bool keep = lower ? col - row <= diagonal : col - row >= diagonal;
  out[out_off + i] = keep ? src[so] : (E_T)0;
}

// ---- advanced indexing ------------------------------------------------------------------------------
// The result of self[indices] has "plain" dims (not indexed: they keep self's stride) and the dims of
// the broadcast index shape B. Work item (p, b): p runs over the plain dims, b over B (row-major). The
// K index tensors are int64, contiguous, one after the other: idx[k * bn + b]; negative values wrap.
// meta: np, plain sizes[np], plain self strides[np], plain other strides[np], nb, B sizes[nb],
//       B other strides[nb], K, then per index: self stride, dim size.
// "other" is the result (index_gather) or the values (index_put); an index outside the dim reads zero
// bits and is not written (the host checks indices it knows; device-computed ones cannot raise).

// Offsets of work item (p, b) in self and in the other operand; returns -1, or the position of an index
// tensor whose value (in *bad) is out of range.
inline int index_offsets(__global const long* meta, __global const long* idx, long idx_off, long bn, long p,
                         long b, long self_off, long other_off, long* so_out, long* oo_out, long* bad) {
  const int np = (int)meta[0];
  long so = self_off, oo = other_off;
  long rest = p;
  for (int d = np - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    const long c = rest % s;
    rest /= s;
    so += c * meta[1 + np + d];
    oo += c * meta[1 + 2 * np + d];
  }
  __global const long* m = meta + 1 + 3 * np;
  const int nb = (int)m[0];
  rest = b;
  for (int d = nb - 1; d >= 0; --d) {
    const long s = m[1 + d];
    oo += (rest % s) * m[1 + nb + d];
    rest /= s;
  }
  m += 1 + 2 * nb;
  const int k_count = (int)m[0];
  int failed = -1;
  for (int k = 0; k < k_count; ++k) {
    const long stride = m[1 + 2 * k], n = m[2 + 2 * k];
    const long raw = idx[idx_off + k * bn + b];
    const long v = raw < 0 ? raw + n : raw;
    if (v < 0 || v >= n) {
      failed = k;
      *bad = raw;
    }
    so += v * stride;
  }
  *so_out = so;
  *oo_out = oo;
  return failed;
}

// 2D launch (plain positions, bn).
__kernel void index_gather(__global E_T* out, long out_off, __global const E_T* self, long self_off,
                           __global const long* idx, long idx_off, long bn, __global const long* meta,
                           int meta_off FLAG_PARAMS) {
  meta += meta_off;
  long so, oo, bad;
  const int failed = index_offsets(meta, idx, idx_off, bn, get_global_id(0), get_global_id(1), self_off,
                                   out_off, &so, &oo, &bad);
  if (failed >= 0) REPORT(failed, bad);
  out[oo] = failed < 0 ? self[so] : (E_T)0;
}

// self[idx] = values (already self's dtype); 2D launch (plain positions, bn). Repeated indices write
// in an unspecified order, as in PyTorch.
__kernel void index_put(__global E_T* self, long self_off, __global const E_T* values, long values_off,
                        __global const long* idx, long idx_off, long bn, __global const long* meta,
                        int meta_off FLAG_PARAMS) {
  meta += meta_off;
  long so, oo, bad;
  const int failed = index_offsets(meta, idx, idx_off, bn, get_global_id(0), get_global_id(1), self_off,
                                   values_off, &so, &oo, &bad);
  if (failed >= 0)
    REPORT(failed, bad);
  else
    self[so] = values[oo];
}

#if defined(DST_T) && defined(SRC_T)
#define LD_PLAIN(p, i) ((p)[i])
#define LD_HALF(p, i) vload_half((i), (p))
#define LD_BF16(p, i) as_float(((uint)(p)[i]) << 16)
#define LD_BOOL(p, i) ((p)[i] != 0)
#define ST_PLAIN(p, i, v, T) ((p)[i] = (T)(v))
#define ST_INT(p, i, v, T) ((p)[i] = (T)(long)(v))
#define ST_HALF(p, i, v, T) vstore_half_rte((float)(v), (i), (p))
#define ST_BF16(p, i, v, T) ((p)[i] = float_to_bf16((float)(v)))
#define ST_BOOL(p, i, v, T) ((p)[i] = (uchar)((v) != 0))

inline ushort float_to_bf16(float f) {
  uint b = as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (ushort)((b >> 16) | 0x40u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (ushort)(b >> 16);
}

// self[idx] += values with repeated indices adding up: each work item owns one plain position and
// walks B in order, so no two items touch the same element and the sums are deterministic (the
// reference's order). A bool self ORs (a sum stored as bool). 1D launch over plain positions.
__kernel void index_put_acc(__global DST_T* self, long self_off, __global const SRC_T* values,
                            long values_off, __global const long* idx, long idx_off, long bn,
                            __global const long* meta, int meta_off FLAG_PARAMS) {
  meta += meta_off;
  const long p = get_global_id(0);
  for (long b = 0; b < bn; ++b) {
    long so, oo, bad;
    const int failed = index_offsets(meta, idx, idx_off, bn, p, b, self_off, values_off, &so, &oo, &bad);
    if (failed >= 0) {
      REPORT(failed, bad);
      continue;
    }
    CT v = (CT)DST_LD(self, so) + (CT)SRC_LD(values, oo);
    DST_ST(self, so, v, DST_T);
  }
}

// self[mask] = values (+= with ACCUMULATE) for a boolean mask over self's dims [first, first + m), with
// pos the mask's scan (mask_scan): each element of self is one work item, so nothing races. values
// (self's dtype) is broadcast over the result shape; along the mask's result dim it is read at pos with
// stride values_step, and ignored from `limit` on. meta: rank r, self sizes[r], self strides[r],
// values strides[r] (zero at the mask dims), mask strides[r] (zero outside them). 1D launch over self.
__kernel void mask_put(__global DST_T* self, long self_off, __global const SRC_T* values, long values_off,
                       __global const uchar* mask, long mask_off, __global const long* pos, long pos_off,
                       __global const long* meta, int meta_off, int first, int m, long values_step,
                       long limit) {
  meta += meta_off;
  const int r = (int)meta[0];
  long rest = get_global_id(0), so = self_off, vo = values_off, mo = mask_off, ml = 0, scale = 1;
  for (int d = r - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    const long c = rest % s;
    rest /= s;
    so += c * meta[1 + r + d];
    vo += c * meta[1 + 2 * r + d];
    mo += c * meta[1 + 3 * r + d];
    if (d >= first && d < first + m) {
      ml += c * scale;
      scale *= s;
    }
  }
  if (mask[mo] == 0) return;
  const long p = pos[pos_off + ml];
  if (p >= limit) return;
  vo += p * values_step;
#ifdef ACCUMULATE
  CT v = (CT)DST_LD(self, so) + (CT)SRC_LD(values, vo);
#else
  CT v = (CT)SRC_LD(values, vo);
#endif
  DST_ST(self, so, v, DST_T);
}
#endif

// out (contiguous, index's shape) = self[..., index[...], ...] along `dim`. meta: rank r, sizes[r]
// (the index's), index strides[r], self strides[r]. An index outside [-n, n) reads zero bits.
__kernel void gather_dim(__global E_T* out, long out_off, __global const E_T* self, long self_off,
                         __global const long* index, long index_off, __global const long* meta, int meta_off,
                         int dim, long dim_size FLAG_PARAMS) {
  meta += meta_off;
  const int r = (int)meta[0];
  const long i = get_global_id(0);
  long rest = i, io = index_off, so = self_off;
  long dim_stride = 0;
  for (int d = r - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    const long c = rest % s;
    rest /= s;
    io += c * meta[1 + r + d];
    if (d == dim)
      dim_stride = meta[1 + 2 * r + d];
    else
      so += c * meta[1 + 2 * r + d];
  }
  const long raw = index[io];
  const long v = raw < 0 ? raw + dim_size : raw;
  const bool ok = v >= 0 && v < dim_size;
  if (!ok) REPORT(dim, raw);
  out[out_off + i] = ok ? self[so + v * dim_stride] : (E_T)0;
}

// ---- boolean masks ----------------------------------------------------------------------------------
// mask_scan: one work-group of `lsize` items over a mask of n elements (any strides: meta = rank r,
// sizes[r], strides[r]); writes pos[i] = the number of set elements before i (row-major) and
// count[0] = the total. Each item scans a contiguous chunk twice (count, then positions) around a scan
// of the chunk totals in local memory. With FLAG and expect >= 0, a total other than `expect` is
// reported (flag[1] = -1, flag[2] = the total).
inline bool mask_at(__global const uchar* mask, long mask_off, __global const long* meta, long i) {
  const int r = (int)meta[0];
  long rest = i, o = mask_off;
  for (int d = r - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    o += (rest % s) * meta[1 + r + d];
    rest /= s;
  }
  return mask[o] != 0;
}

__kernel void mask_scan(__global long* pos, long pos_off, __global long* count, long count_off,
                        __global const uchar* mask, long mask_off, __global const long* meta, int meta_off,
                        long n, __local long* part, long expect FLAG_PARAMS) {
  meta += meta_off;
  const int lid = get_local_id(0), lsize = get_local_size(0);
  const long chunk = (n + lsize - 1) / lsize;
  const long begin = min((long)lid * chunk, n), end = min(begin + chunk, n);
  long c = 0;
  for (long i = begin; i < end; ++i) c += mask_at(mask, mask_off, meta, i) ? 1 : 0;
  part[lid] = c;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid == 0) {
    long run = 0;
    for (int k = 0; k < lsize; ++k) {
      const long v = part[k];
      part[k] = run;
      run += v;
    }
    count[count_off] = run;
    if (expect >= 0 && run != expect) REPORT(-1, run);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  long run = part[lid];
  for (long i = begin; i < end; ++i) {
    pos[pos_off + i] = run;
    run += mask_at(mask, mask_off, meta, i) ? 1 : 0;
  }
}

// For each set element i of the mask: coords[k * dim_step + pos[i] * item_step] = its index along dim k
// of the mask's shape (row-major), for the r dims of the mask: (r, total) index tensors for advanced
// indexing, (total, r) for nonzero. 1D launch over the mask's n elements.
__kernel void mask_coords(__global long* coords, long coords_off, __global const uchar* mask, long mask_off,
                          __global const long* pos, long pos_off, __global const long* meta, int meta_off,
                          long total, long dim_step, long item_step) {
  meta += meta_off;
  const long i = get_global_id(0);
  if (!mask_at(mask, mask_off, meta, i)) return;
  const int r = (int)meta[0];
  const long at = pos[pos_off + i];
  if (at >= total) return;
  long rest = i;
  for (int d = r - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    coords[coords_off + d * dim_step + at * item_step] = rest % s;
    rest /= s;
  }
}

// masked_select: out[pos[i]] = self[i] for each set element i; self and mask are read through their
// own strides over the common (broadcast) shape. meta: rank r, sizes[r], self strides[r], then the
// mask's block (rank r, sizes[r], mask strides[r]) at meta[1 + 2r]. 1D launch over the shape.
__kernel void mask_compact(__global E_T* out, long out_off, __global const E_T* self, long self_off,
                           __global const uchar* mask, long mask_off, __global const long* pos, long pos_off,
                           __global const long* meta, int meta_off, long total) {
  meta += meta_off;
  const int r = (int)meta[0];
  const long i = get_global_id(0);
  if (!mask_at(mask, mask_off, meta + 1 + 2 * r, i)) return;
  const long at = pos[pos_off + i];
  if (at >= total) return;
  long rest = i, so = self_off;
  for (int d = r - 1; d >= 0; --d) {
    const long s = meta[1 + d];
    so += (rest % s) * meta[1 + r + d];
    rest /= s;
  }
  out[out_off + at] = self[so];
}
