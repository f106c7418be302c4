#include "coordinator/job_run.h"

#include <capnp/message.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <ostream>

#include "coordinator/job_inputs.h"
#include "coordinator/ledger.h"
#include "runtime/error.h"
#include "runtime/graph/serialize.h"
#include "runtime/model.h"

namespace convoy {

namespace {

constexpr size_t kExternalizeBytes = 4096;  // weights of at least this size travel as tensor frames
constexpr uint64_t kFailedAssignment = ~uint64_t{0};
// A micro-batch is sent again at most this many times (docs/coordinator.md, "Worker loss"): one that
// keeps failing (bad data) or keeps being lost fails the job instead of looping.
constexpr int kMaxReplays = 3;
// Workers of one job that may die while building its stages before the job is failed: a stage that
// crashes its worker (a compiler or driver fault on that graph) would otherwise be re-planned onto
// every live worker in turn and take the whole cluster down.
constexpr size_t kMaxBuildDeaths = 2;
// Ledger group commit: written micro-batches are made durable and recorded at least this often.
constexpr size_t kLedgerBatch = 64;
constexpr auto kLedgerInterval = std::chrono::milliseconds(100);
// The coordinator's data links to stage 0 must answer its hello this soon after the stages are ready.
constexpr auto kDataLinkTimeout = std::chrono::seconds(10);
// Progress timeouts a job survives (each re-plans it) before it fails.
constexpr int kMaxStalls = 2;
// Re-planning on measured speed: a worker this much slower than predicted (relative to the fastest)
// is a straggler; it is re-planned around when the new plan is this much faster, at most this often.
constexpr double kStragglerRatio = 1.5;
constexpr double kBetterPlan = 1.25;
constexpr int kMaxSpeedReplans = 2;
constexpr int64_t kCalibrationResults = 32;
constexpr auto kCalibrationTime = std::chrono::milliseconds(300);

double seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}
capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

JobState state_from_name(const std::string& s) {
  if (s == "done") return JobState::DONE;
  if (s == "failed") return JobState::FAILED;
  if (s == "cancelled") return JobState::CANCELLED;
  return JobState::QUEUED;
}

std::string partial_tag(uint64_t id) { return "job" + std::to_string(id); }

}  // namespace

const char* job_state_name(JobState s) {
  switch (s) {
    case JobState::QUEUED:
      return "queued";
    case JobState::PLANNING:
      return "planning";
    case JobState::RUNNING:
      return "running";
    case JobState::DONE:
      return "done";
    case JobState::FAILED:
      return "failed";
    case JobState::CANCELLED:
      return "cancelled";
  }
  return "?";
}

template <typename... Args>
void JobRun::info(Args&&... args) {
  env_.log << "info: job " << id_ << ": " << str_cat(std::forward<Args>(args)...) << std::endl;
}
template <typename... Args>
void JobRun::warn(Args&&... args) {
  env_.log << "warning: job " << id_ << ": " << str_cat(std::forward<Args>(args)...) << std::endl;
}

JobRun::JobRun(JobEnv& env, uint64_t id, JobRequest request)
    : env_(env),
      id_(id),
      request_(std::move(request)),
      submitted_(env.clock.now()),
      submitted_unix_(unix_now()) {
  if (env_.ledger) {
    LedgerJob rec;
    rec.id = id_;
    rec.name = request_.name;
    rec.job_file = request_.job_file;
    rec.model = request_.model_path;
    rec.output = request_.output;
    rec.backend = request_.backend;
    rec.inputs = request_.input_paths;
    rec.batch_size = request_.batch_size;
    rec.submitted_unix = submitted_unix_;
    env_.ledger->add(rec);
  }
}

JobRun::JobRun(JobEnv& env, const LedgerJob& rec) : env_(env), id_(rec.id), submitted_(env.clock.now()) {
  request_.name = rec.name;
  request_.job_file = rec.job_file;
  request_.model_path = rec.model;
  request_.output = rec.output;
  request_.backend = rec.backend;
  request_.input_paths = rec.inputs;
  request_.batch_size = rec.batch_size;
  submitted_unix_ = rec.submitted_unix;
  samples_ = rec.samples;
  micro_batches_total_ = rec.micro_batches_total;
  micro_batches_done_ = rec.micro_batches_done;
  samples_done_ = rec.samples_done;
  elapsed_before_ = rec.elapsed_seconds;
  if (rec.ended()) {
    state_ = state_from_name(rec.state);
    error_ = rec.error;
    finished_ = submitted_;
    // A job that ended while its outputs were partial leaves nothing behind.
    OutputAssembler::remove_partials(request_.output, partial_tag(id_));
    return;
  }
  // The next plan is a new generation: nothing of the old coordinator's pipeline is taken for it.
  pipeline_ = rec.pipeline + 1;
  resume_written_.insert(rec.written.begin(), rec.written.end());
}

JobRun::~JobRun() = default;

// --- planning --------------------------------------------------------------------------------------

void JobRun::start() {
  state_ = JobState::PLANNING;
  started_ = env_.clock.now();
  info("planning over ", env_.workers.size(), " worker(s)");
  try {
    LoadOptions options;
    options.num_inputs = static_cast<int>(request_.input_paths.size());
    Model model = load_model(request_.model_path, env_.registry, options);
    archive_ = model.archive;
    graph_ = std::shared_ptr<const Graph>(std::move(model.graph));
    JobInputs in =
        open_job_inputs(request_.job_file, request_.input_paths, model.input_names, request_.batch_size);
    inputs_ = std::move(in.files);
    shapes_ = std::move(in.shapes);
    if (!resume_written_.empty() &&
        (in.samples != samples_ || micro_batches(in.samples, request_.batch_size) != micro_batches_total_)) {
      warn("the inputs now hold ", in.samples, " samples, the ledger recorded ", samples_,
           ": starting over instead of resuming");
      resume_written_.clear();
    }
    samples_ = in.samples;
    micro_batches_total_ = micro_batches(samples_, request_.batch_size);
    backend_ = env_.workers.pick_backend(request_.backend, env_.config.backend);
    if (env_.ledger) env_.ledger->running(id_, pipeline_, samples_, micro_batches_total_);
    env_.workers.live_devices(backend_);  // an error naming the backends there are when none runs it
    plan_stages(plan_devices());
  } catch (const std::exception& e) {
    end(JobState::FAILED, e.what());
  }
}

std::string JobRun::preview_plan(JobEnv& env, const JobRequest& request) {
  LoadOptions options;
  options.num_inputs = static_cast<int>(request.input_paths.size());
  Model model = load_model(request.model_path, env.registry, options);
  std::shared_ptr<const Graph> graph(std::move(model.graph));
  JobInputs in =
      open_job_inputs(request.job_file, request.input_paths, model.input_names, request.batch_size);
  return plan_job(graph,
                  env.workers.live_devices(env.workers.pick_backend(request.backend, env.config.backend)),
                  in.shapes,
                  PlanSettings{env.config.max_in_flight, micro_batches(in.samples, request.batch_size),
                               env.config.max_replicas, env.config.op_overhead_us * 1e-6})
      .text;
}

// Plans the loaded job over `devices` and assigns every stage replica, as pipeline `pipeline_`.
void JobRun::plan_stages(const std::vector<WorkerDevice>& devices) {
  plan_ = plan_job(graph_, devices, shapes_,
                   PlanSettings{env_.config.max_in_flight, micro_batches_total_, env_.config.max_replicas,
                                env_.config.op_overhead_us * 1e-6});
  size_t n = plan_.stages.size();
  CONVOY_CHECK(n > 0, "the plan has no stages");
  stage_seconds_sum_.assign(n, 0);
  stage_seconds_count_.assign(n, 0);
  stage_workers_.assign(n, "");
  stage_first_.clear();
  stage_last_.clear();
  stage_predicted_.clear();
  for (size_t s = 0; s < n; ++s) {
    const AssignedStage& st = plan_.stages[s];
    CONVOY_CHECK(!st.replicas.empty(), "stage ", s, " of the plan has no replicas");
    for (const StageReplica& r : st.replicas)
      stage_workers_[s] += (stage_workers_[s].empty() ? "" : ",") + r.worker;
    stage_first_.push_back(st.first_op);
    stage_last_.push_back(st.last_op);
    stage_predicted_.push_back(st.predicted_seconds);
  }
  env_.log << plan_.text;
  env_.log.flush();
  std::vector<size_t> replicas;
  for (const AssignedStage& st : plan_.stages) replicas.push_back(st.replicas.size());
  router_.emplace(replicas, stage_predicted_, env_.config.max_in_flight);
  copies_.clear();
  ready_deadline_ = env_.clock.now() + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(env_.config.stage_ready_timeout_s));
  for (uint32_t s = 0; s < n; ++s)
    for (uint32_t r = 0; r < plan_.stages[s].replicas.size(); ++r) {
      const StageReplica& rep = plan_.stages[s].replicas[r];
      Worker* w = env_.workers.find(rep.worker_id);
      CONVOY_ASSERT(w, "the plan names worker ", rep.worker_id, " that is not registered");
      workers_.insert(rep.worker_id);
      past_workers_.insert(rep.worker_id);
      assign(s, r, *w, false);
    }
}

void JobRun::assign(uint32_t s, uint32_t r, Worker& w, bool send_all_weights) {
  const AssignedStage& st = plan_.stages[s];
  const StageReplica& rep = st.replicas[r];
  uint64_t request = env_.next_request_id++;
  wire::OutMessage m;
  auto env = m.envelope();
  env.setRequestId(request);
  auto a = env.getBody().initAssignStage();
  a.setJob(id_);
  a.setPipeline(pipeline_);
  a.setStage(s);
  a.setReplica(r);
  a.setDevice(rep.device);
  a.setBackend(backend_);
  std::vector<ExternalWeight> external;
  serialize_graph_into(*st.graph, a.initGraph(), kExternalizeBytes, &external);
  auto refs = a.initWeights(static_cast<unsigned>(external.size()));
  capnp::MallocMessageBuilder scratch;  // add_tensor fills a TensorMeta we do not need
  auto meta = scratch.initRoot<schema::TensorMeta>();
  uint64_t bytes_sent = 0;
  for (size_t i = 0; i < external.size(); ++i) {
    const ExternalWeight& x = external[i];
    auto ref = refs[static_cast<unsigned>(i)];
    ref.setValueId(static_cast<uint32_t>(x.value_id));
    ref.setHash(data(x.hash));
    ref.setDtype(static_cast<int8_t>(x.tensor.dtype()));
    auto shape = ref.initShape(static_cast<unsigned>(x.tensor.dim()));
    for (int64_t d = 0; d < x.tensor.dim(); ++d) shape.set(static_cast<unsigned>(d), x.tensor.size(d));
    if (send_all_weights || !w.cached.count(x.hash)) {
      ref.setFrame(static_cast<int32_t>(m.add_tensor(x.tensor, meta)));
      bytes_sent += x.tensor.nbytes();
    }
  }
  if (s + 1 < plan_.stages.size()) {
    const AssignedStage& next = plan_.stages[s + 1];
    auto eps = a.initNext().initEndpoints(static_cast<unsigned>(next.replicas.size()));
    for (size_t i = 0; i < next.replicas.size(); ++i) {
      const Worker* nw = env_.workers.find(next.replicas[i].worker_id);
      CONVOY_ASSERT(nw, "the plan names worker ", next.replicas[i].worker_id, " that is not registered");
      eps.set(static_cast<unsigned>(i), nw->data_endpoint);
    }
  } else {
    a.initNext().initEndpoints(0);
  }
  if (!st.inputs.empty()) {
    auto warm = a.initWarmShapes(static_cast<unsigned>(st.inputs.size()));
    for (size_t i = 0; i < st.inputs.size(); ++i)
      wire::set_meta(warm[static_cast<unsigned>(i)], st.inputs[i].dtype, st.inputs[i].shape);
  } else if (s == 0) {
    auto warm = a.initWarmShapes(static_cast<unsigned>(shapes_.size()));
    for (size_t i = 0; i < shapes_.size(); ++i)
      wire::set_meta(warm[static_cast<unsigned>(i)], shapes_[i].dtype, shapes_[i].shape);
  }
  if (s == 0) env_.outbox.data_answered(w);  // connect and say hello while the stage builds
  pending_[request] = PendingAssignment{pipeline_, s, r, w.id, send_all_weights};
  info("stage ", s, " replica ", r, " -> worker ", w.name, " (", external.size(), " weights, ", bytes_sent,
       " bytes sent)");
  env_.outbox.to_worker(w, m);
}

void JobRun::on_stage_ready(Worker& w, uint64_t request, schema::StageReady::Reader ready) {
  auto it = pending_.find(request);
  if (it == pending_.end() || it->second.worker != w.id) {  // match on the fields if the id was not echoed
    it = std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) {
      return p.second.worker == w.id && p.second.pipeline == ready.getPipeline() &&
             p.second.stage == ready.getStage() && p.second.replica == ready.getReplica();
    });
  }
  if (it == pending_.end()) {
    warn("worker ", w.name, ": StageReady for pipeline ", ready.getPipeline(), " stage ", ready.getStage(),
         " that is not awaited; ignored");
    return;
  }
  const PendingAssignment a = it->second;
  CONVOY_CHECK(
      ready.getStage() == a.stage && ready.getReplica() == a.replica && ready.getPipeline() == a.pipeline,
      "StageReady names job ", ready.getJob(), " pipeline ", ready.getPipeline(), " stage ", ready.getStage(),
      " replica ", ready.getReplica(), " but request ", request, " assigned pipeline ", a.pipeline, " stage ",
      a.stage, " replica ", a.replica);
  std::set<std::string> cache;
  for (auto h : ready.getCachedWeights()) {
    CONVOY_CHECK(h.size() == 32, "StageReady.cachedWeights: a hash of ", h.size(), " bytes");
    cache.insert(str(h));
  }
  pending_.erase(it);
  w.cached = std::move(cache);
  double compile = ready.getCompileSeconds();
  info("stage ", a.stage, " replica ", a.replica, " ready on ", w.name, " (compile ",
       std::isfinite(compile) ? compile : 0.0, " s, ", ready.getWeightBytesReceived(), " weight bytes)");
  if (state_ != JobState::PLANNING || !pending_.empty()) return;
  all_stages_ready();
}

void JobRun::all_stages_ready() {
  for (const StageReplica& r : plan_.stages[0].replicas) {
    const Worker* w = env_.workers.find(r.worker_id);
    if (w && !env_.outbox.data_answered(*w)) {
      if (!awaiting_links_) links_deadline_ = env_.clock.now() + kDataLinkTimeout;
      awaiting_links_ = true;
      return;
    }
  }
  awaiting_links_ = false;
  begin_streaming();
}

void JobRun::on_data_link_answered() {
  if (state_ == JobState::PLANNING && awaiting_links_ && pending_.empty()) all_stages_ready();
}

void JobRun::exclude_unreachable(const std::string& endpoint, const std::string& why) {
  for (const auto& [wid, w] : env_.workers.all())
    if (w.data_endpoint == endpoint) {
      excluded_.insert(wid);
      warn(why, "; worker ", w.name, " is left out of this job's plans");
    }
  recover(why);
}

// Every stage replica of the current plan is ready: stream (again, after a re-plan).
void JobRun::begin_streaming() {
  state_ = JobState::RUNNING;
  uint32_t widest = 1;
  for (const AssignedStage& st : plan_.stages) widest = std::max<uint32_t>(widest, st.replicas.size());
  // Credits per pipeline: a stage with k replicas is k pipelines' worth of work in flight.
  uint32_t credits = env_.config.max_in_flight * widest;
  if (admission_) {  // a re-planned pipeline: the outputs and what is done so far carry over
    admission_->set_limit(credits);
    info("running again on pipeline ", pipeline_, ", replaying ", admission_->requeued(), " micro-batch(es)");
    last_progress_ = env_.clock.now();
    pipeline_results_ = 0;
    pipeline_streaming_ = last_progress_;
    recovering_.clear();
    admit();
    return;
  }
  streaming_ = env_.clock.now();
  last_progress_ = streaming_;
  pipeline_results_ = 0;
  pipeline_streaming_ = streaming_;
  bool resume = !resume_written_.empty();
  if (resume &&
      !std::filesystem::exists(OutputAssembler::partial_path(request_.output, 0, partial_tag(id_)))) {
    warn("the ledger has ", resume_written_.size(), " micro-batch(es) written but ",
         OutputAssembler::partial_path(request_.output, 0, partial_tag(id_)),
         " is gone: computing every micro-batch again");
    resume_written_.clear();
    resume = false;
  }
  // The output files open from the first result that comes: when every micro-batch was written
  // before the restart (it stopped between the last record and the commit), the last one is
  // computed again, rewriting the same bytes.
  if (resume && static_cast<int64_t>(resume_written_.size()) >= micro_batches_total_)
    resume_written_.erase(std::prev(resume_written_.end()));
  admission_.emplace(micro_batches_total_, credits, resume_written_);
  resumed_ = static_cast<int64_t>(resume_written_.size());
  micro_batches_done_ = admission_->done();
  samples_done_ = 0;
  for (int64_t seq : resume_written_)
    samples_done_ +=
        micro_batch_end(seq, samples_, request_.batch_size) - micro_batch_begin(seq, request_.batch_size);
  outputs_.emplace(request_.output, samples_, request_.batch_size,
                   str_cat("job ", id_, " (", request_.model_path, ")"),
                   env_.ledger ? partial_tag(id_) : std::string(), resume);
  if (resume)
    info("resuming from the ledger: ", resume_written_.size(), " of ", micro_batches_total_,
         " micro-batches were written before the restart");
  info("running, ", micro_batches_total_, " micro-batches of ", request_.batch_size, " samples");
  admit();
}

void JobRun::admit() {
  while (state_ == JobState::RUNNING && admission_->can_admit()) {
    std::optional<ReplicaRouter::Route> route = router_->pick();
    if (!route) break;  // every replica of some stage is full: the next result makes room
    int64_t seq = admission_->admit();
    send_micro_batch(seq, *route);
  }
  if (state_ == JobState::RUNNING) send_backups();
}

void JobRun::send_micro_batch(int64_t seq, const ReplicaRouter::Route& route) {
  int64_t begin = micro_batch_begin(seq, request_.batch_size),
          end = micro_batch_end(seq, samples_, request_.batch_size);
  const StageReplica& rep = plan_.stages[0].replicas[route[0]];
  const Worker* w = env_.workers.find(rep.worker_id);
  CONVOY_ASSERT(w, "stage 0 runs on worker ", rep.worker_id, " that is not registered");
  wire::OutMessage m;
  auto mb = m.envelope().getBody().initMicroBatch();
  mb.setJob(id_);
  mb.setPipeline(pipeline_);
  mb.setSeq(static_cast<uint64_t>(seq));
  mb.setStage(0);
  auto metas = mb.initTensors(static_cast<unsigned>(inputs_.size()));
  for (size_t i = 0; i < inputs_.size(); ++i)
    m.add_tensor(inputs_[i].slice(begin, end), metas[static_cast<unsigned>(i)]);  // zero-copy
  mb.initStageSeconds(0);
  auto r = mb.initRoute(static_cast<unsigned>(route.size()));
  for (size_t s = 0; s < route.size(); ++s) r.set(static_cast<unsigned>(s), route[s]);
  try {
    env_.outbox.to_data(*w, m);
  } catch (const std::exception& e) {
    recover(str_cat("cannot send micro-batch ", seq, " to worker ", w->name, " (", e.what(), ")"));
    return;
  }
  router_->sent(route);
  copies_[seq].push_back(route);
}

void JobRun::send_backups() {
  // The tail: nothing new to admit, yet micro-batches outstanding and replicas idle.
  if (admission_->admitted() < admission_->total() || admission_->requeued() > 0) return;
  for (auto& [seq, copies] : copies_) {
    if (copies.size() != 1) continue;  // one backup per micro-batch
    std::optional<ReplicaRouter::Route> route = router_->pick_idle(copies.front());
    if (!route) return;
    ++env_.counters.backup_copies;
    info("micro-batch ", seq, ": a backup copy on an idle replica (the first result is written)");
    send_micro_batch(seq, *route);
    if (state_ != JobState::RUNNING) return;
  }
}

// --- results ---------------------------------------------------------------------------------------

void JobRun::on_result(uint32_t worker_id, const std::string& worker, const wire::InMessage& msg,
                       schema::Result::Reader r) {
  // A late result of a cancelled or failed job, or one before anything was admitted, is dropped.
  // While a re-plan is under way (planning) the old pipeline's late results still count.
  if (!active() || !admission_) return;
  CONVOY_CHECK(workers_.count(worker_id) || past_workers_.count(worker_id), "Result for job ", id_,
               " from worker ", worker, " that holds none of its stages");
  uint32_t pipeline = r.getPipeline();
  CONVOY_CHECK(pipeline <= pipeline_, "Result.pipeline ", pipeline, " (job ", id_, " is on pipeline ",
               pipeline_, ")");
  uint64_t seq = r.getSeq();
  CONVOY_CHECK(seq < static_cast<uint64_t>(admission_->admitted()), "Result for job ", id_, " micro-batch ",
               seq, " that was never sent");
  if (!admission_->outstanding(static_cast<int64_t>(seq))) {  // written already: never twice
    info("ignored a result for micro-batch ", seq, " (pipeline ", pipeline, ") that is already written");
    return;
  }
  if (pipeline != pipeline_)
    info("accepted a late result for micro-batch ", seq, " from pipeline ", pipeline);
  auto metas = r.getTensors();
  CONVOY_CHECK(metas.size() == msg.tensor_frames(), "Result.tensors lists ", metas.size(), " tensors but ",
               msg.tensor_frames(), " frames came");
  std::vector<Tensor> outs;
  for (uint32_t i = 0; i < metas.size(); ++i)
    outs.push_back(msg.tensor(i, metas[i], str_cat("Result.tensors[", i, "]")));
  try {
    outputs_->write(static_cast<int64_t>(seq), outs);
  } catch (const Error& e) {
    end(JobState::FAILED, e.what());
    return;
  }
  auto secs = r.getStageSeconds();
  if (pipeline != pipeline_) {
    // another plan's stages: not this plan's measured times
  } else if (secs.size() == stage_seconds_sum_.size()) {
    for (uint32_t s = 0; s < secs.size(); ++s)
      if (std::isfinite(secs[s]) && secs[s] >= 0) {
        stage_seconds_sum_[s] += secs[s];
        ++stage_seconds_count_[s];
      }
  } else {
    warn("micro-batch ", seq, ": Result.stageSeconds has ", secs.size(), " entries for ",
         stage_seconds_sum_.size(), " stages; ignored");
  }
  admission_->complete(static_cast<int64_t>(seq));
  last_progress_ = env_.clock.now();
  if (auto c = copies_.find(static_cast<int64_t>(seq)); c != copies_.end() && pipeline == pipeline_) {
    // The copy whose last stage is the sender measured these times; the others are over too.
    std::vector<double> measured;
    for (double x : secs) measured.push_back(x);
    size_t last = plan_.stages.size() - 1;
    bool credited = false;
    for (const ReplicaRouter::Route& route : c->second) {
      bool mine =
          !credited && route.size() > last && plan_.stages[last].replicas[route[last]].worker_id == worker_id;
      router_->done(route, mine ? measured : std::vector<double>{});
      credited = credited || mine;
    }
    copies_.erase(c);
    ++pipeline_results_;
  }
  release_consumed_inputs();
  samples_done_ +=
      micro_batch_end(seq, samples_, request_.batch_size) - micro_batch_begin(seq, request_.batch_size);
  ++micro_batches_done_;
  if (unsynced_.empty()) first_unsynced_ = env_.clock.now();
  unsynced_.push_back(static_cast<int64_t>(seq));
  if (admission_->finished()) {
    end(JobState::DONE, "");
    return;
  }
  try {
    flush_written(false);
  } catch (const Error& e) {
    end(JobState::FAILED, e.what());
    return;
  }
  if (pipeline_results_ % kCalibrationResults == 0 && pipeline_results_ > 0) recalibrate();
  if (state_ == JobState::RUNNING) admit();
}

std::vector<WorkerDevice> JobRun::plan_devices() const {
  std::vector<WorkerDevice> devices = env_.workers.usable_devices(backend_, excluded_);
  for (WorkerDevice& d : devices) {
    auto it = slowdown_.find(d.worker_id);
    if (it != slowdown_.end()) d.slowdown = it->second;
  }
  return devices;
}

void JobRun::recalibrate() {
  SteadyClock::time_point now = env_.clock.now();
  if (speed_replans_ >= kMaxSpeedReplans || now - pipeline_streaming_ < kCalibrationTime ||
      now < next_calibration_)
    return;
  next_calibration_ = now + std::chrono::milliseconds(250);  // a plan_job four times a second at most
  // ratio: measured seconds per micro-batch over predicted, per stage replica.
  double best = 0;
  std::vector<std::vector<double>> ratio(plan_.stages.size());
  for (size_t s = 0; s < plan_.stages.size(); ++s) {
    double predicted = plan_.stages[s].predicted_seconds;
    if (!(predicted > 0)) return;  // no estimate to compare with
    for (size_t r = 0; r < plan_.stages[s].replicas.size(); ++r) {
      ratio[s].push_back(router_->estimate(s, r) / predicted);
      best = best > 0 ? std::min(best, ratio[s].back()) : ratio[s].back();
    }
  }
  if (!(best > 0)) return;
  std::map<uint32_t, double> slow = slowdown_;
  std::string suspect;
  for (size_t s = 0; s < plan_.stages.size(); ++s)
    for (size_t r = 0; r < ratio[s].size(); ++r) {
      double x = ratio[s][r] / best;
      if (x < kStragglerRatio) continue;
      uint32_t wid = plan_.stages[s].replicas[r].worker_id;
      double& f = slow.emplace(wid, 1.0).first->second;
      f = std::max(f, (slowdown_.count(wid) ? slowdown_.at(wid) : 1.0) * x);
      if (suspect.empty())
        suspect = str_cat("stage ", s, " on worker ", plan_.stages[s].replicas[r].worker, " runs ", x,
                          "x slower than predicted, relative to the fastest stage");
    }
  if (suspect.empty()) return;
  // What the current plan sustains, measured: results per second since it began streaming (a
  // stage's compute times miss what it loses outside them, such as a process that is not scheduled).
  double current = static_cast<double>(pipeline_results_) / seconds(now - pipeline_streaming_);
  std::map<uint32_t, double> keep = slowdown_;
  slowdown_ = slow;
  double better = 0;
  try {
    JobPlan next = plan_job(graph_, plan_devices(), shapes_,
                            PlanSettings{env_.config.max_in_flight, micro_batches_total_,
                                         env_.config.max_replicas, env_.config.op_overhead_us * 1e-6});
    better = next.throughput / best;  // in measured units: the fastest ran at `best` x its prediction
  } catch (const std::exception&) {
    better = 0;
  }
  if (!(better > kBetterPlan * current)) {
    info(suspect, "; a plan with the measured speeds would sustain ", better, " micro-batches/s against ",
         current, " now: keeping this one");
    slowdown_ = keep;  // no better plan: carry on, and look again later
    return;
  }
  ++speed_replans_;
  recover(str_cat(suspect, "; re-planning with the measured speeds (", better, " vs ", current,
                  " micro-batches/s)"));
}

void JobRun::flush_written(bool force) {
  if (unsynced_.empty()) return;
  if (!env_.ledger || !outputs_) {
    unsynced_.clear();
    return;
  }
  if (!force && unsynced_.size() < kLedgerBatch && env_.clock.now() - first_unsynced_ < kLedgerInterval)
    return;
  outputs_->sync();  // the rows are durable before the ledger says they are written
  env_.ledger->written(id_, unsynced_, micro_batches_done_, samples_done_);
  ++env_.counters.ledger_commits;
  unsynced_.clear();
}

// Input pages of finished micro-batches go back to the kernel (they are clean pages of a private
// file mapping we never write: touching them again re-reads the file), so the coordinator's
// resident memory stays flat however big the inputs are.
void JobRun::release_consumed_inputs() {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  int64_t rows = std::min(samples_, micro_batch_begin(admission_->lowest_outstanding(), request_.batch_size));
  released_.resize(inputs_.size(), 0);
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const Tensor& t = inputs_[i].tensor();
    if (t.numel() == 0) continue;
    auto base = reinterpret_cast<uintptr_t>(t.raw_data());
    uintptr_t done = base + static_cast<uintptr_t>(rows) * (t.nbytes() / static_cast<size_t>(t.size(0)));
    uintptr_t from = (base + released_[i] + page - 1) / page * page, to = done / page * page;
    if (to <= from) continue;
    madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
    released_[i] = to - base;
  }
}

// --- failures and recovery (docs/coordinator.md, "Worker loss") -----------------------------------

void JobRun::on_stage_failed(const std::string& worker, schema::StageFailed::Reader f) {
  std::string message = str(f.getMessage());
  if (!active()) return;
  if (f.getPipeline() != pipeline_) {  // a replaced pipeline: its micro-batches are requeued already
    info("ignored stageFailed of replaced pipeline ", f.getPipeline(), " from worker ", worker, ": ",
         message);
    return;
  }
  if (f.getSeq() == kFailedAssignment) {
    std::string unreachable = str(f.getUnreachable());
    if (f.getKind() == schema::StageFailed::Kind::TRANSPORT && !unreachable.empty()) {
      exclude_unreachable(unreachable, str_cat("stage ", f.getStage(), " on worker ", worker,
                                               " cannot reach the next stage at ", unreachable));
      return;
    }
    end(JobState::FAILED, str_cat("worker ", worker, " could not build stage ", f.getStage(), ": ", message));
    return;
  }
  std::string what =
      str_cat("worker ", worker, " stage ", f.getStage(), " micro-batch ", f.getSeq(), ": ", message);
  using Kind = schema::StageFailed::Kind;
  const Kind kind = f.getKind();
  if (state_ != JobState::RUNNING || !admission_ || kind == Kind::BAD_INPUT || kind == Kind::INTERNAL) {
    // Bad data, an unsupported op or a broken invariant: every replay would fail the same way.
    end(JobState::FAILED, what);
    return;
  }
  // A device or transport fault (or an older worker that does not say): replay on a new plan; a
  // micro-batch that fails again on fresh pipelines fails the job once it has used up its replays.
  recover(what, static_cast<int64_t>(f.getSeq()));
}

bool JobRun::on_worker_error(const Worker& w, uint64_t request, schema::ErrorReply::Reader e) {
  auto it = pending_.find(request);
  if (it == pending_.end() || it->second.worker != w.id) return false;
  std::string message = str(e.getMessage());
  PendingAssignment a = it->second;
  pending_.erase(it);
  if (!active()) return true;
  Worker* live = env_.workers.find(a.worker);
  if (e.getKind() == schema::ErrorReply::Kind::MISSING_WEIGHTS && !a.resent_all && live) {
    warn("worker ", w.name, ": ", message, "; sending stage ", a.stage, " again with every weight");
    live->cached.clear();
    assign(a.stage, a.replica, *live, true);
    return true;
  }
  if (e.getKind() == schema::ErrorReply::Kind::RETRY_LATER && live) {  // draining: plan without it
    live->refusing = true;
    recover(str_cat("worker ", w.name, " refused stage ", a.stage, " (", message, ")"));
    return true;
  }
  end(JobState::FAILED, str_cat("worker ", w.name, " refused stage ", a.stage, ": ", message));
  return true;
}

void JobRun::on_worker_lost(uint32_t wid, const std::string& name, const std::string& why, bool died) {
  std::vector<PendingAssignment> building;
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->second.worker != wid) {
      ++p;
      continue;
    }
    building.push_back(p->second);
    p = pending_.erase(p);
  }
  if (!active()) return;
  if (died)
    for (const PendingAssignment& a : building)
      if (a.pipeline == pipeline_ && quarantine(a, name)) return;
  if (workers_.count(wid)) recover(str_cat("worker ", name, " lost (", why, ")"));
}

void JobRun::on_worker_registered() {
  if (active() && waiting_for_workers_ && !replan_posted_) replan();
}

// Notes that worker `name` died building stage `a.stage`; once kMaxBuildDeaths workers have, the
// job fails naming each stage and its ops, and true is returned.
bool JobRun::quarantine(const PendingAssignment& a, const std::string& name) {
  std::string what = str_cat("worker ", name, " died building stage ", a.stage);
  if (a.stage < stage_first_.size())
    what += str_cat(" (", stage_first_[a.stage], " .. ", stage_last_[a.stage], ")");
  build_deaths_.push_back(what);
  warn(what, " [", build_deaths_.size(), " of at most ", kMaxBuildDeaths, "]");
  if (build_deaths_.size() < kMaxBuildDeaths) return false;
  std::string all;
  for (const std::string& d : build_deaths_) all += (all.empty() ? "" : "; ") + d;
  end(JobState::FAILED,
      str_cat("quarantined: ", build_deaths_.size(), " workers died while building its stages (", all,
              "); a stage that crashes its worker is not assigned again"));
  return true;
}

// The workers holding the job's stages release them; its outstanding assignments are forgotten.
void JobRun::release_stages() {
  for (uint32_t wid : workers_) {
    const Worker* w = env_.workers.find(wid);
    if (!w) continue;
    wire::OutMessage m;
    m.envelope().getBody().initReleaseStage().setJob(id_);
    env_.outbox.to_worker(*w, m);
  }
  pending_.clear();
  workers_.clear();
}

// The job's current pipeline cannot go on (`why`: a worker lost, a micro-batch failed): its stages
// are released on the workers still holding them, every micro-batch in flight goes back to the
// queue, and a new plan (the next pipeline generation) is made over the live workers once this
// handler is done (so several workers found dead at once make one re-plan). `failed_seq` is the
// micro-batch a stageFailed named, if any.
void JobRun::recover(const std::string& why, std::optional<int64_t> failed_seq) {
  if (!active()) return;
  release_stages();
  ++pipeline_;
  copies_.clear();
  recovering_ += (recovering_.empty() ? "" : "; ") + why;
  if (admission_) {
    std::vector<int64_t> requeued = admission_->requeue_in_flight();
    env_.counters.replays += requeued.size();
    auto over = [&](int64_t seq) { return admission_->replays(seq) > kMaxReplays; };
    if (failed_seq && over(*failed_seq)) {
      end(JobState::FAILED, str_cat(why, " (micro-batch ", *failed_seq, " failed on ", kMaxReplays + 1,
                                    " pipelines; replays are capped at ", kMaxReplays, " per micro-batch)"));
      return;
    }
    for (int64_t seq : requeued)
      if (over(seq)) {
        end(JobState::FAILED, str_cat("micro-batch ", seq, " was in flight on ", kMaxReplays + 1,
                                      " pipelines that failed (replays are capped at ", kMaxReplays,
                                      " per micro-batch); the last: ", why));
        return;
      }
  }
  state_ = JobState::PLANNING;
  awaiting_links_ = false;
  ready_deadline_ = env_.clock.now() + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(env_.config.stage_ready_timeout_s));
  if (replan_posted_) return;
  replan_posted_ = true;
  env_.outbox.defer([this] {
    replan_posted_ = false;
    if (active()) replan();
  });
}

// Plans a recovering job again over the live workers, or waits for one to register (bounded by
// stage_ready_timeout_s, see tick()).
void JobRun::replan() {
  std::vector<WorkerDevice> devices = plan_devices();
  size_t replay = admission_ ? admission_->requeued() : 0;
  if (devices.empty() && !env_.workers.usable_devices(backend_).empty()) {
    end(JobState::FAILED, str_cat(recovering_, "; no other worker of the ", backend_,
                                  " backend is left to plan over (the others are unreachable)"));
    return;
  }
  if (devices.empty()) {
    if (!waiting_for_workers_)
      info(recovering_, "; no live worker runs the ", backend_, " backend: waiting up to ",
           env_.config.stage_ready_timeout_s,
           " s (stage_ready_timeout_s) for one to register, then replaying ", replay, " micro-batch(es)");
    waiting_for_workers_ = true;
    return;
  }
  waiting_for_workers_ = false;
  std::set<uint32_t> over;
  for (const WorkerDevice& d : devices) over.insert(d.worker_id);
  info(recovering_, "; replaying ", replay, " micro-batch(es) on a new plan (pipeline ", pipeline_, ") over ",
       over.size(), " worker(s)");
  try {
    plan_stages(devices);
  } catch (const std::exception& e) {
    end(JobState::FAILED, str_cat(recovering_, "; re-planning failed: ", e.what()));
  }
}

void JobRun::tick() {
  if (state_ == JobState::RUNNING) {
    try {
      flush_written(false);
    } catch (const Error& e) {
      end(JobState::FAILED, e.what());
      return;
    }
    check_progress();
    return;
  }
  if (state_ == JobState::PLANNING && awaiting_links_ && env_.clock.now() > links_deadline_) {
    for (const StageReplica& r : plan_.stages[0].replicas) {
      const Worker* w = env_.workers.find(r.worker_id);
      if (w && !env_.outbox.data_answered(*w)) {
        std::string endpoint = w->data_endpoint;
        exclude_unreachable(endpoint, str_cat("the coordinator cannot reach worker ", w->name,
                                              "'s data endpoint ", endpoint, " (no answer to hello within ",
                                              std::chrono::duration<double>(kDataLinkTimeout).count(),
                                              " s; a worker on another host must advertise an address the "
                                              "coordinator can dial: set its advertise_host)"));
        return;
      }
    }
  }
  if (state_ != JobState::PLANNING || env_.clock.now() <= ready_deadline_) return;
  if (waiting_for_workers_)
    end(JobState::FAILED,
        str_cat(recovering_, "; no live worker of the ", backend_, " backend registered within ",
                env_.config.stage_ready_timeout_s, " s (stage_ready_timeout_s)"));
  else
    end(JobState::FAILED,
        str_cat(recovering_.empty() ? "" : recovering_ + "; re-planned, but ", "stages not ready after ",
                env_.config.stage_ready_timeout_s, " s (stage_ready_timeout_s)"));
}

// "stage 0 on w1 (tcp://...) -> stage 1 on w2 (tcp://...), w3 (...) -> the coordinator"
std::string JobRun::describe_pipeline() const {
  std::string out;
  for (size_t s = 0; s < plan_.stages.size(); ++s) {
    out += str_cat(s ? " -> " : "", "stage ", s, " on ");
    const auto& reps = plan_.stages[s].replicas;
    for (size_t r = 0; r < reps.size(); ++r) {
      const Worker* w = env_.workers.find(reps[r].worker_id);
      out += str_cat(r ? ", " : "", reps[r].worker, " (", w ? w->data_endpoint : std::string("gone"), ")");
    }
  }
  return out + " -> the coordinator";
}

// No result for progress_timeout_s while micro-batches are in flight: something on the pipeline
// swallows them without an error (a link that never connects, a frozen process that still sends
// heartbeats). The pipeline is named and re-planned; after kMaxStalls the job fails with it.
void JobRun::check_progress() {
  double limit = env_.config.progress_timeout_s;
  if (limit <= 0 || !admission_ || admission_->in_flight() == 0) return;
  double idle = seconds(env_.clock.now() - last_progress_);
  if (idle < limit) return;
  ++stalls_;
  std::string why =
      str_cat("no result for ", idle, " s (progress_timeout_s ", limit, ") with ", admission_->in_flight(),
              " micro-batch(es) in flight (lowest ", admission_->lowest_outstanding(), ") on pipeline ",
              pipeline_, ": ", describe_pipeline());
  warn(why);
  if (stalls_ >= kMaxStalls) {
    end(JobState::FAILED, str_cat(why, "; stalled ", stalls_, " times, giving up"));
    return;
  }
  recover(why);
}

// --- the end ---------------------------------------------------------------------------------------

void JobRun::end(JobState state, const std::string& error) {
  if (ended()) return;
  std::string why = error;
  if (state == JobState::DONE) {
    try {
      flush_written(true);  // the ledger knows every micro-batch is written before the files appear
      outputs_->commit();
    } catch (const Error& e) {
      state = JobState::FAILED;
      why = e.what();
    }
  }
  state_ = state;
  error_ = why;
  finished_ = env_.clock.now();
  if (state == JobState::DONE)
    info("done: ", samples_, " samples in ", seconds(finished_ - started_), " s (",
         micro_batches_done_ - resumed_, " micro-batches computed by this coordinator, ", resumed_,
         " written before a restart)");
  else
    info(job_state_name(state), why.empty() ? "" : ": ", why);
  release_stages();
  outputs_.reset();  // uncommitted files are removed
  admission_.reset();
  unsynced_.clear();
  inputs_.clear();
  plan_.stages.clear();
  graph_.reset();
  archive_.reset();
  record_ended();
  env_.outbox.job_ended(id_);
}

void JobRun::record_ended() {
  if (!env_.ledger) return;
  try {
    double elapsed =
        elapsed_before_ + (started_ != SteadyClock::time_point{} ? seconds(finished_ - started_) : 0);
    env_.ledger->ended(id_, job_state_name(state_), error_, unix_now(), elapsed, micro_batches_done_,
                       samples_done_);
  } catch (const Error& e) {
    warn("cannot record the end in the ledger: ", e.what());
  }
}

void JobRun::suspend() {
  if (ended()) return;
  try {
    flush_written(true);
  } catch (const Error& e) {
    warn("cannot record the written micro-batches: ", e.what());
  }
  release_stages();
  if (outputs_) outputs_->keep();
  info("left for the next coordinator to resume (", micro_batches_done_, " of ", micro_batches_total_,
       " micro-batches written)");
}

// --- status ----------------------------------------------------------------------------------------

double JobRun::samples_per_second() const {
  SteadyClock::time_point now = ended() ? finished_ : env_.clock.now();
  double s = streaming_ != SteadyClock::time_point{} ? seconds(now - streaming_) : 0;
  return s > 0 ? static_cast<double>(samples_done_) / s : 0;
}

std::vector<std::string> JobRun::stages_on(uint32_t worker_id) const {
  std::vector<std::string> out;
  for (size_t s = 0; s < plan_.stages.size(); ++s)
    for (const StageReplica& r : plan_.stages[s].replicas)
      if (r.worker_id == worker_id) out.push_back(str_cat("job ", id_, " stage ", s));
  return out;
}

void JobRun::fill_status(schema::JobStatus::Builder s) const {
  s.setJob(id_);
  s.setName(request_.name);
  s.setState(state_);
  s.setSamplesDone(samples_done_);
  s.setSamplesTotal(samples_);
  s.setMicroBatchesDone(micro_batches_done_);
  s.setMicroBatchesTotal(micro_batches_total_);
  SteadyClock::time_point now = ended() ? finished_ : env_.clock.now();
  s.setSamplesPerSecond(samples_per_second());
  s.setElapsedSeconds(elapsed_before_ +
                      (started_ != SteadyClock::time_point{} ? seconds(now - started_) : 0));
  s.setError(error_);
  s.setOutput(request_.output);
  auto stages = s.initStages(static_cast<unsigned>(stage_first_.size()));
  for (uint32_t i = 0; i < stage_first_.size(); ++i) {
    auto st = stages[i];
    st.setStage(i);
    const std::string& list = stage_workers_[i];
    size_t n = list.empty() ? 0 : std::count(list.begin(), list.end(), ',') + 1;
    auto ws = st.initWorkers(static_cast<unsigned>(n));
    size_t pos = 0;
    for (unsigned k = 0; k < n; ++k) {
      size_t comma = list.find(',', pos);
      ws.set(k, list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      pos = comma + 1;
    }
    st.setFirstOp(stage_first_[i]);
    st.setLastOp(stage_last_[i]);
    st.setPredictedSeconds(stage_predicted_[i]);
    st.setMeasuredSeconds(stage_seconds_count_[i] ? stage_seconds_sum_[i] / stage_seconds_count_[i] : 0);
  }
}

}  // namespace convoy
