#include "opencl/ops/launch_util.h"

#include "runtime/ops/kernel_util.h"

namespace convoy::opencl {

namespace {

const char* storage_type(DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return "uchar";
    case DType::kInt8:
      return "char";
    case DType::kInt16:
      return "short";
    case DType::kInt32:
      return "int";
    case DType::kInt64:
      return "long";
    case DType::kFloat16:
      return "half";
    case DType::kFloat32:
      return "float";
    case DType::kFloat64:
      return "double";
    case DType::kBool:
      return "uchar";
    case DType::kBFloat16:
      return "ushort";
  }
  return "float";
}

void require_fp64(OpContext& cx, DType dtype) {
  if (dtype == DType::kFloat64)
    CONVOY_CHECK_KIND(kUnsupported, cx.device().fp64, cx.where(),
                      ": float64 needs a device with fp64 support; ", cx.device().name, " has none");
}

}  // namespace

DType compute_dtype_of(DType dtype) {
  if (dtype == DType::kFloat64) return DType::kFloat64;
  if (is_floating(dtype)) return DType::kFloat32;
  return DType::kInt64;
}

std::string compute_defines(OpContext& cx, DType compute) {
  require_fp64(cx, compute);
  switch (compute) {
    case DType::kFloat64:
      return "-DCT=double -DUSE_FP64";
    case DType::kFloat32:
      return "-DCT=float";
    default:
      return "-DCT=long -DCT_IS_INT";
  }
}

std::string load_defines(OpContext& cx, const std::string& prefix, DType dtype) {
  require_fp64(cx, dtype);
  const char* ld = dtype == DType::kFloat16    ? "LD_HALF"
                   : dtype == DType::kBFloat16 ? "LD_BF16"
                   : dtype == DType::kBool     ? "LD_BOOL"
                                               : "LD_PLAIN";
  return str_cat(" -D", prefix, "_T=", storage_type(dtype), " -D", prefix, "_LD=", ld,
                 dtype == DType::kFloat64 ? " -DUSE_FP64" : "");
}

std::string store_defines(OpContext& cx, const std::string& prefix, DType dtype) {
  require_fp64(cx, dtype);
  const char* st = dtype == DType::kFloat16                                 ? "ST_HALF"
                   : dtype == DType::kBFloat16                              ? "ST_BF16"
                   : dtype == DType::kBool                                  ? "ST_BOOL"
                   : (dtype == DType::kFloat32 || dtype == DType::kFloat64) ? "ST_PLAIN"
                                                                            : "ST_INT";
  return str_cat(" -D", prefix, "_T=", storage_type(dtype), " -D", prefix, "_ST=", st,
                 dtype == DType::kFloat64 ? " -DUSE_FP64" : "");
}

KernelArgValue compute_scalar(double value, DType compute) {
  switch (compute) {
    case DType::kFloat64:
      return value;
    case DType::kFloat32:
      return static_cast<float>(value);
    default:
      return static_cast<int64_t>(value);
  }
}

KernelArgValue compute_scalar_int(int64_t value, DType compute) {
  switch (compute) {
    case DType::kFloat64:
      return static_cast<double>(value);
    case DType::kFloat32:
      return static_cast<float>(value);
    default:
      return value;
  }
}

bool StridedLoop::contiguous() const {
  if (sizes.size() > 1) return false;
  if (sizes.empty()) return true;
  for (const Shape& s : strides)
    if (s[0] != 1) return false;
  return true;
}

StridedLoop collapse(const Shape& sizes, const std::vector<Shape>& strides) {
  StridedLoop loop;
  loop.strides.resize(strides.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    loop.sizes.push_back(sizes[d]);
    for (size_t k = 0; k < strides.size(); ++k) loop.strides[k].push_back(strides[k][d]);
  }
  // Merge dim d into d-1 when every operand steps over d-1 exactly as over the whole of d.
  for (size_t d = loop.sizes.size(); d-- > 1;) {
    bool mergeable = true;
    for (const Shape& s : loop.strides) mergeable = mergeable && s[d - 1] == s[d] * loop.sizes[d];
    if (!mergeable) continue;
    loop.sizes[d - 1] *= loop.sizes[d];
    loop.sizes.erase(loop.sizes.begin() + static_cast<int64_t>(d));
    for (Shape& s : loop.strides) {
      s[d - 1] = s[d];
      s.erase(s.begin() + static_cast<int64_t>(d));
    }
  }
  return loop;
}

MetaBlock loop_meta(const StridedLoop& loop, size_t slots) {
  MetaBlock m;
  const size_t nd = loop.sizes.size();
  m.values.push_back(static_cast<int64_t>(nd));
  m.values.insert(m.values.end(), loop.sizes.begin(), loop.sizes.end());
  for (size_t k = 0; k < slots; ++k) {
    if (k < loop.strides.size())
      m.values.insert(m.values.end(), loop.strides[k].begin(), loop.strides[k].end());
    else
      m.values.insert(m.values.end(), nd, 0);
  }
  return m;
}

std::vector<size_t> loop_global(const StridedLoop& loop) {
  if (loop.sizes.empty()) return {1, 1};
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < loop.sizes.size(); ++d) outer *= loop.sizes[d];
  return {static_cast<size_t>(loop.sizes.back()), static_cast<size_t>(outer)};
}

void copy_into(OpContext& cx, const Tensor& dst_in, const Tensor& src_in) {
  Tensor dst = cx.writable(dst_in);
  Tensor src = cx.to_device(src_in);
  if (dst.numel() == 0) return;
  Shape src_strides = broadcast_strides(src, dst.sizes(), "copy");
  StridedLoop loop = collapse(dst.sizes(), {dst.strides(), src_strides});
  KernelLaunch k;
  k.file = "copy.cl";
  DType ct = compute_dtype_of(is_floating(src.dtype()) || is_floating(dst.dtype())
                                  ? (src.dtype() == DType::kFloat64 || dst.dtype() == DType::kFloat64
                                         ? DType::kFloat64
                                         : DType::kFloat32)
                                  : DType::kInt64);
  k.options =
      compute_defines(cx, ct) + store_defines(cx, "DST", dst.dtype()) + load_defines(cx, "SRC", src.dtype());
  k.args = {dst, src};
  if (loop.contiguous()) {
    k.kernel = "copy_contig";
    k.global = {static_cast<size_t>(dst.numel())};
  } else {
    k.kernel = "copy_strided";
    k.args.push_back(loop_meta(loop, 2));
    k.global = loop_global(loop);
  }
  // copy_* take (dst, dst_off, src, src_off[, meta, meta_off]): tensors expand to buffer + offset.
  cx.launch(std::move(k));
}

Tensor contiguous_copy(OpContext& cx, const Tensor& t, std::optional<DType> dtype) {
  Tensor out = cx.empty(t.sizes(), dtype.value_or(t.dtype()));
  copy_into(cx, out, t);
  return out;
}

Tensor contiguous(OpContext& cx, const Tensor& t, std::optional<DType> dtype) {
  if (t.is_contiguous() && (!dtype || *dtype == t.dtype()) && cx.is_device(t)) return t;
  return contiguous_copy(cx, t, dtype);
}

void fill(OpContext& cx, const Tensor& dst_in, double value) {
  Tensor dst = cx.writable(dst_in);
  if (dst.numel() == 0) return;
  StridedLoop loop = collapse(dst.sizes(), {dst.strides()});
  DType ct = compute_dtype_of(dst.dtype());
  KernelLaunch k;
  k.file = "copy.cl";
  k.kernel = "fill_strided";
  k.options = compute_defines(cx, ct) + store_defines(cx, "DST", dst.dtype());
  k.args = {dst, loop_meta(loop, 1), compute_scalar(value, ct)};
  k.global = loop_global(loop);
  cx.launch(std::move(k));
}

void elementwise(OpContext& cx, const std::string& op, const Tensor& out_in,
                 const std::vector<EwInput>& inputs, DType compute, std::array<double, 3> params) {
  CONVOY_ASSERT(inputs.size() <= 3, "elementwise with ", inputs.size(), " inputs");
  Tensor out = cx.writable(out_in);
  if (out.numel() == 0) return;
  std::vector<Tensor> tensors;
  std::vector<Shape> strides = {out.strides()};
  std::string options = str_cat("-DOP_", op, " -DNIN=", inputs.size(), " ", compute_defines(cx, compute),
                                store_defines(cx, "OUT", out.dtype()));
  static const char* kNames[] = {"A", "B", "C"};
  std::array<KernelArgValue, 3> scalar_values = {compute_scalar(0, compute), compute_scalar(0, compute),
                                                 compute_scalar(0, compute)};
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].scalar) {
      options += str_cat(" -D", kNames[i], "_SCALAR");
      scalar_values[i] = inputs[i].is_int ? compute_scalar_int(inputs[i].int_value, compute)
                                          : compute_scalar(inputs[i].value, compute);
      strides.push_back(Shape(out.dim(), 0));
    } else {
      Tensor t = cx.to_device(inputs[i].tensor);
      options += load_defines(cx, kNames[i], t.dtype());
      strides.push_back(broadcast_strides(t, out.sizes(), op.c_str()));
      tensors.push_back(t);
    }
  }
  StridedLoop loop = collapse(out.sizes(), strides);
  // Scalar operands have stride 0 everywhere; they do not make a loop strided.
  bool contig = loop.sizes.size() <= 1;
  for (size_t k = 0; k < loop.strides.size() && contig && !loop.sizes.empty(); ++k) {
    bool is_scalar_operand = k > 0 && inputs[k - 1].scalar;
    if (!is_scalar_operand && loop.strides[k][0] != 1) contig = false;
  }
  KernelLaunch k;
  k.file = "elementwise.cl";
  k.options = std::move(options);
  k.args.push_back(out);
  for (const Tensor& t : tensors) k.args.push_back(t);
  if (contig) {
    k.kernel = "elementwise_contig";
    k.global = {static_cast<size_t>(out.numel())};
  } else {
    k.kernel = "elementwise_strided";
    k.args.push_back(loop_meta(loop, 4));
    k.global = loop_global(loop);
  }
  for (double p : params) k.args.push_back(compute_scalar(p, compute));
  for (const KernelArgValue& v : scalar_values) k.args.push_back(v);
  cx.launch(std::move(k));
}

Shape broadcast_all(const std::vector<Shape>& shapes, const char* op) { return broadcast_shapes(shapes, op); }

void add_overloads(OpenCLOpTable& table, const std::string& base,
                   std::initializer_list<const char*> overloads, const OpenCLOp& op) {
  for (const char* o : overloads) table.add(*o ? base + "." + o : base, op);
}

bool is_host_scalar(OpContext& cx, const IValue& v) {
  if (v.is_number()) return true;
  return v.is_tensor() && v.to_tensor().defined() && !cx.is_device(v.to_tensor()) && v.to_tensor().dim() == 0;
}

double host_scalar_value(const IValue& v) {
  if (v.is_tensor()) return v.to_tensor().item_double();
  return v.to_double();
}

Tensor dtype_proxy(const Tensor& t) {
  if (!t.defined()) return t;
  return Tensor::full(Shape(static_cast<size_t>(t.dim()), 1), t.dtype(), 1.0);
}

IValueList proxy_args(const IValueList& args) {
  IValueList out;
  out.reserve(args.size());
  for (const IValue& a : args) {
    if (a.is_tensor()) {
      out.emplace_back(dtype_proxy(a.to_tensor()));
    } else if (a.is_list() || a.is_tuple()) {
      out.push_back(a.is_list() ? IValue::list(proxy_args(a.to_list_or_tuple()))
                                : IValue::tuple(proxy_args(a.to_list_or_tuple())));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace convoy::opencl
