// Tensors: a typed, strided view of a Storage. Views (view, permute, slice, select, expand) share
// their storage, exactly as in PyTorch, so in-place ops on a view are seen through every alias.
// A Storage may own heap memory or point into a mapped archive (weights are never copied at load).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dtype.h"

namespace convoy {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& sizes);

class Storage {
 public:
  // `owner` keeps `data` alive (a heap buffer, a mapped file, ...).
  Storage(std::shared_ptr<void> owner, uint8_t* data, size_t nbytes)
      : owner_(std::move(owner)), data_(data), nbytes_(nbytes) {}
  static std::shared_ptr<Storage> allocate(size_t nbytes);  // zero-filled, 64-byte aligned

  uint8_t* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

 private:
  std::shared_ptr<void> owner_;
  uint8_t* data_;
  size_t nbytes_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor

  static Tensor empty(const Shape& sizes, DType dtype);  // zero-filled
  static Tensor zeros(const Shape& sizes, DType dtype) { return empty(sizes, dtype); }
  static Tensor full(const Shape& sizes, DType dtype, double value);
  // A view over an existing storage; sizes, strides and offset (in elements) are checked to stay
  // inside it, and the error names `what` (e.g. the archive record).
  static Tensor from_storage(std::shared_ptr<Storage> storage, DType dtype, const Shape& sizes,
                             const Shape& strides, int64_t offset, const std::string& what = "tensor");
  // 0-dim tensors holding one value.
  static Tensor scalar_double(double v, DType dtype = DType::kFloat64);
  static Tensor scalar_int(int64_t v, DType dtype = DType::kInt64);
  static Tensor scalar_bool(bool v);
  // Copies `values` (logical order) into a new contiguous tensor of `dtype`.
  static Tensor from_doubles(const Shape& sizes, DType dtype, const std::vector<double>& values);
  static Tensor from_ints(const Shape& sizes, DType dtype, const std::vector<int64_t>& values);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& sizes() const { return sizes_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t numel() const { return shape_numel(sizes_); }
  int64_t size(int64_t d) const;    // negative d counts from the end; checked
  int64_t stride(int64_t d) const;  // likewise
  size_t element_size() const { return dtype_size(dtype_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  bool shares_storage_with(const Tensor& other) const { return storage_ && storage_ == other.storage_; }

  // Address of element 0 of this view.
  void* raw_data() const;
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw_data());
  }

  // A new view of the same storage (no copy); checked against the storage's size.
  Tensor as_strided(const Shape& sizes, const Shape& strides, int64_t offset) const;
  Tensor contiguous() const;     // this if already contiguous, else a copy
  Tensor clone() const;          // always a fresh contiguous copy
  Tensor to(DType dtype) const;  // this if already `dtype`, else a converted copy
  // Copies `src` into this view element by element, broadcasting src to this shape and converting
  // dtypes (the semantics of Tensor.copy_).
  void copy_from(const Tensor& src);

  // Element access in logical (row-major over sizes) order; slow, for reference code and tests.
  double get_double(int64_t logical_index) const;
  int64_t get_int(int64_t logical_index) const;
  void set_double(int64_t logical_index, double v);
  void set_int(int64_t logical_index, int64_t v);
  std::vector<double> to_doubles() const;
  std::vector<int64_t> to_ints() const;
  // Value of a one-element tensor.
  double item_double() const;
  int64_t item_int() const;
  bool item_bool() const;

  std::string describe() const;  // "float32[2, 3]"

 private:
  int64_t storage_index(int64_t logical_index) const;

  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::kFloat32;
  Shape sizes_;
  Shape strides_;
  int64_t offset_ = 0;
};

// Reads/writes one element at a raw address of a given dtype (conversions through double / int64).
double load_as_double(const void* p, DType dtype);
int64_t load_as_int(const void* p, DType dtype);
void store_double(void* p, DType dtype, double v);
void store_int(void* p, DType dtype, int64_t v);

// Calls fn(logical_index, storage_element_offset) for each element of a strided view, in logical
// order. Offsets are relative to the storage start, in elements.
void for_each_offset(const Shape& sizes, const Shape& strides, int64_t offset,
                     const std::function<void(int64_t, int64_t)>& fn);

// Normalises a possibly negative dim against `rank` and checks it; `what` names the op.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* what);

}  // namespace convoy
