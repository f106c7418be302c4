// The per-job bookkeeping of the coordinator that needs no sockets: admission credits and the
// outputs written at each micro-batch's offset. Both are driven by the server's event loop and
// tested on their own.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/npy.h"
#include "runtime/tensor.h"

namespace convoy {

// Micro-batch admission with a bounded number outstanding. Micro-batches are admitted in sequence
// order; each completes once (a duplicate or unknown completion is refused, so a replayed or forged
// Result cannot count twice).
//
// Replay (a lost worker, docs/coordinator.md "Worker loss"): requeue_in_flight() returns every
// micro-batch sent on the pipeline being replaced to the queue; admit() hands those out again, lowest
// first, before any new one. A requeued micro-batch stays outstanding, so a late Result of the old
// pipeline may still complete it, once; a copy arriving after that is refused like any duplicate.
class Admission {
 public:
  // `written`: micro-batches done before this admission began (a job resumed from the ledger): they
  // count as done and are never admitted.
  Admission(int64_t total, uint32_t limit, const std::set<int64_t>& written = {});

  bool can_admit() const {
    return !closed_ && (!requeued_.empty() || next_ < total_) && in_flight_.size() < limit_;
  }
  // The next sequence number: the lowest requeued one, else the next new one; only when can_admit().
  int64_t admit();
  // True when `seq` was outstanding (in flight or requeued) and is now done.
  bool complete(int64_t seq);
  bool outstanding(int64_t seq) const { return in_flight_.count(seq) != 0 || requeued_.count(seq) != 0; }
  // Every micro-batch before this one is done.
  int64_t lowest_outstanding() const;
  // Stops admitting (cancel, failure), requeued ones included; outstanding ones may still complete.
  void close() {
    closed_ = true;
    total_ = next_;
  }

  // Returns every in-flight micro-batch to the queue and counts one replay for each; the returned
  // sequence numbers ascend. Micro-batches requeued earlier and not sent since are not counted again.
  std::vector<int64_t> requeue_in_flight();
  // How many times `seq` was requeued.
  int replays(int64_t seq) const;
  // The limit follows the plan (a re-plan may have other replica counts); at least 1. Micro-batches
  // already in flight above a lowered limit stay; no new one goes out until they are below it.
  void set_limit(uint32_t limit);

  int64_t total() const { return total_; }
  int64_t admitted() const { return next_; }
  int64_t done() const { return done_; }
  size_t in_flight() const { return in_flight_.size(); }
  size_t requeued() const { return requeued_.size(); }
  uint32_t limit() const { return limit_; }
  bool finished() const { return done_ == total_ && in_flight_.empty() && requeued_.empty(); }
  bool closed() const { return closed_; }

 private:
  int64_t total_;
  uint32_t limit_;
  bool closed_ = false;
  int64_t next_ = 0;
  int64_t done_ = 0;
  std::set<int64_t> in_flight_;  // sent on the current pipeline, not done
  std::set<int64_t> requeued_;   // outstanding, to be sent again
  std::map<int64_t, int> replays_;
  std::set<int64_t> written_;  // done before this admission began

  void skip_written() {
    while (next_ < total_ && written_.count(next_)) ++next_;
  }
};

// Micro-batch `seq` of a job with `samples` samples cut into `batch_size` ones covers samples
// [seq·batch_size, min((seq+1)·batch_size, samples)).
int64_t micro_batches(int64_t samples, int64_t batch_size);
int64_t micro_batch_begin(int64_t seq, int64_t batch_size);
int64_t micro_batch_end(int64_t seq, int64_t samples, int64_t batch_size);

// The job's output files: output_K.npy in `folder`, created from the first result (its count,
// dtypes and trailing shapes are then required of every other), each micro-batch's rows written at
// its offset, renamed into place by commit(). Uncommitted files are removed when this goes away,
// unless keep() was called.
//
// `partial_tag` names the temporary files (output_K.npy.<tag>.partial) so that a coordinator
// restarted from its ledger finds them again: with `resume`, the first result reopens the files the
// earlier process wrote (the rows it wrote stay) instead of creating them. "" picks unique names.
class OutputAssembler {
 public:
  OutputAssembler(std::string folder, int64_t samples, int64_t batch_size, std::string what,
                  std::string partial_tag = "", bool resume = false);

  // Checks `outputs` against micro-batch `seq` and the first result, and writes them. Throws
  // convoy::Error(kInvalidInput) naming the output, its shape and what was expected.
  void write(int64_t seq, const std::vector<Tensor>& outputs);
  // The rows written so far are durable (before a ledger records them).
  void sync();
  // Every micro-batch written: the files appear.
  void commit();
  // Leaves the temporary files in place (a coordinator stopping with a ledger resumes them).
  void keep();
  size_t outputs() const { return writers_.size(); }

  // The temporary file of output `index` for `partial_tag`.
  static std::string partial_path(const std::string& folder, size_t index, const std::string& partial_tag);
  // Removes every output_K.npy.<tag>.partial in `folder` (a job that ended while its coordinator was
  // down); returns how many.
  static size_t remove_partials(const std::string& folder, const std::string& partial_tag);

 private:
  std::string folder_;
  int64_t samples_;
  int64_t batch_size_;
  std::string what_;  // "job 3 (model.pt)" for messages
  std::string tag_;
  bool resume_;
  std::vector<NpyWriter> writers_;
};

}  // namespace convoy
