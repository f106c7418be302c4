#include "worker/weight_cache.h"

#include <cstring>

#include "runtime/error.h"
#include "runtime/sha256.h"

namespace convoy::worker {

bool WeightCache::put(const std::string& hash, const void* data, size_t size, const std::string& what) {
  CONVOY_CHECK(hash.size() == 32, what, ": a weight hash must be 32 bytes (SHA-256), not ", hash.size());
  if (contains(hash)) return false;
  // Hash outside the lock: big weights take a while.
  std::array<uint8_t, 32> digest = sha256(data, size);
  CONVOY_CHECK(std::memcmp(digest.data(), hash.data(), 32) == 0, what, ": the ", size, " bytes sent hash to ",
               hex_string(std::string_view(reinterpret_cast<const char*>(digest.data()), 32)),
               ", not to the weight's hash ", hex_string(hash));
  std::shared_ptr<Storage> storage = Storage::allocate(size);
  if (size) std::memcpy(storage->data(), data, size);
  std::lock_guard<std::mutex> lock(mutex_);
  if (entries_.count(hash)) return false;
  lru_.push_front(hash);
  entries_[hash] = Entry{std::move(storage), lru_.begin()};
  bytes_ += size;
  return true;
}

bool WeightCache::contains(const std::string& hash) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.count(hash) != 0;
}

void WeightCache::touch(Entry& e, const std::string& hash) {
  lru_.erase(e.lru);
  lru_.push_front(hash);
  e.lru = lru_.begin();
}

Tensor WeightCache::tensor(const std::string& hash, DType dtype, const Shape& shape) {
  std::shared_ptr<Storage> storage;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(hash);
    CONVOY_CHECK(it != entries_.end(), "weight ", hex_string(hash),
                 " is neither in this worker's weight cache nor sent with the assignment");
    touch(it->second, hash);
    storage = it->second.storage;
  }
  int64_t numel = shape_numel(shape);
  CONVOY_CHECK(static_cast<uint64_t>(numel) * dtype_size(dtype) == storage->nbytes(), "weight ",
               hex_string(hash), ": ", dtype_name(dtype), shape_str(shape), " needs ",
               static_cast<uint64_t>(numel) * dtype_size(dtype), " bytes but the cached weight has ",
               storage->nbytes());
  return Tensor::from_storage(storage, dtype, shape, contiguous_strides(shape), 0,
                              "weight " + hex_string(hash));
}

std::vector<std::string> WeightCache::hashes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::vector<std::string>(lru_.begin(), lru_.end());
}

uint64_t WeightCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t WeightCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

void WeightCache::evict() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = lru_.end(); bytes_ > limit_ && it != lru_.begin();) {
    --it;
    Entry& e = entries_.at(*it);
    if (e.storage.use_count() > 1) continue;  // a held stage's graph uses it
    bytes_ -= e.storage->nbytes();
    entries_.erase(*it);
    it = lru_.erase(it);
  }
}

}  // namespace convoy::worker
