// The `convoy-coordinator` commands that talk to a coordinator or start one: serve, submit, status,
// cancel, workers, plan and `run --workers N` (N >= 1). main() parses the command word and hands the
// remaining arguments here. Exit statuses: 0 success, 1 a failed command or job, 2 a misused command
// line (a UsageError).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "schema/protocol.capnp.h"

namespace convoy {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int cmd_serve(const std::vector<std::string>& args);
// `keygen --out DIR [--name NAME] [--role worker|client|admin]`: a new CURVE key pair as DIR/NAME.key
// and DIR/NAME.key_secret (convoy-worker keygen defaults to worker, convoy-coordinator keygen to client).
int cmd_keygen(const std::vector<std::string>& args, const std::string& default_role);
int cmd_submit(const std::vector<std::string>& args);
int cmd_status(const std::vector<std::string>& args);
int cmd_cancel(const std::vector<std::string>& args);
int cmd_workers(const std::vector<std::string>& args);
int cmd_plan(const std::vector<std::string>& args);
// `run JOB.yaml --workers N` for N >= 1, after main() has parsed the shared options.
int run_distributed(const std::string& job_path, uint32_t workers, const std::string& backend,
                    const std::string& device);

// A job's status as the CLI prints it (a plain copy of schema::JobStatus).
struct StageStatus {
  uint32_t stage = 0;
  std::vector<std::string> workers;
  std::string first_op, last_op;
  double predicted_seconds = 0, measured_seconds = 0;
};
struct JobStatusInfo {
  uint64_t job = 0;
  std::string name, state, error, output;
  int64_t samples_done = 0, samples_total = 0, micro_batches_done = 0, micro_batches_total = 0;
  double samples_per_second = 0, elapsed_seconds = 0;
  std::vector<StageStatus> stages;
  bool ended() const { return state == "done" || state == "failed" || state == "cancelled"; }
};

JobStatusInfo read_job_status(schema::JobStatus::Reader status);
// `status`: one line per job under a header.
std::string format_status_table(const std::vector<JobStatusInfo>& jobs);
// `status --json`: {"jobs": [{...}, ...]} on one line.
std::string format_status_json(const std::vector<JobStatusInfo>& jobs);
// Predicted vs measured seconds per micro-batch, one line per stage under a header.
std::string format_stage_times(const JobStatusInfo& job);
// One progress line: a bar when `terminal`, else plain words.
std::string format_progress(const JobStatusInfo& job, bool terminal);
std::string format_workers_table(schema::WorkersReply::Reader reply);
// The same as one line of JSON: {"workers": [{"id", "name", "host", "data_endpoint", ...}]}.
std::string format_workers_json(schema::WorkersReply::Reader reply);

}  // namespace convoy
