#include "opencl/weights.h"

#include "opencl/program_cache.h"

namespace convoy::opencl {

WeightStore::~WeightStore() {
  for (Entry& e : entries_) clReleaseMemObject(e.buffer);
}

int WeightStore::add(const Tensor& host, const std::string& what) {
  Tensor dense = host.contiguous();
  cl_mem buffer = device_.create_buffer(dense.nbytes(), "weight " + what + " " + host.describe(),
                                        CL_MEM_READ_ONLY | (dense.nbytes() ? CL_MEM_COPY_HOST_PTR : 0),
                                        dense.nbytes() ? dense.raw_data() : nullptr);
  entries_.push_back({buffer, host.dtype(), host.sizes()});
  total_bytes_ += static_cast<int64_t>(dense.nbytes());
  return static_cast<int>(entries_.size() - 1);
}

int WeightStore::upload(const Tensor& host, const std::string& what) {
  std::lock_guard lock(mutex_);
  ViewKey key{host.storage().get(), host.offset(), host.dtype(), host.sizes(), host.strides()};
  if (auto it = by_view_.find(key); it != by_view_.end()) return it->second;
  int index = add(host, what);
  by_view_.emplace(std::move(key), index);
  return index;
}

int WeightStore::derived(const std::string& key, const std::function<Tensor()>& make,
                         const std::string& what) {
  std::lock_guard lock(mutex_);
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  int index = add(make(), what);
  by_key_.emplace(key, index);
  return index;
}

}  // namespace convoy::opencl
