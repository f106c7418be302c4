// OpenCL device discovery and selection (opencl/device.h) and the error mapping of opencl/cl_check.h.
// These tests need at least one OpenCL device (PoCL on CI); they never assume its type.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <memory>
#include <string>

#include "opencl/cl_check.h"
#include "opencl/device.h"
#include "opencl/program_cache.h"
#include "runtime/error.h"

using namespace convoy;
using namespace convoy::opencl;
using Catch::Matchers::Contains;

TEST_CASE("OpenCL errors name the call, the status and the op", "[opencl]") {
  CHECK(cl_error_name(CL_OUT_OF_RESOURCES) == "CL_OUT_OF_RESOURCES");
  CHECK(cl_error_name(CL_INVALID_KERNEL_ARGS) == "CL_INVALID_KERNEL_ARGS");
  CHECK(cl_error_name(-12345) == "CL error -12345");
  try {
    cl_check(CL_OUT_OF_RESOURCES, "clEnqueueNDRangeKernel", "model.py:12: aten::conv2d");
    FAIL("cl_check did not throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kIo);
    CHECK_THAT(e.what(), Contains("clEnqueueNDRangeKernel") && Contains("CL_OUT_OF_RESOURCES") &&
                             Contains("model.py:12: aten::conv2d"));
  }
  try {
    cl_check(CL_INVALID_ARG_SIZE, "clSetKernelArg");
    FAIL("cl_check did not throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kInternal);
    CHECK_THAT(e.what(), Contains("clSetKernelArg failed: CL_INVALID_ARG_SIZE"));
  }
  CHECK_NOTHROW(cl_check(CL_SUCCESS, "clFinish"));
}

TEST_CASE("devices are discovered with their limits", "[opencl]") {
  std::vector<DeviceInfo> devices = enumerate_devices();
  REQUIRE(!devices.empty());
  for (size_t i = 0; i < devices.size(); ++i) {
    const DeviceInfo& d = devices[i];
    CHECK(d.index == static_cast<int>(i));
    CHECK(!d.name.empty());
    CHECK(!d.driver_version.empty());
    CHECK(d.compute_units >= 1);
    CHECK(d.global_mem_bytes > 0);
    CHECK(d.max_alloc_bytes > 0);
    CHECK(d.max_alloc_bytes <= d.global_mem_bytes);
    CHECK(d.max_work_group_size >= 1);
    CHECK(!d.max_work_item_sizes.empty());
    CHECK_THAT(d.opencl_c_version, Contains("OpenCL C"));
    CHECK(d.type_name() != "unknown");
  }
  std::string report = list_devices_report(devices);
  CHECK_THAT(report, Contains("device 0: " + devices[0].name));
  CHECK_THAT(report, Contains("compute units:") && Contains("max allocation:") && Contains("fp64:"));
  CHECK_THAT(list_devices_report({}), Contains("no OpenCL devices found"));
}

TEST_CASE("a device is chosen by index or by a name substring", "[opencl]") {
  std::vector<DeviceInfo> devices = enumerate_devices();
  REQUIRE(!devices.empty());
  CHECK(select_device(devices, "").id == devices[0].id);
  CHECK(select_device(devices, "0").id == devices[0].id);
  // A substring of the name, in another case, finds it (when it is unique).
  std::string upper = devices[0].name.substr(0, std::min<size_t>(devices[0].name.size(), 6));
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  size_t matches = 0;
  for (const DeviceInfo& d : devices) {
    std::string n = d.name;
    for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    matches += n.find(upper) != std::string::npos;
  }
  if (matches == 1) CHECK(select_device(devices, upper).id == devices[0].id);

  try {
    select_device(devices, std::to_string(devices.size()));
    FAIL("an index past the last device was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kInvalidInput);
    CHECK_THAT(e.what(),
               Contains("there are " + std::to_string(devices.size())) && Contains(devices[0].name));
  }
  try {
    select_device(devices, "no-such-device-xyzzy");
    FAIL("a name matching nothing was accepted");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains("matches no OpenCL device") && Contains(devices[0].name));
  }
  CHECK_THROWS_WITH(select_device({}, ""), Contains("no OpenCL device found"));
}

TEST_CASE("a Device holds a context and an in-order queue, and counts its buffers", "[opencl]") {
  std::unique_ptr<Device> device = Device::open("0");
  CHECK(device->context() != nullptr);
  CHECK(device->queue() != nullptr);
  cl_command_queue_properties props = 0;
  REQUIRE(clGetCommandQueueInfo(device->queue(), CL_QUEUE_PROPERTIES, sizeof(props), &props, nullptr) ==
          CL_SUCCESS);
  CHECK((props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) == 0);

  uint64_t before = counters().buffers_created;
  cl_mem buffer = device->create_buffer(1000, "test buffer");
  CHECK(counters().buffers_created == before + 1);
  float values[4] = {1, 2, 3, 4}, back[4] = {};
  REQUIRE(clEnqueueWriteBuffer(device->queue(), buffer, CL_TRUE, 16, sizeof(values), values, 0, nullptr,
                               nullptr) == CL_SUCCESS);
  REQUIRE(clEnqueueReadBuffer(device->queue(), buffer, CL_TRUE, 16, sizeof(back), back, 0, nullptr,
                              nullptr) == CL_SUCCESS);
  CHECK(back[3] == 4.0f);
  clReleaseMemObject(buffer);
  // A buffer larger than the device allows is refused with the device's limit in the message.
  CHECK_THROWS_WITH(device->create_buffer(device->info().max_alloc_bytes + 1, "huge"),
                    Contains("huge") && Contains("largest allocation"));
}
