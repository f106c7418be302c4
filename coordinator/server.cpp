#include "coordinator/server.h"

#include <capnp/message.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "coordinator/http.h"
#include "coordinator/job_progress.h"
#include "coordinator/planner.h"
#include "runtime/error.h"
#include "runtime/graph/serialize.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"
#include "schema/wire.h"

namespace convoy {

namespace {

using Clock = std::chrono::steady_clock;
using schema::ErrorReply;
using Body = schema::Envelope::Body;

constexpr size_t kExternalizeBytes = 4096;  // weights of at least this size travel as tensor frames
constexpr uint64_t kFailedAssignment = ~uint64_t{0};
constexpr auto kClientIdle = std::chrono::minutes(10);  // a client peer silent this long is forgotten
// A micro-batch is sent again at most this many times (docs/coordinator.md, "Worker loss"): one that
// keeps failing (bad data) or keeps being lost fails the job instead of looping.
constexpr int kMaxReplays = 3;
// Workers of one job that may die while building its stages before the job is failed: a stage that
// crashes its worker (a compiler or driver fault on that graph) would otherwise be re-planned onto
// every live worker in turn and take the whole cluster down.
constexpr size_t kMaxBuildDeaths = 2;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}
capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string hex(const std::string& bytes, size_t max = 8) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    out += digits[static_cast<uint8_t>(bytes[i]) >> 4];
    out += digits[static_cast<uint8_t>(bytes[i]) & 15];
  }
  return out;
}

ErrorReply::Kind reply_kind(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput:
    case ErrorKind::kUnsupported:
    case ErrorKind::kIo:  // the submitter's files: fix the job
      return ErrorReply::Kind::BAD_REQUEST;
    case ErrorKind::kInternal:
      return ErrorReply::Kind::INTERNAL;
  }
  return ErrorReply::Kind::INTERNAL;
}

// An error to answer a client with, carrying its ErrorReply kind.
struct ClientError : Error {
  ClientError(ErrorReply::Kind k, const std::string& m) : Error(ErrorKind::kInvalidInput, m), reply(k) {}
  ErrorReply::Kind reply;
};

using JobState = schema::JobStatus::State;

const char* state_name(JobState s) {
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

struct Worker {
  uint32_t id = 0;
  std::string identity;  // routing id on the control socket
  std::string name, host, data_endpoint;
  uint32_t pid = 0, threads = 0;
  std::vector<WorkerDevice> devices;
  std::set<std::string> cached;  // weight hashes in its cache
  Clock::time_point last_heartbeat;
  uint32_t queued = 0;
  double busy_seconds = 0;
  uint64_t rss = 0;
  bool refusing = false;  // answered an assignment with retryLater (draining): planned over no more
};

struct Peer {
  schema::Role role = schema::Role::CLIENT;
  std::string name;
  uint32_t worker_id = 0;  // once registered
  Clock::time_point last_seen;
};

// One replica's assignment, until its StageReady.
struct PendingAssignment {
  uint64_t job = 0;
  uint32_t pipeline = 0, stage = 0, replica = 0, worker = 0;
  bool resent_all = false;  // a missingWeights answer already made us send every weight
};

struct Job {
  uint64_t id = 0;
  std::string name, job_file, model_path, output, backend;
  std::vector<std::string> input_paths;
  int64_t batch_size = 0;
  JobState state = JobState::QUEUED;
  std::string error;
  Clock::time_point submitted, started, streaming, finished;

  // Set while planning/running; dropped when the job ends.
  std::shared_ptr<const Graph> graph;
  std::shared_ptr<const Archive> archive;
  std::vector<NpyFile> inputs;
  std::vector<size_t> released;    // per input: bytes from its start whose pages were given back
  std::vector<InputShape> shapes;  // a full micro-batch's inputs, what every plan is made for
  JobPlan plan;
  uint32_t pipeline = 0;                  // the plan's generation: bumped by every re-plan
  std::set<uint32_t> workers;             // every worker holding one of its stages in the current plan
  std::set<uint32_t> past_workers;        // every worker that held one in any plan (late results)
  std::string recovering;                 // while re-planning after a loss: what was lost
  std::vector<std::string> build_deaths;  // workers that died building a stage: "worker w stage s (op)"
  bool waiting_for_workers = false;       // re-planning found no live worker of the backend
  bool replan_posted = false;
  Clock::time_point ready_deadline;
  std::optional<Admission> admission;
  std::optional<OutputAssembler> outputs;

  // Kept after the end: what status reports.
  int64_t samples = 0;
  int64_t samples_done = 0;
  int64_t micro_batches_total = 0;
  int64_t micro_batches_done = 0;
  std::vector<double> stage_seconds_sum;
  std::vector<int64_t> stage_seconds_count;
  std::vector<std::string> stage_workers, stage_first, stage_last;
  std::vector<double> stage_predicted;

  bool active() const { return state == JobState::PLANNING || state == JobState::RUNNING; }
  // Since the first micro-batch went out, to the end (or now).
  double samples_per_second() const {
    Clock::time_point now = ended() ? finished : Clock::now();
    double s = streaming != Clock::time_point{} ? seconds(now - streaming) : 0;
    return s > 0 ? static_cast<double>(samples_done) / s : 0;
  }
  bool ended() const {
    return state == JobState::DONE || state == JobState::FAILED || state == JobState::CANCELLED;
  }
};

}  // namespace

struct CoordinatorServer::Impl {
  boost::asio::io_context& io;
  ClusterConfig config;
  const OpRegistry& registry;
  std::ostream& log;
  uint64_t opset;
  std::string name = wire::process_name();

  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::unique_ptr<wire::AsioZmqWatcher> watcher;
  std::string bound;
  boost::asio::steady_timer liveness{io};
  bool stopped = false;

  std::map<std::string, Peer> peers;  // by routing id
  std::map<uint32_t, Worker> workers;
  uint32_t next_worker_id = 1;

  // One DEALER per worker data endpoint: the coordinator is stage 0's upstream.
  struct DataLink {
    zmq::socket_t socket;
    std::unique_ptr<wire::AsioZmqWatcher> watcher;
  };
  std::map<std::string, std::unique_ptr<DataLink>> links;

  std::map<uint64_t, Job> jobs;
  std::deque<uint64_t> queue;
  uint64_t active_job = 0;  // 0: none
  uint64_t next_job_id = 1;
  uint64_t next_request_id = 1;
  std::map<uint64_t, PendingAssignment> pending;  // by AssignStage requestId

  // What /metrics counts besides the jobs' own progress.
  uint64_t messages_dropped = 0;
  uint64_t replays = 0;
  std::string stop_reason;
  std::unique_ptr<http::Server> http_server;  // last: goes first, before the state it reads

  Impl(boost::asio::io_context& io_, const ClusterConfig& c, const OpRegistry& r, std::ostream& l)
      : io(io_), config(c), registry(r), log(l), opset(wire::opset_hash(r)) {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::router_handover, 1);  // a reconnecting peer keeps its routing id
    try {
      router.bind(config.listen);
    } catch (const zmq::error_t& e) {
      fail(ErrorKind::kIo, "cannot listen on ", config.listen, ": ", e.what());
    }
    bound = router.get(zmq::sockopt::last_endpoint);
    if (!config.http_listen.empty()) {  // before anything waits on the io_context: may throw
      http::Handlers handlers{[this] { return metrics(); },
                              [this] { return stopped ? "shutting down: " + stop_reason : std::string(); }};
      http_server = std::make_unique<http::Server>(io, config.http_listen, std::move(handlers), log);
    }
    watcher = std::make_unique<wire::AsioZmqWatcher>(io, router, [this] { drain(); });
    arm_liveness();
    info("listening on ", bound, " (heartbeat ", config.heartbeat_ms, " ms, max_in_flight ",
         config.max_in_flight, ", min_workers ", config.min_workers, ")");
    if (http_server) info("metrics on http://", http_server->address(), "/metrics");
  }

  template <typename... Args>
  void info(Args&&... args) {
    log << "info: " << str_cat(std::forward<Args>(args)...) << std::endl;
  }
  template <typename... Args>
  void warn(Args&&... args) {
    log << "warning: " << str_cat(std::forward<Args>(args)...) << std::endl;
  }

  std::string peer_name(const std::string& identity) const {
    auto it = peers.find(identity);
    if (it != peers.end() && !it->second.name.empty()) return it->second.name;
    return "peer " + hex(identity);
  }

  // --- sending -------------------------------------------------------------------------------------

  void send(wire::OutMessage& m, const std::string& identity) {
    if (stopped) return;
    try {
      m.send(router, &identity);
    } catch (const std::exception& e) {
      warn("cannot send to ", peer_name(identity), ": ", e.what());
    }
    watcher->kick();
  }

  void reply_error(const std::string& identity, uint64_t request, ErrorReply::Kind kind,
                   const std::string& message) {
    wire::OutMessage m;
    m.envelope().setRequestId(request);
    wire::make_error(m.envelope(), kind, message);
    send(m, identity);
  }

  DataLink& link(const std::string& endpoint) {
    auto it = links.find(endpoint);
    if (it != links.end()) return *it->second;
    auto l = std::make_unique<DataLink>(DataLink{zmq::socket_t(ctx, zmq::socket_type::dealer), nullptr});
    l->socket.set(zmq::sockopt::linger, 0);
    l->socket.connect(endpoint);
    DataLink* raw = l.get();
    l->watcher = std::make_unique<wire::AsioZmqWatcher>(io, l->socket, [this, raw, endpoint] {
      // The worker answers our hello; only errors are worth a line.
      wire::receive_queued(
          raw->socket, false,
          [&](wire::InMessage& msg) {
            try {
              auto env = msg.envelope();
              if (env.getBody().which() == Body::ERROR)
                warn("data link ", endpoint, ": ", str(env.getBody().getError().getMessage()));
            } catch (const std::exception& e) {
              ++messages_dropped;
              warn("dropped message from ", endpoint, ": ", e.what());
            }
            return true;
          },
          [&](const std::exception& e) { warn("data link ", endpoint, ": ", e.what()); });
    });
    wire::OutMessage hello;
    wire::make_hello(hello.envelope(), schema::Role::UPSTREAM, opset);
    hello.send(l->socket);
    l->watcher->kick();
    return *links.emplace(endpoint, std::move(l)).first->second;
  }

  void close_link(const std::string& endpoint) {
    auto it = links.find(endpoint);
    if (it == links.end()) return;
    it->second->watcher->stop();
    links.erase(it);
  }

  // --- receiving -----------------------------------------------------------------------------------

  void drain() {
    if (stopped) return;
    wire::receive_queued(
        router, true,
        [this](wire::InMessage& m) {
          on_message(m);
          return !stopped;
        },
        [this](const std::exception& e) { warn("receive failed: ", e.what()); });
  }

  void on_message(const wire::InMessage& msg) {
    const std::string& id = msg.identity();
    auto peer = peers.find(id);
    uint64_t request = 0;
    try {
      auto env = msg.envelope();
      request = env.getRequestId();
      auto body = env.getBody();
      if (body.which() == Body::HELLO) return on_hello(id, request, body.getHello());
      if (peer == peers.end()) {
        reply_error(id, request, ErrorReply::Kind::REFUSED, "say hello first");
        return;
      }
      peer->second.last_seen = Clock::now();
      if (peer->second.role == schema::Role::WORKER)
        on_worker_message(peer->second, msg, env);
      else
        on_client_message(id, env);
    } catch (const std::exception& e) {
      ++messages_dropped;
      warn("dropped message from ", peer_name(id), ": ", e.what());
      if (peer != peers.end() && peer->second.role == schema::Role::CLIENT)
        reply_error(id, request, ErrorReply::Kind::BAD_REQUEST,
                    std::string("malformed message: ") + e.what());
    }
  }

  void on_hello(const std::string& id, uint64_t request, schema::Hello::Reader hello) {
    std::string why = wire::check_hello(hello, opset);
    std::string who = str(hello.getName());
    if (!why.empty()) {
      warn("refused ", who.empty() ? hex(id) : who, ": ", why);
      peers.erase(id);
      reply_error(id, request, ErrorReply::Kind::VERSION_MISMATCH, why);
      return;
    }
    schema::Role role = hello.getRole();
    CONVOY_CHECK(role == schema::Role::CLIENT || role == schema::Role::WORKER, "Hello.role ",
                 static_cast<int>(role), " on the control socket (expected client or worker)");
    Peer& p = peers[id];
    if (p.worker_id) forget_worker(p.worker_id, "said hello again", true);
    p = Peer{role, who, 0, Clock::now()};
    wire::OutMessage m;
    auto env = m.envelope();
    env.setRequestId(request);
    auto r = env.getBody().initHelloReply();
    r.setProtocolVersion(wire::kProtocolVersion);
    r.setOpsetHash(opset);
    r.setName(name);
    send(m, id);
  }

  // --- workers -------------------------------------------------------------------------------------

  void on_worker_message(Peer& peer, const wire::InMessage& msg, schema::Envelope::Reader env) {
    auto body = env.getBody();
    const std::string& id = msg.identity();
    switch (body.which()) {
      case Body::REGISTER:
        return on_register(peer, id, env.getRequestId(), body.getRegister());
      case Body::HEARTBEAT: {
        auto hb = body.getHeartbeat();
        Worker* w = worker_of(peer, hb.getWorkerId());
        if (!w) {
          reply_error(id, env.getRequestId(), ErrorReply::Kind::REFUSED,
                      str_cat("worker ", hb.getWorkerId(), " is not registered; register again"));
          return;
        }
        w->last_heartbeat = Clock::now();
        w->queued = hb.getQueued();
        double busy = hb.getBusySeconds();
        if (std::isfinite(busy) && busy >= 0) w->busy_seconds = busy;
        w->rss = hb.getRssBytes();
        return;
      }
      case Body::DEREGISTER: {
        auto d = body.getDeregister();
        Worker* w = worker_of(peer, d.getWorkerId());
        CONVOY_CHECK(w, "Deregister.workerId ", d.getWorkerId(), " is not this peer's");
        std::string reason = str(d.getReason());
        forget_worker(w->id, "deregistered" + (reason.empty() ? "" : " (" + reason + ")"), false);
        peer.worker_id = 0;
        return;
      }
      case Body::STAGE_READY:
        return on_stage_ready(peer, env.getRequestId(), body.getStageReady());
      case Body::STAGE_FAILED:
        return on_stage_failed(peer, body.getStageFailed());
      case Body::RESULT:
        return on_result(peer, msg, body.getResult());
      case Body::ERROR:
        return on_worker_error(peer, env.getRequestId(), body.getError());
      case Body::HELLO_REPLY:
        return;
      default:
        fail(ErrorKind::kInvalidInput, "unexpected message (body ", static_cast<int>(body.which()),
             ") from a worker");
    }
  }

  Worker* worker_of(const Peer& peer, uint32_t id) {
    if (!peer.worker_id || peer.worker_id != id) return nullptr;
    auto it = workers.find(id);
    return it == workers.end() ? nullptr : &it->second;
  }

  void on_register(Peer& peer, const std::string& id, uint64_t request, schema::Register::Reader r) {
    Worker w;
    w.identity = id;
    w.name = str(r.getWorkerName());
    w.host = str(r.getHost());
    w.pid = r.getPid();
    w.threads = r.getThreads();
    w.data_endpoint = str(r.getDataEndpoint());
    CONVOY_CHECK(!w.name.empty() && w.name.size() <= 256, "Register.workerName is empty or longer than 256");
    CONVOY_CHECK(w.data_endpoint.rfind("tcp://", 0) == 0 || w.data_endpoint.rfind("ipc://", 0) == 0,
                 "Register.dataEndpoint '", w.data_endpoint, "' is not a tcp:// or ipc:// endpoint");
    CONVOY_CHECK(w.data_endpoint.find('*') == std::string::npos, "Register.dataEndpoint '", w.data_endpoint,
                 "' has a wildcard (advertise the bound endpoint)");
    for (auto h : r.getCachedWeights()) {
      CONVOY_CHECK(h.size() == 32, "Register.cachedWeights: a hash of ", h.size(), " bytes (expected 32)");
      w.cached.insert(str(h));
    }
    auto devices = r.getDevices();
    for (uint32_t i = 0; i < devices.size(); ++i) {
      auto d = devices[i];
      WorkerDevice wd;
      wd.index = d.getIndex();
      wd.name = str(d.getName());
      wd.backend = str(d.getBackend());
      wd.memory_bytes = d.getMemoryBytes();
      wd.compute_units = d.getComputeUnits();
      wd.gemm_gflops = d.getGemmGflops();
      wd.copy_gbps = d.getCopyGbps();
      wd.processor = str(d.getProcessor());
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
    if (peer.worker_id) forget_worker(peer.worker_id, "registered again", true);
    w.id = next_worker_id++;
    w.last_heartbeat = Clock::now();
    for (WorkerDevice& d : w.devices) {
      d.worker_id = w.id;
      d.worker = w.name;
      d.threads = w.threads;
    }
    peer.worker_id = w.id;
    peer.name = w.name;
    info("worker ", w.id, " registered: ", w.name, " data ", w.data_endpoint, ", ", w.devices.size(),
         " device(s), ", w.cached.size(), " cached weight(s)");
    uint32_t wid = w.id;
    workers.emplace(wid, std::move(w));
    wire::OutMessage m;
    m.envelope().setRequestId(request);
    auto reg = m.envelope().getBody().initRegistered();
    reg.setWorkerId(wid);
    reg.setHeartbeatMs(config.heartbeat_ms);
    send(m, id);
    if (active_job) {
      Job& job = jobs.at(active_job);
      if (job.waiting_for_workers && !job.replan_posted) replan(job);
    }
    schedule();
  }

  // A worker is gone (deregistered, dead, replaced): a job that had stages on it is re-planned over
  // the live workers and its outstanding micro-batches replayed (recover()).
  // `died`: it went without deregistering (missed heartbeats, or a new process under its name); a
  // death while it was building one of the active job's stages counts towards that job's quarantine.
  void forget_worker(uint32_t wid, const std::string& why, bool died) {
    auto it = workers.find(wid);
    if (it == workers.end()) return;
    Worker w = std::move(it->second);
    workers.erase(it);
    info("worker ", wid, " (", w.name, ") ", why);
    close_link(w.data_endpoint);
    std::vector<PendingAssignment> building;
    for (auto p = pending.begin(); p != pending.end();) {
      if (p->second.worker != wid) {
        ++p;
        continue;
      }
      building.push_back(p->second);
      p = pending.erase(p);
    }
    if (!active_job) return;
    Job& job = jobs.at(active_job);
    if (died)
      for (const PendingAssignment& a : building)
        if (a.job == job.id && a.pipeline == job.pipeline && quarantine(job, a, w.name)) return;
    if (job.workers.count(wid)) recover(job, str_cat("worker ", w.name, " lost (", why, ")"));
  }

  // Notes that worker `name` died building stage `a.stage`; once kMaxBuildDeaths workers have, the
  // job fails naming each stage and its ops, and true is returned.
  bool quarantine(Job& job, const PendingAssignment& a, const std::string& name) {
    std::string what = str_cat("worker ", name, " died building stage ", a.stage);
    if (a.stage < job.stage_first.size())
      what += str_cat(" (", job.stage_first[a.stage], " .. ", job.stage_last[a.stage], ")");
    job.build_deaths.push_back(what);
    warn("job ", job.id, ": ", what, " [", job.build_deaths.size(), " of at most ", kMaxBuildDeaths, "]");
    if (job.build_deaths.size() < kMaxBuildDeaths) return false;
    std::string all;
    for (const std::string& d : job.build_deaths) all += (all.empty() ? "" : "; ") + d;
    end_job(job, JobState::FAILED,
            str_cat("quarantined: ", job.build_deaths.size(), " workers died while building its stages (",
                    all, "); a stage that crashes its worker is not assigned again"));
    return true;
  }

  void on_worker_error(Peer& peer, uint64_t request, schema::ErrorReply::Reader e) {
    std::string message = str(e.getMessage());
    auto it = pending.find(request);
    if (it == pending.end() || it->second.worker != peer.worker_id) {
      warn("worker ", peer.name, " answered request ", request, " with an error: ", message);
      return;
    }
    PendingAssignment a = it->second;
    pending.erase(it);
    Job& job = jobs.at(a.job);
    if (e.getKind() == ErrorReply::Kind::MISSING_WEIGHTS && !a.resent_all && job.id == active_job) {
      warn("worker ", peer.name, ": ", message, "; sending stage ", a.stage, " again with every weight");
      auto w = workers.find(a.worker);
      if (w != workers.end()) {
        w->second.cached.clear();
        assign(job, a.stage, a.replica, w->second, true);
        return;
      }
    }
    if (job.id != active_job) return;
    auto w = workers.find(a.worker);
    if (e.getKind() == ErrorReply::Kind::RETRY_LATER && w != workers.end()) {  // draining: plan without it
      w->second.refusing = true;
      recover(job, str_cat("worker ", peer.name, " refused stage ", a.stage, " (", message, ")"));
      return;
    }
    end_job(job, JobState::FAILED, str_cat("worker ", peer.name, " refused stage ", a.stage, ": ", message));
  }

  // --- recovery (docs/coordinator.md, "Worker loss") ---------------------------------------------

  // The workers holding the job's stages release them; its outstanding assignments are forgotten.
  void release_stages(Job& job) {
    for (uint32_t wid : job.workers) {
      auto w = workers.find(wid);
      if (w == workers.end()) continue;
      wire::OutMessage m;
      m.envelope().getBody().initReleaseStage().setJob(job.id);
      send(m, w->second.identity);
    }
    for (auto p = pending.begin(); p != pending.end();)
      p = p->second.job == job.id ? pending.erase(p) : std::next(p);
    job.workers.clear();
  }

  // The job's current pipeline cannot go on (`why`: a worker lost, a micro-batch failed): its stages
  // are released on the workers still holding them, every micro-batch in flight goes back to the
  // queue, and a new plan (the next pipeline generation) is made over the live workers once this
  // handler is done (so several workers found dead at once make one re-plan). `failed_seq` is the
  // micro-batch a stageFailed named, if any.
  void recover(Job& job, const std::string& why, std::optional<int64_t> failed_seq = std::nullopt) {
    if (!job.active()) return;
    release_stages(job);
    ++job.pipeline;
    job.recovering += (job.recovering.empty() ? "" : "; ") + why;
    if (job.admission) {
      std::vector<int64_t> requeued = job.admission->requeue_in_flight();
      replays += requeued.size();
      auto over = [&](int64_t seq) { return job.admission->replays(seq) > kMaxReplays; };
      if (failed_seq && over(*failed_seq)) {
        end_job(job, JobState::FAILED,
                str_cat(why, " (micro-batch ", *failed_seq, " failed on ", kMaxReplays + 1,
                        " pipelines; replays are capped at ", kMaxReplays, " per micro-batch)"));
        return;
      }
      for (int64_t seq : requeued)
        if (over(seq)) {
          end_job(job, JobState::FAILED,
                  str_cat("micro-batch ", seq, " was in flight on ", kMaxReplays + 1,
                          " pipelines that failed (replays are capped at ", kMaxReplays,
                          " per micro-batch); the last: ", why));
          return;
        }
    }
    job.state = JobState::PLANNING;
    job.ready_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(config.stage_ready_timeout_s));
    if (job.replan_posted) return;
    job.replan_posted = true;
    uint64_t id = job.id;
    boost::asio::post(io, [this, id] {
      auto it = jobs.find(id);
      if (it == jobs.end()) return;
      it->second.replan_posted = false;
      if (it->second.active() && id == active_job && !stopped) replan(it->second);
    });
  }

  // The registered devices of `backend` on workers that take assignments; empty when there are none.
  std::vector<WorkerDevice> usable_devices(const std::string& backend) const {
    std::vector<WorkerDevice> out;
    for (const auto& [id, w] : workers)
      if (!w.refusing)
        for (const WorkerDevice& d : w.devices)
          if (d.backend == backend) out.push_back(d);
    return out;
  }

  // Plans a recovering job again over the live workers, or waits for one to register (bounded by
  // stage_ready_timeout_s, see check_liveness()).
  void replan(Job& job) {
    std::vector<WorkerDevice> devices = usable_devices(job.backend);
    size_t replay = job.admission ? job.admission->requeued() : 0;
    if (devices.empty()) {
      if (!job.waiting_for_workers)
        info("job ", job.id, ": ", job.recovering, "; no live worker runs the ", job.backend,
             " backend: waiting up to ", config.stage_ready_timeout_s,
             " s (stage_ready_timeout_s) for one to register, then replaying ", replay, " micro-batch(es)");
      job.waiting_for_workers = true;
      return;
    }
    job.waiting_for_workers = false;
    std::set<uint32_t> over;
    for (const WorkerDevice& d : devices) over.insert(d.worker_id);
    info("job ", job.id, ": ", job.recovering, "; replaying ", replay,
         " micro-batch(es) on a new plan (pipeline ", job.pipeline, ") over ", over.size(), " worker(s)");
    try {
      plan_stages(job, devices);
    } catch (const std::exception& e) {
      end_job(job, JobState::FAILED, str_cat(job.recovering, "; re-planning failed: ", e.what()));
    }
  }

  // --- jobs ----------------------------------------------------------------------------------------

  // The registered devices that run `backend`; an error naming what is there when none does.
  std::vector<WorkerDevice> live_devices(const std::string& backend) const {
    std::vector<WorkerDevice> out;
    std::set<std::string> seen;
    for (const auto& [id, w] : workers)
      for (const WorkerDevice& d : w.devices) {
        seen.insert(d.backend);
        if (d.backend == backend) out.push_back(d);
      }
    if (out.empty() && !workers.empty()) {
      std::string have;
      for (const std::string& b : seen) have += (have.empty() ? "" : ", ") + b;
      fail(ErrorKind::kInvalidInput, "no registered worker runs the ", backend, " backend (they run: ", have,
           "); submit with --backend or start workers with that backend");
    }
    return out;
  }

  // A job that names no backend takes the cluster's default, or else the one the workers run.
  std::string pick_backend(const std::string& requested) const {
    if (!requested.empty()) return requested;
    std::set<std::string> have;
    for (const auto& [id, w] : workers)
      for (const WorkerDevice& d : w.devices) have.insert(d.backend);
    if (have.count(config.backend) || have.empty()) return config.backend;
    return have.count("opencl") ? "opencl" : *have.begin();
  }

  void schedule() {
    while (!stopped && !active_job && !queue.empty() && workers.size() >= config.min_workers) {
      uint64_t id = queue.front();
      queue.pop_front();
      Job& job = jobs.at(id);
      start(job);
    }
  }

  void start(Job& job) {
    job.state = JobState::PLANNING;
    job.started = Clock::now();
    active_job = job.id;
    info("job ", job.id, " (", job.name, "): planning over ", workers.size(), " worker(s)");
    try {
      plan(job);
    } catch (const std::exception& e) {
      end_job(job, JobState::FAILED, e.what());
    }
  }

  // Loads the model, checks the inputs, plans and assigns every stage replica.
  void plan(Job& job) {
    LoadOptions options;
    options.num_inputs = static_cast<int>(job.input_paths.size());
    Model model = load_model(job.model_path, registry, options);
    job.archive = model.archive;
    job.graph = std::shared_ptr<const Graph>(std::move(model.graph));
    job.shapes = open_inputs(job, model.input_names);
    job.backend = pick_backend(job.backend);
    plan_stages(job, live_devices(job.backend));
  }

  // Plans the loaded job over `devices` and assigns every stage replica, as pipeline `job.pipeline`.
  void plan_stages(Job& job, const std::vector<WorkerDevice>& devices) {
    job.plan = plan_job(job.graph, devices, job.shapes,
                        PlanSettings{config.max_in_flight, job.micro_batches_total, config.max_replicas,
                                     config.op_overhead_us * 1e-6});
    size_t n = job.plan.stages.size();
    CONVOY_CHECK(n > 0, "the plan has no stages");
    job.stage_seconds_sum.assign(n, 0);
    job.stage_seconds_count.assign(n, 0);
    job.stage_workers.assign(n, "");
    job.stage_first.clear();
    job.stage_last.clear();
    job.stage_predicted.clear();
    for (size_t s = 0; s < n; ++s) {
      const AssignedStage& st = job.plan.stages[s];
      CONVOY_CHECK(!st.replicas.empty(), "stage ", s, " of the plan has no replicas");
      for (const StageReplica& r : st.replicas)
        job.stage_workers[s] += (job.stage_workers[s].empty() ? "" : ",") + r.worker;
      job.stage_first.push_back(st.first_op);
      job.stage_last.push_back(st.last_op);
      job.stage_predicted.push_back(st.predicted_seconds);
    }
    log << job.plan.text;
    log.flush();
    job.ready_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(config.stage_ready_timeout_s));
    for (uint32_t s = 0; s < n; ++s)
      for (uint32_t r = 0; r < job.plan.stages[s].replicas.size(); ++r) {
        const StageReplica& rep = job.plan.stages[s].replicas[r];
        auto w = workers.find(rep.worker_id);
        CONVOY_ASSERT(w != workers.end(), "the plan names worker ", rep.worker_id, " that is not registered");
        job.workers.insert(rep.worker_id);
        job.past_workers.insert(rep.worker_id);
        assign(job, s, r, w->second, false);
      }
  }

  std::vector<InputShape> open_inputs(Job& job, const std::vector<std::string>& names) {
    size_t expected = names.size();
    if (job.input_paths.size() != expected) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      fail(ErrorKind::kInvalidInput, job.job_file, ": the model's forward() takes ", expected, " input(s) (",
           list, ") but the job lists ", job.input_paths.size());
    }
    int64_t samples = -1;
    std::vector<InputShape> shapes;
    for (const std::string& path : job.input_paths) {
      job.inputs.push_back(NpyFile::open(path));
      const NpyFile& f = job.inputs.back();
      CONVOY_CHECK(!f.shape().empty(), path, ": a 0-dim array has no samples (samples are on dim 0)");
      if (samples < 0) samples = f.rows();
      CONVOY_CHECK(f.rows() == samples, job.job_file,
                   ": inputs have different sample counts: ", job.input_paths[0], " has ", samples, ", ",
                   path, " has ", f.rows());
      Shape shape = f.shape();
      shape[0] = std::min(samples, job.batch_size);
      shapes.push_back({f.dtype(), shape});
    }
    CONVOY_CHECK(samples > 0, job.job_file, ": the inputs hold no samples");
    job.samples = samples;
    job.micro_batches_total = micro_batches(samples, job.batch_size);
    return shapes;
  }

  void assign(Job& job, uint32_t s, uint32_t r, Worker& w, bool send_all_weights) {
    const AssignedStage& st = job.plan.stages[s];
    const StageReplica& rep = st.replicas[r];
    uint64_t request = next_request_id++;
    wire::OutMessage m;
    auto env = m.envelope();
    env.setRequestId(request);
    auto a = env.getBody().initAssignStage();
    a.setJob(job.id);
    a.setPipeline(job.pipeline);
    a.setStage(s);
    a.setReplica(r);
    a.setDevice(rep.device);
    a.setBackend(job.backend);
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
    if (s + 1 < job.plan.stages.size()) {
      const AssignedStage& next = job.plan.stages[s + 1];
      auto eps = a.initNext().initEndpoints(static_cast<unsigned>(next.replicas.size()));
      for (size_t i = 0; i < next.replicas.size(); ++i)
        eps.set(static_cast<unsigned>(i), workers.at(next.replicas[i].worker_id).data_endpoint);
    } else {
      a.initNext().initEndpoints(0);
    }
    if (!st.inputs.empty()) {
      auto warm = a.initWarmShapes(static_cast<unsigned>(st.inputs.size()));
      for (size_t i = 0; i < st.inputs.size(); ++i)
        wire::set_meta(warm[static_cast<unsigned>(i)], st.inputs[i].dtype, st.inputs[i].shape);
    } else if (s == 0) {
      auto warm = a.initWarmShapes(static_cast<unsigned>(job.inputs.size()));
      for (size_t i = 0; i < job.inputs.size(); ++i) {
        Shape shape = job.inputs[i].shape();
        shape[0] = std::min(job.samples, job.batch_size);
        wire::set_meta(warm[static_cast<unsigned>(i)], job.inputs[i].dtype(), shape);
      }
    }
    pending[request] = PendingAssignment{job.id, job.pipeline, s, r, w.id, send_all_weights};
    info("job ", job.id, ": stage ", s, " replica ", r, " -> worker ", w.name, " (", external.size(),
         " weights, ", bytes_sent, " bytes sent)");
    send(m, w.identity);
  }

  void on_stage_ready(Peer& peer, uint64_t request, schema::StageReady::Reader ready) {
    auto wit = workers.find(peer.worker_id);
    CONVOY_CHECK(wit != workers.end(), "StageReady from an unregistered worker");
    Worker& w = wit->second;
    auto it = pending.find(request);
    if (it == pending.end() || it->second.worker != w.id) {  // match on the fields if the id was not echoed
      it = std::find_if(pending.begin(), pending.end(), [&](const auto& p) {
        return p.second.worker == w.id && p.second.job == ready.getJob() &&
               p.second.pipeline == ready.getPipeline() && p.second.stage == ready.getStage() &&
               p.second.replica == ready.getReplica();
      });
    }
    if (it == pending.end()) {
      warn("worker ", w.name, ": StageReady for job ", ready.getJob(), " pipeline ", ready.getPipeline(),
           " stage ", ready.getStage(), " that is not awaited; ignored");
      return;
    }
    const PendingAssignment a = it->second;
    CONVOY_CHECK(ready.getJob() == a.job && ready.getStage() == a.stage && ready.getReplica() == a.replica &&
                     ready.getPipeline() == a.pipeline,
                 "StageReady names job ", ready.getJob(), " pipeline ", ready.getPipeline(), " stage ",
                 ready.getStage(), " replica ", ready.getReplica(), " but request ", request,
                 " assigned job ", a.job, " pipeline ", a.pipeline, " stage ", a.stage, " replica ",
                 a.replica);
    std::set<std::string> cache;
    for (auto h : ready.getCachedWeights()) {
      CONVOY_CHECK(h.size() == 32, "StageReady.cachedWeights: a hash of ", h.size(), " bytes");
      cache.insert(str(h));
    }
    pending.erase(it);
    w.cached = std::move(cache);
    double compile = ready.getCompileSeconds();
    info("job ", a.job, ": stage ", a.stage, " replica ", a.replica, " ready on ", w.name, " (compile ",
         std::isfinite(compile) ? compile : 0.0, " s, ", ready.getWeightBytesReceived(), " weight bytes)");
    Job& job = jobs.at(a.job);
    if (job.id != active_job || job.state != JobState::PLANNING) return;
    bool all =
        std::none_of(pending.begin(), pending.end(), [&](const auto& p) { return p.second.job == job.id; });
    if (!all) return;
    job.state = JobState::RUNNING;
    uint32_t widest = 1;
    for (const AssignedStage& st : job.plan.stages) widest = std::max<uint32_t>(widest, st.replicas.size());
    // Credits per pipeline: a stage with k replicas is k pipelines' worth of work in flight.
    uint32_t credits = config.max_in_flight * widest;
    if (job.admission) {  // a re-planned pipeline: the outputs and what is done so far carry over
      job.admission->set_limit(credits);
      info("job ", job.id, ": running again on pipeline ", job.pipeline, ", replaying ",
           job.admission->requeued(), " micro-batch(es)");
      job.recovering.clear();
      admit(job);
      return;
    }
    job.streaming = Clock::now();
    job.admission.emplace(job.micro_batches_total, credits);
    job.outputs.emplace(job.output, job.samples, job.batch_size,
                        str_cat("job ", job.id, " (", job.model_path, ")"));
    info("job ", job.id, ": running, ", job.micro_batches_total, " micro-batches of ", job.batch_size,
         " samples");
    admit(job);
  }

  void admit(Job& job) {
    const AssignedStage& first = job.plan.stages[0];
    while (job.state == JobState::RUNNING && job.admission->can_admit()) {
      int64_t seq = job.admission->admit();
      int64_t begin = micro_batch_begin(seq, job.batch_size),
              end = micro_batch_end(seq, job.samples, job.batch_size);
      const StageReplica& rep = first.replicas[static_cast<size_t>(seq) % first.replicas.size()];
      const Worker& w = workers.at(rep.worker_id);
      wire::OutMessage m;
      auto mb = m.envelope().getBody().initMicroBatch();
      mb.setJob(job.id);
      mb.setPipeline(job.pipeline);
      mb.setSeq(static_cast<uint64_t>(seq));
      mb.setStage(0);
      auto metas = mb.initTensors(static_cast<unsigned>(job.inputs.size()));
      for (size_t i = 0; i < job.inputs.size(); ++i)
        m.add_tensor(job.inputs[i].slice(begin, end), metas[static_cast<unsigned>(i)]);  // zero-copy
      mb.initStageSeconds(0);
      DataLink& l = link(w.data_endpoint);
      try {
        m.send(l.socket);
      } catch (const std::exception& e) {
        recover(job, str_cat("cannot send micro-batch ", seq, " to worker ", w.name, " (", e.what(), ")"));
        return;
      }
      l.watcher->kick();
    }
  }

  void on_result(Peer& peer, const wire::InMessage& msg, schema::Result::Reader r) {
    uint64_t id = r.getJob();
    auto jt = jobs.find(id);
    CONVOY_CHECK(jt != jobs.end(), "Result for job ", id, " that does not exist");
    Job& job = jt->second;
    // A late result of a cancelled or failed job, or one before anything was admitted, is dropped.
    // While a re-plan is under way (planning) the old pipeline's late results still count.
    if (!job.active() || !job.admission) return;
    CONVOY_CHECK(job.workers.count(peer.worker_id) || job.past_workers.count(peer.worker_id),
                 "Result for job ", id, " from worker ", peer.name, " that holds none of its stages");
    uint32_t pipeline = r.getPipeline();
    CONVOY_CHECK(pipeline <= job.pipeline, "Result.pipeline ", pipeline, " (job ", id, " is on pipeline ",
                 job.pipeline, ")");
    uint64_t seq = r.getSeq();
    CONVOY_CHECK(seq < static_cast<uint64_t>(job.admission->admitted()), "Result for job ", id,
                 " micro-batch ", seq, " that was never sent");
    if (!job.admission->outstanding(static_cast<int64_t>(seq))) {  // written already: never twice
      info("job ", id, ": ignored a result for micro-batch ", seq, " (pipeline ", pipeline,
           ") that is already written");
      return;
    }
    if (pipeline != job.pipeline)
      info("job ", id, ": accepted a late result for micro-batch ", seq, " from pipeline ", pipeline);
    auto metas = r.getTensors();
    CONVOY_CHECK(metas.size() == msg.tensor_frames(), "Result.tensors lists ", metas.size(), " tensors but ",
                 msg.tensor_frames(), " frames came");
    std::vector<Tensor> outs;
    for (uint32_t i = 0; i < metas.size(); ++i)
      outs.push_back(msg.tensor(i, metas[i], str_cat("Result.tensors[", i, "]")));
    try {
      job.outputs->write(static_cast<int64_t>(seq), outs);
    } catch (const Error& e) {
      end_job(job, JobState::FAILED, e.what());
      return;
    }
    auto secs = r.getStageSeconds();
    if (pipeline != job.pipeline) {
      // another plan's stages: not this plan's measured times
    } else if (secs.size() == job.stage_seconds_sum.size()) {
      for (uint32_t s = 0; s < secs.size(); ++s)
        if (std::isfinite(secs[s]) && secs[s] >= 0) {
          job.stage_seconds_sum[s] += secs[s];
          ++job.stage_seconds_count[s];
        }
    } else {
      warn("job ", id, " micro-batch ", seq, ": Result.stageSeconds has ", secs.size(), " entries for ",
           job.stage_seconds_sum.size(), " stages; ignored");
    }
    job.admission->complete(static_cast<int64_t>(seq));
    release_consumed_inputs(job);
    job.samples_done +=
        micro_batch_end(seq, job.samples, job.batch_size) - micro_batch_begin(seq, job.batch_size);
    ++job.micro_batches_done;
    if (job.admission->finished()) {
      try {
        job.outputs->commit();
      } catch (const Error& e) {
        end_job(job, JobState::FAILED, e.what());
        return;
      }
      end_job(job, JobState::DONE, "");
      return;
    }
    admit(job);
  }

  // Input pages of finished micro-batches go back to the kernel (they are clean pages of a private
  // file mapping we never write: touching them again re-reads the file), so the coordinator's
  // resident memory stays flat however big the inputs are.
  void release_consumed_inputs(Job& job) {
    static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    int64_t rows =
        std::min(job.samples, micro_batch_begin(job.admission->lowest_outstanding(), job.batch_size));
    job.released.resize(job.inputs.size(), 0);
    for (size_t i = 0; i < job.inputs.size(); ++i) {
      const Tensor& t = job.inputs[i].tensor();
      if (t.numel() == 0) continue;
      auto base = reinterpret_cast<uintptr_t>(t.raw_data());
      uintptr_t done = base + static_cast<uintptr_t>(rows) * (t.nbytes() / static_cast<size_t>(t.size(0)));
      uintptr_t from = (base + job.released[i] + page - 1) / page * page, to = done / page * page;
      if (to <= from) continue;
      madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
      job.released[i] = to - base;
    }
  }

  void on_stage_failed(Peer& peer, schema::StageFailed::Reader f) {
    auto jt = jobs.find(f.getJob());
    CONVOY_CHECK(jt != jobs.end(), "StageFailed for job ", f.getJob(), " that does not exist");
    Job& job = jt->second;
    std::string message = str(f.getMessage());
    if (!job.active()) return;
    if (f.getPipeline() != job.pipeline) {  // a replaced pipeline: its micro-batches are requeued already
      info("job ", job.id, ": ignored stageFailed of replaced pipeline ", f.getPipeline(), " from worker ",
           peer.name, ": ", message);
      return;
    }
    if (f.getSeq() == kFailedAssignment) {
      end_job(job, JobState::FAILED,
              str_cat("worker ", peer.name, " could not build stage ", f.getStage(), ": ", message));
      return;
    }
    std::string what =
        str_cat("worker ", peer.name, " stage ", f.getStage(), " micro-batch ", f.getSeq(), ": ", message);
    using Kind = schema::StageFailed::Kind;
    const Kind kind = f.getKind();
    if (job.state != JobState::RUNNING || !job.admission || kind == Kind::BAD_INPUT ||
        kind == Kind::INTERNAL) {
      // Bad data, an unsupported op or a broken invariant: every replay would fail the same way.
      end_job(job, JobState::FAILED, what);
      return;
    }
    // A device or transport fault (or an older worker that does not say): replay on a new plan; a
    // micro-batch that fails again on fresh pipelines fails the job once it has used up its replays.
    recover(job, what, static_cast<int64_t>(f.getSeq()));
  }

  void end_job(Job& job, JobState state, const std::string& error) {
    if (job.ended()) return;
    bool was_active = job.id == active_job;
    job.state = state;
    job.error = error;
    job.finished = Clock::now();
    if (state == JobState::DONE)
      info("job ", job.id, " done: ", job.samples, " samples in ", seconds(job.finished - job.started), " s");
    else
      info("job ", job.id, " ", state_name(state), error.empty() ? "" : ": ", error);
    release_stages(job);
    job.outputs.reset();  // uncommitted files are removed
    job.admission.reset();
    job.inputs.clear();
    job.plan.stages.clear();
    job.graph.reset();
    job.archive.reset();
    if (was_active) {
      active_job = 0;
      boost::asio::post(io, [this] { schedule(); });  // not from inside a handler that still uses the job
    }
  }

  // --- clients -------------------------------------------------------------------------------------

  void on_client_message(const std::string& id, schema::Envelope::Reader env) {
    uint64_t request = env.getRequestId();
    auto body = env.getBody();
    try {
      wire::OutMessage m;
      auto out = m.envelope();
      out.setRequestId(request);
      switch (body.which()) {
        case Body::SUBMIT_JOB:
          out.getBody().initSubmitted().setJob(submit(body.getSubmitJob()));
          break;
        case Body::STATUS_REQUEST:
          status(body.getStatusRequest().getJob(), out.getBody().initStatusReply());
          break;
        case Body::CANCEL:
          out.getBody().initCancelled().setJob(cancel(body.getCancel().getJob()));
          break;
        case Body::WORKERS_REQUEST:
          list_workers(out.getBody().initWorkersReply());
          break;
        case Body::PLAN_REQUEST:
          out.getBody().initPlanReply().setText(plan_text(body.getPlanRequest().getJob()));
          break;
        default:
          throw ClientError(
              ErrorReply::Kind::BAD_REQUEST,
              str_cat("unexpected message (body ", static_cast<int>(body.which()), ") from a client"));
      }
      send(m, id);
    } catch (const ClientError& e) {
      warn("request from ", peer_name(id), ": ", e.what());
      reply_error(id, request, e.reply, e.what());
    } catch (const Error& e) {
      warn("request from ", peer_name(id), ": ", e.what());
      reply_error(id, request, reply_kind(e.kind()), e.what());
    } catch (const std::exception& e) {  // Cap'n Proto: a malformed request
      ++messages_dropped;
      warn("dropped message from ", peer_name(id), ": ", e.what());
      reply_error(id, request, ErrorReply::Kind::BAD_REQUEST, std::string("malformed request: ") + e.what());
    }
  }

  static std::string absolute_path(capnp::Text::Reader t, const std::string& field) {
    std::string p = str(t);
    CONVOY_CHECK(!p.empty(), "SubmitJob.", field, " is empty");
    CONVOY_CHECK(p.size() < 4096 && p.find('\0') == std::string::npos, "SubmitJob.", field, " is not a path");
    CONVOY_CHECK(p[0] == '/', "SubmitJob.", field, " '", p,
                 "' is relative (the submitter resolves paths against the job file's folder)");
    return p;
  }

  // Checks a SubmitJob and fills `job` from it (without an id).
  void read_job(schema::SubmitJob::Reader s, Job& job) {
    job.job_file = str(s.getJobFile());
    job.name = str(s.getName());
    job.model_path = absolute_path(s.getModel(), "model");
    job.output = absolute_path(s.getOutput(), "output");
    auto inputs = s.getInputs();
    CONVOY_CHECK(inputs.size() > 0, "SubmitJob.inputs is empty");
    for (uint32_t i = 0; i < inputs.size(); ++i)
      job.input_paths.push_back(absolute_path(inputs[i], str_cat("inputs[", i, "]")));
    job.batch_size = s.getBatchSize();
    CONVOY_CHECK(job.batch_size > 0, "SubmitJob.batchSize must be positive, not ", job.batch_size);
    job.backend = str(s.getBackend());  // "" is decided at planning, from the workers then registered
    CONVOY_CHECK(job.backend.empty() || job.backend == "opencl" || job.backend == "reference",
                 "SubmitJob.backend '", job.backend, "' (expected opencl or reference)");
    std::string where = job.job_file.empty() ? std::string("job") : job.job_file;
    CONVOY_CHECK_KIND(kIo, std::filesystem::is_regular_file(job.model_path), where, ": model ",
                      job.model_path, " not found on the coordinator");
    for (const std::string& p : job.input_paths)
      CONVOY_CHECK_KIND(kIo, std::filesystem::is_regular_file(p), where, ": input ", p,
                        " not found on the coordinator");
    if (job.name.empty())
      job.name =
          std::filesystem::path(job.job_file.empty() ? job.model_path : job.job_file).filename().string();
  }

  uint64_t submit(schema::SubmitJob::Reader s) {
    if (stopped) throw ClientError(ErrorReply::Kind::RETRY_LATER, "the coordinator is shutting down");
    Job job;
    read_job(s, job);
    job.id = next_job_id++;
    job.submitted = Clock::now();
    info("job ", job.id, " submitted: ", job.name, " (", job.model_path, ", batch ", job.batch_size, ", ",
         job.backend.empty() ? std::string("default backend") : job.backend, ")");
    uint64_t id = job.id;
    jobs.emplace(id, std::move(job));
    queue.push_back(id);
    boost::asio::post(io, [this] { schedule(); });  // after the reply is on its way
    return id;
  }

  uint64_t cancel(uint64_t id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) throw ClientError(ErrorReply::Kind::NOT_FOUND, str_cat("no job ", id));
    Job& job = it->second;
    if (job.state == JobState::DONE || job.state == JobState::FAILED)
      throw ClientError(
          ErrorReply::Kind::BAD_REQUEST,
          str_cat("job ", id, " has already ", job.state == JobState::DONE ? "finished" : "failed"));
    if (job.state == JobState::QUEUED) queue.erase(std::find(queue.begin(), queue.end(), id));
    end_job(job, JobState::CANCELLED, "cancelled by a client");
    return id;
  }

  void fill_status(const Job& job, schema::JobStatus::Builder s) {
    s.setJob(job.id);
    s.setName(job.name);
    s.setState(job.state);
    s.setSamplesDone(job.samples_done);
    s.setSamplesTotal(job.samples);
    s.setMicroBatchesDone(job.micro_batches_done);
    s.setMicroBatchesTotal(job.micro_batches_total);
    Clock::time_point now = job.ended() ? job.finished : Clock::now();
    s.setSamplesPerSecond(job.samples_per_second());
    s.setElapsedSeconds(job.started != Clock::time_point{} ? seconds(now - job.started) : 0);
    s.setError(job.error);
    s.setOutput(job.output);
    auto stages = s.initStages(static_cast<unsigned>(job.stage_first.size()));
    for (uint32_t i = 0; i < job.stage_first.size(); ++i) {
      auto st = stages[i];
      st.setStage(i);
      std::string list = job.stage_workers[i];
      size_t n = list.empty() ? 0 : std::count(list.begin(), list.end(), ',') + 1;
      auto ws = st.initWorkers(static_cast<unsigned>(n));
      size_t pos = 0;
      for (unsigned k = 0; k < n; ++k) {
        size_t comma = list.find(',', pos);
        ws.set(k, list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        pos = comma + 1;
      }
      st.setFirstOp(job.stage_first[i]);
      st.setLastOp(job.stage_last[i]);
      st.setPredictedSeconds(job.stage_predicted[i]);
      st.setMeasuredSeconds(job.stage_seconds_count[i] ? job.stage_seconds_sum[i] / job.stage_seconds_count[i]
                                                       : 0);
    }
  }

  void status(uint64_t id, schema::StatusReply::Builder reply) {
    if (id != 0) {
      auto it = jobs.find(id);
      if (it == jobs.end()) throw ClientError(ErrorReply::Kind::NOT_FOUND, str_cat("no job ", id));
      fill_status(it->second, reply.initJobs(1)[0]);
      return;
    }
    auto list = reply.initJobs(static_cast<unsigned>(jobs.size()));
    unsigned i = 0;
    for (const auto& [jid, job] : jobs) fill_status(job, list[i++]);
  }

  void list_workers(schema::WorkersReply::Builder reply) {
    auto list = reply.initWorkers(static_cast<unsigned>(workers.size()));
    unsigned i = 0;
    Clock::time_point now = Clock::now();
    for (const auto& [wid, w] : workers) {
      auto o = list[i++];
      o.setWorkerId(wid);
      o.setName(w.name);
      o.setHost(w.host);
      o.setDataEndpoint(w.data_endpoint);
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
      if (active_job) {
        const Job& job = jobs.at(active_job);
        for (size_t s = 0; s < job.plan.stages.size(); ++s)
          for (const StageReplica& r : job.plan.stages[s].replicas)
            if (r.worker_id == wid) stages.push_back(str_cat("job ", job.id, " stage ", s));
      }
      auto ss = o.initStages(static_cast<unsigned>(stages.size()));
      for (unsigned k = 0; k < stages.size(); ++k) ss.set(k, stages[k]);
    }
  }

  std::string plan_text(schema::SubmitJob::Reader s) {
    Job job;
    read_job(s, job);
    if (workers.empty())
      throw ClientError(ErrorReply::Kind::RETRY_LATER,
                        "no workers are registered yet; start convoy-worker first");
    LoadOptions options;
    options.num_inputs = static_cast<int>(job.input_paths.size());
    Model model = load_model(job.model_path, registry, options);
    std::shared_ptr<const Graph> graph(std::move(model.graph));
    std::vector<InputShape> shapes = open_inputs(job, model.input_names);
    return plan_job(graph, live_devices(pick_backend(job.backend)), shapes,
                    PlanSettings{config.max_in_flight, job.micro_batches_total, config.max_replicas,
                                 config.op_overhead_us * 1e-6})
        .text;
  }

  // --- HTTP ----------------------------------------------------------------------------------------

  http::MetricsSnapshot metrics() const {
    http::MetricsSnapshot m;
    m.workers = workers.size();
    for (const auto& [jid, job] : jobs) {
      switch (job.state) {
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
      m.micro_batches_done_total += job.micro_batches_done;
      m.samples_done_total += job.samples_done;
    }
    if (active_job) {
      const Job& job = jobs.at(active_job);
      m.running_job = job.id;
      m.running_job_samples_per_second = job.samples_per_second();
      if (job.admission) m.micro_batches_in_flight = job.admission->in_flight();
    }
    Clock::time_point now = Clock::now();
    for (const auto& [wid, w] : workers)
      m.worker_list.push_back(http::WorkerMetrics{w.name, seconds(now - w.last_heartbeat), w.rss});
    m.messages_dropped_total = messages_dropped;
    m.replays_total = replays;
    return m;
  }

  // --- timers --------------------------------------------------------------------------------------

  void arm_liveness() {
    liveness.expires_after(std::chrono::milliseconds(config.heartbeat_ms));
    liveness.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped) return;
      check_liveness();
      arm_liveness();
    });
  }

  void check_liveness() {
    // Heartbeats that queued up while we were busy (planning a big model) count before anyone is
    // declared dead.
    drain();
    Clock::time_point now = Clock::now();
    auto limit = std::chrono::milliseconds(uint64_t{config.heartbeat_ms} * config.missed_heartbeats);
    std::vector<uint32_t> dead;
    for (const auto& [wid, w] : workers)
      if (now - w.last_heartbeat > limit) dead.push_back(wid);
    for (uint32_t wid : dead) {
      auto w = workers.find(wid);
      std::string identity = w->second.identity;
      forget_worker(wid, str_cat("missed ", config.missed_heartbeats, " heartbeats: dead"), true);
      auto p = peers.find(identity);
      if (p != peers.end()) p->second.worker_id = 0;
    }
    for (auto p = peers.begin(); p != peers.end();)
      p = p->second.role == schema::Role::CLIENT && now - p->second.last_seen > kClientIdle ? peers.erase(p)
                                                                                            : std::next(p);
    if (active_job) {
      Job& job = jobs.at(active_job);
      if (job.state == JobState::PLANNING && now > job.ready_deadline) {
        if (job.waiting_for_workers)
          end_job(
              job, JobState::FAILED,
              str_cat(job.recovering, "; no live worker of the ", job.backend, " backend registered within ",
                      config.stage_ready_timeout_s, " s (stage_ready_timeout_s)"));
        else
          end_job(
              job, JobState::FAILED,
              str_cat(job.recovering.empty() ? "" : job.recovering + "; re-planned, but ",
                      "stages not ready after ", config.stage_ready_timeout_s, " s (stage_ready_timeout_s)"));
      }
    }
  }

  void shutdown(const std::string& reason) {
    if (stopped) return;
    info("shutting down: ", reason);
    for (uint64_t id : std::deque<uint64_t>(queue))
      end_job(jobs.at(id), JobState::CANCELLED, "coordinator " + reason);
    queue.clear();
    if (active_job) end_job(jobs.at(active_job), JobState::CANCELLED, "coordinator " + reason);
    stopped = true;
    stop_reason = reason;
    if (http_server) http_server->stop();  // a request already read is answered 503
    liveness.cancel();
    for (auto& [ep, l] : links) l->watcher->stop();
    links.clear();
    watcher->stop();
    router.close();
  }
};

CoordinatorServer::CoordinatorServer(boost::asio::io_context& io, const ClusterConfig& config,
                                     const OpRegistry& registry, std::ostream& log)
    : impl_(std::make_unique<Impl>(io, config, registry, log)) {}

CoordinatorServer::~CoordinatorServer() {
  if (impl_ && !impl_->stopped) {
    impl_->stopped = true;
    if (impl_->http_server) impl_->http_server->stop();
    impl_->liveness.cancel();
    for (auto& [ep, l] : impl_->links) l->watcher->stop();
    impl_->watcher->stop();
  }
}

const std::string& CoordinatorServer::endpoint() const { return impl_->bound; }

void CoordinatorServer::shutdown(const std::string& reason) { impl_->shutdown(reason); }

int serve(const ClusterConfig& config, std::ostream& log) {
  OpRegistry registry = make_default_registry();
  boost::asio::io_context io;
  CoordinatorServer server(io, config, registry, log);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) server.shutdown(sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
  });
  io.run();
  return 0;
}

struct EmbeddedCoordinator::Impl {
  OpRegistry registry = make_default_registry();
  boost::asio::io_context io;
  std::unique_ptr<CoordinatorServer> server;
  std::thread thread;
  bool stopped = false;
};

EmbeddedCoordinator::EmbeddedCoordinator(const ClusterConfig& config, std::ostream& log)
    : impl_(std::make_unique<Impl>()) {
  impl_->server = std::make_unique<CoordinatorServer>(impl_->io, config, impl_->registry, log);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

EmbeddedCoordinator::~EmbeddedCoordinator() { stop(); }

const std::string& EmbeddedCoordinator::endpoint() const { return impl_->server->endpoint(); }

void EmbeddedCoordinator::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  boost::asio::post(impl_->io, [this] { impl_->server->shutdown("stopped"); });
  impl_->thread.join();
  impl_->server.reset();
}

}  // namespace convoy
