// The coordinator's pieces that run in one process: cluster-file validation, admission credits,
// outputs written at each micro-batch's offset, and the daemon itself on a loopback port, driven by
// raw sockets — a client that sends garbage, and a fake worker that holds micro-batches to count the
// credits and answers out of order.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "coordinator/cli.h"
#include "coordinator/cluster_config.h"
#include "coordinator/job_progress.h"
#include "coordinator/server.h"
#include "coordinator/worker_registry.h"
#include "runtime/error.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"
#include "schema/wire.h"

using namespace convoy;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;
using Body = schema::Envelope::Body;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("convoy-test-coordinator-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

fs::path seed_dir() {
#ifdef CONVOY_SOURCE_DIR
  return fs::path(CONVOY_SOURCE_DIR) / "examples/seed";
#else
  return fs::path("examples/seed");
#endif
}

uint64_t opset() {
  static uint64_t h = wire::opset_hash(make_default_registry());
  return h;
}

// A DEALER talking to the coordinator with a deadline on every receive.
struct Peer {
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::dealer};
  explicit Peer(const std::string& endpoint) {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(endpoint);
  }
  void send(wire::OutMessage m) { m.send(socket); }
  void send_raw(const std::string& bytes) { socket.send(zmq::buffer(bytes), zmq::send_flags::none); }
  std::optional<wire::InMessage> receive(int ms = 3000) {
    zmq::pollitem_t item{static_cast<void*>(socket), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(ms));
    if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
    return wire::InMessage::receive(socket, false, false);
  }
  wire::InMessage expect(Body::Which which, int ms = 3000) {
    auto m = receive(ms);
    REQUIRE(m.has_value());
    auto body = m->envelope().getBody();
    if (body.which() == Body::ERROR) INFO("error reply: " << body.getError().getMessage().cStr());
    REQUIRE(body.which() == which);
    return std::move(*m);
  }
  void hello(schema::Role role, uint64_t hash = opset()) {
    wire::OutMessage m;
    wire::make_hello(m.envelope(), role, hash);
    send(std::move(m));
  }
};

wire::OutMessage submit_message(const fs::path& dir, const std::string& model, int64_t batch) {
  wire::OutMessage m;
  auto s = m.envelope().getBody().initSubmitJob();
  s.setJobFile((dir / "job.yaml").string());
  s.setModel(model);
  auto in = s.initInputs(2);
  in.set(0, (dir / "x.npy").string());
  in.set(1, (dir / "h.npy").string());
  s.setOutput((dir / "out").string());
  s.setBatchSize(batch);
  s.setBackend("reference");
  return m;
}

fs::path seed_copy(const std::string& name) {
  fs::path dir = temp_dir(name);
  for (const char* f : {"jit.pt", "x.npy", "h.npy"}) fs::copy_file(seed_dir() / f, dir / f);
  return dir;
}

std::vector<JobStatusInfo> status(Peer& client, uint64_t job) {
  wire::OutMessage m;
  m.envelope().getBody().initStatusRequest().setJob(job);
  client.send(std::move(m));
  wire::InMessage r = client.expect(Body::STATUS_REPLY);
  std::vector<JobStatusInfo> out;
  for (auto s : r.envelope().getBody().getStatusReply().getJobs()) out.push_back(read_job_status(s));
  return out;
}

// The registered workers (a WorkersReply).
wire::InMessage workers_reply(Peer& client) {
  wire::OutMessage m;
  m.envelope().getBody().initWorkersRequest();
  client.send(std::move(m));
  return client.expect(Body::WORKERS_REPLY);
}

ClusterConfig loopback_config() {
  ClusterConfig c;
  c.listen = "tcp://127.0.0.1:*";
  c.heartbeat_ms = 10000;  // the fake worker does not heartbeat
  c.max_in_flight = 2;
  c.backend = "reference";
  c.http_listen = "";  // tests run in parallel: no fixed port
  c.insecure = true;   // raw sockets play the peers: tests/e2e/security_tests.py runs with CURVE
  c.allowed_roots = {"/"};
  return c;
}

// A worker faked over the wire: a registered control DEALER and a bound data ROUTER. Its "model"
// returns input 0.
struct FakeWorker {
  Peer control;
  zmq::socket_t data{control.ctx, zmq::socket_type::router};
  std::string data_endpoint;
  uint32_t id = 0;

  FakeWorker(const std::string& coordinator, const std::string& name) : control(coordinator) {
    data.set(zmq::sockopt::linger, 0);
    data.bind("tcp://127.0.0.1:*");
    data_endpoint = data.get(zmq::sockopt::last_endpoint);
    control.hello(schema::Role::WORKER);
    control.expect(Body::HELLO_REPLY);
    wire::OutMessage m;
    auto r = m.envelope().getBody().initRegister();
    r.setWorkerName(name);
    r.setHost("localhost");
    r.setPid(static_cast<uint32_t>(getpid()));
    r.setDataEndpoint(data_endpoint);
    r.setThreads(1);
    auto d = r.initDevices(1);
    d[0].setName("cpu");
    d[0].setBackend("reference");
    d[0].setGemmGflops(10);
    d[0].setCopyGbps(10);
    d[0].setMemoryBytes(1ull << 30);
    control.send(std::move(m));
    id = control.expect(Body::REGISTERED).envelope().getBody().getRegistered().getWorkerId();
  }
  // Answers an upstream's hello on the data socket, as a worker does: the coordinator streams to
  // a stage only once its data endpoint has answered. True if `msg` was one.
  bool answer_hello(const wire::InMessage& msg) {
    if (msg.envelope().getBody().which() != Body::HELLO) return false;
    wire::OutMessage m;
    m.envelope().setRequestId(msg.envelope().getRequestId());
    m.envelope().getBody().initHelloReply().setProtocolVersion(wire::kProtocolVersion);
    m.send(data, &msg.identity());
    hello_answered = true;
    return true;
  }
  bool hello_answered = false;
  // Expects an AssignStage of `pipeline` and answers stageReady (and the data link's hello).
  void ready(uint32_t pipeline) {
    wire::InMessage assign = control.expect(Body::ASSIGN_STAGE, 10000);
    auto a = assign.envelope().getBody().getAssignStage();
    REQUIRE(a.getPipeline() == pipeline);
    wire::OutMessage m;
    m.envelope().setRequestId(assign.envelope().getRequestId());
    auto r = m.envelope().getBody().initStageReady();
    r.setJob(a.getJob());
    r.setPipeline(a.getPipeline());
    r.setStage(a.getStage());
    r.setReplica(a.getReplica());
    control.send(std::move(m));
    while (!hello_answered) {
      zmq::pollitem_t item{static_cast<void*>(data), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(5000));
      REQUIRE((item.revents & ZMQ_POLLIN));
      auto msg = wire::InMessage::receive(data, true, false);
      REQUIRE(msg.has_value());
      answer_hello(*msg);
    }
  }
  // The next micro-batch on the data socket (an upstream hello answered).
  wire::InMessage micro_batch(int ms = 5000) {
    for (;;) {
      zmq::pollitem_t item{static_cast<void*>(data), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(ms));
      REQUIRE((item.revents & ZMQ_POLLIN));
      auto msg = wire::InMessage::receive(data, true, false);
      REQUIRE(msg.has_value());
      if (msg->envelope().getBody().which() == Body::MICRO_BATCH) return std::move(*msg);
      answer_hello(*msg);
    }
  }
  bool data_quiet(int ms) {
    zmq::pollitem_t item{static_cast<void*>(data), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(ms));
    return !(item.revents & ZMQ_POLLIN);
  }
  void result(const wire::InMessage& mb, uint32_t pipeline) {
    auto b = mb.envelope().getBody().getMicroBatch();
    Tensor in = mb.tensor(0, b.getTensors()[0], "x");
    wire::OutMessage m;
    auto r = m.envelope().getBody().initResult();
    r.setJob(b.getJob());
    r.setPipeline(pipeline);
    r.setSeq(b.getSeq());
    m.add_tensor(in.clone(), r.initTensors(1)[0]);
    r.initStageSeconds(1).set(0, 0.001);
    control.send(std::move(m));
  }
  void failed(uint64_t job, uint32_t pipeline, uint64_t seq, const std::string& message) {
    wire::OutMessage m;
    auto f = m.envelope().getBody().initStageFailed();
    f.setJob(job);
    f.setPipeline(pipeline);
    f.setStage(0);
    f.setSeq(seq);
    f.setMessage(message);
    control.send(std::move(m));
  }
  void deregister() {
    wire::OutMessage m;
    auto d = m.envelope().getBody().initDeregister();
    d.setWorkerId(id);
    d.setReason("test");
    control.send(std::move(m));
  }
};

uint64_t micro_seq(const wire::InMessage& mb) { return mb.envelope().getBody().getMicroBatch().getSeq(); }
uint32_t micro_pipeline(const wire::InMessage& mb) {
  return mb.envelope().getBody().getMicroBatch().getPipeline();
}

JobStatusInfo wait_ended(Peer& client, uint64_t job) {
  JobStatusInfo s;
  for (int i = 0; i < 250; ++i) {
    s = status(client, job).at(0);
    if (s.ended()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return s;
}

}  // namespace

TEST_CASE("coordinator: cluster files are validated with file, line and key", "[coordinator]") {
  ClusterConfig d = parse_cluster_config("", "c.yaml");
  CHECK(d.listen == "tcp://127.0.0.1:7700");
  CHECK(d.max_in_flight == 4);
  CHECK(d.http_listen == "127.0.0.1:7701");

  ClusterConfig c = parse_cluster_config(
      "listen: tcp://0.0.0.0:9000\nmax_in_flight: 8\nbackend: reference\n"
      "min_workers: 2\nstage_ready_timeout_s: 1.5\n",
      "c.yaml");
  CHECK(c.listen == "tcp://0.0.0.0:9000");
  CHECK(c.max_in_flight == 8);
  CHECK(c.backend == "reference");
  CHECK(c.min_workers == 2);
  CHECK(c.stage_ready_timeout_s == 1.5);

  CHECK_THAT(
      error_of([] { parse_cluster_config("listen: tcp://127.0.0.1:7700\nmax_inflight: 3\n", "c.yaml"); }),
      Contains("c.yaml:2: unknown key 'max_inflight'"));
  CHECK_THAT(error_of([] { parse_cluster_config("\nmax_in_flight: many\n", "c.yaml"); }),
             Contains("c.yaml:2: 'max_in_flight' must be an integer in [1, 4096], not 'many'"));
  CHECK_THAT(error_of([] { parse_cluster_config("max_in_flight: 0\n", "c.yaml"); }), Contains("c.yaml:1"));
  CHECK_THAT(error_of([] { parse_cluster_config("backend: cuda\n", "c.yaml"); }),
             Contains("c.yaml:1: 'backend' must be opencl or reference, not 'cuda'"));
  CHECK_THAT(error_of([] { parse_cluster_config("listen: localhost:7700\n", "c.yaml"); }),
             Contains("c.yaml:1: 'listen' must be a ZeroMQ endpoint"));
  CHECK_THAT(error_of([] { parse_cluster_config("heartbeat_ms: [1]\n", "c.yaml"); }),
             Contains("'heartbeat_ms' must be an integer"));
  CHECK_THAT(error_of([] { parse_cluster_config("- a\n- b\n", "c.yaml"); }), Contains("must be a mapping"));
  CHECK_THAT(error_of([] { parse_cluster_config("? [a]\n: 1\n", "c.yaml"); }),
             Contains("c.yaml:1: keys must be names"));
  CHECK_THAT(error_of([] { parse_cluster_config("max_replicas: 1\nop_overhead_us: -2\n", "c.yaml"); }),
             Contains("c.yaml:2: 'op_overhead_us'"));
  CHECK_THAT(error_of([] { load_cluster_config("/nonexistent/cluster.yaml"); }), Contains("not found"));

  CHECK(parse_cluster_config("http_listen: 0.0.0.0:9100\nhttp_token_file: t\n", "c.yaml").http_listen ==
        "0.0.0.0:9100");
  // Off loopback, /metrics needs a token: the coordinator does not start without one.
  CHECK_THAT(error_of([] { parse_cluster_config("http_listen: 0.0.0.0:9100\n", "c.yaml"); }),
             Contains("http_token_file"));
  CHECK(parse_cluster_config("http_listen: '[::1]:0'\n", "c.yaml").http_listen == "[::1]:0");
  CHECK(parse_cluster_config("http_listen: localhost:80\n", "c.yaml").http_listen == "localhost:80");
  CHECK(parse_cluster_config("http_listen: \"\"\n", "c.yaml").http_listen.empty());
  for (const char* bad : {"7701", "127.0.0.1:70000", "127.0.0.1:", ":7701", "example.com:80", "::1:7701",
                          "http://127.0.0.1:7701", "127.0.0.1:77a"})
    CHECK_THAT(error_of([&] {
                 parse_cluster_config(std::string("max_replicas: 1\nhttp_listen: '") + bad + "'\n", "c.yaml");
               }),
               Contains("c.yaml:2: 'http_listen' must be HOST:PORT") && Contains(bad));
  CHECK_THAT(error_of([] { parse_cluster_config("http_listen:\n", "c.yaml"); }),
             Contains("c.yaml:1: 'http_listen'"));
  CHECK_THAT(error_of([] { parse_cluster_config("http_listen: [a]\n", "c.yaml"); }),
             Contains("c.yaml:1: 'http_listen' must be HOST:PORT"));

#ifdef CONVOY_SOURCE_DIR
  ClusterConfig shipped = load_cluster_config(std::string(CONVOY_SOURCE_DIR) + "/configs/cluster.yaml");
  CHECK(shipped.listen == "tcp://127.0.0.1:7700");
  CHECK(shipped.http_listen == "127.0.0.1:7701");
#endif
}

TEST_CASE("coordinator: admission keeps at most the limit in flight and counts each completion once",
          "[coordinator]") {
  Admission a(5, 2);
  CHECK(a.admit() == 0);
  CHECK(a.admit() == 1);
  CHECK_FALSE(a.can_admit());
  CHECK_FALSE(a.complete(2));  // never admitted
  CHECK(a.complete(1));
  CHECK_FALSE(a.complete(1));  // a duplicate Result
  CHECK(a.done() == 1);
  CHECK(a.admit() == 2);
  CHECK_FALSE(a.can_admit());
  CHECK(a.complete(0));
  CHECK(a.complete(2));
  CHECK(a.admit() == 3);
  CHECK(a.admit() == 4);
  CHECK_FALSE(a.can_admit());  // all admitted
  CHECK_FALSE(a.finished());
  CHECK(a.complete(4));
  CHECK(a.complete(3));
  CHECK(a.finished());

  Admission c(10, 3);
  c.admit();
  c.close();  // cancel: nothing more goes out
  CHECK_FALSE(c.can_admit());
  CHECK(c.complete(0));
  CHECK(c.finished());

  CHECK(micro_batches(12, 3) == 4);
  CHECK(micro_batches(13, 3) == 5);
  CHECK(micro_batch_begin(4, 3) == 12);
  CHECK(micro_batch_end(4, 13, 3) == 13);
}

TEST_CASE("coordinator: a lost pipeline's micro-batches are requeued, replayed first, and count once",
          "[coordinator]") {
  Admission a(6, 3);
  CHECK(a.admit() == 0);
  CHECK(a.admit() == 1);
  CHECK(a.admit() == 2);
  CHECK(a.complete(1));
  CHECK(a.admit() == 3);  // in flight: 0, 2, 3

  // The pipeline is lost: everything in flight goes back to the queue, still outstanding.
  CHECK(a.requeue_in_flight() == std::vector<int64_t>{0, 2, 3});
  CHECK(a.in_flight() == 0);
  CHECK(a.requeued() == 3);
  CHECK(a.outstanding(0));
  CHECK(a.outstanding(3));
  CHECK_FALSE(a.outstanding(1));  // done before the loss: never written again
  CHECK(a.replays(0) == 1);
  CHECK(a.replays(1) == 0);
  CHECK(a.lowest_outstanding() == 0);
  CHECK(a.requeue_in_flight().empty());  // nothing was sent since: nothing counted twice
  CHECK(a.replays(2) == 1);

  // A late result of the old pipeline for a requeued micro-batch is correct data: it counts, once,
  // and that micro-batch is not sent again.
  CHECK(a.complete(2));
  CHECK_FALSE(a.complete(2));
  CHECK(a.done() == 2);
  CHECK(a.lowest_outstanding() == 0);

  // The new pipeline (fewer credits) gets the requeued ones first, lowest first, then new ones.
  a.set_limit(2);
  CHECK(a.admit() == 0);
  CHECK(a.admit() == 3);
  CHECK_FALSE(a.can_admit());  // limit
  CHECK(a.complete(3));
  CHECK_FALSE(a.complete(3));  // the old pipeline's copy of 3 arrives after the new one's: ignored
  CHECK(a.admit() == 4);
  CHECK(a.complete(0));
  CHECK(a.lowest_outstanding() == 4);
  CHECK(a.admit() == 5);
  CHECK_FALSE(a.can_admit());  // all admitted
  CHECK(a.complete(4));
  CHECK_FALSE(a.finished());
  CHECK(a.complete(5));
  CHECK(a.finished());
  CHECK(a.done() == 6);

  // Replays are counted per micro-batch across losses, so the caller can cap them.
  Admission b(2, 1);
  for (int loss = 1; loss <= 4; ++loss) {
    CHECK(b.admit() == 0);
    CHECK(b.requeue_in_flight() == std::vector<int64_t>{0});
    CHECK(b.replays(0) == loss);
  }
  CHECK(b.replays(1) == 0);
  b.set_limit(0);  // at least one credit
  CHECK(b.limit() == 1);

  // Closing (cancel, failure) stops the requeued ones going out too; they may still complete late.
  Admission c(4, 2);
  c.admit();
  c.admit();
  c.requeue_in_flight();
  c.close();
  CHECK_FALSE(c.can_admit());
  CHECK(c.complete(1));
  CHECK(c.outstanding(0));
  CHECK_FALSE(c.finished());
}

TEST_CASE("coordinator: results are written at their micro-batch's offset in any order", "[coordinator]") {
  fs::path dir = temp_dir("outputs");
  auto rows = [](int64_t begin, int64_t n) {
    std::vector<double> v;
    for (int64_t r = begin; r < begin + n; ++r)
      for (int c = 0; c < 2; ++c) v.push_back(static_cast<double>(r * 10 + c));
    return Tensor::from_doubles({n, 2}, DType::kFloat32, v);
  };
  {
    OutputAssembler out((dir / "out").string(), 7, 3, "job 1");
    out.write(2, {rows(6, 1)});  // the short last micro-batch first
    out.write(0, {rows(0, 3)});
    out.write(1, {rows(3, 3)});
    out.write(1, {rows(3, 3)});  // a replay rewrites the same bytes
    CHECK_THAT(error_of([&] { out.write(0, {rows(0, 2)}); }), Contains("output 0 of micro-batch 0"));
    CHECK_THAT(error_of([&] { out.write(0, {rows(0, 3), rows(0, 3)}); }), Contains("returned 2 outputs"));
    CHECK_THAT(error_of([&] { out.write(3, {rows(0, 3)}); }), Contains("micro-batch 3 of 3"));
    out.commit();
  }
  Tensor t = read_npy((dir / "out/output_0.npy").string());
  REQUIRE(t.sizes() == Shape{7, 2});
  for (int64_t r = 0; r < 7; ++r) CHECK(t.get_double(r * 2 + 1) == r * 10 + 1);

  {
    OutputAssembler abandoned((dir / "gone").string(), 3, 3, "job 2");
    abandoned.write(0, {rows(0, 3)});
  }  // never committed: no file appears
  CHECK_FALSE(fs::exists(dir / "gone/output_0.npy"));
  fs::remove_all(dir);
}

TEST_CASE("coordinator: malformed client messages get an ErrorReply and the daemon keeps serving",
          "[coordinator]") {
  std::ostringstream log;
  EmbeddedCoordinator coordinator(loopback_config(), log);
  Peer client(coordinator.endpoint());

  client.send_raw("not a capnp message");  // before hello, from nobody: dropped
  {
    wire::OutMessage m;
    m.envelope().getBody().initWorkersRequest();
    client.send(std::move(m));
    auto r = client.expect(Body::ERROR);
    CHECK(r.envelope().getBody().getError().getKind() == schema::ErrorReply::Kind::REFUSED);
  }
  Peer stranger(coordinator.endpoint());
  stranger.hello(schema::Role::CLIENT, opset() ^ 1);
  CHECK(stranger.expect(Body::ERROR).envelope().getBody().getError().getKind() ==
        schema::ErrorReply::Kind::VERSION_MISMATCH);

  client.hello(schema::Role::CLIENT);
  client.expect(Body::HELLO_REPLY);
  client.send_raw("garbage!");  // 8 bytes: word-aligned, still not a message
  CHECK(client.expect(Body::ERROR).envelope().getBody().getError().getKind() ==
        schema::ErrorReply::Kind::BAD_REQUEST);
  client.send_raw("odd");
  CHECK(client.expect(Body::ERROR).envelope().getBody().getError().getKind() ==
        schema::ErrorReply::Kind::BAD_REQUEST);

  fs::path dir = seed_copy("malformed");
  auto kind_of = [&](wire::OutMessage m) {
    client.send(std::move(m));
    auto r = client.expect(Body::ERROR);
    return std::make_pair(r.envelope().getBody().getError().getKind(),
                          std::string(r.envelope().getBody().getError().getMessage().cStr()));
  };
  {
    auto [kind, message] = kind_of(submit_message(dir, "jit.pt", 3));
    CHECK(kind == schema::ErrorReply::Kind::BAD_REQUEST);
    CHECK_THAT(message, Contains("SubmitJob.model 'jit.pt' is relative"));
  }
  {
    auto [kind, message] = kind_of(submit_message(dir, (dir / "missing.pt").string(), 3));
    CHECK(kind == schema::ErrorReply::Kind::BAD_REQUEST);
    CHECK_THAT(message, Contains("not found"));
  }
  {
    // A path the system cannot even look up is refused like a missing one, with the reason.
    auto [kind, message] = kind_of(submit_message(dir, "/" + std::string(300, 'a') + "/jit.pt", 3));
    CHECK(kind == schema::ErrorReply::Kind::BAD_REQUEST);
    CHECK_THAT(message, Contains("not found on the coordinator (File name too long)"));
    CHECK_THAT(message, !Contains("malformed request") && !Contains("filesystem error"));
  }
  {
    auto [kind, message] = kind_of(submit_message(dir, (dir / "jit.pt").string(), 0));
    CHECK_THAT(message, Contains("batchSize must be positive"));
  }
  {
    wire::OutMessage m;
    m.envelope().getBody().initStatusRequest().setJob(42);
    auto [kind, message] = kind_of(std::move(m));
    CHECK(kind == schema::ErrorReply::Kind::NOT_FOUND);
    CHECK(message == "no job 42");
  }
  {
    wire::OutMessage m;
    m.envelope().getBody().initCancel().setJob(42);
    CHECK(kind_of(std::move(m)).first == schema::ErrorReply::Kind::NOT_FOUND);
  }
  {
    wire::OutMessage m;  // a worker's message from a client
    m.envelope().getBody().initHeartbeat().setWorkerId(1);
    CHECK(kind_of(std::move(m)).first == schema::ErrorReply::Kind::BAD_REQUEST);
  }
  {
    wire::OutMessage m;
    m.envelope().getBody().initPlanRequest().setJob(
        submit_message(dir, (dir / "jit.pt").string(), 3).envelope().getBody().getSubmitJob().asReader());
    CHECK(kind_of(std::move(m)).first == schema::ErrorReply::Kind::RETRY_LATER);  // no workers yet
  }

  // Still serving: jobs queue in submission order while no worker is registered.
  for (int i = 0; i < 2; ++i) {
    client.send(submit_message(dir, (dir / "jit.pt").string(), 3));
    CHECK(client.expect(Body::SUBMITTED).envelope().getBody().getSubmitted().getJob() ==
          static_cast<uint64_t>(i + 1));
  }
  auto jobs = status(client, 0);
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].job == 1);
  CHECK(jobs[0].state == "queued");
  CHECK(jobs[1].state == "queued");
  {
    wire::OutMessage m;
    m.envelope().getBody().initCancel().setJob(1);
    client.send(std::move(m));
    client.expect(Body::CANCELLED);
  }
  CHECK(status(client, 1).at(0).state == "cancelled");
  CHECK(status(client, 2).at(0).state == "queued");
  CHECK(workers_reply(client).envelope().getBody().getWorkersReply().getWorkers().size() == 0);
  CHECK_THAT(log.str(), Contains("warning: dropped message from"));
  coordinator.stop();
  fs::remove_all(dir);
}

TEST_CASE("coordinator: a job streams through a worker within its credits and lands at the offsets",
          "[coordinator]") {
  std::ostringstream log;
  ClusterConfig config = loopback_config();
  EmbeddedCoordinator coordinator(config, log);
  fs::path dir = seed_copy("stream");

  // The fake worker: a control DEALER and a bound data ROUTER.
  FakeWorker fake(coordinator.endpoint(), "fake");
  Peer& control = fake.control;
  zmq::socket_t& data = fake.data;
  uint32_t worker_id = fake.id;
  {
    wire::OutMessage bad;  // a malformed Register from a worker is dropped, the registration stands
    bad.envelope().getBody().initRegister().setWorkerName("");
    control.send(std::move(bad));
  }

  Peer client(coordinator.endpoint());
  client.hello(schema::Role::CLIENT);
  client.expect(Body::HELLO_REPLY);
  client.send(submit_message(dir, (dir / "jit.pt").string(), 3));  // 12 samples: 4 micro-batches
  uint64_t job = client.expect(Body::SUBMITTED).envelope().getBody().getSubmitted().getJob();

  wire::InMessage assign = control.expect(Body::ASSIGN_STAGE, 10000);
  auto a = assign.envelope().getBody().getAssignStage();
  CHECK(a.getJob() == job);
  CHECK(a.getBackend() == "reference");
  CHECK(a.getWarmShapes().size() == 2);
  CHECK(a.getNext().getEndpoints().size() == 0);
  {
    wire::OutMessage m;
    m.envelope().setRequestId(assign.envelope().getRequestId());
    auto r = m.envelope().getBody().initStageReady();
    r.setJob(job);
    r.setStage(a.getStage());
    r.setReplica(a.getReplica());
    control.send(std::move(m));
  }

  // Hold micro-batches until the coordinator stops sending: never more than max_in_flight.
  Tensor x = read_npy((dir / "x.npy").string());
  auto answer = [&](const wire::InMessage& mb) {
    auto b = mb.envelope().getBody().getMicroBatch();
    Tensor in = mb.tensor(0, b.getTensors()[0], "x");
    wire::OutMessage m;
    auto r = m.envelope().getBody().initResult();
    r.setJob(b.getJob());
    r.setSeq(b.getSeq());
    m.add_tensor(in.clone(), r.initTensors(1)[0]);  // the "model" returns x
    r.initStageSeconds(1).set(0, 0.001);
    control.send(std::move(m));
  };
  size_t most_held = 0, seen = 0;
  std::vector<wire::InMessage> held;
  while (seen < 4) {
    zmq::pollitem_t item{static_cast<void*>(data), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(300));
    if (item.revents & ZMQ_POLLIN) {
      auto msg = wire::InMessage::receive(data, true, false);
      REQUIRE(msg.has_value());
      if (fake.answer_hello(*msg)) continue;  // the upstream hello
      held.push_back(std::move(*msg));
      ++seen;
      most_held = std::max(most_held, held.size());
      continue;
    }
    REQUIRE_FALSE(held.empty());  // nothing more comes while credits are spent
    // Answer out of order, the last held first, and a forged duplicate that must not count.
    for (auto it = held.rbegin(); it != held.rend(); ++it) answer(*it);
    answer(held.front());
    held.clear();
  }
  for (auto it = held.rbegin(); it != held.rend(); ++it) answer(*it);
  CHECK(most_held == config.max_in_flight);

  JobStatusInfo s;
  for (int i = 0; i < 100; ++i) {
    s = status(client, job).at(0);
    if (s.ended()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(s.state == "done");
  CHECK(s.samples_done == 12);
  CHECK(s.micro_batches_done == 4);
  REQUIRE(s.stages.size() == 1);
  CHECK(s.stages[0].measured_seconds == Approx(0.001));
  Tensor out = read_npy((dir / "out/output_0.npy").string());
  REQUIRE(out.sizes() == x.sizes());
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(out.get_double(i) == x.get_double(i));

  {
    auto w = workers_reply(client);
    REQUIRE(w.envelope().getBody().getWorkersReply().getWorkers().size() == 1);
    CHECK(w.envelope().getBody().getWorkersReply().getWorkers()[0].getWorkerId() == worker_id);
  }
  CHECK_THAT(log.str(), Contains("Register.workerName has 0 bytes"));
  coordinator.stop();
  fs::remove_all(dir);
}

TEST_CASE("coordinator: a lost pipeline is re-planned and its outstanding micro-batches replayed once",
          "[coordinator]") {
  std::ostringstream log;
  ClusterConfig config = loopback_config();  // max_in_flight 2
  config.stage_ready_timeout_s = 30;
  EmbeddedCoordinator coordinator(config, log);
  fs::path dir = seed_copy("replay");
  Tensor x = read_npy((dir / "x.npy").string());
  FakeWorker a(coordinator.endpoint(), "fake-a");
  Peer client(coordinator.endpoint());
  client.hello(schema::Role::CLIENT);
  client.expect(Body::HELLO_REPLY);
  auto submit = [&] {
    client.send(submit_message(dir, (dir / "jit.pt").string(), 3));  // 12 samples: 4 micro-batches
    return client.expect(Body::SUBMITTED).envelope().getBody().getSubmitted().getJob();
  };
  auto expect_output = [&] {
    Tensor out = read_npy((dir / "out/output_0.npy").string());
    REQUIRE(out.sizes() == x.sizes());
    for (int64_t i = 0; i < x.numel(); ++i) CHECK(out.get_double(i) == x.get_double(i));
    fs::remove_all(dir / "out");
  };

  SECTION("a transient stageFailed: late results of the old pipeline are dropped, everything is replayed") {
    uint64_t job = submit();
    a.ready(0);
    wire::InMessage m0 = a.micro_batch();
    CHECK(micro_pipeline(m0) == 0);
    a.micro_batch();  // 1
    a.result(m0, 0);
    wire::InMessage m2 = a.micro_batch();
    CHECK(micro_seq(m2) == 2);
    a.failed(job, 0, 1, "device lost");  // in flight: 1 and 2
    a.result(m2, 0);                     // a late result of the replaced pipeline: not written
    a.control.expect(Body::RELEASE_STAGE);
    a.ready(1);
    wire::InMessage r1 = a.micro_batch();
    CHECK(micro_seq(r1) == 1);  // replayed first
    CHECK(micro_pipeline(r1) == 1);
    wire::InMessage r2 = a.micro_batch();
    CHECK(micro_seq(r2) == 2);               // the stale result did not count: replayed as well
    a.failed(job, 0, 2, "a stale failure");  // of the replaced pipeline: ignored
    a.result(r1, 1);
    a.result(r2, 1);
    wire::InMessage r3 = a.micro_batch();
    CHECK(micro_seq(r3) == 3);
    a.result(r2, 1);  // micro-batch 2 again: already written, ignored
    a.result(r3, 1);
    JobStatusInfo s = wait_ended(client, job);
    CHECK(s.state == "done");
    CHECK(s.error == "");
    CHECK(s.samples_done == 12);
    CHECK(s.micro_batches_done == 4);
    expect_output();
    CHECK(a.data_quiet(200));
    coordinator.stop();  // the log is read when its thread is done
    CHECK_THAT(log.str(), Contains("micro-batch 1: device lost; replaying"));
    CHECK_THAT(log.str(), Contains("on a new plan (pipeline 1) over 1 worker(s)"));
    CHECK_THAT(log.str(),
               Contains("dropped a result for micro-batch 2 (pipeline 0) from worker fake-a: the job "
                        "is on pipeline 1"));
    CHECK_THAT(log.str(),
               Contains("ignored a result for micro-batch 2 (pipeline 1) that is already written"));
    CHECK_THAT(log.str(), Contains("ignored stageFailed of replaced pipeline 0"));
  }

  SECTION("a micro-batch that keeps failing fails the job after 3 replays") {
    uint64_t job = submit();
    for (uint32_t pipeline = 0; pipeline <= 3; ++pipeline) {
      if (pipeline > 0) a.control.expect(Body::RELEASE_STAGE);
      a.ready(pipeline);
      wire::InMessage first = a.micro_batch();
      CHECK(micro_seq(first) == 0);
      CHECK(micro_pipeline(first) == pipeline);
      a.micro_batch();
      a.failed(job, pipeline, 0, "bad data");
    }
    JobStatusInfo s = wait_ended(client, job);
    CHECK(s.state == "failed");
    CHECK_THAT(s.error, Contains("micro-batch 0: bad data"));
    CHECK_THAT(s.error, Contains("replays are capped at 3 per micro-batch"));
    CHECK_FALSE(fs::exists(dir / "out/output_0.npy"));
  }

  SECTION("the last worker lost: the job waits in planning for one to register, then resumes") {
    uint64_t job = submit();
    a.ready(0);
    wire::InMessage m0 = a.micro_batch();
    a.micro_batch();
    a.result(m0, 0);
    a.micro_batch();
    a.deregister();
    JobStatusInfo s;
    for (int i = 0; i < 100; ++i) {
      s = status(client, job).at(0);
      if (s.state != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(s.state == "planning");
    CHECK(s.samples_done == 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    FakeWorker b(coordinator.endpoint(), "fake-b");
    b.ready(1);
    std::vector<uint64_t> seqs;
    for (int i = 0; i < 3; ++i) {
      wire::InMessage mb = b.micro_batch();
      CHECK(micro_pipeline(mb) == 1);
      seqs.push_back(micro_seq(mb));
      b.result(mb, 1);
    }
    CHECK(seqs == std::vector<uint64_t>{1, 2, 3});
    s = wait_ended(client, job);
    CHECK(s.state == "done");
    CHECK(s.samples_done == 12);
    expect_output();
    coordinator.stop();
    CHECK_THAT(log.str(),
               Contains("worker fake-a lost (deregistered (test)); no live worker runs the reference"));
    CHECK_THAT(log.str(), Contains("running again on pipeline 1, replaying 2 micro-batch(es)"));
  }

  coordinator.stop();
  fs::remove_all(dir);
}

TEST_CASE("coordinator: status prints as a table, JSON and a progress line", "[coordinator]") {
  JobStatusInfo j;
  j.job = 3;
  j.name = "job \"a\".yaml";
  j.state = "running";
  j.samples_done = 50;
  j.samples_total = 200;
  j.samples_per_second = 25;
  j.stages.push_back({0, {"w1", "w2"}, "aten::conv2d", "aten::linear", 0.002, 0.003});
  CHECK_THAT(format_status_table({j}), Contains("running    50/200"));
  CHECK_THAT(format_status_json({j}), Contains("\"name\": \"job \\\"a\\\".yaml\""));
  CHECK_THAT(format_status_json({j}), Contains("\"workers\": [\"w1\", \"w2\"]"));
  CHECK(format_progress(j, false) == "job 3: running, 50/200 samples (25.0%), 25.0 samples/s, ETA 6 s");
  CHECK_THAT(format_progress(j, true), Contains("[########......................"));
  CHECK_THAT(format_stage_times(j), Contains("1.50"));  // measured / predicted
}

TEST_CASE("coordinator: a Register with too many devices is refused", "[coordinator]") {
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<schema::Register>();
  r.setWorkerName("w1");
  r.setDataEndpoint("tcp://127.0.0.1:40123");
  r.initDevices(kMaxRegisterDevices);
  CHECK(WorkerRegistry::read_register(r.asReader(), "id").devices.size() == kMaxRegisterDevices);
  r.initDevices(kMaxRegisterDevices + 1);
  CHECK_THROWS_WITH(WorkerRegistry::read_register(r.asReader(), "id"),
                    Contains("Register.devices: 257 devices (at most 256)"));
}
