// Where a job may read and write (docs/security.md, "Confined paths"): every model, input and output
// path a client names is resolved the way the kernel will open it (realpath of its deepest existing
// folder, symlinks followed, the rest appended) and refused unless it lies inside one of the
// cluster's allowed_roots. The refusal reads the same whether or not the file exists, so it tells a
// client nothing about files outside the roots.
#pragma once

#include <string>
#include <vector>

namespace convoy {

// The resolved form of absolute `path`; throws convoy::Error(kInvalidInput)
//   "job.yaml: input /etc/shadow is outside the allowed roots (/srv/convoy)"
// when it is outside every root (each root resolved the same way). `what` names the setting and
// `where` the job file.
std::string confine_path(const std::string& path, const std::vector<std::string>& roots,
                         const std::string& where, const std::string& what);

// Refuses a job whose output folder already holds an output_K.npy (an earlier job's results) unless
// `overwrite`; names the first such file.
void check_outputs_absent(const std::string& folder, bool overwrite, const std::string& where);

}  // namespace convoy
