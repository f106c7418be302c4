#include "coordinator/job_inputs.h"

#include <algorithm>

#include "runtime/error.h"

namespace convoy {

JobInputs open_job_inputs(const std::string& job_file, const std::vector<std::string>& paths,
                          const std::vector<std::string>& names, int64_t batch_size) {
  if (paths.size() != names.size()) {
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    fail(ErrorKind::kInvalidInput, job_file, ": the model's forward() takes ", names.size(), " input(s) (",
         list, ") but the job lists ", paths.size());
  }
  JobInputs in;
  int64_t samples = -1;
  for (const std::string& path : paths) {
    in.files.push_back(NpyFile::open(path));
    const NpyFile& f = in.files.back();
    CONVOY_CHECK(!f.shape().empty(), path, ": a 0-dim array has no samples (samples are on dim 0)");
    if (samples < 0) samples = f.rows();
    CONVOY_CHECK(f.rows() == samples, job_file, ": inputs have different sample counts: ", paths[0], " has ",
                 samples, ", ", path, " has ", f.rows());
  }
  CONVOY_CHECK(samples > 0, job_file, ": the inputs hold no samples");
  for (const NpyFile& f : in.files) {
    Shape shape = f.shape();
    shape[0] = std::min(samples, batch_size);
    in.shapes.push_back({f.dtype(), shape});
  }
  in.samples = samples;
  return in;
}

}  // namespace convoy
