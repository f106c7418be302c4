// The program cache (opencl/program_cache.h): SHA-256 keys, programs built once per process, binaries
// reused across cache objects (as a second process would), corrupt or foreign cache files rebuilt, build
// failures reported with their log; and the kernel files embedded at build time.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "opencl/device.h"
#include "opencl/embedded_kernels.h"
#include "opencl/program_cache.h"
#include "runtime/error.h"

using namespace convoy;
using namespace convoy::opencl;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test, so a test never loads what another built.
fs::path fresh_dir(const std::string& name) {
  std::random_device rd;
  fs::path dir = fs::temp_directory_path() / ("convoy-program-cache-" + name + "-" + std::to_string(rd()));
  fs::remove_all(dir);
  return dir;
}

// Each test source differs in a constant, so its key is new even if a previous run left files around.
std::string test_source(int variant) {
  return "__kernel void scale(__global float* x, float k) { x[get_global_id(0)] *= k + " +
         std::to_string(variant) + ".0f; }\n";
}

// Runs scale() on a few values, so a loaded program is shown to work, not only to load.
void check_runs(Device& device, cl_program program, ProgramCache& cache, float expected_factor) {
  cl_kernel kernel = cache.create_kernel(program, "scale");
  float values[3] = {1, 2, 3};
  cl_mem buffer =
      device.create_buffer(sizeof(values), "values", CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, values);
  float k = 2.0f;
  REQUIRE(clSetKernelArg(kernel, 0, sizeof(cl_mem), &buffer) == CL_SUCCESS);
  REQUIRE(clSetKernelArg(kernel, 1, sizeof(float), &k) == CL_SUCCESS);
  size_t global = 3;
  REQUIRE(clEnqueueNDRangeKernel(device.queue(), kernel, 1, nullptr, &global, nullptr, 0, nullptr, nullptr) ==
          CL_SUCCESS);
  REQUIRE(clEnqueueReadBuffer(device.queue(), buffer, CL_TRUE, 0, sizeof(values), values, 0, nullptr,
                              nullptr) == CL_SUCCESS);
  CHECK(values[2] == Approx(3 * expected_factor));
  clReleaseMemObject(buffer);
  clReleaseKernel(kernel);
}

}  // namespace

TEST_CASE("SHA-256 matches the FIPS 180-2 test vectors", "[opencl]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // 64 and 119 bytes: the padding spills into a second block at different points.
  CHECK(sha256_hex(std::string(64, 'a')) ==
        "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("programs are built once per process and loaded from disk by a second cache", "[opencl]") {
  std::unique_ptr<Device> device = Device::open();
  const DeviceInfo& info = device->info();
  fs::path dir = fresh_dir("reuse");
  const std::string source = test_source(1);

  auto before = counters().snapshot();
  {
    ProgramCache cache(device->context(), device->id(), info.cache_identity(), dir);
    cl_program p1 = cache.get("scale.cl", source, "-DUNUSED=1");
    cl_program p2 = cache.get("scale.cl", source, "-DUNUSED=1");
    CHECK(p1 == p2);
    CHECK(counters().programs_built == before.programs_built + 1);
    CHECK(counters().programs_loaded == before.programs_loaded);
    CHECK(fs::exists(cache.path_for(source, "-DUNUSED=1")));
    check_runs(*device, p1, cache, 3.0f);
    // Other build options are another program.
    cache.get("scale.cl", source, "-DUNUSED=2");
    CHECK(counters().programs_built == before.programs_built + 2);
  }
  {
    // A second cache object on the same folder (what the next process does) builds nothing.
    ProgramCache cache(device->context(), device->id(), info.cache_identity(), dir);
    cl_program p = cache.get("scale.cl", source, "-DUNUSED=1");
    CHECK(counters().programs_built == before.programs_built + 2);
    CHECK(counters().programs_loaded == before.programs_loaded + 1);
    check_runs(*device, p, cache, 3.0f);
  }
  {
    // Another driver or device (another identity) never reuses the binaries.
    ProgramCache cache(device->context(), device->id(), info.cache_identity() + " (other driver)", dir);
    cache.get("scale.cl", source, "-DUNUSED=1");
    CHECK(counters().programs_built == before.programs_built + 3);
  }
  fs::remove_all(dir);
}

TEST_CASE("a corrupt or truncated cache file is rebuilt, never trusted", "[opencl]") {
  std::unique_ptr<Device> device = Device::open();
  fs::path dir = fresh_dir("corrupt");
  const std::string source = test_source(2);
  fs::path file;
  {
    ProgramCache cache(device->context(), device->id(), device->info().cache_identity(), dir);
    cache.get("scale.cl", source, "");
    file = cache.path_for(source, "");
  }
  REQUIRE(fs::exists(file));
  const auto size = fs::file_size(file);
  REQUIRE(size > 100);

  auto damage_and_reload = [&](const std::function<void()>& damage) {
    damage();
    auto before = counters().snapshot();
    ProgramCache cache(device->context(), device->id(), device->info().cache_identity(), dir);
    cl_program p = cache.get("scale.cl", source, "");
    CHECK(counters().programs_built == before.programs_built + 1);
    CHECK(counters().programs_loaded == before.programs_loaded);
    check_runs(*device, p, cache, 4.0f);
    // The rebuilt binary replaced the bad file: the next cache loads it.
    ProgramCache again(device->context(), device->id(), device->info().cache_identity(), dir);
    again.get("scale.cl", source, "");
    CHECK(counters().programs_loaded == before.programs_loaded + 1);
  };
  SECTION("truncated") {
    damage_and_reload([&] { fs::resize_file(file, size / 2); });
  }
  SECTION("one byte of the binary flipped") {
    damage_and_reload([&] {
      std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(size - 10));
      char c = 0;
      f.read(&c, 1);
      f.seekp(static_cast<std::streamoff>(size - 10));
      c = static_cast<char>(c ^ 0x5a);
      f.write(&c, 1);
    });
  }
  SECTION("empty") {
    damage_and_reload([&] { std::ofstream(file, std::ios::trunc); });
  }
  SECTION("garbage of the right size") {
    damage_and_reload([&] { std::ofstream(file, std::ios::trunc) << std::string(size, 'x'); });
  }
  fs::remove_all(dir);
}

TEST_CASE("a build failure names the source and options and carries the build log", "[opencl]") {
  std::unique_ptr<Device> device = Device::open();
  fs::path dir = fresh_dir("failure");
  ProgramCache cache(device->context(), device->id(), device->info().cache_identity(), dir);
  try {
    cache.get("broken.cl", "__kernel void f(__global float* x) { x[0] = undefined_name; }", "-DWHY=1");
    FAIL("a broken program built");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains("broken.cl") && Contains("-DWHY=1") &&
                             Contains("CL_BUILD_PROGRAM_FAILURE") && Contains("undefined_name"));
  }
  // Nothing was cached for it.
  CHECK((!fs::exists(dir) || fs::is_empty(dir)));
  fs::remove_all(dir);
}

TEST_CASE("kernel files are embedded and each builds on its own", "[opencl]") {
  std::vector<std::string_view> files = kernel_files();
  for (const char* expected : {"copy.cl", "elementwise.cl", "reduce.cl", "softmax.cl", "norm.cl"})
    CHECK(std::find(files.begin(), files.end(), expected) != files.end());
  CHECK_THAT(std::string(kernel_source("copy.cl")), Contains("__kernel void copy_strided"));
  CHECK_THROWS_WITH(kernel_source("missing.cl"), Contains("missing.cl") && Contains("copy.cl"));
  // With no defines each file falls back to float32 defaults; elementwise.cl needs an op.
  std::unique_ptr<Device> device = Device::open();
  for (const char* file : {"copy.cl", "reduce.cl", "softmax.cl", "norm.cl"})
    CHECK_NOTHROW(device->programs().get_embedded(file, ""));
  CHECK_NOTHROW(device->programs().get_embedded("elementwise.cl", "-DOP_ADD -DNIN=2"));
  CHECK_THROWS_WITH(device->programs().get_embedded("elementwise.cl", ""), Contains("no OP_ define"));
}

TEST_CASE("the kernel cache folder follows CONVOY_CACHE_DIR, then XDG_CACHE_HOME, then HOME", "[opencl]") {
  auto saved = [](const char* name) {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto restore = [](const char* name, const std::optional<std::string>& v) {
    if (v)
      setenv(name, v->c_str(), 1);
    else
      unsetenv(name);
  };
  auto convoy = saved("CONVOY_CACHE_DIR"), xdg = saved("XDG_CACHE_HOME"), home = saved("HOME");
  setenv("CONVOY_CACHE_DIR", "/tmp/a", 1);
  setenv("XDG_CACHE_HOME", "/tmp/b", 1);
  setenv("HOME", "/tmp/c", 1);
  CHECK(default_kernel_cache_dir() == fs::path("/tmp/a/kernels"));
  unsetenv("CONVOY_CACHE_DIR");
  CHECK(default_kernel_cache_dir() == fs::path("/tmp/b/convoy/kernels"));
  unsetenv("XDG_CACHE_HOME");
  CHECK(default_kernel_cache_dir() == fs::path("/tmp/c/.cache/convoy/kernels"));
  restore("CONVOY_CACHE_DIR", convoy);
  restore("XDG_CACHE_HOME", xdg);
  restore("HOME", home);
}
