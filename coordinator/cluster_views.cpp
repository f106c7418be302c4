#include "coordinator/cluster_views.h"

#include <filesystem>

#include "coordinator/path_policy.h"
#include "runtime/error.h"
#include "runtime/printable.h"

namespace convoy {

namespace {

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

double seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string absolute_path(capnp::Text::Reader t, const std::string& field) {
  std::string p = str(t);
  CONVOY_CHECK(!p.empty(), "SubmitJob.", field, " is empty");
  CONVOY_CHECK(p.size() < 4096 && p.find('\0') == std::string::npos && p.find('\n') == std::string::npos,
               "SubmitJob.", field, " is not a path");
  CONVOY_CHECK(p[0] == '/', "SubmitJob.", field, " '", p,
               "' is relative (the submitter resolves paths against the job file's folder)");
  return p;
}

// Whether `p` names a regular file. A path the system cannot look up at all (a name too long, a loop
// of links, a folder it may not search) is not one either: `why` gets the reason, where the throwing
// std::filesystem call would have escaped as a std::filesystem_error instead of a refusal.
bool regular_file(const std::string& p, std::string* why) {
  std::error_code ec;
  bool yes = std::filesystem::is_regular_file(p, ec);
  *why = ec ? " (" + ec.message() + ")" : std::string();
  return yes;
}

}  // namespace

JobRequest read_job_request(schema::SubmitJob::Reader s, const std::vector<std::string>& roots, bool submit) {
  JobRequest job;
  job.job_file = wire::bounded_text(s.getJobFile(), "SubmitJob.jobFile", 4096);
  job.name = wire::bounded_text(s.getName(), "SubmitJob.name", 256);
  std::string where = job.job_file.empty() ? std::string("job") : printable(job.job_file);
  job.model_path = confine_path(absolute_path(s.getModel(), "model"), roots, where, "model");
  job.output = confine_path(absolute_path(s.getOutput(), "output"), roots, where, "output");
  auto inputs = s.getInputs();
  CONVOY_CHECK(inputs.size() > 0, "SubmitJob.inputs is empty");
  CONVOY_CHECK(inputs.size() <= 1024, "SubmitJob.inputs lists ", inputs.size(), " files (at most 1024)");
  for (uint32_t i = 0; i < inputs.size(); ++i)
    job.input_paths.push_back(confine_path(absolute_path(inputs[i], str_cat("inputs[", i, "]")), roots, where,
                                           str_cat("input ", i)));
  job.overwrite = s.getOverwrite();
  job.batch_size = s.getBatchSize();
  CONVOY_CHECK(job.batch_size > 0, "SubmitJob.batchSize must be positive, not ", job.batch_size);
  job.max_workers = s.getMaxWorkers();
  CONVOY_CHECK(job.max_workers <= 65536, "SubmitJob.maxWorkers ", job.max_workers, " (at most 65536)");
  job.backend = str(s.getBackend());  // "" is decided at planning, from the workers then registered
  CONVOY_CHECK(job.backend.empty() || job.backend == "opencl" || job.backend == "reference",
               "SubmitJob.backend '", job.backend, "' (expected opencl or reference)");
  std::string why;
  CONVOY_CHECK_KIND(kIo, regular_file(job.model_path, &why), where, ": model ", job.model_path,
                    " not found on the coordinator", why);
  for (const std::string& p : job.input_paths)
    CONVOY_CHECK_KIND(kIo, regular_file(p, &why), where, ": input ", p, " not found on the coordinator", why);
  if (submit) check_outputs_absent(job.output, job.overwrite, where);
  if (job.name.empty())
    job.name =
        std::filesystem::path(job.job_file.empty() ? job.model_path : job.job_file).filename().string();
  return job;
}

void fill_workers_reply(const WorkerRegistry& workers, const JobRuns& jobs,
                        schema::WorkersReply::Builder reply) {
  auto list = reply.initWorkers(static_cast<unsigned>(workers.size()));
  unsigned i = 0;
  SteadyClock::time_point now = SteadyClock::now();
  for (const auto& [wid, w] : workers.all()) {
    auto o = list[i++];
    o.setWorkerId(wid);
    o.setName(w.name);
    o.setHost(w.host);
    o.setDataEndpoint(w.data_endpoint);
    o.setKey(w.key);
    auto ds = o.initDevices(static_cast<unsigned>(w.devices.size()));
    for (unsigned k = 0; k < w.devices.size(); ++k) {
      const WorkerDevice& d = w.devices[k];
      auto b = ds[k];
      b.setIndex(d.index);
      b.setName(d.name);
      b.setBackend(d.backend);
      b.setMemoryBytes(d.memory_bytes);
      b.setComputeUnits(d.compute_units);
      b.setGemmGflops(d.gemm_gflops);
      b.setCopyGbps(d.copy_gbps);
      b.setProcessor(d.processor);
    }
    o.setLastHeartbeatMs(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_heartbeat).count()));
    o.setBusySeconds(w.busy_seconds);
    o.setRssBytes(w.rss);
    std::vector<std::string> stages;
    for (const auto& [jid, job] : jobs)
      if (job->active())
        for (std::string& s : job->stages_on(wid)) stages.push_back(std::move(s));
    auto ss = o.initStages(static_cast<unsigned>(stages.size()));
    for (unsigned k = 0; k < stages.size(); ++k) ss.set(k, stages[k]);
  }
}

http::MetricsSnapshot metrics_snapshot(const WorkerRegistry& workers, const JobRuns& jobs,
                                       const std::set<uint64_t>& active_jobs,
                                       const CoordinatorCounters& counters) {
  http::MetricsSnapshot m;
  m.workers = workers.size();
  for (const auto& [jid, job] : jobs) {
    switch (job->state()) {
      case JobState::QUEUED:
        ++m.jobs_queued;
        break;
      case JobState::PLANNING:
      case JobState::RUNNING:
        ++m.jobs_running;
        break;
      case JobState::DONE:
        ++m.jobs_done;
        break;
      case JobState::FAILED:
        ++m.jobs_failed;
        break;
      case JobState::CANCELLED:
        ++m.jobs_cancelled;
        break;
    }
    m.micro_batches_done_total += job->micro_batches_done();
    m.samples_done_total += job->samples_done();
    if (job->active()) {
      m.running_job = jid;
      m.running_job_samples_per_second = job->samples_per_second();
      m.micro_batches_in_flight = job->in_flight();
    }
  }
  SteadyClock::time_point now = SteadyClock::now();
  for (const auto& [wid, w] : workers.all()) {
    m.worker_list.push_back(http::WorkerMetrics{w.name, seconds(now - w.last_heartbeat), w.rss, {}});
    for (uint64_t id : active_jobs)
      if (auto it = jobs.find(id); it != jobs.end() && it->second->held_workers().count(wid))
        m.worker_list.back().jobs.push_back(id);
  }
  m.messages_dropped = counters.dropped;
  m.replays_total = counters.replays;
  m.ledger_commits_total = counters.ledger_commits;
  m.backup_copies_total = counters.backup_copies;
  return m;
}

}  // namespace convoy
