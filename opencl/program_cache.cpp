#include "opencl/program_cache.h"

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "opencl/embedded_kernels.h"

namespace convoy::opencl {

namespace {

// ---------------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4). A cache key must not collide by accident across sources and options, and a
// checksum must catch a torn or corrupted file; a 64-bit hash is too weak for the former.

constexpr std::array<uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void sha256_block(std::array<uint32_t, 8>& h, const uint8_t* block) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) |
           (uint32_t{block[4 * i + 2]} << 8) | uint32_t{block[4 * i + 3]};
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = k + s1 + ch + kRoundConstants[static_cast<size_t>(i)] + w[i];
    uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = s0 + maj;
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

std::array<uint8_t, 32> sha256(std::string_view data) {
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  size_t full = n / 64;
  for (size_t i = 0; i < full; ++i) sha256_block(h, p + 64 * i);
  uint8_t tail[128] = {};
  size_t rest = n - 64 * full;
  std::memcpy(tail, p + 64 * full, rest);
  tail[rest] = 0x80;
  size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  for (size_t off = 0; off < tail_len; off += 64) sha256_block(h, tail + off);
  std::array<uint8_t, 32> out;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(h[i] >> (24 - 8 * j));
  return out;
}

std::string hex(const uint8_t* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

// Cache file layout: magic line, key line (the digest the file is named after), binary length
// (8 bytes little endian), SHA-256 of the binary (32 bytes), the binary.
constexpr std::string_view kMagic = "CONVOY-CL-BINARY 1\n";

std::string key_text(std::string_view source, const std::string& options, const std::string& identity) {
  // Lengths first, so no two different triples serialise to the same text.
  return str_cat(source.size(), ":", options.size(), ":", identity.size(), "\n", source, options, identity);
}

std::string build_log(cl_program program, cl_device_id device) {
  size_t size = 0;
  if (clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size) != CL_SUCCESS)
    return "";
  std::string log(size, '\0');
  clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, size, log.data(), nullptr);
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  return log;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  auto digest = sha256(data);
  return hex(digest.data(), digest.size());
}

Counters& counters() {
  static Counters instance;
  return instance;
}

std::filesystem::path default_kernel_cache_dir() {
  if (const char* dir = std::getenv("CONVOY_CACHE_DIR"); dir && *dir)
    return std::filesystem::path(dir) / "kernels";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::filesystem::path(xdg) / "convoy" / "kernels";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".cache" / "convoy" / "kernels";
  return std::filesystem::temp_directory_path() / "convoy-cache" / "kernels";
}

ProgramCache::ProgramCache(cl_context context, cl_device_id device, std::string identity,
                           std::filesystem::path dir)
    : context_(context),
      device_(device),
      identity_(std::move(identity)),
      dir_(dir.empty() ? default_kernel_cache_dir() : std::move(dir)) {}

ProgramCache::~ProgramCache() {
  for (auto& [key, program] : programs_) clReleaseProgram(program);
}

std::filesystem::path ProgramCache::path_for(std::string_view source, const std::string& options) const {
  return dir_ / (sha256_hex(key_text(source, options, identity_)) + ".bin");
}

cl_program ProgramCache::get_embedded(std::string_view kernel_file, const std::string& options) {
  return get(kernel_file, kernel_source(kernel_file), options);
}

cl_program ProgramCache::get(std::string_view name, std::string_view source, const std::string& options) {
  const std::string key = sha256_hex(key_text(source, options, identity_));
  std::lock_guard lock(mutex_);
  if (auto it = programs_.find(key); it != programs_.end()) return it->second;
  const std::filesystem::path path = dir_ / (key + ".bin");
  cl_program program = load_binary(path);
  if (program) {
    counters().programs_loaded++;
  } else {
    program = build_from_source(name, source, options);
    counters().programs_built++;
    try {
      store_binary(program, path);
    } catch (const Error&) {
      // A read-only or full cache folder costs the next process a rebuild, nothing more.
    }
  }
  programs_.emplace(key, program);
  return program;
}

cl_kernel ProgramCache::create_kernel(cl_program program, const std::string& kernel_name,
                                      std::string_view context) {
  cl_int status = CL_SUCCESS;
  cl_kernel kernel = clCreateKernel(program, kernel_name.c_str(), &status);
  cl_check(status, "clCreateKernel", context.empty() ? kernel_name : str_cat(kernel_name, ", ", context));
  counters().kernels_created++;
  return kernel;
}

cl_program ProgramCache::build_from_source(std::string_view name, std::string_view source,
                                           const std::string& options) {
  const char* text = source.data();
  size_t length = source.size();
  cl_int status = CL_SUCCESS;
  cl_program program = clCreateProgramWithSource(context_, 1, &text, &length, &status);
  cl_check(status, "clCreateProgramWithSource", name);
  status = clBuildProgram(program, 1, &device_, options.c_str(), nullptr, nullptr);
  if (status != CL_SUCCESS) {
    std::string log = build_log(program, device_);
    clReleaseProgram(program);
    fail(status == CL_BUILD_PROGRAM_FAILURE || status == CL_INVALID_BUILD_OPTIONS ? ErrorKind::kInternal
                                                                                  : cl_error_kind(status),
         "OpenCL clBuildProgram failed for ", name, " with options '", options, "': ", cl_error_name(status),
         "\nbuild log:\n", log);
  }
  return program;
}

cl_program ProgramCache::load_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Validate every field before the driver sees a byte: a torn write or a foreign file is rebuilt.
  const std::string key = path.stem().string();
  const size_t header = kMagic.size() + key.size() + 1 + 8 + 32;
  if (file.size() < header || file.compare(0, kMagic.size(), kMagic) != 0) return nullptr;
  if (file.compare(kMagic.size(), key.size(), key) != 0 || file[kMagic.size() + key.size()] != '\n')
    return nullptr;
  size_t pos = kMagic.size() + key.size() + 1;
  uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= uint64_t{static_cast<uint8_t>(file[pos + i])} << (8 * i);
  pos += 8;
  if (length == 0 || length != file.size() - header) return nullptr;
  std::string_view binary(file.data() + header, length);
  auto digest = sha256(binary);
  if (std::memcmp(digest.data(), file.data() + pos, 32) != 0) return nullptr;

  const auto* bytes = reinterpret_cast<const unsigned char*>(binary.data());
  size_t size = binary.size();
  cl_int binary_status = CL_SUCCESS;
  cl_int status = CL_SUCCESS;
  cl_program program =
      clCreateProgramWithBinary(context_, 1, &device_, &size, &bytes, &binary_status, &status);
  if (status != CL_SUCCESS || binary_status != CL_SUCCESS) {
    if (program) clReleaseProgram(program);
    return nullptr;
  }
  if (clBuildProgram(program, 1, &device_, nullptr, nullptr, nullptr) != CL_SUCCESS) {
    clReleaseProgram(program);
    return nullptr;
  }
  return program;
}

void ProgramCache::store_binary(cl_program program, const std::filesystem::path& path) {
  size_t size = 0;
  cl_check(clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, nullptr),
           "clGetProgramInfo");
  if (size == 0) return;  // some drivers keep no binary; nothing to cache
  std::vector<unsigned char> binary(size);
  unsigned char* ptr = binary.data();
  cl_check(clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof(ptr), &ptr, nullptr), "clGetProgramInfo");
  const std::string key = path.stem().string();
  std::string file;
  file.reserve(kMagic.size() + key.size() + 1 + 8 + 32 + size);
  file += kMagic;
  file += key;
  file += '\n';
  for (int i = 0; i < 8; ++i) file += static_cast<char>((static_cast<uint64_t>(size) >> (8 * i)) & 0xff);
  std::string_view view(reinterpret_cast<const char*>(binary.data()), size);
  auto digest = sha256(view);
  file.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  file.append(view);

  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  CONVOY_CHECK_KIND(kIo, !ec, "cannot create the kernel cache folder ", dir_.string(), ": ", ec.message());
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path temp = str_cat(path.string(), ".tmp.", ::getpid(), ".", counter++);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
    out.flush();
    if (!out.good()) {
      std::filesystem::remove(temp, ec);
      fail(ErrorKind::kIo, "cannot write ", temp.string());
    }
  }
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    fail(ErrorKind::kIo, "cannot rename ", temp.string(), " to ", path.string());
  }
}

}  // namespace convoy::opencl
