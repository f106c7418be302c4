// A worker's measured device profile, sent in Register (DeviceInfo.gemmGflops, copyGbps) and scaled
// into the partitioner's cost model. Measured once per device, driver, backend and thread count in
// well under a second (once programs are cached) and remembered in the cache folder.
#pragma once

#include <string>

namespace convoy {
class OpRegistry;
namespace opencl {
class Device;
}
}  // namespace convoy

namespace convoy::worker {

struct DeviceProfile {
  double gemm_gflops = 0;  // float32 GEMM through the GEMM dispatcher (reference: the aten::mm kernel)
  double copy_gbps = 0;    // host → device → host copy bandwidth (reference: memcpy)
  bool from_cache = false;
  std::string cache_file;
};

// `device` null: the reference backend. `identity` keys the cached result beyond the device (backend,
// thread count, CPU pinning). The cache lives in gemm::default_cache_dir() (i.e. $CONVOY_CACHE_DIR).
DeviceProfile measure_profile(opencl::Device* device, const OpRegistry& registry,
                              const std::string& identity);

}  // namespace convoy::worker
