// The CLI's side of the control socket: a DEALER connected to the coordinator that says hello once
// and then sends requests and waits for the reply carrying the same requestId.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtime/error.h"
#include "schema/auth.h"
#include "schema/wire.h"

namespace convoy {

constexpr const char* kDefaultCoordinator = "tcp://127.0.0.1:7700";

// An ErrorReply from the coordinator, with its kind.
class RemoteError : public Error {
 public:
  RemoteError(schema::ErrorReply::Kind kind, const std::string& message)
      : Error(ErrorKind::kInvalidInput, message), reply_kind_(kind) {}
  schema::ErrorReply::Kind reply_kind() const { return reply_kind_; }

 private:
  schema::ErrorReply::Kind reply_kind_;
};

const char* error_reply_kind_name(schema::ErrorReply::Kind kind);

// A client's CURVE identity: its key pair and the coordinator's public key (docs/security.md).
struct ClientKeys {
  bool insecure = false;  // plain text, for a coordinator with `insecure: true`
  auth::KeyPair own;
  std::string server_key;
};
// $CONVOY_KEYS, else ~/.local/state/convoy/keys: where the coordinator writes its keys on first start.
std::string default_client_keys_dir();
// FOLDER/client.key_secret and FOLDER/coordinator.key; an error that says where they come from when
// they are missing.
ClientKeys load_client_keys(const std::string& folder);

class CoordinatorClient {
 public:
  // Connects (ZeroMQ connects lazily: an absent coordinator shows as a timeout on the first call; a
  // coordinator that refuses the key, as an error saying so).
  CoordinatorClient(const std::string& endpoint, const ClientKeys& keys,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~CoordinatorClient();
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  // Sends `request` (its requestId is set here) and returns the reply. Throws RemoteError for an
  // ErrorReply, convoy::Error(kIo) when no reply comes within the timeout.
  wire::InMessage call(wire::OutMessage request);

  const std::string& endpoint() const { return endpoint_; }
  // The next call says hello first (a restarted coordinator knows no earlier peer).
  void forget_greeting() { greeted_ = false; }

 private:
  wire::InMessage exchange(wire::OutMessage request, uint64_t id);
  void greet();
  // Throws when the socket monitor reports a failed CURVE handshake.
  void check_handshake();

  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  zmq::socket_t monitor_;  // handshake failures of socket_
  std::string own_key_;
  uint64_t next_id_ = 1;
  bool greeted_ = false;
};

}  // namespace convoy
