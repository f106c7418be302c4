// View ops: results alias the input's storage (PyTorch semantics), so an in-place op through a view
// is seen by the base and by every other view of it. Only `reshape`/`flatten` copy, and only when no
// strides can express the new shape.
#include <algorithm>
#include <limits>
#include <optional>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "runtime/ops/shape_geometry.h"

namespace convoy {

namespace {

constexpr int64_t kSliceToEnd = std::numeric_limits<int64_t>::max();

Tensor view_as_shape(const Tensor& self, const std::vector<int64_t>& size, const char* op) {
  Shape shape = infer_view_size(size, self.numel(), op);
  std::optional<Shape> strides = view_strides(self.sizes(), self.strides(), shape);
  CONVOY_CHECK(strides.has_value(), op, ": view size ", shape_str(shape),
               " is not compatible with the input's size ", shape_str(self.sizes()), " and stride ",
               shape_str(self.strides()),
               " (at least one dimension spans two contiguous subspaces); use reshape");
  return self.as_strided(shape, *strides, self.offset());
}

Tensor reshape(const Tensor& self, const std::vector<int64_t>& size, const char* op) {
  Shape shape = infer_view_size(size, self.numel(), op);
  if (std::optional<Shape> strides = view_strides(self.sizes(), self.strides(), shape))
    return self.as_strided(shape, *strides, self.offset());
  Tensor copy = self.clone();
  return copy.as_strided(shape, contiguous_strides(shape), 0);
}

Tensor alias(const Tensor& self) { return self.as_strided(self.sizes(), self.strides(), self.offset()); }

// Dim wrapping for ops on a dim that must exist (a 0-dim tensor has none).
int64_t existing_dim(const Tensor& self, int64_t dim, const char* op) {
  CONVOY_CHECK(self.dim() > 0, op, ": dimension ", dim, " specified, but the tensor has no dimensions");
  return wrap_dim(dim, self.dim(), op);
}

Tensor transpose(const Tensor& self, int64_t dim0, int64_t dim1, const char* op) {
  int64_t rank = self.dim();
  dim0 = wrap_dim(dim0, rank, op);
  dim1 = wrap_dim(dim1, rank, op);
  if (rank == 0) return alias(self);
  Shape sizes = self.sizes(), strides = self.strides();
  std::swap(sizes[dim0], sizes[dim1]);
  std::swap(strides[dim0], strides[dim1]);
  return self.as_strided(sizes, strides, self.offset());
}

Tensor permute(const Tensor& self, const std::vector<int64_t>& dims, const char* op) {
  int64_t rank = self.dim();
  CONVOY_CHECK(static_cast<int64_t>(dims.size()) == rank, op, ": number of dims ", dims.size(),
               " does not match the tensor's rank ", rank, " (", self.describe(), ")");
  Shape sizes(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], rank, op);
    CONVOY_CHECK(!seen[static_cast<size_t>(d)], op, ": dim ", dims[i], " repeated in ", shape_str(dims));
    seen[static_cast<size_t>(d)] = true;
    sizes[i] = self.sizes()[static_cast<size_t>(d)];
    strides[i] = self.strides()[static_cast<size_t>(d)];
  }
  return self.as_strided(sizes, strides, self.offset());
}

Tensor select(const Tensor& self, int64_t dim, int64_t index, const char* op) {
  dim = existing_dim(self, dim, op);
  int64_t size = self.sizes()[static_cast<size_t>(dim)];
  CONVOY_CHECK(index >= -size && index < size, op, ": index ", index, " out of range for tensor of size ",
               shape_str(self.sizes()), " at dimension ", dim);
  if (index < 0) index += size;
  Shape sizes = self.sizes(), strides = self.strides();
  int64_t offset = self.offset() + index * strides[static_cast<size_t>(dim)];
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  return self.as_strided(sizes, strides, offset);
}

// Python slice bounds clamped into [0, size], as aten::slice does (end may be kSliceToEnd).
std::pair<int64_t, int64_t> clamp_slice(int64_t size, std::optional<int64_t> start_opt,
                                        std::optional<int64_t> end_opt) {
  int64_t start = start_opt.value_or(0);
  int64_t end = end_opt.value_or(kSliceToEnd);
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  return {start, end};
}

Tensor slice(const Tensor& self, int64_t dim, std::optional<int64_t> start_opt,
             std::optional<int64_t> end_opt, int64_t step, const char* op) {
  CONVOY_CHECK(self.dim() > 0, op, ": slice() cannot be applied to a 0-dim tensor");
  dim = wrap_dim(dim, self.dim(), op);
  CONVOY_CHECK(step > 0, op, ": slice step must be positive, got ", step);
  size_t d = static_cast<size_t>(dim);
  auto [start, end] = clamp_slice(self.sizes()[d], start_opt, end_opt);
  Shape sizes = self.sizes(), strides = self.strides();
  int64_t offset = self.offset() + start * strides[d];
  sizes[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return self.as_strided(sizes, strides, offset);
}

Tensor narrow(const Tensor& self, int64_t dim, int64_t start, int64_t length, const char* op) {
  dim = existing_dim(self, dim, op);
  int64_t size = self.sizes()[static_cast<size_t>(dim)];
  CONVOY_CHECK(start >= -size && start <= size, op, ": start ", start, " out of range for dimension ", dim,
               " of size ", size);
  if (start < 0) start += size;
  CONVOY_CHECK(length >= 0 && start + length <= size, op, ": start (", start, ") + length (", length,
               ") exceeds dimension ", dim, " of size ", size);
  Shape sizes = self.sizes();
  sizes[static_cast<size_t>(dim)] = length;
  return self.as_strided(sizes, self.strides(),
                         self.offset() + start * self.strides()[static_cast<size_t>(dim)]);
}

Tensor unsqueeze(const Tensor& self, int64_t dim, const char* op) {
  dim = wrap_dim(dim, self.dim() + 1, op);
  Shape sizes = self.sizes(), strides = self.strides();
  size_t d = static_cast<size_t>(dim);
  int64_t stride = d >= sizes.size() ? 1 : sizes[d] * strides[d];
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return self.as_strided(sizes, strides, self.offset());
}

Tensor squeeze(const Tensor& self, std::optional<int64_t> dim, const char* op) {
  Shape sizes, strides;
  std::optional<int64_t> only;
  if (dim) only = wrap_dim(*dim, self.dim(), op);
  for (int64_t d = 0; d < self.dim(); ++d) {
    size_t i = static_cast<size_t>(d);
    bool drop = self.sizes()[i] == 1 && (!only || *only == d);
    if (drop) continue;
    sizes.push_back(self.sizes()[i]);
    strides.push_back(self.strides()[i]);
  }
  return self.as_strided(sizes, strides, self.offset());
}

// Tensor.expand: new leading dims and size-1 dims broadcast with stride 0; -1 keeps a size.
Tensor expand(const Tensor& self, const std::vector<int64_t>& size, const char* op) {
  int64_t rank = static_cast<int64_t>(size.size());
  CONVOY_CHECK(rank >= self.dim(), op, ": the number of sizes provided (", rank,
               ") must be greater or equal to the number of dimensions in the tensor (", self.dim(), ")");
  Shape sizes(size.size()), strides(size.size());
  for (int64_t i = rank - 1; i >= 0; --i) {
    int64_t src_dim = self.dim() - rank + i;
    size_t o = static_cast<size_t>(i);
    int64_t src_size = src_dim >= 0 ? self.sizes()[static_cast<size_t>(src_dim)] : 1;
    int64_t src_stride = src_dim >= 0 ? self.strides()[static_cast<size_t>(src_dim)]
                                      : (i + 1 < rank ? sizes[o + 1] * strides[o + 1] : 1);
    int64_t target = size[o];
    if (target == -1) {
      CONVOY_CHECK(src_dim >= 0, op, ": -1 is not allowed in a leading, non-existing dimension (",
                   shape_str(size), " for ", self.describe(), ")");
      target = src_size;
    }
    CONVOY_CHECK(target >= 0, op, ": invalid size ", target, " in ", shape_str(size));
    if (src_size != target) {
      CONVOY_CHECK(src_size == 1, op, ": the expanded size of the tensor (", target,
                   ") must match the existing size (", src_size, ") at non-singleton dimension ", i,
                   ". Target sizes: ", shape_str(size), ". Tensor sizes: ", shape_str(self.sizes()));
      src_stride = 0;
    }
    sizes[o] = target;
    strides[o] = src_stride;
  }
  return self.as_strided(sizes, strides, self.offset());
}

Tensor flatten(const Tensor& self, int64_t start_dim, int64_t end_dim, const char* op) {
  start_dim = wrap_dim(start_dim, self.dim(), op);
  end_dim = wrap_dim(end_dim, self.dim(), op);
  if (self.dim() == 0) return reshape(self, {1}, op);
  if (start_dim == end_dim) return alias(self);
  CONVOY_CHECK(start_dim <= end_dim, op, ": start_dim ", start_dim, " cannot come after end_dim ", end_dim);
  std::vector<int64_t> shape(self.sizes().begin(), self.sizes().begin() + start_dim);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= self.sizes()[static_cast<size_t>(d)];
  shape.push_back(merged);
  shape.insert(shape.end(), self.sizes().begin() + end_dim + 1, self.sizes().end());
  return reshape(self, shape, op);
}

std::vector<Tensor> split_with_sizes(const Tensor& self, const std::vector<int64_t>& split_sizes, int64_t dim,
                                     const char* op) {
  dim = existing_dim(self, dim, op);
  int64_t size = self.sizes()[static_cast<size_t>(dim)];
  int64_t total = 0;
  for (int64_t s : split_sizes) {
    CONVOY_CHECK(s >= 0, op, ": split sizes must be non-negative, got ", shape_str(split_sizes));
    total += s;
  }
  CONVOY_CHECK(total == size, op, ": split sizes ", shape_str(split_sizes), " must sum to the size ", size,
               " of dimension ", dim);
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : split_sizes) {
    out.push_back(narrow(self, dim, start, s, op));
    start += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& self, int64_t split_size, int64_t dim, const char* op) {
  dim = existing_dim(self, dim, op);
  CONVOY_CHECK(split_size >= 0, op, ": split_size must be non-negative, got ", split_size);
  int64_t size = self.sizes()[static_cast<size_t>(dim)];
  CONVOY_CHECK(split_size > 0 || size == 0, op,
               ": split_size can only be 0 if the dimension size is 0, but got ", size);
  int64_t n = split_size == 0 ? 1 : std::max<int64_t>((size + split_size - 1) / split_size, 1);
  std::vector<int64_t> sizes(static_cast<size_t>(n), split_size);
  sizes.back() = split_size - (split_size * n - size);
  return split_with_sizes(self, sizes, dim, op);
}

std::vector<Tensor> chunk(const Tensor& self, int64_t chunks, int64_t dim, const char* op) {
  CONVOY_CHECK(chunks > 0, op, ": number of chunks must be positive, got ", chunks);
  dim = existing_dim(self, dim, op);
  int64_t size = self.sizes()[static_cast<size_t>(dim)];
  int64_t split_size = (size + chunks - 1) / chunks;
  // All-empty chunks: split() would return one, PyTorch keeps the requested count.
  if (split_size == 0 && size == 0)
    return split_with_sizes(self, std::vector<int64_t>(static_cast<size_t>(chunks), 0), dim, op);
  return split(self, split_size, dim, op);
}

std::vector<Tensor> unbind(const Tensor& self, int64_t dim, const char* op) {
  dim = existing_dim(self, dim, op);
  std::vector<Tensor> out;
  for (int64_t i = 0; i < self.sizes()[static_cast<size_t>(dim)]; ++i)
    out.push_back(select(self, dim, i, op));
  return out;
}

Tensor movedim(const Tensor& self, const std::vector<int64_t>& source,
               const std::vector<int64_t>& destination, const char* op) {
  CONVOY_CHECK(source.size() == destination.size(), op, ": source ", shape_str(source), " and destination ",
               shape_str(destination), " must have the same number of dims");
  int64_t rank = self.dim();
  std::vector<int64_t> order(static_cast<size_t>(rank), -1);
  std::vector<bool> moved(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < source.size(); ++i) {
    int64_t s = wrap_dim(source[i], rank, op), d = wrap_dim(destination[i], rank, op);
    CONVOY_CHECK(!moved[static_cast<size_t>(s)] && order[static_cast<size_t>(d)] == -1, op,
                 ": repeated dim in source ", shape_str(source), " or destination ", shape_str(destination));
    order[static_cast<size_t>(d)] = s;
    moved[static_cast<size_t>(s)] = true;
  }
  // The dims that do not move keep their relative order in the free slots.
  size_t next = 0;
  for (int64_t s = 0; s < rank; ++s) {
    if (moved[static_cast<size_t>(s)]) continue;
    while (order[next] != -1) ++next;
    order[next] = s;
  }
  return permute(self, order, op);
}

IValue tensor_list(const std::vector<Tensor>& tensors) {
  IValueList items(tensors.begin(), tensors.end());
  return IValue::list(std::move(items));
}

std::optional<int64_t> optional_int(const IValue& v) {
  if (v.is_none()) return std::nullopt;
  return v.to_int();
}

// ---------------------------------------------------------------------------------------------------
// Shape inference: exact when the input shape and the shape arguments are known. An unknown dim is -1.

using Types = std::vector<TypePtr>;
using Constants = std::vector<const IValue*>;

std::vector<TypePtr> tensor_result(const Types& args, std::optional<Shape> shape) {
  return {Type::tensor(arg_dtype(args, 0), std::move(shape))};
}

std::optional<int64_t> const_int(const Constants& constants, int index) {
  const IValue* v = arg_constant(constants, index);
  if (!v || !(v->is_int() || v->is_bool())) return std::nullopt;
  return v->to_int();
}

// nullopt when the argument is not a constant; {nullopt} inside when it is the constant None.
std::optional<std::optional<int64_t>> const_optional_int(const Constants& constants, int index) {
  const IValue* v = arg_constant(constants, index);
  if (!v) return std::nullopt;
  if (v->is_none()) return std::optional<int64_t>();
  if (!v->is_int()) return std::nullopt;
  return std::optional<int64_t>(v->to_int());
}

std::optional<std::vector<int64_t>> const_int_list(const Constants& constants, int index) {
  const IValue* v = arg_constant(constants, index);
  if (!v || !(v->is_list() || v->is_tuple())) return std::nullopt;
  for (const IValue& x : v->to_list_or_tuple())
    if (!x.is_int()) return std::nullopt;
  return v->to_int_list();
}

bool fully_known(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
}

std::optional<int64_t> wrap_known(int64_t dim, int64_t rank) {
  int64_t r = std::max<int64_t>(rank, 1);
  if (dim < -r || dim >= r) return std::nullopt;
  return dim < 0 ? dim + r : dim;
}

// Shape of view/reshape with a constant size list; a -1 entry is only resolved when the input shape
// is fully known.
Types infer_view(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<std::vector<int64_t>> size = const_int_list(constants, 1);
  if (!size) return tensor_result(args, std::nullopt);
  Shape out(size->begin(), size->end());
  bool has_infer = std::count(out.begin(), out.end(), -1) == 1;
  if (has_infer) {
    if (in && fully_known(*in)) {
      int64_t known = 1;
      for (int64_t d : out)
        if (d != -1) known *= d;
      if (known > 0) std::replace(out.begin(), out.end(), int64_t{-1}, shape_numel(*in) / known);
    }
  }
  return tensor_result(args, out);
}

Types infer_same_shape(const Types& args, const Constants&) {
  return tensor_result(args, arg_shape(args, 0));
}

Types infer_flatten(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> start = const_int(constants, 1), end = const_int(constants, 2);
  if (!in || !start || !end) return tensor_result(args, std::nullopt);
  int64_t rank = static_cast<int64_t>(in->size());
  if (rank == 0) return tensor_result(args, Shape{1});
  std::optional<int64_t> s = wrap_known(*start, rank), e = wrap_known(*end, rank);
  if (!s || !e || *s > *e) return tensor_result(args, std::nullopt);
  Shape out(in->begin(), in->begin() + *s);
  int64_t merged = 1;
  for (int64_t d = *s; d <= *e; ++d) {
    int64_t v = (*in)[static_cast<size_t>(d)];
    merged = (merged < 0 || v < 0) ? -1 : merged * v;
  }
  out.push_back(merged);
  out.insert(out.end(), in->begin() + *e + 1, in->end());
  return tensor_result(args, out);
}

Types infer_permute(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<std::vector<int64_t>> dims = const_int_list(constants, 1);
  if (!in || !dims || dims->size() != in->size()) return tensor_result(args, std::nullopt);
  Shape out;
  for (int64_t d : *dims) {
    std::optional<int64_t> w = wrap_known(d, static_cast<int64_t>(in->size()));
    if (!w) return tensor_result(args, std::nullopt);
    out.push_back((*in)[static_cast<size_t>(*w)]);
  }
  return tensor_result(args, out);
}

Types infer_transpose(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> d0 = const_int(constants, 1), d1 = const_int(constants, 2);
  if (!in || !d0 || !d1) return tensor_result(args, std::nullopt);
  int64_t rank = static_cast<int64_t>(in->size());
  std::optional<int64_t> a = wrap_known(*d0, rank), b = wrap_known(*d1, rank);
  if (!a || !b) return tensor_result(args, std::nullopt);
  Shape out = *in;
  if (rank > 0) std::swap(out[static_cast<size_t>(*a)], out[static_cast<size_t>(*b)]);
  return tensor_result(args, out);
}

Types infer_t(const Types& args, const Constants&) {
  std::optional<Shape> in = arg_shape(args, 0);
  if (!in || in->size() > 2) return tensor_result(args, std::nullopt);
  Shape out = *in;
  std::reverse(out.begin(), out.end());
  return tensor_result(args, out);
}

Types infer_select(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> dim = const_int(constants, 1);
  if (!in || in->empty() || !dim) return tensor_result(args, std::nullopt);
  std::optional<int64_t> d = wrap_known(*dim, static_cast<int64_t>(in->size()));
  if (!d) return tensor_result(args, std::nullopt);
  Shape out = *in;
  out.erase(out.begin() + *d);
  return tensor_result(args, out);
}

Types infer_slice(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> dim = const_int(constants, 1), step = const_int(constants, 4);
  if (!in || in->empty() || !dim) return tensor_result(args, std::nullopt);
  std::optional<int64_t> d = wrap_known(*dim, static_cast<int64_t>(in->size()));
  if (!d) return tensor_result(args, std::nullopt);
  Shape out = *in;
  size_t i = static_cast<size_t>(*d);
  auto start = const_optional_int(constants, 2), end = const_optional_int(constants, 3);
  if (out[i] >= 0 && start && end && step && *step > 0) {
    auto [s, e] = clamp_slice(out[i], *start, *end);
    out[i] = (e - s + *step - 1) / *step;
  } else {
    out[i] = -1;
  }
  return tensor_result(args, out);
}

Types infer_narrow(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> dim = const_int(constants, 1), length = const_int(constants, 3);
  if (!in || in->empty() || !dim) return tensor_result(args, std::nullopt);
  std::optional<int64_t> d = wrap_known(*dim, static_cast<int64_t>(in->size()));
  if (!d) return tensor_result(args, std::nullopt);
  Shape out = *in;
  out[static_cast<size_t>(*d)] = length.value_or(-1);
  return tensor_result(args, out);
}

Types infer_unsqueeze(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> dim = const_int(constants, 1);
  if (!in || !dim) return tensor_result(args, std::nullopt);
  std::optional<int64_t> d = wrap_known(*dim, static_cast<int64_t>(in->size()) + 1);
  if (!d) return tensor_result(args, std::nullopt);
  Shape out = *in;
  out.insert(out.begin() + *d, 1);
  return tensor_result(args, out);
}

Types infer_squeeze(const Types& args, const Constants&) {
  std::optional<Shape> in = arg_shape(args, 0);
  // An unknown dim might be 1, so the rank is only certain when every dim is known.
  if (!in || !fully_known(*in)) return tensor_result(args, std::nullopt);
  Shape out;
  for (int64_t d : *in)
    if (d != 1) out.push_back(d);
  return tensor_result(args, out);
}

Types infer_squeeze_dim(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<int64_t> dim = const_int(constants, 1);
  if (!in || !dim) return tensor_result(args, std::nullopt);
  if (in->empty()) return tensor_result(args, Shape{});
  std::optional<int64_t> d = wrap_known(*dim, static_cast<int64_t>(in->size()));
  if (!d || (*in)[static_cast<size_t>(*d)] < 0) return tensor_result(args, std::nullopt);
  Shape out = *in;
  if (out[static_cast<size_t>(*d)] == 1) out.erase(out.begin() + *d);
  return tensor_result(args, out);
}

Types infer_expand(const Types& args, const Constants& constants) {
  std::optional<Shape> in = arg_shape(args, 0);
  std::optional<std::vector<int64_t>> size = const_int_list(constants, 1);
  if (!size) return tensor_result(args, std::nullopt);
  Shape out(size->begin(), size->end());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] != -1) continue;
    int64_t src = in ? static_cast<int64_t>(i) - static_cast<int64_t>(out.size() - in->size()) : -1;
    out[i] = src >= 0 ? (*in)[static_cast<size_t>(src)] : -1;
  }
  return tensor_result(args, out);
}

Types infer_expand_as(const Types& args, const Constants&) { return tensor_result(args, arg_shape(args, 1)); }

// List-returning views: element dtype only.
Types infer_tensor_list(const Types& args, const Constants&) {
  return {Type::list(Type::tensor(arg_dtype(args, 0), std::nullopt))};
}

}  // namespace

void register_view_ops(OpRegistry& r) {
  r.add(
      "aten::view(Tensor(a) self, SymInt[] size) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {view_as_shape(a[0].to_tensor(), a[1].to_int_list(), "aten::view")};
      },
      infer_view);
  r.add(
      "aten::reshape(Tensor(a) self, SymInt[] shape) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {reshape(a[0].to_tensor(), a[1].to_int_list(), "aten::reshape")};
      },
      infer_view);
  r.add(
      "aten::view_as(Tensor(a) self, Tensor other) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        const Shape& s = a[1].to_tensor().sizes();
        return {view_as_shape(a[0].to_tensor(), std::vector<int64_t>(s.begin(), s.end()), "aten::view_as")};
      },
      infer_expand_as);
  r.add(
      "aten::reshape_as(Tensor(a) self, Tensor other) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        const Shape& s = a[1].to_tensor().sizes();
        return {reshape(a[0].to_tensor(), std::vector<int64_t>(s.begin(), s.end()), "aten::reshape_as")};
      },
      infer_expand_as);
  r.add(
      "aten::flatten.using_ints(Tensor(a) self, int start_dim=0, int end_dim=-1) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {flatten(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), "aten::flatten")};
      },
      infer_flatten);
  r.add("aten::unflatten.int(Tensor(a) self, int dim, int[] sizes) -> Tensor(a)",
        [](IValueList& a) -> IValueList {
          const Tensor& self = a[0].to_tensor();
          int64_t dim = existing_dim(self, a[1].to_int(), "aten::unflatten");
          std::vector<int64_t> parts = a[2].to_int_list();
          CONVOY_CHECK(!parts.empty(), "aten::unflatten: sizes must be non-empty");
          Shape inner = infer_view_size(parts, self.sizes()[static_cast<size_t>(dim)], "aten::unflatten");
          std::vector<int64_t> shape(self.sizes().begin(), self.sizes().begin() + dim);
          shape.insert(shape.end(), inner.begin(), inner.end());
          shape.insert(shape.end(), self.sizes().begin() + dim + 1, self.sizes().end());
          return {view_as_shape(self, shape, "aten::unflatten")};
        });
  r.add(
      "aten::permute(Tensor(a) self, int[] dims) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {permute(a[0].to_tensor(), a[1].to_int_list(), "aten::permute")};
      },
      infer_permute);
  r.add(
      "aten::transpose.int(Tensor(a) self, int dim0, int dim1) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {transpose(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), "aten::transpose")};
      },
      infer_transpose);
  r.add(
      "aten::swapaxes(Tensor(a) self, int axis0, int axis1) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {transpose(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), "aten::swapaxes")};
      },
      infer_transpose);
  r.add(
      "aten::t(Tensor(a) self) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        const Tensor& self = a[0].to_tensor();
        CONVOY_CHECK(self.dim() <= 2, "aten::t: expects a tensor with <= 2 dimensions, but self is ",
                     self.describe());
        return {self.dim() < 2 ? alias(self) : transpose(self, 0, 1, "aten::t")};
      },
      infer_t);
  r.add("aten::movedim.int(Tensor(a) self, int source, int destination) -> Tensor(a)",
        [](IValueList& a) -> IValueList {
          return {movedim(a[0].to_tensor(), {a[1].to_int()}, {a[2].to_int()}, "aten::movedim")};
        });
  r.add("aten::movedim.intlist(Tensor(a) self, int[] source, int[] destination) -> Tensor(a)",
        [](IValueList& a) -> IValueList {
          return {movedim(a[0].to_tensor(), a[1].to_int_list(), a[2].to_int_list(), "aten::movedim")};
        });
  r.add(
      "aten::select.int(Tensor(a) self, int dim, int index) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {select(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), "aten::select")};
      },
      infer_select);
  r.add(
      "aten::slice.Tensor(Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1) -> "
      "Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {slice(a[0].to_tensor(), a[1].to_int(), optional_int(a[2]), optional_int(a[3]), a[4].to_int(),
                      "aten::slice")};
      },
      infer_slice);
  r.add(
      "aten::narrow(Tensor(a) self, int dim, int start, int length) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {narrow(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), a[3].to_int(), "aten::narrow")};
      },
      infer_narrow);
  r.add(
      "aten::narrow.Tensor(Tensor(a) self, int dim, Tensor start, int length) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        const Tensor& start = a[2].to_tensor();
        CONVOY_CHECK(start.dim() == 0 && is_integral(start.dtype(), false),
                     "aten::narrow: start must be a 0-dim integral tensor, got ", start.describe());
        return {narrow(a[0].to_tensor(), a[1].to_int(), start.item_int(), a[3].to_int(), "aten::narrow")};
      },
      infer_narrow);
  r.add(
      "aten::unsqueeze(Tensor(a) self, int dim) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {unsqueeze(a[0].to_tensor(), a[1].to_int(), "aten::unsqueeze")};
      },
      infer_unsqueeze);
  r.add(
      "aten::squeeze(Tensor(a) self) -> Tensor(a)",
      [](IValueList& a) -> IValueList { return {squeeze(a[0].to_tensor(), std::nullopt, "aten::squeeze")}; },
      infer_squeeze);
  r.add(
      "aten::squeeze.dim(Tensor(a) self, int dim) -> Tensor(a)",
      [](IValueList& a) -> IValueList { return {squeeze(a[0].to_tensor(), a[1].to_int(), "aten::squeeze")}; },
      infer_squeeze_dim);
  r.add(
      "aten::expand(Tensor(a) self, SymInt[] size, *, bool implicit=False) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        return {expand(a[0].to_tensor(), a[1].to_int_list(), "aten::expand")};
      },
      infer_expand);
  r.add(
      "aten::expand_as(Tensor(a) self, Tensor other) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        const Shape& s = a[1].to_tensor().sizes();
        return {expand(a[0].to_tensor(), std::vector<int64_t>(s.begin(), s.end()), "aten::expand_as")};
      },
      infer_expand_as);
  r.add(
      "aten::as_strided(Tensor(a) self, SymInt[] size, SymInt[] stride, SymInt? storage_offset=None) -> "
      "Tensor(a)",
      [](IValueList& a) -> IValueList {
        const Tensor& self = a[0].to_tensor();
        int64_t offset = a[3].is_none() ? self.offset() : a[3].to_int();
        return {self.as_strided(a[1].to_int_list(), a[2].to_int_list(), offset)};
      });
  r.add(
      "aten::alias(Tensor(a) self) -> Tensor(a)",
      [](IValueList& a) -> IValueList { return {alias(a[0].to_tensor())}; }, infer_same_shape);
  r.add(
      "aten::contiguous(Tensor(a) self, *, MemoryFormat memory_format=0) -> Tensor(a)",
      [](IValueList& a) -> IValueList {
        // Channels-last layouts are not modelled: every tensor result is row-major.
        return {a[0].to_tensor().contiguous()};
      },
      infer_same_shape);
  r.add(
      "aten::unbind.int(Tensor(a -> *) self, int dim=0) -> Tensor(a)[]",
      [](IValueList& a) -> IValueList {
        return {tensor_list(unbind(a[0].to_tensor(), a[1].to_int(), "aten::unbind"))};
      },
      infer_tensor_list);
  r.add(
      "aten::chunk(Tensor(a -> *) self, int chunks, int dim=0) -> Tensor(a)[]",
      [](IValueList& a) -> IValueList {
        return {tensor_list(chunk(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), "aten::chunk"))};
      },
      infer_tensor_list);
  r.add(
      "aten::split.Tensor(Tensor(a -> *) self, int split_size, int dim=0) -> Tensor(a)[]",
      [](IValueList& a) -> IValueList {
        return {tensor_list(split(a[0].to_tensor(), a[1].to_int(), a[2].to_int(), "aten::split"))};
      },
      infer_tensor_list);
  auto split_sizes_kernel = [](IValueList& a) -> IValueList {
    return {
        tensor_list(split_with_sizes(a[0].to_tensor(), a[1].to_int_list(), a[2].to_int(), "aten::split"))};
  };
  r.add("aten::split.sizes(Tensor(a -> *) self, int[] split_size, int dim=0) -> Tensor(a)[]",
        split_sizes_kernel, infer_tensor_list);
  r.add("aten::split(Tensor(a -> *) self, int[] split_sizes, int dim=0) -> Tensor(a)[]", split_sizes_kernel,
        infer_tensor_list);
  r.add("aten::split_with_sizes(Tensor(a -> *) self, int[] split_sizes, int dim=0) -> Tensor(a)[]",
        split_sizes_kernel, infer_tensor_list);
}

}  // namespace convoy
