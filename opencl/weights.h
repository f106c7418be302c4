// Model constants on the device: each constant tensor an op reads on the device is uploaded once per
// executor (shared by every plan), contiguous, into its own buffer. Derived weights (a batch-norm
// folded into a convolution, say) are computed on the host once and stored the same way.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "opencl/device.h"
#include "runtime/tensor.h"

namespace convoy::opencl {

class WeightStore {
 public:
  explicit WeightStore(Device& device) : device_(device) {}
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // The index of the device copy of `host` (uploaded on first use, contiguous).
  int upload(const Tensor& host, const std::string& what);
  // The index of a derived weight; `make` runs on the first request of `key` only.
  int derived(const std::string& key, const std::function<Tensor()>& make, const std::string& what);

  cl_mem buffer(int index) const { return entries_.at(static_cast<size_t>(index)).buffer; }
  DType dtype(int index) const { return entries_.at(static_cast<size_t>(index)).dtype; }
  const Shape& sizes(int index) const { return entries_.at(static_cast<size_t>(index)).sizes; }
  int64_t total_bytes() const { return total_bytes_; }
  size_t count() const { return entries_.size(); }

 private:
  int add(const Tensor& host, const std::string& what);

  struct Entry {
    cl_mem buffer = nullptr;
    DType dtype = DType::kFloat32;
    Shape sizes;
  };
  using ViewKey = std::tuple<const void*, int64_t, DType, Shape, Shape>;
  Device& device_;
  std::mutex mutex_;
  std::vector<Entry> entries_;
  std::map<ViewKey, int> by_view_;
  std::map<std::string, int> by_key_;
  int64_t total_bytes_ = 0;
};

}  // namespace convoy::opencl
