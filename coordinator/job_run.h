// One job on the cluster, from submission to its end (docs/coordinator.md, "One job's path"):
//
//   queued → planning (load, validate inputs, plan, assign every stage replica)
//          → running (admit micro-batches by credit, write results at their offsets, record them in
//                     the ledger)
//          → recover (a worker lost, a transport or device fault: release, requeue, re-plan)
//          → done | failed | cancelled
//
// A JobRun has no sockets and no timers: it sends through a JobOutbox and reads time from a
// JobClock, so its loss, replay, timeout and restart logic runs in one process in tests with a fake
// clock and injected faults. The server (server.cpp) is the ZeroMQ/Asio adapter that feeds it.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/cluster_config.h"
#include "coordinator/job_progress.h"
#include "coordinator/job_request.h"
#include "coordinator/planner.h"
#include "coordinator/replica_router.h"
#include "coordinator/worker_registry.h"
#include "runtime/npy.h"
#include "schema/wire.h"

namespace convoy {

class Archive;
class Graph;
class Ledger;
class OpRegistry;
struct LedgerJob;

// What a job run sends, and what it asks of the loop around it.
class JobOutbox {
 public:
  virtual ~JobOutbox() = default;
  // A control message to a registered worker.
  virtual void to_worker(const Worker& w, wire::OutMessage& m) = 0;
  // A micro-batch to a worker's data endpoint (the coordinator is stage 0's upstream). Throws
  // convoy::Error(kIo) when it cannot be sent.
  virtual void to_data(const Worker& w, wire::OutMessage& m) = 0;
  // Runs `f` once the current handler has returned (several losses at once make one re-plan).
  virtual void defer(std::function<void()> f) = 0;
  // The job ended: the loop may start the next one.
  virtual void job_ended(uint64_t job) = 0;
  // Whether `w`'s data endpoint has answered the coordinator's hello; the first call connects and
  // says hello. The server calls JobRun::on_data_link_answered() when the answer comes.
  virtual bool data_answered(const Worker& w) = 0;
  // Workers other jobs hold now: this job plans over the rest.
  virtual std::set<uint32_t> held_by_others(uint64_t job) const { return {}; }
};

class JobClock {
 public:
  virtual ~JobClock() = default;
  virtual SteadyClock::time_point now() const = 0;
};

// Counters the server exports on /metrics, shared by every job run.
struct CoordinatorCounters {
  // Messages dropped unread or unused, by reason: "malformed", "unauthenticated" (a key that is not
  // (or no longer) allowed, or not the key the connection said hello with), "refused" (a role's
  // message from another role, a name or field over its bounds), and for results: "not_routed" (from
  // a worker the micro-batch was not routed to at the last stage), "stale_generation" (an older
  // pipeline's), "wrong_types" (tensors that are not the stage's outputs), "unknown_job".
  std::map<std::string, uint64_t> dropped;
  uint64_t replays = 0;
  uint64_t ledger_commits = 0;
  uint64_t backup_copies = 0;  // tail micro-batches sent again to an idle replica
};

// Everything a job run uses that outlives it.
struct JobEnv {
  const ClusterConfig& config;
  const OpRegistry& registry;
  WorkerRegistry& workers;
  JobOutbox& outbox;
  const JobClock& clock;
  Ledger* ledger;  // null: jobs are not durable (no state_dir)
  std::ostream& log;
  CoordinatorCounters& counters;
  uint64_t& next_request_id;    // AssignStage request ids, unique across jobs
  std::string coordinator_key;  // its CURVE public key: stage 0's only upstream; "" when insecure
};

using JobState = schema::JobStatus::State;
const char* job_state_name(JobState s);

class JobRun {
 public:
  JobRun(JobEnv& env, uint64_t id, JobRequest request);
  // A job read back from the ledger: an ended one keeps its status; an unfinished one is queued
  // again and resumes without recomputing the micro-batches the ledger says are written.
  JobRun(JobEnv& env, const LedgerJob& record);
  ~JobRun();
  JobRun(const JobRun&) = delete;
  JobRun& operator=(const JobRun&) = delete;

  uint64_t id() const { return id_; }
  JobState state() const { return state_; }
  const JobRequest& request() const { return request_; }
  bool active() const { return state_ == JobState::PLANNING || state_ == JobState::RUNNING; }
  bool ended() const {
    return state_ == JobState::DONE || state_ == JobState::FAILED || state_ == JobState::CANCELLED;
  }

  // queued → planning: loads the model, checks the inputs, plans and assigns every stage replica.
  void start();
  void end(JobState state, const std::string& error);
  // The coordinator stops while the job is unfinished and the ledger will resume it: the partial
  // outputs stay and the ledger keeps the job as it is.
  void suspend();

  // --- what the workers say ------------------------------------------------------------------------
  void on_stage_ready(Worker& w, uint64_t request, schema::StageReady::Reader ready);
  void on_stage_failed(const std::string& worker, schema::StageFailed::Reader f);
  void on_result(uint32_t worker_id, const std::string& worker, const wire::InMessage& msg,
                 schema::Result::Reader r);
  // True when `request` is one of this job's assignments (the error was handled here).
  bool on_worker_error(const Worker& w, uint64_t request, schema::ErrorReply::Reader e);
  // A worker left the registry (`died`: without deregistering). Its stages are re-planned.
  void on_worker_lost(uint32_t worker_id, const std::string& name, const std::string& why, bool died);
  // A worker registered: a job waiting for one re-plans.
  void on_worker_registered();
  // A worker's data endpoint answered the coordinator's hello.
  void on_data_link_answered();
  // Timers: the stage-ready and data-link deadlines, the progress timeout, the ledger's group commit.
  void tick();

  // --- what clients see ----------------------------------------------------------------------------
  // `redacted`: for another client (its id, state and progress only).
  void fill_status(schema::JobStatus::Builder s, bool redacted = false) const;
  // "job 3 stage 1" for every stage replica on `worker_id`.
  std::vector<std::string> stages_on(uint32_t worker_id) const;
  double samples_per_second() const;
  int64_t samples_done() const { return samples_done_; }
  int64_t micro_batches_done() const { return micro_batches_done_; }
  size_t in_flight() const { return admission_ ? admission_->in_flight() : 0; }
  // The workers holding its stages now.
  const std::set<uint32_t>& held_workers() const { return workers_; }

  // The plan `request` would get over the registered workers now, as `plan` prints it.
  static std::string preview_plan(JobEnv& env, const JobRequest& request);

 private:
  struct PendingAssignment {
    uint32_t pipeline = 0, stage = 0, replica = 0, worker = 0;
    bool resent_all = false;  // a missingWeights answer already made us send every weight
  };

  template <typename... Args>
  void info(Args&&... args);
  template <typename... Args>
  void warn(Args&&... args);

  void plan_stages(const std::vector<WorkerDevice>& devices);
  void assign(uint32_t s, uint32_t r, Worker& w, bool send_all_weights);
  void begin_streaming();
  // Every stage is ready: stream once the coordinator's links to stage 0 have answered hello.
  void all_stages_ready();
  // Excludes the worker whose data endpoint is `endpoint` from this job's plans and re-plans.
  void exclude_unreachable(const std::string& endpoint, const std::string& why);
  std::string describe_pipeline() const;
  void check_progress();
  // Measured stage times against the plan's: a worker far slower than predicted (relative to the
  // fastest) gets its measured slowdown, and the job is re-planned when that plan is clearly better.
  void recalibrate();
  // The devices to plan over: live, not excluded, with their measured slowdowns.
  std::vector<WorkerDevice> plan_devices() const;
  void admit();
  void send_micro_batch(int64_t seq, const ReplicaRouter::Route& route);
  // At the tail: idle replicas run copies of micro-batches still outstanding elsewhere.
  void send_backups();
  void release_stages();
  void recover(const std::string& why, std::optional<int64_t> failed_seq = std::nullopt);
  void replan();
  bool quarantine(const PendingAssignment& a, const std::string& name);
  void release_consumed_inputs();
  // Throws convoy::Error when `outs` are not what the last stage returns for micro-batch `seq`.
  void check_output_types(const std::vector<Tensor>& outs, uint64_t seq) const;
  // Makes the written rows durable and records them in the ledger (group commit: every
  // kLedgerBatch results or kLedgerInterval, and before the job ends).
  void flush_written(bool force);
  void record_ended();

  JobEnv& env_;
  uint64_t id_;
  JobRequest request_;
  JobState state_ = JobState::QUEUED;
  std::string error_;
  SteadyClock::time_point submitted_, started_, streaming_, finished_;
  double submitted_unix_ = 0;
  double elapsed_before_ = 0;  // run time before a coordinator restart

  // Set while planning/running; dropped when the job ends.
  std::shared_ptr<const Graph> graph_;
  std::shared_ptr<const Archive> archive_;
  std::vector<NpyFile> inputs_;
  std::vector<size_t> released_;    // per input: bytes from its start whose pages were given back
  std::vector<InputShape> shapes_;  // a full micro-batch's inputs, what every plan is made for
  std::string backend_;
  JobPlan plan_;
  uint32_t pipeline_ = 0;            // the plan's generation: bumped by every re-plan
  std::set<uint32_t> workers_;       // every worker holding one of its stages in the current plan
  std::set<uint32_t> past_workers_;  // every worker that held one in any plan (late results)
  std::map<uint64_t, PendingAssignment> pending_;  // by AssignStage request id
  std::string recovering_;                         // while re-planning after a loss: what was lost
  std::vector<std::string> build_deaths_;          // workers that died building a stage
  bool waiting_for_workers_ = false;               // re-planning found no live worker of the backend
  bool replan_posted_ = false;
  std::set<uint32_t> excluded_;  // workers this job plans over no more (unreachable)
  bool awaiting_links_ = false;  // stages ready; the coordinator's stage-0 links not yet
  SteadyClock::time_point links_deadline_;
  SteadyClock::time_point last_progress_;  // the last result (or the start of streaming)
  int stalls_ = 0;                         // progress timeouts so far
  std::map<uint32_t, double> slowdown_;    // per worker: measured / predicted, relative to the fastest
  int speed_replans_ = 0;
  int64_t pipeline_results_ = 0;  // results of the current pipeline
  SteadyClock::time_point pipeline_streaming_, next_calibration_;
  SteadyClock::time_point ready_deadline_;
  std::optional<Admission> admission_;
  std::optional<ReplicaRouter> router_;                          // the current pipeline's
  std::map<int64_t, std::vector<ReplicaRouter::Route>> copies_;  // in-flight copies per micro-batch
  std::optional<OutputAssembler> outputs_;
  std::set<int64_t> resume_written_;  // from the ledger: written before a coordinator restart
  int64_t resumed_ = 0;               // how many of those this run took over
  std::vector<int64_t> unsynced_;     // written, not yet in the ledger
  SteadyClock::time_point first_unsynced_;

  // Kept after the end: what status reports.
  int64_t samples_ = 0, samples_done_ = 0, micro_batches_total_ = 0, micro_batches_done_ = 0;
  std::vector<double> stage_seconds_sum_;
  std::vector<int64_t> stage_seconds_count_;
  std::vector<std::string> stage_workers_, stage_first_, stage_last_;
  std::vector<double> stage_predicted_;
};

}  // namespace convoy
