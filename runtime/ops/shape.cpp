// Shape ops that copy data (cat, stack, repeat, roll, flip, pad, tril/triu) and the in-place writes
// fill_/zero_/copy_. register_shape_ops also registers the view, indexing and factory families.
#include <algorithm>
#include <cstring>
#include <optional>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "runtime/ops/shape_geometry.h"

namespace convoy {

void register_view_ops(OpRegistry& registry);      // views.cpp
void register_indexing_ops(OpRegistry& registry);  // indexing.cpp
void register_factory_ops(OpRegistry& registry);   // factories.cpp

namespace {

// A view of `t` restricted to [start, start + length) along `dim` (no checks: callers stay inside).
Tensor narrow_view(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  Shape sizes = t.sizes();
  sizes[static_cast<size_t>(dim)] = length;
  return t.as_strided(sizes, t.strides(), t.offset() + start * t.strides()[static_cast<size_t>(dim)]);
}

// dst ← src for same-shape, same-dtype, non-overlapping views: memcpy of the largest trailing block
// that is contiguous in both (whole rows for cat/stack/pad/roll), else Tensor::copy_from (which also
// converts dtypes and broadcasts).
void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() != src.dtype() || dst.sizes() != src.sizes() || dst.shares_storage_with(src)) {
    Tensor(dst).copy_from(src);
    return;
  }
  const Shape& sizes = dst.sizes();
  size_t outer_rank = sizes.size();
  int64_t block = 1;
  while (outer_rank > 0) {
    size_t d = outer_rank - 1;
    if (sizes[d] != 1 && (dst.strides()[d] != block || src.strides()[d] != block)) break;
    block *= sizes[d];
    --outer_rank;
  }
  const int64_t es = static_cast<int64_t>(dst.element_size());
  const int64_t outer =
      shape_numel(Shape(sizes.begin(), sizes.begin() + static_cast<std::ptrdiff_t>(outer_rank)));
  if (outer == 0 || block == 0) return;
  uint8_t* dbase = dst.storage()->data();
  const uint8_t* sbase = src.storage()->data();
  std::vector<int64_t> index(outer_rank, 0);
  int64_t doff = dst.offset(), soff = src.offset();
  for (int64_t n = 0; n < outer; ++n) {
    std::memcpy(dbase + doff * es, sbase + soff * es, static_cast<size_t>(block * es));
    for (size_t d = outer_rank; d-- > 0;) {
      doff += dst.strides()[d];
      soff += src.strides()[d];
      if (++index[d] < sizes[d]) break;
      doff -= dst.strides()[d] * sizes[d];
      soff -= src.strides()[d] * sizes[d];
      index[d] = 0;
    }
  }
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim, const char* op) {
  const CatGeometry g = cat_geometry(tensors, dim, op);
  if (g.all_empty) return Tensor::empty({0}, g.dtype);
  dim = g.dim;
  Tensor out = Tensor::empty(g.out_shape, g.dtype);
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (is_legacy_empty(t)) continue;
    int64_t n = t.sizes()[static_cast<size_t>(dim)];
    copy_into(narrow_view(out, dim, offset, n), t);
    offset += n;
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim, const char* op) {
  const StackGeometry g = stack_geometry(tensors, dim, op);
  dim = g.dim;
  Tensor out = Tensor::empty(g.out_shape, g.dtype);
  for (size_t i = 0; i < tensors.size(); ++i) {
    Shape sizes = out.sizes(), strides = out.strides();
    int64_t offset = static_cast<int64_t>(i) * strides[static_cast<size_t>(dim)];
    sizes.erase(sizes.begin() + dim);
    strides.erase(strides.begin() + dim);
    copy_into(out.as_strided(sizes, strides, offset), tensors[i]);
  }
  return out;
}

Tensor repeat(const Tensor& self, const std::vector<int64_t>& repeats, const char* op) {
  int64_t rank = static_cast<int64_t>(repeats.size());
  CONVOY_CHECK(rank >= self.dim(), op, ": number of dimensions of repeat dims (", rank,
               ") can not be smaller than number of dimensions of tensor (", self.dim(), ")");
  for (int64_t r : repeats)
    CONVOY_CHECK(r >= 0, op, ": repeats can not be negative, got ", shape_str(repeats));
  // Read self as [r0, s0, r1, s1, ...] with stride 0 on the repeat dims, then merge each pair.
  int64_t lead = rank - self.dim();
  Shape pair_sizes, pair_strides, out_shape;
  for (int64_t i = 0; i < rank; ++i) {
    int64_t s = i < lead ? 1 : self.sizes()[static_cast<size_t>(i - lead)];
    int64_t st = i < lead ? 0 : self.strides()[static_cast<size_t>(i - lead)];
    pair_sizes.insert(pair_sizes.end(), {repeats[static_cast<size_t>(i)], s});
    pair_strides.insert(pair_strides.end(), {0, st});
    out_shape.push_back(repeats[static_cast<size_t>(i)] * s);
  }
  Tensor out = Tensor::empty(out_shape, self.dtype());
  if (out.numel() == 0) return out;
  Tensor src = self.as_strided(pair_sizes, pair_strides, self.offset());
  out.as_strided(pair_sizes, contiguous_strides(pair_sizes), 0).copy_from(src);
  return out;
}

// Rolls one dim: element i moves to (i + shift) mod n.
Tensor roll_dim(const Tensor& self, int64_t shift, int64_t dim) {
  Tensor out = Tensor::empty(self.sizes(), self.dtype());
  int64_t n = self.sizes()[static_cast<size_t>(dim)];
  if (n == 0) return out;
  int64_t s = ((shift % n) + n) % n;
  copy_into(narrow_view(out, dim, s, n - s), narrow_view(self, dim, 0, n - s));
  if (s > 0) copy_into(narrow_view(out, dim, 0, s), narrow_view(self, dim, n - s, s));
  return out;
}

Tensor roll(const Tensor& self, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims,
            const char* op) {
  if (dims.empty()) {
    // No dims: roll the flattened tensor, then restore the shape.
    CONVOY_CHECK(shifts.size() == 1, op, ": shifts ", shape_str(shifts),
                 " need dims when there is more than one");
    Tensor flat = self.clone();
    flat = flat.as_strided({self.numel()}, {1}, 0);
    Tensor rolled = roll_dim(flat, shifts[0], 0);
    return rolled.as_strided(self.sizes(), contiguous_strides(self.sizes()), 0);
  }
  CONVOY_CHECK(shifts.size() == dims.size(), op,
               ": shifts and dimensions must align. shifts: ", shifts.size(), ", dims: ", dims.size());
  Tensor out = self;
  for (size_t i = 0; i < dims.size(); ++i) {
    CONVOY_CHECK(self.dim() > 0, op, ": cannot roll a 0-dim tensor along dim ", dims[i]);
    out = roll_dim(out, shifts[i], wrap_dim(dims[i], self.dim(), op));
  }
  return out;
}

Tensor flip(const Tensor& self, const std::vector<int64_t>& dims, const char* op) {
  Shape strides = self.strides();
  int64_t offset = self.offset();
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(self.dim(), 1)), false);
  for (int64_t raw : dims) {
    int64_t d = wrap_dim(raw, self.dim(), op);
    CONVOY_CHECK(!seen[static_cast<size_t>(d)], op, ": dim ", d,
                 " appears multiple times in the list of dims");
    seen[static_cast<size_t>(d)] = true;
    if (self.dim() == 0) continue;
    size_t i = static_cast<size_t>(d);
    // A negative-stride view reads the dim backwards; clone() materialises it.
    if (self.sizes()[i] > 0) offset += (self.sizes()[i] - 1) * strides[i];
    strides[i] = -strides[i];
  }
  return self.as_strided(self.sizes(), strides, offset).clone();
}

// Pads (or, with negative pads, crops) the last pad.size()/2 dims; pad lists the last dim first.
Tensor constant_pad(const Tensor& self, const std::vector<int64_t>& pad, const IValue& value,
                    const char* op) {
  check_pad_list(self, pad, op);
  Shape out_shape = self.sizes();
  Tensor src = self;
  std::vector<std::pair<int64_t, int64_t>> dst_ranges;  // (dim, start) of the copied region in `out`
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    int64_t d = self.dim() - 1 - static_cast<int64_t>(i);
    int64_t before = pad[2 * i], after = pad[2 * i + 1];
    int64_t size = self.sizes()[static_cast<size_t>(d)];
    int64_t new_size = constant_padded_size(size, before, after, d, op);
    out_shape[static_cast<size_t>(d)] = new_size;
    int64_t crop_before = std::max<int64_t>(-before, 0), crop_after = std::max<int64_t>(-after, 0);
    int64_t kept = std::max<int64_t>(size - crop_before - crop_after, 0);
    src = narrow_view(src, d, std::min(crop_before, size), kept);
    dst_ranges.emplace_back(d, std::max<int64_t>(before, 0));
  }
  Tensor out = Tensor::empty(out_shape, self.dtype());
  out.copy_from(scalar_to_tensor(value, op));
  if (src.numel() == 0) return out;
  Tensor dst = out;
  for (const auto& [d, start] : dst_ranges)
    dst = narrow_view(dst, d, start, src.sizes()[static_cast<size_t>(d)]);
  copy_into(dst, src);
  return out;
}

// reflect / replicate / circular padding: each output index along a padded dim reads one input
// index, given by `source_index`.
Tensor index_map_pad(const Tensor& self, const std::vector<int64_t>& pad, const std::string& mode,
                     const char* op) {
  check_pad_list(self, pad, op);
  int64_t rank = self.dim();
  std::vector<std::vector<int64_t>> maps(static_cast<size_t>(rank));
  Shape out_shape = self.sizes();
  for (int64_t d = 0; d < rank; ++d) {
    const PadDim p = index_map_pad_dim(self.sizes(), pad, mode, d, op);
    const int64_t size = p.size, before = p.before, new_size = p.new_size;
    out_shape[static_cast<size_t>(d)] = new_size;
    auto& map = maps[static_cast<size_t>(d)];
    map.resize(static_cast<size_t>(new_size));
    for (int64_t o = 0; o < new_size; ++o) {
      int64_t i = o - before;
      if (mode == "reflect") {
        if (i < 0) i = -i;
        if (i >= size) i = 2 * (size - 1) - i;
      } else if (mode == "replicate") {
        i = std::clamp<int64_t>(i, 0, size - 1);
      } else {
        i = ((i % size) + size) % size;
      }
      map[static_cast<size_t>(o)] = i;
    }
  }
  Tensor out = Tensor::empty(out_shape, self.dtype());
  if (out.numel() == 0) return out;
  const size_t es = self.element_size();
  const uint8_t* src = self.storage()->data();
  uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
  std::vector<int64_t> index(static_cast<size_t>(rank), 0);
  for (int64_t n = 0; n < out.numel(); ++n) {
    int64_t off = self.offset();
    for (int64_t d = 0; d < rank; ++d)
      off += maps[static_cast<size_t>(d)][static_cast<size_t>(index[static_cast<size_t>(d)])] *
             self.strides()[static_cast<size_t>(d)];
    std::memcpy(dst + n * static_cast<int64_t>(es), src + off * static_cast<int64_t>(es), es);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[static_cast<size_t>(d)] < out_shape[static_cast<size_t>(d)]) break;
      index[static_cast<size_t>(d)] = 0;
    }
  }
  return out;
}

Tensor pad(const Tensor& self, const std::vector<int64_t>& pad_list, const std::string& mode,
           const IValue& value, const char* op) {
  if (mode == "constant") return constant_pad(self, pad_list, value.is_none() ? IValue(0.0) : value, op);
  CONVOY_CHECK(value.is_none(), op, ": padding mode \"", mode, "\" doesn't take in value argument");
  CONVOY_CHECK(mode == "reflect" || mode == "replicate" || mode == "circular", op,
               ": unknown padding mode \"", mode, "\" (expected constant, reflect, replicate or circular)");
  return index_map_pad(self, pad_list, mode, op);
}

// Keeps the elements with (col - row) <= diagonal (lower) or >= diagonal (upper) of each matrix.
Tensor triangle(const Tensor& self, int64_t diagonal, bool lower, const char* op) {
  CONVOY_CHECK(self.dim() >= 2, op, ": input tensor must have at least 2 dimensions, got ", self.describe());
  Tensor out = self.clone();
  int64_t rows = self.sizes()[static_cast<size_t>(self.dim() - 2)];
  int64_t cols = self.sizes()[static_cast<size_t>(self.dim() - 1)];
  int64_t matrices = rows * cols == 0 ? 0 : out.numel() / (rows * cols);
  size_t es = out.element_size();
  uint8_t* p = static_cast<uint8_t*>(out.raw_data());
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        bool keep = lower ? j - i <= diagonal : j - i >= diagonal;
        // All-zero bytes are 0 in every dtype.
        if (!keep) std::memset(p + ((m * rows + i) * cols + j) * static_cast<int64_t>(es), 0, es);
      }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Shape inference

using Types = std::vector<TypePtr>;
using Constants = std::vector<const IValue*>;

std::optional<DType> list_elem_dtype(const Types& args) {
  if (args.empty() || !args[0]->is(TypeKind::kList) || args[0]->contained.empty()) return std::nullopt;
  return args[0]->elem()->dtype;
}

Types infer_list_dtype(const Types& args, const Constants&) {
  return {Type::tensor(list_elem_dtype(args), std::nullopt)};
}

Types infer_self_dtype(const Types& args, const Constants&) {
  return {Type::tensor(arg_dtype(args, 0), std::nullopt)};
}

Types infer_self_dtype_shape(const Types& args, const Constants&) {
  return {Type::tensor(arg_dtype(args, 0), arg_shape(args, 0))};
}

}  // namespace

static void register_copy_ops(OpRegistry& r) {
  r.add(
      "aten::cat(Tensor[] tensors, int dim=0) -> Tensor",
      [](IValueList& a) -> IValueList { return {cat(a[0].to_tensor_list(), a[1].to_int(), "aten::cat")}; },
      infer_list_dtype);
  r.add(
      "aten::stack(Tensor[] tensors, int dim=0) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {stack(a[0].to_tensor_list(), a[1].to_int(), "aten::stack")};
      },
      infer_list_dtype);
  r.add(
      "aten::repeat(Tensor self, SymInt[] repeats) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {repeat(a[0].to_tensor(), a[1].to_int_list(), "aten::repeat")};
      },
      infer_self_dtype);
  r.add(
      "aten::roll(Tensor self, int[1] shifts, int[1] dims=[]) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {roll(a[0].to_tensor(), a[1].to_int_list(), a[2].to_int_list(), "aten::roll")};
      },
      infer_self_dtype_shape);
  r.add(
      "aten::flip(Tensor self, int[] dims) -> Tensor",
      [](IValueList& a) -> IValueList { return {flip(a[0].to_tensor(), a[1].to_int_list(), "aten::flip")}; },
      infer_self_dtype_shape);
  r.add(
      "aten::pad(Tensor self, int[] pad, str mode=\"constant\", float? value=None) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {pad(a[0].to_tensor(), a[1].to_int_list(), a[2].to_string(), a[3], "aten::pad")};
      },
      infer_self_dtype);
  r.add(
      "aten::constant_pad_nd(Tensor self, int[] pad, Scalar value=0) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {constant_pad(a[0].to_tensor(), a[1].to_int_list(), a[2], "aten::constant_pad_nd")};
      },
      infer_self_dtype);
  r.add(
      "aten::tril(Tensor self, int diagonal=0) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {triangle(a[0].to_tensor(), a[1].to_int(), true, "aten::tril")};
      },
      infer_self_dtype_shape);
  r.add(
      "aten::triu(Tensor self, int diagonal=0) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {triangle(a[0].to_tensor(), a[1].to_int(), false, "aten::triu")};
      },
      infer_self_dtype_shape);

  // In-place writes return their first argument, which aliases the caller's tensor.
  r.add(
      "aten::fill_.Scalar(Tensor(a!) self, Scalar value) -> Tensor(a!)",
      [](IValueList& a) -> IValueList {
        a[0].to_tensor().copy_from(scalar_to_tensor(a[1], "aten::fill_"));
        return {a[0]};
      },
      infer_self_dtype_shape);
  r.add(
      "aten::fill_.Tensor(Tensor(a!) self, Tensor value) -> Tensor(a!)",
      [](IValueList& a) -> IValueList {
        const Tensor& value = a[1].to_tensor();
        CONVOY_CHECK(value.dim() == 0,
                     "aten::fill_: only supports 0-dimension value tensor but got tensor with ", value.dim(),
                     " dimensions");
        a[0].to_tensor().copy_from(value);
        return {a[0]};
      },
      infer_self_dtype_shape);
  r.add(
      "aten::zero_(Tensor(a!) self) -> Tensor(a!)",
      [](IValueList& a) -> IValueList {
        a[0].to_tensor().copy_from(Tensor::scalar_int(0));
        return {a[0]};
      },
      infer_self_dtype_shape);
  r.add(
      "aten::copy_(Tensor(a!) self, Tensor src, bool non_blocking=False) -> Tensor(a!)",
      [](IValueList& a) -> IValueList {
        a[0].to_tensor().copy_from(a[1].to_tensor());
        return {a[0]};
      },
      infer_self_dtype_shape);
}

void register_shape_ops(OpRegistry& registry) {
  register_view_ops(registry);
  register_copy_ops(registry);
  register_indexing_ops(registry);
  register_factory_ops(registry);
}

}  // namespace convoy
