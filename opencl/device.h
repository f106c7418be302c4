// OpenCL platforms and devices: discovery with the limits that matter for planning, and `Device`, the
// one context and one in-order queue Convoy keeps per device. Nothing here assumes a CPU or a GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "opencl/cl_check.h"

namespace convoy::opencl {

class ProgramCache;

struct DeviceInfo {
  int index = 0;  // position in enumerate_devices(): what `--device 0` names
  cl_platform_id platform = nullptr;
  cl_device_id id = nullptr;
  std::string platform_name;
  std::string platform_version;
  std::string name;
  std::string vendor;
  std::string driver_version;
  std::string device_version;    // "OpenCL 3.0 PoCL ..."
  std::string opencl_c_version;  // "OpenCL C 1.2 PoCL"
  cl_device_type type = 0;
  uint32_t compute_units = 0;
  uint32_t clock_mhz = 0;
  uint64_t global_mem_bytes = 0;
  uint64_t local_mem_bytes = 0;
  uint64_t max_alloc_bytes = 0;
  size_t max_work_group_size = 0;
  std::vector<size_t> max_work_item_sizes;
  uint32_t mem_base_addr_align_bits = 0;
  bool fp16 = false;  // cl_khr_fp16: half arithmetic (half storage via vload_half needs nothing)
  bool fp64 = false;  // cl_khr_fp64 or a double precision config
  bool available = true;
  std::string extensions;

  std::string type_name() const;  // "GPU", "CPU", "accelerator", "CPU+default", ...
  // What on-disk caches are keyed by: a driver upgrade must not reuse old binaries.
  std::string cache_identity() const;
};

// Every device of every platform, in platform order. An empty list (no ICD, no platform) is not an
// error here; choosing a device from it is.
std::vector<DeviceInfo> enumerate_devices();

// `convoy-worker --list-devices`: one block per device with its limits.
std::string list_devices_report(const std::vector<DeviceInfo>& devices);

// Chooses a device by index ("1") or by a case-insensitive substring of its name, vendor or platform
// ("pthread", "nvidia"); "" chooses device 0. Throws kInvalidInput listing the devices when nothing or
// more than one device matches a substring.
DeviceInfo select_device(const std::vector<DeviceInfo>& devices, const std::string& selector);

class Device {
 public:
  explicit Device(const DeviceInfo& info);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // enumerate_devices() + select_device() + Device.
  static std::unique_ptr<Device> open(const std::string& selector = "");

  const DeviceInfo& info() const { return info_; }
  cl_device_id id() const { return info_.id; }
  cl_context context() const { return context_; }
  cl_command_queue queue() const { return queue_; }
  // The program cache of this device (binaries on disk under default_kernel_cache_dir()).
  ProgramCache& programs();

  // Creates a read-write buffer and counts it in Counters::buffers_created; `what` names it in errors.
  cl_mem create_buffer(size_t bytes, const std::string& what, cl_mem_flags flags = CL_MEM_READ_WRITE,
                       void* host_ptr = nullptr);
  void finish(const std::string& context = {});

 private:
  DeviceInfo info_;
  cl_context context_ = nullptr;
  cl_command_queue queue_ = nullptr;
  std::unique_ptr<ProgramCache> programs_;
};

}  // namespace convoy::opencl
