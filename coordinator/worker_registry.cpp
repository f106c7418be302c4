#include "coordinator/worker_registry.h"

#include <cmath>

#include "runtime/error.h"
#include "schema/wire.h"

namespace convoy {

namespace {
std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}
}  // namespace

Worker WorkerRegistry::read_register(schema::Register::Reader r, const std::string& identity) {
  Worker w;
  w.identity = identity;
  w.name = wire::peer_name_field(r.getWorkerName(), "Register.workerName");
  w.host = wire::bounded_text(r.getHost(), "Register.host", 256);
  w.pid = r.getPid();
  w.threads = r.getThreads();
  w.data_endpoint = wire::bounded_text(r.getDataEndpoint(), "Register.dataEndpoint", 256);
  CONVOY_CHECK(w.data_endpoint.rfind("tcp://", 0) == 0 || w.data_endpoint.rfind("ipc://", 0) == 0,
               "Register.dataEndpoint '", w.data_endpoint, "' is not a tcp:// or ipc:// endpoint");
  CONVOY_CHECK(w.data_endpoint.find('*') == std::string::npos, "Register.dataEndpoint '", w.data_endpoint,
               "' has a wildcard (advertise the bound endpoint)");
  CONVOY_CHECK(r.getCachedWeights().size() <= 1000000, "Register.cachedWeights lists ",
               r.getCachedWeights().size(), " hashes");
  for (auto h : r.getCachedWeights()) {
    CONVOY_CHECK(h.size() == 32, "Register.cachedWeights: a hash of ", h.size(), " bytes (expected 32)");
    w.cached.insert(str(h));
  }
  auto devices = r.getDevices();
  // A list of empty structs costs no bytes on the wire (Cap'n Proto charges it only against the
  // traversal limit), so a 40-byte Register could otherwise claim tens of millions of devices, each
  // becoming a WorkerDevice here: gigabytes.
  CONVOY_CHECK(devices.size() <= kMaxRegisterDevices, "Register.devices: ", devices.size(),
               " devices (at most ", kMaxRegisterDevices, ")");
  for (uint32_t i = 0; i < devices.size(); ++i) {
    auto d = devices[i];
    WorkerDevice wd;
    wd.index = d.getIndex();
    wd.name = wire::bounded_text(d.getName(), str_cat("Register.devices[", i, "].name"), 256);
    wd.backend = wire::bounded_text(d.getBackend(), str_cat("Register.devices[", i, "].backend"), 32);
    wd.memory_bytes = d.getMemoryBytes();
    wd.compute_units = d.getComputeUnits();
    wd.gemm_gflops = d.getGemmGflops();
    wd.copy_gbps = d.getCopyGbps();
    wd.processor = wire::bounded_text(d.getProcessor(), str_cat("Register.devices[", i, "].processor"), 512);
    CONVOY_CHECK(std::isfinite(wd.gemm_gflops) && wd.gemm_gflops >= 0 && std::isfinite(wd.copy_gbps) &&
                     wd.copy_gbps >= 0,
                 "Register.devices[", i, "]: gemmGflops ", wd.gemm_gflops, " / copyGbps ", wd.copy_gbps,
                 " must be finite and >= 0");
    w.devices.push_back(wd);
  }
  if (w.devices.empty()) {  // a worker without OpenCL devices runs the reference executor
    WorkerDevice wd;
    wd.name = "cpu";
    wd.backend = "reference";
    wd.processor = w.host + ":cpu";
    w.devices.push_back(wd);
  }
  return w;
}

uint32_t WorkerRegistry::add(Worker w, SteadyClock::time_point now) {
  w.id = next_id_++;
  w.last_heartbeat = now;
  for (WorkerDevice& d : w.devices) {
    d.worker_id = w.id;
    d.worker = w.name;
    d.threads = w.threads;
  }
  uint32_t id = w.id;
  workers_.emplace(id, std::move(w));
  return id;
}

std::optional<Worker> WorkerRegistry::remove(uint32_t id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  Worker w = std::move(it->second);
  workers_.erase(it);
  return w;
}

Worker* WorkerRegistry::find(uint32_t id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

const Worker* WorkerRegistry::find(uint32_t id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<uint32_t> WorkerRegistry::silent(SteadyClock::time_point now, SteadyClock::duration limit) const {
  std::vector<uint32_t> out;
  for (const auto& [id, w] : workers_)
    if (now - w.last_heartbeat > limit) out.push_back(id);
  return out;
}

std::vector<WorkerDevice> WorkerRegistry::usable_devices(const std::string& backend,
                                                         const std::set<uint32_t>& exclude) const {
  std::vector<WorkerDevice> out;
  for (const auto& [id, w] : workers_)
    if (!w.refusing && !exclude.count(id))
      for (const WorkerDevice& d : w.devices)
        if (d.backend == backend) out.push_back(d);
  return out;
}

std::vector<WorkerDevice> WorkerRegistry::live_devices(const std::string& backend) const {
  std::vector<WorkerDevice> out;
  std::set<std::string> seen;
  for (const auto& [id, w] : workers_)
    for (const WorkerDevice& d : w.devices) {
      seen.insert(d.backend);
      if (d.backend == backend) out.push_back(d);
    }
  if (out.empty() && !workers_.empty()) {
    std::string have;
    for (const std::string& b : seen) have += (have.empty() ? "" : ", ") + b;
    fail(ErrorKind::kInvalidInput, "no registered worker runs the ", backend, " backend (they run: ", have,
         "); submit with --backend or start workers with that backend");
  }
  return out;
}

std::string WorkerRegistry::pick_backend(const std::string& requested, const std::string& fallback) const {
  if (!requested.empty()) return requested;
  std::set<std::string> have;
  for (const auto& [id, w] : workers_)
    for (const WorkerDevice& d : w.devices) have.insert(d.backend);
  if (have.count(fallback) || have.empty()) return fallback;
  return have.count("opencl") ? "opencl" : *have.begin();
}

}  // namespace convoy
