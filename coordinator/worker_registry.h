// The coordinator's worker registry: who is registered, with which devices, data endpoint and cached
// weights, and when each was last heard from. No sockets: the server feeds it Register and Heartbeat
// messages, job runs read it to plan and to address their stages.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/planner.h"
#include "schema/protocol.capnp.h"

namespace convoy {

using SteadyClock = std::chrono::steady_clock;

struct Worker {
  uint32_t id = 0;
  std::string identity;  // routing id on the control socket
  std::string key;       // its CURVE public key (Z85): also its data socket's server key; "" insecure
  std::string name, host, data_endpoint;
  uint32_t pid = 0, threads = 0;
  std::vector<WorkerDevice> devices;
  std::set<std::string> cached;  // weight hashes in its cache
  SteadyClock::time_point last_heartbeat;
  uint32_t queued = 0;
  double busy_seconds = 0;
  uint64_t rss = 0;
  bool refusing = false;  // answered an assignment with retryLater (draining): planned over no more
};

// The most devices one Register may list.
constexpr uint32_t kMaxRegisterDevices = 256;

class WorkerRegistry {
 public:
  // Checks a Register message (throws convoy::Error(kInvalidInput) naming the field) and returns the
  // worker it describes, without an id.
  static Worker read_register(schema::Register::Reader r, const std::string& identity);

  // Adds `w` under a new id (ids never repeat within a process) and returns that id.
  uint32_t add(Worker w, SteadyClock::time_point now);
  // Removes and returns the worker, if registered.
  std::optional<Worker> remove(uint32_t id);

  Worker* find(uint32_t id);
  const Worker* find(uint32_t id) const;
  const std::map<uint32_t, Worker>& all() const { return workers_; }
  size_t size() const { return workers_.size(); }
  bool empty() const { return workers_.empty(); }

  // Workers not heard from for longer than `limit`.
  std::vector<uint32_t> silent(SteadyClock::time_point now, SteadyClock::duration limit) const;

  // The devices of `backend` on workers that take assignments and are not in `exclude`; empty when
  // there are none.
  std::vector<WorkerDevice> usable_devices(const std::string& backend,
                                           const std::set<uint32_t>& exclude = {}) const;
  // The registered devices that run `backend`; an error naming what is there when none does.
  std::vector<WorkerDevice> live_devices(const std::string& backend) const;
  // A job that names no backend takes `fallback` (the cluster's default), or else the one the
  // workers run.
  std::string pick_backend(const std::string& requested, const std::string& fallback) const;

 private:
  std::map<uint32_t, Worker> workers_;
  uint32_t next_id_ = 1;
};

}  // namespace convoy
