#include "coordinator/local_runner.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <ostream>

#include "opencl/device.h"
#include "opencl/executor.h"
#include "opencl/ops/nn.h"
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
    // conv → batch_norm → activation chains become one node the OpenCL backend runs as one convolution.
    opencl::fuse_conv_batch_norm_activation(*model.graph);
    opencl::fuse_linear_activation(*model.graph);
    if (progress)
      *progress << "OpenCL device " << device->info().index << ": " << device->info().name << "\n";
    try {
      accelerated = std::make_unique<opencl::OpenCLExecutor>(*model.graph, *device);
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

  size_t n_inputs = model.graph->inputs().size();
  if (job.inputs.size() != n_inputs) {
    std::string names;
    for (const std::string& n : model.input_names) names += (names.empty() ? "" : ", ") + n;
    fail(ErrorKind::kInvalidInput, job.job_file, ": the model's forward() takes ", n_inputs, " input(s) (",
         names, ") but the job lists ", job.inputs.size());
  }
  std::vector<NpyFile> inputs;
  int64_t samples = -1;
  for (size_t i = 0; i < job.inputs.size(); ++i) {
    inputs.push_back(NpyFile::open(job.inputs[i]));
    const NpyFile& f = inputs.back();
    CONVOY_CHECK(!f.shape().empty(), job.inputs[i], ": a 0-dim array has no samples (samples are on dim 0)");
    if (samples < 0) samples = f.rows();
    CONVOY_CHECK(f.rows() == samples, job.job_file, ": inputs have different sample counts: ", job.inputs[0],
                 " has ", samples, ", ", job.inputs[i], " has ", f.rows());
  }
  CONVOY_CHECK(samples > 0, job.job_file, ": the inputs hold no samples");

  std::filesystem::create_directories(job.output);
  std::vector<NpyWriter> writers;
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
    if (writers.empty()) {
      for (size_t i = 0; i < outs.size(); ++i) {
        const Tensor& t = outs[i];
        CONVOY_CHECK(t.dim() >= 1 && t.size(0) == end - begin, job.model, ": output ", i, " is ",
                     t.describe(), " for a micro-batch of ", end - begin,
                     " samples; outputs must keep samples on dim 0 to be written per sample");
        Shape shape = t.sizes();
        shape[0] = samples;
        writers.push_back(NpyWriter::create(
            (std::filesystem::path(job.output) / ("output_" + std::to_string(i) + ".npy")).string(),
            t.dtype(), shape));
      }
    }
    CONVOY_CHECK(outs.size() == writers.size(), job.model, ": micro-batch [", begin, ", ", end, ") returned ",
                 outs.size(), " outputs, the first returned ", writers.size());
    for (size_t i = 0; i < outs.size(); ++i) {
      const Tensor& t = outs[i];
      Shape expect = writers[i].shape();
      expect[0] = end - begin;
      CONVOY_CHECK(t.sizes() == expect && t.dtype() == writers[i].dtype(), job.model, ": output ", i,
                   " of micro-batch [", begin, ", ", end, ") is ", t.describe(),
                   " but earlier micro-batches gave ", dtype_name(writers[i].dtype()), shape_str(expect));
      writers[i].write_rows(begin, t);
    }
    ++result.micro_batches;
    if (accelerated && progress && result.micro_batches == 1) *progress << accelerated->plan_report();
    if (progress)
      *progress << "micro-batch " << result.micro_batches << ": samples [" << begin << ", " << end
                << ") done\n";
  }
  for (NpyWriter& w : writers) w.commit();
  if (accelerated && progress && accelerated->profiling()) *progress << accelerated->profile_report();
  result.run_seconds = seconds_since(t_run);
  result.samples = samples;
  result.outputs = writers.size();
  return result;
}

}  // namespace convoy
