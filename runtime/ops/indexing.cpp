// Indexing ops: advanced indexing (aten::index, aten::index_put_) with integer and boolean-mask
// indices, index_select, gather, masked_select and nonzero. Results are fresh tensors (PyTorch's
// advanced indexing always copies).
#include <cstring>
#include <optional>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "runtime/ops/shape_geometry.h"

namespace convoy {

namespace {

// Coordinates of the nonzero elements of `t`, one vector per dim, in row-major order.
std::vector<std::vector<int64_t>> nonzero_coords(const Tensor& t) {
  std::vector<std::vector<int64_t>> coords(static_cast<size_t>(t.dim()));
  std::vector<int64_t> index(static_cast<size_t>(t.dim()), 0);
  size_t es = t.element_size();
  const uint8_t* base = t.storage()->data();
  bool floating = is_floating(t.dtype());
  for_each_offset(t.sizes(), t.strides(), t.offset(), [&](int64_t, int64_t off) {
    const uint8_t* p = base + off * static_cast<int64_t>(es);
    bool nz = floating ? load_as_double(p, t.dtype()) != 0.0 : load_as_int(p, t.dtype()) != 0;
    if (nz)
      for (size_t d = 0; d < index.size(); ++d) coords[d].push_back(index[d]);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.sizes()[d]) break;
      index[d] = 0;
    }
  });
  return coords;
}

// Where each element of an advanced-indexing result comes from in self's storage.
struct IndexPlan {
  Shape result_shape;
  std::vector<int64_t> offsets;  // storage element offsets, in the result's row-major order
};

// PyTorch's advanced indexing: each entry of `indices` is None (a full slice) or an index tensor for
// one dim; a bool/uint8 mask stands for as many dims as it has, as the index tensors of its nonzero
// coordinates. Index tensors broadcast together to a shape B. The result has B in place of the
// indexed dims when those are adjacent, otherwise B first, followed by the dims that are not indexed.
IndexPlan plan_advanced_index(const Tensor& self, const IValueList& indices, const char* op) {
  const int64_t rank = self.dim();
  const IndexEntries entries = index_entries(self, indices, op, [](const Tensor& mask) {
    std::vector<Tensor> out;
    for (const std::vector<int64_t>& c : nonzero_coords(mask))
      out.push_back(Tensor::from_ints({static_cast<int64_t>(c.size())}, DType::kInt64, c));
    return out;
  });
  const std::vector<std::optional<Tensor>>& per_dim = entries.per_dim;
  const std::vector<int64_t>& indexed_dims = entries.indexed_dims;
  const std::vector<Shape>& index_shapes = entries.index_shapes;
  IndexPlan plan;
  if (indexed_dims.empty()) {
    plan.result_shape = self.sizes();
    for_each_offset(self.sizes(), self.strides(), self.offset(),
                    [&](int64_t, int64_t off) { plan.offsets.push_back(off); });
    return plan;
  }
  const Shape b_shape = broadcast_shapes(index_shapes, op);
  const int64_t b_numel = shape_numel(b_shape);
  // Each index tensor broadcast to B, wrapped and bounds-checked.
  std::vector<std::vector<int64_t>> values(static_cast<size_t>(rank));
  for (int64_t d : indexed_dims) {
    std::vector<int64_t> v = expand_to(*per_dim[static_cast<size_t>(d)], b_shape, op).to_ints();
    int64_t size = self.sizes()[static_cast<size_t>(d)];
    for (int64_t& i : v) {
      CONVOY_CHECK(i >= -size && i < size, op, ": index ", i, " is out of bounds for dimension ", d,
                   " with size ", size);
      if (i < 0) i += size;
    }
    values[static_cast<size_t>(d)] = std::move(v);
  }

  bool adjacent = indexed_dims.back() - indexed_dims.front() + 1 == static_cast<int64_t>(indexed_dims.size());
  // Result dims: -1 marks the position of the broadcast block B, otherwise the self dim it keeps.
  std::vector<int64_t> layout;
  if (!adjacent) layout.push_back(-1);
  for (int64_t d = 0; d < rank; ++d) {
    if (per_dim[static_cast<size_t>(d)]) {
      if (adjacent && d == indexed_dims.front()) layout.push_back(-1);
      continue;
    }
    layout.push_back(d);
  }
  std::vector<int64_t> dim_size, dim_stride;  // per result dim: size and self stride (0 for B dims)
  std::vector<bool> in_b;
  Shape b_strides = contiguous_strides(b_shape);
  std::vector<int64_t> b_stride_of_dim;  // position within B's linear index, per result dim
  for (int64_t entry : layout) {
    if (entry == -1) {
      for (size_t k = 0; k < b_shape.size(); ++k) {
        dim_size.push_back(b_shape[k]);
        dim_stride.push_back(0);
        in_b.push_back(true);
        b_stride_of_dim.push_back(b_strides[k]);
      }
    } else {
      dim_size.push_back(self.sizes()[static_cast<size_t>(entry)]);
      dim_stride.push_back(self.strides()[static_cast<size_t>(entry)]);
      in_b.push_back(false);
      b_stride_of_dim.push_back(0);
    }
  }
  plan.result_shape = Shape(dim_size.begin(), dim_size.end());
  const int64_t n = shape_numel(plan.result_shape);
  plan.offsets.reserve(static_cast<size_t>(n));
  // B's linear index selects one offset contribution from the indexed dims.
  std::vector<int64_t> b_offset(static_cast<size_t>(b_numel), 0);
  for (int64_t d : indexed_dims)
    for (int64_t b = 0; b < b_numel; ++b)
      b_offset[static_cast<size_t>(b)] +=
          values[static_cast<size_t>(d)][static_cast<size_t>(b)] * self.strides()[static_cast<size_t>(d)];
  const size_t result_rank = dim_size.size();
  std::vector<int64_t> index(result_rank, 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t off = self.offset(), b = 0;
    for (size_t r = 0; r < result_rank; ++r) {
      off += index[r] * dim_stride[r];
      b += index[r] * b_stride_of_dim[r];
    }
    plan.offsets.push_back(off + b_offset[static_cast<size_t>(b)]);
    for (size_t r = result_rank; r-- > 0;) {
      if (++index[r] < dim_size[r]) break;
      index[r] = 0;
    }
  }
  return plan;
}

Tensor gather_offsets(const Tensor& self, const IndexPlan& plan) {
  Tensor out = Tensor::empty(plan.result_shape, self.dtype());
  size_t es = self.element_size();
  const uint8_t* src = self.storage()->data();
  uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
  for (size_t i = 0; i < plan.offsets.size(); ++i)
    std::memcpy(dst + i * es, src + plan.offsets[i] * static_cast<int64_t>(es), es);
  return out;
}

Tensor index(const Tensor& self, const IValueList& indices, const char* op) {
  return gather_offsets(self, plan_advanced_index(self, indices, op));
}

// self[indices] = values (or += with accumulate, where repeated indices all add up).
void index_put(Tensor& self, const IValueList& indices, const Tensor& values, bool accumulate,
               const char* op) {
  IndexPlan plan = plan_advanced_index(self, indices, op);
  Tensor src = expand_to(values.to(self.dtype()), plan.result_shape, op);
  size_t es = self.element_size();
  const uint8_t* sbase = src.storage()->data();
  uint8_t* dbase = self.storage()->data();
  DType dtype = self.dtype();
  bool floating = is_floating(dtype);
  size_t i = 0;
  for_each_offset(src.sizes(), src.strides(), src.offset(), [&](int64_t, int64_t soff) {
    const uint8_t* sp = sbase + soff * static_cast<int64_t>(es);
    uint8_t* dp = dbase + plan.offsets[i++] * static_cast<int64_t>(es);
    if (!accumulate)
      std::memcpy(dp, sp, es);
    else if (floating)
      store_double(dp, dtype, load_as_double(dp, dtype) + load_as_double(sp, dtype));
    else if (dtype == DType::kBool)
      store_int(dp, dtype, load_as_int(dp, dtype) | load_as_int(sp, dtype));
    else
      store_int(dp, dtype, load_as_int(dp, dtype) + load_as_int(sp, dtype));
  });
}

Tensor index_select(const Tensor& self, int64_t dim, const Tensor& idx, const char* op) {
  CONVOY_CHECK(idx.dim() <= 1, op, ": index is supposed to be a vector, got ", idx.describe());
  CONVOY_CHECK(idx.dtype() == DType::kInt64 || idx.dtype() == DType::kInt32, op,
               ": expected a long or int tensor for index, got ", idx.describe());
  dim = wrap_dim(dim, self.dim(), op);
  int64_t size = self.dim() == 0 ? 1 : self.sizes()[static_cast<size_t>(dim)];
  std::vector<int64_t> values = idx.to_ints();
  for (int64_t v : values)
    CONVOY_CHECK(v >= 0 && v < size, op, ": index ", v, " out of range for dimension ", dim, " of size ",
                 size);
  if (self.dim() == 0) {
    CONVOY_CHECK(values.size() == 1, op, ": index of a 0-dim tensor must have one element, got ",
                 idx.describe());
    return self.clone();
  }
  IValueList indices(static_cast<size_t>(dim));
  indices.emplace_back(Tensor::from_ints({static_cast<int64_t>(values.size())}, DType::kInt64, values));
  return index(self, indices, op);
}

Tensor gather(const Tensor& self, int64_t dim, const Tensor& idx, const char* op) {
  CONVOY_CHECK(idx.dtype() == DType::kInt64, op, ": expected dtype int64 for index, got ", idx.describe());
  int64_t rank = std::max<int64_t>(self.dim(), 1);
  CONVOY_CHECK(std::max<int64_t>(idx.dim(), 1) == rank, op,
               ": index tensor must have the same number of dimensions as input tensor (", idx.describe(),
               " vs ", self.describe(), ")");
  dim = wrap_dim(dim, self.dim(), op);
  Shape self_sizes = self.dim() == 0 ? Shape{1} : self.sizes();
  Shape self_strides = self.dim() == 0 ? Shape{1} : self.strides();
  Shape idx_sizes = idx.dim() == 0 ? Shape{1} : idx.sizes();
  for (int64_t d = 0; d < rank; ++d)
    CONVOY_CHECK(d == dim || idx_sizes[static_cast<size_t>(d)] <= self_sizes[static_cast<size_t>(d)], op,
                 ": size does not match at dimension ", d, " expected index ", shape_str(idx.sizes()),
                 " to be smaller than self ", shape_str(self.sizes()), " apart from dimension ", dim);
  Tensor out = Tensor::empty(idx.sizes(), self.dtype());
  std::vector<int64_t> idx_values = idx.to_ints();
  size_t es = self.element_size();
  const uint8_t* src = self.storage()->data();
  uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
  std::vector<int64_t> pos(static_cast<size_t>(rank), 0);
  int64_t dim_size = self_sizes[static_cast<size_t>(dim)];
  for (size_t e = 0; e < idx_values.size(); ++e) {
    int64_t i = idx_values[e];
    CONVOY_CHECK(i >= -dim_size && i < dim_size, op, ": index ", i, " is out of bounds for dimension ", dim,
                 " with size ", dim_size);
    if (i < 0) i += dim_size;
    int64_t off = self.offset();
    for (int64_t d = 0; d < rank; ++d)
      off += (d == dim ? i : pos[static_cast<size_t>(d)]) * self_strides[static_cast<size_t>(d)];
    std::memcpy(dst + e * es, src + off * static_cast<int64_t>(es), es);
    for (size_t d = pos.size(); d-- > 0;) {
      if (++pos[d] < idx_sizes[d]) break;
      pos[d] = 0;
    }
  }
  return out;
}

Tensor masked_select(const Tensor& self, const Tensor& mask, const char* op) {
  CONVOY_CHECK(mask.dtype() == DType::kBool || mask.dtype() == DType::kUInt8, op,
               ": expected a bool mask, got ", mask.describe());
  Shape shape = broadcast_shapes(self.sizes(), mask.sizes(), op);
  Tensor s = expand_to(self, shape, op), m = expand_to(mask, shape, op);
  std::vector<int64_t> keep = m.to_ints();
  std::vector<int64_t> offsets;
  for_each_offset(s.sizes(), s.strides(), s.offset(), [&](int64_t i, int64_t off) {
    if (keep[static_cast<size_t>(i)]) offsets.push_back(off);
  });
  IndexPlan plan{{static_cast<int64_t>(offsets.size())}, std::move(offsets)};
  return gather_offsets(self, plan);
}

Tensor nonzero(const Tensor& self) {
  std::vector<std::vector<int64_t>> coords = nonzero_coords(self);
  int64_t rank = self.dim();
  int64_t n = rank == 0 ? (self.item_bool() ? 1 : 0) : static_cast<int64_t>(coords[0].size());
  Tensor out = Tensor::empty({n, rank}, DType::kInt64);
  int64_t* p = out.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < rank; ++d)
      p[i * rank + d] = coords[static_cast<size_t>(d)][static_cast<size_t>(i)];
  return out;
}

std::vector<TypePtr> infer_self_dtype(const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
  return {Type::tensor(arg_dtype(args, 0), std::nullopt)};
}

}  // namespace

void register_indexing_ops(OpRegistry& r) {
  r.add(
      "aten::index.Tensor(Tensor self, Tensor?[] indices) -> Tensor",
      [](IValueList& a) -> IValueList { return {index(a[0].to_tensor(), a[1].to_list(), "aten::index")}; },
      infer_self_dtype);
  r.add(
      "aten::index_put_(Tensor(a!) self, Tensor?[] indices, Tensor values, bool accumulate=False) -> "
      "Tensor(a!)",
      [](IValueList& a) -> IValueList {
        index_put(a[0].to_tensor(), a[1].to_list(), a[2].to_tensor(), a[3].to_bool(), "aten::index_put_");
        return {a[0]};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) -> std::vector<TypePtr> {
        return {Type::tensor(arg_dtype(args, 0), arg_shape(args, 0))};
      });
  r.add(
      "aten::index_put(Tensor self, Tensor?[] indices, Tensor values, bool accumulate=False) -> Tensor",
      [](IValueList& a) -> IValueList {
        Tensor out = a[0].to_tensor().clone();
        index_put(out, a[1].to_list(), a[2].to_tensor(), a[3].to_bool(), "aten::index_put");
        return {out};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) -> std::vector<TypePtr> {
        return {Type::tensor(arg_dtype(args, 0), arg_shape(args, 0))};
      });
  r.add(
      "aten::index_select(Tensor self, int dim, Tensor index) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {index_select(a[0].to_tensor(), a[1].to_int(), a[2].to_tensor(), "aten::index_select")};
      },
      infer_self_dtype);
  r.add(
      "aten::gather(Tensor self, int dim, Tensor index, *, bool sparse_grad=False) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {gather(a[0].to_tensor(), a[1].to_int(), a[2].to_tensor(), "aten::gather")};
      },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) -> std::vector<TypePtr> {
        return {Type::tensor(arg_dtype(args, 0), arg_shape(args, 2))};
      });
  r.add(
      "aten::masked_select(Tensor self, Tensor mask) -> Tensor",
      [](IValueList& a) -> IValueList {
        return {masked_select(a[0].to_tensor(), a[1].to_tensor(), "aten::masked_select")};
      },
      infer_self_dtype);
  r.add(
      "aten::nonzero(Tensor self) -> Tensor",
      [](IValueList& a) -> IValueList { return {nonzero(a[0].to_tensor())}; },
      [](const std::vector<TypePtr>&, const std::vector<const IValue*>&) -> std::vector<TypePtr> {
        return {Type::tensor(DType::kInt64, std::nullopt)};
      });
}

}  // namespace convoy
