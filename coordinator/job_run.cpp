// JobRun's main path (coordinator/job_run.h): planning, assignment, streaming by credit, results and
// the ledger, the end and status. Failures, recovery and timeouts are in job_recovery.cpp.
#include "coordinator/job_run.h"

#include <capnp/message.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <ostream>

#include "coordinator/job_inputs.h"
#include "coordinator/job_run_internal.h"
#include "coordinator/ledger.h"
#include "runtime/error.h"
#include "runtime/graph/serialize.h"
#include "runtime/model.h"

namespace convoy {

using namespace job_run_detail;

namespace {
double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
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

JobRun::JobRun(JobEnv& env, uint64_t id, JobRequest request)
    : env_(env),
      id_(id),
      request_(std::move(request)),
      submitted_(env.clock.now()),
      submitted_unix_(unix_now()) {
  if (env_.ledger) {
    LedgerJob rec;
    rec.id = id_;
    rec.request = request_;
    rec.submitted_unix = submitted_unix_;
    env_.ledger->add(rec);
  }
}

JobRun::JobRun(JobEnv& env, const LedgerJob& rec)
    : env_(env), id_(rec.id), request_(rec.request), submitted_(env.clock.now()) {
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
    std::vector<WorkerDevice> devices = plan_devices();
    if (devices.empty()) {  // other jobs hold every worker of its backend: wait for one
      recovering_ = str_cat("every worker of the ", backend_, " backend is held by other jobs");
      ready_deadline_ =
          env_.clock.now() + std::chrono::duration_cast<SteadyClock::duration>(
                                 std::chrono::duration<double>(env_.config.stage_ready_timeout_s));
      waiting_for_workers_ = true;
      info(recovering_, ": waiting for one");
      return;
    }
    plan_stages(devices);
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
    auto route = a.initNext();
    auto eps = route.initEndpoints(static_cast<unsigned>(next.replicas.size()));
    auto keys =
        route.initKeys(env_.coordinator_key.empty() ? 0 : static_cast<unsigned>(next.replicas.size()));
    for (size_t i = 0; i < next.replicas.size(); ++i) {
      const Worker* nw = env_.workers.find(next.replicas[i].worker_id);
      CONVOY_ASSERT(nw, "the plan names worker ", next.replicas[i].worker_id, " that is not registered");
      eps.set(static_cast<unsigned>(i), nw->data_endpoint);
      if (keys.size()) keys.set(static_cast<unsigned>(i), nw->key);
    }
  } else {
    a.initNext().initEndpoints(0);
  }
  // Who may send this stage micro-batches: the coordinator for stage 0, else the previous stage's
  // workers (the worker drops anything else).
  if (!env_.coordinator_key.empty()) {
    std::vector<std::string> upstream;
    if (s == 0) {
      upstream.push_back(env_.coordinator_key);
    } else {
      for (const StageReplica& rep : plan_.stages[s - 1].replicas)
        if (const Worker* pw = env_.workers.find(rep.worker_id)) upstream.push_back(pw->key);
    }
    auto up = a.initUpstreamKeys(static_cast<unsigned>(upstream.size()));
    for (size_t i = 0; i < upstream.size(); ++i) up.set(static_cast<unsigned>(i), upstream[i]);
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

// The last stage's graph outputs, flattened as the worker flattens them (tuples and lists of tensors),
// against what it sent: a tensor of a known dtype and rank, samples on dim 0 for this micro-batch, and
// the known trailing dims. A graph whose outputs are not all tensors is checked for the count only.
void JobRun::check_output_types(const std::vector<Tensor>& outs, uint64_t seq) const {
  int64_t rows = micro_batch_end(static_cast<int64_t>(seq), samples_, request_.batch_size) -
                 micro_batch_begin(seq, request_.batch_size);
  std::vector<const Type*> expect;
  bool known = true;
  std::function<void(const Type*)> flatten = [&](const Type* t) {
    if (t && t->is(TypeKind::kTuple)) {
      for (const TypePtr& e : t->contained) flatten(e.get());
    } else if (t && t->is(TypeKind::kTensor)) {
      expect.push_back(t);
    } else {
      known = false;
    }
  };
  const Graph& last = *plan_.stages.back().graph;
  for (const Value* v : last.outputs()) flatten(v->type.get());
  if (known)
    CONVOY_CHECK(outs.size() == expect.size(), outs.size(), " tensors, the model returns ", expect.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor& t = outs[i];
    CONVOY_CHECK(t.dim() >= 1 && t.size(0) == rows, "output ", i, " is ", t.describe(),
                 " for a micro-batch of ", rows, " samples");
    if (!known) continue;
    const Type* ty = expect[i];
    if (ty->dtype)
      CONVOY_CHECK(*ty->dtype == t.dtype(), "output ", i, " is ", t.describe(), " but the model returns ",
                   dtype_name(*ty->dtype));
    if (ty->shape) {
      CONVOY_CHECK(static_cast<int64_t>(ty->shape->size()) == t.dim(), "output ", i, " is ", t.describe(),
                   " but the model returns a ", ty->shape->size(), "-dim tensor");
      for (size_t d = 1; d < ty->shape->size(); ++d)
        CONVOY_CHECK((*ty->shape)[d] < 0 || (*ty->shape)[d] == t.size(static_cast<int64_t>(d)), "output ", i,
                     " is ", t.describe(), " but the model returns ", shape_str(*ty->shape));
    }
  }
}

void JobRun::on_result(uint32_t worker_id, const std::string& worker, const wire::InMessage& msg,
                       schema::Result::Reader r) {
  // A late result of a cancelled or failed job, or one before anything was admitted, is dropped.
  // While a re-plan is under way (planning) the old pipeline's late results still count.
  if (!active() || !admission_) return;
  uint32_t pipeline = r.getPipeline();
  uint64_t seq = r.getSeq();
  // A result is written only if it comes from the worker its micro-batch was routed to at the last
  // stage of the current pipeline, with the last stage's output types (docs/security.md).
  auto dropped = [&](const char* reason, const std::string& why) {
    ++env_.counters.dropped[reason];
    warn("dropped a result for micro-batch ", seq, " (pipeline ", pipeline, ") from worker ", worker, ": ",
         why);
  };
  if (pipeline != pipeline_)
    return dropped("stale_generation",
                   str_cat("the job is on pipeline ", pipeline_, "; it is replayed there"));
  if (seq >= static_cast<uint64_t>(admission_->admitted()))
    return dropped("not_routed", "that micro-batch was never sent");
  if (!admission_->outstanding(static_cast<int64_t>(seq))) {  // written already: never twice
    info("ignored a result for micro-batch ", seq, " (pipeline ", pipeline, ") that is already written");
    return;
  }
  auto c = copies_.find(static_cast<int64_t>(seq));
  size_t last = plan_.stages.size() - 1;
  bool routed = false;
  if (c != copies_.end())
    for (const ReplicaRouter::Route& route : c->second)
      routed = routed || (route.size() > last && route[last] < plan_.stages[last].replicas.size() &&
                          plan_.stages[last].replicas[route[last]].worker_id == worker_id);
  if (!routed) return dropped("not_routed", "it was not routed to that worker's last-stage replica");
  auto metas = r.getTensors();
  std::vector<Tensor> outs;
  try {
    CONVOY_CHECK(metas.size() == msg.tensor_frames(), "Result.tensors lists ", metas.size(), " tensors but ",
                 msg.tensor_frames(), " frames came");
    for (uint32_t i = 0; i < metas.size(); ++i)
      outs.push_back(msg.tensor(i, metas[i], str_cat("Result.tensors[", i, "]")));
    check_output_types(outs, seq);
  } catch (const Error& e) {
    return dropped("wrong_types", e.what());
  }
  try {
    outputs_->write(static_cast<int64_t>(seq), outs);
  } catch (const Error& e) {
    end(JobState::FAILED, e.what());
    return;
  }
  auto secs = r.getStageSeconds();
  if (secs.size() == stage_seconds_sum_.size()) {
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
  {
    // The copy whose last stage is the sender measured these times; the others are over too.
    std::vector<double> measured;
    for (double x : secs) measured.push_back(x);
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

void JobRun::fill_status(schema::JobStatus::Builder s, bool redacted) const {
  s.setJob(id_);
  s.setState(state_);
  s.setSamplesDone(samples_done_);
  s.setSamplesTotal(samples_);
  s.setMicroBatchesDone(micro_batches_done_);
  s.setMicroBatchesTotal(micro_batches_total_);
  SteadyClock::time_point now = ended() ? finished_ : env_.clock.now();
  s.setSamplesPerSecond(samples_per_second());
  s.setElapsedSeconds(elapsed_before_ +
                      (started_ != SteadyClock::time_point{} ? seconds(now - started_) : 0));
  if (redacted) {  // another client's job: no name, paths, error text, workers or owner
    s.setRedacted(true);
    return;
  }
  s.setName(request_.name);
  s.setOwner(request_.owner_name);
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
