#include "coordinator/server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <thread>

#include "coordinator/cluster_views.h"
#include "coordinator/http.h"
#include "coordinator/job_run.h"
#include "coordinator/ledger.h"
#include "coordinator/worker_registry.h"
#include "runtime/error.h"
#include "runtime/ops/registry.h"
#include "runtime/printable.h"
#include "schema/auth.h"
#include "schema/wire.h"

namespace convoy {

namespace {

using Clock = std::chrono::steady_clock;
using schema::ErrorReply;
using Body = schema::Envelope::Body;

constexpr auto kClientIdle = std::chrono::minutes(10);  // a client peer silent this long is forgotten
// A worker-role peer that has not registered this long after its hello is forgotten.
constexpr auto kRegisterWithin = std::chrono::seconds(5);
// Peers known at once (said hello); beyond it the least recently heard unregistered peer is forgotten.
constexpr size_t kMaxPeers = 4096;
constexpr int64_t kLinkMaxMessage = 1 << 20;  // a data link only ever receives hello replies and errors

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

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

struct Peer {
  schema::Role role = schema::Role::CLIENT;
  std::string name;
  uint32_t worker_id = 0;  // once registered
  Clock::time_point hello, last_seen;
  std::string key;  // the CURVE key it said hello with
};

struct SystemClock : JobClock {
  Clock::time_point now() const override { return Clock::now(); }
};

}  // namespace

// The ZeroMQ/Asio adapter: sockets, peers, timers and client requests around the worker registry
// and the job runs (coordinator/job_run.h), which it feeds and which send through it.
struct CoordinatorServer::Impl : JobOutbox {
  boost::asio::io_context& io;
  ClusterConfig config;
  const OpRegistry& registry;
  std::ostream& log;
  uint64_t opset;
  std::string name = wire::process_name();

  zmq::context_t ctx{1};
  // Security (docs/security.md): the coordinator's key pair, the allow-list and its ZAP handler;
  // none of them when insecure.
  auth::KeyPair own;
  std::shared_ptr<auth::AllowList> allowed;
  std::unique_ptr<auth::ZapHandler> zap;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::unique_ptr<wire::AsioZmqWatcher> watcher;
  std::string bound;
  boost::asio::steady_timer liveness{io};
  bool stopped = false;

  std::map<std::string, Peer> peers;  // by routing id
  WorkerRegistry workers;

  // One DEALER per worker data endpoint: the coordinator is stage 0's upstream.
  struct DataLink {
    zmq::socket_t socket;
    std::unique_ptr<wire::AsioZmqWatcher> watcher;
    bool answered = false;  // the worker answered our hello
  };
  std::map<std::string, std::unique_ptr<DataLink>> links;

  SystemClock clock;
  CoordinatorCounters counters;
  uint64_t next_request_id = 1;
  std::unique_ptr<Ledger> ledger;
  JobEnv job_env{config, registry, workers, *this, clock, nullptr, log, counters, next_request_id};
  std::map<uint64_t, std::unique_ptr<JobRun>> jobs;
  std::deque<uint64_t> queue;
  std::set<uint64_t> active_jobs;  // planning or running
  uint64_t next_job_id = 1;
  std::string stop_reason;
  std::unique_ptr<http::Server> http_server;  // last: goes first, before the state it reads

  Impl(boost::asio::io_context& io_, const ClusterConfig& c, const OpRegistry& r, std::ostream& l)
      : io(io_), config(c), registry(r), log(l), opset(wire::opset_hash(r)) {
    if (!config.state_dir.empty()) open_ledger();
    secure();
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_message_mb) << 20);
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
      if (!config.http_token_file.empty()) handlers.metrics_token = read_token(config.http_token_file);
      http_server = std::make_unique<http::Server>(io, config.http_listen, std::move(handlers), log);
    }
    watcher = std::make_unique<wire::AsioZmqWatcher>(io, router, [this] { drain(); });
    arm_liveness();
    info("listening on ", bound, " (heartbeat ", config.heartbeat_ms, " ms, max_in_flight ",
         config.max_in_flight, ", min_workers ", config.min_workers, ")");
    if (http_server) info("metrics on http://", http_server->address(), "/metrics");
  }

  // CURVE on the control socket with a ZAP handler over keys_dir/authorized, the keys made on first
  // start; or, with insecure: true, plain text and a warning that says what that means.
  void secure() {
    if (config.insecure) {
      warn("INSECURE: 'insecure: true': no authentication and no encryption. Any process that reaches ",
           config.listen, " can register as a worker, read every model and input it is sent, forge results ",
           "and submit or cancel any job. Never use this off a single trusted machine.");
      return;
    }
    std::string keys = default_keys_dir(config);
    if (auth::ensure_local_keys(keys))
      info("created the cluster's keys in ", keys, " (a local worker and an admin client are allowed; ",
           "docs/security.md says how to add others)");
    own = auth::read_certificate(auth::secret_file(keys, "coordinator"), true).keys;
    allowed = std::make_shared<auth::AllowList>((std::filesystem::path(keys) / "authorized").string());
    if (std::string p = allowed->problems(); !p.empty()) warn("allow-list: ", p);
    zap = std::make_unique<auth::ZapHandler>(ctx, allowed);
    job_env.coordinator_key = own.public_key;
    auth::make_server(router, own);
    info("CURVE on: coordinator key ", own.public_key, "; allow-list ", allowed->folder());
  }

  // The bearer token /metrics requires: the file's first line, which must not be empty.
  static std::string read_token(const std::string& path) {
    std::ifstream in(path);
    CONVOY_CHECK_KIND(kIo, in.good(), path, ": cannot read http_token_file");
    std::string token;
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    CONVOY_CHECK(token.size() >= 16, path, ": http_token_file holds a token of ", token.size(),
                 " characters (at least 16)");
    return token;
  }

  // Who sent `msg`: its key's principal. Insecure: everyone is an admin without a key.
  std::optional<auth::Principal> principal(const wire::InMessage& msg) {
    if (config.insecure) return auth::Principal{auth::Role::kAdmin, "", ""};
    if (msg.peer_key().empty()) return std::nullopt;
    return allowed->find(msg.peer_key());
  }

  void drop(const char* reason) { ++counters.dropped[reason]; }

  // Reads every job back from the ledger: ended ones for status, unfinished ones queued to resume.
  void open_ledger() {
    ledger = std::make_unique<Ledger>(config.state_dir);
    job_env.ledger = ledger.get();
    size_t resumed = 0;
    for (const LedgerJob& rec : ledger->load()) {
      auto run = std::make_unique<JobRun>(job_env, rec);
      if (!run->ended()) {
        queue.push_back(rec.id);
        ++resumed;
      }
      jobs.emplace(rec.id, std::move(run));
    }
    next_job_id = ledger->next_job_id();
    info("job ledger ", ledger->path(), ": ", jobs.size(), " job(s), ", resumed, " to resume");
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
    if (it != peers.end() && !it->second.name.empty()) return printable(it->second.name, 128);
    return "peer " + hex(identity);
  }

  // Registered workers that take assignments and no active job holds.
  size_t idle_workers() const {
    std::set<uint32_t> held = held_by_others(0);
    size_t n = 0;
    for (const auto& [wid, w] : workers.all()) n += !w.refusing && !held.count(wid);
    return n;
  }

  // Tells every active job that workers may be free (one registered, another job ended).
  void workers_available() {
    for (uint64_t id : std::set<uint64_t>(active_jobs)) {
      auto it = jobs.find(id);
      if (it != jobs.end() && it->second->active()) it->second->on_worker_registered();
    }
  }

  // --- JobOutbox -----------------------------------------------------------------------------------

  void to_worker(const Worker& w, wire::OutMessage& m) override { send(m, w.identity); }

  void to_data(const Worker& w, wire::OutMessage& m) override {
    DataLink& l = link(w);
    m.send(l.socket);
    l.watcher->kick();
  }

  void defer(std::function<void()> f) override {
    boost::asio::post(io, [this, f = std::move(f)] {
      if (!stopped) f();
    });
  }

  bool data_answered(const Worker& w) override { return link(w).answered; }

  void job_ended(uint64_t job) override {
    if (!active_jobs.erase(job)) return;
    boost::asio::post(io, [this] {  // not from inside a handler that still uses the job
      if (stopped) return;
      workers_available();
      schedule();
    });
  }

  std::set<uint32_t> held_by_others(uint64_t job) const override {
    std::set<uint32_t> held;
    for (uint64_t id : active_jobs)
      if (id != job)
        if (auto it = jobs.find(id); it != jobs.end())
          held.insert(it->second->held_workers().begin(), it->second->held_workers().end());
    return held;
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

  // The DEALER to `w`'s data endpoint, as a CURVE client of its key.
  DataLink& link(const Worker& w) {
    const std::string& endpoint = w.data_endpoint;
    auto it = links.find(endpoint);
    if (it != links.end()) return *it->second;
    auto l = std::make_unique<DataLink>(DataLink{zmq::socket_t(ctx, zmq::socket_type::dealer), nullptr});
    l->socket.set(zmq::sockopt::linger, 0);
    l->socket.set(zmq::sockopt::maxmsgsize, kLinkMaxMessage);
    if (!config.insecure) auth::make_client(l->socket, own, w.key);
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
              if (env.getBody().which() == Body::HELLO_REPLY && !raw->answered) {
                raw->answered = true;
                boost::asio::post(io, [this] {
                  if (stopped) return;
                  for (auto& [jid, job] : jobs)
                    if (job->active()) job->on_data_link_answered();
                });
              }
            } catch (const std::exception& e) {
              drop("malformed");
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
      // The ZAP handler admitted the key when the connection was made; it must still be allowed.
      std::optional<auth::Principal> who = principal(msg);
      if (!who) {
        drop("unauthenticated");
        return;
      }
      auto env = msg.envelope();
      request = env.getRequestId();
      auto body = env.getBody();
      if (body.which() == Body::HELLO) return on_hello(id, *who, request, body.getHello());
      if (peer == peers.end()) {
        reply_error(id, request, ErrorReply::Kind::REFUSED, "say hello first");
        return;
      }
      if (peer->second.key != who->key) {  // another connection took over this routing id
        drop("unauthenticated");
        return;
      }
      peer->second.last_seen = Clock::now();
      if (peer->second.role == schema::Role::WORKER)
        on_worker_message(peer->second, msg, env);
      else
        on_client_message(id, *who, env);
    } catch (const std::exception& e) {
      drop("malformed");
      warn("dropped message from ", peer_name(id), ": ", e.what());
      if (peer != peers.end() && peer->second.role == schema::Role::CLIENT)
        reply_error(id, request, ErrorReply::Kind::BAD_REQUEST,
                    std::string("malformed message: ") + e.what());
    }
  }

  void on_hello(const std::string& id, const auth::Principal& principal, uint64_t request,
                schema::Hello::Reader hello) {
    std::string why = wire::check_hello(hello, opset);
    std::string who;
    try {
      who = wire::peer_name_field(hello.getName(), "Hello.name");
    } catch (const Error& e) {
      drop("refused");
      warn("refused ", hex(id), ": ", e.what());
      reply_error(id, request, ErrorReply::Kind::REFUSED, e.what());
      return;
    }
    if (!why.empty()) {
      warn("refused ", who, ": ", why);
      if (auto p = peers.find(id); p != peers.end() && p->second.worker_id)
        forget_worker(p->second.worker_id, "said an incompatible hello", true);
      peers.erase(id);
      reply_error(id, request, ErrorReply::Kind::VERSION_MISMATCH, why);
      return;
    }
    schema::Role role = hello.getRole();
    CONVOY_CHECK(role == schema::Role::CLIENT || role == schema::Role::WORKER, "Hello.role ",
                 static_cast<int>(role), " on the control socket (expected client or worker)");
    bool fits = config.insecure || (role == schema::Role::WORKER ? principal.role == auth::Role::kWorker
                                                                 : principal.role == auth::Role::kClient ||
                                                                       principal.role == auth::Role::kAdmin);
    if (!fits) {
      drop("refused");
      std::string text = str_cat(
          "key ", principal.name, " (", auth::short_key(principal.key), "…) is a ",
          auth::role_name(principal.role), " key; a ",
          role == schema::Role::WORKER ? "worker needs a worker key" : "client needs a client or admin key");
      warn("refused ", who, ": ", text);
      reply_error(id, request, ErrorReply::Kind::REFUSED, text);
      return;
    }
    if (!peers.count(id) && peers.size() >= kMaxPeers && !forget_idlest_peer()) {
      drop("refused");
      reply_error(id, request, ErrorReply::Kind::RETRY_LATER,
                  "the coordinator has too many peers; retry later");
      return;
    }
    Peer& p = peers[id];
    if (p.worker_id) forget_worker(p.worker_id, "said hello again", true);
    Clock::time_point now = Clock::now();
    p = Peer{role, who, 0, now, now, principal.key};
    wire::OutMessage m;
    auto env = m.envelope();
    env.setRequestId(request);
    auto r = env.getBody().initHelloReply();
    r.setProtocolVersion(wire::kProtocolVersion);
    r.setOpsetHash(opset);
    r.setName(name);
    send(m, id);
  }

  // Forgets the unregistered peer heard from least recently (to make room); false when every peer
  // is a registered worker.
  bool forget_idlest_peer() {
    auto idlest = peers.end();
    for (auto it = peers.begin(); it != peers.end(); ++it)
      if (!it->second.worker_id && (idlest == peers.end() || it->second.last_seen < idlest->second.last_seen))
        idlest = it;
    if (idlest == peers.end()) return false;
    peers.erase(idlest);
    return true;
  }

  // --- workers -------------------------------------------------------------------------------------

  Worker* worker_of(const Peer& peer, uint32_t id) {
    if (!peer.worker_id || peer.worker_id != id) return nullptr;
    return workers.find(id);
  }

  // The job a worker's message names, if it is known; a message for an unknown job is dropped.
  JobRun& job_named(uint64_t id, const char* what) {
    auto it = jobs.find(id);
    CONVOY_CHECK(it != jobs.end(), what, " for job ", id, " that does not exist");
    return *it->second;
  }

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
      case Body::STAGE_READY: {
        Worker* w = workers.find(peer.worker_id);
        CONVOY_CHECK(w, "StageReady from an unregistered worker");
        auto ready = body.getStageReady();
        JobRun& job = job_named(ready.getJob(), "StageReady");
        if (job.active()) job.on_stage_ready(*w, env.getRequestId(), ready);
        return;
      }
      case Body::STAGE_FAILED: {
        auto f = body.getStageFailed();
        job_named(f.getJob(), "StageFailed").on_stage_failed(peer.name, f);
        return;
      }
      case Body::RESULT: {
        auto r = body.getResult();
        job_named(r.getJob(), "Result").on_result(peer.worker_id, peer.name, msg, r);
        return;
      }
      case Body::ERROR: {
        auto e = body.getError();
        const Worker* w = workers.find(peer.worker_id);
        for (auto& [jid, job] : jobs)
          if (w && job->active() && job->on_worker_error(*w, env.getRequestId(), e)) return;
        warn("worker ", peer.name, " answered request ", env.getRequestId(),
             " with an error: ", str(e.getMessage()));
        return;
      }
      case Body::HELLO_REPLY:
        return;
      default:
        fail(ErrorKind::kInvalidInput, "unexpected message (body ", static_cast<int>(body.which()),
             ") from a worker");
    }
  }

  void on_register(Peer& peer, const std::string& id, uint64_t request, schema::Register::Reader r) {
    Worker w = WorkerRegistry::read_register(r, id);
    w.key = peer.key;
    if (peer.worker_id) forget_worker(peer.worker_id, "registered again", true);
    std::string wname = w.name, endpoint = w.data_endpoint;
    size_t devices = w.devices.size(), cached = w.cached.size();
    uint32_t wid = workers.add(std::move(w), Clock::now());
    peer.worker_id = wid;
    peer.name = wname;
    info("worker ", wid, " registered: ", wname, " data ", endpoint, ", ", devices, " device(s), ", cached,
         " cached weight(s)");
    wire::OutMessage m;
    m.envelope().setRequestId(request);
    auto reg = m.envelope().getBody().initRegistered();
    reg.setWorkerId(wid);
    reg.setHeartbeatMs(config.heartbeat_ms);
    reg.setMaxMessageBytes(static_cast<uint64_t>(config.max_message_mb) << 20);
    send(m, id);
    workers_available();
    schedule();
  }

  // A worker is gone (deregistered, dead, replaced): a job that had stages on it is re-planned over
  // the live workers and its outstanding micro-batches replayed. `died`: it went without
  // deregistering (missed heartbeats, or a new process under its name).
  void forget_worker(uint32_t wid, const std::string& why, bool died) {
    std::optional<Worker> w = workers.remove(wid);
    if (!w) return;
    info("worker ", wid, " (", w->name, ") ", why);
    close_link(w->data_endpoint);
    for (auto& [jid, job] : jobs)
      if (job->active()) job->on_worker_lost(wid, w->name, why, died);
  }

  // --- jobs ----------------------------------------------------------------------------------------

  // Queued jobs start, in submission order, while at least min_workers workers are idle; a job
  // further back that fits the idle workers starts before one that waits (docs/decisions.md,
  // "Several jobs at once"). A job holds at most its `workers:` (or job_workers) of them.
  void schedule() {
    for (auto it = queue.begin(); !stopped && it != queue.end();) {
      JobRun& job = *jobs.at(*it);
      if (job.ended()) {
        it = queue.erase(it);
        continue;
      }
      if (idle_workers() < std::max<uint32_t>(config.min_workers, 1)) return;
      uint64_t id = *it;
      it = queue.erase(it);
      active_jobs.insert(id);
      job.start();
    }
  }

  // Whether `who` may see and cancel `job`: its owner, an admin, or anyone when insecure.
  bool owns(const auth::Principal& who, const JobRun& job) const {
    return config.insecure || who.role == auth::Role::kAdmin || job.request().owner == who.key;
  }

  uint64_t submit(schema::SubmitJob::Reader s, const auth::Principal& who) {
    if (stopped) throw ClientError(ErrorReply::Kind::RETRY_LATER, "the coordinator is shutting down");
    size_t unfinished = 0;
    for (const auto& [jid, job] : jobs) unfinished += !job->ended() && job->request().owner == who.key;
    if (!config.insecure && unfinished >= config.max_jobs_per_client)
      throw ClientError(
          ErrorReply::Kind::RETRY_LATER,
          str_cat("client ", who.name, " has ", unfinished, " unfinished jobs (max_jobs_per_client ",
                  config.max_jobs_per_client, "); wait for some to end"));
    JobRequest request = read_job_request(s, config.allowed_roots, true);
    request.owner = who.key;
    request.owner_name = who.name;
    uint64_t id = next_job_id++;
    info("job ", id, " submitted: ", request.name, " (", request.model_path, ", batch ", request.batch_size,
         ", ", request.backend.empty() ? std::string("default backend") : request.backend, ")");
    jobs.emplace(
        id, std::make_unique<JobRun>(job_env, id, std::move(request)));  // in the ledger before we answer
    queue.push_back(id);
    boost::asio::post(io, [this] { schedule(); });  // after the reply is on its way
    return id;
  }

  uint64_t cancel(uint64_t id, const auth::Principal& who) {
    auto it = jobs.find(id);
    if (it == jobs.end()) throw ClientError(ErrorReply::Kind::NOT_FOUND, str_cat("no job ", id));
    JobRun& job = *it->second;
    if (!owns(who, job))
      throw ClientError(
          ErrorReply::Kind::REFUSED,
          str_cat("job ", id, " belongs to another client; only its owner or an admin key may cancel it"));
    if (job.state() == JobState::DONE || job.state() == JobState::FAILED)
      throw ClientError(
          ErrorReply::Kind::BAD_REQUEST,
          str_cat("job ", id, " has already ", job.state() == JobState::DONE ? "finished" : "failed"));
    if (job.state() == JobState::QUEUED) queue.erase(std::find(queue.begin(), queue.end(), id));
    job.end(JobState::CANCELLED, "cancelled by " + (who.name.empty() ? std::string("a client") : who.name));
    return id;
  }

  // --- clients -------------------------------------------------------------------------------------

  void on_client_message(const std::string& id, const auth::Principal& who, schema::Envelope::Reader env) {
    uint64_t request = env.getRequestId();
    auto body = env.getBody();
    try {
      wire::OutMessage m;
      auto out = m.envelope();
      out.setRequestId(request);
      switch (body.which()) {
        case Body::SUBMIT_JOB:
          out.getBody().initSubmitted().setJob(submit(body.getSubmitJob(), who));
          break;
        case Body::STATUS_REQUEST:
          status(body.getStatusRequest().getJob(), who, out.getBody().initStatusReply());
          break;
        case Body::CANCEL:
          out.getBody().initCancelled().setJob(cancel(body.getCancel().getJob(), who));
          break;
        case Body::WORKERS_REQUEST:
          list_workers(out.getBody().initWorkersReply());
          break;
        case Body::PLAN_REQUEST: {
          JobRequest job = read_job_request(body.getPlanRequest().getJob(), config.allowed_roots, false);
          if (workers.empty())
            throw ClientError(ErrorReply::Kind::RETRY_LATER,
                              "no workers are registered yet; start convoy-worker first");
          out.getBody().initPlanReply().setText(JobRun::preview_plan(job_env, job));
          break;
        }
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
      drop("malformed");
      warn("dropped message from ", peer_name(id), ": ", e.what());
      reply_error(id, request, ErrorReply::Kind::BAD_REQUEST, std::string("malformed request: ") + e.what());
    }
  }

  // Another client's job shows only as a redacted line (id, state, progress).
  void status(uint64_t id, const auth::Principal& who, schema::StatusReply::Builder reply) {
    if (id != 0) {
      auto it = jobs.find(id);
      if (it == jobs.end()) throw ClientError(ErrorReply::Kind::NOT_FOUND, str_cat("no job ", id));
      it->second->fill_status(reply.initJobs(1)[0], !owns(who, *it->second));
      return;
    }
    auto list = reply.initJobs(static_cast<unsigned>(jobs.size()));
    unsigned i = 0;
    for (const auto& [jid, job] : jobs) job->fill_status(list[i++], !owns(who, *job));
  }

  void list_workers(schema::WorkersReply::Builder reply) { fill_workers_reply(workers, jobs, reply); }

  // --- HTTP ----------------------------------------------------------------------------------------

  http::MetricsSnapshot metrics() const { return metrics_snapshot(workers, jobs, active_jobs, counters); }

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
    for (uint32_t wid : workers.silent(now, limit)) {
      std::string identity = workers.find(wid)->identity;
      forget_worker(wid, str_cat("missed ", config.missed_heartbeats, " heartbeats: dead"), true);
      auto p = peers.find(identity);
      if (p != peers.end()) p->second.worker_id = 0;
    }
    for (auto p = peers.begin(); p != peers.end();) {
      const Peer& q = p->second;
      bool idle_client = q.role == schema::Role::CLIENT && now - q.last_seen > kClientIdle;
      bool unregistered = q.role == schema::Role::WORKER && !q.worker_id && now - q.hello > kRegisterWithin;
      p = idle_client || unregistered ? peers.erase(p) : std::next(p);
    }
    if (zap)
      for (const std::string& line : zap->take_refusals()) warn(line);
    for (auto& [jid, job] : jobs)
      if (job->active()) job->tick();
  }

  void shutdown(const std::string& reason) {
    if (stopped) return;
    info("shutting down: ", reason);
    if (ledger) {
      // Durable jobs outlive this process: the next coordinator on this state_dir resumes them.
      for (auto& [jid, job] : jobs) job->suspend();
    } else {
      for (uint64_t id : std::deque<uint64_t>(queue))
        jobs.at(id)->end(JobState::CANCELLED, "coordinator " + reason);
      for (uint64_t id : std::set<uint64_t>(active_jobs))
        jobs.at(id)->end(JobState::CANCELLED, "coordinator " + reason);
    }
    queue.clear();
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
