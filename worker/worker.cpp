#include "worker/worker.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "opencl/device.h"
#include "opencl/executor.h"
#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/serialize.h"
#include "runtime/ops/registry.h"
#include "runtime/sha256.h"
#include "schema/auth.h"
#include "schema/wire.h"
#include "worker/downstream.h"
#include "worker/profile.h"
#include "worker/weight_cache.h"

namespace convoy::worker {

namespace {

// Fault injection for the tests of the coordinator's quarantine: with CONVOY_FAULT_CRASH_BUILDING_OP
// set to an op kind ("aten::linear"), a worker asked to build a stage holding that op dies by
// SIGSEGV, as a compiler or driver fault on that graph would kill it. Unset (always, outside the
// tests), this does nothing.
void crash_if_fault_injected(Graph& graph) {
  const char* op = std::getenv("CONVOY_FAULT_CRASH_BUILDING_OP");
  if (!op || !*op) return;
  bool holds = false;
  for_each_node(graph.top(), [&](Node* n) { holds = holds || n->kind == op; });
  if (!holds) return;
  std::fprintf(stderr, "convoy-worker: CONVOY_FAULT_CRASH_BUILDING_OP=%s: crashing while building a stage\n",
               op);
  std::signal(SIGSEGV, SIG_DFL);
  std::raise(SIGSEGV);
}

using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

constexpr uint64_t kAssignmentSeq = ~0ull;  // StageFailed.seq of a failed assignment
constexpr int kLingerMs = 2000;             // how long closing sockets may flush what is queued
// A stage is ready only once the next stage's workers answer a hello on their data endpoints.
constexpr std::chrono::milliseconds kNextStageHelloTimeout{10000};
constexpr int kHandshakeRetryMs = 5000;  // hello/register resent when unanswered this long

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

// A routing id as printable text (ZeroMQ's generated ids are binary).
std::string peer_name(const std::string& identity) {
  bool printable = !identity.empty();
  for (unsigned char ch : identity) printable = printable && ch >= 0x20 && ch < 0x7f;
  return printable ? identity : "peer " + hex_string(identity);
}

std::string bytes_string(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

const char* body_name(schema::Envelope::Body::Which which) {
  using B = schema::Envelope::Body;
  switch (which) {
    case B::HELLO:
      return "hello";
    case B::HELLO_REPLY:
      return "helloReply";
    case B::ERROR:
      return "error";
    case B::REGISTER:
      return "register";
    case B::REGISTERED:
      return "registered";
    case B::HEARTBEAT:
      return "heartbeat";
    case B::DEREGISTER:
      return "deregister";
    case B::ASSIGN_STAGE:
      return "assignStage";
    case B::STAGE_READY:
      return "stageReady";
    case B::RELEASE_STAGE:
      return "releaseStage";
    case B::MICRO_BATCH:
      return "microBatch";
    case B::RESULT:
      return "result";
    case B::STAGE_FAILED:
      return "stageFailed";
    default:
      return "a client message";
  }
}

struct StageKey {
  uint64_t job = 0;
  uint32_t pipeline = 0;
  uint32_t stage = 0;
  friend auto operator<=>(const StageKey&, const StageKey&) = default;
};

std::string describe(const StageKey& k) {
  return str_cat("job ", k.job, " pipeline ", k.pipeline, " stage ", k.stage);
}

// One assigned stage: its graph and the executor that runs it. Owned by the compute thread.
struct Stage {
  StageKey key;
  uint32_t replica = 0;
  std::string backend;
  std::unique_ptr<Graph> graph;  // declared first: destroyed after the executors that refer to it
  std::unique_ptr<ReferenceExecutor> reference;
  std::unique_ptr<opencl::OpenCLExecutor> accelerated;
  std::vector<std::string> next;       // data endpoints of the next stage's replicas; empty: results
  std::vector<std::string> next_keys;  // their CURVE public keys (empty: insecure)
  std::set<std::string> upstream;      // CURVE keys that may send it micro-batches (empty: insecure)
  std::vector<TypePtr> params;

  std::vector<IValue> run(const std::vector<IValue>& args) {
    return accelerated ? accelerated->run(args) : reference->run(args);
  }
};

// A received tensor as the stage's input `i`: tensors are checked against what the graph knows of the
// parameter (dtype, rank); int/float/bool parameters travel as 0-dim tensors.
IValue to_param(const Tensor& t, const TypePtr& type, size_t i) {
  const Type* ty = type.get();
  if (ty && ty->is(TypeKind::kOptional)) ty = ty->elem().get();
  if (!ty || ty->is(TypeKind::kTensor) || ty->is(TypeKind::kAny)) {
    if (ty && ty->dtype)
      CONVOY_CHECK(*ty->dtype == t.dtype(), "input ", i, " is ", t.describe(), " but the stage takes ",
                   dtype_name(*ty->dtype));
    if (ty && ty->shape)
      CONVOY_CHECK(static_cast<int64_t>(ty->shape->size()) == t.dim(), "input ", i, " is ", t.describe(),
                   " but the stage takes a ", ty->shape->size(), "-dim tensor");
    return IValue(t);
  }
  auto scalar = [&](const char* what) {
    CONVOY_CHECK(t.dim() == 0, "input ", i, " is ", t.describe(), " but the stage takes an ", what,
                 " (sent as a 0-dim tensor)");
  };
  switch (ty->kind) {
    case TypeKind::kInt:
      scalar("int");
      CONVOY_CHECK(is_integral(t.dtype(), true), "input ", i, " is ", t.describe(),
                   " but the stage takes an int");
      return IValue(t.item_int());
    case TypeKind::kFloat:
    case TypeKind::kNumber:
      scalar("float");
      return is_floating(t.dtype()) ? IValue(t.item_double()) : IValue(t.item_int());
    case TypeKind::kBool:
      scalar("bool");
      return IValue(t.item_bool());
    default:
      fail(ErrorKind::kUnsupported, "input ", i, " of the stage is a ", ty->str(),
           "; only tensors and int/float/bool scalars cross stage boundaries");
  }
}

// A stage output as one tensor: scalars become 0-dim tensors (int64, float64, bool).
Tensor output_tensor(const IValue& v, size_t i) {
  if (v.is_tensor()) return v.to_tensor();
  if (v.is_bool()) return Tensor::scalar_bool(v.to_bool());
  if (v.is_int()) return Tensor::scalar_int(v.to_int());
  if (v.is_double()) return Tensor::scalar_double(v.to_double());
  fail(ErrorKind::kUnsupported, "output ", i, " of the stage is a ", v.kind_name(), " (", v.repr(),
       "); only tensors and int/float/bool scalars cross stage boundaries");
}

// The model's outputs for a Result: tensors, tuples and lists of tensors flattened in order (as
// `run --workers 0` writes them).
void flatten_outputs(const IValue& v, std::vector<Tensor>& out) {
  if (v.is_tensor()) {
    out.push_back(v.to_tensor());
  } else if (v.is_tuple() || v.is_list()) {
    for (const IValue& x : v.to_list_or_tuple()) flatten_outputs(x, out);
  } else {
    fail(ErrorKind::kUnsupported, "the model returns a ", v.kind_name(), " (", v.repr(),
         "); only tensors (and tuples of tensors) can be written as outputs");
  }
}

class Log {
 public:
  Log(LogLevel level, std::string name) : level_(level), name_(std::move(name)) {}
  void set_name(std::string name) { name_ = std::move(name); }
  bool enabled(LogLevel level) const { return level <= level_; }
  template <typename... Args>
  void write(LogLevel level, Args&&... args) {
    if (!enabled(level)) return;
    std::string line =
        str_cat("convoy-worker[", name_, "] ", level == LogLevel::kInfo ? "" : log_level_name(level),
                level == LogLevel::kInfo ? "" : ": ", std::forward<Args>(args)..., "\n");
    std::lock_guard<std::mutex> lock(mutex_);
    std::cerr << line << std::flush;
  }

 private:
  LogLevel level_;
  std::string name_;
  std::mutex mutex_;
};

struct MissingWeights : std::runtime_error {
  explicit MissingWeights(std::vector<std::string> h)
      : std::runtime_error("missing weights"), hashes(std::move(h)) {}
  std::vector<std::string> hashes;
};

}  // namespace

void prepare_process(WorkerConfig& config) {
  if (!config.cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::string list;
    for (int cpu : config.cpus) {
      CPU_SET(cpu, &set);
      list += (list.empty() ? "" : ",") + std::to_string(cpu);
    }
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
      fail(ErrorKind::kInvalidInput, config.config_file.empty() ? "worker config" : config.config_file,
           ": 'cpus': cannot run on CPUs ", list, ": ", std::strerror(errno));
  }
  if (config.threads == 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int allowed = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
    if (allowed <= 0) allowed = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    config.threads = config.cpus.empty() ? allowed : static_cast<int>(config.cpus.size());
  }
  // PoCL 3.1's CPU ("pthread") device starts this many worker threads and reports them as its compute
  // units; it reads the variable once, when the OpenCL platform is first initialised.
  setenv("POCL_MAX_PTHREAD_COUNT", std::to_string(config.threads).c_str(), 1);
  if (!config.cache_dir.empty()) setenv("CONVOY_CACHE_DIR", config.cache_dir.c_str(), 1);
}

struct Worker::Impl {
  // --- set up once ------------------------------------------------------------------------------
  WorkerConfig config;
  const OpRegistry& registry;
  Log log;
  uint64_t opset = 0;
  std::string name;
  std::string host = host_name();
  std::unique_ptr<opencl::Device> device;
  DeviceProfile profile;
  WeightCache cache;
  std::string data_endpoint;

  // --- the control-loop thread ------------------------------------------------------------------
  asio::io_context io;
  zmq::context_t zmq_context{1};
  // CURVE (docs/security.md): this worker's key pair, the coordinator's public key, and the keys its
  // data socket admits (the coordinator's and every assigned stage's upstream workers').
  auth::KeyPair own;
  std::string coordinator_key;
  std::shared_ptr<auth::AllowList> allowed = std::make_shared<auth::AllowList>();
  std::unique_ptr<auth::ZapHandler> zap;
  uint64_t max_result_bytes = 0;  // the coordinator's max message (Registered); 0: unknown
  zmq::socket_t control{zmq_context, zmq::socket_type::dealer};
  zmq::socket_t data{zmq_context, zmq::socket_type::router};
  std::unique_ptr<wire::AsioZmqWatcher> control_watch, data_watch;
  std::unique_ptr<Downstreams> downstream;  // the next stages' data endpoints
  std::set<std::string> data_peers;         // routing ids that said hello
  enum class State { kHello, kRegistering, kRegistered } state = State::kHello;
  Clock::time_point handshake_sent;
  uint32_t worker_id = 0;
  int heartbeat_ms = 250;
  asio::steady_timer handshake_timer{io}, heartbeat_timer{io};
  std::unique_ptr<asio::signal_set> signals;
  bool draining = false, stopped = false;
  int exit_code = 0;

  // --- the compute thread -----------------------------------------------------------------------
  struct Task {
    enum class Kind { kAssign, kBatch, kRelease, kDrain } kind;
    std::shared_ptr<wire::InMessage> message;
    std::string peer;
    uint64_t job = 0;
  };
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<Task> queue;
  bool quit = false;
  std::atomic<uint32_t> queued_batches{0};
  std::atomic<uint64_t> busy_ns{0};
  std::thread compute;
  std::map<StageKey, std::unique_ptr<Stage>> stages;  // compute thread only

  // A message the compute thread wants sent; the control loop sends it.
  struct Outbound {
    wire::OutMessage message;
    std::string endpoint;  // "" = the control socket
    StageKey key;          // for a stageFailed when a data send fails
    uint64_t seq = 0;
    std::vector<std::string> await_hello;  // a stageReady: sent once these endpoints answered hello
    std::vector<std::string> hello_keys;   // their CURVE keys
    uint64_t request_id = 0;
  };

  Impl(WorkerConfig c, const OpRegistry& r)
      : config(std::move(c)),
        registry(r),
        log(config.log_level, config.name.empty() ? wire::process_name() : config.name),
        cache(config.weight_cache_bytes) {
    validate_worker_config(config);
    name = config.name.empty() ? wire::process_name() : config.name;
    opset = wire::opset_hash(registry);
    downstream = std::make_unique<Downstreams>(
        io, zmq_context, opset, kLingerMs, [this](const std::string& w) { log.write(LogLevel::kWarning, w); },
        config.insecure ? nullptr : &own);
    heartbeat_ms = config.heartbeat_ms;
    if (config.backend == "opencl") {
      try {
        device = opencl::Device::open(config.device);
      } catch (const Error& e) {
        if (opencl::enumerate_devices().empty())
          fail(e.kind(), e.what(), " (backend: reference runs on the CPU without OpenCL)");
        throw;
      }
    }
    int threads = config.threads;
    std::string cpus;
    for (int cpu : config.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
    profile = measure_profile(device.get(), registry,
                              str_cat("backend=", config.backend, ";threads=", threads, ";cpus=", cpus));
    log.write(LogLevel::kInfo,
              device ? str_cat("OpenCL device ", device->info().index, ": ", device->info().name)
                     : std::string("reference backend on the CPU"),
              ", ", threads, " thread(s); GEMM ", profile.gemm_gflops, " GFLOP/s, copy ", profile.copy_gbps,
              " GB/s", profile.from_cache ? " (cached)" : " (measured)");

    // Sends block at the high-water mark (credits keep micro-batches far below it); periodic messages
    // (heartbeats, hello retries) are skipped instead while the control socket cannot take them, so a
    // vanished coordinator never blocks the control loop. A ROUTER never blocks: the data socket's
    // replies to a peer that is gone are dropped.
    for (zmq::socket_t* s : {&control, &data}) s->set(zmq::sockopt::linger, kLingerMs);
    data.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_message_mb) << 20);
    control.set(zmq::sockopt::maxmsgsize, int64_t{4} << 30);  // assignments carry a stage's weights
    secure();
    try {
      data.bind(config.data_bind);
    } catch (const zmq::error_t& e) {
      fail(ErrorKind::kIo, config.config_file.empty() ? "worker" : config.config_file,
           ": 'data_bind': cannot bind ", config.data_bind, ": ", e.what());
    }
    data_endpoint = advertised(data.get(zmq::sockopt::last_endpoint));
    auto tcp_host = [](const std::string& ep) {
      if (ep.rfind("tcp://", 0) != 0) return std::string();
      return ep.substr(6, ep.rfind(':') - 6);
    };
    auto loopback = [](const std::string& h) {
      return h.rfind("127.", 0) == 0 || h == "localhost" || h == "[::1]" || h == "::1";
    };
    std::string coordinator_host = tcp_host(config.coordinator), own = tcp_host(data_endpoint);
    if (!own.empty() && loopback(own) && !coordinator_host.empty() && !loopback(coordinator_host))
      log.write(LogLevel::kWarning, "this worker advertises the loopback data endpoint ", data_endpoint,
                " but its coordinator is at ", config.coordinator,
                ": workers and a coordinator on other hosts cannot reach it; bind a reachable address "
                "(data_bind) or set advertise_host");
  }

  // CURVE on every socket: the control DEALER dials the coordinator's key, the data ROUTER serves
  // with this worker's key and admits the coordinator and the upstream workers the coordinator names.
  // The keys folder may not exist yet on a machine whose coordinator has not started: wait for it.
  void secure() {
    if (config.insecure) {
      log.write(LogLevel::kWarning, "INSECURE: 'insecure: true': no authentication and no encryption; any ",
                "process that reaches this worker can send it micro-batches and read its results");
      return;
    }
    std::string dir = config.keys;
    if (dir.empty()) {
      const char* env = std::getenv("CONVOY_KEYS");
      const char* home = std::getenv("HOME");
      CONVOY_CHECK(env || home, "HOME is not set: give the keys folder in the worker config ('keys')");
      dir = env && *env ? std::string(env) : std::string(home) + "/.local/state/convoy/keys";
    }
    std::string secret = auth::secret_file(dir, "worker"), server = auth::public_file(dir, "coordinator");
    for (int waited = 0; !(std::filesystem::exists(secret) && std::filesystem::exists(server)); ++waited) {
      if (waited % 30 == 0)
        log.write(LogLevel::kInfo, "waiting for ", secret, " and ", server,
                  " (a coordinator on this machine writes them on its first start; from another host, copy "
                  "them as docs/security.md says)");
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    own = auth::read_certificate(secret, true).keys;
    coordinator_key = auth::read_certificate(server, false).keys.public_key;
    allowed->add(auth::Principal{auth::Role::kCoordinator, "coordinator", coordinator_key});
    zap = std::make_unique<auth::ZapHandler>(zmq_context, allowed);
    auth::make_server(data, own);
    auth::make_client(control, own, coordinator_key);
    log.write(LogLevel::kInfo, "CURVE on: worker key ", own.public_key, ", coordinator key ",
              coordinator_key);
  }

  // The bound endpoint as other hosts should dial it.
  std::string advertised(const std::string& bound) const {
    if (bound.rfind("tcp://", 0) != 0) return bound;
    size_t colon = bound.rfind(':');
    std::string bound_host = bound.substr(6, colon - 6), port = bound.substr(colon + 1);
    std::string h = bound_host;
    if (!config.advertise_host.empty())
      h = config.advertise_host;
    else if (bound_host == "0.0.0.0" || bound_host == "*" || bound_host == "[::]")
      h = host;
    return "tcp://" + h + ":" + port;
  }

  // ================================================================================================
  // Control loop
  // ================================================================================================

  int run(bool handle_signals) {
    control.connect(config.coordinator);
    control_watch = std::make_unique<wire::AsioZmqWatcher>(io, control, [this] { on_control_readable(); });
    data_watch = std::make_unique<wire::AsioZmqWatcher>(io, data, [this] { on_data_readable(); });
    if (handle_signals) {
      signals = std::make_unique<asio::signal_set>(io, SIGINT, SIGTERM);
      wait_signal();
    }
    log.write(LogLevel::kInfo, "data endpoint ", data_endpoint, "; coordinator ", config.coordinator);
    compute = std::thread([this] { compute_loop(); });
    send_hello();
    arm_handshake_timer();
    io.run();
    shutdown();
    return exit_code;
  }

  void wait_signal() {
    signals->async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      log.write(LogLevel::kInfo, signo == SIGTERM ? "SIGTERM" : "SIGINT",
                draining ? ": stopping now" : ": finishing queued micro-batches, then leaving");
      begin_drain();
      if (!stopped) wait_signal();
    });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(queue_mutex);
      quit = true;
    }
    queue_cv.notify_all();
    if (compute.joinable()) compute.join();
    stages.clear();
    handshake_timer.cancel();
    heartbeat_timer.cancel();
    if (signals) signals->cancel();
    control_watch.reset();
    data_watch.reset();
    // Closing flushes what is queued for up to kLingerMs (deregister, the last results).
    downstream->close();
    control.close();
    data.close();
  }

  void stop_loop(int code) {
    if (stopped) return;
    stopped = true;
    exit_code = code;
    io.stop();
  }

  void begin_drain() {
    if (draining) {  // second signal: leave now
      stop_loop(1);
      return;
    }
    draining = true;
    // Take what has already arrived on the data socket, then stop reading it: upstream stages and the
    // coordinator learn from `deregister` that this worker is gone.
    if (data_watch) {
      on_data_readable();
      data_watch->stop();
    }
    push_task(Task{Task::Kind::kDrain, nullptr, {}, 0});
  }

  void on_drained() {
    if (state == State::kRegistered) {
      wire::OutMessage m;
      auto d = m.envelope().getBody().initDeregister();
      d.setWorkerId(worker_id);
      d.setReason("stopped by signal after draining");
      send_control(std::move(m));
      log.write(LogLevel::kInfo, "deregistered (worker ", worker_id, ")");
    }
    stop_loop(0);
  }

  void send_control(wire::OutMessage m) {
    try {
      m.send(control);
    } catch (const std::exception& e) {
      log.write(LogLevel::kWarning, "could not send to the coordinator: ", e.what());
    }
    if (control_watch) control_watch->kick();
  }

  // Whether the control socket takes a message now without blocking. Reading ZMQ_EVENTS can consume
  // the edge of ZMQ_FD, hence the kick.
  bool control_writable() {
    bool writable = (control.get(zmq::sockopt::events) & ZMQ_POLLOUT) != 0;
    if (control_watch) control_watch->kick();
    return writable;
  }

  void send_hello() {
    wire::OutMessage m;
    wire::make_hello(m.envelope(), schema::Role::WORKER, opset);
    state = State::kHello;
    handshake_sent = Clock::now();
    send_control(std::move(m));
  }

  void send_register() {
    wire::OutMessage m;
    auto r = m.envelope().getBody().initRegister();
    r.setWorkerName(name);
    r.setHost(host);
    r.setPid(static_cast<uint32_t>(getpid()));
    r.setDataEndpoint(data_endpoint);
    auto devices = r.initDevices(1);
    auto d = devices[0];
    if (device) {
      const opencl::DeviceInfo& info = device->info();
      d.setIndex(static_cast<uint32_t>(info.index));
      d.setName(info.name);
      d.setBackend("opencl");
      d.setMemoryBytes(info.global_mem_bytes);
      d.setComputeUnits(info.compute_units);
      bool cpu = (info.type & CL_DEVICE_TYPE_CPU) != 0;
      d.setProcessor(cpu ? processor_key() : str_cat(host, ":opencl:", info.index, ":", info.name));
    } else {
      d.setIndex(0);
      d.setName("reference (CPU)");
      d.setBackend("reference");
      long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
      d.setMemoryBytes(pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page)
                                             : 0);
      d.setComputeUnits(static_cast<uint32_t>(config.threads));
      d.setProcessor(processor_key());
    }
    d.setGemmGflops(profile.gemm_gflops);
    d.setCopyGbps(profile.copy_gbps);
    set_hashes([&](unsigned n) { return r.initCachedWeights(n); }, cache.hashes());
    r.setThreads(static_cast<uint32_t>(config.threads));
    state = State::kRegistering;
    handshake_sent = Clock::now();
    send_control(std::move(m));
  }

  template <typename Init>
  static void set_hashes(Init&& init, const std::vector<std::string>& hashes) {
    auto list = init(static_cast<unsigned>(hashes.size()));
    for (size_t i = 0; i < hashes.size(); ++i)
      list.set(static_cast<unsigned>(i),
               capnp::Data::Reader(reinterpret_cast<const uint8_t*>(hashes[i].data()), hashes[i].size()));
  }

  // Devices with the same key share one physical processor: every CPU worker of a host, unless pinned.
  std::string processor_key() const {
    std::string key = host + ":cpu";
    if (!config.cpus.empty()) {
      key += ":";
      for (size_t i = 0; i < config.cpus.size(); ++i) key += (i ? "," : "") + std::to_string(config.cpus[i]);
    }
    return key;
  }

  void arm_handshake_timer() {
    handshake_timer.expires_after(std::chrono::milliseconds(kHandshakeRetryMs));
    handshake_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped) return;
      if (state != State::kRegistered && !draining &&
          seconds_since(handshake_sent) * 1000 >= kHandshakeRetryMs - 50) {
        log.write(LogLevel::kDebug, "no answer from the coordinator at ", config.coordinator,
                  "; saying hello again");
        // ZeroMQ does not reconnect after a failed handshake (a key the coordinator did not admit yet,
        // a coordinator restarted with other keys): connect afresh.
        try {
          control.disconnect(config.coordinator);
          control.connect(config.coordinator);
        } catch (const zmq::error_t& e) {
          log.write(LogLevel::kWarning, "reconnecting to ", config.coordinator, ": ", e.what());
        }
        if (control_writable()) send_hello();
      }
      arm_handshake_timer();
    });
  }

  void arm_heartbeat_timer() {
    heartbeat_timer.expires_after(std::chrono::milliseconds(heartbeat_ms));
    heartbeat_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped || state != State::kRegistered) return;
      if (!control_writable()) {  // the coordinator is not reading: skip this beat
        log.write(LogLevel::kDebug, "heartbeat skipped: the coordinator is not reading");
        arm_heartbeat_timer();
        return;
      }
      wire::OutMessage m;
      auto h = m.envelope().getBody().initHeartbeat();
      h.setWorkerId(worker_id);
      h.setQueued(queued_batches.load());
      h.setBusySeconds(static_cast<double>(busy_ns.load()) * 1e-9);
      h.setRssBytes(wire::resident_bytes());
      send_control(std::move(m));
      arm_heartbeat_timer();
    });
  }

  void on_control_readable() {
    wire::receive_queued(
        control, false,
        [this](wire::InMessage& m) {
          handle_control(std::make_shared<wire::InMessage>(std::move(m)));
          return !stopped;
        },
        [this](const std::exception& e) {
          log.write(LogLevel::kWarning, "receiving from the coordinator failed: ", e.what());
        });
  }

  void handle_control(std::shared_ptr<wire::InMessage> m) {
    using B = schema::Envelope::Body;
    try {
      auto env = m->envelope();
      auto body = env.getBody();
      switch (body.which()) {
        case B::HELLO_REPLY: {
          auto r = body.getHelloReply();
          if (r.getProtocolVersion() != wire::kProtocolVersion || r.getOpsetHash() != opset) {
            log.write(LogLevel::kError, "the coordinator at ", config.coordinator, " runs protocol ",
                      r.getProtocolVersion(), " with op set ", r.getOpsetHash(),
                      "; this worker runs protocol ", wire::kProtocolVersion, " with op set ", opset,
                      ": upgrade one side");
            stop_loop(1);
            return;
          }
          if (state == State::kHello && !draining) send_register();
          return;
        }
        case B::REGISTERED: {
          if (state != State::kRegistering) return;
          auto r = body.getRegistered();
          worker_id = r.getWorkerId();
          heartbeat_ms = config.heartbeat_ms;
          if (r.getHeartbeatMs() > 0)
            heartbeat_ms = std::min<int>(heartbeat_ms, static_cast<int>(r.getHeartbeatMs()));
          heartbeat_ms = std::max(heartbeat_ms, 10);
          max_result_bytes = r.getMaxMessageBytes();
          state = State::kRegistered;
          log.write(LogLevel::kInfo, "registered with ", config.coordinator, " as worker ", worker_id,
                    " (heartbeat every ", heartbeat_ms, " ms)");
          arm_heartbeat_timer();
          return;
        }
        case B::ERROR: {
          auto e = body.getError();
          std::string text = e.getMessage();
          if (e.getKind() == schema::ErrorReply::Kind::VERSION_MISMATCH) {
            log.write(LogLevel::kError, "the coordinator refuses this worker: ", text);
            stop_loop(1);
          } else if (e.getKind() == schema::ErrorReply::Kind::REFUSED) {
            log.write(LogLevel::kInfo, "the coordinator does not know this worker (", text,
                      "); saying hello and registering again");
            heartbeat_timer.cancel();
            if (!draining) send_hello();
          } else {
            log.write(LogLevel::kWarning, "the coordinator answered request ", env.getRequestId(),
                      " with an error: ", text);
          }
          return;
        }
        case B::ASSIGN_STAGE: {
          if (draining) {
            wire::OutMessage r;
            r.envelope().setRequestId(env.getRequestId());
            wire::make_error(r.envelope(), schema::ErrorReply::Kind::RETRY_LATER,
                             str_cat("worker ", name, " is shutting down and takes no assignment"));
            send_control(std::move(r));
            return;
          }
          push_task(Task{Task::Kind::kAssign, std::move(m), "coordinator", 0});
          return;
        }
        case B::RELEASE_STAGE:
          push_task(Task{Task::Kind::kRelease, nullptr, {}, body.getReleaseStage().getJob()});
          return;
        default:
          log.write(LogLevel::kWarning, "dropped message from coordinator: unexpected ",
                    body_name(body.which()), " on the control connection");
      }
    } catch (const std::exception& e) {
      log.write(LogLevel::kWarning, "dropped message from coordinator: ", e.what());
    }
  }

  void on_data_readable() {
    wire::receive_queued(
        data, true,
        [this](wire::InMessage& m) {
          handle_data(std::make_shared<wire::InMessage>(std::move(m)));
          return true;
        },
        [this](const std::exception& e) {
          log.write(LogLevel::kWarning, "receiving on the data socket failed: ", e.what());
        });
  }

  void handle_data(std::shared_ptr<wire::InMessage> m) {
    using B = schema::Envelope::Body;
    std::string peer = peer_name(m->identity());
    try {
      auto env = m->envelope();
      auto body = env.getBody();
      if (body.which() == B::HELLO) {
        std::string reason = wire::check_hello(body.getHello(), opset);
        if (reason.empty()) try {
            wire::peer_name_field(body.getHello().getName(), "Hello.name");
          } catch (const Error& e) {
            reason = e.what();
          }
        wire::OutMessage r;
        r.envelope().setRequestId(env.getRequestId());
        if (reason.empty()) {
          data_peers.insert(m->identity());
          auto h = r.envelope().getBody().initHelloReply();
          h.setProtocolVersion(wire::kProtocolVersion);
          h.setOpsetHash(opset);
          h.setName(name);
          log.write(LogLevel::kDebug, "data connection from ", std::string(body.getHello().getName()),
                    m->peer_key().empty() ? "" : " (key " + auth::short_key(m->peer_key()) + "…)");
        } else {
          data_peers.erase(m->identity());
          wire::make_error(r.envelope(), schema::ErrorReply::Kind::VERSION_MISMATCH, reason);
          log.write(LogLevel::kWarning, "refused data connection from ", peer, ": ", reason);
        }
        try {
          r.send(data, &m->identity());
        } catch (const std::exception& e) {
          log.write(LogLevel::kWarning, "could not answer ", peer, ": ", e.what());
        }
        if (data_watch) data_watch->kick();
        return;
      }
      if (!data_peers.count(m->identity())) {
        log.write(LogLevel::kWarning, "dropped message from ", peer, ": ", body_name(body.which()),
                  " before hello on the data connection");
        return;
      }
      if (body.which() != B::MICRO_BATCH) {
        log.write(LogLevel::kWarning, "dropped message from ", peer, ": unexpected ", body_name(body.which()),
                  " on the data connection");
        return;
      }
      push_task(Task{Task::Kind::kBatch, std::move(m), peer, 0});
    } catch (const std::exception& e) {
      log.write(LogLevel::kWarning, "dropped message from ", peer, ": ", e.what());
    }
  }

  void send_outbound(Outbound& o) {
    if (o.endpoint.empty() && !o.await_hello.empty()) {
      // A stageReady: only once every next-stage endpoint has answered our hello.
      for (size_t i = 0; i < o.hello_keys.size() && i < o.await_hello.size(); ++i)
        downstream->set_key(o.await_hello[i], o.hello_keys[i]);
      auto ready = std::make_shared<Outbound>(std::move(o));
      downstream->when_answered(
          ready->await_hello, kNextStageHelloTimeout, [this, ready](const std::string& silent) {
            if (silent.empty()) return send_control(std::move(ready->message));
            std::string text = str_cat(
                "worker ", name, ": ", describe(ready->key), ": the next stage's data endpoint ", silent,
                " did not answer a hello within ", kNextStageHelloTimeout.count() / 1000.0,
                " s (is it reachable from this host? a worker on another host must advertise an address "
                "this host can dial: set its advertise_host)");
            log.write(LogLevel::kWarning, text);
            Outbound f = stage_failed(ready->key, kAssignmentSeq, ready->request_id, text,
                                      schema::StageFailed::Kind::TRANSPORT);
            f.message.envelope().getBody().getStageFailed().setUnreachable(silent);
            send_control(std::move(f.message));
          });
      return;
    }
    if (o.endpoint.empty()) {
      send_control(std::move(o.message));
      return;
    }
    try {
      downstream->send(o.endpoint, o.message);
    } catch (const std::exception& e) {
      log.write(LogLevel::kWarning, "could not send micro-batch ", o.seq, " of ", describe(o.key), " to ",
                o.endpoint, ": ", e.what());
      wire::OutMessage f;
      auto s = f.envelope().getBody().initStageFailed();
      s.setJob(o.key.job);
      s.setPipeline(o.key.pipeline);
      s.setStage(o.key.stage);
      s.setSeq(o.seq);
      s.setMessage(str_cat("worker ", name, ": could not send micro-batch ", o.seq, " to the next stage at ",
                           o.endpoint, ": ", e.what()));
      s.setKind(schema::StageFailed::Kind::TRANSPORT);
      send_control(std::move(f));
    }
  }

  // ================================================================================================
  // Compute thread
  // ================================================================================================

  void push_task(Task task) {
    if (task.kind == Task::Kind::kBatch) ++queued_batches;
    {
      std::lock_guard<std::mutex> lock(queue_mutex);
      queue.push_back(std::move(task));
    }
    queue_cv.notify_one();
  }

  // Hands a message to the control loop.
  void post(Outbound o) {
    auto shared = std::make_shared<Outbound>(std::move(o));
    asio::post(io, [this, shared] { send_outbound(*shared); });
  }

  void compute_loop() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(queue_mutex);
        queue_cv.wait(lock, [&] { return quit || !queue.empty(); });
        if (quit) return;
        task = std::move(queue.front());
        queue.pop_front();
      }
      try {
        switch (task.kind) {
          case Task::Kind::kAssign:
            assign(*task.message);
            break;
          case Task::Kind::kBatch:
            run_batch(*task.message, task.peer);
            --queued_batches;
            break;
          case Task::Kind::kRelease:
            release(task.job);
            break;
          case Task::Kind::kDrain:
            asio::post(io, [this] { on_drained(); });
            break;
        }
      } catch (const std::exception& e) {
        if (task.kind == Task::Kind::kBatch) --queued_batches;
        log.write(LogLevel::kWarning, "dropped message from ", task.peer.empty() ? "coordinator" : task.peer,
                  ": ", e.what());
      }
    }
  }

  // What a failure means for the job: bad data or an unsupported op fails it at once, a device or
  // resource fault is replayed on a new plan (docs/coordinator.md, "Worker loss").
  static schema::StageFailed::Kind failure_kind(const std::exception& e) {
    using K = schema::StageFailed::Kind;
    const auto* error = dynamic_cast<const Error*>(&e);
    if (!error) return K::DEVICE;  // std::bad_alloc and other resource failures
    switch (error->kind()) {
      case ErrorKind::kInvalidInput:
      case ErrorKind::kUnsupported:
        return K::BAD_INPUT;
      case ErrorKind::kIo:
        return K::DEVICE;
      case ErrorKind::kInternal:
        return K::INTERNAL;
    }
    return K::UNKNOWN;
  }

  Outbound stage_failed(const StageKey& key, uint64_t seq, uint64_t request_id, const std::string& message,
                        schema::StageFailed::Kind kind) {
    Outbound o;
    o.message.envelope().setRequestId(request_id);
    auto s = o.message.envelope().getBody().initStageFailed();
    s.setJob(key.job);
    s.setPipeline(key.pipeline);
    s.setStage(key.stage);
    s.setSeq(seq);
    s.setMessage(message);
    s.setKind(kind);
    return o;
  }

  void assign(const wire::InMessage& m) {
    auto env = m.envelope();
    uint64_t request_id = env.getRequestId();
    auto a = env.getBody().getAssignStage();
    StageKey key{a.getJob(), a.getPipeline(), a.getStage()};
    auto t0 = Clock::now();
    uint64_t received = 0;
    std::vector<std::string> missing;
    try {
      std::string backend = a.getBackend();
      if (backend.empty()) backend = config.backend;
      CONVOY_CHECK(backend == "opencl" || backend == "reference", "AssignStage.backend: unknown backend '",
                   backend, "' (this worker runs opencl or reference)");
      if (backend == "opencl") {
        CONVOY_CHECK(device != nullptr, "AssignStage.backend is opencl but worker ", name,
                     " runs the reference backend (no OpenCL device)");
        CONVOY_CHECK(a.getDevice() == static_cast<uint32_t>(device->info().index), "AssignStage.device ",
                     a.getDevice(), ": worker ", name, " has OpenCL device ", device->info().index, " only");
      }
      // Weights: store what was sent (checked against its hash), note what is neither sent nor cached.
      auto weights = a.getWeights();
      for (unsigned i = 0; i < weights.size(); ++i) {
        auto w = weights[i];
        std::string what = str_cat("AssignStage.weights[", i, "]");
        std::string hash = bytes_string(w.getHash());
        CONVOY_CHECK(hash.size() == 32, what, ".hash has ", hash.size(), " bytes, a SHA-256 has 32");
        DType dtype = dtype_from_scalar_type(w.getDtype());
        Shape shape;
        for (int64_t d : w.getShape()) {
          CONVOY_CHECK(d >= 0 && d <= (int64_t{1} << 40), what, ".shape has dimension ", d);
          shape.push_back(d);
        }
        int32_t frame = w.getFrame();
        if (frame >= 0) {
          CONVOY_CHECK(static_cast<size_t>(frame) < m.tensor_frames(), what, ".frame ", frame,
                       " but the message has ", m.tensor_frames(), " tensor frames");
          long double need = static_cast<long double>(shape_numel(shape)) * dtype_size(dtype);
          CONVOY_CHECK(need == static_cast<long double>(m.frame_size(static_cast<uint32_t>(frame))), what,
                       " is ", dtype_name(dtype), shape_str(shape), " but its frame has ",
                       m.frame_size(static_cast<uint32_t>(frame)), " bytes");
          if (cache.put(hash, m.frame_data(static_cast<uint32_t>(frame)),
                        m.frame_size(static_cast<uint32_t>(frame)), what))
            received += m.frame_size(static_cast<uint32_t>(frame));
        } else {
          CONVOY_CHECK(frame == -1, what, ".frame must be -1 (not sent) or a tensor frame index, not ",
                       frame);
          if (!cache.contains(hash)) missing.push_back(hash);
        }
      }
      if (!missing.empty()) throw MissingWeights(missing);

      auto stage = std::make_unique<Stage>();
      stage->key = key;
      stage->replica = a.getReplica();
      stage->backend = backend;
      auto endpoints = a.getNext().getEndpoints();
      CONVOY_CHECK(endpoints.size() <= 4096, "AssignStage.next has ", endpoints.size(), " endpoints");
      for (unsigned i = 0; i < endpoints.size(); ++i) {
        std::string ep =
            wire::bounded_text(endpoints[i], str_cat("AssignStage.next.endpoints[", i, "]"), 256);
        CONVOY_CHECK(is_valid_endpoint(ep, false), "AssignStage.next.endpoints[", i, "] '", ep,
                     "' is not a ZeroMQ endpoint");
        stage->next.push_back(ep);
      }
      if (!config.insecure) {
        auto keys = a.getNext().getKeys();
        CONVOY_CHECK(keys.size() == endpoints.size(), "AssignStage.next has ", endpoints.size(),
                     " endpoints but ", keys.size(), " CURVE keys (is the coordinator insecure?)");
        for (unsigned i = 0; i < keys.size(); ++i) {
          std::string k = wire::bounded_text(keys[i], str_cat("AssignStage.next.keys[", i, "]"), 40);
          CONVOY_CHECK(auth::is_z85_key(k), "AssignStage.next.keys[", i, "] is not a CURVE public key");
          stage->next_keys.push_back(k);
        }
        auto up = a.getUpstreamKeys();
        CONVOY_CHECK(up.size() > 0 && up.size() <= 4096, "AssignStage.upstreamKeys lists ", up.size(),
                     " keys (the stage could take micro-batches from nobody)");
        for (unsigned i = 0; i < up.size(); ++i) {
          std::string k = wire::bounded_text(up[i], str_cat("AssignStage.upstreamKeys[", i, "]"), 40);
          CONVOY_CHECK(auth::is_z85_key(k), "AssignStage.upstreamKeys[", i, "] is not a CURVE public key");
          stage->upstream.insert(k);
        }
      }
      WeightResolver resolver = [&](const std::string& hash, DType dtype, const Shape& shape) {
        if (!cache.contains(hash)) throw MissingWeights({hash});
        return cache.tensor(hash, dtype, shape);
      };
      stage->graph = deserialize_graph(a.getGraph(), registry, resolver);
      crash_if_fault_injected(*stage->graph);
      for (const Value* p : stage->graph->inputs()) stage->params.push_back(p->type);
      if (backend == "opencl") {
        stage->accelerated = opencl::make_fused_executor(*stage->graph, *device);
      } else {
        stage->reference = std::make_unique<ReferenceExecutor>(*stage->graph);
      }
      // Warm: compile the plan (programs built, GEMMs measured) on a full micro-batch of zeros.
      auto warm = a.getWarmShapes();
      if (warm.size() > 0) {
        CONVOY_CHECK(warm.size() == stage->params.size(), "AssignStage.warmShapes has ", warm.size(),
                     " tensors but the stage takes ", stage->params.size(), " inputs");
        std::vector<IValue> args;
        for (unsigned i = 0; i < warm.size(); ++i) {
          DType dtype;
          Shape shape;
          wire::check_meta(warm[i], str_cat("AssignStage.warmShapes[", i, "]"), &dtype, &shape);
          args.push_back(to_param(Tensor::zeros(shape, dtype), stage->params[i], i));
        }
        // The warm shapes are the planner's shape propagation, an optimisation: if the stage rejects
        // them (a shape the cost model could not infer exactly), it compiles on its first micro-batch.
        try {
          stage->run(args);
        } catch (const Error& e) {
          log.write(LogLevel::kWarning, describe(key), ": warming on the planned shapes failed (", e.what(),
                    "); the stage compiles on its first micro-batch instead");
        }
      }
      double seconds = seconds_since(t0);
      log.write(LogLevel::kInfo, describe(key), " ready on ", backend, " in ", seconds, " s (", received,
                " weight bytes received, ", stage->next.empty() ? "results to the coordinator" : "then ",
                stage->next.empty() ? "" : str_cat(stage->next.size(), " next replica(s)"), ")");
      std::vector<std::string> next = stage->next, next_keys = stage->next_keys;
      for (const std::string& k : stage->upstream)  // the data socket's ZAP handler admits them now
        if (k != coordinator_key) allowed->add(auth::Principal{auth::Role::kWorker, "upstream", k});
      stages[key] = std::move(stage);
      cache.evict();

      Outbound o;
      o.key = key;
      o.await_hello = std::move(next);
      o.hello_keys = std::move(next_keys);
      o.request_id = request_id;
      o.message.envelope().setRequestId(request_id);
      auto r = o.message.envelope().getBody().initStageReady();
      r.setJob(key.job);
      r.setPipeline(key.pipeline);
      r.setStage(key.stage);
      r.setReplica(a.getReplica());
      r.setCompileSeconds(seconds);
      r.setWeightBytesReceived(received);
      set_hashes([&](unsigned n) { return r.initCachedWeights(n); }, cache.hashes());
      post(std::move(o));
    } catch (const MissingWeights& e) {
      std::string list;
      for (const std::string& h : e.hashes) list += (list.empty() ? "" : ", ") + hex_string(h);
      std::string text = str_cat(describe(key), ": worker ", name, " lacks ", e.hashes.size(),
                                 " weight(s) that were neither sent nor cached: ", list);
      log.write(LogLevel::kWarning, text);
      Outbound o;
      o.message.envelope().setRequestId(request_id);
      wire::make_error(o.message.envelope(), schema::ErrorReply::Kind::MISSING_WEIGHTS, text);
      post(std::move(o));
      cache.evict();
    } catch (const std::exception& e) {
      std::string text = str_cat("worker ", name, ": ", describe(key), " could not be built: ", e.what());
      log.write(LogLevel::kWarning, text);
      post(stage_failed(key, kAssignmentSeq, request_id, text, failure_kind(e)));
      cache.evict();
    }
  }

  void run_batch(const wire::InMessage& m, const std::string& peer) {
    auto env = m.envelope();
    auto mb = env.getBody().getMicroBatch();
    StageKey key{mb.getJob(), mb.getPipeline(), mb.getStage()};
    uint64_t seq = mb.getSeq();
    auto it = stages.find(key);
    if (it == stages.end()) {
      log.write(LogLevel::kWarning, "dropped message from ", peer, ": micro-batch ", seq, " for ",
                describe(key), ", which this worker does not hold");
      return;
    }
    Stage& stage = *it->second;
    if (!config.insecure && !stage.upstream.count(m.peer_key())) {
      // Not from the previous stage's workers (or, for stage 0, the coordinator): never computed.
      log.write(LogLevel::kWarning, "dropped message from ", peer, ": micro-batch ", seq, " for ",
                describe(key), " from key ", auth::short_key(m.peer_key()),
                "…, which is not this stage's upstream");
      return;
    }
    std::vector<IValue> args;
    std::vector<double> stage_seconds;
    std::vector<uint32_t> route;
    try {
      auto metas = mb.getTensors();
      CONVOY_CHECK(metas.size() == stage.params.size(), "it carries ", metas.size(),
                   " tensors but the stage takes ", stage.params.size(), " inputs");
      CONVOY_CHECK(m.tensor_frames() == metas.size(), "it has ", m.tensor_frames(), " tensor frames for ",
                   metas.size(), " tensors");
      for (unsigned i = 0; i < metas.size(); ++i)
        args.push_back(
            to_param(m.tensor(i, metas[i], str_cat("MicroBatch.tensors[", i, "]")), stage.params[i], i));
      auto seconds = mb.getStageSeconds();
      CONVOY_CHECK(seconds.size() <= 4096, "MicroBatch.stageSeconds has ", seconds.size(), " entries");
      for (double s : seconds) stage_seconds.push_back(s);
      auto r = mb.getRoute();
      CONVOY_CHECK(r.size() <= 4096, "MicroBatch.route has ", r.size(), " entries");
      for (uint32_t x : r) route.push_back(x);
    } catch (const std::exception& e) {
      std::string text = str_cat("micro-batch ", seq, " for ", describe(key), ": ", e.what());
      log.write(LogLevel::kWarning, "dropped message from ", peer, ": ", text);
      // A message that does not decode was damaged or forged on its way: another pipeline may fix it.
      post(stage_failed(key, seq, 0, str_cat("worker ", name, ": ", text),
                        schema::StageFailed::Kind::TRANSPORT));
      return;
    }

    auto t0 = Clock::now();
    std::vector<Tensor> outputs;
    try {
      std::vector<IValue> returned = stage.run(args);
      args.clear();
      if (stage.next.empty()) {
        for (const IValue& v : returned) flatten_outputs(v, outputs);
      } else {
        for (size_t i = 0; i < returned.size(); ++i) outputs.push_back(output_tensor(returned[i], i));
      }
    } catch (const std::exception& e) {
      std::string text = str_cat("worker ", name, ": ", describe(key), ", micro-batch ", seq, ": ", e.what());
      log.write(LogLevel::kWarning, text);
      post(stage_failed(key, seq, 0, text, failure_kind(e)));
      return;
    }
    double seconds = seconds_since(t0);
    busy_ns += static_cast<uint64_t>(seconds * 1e9);
    stage_seconds.push_back(seconds);
    log.write(LogLevel::kDebug, describe(key), " micro-batch ", seq, " in ", seconds, " s");

    Outbound o;
    o.key = key;
    o.seq = seq;
    auto fill = [&](auto body) {
      body.setJob(key.job);
      body.setPipeline(key.pipeline);
      body.setSeq(seq);
      auto metas = body.initTensors(static_cast<unsigned>(outputs.size()));
      for (size_t i = 0; i < outputs.size(); ++i)
        o.message.add_tensor(outputs[i], metas[static_cast<unsigned>(i)]);
      auto ss = body.initStageSeconds(static_cast<unsigned>(stage_seconds.size()));
      for (size_t i = 0; i < stage_seconds.size(); ++i) ss.set(static_cast<unsigned>(i), stage_seconds[i]);
    };
    if (stage.next.empty()) {
      size_t bytes = 0;
      for (const Tensor& t : outputs) bytes += t.nbytes();
      if (max_result_bytes && bytes + 65536 > max_result_bytes) {
        std::string text =
            str_cat("worker ", name, ": ", describe(key), ", micro-batch ", seq, ": its outputs are ", bytes,
                    " bytes, over the coordinator's max_message_mb (", max_result_bytes >> 20,
                    " MiB): lower batch_size or raise max_message_mb");
        log.write(LogLevel::kWarning, text);
        post(stage_failed(key, seq, 0, text, schema::StageFailed::Kind::BAD_INPUT));
        return;
      }
      fill(o.message.envelope().getBody().initResult());
    } else {
      auto b = o.message.envelope().getBody().initMicroBatch();
      b.setStage(key.stage + 1);
      fill(b);
      auto r = b.initRoute(static_cast<unsigned>(route.size()));
      for (size_t i = 0; i < route.size(); ++i) r.set(static_cast<unsigned>(i), route[i]);
      uint64_t pick = key.stage + 1 < route.size() ? route[key.stage + 1] : seq;
      o.endpoint = stage.next[pick % stage.next.size()];
    }
    post(std::move(o));
  }

  void release(uint64_t job) {
    size_t n = 0;
    for (auto it = stages.begin(); it != stages.end();) {
      if (it->first.job == job) {
        it = stages.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    cache.evict();
    log.write(LogLevel::kInfo, "released job ", job, " (", n, " stage(s)); weight cache ", cache.size(),
              " weights, ", cache.bytes(), " bytes");
  }
};

Worker::Worker(WorkerConfig config, const OpRegistry& registry)
    : impl_(std::make_unique<Impl>(std::move(config), registry)) {}

Worker::~Worker() = default;

int Worker::run(bool handle_signals) { return impl_->run(handle_signals); }

void Worker::stop() {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] { impl->begin_drain(); });
}

const std::string& Worker::data_endpoint() const { return impl_->data_endpoint; }
const std::string& Worker::name() const { return impl_->name; }

}  // namespace convoy::worker
