// Which replica of each stage a micro-batch goes through (docs/coordinator.md, "Stragglers"). A
// stage's replicas take work by credit: the replica with room (fewer than `per_replica` copies
// outstanding) and the earliest expected finish — (outstanding + 1) × its measured seconds per
// micro-batch — gets the next one, so a slow replica holds a few micro-batches instead of pacing
// the whole job. At the tail of a job, replicas with nothing to do run backup copies of what is
// still outstanding elsewhere (pick_idle); the first result is written, the others dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace convoy {

class ReplicaRouter {
 public:
  // replicas[s]: how many stage s has; predicted[s]: the plan's seconds per micro-batch for it.
  ReplicaRouter(const std::vector<size_t>& replicas, const std::vector<double>& predicted,
                uint32_t per_replica);

  using Route = std::vector<uint32_t>;  // a replica index per stage

  // The best route with room on every stage; nullopt when some stage's replicas are all full.
  std::optional<Route> pick() const;
  // A route for a backup copy of a micro-batch already on `taken`: at every stage with several
  // replicas, one with nothing outstanding other than taken's (a stage with one replica has no
  // choice); nullopt if there is none.
  std::optional<Route> pick_idle(const Route& taken) const;
  // A copy went out on `route`.
  void sent(const Route& route);
  // A copy on `route` is over (its result came, or a copy of the same micro-batch won). `seconds`:
  // the measured compute time of each stage (empty when not this copy's) updates the estimates.
  void done(const Route& route, const std::vector<double>& seconds);

  double estimate(size_t stage, size_t replica) const { return seconds_[stage][replica]; }
  uint32_t outstanding(size_t stage, size_t replica) const { return outstanding_[stage][replica]; }

 private:
  uint32_t per_replica_;
  std::vector<std::vector<double>> seconds_;        // per stage, per replica: EWMA seconds per micro-batch
  std::vector<std::vector<uint32_t>> outstanding_;  // per stage, per replica: copies in flight
};

}  // namespace convoy
