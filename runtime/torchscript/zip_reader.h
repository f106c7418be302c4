// Reads the zip container of a TorchScript archive: the central directory (with ZIP64 records and
// extra fields), and the bytes of one record. Stored records come back as spans into a private
// memory mapping of the file, so tensors can live in the archive's pages without a copy; deflated
// records (the code) are inflated with zlib into a heap buffer.
//
// Every offset and size read from the file is checked against the file's size before it is used,
// and every error names the archive and, where there is one, the record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace convoy {

struct ZipEntry {
  std::string name;     // full path inside the zip, e.g. "jit/data/0"
  uint16_t method = 0;  // 0 = stored, 8 = deflated (anything else is refused on read)
  uint16_t flags = 0;   // general purpose bit flags of the central directory entry
  uint32_t crc32 = 0;   // of the uncompressed bytes
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

// Bytes of one record. `owner` keeps `data` alive: the file mapping for a stored record, a heap
// buffer for an inflated one.
struct ZipBytes {
  std::shared_ptr<void> owner;
  uint8_t* data = nullptr;
  size_t size = 0;
  bool zero_copy = false;  // true when `data` points into the mapping of the archive

  std::string_view view() const { return {reinterpret_cast<const char*>(data), size}; }
};

class ZipReader {
 public:
  // Maps `path` and reads its central directory. The mapping is MAP_PRIVATE with PROT_READ |
  // PROT_WRITE: pages stay shared with the page cache until something writes to them, and a write
  // (an in-place op on a weight by a buggy model) lands in a private copy, never in the file and
  // never as a SIGSEGV.
  static ZipReader open(const std::string& path);
  // Reads a zip held in memory (tests, the fuzzer). `owner` keeps `data` alive; `name` stands for
  // the path in error messages. The bytes must stay writable for the same reason as above.
  static ZipReader from_memory(std::string name, std::shared_ptr<void> owner, uint8_t* data, size_t size);

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return size_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  bool contains(const std::string& name) const { return find(name) != nullptr; }

  // The record's bytes; throws naming the archive and `name` when it is absent. Inflated records
  // are always checked against their CRC-32; stored ones only when `verify_crc` is set (checking
  // reads every page, which loading weights deliberately avoids).
  ZipBytes read(const std::string& name, bool verify_crc = false) const;
  ZipBytes read(const ZipEntry& entry, bool verify_crc = false) const;

  // Offset in the file of a record's first data byte, from its local header (whose name and extra
  // lengths may differ from the central directory's: PyTorch pads the local extra field so that
  // tensor data starts at a 64-byte boundary).
  uint64_t data_offset(const ZipEntry& entry) const;

  // The owner of the whole mapping; whoever holds it keeps every zero-copy span valid.
  const std::shared_ptr<void>& mapping_owner() const { return owner_; }
  // Whether `p` points into the mapped bytes (tests use it to prove that no copy was made).
  bool is_mapped(const void* p) const;

 private:
  ZipReader() = default;
  void parse();

  std::string path_;
  std::shared_ptr<void> owner_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace convoy
