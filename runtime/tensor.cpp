#include "runtime/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "runtime/error.h"

namespace convoy {

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& sizes) {
  Shape strides(sizes.size());
  int64_t s = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(sizes[i], 1);
  }
  return strides;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* what) {
  int64_t r = std::max<int64_t>(rank, 1);  // scalars accept dim 0 / -1, as in PyTorch
  CONVOY_CHECK(dim >= -r && dim < r, what, ": dimension ", dim, " out of range for a tensor of rank ", rank);
  return dim < 0 ? dim + r : dim;
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  size_t padded = (nbytes + 63) / 64 * 64;
  if (padded == 0) padded = 64;
  void* p = std::aligned_alloc(64, padded);
  CONVOY_CHECK_KIND(kInternal, p != nullptr, "out of memory allocating ", nbytes, " bytes");
  std::memset(p, 0, padded);
  std::shared_ptr<void> owner(p, [](void* q) { std::free(q); });
  return std::make_shared<Storage>(std::move(owner), static_cast<uint8_t*>(p), nbytes);
}

Tensor Tensor::empty(const Shape& sizes, DType dtype) {
  int64_t bytes = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t d : sizes) {
    CONVOY_CHECK(d >= 0, "negative dimension in shape ", shape_str(sizes));
    CONVOY_CHECK(!__builtin_mul_overflow(bytes, d, &bytes), "shape ", shape_str(sizes), " of ", dtype_name(dtype),
                 " overflows a 64-bit byte count");
  }
  Tensor t;
  t.storage_ = Storage::allocate(static_cast<size_t>(shape_numel(sizes)) * dtype_size(dtype));
  t.dtype_ = dtype;
  t.sizes_ = sizes;
  t.strides_ = contiguous_strides(sizes);
  return t;
}

Tensor Tensor::full(const Shape& sizes, DType dtype, double value) {
  Tensor t = empty(sizes, dtype);
  int64_t n = t.numel();
  uint8_t* p = static_cast<uint8_t*>(t.raw_data());
  size_t es = dtype_size(dtype);
  for (int64_t i = 0; i < n; ++i) store_double(p + i * es, dtype, value);
  return t;
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, DType dtype, const Shape& sizes,
                            const Shape& strides, int64_t offset, const std::string& what) {
  CONVOY_CHECK(storage != nullptr, what, ": no storage");
  Tensor base;
  base.storage_ = std::move(storage);
  base.dtype_ = dtype;
  try {
    return base.as_strided(sizes, strides, offset);
  } catch (const Error& e) {
    fail(e.kind(), what, ": ", e.what());
  }
}

Tensor Tensor::scalar_double(double v, DType dtype) {
  Tensor t = empty({}, dtype);
  store_double(t.raw_data(), dtype, v);
  return t;
}

Tensor Tensor::scalar_int(int64_t v, DType dtype) {
  Tensor t = empty({}, dtype);
  store_int(t.raw_data(), dtype, v);
  return t;
}

Tensor Tensor::scalar_bool(bool v) { return scalar_int(v ? 1 : 0, DType::kBool); }

Tensor Tensor::from_doubles(const Shape& sizes, DType dtype, const std::vector<double>& values) {
  Tensor t = empty(sizes, dtype);
  CONVOY_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "from_doubles: ", values.size(),
               " values for shape ", shape_str(sizes));
  uint8_t* p = static_cast<uint8_t*>(t.raw_data());
  size_t es = dtype_size(dtype);
  for (size_t i = 0; i < values.size(); ++i) store_double(p + i * es, dtype, values[i]);
  return t;
}

Tensor Tensor::from_ints(const Shape& sizes, DType dtype, const std::vector<int64_t>& values) {
  Tensor t = empty(sizes, dtype);
  CONVOY_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "from_ints: ", values.size(),
               " values for shape ", shape_str(sizes));
  uint8_t* p = static_cast<uint8_t*>(t.raw_data());
  size_t es = dtype_size(dtype);
  for (size_t i = 0; i < values.size(); ++i) store_int(p + i * es, dtype, values[i]);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  CONVOY_CHECK(dim() > 0, "size(", d, ") of a 0-dim tensor: it has no dimensions");
  return sizes_[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  CONVOY_CHECK(dim() > 0, "stride(", d, ") of a 0-dim tensor: it has no dimensions");
  return strides_[wrap_dim(d, dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = sizes_.size(); i-- > 0;) {
    if (sizes_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= sizes_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  CONVOY_ASSERT(storage_ != nullptr, "use of an undefined tensor");
  return storage_->data() + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

Tensor Tensor::as_strided(const Shape& sizes, const Shape& strides, int64_t offset) const {
  CONVOY_ASSERT(storage_ != nullptr, "as_strided of an undefined tensor");
  CONVOY_CHECK(sizes.size() == strides.size(), "sizes ", shape_str(sizes), " and strides ",
               shape_str(strides), " differ in rank");
  CONVOY_CHECK(offset >= 0, "negative storage offset ", offset);
  // Smallest and largest element offsets the view touches must lie inside the storage.
  int64_t lo = offset, hi = offset;
  bool empty_view = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    CONVOY_CHECK(sizes[i] >= 0, "negative size in ", shape_str(sizes));
    if (sizes[i] == 0) empty_view = true;
    if (sizes[i] <= 1) continue;
    // Guard the multiplication against overflow from hostile inputs.
    CONVOY_CHECK(std::llabs(strides[i]) <= std::numeric_limits<int64_t>::max() / sizes[i], "stride ",
                 strides[i], " times size ", sizes[i], " overflows");
    int64_t span = strides[i] * (sizes[i] - 1);
    int64_t& bound = span < 0 ? lo : hi;
    CONVOY_CHECK(!__builtin_add_overflow(bound, span, &bound), "view with sizes ", shape_str(sizes),
                 " and strides ", shape_str(strides), " overflows its element range");
  }
  int64_t capacity = static_cast<int64_t>(storage_->nbytes() / dtype_size(dtype_));
  if (!empty_view) {
    CONVOY_CHECK(lo >= 0 && hi < capacity, "view with sizes ", shape_str(sizes), ", strides ",
                 shape_str(strides), " and offset ", offset, " reaches element ", (lo < 0 ? lo : hi),
                 " of a storage of ", capacity, " ", dtype_name(dtype_), " elements");
  }
  Tensor t;
  t.storage_ = storage_;
  t.dtype_ = dtype_;
  t.sizes_ = sizes;
  t.strides_ = strides;
  t.offset_ = offset;
  return t;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(sizes_, dtype_);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out = empty(sizes_, dtype);
  out.copy_from(*this);
  return out;
}

void for_each_offset(const Shape& sizes, const Shape& strides, int64_t offset,
                     const std::function<void(int64_t, int64_t)>& fn) {
  int64_t n = shape_numel(sizes);
  if (n == 0) return;
  size_t rank = sizes.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t off = offset;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, off);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < sizes[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (sizes[d] - 1);
      idx[d] = 0;
    }
  }
}

void Tensor::copy_from(const Tensor& src) {
  CONVOY_CHECK(src.defined(), "copy_ from an undefined tensor");
  // Broadcast src to this shape: align trailing dims, stride 0 where src has size 1 or is missing.
  CONVOY_CHECK(src.dim() <= dim(), "copy_: cannot broadcast ", shape_str(src.sizes()), " to ",
               shape_str(sizes_));
  Shape bstrides(sizes_.size(), 0);
  for (int64_t i = 0; i < src.dim(); ++i) {
    int64_t d = dim() - src.dim() + i;
    int64_t s = src.sizes()[i];
    CONVOY_CHECK(s == sizes_[d] || s == 1, "copy_: cannot broadcast ", shape_str(src.sizes()), " to ",
                 shape_str(sizes_));
    bstrides[d] = s == 1 ? 0 : src.strides()[i];
  }
  // Copy through a temporary when the two views overlap in one storage.
  Tensor source = src;
  if (src.shares_storage_with(*this)) {
    source = empty(src.sizes(), src.dtype());
    for_each_offset(src.sizes(), src.strides(), src.offset(), [&](int64_t i, int64_t off) {
      std::memcpy(static_cast<uint8_t*>(source.raw_data()) + i * src.element_size(),
                  src.storage()->data() + off * src.element_size(), src.element_size());
    });
    for (int64_t i = 0; i < src.dim(); ++i) {
      int64_t d = dim() - src.dim() + i;
      bstrides[d] = src.sizes()[i] == 1 ? 0 : source.strides()[i];
    }
  }
  std::vector<int64_t> src_offsets;
  src_offsets.reserve(static_cast<size_t>(numel()));
  for_each_offset(sizes_, bstrides, source.offset(),
                  [&](int64_t, int64_t off) { src_offsets.push_back(off); });
  uint8_t* sbase = source.storage()->data();
  uint8_t* dbase = storage_->data();
  size_t ses = source.element_size(), des = element_size();
  DType sd = source.dtype();
  bool same = sd == dtype_;
  bool exact_int = is_integral(sd, true) && is_integral(dtype_, true);
  for_each_offset(sizes_, strides_, offset_, [&](int64_t i, int64_t off) {
    const uint8_t* sp = sbase + src_offsets[static_cast<size_t>(i)] * ses;
    uint8_t* dp = dbase + off * des;
    if (same)
      std::memcpy(dp, sp, des);
    else if (exact_int)
      store_int(dp, dtype_, load_as_int(sp, sd));
    else
      store_double(dp, dtype_, load_as_double(sp, sd));
  });
}

int64_t Tensor::storage_index(int64_t logical_index) const {
  CONVOY_CHECK(logical_index >= 0 && logical_index < numel(), "element ", logical_index, " out of range for ",
               describe());
  int64_t off = offset_;
  for (size_t d = sizes_.size(); d-- > 0;) {
    int64_t i = logical_index % sizes_[d];
    logical_index /= sizes_[d];
    off += i * strides_[d];
  }
  return off;
}

double Tensor::get_double(int64_t i) const {
  return load_as_double(storage_->data() + storage_index(i) * element_size(), dtype_);
}
int64_t Tensor::get_int(int64_t i) const {
  return load_as_int(storage_->data() + storage_index(i) * element_size(), dtype_);
}
void Tensor::set_double(int64_t i, double v) {
  store_double(storage_->data() + storage_index(i) * element_size(), dtype_, v);
}
void Tensor::set_int(int64_t i, int64_t v) {
  store_int(storage_->data() + storage_index(i) * element_size(), dtype_, v);
}

std::vector<double> Tensor::to_doubles() const {
  std::vector<double> out(static_cast<size_t>(numel()));
  size_t es = element_size();
  for_each_offset(sizes_, strides_, offset_, [&](int64_t i, int64_t off) {
    out[static_cast<size_t>(i)] = load_as_double(storage_->data() + off * es, dtype_);
  });
  return out;
}

std::vector<int64_t> Tensor::to_ints() const {
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  size_t es = element_size();
  for_each_offset(sizes_, strides_, offset_, [&](int64_t i, int64_t off) {
    out[static_cast<size_t>(i)] = load_as_int(storage_->data() + off * es, dtype_);
  });
  return out;
}

double Tensor::item_double() const {
  CONVOY_CHECK(numel() == 1, "a tensor with ", numel(), " elements ", describe(),
               " cannot be converted to a scalar");
  return get_double(0);
}
int64_t Tensor::item_int() const {
  CONVOY_CHECK(numel() == 1, "a tensor with ", numel(), " elements ", describe(),
               " cannot be converted to a scalar");
  return is_floating(dtype_) ? static_cast<int64_t>(get_double(0)) : get_int(0);
}
bool Tensor::item_bool() const {
  CONVOY_CHECK(numel() == 1, "Boolean value of a tensor with ", numel(), " elements ", describe(),
               " is ambiguous");
  return is_floating(dtype_) ? get_double(0) != 0.0 : get_int(0) != 0;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_str(sizes_);
}

double load_as_double(const void* p, DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return *static_cast<const uint8_t*>(p);
    case DType::kInt8:
      return *static_cast<const int8_t*>(p);
    case DType::kInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kInt64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<double>(v);
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return half_to_float(v);
    }
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return bfloat16_to_float(v);
    }
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kFloat64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case DType::kBool:
      return *static_cast<const uint8_t*>(p) != 0 ? 1.0 : 0.0;
  }
  return 0;
}

int64_t load_as_int(const void* p, DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return *static_cast<const uint8_t*>(p);
    case DType::kInt8:
      return *static_cast<const int8_t*>(p);
    case DType::kInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case DType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kInt64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case DType::kBool:
      return *static_cast<const uint8_t*>(p) != 0 ? 1 : 0;
    default:
      return static_cast<int64_t>(load_as_double(p, dtype));
  }
}

// Float → integer conversion truncates toward zero, as C and PyTorch do.
void store_double(void* p, DType dtype, double v) {
  switch (dtype) {
    case DType::kUInt8:
      *static_cast<uint8_t*>(p) = static_cast<uint8_t>(static_cast<int64_t>(v));
      return;
    case DType::kInt8:
      *static_cast<int8_t*>(p) = static_cast<int8_t>(static_cast<int64_t>(v));
      return;
    case DType::kInt16: {
      int16_t x = static_cast<int16_t>(static_cast<int64_t>(v));
      std::memcpy(p, &x, 2);
      return;
    }
    case DType::kInt32: {
      int32_t x = static_cast<int32_t>(static_cast<int64_t>(v));
      std::memcpy(p, &x, 4);
      return;
    }
    case DType::kInt64: {
      int64_t x = static_cast<int64_t>(v);
      std::memcpy(p, &x, 8);
      return;
    }
    case DType::kFloat16: {
      uint16_t x = float_to_half(static_cast<float>(v));
      std::memcpy(p, &x, 2);
      return;
    }
    case DType::kBFloat16: {
      uint16_t x = float_to_bfloat16(static_cast<float>(v));
      std::memcpy(p, &x, 2);
      return;
    }
    case DType::kFloat32: {
      float x = static_cast<float>(v);
      std::memcpy(p, &x, 4);
      return;
    }
    case DType::kFloat64:
      std::memcpy(p, &v, 8);
      return;
    case DType::kBool:
      *static_cast<uint8_t*>(p) = v != 0.0 ? 1 : 0;
      return;
  }
}

void store_int(void* p, DType dtype, int64_t v) {
  switch (dtype) {
    case DType::kUInt8:
      *static_cast<uint8_t*>(p) = static_cast<uint8_t>(v);
      return;
    case DType::kInt8:
      *static_cast<int8_t*>(p) = static_cast<int8_t>(v);
      return;
    case DType::kInt16: {
      int16_t x = static_cast<int16_t>(v);
      std::memcpy(p, &x, 2);
      return;
    }
    case DType::kInt32: {
      int32_t x = static_cast<int32_t>(v);
      std::memcpy(p, &x, 4);
      return;
    }
    case DType::kInt64:
      std::memcpy(p, &v, 8);
      return;
    case DType::kBool:
      *static_cast<uint8_t*>(p) = v != 0 ? 1 : 0;
      return;
    default:
      store_double(p, dtype, static_cast<double>(v));
      return;
  }
}

}  // namespace convoy
