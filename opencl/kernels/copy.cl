// Strided copy with dtype conversion (contiguous, cat into slices, expand, permute materialised),
// and fill. Every operand X has a storage type X_T and accessors X_LD / X_ST naming one of the LD_ / ST_
// macros below (the host picks them per dtype): plain C types, half through vload_half/vstore_half
// (no cl_khr_fp16 needed), bfloat16 as ushort bits, bool as uchar 0/1.
//
// Strided launches are 2D: dim 0 runs over the innermost dim, dim 1 over the others, decomposed with
// the sizes in `meta`: meta[0] = rank, meta[1..rank] = sizes, then rank strides per operand.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

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
  if ((b & 0x7fffffffu) > 0x7f800000u) return (ushort)((b >> 16) | 0x40u);  // quiet NaN
  b += 0x7fffu + ((b >> 16) & 1u);                                         // round to nearest even
  return (ushort)(b >> 16);
}

#ifndef CT
#define CT float
#endif
#ifndef DST_T
#define DST_T float
#define DST_ST ST_PLAIN
#endif
#ifndef SRC_T
#define SRC_T float
#define SRC_LD LD_PLAIN
#endif

__kernel void copy_contig(__global DST_T* dst, long dst_off, __global const SRC_T* src, long src_off) {
  long i = get_global_id(0);
  CT v = (CT)SRC_LD(src, src_off + i);
  DST_ST(dst, dst_off + i, v, DST_T);
}

__kernel void copy_strided(__global DST_T* dst, long dst_off, __global const SRC_T* src, long src_off,
                           __global const long* meta, int meta_off) {
  meta += meta_off;
  int nd = (int)meta[0];
  long od = dst_off, os = src_off;
  if (nd > 0) {
    long i0 = get_global_id(0);
    od += i0 * meta[nd + nd];
    os += i0 * meta[nd + 2 * nd];
    long rest = get_global_id(1);
    for (int d = nd - 2; d >= 0; --d) {
      long s = meta[1 + d];
      long idx = rest % s;
      rest /= s;
      od += idx * meta[1 + nd + d];
      os += idx * meta[1 + 2 * nd + d];
    }
  }
  CT v = (CT)SRC_LD(src, os);
  DST_ST(dst, od, v, DST_T);
}

__kernel void fill_strided(__global DST_T* dst, long dst_off, __global const long* meta, int meta_off, CT value) {
  meta += meta_off;
  int nd = (int)meta[0];
  long od = dst_off;
  if (nd > 0) {
    od += get_global_id(0) * meta[nd + nd];
    long rest = get_global_id(1);
    for (int d = nd - 2; d >= 0; --d) {
      long s = meta[1 + d];
      od += (rest % s) * meta[1 + nd + d];
      rest /= s;
    }
  }
  DST_ST(dst, od, value, DST_T);
}
