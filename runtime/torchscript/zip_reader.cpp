#include "runtime/torchscript/zip_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "runtime/error.h"
#include "runtime/printable.h"

namespace convoy {
namespace {

static_assert(std::endian::native == std::endian::little, "the zip reader assumes a little-endian host");

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDirSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndOfCentralDirSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndOfCentralDirSize = 56;
constexpr uint64_t kMaxCommentSize = 0xffff;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kFlagEncrypted = 0x0001;
// Deflate cannot expand data by more than about 1032:1; a header claiming more is corrupt or a
// decompression bomb, and is refused before anything is allocated.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t rd64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr != nullptr) munmap(addr, size);
  }
};

// The sizes and offset of a record, as a header states them before ZIP64 extra fields are applied.
struct RecordFields {
  uint64_t uncompressed_size;
  uint64_t compressed_size;
  uint64_t local_header_offset;
  uint32_t disk_start;
};

// Replaces the saturated 32-bit fields of `f` by the 64-bit values of the ZIP64 extra field, which
// holds exactly the saturated ones, in this order. `has_offset` is false for local headers, whose
// ZIP64 field has the sizes only.
void apply_zip64_extra(const uint8_t* extra, uint64_t extra_len, RecordFields& f, bool has_offset,
                       const std::string& where) {
  uint64_t pos = 0;
  while (pos + 4 <= extra_len) {
    uint16_t id = rd16(extra + pos);
    uint16_t len = rd16(extra + pos + 2);
    CONVOY_CHECK(len <= extra_len - pos - 4, where, ": malformed extra field (block of ", len,
                 " bytes overruns the ", extra_len, "-byte extra field)");
    if (id == kZip64ExtraId) {
      const uint8_t* p = extra + pos + 4;
      uint64_t used = 0;
      auto take64 = [&](uint64_t& field, const char* what) {
        CONVOY_CHECK(used + 8 <= len, where, ": ZIP64 extra field of ", len, " bytes has no ", what);
        field = rd64(p + used);
        used += 8;
      };
      if (f.uncompressed_size == 0xffffffffu) take64(f.uncompressed_size, "uncompressed size");
      if (f.compressed_size == 0xffffffffu) take64(f.compressed_size, "compressed size");
      if (has_offset && f.local_header_offset == 0xffffffffu) take64(f.local_header_offset, "header offset");
      if (has_offset && f.disk_start == 0xffff) {
        CONVOY_CHECK(used + 4 <= len, where, ": ZIP64 extra field of ", len, " bytes has no disk number");
        f.disk_start = rd32(p + used);
      }
      return;
    }
    pos += 4 + uint64_t{len};
  }
}

}  // namespace

ZipReader ZipReader::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::kIo, path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorKind::kIo, path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::kInvalidInput, path, ": not a regular file");
  }
  auto mapping = std::make_shared<Mapping>();
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorKind::kIo, path, ": cannot map ", size, " bytes: ", std::strerror(err));
    }
    mapping->addr = addr;
    mapping->size = size;
  }
  ::close(fd);  // the mapping keeps the file referenced
  ZipReader r;
  r.path_ = path;
  r.base_ = static_cast<uint8_t*>(mapping->addr);
  r.size_ = size;
  r.owner_ = std::move(mapping);
  r.parse();
  return r;
}

ZipReader ZipReader::from_memory(std::string name, std::shared_ptr<void> owner, uint8_t* data, size_t size) {
  ZipReader r;
  r.path_ = std::move(name);
  r.owner_ = std::move(owner);
  r.base_ = data;
  r.size_ = size;
  r.parse();
  return r;
}

void ZipReader::parse() {
  const std::string& P = path_;
  CONVOY_CHECK(size_ > 0, P, ": not a zip archive (the file is empty)");
  CONVOY_CHECK(size_ >= kEndOfCentralDirSize, P, ": not a zip archive (", size_,
               " bytes is too short for an end-of-central-directory record)");

  // The end-of-central-directory record is the last thing in the file, followed only by a comment
  // of up to 64 KiB, so search backwards over that window.
  uint64_t eocd = UINT64_MAX;
  uint64_t lowest =
      size_ - kEndOfCentralDirSize > kMaxCommentSize ? size_ - kEndOfCentralDirSize - kMaxCommentSize : 0;
  for (uint64_t pos = size_ - kEndOfCentralDirSize + 1; pos-- > lowest;) {
    if (rd32(base_ + pos) == kEndOfCentralDirSig &&
        pos + kEndOfCentralDirSize + rd16(base_ + pos + 20) <= size_) {
      eocd = pos;
      break;
    }
  }
  CONVOY_CHECK(eocd != UINT64_MAX, P, ": not a zip archive (no end-of-central-directory record)");

  const uint8_t* e = base_ + eocd;
  uint32_t disk = rd16(e + 4);
  uint32_t cd_disk = rd16(e + 6);
  uint64_t entries_on_disk = rd16(e + 8);
  uint64_t total_entries = rd16(e + 10);
  uint64_t cd_size = rd32(e + 12);
  uint64_t cd_offset = rd32(e + 16);
  uint64_t cd_limit = eocd;  // the central directory ends before the record that describes it

  bool has_locator = eocd >= kZip64LocatorSize && rd32(base_ + eocd - kZip64LocatorSize) == kZip64LocatorSig;
  if (has_locator) {
    const uint8_t* loc = base_ + eocd - kZip64LocatorSize;
    uint32_t z64_disk = rd32(loc + 4);
    uint64_t z64_offset = rd64(loc + 8);
    uint32_t disks = rd32(loc + 16);
    CONVOY_CHECK_KIND(kUnsupported, z64_disk == 0 && disks <= 1, P,
                      ": multi-disk zip archives are not supported (", disks, " disks)");
    CONVOY_CHECK(z64_offset <= eocd - kZip64LocatorSize &&
                     kZip64EndOfCentralDirSize <= eocd - kZip64LocatorSize - z64_offset,
                 P, ": ZIP64 end-of-central-directory record at offset ", z64_offset,
                 " lies outside the archive (truncated or corrupt archive?)");
    const uint8_t* z = base_ + z64_offset;
    CONVOY_CHECK(rd32(z) == kZip64EndOfCentralDirSig, P,
                 ": no ZIP64 end-of-central-directory record at offset ", z64_offset, " (corrupt archive?)");
    disk = rd32(z + 16);
    cd_disk = rd32(z + 20);
    entries_on_disk = rd64(z + 24);
    total_entries = rd64(z + 32);
    cd_size = rd64(z + 40);
    cd_offset = rd64(z + 48);
    cd_limit = z64_offset;
  } else {
    CONVOY_CHECK(total_entries != 0xffff && cd_size != 0xffffffffu && cd_offset != 0xffffffffu, P,
                 ": end-of-central-directory record needs ZIP64 values but the archive has no ZIP64 "
                 "locator (corrupt archive?)");
  }
  CONVOY_CHECK_KIND(kUnsupported, disk == 0 && cd_disk == 0 && entries_on_disk == total_entries, P,
                    ": multi-disk zip archives are not supported");
  CONVOY_CHECK(cd_offset <= cd_limit && cd_size <= cd_limit - cd_offset, P, ": central directory (offset ",
               cd_offset, ", ", cd_size, " bytes) lies outside the archive (truncated archive?)");
  CONVOY_CHECK(total_entries <= cd_size / kCentralHeaderSize, P, ": central directory of ", cd_size,
               " bytes cannot hold the ", total_entries, " entries the archive claims (corrupt archive?)");

  entries_.reserve(total_entries);
  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < total_entries; ++i) {
    CONVOY_CHECK(cd_end - pos >= kCentralHeaderSize && rd32(base_ + pos) == kCentralHeaderSig, P,
                 ": central directory entry ", i, " at offset ", pos, " is corrupt (no header signature)");
    const uint8_t* h = base_ + pos;
    uint64_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
    CONVOY_CHECK(name_len + extra_len + comment_len <= cd_end - pos - kCentralHeaderSize, P,
                 ": central directory entry ", i, " overruns the central directory (corrupt archive?)");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    entry.flags = rd16(h + 8);
    entry.method = rd16(h + 10);
    entry.crc32 = rd32(h + 16);
    RecordFields f{rd32(h + 24), rd32(h + 20), rd32(h + 42), rd16(h + 34)};
    std::string where = str_cat(P, ": entry '", printable(entry.name), "'");
    apply_zip64_extra(h + kCentralHeaderSize + name_len, extra_len, f, /*has_offset=*/true, where);
    CONVOY_CHECK_KIND(kUnsupported, f.disk_start == 0, where, " starts on disk ", f.disk_start,
                      " (multi-disk archives are not supported)");
    entry.uncompressed_size = f.uncompressed_size;
    entry.compressed_size = f.compressed_size;
    entry.local_header_offset = f.local_header_offset;
    CONVOY_CHECK(entry.local_header_offset < size_, where, ": local header offset ",
                 entry.local_header_offset, " is past the end of the file (", size_,
                 " bytes; truncated archive?)");
    auto [it, inserted] = by_name_.emplace(entry.name, entries_.size());
    CONVOY_CHECK(inserted, where, " appears twice in the central directory");
    entries_.push_back(std::move(entry));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

bool ZipReader::is_mapped(const void* p) const {
  auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base_);
  return base_ != nullptr && a >= b && a - b < size_;
}

uint64_t ZipReader::data_offset(const ZipEntry& entry) const {
  std::string where = str_cat(path_, ": entry '", printable(entry.name), "'");
  uint64_t lho = entry.local_header_offset;
  CONVOY_CHECK(lho <= size_ && size_ - lho >= kLocalHeaderSize, where,
               " extends past the end of the file (truncated archive?)");
  const uint8_t* h = base_ + lho;
  CONVOY_CHECK(rd32(h) == kLocalHeaderSig, where, ": no local header at offset ", lho, " (corrupt archive?)");
  uint64_t name_len = rd16(h + 26), extra_len = rd16(h + 28);
  CONVOY_CHECK(name_len + extra_len <= size_ - lho - kLocalHeaderSize, where,
               " extends past the end of the file (truncated archive?)");
  CONVOY_CHECK(std::string_view(reinterpret_cast<const char*>(h + kLocalHeaderSize), name_len) == entry.name,
               where, ": local header names a different record (corrupt archive?)");
  // Writers that stream (PyTorch among them) leave the local sizes zero and put them in a data
  // descriptor; when they are present they must agree with the central directory.
  RecordFields f{rd32(h + 22), rd32(h + 18), 0, 0};
  apply_zip64_extra(h + kLocalHeaderSize + name_len, extra_len, f, /*has_offset=*/false, where);
  if (f.compressed_size != 0 || f.uncompressed_size != 0) {
    CONVOY_CHECK(f.compressed_size == entry.compressed_size && f.uncompressed_size == entry.uncompressed_size,
                 where, ": local header sizes (", f.compressed_size, ", ", f.uncompressed_size,
                 ") disagree with the central directory (", entry.compressed_size, ", ",
                 entry.uncompressed_size, ")");
  }
  uint64_t data = lho + kLocalHeaderSize + name_len + extra_len;
  CONVOY_CHECK(entry.compressed_size <= size_ - data, where,
               " extends past the end of the file (truncated archive?): ", entry.compressed_size,
               " bytes at offset ", data, " in a file of ", size_, " bytes");
  return data;
}

ZipBytes ZipReader::read(const std::string& name, bool verify_crc) const {
  const ZipEntry* entry = find(name);
  CONVOY_CHECK(entry != nullptr, path_, ": no record '", printable(name), "' in the archive");
  return read(*entry, verify_crc);
}

namespace {
uint32_t crc_of(const uint8_t* data, uint64_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {
    uInt chunk = static_cast<uInt>(std::min<uint64_t>(size, 1u << 30));
    crc = crc32(crc, data, chunk);
    data += chunk;
    size -= chunk;
  }
  return static_cast<uint32_t>(crc);
}
}  // namespace

ZipBytes ZipReader::read(const ZipEntry& entry, bool verify_crc) const {
  std::string where = str_cat(path_, ": entry '", printable(entry.name), "'");
  CONVOY_CHECK_KIND(kUnsupported, (entry.flags & kFlagEncrypted) == 0, where, " is encrypted");
  uint64_t offset = data_offset(entry);
  ZipBytes out;
  if (entry.method == 0) {
    CONVOY_CHECK(entry.compressed_size == entry.uncompressed_size, where, " is stored but its sizes differ (",
                 entry.compressed_size, " vs ", entry.uncompressed_size, ")");
    out.owner = owner_;
    out.data = base_ + offset;
    out.size = entry.uncompressed_size;
    out.zero_copy = true;
  } else if (entry.method == 8) {
    CONVOY_CHECK(entry.uncompressed_size <= entry.compressed_size * kMaxDeflateRatio + 1024, where,
                 " claims ", entry.uncompressed_size, " bytes inflated from ", entry.compressed_size,
                 ", more than deflate can produce (corrupt archive?)");
    auto buffer = std::shared_ptr<uint8_t[]>(new uint8_t[std::max<uint64_t>(entry.uncompressed_size, 1)]);
    z_stream zs{};
    CONVOY_ASSERT(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "inflateInit2 failed");
    const uint8_t* in = base_ + offset;
    uint64_t in_left = entry.compressed_size, out_left = entry.uncompressed_size;
    zs.next_out = buffer.get();
    int rc = Z_OK;
    // zlib counts in 32-bit units: feed and drain in chunks so records over 4 GiB work too.
    while (rc == Z_OK) {
      if (zs.avail_in == 0 && in_left > 0) {
        zs.next_in = const_cast<Bytef*>(in);
        zs.avail_in = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
        in += zs.avail_in;
        in_left -= zs.avail_in;
      }
      if (zs.avail_out == 0 && out_left > 0) {
        zs.avail_out = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
        out_left -= zs.avail_out;
      }
      uInt before_in = zs.avail_in, before_out = zs.avail_out;
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_BUF_ERROR || (rc == Z_OK && zs.avail_in == before_in && zs.avail_out == before_out)) {
        // No progress possible: the input ran out or the output is full before the stream's end.
        rc = Z_BUF_ERROR;
      }
    }
    uint64_t produced = zs.total_out;
    std::string msg = zs.msg != nullptr ? zs.msg : "";
    inflateEnd(&zs);
    CONVOY_CHECK(rc == Z_STREAM_END && produced == entry.uncompressed_size, where,
                 " does not inflate to its stated ", entry.uncompressed_size, " bytes (",
                 rc == Z_DATA_ERROR   ? "corrupt deflate data: " + msg
                 : rc == Z_STREAM_END ? str_cat("got ", produced)
                                      : std::string("truncated or oversized deflate stream"),
                 ")");
    out.data = buffer.get();
    out.size = entry.uncompressed_size;
    out.owner = std::move(buffer);
    verify_crc = true;
  } else {
    fail(ErrorKind::kUnsupported, where, " uses compression method ", entry.method,
         " (only stored and deflated records are supported)");
  }
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  // Fuzzing builds skip the CRC so that mutated pickles reach the unpickler instead of all failing
  // here (the usual libFuzzer convention).
  verify_crc = false;
#endif
  if (verify_crc) {
    uint32_t crc = crc_of(out.data, out.size);
    CONVOY_CHECK(crc == entry.crc32, where, ": CRC-32 mismatch (corrupt archive?): computed ", crc,
                 ", the central directory says ", entry.crc32);
  }
  return out;
}

}  // namespace convoy
