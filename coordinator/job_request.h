// What a client submitted, checked (paths absolute, batch size positive, backend known): the part of
// a job that the ledger stores and a job run is made from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy {

struct JobRequest {
  std::string name, job_file, model_path, output, backend;
  std::vector<std::string> input_paths;
  int64_t batch_size = 0;
  uint32_t max_workers = 0;  // the most workers it may hold; 0: the cluster's job_workers (0: all idle)
};

}  // namespace convoy
