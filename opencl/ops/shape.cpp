// OpenCL implementations of the shape and indexing family (runtime/ops/shape.cpp, indexing.cpp): cat,
// stack, repeat, roll, flip, pad/constant_pad_nd, tril/triu, advanced indexing (index.Tensor,
// index_put_, index_put), index_select, gather, masked_select, nonzero and where(condition). Views are
// in views.cpp, fill_/zero_/copy_ in factories.cpp, where(cond, x, y) in elementwise.cpp.
//
// Pure data movement runs on the elements' raw bits (shape.cl), so a program serves every dtype of one
// size. Argument checks repeat the reference's with its messages: the reference kernels cannot be run
// on proxies here, since these ops' errors depend on the real sizes and index values. Index values that
// are known when the plan is built (model constants, host scalar work) are checked then; values computed
// on the device are checked by the kernels through an error flag the executor reads after the run.
// Results whose size depends on device data (a boolean mask's count) read that count back to the host:
// the plan splits there, as at a branch on tensor data.
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "opencl/ops/launch_util.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "runtime/ops/shape_geometry.h"

namespace convoy::opencl {

namespace {

// ---- helpers ------------------------------------------------------------------------------------------

const char* bits_type(DType dtype) {
  switch (dtype_size(dtype)) {
    case 1:
      return "uchar";
    case 2:
      return "ushort";
    case 4:
      return "uint";
    default:
      return "ulong";
  }
}

std::string move_defines(DType dtype) { return str_cat("-DE_T=", bits_type(dtype)); }

// `value` converted to `dtype` exactly as the reference converts it (Tensor::copy_from), as raw bits.
int64_t value_bits(const IValue& value, DType dtype, const char* op) {
  Tensor t = Tensor::empty({}, dtype);
  t.copy_from(scalar_to_tensor(value, op));
  int64_t bits = 0;
  std::memcpy(&bits, t.raw_data(), t.element_size());
  return bits;
}

size_t scan_group_size(OpContext& cx, int64_t n) {
  size_t limit = std::min<size_t>(256, cx.device().max_work_group_size);
  size_t g = 1;
  while (g * 2 <= limit && static_cast<int64_t>(g) < n) g *= 2;
  return g;
}

Tensor narrow_view(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  Shape sizes = t.sizes();
  sizes[static_cast<size_t>(dim)] = length;
  return t.as_strided(sizes, t.strides(), t.offset() + start * t.strides()[static_cast<size_t>(dim)]);
}

void append(std::vector<int64_t>& v, const std::vector<int64_t>& more) {
  v.insert(v.end(), more.begin(), more.end());
}

// An int32 error flag for kernels that read device-computed indices (shape.cl's FLAG), zeroed; without
// options where the executor does not read flags back (the kernels then only keep their reads in bounds).
struct ErrorFlag {
  Tensor flag;
  std::string options;  // " -DFLAG" when the flag is passed
};

ErrorFlag error_flag(OpContext& cx, const std::string& message) {
  ErrorFlag f;
  f.flag = cx.empty({4}, DType::kInt32);
  if (!cx.check_flag_after_run(f.flag, message)) return ErrorFlag{};
  fill(cx, f.flag, 0);
  f.options = " -DFLAG";
  return f;
}

void add_flag_args(KernelLaunch& k, const ErrorFlag& f) {
  if (!f.options.empty()) k.args.push_back(f.flag);
}

// ---- remap: pad, roll, flip, repeat --------------------------------------------------------------------

// Rules of shape.cl's remap.
enum RemapRule : int64_t { kConstant = 0, kWrap = 1, kReflect = 2, kReplicate = 3, kFlip = 4 };

struct RemapDim {
  int64_t out_size, src_size, src_stride, rule, param;
};

RemapDim identity_dim(const Tensor& t, size_t d) {
  return {t.sizes()[d], t.sizes()[d], t.strides()[d], kConstant, 0};
}

// A fresh contiguous tensor whose element at index i reads src at the index each dim's rule gives.
Tensor remap(OpContext& cx, const Tensor& src_in, const std::vector<RemapDim>& dims, int64_t fill_bits = 0) {
  Tensor src = cx.to_device(src_in);
  Shape out_shape;
  MetaBlock meta;
  meta.values.push_back(static_cast<int64_t>(dims.size()));
  for (const RemapDim& d : dims) out_shape.push_back(d.out_size);
  for (const RemapDim& d : dims) meta.values.push_back(d.out_size);
  for (const RemapDim& d : dims) meta.values.push_back(d.src_size);
  for (const RemapDim& d : dims) meta.values.push_back(d.src_stride);
  for (const RemapDim& d : dims) meta.values.push_back(d.rule);
  for (const RemapDim& d : dims) meta.values.push_back(d.param);
  Tensor out = cx.empty(out_shape, src.dtype());
  if (out.numel() == 0) return out;
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "remap";
  k.options = move_defines(src.dtype());
  k.args = {out, src, meta, fill_bits};
  k.global = {static_cast<size_t>(out.numel())};
  cx.launch(std::move(k));
  return out;
}

Tensor repeat(OpContext& cx, const Tensor& self_in, const std::vector<int64_t>& repeats, const char* op) {
  Tensor self = cx.to_device(self_in);  // strides of the device tensor: an uploaded constant is dense
  const int64_t rank = static_cast<int64_t>(repeats.size());
  CONVOY_CHECK(rank >= self.dim(), op, ": number of dimensions of repeat dims (", rank,
               ") can not be smaller than number of dimensions of tensor (", self.dim(), ")");
  for (int64_t r : repeats)
    CONVOY_CHECK(r >= 0, op, ": repeats can not be negative, got ", shape_str(repeats));
  const int64_t lead = rank - self.dim();
  std::vector<RemapDim> dims;
  for (int64_t i = 0; i < rank; ++i) {
    const size_t d = static_cast<size_t>(i - lead);
    const int64_t size = i < lead ? 1 : self.sizes()[d];
    const int64_t stride = i < lead ? 0 : self.strides()[d];
    dims.push_back({repeats[static_cast<size_t>(i)] * size, size, stride, kWrap, 0});
  }
  return remap(cx, self, dims);
}

Tensor roll(OpContext& cx, const Tensor& self_in, const std::vector<int64_t>& shifts,
            const std::vector<int64_t>& dims, const char* op) {
  Tensor self = cx.to_device(self_in);
  if (dims.empty()) {
    // No dims: roll the flattened tensor, then restore the shape.
    CONVOY_CHECK(shifts.size() == 1, op, ": shifts ", shape_str(shifts),
                 " need dims when there is more than one");
    Tensor flat = contiguous(cx, self);
    const int64_t n = self.numel();
    const int64_t shift = n == 0 ? 0 : ((shifts[0] % n) + n) % n;
    Tensor rolled = remap(cx, flat.as_strided({n}, {1}, flat.offset()), {{n, n, 1, kWrap, shift}});
    return rolled.as_strided(self.sizes(), contiguous_strides(self.sizes()), rolled.offset());
  }
  CONVOY_CHECK(shifts.size() == dims.size(), op,
               ": shifts and dimensions must align. shifts: ", shifts.size(), ", dims: ", dims.size());
  std::vector<int64_t> total(static_cast<size_t>(self.dim()), 0);
  for (size_t i = 0; i < dims.size(); ++i) {
    CONVOY_CHECK(self.dim() > 0, op, ": cannot roll a 0-dim tensor along dim ", dims[i]);
    const size_t d = static_cast<size_t>(wrap_dim(dims[i], self.dim(), op));
    const int64_t n = self.sizes()[d];
    // Rolling one dim twice adds the shifts.
    if (n > 0) total[d] = ((total[d] + shifts[i] % n) % n + n) % n;
  }
  std::vector<RemapDim> rd;
  for (size_t d = 0; d < static_cast<size_t>(self.dim()); ++d)
    rd.push_back({self.sizes()[d], self.sizes()[d], self.strides()[d], kWrap, total[d]});
  return remap(cx, self, rd);
}

Tensor flip(OpContext& cx, const Tensor& self_in, const std::vector<int64_t>& dims, const char* op) {
  Tensor self = cx.to_device(self_in);
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(self.dim(), 1)), false);
  std::vector<RemapDim> rd;
  for (size_t d = 0; d < static_cast<size_t>(self.dim()); ++d) rd.push_back(identity_dim(self, d));
  for (int64_t raw : dims) {
    const size_t d = static_cast<size_t>(wrap_dim(raw, self.dim(), op));
    CONVOY_CHECK(!seen[d], op, ": dim ", d, " appears multiple times in the list of dims");
    seen[d] = true;
    if (self.dim() > 0) rd[d].rule = kFlip;
  }
  return remap(cx, self, rd);
}

// Pads (or, with negative pads, crops) the last pad.size()/2 dims; pad lists the last dim first.
Tensor constant_pad(OpContext& cx, const Tensor& self_in, const std::vector<int64_t>& pad,
                    const IValue& value, const char* op) {
  check_pad_list(self_in, pad, op);
  Tensor self = cx.to_device(self_in);
  std::vector<RemapDim> rd;
  for (size_t d = 0; d < static_cast<size_t>(self.dim()); ++d) rd.push_back(identity_dim(self, d));
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    const int64_t d = self.dim() - 1 - static_cast<int64_t>(i);
    const int64_t before = pad[2 * i], after = pad[2 * i + 1];
    const int64_t size = self.sizes()[static_cast<size_t>(d)];
    const int64_t new_size = constant_padded_size(size, before, after, d, op);
    RemapDim& r = rd[static_cast<size_t>(d)];
    r.out_size = new_size;
    r.param = before;
  }
  return remap(cx, self, rd, value_bits(value, self.dtype(), op));
}

// reflect / replicate / circular padding of the last pad.size()/2 dims.
Tensor index_map_pad(OpContext& cx, const Tensor& self_in, const std::vector<int64_t>& pad,
                     const std::string& mode, const char* op) {
  check_pad_list(self_in, pad, op);
  Tensor self = cx.to_device(self_in);
  const int64_t rank = self.dim();
  std::vector<RemapDim> rd;
  for (int64_t d = 0; d < rank; ++d) {
    const PadDim p = index_map_pad_dim(self.sizes(), pad, mode, d, op);
    const int64_t size = p.size, before = p.before, after = p.after, new_size = p.new_size;
    const int64_t rule = before == 0 && after == 0 ? kConstant
                         : mode == "reflect"       ? kReflect
                         : mode == "replicate"     ? kReplicate
                                                   : kWrap;
    rd.push_back({new_size, size, self.strides()[static_cast<size_t>(d)], rule, before});
  }
  return remap(cx, self, rd);
}

Tensor pad(OpContext& cx, const Tensor& self, const std::vector<int64_t>& pad_list, const std::string& mode,
           const IValue& value, const char* op) {
  if (mode == "constant") return constant_pad(cx, self, pad_list, value.is_none() ? IValue(0.0) : value, op);
  CONVOY_CHECK(value.is_none(), op, ": padding mode \"", mode, "\" doesn't take in value argument");
  CONVOY_CHECK(mode == "reflect" || mode == "replicate" || mode == "circular", op,
               ": unknown padding mode \"", mode, "\" (expected constant, reflect, replicate or circular)");
  return index_map_pad(cx, self, pad_list, mode, op);
}

Tensor triangle(OpContext& cx, const Tensor& self_in, int64_t diagonal, bool lower, const char* op) {
  CONVOY_CHECK(self_in.dim() >= 2, op, ": input tensor must have at least 2 dimensions, got ",
               self_in.describe());
  Tensor self = cx.to_device(self_in);
  Tensor out = cx.empty(self.sizes(), self.dtype());
  if (out.numel() == 0) return out;
  const int64_t rows = self.size(-2), cols = self.size(-1);
  MetaBlock meta;
  meta.values.push_back(self.dim());
  append(meta.values, self.sizes());
  append(meta.values, self.strides());
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "triangle";
  k.options = move_defines(self.dtype());
  k.args = {out, self, meta, rows, cols, diagonal, static_cast<int32_t>(lower ? 1 : 0)};
  k.global = {static_cast<size_t>(out.numel())};
  cx.launch(std::move(k));
  return out;
}

// ---- cat / stack -----------------------------------------------------------------------------------------

Tensor cat(OpContext& cx, const std::vector<Tensor>& tensors, int64_t dim, const char* op) {
  const CatGeometry g = cat_geometry(tensors, dim, op);
  if (g.all_empty) return cx.empty({0}, g.dtype);
  dim = g.dim;
  Tensor out = cx.empty(g.out_shape, g.dtype);
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (is_legacy_empty(t)) continue;
    const int64_t n = t.sizes()[static_cast<size_t>(dim)];
    if (n > 0) copy_into(cx, narrow_view(out, dim, offset, n), t);
    offset += n;
  }
  return out;
}

Tensor stack(OpContext& cx, const std::vector<Tensor>& tensors, int64_t dim, const char* op) {
  const StackGeometry g = stack_geometry(tensors, dim, op);
  dim = g.dim;
  Tensor out = cx.empty(g.out_shape, g.dtype);
  for (size_t i = 0; i < tensors.size(); ++i) {
    Shape sizes = out.sizes(), strides = out.strides();
    const int64_t offset = static_cast<int64_t>(i) * strides[static_cast<size_t>(dim)];
    sizes.erase(sizes.begin() + dim);
    strides.erase(strides.begin() + dim);
    copy_into(cx, out.as_strided(sizes, strides, offset), tensors[i]);
  }
  return out;
}

// ---- boolean masks ---------------------------------------------------------------------------------------

bool is_mask_dtype(DType d) { return d == DType::kBool || d == DType::kUInt8; }

// Row-major coordinates of the set elements of a host mask, one vector per dim.
std::vector<std::vector<int64_t>> host_nonzero(const Tensor& mask) {
  std::vector<std::vector<int64_t>> coords(static_cast<size_t>(mask.dim()));
  const std::vector<int64_t> values = mask.to_ints();
  for (int64_t i = 0; i < static_cast<int64_t>(values.size()); ++i) {
    if (!values[static_cast<size_t>(i)]) continue;
    int64_t rest = i;
    for (size_t d = coords.size(); d-- > 0;) {
      coords[d].push_back(rest % mask.sizes()[d]);
      rest /= mask.sizes()[d];
    }
  }
  return coords;
}

// A device bool mask of `t` (itself when already bool, or uint8 read as bytes; else t != 0).
Tensor device_mask(OpContext& cx, const Tensor& t_in) {
  Tensor t = cx.to_device(t_in);
  if (is_mask_dtype(t.dtype())) return t;
  Tensor m = cx.empty(t.sizes(), DType::kBool);
  elementwise(cx, "NE", m, {EwInput::of(t), EwInput::of_int(0)}, compute_dtype_of(t.dtype()));
  return m;
}

struct MaskScan {
  Tensor pos;    // int64 [n]: set elements before each element (row-major over `sizes`)
  Tensor count;  // int64 [1]
};

// The scan of a bool/uint8 device mask read through `strides` over `sizes`. With a flag and expect >= 0,
// a count other than `expect` raises after the run.
MaskScan scan_mask(OpContext& cx, const Tensor& mask, const Shape& sizes, const Shape& strides,
                   int64_t expect = -1, const ErrorFlag* flag = nullptr) {
  const int64_t n = shape_numel(sizes);
  MaskScan s;
  s.pos = cx.empty({n}, DType::kInt64);
  s.count = cx.empty({1}, DType::kInt64);
  const size_t lsize = scan_group_size(cx, n);
  MetaBlock meta;
  meta.values.push_back(static_cast<int64_t>(sizes.size()));
  append(meta.values, sizes);
  append(meta.values, strides);
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "mask_scan";
  k.options = "-DE_T=uchar";
  if (flag) k.options += flag->options;
  k.args = {s.pos, s.count, mask, meta, n, LocalMemory{lsize * sizeof(int64_t)}, expect};
  if (flag) add_flag_args(k, *flag);
  k.global = {lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
  return s;
}

// The count of a scan, read back to the host (the plan splits here).
int64_t read_count(OpContext& cx, const MaskScan& s) {
  Tensor value = cx.read_back(s.count.as_strided({}, {}, s.count.offset()));
  return value.item_int();
}

// (rank, count) coordinates of a device mask's set elements: dim_step/item_step lay them out.
Tensor mask_coords(OpContext& cx, const Tensor& mask, const MaskScan& s, int64_t count,
                   const Shape& out_shape, int64_t dim_step, int64_t item_step) {
  Tensor coords = cx.empty(out_shape, DType::kInt64);
  if (coords.numel() == 0 || mask.numel() == 0) return coords;
  MetaBlock meta;
  meta.values.push_back(mask.dim());
  append(meta.values, mask.sizes());
  append(meta.values, mask.strides());
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "mask_coords";
  k.options = "-DE_T=uchar";
  k.args = {coords, mask, s.pos, meta, count, dim_step, item_step};
  k.global = {static_cast<size_t>(mask.numel())};
  cx.launch(std::move(k));
  return coords;
}

// ---- advanced indexing -----------------------------------------------------------------------------------

// self[indices] as plain dims (kept from self), the broadcast index shape B and K index tensors.
struct IndexPlan {
  Shape result_shape;
  std::vector<size_t> plain_pos;  // result dims that are self's plain dims
  std::vector<int64_t> plain_size, plain_self_stride;
  std::vector<size_t> b_pos;  // result dims of B (consecutive)
  Shape b_shape;
  std::vector<std::pair<int64_t, int64_t>> indexed;  // (self stride, size) per index tensor
  Tensor idx;                                        // int64 [K, numel(B)] on the device
  bool device_values = false;                        // some index values are only known on the device
  int64_t plain_numel() const { return shape_numel(Shape(plain_size.begin(), plain_size.end())); }
  int64_t b_numel() const { return shape_numel(b_shape); }
};

// Bound-checks and wraps host index values (the reference's message).
void check_host_indices(std::vector<int64_t>& values, int64_t size, int64_t dim, const char* op) {
  for (int64_t& i : values) {
    CONVOY_CHECK(i >= -size && i < size, op, ": index ", i, " is out of bounds for dimension ", dim,
                 " with size ", size);
    if (i < 0) i += size;
  }
}

IndexPlan plan_index(OpContext& cx, const Tensor& self, const IValueList& indices, const char* op) {
  const int64_t rank = self.dim();
  const IndexEntries entries = index_entries(self, indices, op, [&](const Tensor& t) {
    std::vector<Tensor> out;
    if (!cx.is_device(t)) {
      for (const std::vector<int64_t>& c : host_nonzero(t))
        out.push_back(Tensor::from_ints({static_cast<int64_t>(c.size())}, DType::kInt64, c));
    } else {
      // The mask's set elements become one index tensor per dim it covers; their count sizes the result.
      MaskScan s = scan_mask(cx, t, t.sizes(), t.strides());
      const int64_t count = read_count(cx, s);
      Tensor coords = mask_coords(cx, t, s, count, {t.dim(), count}, count, 1);
      for (int64_t j = 0; j < t.dim(); ++j)
        out.push_back(coords.as_strided({count}, {1}, coords.offset() + j * count));
    }
    return out;
  });
  const std::vector<std::optional<Tensor>>& per_dim = entries.per_dim;
  const std::vector<int64_t>& indexed_dims = entries.indexed_dims;
  const std::vector<Shape>& index_shapes = entries.index_shapes;
  IndexPlan plan;
  plan.b_shape = indexed_dims.empty() ? Shape{} : broadcast_shapes(index_shapes, op);
  const int64_t k_count = static_cast<int64_t>(indexed_dims.size());
  const int64_t bn = plan.b_numel();

  // The index values, broadcast to B, as one int64 [K, bn] device tensor.
  bool all_host = true;
  for (int64_t d : indexed_dims) all_host = all_host && !cx.is_device(*per_dim[static_cast<size_t>(d)]);
  if (!indexed_dims.empty()) {
    if (all_host) {
      std::vector<int64_t> values;
      for (int64_t d : indexed_dims) {
        std::vector<int64_t> v = expand_to(*per_dim[static_cast<size_t>(d)], plan.b_shape, op).to_ints();
        check_host_indices(v, self.sizes()[static_cast<size_t>(d)], d, op);
        append(values, v);
      }
      plan.idx = cx.to_device(Tensor::from_ints({k_count, bn}, DType::kInt64, values));
    } else {
      plan.device_values = true;
      const Tensor& first = *per_dim[static_cast<size_t>(indexed_dims[0])];
      if (k_count == 1 && first.dtype() == DType::kInt64 && first.sizes() == plan.b_shape &&
          (bn <= 1 || first.strides() == contiguous_strides(plan.b_shape))) {
        plan.idx = first.as_strided({1, bn}, {bn, 1}, first.offset());
      } else {
        plan.idx = cx.empty({k_count, bn}, DType::kInt64);
        for (int64_t k = 0; k < k_count; ++k) {
          const int64_t d = indexed_dims[static_cast<size_t>(k)];
          const Tensor& t = *per_dim[static_cast<size_t>(d)];
          if (!cx.is_device(t)) {
            // Known values are checked now; the kernel wraps them like the others.
            std::vector<int64_t> v = t.to_ints();
            check_host_indices(v, self.sizes()[static_cast<size_t>(d)], d, op);
          }
          Tensor row =
              plan.idx.as_strided(plan.b_shape, contiguous_strides(plan.b_shape), plan.idx.offset() + k * bn);
          if (bn > 0) copy_into(cx, row, t);
        }
      }
    }
  }

  // PyTorch's placement: B replaces the indexed dims when they are adjacent, else B comes first.
  const bool adjacent = indexed_dims.empty() || indexed_dims.back() - indexed_dims.front() + 1 ==
                                                    static_cast<int64_t>(indexed_dims.size());
  auto add_b = [&] {
    for (int64_t s : plan.b_shape) {
      plan.b_pos.push_back(plan.result_shape.size());
      plan.result_shape.push_back(s);
    }
  };
  if (!adjacent) add_b();
  for (int64_t d = 0; d < rank; ++d) {
    if (per_dim[static_cast<size_t>(d)]) {
      if (adjacent && d == indexed_dims.front()) add_b();
      continue;
    }
    plan.plain_pos.push_back(plan.result_shape.size());
    plan.plain_size.push_back(self.sizes()[static_cast<size_t>(d)]);
    plan.plain_self_stride.push_back(self.strides()[static_cast<size_t>(d)]);
    plan.result_shape.push_back(self.sizes()[static_cast<size_t>(d)]);
  }
  for (int64_t d : indexed_dims)
    plan.indexed.emplace_back(self.strides()[static_cast<size_t>(d)], self.sizes()[static_cast<size_t>(d)]);
  return plan;
}

// shape.cl's index meta, with the other operand's strides over the result shape.
MetaBlock index_meta(const IndexPlan& plan, const Shape& other_strides) {
  MetaBlock m;
  m.values.push_back(static_cast<int64_t>(plan.plain_pos.size()));
  append(m.values, plan.plain_size);
  append(m.values, plan.plain_self_stride);
  for (size_t p : plan.plain_pos) m.values.push_back(other_strides[p]);
  m.values.push_back(static_cast<int64_t>(plan.b_pos.size()));
  append(m.values, plan.b_shape);
  for (size_t p : plan.b_pos) m.values.push_back(other_strides[p]);
  m.values.push_back(static_cast<int64_t>(plan.indexed.size()));
  for (const auto& [stride, size] : plan.indexed) {
    m.values.push_back(stride);
    m.values.push_back(size);
  }
  return m;
}

ErrorFlag index_flag(OpContext& cx, const IndexPlan& plan, const char* op) {
  if (!plan.device_values) return {};
  return error_flag(cx, str_cat(op, ": an index computed on the device is out of bounds for its dimension ",
                                "(flag: error, index tensor, value)"));
}

Tensor index(OpContext& cx, const Tensor& self_in, const IValueList& indices, const char* op) {
  Tensor self = cx.to_device(self_in);
  IndexPlan plan = plan_index(cx, self, indices, op);
  if (plan.indexed.empty()) return contiguous_copy(cx, self);
  Tensor out = cx.empty(plan.result_shape, self.dtype());
  if (out.numel() == 0) return out;
  ErrorFlag flag = index_flag(cx, plan, op);
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "index_gather";
  k.options = move_defines(self.dtype()) + flag.options;
  k.args = {out, self, plan.idx, plan.b_numel(), index_meta(plan, out.strides())};
  add_flag_args(k, flag);
  k.global = {static_cast<size_t>(plan.plain_numel()), static_cast<size_t>(plan.b_numel())};
  cx.launch(std::move(k));
  return out;
}

std::string typed_defines(OpContext& cx, DType dtype) {
  return str_cat(compute_defines(cx, compute_dtype_of(dtype)), load_defines(cx, "DST", dtype),
                 store_defines(cx, "DST", dtype), load_defines(cx, "SRC", dtype));
}

// self[indices] = values, or += with accumulate, where self[indices] is a single device boolean mask
// (None entries aside): each element of self checks the mask itself, so the mask's count is not needed
// on the host. values must broadcast to self's shape with the mask's dims replaced by one dim of the
// count; a count it does not match raises after the run.
void mask_put(OpContext& cx, const Tensor& self, int64_t first, const Tensor& mask, const Tensor& values_in,
              bool accumulate, const char* op) {
  const int64_t rank = self.dim(), m = mask.dim();
  CONVOY_CHECK_KIND(kUnsupported, m > 0, op, ": 0-dim boolean mask indices are not supported");
  CONVOY_CHECK(first + m <= rank, op, ": too many indices for tensor of dimension ", rank, " (mask ",
               mask.describe(), " at dim ", first, ")");
  for (int64_t j = 0; j < m; ++j)
    CONVOY_CHECK(mask.sizes()[static_cast<size_t>(j)] == self.sizes()[static_cast<size_t>(first + j)], op,
                 ": the shape of the mask ", shape_str(mask.sizes()), " at index ", j,
                 " does not match the shape of the indexed tensor ", shape_str(self.sizes()), " at index ",
                 first + j);
  Tensor values = cx.to_device(values_in);
  if (values.dtype() != self.dtype()) values = contiguous_copy(cx, values, self.dtype());
  // The result shape with the count left open: values' size along that dim decides it (1 broadcasts).
  const int64_t result_rank = rank - m + 1;
  CONVOY_CHECK(values.dim() <= result_rank, op, ": shape mismatch: value tensor of shape ",
               shape_str(values.sizes()), " cannot be broadcast to indexing result of rank ", result_rank);
  Shape value_strides(static_cast<size_t>(rank), 0);
  int64_t values_step = 0, expect = -1;
  const int64_t lead = result_rank - values.dim();
  for (int64_t q = lead; q < result_rank; ++q) {
    const size_t vd = static_cast<size_t>(q - lead);
    const int64_t s = values.sizes()[vd], stride = values.strides()[vd];
    if (q == first) {
      if (s != 1) {
        values_step = stride;
        expect = s;
      }
      continue;
    }
    const int64_t d = q < first ? q : q + m - 1;  // self dim of result dim q
    const int64_t want = self.sizes()[static_cast<size_t>(d)];
    CONVOY_CHECK(s == want || s == 1, op, ": shape mismatch: value tensor of shape ",
                 shape_str(values.sizes()), " cannot be broadcast to the indexing result (dim ", q,
                 " has size ", want, ")");
    value_strides[static_cast<size_t>(d)] = s == 1 ? 0 : stride;
  }
  Shape mask_strides(static_cast<size_t>(rank), 0);
  for (int64_t j = 0; j < m; ++j)
    mask_strides[static_cast<size_t>(first + j)] = mask.strides()[static_cast<size_t>(j)];
  if (self.numel() == 0) return;
  ErrorFlag flag;
  if (expect >= 0)
    flag = error_flag(
        cx, str_cat(op, ": shape mismatch: value tensor of shape ", shape_str(values.sizes()),
                    " does not match the number of elements the mask selects (flag: error, -1, count)"));
  MaskScan s =
      scan_mask(cx, mask, mask.sizes(), mask.strides(), expect, flag.options.empty() ? nullptr : &flag);
  MetaBlock meta;
  meta.values.push_back(rank);
  append(meta.values, self.sizes());
  append(meta.values, self.strides());
  append(meta.values, value_strides);
  append(meta.values, mask_strides);
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "mask_put";
  k.options = typed_defines(cx, self.dtype()) + (accumulate ? " -DACCUMULATE" : "");
  k.args = {self,
            values,
            mask,
            s.pos,
            meta,
            static_cast<int32_t>(first),
            static_cast<int32_t>(m),
            values_step,
            expect >= 0 ? expect : std::numeric_limits<int64_t>::max()};
  k.global = {static_cast<size_t>(self.numel())};
  cx.launch(std::move(k));
}

// The position of the only tensor entry when it is a device boolean mask, else -1.
int64_t single_device_mask(OpContext& cx, const IValueList& indices) {
  int64_t pos = 0, found = -1, tensors = 0;
  for (const IValue& e : indices) {
    if (e.is_none()) {
      ++pos;
      continue;
    }
    ++tensors;
    const Tensor& t = e.to_tensor();
    if (is_mask_dtype(t.dtype()) && cx.is_device(t)) found = pos;
    pos += is_mask_dtype(t.dtype()) ? t.dim() : 1;
  }
  return tensors == 1 ? found : -1;
}

void index_put(OpContext& cx, const Tensor& self, const IValueList& indices, const Tensor& values_in,
               bool accumulate, const char* op) {
  if (int64_t first = single_device_mask(cx, indices); first >= 0) {
    for (const IValue& e : indices)
      if (!e.is_none()) mask_put(cx, self, first, e.to_tensor(), values_in, accumulate, op);
    return;
  }
  IndexPlan plan = plan_index(cx, self, indices, op);
  Tensor values = cx.to_device(values_in);
  if (values.dtype() != self.dtype()) values = contiguous_copy(cx, values, self.dtype());
  const Shape value_strides = broadcast_strides(values, plan.result_shape, op);
  if (shape_numel(plan.result_shape) == 0) return;
  if (plan.indexed.empty()) {
    // No index tensors: every element is written once.
    Tensor src = values.as_strided(plan.result_shape, value_strides, values.offset());
    if (accumulate)
      elementwise(cx, "ADD", self, {EwInput::of(self), EwInput::of(src)}, compute_dtype_of(self.dtype()),
                  {1, 0, 0});
    else
      copy_into(cx, self, src);
    return;
  }
  ErrorFlag flag = index_flag(cx, plan, op);
  KernelLaunch k;
  k.file = "shape.cl";
  k.args = {self, values, plan.idx, plan.b_numel(), index_meta(plan, value_strides)};
  add_flag_args(k, flag);
  if (accumulate) {
    k.kernel = "index_put_acc";
    k.options = typed_defines(cx, self.dtype()) + flag.options;
    k.global = {static_cast<size_t>(plan.plain_numel())};
  } else {
    k.kernel = "index_put";
    k.options = move_defines(self.dtype()) + flag.options;
    k.global = {static_cast<size_t>(plan.plain_numel()), static_cast<size_t>(plan.b_numel())};
  }
  cx.launch(std::move(k));
}

Tensor index_select(OpContext& cx, const Tensor& self_in, int64_t dim, const Tensor& idx, const char* op) {
  CONVOY_CHECK(idx.dim() <= 1, op, ": index is supposed to be a vector, got ", idx.describe());
  CONVOY_CHECK(idx.dtype() == DType::kInt64 || idx.dtype() == DType::kInt32, op,
               ": expected a long or int tensor for index, got ", idx.describe());
  Tensor self = cx.to_device(self_in);
  dim = wrap_dim(dim, self.dim(), op);
  const int64_t size = self.dim() == 0 ? 1 : self.sizes()[static_cast<size_t>(dim)];
  if (!cx.is_device(idx))
    for (int64_t v : idx.to_ints())
      CONVOY_CHECK(v >= 0 && v < size, op, ": index ", v, " out of range for dimension ", dim, " of size ",
                   size);
  if (self.dim() == 0) {
    CONVOY_CHECK(idx.numel() == 1, op, ": index of a 0-dim tensor must have one element, got ",
                 idx.describe());
    return contiguous_copy(cx, self);
  }
  IValueList indices(static_cast<size_t>(dim));
  Tensor flat = idx.dim() == 1 ? idx : idx.as_strided({1}, {1}, idx.offset());
  indices.emplace_back(flat);
  return index(cx, self, indices, op);
}

Tensor gather(OpContext& cx, const Tensor& self_in, int64_t dim, const Tensor& idx_in, const char* op) {
  CONVOY_CHECK(idx_in.dtype() == DType::kInt64, op, ": expected dtype int64 for index, got ",
               idx_in.describe());
  const int64_t rank = std::max<int64_t>(self_in.dim(), 1);
  CONVOY_CHECK(std::max<int64_t>(idx_in.dim(), 1) == rank, op,
               ": index tensor must have the same number of dimensions as input tensor (", idx_in.describe(),
               " vs ", self_in.describe(), ")");
  dim = wrap_dim(dim, self_in.dim(), op);
  Tensor self = cx.to_device(self_in);
  const Shape self_sizes = self.dim() == 0 ? Shape{1} : self.sizes();
  const Shape self_strides = self.dim() == 0 ? Shape{1} : self.strides();
  const Shape idx_sizes = idx_in.dim() == 0 ? Shape{1} : idx_in.sizes();
  for (int64_t d = 0; d < rank; ++d)
    CONVOY_CHECK(d == dim || idx_sizes[static_cast<size_t>(d)] <= self_sizes[static_cast<size_t>(d)], op,
                 ": size does not match at dimension ", d, " expected index ", shape_str(idx_in.sizes()),
                 " to be smaller than self ", shape_str(self.sizes()), " apart from dimension ", dim);
  const int64_t dim_size = self_sizes[static_cast<size_t>(dim)];
  Tensor out = cx.empty(idx_in.sizes(), self.dtype());
  if (out.numel() == 0) return out;
  ErrorFlag flag;
  if (!cx.is_device(idx_in)) {
    for (int64_t i : idx_in.to_ints())
      CONVOY_CHECK(i >= -dim_size && i < dim_size, op, ": index ", i, " is out of bounds for dimension ", dim,
                   " with size ", dim_size);
  } else {
    flag = error_flag(cx, str_cat(op, ": an index computed on the device is out of bounds for dimension ",
                                  dim, " with size ", dim_size, " (flag: error, dim, value)"));
  }
  Tensor idx = cx.to_device(idx_in);
  MetaBlock meta;
  meta.values.push_back(rank);
  append(meta.values, idx_sizes);
  append(meta.values, idx.dim() == 0 ? Shape{0} : idx.strides());
  append(meta.values, self_strides);
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "gather_dim";
  k.options = move_defines(self.dtype()) + flag.options;
  k.args = {out, self, idx, meta, static_cast<int32_t>(dim), dim_size};
  add_flag_args(k, flag);
  k.global = {static_cast<size_t>(out.numel())};
  cx.launch(std::move(k));
  return out;
}

Tensor masked_select(OpContext& cx, const Tensor& self_in, const Tensor& mask, const char* op) {
  CONVOY_CHECK(is_mask_dtype(mask.dtype()), op, ": expected a bool mask, got ", mask.describe());
  const Shape shape = broadcast_shapes(self_in.sizes(), mask.sizes(), op);
  Tensor self = cx.to_device(self_in);
  const Shape self_strides = broadcast_strides(self, shape, op);
  if (!cx.is_device(mask)) {
    // Known mask: the set elements' coordinates index the expanded self.
    Tensor expanded_mask = expand_to(mask, shape, op);
    std::vector<std::vector<int64_t>> coords = host_nonzero(expanded_mask.contiguous());
    const int64_t n = coords.empty() ? (shape_numel(shape) == 1 && expanded_mask.item_bool() ? 1 : 0)
                                     : static_cast<int64_t>(coords[0].size());
    Tensor out = cx.empty({n}, self.dtype());
    if (n == 0) return out;
    if (shape.empty()) {
      copy_into(cx, out, self.as_strided({1}, {0}, self.offset()));
      return out;
    }
    IndexPlan plan;
    plan.b_shape = {n};
    plan.b_pos = {0};
    plan.result_shape = {n};
    std::vector<int64_t> values;
    for (size_t d = 0; d < shape.size(); ++d) {
      plan.indexed.emplace_back(self_strides[d], shape[d]);
      append(values, coords[d]);
    }
    plan.idx =
        cx.to_device(Tensor::from_ints({static_cast<int64_t>(shape.size()), n}, DType::kInt64, values));
    KernelLaunch k;
    k.file = "shape.cl";
    k.kernel = "index_gather";
    k.options = move_defines(self.dtype());
    k.args = {out, self, plan.idx, n, index_meta(plan, out.strides())};
    k.global = {1, static_cast<size_t>(n)};
    cx.launch(std::move(k));
    return out;
  }
  const Shape mask_strides = broadcast_strides(mask, shape, op);
  MaskScan s = scan_mask(cx, mask, shape, mask_strides);
  const int64_t n = read_count(cx, s);
  Tensor out = cx.empty({n}, self.dtype());
  if (n == 0) return out;
  MetaBlock meta;
  const int64_t r = static_cast<int64_t>(shape.size());
  meta.values.push_back(r);
  append(meta.values, shape);
  append(meta.values, self_strides);
  meta.values.push_back(r);
  append(meta.values, shape);
  append(meta.values, mask_strides);
  KernelLaunch k;
  k.file = "shape.cl";
  k.kernel = "mask_compact";
  k.options = move_defines(self.dtype());
  k.args = {out, self, mask, s.pos, meta, n};
  k.global = {static_cast<size_t>(shape_numel(shape))};
  cx.launch(std::move(k));
  return out;
}

// nonzero(self): (count, rank) int64 coordinates of the nonzero elements, row-major.
Tensor nonzero(OpContext& cx, const Tensor& self) {
  Tensor mask = device_mask(cx, self);
  MaskScan s = scan_mask(cx, mask, mask.sizes(), mask.strides());
  const int64_t n = read_count(cx, s);
  return mask_coords(cx, mask, s, n, {n, mask.dim()}, 1, mask.dim());
}

}  // namespace

void register_opencl_shape_ops(OpenCLOpTable& t) {
  t.add("aten::cat", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(cat(cx, a[0].to_tensor_list(), a[1].to_int(), "aten::cat"))};
  });
  t.add("aten::stack", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(stack(cx, a[0].to_tensor_list(), a[1].to_int(), "aten::stack"))};
  });
  t.add("aten::repeat", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(repeat(cx, a[0].to_tensor(), a[1].to_int_list(), "aten::repeat"))};
  });
  t.add("aten::roll", [](OpContext& cx, IValueList& a) {
    return IValueList{
        IValue(roll(cx, a[0].to_tensor(), a[1].to_int_list(), a[2].to_int_list(), "aten::roll"))};
  });
  t.add("aten::flip", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(flip(cx, a[0].to_tensor(), a[1].to_int_list(), "aten::flip"))};
  });
  t.add("aten::pad", [](OpContext& cx, IValueList& a) {
    return IValueList{
        IValue(pad(cx, a[0].to_tensor(), a[1].to_int_list(), a[2].to_string(), a[3], "aten::pad"))};
  });
  t.add("aten::constant_pad_nd", [](OpContext& cx, IValueList& a) {
    return IValueList{
        IValue(constant_pad(cx, a[0].to_tensor(), a[1].to_int_list(), a[2], "aten::constant_pad_nd"))};
  });
  t.add("aten::tril", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(triangle(cx, a[0].to_tensor(), a[1].to_int(), true, "aten::tril"))};
  });
  t.add("aten::triu", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(triangle(cx, a[0].to_tensor(), a[1].to_int(), false, "aten::triu"))};
  });

  t.add("aten::index.Tensor", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(index(cx, a[0].to_tensor(), a[1].to_list(), "aten::index"))};
  });
  t.add("aten::index_put_", [](OpContext& cx, IValueList& a) {
    Tensor self = cx.writable(a[0].to_tensor());
    index_put(cx, self, a[1].to_list(), a[2].to_tensor(), a[3].to_bool(), "aten::index_put_");
    return IValueList{IValue(self)};
  });
  t.add("aten::index_put", [](OpContext& cx, IValueList& a) {
    Tensor out = contiguous_copy(cx, a[0].to_tensor());
    index_put(cx, out, a[1].to_list(), a[2].to_tensor(), a[3].to_bool(), "aten::index_put");
    return IValueList{IValue(out)};
  });
  t.add("aten::index_select", [](OpContext& cx, IValueList& a) {
    return IValueList{
        IValue(index_select(cx, a[0].to_tensor(), a[1].to_int(), a[2].to_tensor(), "aten::index_select"))};
  });
  t.add("aten::gather", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(gather(cx, a[0].to_tensor(), a[1].to_int(), a[2].to_tensor(), "aten::gather"))};
  });
  t.add("aten::masked_select", [](OpContext& cx, IValueList& a) {
    return IValueList{IValue(masked_select(cx, a[0].to_tensor(), a[1].to_tensor(), "aten::masked_select"))};
  });
  t.add("aten::nonzero",
        [](OpContext& cx, IValueList& a) { return IValueList{IValue(nonzero(cx, a[0].to_tensor()))}; });
  // where(condition) is nonzero(condition, as_tuple=True): one index tensor per dim (a 0-dim
  // condition counts as one dim).
  t.add("aten::where", [](OpContext& cx, IValueList& a) {
    Tensor cond = cx.to_device(a[0].to_tensor());
    if (cond.dim() == 0) cond = cond.as_strided({1}, {1}, cond.offset());
    Tensor coords = nonzero(cx, cond);
    const int64_t n = coords.sizes()[0], rank = cond.dim();
    IValueList out;
    for (int64_t d = 0; d < rank; ++d) out.emplace_back(coords.as_strided({n}, {rank}, coords.offset() + d));
    return IValueList{IValue::list(std::move(out))};
  });
}

}  // namespace convoy::opencl
