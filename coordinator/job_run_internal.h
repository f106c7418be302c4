// What the two halves of JobRun share (job_run.cpp: planning, streaming, results, the end;
// job_recovery.cpp: failures, recovery, timeouts, recalibration): its limits and small helpers.
// Private to coordinator/.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "coordinator/job_run.h"
#include "runtime/error.h"

namespace convoy::job_run_detail {

inline constexpr size_t kExternalizeBytes = 4096;  // weights of at least this size travel as tensor frames
inline constexpr uint64_t kFailedAssignment = ~uint64_t{0};
// A micro-batch is sent again at most this many times (docs/coordinator.md, "Worker loss"): one that
// keeps failing (bad data) or keeps being lost fails the job instead of looping.
inline constexpr int kMaxReplays = 3;
// Workers of one job that may die while building its stages before the job is failed: a stage that
// crashes its worker (a compiler or driver fault on that graph) would otherwise be re-planned onto
// every live worker in turn and take the whole cluster down.
inline constexpr size_t kMaxBuildDeaths = 2;
// Ledger group commit: written micro-batches are made durable and recorded at least this often.
inline constexpr size_t kLedgerBatch = 64;
inline constexpr auto kLedgerInterval = std::chrono::milliseconds(100);
// The coordinator's data links to stage 0 must answer its hello this soon after the stages are ready.
inline constexpr auto kDataLinkTimeout = std::chrono::seconds(10);
// Progress timeouts a job survives (each re-plans it) before it fails.
inline constexpr int kMaxStalls = 2;
// Re-planning on measured speed: a worker this much slower than predicted (relative to the fastest)
// is a straggler; it is re-planned around when the new plan is this much faster, at most this often.
inline constexpr double kStragglerRatio = 1.5;
inline constexpr double kBetterPlan = 1.25;
inline constexpr int kMaxSpeedReplans = 2;
inline constexpr int64_t kCalibrationResults = 32;
inline constexpr auto kCalibrationTime = std::chrono::milliseconds(300);

inline double seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

inline std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
inline std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

}  // namespace convoy::job_run_detail

namespace convoy {

template <typename... Args>
void JobRun::info(Args&&... args) {
  env_.log << "info: job " << id_ << ": " << str_cat(std::forward<Args>(args)...) << std::endl;
}
template <typename... Args>
void JobRun::warn(Args&&... args) {
  env_.log << "warning: job " << id_ << ": " << str_cat(std::forward<Args>(args)...) << std::endl;
}

}  // namespace convoy
