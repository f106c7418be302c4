// OpenCL implementations of the matrix products (linear, matmul, mm, bmm, addmm, baddbmm, mv, addmv,
// dot): every one becomes GEMMs through the GEMM dispatcher (opencl/gemm), float32 only. Operands are
// used in place when their last two dims are a row-major matrix or the transpose of one; broadcast
// batch dims are read with stride 0; only other layouts are copied first.
#include "opencl/ops/linalg.h"

#include "opencl/ops/launch_util.h"
#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

using gemm::Transpose;

// A (rows × cols) matrix view usable by GEMM: row-major with leading dimension ld, or the transpose
// of a row-major (cols × rows) matrix.
struct MatrixView {
  bool usable = false;
  Transpose trans = Transpose::kNo;
  size_t ld = 0;
};

MatrixView matrix_view(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  MatrixView v;
  if ((col_stride == 1 || cols == 1) && row_stride >= std::max<int64_t>(cols, 1) && row_stride > 0) {
    v = {true, Transpose::kNo, static_cast<size_t>(row_stride)};
  } else if ((row_stride == 1 || rows == 1) && col_stride >= std::max<int64_t>(rows, 1) && col_stride > 0) {
    v = {true, Transpose::kYes, static_cast<size_t>(col_stride)};
  } else if (rows == 1 && cols == 1) {
    v = {true, Transpose::kNo, 1};
  }
  return v;
}

void check_float32(OpContext& cx, const Tensor& t, const char* what) {
  CONVOY_CHECK_KIND(kUnsupported, t.dtype() == DType::kFloat32, cx.where(), ": ", what, " is ", t.describe(),
                    "; matrix products run in float32 on OpenCL");
}

}  // namespace

void batched_gemm(OpContext& cx, const Tensor& a_in, const Tensor& b_in, const Tensor& c, float alpha,
                  float beta, const gemm::Epilogue& epilogue, const Tensor& bias) {
  CONVOY_ASSERT(a_in.dim() >= 2 && a_in.dim() == b_in.dim() && a_in.dim() == c.dim(), "batched_gemm ranks ",
                a_in.describe(), " ", b_in.describe(), " ", c.describe());
  const size_t r = static_cast<size_t>(c.dim());
  const int64_t m = c.sizes()[r - 2], n = c.sizes()[r - 1], k = a_in.sizes()[r - 1];
  CONVOY_ASSERT(a_in.sizes()[r - 2] == m && b_in.sizes()[r - 2] == k && b_in.sizes()[r - 1] == n,
                "batched_gemm shapes ", a_in.describe(), " ", b_in.describe(), " ", c.describe());
  CONVOY_ASSERT(c.strides()[r - 1] == 1 && c.strides()[r - 2] >= n, "batched_gemm output must be row-major");
  if (c.numel() == 0) return;
  Tensor a = cx.to_device(a_in), b = cx.to_device(b_in);
  if (k == 0) {
    // An empty sum: C = beta·C (+ bias, activation); with beta 0 just the epilogue of zeros.
    CONVOY_CHECK_KIND(kUnsupported, beta == 0 && epilogue.empty(), cx.where(),
                      ": an empty matrix product with a bias or beta");
    fill(cx, c, 0.0);
    return;
  }
  MatrixView av = matrix_view(m, k, a.strides()[r - 2], a.strides()[r - 1]);
  MatrixView bv = matrix_view(k, n, b.strides()[r - 2], b.strides()[r - 1]);
  if (!av.usable) {
    a = contiguous_copy(cx, a);
    av = matrix_view(m, k, a.strides()[r - 2], a.strides()[r - 1]);
  }
  if (!bv.usable) {
    b = contiguous_copy(cx, b);
    bv = matrix_view(k, n, b.strides()[r - 2], b.strides()[r - 1]);
  }
  // Batch dims, collapsed: one becomes the GEMM's own batch, the others a loop of GEMMs. The GEMM batch
  // is the largest dim whose C entries lie apart (attention heads written side by side into one row
  // interleave, so their dim cannot be it).
  Shape batch_sizes(c.sizes().begin(), c.sizes().end() - 2);
  std::vector<Shape> strides(3);
  for (size_t d = 0; d + 2 < r; ++d) {
    strides[0].push_back(a.sizes()[d] == 1 ? 0 : a.strides()[d]);
    strides[1].push_back(b.sizes()[d] == 1 ? 0 : b.strides()[d]);
    strides[2].push_back(c.strides()[d]);
  }
  StridedLoop batch = collapse(batch_sizes, strides);
  const int64_t c_span = (m - 1) * c.strides()[r - 2] + n;
  int gemm_dim = -1;
  for (size_t d = 0; d < batch.sizes.size(); ++d) {
    if (batch.strides[2][d] < c_span) continue;
    if (gemm_dim < 0 || batch.sizes[d] > batch.sizes[static_cast<size_t>(gemm_dim)])
      gemm_dim = static_cast<int>(d);
  }
  const int64_t inner = gemm_dim < 0 ? 1 : batch.sizes[static_cast<size_t>(gemm_dim)];
  const int64_t outer = batch.numel() / inner;
  for (int64_t o = 0; o < outer; ++o) {
    int64_t off[3] = {0, 0, 0};
    int64_t rest = o;
    for (size_t d = batch.sizes.size(); d-- > 0;) {
      if (static_cast<int>(d) == gemm_dim) continue;
      int64_t idx = rest % batch.sizes[d];
      rest /= batch.sizes[d];
      for (size_t q = 0; q < 3; ++q) off[q] += idx * batch.strides[q][d];
    }
    GemmCall call;
    gemm::GemmArgs& g = call.args;
    g.trans_a = av.trans;
    g.trans_b = bv.trans;
    g.m = static_cast<size_t>(m);
    g.n = static_cast<size_t>(n);
    g.k = static_cast<size_t>(k);
    g.alpha = alpha;
    g.beta = beta;
    g.lda = av.ld;
    g.ldb = bv.ld;
    g.ldc = static_cast<size_t>(c.strides()[r - 2]);
    g.a_offset = static_cast<size_t>(off[0]);
    g.b_offset = static_cast<size_t>(off[1]);
    g.c_offset = static_cast<size_t>(off[2]);
    g.batch_count = static_cast<size_t>(inner);
    if (gemm_dim >= 0) {
      g.a_stride = static_cast<size_t>(batch.strides[0][static_cast<size_t>(gemm_dim)]);
      g.b_stride = static_cast<size_t>(batch.strides[1][static_cast<size_t>(gemm_dim)]);
      g.c_stride = static_cast<size_t>(batch.strides[2][static_cast<size_t>(gemm_dim)]);
    }
    g.epilogue = epilogue;
    call.a = a;
    call.b = b;
    call.c = c;
    call.bias = bias;
    cx.gemm(call);
  }
}

Tensor linear(OpContext& cx, const Tensor& input, const Tensor& weight_in, const Tensor& bias_in,
              gemm::Activation activation, float min_value, float max_value) {
  check_float32(cx, input, "the input");
  check_float32(cx, weight_in, "the weight");
  CONVOY_CHECK(weight_in.dim() == 2 && input.dim() >= 1 && input.sizes().back() == weight_in.sizes()[1],
               cx.where(), ": input ", input.describe(), " and weight ", weight_in.describe(),
               " do not match");
  int64_t k = weight_in.sizes()[1], n = weight_in.sizes()[0];
  Shape out_shape(input.sizes().begin(), input.sizes().end() - 1);
  out_shape.push_back(n);
  Tensor out = cx.empty(out_shape, DType::kFloat32);
  const int64_t m = shape_numel(Shape(input.sizes().begin(), input.sizes().end() - 1));
  Tensor x = cx.to_device(input);
  // All leading dims as rows of one matrix: free when they are laid out as one run of rows.
  StridedLoop rows = collapse(Shape(x.sizes().begin(), x.sizes().end() - 1),
                              {Shape(x.strides().begin(), x.strides().end() - 1)});
  const bool rows_ok = rows.sizes.size() <= 1 && (rows.sizes.empty() || rows.strides[0][0] >= k) &&
                       (x.strides().back() == 1 || k == 1);
  Tensor a;
  if (rows_ok) {
    a = x.as_strided({m, k}, {rows.sizes.empty() ? k : rows.strides[0][0], 1}, x.offset());
  } else {
    Tensor dense = contiguous_copy(cx, x);
    a = dense.as_strided({m, k}, {k, 1}, dense.offset());
  }
  Tensor w = cx.to_device(weight_in);
  Tensor wt = w.as_strided({k, n}, {w.strides()[1], w.strides()[0]}, w.offset());  // Wᵀ as a view
  Tensor c = out.as_strided({m, n}, {n, 1}, 0);
  gemm::Epilogue e;
  Tensor bias;
  if (bias_in.defined()) {
    check_float32(cx, bias_in, "the bias");
    CONVOY_CHECK(bias_in.numel() == n, cx.where(), ": bias ", bias_in.describe(), " does not match ", n,
                 " output features");
    bias = contiguous(cx, cx.to_device(bias_in));
    e.bias_axis = gemm::BiasAxis::kAlongN;
  }
  e.activation = activation;
  e.min_value = min_value;
  e.max_value = max_value;
  if (k == 0) {
    fill(cx, out, 0.0);
    CONVOY_CHECK_KIND(kUnsupported, !bias.defined() && activation == gemm::Activation::kIdentity, cx.where(),
                      ": linear with 0 input features and a bias");
    return out;
  }
  batched_gemm(cx, a, wt, c, 1.0f, 0.0f, e, bias);
  return out;
}

Tensor matmul(OpContext& cx, const Tensor& a_in, const Tensor& b_in) {
  check_float32(cx, a_in, "self");
  check_float32(cx, b_in, "other");
  const int64_t da = a_in.dim(), db = b_in.dim();
  CONVOY_CHECK(da >= 1 && db >= 1, cx.where(),
               ": both arguments to matmul need to be at least 1D, but they are ", da, "D and ", db, "D");
  Tensor a = cx.to_device(a_in), b = cx.to_device(b_in);
  // 1-D operands become matrices, and their dim is dropped from the result.
  Tensor a2 = da == 1 ? a.as_strided({1, a.sizes()[0]}, {0, a.strides()[0]}, a.offset()) : a;
  Tensor b2 = db == 1 ? b.as_strided({b.sizes()[0], 1}, {b.strides()[0], 0}, b.offset()) : b;
  int64_t m = a2.sizes()[static_cast<size_t>(a2.dim() - 2)], k = a2.sizes().back();
  int64_t k2 = b2.sizes()[static_cast<size_t>(b2.dim() - 2)], n = b2.sizes().back();
  CONVOY_CHECK(k == k2, cx.where(), ": mat1 and mat2 shapes cannot be multiplied (", m, "x", k, " and ", k2,
               "x", n, ")");
  Shape batch_a(a2.sizes().begin(), a2.sizes().end() - 2), batch_b(b2.sizes().begin(), b2.sizes().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "aten::matmul");
  Shape full = batch;
  full.push_back(m);
  full.push_back(n);
  Tensor out = cx.empty(full, DType::kFloat32);
  auto expand_to = [&](const Tensor& t, int64_t rows, int64_t cols) {
    Shape sizes = batch, strides;
    Shape tb(t.sizes().begin(), t.sizes().end() - 2);
    Shape bs =
        broadcast_strides(t.as_strided(tb, Shape(t.strides().begin(), t.strides().end() - 2), t.offset()),
                          batch, "aten::matmul");
    strides = bs;
    sizes.push_back(rows);
    sizes.push_back(cols);
    strides.push_back(t.strides()[static_cast<size_t>(t.dim() - 2)]);
    strides.push_back(t.strides().back());
    return t.as_strided(sizes, strides, t.offset());
  };
  Tensor ae = expand_to(a2, m, k), be = expand_to(b2, k, n);
  // A batch of row-major matrices times one shared matrix is a single GEMM over all rows.
  bool b_shared = db >= 2 && !batch.empty();
  for (size_t d = 0; d < batch.size(); ++d) b_shared = b_shared && be.strides()[d] == 0;
  StridedLoop rows = collapse(Shape(ae.sizes().begin(), ae.sizes().end() - 1),
                              {Shape(ae.strides().begin(), ae.strides().end() - 1)});
  if (b_shared && rows.sizes.size() == 1 && (ae.strides().back() == 1 || k == 1) && rows.strides[0][0] >= k) {
    const int64_t total = rows.sizes[0];
    Tensor a_rows = ae.as_strided({total, k}, {rows.strides[0][0], 1}, ae.offset());
    Tensor b_mat = be.as_strided({k, n}, {be.strides()[batch.size()], be.strides().back()}, be.offset());
    batched_gemm(cx, a_rows, b_mat, out.as_strided({total, n}, {n, 1}, 0), 1.0f, 0.0f, {}, Tensor());
  } else {
    batched_gemm(cx, ae, be, out, 1.0f, 0.0f, {}, Tensor());
  }
  Shape result = batch;
  if (da > 1) result.push_back(m);
  if (db > 1) result.push_back(n);
  return out.as_strided(result, contiguous_strides(result), 0);
}

namespace {

// beta·self + alpha·(a @ b), self broadcast to the product's shape.
Tensor add_product(OpContext& cx, const Tensor& self, const Tensor& a, const Tensor& b, double beta,
                   double alpha) {
  check_float32(cx, self, "self");
  Tensor product_shape_ref = matmul(cx, a, b);  // shapes and checks; recomputed below with beta
  Tensor out = product_shape_ref;
  if (beta == 0) {
    if (alpha != 1)
      elementwise(cx, "MUL", out, {EwInput::of(out), EwInput::of_scalar(alpha)}, DType::kFloat32);
    return out;
  }
  // out = alpha·out + beta·self
  Tensor scaled = cx.empty(out.sizes(), DType::kFloat32);
  elementwise(cx, "MUL", scaled, {EwInput::of(out), EwInput::of_scalar(alpha)}, DType::kFloat32);
  elementwise(cx, "ADD", out, {EwInput::of(scaled), EwInput::of(cx.to_device(self))}, DType::kFloat32,
              {beta, 0, 0});
  return out;
}

}  // namespace

void register_opencl_linalg_ops(OpenCLOpTable& t) {
  t.add("aten::linear", [](OpContext& cx, IValueList& a) {
    Tensor bias = a[2].is_none() ? Tensor() : a[2].to_tensor();
    return IValueList{IValue(linear(cx, a[0].to_tensor(), a[1].to_tensor(), bias))};
  });
  t.add("aten::matmul", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(matmul(cx, a[0].to_tensor(), a[1].to_tensor()))};
  });
  t.add("aten::mm", [](OpContext& cx, IValueList& a) {
    CONVOY_CHECK(a[0].to_tensor().dim() == 2 && a[1].to_tensor().dim() == 2, cx.where(),
                 ": expects 2D tensors, got ", a[0].to_tensor().describe(), " and ",
                 a[1].to_tensor().describe());
    return IValueList{IValue(matmul(cx, a[0].to_tensor(), a[1].to_tensor()))};
  });
  t.add("aten::bmm", [](OpContext& cx, IValueList& a) {
    const Tensor &x = a[0].to_tensor(), &y = a[1].to_tensor();
    CONVOY_CHECK(x.dim() == 3 && y.dim() == 3 && x.sizes()[0] == y.sizes()[0], cx.where(),
                 ": expects two 3D tensors with the same batch size, got ", x.describe(), " and ",
                 y.describe());
    return IValueList{IValue(matmul(cx, x, y))};
  });
  t.add("aten::mv", [](OpContext& cx, IValueList& a) {
    CONVOY_CHECK(a[0].to_tensor().dim() == 2 && a[1].to_tensor().dim() == 1, cx.where(),
                 ": expects a matrix and a vector");
    return IValueList{IValue(matmul(cx, a[0].to_tensor(), a[1].to_tensor()))};
  });
  t.add("aten::dot", [](OpContext& cx, IValueList& a) {
    CONVOY_CHECK(a[0].to_tensor().dim() == 1 && a[1].to_tensor().dim() == 1, cx.where(),
                 ": expects two 1D tensors");
    return IValueList{IValue(matmul(cx, a[0].to_tensor(), a[1].to_tensor()))};
  });
  for (const char* name : {"aten::addmm", "aten::baddbmm", "aten::addmv"})
    t.add(name, [](OpContext& cx, IValueList& a) {
      return IValueList{IValue(add_product(cx, a[0].to_tensor(), a[1].to_tensor(), a[2].to_tensor(),
                                           a[3].to_double(), a[4].to_double()))};
    });
}

}  // namespace convoy::opencl
