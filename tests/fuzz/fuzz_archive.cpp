// libFuzzer target for the TorchScript loader. Two kinds of input:
//   - starting with "PK": a whole archive file (zip container, pickles, tensor records);
//   - anything else: a data.pkl, wrapped here into a minimal archive whose data/0 .. data/3
//     records hold 64 bytes each, so that mutations reach the unpickler and tensor rebuilding
//     directly instead of mostly breaking the zip around them.
// Any convoy::Error is a correct refusal; a crash, a sanitizer report, a leak or a timeout is a bug.
// The seed corpus is tests/fuzz/corpus/: small real archives and data.pkl files taken from them.
//
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCONVOY_FUZZ=ON -DCONVOY_BUILD_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_archive
//   build-fuzz/bin/fuzz_archive -dict=tests/fuzz/archive.dict -max_total_time=600 -jobs=2 -workers=2 \
//       CORPUS_DIR tests/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/torchscript/archive.h"

namespace {

// Reads every element of every tensor reachable from `v`: if the loader let a view reach outside
// its storage, AddressSanitizer reports it here.
double touch(const convoy::IValue& v, int depth) {
  using namespace convoy;
  if (depth > 2000) return 0;  // the unpickler refuses deeper results anyway
  double sum = 0;
  if (v.is_tensor()) {
    const Tensor& t = std::get<Tensor>(v.v);
    int64_t n = t.numel();
    for (int64_t i = 0; i < n && i < (1 << 16); ++i) sum += t.get_double(i);
  } else if (v.is_list() || v.is_tuple()) {
    for (const IValue& x : v.to_list_or_tuple()) sum += touch(x, depth + 1);
  } else if (v.is_dict()) {
    for (const auto& [k, x] : v.to_dict().items) sum += touch(k, depth + 1) + touch(x, depth + 1);
  } else if (v.is_object()) {
    for (const auto& [k, x] : v.to_object()->attrs) sum += touch(x, depth + 1);
  }
  return sum;
}

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(i < 8 ? static_cast<uint8_t>(v >> (8 * i)) : 0);
}

// A stored-only zip of `records` (CRCs are left zero: fuzzing builds do not check them).
std::vector<uint8_t> make_zip(const std::vector<std::pair<std::string, std::string>>& records) {
  std::vector<uint8_t> out, central;
  for (const auto& [name, data] : records) {
    uint64_t offset = out.size();
    put(out, 0x04034b50, 4);
    put(out, 20, 2);
    put(out, 0, 2 + 2 + 4 + 4);  // flags, method, time/date, crc
    put(out, data.size(), 4);
    put(out, data.size(), 4);
    put(out, name.size(), 2);
    put(out, 0, 2);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), data.begin(), data.end());
    put(central, 0x02014b50, 4);
    put(central, 20, 2 + 2);
    put(central, 0, 2 + 2 + 4 + 4);
    put(central, data.size(), 4);
    put(central, data.size(), 4);
    put(central, name.size(), 2);
    put(central, 0, 2 + 2 + 2 + 2 + 4);
    put(central, offset, 4);
    central.insert(central.end(), name.begin(), name.end());
  }
  uint64_t cd_offset = out.size();
  out.insert(out.end(), central.begin(), central.end());
  put(out, 0x06054b50, 4);
  put(out, 0, 4);
  put(out, records.size(), 2);
  put(out, records.size(), 2);
  put(out, central.size(), 4);
  put(out, cd_offset, 4);
  put(out, 0, 2);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<std::vector<uint8_t>> buffer;
  if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
    // A writable copy: archives are mapped copy-on-write, and tensors may be written in place.
    buffer = std::make_shared<std::vector<uint8_t>>(data, data + size);
  } else {
    std::string pickle(reinterpret_cast<const char*>(data), size);
    std::string storage(64, '\x3f');
    buffer = std::make_shared<std::vector<uint8_t>>(make_zip({{"f/data.pkl", pickle},
                                                              {"f/version", "3\n"},
                                                              {"f/data/0", storage},
                                                              {"f/data/1", storage},
                                                              {"f/data/2", storage},
                                                              {"f/data/3", storage}}));
  }
  try {
    convoy::Archive a = convoy::load_archive(
        convoy::ZipReader::from_memory("fuzz.pt", buffer, buffer->data(), buffer->size()));
    volatile double sink = touch(a.module, 0);
    for (const auto& c : a.constants) sink = sink + touch(c, 0);
    for (const auto& [path, text] : a.code) sink = sink + static_cast<double>(text.size());
    (void)sink;
  } catch (const convoy::Error&) {
    // Refused with a message: the expected outcome for almost every mutated input.
  }
  return 0;
}
