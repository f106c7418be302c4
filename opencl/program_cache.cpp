#include "opencl/program_cache.h"

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "opencl/embedded_kernels.h"
#include "runtime/sha256.h"

namespace convoy::opencl {

namespace {

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
  return hex_string(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
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
