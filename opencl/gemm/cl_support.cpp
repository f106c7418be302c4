// OpenCL plumbing shared by the providers: program building, scratch operands, timing.
#include <algorithm>
#include <array>
#include <chrono>
#include <random>

#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::opencl::gemm {

ProgramSource::ProgramSource(ClTarget target) : target_(std::move(target)) {
  CONVOY_ASSERT(target_.context && target_.device && target_.queue && target_.build_program,
                "gemm: ClTarget needs a context, a device, a queue and a program builder");
}

ScratchOperands::ScratchOperands(const ClTarget& target, const GemmArgs& shape) : args_(shape) {
  // Values in [-1, 1): realistic magnitudes, no denormals or NaNs that could skew timing. Each buffer
  // repeats a 32-float pattern written by the device (clEnqueueFillBuffer): filling tens of MiB per
  // shape from a host RNG was half of a warm start's CPU time (resnet18: ~1.5 s of ~3 s).
  constexpr size_t kPattern = 32;  // 128 bytes, the largest pattern OpenCL 1.2 allows
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  auto make = [&](size_t floats, std::string_view what) {
    std::array<float, kPattern> pattern;
    for (float& x : pattern) x = dist(rng);
    const size_t padded = (std::max<size_t>(floats, 1) + kPattern - 1) / kPattern * kPattern;
    cl_int status = CL_SUCCESS;
    cl_mem buffer =
        clCreateBuffer(target.context, CL_MEM_READ_WRITE, padded * sizeof(float), nullptr, &status);
    cl_check(status, "clCreateBuffer", str_cat("gemm scratch ", what, ", ", padded, " floats"));
    buffers_.push_back(buffer);
    cl_check(clEnqueueFillBuffer(target.queue, buffer, pattern.data(), sizeof(pattern), 0,
                                 padded * sizeof(float), 0, nullptr, nullptr),
             "clEnqueueFillBuffer", str_cat("gemm scratch ", what));
    return buffer;
  };
  args_.a = make(a_extent(shape), "A");
  args_.b = make(b_extent(shape), "B");
  args_.c = make(c_extent(shape), "C");
  if (shape.epilogue.bias_axis != BiasAxis::kNone) args_.epilogue.bias = make(bias_extent(shape), "bias");
}

ScratchOperands::~ScratchOperands() {
  for (cl_mem buffer : buffers_) clReleaseMemObject(buffer);
}

double time_provider(GemmProvider& provider, const GemmArgs& args, cl_command_queue queue, int runs,
                     bool already_warm) {
  if (!already_warm) {
    provider.enqueue(args);
    cl_check(clFinish(queue), "clFinish", provider.name());
  }
  double best = 1e30;
  for (int run = 0; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    provider.enqueue(args);
    cl_check(clFinish(queue), "clFinish", provider.name());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace convoy::opencl::gemm
