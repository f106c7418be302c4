#include "schema/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace convoy::auth {

namespace fs = std::filesystem;

const char* role_name(Role role) {
  switch (role) {
    case Role::kWorker:
      return "worker";
    case Role::kClient:
      return "client";
    case Role::kAdmin:
      return "admin";
    case Role::kCoordinator:
      return "coordinator";
  }
  return "?";
}

std::optional<Role> parse_role(const std::string& text) {
  for (Role r : {Role::kWorker, Role::kClient, Role::kAdmin, Role::kCoordinator})
    if (text == role_name(r)) return r;
  return std::nullopt;
}

KeyPair generate_keypair() {
  char pub[41] = {}, sec[41] = {};
  CONVOY_CHECK_KIND(kInternal, zmq_curve_keypair(pub, sec) == 0,
                    "cannot make a CURVE key pair: ", zmq_strerror(zmq_errno()),
                    " (this libzmq was built without CURVE)");
  return KeyPair{pub, sec};
}

bool is_z85_key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, key.c_str()) != nullptr;
}

std::string short_key(const std::string& key) { return key.substr(0, 8); }

std::string public_file(const std::string& folder, const std::string& name) {
  return (fs::path(folder) / (name + ".key")).string();
}
std::string secret_file(const std::string& folder, const std::string& name) {
  return (fs::path(folder) / (name + ".key_secret")).string();
}

// --- certificate files ---------------------------------------------------------------------------

Certificate read_certificate(const std::string& path, bool need_secret) {
  std::ifstream in(path);
  CONVOY_CHECK_KIND(kIo, in.good(), path, ": cannot read the key file: ", std::strerror(errno));
  Certificate cert;
  std::string line, section;
  int number = 0;
  while (std::getline(in, line) && number < 1000) {
    ++number;
    if (line.size() > 1024) fail(ErrorKind::kInvalidInput, path, ":", number, ": line too long");
    size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos || line[indent] == '#') continue;
    std::string text = line.substr(indent);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
    if (indent == 0) {
      section = text;
      continue;
    }
    size_t eq = text.find('=');
    CONVOY_CHECK(eq != std::string::npos, path, ":", number, ": expected NAME = \"VALUE\", not '", text, "'");
    std::string name = text.substr(0, eq), value = text.substr(eq + 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    size_t v = value.find_first_not_of(' ');
    value = v == std::string::npos ? "" : value.substr(v);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    if (section == "curve" && name == "public-key") {
      cert.keys.public_key = value;
    } else if (section == "curve" && name == "secret-key") {
      cert.keys.secret_key = value;
    } else if (section == "metadata") {
      cert.metadata[name] = value;
    }
  }
  CONVOY_CHECK(is_z85_key(cert.keys.public_key), path,
               ": no valid curve public-key (a ZeroMQ certificate: `convoy-coordinator keygen` writes one)");
  if (need_secret)
    CONVOY_CHECK(
        is_z85_key(cert.keys.secret_key), path,
        ": no valid curve secret-key (this is a public certificate; the secret one is NAME.key_secret)");
  return cert;
}

namespace {

std::string generated_line() {
  std::time_t now = std::time(nullptr);
  char when[32] = {};
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::gmtime(&now));
  return std::string("#   ****  Generated on ") + when + " by Convoy  ****\n";
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp" + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  CONVOY_CHECK_KIND(kIo, fd >= 0, tmp, ": cannot write: ", std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fchmod(fd, mode) == 0 && ok;
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (ok) ok = ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(ErrorKind::kIo, path, ": cannot write: ", std::strerror(err));
  }
}

std::string metadata_text(const Certificate& cert) {
  std::string out = "metadata\n";
  for (const auto& [k, v] : cert.metadata) out += "    " + k + " = \"" + v + "\"\n";
  return out;
}

}  // namespace

void write_certificate(const std::string& path, const Certificate& cert) {
  CONVOY_CHECK(is_z85_key(cert.keys.public_key) && is_z85_key(cert.keys.secret_key), path,
               ": not a CURVE key pair");
  std::string pub = generated_line() +
                    "#   ZeroMQ CURVE Public Certificate\n"
                    "#   Exchange securely, or use a secure mechanism to verify the contents\n"
                    "#   of this file after exchange.\n\n" +
                    metadata_text(cert) + "curve\n    public-key = \"" + cert.keys.public_key + "\"\n";
  std::string sec = generated_line() +
                    "#   ZeroMQ CURVE **Secret** Certificate\n"
                    "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n" +
                    metadata_text(cert) + "curve\n    public-key = \"" + cert.keys.public_key +
                    "\"\n    secret-key = \"" + cert.keys.secret_key + "\"\n";
  write_file(path + "_secret", sec, 0600);
  write_file(path, pub, 0644);
}

namespace {

void make_private_folder(const std::string& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  CONVOY_CHECK_KIND(kIo, !ec, folder, ": cannot create the keys folder: ", ec.message());
  ::chmod(folder.c_str(), 0700);
}

}  // namespace

std::string keygen(const std::string& folder, const std::string& name, Role role) {
  CONVOY_CHECK(
      !name.empty() && name.size() <= 64 &&
          name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
              std::string::npos &&
          name[0] != '.',
      "key name '", name, "': use 1-64 letters, digits, '.', '_' or '-'");
  make_private_folder(folder);
  std::string pub = public_file(folder, name);
  for (const std::string& p : {pub, pub + "_secret"})
    CONVOY_CHECK(!fs::exists(p), p, " exists already: keygen never replaces a key (remove it first)");
  Certificate cert{generate_keypair(), {{"role", role_name(role)}}};
  write_certificate(pub, cert);
  return cert.keys.public_key;
}

bool ensure_local_keys(const std::string& folder) {
  if (fs::exists(secret_file(folder, "coordinator"))) return false;
  make_private_folder(folder);
  std::string authorized = (fs::path(folder) / "authorized").string();
  make_private_folder(authorized);
  // The local worker's and client's pairs first, the coordinator's last: a worker waiting for
  // coordinator.key finds its own key and the coordinator admitting it once that file appears.
  for (auto [name, role] : {std::pair{"worker", Role::kWorker}, std::pair{"client", Role::kAdmin}}) {
    Certificate cert{generate_keypair(), {{"role", role_name(role)}}};
    write_certificate(public_file(folder, name), cert);
    write_certificate(public_file(authorized, std::string("local-") + name), cert);
    fs::remove(
        secret_file(authorized, std::string("local-") + name));  // the allow-list holds public keys only
  }
  Certificate coordinator{generate_keypair(), {{"role", "coordinator"}}};
  write_certificate(public_file(folder, "coordinator"), coordinator);
  return true;
}

// --- allow-list ----------------------------------------------------------------------------------

AllowList::AllowList(std::string folder) : folder_(std::move(folder)) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!folder_.empty()) reload_locked();
}

void AllowList::add(Principal p) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = p.key;
  added_[key] = std::move(p);
}

void AllowList::remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  added_.erase(key);
}

std::optional<Principal> AllowList::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = added_.find(key); it != added_.end()) return it->second;
  if (auto it = from_folder_.find(key); it != from_folder_.end()) return it->second;
  if (!folder_.empty() &&
      (folder_stamp() != stamp_ || std::chrono::steady_clock::now() - last_read_ > std::chrono::seconds(1))) {
    reload_locked();
    if (auto it = from_folder_.find(key); it != from_folder_.end()) return it->second;
  }
  return std::nullopt;
}

void AllowList::reload() {
  std::lock_guard<std::mutex> lock(mutex_);
  reload_locked();
}

std::string AllowList::problems() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return problems_;
}

// The folder's modification time: a file added or removed changes it, so a key copied in is admitted
// by the very next handshake.
int64_t AllowList::folder_stamp() const {
  struct stat st {};
  if (::stat(folder_.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void AllowList::reload_locked() {
  last_read_ = std::chrono::steady_clock::now();
  stamp_ = folder_stamp();
  std::map<std::string, Principal> keys;
  std::string problems;
  std::error_code ec;
  size_t seen = 0;
  for (fs::directory_iterator it(folder_, ec), end; !ec && it != end && seen < 10000;
       it.increment(ec), ++seen) {
    std::string file = it->path().filename().string();
    if (it->path().extension() != ".key") continue;
    try {
      Certificate cert = read_certificate(it->path().string(), false);
      std::string role_text = cert.metadata.count("role") ? cert.metadata["role"] : "";
      std::optional<Role> role = parse_role(role_text);
      CONVOY_CHECK(role && role != Role::kCoordinator, it->path().string(), ": metadata role '", role_text,
                   "' (expected worker, client or admin)");
      keys[cert.keys.public_key] = Principal{*role, it->path().stem().string(), cert.keys.public_key};
    } catch (const Error& e) {
      problems += std::string(problems.empty() ? "" : "; ") + e.what();
    }
  }
  if (ec) problems += std::string(problems.empty() ? "" : "; ") + folder_ + ": " + ec.message();
  from_folder_ = std::move(keys);
  problems_ = std::move(problems);
}

// --- ZAP -----------------------------------------------------------------------------------------

ZapHandler::ZapHandler(zmq::context_t& ctx, std::shared_ptr<AllowList> allowed)
    : socket_(ctx, zmq::socket_type::rep), allowed_(std::move(allowed)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { serve(); });
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  thread_.join();
  socket_.close();
}

std::vector<std::string> ZapHandler::take_refusals() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out = std::move(refusals_);
  refusals_.clear();
  if (unlisted_) out.push_back("and " + std::to_string(unlisted_) + " more refused connection(s)");
  unlisted_ = 0;
  return out;
}

void ZapHandler::serve() {
  while (!stop_) {
    zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      return;  // the context is terminating
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> frames;
    try {
      bool more = true;
      while (more && frames.size() < 16) {
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::none)) break;
        more = part.more();
        frames.push_back(std::move(part));
      }
      while (more) {  // drain an oversized request
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::none)) break;
        more = part.more();
      }
    } catch (const zmq::error_t&) {
      return;
    }
    // RFC 27: version, request id, domain, address, routing id, mechanism, credentials...
    std::string request_id = frames.size() > 1 ? frames[1].to_string() : "";
    std::string address = frames.size() > 3 ? frames[3].to_string() : "";
    std::string mechanism = frames.size() > 5 ? frames[5].to_string() : "";
    std::string key;
    std::string why;
    if (frames.size() < 7 || frames[0].to_string() != "1.0") {
      why = "malformed ZAP request";
    } else if (mechanism != "CURVE") {
      why = "mechanism " + mechanism + " (only CURVE is admitted)";
    } else if (frames[6].size() != 32) {
      why = "malformed CURVE credentials";
    } else {
      char z85[41] = {};
      zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
      key = z85;
      if (!allowed_->find(key))
        why = "key " + key + " is not in the allow-list" +
              (allowed_->folder().empty() ? std::string() : " (" + allowed_->folder() + ")");
    }
    bool ok = why.empty();
    if (!ok) {
      ++refused_;
      std::lock_guard<std::mutex> lock(mutex_);
      if (refusals_.size() < 20)
        refusals_.push_back("refused a connection from " + (address.empty() ? "?" : address) + ": " + why);
      else
        ++unlisted_;
    }
    try {
      std::vector<std::string> reply = {"1.0",           request_id,    ok ? "200" : "400",
                                        ok ? "OK" : why, ok ? key : "", ""};
      for (size_t i = 0; i < reply.size(); ++i)
        socket_.send(zmq::buffer(reply[i]),
                     i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    } catch (const zmq::error_t&) {
      return;
    }
  }
}

// --- sockets -------------------------------------------------------------------------------------

void make_server(zmq::socket_t& socket, const KeyPair& own) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
  socket.set(zmq::sockopt::zap_domain, "convoy");
  // A handshake that does not finish (a half-open peer) is dropped after this long.
  socket.set(zmq::sockopt::handshake_ivl, 5000);
}

void make_client(zmq::socket_t& socket, const KeyPair& own, const std::string& server_key) {
  socket.set(zmq::sockopt::curve_serverkey, server_key);
  socket.set(zmq::sockopt::curve_publickey, own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
  socket.set(zmq::sockopt::handshake_ivl, 5000);
}

}  // namespace convoy::auth
