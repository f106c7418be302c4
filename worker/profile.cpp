#include "worker/profile.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "opencl/program_cache.h"
#include "runtime/error.h"
#include "runtime/ops/registry.h"

namespace convoy::worker {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs `step` at least `min_runs` times and until `budget` seconds have passed; returns the fastest.
template <typename F>
double fastest(F step, int min_runs, double budget) {
  double best = 1e30;
  auto t0 = Clock::now();
  for (int i = 0; i < min_runs || seconds_since(t0) < budget; ++i) {
    auto t = Clock::now();
    step();
    best = std::min(best, seconds_since(t));
    if (i > 50) break;
  }
  return best;
}

struct ClBuffer {
  cl_mem mem = nullptr;
  ~ClBuffer() {
    if (mem) clReleaseMemObject(mem);
  }
};

DeviceProfile measure_opencl(opencl::Device& device) {
  DeviceProfile p;
  // GEMM: 512³ float32 through the dispatcher (it measures its providers once per shape class and
  // remembers the choice in the cache folder).
  const size_t n = 512;
  ClBuffer a, b, c;
  a.mem = device.create_buffer(n * n * 4, "profile GEMM A");
  b.mem = device.create_buffer(n * n * 4, "profile GEMM B");
  c.mem = device.create_buffer(n * n * 4, "profile GEMM C");
  std::vector<float> ones(n * n, 1.0f);
  for (cl_mem m : {a.mem, b.mem})
    opencl::cl_check(
        clEnqueueWriteBuffer(device.queue(), m, CL_TRUE, 0, n * n * 4, ones.data(), 0, nullptr, nullptr),
        "clEnqueueWriteBuffer", "worker profile");
  opencl::gemm::GemmDispatcher dispatcher(device);
  opencl::gemm::GemmArgs args = opencl::gemm::dense_gemm(
      opencl::gemm::Transpose::kNo, opencl::gemm::Transpose::kNo, n, n, n, a.mem, b.mem, c.mem);
  dispatcher.warm_up(args);
  double gemm_s = fastest(
      [&] {
        dispatcher.enqueue(args);
        device.finish("worker profile GEMM");
      },
      3, 0.15);
  p.gemm_gflops = 2.0 * n * n * n / gemm_s * 1e-9;

  // Copy: 16 MiB written to the device and read back.
  const size_t bytes = 16u << 20;
  std::vector<uint8_t> host(bytes, 1);
  ClBuffer d;
  d.mem = device.create_buffer(bytes, "profile copy buffer");
  double copy_s = fastest(
      [&] {
        opencl::cl_check(
            clEnqueueWriteBuffer(device.queue(), d.mem, CL_TRUE, 0, bytes, host.data(), 0, nullptr, nullptr),
            "clEnqueueWriteBuffer", "worker profile");
        opencl::cl_check(
            clEnqueueReadBuffer(device.queue(), d.mem, CL_TRUE, 0, bytes, host.data(), 0, nullptr, nullptr),
            "clEnqueueReadBuffer", "worker profile");
      },
      3, 0.1);
  p.copy_gbps = 2.0 * bytes / copy_s * 1e-9;
  return p;
}

DeviceProfile measure_reference(const OpRegistry& registry) {
  DeviceProfile p;
  const OpOverload* mm = registry.find("aten::mm", "");
  const int64_t n = 128;
  if (mm) {
    Tensor a = Tensor::full({n, n}, DType::kFloat32, 1.0), b = Tensor::full({n, n}, DType::kFloat32, 1.0);
    double s = fastest(
        [&] {
          IValueList args{IValue(a), IValue(b)};
          mm->kernel(args);
        },
        2, 0.15);
    p.gemm_gflops = 2.0 * n * n * n / s * 1e-9;
  }
  const size_t bytes = 16u << 20;
  std::vector<uint8_t> x(bytes, 1), y(bytes);
  double s = fastest([&] { std::memcpy(y.data(), x.data(), bytes); }, 3, 0.05);
  p.copy_gbps = bytes / s * 1e-9;
  return p;
}

}  // namespace

DeviceProfile measure_profile(opencl::Device* device, const OpRegistry& registry,
                              const std::string& identity) {
  std::string key = identity + "|" + (device ? device->info().cache_identity() : std::string("reference"));
  for (char& ch : key)
    if (ch == '\n' || ch == '\r') ch = ' ';
  std::filesystem::path dir = opencl::gemm::default_cache_dir();
  std::filesystem::path file = dir / ("worker-profile-" + opencl::sha256_hex(key).substr(0, 24) + ".txt");
  {
    std::ifstream in(file);
    std::string k1, k2, stored_key;
    DeviceProfile p;
    if (in && std::getline(in, stored_key) && stored_key == key &&
        (in >> k1 >> p.gemm_gflops >> k2 >> p.copy_gbps) && k1 == "gemm_gflops" && k2 == "copy_gbps" &&
        p.gemm_gflops > 0 && p.copy_gbps > 0) {
      p.from_cache = true;
      p.cache_file = file.string();
      return p;
    }
  }
  DeviceProfile p = device ? measure_opencl(*device) : measure_reference(registry);
  p.cache_file = file.string();
  // Written to a temporary name and renamed: a concurrent reader sees the old file or the new one.
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::path tmp = file;
  tmp += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    out << key << "\n"
        << "gemm_gflops " << p.gemm_gflops << "\ncopy_gbps " << p.copy_gbps << "\n";
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec) std::filesystem::remove(tmp, ec);
  return p;
}

}  // namespace convoy::worker
