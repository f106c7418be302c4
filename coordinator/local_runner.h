// Runs a whole job in this process (the embedded `--workers 0` path) with the reference executor or
// the OpenCL executor on one device.
// Inputs are mapped, cut into micro-batches of batch_size samples, each run exactly as PyTorch
// would run that slice, and every result is written into preallocated output files at its
// micro-batch's offset (so a replayed micro-batch rewrites the same bytes).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "coordinator/job_spec.h"

namespace convoy {

class OpRegistry;

struct JobResult {
  int64_t samples = 0;
  int64_t micro_batches = 0;
  size_t outputs = 0;
  double load_seconds = 0;
  double run_seconds = 0;
};

struct RunOptions {
  std::string backend = "opencl";  // "opencl" or "reference"
  std::string device;              // OpenCL device: an index or a name substring ("" = device 0)
};

// Throws convoy::Error naming the job file, input, op or output that is wrong. `progress` gets one
// line per micro-batch when not null.
JobResult run_job_in_process(const JobSpec& job, const OpRegistry& registry, std::ostream* progress,
                             const RunOptions& options = {});

}  // namespace convoy
