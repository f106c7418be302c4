// The worker daemon, started in this process (and once as a process, for SIGTERM), driven by a fake
// coordinator made of raw ZeroMQ sockets and wire messages: hello and register, heartbeats, stage
// assignment with weights by content hash, micro-batches checked against the reference executor,
// two stages chained across two workers, malformed messages (the worker keeps serving), and the drain
// on stop.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "opencl/device.h"
#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/ir.h"
#include "runtime/graph/serialize.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"
#include "runtime/sha256.h"
#include "schema/wire.h"
#include "worker/config.h"
#include "worker/worker.h"

using namespace convoy;
using Body = schema::Envelope::Body;

namespace {

const OpRegistry& registry() {
  static const OpRegistry r = make_default_registry();
  return r;
}

uint64_t opset() {
  static const uint64_t h = wire::opset_hash(registry());
  return h;
}

const std::string kFixture = std::string(CONVOY_SOURCE_DIR) + "/tests/fixtures/models/torch2/cnn";

// A coordinator's control ROUTER on an ephemeral loopback port.
struct FakeCoordinator {
  zmq::context_t ctx;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string endpoint;
  std::string worker;  // the worker's routing id

  FakeCoordinator() {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }

  std::optional<wire::InMessage> receive(int timeout_ms) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return std::nullopt;
    return wire::InMessage::receive(router, true, false);
  }

  // The next message other than a heartbeat (from `from` when given); fails the test after
  // `timeout_ms`. Remembers its sender as the worker to send to.
  wire::InMessage expect(Body::Which which, int timeout_ms = 60000, const std::string* from = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
              .count());
      REQUIRE(left > 0);
      auto m = receive(left);
      if (!m) continue;
      if (from && m->identity() != *from) continue;
      auto w = m->envelope().getBody().which();
      if (w == Body::HEARTBEAT && which != Body::HEARTBEAT) continue;
      if (w != which && w == Body::STAGE_FAILED)
        FAIL("stageFailed: " << m->envelope().getBody().getStageFailed().getMessage().cStr());
      if (w != which && w == Body::ERROR)
        FAIL("error: " << m->envelope().getBody().getError().getMessage().cStr());
      REQUIRE(static_cast<int>(w) == static_cast<int>(which));
      worker = m->identity();
      return std::move(*m);
    }
  }

  void send(wire::OutMessage m) { m.send(router, &worker); }

  // hello → helloReply, register → registered. Returns the Register's data endpoint.
  std::string handshake(uint32_t worker_id = 7, uint32_t heartbeat_ms = 100, pid_t pid = getpid()) {
    auto hello = expect(Body::HELLO);
    CHECK(wire::check_hello(hello.envelope().getBody().getHello(), opset()).empty());
    CHECK(hello.envelope().getBody().getHello().getRole() == schema::Role::WORKER);
    wire::OutMessage reply;
    auto r = reply.envelope().getBody().initHelloReply();
    r.setProtocolVersion(wire::kProtocolVersion);
    r.setOpsetHash(opset());
    r.setName("fake-coordinator");
    send(std::move(reply));
    auto reg = expect(Body::REGISTER);
    auto g = reg.envelope().getBody().getRegister();
    CHECK(g.getPid() == static_cast<uint32_t>(pid));
    REQUIRE(g.getDevices().size() == 1);
    CHECK(g.getDevices()[0].getGemmGflops() > 0);
    CHECK(g.getDevices()[0].getCopyGbps() > 0);
    CHECK(g.getThreads() >= 1);
    std::string data = g.getDataEndpoint();
    wire::OutMessage ok;
    auto d = ok.envelope().getBody().initRegistered();
    d.setWorkerId(worker_id);
    d.setHeartbeatMs(heartbeat_ms);
    send(std::move(ok));
    std::string id = worker;
    auto hb = expect(Body::HEARTBEAT, 5000, &id);
    CHECK(hb.envelope().getBody().getHeartbeat().getWorkerId() == worker_id);
    return data;
  }
};

// An upstream stage's DEALER to a worker's data socket (hello first).
struct Upstream {
  zmq::context_t ctx;
  zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
  explicit Upstream(const std::string& endpoint, bool say_hello = true) {
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    if (!say_hello) return;
    wire::OutMessage h;
    wire::make_hello(h.envelope(), schema::Role::UPSTREAM, opset());
    h.send(dealer);
    zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, std::chrono::milliseconds(20000)) == 1);
    auto reply = wire::InMessage::receive(dealer, false, false);
    REQUIRE(reply);
    REQUIRE(reply->envelope().getBody().which() == Body::HELLO_REPLY);
  }
  void send(wire::OutMessage m) { m.send(dealer); }
  void send_raw(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i)
      dealer.send(zmq::buffer(frames[i]),
                  i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
};

struct InProcessWorker {
  std::unique_ptr<worker::Worker> worker;
  std::thread thread;
  int status = -1;

  InProcessWorker(const std::string& coordinator, const std::string& backend, const std::string& name) {
    worker::WorkerConfig c;
    c.coordinator = coordinator;
    c.backend = backend;
    c.name = name;
    c.threads = 1;
    c.heartbeat_ms = 100;
    c.log_level = worker::LogLevel::kWarning;
    c.insecure = true;  // the fake coordinator speaks plain text; tests/e2e/security_tests.py runs CURVE
    worker = std::make_unique<worker::Worker>(c, registry());
    thread = std::thread([this] { status = worker->run(false); });
  }
  int stop() {
    if (thread.joinable()) {
      worker->stop();
      thread.join();
    }
    return status;
  }
  ~InProcessWorker() { stop(); }
};

struct AssignOptions {
  uint64_t job = 1;
  uint32_t stage = 0;
  std::string backend = "reference";
  std::vector<std::string> next;
  std::vector<std::pair<DType, Shape>> warm;
  bool send_weights = true;
  uint64_t request_id = 42;
  size_t externalize_bytes = 256;
};

wire::OutMessage make_assign(const Graph& graph, const AssignOptions& o,
                             std::vector<ExternalWeight>* weights = nullptr) {
  wire::OutMessage m;
  m.envelope().setRequestId(o.request_id);
  auto a = m.envelope().getBody().initAssignStage();
  a.setJob(o.job);
  a.setPipeline(0);
  a.setStage(o.stage);
  a.setReplica(0);
  a.setDevice(0);
  a.setBackend(o.backend);
  std::vector<ExternalWeight> ext;
  serialize_graph_into(graph, a.initGraph(), o.externalize_bytes, &ext);
  auto list = a.initWeights(static_cast<unsigned>(ext.size()));
  for (size_t i = 0; i < ext.size(); ++i) {
    auto w = list[static_cast<unsigned>(i)];
    const Tensor& t = ext[i].tensor;
    w.setValueId(static_cast<uint32_t>(ext[i].value_id));
    w.setHash(capnp::Data::Reader(reinterpret_cast<const uint8_t*>(ext[i].hash.data()), ext[i].hash.size()));
    w.setDtype(static_cast<int8_t>(scalar_type_code(t.dtype())));
    auto shape = w.initShape(static_cast<unsigned>(t.dim()));
    for (int64_t d = 0; d < t.dim(); ++d) shape.set(static_cast<unsigned>(d), t.size(d));
    w.setFrame(o.send_weights ? static_cast<int32_t>(m.add_bytes(t.raw_data(), t.nbytes())) : -1);
  }
  auto next = a.initNext().initEndpoints(static_cast<unsigned>(o.next.size()));
  for (size_t i = 0; i < o.next.size(); ++i) next.set(static_cast<unsigned>(i), o.next[i]);
  auto warm = a.initWarmShapes(static_cast<unsigned>(o.warm.size()));
  for (size_t i = 0; i < o.warm.size(); ++i)
    wire::set_meta(warm[static_cast<unsigned>(i)], o.warm[i].first, o.warm[i].second);
  if (weights) *weights = std::move(ext);
  return m;
}

wire::OutMessage make_batch(uint64_t job, uint32_t stage, uint64_t seq, const std::vector<Tensor>& inputs) {
  wire::OutMessage m;
  auto b = m.envelope().getBody().initMicroBatch();
  b.setJob(job);
  b.setPipeline(0);
  b.setSeq(seq);
  b.setStage(stage);
  auto metas = b.initTensors(static_cast<unsigned>(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) m.add_tensor(inputs[i], metas[static_cast<unsigned>(i)]);
  return m;
}

double rel_l2(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  std::vector<double> x = a.to_doubles(), y = b.to_doubles();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// The Result for `seq`: its single output compared with the reference executor on `input`.
void check_result(wire::InMessage& m, uint64_t seq, const Graph& graph, const Tensor& input, double tolerance,
                  size_t stages = 1) {
  auto r = m.envelope().getBody().getResult();
  CHECK(r.getSeq() == seq);
  REQUIRE(r.getTensors().size() == 1);
  CHECK(r.getStageSeconds().size() == stages);
  Tensor out = m.tensor(0, r.getTensors()[0], "Result.tensors[0]");
  ReferenceExecutor reference(graph);
  Tensor expected = reference.run({IValue(input.clone())})[0].to_tensor();
  CHECK(out.dtype() == expected.dtype());
  CHECK(rel_l2(out, expected) <= tolerance);
}

struct Fixture {
  Model model = load_model(kFixture + "/model.pt", registry());
  NpyFile input = NpyFile::open(kFixture + "/input_0.npy");
  Tensor batch(int64_t begin, int64_t end) const { return input.slice(begin, end).clone(); }
  std::vector<std::pair<DType, Shape>> warm() const {
    Shape s = input.shape();
    s[0] = 2;
    return {{input.dtype(), s}};
  }
};

// Makes `g` one registry op (`kind`, `overload`) of its input x and `constants`, in that order.
void one_op_graph(Graph& g, const std::string& kind, const std::string& overload,
                  const std::vector<IValue>& constants) {
  std::vector<Value*> inputs = {g.top()->add_param(Type::tensor(), "x")};
  for (const IValue& c : constants) inputs.push_back(g.constant(c));
  Node* n = g.top()->append(kind, inputs, 1);
  n->op = registry().find(kind, overload);
  REQUIRE(n->op);
  n->outputs[0]->type = Type::tensor();
  g.top()->returns.push_back(n->outputs[0]);
}

// Assigns the whole model as stage 0 of job 1 (default options) and waits for stageReady.
void assign_whole_model(FakeCoordinator& coordinator, const Fixture& f) {
  coordinator.send(make_assign(*f.model.graph, AssignOptions{}));
  coordinator.expect(Body::STAGE_READY);
}

// Micro-batches 0..n-1 of job 1, two samples each.
void send_batches(Upstream& up, const Fixture& f, int n) {
  for (int seq = 0; seq < n; ++seq) up.send(make_batch(1, 0, static_cast<uint64_t>(seq), {f.batch(0, 2)}));
}

}  // namespace

TEST_CASE("worker daemon: handshake, assignment, micro-batches, and malformed messages dropped") {
  Fixture f;
  FakeCoordinator coordinator;
  InProcessWorker w(coordinator.endpoint, "reference", "w-ref");
  std::string data = coordinator.handshake();
  CHECK(data == w.worker->data_endpoint());
  CHECK(data.rfind("tcp://127.0.0.1:", 0) == 0);

  // Assign the whole model as stage 0 of job 1; weights travel in frames.
  AssignOptions o;
  o.warm = f.warm();
  std::vector<ExternalWeight> weights;
  coordinator.send(make_assign(*f.model.graph, o, &weights));
  REQUIRE(!weights.empty());
  auto ready = coordinator.expect(Body::STAGE_READY);
  CHECK(ready.envelope().getRequestId() == 42);
  auto sr = ready.envelope().getBody().getStageReady();
  CHECK(sr.getJob() == 1);
  CHECK(sr.getStage() == 0);
  CHECK(sr.getWeightBytesReceived() > 0);
  CHECK(sr.getCachedWeights().size() == weights.size());

  Upstream up(data);
  up.send(make_batch(1, 0, 0, {f.batch(0, 2)}));
  auto result = coordinator.expect(Body::RESULT);
  check_result(result, 0, *f.model.graph, f.batch(0, 2), 0.0);

  // Garbage: not an envelope, a message before hello, a batch for a stage it does not hold.
  up.send_raw({"not a capnp message"});
  up.send_raw({std::string(64, '\xff'), "x"});
  {
    Upstream stranger(data, /*say_hello=*/false);
    stranger.send(make_batch(1, 0, 99, {f.batch(0, 2)}));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  up.send(make_batch(5, 0, 1, {f.batch(0, 2)}));  // job 5: not held, dropped
  // Wrong dtype and wrong input count: dropped, and the coordinator hears of it.
  up.send(make_batch(1, 0, 2, {f.batch(0, 2).to(DType::kFloat64)}));
  auto failed = coordinator.expect(Body::STAGE_FAILED);
  CHECK(failed.envelope().getBody().getStageFailed().getSeq() == 2);
  up.send(make_batch(1, 0, 3, {f.batch(0, 2), f.batch(0, 2)}));
  failed = coordinator.expect(Body::STAGE_FAILED);
  CHECK(failed.envelope().getBody().getStageFailed().getSeq() == 3);
  CHECK_THAT(std::string(failed.envelope().getBody().getStageFailed().getMessage()),
             Catch::Contains("carries 2 tensors but the stage takes 1"));
  // A frame whose length lies about its TensorMeta.
  {
    wire::OutMessage m = make_batch(1, 0, 4, {f.batch(0, 2)});
    m.add_bytes("junk", 4);
    up.send(std::move(m));
    failed = coordinator.expect(Body::STAGE_FAILED);
    CHECK(failed.envelope().getBody().getStageFailed().getSeq() == 4);
  }
  // Garbage on the control connection too.
  {
    zmq::message_t id(coordinator.worker.data(), coordinator.worker.size());
    coordinator.router.send(id, zmq::send_flags::sndmore);
    coordinator.router.send(zmq::str_buffer("garbage!"), zmq::send_flags::none);
  }
  // Random bytes in random envelopes.
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::string bytes(8 * (1 + rng() % 16), '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng());
    up.send_raw({bytes});
  }

  // Still serving: the last samples (a smaller micro-batch).
  up.send(make_batch(1, 0, 2, {f.batch(4, 5)}));
  result = coordinator.expect(Body::RESULT);
  check_result(result, 2, *f.model.graph, f.batch(4, 5), 0.0);

  // Re-assigned without weight bytes: served from the weight cache.
  o.send_weights = false;
  o.request_id = 43;
  o.job = 2;
  coordinator.send(make_assign(*f.model.graph, o));
  ready = coordinator.expect(Body::STAGE_READY);
  CHECK(ready.envelope().getRequestId() == 43);
  CHECK(ready.envelope().getBody().getStageReady().getWeightBytesReceived() == 0);

  // A graph whose weights it has never seen, sent without them → missingWeights naming a hash.
  {
    Graph g;
    one_op_graph(g, "aten::add", "Tensor",
                 {IValue(Tensor::full({64, 64}, DType::kFloat32, 3.0)), IValue(int64_t{1})});
    AssignOptions m;
    m.job = 3;
    m.send_weights = false;
    m.request_id = 44;
    coordinator.send(make_assign(g, m, &weights));
    REQUIRE(weights.size() == 1);
    auto error = coordinator.expect(Body::ERROR);
    CHECK(error.envelope().getRequestId() == 44);
    CHECK(error.envelope().getBody().getError().getKind() == schema::ErrorReply::Kind::MISSING_WEIGHTS);
    CHECK_THAT(std::string(error.envelope().getBody().getError().getMessage()),
               Catch::Contains(hex_string(weights[0].hash)));
  }
  // An assignment that cannot be built → stageFailed with seq ~0.
  {
    AssignOptions m;
    m.job = 4;
    m.backend = "cuda";
    m.request_id = 45;
    coordinator.send(make_assign(*f.model.graph, m));
    auto fail = coordinator.expect(Body::STAGE_FAILED);
    CHECK(fail.envelope().getRequestId() == 45);
    CHECK(fail.envelope().getBody().getStageFailed().getSeq() == ~0ull);
    CHECK_THAT(std::string(fail.envelope().getBody().getStageFailed().getMessage()),
               Catch::Contains("unknown backend 'cuda'"));
  }

  // Released: job 1's batches are dropped, job 2 still runs.
  {
    wire::OutMessage m;
    m.envelope().getBody().initReleaseStage().setJob(1);
    coordinator.send(std::move(m));
  }
  // The release comes on the control socket and the batches on the data socket: nothing orders the
  // two, so give the release time to arrive first.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  up.send(make_batch(1, 0, 7, {f.batch(0, 2)}));
  up.send(make_batch(2, 0, 8, {f.batch(2, 4)}));
  result = coordinator.expect(Body::RESULT);
  CHECK(result.envelope().getBody().getResult().getJob() == 2);
  check_result(result, 8, *f.model.graph, f.batch(2, 4), 0.0);

  CHECK(w.stop() == 0);
  auto bye = coordinator.expect(Body::DEREGISTER, 10000);
  CHECK(bye.envelope().getBody().getDeregister().getWorkerId() == 7);
}

TEST_CASE("worker daemon: an OpenCL stage matches the reference executor", "[opencl]") {
  if (opencl::enumerate_devices().empty()) {
    WARN("no OpenCL device: skipped");
    return;
  }
  Fixture f;
  FakeCoordinator coordinator;
  InProcessWorker w(coordinator.endpoint, "opencl", "w-ocl");
  std::string data = coordinator.handshake();
  AssignOptions o;
  o.backend = "opencl";
  o.warm = f.warm();
  coordinator.send(make_assign(*f.model.graph, o));
  auto ready = coordinator.expect(Body::STAGE_READY, 300000);
  CHECK(ready.envelope().getBody().getStageReady().getCompileSeconds() > 0);
  Upstream up(data);
  for (uint64_t seq = 0; seq < 3; ++seq) {
    int64_t begin = static_cast<int64_t>(seq) * 2, end = std::min<int64_t>(begin + 2, 5);
    up.send(make_batch(1, 0, seq, {f.batch(begin, end)}));
    auto result = coordinator.expect(Body::RESULT, 300000);
    check_result(result, seq, *f.model.graph, f.batch(begin, end), 1e-4);
  }
  CHECK(w.stop() == 0);
}

TEST_CASE("worker daemon: two stages on two workers pass activations directly") {
  Fixture f;
  FakeCoordinator coordinator;
  InProcessWorker a(coordinator.endpoint, "reference", "w-a");
  std::string data_a = coordinator.handshake(1);
  std::string id_a = coordinator.worker;
  InProcessWorker b(coordinator.endpoint, "reference", "w-b");
  std::string data_b = coordinator.handshake(2);
  std::string id_b = coordinator.worker;
  REQUIRE(data_a != data_b);

  // Stage 1 on b: x → x * 2.
  Graph second;
  one_op_graph(second, "aten::mul", "Scalar", {IValue(2.0)});
  AssignOptions o1;
  o1.stage = 1;
  coordinator.worker = id_b;
  coordinator.send(make_assign(second, o1));
  coordinator.expect(Body::STAGE_READY);
  // Stage 0 on a: the model, then on to b.
  AssignOptions o0;
  o0.next = {data_b};
  o0.warm = f.warm();
  coordinator.worker = id_a;
  coordinator.send(make_assign(*f.model.graph, o0));
  coordinator.expect(Body::STAGE_READY);

  Upstream up(data_a);
  up.send(make_batch(1, 0, 0, {f.batch(0, 2)}));
  auto result = coordinator.expect(Body::RESULT);
  CHECK(result.identity() == id_b);  // the last stage's worker answers
  auto r = result.envelope().getBody().getResult();
  CHECK(r.getStageSeconds().size() == 2);
  Tensor out = result.tensor(0, r.getTensors()[0], "Result.tensors[0]");
  Tensor expected = ReferenceExecutor(*f.model.graph).run({IValue(f.batch(0, 2))})[0].to_tensor();
  std::vector<double> x = out.to_doubles(), y = expected.to_doubles();
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) CHECK(x[i] == 2 * y[i]);
}

TEST_CASE("worker daemon: stop drains queued micro-batches, then deregisters") {
  Fixture f;
  FakeCoordinator coordinator;
  InProcessWorker w(coordinator.endpoint, "reference", "w-drain");
  std::string data = coordinator.handshake(3);
  assign_whole_model(coordinator, f);
  Upstream up(data);
  const int n = 6;
  send_batches(up, f, n);
  // Let them reach the worker's socket, then stop: every one is answered before the deregister.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int status = -1;
  std::thread stopper([&] { status = w.stop(); });
  std::set<uint64_t> seen;
  for (int i = 0; i < n; ++i)
    seen.insert(coordinator.expect(Body::RESULT).envelope().getBody().getResult().getSeq());
  CHECK(seen.size() == n);
  auto bye = coordinator.expect(Body::DEREGISTER, 10000);
  CHECK(bye.envelope().getBody().getDeregister().getWorkerId() == 3);
  stopper.join();
  CHECK(status == 0);
}

TEST_CASE("convoy-worker: SIGTERM finishes queued micro-batches, deregisters and exits 0") {
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "convoy-worker";
  if (!std::filesystem::exists(exe)) {
    WARN(exe.string() << " is not built: skipped");
    return;
  }
  Fixture f;
  FakeCoordinator coordinator;
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl(exe.c_str(), exe.c_str(), "--coordinator", coordinator.endpoint.c_str(), "--backend", "reference",
          "--threads", "1", "--log-level", "warning", "--insecure", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string data = coordinator.handshake(9, 100, pid);
  assign_whole_model(coordinator, f);
  Upstream up(data);
  const int n = 5;
  send_batches(up, f, n);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(kill(pid, SIGTERM) == 0);
  for (int i = 0; i < n; ++i) coordinator.expect(Body::RESULT);
  coordinator.expect(Body::DEREGISTER, 10000);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
