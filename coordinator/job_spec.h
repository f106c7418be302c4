// A batch job as the user writes it in YAML:
//   model: model.pt            # TorchScript archive
//   inputs: [x.npy, h.npy]     # forward() arguments in order; samples on dim 0
//   output: out                # directory for output_0.npy, output_1.npy, ...
//   batch_size: 4              # samples per micro-batch (the last may be smaller)
//   workers: 2                 # optional: the most workers it may hold (0: the cluster's job_workers)
//   overwrite: true            # optional: replace output_K.npy files that exist (default: refuse)
// Relative paths resolve against the job file's folder. Unknown keys are errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

struct JobSpec {
  std::string job_file;  // where it came from, for messages
  std::string model;     // absolute or resolved path
  std::vector<std::string> inputs;
  std::string output;
  int64_t batch_size = 0;
  uint32_t workers = 0;  // the most workers the job may hold at once; 0: the cluster's default
  bool overwrite = false;
};

// Parses and validates a job file. Errors name the file, the line and the key:
//   "job.yaml:3: unknown key 'batchsize' (expected one of: model, inputs, output, batch_size)".
JobSpec load_job_spec(const std::string& path);

}  // namespace convoy
