#include "coordinator/local_runner.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <ostream>

#include "coordinator/job_inputs.h"
#include "coordinator/job_progress.h"
#include "coordinator/path_policy.h"
#include "opencl/device.h"
#include "opencl/executor.h"
#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A model output as one tensor per output file: tensors pass through, tuples/lists of tensors are
// flattened in order (lowering already flattens a returned tuple; nested ones can remain).
void flatten_outputs(const IValue& v, std::vector<Tensor>& out, const std::string& job_file) {
  if (v.is_tensor()) {
    out.push_back(v.to_tensor());
  } else if (v.is_tuple() || v.is_list()) {
    for (const IValue& x : v.to_list_or_tuple()) flatten_outputs(x, out, job_file);
  } else {
    fail(ErrorKind::kUnsupported, job_file, ": the model returns a ", v.kind_name(), " (", v.repr(),
         "); only tensors (and tuples of tensors) can be written as outputs");
  }
}

}  // namespace

JobResult run_job_in_process(const JobSpec& job, const OpRegistry& registry, std::ostream* progress,
                             const RunOptions& run_options) {
  JobResult result;
  check_outputs_absent(job.output, job.overwrite,
                       job.job_file);  // before any work: the same rule as a cluster's
  auto t_load = std::chrono::steady_clock::now();
  LoadOptions options;
  options.num_inputs = static_cast<int>(job.inputs.size());  // later parameters take their defaults
  Model model = load_model(job.model, registry, options);
  std::unique_ptr<ReferenceExecutor> reference;
  std::unique_ptr<opencl::Device> device;
  std::unique_ptr<opencl::OpenCLExecutor> accelerated;
  if (run_options.backend == "opencl") {
    try {
      device = opencl::Device::open(run_options.device);
    } catch (const Error& e) {
      if (opencl::enumerate_devices().empty())
        fail(e.kind(), e.what(), " (--backend reference runs on the CPU without OpenCL)");
      throw;
    }
    if (progress)
      *progress << "OpenCL device " << device->info().index << ": " << device->info().name << "\n";
    try {
      accelerated = opencl::make_fused_executor(*model.graph, *device);
    } catch (const Error& e) {
      fail(e.kind(), job.model, ": ", e.what());
    }
  } else {
    CONVOY_CHECK(run_options.backend == "reference", "unknown backend '", run_options.backend,
                 "' (this build has: opencl, reference)");
    reference = std::make_unique<ReferenceExecutor>(*model.graph);
  }
  auto run_model = [&](const std::vector<IValue>& args) {
    return accelerated ? accelerated->run(args) : reference->run(args);
  };
  result.load_seconds = seconds_since(t_load);

  JobInputs in = open_job_inputs(job.job_file, job.inputs, model.input_names, job.batch_size);
  const std::vector<NpyFile>& inputs = in.files;
  const int64_t samples = in.samples;

  OutputAssembler outputs(job.output, samples, job.batch_size, job.model);
  auto t_run = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin < samples; begin += job.batch_size) {
    int64_t end = std::min(samples, begin + job.batch_size);
    std::vector<IValue> args;
    // A private copy: a model may modify its inputs in place, and the mapped file must stay as given.
    for (const NpyFile& f : inputs) args.emplace_back(f.slice(begin, end).clone());
    std::vector<IValue> returned;
    try {
      returned = run_model(args);
    } catch (const Error& e) {
      fail(e.kind(), job.model, ": micro-batch of samples [", begin, ", ", end, "): ", e.what());
    }
    std::vector<Tensor> outs;
    for (const IValue& v : returned) flatten_outputs(v, outs, job.job_file);
    outputs.write(result.micro_batches, outs);
    ++result.micro_batches;
    if (accelerated && progress && result.micro_batches == 1) *progress << accelerated->plan_report();
    if (progress)
      *progress << "micro-batch " << result.micro_batches << ": samples [" << begin << ", " << end
                << ") done\n";
  }
  outputs.commit();
  if (accelerated && progress && accelerated->profiling()) *progress << accelerated->profile_report();
  result.run_seconds = seconds_since(t_run);
  result.samples = samples;
  result.outputs = outputs.outputs();
  return result;
}

}  // namespace convoy
