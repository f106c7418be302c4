// Compiled OpenCL programs, built once per process and cached on disk across processes.
//
// A program is keyed by SHA-256 of (source, build options, device name, driver version, platform
// version): a change in any of them builds again. Binaries live in default_kernel_cache_dir(), one file
// per key, written to a temporary name and renamed so a reader never sees half a file. A file is
// validated before use (magic, length, checksum of the binary, and the driver accepting it); anything
// wrong is rebuilt from source and rewritten, never trusted.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "opencl/cl_check.h"

namespace convoy::opencl {

class Device;

// Process-wide counts of expensive OpenCL work, for tests that check a warm plan does none of it.
struct Counters {
  std::atomic<uint64_t> programs_built{0};   // clBuildProgram from source
  std::atomic<uint64_t> programs_loaded{0};  // binaries loaded from the disk cache
  std::atomic<uint64_t> kernels_created{0};
  std::atomic<uint64_t> buffers_created{0};

  struct Snapshot {
    uint64_t programs_built, programs_loaded, kernels_created, buffers_created;
  };
  Snapshot snapshot() const {
    return {programs_built.load(), programs_loaded.load(), kernels_created.load(), buffers_created.load()};
  }
};
Counters& counters();

// $CONVOY_CACHE_DIR/kernels, else $XDG_CACHE_HOME/convoy/kernels, else ~/.cache/convoy/kernels.
std::filesystem::path default_kernel_cache_dir();

class ProgramCache {
 public:
  // `identity` is DeviceInfo::cache_identity(); `dir` empty means default_kernel_cache_dir().
  ProgramCache(cl_context context, cl_device_id device, std::string identity, std::filesystem::path dir = {});
  ~ProgramCache();
  ProgramCache(const ProgramCache&) = delete;
  ProgramCache& operator=(const ProgramCache&) = delete;

  // The program for (source, options), built or loaded at most once per process and owned by the
  // cache. `name` names the source in errors (e.g. "elementwise.cl"); a build failure throws with
  // the options and the build log.
  cl_program get(std::string_view name, std::string_view source, const std::string& options);
  // An embedded kernel file (opencl/kernels/<file>).
  cl_program get_embedded(std::string_view kernel_file, const std::string& options);
  // clCreateKernel, counted; the caller releases the kernel.
  cl_kernel create_kernel(cl_program program, const std::string& kernel_name, std::string_view context = {});

  const std::filesystem::path& dir() const { return dir_; }
  // The file a (source, options) pair is cached in.
  std::filesystem::path path_for(std::string_view source, const std::string& options) const;

 private:
  cl_program build_from_source(std::string_view name, std::string_view source, const std::string& options);
  cl_program load_binary(const std::filesystem::path& path);
  void store_binary(cl_program program, const std::filesystem::path& path);

  cl_context context_;
  cl_device_id device_;
  std::string identity_;
  std::filesystem::path dir_;
  std::mutex mutex_;
  std::map<std::string, cl_program> programs_;  // by key digest
};

// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace convoy::opencl
