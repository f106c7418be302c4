// A job's inputs, opened and checked once for every path that runs a job (the cluster's job runs,
// `run --workers 0`, `plan`): one .npy per forward() argument, samples on dim 0, the same sample
// count in each. Errors are convoy::Error naming the job file and the input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/planner.h"
#include "runtime/npy.h"

namespace convoy {

struct JobInputs {
  std::vector<NpyFile> files;      // mapped, in forward() order
  std::vector<InputShape> shapes;  // a full micro-batch of each (dim 0 = min(samples, batch_size))
  int64_t samples = 0;
};

// `names`: the model's forward() parameters (for the count and the message).
JobInputs open_job_inputs(const std::string& job_file, const std::vector<std::string>& paths,
                          const std::vector<std::string>& names, int64_t batch_size);

}  // namespace convoy
