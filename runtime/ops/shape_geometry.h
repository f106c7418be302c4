// Size formulas and argument checks of the shape, view, padding and indexing ops, shared by the
// reference kernels (runtime/ops/views.cpp, shape.cpp, indexing.cpp) and the OpenCL implementations
// (opencl/ops/views.cpp, shape.cpp), so that both backends compute the same sizes and strides and
// reject bad calls with the same messages. Pure functions of shapes and arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/ivalue.h"
#include "runtime/tensor.h"

namespace convoy {

// ---- views -------------------------------------------------------------------------------------

// The sizes a view/reshape list with at most one -1 means for `numel` elements ("view(2, -1)"), with
// PyTorch's errors naming `op`.
Shape infer_view_size(const std::vector<int64_t>& shape, int64_t numel, const char* op);

// Strides that let a tensor with (sizes, strides) be read as `new_sizes` without a copy, or nullopt
// when its memory layout does not allow it (PyTorch's computeStride). Groups of input dims that are
// contiguous with each other may be split or merged freely; a view may not cross a boundary between
// such groups.
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes);

// ---- cat / stack -------------------------------------------------------------------------------

// Empty 1-D tensors are skipped by torch.cat whatever the other inputs' shapes (legacy behaviour).
bool is_legacy_empty(const Tensor& t);

// torch.cat's checks, result dtype (the promotion of every input), wrapped dim and output shape;
// all_empty: every input is a legacy empty tensor, and the result is an empty 1-D tensor of `dtype`.
struct CatGeometry {
  DType dtype = DType::kFloat32;
  bool all_empty = false;
  int64_t dim = 0;
  Shape out_shape;
};
CatGeometry cat_geometry(const std::vector<Tensor>& tensors, int64_t dim, const char* op);

// torch.stack's: equal input shapes, the new dim wrapped against rank + 1.
struct StackGeometry {
  DType dtype = DType::kFloat32;
  int64_t dim = 0;
  Shape out_shape;
};
StackGeometry stack_geometry(const std::vector<Tensor>& tensors, int64_t dim, const char* op);

// ---- padding -----------------------------------------------------------------------------------

// constant_pad_nd / pad: the pad list has an even length of at most twice the input's rank.
void check_pad_list(const Tensor& self, const std::vector<int64_t>& pad, const char* op);

// The size of dim `d` (of size `size`) after constant padding by (before, after), which may be
// negative (cropping) but must leave a non-negative size.
int64_t constant_padded_size(int64_t size, int64_t before, int64_t after, int64_t d, const char* op);

// One dim of a reflect / replicate / circular pad: its padding (0, 0 for the dims pad does not reach)
// and new size, checked as PyTorch checks it for `mode`.
struct PadDim {
  int64_t size = 0, before = 0, after = 0, new_size = 0;
};
PadDim index_map_pad_dim(const Shape& sizes, const std::vector<int64_t>& pad, const std::string& mode,
                         int64_t d, const char* op);

// ---- advanced indexing -------------------------------------------------------------------------

// PyTorch's advanced indexing: each entry of `indices` is None (a full slice) or an index tensor for
// one dim; a bool/uint8 mask stands for as many dims as it has, as the index tensors of its nonzero
// coordinates (which `mask_indices` computes: one int64 tensor per mask dim).
struct IndexEntries {
  std::vector<std::optional<Tensor>> per_dim;  // the index tensor of each dim of self, if any
  std::vector<int64_t> indexed_dims;           // the dims that have one
  std::vector<Shape> index_shapes;             // their shapes, in the order of indexed_dims
};
IndexEntries index_entries(const Tensor& self, const IValueList& indices, const char* op,
                           const std::function<std::vector<Tensor>(const Tensor& mask)>& mask_indices);

}  // namespace convoy
