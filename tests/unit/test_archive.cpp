// TorchScript archives end to end: real archives made by torch 1.13 and torch 2.2
// (tests/fixtures/archive/make_archive_fixtures.py), rewritten ones, bad ones, and synthetic ones
// built here to reach the checks real archives never trip.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/torchscript/archive.h"

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

const IValue& attr(const IValue& obj, const std::string& name) {
  const IValue* v = obj.to_object()->find(name);
  INFO("attribute " << name);
  REQUIRE(v != nullptr);
  return *v;
}

std::vector<std::string> attr_names(const IValue& obj) {
  std::vector<std::string> out;
  for (const auto& [k, v] : obj.to_object()->attrs) out.push_back(k);
  return out;
}

std::string load_error(const std::string& path) {
  try {
    load_archive(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// --- a minimal zip writer (stored records) for synthetic archives ----------------------------------
uint32_t crc32_of(const std::string& s) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
void le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
std::vector<uint8_t> make_zip(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out, central;
  for (const auto& [name, data] : records) {
    uint64_t offset = out.size();
    uint32_t crc = crc32_of(data);
    for (std::string* h : {&out, &central}) {
      bool cd = h == &central;
      le(*h, cd ? 0x02014b50 : 0x04034b50, 4);
      if (cd) le(*h, 20, 2);
      le(*h, 20, 2);  // version needed
      le(*h, 0, 2);   // flags
      le(*h, 0, 2);   // stored
      le(*h, 0, 4);   // time, date
      le(*h, crc, 4);
      le(*h, data.size(), 4);
      le(*h, data.size(), 4);
      le(*h, name.size(), 2);
      le(*h, 0, 2);  // extra
      if (cd) {
        le(*h, 0, 2);  // comment
        le(*h, 0, 2);  // disk
        le(*h, 0, 2);  // internal attributes
        le(*h, 0, 4);  // external attributes
        le(*h, offset, 4);
      }
      *h += name;
    }
    out += data;
  }
  uint64_t cd_offset = out.size();
  out += central;
  le(out, 0x06054b50, 4);
  le(out, 0, 4);
  le(out, records.size(), 2);
  le(out, records.size(), 2);
  le(out, central.size(), 4);
  le(out, cd_offset, 4);
  le(out, 0, 2);
  return std::vector<uint8_t>(out.begin(), out.end());
}

Archive load_zip(const std::vector<std::pair<std::string, std::string>>& records) {
  auto buf = std::make_shared<std::vector<uint8_t>>(make_zip(records));
  return load_archive(ZipReader::from_memory("synthetic.pt", buf, buf->data(), buf->size()));
}
std::string synthetic_error(const std::vector<std::pair<std::string, std::string>>& records) {
  try {
    load_zip(records);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// --- pickle pieces --------------------------------------------------------------------------------------
std::string U(const std::string& s) {  // BINUNICODE
  std::string out = "X";
  le(out, s.size(), 4);
  return out + s;
}
std::string I(int64_t v) {  // BININT or LONG1 (8 bytes)
  std::string out;
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out = "J";
    le(out, static_cast<uint64_t>(v), 4);
  } else {
    out = "\x8a\x08";
    le(out, static_cast<uint64_t>(v), 8);
  }
  return out;
}
std::string ints(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (int64_t x : v) out += I(x);
  return out + "t";
}
std::string tensor(const std::string& storage_class, const std::string& key, int64_t numel, int64_t offset,
                   const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
                   const std::string& extra_args = "") {
  return "ctorch._utils\n_rebuild_tensor_v2\n((" + U("storage") + "ctorch\n" + storage_class + "\n" + U(key) +
         U("cpu") + I(numel) + "tQ" + I(offset) + ints(sizes) + ints(strides) +
         "\x89"
         "ccollections\nOrderedDict\n)R" +
         extra_args + "tR";
}
// A module M whose attributes are the given (name, pickled value) pairs.
std::string module_pickle(const std::vector<std::pair<std::string, std::string>>& attrs) {
  std::string out =
      "\x80\x02"
      "c__torch__\nM\n)\x81}(";
  for (const auto& [k, v] : attrs) out += U(k) + v;
  return out + "ub.";
}
std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::vector<std::pair<std::string, std::string>> synthetic(
    const std::string& data_pkl, std::vector<std::pair<std::string, std::string>> more = {}) {
  std::vector<std::pair<std::string, std::string>> r = {{"m/data.pkl", data_pkl}, {"m/version", "3\n"}};
  for (auto& x : more) r.push_back(std::move(x));
  return r;
}

void check_seed_archive(const Archive& a, const std::string& top) {
  CHECK(a.top_folder == top);
  CHECK(a.version == 3);
  REQUIRE(a.module.is_object());
  CHECK(a.root().type_name == "__torch__.TestScript");
  CHECK(attr_names(a.module) ==
        std::vector<std::string>{"training", "_is_full_backward_hook", "linear", "relu"});
  CHECK(attr(a.module, "training").to_bool() == true);
  CHECK(attr(a.module, "_is_full_backward_hook").is_none());
  const IValue& linear = attr(a.module, "linear");
  CHECK(linear.to_object()->type_name == "__torch__.torch.nn.modules.linear.Linear");
  CHECK(attr(attr(a.module, "relu"), "training").to_bool());
  CHECK(attr(a.module, "relu").to_object()->type_name == "__torch__.torch.nn.modules.activation.ReLU");

  // nn.Linear(4, 2) under torch.manual_seed(0), as make_archive_fixtures.py printed them.
  const Tensor& w = attr(linear, "weight").to_tensor();
  CHECK(w.dtype() == DType::kFloat32);
  CHECK(w.sizes() == Shape{2, 4});
  CHECK(w.strides() == Shape{4, 1});
  CHECK(w.offset() == 0);
  const std::vector<float> expected_w = {-0.003743410110473633f, 0.26822179555892944f,  -0.4115225672721863f,
                                         -0.3679695129394531f,   -0.19257718324661255f, 0.13407868146896362f,
                                         -0.009906589984893799f, 0.39644473791122437f};
  for (int i = 0; i < 8; ++i) CHECK(static_cast<float>(w.get_double(i)) == expected_w[i]);
  const Tensor& b = attr(linear, "bias").to_tensor();
  CHECK(b.sizes() == Shape{2});
  CHECK(static_cast<float>(b.get_double(0)) == -0.04437202215194702f);
  CHECK(static_cast<float>(b.get_double(1)) == 0.1323062777519226f);

  std::set<std::string> code_keys;
  for (const auto& [k, v] : a.code) code_keys.insert(k);
  CHECK(code_keys == std::set<std::string>{"code/__torch__.py",
                                           "code/__torch__/torch/nn/modules/activation.py",
                                           "code/__torch__/torch/nn/modules/linear.py"});
  REQUIRE(a.find_code("code/__torch__.py") != nullptr);
  CHECK_THAT(*a.find_code("code/__torch__.py"), Contains("def my_abs(x: Tensor) -> Tensor:"));
  CHECK_THAT(*a.find_code("code/__torch__/torch/nn/modules/linear.py"), Contains("torch.linear("));
  CHECK(a.constants.empty());
  CHECK(a.storages.size() == 2);
}

}  // namespace

TEST_CASE("archive: the seed model saved by torch 1.13", "[archive]") {
  Archive a = load_archive(fixture("jit.pt"));
  CHECK(a.path == fixture("jit.pt").string());
  check_seed_archive(a, "jit");
  // Zero copy: the weights live in the archive's mapped pages, 64-byte aligned.
  const Tensor& w = attr(attr(a.module, "linear"), "weight").to_tensor();
  CHECK(a.zip->is_mapped(w.raw_data()));
  CHECK(reinterpret_cast<uintptr_t>(w.raw_data()) % 64 == 0);
  CHECK(a.storages.at("data/0") == w.storage());
}

TEST_CASE("archive: the seed model saved by torch 2.2", "[archive]") {
  check_seed_archive(load_archive(fixture("jit_t2.pt")), "jit_t2");
}

TEST_CASE("archive: rewritten containers load the same module", "[archive]") {
  Archive zip64 = load_archive(fixture("zip64.pt"));
  check_seed_archive(zip64, "jit");
  CHECK(zip64.zip->is_mapped(zip64.storages.at("data/0")->data()));
  Archive deflated = load_archive(fixture("deflated.pt"));
  check_seed_archive(deflated, "jit");
  CHECK_FALSE(deflated.zip->is_mapped(deflated.storages.at("data/0")->data()));  // inflated: a copy
}

TEST_CASE("archive: every dtype, shared storages, views and attributes", "[archive]") {
  for (const char* name : {"dtypes.pt", "dtypes_t2.pt"}) {
    INFO(name);
    Archive a = load_archive(fixture(name));
    const IValue& m = a.module;
    CHECK(a.root().type_name == "__torch__.Dtypes");

    auto check = [&](const char* attr_name, DType dtype, const std::vector<double>& values) {
      INFO(attr_name);
      const Tensor& t = attr(m, attr_name).to_tensor();
      CHECK(t.dtype() == dtype);
      CHECK(t.sizes() == Shape{static_cast<int64_t>(values.size())});
      CHECK(t.to_doubles() == values);
      CHECK(a.zip->is_mapped(t.raw_data()));
    };
    check("f64", DType::kFloat64, {-2, -0.5, 1, 2.5});
    check("f16", DType::kFloat16, {0.5, -1.25, 1024, std::ldexp(1.0, -14)});
    check("bf16", DType::kBFloat16, {1.0, -2.5, 3.140625, 256});
    check("i8", DType::kInt8, {-128, -1, 0, 127});
    check("i16", DType::kInt16, {-32768, 0, 32767});
    check("i32", DType::kInt32, {-2147483648.0, 7, 2147483647.0});
    check("u8", DType::kUInt8, {0, 1, 255});
    check("b", DType::kBool, {1, 0, 1});
    const Tensor& i64 = attr(m, "i64").to_tensor();
    CHECK(i64.dtype() == DType::kInt64);
    CHECK(i64.to_ints() == std::vector<int64_t>{INT64_MIN, 42, INT64_MAX});

    const Tensor& w = attr(m, "w").to_tensor();  // arange(6).reshape(2, 3) * 0.25 - 0.5
    CHECK(w.sizes() == Shape{2, 3});
    CHECK(w.to_doubles() == std::vector<double>{-0.5, -0.25, 0, 0.25, 0.5, 0.75});

    // a_tail = a[1:]: the same storage at offset 1.
    const Tensor& full = attr(m, "a").to_tensor();
    const Tensor& tail = attr(m, "a_tail").to_tensor();
    CHECK(tail.shares_storage_with(full));
    CHECK(tail.offset() == 1);
    CHECK(tail.to_doubles() == std::vector<double>{1, 2, 3, 4});
    // tr = arange(12).reshape(3, 4).t(): strides (1, 4), tr[i][j] = 4 * j + i.
    const Tensor& tr = attr(m, "tr").to_tensor();
    CHECK(tr.sizes() == Shape{4, 3});
    CHECK(tr.strides() == Shape{1, 4});
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 3; ++j) CHECK(tr.get_double(i * 3 + j) == 4 * j + i);
    // big_view = big[1:, ::2] of arange(20).reshape(4, 5): sizes (3, 3), strides (5, 2), offset 5.
    const Tensor& big = attr(m, "big").to_tensor();
    const Tensor& view = attr(m, "big_view").to_tensor();
    CHECK(view.shares_storage_with(big));
    CHECK(view.sizes() == Shape{3, 3});
    CHECK(view.strides() == Shape{5, 2});
    CHECK(view.offset() == 5);
    CHECK(view.to_ints() == std::vector<int64_t>{5, 7, 9, 10, 12, 14, 15, 17, 19});
    // One Storage per record: w, f64, f16, bf16, i8, i16, i32, i64, u8, b, a, tr, big, lt[0], sub.scale.
    CHECK(a.storages.size() == 15);

    CHECK(attr(m, "i").to_int() == 7);
    CHECK(attr(m, "f").to_double() == 2.5);
    CHECK(attr(m, "flag").is_bool());
    CHECK(attr(m, "s").to_string() == "hello");
    CHECK(attr(m, "l").to_int_list() == std::vector<int64_t>{1, 2, 3});
    CHECK(attr(m, "lf").to_double_list() == std::vector<double>{1.5, -2.0});
    const IValueList& lb = attr(m, "lb").to_list();
    REQUIRE(lb.size() == 2);
    CHECK((lb[0].is_bool() && lb[0].to_bool() && !lb[1].to_bool()));
    const IValueList& ls = attr(m, "ls").to_list();
    REQUIRE(ls.size() == 2);
    CHECK(ls[1].to_string() == "bc");
    const IValueList& lt = attr(m, "lt").to_list();
    REQUIRE(lt.size() == 1);
    CHECK(lt[0].to_tensor().to_doubles() == std::vector<double>{1, 1});
    const IValueList& t = attr(m, "t").to_tuple();
    REQUIRE(t.size() == 2);
    CHECK(t[0].to_int() == 4);
    CHECK(t[1].to_string() == "x");
    const auto& d = attr(m, "d").to_dict().items;
    REQUIRE(d.size() == 2);
    CHECK(d[0].first.to_string() == "a");
    CHECK(d[0].second.to_int() == 1);
    CHECK(d[1].first.to_string() == "b");
    CHECK(d[1].second.to_int() == 2);
    CHECK(attr(m, "n").is_none());
    CHECK(attr(m, "dev").to_device().name == "cpu");
    const IValue& sub = attr(m, "sub");
    CHECK(sub.to_object()->type_name == "__torch__.Sub");
    CHECK(attr(sub, "scale").to_tensor().to_doubles() == std::vector<double>{2, -3});
  }
}

TEST_CASE("archive: constants.pkl", "[archive]") {
  for (const char* name : {"consts.pt", "consts_t2.pt"}) {
    INFO(name);
    Archive a = load_archive(fixture(name));
    REQUIRE(a.constants.size() == 2);
    const Tensor& c0 = a.constants[0].to_tensor();
    CHECK(c0.dtype() == DType::kFloat32);
    CHECK(c0.to_doubles() == std::vector<double>{1, 2});
    const Tensor& c1 = a.constants[1].to_tensor();
    CHECK(c1.dtype() == DType::kInt64);
    CHECK(c1.to_ints() == std::vector<int64_t>{3});
    CHECK(a.storages.count("constants/0") == 1);
    CHECK(a.storages.count("constants/1") == 1);
    CHECK_THAT(*a.find_code("code/__torch__.py"), Contains("CONSTANTS.c0") && Contains("CONSTANTS.c1"));
  }
}

TEST_CASE("archive: writes to weights stay private (copy-on-write mapping)", "[archive]") {
  fs::path copy = fs::temp_directory_path() / "convoy_test_cow.pt";
  fs::copy_file(fixture("jit.pt"), copy, fs::copy_options::overwrite_existing);
  std::vector<uint8_t> before = file_bytes(copy);
  {
    Archive a = load_archive(copy.string());
    Tensor w = attr(attr(a.module, "linear"), "weight").to_tensor();
    for (int64_t i = 0; i < w.numel(); ++i) w.set_double(i, 42.0);  // an in-place op on a weight
    CHECK(w.get_double(7) == 42.0);
  }
  CHECK(file_bytes(copy) == before);
  Archive again = load_archive(copy.string());
  CHECK(static_cast<float>(attr(attr(again.module, "linear"), "weight").to_tensor().get_double(0)) ==
        -0.003743410110473633f);
  fs::remove(copy);
}

TEST_CASE("archive: bad archives are refused with the file and the reason", "[archive]") {
  struct Case {
    const char* file;
    const char* message;
  };
  for (const Case& c : {
           Case{"bad_no_data_pkl.pt", ": no 'jit/data.pkl'"},
           Case{"bad_os_system.pt", ": jit/data.pkl: global 'os.system' is not allowed"},
           Case{"bad_short_storage.pt",
                "record 'jit/data/0' has 16 bytes, too few for a storage of 8 float32"},
           Case{"bad_stride.pt",
                "tensor in 'jit/data/0' with size [2, 4], stride [5, 1] and offset 0 reaches past "
                "its storage of 8 float32 elements"},
           Case{"bad_truncated_pickle.pt", ": jit/data.pkl: truncated pickle"},
           Case{"bad_two_tops.pt", ": records in several top folders ('jit/' and 'other/')"},
       }) {
    INFO(c.file);
    std::string path = fixture(c.file).string();
    std::string msg = load_error(path);
    CHECK_THAT(msg, Contains(path + ": ") && Contains(c.message));
  }
}

TEST_CASE("archive: not a zip, empty, truncated", "[archive]") {
  fs::path dir = fs::temp_directory_path() / "convoy_test_archive_bad";
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    fs::path p = dir / name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return p.string();
  };
  std::string empty = write("empty.pt", {});
  CHECK_THAT(load_error(empty), Contains(empty + ": not a zip archive (the file is empty)"));
  std::vector<uint8_t> text(300, 'a');
  std::string not_zip = write("text.pt", text);
  CHECK_THAT(load_error(not_zip),
             Contains(not_zip + ": not a zip archive (no end-of-central-directory record)"));
  std::vector<uint8_t> seed = file_bytes(fixture("jit.pt"));
  for (size_t cut : {seed.size() / 2, seed.size() / 3, seed.size() - 1, seed.size() - 30, size_t{1}}) {
    std::string p =
        write("cut.pt", std::vector<uint8_t>(seed.begin(), seed.begin() + static_cast<ptrdiff_t>(cut)));
    CHECK_THAT(load_error(p), Contains(p + ": "));
  }
  fs::remove_all(dir);
}

TEST_CASE("archive: synthetic archives reach every check", "[archive]") {
  const std::string w = tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1});
  const std::pair<std::string, std::string> w_data = {"m/data/0", floats({1, 2, 3, 4})};

  // Well-formed, with the 7-argument form (metadata) and records that are not 64-byte aligned.
  Archive ok =
      load_zip(synthetic(module_pickle({{"w", tensor("FloatStorage", "0", 4, 1, {3}, {1}, "}")}}), {w_data}));
  CHECK(attr(ok.module, "w").to_tensor().to_doubles() == std::vector<double>{2, 3, 4});
  CHECK(ok.top_folder == "m");

  // torch 2.x keeps the version in .data/version, and reads it first.
  Archive v = load_zip({{"m/data.pkl", module_pickle({})}, {"m/version", "3\n"}, {"m/.data/version", "7\n"}});
  CHECK(v.version == 7);

  auto expect = [](const std::vector<std::pair<std::string, std::string>>& records,
                   const std::string& message) {
    INFO(message);
    CHECK_THAT(synthetic_error(records), Contains("synthetic.pt: ") && Contains(message));
  };
  expect({{"m/data.pkl", module_pickle({})}}, "no 'm/version' record");
  expect({{"m/data.pkl", module_pickle({})}, {"m/version", "three"}},
         "'m/version' holds 'three', not a format version");
  expect({{"m/data.pkl", module_pickle({})}, {"m/version", "11\n"}}, "format version 11 is newer");
  expect(synthetic(module_pickle({}), {{"m/byteorder", "big"}}), "only little-endian archives are supported");
  expect(synthetic("\x80\x02]."), "m/data.pkl holds a List, not a scripted module");
  expect(synthetic(module_pickle({}), {{"m/constants.pkl", "\x80\x02]."}}), "constants.pkl holds a List");
  expect({{"data.pkl", module_pickle({})}}, "record 'data.pkl' is not inside a folder");
  expect(synthetic(module_pickle({{"w", w}})), "tensor data 'm/data/0' is missing");
  expect(synthetic(module_pickle({{"w", tensor("FloatStorage", "0", 4, 0, {2, 2}, {-1, 1})}}), {w_data}),
         "negative size or stride");
  expect(
      synthetic(module_pickle({{"w", tensor("FloatStorage", "0", 4, int64_t{1} << 62, {1}, {1})}}), {w_data}),
      "storage offset 4611686018427387904 is outside its storage of 4 elements");
  expect(
      synthetic(module_pickle({{"w", tensor("FloatStorage", "0", 4, 0, {int64_t{1} << 20, int64_t{1} << 20},
                                            {int64_t{1} << 50, 1})}}),
                {w_data}),
      "reaches past its storage");
  expect(synthetic(module_pickle({{"w", tensor("FloatStorage", "0", 4, 0, {2, 2}, {2})}}), {w_data}),
         "differ in rank");
  expect(synthetic(module_pickle({{"w", tensor("FloatStorage", "0", 4, 0,
                                               {int64_t{1} << 40, int64_t{1} << 40, 0}, {0, 0, 1})}}),
                   {w_data}),
         "has more elements than fit in 64 bits");
  expect(synthetic(module_pickle({{"w", w}, {"v", tensor("LongStorage", "0", 2, 0, {2}, {1})}}), {w_data}),
         "storage 'm/data/0' is named as 2 int64 elements after 4 float32");
  expect(synthetic(module_pickle({{"w", tensor("ComplexFloatStorage", "0", 2, 0, {2}, {1})}}), {w_data}),
         "ComplexFloatStorage");
  expect(synthetic(module_pickle({{"q", "ctorch._utils\n_rebuild_qtensor\n)R"}})),
         "global 'torch._utils._rebuild_qtensor' is not allowed");
  expect(
      synthetic(module_pickle({{"c", "c__torch__.torch.classes.quantized\nConv2dPackedParamsBase\n)\x81"}})),
      "global '__torch__.torch.classes.quantized.Conv2dPackedParamsBase' is not allowed");
  expect(synthetic(module_pickle({{"x", "ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x02tR"}})),
         "torch._utils._rebuild_tensor_v2 takes from 6 to 7 arguments, got 2");
  expect(synthetic(module_pickle({{"x", "ctorch\ndevice\n(K\x01tR"}})),
         "torch.device type must be a str, not a int");
  expect(synthetic(module_pickle({{"x", "ctorch\nFloatStorage\n)R"}})),
         "'torch.FloatStorage' cannot be called");
  // A persistent id that is not ('storage', class, key, location, numel).
  expect(synthetic(module_pickle({{"x", "(" + U("storage") + "tQ"}})), "a persistent id has 1 fields");
  // Attribute dicts must have string keys; cycles between modules are refused.
  expect(synthetic("\x80\x02"
                   "c__torch__\nM\n)\x81}(K\x01K\x02ub."),
         "an attribute name of __torch__.M is a int");
  const std::string nul(1, '\0');
  expect(synthetic("\x80\x02"
                   "c__torch__\nM\n)\x81q" +
                   nul + "}(" + U("self") + "h" + nul + "ub."),
         "contains itself");
}

TEST_CASE("archive: names from the file are escaped in error messages", "[archive][printable]") {
  // A corrupted archive's top folder holds an escape sequence and a byte that is not UTF-8.
  const std::string top = "m\x1b[2J\xff";
  auto raw_free = [](const std::string& message) {
    for (unsigned char c : message)
      if (c < 0x20 || c == 0x7f || c == 0xff) return false;
    return true;
  };
  std::string missing = synthetic_error({{top + "/data.pkl", module_pickle({})}});
  CHECK_THAT(missing, Contains("synthetic.pt: no 'm\\x1b[2J\\xff/version' record"));
  CHECK(raw_free(missing));
  std::string two_tops =
      synthetic_error({{top + "/data.pkl", module_pickle({})}, {"other\x07/version", "3"}});
  CHECK_THAT(two_tops, Contains("records in several top folders ('m\\x1b[2J\\xff/' and 'other\\x07/')"));
  CHECK(raw_free(two_tops));
  std::string loose = synthetic_error({{"data\x1b\xff.pkl", module_pickle({})}});
  CHECK_THAT(loose, Contains("record 'data\\x1b\\xff.pkl' is not inside a folder"));
  CHECK(raw_free(loose));
  // A class name from the pickle, too.
  std::string global =
      synthetic_error(synthetic(module_pickle({{"q", "ctorch._utils\n_rebuild\x1b\xff\n)R"}})));
  CHECK_THAT(global, Contains("global 'torch._utils._rebuild\\x1b\\xff' is not allowed"));
  CHECK(raw_free(global));
}
