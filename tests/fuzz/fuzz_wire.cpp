// libFuzzer target for the wire protocol: a received ZeroMQ multipart message, decoded and checked
// the way the daemons do before they act on it.
//
// Input format (all integers little-endian):
//   byte 0        flags: bits 0-2 misalign the envelope frame's data by that many bytes, bits 3-5 the
//                 tensor frames' (zero-copy tensors and Cap'n Proto words both care about alignment)
//   then frames   each a u32 length and that many bytes; a length past the end takes what is left,
//                 fewer than 4 trailing bytes are ignored, at most 64 frames
// Frame 0 is the Envelope, frames 1.. the tensor frames, handed to wire::InMessage::from_frames as
// InMessage::receive would. Each frame lives in an allocation of exactly its size (plus the
// misalignment), so AddressSanitizer sees any read past it. Then, by the envelope's body:
//   hello              wire::check_hello against this build's op set hash
//   register           WorkerRegistry::read_register, then add / usable_devices / live_devices /
//                      pick_backend on a registry holding the worker
//   submitJob          read_job_request (what the coordinator's submit runs), and planRequest's job too
//   microBatch/result  every tensor frame through InMessage::tensor with its TensorMeta, every byte read
//   assignStage        the weights as the worker checks them, warmShapes through check_meta, and
//                      deserialize_graph with the sent weights as its resolver
//   everything else    every scalar, text, data and list field read
// Every text field also goes through printable(). A convoy::Error or a kj::Exception is a correct
// refusal; a crash, a sanitizer report, a leak or a timeout is a bug.
//
// Build, seed, run (docs in tests/fuzz/CMakeLists.txt):
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCONVOY_FUZZ=ON -DCONVOY_BUILD_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_wire
//   CONVOY_FUZZ_WIRE_WRITE_SEEDS=tests/fuzz/wire_corpus build-fuzz/bin/fuzz_wire   # rewrites the seeds
//   CONVOY_FUZZ_WIRE_VERBOSE=1 build-fuzz/bin/fuzz_wire FILE...   # why each input is refused
//   build-fuzz/bin/fuzz_wire -dict=tests/fuzz/wire.dict -max_total_time=600 -timeout=10 \
//       -rss_limit_mb=2048 CORPUS_DIR tests/fuzz/wire_corpus
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/cluster_views.h"
#include "coordinator/worker_registry.h"
#include "runtime/error.h"
#include "runtime/graph/serialize.h"
#include "runtime/ops/registry.h"
#include "runtime/printable.h"
#include "schema/wire.h"

namespace {

using namespace convoy;
using Body = schema::Envelope::Body;

constexpr size_t kMaxFrames = 64;
bool g_verbose = false;  // CONVOY_FUZZ_WIRE_VERBOSE set: say why each input was refused

const OpRegistry& registry() {
  static const OpRegistry r = make_default_registry();
  return r;
}
uint64_t opset() {
  static const uint64_t h = wire::opset_hash(registry());
  return h;
}

// Whatever the fuzzer makes us read ends up here, so that no read is optimised away.
volatile uint64_t g_sink = 0;
void sink(uint64_t v) { g_sink = g_sink + v; }

void text(capnp::Text::Reader t) {
  std::string s(t.cStr(), t.size());
  sink(printable(s).size());
}
void data(capnp::Data::Reader d) {
  for (uint8_t b : d) sink(b);
}
// The fuzzer's own walks over lists stop after this many elements. A list of empty structs costs no
// bytes (Cap'n Proto charges it only against the 64 Mi-word traversal limit), so a 40-byte message
// can claim tens of millions of elements, and walking a client-side reply (StatusReply,
// WorkersReply: the CLI reads those, from the coordinator) that long only times the fuzzer out. The
// daemons' own checks (read_register, tensors, deserialize_graph, ...) always get the whole list.
constexpr uint32_t kMaxWalk = 1 << 12;
// The first kMaxWalk elements of `list`, for a range-for.
template <typename List>
struct Prefix {
  List list;
  uint32_t n;
  struct It {
    const List* list;
    uint32_t i;
    auto operator*() const { return (*list)[i]; }
    It& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const It& o) const { return i != o.i; }
  };
  It begin() const { return {&list, 0}; }
  It end() const { return {&list, n}; }
};
template <typename List>
Prefix<List> first(List list) {
  return {list, std::min<uint32_t>(list.size(), kMaxWalk)};
}

template <typename List>
void texts(List list) {
  for (auto t : first(list)) text(t);
}
template <typename List>
void numbers(List list) {
  for (auto v : first(list)) sink(static_cast<uint64_t>(v));
}

void touch(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  uint64_t sum = 0;
  for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
  sink(sum);
}

// Every tensor a MicroBatch or Result names, as the stages and the coordinator take them.
void tensors(const wire::InMessage& m, capnp::List<schema::TensorMeta>::Reader metas, const char* what) {
  for (uint32_t i = 0; i < metas.size(); ++i)
    touch(m.tensor(i, metas[i], str_cat(what, ".tensors[", i, "]")));
}

void device(schema::DeviceInfo::Reader d) {
  sink(d.getIndex() + d.getMemoryBytes() + d.getComputeUnits());
  sink(static_cast<uint64_t>(d.getGemmGflops() > 0) + static_cast<uint64_t>(d.getCopyGbps() > 0));
  text(d.getName());
  text(d.getBackend());
  text(d.getProcessor());
}

void job_request(schema::SubmitJob::Reader s) {
  text(s.getJobFile());
  texts(s.getInputs());
  JobRequest job = read_job_request(s);
  sink(job.input_paths.size() + job.name.size());
}

void register_worker(schema::Register::Reader r, const std::string& identity) {
  for (auto d : r.getDevices()) device(d);
  Worker w = WorkerRegistry::read_register(r, identity);
  WorkerRegistry workers;
  std::vector<std::string> backends;
  for (const WorkerDevice& d : w.devices) backends.push_back(d.backend);
  workers.add(std::move(w), SteadyClock::now());
  for (const std::string& b : backends) sink(workers.usable_devices(b).size());
  sink(workers.usable_devices("opencl").size() + workers.usable_devices("reference").size());
  sink(workers.live_devices(backends.front()).size());
  sink(workers.pick_backend("", "").size());
}

// AssignStage as a worker checks it (worker/worker.cpp): the weights sent along, then the graph with
// those weights resolving its external constants.
void assign_stage(const wire::InMessage& m, schema::AssignStage::Reader a) {
  sink(a.getJob() + a.getPipeline() + a.getStage() + a.getReplica() + a.getDevice());
  text(a.getBackend());
  texts(a.getNext().getEndpoints());
  auto warm = a.getWarmShapes();
  for (uint32_t i = 0; i < warm.size(); ++i) {
    DType dtype;
    Shape shape;
    wire::check_meta(warm[i], str_cat("AssignStage.warmShapes[", i, "]"), &dtype, &shape);
    sink(shape.size());
  }
  std::map<std::string, Tensor> sent;
  auto weights = a.getWeights();
  for (uint32_t i = 0; i < weights.size(); ++i) {
    auto w = weights[i];
    std::string what = str_cat("AssignStage.weights[", i, "]");
    auto hash = w.getHash();
    CONVOY_CHECK(hash.size() == 32, what, ".hash has ", hash.size(), " bytes");
    sink(w.getValueId());
    numbers(w.getShape());
    if (w.getFrame() < 0) continue;
    // The frame's bytes as the declared tensor, through the same checks a MicroBatch tensor gets.
    capnp::MallocMessageBuilder meta_message;
    auto meta = meta_message.initRoot<schema::TensorMeta>();
    meta.setDtype(w.getDtype());
    meta.setShape(w.getShape());
    meta.setBytes(m.frame_size(static_cast<uint32_t>(w.getFrame())));
    Tensor t = m.tensor(static_cast<uint32_t>(w.getFrame()), meta.asReader(), what);
    touch(t);
    sent.emplace(std::string(reinterpret_cast<const char*>(hash.begin()), hash.size()), t);
  }
  WeightResolver resolver = [&](const std::string& hash, DType dtype, const Shape& shape) {
    auto it = sent.find(hash);
    CONVOY_CHECK(it != sent.end(), "weight ", printable(hash), " was not sent");
    CONVOY_CHECK(it->second.dtype() == dtype && it->second.sizes() == shape, "weight ", printable(hash),
                 " was sent as ", dtype_name(it->second.dtype()), shape_str(it->second.sizes()));
    return it->second;
  };
  std::unique_ptr<Graph> graph = deserialize_graph(a.getGraph(), registry(), resolver);
  sink(graph->inputs().size());
}

void job_status(schema::JobStatus::Reader j) {
  sink(j.getJob() + static_cast<uint64_t>(j.getState()) + static_cast<uint64_t>(j.getSamplesDone()) +
       static_cast<uint64_t>(j.getSamplesTotal()) + static_cast<uint64_t>(j.getMicroBatchesDone()) +
       static_cast<uint64_t>(j.getMicroBatchesTotal()));
  sink(static_cast<uint64_t>(j.getSamplesPerSecond() > 0) + static_cast<uint64_t>(j.getElapsedSeconds() > 0));
  text(j.getName());
  text(j.getError());
  text(j.getOutput());
  for (auto s : first(j.getStages())) {
    sink(s.getStage());
    texts(s.getWorkers());
    text(s.getFirstOp());
    text(s.getLastOp());
  }
}

void dispatch(const wire::InMessage& m, schema::Envelope::Reader env) {
  sink(env.getRequestId());
  auto body = env.getBody();
  switch (body.which()) {
    case Body::HELLO: {
      auto h = body.getHello();
      sink(static_cast<uint64_t>(h.getRole()));
      text(h.getName());
      sink(wire::check_hello(h, opset()).size());
      return;
    }
    case Body::HELLO_REPLY: {
      auto h = body.getHelloReply();
      sink(h.getProtocolVersion() + h.getOpsetHash());
      text(h.getName());
      return;
    }
    case Body::ERROR:
      sink(static_cast<uint64_t>(body.getError().getKind()));
      text(body.getError().getMessage());
      return;
    case Body::REGISTER:
      return register_worker(body.getRegister(), m.identity());
    case Body::REGISTERED:
      sink(body.getRegistered().getWorkerId() + body.getRegistered().getHeartbeatMs());
      return;
    case Body::HEARTBEAT: {
      auto hb = body.getHeartbeat();
      sink(hb.getWorkerId() + hb.getQueued() + hb.getRssBytes());
      sink(static_cast<uint64_t>(std::isfinite(hb.getBusySeconds())));
      return;
    }
    case Body::DEREGISTER:
      sink(body.getDeregister().getWorkerId());
      text(body.getDeregister().getReason());
      return;
    case Body::ASSIGN_STAGE:
      return assign_stage(m, body.getAssignStage());
    case Body::STAGE_READY: {
      auto r = body.getStageReady();
      sink(r.getJob() + r.getPipeline() + r.getStage() + r.getReplica() + r.getWeightBytesReceived());
      for (auto h : first(r.getCachedWeights())) data(h);
      return;
    }
    case Body::RELEASE_STAGE:
      sink(body.getReleaseStage().getJob());
      return;
    case Body::MICRO_BATCH: {
      auto b = body.getMicroBatch();
      sink(b.getJob() + b.getPipeline() + b.getSeq() + b.getStage());
      tensors(m, b.getTensors(), "MicroBatch");
      for (double s : first(b.getStageSeconds())) sink(static_cast<uint64_t>(std::isfinite(s)));
      numbers(b.getRoute());
      return;
    }
    case Body::RESULT: {
      auto r = body.getResult();
      sink(r.getJob() + r.getPipeline() + r.getSeq());
      tensors(m, r.getTensors(), "Result");
      for (double s : first(r.getStageSeconds())) sink(static_cast<uint64_t>(std::isfinite(s)));
      return;
    }
    case Body::STAGE_FAILED: {
      auto f = body.getStageFailed();
      sink(f.getJob() + f.getPipeline() + f.getStage() + f.getSeq() + static_cast<uint64_t>(f.getKind()));
      text(f.getMessage());
      text(f.getUnreachable());
      return;
    }
    case Body::SUBMIT_JOB:
      return job_request(body.getSubmitJob());
    case Body::SUBMITTED:
      sink(body.getSubmitted().getJob());
      return;
    case Body::STATUS_REQUEST:
      sink(body.getStatusRequest().getJob());
      return;
    case Body::STATUS_REPLY:
      for (auto j : first(body.getStatusReply().getJobs())) job_status(j);
      return;
    case Body::CANCEL:
      sink(body.getCancel().getJob());
      return;
    case Body::CANCELLED:
      sink(body.getCancelled().getJob());
      return;
    case Body::WORKERS_REQUEST:
      return;
    case Body::WORKERS_REPLY:
      for (auto w : first(body.getWorkersReply().getWorkers())) {
        sink(w.getWorkerId() + w.getLastHeartbeatMs() + w.getRssBytes());
        text(w.getName());
        text(w.getHost());
        text(w.getDataEndpoint());
        for (auto d : first(w.getDevices())) device(d);
        texts(w.getStages());
      }
      return;
    case Body::PLAN_REQUEST:
      return job_request(body.getPlanRequest().getJob());
    case Body::PLAN_REPLY:
      text(body.getPlanReply().getText());
      return;
  }
  // A union tag this build does not know (a newer peer, or garbage): the daemons refuse it.
  sink(static_cast<uint64_t>(body.which()));
}

void free_frame(void* /*data*/, void* hint) { delete[] static_cast<uint8_t*>(hint); }

// A frame whose bytes start `misalign` bytes into an allocation of exactly misalign + size bytes.
zmq::message_t make_frame(const uint8_t* bytes, size_t size, unsigned misalign) {
  if (size == 0) return zmq::message_t();
  auto* block = new uint8_t[misalign + size];
  std::memcpy(block + misalign, bytes, size);
  return zmq::message_t(block + misalign, size, &free_frame, block);
}

uint32_t rd32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

std::vector<zmq::message_t> split_frames(const uint8_t* data, size_t size) {
  std::vector<zmq::message_t> frames;
  if (size == 0) return frames;
  const unsigned envelope_misalign = data[0] & 7, tensor_misalign = (data[0] >> 3) & 7;
  size_t pos = 1;
  while (size - pos >= 4 && frames.size() < kMaxFrames) {
    size_t len = rd32(data + pos);
    pos += 4;
    len = std::min(len, size - pos);
    frames.push_back(make_frame(data + pos, len, frames.empty() ? envelope_misalign : tensor_misalign));
    pos += len;
  }
  return frames;
}

// ---- seed corpus ---------------------------------------------------------------------------------

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string encode(wire::OutMessage& m, uint8_t flags = 0) {
  std::string out(1, static_cast<char>(flags));
  for (zmq::message_t& f : m.take_frames()) {
    put32(out, static_cast<uint32_t>(f.size()));
    out.append(static_cast<const char*>(f.data()), f.size());
  }
  return out;
}

void write_seed(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "fuzz_wire: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

void fill_job(schema::SubmitJob::Builder j) {
  j.setJobFile("/tmp/job.yaml");
  j.setModel("/proc/self/exe");  // a regular file on every machine, so the check passes
  j.initInputs(1).set(0, "/proc/self/exe");
  j.setOutput("/tmp/out.npy");
  j.setBatchSize(4);
  j.setName("seed");
  j.setBackend("reference");
  j.setMaxWorkers(2);
}

// A one-node stage (x * w) whose weight w travels as tensor frame `frame` when `external`.
void fill_stage(wire::OutMessage& m, schema::AssignStage::Builder a, bool external) {
  Graph g;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  Value* w = g.constant(IValue(Tensor::from_doubles({2, 3}, DType::kFloat32, {1, 2, 3, 4, 5, 6})));
  const OpOverload* op = registry().find("aten::mul", "Tensor");
  if (!op) fail(ErrorKind::kInternal, "no aten::mul.Tensor");
  Node* n = g.top()->append("aten::mul", {x, w}, 1, SourceRange{"code/__torch__.py", 3});
  n->op = op;
  n->outputs[0]->type = op->schema.returns[0].type;
  g.top()->returns = {n->outputs[0]};
  a.setJob(1);
  a.setBackend("reference");
  std::vector<ExternalWeight> weights;
  serialize_graph_into(g, a.initGraph(), external ? 16 : SIZE_MAX, &weights);
  auto refs = a.initWeights(static_cast<unsigned>(weights.size()));
  for (unsigned i = 0; i < weights.size(); ++i) {
    const ExternalWeight& e = weights[i];
    refs[i].setValueId(static_cast<uint32_t>(e.value_id));
    refs[i].setHash(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(e.hash.data()), e.hash.size()));
    refs[i].setDtype(static_cast<int8_t>(scalar_type_code(e.tensor.dtype())));
    auto shape = refs[i].initShape(static_cast<unsigned>(e.tensor.dim()));
    for (unsigned d = 0; d < shape.size(); ++d) shape.set(d, e.tensor.sizes()[d]);
    capnp::MallocMessageBuilder scratch;
    refs[i].setFrame(static_cast<int32_t>(m.add_tensor(e.tensor, scratch.initRoot<schema::TensorMeta>())));
  }
  a.initNext().initEndpoints(1).set(0, "tcp://127.0.0.1:40123");
  wire::set_meta(a.initWarmShapes(1)[0], DType::kFloat32, {2, 3});
}

void write_seeds(const std::string& dir) {
  auto seed = [&](const std::string& name, auto fill, uint8_t flags = 0) {
    wire::OutMessage m;
    m.envelope().setRequestId(7);
    fill(m, m.envelope().getBody());
    write_seed(dir, name, encode(m, flags));
  };
  seed("hello", [](wire::OutMessage&, Body::Builder b) {
    b.initHello().setProtocolVersion(wire::kProtocolVersion);
    b.getHello().setOpsetHash(opset());
    b.getHello().setRole(schema::Role::WORKER);
    b.getHello().setName("host:1234");
  });
  seed("hello_reply", [](wire::OutMessage&, Body::Builder b) {
    auto r = b.initHelloReply();
    r.setProtocolVersion(wire::kProtocolVersion);
    r.setOpsetHash(opset());
    r.setName("coordinator");
  });
  seed("error", [](wire::OutMessage&, Body::Builder b) {
    b.initError().setKind(schema::ErrorReply::Kind::RETRY_LATER);
    b.getError().setMessage("no workers yet");
  });
  seed("register", [](wire::OutMessage&, Body::Builder b) {
    auto r = b.initRegister();
    r.setWorkerName("w1");
    r.setHost("host");
    r.setPid(42);
    r.setDataEndpoint("tcp://127.0.0.1:40123");
    r.setThreads(2);
    auto d = r.initDevices(1)[0];
    d.setIndex(0);
    d.setName("pthread-cpu");
    d.setBackend("opencl");
    d.setMemoryBytes(1 << 30);
    d.setComputeUnits(2);
    d.setGemmGflops(10);
    d.setCopyGbps(5);
    d.setProcessor("host:cpu");
    r.initCachedWeights(1).set(
        0, capnp::Data::Reader(reinterpret_cast<const capnp::byte*>("0123456789abcdef0123456789abcdef"), 32));
  });
  seed("register_no_devices", [](wire::OutMessage&, Body::Builder b) {
    auto r = b.initRegister();
    r.setWorkerName("w2");
    r.setDataEndpoint("ipc:///tmp/w2");
  });
  seed("registered", [](wire::OutMessage&, Body::Builder b) { b.initRegistered().setWorkerId(1); });
  seed("heartbeat", [](wire::OutMessage&, Body::Builder b) {
    auto h = b.initHeartbeat();
    h.setWorkerId(1);
    h.setQueued(3);
    h.setBusySeconds(1.5);
    h.setRssBytes(1 << 20);
  });
  seed("deregister", [](wire::OutMessage&, Body::Builder b) { b.initDeregister().setReason("SIGTERM"); });
  seed("assign_stage",
       [](wire::OutMessage& m, Body::Builder b) { fill_stage(m, b.initAssignStage(), true); });
  seed("assign_stage_inline",
       [](wire::OutMessage& m, Body::Builder b) { fill_stage(m, b.initAssignStage(), false); });
  seed("stage_ready", [](wire::OutMessage&, Body::Builder b) {
    b.initStageReady().setJob(1);
    b.getStageReady().initCachedWeights(1).set(
        0, capnp::Data::Reader(reinterpret_cast<const capnp::byte*>("h"), 1));
  });
  seed("release_stage", [](wire::OutMessage&, Body::Builder b) { b.initReleaseStage().setJob(1); });
  auto micro_batch = [](wire::OutMessage& m, Body::Builder b) {
    auto mb = b.initMicroBatch();
    mb.setJob(1);
    mb.setSeq(2);
    auto metas = mb.initTensors(2);
    m.add_tensor(Tensor::from_doubles({2, 3}, DType::kFloat32, {1, 2, 3, 4, 5, 6}), metas[0]);
    m.add_tensor(Tensor::from_doubles({2}, DType::kInt64, {7, 8}), metas[1]);
    mb.initStageSeconds(1).set(0, 0.25);
    mb.initRoute(2).set(1, 1);
  };
  seed("micro_batch", micro_batch);
  seed("micro_batch_misaligned", micro_batch, 0x3b);  // envelope off by 3, tensors by 7
  seed("result", [](wire::OutMessage& m, Body::Builder b) {
    auto r = b.initResult();
    r.setJob(1);
    m.add_tensor(Tensor::from_doubles({4}, DType::kFloat64, {1, 2, 3, 4}), r.initTensors(1)[0]);
    r.initStageSeconds(2).set(0, 0.5);
  });
  seed("stage_failed", [](wire::OutMessage&, Body::Builder b) {
    auto f = b.initStageFailed();
    f.setKind(schema::StageFailed::Kind::TRANSPORT);
    f.setMessage("next stage unreachable");
    f.setUnreachable("tcp://127.0.0.1:40124");
  });
  seed("submit_job", [](wire::OutMessage&, Body::Builder b) { fill_job(b.initSubmitJob()); });
  seed("plan_request", [](wire::OutMessage&, Body::Builder b) { fill_job(b.initPlanRequest().initJob()); });
  seed("submitted", [](wire::OutMessage&, Body::Builder b) { b.initSubmitted().setJob(1); });
  seed("status_request", [](wire::OutMessage&, Body::Builder b) { b.initStatusRequest().setJob(0); });
  seed("status_reply", [](wire::OutMessage&, Body::Builder b) {
    auto j = b.initStatusReply().initJobs(1)[0];
    j.setJob(1);
    j.setName("seed");
    j.setState(schema::JobStatus::State::RUNNING);
    auto s = j.initStages(1)[0];
    s.initWorkers(1).set(0, "w1");
    s.setFirstOp("aten::mul");
  });
  seed("cancel", [](wire::OutMessage&, Body::Builder b) { b.initCancel().setJob(1); });
  seed("cancelled", [](wire::OutMessage&, Body::Builder b) { b.initCancelled().setJob(1); });
  seed("workers_request", [](wire::OutMessage&, Body::Builder b) { b.initWorkersRequest(); });
  seed("workers_reply", [](wire::OutMessage&, Body::Builder b) {
    auto w = b.initWorkersReply().initWorkers(1)[0];
    w.setName("w1");
    w.initDevices(1)[0].setName("cpu");
    w.initStages(1).set(0, "job 1 stage 0");
  });
  seed("plan_reply", [](wire::OutMessage&, Body::Builder b) { b.initPlanReply().setText("stage 0: w1"); });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  (void)opset();  // builds the registry once, outside any input's time
  g_verbose = std::getenv("CONVOY_FUZZ_WIRE_VERBOSE") != nullptr;
  if (const char* dir = std::getenv("CONVOY_FUZZ_WIRE_WRITE_SEEDS")) {
    write_seeds(dir);
    std::fprintf(stderr, "fuzz_wire: wrote the seed corpus to %s\n", dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    wire::InMessage m = wire::InMessage::from_frames(split_frames(data, size), "fuzz-peer");
    schema::Envelope::Reader env = m.envelope();
    wire::guarded("fuzz_wire", [&] { dispatch(m, env); });
  } catch (const Error& e) {  // refused: what the daemons log before dropping the message
    if (g_verbose) std::fprintf(stderr, "fuzz_wire: refused: %s\n", printable(e.what(), 400).c_str());
  } catch (const kj::Exception& e) {  // also a refusal (wire::guarded makes it an Error in the daemons)
    if (g_verbose) std::fprintf(stderr, "fuzz_wire: refused: %s\n", e.getDescription().cStr());
  }
  if (g_verbose) std::fprintf(stderr, "fuzz_wire: done\n");
  return 0;
}
