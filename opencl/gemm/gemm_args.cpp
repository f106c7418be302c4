// GemmArgs helpers: dense layouts, validation, operand extents and the shape classes the dispatcher
// keys its choices on.
#include <algorithm>

#include "opencl/gemm/gemm.h"
#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::opencl::gemm {
namespace {

bool transposed(Transpose t) { return t == Transpose::kYes; }

// Extent of `batch` matrices of `rows` × `cols` with leading dimension `ld`, `stride` apart.
size_t extent(size_t offset, size_t rows, size_t cols, size_t ld, size_t stride, size_t batch) {
  return offset + (batch - 1) * stride + (rows - 1) * ld + cols;
}

size_t buffer_floats(cl_mem buffer, std::string_view field) {
  size_t bytes = 0;
  cl_check(clGetMemObjectInfo(buffer, CL_MEM_SIZE, sizeof(bytes), &bytes, nullptr), "clGetMemObjectInfo",
           field);
  return bytes / sizeof(float);
}

// ceil(log4(x)): 1 → 0, 2..4 → 1, 5..16 → 2, 17..64 → 3, ...
uint8_t bucket(size_t x) {
  uint8_t b = 0;
  for (size_t reach = 1; reach < x; reach *= 4) ++b;
  return b;
}

}  // namespace

std::string_view activation_name(Activation activation) {
  switch (activation) {
    case Activation::kIdentity:
      return "identity";
    case Activation::kRelu:
      return "relu";
    case Activation::kRelu6:
      return "relu6";
    case Activation::kHardtanh:
      return "hardtanh";
    case Activation::kGelu:
      return "gelu";
    case Activation::kGeluTanh:
      return "gelu_tanh";
    case Activation::kSilu:
      return "silu";
    case Activation::kHardswish:
      return "hardswish";
    case Activation::kSigmoid:
      return "sigmoid";
  }
  return "unknown";
}

GemmArgs dense_gemm(Transpose trans_a, Transpose trans_b, size_t m, size_t n, size_t k, cl_mem a, cl_mem b,
                    cl_mem c, size_t batch_count) {
  GemmArgs args;
  args.trans_a = trans_a;
  args.trans_b = trans_b;
  args.m = m;
  args.n = n;
  args.k = k;
  args.a = a;
  args.b = b;
  args.c = c;
  args.lda = transposed(trans_a) ? m : k;
  args.ldb = transposed(trans_b) ? k : n;
  args.ldc = n;
  args.batch_count = batch_count;
  args.a_stride = m * k;
  args.b_stride = k * n;
  args.c_stride = m * n;
  return args;
}

size_t a_extent(const GemmArgs& args) {
  const bool t = transposed(args.trans_a);
  return extent(args.a_offset, t ? args.k : args.m, t ? args.m : args.k, args.lda, args.a_stride,
                args.batch_count);
}

size_t b_extent(const GemmArgs& args) {
  const bool t = transposed(args.trans_b);
  return extent(args.b_offset, t ? args.n : args.k, t ? args.k : args.n, args.ldb, args.b_stride,
                args.batch_count);
}

size_t c_extent(const GemmArgs& args) {
  return extent(args.c_offset, args.m, args.n, args.ldc, args.c_stride, args.batch_count);
}

size_t bias_extent(const GemmArgs& args) {
  switch (args.epilogue.bias_axis) {
    case BiasAxis::kNone:
      return 0;
    case BiasAxis::kAlongN:
      return args.epilogue.bias_offset + args.n;
    case BiasAxis::kAlongM:
      return args.epilogue.bias_offset + args.m;
  }
  return 0;
}

void validate(const GemmArgs& args, bool check_buffers) {
  CONVOY_CHECK(args.m >= 1 && args.n >= 1 && args.k >= 1,
               "gemm: M, N and K must be at least 1, got M=", args.m, " N=", args.n, " K=", args.k);
  CONVOY_CHECK(args.batch_count >= 1, "gemm: batch_count must be at least 1, got ", args.batch_count);
  const size_t a_cols = transposed(args.trans_a) ? args.m : args.k;
  const size_t b_cols = transposed(args.trans_b) ? args.k : args.n;
  CONVOY_CHECK(args.lda >= a_cols, "gemm: lda=", args.lda, " is less than the ", a_cols,
               " columns of A as stored (M=", args.m, " K=", args.k,
               transposed(args.trans_a) ? ", A transposed)" : ")");
  CONVOY_CHECK(args.ldb >= b_cols, "gemm: ldb=", args.ldb, " is less than the ", b_cols,
               " columns of B as stored (K=", args.k, " N=", args.n,
               transposed(args.trans_b) ? ", B transposed)" : ")");
  CONVOY_CHECK(args.ldc >= args.n, "gemm: ldc=", args.ldc, " is less than N=", args.n);
  // A and B may repeat across the batch (stride 0 broadcasts them); C entries must not overlap.
  if (args.batch_count > 1) {
    const size_t c_span = (args.m - 1) * args.ldc + args.n;
    CONVOY_CHECK(args.c_stride >= c_span, "gemm: c_stride=", args.c_stride,
                 " makes batch entries of C overlap (each spans ", c_span,
                 " elements, batch_count=", args.batch_count, ")");
  }
  const Epilogue& e = args.epilogue;
  if (e.activation == Activation::kHardtanh)
    CONVOY_CHECK(e.min_value <= e.max_value, "gemm: hardtanh min_value=", e.min_value,
                 " exceeds max_value=", e.max_value);
  if (!check_buffers) return;

  const struct {
    const char* name;
    cl_mem buffer;
    size_t needed;
  } operands[] = {{"A", args.a, a_extent(args)},
                  {"B", args.b, b_extent(args)},
                  {"C", args.c, c_extent(args)},
                  {"bias", e.bias, bias_extent(args)}};
  for (const auto& op : operands) {
    if (op.needed == 0) continue;  // no bias requested
    CONVOY_CHECK(op.buffer != nullptr, "gemm: buffer ", op.name, " is null");
    const size_t have = buffer_floats(op.buffer, op.name);
    CONVOY_CHECK(have >= op.needed, "gemm: buffer ", op.name, " holds ", have, " floats but M=", args.m,
                 " N=", args.n, " K=", args.k, " batch=", args.batch_count,
                 " with its offset/ld/stride reach ", op.needed);
  }
}

ShapeClass ShapeClass::of(const GemmArgs& args) {
  ShapeClass s;
  s.m_bucket = bucket(args.m);
  s.n_bucket = bucket(args.n);
  s.k_bucket = bucket(args.k);
  s.trans_a = args.trans_a;
  s.trans_b = args.trans_b;
  s.batched = args.batch_count > 1;
  s.epilogue = !args.epilogue.empty();
  return s;
}

std::string ShapeClass::key() const {
  auto reach = [](uint8_t b) { return size_t{1} << (2 * b); };
  return str_cat("m", reach(m_bucket), ".n", reach(n_bucket), ".k", reach(k_bucket), ".",
                 transposed(trans_a) ? "t" : "n", transposed(trans_b) ? "t" : "n", ".b", batched ? 1 : 0,
                 ".e", epilogue ? 1 : 0);
}

uint64_t ShapeClass::packed() const {
  return uint64_t{m_bucket} | uint64_t{n_bucket} << 8 | uint64_t{k_bucket} << 16 |
         uint64_t{transposed(trans_a)} << 24 | uint64_t{transposed(trans_b)} << 25 | uint64_t{batched} << 26 |
         uint64_t{epilogue} << 27;
}

}  // namespace convoy::opencl::gemm
