// JobRun's failure half (coordinator/job_run.h): stage failures and refused assignments, lost and
// unreachable workers, recovery onto a new pipeline, the stage-ready, data-link and progress
// deadlines, and re-planning on measured stage times (docs/coordinator.md, "Worker loss",
// "No silent stall", "Stragglers").
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "coordinator/job_run.h"
#include "coordinator/job_run_internal.h"
#include "runtime/error.h"

namespace convoy {

using namespace job_run_detail;

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

std::vector<WorkerDevice> JobRun::plan_devices() const {
  std::set<uint32_t> exclude = env_.outbox.held_by_others(id_);
  exclude.insert(excluded_.begin(), excluded_.end());
  std::vector<WorkerDevice> devices = env_.workers.usable_devices(backend_, exclude);
  for (WorkerDevice& d : devices) {
    auto it = slowdown_.find(d.worker_id);
    if (it != slowdown_.end()) d.slowdown = it->second;
  }
  uint32_t limit = request_.max_workers ? request_.max_workers : env_.config.job_workers;
  std::map<uint32_t, double> speed;  // per worker: its fastest device, slowdown applied
  for (const WorkerDevice& d : devices)
    speed[d.worker_id] = std::max(speed[d.worker_id], d.gemm_gflops / d.slowdown);
  if (limit == 0 || speed.size() <= limit) return devices;
  // The job's share: the workers it held before first, then the fastest.
  std::vector<uint32_t> order;
  for (const auto& [wid, g] : speed) order.push_back(wid);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    bool ha = past_workers_.count(a) != 0, hb = past_workers_.count(b) != 0;
    return ha != hb ? ha : speed[a] > speed[b];
  });
  std::set<uint32_t> take(order.begin(), order.begin() + limit);
  devices.erase(std::remove_if(devices.begin(), devices.end(),
                               [&](const WorkerDevice& d) { return !take.count(d.worker_id); }),
                devices.end());
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

}  // namespace convoy
