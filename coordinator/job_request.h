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
  bool overwrite = false;    // output_K.npy files that exist may be replaced
  // The client key that submitted it (Z85) and its allow-list name; "" when the cluster is insecure
  // (then every client may act on every job).
  std::string owner, owner_name;
};

}  // namespace convoy
