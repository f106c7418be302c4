// See shape_geometry.h. The messages here are the reference kernels' (the tests check them).
#include "runtime/ops/shape_geometry.h"

#include <algorithm>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"

namespace convoy {

// ---- views -------------------------------------------------------------------------------------

Shape infer_view_size(const std::vector<int64_t>& shape, int64_t numel, const char* op) {
  Shape out(shape.begin(), shape.end());
  int64_t known = 1;
  std::optional<size_t> infer_dim;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      CONVOY_CHECK(!infer_dim, op, ": only one dimension can be inferred in shape ", shape_str(out));
      infer_dim = i;
    } else {
      CONVOY_CHECK(out[i] >= 0, op, ": invalid shape dimension ", out[i], " in ", shape_str(out));
      known *= out[i];
    }
  }
  if (infer_dim) {
    // 0 elements with a 0 in the known dims leave -1 ambiguous, as PyTorch says.
    CONVOY_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(out),
                 " is invalid for input of size ", numel);
    out[*infer_dim] = numel / known;
  } else {
    CONVOY_CHECK(known == numel, op, ": shape ", shape_str(out), " is invalid for input of size ", numel);
  }
  return out;
}

std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes) {
  Shape new_strides(new_sizes.size());
  if (sizes.empty()) {
    std::fill(new_strides.begin(), new_strides.end(), 1);
    return new_strides;
  }
  int64_t numel = shape_numel(sizes);
  if (numel == 0) {
    if (sizes == new_sizes) return strides;
    return contiguous_strides(new_sizes);
  }
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.back();
  int64_t tensor_numel = 1;
  int64_t view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(sizes.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= sizes[tensor_d];
    bool chunk_ends = tensor_d == 0 ||
                      (sizes[tensor_d - 1] != 1 && strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
      new_strides[view_d] = view_numel * chunk_base_stride;
      view_numel *= new_sizes[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (tensor_d > 0) {
      chunk_base_stride = strides[tensor_d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

// ---- cat / stack -------------------------------------------------------------------------------

namespace {

// The promotion of every input (0-dim inputs are rejected, so all rank the same).
DType promoted_dtype(const std::vector<Tensor>& tensors) {
  DType out = tensors[0].dtype();
  for (const Tensor& t : tensors) out = promote_types(out, t.dtype());
  return out;
}

}  // namespace

bool is_legacy_empty(const Tensor& t) { return t.dim() == 1 && t.sizes()[0] == 0; }

CatGeometry cat_geometry(const std::vector<Tensor>& tensors, int64_t dim, const char* op) {
  CONVOY_CHECK(!tensors.empty(), op, ": expected a non-empty list of Tensors");
  for (size_t i = 0; i < tensors.size(); ++i)
    CONVOY_CHECK(tensors[i].dim() > 0, op, ": zero-dimensional tensor (at position ", i,
                 ") cannot be concatenated");
  CatGeometry g;
  g.dtype = promoted_dtype(tensors);
  const Tensor* ref = nullptr;
  for (const Tensor& t : tensors)
    if (!is_legacy_empty(t)) {
      ref = &t;
      break;
    }
  if (!ref) {
    g.all_empty = true;
    g.out_shape = {0};
    return g;
  }
  dim = wrap_dim(dim, ref->dim(), op);
  g.dim = dim;
  g.out_shape = ref->sizes();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (is_legacy_empty(t)) continue;
    CONVOY_CHECK(t.dim() == ref->dim(), op, ": tensors must have the same number of dimensions: got ",
                 ref->dim(), " and ", t.dim(), " (tensor ", i, " is ", t.describe(), ")");
    for (int64_t d = 0; d < t.dim(); ++d)
      CONVOY_CHECK(d == dim || t.sizes()[static_cast<size_t>(d)] == ref->sizes()[static_cast<size_t>(d)], op,
                   ": sizes of tensors must match except in dimension ", dim, ". Expected size ",
                   ref->sizes()[static_cast<size_t>(d)], " but got size ", t.sizes()[static_cast<size_t>(d)],
                   " for tensor number ", i, " in the list");
    total += t.sizes()[static_cast<size_t>(dim)];
  }
  g.out_shape[static_cast<size_t>(dim)] = total;
  return g;
}

StackGeometry stack_geometry(const std::vector<Tensor>& tensors, int64_t dim, const char* op) {
  CONVOY_CHECK(!tensors.empty(), op, ": expects a non-empty TensorList");
  const Shape& shape = tensors[0].sizes();
  for (size_t i = 1; i < tensors.size(); ++i)
    CONVOY_CHECK(tensors[i].sizes() == shape, op, ": expects each tensor to be equal size, but got ",
                 shape_str(shape), " at entry 0 and ", shape_str(tensors[i].sizes()), " at entry ", i);
  StackGeometry g;
  g.dim = wrap_dim(dim, tensors[0].dim() + 1, op);
  g.out_shape = shape;
  g.out_shape.insert(g.out_shape.begin() + g.dim, static_cast<int64_t>(tensors.size()));
  g.dtype = promoted_dtype(tensors);
  return g;
}

// ---- padding -----------------------------------------------------------------------------------

void check_pad_list(const Tensor& self, const std::vector<int64_t>& pad, const char* op) {
  CONVOY_CHECK(pad.size() % 2 == 0, op, ": length of pad must be even but instead it equals ", pad.size());
  CONVOY_CHECK(
      static_cast<int64_t>(pad.size() / 2) <= self.dim(), op,
      ": length of pad should be no more than twice the number of dimensions of the input. Pad length is ",
      pad.size(), " while the input has ", self.dim(), " dimensions");
}

int64_t constant_padded_size(int64_t size, int64_t before, int64_t after, int64_t d, const char* op) {
  const int64_t new_size = size + before + after;
  CONVOY_CHECK(new_size >= 0, op, ": the input size ", size, ", plus negative padding ", before, " and ",
               after, " resulted in a negative output size, which is invalid. Check dimension ", d,
               " of your input");
  return new_size;
}

PadDim index_map_pad_dim(const Shape& sizes, const std::vector<int64_t>& pad, const std::string& mode,
                         int64_t d, const char* op) {
  const int64_t rank = static_cast<int64_t>(sizes.size());
  PadDim p;
  p.size = sizes[static_cast<size_t>(d)];
  const int64_t k = rank - 1 - d;  // pad pair index of dim d
  if (k < static_cast<int64_t>(pad.size() / 2)) {
    p.before = pad[static_cast<size_t>(2 * k)];
    p.after = pad[static_cast<size_t>(2 * k + 1)];
  }
  const int64_t size = p.size, before = p.before, after = p.after;
  if (before != 0 || after != 0) {
    if (mode == "reflect")
      CONVOY_CHECK(before < size && after < size, op,
                   ": padding size should be less than the corresponding input dimension, but got: padding (",
                   before, ", ", after, ") at dimension ", d, " of input ", shape_str(sizes));
    else if (mode == "circular")
      CONVOY_CHECK(before <= size && after <= size, op,
                   ": padding value causes wrapping around more than once (padding (", before, ", ", after,
                   ") at dimension ", d, " of input ", shape_str(sizes), ")");
    else
      CONVOY_CHECK(size > 0, op, ": cannot pad dimension ", d, " of size 0 in ", mode, " mode");
  }
  p.new_size = size + before + after;
  CONVOY_CHECK(p.new_size >= 0, op, ": padding (", before, ", ", after, ") of dimension ", d, " of size ",
               size, " gives a negative output size");
  return p;
}

// ---- advanced indexing -------------------------------------------------------------------------

IndexEntries index_entries(const Tensor& self, const IValueList& indices, const char* op,
                           const std::function<std::vector<Tensor>(const Tensor& mask)>& mask_indices) {
  const int64_t rank = self.dim();
  IndexEntries e;
  e.per_dim.resize(static_cast<size_t>(rank));
  int64_t pos = 0;
  for (const IValue& entry : indices) {
    if (entry.is_none()) {
      CONVOY_CHECK(pos < rank, op, ": too many indices for tensor of dimension ", rank, " (got ",
                   indices.size(), ")");
      ++pos;
      continue;
    }
    const Tensor& t = entry.to_tensor();
    if (t.dtype() == DType::kBool || t.dtype() == DType::kUInt8) {
      CONVOY_CHECK_KIND(kUnsupported, t.dim() > 0, op, ": 0-dim boolean mask indices are not supported");
      CONVOY_CHECK(pos + t.dim() <= rank, op, ": too many indices for tensor of dimension ", rank, " (mask ",
                   t.describe(), " at dim ", pos, ")");
      for (int64_t j = 0; j < t.dim(); ++j)
        CONVOY_CHECK(t.sizes()[static_cast<size_t>(j)] == self.sizes()[static_cast<size_t>(pos + j)], op,
                     ": the shape of the mask ", shape_str(t.sizes()), " at index ", j,
                     " does not match the shape of the indexed tensor ", shape_str(self.sizes()),
                     " at index ", pos + j);
      std::vector<Tensor> coords = mask_indices(t);
      for (int64_t j = 0; j < t.dim(); ++j)
        e.per_dim[static_cast<size_t>(pos + j)] = std::move(coords[static_cast<size_t>(j)]);
      pos += t.dim();
      continue;
    }
    // torch 2.x also accepts int32 indices (torch 1.13 only int64); archives of both must run.
    CONVOY_CHECK(t.dtype() == DType::kInt64 || t.dtype() == DType::kInt32, op,
                 ": tensors used as indices must be long, int, byte or bool tensors, got ", t.describe());
    CONVOY_CHECK(pos < rank, op, ": too many indices for tensor of dimension ", rank, " (got ",
                 indices.size(), ")");
    e.per_dim[static_cast<size_t>(pos++)] = t;
  }
  for (int64_t d = 0; d < rank; ++d)
    if (e.per_dim[static_cast<size_t>(d)]) {
      e.indexed_dims.push_back(d);
      e.index_shapes.push_back(e.per_dim[static_cast<size_t>(d)]->sizes());
    }
  return e;
}

}  // namespace convoy
