// The neural-network op families: convolution (conv.cpp), pooling (pooling.cpp), normalisation
// (normalization.cpp), matrix products (linalg.cpp), interpolation (upsample.cpp), and here embedding
// lookup and the argument and shape-inference helpers they share.
#include <cstring>

#include "runtime/ops/nn_geometry.h"
#include "runtime/ops/nn_kernels.h"

namespace convoy {

namespace nn {

std::vector<int64_t> int_list_arg(const IValue& v, size_t n, const char* op, const char* name) {
  if (v.is_int()) return std::vector<int64_t>(n, v.to_int());
  std::vector<int64_t> values = v.to_int_list();
  if (values.size() == 1 && n > 1) return std::vector<int64_t>(n, values[0]);
  CONVOY_CHECK(values.size() == n, op, ": ", name, " must have ", n, " values, got ", v.repr());
  return values;
}

std::optional<Shape> known_shape(const std::vector<TypePtr>& args, size_t i) {
  if (i >= args.size() || !args[i] || !args[i]->is(TypeKind::kTensor)) return std::nullopt;
  return args[i]->shape;
}

std::optional<DType> known_dtype(const std::vector<TypePtr>& args, size_t i) {
  if (i >= args.size() || !args[i] || !args[i]->is(TypeKind::kTensor)) return std::nullopt;
  return args[i]->dtype;
}

std::optional<std::vector<int64_t>> const_ints(const std::vector<const IValue*>& constants, size_t i,
                                               size_t n) {
  if (i >= constants.size() || constants[i] == nullptr) return std::nullopt;
  const IValue& v = *constants[i];
  if (v.is_int()) {
    if (n == 0) return std::nullopt;
    return std::vector<int64_t>(n, v.to_int());
  }
  if (!v.is_list() && !v.is_tuple()) return std::nullopt;
  for (const IValue& item : v.to_list_or_tuple())
    if (!item.is_int()) return std::nullopt;
  std::vector<int64_t> values = v.to_int_list();
  if (n > 1 && values.size() == 1) values.assign(n, values[0]);
  return values;
}

std::optional<int64_t> const_int(const std::vector<const IValue*>& constants, size_t i) {
  if (i >= constants.size() || constants[i] == nullptr || !constants[i]->is_int()) return std::nullopt;
  return constants[i]->to_int();
}

std::optional<bool> const_bool(const std::vector<const IValue*>& constants, size_t i) {
  if (i >= constants.size() || constants[i] == nullptr || !constants[i]->is_bool()) return std::nullopt;
  return constants[i]->to_bool();
}

namespace {

// ---- embedding -------------------------------------------------------------------------------------

std::vector<int64_t> index_values(const Tensor& indices) {
  if (indices.is_contiguous() && indices.dtype() == DType::kInt64)
    return std::vector<int64_t>(indices.data<int64_t>(), indices.data<int64_t>() + indices.numel());
  if (indices.is_contiguous() && indices.dtype() == DType::kInt32)
    return std::vector<int64_t>(indices.data<int32_t>(), indices.data<int32_t>() + indices.numel());
  return indices.to_ints();
}

// padding_idx, scale_grad_by_freq and sparse only change the gradient; the forward pass is a lookup.
Tensor embedding(const Tensor& weight, const Tensor& indices) {
  constexpr const char* op = "aten::embedding";
  check_embedding_args(op, weight, indices);
  const int64_t rows = weight.size(0), dim = weight.size(1);
  Tensor table = weight.contiguous();
  Shape out_shape = indices.sizes();
  out_shape.push_back(dim);
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  const size_t row_bytes = static_cast<size_t>(dim) * weight.element_size();
  const auto* src = static_cast<const uint8_t*>(table.raw_data());
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  const std::vector<int64_t> idx = index_values(indices);
  for (size_t i = 0; i < idx.size(); ++i) {
    CONVOY_CHECK(idx[i] >= 0 && idx[i] < rows, op, ": index ", idx[i], " at position ", i, " of indices ",
                 indices.describe(), " is out of range for an embedding table of ", rows, " rows ",
                 weight.describe());
    std::memcpy(dst + i * row_bytes, src + static_cast<size_t>(idx[i]) * row_bytes, row_bytes);
  }
  return out;
}

void register_embedding_ops(OpRegistry& r) {
  r.add(
      "aten::embedding(Tensor weight, Tensor indices, int padding_idx=-1, bool scale_grad_by_freq=False, "
      "bool sparse=False) -> Tensor",
      [](IValueList& a) -> IValueList { return {embedding(a[0].to_tensor(), a[1].to_tensor())}; },
      [](const std::vector<TypePtr>& args, const std::vector<const IValue*>&) {
        auto w = known_shape(args, 0), idx = known_shape(args, 1);
        std::optional<Shape> shape;
        if (w && idx && w->size() == 2) {
          shape = *idx;
          shape->push_back((*w)[1]);
        }
        return tensor_result(known_dtype(args, 0), shape);
      });
}

}  // namespace
}  // namespace nn

void register_nn_ops(OpRegistry& registry) {
  nn::register_conv_ops(registry);
  nn::register_pooling_ops(registry);
  nn::register_normalization_ops(registry);
  nn::register_linalg_ops(registry);
  nn::register_upsample_ops(registry);
  nn::register_embedding_ops(registry);
}

}  // namespace convoy
