// The zip container on real TorchScript archives (torch 1.13 and 2.x), on rewritten ones (ZIP64
// everywhere, every record deflated), and on damaged ones. Fixtures: tests/fixtures/archive/,
// made by make_archive_fixtures.py.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/torchscript/zip_reader.h"

using namespace convoy;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Fixtures live in the source tree; CMake passes its root (CONVOY_SOURCE_DIR).
fs::path fixture(const std::string& name) {
#ifdef CONVOY_SOURCE_DIR
  return fs::path(CONVOY_SOURCE_DIR) / "tests/fixtures/archive" / name;
#else
  return fs::path(__FILE__).parent_path() / "../fixtures/archive" / name;
#endif
}

std::vector<uint8_t> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ZipReader from_bytes(std::vector<uint8_t> bytes, const std::string& name = "mem.pt") {
  auto buf = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  return ZipReader::from_memory(name, buf, buf->data(), buf->size());
}

std::string error_of(std::vector<uint8_t> bytes, const std::string& record = "") {
  try {
    ZipReader z = from_bytes(std::move(bytes));
    if (!record.empty()) z.read(record, /*verify_crc=*/true);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Offset of the central directory header that names `name`.
size_t central_header_of(const std::vector<uint8_t>& b, const std::string& name) {
  for (size_t i = 0; i + 46 < b.size(); ++i) {
    if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 1 && b[i + 3] == 2) {
      uint16_t n;
      std::memcpy(&n, &b[i + 28], 2);
      if (std::string(reinterpret_cast<const char*>(&b[i + 46]), n) == name) return i;
    }
  }
  FAIL("no central directory header for " << name);
  return 0;
}

void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }

const std::vector<std::string> kSeedRecords = {
    "jit/data/0",
    "jit/data/1",
    "jit/data.pkl",
    "jit/code/__torch__.py",
    "jit/code/__torch__.py.debug_pkl",
    "jit/code/__torch__/torch/nn/modules/linear.py",
    "jit/code/__torch__/torch/nn/modules/linear.py.debug_pkl",
    "jit/code/__torch__/torch/nn/modules/activation.py",
    "jit/code/__torch__/torch/nn/modules/activation.py.debug_pkl",
    "jit/constants.pkl",
    "jit/version",
};

}  // namespace

TEST_CASE("zip: lists and reads the records of a torch 1.13 archive", "[zip]") {
  ZipReader z = ZipReader::open(fixture("jit.pt"));
  std::vector<std::string> names;
  for (const auto& e : z.entries()) names.push_back(e.name);
  CHECK(names == kSeedRecords);

  // Tensor data: stored, zero-copy, 64-byte aligned in the file (PyTorch pads the local extra field).
  const ZipEntry* w = z.find("jit/data/0");
  REQUIRE(w != nullptr);
  CHECK(w->method == 0);
  CHECK(w->uncompressed_size == 32);  // Linear(4, 2).weight: 8 float32
  CHECK(z.data_offset(*w) % 64 == 0);
  ZipBytes wb = z.read(*w, /*verify_crc=*/true);
  CHECK(wb.zero_copy);
  CHECK(wb.size == 32);
  CHECK(z.is_mapped(wb.data));
  float first;
  std::memcpy(&first, wb.data, 4);
  CHECK(first == -0.003743410110473633f);  // printed by make_archive_fixtures.py

  // Code: deflated, inflated and CRC-checked.
  const ZipEntry* code = z.find("jit/code/__torch__.py");
  REQUIRE(code != nullptr);
  CHECK(code->method == 8);
  ZipBytes cb = z.read(*code);
  CHECK_FALSE(cb.zero_copy);
  CHECK(cb.size == code->uncompressed_size);
  CHECK_THAT(std::string(cb.view()),
             Contains("class TestScript(Module):") && Contains("def my_abs(x: Tensor)"));

  CHECK(z.read("jit/version").view() == "3\n");
  CHECK(z.find("jit/nothing") == nullptr);
  CHECK_THAT(error_of(file_bytes(fixture("jit.pt")), "jit/nothing"),
             Contains("mem.pt: no record 'jit/nothing'"));
}

TEST_CASE("zip: torch 2.x archives", "[zip]") {
  ZipReader z = ZipReader::open(fixture("jit_t2.pt"));
  CHECK(z.contains("jit_t2/data.pkl"));
  CHECK(z.read("jit_t2/byteorder").view() == "little");
  CHECK(z.contains("jit_t2/.data/serialization_id"));
  for (const auto& e : z.entries()) CHECK_NOTHROW(z.read(e, /*verify_crc=*/true));
}

TEST_CASE("zip: ZIP64 fields everywhere and deflated records read the same bytes", "[zip]") {
  ZipReader seed = ZipReader::open(fixture("jit.pt"));
  for (const char* other : {"zip64.pt", "deflated.pt"}) {
    INFO(other);
    ZipReader z = ZipReader::open(fixture(other));
    REQUIRE(z.entries().size() == seed.entries().size());
    for (const auto& e : seed.entries()) {
      INFO(e.name);
      const ZipEntry* o = z.find(e.name);
      REQUIRE(o != nullptr);
      CHECK(o->uncompressed_size == e.uncompressed_size);
      CHECK(o->crc32 == e.crc32);
      CHECK(z.read(*o, /*verify_crc=*/true).view() == seed.read(e).view());
    }
  }
  // zip64.pt: saturated 32-bit fields resolved through ZIP64 extra fields; stored data aligned.
  ZipReader z = ZipReader::open(fixture("zip64.pt"));
  CHECK(z.find("jit/data/0")->local_header_offset == 0);
  CHECK(z.data_offset(*z.find("jit/data/1")) % 64 == 0);
  CHECK(z.read("jit/data/1").zero_copy);
  CHECK_FALSE(ZipReader::open(fixture("deflated.pt")).read("jit/data/1").zero_copy);
}

TEST_CASE("zip: in-memory archives", "[zip]") {
  std::vector<uint8_t> bytes = file_bytes(fixture("jit.pt"));
  ZipReader z = from_bytes(bytes, "memory");
  CHECK(z.path() == "memory");
  CHECK(z.entries().size() == kSeedRecords.size());
  CHECK(z.read("jit/data/1").size == 8);
}

TEST_CASE("zip: not a zip", "[zip]") {
  CHECK_THAT(error_of({}), Contains("mem.pt: not a zip archive (the file is empty)"));
  CHECK_THAT(error_of({'P', 'K'}), Contains("mem.pt: not a zip archive"));
  std::vector<uint8_t> noise(4096);
  uint32_t s = 12345;
  for (auto& b : noise) {
    s = s * 1103515245u + 12345u;
    b = static_cast<uint8_t>(s >> 24);
  }
  CHECK_THAT(error_of(noise), Contains("mem.pt: not a zip archive (no end-of-central-directory record)"));

  fs::path empty = fs::temp_directory_path() / "convoy_test_zip_empty.pt";
  std::ofstream(empty).close();
  try {
    ZipReader::open(empty);
    FAIL("empty file accepted");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains(empty.string() + ": not a zip archive (the file is empty)"));
  }
  fs::remove(empty);
  try {
    ZipReader::open("/nonexistent/model.pt");
    FAIL("missing file accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kIo);
    CHECK_THAT(e.what(), Contains("/nonexistent/model.pt: cannot open"));
  }
}

TEST_CASE("zip: truncated archives", "[zip]") {
  for (const char* name : {"jit.pt", "zip64.pt", "deflated.pt"}) {
    std::vector<uint8_t> full = file_bytes(fixture(name));
    for (size_t cut : {full.size() / 2, size_t{10}, size_t{100}, full.size() - 1, full.size() - 22,
                       full.size() - 60, full.size() - 200}) {
      INFO(name << " cut to " << cut << " bytes");
      std::vector<uint8_t> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
      CHECK_THAT(error_of(part), Contains("mem.pt: "));
    }
  }
}

TEST_CASE("zip: damaged central directory and records", "[zip]") {
  const std::vector<uint8_t> seed = file_bytes(fixture("jit.pt"));
  size_t weight = central_header_of(seed, "jit/data/0");

  // A record whose sizes reach past the end of the file.
  std::vector<uint8_t> b = seed;
  put32(b, weight + 20, 0x7fff0000);
  put32(b, weight + 24, 0x7fff0000);
  CHECK_THAT(error_of(b, "jit/data/0"),
             Contains("mem.pt: entry 'jit/data/0' extends past the end of the file (truncated archive?)"));

  // A local header offset past the end.
  b = seed;
  put32(b, weight + 42, 0x7fff0000);
  CHECK_THAT(error_of(b), Contains("entry 'jit/data/0': local header offset 2147418112 is past the end"));

  // A local header offset that points at something else.
  b = seed;
  put32(b, weight + 42, 5);
  CHECK_THAT(error_of(b, "jit/data/0"), Contains("entry 'jit/data/0': no local header at offset 5"));

  // Corrupt central directory signature.
  b = seed;
  b[weight] = 'X';
  CHECK_THAT(error_of(b), Contains("central directory entry 0") && Contains("is corrupt"));

  // Flipped data byte: caught by the CRC when asked for (stored) and always (deflated).
  b = seed;
  const ZipReader z = from_bytes(seed);
  b[z.data_offset(*z.find("jit/data/0"))] ^= 0x55;
  CHECK_THAT(error_of(b, "jit/data/0"), Contains("entry 'jit/data/0': CRC-32 mismatch"));
  b = seed;
  const ZipEntry* code = z.find("jit/code/__torch__.py");
  b[z.data_offset(*code) + code->compressed_size / 2] ^= 0x55;
  CHECK_THAT(error_of(b, "jit/code/__torch__.py"), Contains("entry 'jit/code/__torch__.py'"));

  // A deflated record that claims more than deflate can produce.
  b = seed;
  size_t code_header = central_header_of(seed, "jit/code/__torch__.py");
  put32(b, code_header + 24, 0x7fffffff);
  CHECK_THAT(error_of(b, "jit/code/__torch__.py"), Contains("more than deflate can produce"));
  // ... or less than it does.
  b = seed;
  put32(b, code_header + 24, 10);
  CHECK_THAT(error_of(b, "jit/code/__torch__.py"), Contains("does not inflate to its stated 10 bytes"));

  // Unsupported compression method.
  b = seed;
  b[code_header + 10] = 12;  // bzip2
  try {
    from_bytes(b).read("jit/code/__torch__.py");
    FAIL("bzip2 accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kUnsupported);
    CHECK_THAT(e.what(), Contains("uses compression method 12"));
  }

  // More entries claimed than the central directory can hold (ZIP64 end record, offset 24/32).
  b = seed;
  size_t z64 = 0;
  for (size_t i = b.size() - 22; i-- > 0;) {
    if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 6 && b[i + 3] == 6) {
      z64 = i;
      break;
    }
  }
  REQUIRE(z64 > 0);
  uint64_t many = 1000000;
  std::memcpy(&b[z64 + 24], &many, 8);
  std::memcpy(&b[z64 + 32], &many, 8);
  CHECK_THAT(error_of(b), Contains("cannot hold the 1000000 entries"));
}
