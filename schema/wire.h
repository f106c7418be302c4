// The wire layer (docs/distributed.md): ZeroMQ multipart messages whose frame 0 is a Cap'n Proto
// `Envelope` (schema/protocol.capnp) and frames 1..n raw tensor bytes, plus the glue that lets a
// Boost.Asio io_context wait on ZeroMQ sockets.
//
// Receiving never trusts the peer: the envelope is read with Cap'n Proto's traversal and nesting
// limits, and every tensor frame is checked against its TensorMeta (known dtype, non-negative shape,
// byte count = numel × itemsize = frame length) before a Tensor exists. Failures are
// convoy::Error(kInvalidInput) naming the field; daemons log them and drop the message.
#pragma once

#include <capnp/message.h>
#include <kj/exception.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "runtime/error.h"
#include "runtime/tensor.h"
#include "schema/protocol.capnp.h"

namespace boost::asio {
class io_context;
}

namespace convoy {
class OpRegistry;
}

namespace convoy::wire {

constexpr uint32_t kProtocolVersion = 1;

// Traversal limit for received envelopes, in 8-byte words (graphs of big models are large; tensor
// bytes never travel inside the envelope except small constants).
constexpr uint64_t kTraversalLimitWords = 64ull << 20;  // 512 MiB

// FNV-1a over every overload's schema text, sorted: two processes with the same hash run the same
// op set with the same signatures.
uint64_t opset_hash(const OpRegistry& registry);

// "host:pid".
std::string process_name();

// An outgoing multipart message. Tensor frames are zero-copy for contiguous tensors: ZeroMQ holds a
// reference to the tensor's storage until it has sent the bytes.
class OutMessage {
 public:
  OutMessage();
  OutMessage(OutMessage&&) noexcept;
  OutMessage& operator=(OutMessage&&) noexcept;
  ~OutMessage();

  schema::Envelope::Builder envelope();

  // Appends `tensor` as the next tensor frame (a contiguous copy first if it is not contiguous) and
  // fills `meta`. Returns its index among the tensor frames (0 = frame 1).
  uint32_t add_tensor(const Tensor& tensor, schema::TensorMeta::Builder meta);
  // Appends raw bytes as a frame (copied), e.g. a weight; returns its index among the tensor frames.
  uint32_t add_bytes(const void* data, size_t size);
  size_t tensor_frames() const;

  // Sends [identity,] envelope, tensor frames. `identity` is the routing id for a ROUTER socket.
  // Blocks only as ZeroMQ's send does (high-water mark); throws convoy::Error(kIo) on failure.
  // The message is consumed.
  void send(zmq::socket_t& socket, const std::string* identity = nullptr);
  // The frames send() would send (envelope first, no identity), for in-process delivery
  // (InMessage::from_frames) and tests. The message is consumed.
  std::vector<zmq::message_t> take_frames();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A received multipart message.
class InMessage {
 public:
  InMessage(InMessage&&) noexcept;
  InMessage& operator=(InMessage&&) noexcept;
  ~InMessage();

  // Receives one whole multipart message. `router`: the first frame is the sender's routing id.
  // `wait` false: returns nullopt at once when nothing is queued. A message whose frame 0 is not a
  // valid Envelope is still returned; envelope() then throws.
  static std::optional<InMessage> receive(zmq::socket_t& socket, bool router, bool wait);

  // Builds one from frames (tests, in-process delivery): frame 0 = envelope bytes.
  static InMessage from_frames(std::vector<zmq::message_t> frames, std::string identity = {},
                               std::string peer_key = {});

  const std::string& identity() const;
  // The sender's CURVE public key (Z85) as the socket's ZAP handler admitted it (schema/auth.h);
  // "" on a socket without CURVE.
  const std::string& peer_key() const;
  // The envelope, read with the traversal limit; throws convoy::Error(kInvalidInput) when frame 0 is
  // missing, not word-aligned in length, or not a Cap'n Proto message.
  schema::Envelope::Reader envelope() const;
  size_t tensor_frames() const;
  size_t total_bytes() const;

  // The tensor in tensor frame `index`, checked against `meta`; `what` names it in errors
  // ("MicroBatch.tensors[1]"). Zero-copy (the tensor keeps the frame alive) when the frame's data is
  // aligned for the dtype, else copied.
  Tensor tensor(uint32_t index, schema::TensorMeta::Reader meta, const std::string& what) const;
  // Raw bytes of tensor frame `index`.
  const uint8_t* frame_data(uint32_t index) const;
  size_t frame_size(uint32_t index) const;

 private:
  InMessage();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Receives every message already queued on `socket` (what an AsioZmqWatcher's on_readable must do)
// and hands each to `handle`, until none is left or `handle` returns false. A receive that throws is
// passed to `on_error` and ends it.
void receive_queued(zmq::socket_t& socket, bool router, const std::function<bool(InMessage&)>& handle,
                    const std::function<void(const std::exception&)>& on_error);

// Fills a TensorMeta without attaching a frame (e.g. AssignStage.warmShapes).
void set_meta(schema::TensorMeta::Builder meta, DType dtype, const Shape& shape);
// Checks a TensorMeta on its own (dtype known, dims ≥ 0, bytes = numel × itemsize without overflow).
void check_meta(schema::TensorMeta::Reader meta, const std::string& what, DType* dtype, Shape* shape);

// A text field of a received message: at most `max` bytes and no control characters, else
// convoy::Error(kInvalidInput) naming `field` (with the bytes escaped, runtime/printable.h).
std::string bounded_text(capnp::Text::Reader text, const std::string& field, size_t max);
// A peer's name (Hello.name, Register.workerName): 1..128 bytes of printable ASCII without spaces.
std::string peer_name_field(capnp::Text::Reader text, const std::string& field);

// Hello handling. make_hello fills an envelope's body; check_hello returns an empty string when the
// peer is compatible, else the reason ("protocol version 2, expected 1" / "op set differs ...").
void make_hello(schema::Envelope::Builder envelope, schema::Role role, uint64_t opset);
std::string check_hello(schema::Hello::Reader hello, uint64_t opset);
void make_error(schema::Envelope::Builder envelope, schema::ErrorReply::Kind kind,
                const std::string& message);

// Waits on a ZeroMQ socket from a Boost.Asio io_context through its ZMQ_FD. ZMQ_FD is
// edge-triggered: `on_readable` is called whenever the socket may have messages and must receive
// until InMessage::receive(..., wait=false) returns nullopt. Call kick() after sending on the socket
// (a send can consume the edge that announced incoming messages). The watcher never closes the fd.
class AsioZmqWatcher {
 public:
  AsioZmqWatcher(boost::asio::io_context& io, zmq::socket_t& socket, std::function<void()> on_readable);
  ~AsioZmqWatcher();
  AsioZmqWatcher(const AsioZmqWatcher&) = delete;
  AsioZmqWatcher& operator=(const AsioZmqWatcher&) = delete;
  void kick();
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Runs `fn`, turning a kj::Exception (Cap'n Proto found a malformed pointer or list while a field
// was read: `totalSize()` at receipt checks bounds, not element types) into
// convoy::Error(kInvalidInput) that names `what`. Every handler of a received message runs in one.
template <typename Fn>
auto guarded(const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const kj::Exception& e) {
    throw Error(ErrorKind::kInvalidInput, what + ": malformed message: " + e.getDescription().cStr());
  }
}

// Resident set size of this process in bytes (from /proc/self/statm).
uint64_t resident_bytes();

}  // namespace convoy::wire
