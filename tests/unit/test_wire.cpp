// The wire layer: envelopes and tensor frames over real ZeroMQ sockets, validation of everything a
// peer sends (garbage envelopes, lying tensor metadata, flipped bytes), the Asio watcher, and weights
// shipped by content hash apart from a stage's graph.
#include <capnp/serialize.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/ir.h"
#include "runtime/graph/serialize.h"
#include "runtime/ops/registry.h"
#include "runtime/sha256.h"
#include "schema/wire.h"

using namespace convoy;

namespace {

struct Pair {
  zmq::context_t ctx;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
  explicit Pair(const std::string& name) {
    router.bind("inproc://" + name);
    dealer.set(zmq::sockopt::routing_id, "dealer-1");
    dealer.connect("inproc://" + name);
  }
};

std::vector<zmq::message_t> frames_of(const std::vector<std::vector<uint8_t>>& parts) {
  std::vector<zmq::message_t> out;
  for (const auto& p : parts) out.emplace_back(p.data(), p.size());
  return out;
}

std::vector<uint8_t> envelope_bytes(const std::function<void(schema::Envelope::Builder)>& fill) {
  capnp::MallocMessageBuilder builder;
  fill(builder.initRoot<schema::Envelope>());
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.end()};
}

// Reads every field a daemon could read from a micro-batch; must either succeed or throw Error.
void consume_micro_batch(const wire::InMessage& m) {
  auto env = m.envelope();
  if (env.getBody().which() != schema::Envelope::Body::MICRO_BATCH) return;
  auto mb = env.getBody().getMicroBatch();
  uint32_t i = 0;
  for (auto meta : mb.getTensors()) (void)m.tensor(i++, meta, "MicroBatch.tensors");
  for (double s : mb.getStageSeconds()) (void)s;
}

}  // namespace

TEST_CASE("wire: a micro-batch crosses a socket as an envelope and zero-copy tensor frames", "[wire]") {
  Pair p("wire-roundtrip");
  Tensor a = Tensor::from_doubles({2, 3}, DType::kFloat32, {1, 2, 3, 4, 5, 6});
  Tensor strided = a.as_strided({3, 2}, {1, 3}, 0);  // a transposed view: sent as a contiguous copy
  Tensor ids = Tensor::from_ints({4}, DType::kInt64, {7, -1, 0, 1ll << 40});
  Tensor empty = Tensor::empty({0, 5}, DType::kFloat32);

  wire::OutMessage out;
  out.envelope().setRequestId(42);
  auto mb = out.envelope().getBody().initMicroBatch();
  mb.setJob(3);
  mb.setSeq(17);
  mb.setStage(1);
  auto metas = mb.initTensors(4);
  CHECK(out.add_tensor(a, metas[0]) == 0);
  CHECK(out.add_tensor(strided, metas[1]) == 1);
  CHECK(out.add_tensor(ids, metas[2]) == 2);
  CHECK(out.add_tensor(empty, metas[3]) == 3);
  mb.initStageSeconds(1).set(0, 0.25);
  out.send(p.dealer);

  auto in = wire::InMessage::receive(p.router, /*router=*/true, /*wait=*/true);
  REQUIRE(in.has_value());
  CHECK(in->identity() == "dealer-1");
  CHECK(in->tensor_frames() == 4);
  auto env = in->envelope();
  CHECK(env.getRequestId() == 42);
  REQUIRE(env.getBody().which() == schema::Envelope::Body::MICRO_BATCH);
  auto got = env.getBody().getMicroBatch();
  CHECK(got.getSeq() == 17);
  CHECK(got.getStageSeconds()[0] == 0.25);
  Tensor a2 = in->tensor(0, got.getTensors()[0], "t0");
  CHECK(a2.sizes() == Shape{2, 3});
  CHECK(a2.to_doubles() == a.to_doubles());
  // Zero copy on receive: the tensor points into the received frame.
  CHECK(a2.raw_data() == static_cast<const void*>(in->frame_data(0)));
  CHECK(in->tensor(1, got.getTensors()[1], "t1").to_doubles() == strided.to_doubles());
  CHECK(in->tensor(2, got.getTensors()[2], "t2").to_ints() == ids.to_ints());
  CHECK(in->tensor(3, got.getTensors()[3], "t3").sizes() == Shape{0, 5});

  // Nothing more is queued.
  CHECK_FALSE(wire::InMessage::receive(p.router, true, false).has_value());

  // The reply reaches the dealer without an identity frame.
  wire::OutMessage reply;
  wire::make_error(reply.envelope(), schema::ErrorReply::Kind::RETRY_LATER, "no workers yet");
  std::string id = in->identity();
  reply.send(p.router, &id);
  auto back = wire::InMessage::receive(p.dealer, false, true);
  REQUIRE(back.has_value());
  CHECK(back->envelope().getBody().getError().getKind() == schema::ErrorReply::Kind::RETRY_LATER);
  CHECK(std::string(back->envelope().getBody().getError().getMessage().cStr()) == "no workers yet");
}

TEST_CASE("wire: garbage envelopes and lying tensor metadata are errors, never crashes", "[wire]") {
  // Not a whole number of words, empty, random words.
  CHECK_THROWS_WITH(wire::InMessage::from_frames(frames_of({{1, 2, 3}})).envelope(),
                    Catch::Contains("not a whole number of 8-byte words"));
  CHECK_THROWS_AS(wire::InMessage::from_frames({}).envelope(), Error);
  std::vector<uint8_t> random_words(64);
  std::mt19937 rng(7);
  for (auto& b : random_words) b = static_cast<uint8_t>(rng());
  CHECK_THROWS_AS(wire::InMessage::from_frames(frames_of({random_words})).envelope(), Error);

  // A valid envelope whose tensor metadata lies about the frames.
  auto make = [](int8_t dtype, std::vector<int64_t> shape, uint64_t bytes) {
    return envelope_bytes([&](schema::Envelope::Builder e) {
      auto mb = e.getBody().initMicroBatch();
      auto meta = mb.initTensors(1)[0];
      meta.setDtype(dtype);
      auto s = meta.initShape(static_cast<unsigned>(shape.size()));
      for (size_t i = 0; i < shape.size(); ++i) s.set(static_cast<unsigned>(i), shape[i]);
      meta.setBytes(bytes);
    });
  };
  std::vector<uint8_t> eight_floats(32, 0);
  auto tensor_of = [&](const std::vector<uint8_t>& env, std::vector<std::vector<uint8_t>> frames) {
    frames.insert(frames.begin(), env);
    auto m = wire::InMessage::from_frames(frames_of(frames));
    return m.tensor(0, m.envelope().getBody().getMicroBatch().getTensors()[0], "MicroBatch.tensors[0]");
  };
  CHECK(tensor_of(make(6, {2, 4}, 32), {eight_floats}).numel() == 8);
  CHECK_THROWS_WITH(tensor_of(make(6, {2, 4}, 32), {}), Catch::Contains("tensor frame 0 missing"));
  CHECK_THROWS_WITH(tensor_of(make(6, {2, 4}, 28), {eight_floats}),
                    Catch::Contains("MicroBatch.tensors[0].bytes: 28"));
  CHECK_THROWS_WITH(tensor_of(make(6, {3, 4}, 48), {eight_floats}), Catch::Contains("frame of 32 bytes"));
  CHECK_THROWS_WITH(tensor_of(make(6, {-2, 4}, 32), {eight_floats}), Catch::Contains("dimension -2"));
  CHECK_THROWS_WITH(tensor_of(make(9, {8}, 64), {eight_floats}), Catch::Contains("scalar type code 9"));
  CHECK_THROWS_WITH(tensor_of(make(6, {1ll << 39, 1ll << 39}, 0), {eight_floats}),
                    Catch::Contains("too large"));

  // Every single-byte corruption of a real micro-batch envelope either reads consistently or is an
  // Error: run under ASan this also shows no read goes out of bounds.
  std::vector<uint8_t> good = make(6, {2, 4}, 32);
  size_t errors = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t flip : {0x01, 0x80, 0xff}) {
      auto bad = good;
      bad[i] ^= flip;
      auto m = wire::InMessage::from_frames(frames_of({bad, eight_floats}));
      try {
        wire::guarded("micro-batch", [&] { consume_micro_batch(m); });
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  CHECK(errors > 0);
}

TEST_CASE("wire: hello refuses another protocol version or op set with the reason", "[wire]") {
  OpRegistry registry = make_default_registry();
  const uint64_t ours = wire::opset_hash(registry);
  CHECK(ours != 0);
  CHECK(ours == wire::opset_hash(make_default_registry()));
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<schema::Envelope>();
  wire::make_hello(env, schema::Role::WORKER, ours);
  auto hello = env.getBody().getHello().asReader();
  CHECK(wire::check_hello(hello, ours).empty());
  CHECK_THAT(wire::check_hello(hello, ours ^ 1),
             Catch::Contains("op set") && Catch::Contains("same Convoy build"));
  env.getBody().getHello().setProtocolVersion(wire::kProtocolVersion + 1);
  CHECK_THAT(wire::check_hello(env.getBody().getHello().asReader(), ours),
             Catch::Contains("protocol version"));
}

TEST_CASE("wire: the Asio watcher delivers every message sent from another thread", "[wire]") {
  Pair p("wire-asio");
  boost::asio::io_context io;
  int received = 0;
  constexpr int kMessages = 2000;
  wire::AsioZmqWatcher watcher(io, p.router, [&] {
    while (auto m = wire::InMessage::receive(p.router, true, false)) {
      CHECK(m->envelope().getBody().getHeartbeat().getQueued() == static_cast<uint32_t>(received));
      if (++received == kMessages) io.stop();
    }
  });
  boost::asio::steady_timer deadline(io, std::chrono::seconds(20));
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) io.stop();
  });
  std::thread sender([&] {
    for (int i = 0; i < kMessages; ++i) {
      wire::OutMessage m;
      m.envelope().getBody().initHeartbeat().setQueued(static_cast<uint32_t>(i));
      m.send(p.dealer);
      if (i % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  io.run();
  sender.join();
  watcher.stop();
  CHECK(received == kMessages);
}

TEST_CASE("wire: weights leave the graph by content hash and come back through a resolver",
          "[wire][serialize]") {
  OpRegistry registry = make_default_registry();
  Graph g;
  Value* x = g.top()->add_param(Type::tensor(), "x");
  std::vector<double> big(3000), small(3);
  for (size_t i = 0; i < big.size(); ++i) big[i] = 0.001 * static_cast<double>(i);
  small = {1, 2, 3};
  Tensor w = Tensor::from_doubles({3000}, DType::kFloat32, big);
  Value* wv = g.constant(IValue(w));
  Value* wv2 = g.constant(IValue(w));  // the same bytes twice: one external weight
  Value* sv = g.constant(IValue(Tensor::from_doubles({3}, DType::kFloat32, small)));
  const OpOverload* add = registry.find("aten::add", "Tensor");
  REQUIRE(add != nullptr);
  Value* one = g.constant(IValue(int64_t{1}));
  Node* n1 = g.top()->append("aten::add", {x, wv, one}, 1);
  n1->op = add;
  n1->outputs[0]->type = Type::tensor();
  Node* n2 = g.top()->append("aten::add", {n1->outputs[0], wv2, one}, 1);
  n2->op = add;
  n2->outputs[0]->type = Type::tensor();
  g.top()->returns = {n2->outputs[0], sv};

  capnp::MallocMessageBuilder builder;
  std::vector<ExternalWeight> external;
  serialize_graph_into(g, builder.initRoot<schema::Graph>(), 4096, &external);
  REQUIRE(external.size() == 1);
  const auto digest = sha256(w.raw_data(), w.nbytes());
  CHECK(external[0].hash == std::string(reinterpret_cast<const char*>(digest.data()), digest.size()));
  CHECK(external[0].tensor.nbytes() == 12000);
  // The message itself no longer carries the 12 KB.
  CHECK(capnp::computeSerializedSizeInWords(builder) * 8 < 4000);

  auto reader = builder.getRoot<schema::Graph>().asReader();
  int resolved = 0;
  WeightResolver resolver = [&](const std::string& hash, DType dtype, const Shape& shape) {
    ++resolved;
    CHECK(hash == external[0].hash);
    CHECK(dtype == DType::kFloat32);
    CHECK(shape == Shape{3000});
    return external[0].tensor;
  };
  auto back = deserialize_graph(reader, registry, resolver);
  CHECK(resolved == 2);
  Tensor in = Tensor::from_doubles({3000}, DType::kFloat32, std::vector<double>(3000, 1.0));
  auto outs = ReferenceExecutor(*back).run({IValue(in)});
  CHECK(outs[0].to_tensor().get_double(10) == Approx(1.0 + 2 * 0.01));
  CHECK(outs[1].to_tensor().to_doubles() == small);

  // Without a resolver, or with one that does not know the hash or returns the wrong shape: errors.
  CHECK_THROWS_WITH(deserialize_graph(reader, registry, nullptr), Catch::Contains("no weights came with it"));
  WeightResolver unknown = [](const std::string&, DType, const Shape&) -> Tensor {
    fail(ErrorKind::kInvalidInput, "weight not in the cache");
  };
  CHECK_THROWS_WITH(deserialize_graph(reader, registry, unknown), Catch::Contains("not in the cache"));
  WeightResolver wrong = [](const std::string&, DType, const Shape&) {
    return Tensor::empty({2}, DType::kFloat32);
  };
  CHECK_THROWS_WITH(deserialize_graph(reader, registry, wrong), Catch::Contains("weight resolved for"));
}
