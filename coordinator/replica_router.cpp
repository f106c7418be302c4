#include "coordinator/replica_router.h"

#include <algorithm>
#include <cmath>

namespace convoy {

namespace {
constexpr double kWeight = 0.2;  // of a new measurement in the moving average
}

ReplicaRouter::ReplicaRouter(const std::vector<size_t>& replicas, const std::vector<double>& predicted,
                             uint32_t per_replica)
    : per_replica_(std::max<uint32_t>(per_replica, 1)) {
  for (size_t s = 0; s < replicas.size(); ++s) {
    double p = s < predicted.size() && std::isfinite(predicted[s]) && predicted[s] > 0 ? predicted[s] : 1e-3;
    seconds_.emplace_back(std::max<size_t>(replicas[s], 1), p);
    outstanding_.emplace_back(std::max<size_t>(replicas[s], 1), 0);
  }
}

std::optional<ReplicaRouter::Route> ReplicaRouter::pick() const {
  Route route;
  for (size_t s = 0; s < seconds_.size(); ++s) {
    std::optional<uint32_t> best;
    double best_finish = 0;
    for (uint32_t r = 0; r < seconds_[s].size(); ++r) {
      if (outstanding_[s][r] >= per_replica_) continue;
      double finish = (outstanding_[s][r] + 1) * seconds_[s][r];
      if (!best || finish < best_finish) {
        best = r;
        best_finish = finish;
      }
    }
    if (!best) return std::nullopt;
    route.push_back(*best);
  }
  return route;
}

std::optional<ReplicaRouter::Route> ReplicaRouter::pick_idle(const Route& taken) const {
  Route route;
  bool differs = false;
  for (size_t s = 0; s < seconds_.size(); ++s) {
    std::optional<uint32_t> best;
    if (seconds_[s].size() == 1) {  // no choice: the copy queues there like every micro-batch
      route.push_back(0);
      continue;
    }
    for (uint32_t r = 0; r < seconds_[s].size(); ++r) {
      bool other = s >= taken.size() || r != taken[s];
      if (outstanding_[s][r] != 0 || !other) continue;
      if (!best || seconds_[s][r] < seconds_[s][*best]) best = r;
    }
    if (!best) return std::nullopt;
    differs = differs || s >= taken.size() || *best != taken[s];
    route.push_back(*best);
  }
  if (!differs) return std::nullopt;  // the same replicas again would not help
  return route;
}

void ReplicaRouter::sent(const Route& route) {
  for (size_t s = 0; s < route.size() && s < outstanding_.size(); ++s)
    if (route[s] < outstanding_[s].size()) ++outstanding_[s][route[s]];
}

void ReplicaRouter::done(const Route& route, const std::vector<double>& seconds) {
  for (size_t s = 0; s < route.size() && s < outstanding_.size(); ++s) {
    if (route[s] >= outstanding_[s].size()) continue;
    uint32_t& n = outstanding_[s][route[s]];
    if (n > 0) --n;
    if (s < seconds.size() && std::isfinite(seconds[s]) && seconds[s] > 0) {
      double& e = seconds_[s][route[s]];
      e = (1 - kWeight) * e + kWeight * seconds[s];
    }
  }
}

}  // namespace convoy
