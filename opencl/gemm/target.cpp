// The seam between the GEMM code and the OpenCL core: a Device's context, queue and program cache.
#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "opencl/program_cache.h"

namespace convoy::opencl::gemm {

ClTarget target_of(Device& device) {
  ClTarget target;
  target.context = device.context();
  target.device = device.id();
  target.queue = device.queue();
  ProgramCache* programs = &device.programs();
  target.build_program = [programs](std::string_view kernel_file, const std::string& options) {
    return programs->get_embedded(kernel_file, options);
  };
  return target;
}

}  // namespace convoy::opencl::gemm
