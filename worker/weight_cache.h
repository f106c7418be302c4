// The worker's weight cache: tensor bytes keyed by the SHA-256 of their contiguous bytes (the
// contentHash of schema TensorData), so a stage assigned again, or another stage of a model sharing
// weights, is not sent them again. Thread-safe.
//
// Entries a held stage uses are pinned (their storage is shared with the stage's graph); beyond
// `limit_bytes`, the least recently used unpinned entries are evicted.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace convoy::worker {

class WeightCache {
 public:
  explicit WeightCache(uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Stores a copy of `size` bytes under `hash` (32 raw bytes) after checking that they hash to it;
  // throws kInvalidInput naming `what` when they do not. Returns false when already present.
  bool put(const std::string& hash, const void* data, size_t size, const std::string& what);
  bool contains(const std::string& hash) const;
  // A tensor of `dtype` and `shape` over the cached bytes of `hash` (shared, not copied); throws
  // kInvalidInput when the hash is unknown or the byte count does not match.
  Tensor tensor(const std::string& hash, DType dtype, const Shape& shape);
  // Every hash held, most recently used first.
  std::vector<std::string> hashes() const;
  uint64_t bytes() const;
  size_t size() const;
  // Drops unpinned entries, least recently used first, until the total is within the limit.
  void evict();

 private:
  struct Entry {
    std::shared_ptr<Storage> storage;
    std::list<std::string>::iterator lru;
  };
  void touch(Entry& e, const std::string& hash);

  uint64_t limit_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front: most recently used
  uint64_t bytes_ = 0;
};

}  // namespace convoy::worker
