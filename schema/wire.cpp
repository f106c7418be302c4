#include "schema/wire.h"

#include <capnp/serialize.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/error.h"
#include "runtime/ops/registry.h"
#include "runtime/printable.h"

namespace convoy::wire {

uint64_t opset_hash(const OpRegistry& registry) {
  return std::strtoull(registry.opset_hash().c_str(), nullptr, 16);
}

std::string process_name() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "unknown");
  return str_cat(host, ":", getpid());
}

uint64_t resident_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// ---------------------------------------------------------------------------------------------------
// Tensor metadata

void set_meta(schema::TensorMeta::Builder meta, DType dtype, const Shape& shape) {
  meta.setDtype(static_cast<int8_t>(scalar_type_code(dtype)));
  auto dims = meta.initShape(static_cast<unsigned>(shape.size()));
  for (size_t i = 0; i < shape.size(); ++i) dims.set(static_cast<unsigned>(i), shape[i]);
  meta.setBytes(static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype));
}

void check_meta(schema::TensorMeta::Reader meta, const std::string& what, DType* dtype, Shape* shape) {
  try {
    *dtype = dtype_from_scalar_type(meta.getDtype());
  } catch (const Error&) {
    fail(ErrorKind::kInvalidInput, what, ".dtype: unsupported scalar type code ",
         static_cast<int>(meta.getDtype()));
  }
  auto dims = meta.getShape();
  CONVOY_CHECK(dims.size() <= 16, what, ".shape: ", dims.size(), " dimensions (at most 16)");
  shape->clear();
  unsigned __int128 bytes = dtype_size(*dtype);
  for (int64_t d : dims) {
    CONVOY_CHECK(d >= 0 && d < (int64_t{1} << 40), what, ".shape: dimension ", d, " out of range");
    shape->push_back(d);
    bytes *= static_cast<unsigned __int128>(d);
    CONVOY_CHECK(bytes < (static_cast<unsigned __int128>(1) << 48), what, ".shape: ", shape_str(*shape),
                 " is too large");
  }
  CONVOY_CHECK(bytes == meta.getBytes(), what, ".bytes: ", meta.getBytes(), " but ", dtype_name(*dtype),
               shape_str(*shape), " is ", static_cast<uint64_t>(bytes), " bytes");
}

std::string bounded_text(capnp::Text::Reader text, const std::string& field, size_t max) {
  std::string v(text.cStr(), text.size());
  CONVOY_CHECK(v.size() <= max, field, " has ", v.size(), " bytes (at most ", max, ")");
  for (unsigned char c : v)
    CONVOY_CHECK(c >= 0x20 && c != 0x7f, field, " '", printable(v), "' holds control characters");
  return v;
}

std::string peer_name_field(capnp::Text::Reader text, const std::string& field) {
  std::string v(text.cStr(), text.size());
  CONVOY_CHECK(!v.empty() && v.size() <= 128, field, " has ", v.size(), " bytes (1 to 128)");
  for (unsigned char c : v)
    CONVOY_CHECK(c > 0x20 && c < 0x7f, field, " '", printable(v),
                 "' may hold only printable ASCII without spaces");
  return v;
}

// ---------------------------------------------------------------------------------------------------
// Outgoing messages

struct OutMessage::Impl {
  capnp::MallocMessageBuilder builder;
  std::vector<zmq::message_t> frames;  // tensor frames
};

OutMessage::OutMessage() : impl_(std::make_unique<Impl>()) {}
OutMessage::OutMessage(OutMessage&&) noexcept = default;
OutMessage& OutMessage::operator=(OutMessage&&) noexcept = default;
OutMessage::~OutMessage() = default;

schema::Envelope::Builder OutMessage::envelope() { return impl_->builder.getRoot<schema::Envelope>(); }

namespace {
void release_storage(void* /*data*/, void* hint) { delete static_cast<std::shared_ptr<Storage>*>(hint); }
}  // namespace

uint32_t OutMessage::add_tensor(const Tensor& tensor, schema::TensorMeta::Builder meta) {
  CONVOY_ASSERT(tensor.defined(), "sending an undefined tensor");
  Tensor c = tensor.contiguous();
  set_meta(meta, c.dtype(), c.sizes());
  const size_t n = c.nbytes();
  if (n == 0) {
    impl_->frames.emplace_back();
  } else {
    // Zero copy: ZeroMQ sends straight from the tensor's storage and drops the reference when done
    // (possibly from its I/O thread).
    auto* hold = new std::shared_ptr<Storage>(c.storage());
    impl_->frames.emplace_back(c.raw_data(), n, &release_storage, hold);
  }
  return static_cast<uint32_t>(impl_->frames.size() - 1);
}

uint32_t OutMessage::add_bytes(const void* data, size_t size) {
  impl_->frames.emplace_back(data, size);
  return static_cast<uint32_t>(impl_->frames.size() - 1);
}

size_t OutMessage::tensor_frames() const { return impl_->frames.size(); }

void OutMessage::send(zmq::socket_t& socket, const std::string* identity) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(impl_->builder);
  auto bytes = words.asBytes();
  try {
    // Once the first frame of a multipart is accepted, ZeroMQ accepts the rest (it is queued
    // atomically); only the first can fail with EAGAIN (a send timeout or ZMQ_DONTWAIT at the
    // high-water mark), and then nothing has been sent.
    bool first = true;
    auto send_part = [&](zmq::message_t& part, bool more) {
      const auto sent = socket.send(part, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
      if (!sent) {
        fail(ErrorKind::kIo, first ? "zmq send: the peer's queue is full (high-water mark); nothing was sent"
                                   : "zmq send: a multipart message was cut short");
      }
      first = false;
    };
    zmq::message_t envelope(bytes.begin(), bytes.size());
    if (identity) {
      zmq::message_t id(identity->data(), identity->size());
      send_part(id, true);
    }
    send_part(envelope, !impl_->frames.empty());
    for (size_t i = 0; i < impl_->frames.size(); ++i)
      send_part(impl_->frames[i], i + 1 < impl_->frames.size());
  } catch (const zmq::error_t& e) {
    fail(ErrorKind::kIo, "zmq send: ", e.what());
  }
  impl_->frames.clear();
}

std::vector<zmq::message_t> OutMessage::take_frames() {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(impl_->builder);
  auto bytes = words.asBytes();
  std::vector<zmq::message_t> out;
  out.emplace_back(bytes.begin(), bytes.size());
  for (zmq::message_t& f : impl_->frames) out.push_back(std::move(f));
  impl_->frames.clear();
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Incoming messages

struct InMessage::Impl {
  std::string identity;
  std::string peer_key;
  std::vector<std::shared_ptr<zmq::message_t>> frames;  // [0] = envelope
  kj::Array<capnp::word> words;                         // aligned copy of frame 0, when needed
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  std::string parse_error;
  bool parsed = false;
};

InMessage::InMessage() : impl_(std::make_unique<Impl>()) {}
InMessage::InMessage(InMessage&&) noexcept = default;
InMessage& InMessage::operator=(InMessage&&) noexcept = default;
InMessage::~InMessage() = default;

std::optional<InMessage> InMessage::receive(zmq::socket_t& socket, bool router, bool wait) {
  std::vector<zmq::message_t> frames;
  try {
    zmq::message_t first;
    if (!socket.recv(first, wait ? zmq::recv_flags::none : zmq::recv_flags::dontwait)) return std::nullopt;
    bool more = first.more();
    frames.push_back(std::move(first));
    while (more) {
      zmq::message_t part;
      // The rest of a multipart message is already queued: ZeroMQ delivers it atomically.
      if (!socket.recv(part, zmq::recv_flags::none)) break;
      more = part.more();
      frames.push_back(std::move(part));
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM || e.num() == EINTR) return std::nullopt;
    fail(ErrorKind::kIo, "zmq receive: ", e.what());
  }
  std::string identity;
  if (router) {
    identity = frames.front().to_string();
    frames.erase(frames.begin());
  }
  std::string key;
  if (!frames.empty())
    if (const char* user = zmq_msg_gets(frames.front().handle(), "User-Id")) key = user;
  return from_frames(std::move(frames), std::move(identity), std::move(key));
}

void receive_queued(zmq::socket_t& socket, bool router, const std::function<bool(InMessage&)>& handle,
                    const std::function<void(const std::exception&)>& on_error) {
  for (;;) {
    std::optional<InMessage> m;
    try {
      m = InMessage::receive(socket, router, false);
    } catch (const std::exception& e) {
      on_error(e);
      return;
    }
    if (!m || !handle(*m)) return;
  }
}

InMessage InMessage::from_frames(std::vector<zmq::message_t> frames, std::string identity,
                                 std::string peer_key) {
  InMessage m;
  m.impl_->identity = std::move(identity);
  m.impl_->peer_key = std::move(peer_key);
  for (auto& f : frames) m.impl_->frames.push_back(std::make_shared<zmq::message_t>(std::move(f)));
  return m;
}

const std::string& InMessage::identity() const { return impl_->identity; }
const std::string& InMessage::peer_key() const { return impl_->peer_key; }

schema::Envelope::Reader InMessage::envelope() const {
  Impl& m = *impl_;
  if (!m.parsed) {
    m.parsed = true;
    try {
      CONVOY_CHECK(!m.frames.empty(), "message has no envelope frame");
      const zmq::message_t& f = *m.frames[0];
      CONVOY_CHECK(f.size() >= sizeof(capnp::word) && f.size() % sizeof(capnp::word) == 0,
                   "envelope frame of ", f.size(), " bytes is not a whole number of 8-byte words");
      kj::ArrayPtr<const capnp::word> words;
      if (reinterpret_cast<uintptr_t>(f.data()) % alignof(capnp::word) == 0) {
        words = kj::arrayPtr(static_cast<const capnp::word*>(f.data()), f.size() / sizeof(capnp::word));
      } else {
        m.words = kj::heapArray<capnp::word>(f.size() / sizeof(capnp::word));
        std::memcpy(m.words.begin(), f.data(), f.size());
        words = m.words.asPtr();
      }
      capnp::ReaderOptions options;
      options.traversalLimitInWords = kTraversalLimitWords;
      options.nestingLimit = 64;
      m.reader = std::make_unique<capnp::FlatArrayMessageReader>(words, options);
      // Walk the whole message once: every pointer is bounds-checked here, so later field reads of a
      // malformed message cannot fail half-way through a handler.
      (void)m.reader->getRoot<schema::Envelope>().totalSize();
    } catch (const Error& e) {
      m.reader.reset();
      m.parse_error = e.what();
    } catch (const kj::Exception& e) {
      m.reader.reset();
      m.parse_error = str_cat("malformed Cap'n Proto envelope: ", e.getDescription().cStr());
    }
  }
  if (!m.reader) fail(ErrorKind::kInvalidInput, m.parse_error);
  return m.reader->getRoot<schema::Envelope>();
}

size_t InMessage::tensor_frames() const { return impl_->frames.empty() ? 0 : impl_->frames.size() - 1; }

size_t InMessage::total_bytes() const {
  size_t n = 0;
  for (const auto& f : impl_->frames) n += f->size();
  return n;
}

const uint8_t* InMessage::frame_data(uint32_t index) const {
  CONVOY_CHECK(index < tensor_frames(), "tensor frame ", index, " missing (message has ", tensor_frames(),
               ")");
  return static_cast<const uint8_t*>(impl_->frames[index + 1]->data());
}

size_t InMessage::frame_size(uint32_t index) const {
  CONVOY_CHECK(index < tensor_frames(), "tensor frame ", index, " missing (message has ", tensor_frames(),
               ")");
  return impl_->frames[index + 1]->size();
}

Tensor InMessage::tensor(uint32_t index, schema::TensorMeta::Reader meta, const std::string& what) const {
  DType dtype;
  Shape shape;
  guarded(what, [&] { check_meta(meta, what, &dtype, &shape); });
  CONVOY_CHECK(index < tensor_frames(), what, ": tensor frame ", index, " missing (message has ",
               tensor_frames(), ")");
  const std::shared_ptr<zmq::message_t>& frame = impl_->frames[index + 1];
  CONVOY_CHECK(frame->size() == meta.getBytes(), what, ": frame of ", frame->size(), " bytes for ",
               dtype_name(dtype), shape_str(shape), " (", meta.getBytes(), " bytes)");
  auto* data = static_cast<uint8_t*>(frame->data());
  if (frame->size() == 0) return Tensor::empty(shape, dtype);
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(dtype) != 0) {
    Tensor copy = Tensor::empty(shape, dtype);
    std::memcpy(copy.raw_data(), data, frame->size());
    return copy;
  }
  auto storage = std::make_shared<Storage>(std::shared_ptr<void>(frame), data, frame->size());
  return Tensor::from_storage(std::move(storage), dtype, shape, contiguous_strides(shape), 0, what);
}

// ---------------------------------------------------------------------------------------------------
// Hello and errors

void make_hello(schema::Envelope::Builder envelope, schema::Role role, uint64_t opset) {
  auto hello = envelope.getBody().initHello();
  hello.setProtocolVersion(kProtocolVersion);
  hello.setOpsetHash(opset);
  hello.setRole(role);
  hello.setName(process_name());
}

std::string check_hello(schema::Hello::Reader hello, uint64_t opset) {
  if (hello.getProtocolVersion() != kProtocolVersion)
    return str_cat("protocol version ", hello.getProtocolVersion(), " from ", hello.getName().cStr(),
                   ", this side speaks ", kProtocolVersion);
  if (hello.getOpsetHash() != opset) {
    char theirs[17], ours[17];
    std::snprintf(theirs, sizeof(theirs), "%016llx", static_cast<unsigned long long>(hello.getOpsetHash()));
    std::snprintf(ours, sizeof(ours), "%016llx", static_cast<unsigned long long>(opset));
    return str_cat("op set ", theirs, " from ", hello.getName().cStr(), " differs from this side's ", ours,
                   ": both must run the same Convoy build");
  }
  return "";
}

void make_error(schema::Envelope::Builder envelope, schema::ErrorReply::Kind kind,
                const std::string& message) {
  auto error = envelope.getBody().initError();
  error.setKind(kind);
  error.setMessage(message);
}

// ---------------------------------------------------------------------------------------------------
// Asio glue

struct AsioZmqWatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, zmq::socket_t& socket, std::function<void()> on_readable)
      : io(io), socket(socket), on_readable(std::move(on_readable)), fd(io), backstop(io) {}

  boost::asio::io_context& io;
  zmq::socket_t& socket;
  std::function<void()> on_readable;
  boost::asio::posix::stream_descriptor fd;
  boost::asio::steady_timer backstop;
  bool stopped = false;
  bool waiting = false;

  void drain() {
    // ZMQ_EVENTS both reports readiness and consumes the edge on ZMQ_FD: keep going until it says
    // nothing is queued, then wait for the next edge.
    while (!stopped) {
      int events = 0;
      try {
        events = socket.get(zmq::sockopt::events);
      } catch (const zmq::error_t&) {
        return;  // context terminated
      }
      if (!(events & ZMQ_POLLIN)) break;
      on_readable();
    }
    arm();
  }

  void arm() {
    if (stopped || waiting) return;
    waiting = true;
    fd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [self = shared_from_this()](const boost::system::error_code& ec) {
                    self->waiting = false;
                    if (ec || self->stopped) return;
                    self->drain();
                  });
  }

  // An edge that arrives between the last ZMQ_EVENTS check and the re-armed wait is not reported
  // again; this timer bounds the delay such a lost edge could cause.
  void arm_backstop() {
    backstop.expires_after(std::chrono::milliseconds(50));
    backstop.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      self->drain();
      self->arm_backstop();
    });
  }
};

AsioZmqWatcher::AsioZmqWatcher(boost::asio::io_context& io, zmq::socket_t& socket,
                               std::function<void()> on_readable)
    : impl_(std::make_shared<Impl>(io, socket, std::move(on_readable))) {
  impl_->fd.assign(socket.get(zmq::sockopt::fd));
  boost::asio::post(io, [impl = impl_] { impl->drain(); });
  impl_->arm_backstop();
}

AsioZmqWatcher::~AsioZmqWatcher() { stop(); }

void AsioZmqWatcher::kick() {
  if (impl_->stopped) return;
  boost::asio::post(impl_->io, [impl = impl_] {
    if (!impl->stopped) impl->drain();
  });
}

void AsioZmqWatcher::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ignored;
  impl_->backstop.cancel();
  impl_->fd.cancel(ignored);
  impl_->fd.release();  // ZeroMQ owns the descriptor
}

}  // namespace convoy::wire
