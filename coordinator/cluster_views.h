// What the coordinator reads out of, and into, its state for clients: a checked SubmitJob, the
// `workers` reply, the /metrics snapshot. Free functions over the worker registry and the job runs,
// so server.cpp stays the adapter that owns the sockets.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>

#include "coordinator/http.h"
#include "coordinator/job_run.h"
#include "coordinator/worker_registry.h"

namespace convoy {

using JobRuns = std::map<uint64_t, std::unique_ptr<JobRun>>;

// Checks a SubmitJob (bounded text fields; absolute paths, resolved and confined to `roots`
// (coordinator/path_policy.h), that exist on the coordinator; a positive batch size; a known backend;
// a bounded share; with `submit`, no earlier outputs unless it overwrites) and returns what it asks
// for, with the resolved paths. Throws convoy::Error naming the field.
JobRequest read_job_request(schema::SubmitJob::Reader s, const std::vector<std::string>& roots, bool submit);

// Every registered worker with its devices, heartbeat age, memory and the active jobs' stages on it.
void fill_workers_reply(const WorkerRegistry& workers, const JobRuns& jobs,
                        schema::WorkersReply::Builder reply);

http::MetricsSnapshot metrics_snapshot(const WorkerRegistry& workers, const JobRuns& jobs,
                                       const std::set<uint64_t>& active_jobs,
                                       const CoordinatorCounters& counters);

}  // namespace convoy
