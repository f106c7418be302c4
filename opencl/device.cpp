#include "opencl/device.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <vector>

#include "opencl/program_cache.h"

namespace convoy::opencl {

namespace {

std::string platform_string(cl_platform_id platform, cl_platform_info what) {
  size_t size = 0;
  cl_check(clGetPlatformInfo(platform, what, 0, nullptr, &size), "clGetPlatformInfo");
  std::string text(size, '\0');
  cl_check(clGetPlatformInfo(platform, what, size, text.data(), nullptr), "clGetPlatformInfo");
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

std::string device_string(cl_device_id device, cl_device_info what) {
  size_t size = 0;
  cl_check(clGetDeviceInfo(device, what, 0, nullptr, &size), "clGetDeviceInfo");
  std::string text(size, '\0');
  cl_check(clGetDeviceInfo(device, what, size, text.data(), nullptr), "clGetDeviceInfo");
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

template <typename T>
T device_value(cl_device_id device, cl_device_info what) {
  T value{};
  cl_check(clGetDeviceInfo(device, what, sizeof(T), &value, nullptr), "clGetDeviceInfo");
  return value;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool has_extension(const std::string& extensions, const std::string& name) {
  std::istringstream in(extensions);
  std::string word;
  while (in >> word)
    if (word == name) return true;
  return false;
}

std::string mib(uint64_t bytes) {
  std::ostringstream out;
  if (bytes >= (uint64_t{1} << 30))
    out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1 << 30) << " GiB";
  else if (bytes >= (uint64_t{1} << 20))
    out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1 << 20) << " MiB";
  else
    out << bytes / 1024 << " KiB";
  return out.str();
}

}  // namespace

std::string DeviceInfo::type_name() const {
  std::string out;
  auto add = [&](cl_device_type bit, const char* name) {
    if (type & bit) out += (out.empty() ? "" : "+") + std::string(name);
  };
  add(CL_DEVICE_TYPE_GPU, "GPU");
  add(CL_DEVICE_TYPE_CPU, "CPU");
  add(CL_DEVICE_TYPE_ACCELERATOR, "accelerator");
  add(CL_DEVICE_TYPE_CUSTOM, "custom");
  add(CL_DEVICE_TYPE_DEFAULT, "default");
  return out.empty() ? "unknown" : out;
}

std::string DeviceInfo::cache_identity() const {
  return str_cat(name, "\n", vendor, "\n", driver_version, "\n", device_version, "\n", platform_name, "\n",
                 platform_version);
}

std::vector<DeviceInfo> enumerate_devices() {
  cl_uint num_platforms = 0;
  cl_int status = clGetPlatformIDs(0, nullptr, &num_platforms);
  // The ICD loader reports "no platform" as an error code; for discovery it just means no devices.
  if (status == -1001 || num_platforms == 0) return {};
  cl_check(status, "clGetPlatformIDs");
  std::vector<cl_platform_id> platforms(num_platforms);
  cl_check(clGetPlatformIDs(num_platforms, platforms.data(), nullptr), "clGetPlatformIDs");

  std::vector<DeviceInfo> devices;
  for (cl_platform_id platform : platforms) {
    cl_uint num_devices = 0;
    status = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, nullptr, &num_devices);
    if (status == CL_DEVICE_NOT_FOUND || num_devices == 0) continue;
    cl_check(status, "clGetDeviceIDs");
    std::vector<cl_device_id> ids(num_devices);
    cl_check(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, num_devices, ids.data(), nullptr),
             "clGetDeviceIDs");
    std::string platform_name = platform_string(platform, CL_PLATFORM_NAME);
    std::string platform_version = platform_string(platform, CL_PLATFORM_VERSION);
    for (cl_device_id id : ids) {
      DeviceInfo d;
      d.index = static_cast<int>(devices.size());
      d.platform = platform;
      d.id = id;
      d.platform_name = platform_name;
      d.platform_version = platform_version;
      d.name = device_string(id, CL_DEVICE_NAME);
      d.vendor = device_string(id, CL_DEVICE_VENDOR);
      d.driver_version = device_string(id, CL_DRIVER_VERSION);
      d.device_version = device_string(id, CL_DEVICE_VERSION);
      d.opencl_c_version = device_string(id, CL_DEVICE_OPENCL_C_VERSION);
      d.type = device_value<cl_device_type>(id, CL_DEVICE_TYPE);
      d.compute_units = device_value<cl_uint>(id, CL_DEVICE_MAX_COMPUTE_UNITS);
      d.clock_mhz = device_value<cl_uint>(id, CL_DEVICE_MAX_CLOCK_FREQUENCY);
      d.global_mem_bytes = device_value<cl_ulong>(id, CL_DEVICE_GLOBAL_MEM_SIZE);
      d.local_mem_bytes = device_value<cl_ulong>(id, CL_DEVICE_LOCAL_MEM_SIZE);
      d.max_alloc_bytes = device_value<cl_ulong>(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
      d.max_work_group_size = device_value<size_t>(id, CL_DEVICE_MAX_WORK_GROUP_SIZE);
      cl_uint dims = device_value<cl_uint>(id, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS);
      d.max_work_item_sizes.resize(dims);
      cl_check(clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, dims * sizeof(size_t),
                               d.max_work_item_sizes.data(), nullptr),
               "clGetDeviceInfo");
      d.mem_base_addr_align_bits = device_value<cl_uint>(id, CL_DEVICE_MEM_BASE_ADDR_ALIGN);
      d.extensions = device_string(id, CL_DEVICE_EXTENSIONS);
      d.fp16 = has_extension(d.extensions, "cl_khr_fp16");
      d.fp64 = has_extension(d.extensions, "cl_khr_fp64") ||
               device_value<cl_device_fp_config>(id, CL_DEVICE_DOUBLE_FP_CONFIG) != 0;
      d.available = device_value<cl_bool>(id, CL_DEVICE_AVAILABLE) != 0;
      devices.push_back(std::move(d));
    }
  }
  return devices;
}

std::string list_devices_report(const std::vector<DeviceInfo>& devices) {
  std::ostringstream out;
  if (devices.empty()) {
    out << "no OpenCL devices found (is an ICD installed? on Debian: pocl-opencl-icd for CPUs, or the GPU "
           "vendor's ICD; see /etc/OpenCL/vendors)\n";
    return out.str();
  }
  for (const DeviceInfo& d : devices) {
    out << "device " << d.index << ": " << d.name << (d.available ? "" : "  (NOT AVAILABLE)") << "\n";
    out << "  platform:            " << d.platform_name << " (" << d.platform_version << ")\n";
    out << "  vendor:              " << d.vendor << "\n";
    out << "  driver version:      " << d.driver_version << "\n";
    out << "  type:                " << d.type_name() << "\n";
    out << "  device version:      " << d.device_version << "\n";
    out << "  OpenCL C version:    " << d.opencl_c_version << "\n";
    out << "  compute units:       " << d.compute_units << "\n";
    out << "  max clock:           " << d.clock_mhz << " MHz\n";
    out << "  global memory:       " << mib(d.global_mem_bytes) << "\n";
    out << "  local memory:        " << mib(d.local_mem_bytes) << "\n";
    out << "  max allocation:      " << mib(d.max_alloc_bytes) << "\n";
    out << "  max work-group size: " << d.max_work_group_size << "\n";
    out << "  max work-item sizes:";
    for (size_t s : d.max_work_item_sizes) out << " " << s;
    out << "\n";
    out << "  fp16:                " << (d.fp16 ? "yes" : "no") << "\n";
    out << "  fp64:                " << (d.fp64 ? "yes" : "no") << "\n";
  }
  return out.str();
}

DeviceInfo select_device(const std::vector<DeviceInfo>& devices, const std::string& selector) {
  auto listing = [&]() {
    std::string names;
    for (const DeviceInfo& d : devices)
      names += str_cat("\n  ", d.index, ": ", d.name, " (", d.platform_name, ")");
    return names.empty() ? std::string(" none") : names;
  };
  CONVOY_CHECK(!devices.empty(), "no OpenCL device found (is an ICD installed, e.g. pocl-opencl-icd?)");
  if (selector.empty()) return devices.front();
  bool numeric =
      std::all_of(selector.begin(), selector.end(), [](unsigned char c) { return std::isdigit(c); });
  if (numeric) {
    long index = std::strtol(selector.c_str(), nullptr, 10);
    CONVOY_CHECK(index >= 0 && index < static_cast<long>(devices.size()), "--device ", selector,
                 ": there are ", devices.size(), " OpenCL device(s):", listing());
    return devices[static_cast<size_t>(index)];
  }
  std::vector<const DeviceInfo*> matches;
  const std::string needle = lower(selector);
  for (const DeviceInfo& d : devices) {
    if (lower(d.name).find(needle) != std::string::npos ||
        lower(d.vendor).find(needle) != std::string::npos ||
        lower(d.platform_name).find(needle) != std::string::npos)
      matches.push_back(&d);
  }
  CONVOY_CHECK(!matches.empty(), "--device '", selector,
               "' matches no OpenCL device; the devices are:", listing());
  CONVOY_CHECK(matches.size() == 1, "--device '", selector, "' matches ", matches.size(),
               " OpenCL devices; give an index instead:", listing());
  return *matches.front();
}

Device::Device(const DeviceInfo& info) : info_(info) {
  CONVOY_CHECK(info_.available, "OpenCL device ", info_.index, " (", info_.name, ") is not available");
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   reinterpret_cast<cl_context_properties>(info_.platform), 0};
  cl_int status = CL_SUCCESS;
  context_ = clCreateContext(props, 1, &info_.id, nullptr, nullptr, &status);
  cl_check(status, "clCreateContext", info_.name);
  // OpenCL 1.2's entry point: clCreateCommandQueueWithProperties is 2.0. In-order, no profiling: the
  // executor relies on the in-order queue to order every command of a plan.
  queue_ = clCreateCommandQueue(context_, info_.id, 0, &status);
  if (status != CL_SUCCESS) {
    clReleaseContext(context_);
    throw_cl_error(status, "clCreateCommandQueue", info_.name);
  }
  programs_ = std::make_unique<ProgramCache>(context_, info_.id, info_.cache_identity());
}

Device::~Device() {
  programs_.reset();
  if (queue_) {
    clFinish(queue_);
    clReleaseCommandQueue(queue_);
  }
  if (context_) clReleaseContext(context_);
}

std::unique_ptr<Device> Device::open(const std::string& selector) {
  return std::make_unique<Device>(select_device(enumerate_devices(), selector));
}

ProgramCache& Device::programs() { return *programs_; }

cl_mem Device::create_buffer(size_t bytes, const std::string& what, cl_mem_flags flags, void* host_ptr) {
  CONVOY_CHECK_KIND(kIo, bytes <= info_.max_alloc_bytes, what, ": a buffer of ", bytes,
                    " bytes exceeds the device's largest allocation (", info_.max_alloc_bytes, " bytes, ",
                    info_.name, ")");
  cl_int status = CL_SUCCESS;
  // A zero-byte buffer is invalid in OpenCL; empty tensors still get a real (tiny) buffer. The driver
  // copies the whole buffer from a COPY_HOST_PTR source, so a short source is padded first.
  const size_t size = std::max<size_t>(bytes, 64);
  std::vector<unsigned char> padded;
  if (host_ptr && size > bytes && (flags & CL_MEM_COPY_HOST_PTR)) {
    padded.assign(size, 0);
    std::memcpy(padded.data(), host_ptr, bytes);
    host_ptr = padded.data();
  }
  cl_mem buffer = clCreateBuffer(context_, flags, size, host_ptr, &status);
  cl_check(status, "clCreateBuffer", str_cat(what, ", ", bytes, " bytes"));
  counters().buffers_created++;
  return buffer;
}

void Device::finish(const std::string& context) { cl_check(clFinish(queue_), "clFinish", context); }

}  // namespace convoy::opencl
