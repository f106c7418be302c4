// Embedding lookup (opencl/ops/nn.cpp): out[i][j] = weight[indices[i]][j], global (dim, count). Rows
// are copied bit for bit, so E_T is an unsigned type of the element's size (uchar, ushort, uint,
// ulong) whatever the table's dtype; IDX_T is int or long.
//
// An index outside [0, rows) cannot raise on a device: its output row is zeroed (no read outside the
// table) and, with CHECK_FLAG, flag[0] is set to 1 and flag[1], flag[2] receive the position and the
// index (as ints, clamped), for the host to read back and report.
#ifndef E_T
#define E_T uint
#endif
#ifndef IDX_T
#define IDX_T long
#endif

#ifdef CHECK_FLAG
#define FLAG_ARGS , __global int *flag, long flag_off
#else
#define FLAG_ARGS
#endif

__kernel void embedding(__global E_T* out, long out_off, __global const E_T* weight, long w_off,
                        __global const IDX_T* indices, long i_off FLAG_ARGS, long rows, long dim) {
  const long j = get_global_id(0), i = get_global_id(1);
  const long r = (long)indices[i_off + i];
  if (r < 0 || r >= rows) {
    out[out_off + i * dim + j] = (E_T)0;
#ifdef CHECK_FLAG
    if (j == 0) {
      flag[flag_off] = 1;
      flag[flag_off + 1] = (int)min(i, (long)INT_MAX);
      flag[flag_off + 2] = (int)clamp(r, (long)INT_MIN, (long)INT_MAX);
    }
#endif
    return;
  }
  out[out_off + i * dim + j] = weight[w_off + r * dim + j];
}
