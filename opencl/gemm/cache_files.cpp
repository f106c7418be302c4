// Where the GEMM code keeps what it measured: the cache folder shared with the program cache, one
// set of files per device and driver, each written atomically.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "opencl/gemm/gemm.h"
#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::opencl::gemm {
namespace {

std::string device_string(cl_device_id device, cl_device_info what) {
  size_t size = 0;
  cl_check(clGetDeviceInfo(device, what, 0, nullptr, &size), "clGetDeviceInfo");
  std::string text(size, '\0');
  cl_check(clGetDeviceInfo(device, what, size, text.data(), nullptr), "clGetDeviceInfo");
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

// FNV-1a: stable across runs and builds (std::hash is not), so file names survive a rebuild.
std::string hex_hash(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::filesystem::path per_device(const std::filesystem::path& cache_dir, std::string_view stem,
                                 cl_device_id device, std::string_view extension) {
  return cache_dir / str_cat("gemm-", stem, "-", hex_hash(device_key(device)), extension);
}

}  // namespace

std::filesystem::path default_cache_dir() {
  if (const char* dir = std::getenv("CONVOY_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::filesystem::path(xdg) / "convoy";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".cache" / "convoy";
  return std::filesystem::temp_directory_path() / "convoy-cache";
}

std::string device_key(cl_device_id device) {
  cl_platform_id platform = nullptr;
  cl_check(clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof(platform), &platform, nullptr),
           "clGetDeviceInfo");
  size_t size = 0;
  cl_check(clGetPlatformInfo(platform, CL_PLATFORM_NAME, 0, nullptr, &size), "clGetPlatformInfo");
  std::string platform_name(size, '\0');
  cl_check(clGetPlatformInfo(platform, CL_PLATFORM_NAME, size, platform_name.data(), nullptr),
           "clGetPlatformInfo");
  while (!platform_name.empty() && platform_name.back() == '\0') platform_name.pop_back();
  return str_cat(device_string(device, CL_DEVICE_NAME), " | ", device_string(device, CL_DRIVER_VERSION),
                 " | ", platform_name);
}

std::filesystem::path clblast_parameters_path(const std::filesystem::path& cache_dir, cl_device_id device) {
  return per_device(cache_dir, "clblast-params", device, ".tsv");
}
std::filesystem::path tiled_config_path(const std::filesystem::path& cache_dir, cl_device_id device) {
  return per_device(cache_dir, "tiled-config", device, ".txt");
}
std::filesystem::path choices_path(const std::filesystem::path& cache_dir, cl_device_id device) {
  return per_device(cache_dir, "choices", device, ".tsv");
}

void write_file_atomically(const std::filesystem::path& path, const std::string& contents) {
  static std::atomic<unsigned> counter{0};
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  CONVOY_CHECK_KIND(kIo, !ec, "cannot create cache folder ", path.parent_path().string(), ": ", ec.message());
  const std::filesystem::path temp = str_cat(path.string(), ".tmp.", ::getpid(), ".", counter++);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << contents;
    out.flush();
    CONVOY_CHECK_KIND(kIo, out.good(), "cannot write ", temp.string());
  }
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp);
    fail(ErrorKind::kIo, "cannot rename ", temp.string(), " to ", path.string(), ": ", ec.message());
  }
}

bool read_file(const std::filesystem::path& path, std::string& contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  contents = text.str();
  return true;
}

}  // namespace convoy::opencl::gemm
