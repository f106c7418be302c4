#include "coordinator/client.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "runtime/ops/registry.h"

namespace convoy {

const char* error_reply_kind_name(schema::ErrorReply::Kind kind) {
  using K = schema::ErrorReply::Kind;
  switch (kind) {
    case K::BAD_REQUEST:
      return "bad request";
    case K::VERSION_MISMATCH:
      return "version mismatch";
    case K::NOT_FOUND:
      return "not found";
    case K::RETRY_LATER:
      return "retry later";
    case K::INTERNAL:
      return "internal error";
    case K::MISSING_WEIGHTS:
      return "missing weights";
    case K::REFUSED:
      return "refused";
  }
  return "error";
}

std::string default_client_keys_dir() {
  if (const char* dir = std::getenv("CONVOY_KEYS"); dir && *dir) return dir;
  const char* home = std::getenv("HOME");
  CONVOY_CHECK(home && *home, "HOME is not set: name the client's keys folder with --keys or CONVOY_KEYS");
  return std::string(home) + "/.local/state/convoy/keys";
}

ClientKeys load_client_keys(const std::string& folder) {
  std::string secret = auth::secret_file(folder, "client"), server = auth::public_file(folder, "coordinator");
  for (const std::string& f : {secret, server})
    CONVOY_CHECK_KIND(kIo, std::filesystem::exists(f), f,
                      " not found: a coordinator writes its keys there on first start; from another host, "
                      "copy them as docs/security.md says (or give --keys DIR; --insecure for an insecure "
                      "cluster)");
  ClientKeys k;
  k.own = auth::read_certificate(secret, true).keys;
  k.server_key = auth::read_certificate(server, false).keys.public_key;
  return k;
}

CoordinatorClient::CoordinatorClient(const std::string& endpoint, const ClientKeys& keys,
                                     std::chrono::milliseconds timeout)
    : endpoint_(endpoint),
      timeout_(timeout),
      socket_(ctx_, zmq::socket_type::dealer),
      monitor_(ctx_, zmq::socket_type::pair) {
  socket_.set(zmq::sockopt::linger, 0);
  if (!keys.insecure) {
    auth::make_client(socket_, keys.own, keys.server_key);
    own_key_ = keys.own.public_key;
    std::string name = "inproc://monitor-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    CONVOY_CHECK_KIND(
        kInternal,
        zmq_socket_monitor(socket_.handle(), name.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0,
        "zmq_socket_monitor: ", zmq_strerror(zmq_errno()));
    monitor_.set(zmq::sockopt::linger, 0);
    monitor_.connect(name);
  }
  try {
    socket_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    fail(ErrorKind::kInvalidInput, "coordinator endpoint '", endpoint, "': ", e.what());
  }
}

CoordinatorClient::~CoordinatorClient() = default;

wire::InMessage CoordinatorClient::exchange(wire::OutMessage request, uint64_t id) {
  request.envelope().setRequestId(id);
  request.send(socket_);
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      fail(ErrorKind::kIo, "no answer from the coordinator at ", endpoint_, " within ",
           timeout_.count() / 1000.0, " s (is `convoy-coordinator serve` running there?)");
    zmq::pollitem_t items[2] = {{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0},
                                {static_cast<void*>(monitor_), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, own_key_.empty() ? 1 : 2, left);
    if (items[1].revents & ZMQ_POLLIN) check_handshake();
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::optional<wire::InMessage> reply = wire::InMessage::receive(socket_, false, false);
    if (!reply) continue;
    auto env = reply->envelope();
    if (env.getRequestId() != id) continue;  // a late answer to an earlier, timed-out request
    if (env.getBody().which() == schema::Envelope::Body::ERROR) {
      auto e = env.getBody().getError();
      throw RemoteError(e.getKind(), std::string(e.getMessage().cStr()));
    }
    return std::move(*reply);
  }
}

void CoordinatorClient::check_handshake() {
  zmq::message_t event, address;
  if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
  if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::none);
  uint16_t code = 0;
  if (event.size() >= 2) std::memcpy(&code, event.data(), 2);
  if (code == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
    fail(ErrorKind::kIo, "the coordinator at ", endpoint_, " refused this client's key ", own_key_,
         ": it is not in the coordinator's allow-list (keys_dir/authorized; docs/security.md)");
  fail(ErrorKind::kIo, "the CURVE handshake with the coordinator at ", endpoint_,
       " failed: its public key is not the one in this client's keys folder, or it runs without CURVE "
       "(insecure: true; then use --insecure)");
}

wire::InMessage CoordinatorClient::call(wire::OutMessage request) {
  if (!greeted_) greet();
  return exchange(std::move(request), next_id_++);
}

void CoordinatorClient::greet() {
  OpRegistry registry = make_default_registry();
  wire::OutMessage hello;
  wire::make_hello(hello.envelope(), schema::Role::CLIENT, wire::opset_hash(registry));
  wire::InMessage reply = exchange(std::move(hello), next_id_++);
  if (reply.envelope().getBody().which() != schema::Envelope::Body::HELLO_REPLY)
    fail(ErrorKind::kIo, "the coordinator at ", endpoint_, " did not answer hello with helloReply");
  greeted_ = true;
}

}  // namespace convoy
