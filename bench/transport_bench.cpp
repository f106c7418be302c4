// convoy-bench-transport: activation transfer over ZeroMQ on loopback TCP, exactly as a stage sends
// a micro-batch to the next (an envelope plus a zero-copy tensor frame, received and validated into a
// zero-copy Tensor), next to a plain memcpy of the same bytes. Sender and receiver have their own
// ZeroMQ contexts, as two worker processes would. See bench/README.md.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "schema/wire.h"

using namespace convoy;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double memcpy_gbps(size_t bytes) {
  std::vector<uint8_t> a(bytes, 1), b(bytes, 0);
  std::memcpy(b.data(), a.data(), bytes);  // fault the pages in
  int reps = 0;
  auto t0 = Clock::now();
  do {
    std::memcpy(b.data(), a.data(), bytes);
    a[static_cast<size_t>(reps) % bytes] = static_cast<uint8_t>(b[bytes / 2] + 1);
    ++reps;
  } while (seconds_since(t0) < 0.3 || reps < 3);
  return static_cast<double>(bytes) * reps / seconds_since(t0) / 1e9;
}

struct Result {
  double gbps = 0;
  double latency_ms = 0;  // one message, sent and received, median of the timed ones
};

Result zmq_gbps(size_t bytes, int port) {
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  zmq::context_t receiver_ctx(1), sender_ctx(1);
  zmq::socket_t router(receiver_ctx, zmq::socket_type::router);
  router.bind(endpoint);
  zmq::socket_t ack(receiver_ctx, zmq::socket_type::pair);
  ack.bind("inproc://ack");

  // Receiver: validates each frame into a Tensor as a worker does, touches it, acknowledges.
  std::thread receiver([&] {
    zmq::socket_t done(receiver_ctx, zmq::socket_type::pair);
    done.connect("inproc://ack");
    for (;;) {
      auto m = wire::InMessage::receive(router, true, true);
      if (!m) break;
      auto mb = m->envelope().getBody().getMicroBatch();
      if (mb.getTensors().size() == 0) break;  // the stop message
      Tensor t = m->tensor(0, mb.getTensors()[0], "MicroBatch.tensors[0]");
      volatile float sink = t.data<float>()[t.numel() / 2];
      (void)sink;
      done.send(zmq::str_buffer("k"), zmq::send_flags::none);
    }
  });

  zmq::socket_t dealer(sender_ctx, zmq::socket_type::dealer);
  dealer.connect(endpoint);
  Tensor payload = Tensor::full({static_cast<int64_t>(bytes / sizeof(float))}, DType::kFloat32, 1.5);
  auto send_one = [&](uint64_t seq) {
    wire::OutMessage out;
    auto mb = out.envelope().getBody().initMicroBatch();
    mb.setSeq(seq);
    out.add_tensor(payload, mb.initTensors(1)[0]);
    out.send(dealer);
  };
  auto wait_ack = [&] {
    zmq::message_t k;
    (void)ack.recv(k);
  };

  // Latency: one message at a time (connect and warm-up first).
  std::vector<double> one;
  for (int i = 0; i < 8; ++i) {
    auto t0 = Clock::now();
    send_one(static_cast<uint64_t>(i));
    wait_ack();
    if (i >= 2) one.push_back(seconds_since(t0));
  }
  std::sort(one.begin(), one.end());

  // Throughput: a window of 4 messages in flight, as a pipeline with credits keeps it.
  constexpr int kWindow = 4;
  int sent = 0, acked = 0;
  auto t0 = Clock::now();
  while (sent < kWindow) send_one(static_cast<uint64_t>(sent++));
  while (acked < sent) {
    wait_ack();
    ++acked;
    if (seconds_since(t0) < 0.6 || sent < 8) send_one(static_cast<uint64_t>(sent++));
  }
  const double elapsed = seconds_since(t0);

  wire::OutMessage stop;
  stop.envelope().getBody().initMicroBatch();
  stop.send(dealer);
  receiver.join();
  dealer.close();
  return {static_cast<double>(bytes) * acked / elapsed / 1e9, one[one.size() / 2] * 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  double load[3] = {};
  getloadavg(load, 3);
  std::printf(
      "convoy-bench-transport: one tensor frame per micro-batch, DEALER -> ROUTER over loopback TCP\n");
  std::printf("load average at start: %.2f\n\n", load[0]);
  std::printf("%10s %14s %14s %12s %14s\n", "tensor", "zmq GB/s", "memcpy GB/s", "zmq/memcpy", "latency ms");
  int port = 47311;
  for (size_t mb : {1, 4, 16, 64}) {
    const size_t bytes = mb << 20;
    const Result r = zmq_gbps(bytes, port++);
    const double mc = memcpy_gbps(bytes);
    std::printf("%7zu MB %14.2f %14.2f %11.2fx %14.2f\n", mb, r.gbps, mc, r.gbps / mc, r.latency_ms);
  }
  getloadavg(load, 3);
  std::printf("\nload average at end: %.2f\n", load[0]);
  return 0;
}
