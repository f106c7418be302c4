// .npy reading and writing: files written by numpy (tests/fixtures/archive/npy/, made by
// make_archive_fixtures.py), round trips of every dtype, row-range reading and writing, and
// malformed files.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/npy.h"

using namespace convoy;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Fixtures live in the source tree; CMake passes its root (CONVOY_SOURCE_DIR).
fs::path npy_fixture(const std::string& name) {
#ifdef CONVOY_SOURCE_DIR
  return fs::path(CONVOY_SOURCE_DIR) / "tests/fixtures/archive/npy" / name;
#else
  return fs::path(__FILE__).parent_path() / "../fixtures/archive/npy" / name;
#endif
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "convoy_npy_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return file(name);
  }
};

std::string read_error(const std::string& path) {
  try {
    read_npy(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A version 1.0 .npy file with the given header dict and payload.
std::string npy_bytes(const std::string& dict, const std::string& payload) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + payload;
}

std::vector<double> formula(double scale, double shift) {
  std::vector<double> v;
  for (int i = 0; i < 12; ++i) v.push_back(i * scale + shift);
  return v;
}

}  // namespace

TEST_CASE("npy: reads every dtype numpy writes", "[npy]") {
  struct Case {
    const char* file;
    DType dtype;
    std::vector<double> values;  // base = arange(12).reshape(3, 4), as in make_archive_fixtures.py
  };
  std::vector<double> bools;
  for (int i = 0; i < 12; ++i) bools.push_back(i % 3 == 0 ? 1 : 0);
  for (const Case& c : {
           Case{"f4.npy", DType::kFloat32, formula(0.5, -1)},
           Case{"f4_v2.npy", DType::kFloat32, formula(0.5, -1)},
           Case{"f4_v3.npy", DType::kFloat32, formula(0.5, -1)},
           Case{"f8.npy", DType::kFloat64, formula(0.25, -1.5)},
           Case{"f2.npy", DType::kFloat16, formula(0.5, -1)},
           Case{"i1.npy", DType::kInt8, formula(20, -120)},
           Case{"i2.npy", DType::kInt16, formula(3000, -16000)},
           Case{"i4.npy", DType::kInt32, formula(100000, -600000)},
           Case{"i8.npy", DType::kInt64, formula(1e15, -5e15)},
           Case{"u1.npy", DType::kUInt8, formula(20, 10)},
           Case{"b1.npy", DType::kBool, bools},
       }) {
    INFO(c.file);
    Tensor t = read_npy(npy_fixture(c.file));
    CHECK(t.dtype() == c.dtype);
    CHECK(t.sizes() == Shape{3, 4});
    CHECK(t.is_contiguous());
    CHECK(t.to_doubles() == c.values);
  }
  Tensor s = read_npy(npy_fixture("scalar_f8.npy"));
  CHECK(s.dim() == 0);
  CHECK(s.item_double() == 3.25);
  Tensor e = read_npy(npy_fixture("empty_f4.npy"));
  CHECK(e.sizes() == Shape{0, 3});
}

TEST_CASE("npy: what we write is byte-for-byte what numpy writes", "[npy]") {
  TempDir dir;
  for (const char* name : {"f4.npy", "f8.npy", "f2.npy", "i1.npy", "i2.npy", "i4.npy", "i8.npy", "u1.npy",
                           "b1.npy", "scalar_f8.npy", "empty_f4.npy"}) {
    INFO(name);
    std::string out = dir.file(name);
    write_npy(out, read_npy(npy_fixture(name)));
    CHECK(file_text(out) == file_text(npy_fixture(name)));
  }
}

TEST_CASE("npy: round trip of every dtype, any strides", "[npy]") {
  TempDir dir;
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt8, DType::kInt16,
                   DType::kInt32, DType::kInt64, DType::kUInt8, DType::kBool}) {
    INFO(dtype_name(dt));
    std::vector<double> v;
    for (int i = 0; i < 6; ++i) {
      if (dt == DType::kBool)
        v.push_back(i % 2);
      else if (dt == DType::kUInt8)
        v.push_back(i * 50);
      else
        v.push_back((i - 2) * (is_floating(dt) ? 1.5 : 3));
    }
    Tensor t = Tensor::from_doubles({2, 3}, dt, v);
    write_npy(dir.file("t.npy"), t);
    Tensor back = read_npy(dir.file("t.npy"));
    CHECK(back.dtype() == dt);
    CHECK(back.sizes() == Shape{2, 3});
    CHECK(back.to_doubles() == v);
    // A transposed view is written in its logical order.
    Tensor tt = t.as_strided({3, 2}, {1, 3}, 0);
    write_npy(dir.file("tt.npy"), tt);
    CHECK(read_npy(dir.file("tt.npy")).to_doubles() == tt.to_doubles());
  }
  // bfloat16 has no numpy dtype: written as float32, exactly.
  Tensor bf = Tensor::from_doubles({3}, DType::kBFloat16, {1.0, -2.5, 3.140625});
  write_npy(dir.file("bf.npy"), bf);
  Tensor back = read_npy(dir.file("bf.npy"));
  CHECK(back.dtype() == DType::kFloat32);
  CHECK(back.to_doubles() == std::vector<double>{1.0, -2.5, 3.140625});
  CHECK_THAT(file_text(dir.file("bf.npy")), Contains("'descr': '<f4'"));
  // No temporary files are left behind, and writing replaces an existing file.
  write_npy(dir.file("bf.npy"), Tensor::from_doubles({1}, DType::kFloat64, {7}));
  CHECK(read_npy(dir.file("bf.npy")).to_doubles() == std::vector<double>{7});
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    CHECK(entry.path().extension() == ".npy");
  }
}

TEST_CASE("npy: NpyFile reads row ranges from the mapping", "[npy]") {
  NpyFile f = NpyFile::open(npy_fixture("i4.npy"));
  CHECK(f.dtype() == DType::kInt32);
  CHECK(f.shape() == Shape{3, 4});
  CHECK(f.rows() == 3);
  Tensor rows = f.slice(1, 3);
  CHECK(rows.sizes() == Shape{2, 4});
  CHECK(rows.shares_storage_with(f.tensor()));
  std::vector<double> all = formula(100000, -600000);
  CHECK(rows.to_doubles() == std::vector<double>(all.begin() + 4, all.end()));
  CHECK(f.slice(3, 3).numel() == 0);
  CHECK_THROWS_WITH(f.slice(2, 4), Contains("i4.npy: rows [2, 4) are outside the array's 3 rows"));
  CHECK_THROWS_WITH(NpyFile::open(npy_fixture("scalar_f8.npy")).rows(), Contains("0-dimensional"));
}

TEST_CASE("npy: NpyWriter fills row ranges in any order and commits atomically", "[npy]") {
  TempDir dir;
  std::string path = dir.file("out.npy");
  {
    NpyWriter w = NpyWriter::create(path, DType::kFloat32, {5, 2});
    w.write_rows(3, Tensor::from_doubles({2, 2}, DType::kFloat32, {6, 7, 8, 9}));
    CHECK_FALSE(fs::exists(path));  // not visible before commit
    w.write_rows(0, Tensor::from_doubles({3, 2}, DType::kFloat32, {0, 1, 2, 3, 4, 5}));
    w.write_rows(
        3, Tensor::from_doubles({2, 2}, DType::kFloat32, {6, 7, 8, 9}));  // a replay rewrites the same bytes
    CHECK_THROWS_WITH(w.write_rows(4, Tensor::from_doubles({2, 2}, DType::kFloat32, {0, 0, 0, 0})),
                      Contains("out.npy: rows [4, 6) are outside the array's 5 rows"));
    CHECK_THROWS_WITH(w.write_rows(0, Tensor::from_doubles({1, 3}, DType::kFloat32, {0, 0, 0})),
                      Contains("rows of shape [1, 3] do not fit an array of shape [5, 2]"));
    CHECK_THROWS_WITH(w.write_rows(0, Tensor::from_doubles({1, 2}, DType::kFloat64, {0, 0})),
                      Contains("rows of float64 written to an array of float32"));
    w.commit();
    CHECK_THROWS_WITH(w.commit(), Contains("commit called twice"));
  }
  Tensor t = read_npy(path);
  CHECK(t.sizes() == Shape{5, 2});
  CHECK(t.to_doubles() == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // A writer dropped without commit leaves nothing behind.
  { NpyWriter w = NpyWriter::create(dir.file("dropped.npy"), DType::kBFloat16, {2}); }
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    ++files;
    CHECK(entry.path().filename() == "out.npy");
  }
  CHECK(files == 1);
  // bfloat16 rows go to a float32 file.
  NpyWriter bw = NpyWriter::create(dir.file("bf.npy"), DType::kBFloat16, {2});
  bw.write_rows(0, Tensor::from_doubles({2}, DType::kBFloat16, {0.5, -256}));
  bw.commit();
  Tensor bf = read_npy(dir.file("bf.npy"));
  CHECK(bf.dtype() == DType::kFloat32);
  CHECK(bf.to_doubles() == std::vector<double>{0.5, -256});
}

TEST_CASE("npy: refused dtypes and layouts name the file and the descr", "[npy]") {
  struct Case {
    const char* file;
    const char* message;
  };
  for (const Case& c :
       {Case{"bad_u2.npy", "dtype '<u2' is not supported (torch has no unsigned integer type"},
        Case{"bad_big_endian.npy", "dtype '>f4' is not supported (big-endian data"},
        Case{"bad_fortran.npy", "Fortran-order arrays are not supported (dtype '<f4')"},
        Case{"bad_object.npy", "dtype '|O' is not supported (object arrays"}}) {
    INFO(c.file);
    std::string path = npy_fixture(c.file).string();
    try {
      read_npy(path);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::kUnsupported);
      CHECK_THAT(e.what(), Contains(path + ": ") && Contains(c.message));
    }
  }
}

TEST_CASE("npy: malformed files", "[npy]") {
  TempDir dir;
  const std::string f4x2 = std::string(8, '\0');
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  REQUIRE(read_npy(dir.write("good.npy", npy_bytes(good, f4x2))).numel() == 2);

  struct Case {
    std::string bytes;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "not a .npy file (no \\x93NUMPY magic)"},
           {"PK\x03\x04 not numpy at all", "not a .npy file"},
           {std::string("\x93NUMPY\x01\x00\xff\x00{", 11), "header of 255 bytes is longer than the file"},
           {std::string("\x93NUMPY\x04\x00\x00\x00", 10), ".npy format version 4.0 is not supported"},
           {npy_bytes("{'descr': '<f4', 'shape': (2,), }", f4x2),
            "'descr', 'fortran_order' and 'shape' are all required"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", f4x2),
            "unknown key 'extra'"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }", f4x2),
            "'fortran_order' is not True or False"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", f4x2),
            "'shape' is not a tuple"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,-1), }", f4x2),
            "expected a non-negative integer"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", f4x2),
            "malformed .npy header"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", f4x2),
            "text after the dict"},
           {npy_bytes("{'descr: '<f4'}", f4x2), "malformed .npy header"},
           {npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f4x2),
            "structured arrays"},
           {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", f4x2),
            "dimension too large"},
           {npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000, 1000000000), }",
                f4x2),
            "is too large"},
           {npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000000000, 1000000000000), }", ""),
            "is too large"},
           {npy_bytes(good, f4x2 + "x"),
            "header says shape [2] of '<f4' (8 bytes of data) but the file has 9 bytes"},
           {npy_bytes(good, "1234567"), "but the file has 7 bytes after the header"},
           {npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f4x2), "complex numbers"},
           {npy_bytes("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", f4x2),
            "unknown byte order"},
       }) {
    INFO(c.message);
    std::string path = dir.write("bad.npy", c.bytes);
    CHECK_THAT(read_error(path), Contains(path + ": ") && Contains(c.message));
  }
  CHECK_THAT(read_error(dir.file("missing.npy")), Contains("missing.npy: cannot open"));
}
