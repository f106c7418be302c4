// Who may talk to whom (docs/security.md): CurveZMQ key pairs, the certificate files that carry them,
// the allow-list of public keys with their roles, and the ZAP handler through which a socket's
// CURVE handshakes ask that allow-list.
//
// Certificates are the files ZeroMQ's own tools write (czmq's zcert, ZPL text): NAME holds the public
// key and NAME_secret the public and secret keys, both with a `metadata` section whose `role` says
// what the key may do. An allow-list is a folder of public certificates: any NAME.key in it admits
// its key with its role; the folder is read again when an unknown key knocks, so a key copied in takes
// effect without a restart.
//
// A message that passed the handshake carries its sender's public key (ZAP "User-Id", read by
// wire::InMessage::peer_key); the daemons look the key up again for its role on every message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

namespace convoy::auth {

enum class Role { kWorker, kClient, kAdmin, kCoordinator };
const char* role_name(Role role);
// "worker", "client", "admin", "coordinator"; nullopt for anything else.
std::optional<Role> parse_role(const std::string& text);

// Z85 text, 40 characters each (zmq_curve_keypair).
struct KeyPair {
  std::string public_key;
  std::string secret_key;  // "" for a public certificate
};

KeyPair generate_keypair();
// Whether `key` is 40 characters of Z85 that decode to 32 bytes.
bool is_z85_key(const std::string& key);

struct Certificate {
  KeyPair keys;
  std::map<std::string, std::string> metadata;  // "role" = "worker", ...
};

// Reads a certificate file; throws convoy::Error naming the file and line when it is missing, not a
// certificate, or its keys are not Z85. `need_secret`: it must carry a secret key.
Certificate read_certificate(const std::string& path, bool need_secret);
// Writes PATH (the public certificate, mode 0644) and PATH_secret (mode 0600), each through a
// temporary file and a rename, so that a reader never sees half a file.
void write_certificate(const std::string& path, const Certificate& cert);

// The conventional file names of one keys folder (docs/security.md, "Key files").
std::string public_file(const std::string& folder, const std::string& name);  // folder/name.key
std::string secret_file(const std::string& folder, const std::string& name);  // folder/name.key_secret

// `convoy-coordinator keygen` / `convoy-worker keygen`: writes DIR/NAME.key and DIR/NAME.key_secret
// for a new key pair with `role`; refuses to replace existing files. Returns the public key.
std::string keygen(const std::string& folder, const std::string& name, Role role);

// A known key: its role and where it came from (the allow-list file's name without ".key").
struct Principal {
  Role role = Role::kClient;
  std::string name;
  std::string key;  // Z85
};

// The coordinator's keys folder on first start (docs/security.md, "One machine"): when
// FOLDER/coordinator.key_secret does not exist, creates the coordinator's key pair, a local worker's
// (worker.key) and a local administrator's (client.key) in FOLDER (mode 0700), and admits the latter
// two by copying their public certificates into FOLDER/authorized/. Returns true when it created them.
bool ensure_local_keys(const std::string& folder);

// The public keys a daemon admits. Thread-safe: the ZAP thread and the daemon's loop both read it.
class AllowList {
 public:
  // Admits the keys in `folder`'s *.key files (empty: none) and those added with add().
  explicit AllowList(std::string folder = "");
  void add(Principal p);
  void remove(const std::string& key);
  // The principal of `key`; an unknown key makes it read the folder again when the folder changed
  // (or a second has passed).
  std::optional<Principal> find(const std::string& key);
  // Reads the folder now; files that are not certificates are skipped with a line in `problems`.
  void reload();
  const std::string& folder() const { return folder_; }
  std::string problems() const;

 private:
  void reload_locked();
  int64_t folder_stamp() const;
  std::string folder_;
  int64_t stamp_ = -1;
  mutable std::mutex mutex_;
  std::map<std::string, Principal> from_folder_, added_;
  std::string problems_;
  std::chrono::steady_clock::time_point last_read_{};
};

// A ZAP handler (RFC 27) on `ctx`: binds inproc://zeromq.zap.01 and answers every CURVE handshake
// of the context's server sockets on a thread of its own: 200 with User-Id = the client's Z85 public
// key when `allowed` knows it, 400 otherwise. Refusals are counted and described (peer address and
// key) for the daemon to log from its own thread: take_refusals().
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& ctx, std::shared_ptr<AllowList> allowed);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;
  uint64_t refused() const { return refused_.load(); }
  // One line per refusal since the last call (at most 20 kept, then "and N more").
  std::vector<std::string> take_refusals();

 private:
  void serve();
  zmq::socket_t socket_;
  std::shared_ptr<AllowList> allowed_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> refused_{0};
  std::mutex mutex_;
  std::vector<std::string> refusals_;
  uint64_t unlisted_ = 0;
  std::thread thread_;
};

// Socket roles. make_server: the socket accepts CURVE clients (its ZAP handler decides which).
// make_client: it connects as `own` to a server whose public key is `server_key`.
void make_server(zmq::socket_t& socket, const KeyPair& own);
void make_client(zmq::socket_t& socket, const KeyPair& own, const std::string& server_key);

// A short form of a key for logs: its first 8 characters.
std::string short_key(const std::string& key);

}  // namespace convoy::auth
