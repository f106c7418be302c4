#include "coordinator/client.h"

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

CoordinatorClient::CoordinatorClient(const std::string& endpoint, std::chrono::milliseconds timeout)
    : endpoint_(endpoint), timeout_(timeout), socket_(ctx_, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
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
    zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, left);
    if (!(item.revents & ZMQ_POLLIN)) continue;
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
