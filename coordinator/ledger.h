// The coordinator's durable job ledger (docs/coordinator.md, "The ledger"): SQLite in WAL mode in
// the cluster's state_dir. It holds every job's spec and end, the pipeline generation it runs on and
// which of its micro-batches are written. A coordinator restarted with the same state_dir resumes
// every unfinished job from it without recomputing a written micro-batch, and job ids never repeat.
//
// Order of durability: the server makes a micro-batch's output rows durable (fdatasync) before
// written() records it; a crash between the two only recomputes rows already on disk, and the
// recomputed bytes are the same.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/job_request.h"

struct sqlite3;

namespace convoy {

struct LedgerJob {
  uint64_t id = 0;
  JobRequest request;
  std::string state = "queued";  // queued, running, done, failed, cancelled (JobStatus names)
  std::string error;
  double submitted_unix = 0, finished_unix = 0, elapsed_seconds = 0;
  uint32_t pipeline = 0;
  int64_t samples = 0, samples_done = 0, micro_batches_total = 0, micro_batches_done = 0;
  std::vector<int64_t> written;  // micro-batches written, ascending (unfinished jobs only)

  bool ended() const { return state == "done" || state == "failed" || state == "cancelled"; }
};

class Ledger {
 public:
  // Opens (creating) `state_dir`/ledger.sqlite, holding `state_dir`/lock so that no second
  // coordinator uses the same folder. Throws convoy::Error(kIo) naming the file.
  explicit Ledger(const std::string& state_dir);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const std::string& path() const { return path_; }

  // Every job, ascending by id, unfinished ones with their written micro-batches.
  std::vector<LedgerJob> load();
  // One more than the highest id ever recorded (1 for a new ledger).
  uint64_t next_job_id();

  // A newly accepted job (its id chosen by next_job_id()), durable before the client hears its id.
  void add(const LedgerJob& job);
  // The job is planned on `pipeline` with `samples` samples in `micro_batches` micro-batches.
  void running(uint64_t id, uint32_t pipeline, int64_t samples, int64_t micro_batches);
  // `seqs` are written (their rows durable); the job's counters as they now stand.
  void written(uint64_t id, const std::vector<int64_t>& seqs, int64_t micro_batches_done,
               int64_t samples_done);
  // The job ended; its written-set is dropped.
  void ended(uint64_t id, const std::string& state, const std::string& error, double finished_unix,
             double elapsed_seconds, int64_t micro_batches_done, int64_t samples_done);

 private:
  void add_missing_columns();
  void exec(const char* sql);
  std::string path_;
  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
};

}  // namespace convoy
