// OpenCL status codes turned into convoy::Error: the message names the call, the status by name
// (CL_OUT_OF_RESOURCES) and, when known, the op the call was made for.
#pragma once

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include <string>
#include <string_view>

#include "runtime/error.h"

namespace convoy::opencl {

// "CL_OUT_OF_RESOURCES", or "CL error -9999" for a code this table does not know (vendor codes).
std::string cl_error_name(cl_int status);

// The kind of error a status means to the caller: allocation failures are kIo-like resource problems
// the caller may retry elsewhere, an invalid argument or build failure is a bug (kInternal), a device
// without a feature is kUnsupported.
ErrorKind cl_error_kind(cl_int status);

// Throws "OpenCL clEnqueueNDRangeKernel failed: CL_OUT_OF_RESOURCES (for aten::conv2d at model.py:12)".
[[noreturn]] void throw_cl_error(cl_int status, std::string_view call, std::string_view context = {});

inline void cl_check(cl_int status, std::string_view call, std::string_view context = {}) {
  if (status != CL_SUCCESS) throw_cl_error(status, call, context);
}

}  // namespace convoy::opencl
