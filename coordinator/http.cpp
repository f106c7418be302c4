#include "coordinator/http.h"

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <ostream>
#include <sstream>

#include "runtime/error.h"
#include "runtime/sha256.h"

namespace convoy::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kHeaderLimit = 8 * 1024;
constexpr uint64_t kBodyLimit = 8 * 1024;
constexpr size_t kMaxConnections = 64;                // when full, a new connection hangs up the idlest one
constexpr auto kFirstByte = std::chrono::seconds(2);  // for a request's first byte to arrive
constexpr auto kIdle = std::chrono::seconds(5);       // to read the rest of a request, or to write a response
constexpr size_t kFirstRead = 1024;                   // bytes taken by the read that waits for the first

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// A label value with \, " and newline escaped as the exposition format wants.
std::string label(std::string_view v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\')
      out += "\\\\";
    else if (ch == '"')
      out += "\\\"";
    else if (ch == '\n')
      out += "\\n";
    else
      out += ch;
  }
  return out;
}

// Whether `a` and `b` are the same bytes, in a time that depends on neither their contents nor their
// lengths: both are hashed, and the digests compared without an early exit.
bool same_secret(std::string_view a, std::string_view b) {
  std::array<uint8_t, 32> x = sha256(a), y = sha256(b);
  unsigned diff = 0;
  for (size_t i = 0; i < x.size(); ++i) diff |= static_cast<unsigned>(x[i] ^ y[i]);
  return diff == 0;
}

// Whether an Authorization header value is "Bearer TOKEN" (the scheme in any case, RFC 7235).
bool bearer_matches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer ";
  bool scheme = authorization.size() >= kScheme.size();
  for (size_t i = 0; scheme && i < kScheme.size(); ++i)
    scheme = (authorization[i] | 0x20) == kScheme[i];  // ' ' | 0x20 == ' '
  std::string_view given = scheme ? authorization.substr(kScheme.size()) : std::string_view();
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  return same_secret(given, token) && scheme;
}

void family(std::ostream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

std::string format_metrics(const MetricsSnapshot& m) {
  std::ostringstream o;
  family(o, "convoy_workers", "gauge", "Workers registered with the coordinator.");
  o << "convoy_workers " << m.workers << '\n';
  family(o, "convoy_jobs", "gauge", "Jobs the coordinator knows of, by state (planning counts as running).");
  o << "convoy_jobs{state=\"queued\"} " << m.jobs_queued << '\n'
    << "convoy_jobs{state=\"running\"} " << m.jobs_running << '\n'
    << "convoy_jobs{state=\"done\"} " << m.jobs_done << '\n'
    << "convoy_jobs{state=\"failed\"} " << m.jobs_failed << '\n'
    << "convoy_jobs{state=\"cancelled\"} " << m.jobs_cancelled << '\n';
  family(o, "convoy_micro_batches_done_total", "counter", "Micro-batches completed, over all jobs.");
  o << "convoy_micro_batches_done_total " << m.micro_batches_done_total << '\n';
  family(o, "convoy_samples_done_total", "counter", "Samples completed, over all jobs.");
  o << "convoy_samples_done_total " << m.samples_done_total << '\n';
  family(o, "convoy_micro_batches_in_flight", "gauge", "Micro-batches of the running job sent and not done.");
  o << "convoy_micro_batches_in_flight " << m.micro_batches_in_flight << '\n';
  family(o, "convoy_job_samples_per_second", "gauge",
         "Throughput of the running job since its first micro-batch went out.");
  if (m.running_job)
    o << "convoy_job_samples_per_second{job=\"" << *m.running_job << "\"} "
      << number(m.running_job_samples_per_second) << '\n';
  family(o, "convoy_worker_last_heartbeat_seconds", "gauge", "Seconds since the worker's last heartbeat.");
  for (const WorkerMetrics& w : m.worker_list)
    o << "convoy_worker_last_heartbeat_seconds{worker=\"" << label(w.name) << "\"} "
      << number(w.last_heartbeat_seconds) << '\n';
  family(o, "convoy_worker_rss_bytes", "gauge", "Resident memory of the worker process, from its heartbeat.");
  for (const WorkerMetrics& w : m.worker_list)
    o << "convoy_worker_rss_bytes{worker=\"" << label(w.name) << "\"} " << w.rss_bytes << '\n';
  family(o, "convoy_worker_job", "gauge", "1 for each active job holding a stage on the worker.");
  for (const WorkerMetrics& w : m.worker_list)
    for (uint64_t job : w.jobs)
      o << "convoy_worker_job{worker=\"" << label(w.name) << "\",job=\"" << job << "\"} 1\n";
  family(o, "convoy_messages_dropped_total", "counter",
         "Messages dropped unused, by reason (malformed, unauthenticated, refused, not_routed, "
         "stale_generation, wrong_types, unknown_job).");
  if (m.messages_dropped.empty()) o << "convoy_messages_dropped_total{reason=\"malformed\"} 0\n";
  for (const auto& [reason, n] : m.messages_dropped)
    o << "convoy_messages_dropped_total{reason=\"" << reason << "\"} " << n << '\n';
  family(o, "convoy_replays_total", "counter",
         "Micro-batches sent again on a new pipeline after a worker loss or a failed stage.");
  o << "convoy_replays_total " << m.replays_total << '\n';
  family(o, "convoy_ledger_commits_total", "counter",
         "Group commits of written micro-batches to the job ledger (0 without a state_dir).");
  o << "convoy_ledger_commits_total " << m.ledger_commits_total << '\n';
  family(o, "convoy_backup_copies_total", "counter",
         "Micro-batches at the tail of a job sent again to an idle replica (the first result is written).");
  o << "convoy_backup_copies_total " << m.backup_copies_total << '\n';
  return o.str();
}

Response respond(std::string_view method, std::string_view target, const Handlers& handlers,
                 std::string_view authorization) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/healthz" && path != "/metrics") return {404, "text/plain; charset=utf-8", "not found\n"};
  if (method != "GET")
    return {405, "text/plain; charset=utf-8", "method not allowed (GET only)\n", {{"Allow", "GET"}}};
  if (path == "/metrics" && !handlers.metrics_token.empty() &&
      !bearer_matches(authorization, handlers.metrics_token))
    return {401,
            "text/plain; charset=utf-8",
            "unauthorized: /metrics needs Authorization: Bearer TOKEN\n",
            {{"WWW-Authenticate", "Bearer"}}};
  std::string why = handlers.unavailable ? handlers.unavailable() : std::string("stopped");
  if (path == "/healthz") {
    if (!why.empty()) return {503, "text/plain; charset=utf-8", why + "\n"};
    return {200, "text/plain; charset=utf-8", "ok\n"};
  }
  if (!handlers.metrics) return {503, "text/plain; charset=utf-8", why + "\n"};
  return {200, "text/plain; version=0.0.4; charset=utf-8", format_metrics(handlers.metrics())};
}

std::optional<HostPort> parse_host_port(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) return std::nullopt;
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (host == "localhost" && !bracketed) {
    host = "127.0.0.1";
  } else {
    boost::system::error_code error;
    asio::ip::address a = asio::ip::make_address(host, error);
    if (error || a.is_v6() != bracketed) return std::nullopt;  // IPv6 only in brackets
  }
  return HostPort{host, static_cast<uint16_t>(value)};
}

struct Session;

struct Server::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  Handlers handlers;
  std::ostream& log;
  std::string address;
  bool stopped = false;
  std::map<Session*, std::weak_ptr<Session>> sessions;

  Impl(asio::io_context& io_, Handlers h, std::ostream& l)
      : io(io_), acceptor(io_), retry(io_), handlers(std::move(h)), log(l) {}

  void accept();
  void evict_idlest();  // hangs up the session waiting longest for a request's first byte, if any
  void stop();
};

struct Session : std::enable_shared_from_this<Session> {
  // kIdle: waiting for a request's first byte (the one a new connection may hang up when the server
  // is full); kRequest: reading the rest of it; kWriting: answering.
  enum class State { kIdle, kRequest, kWriting };

  std::shared_ptr<Server::Impl> server;
  beast::tcp_stream stream;
  beast::flat_buffer buffer{kHeaderLimit + kBodyLimit + 1024};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  bhttp::response<bhttp::string_body> response;
  State state = State::kIdle;
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();

  Session(std::shared_ptr<Server::Impl> s, tcp::socket socket)
      : server(std::move(s)), stream(std::move(socket)) {}

  // Waits up to kFirstByte for the next request to begin, unless a pipelined one already has.
  void read() {
    if (buffer.size() > 0) return read_request();
    state = State::kIdle;
    idle_since = std::chrono::steady_clock::now();
    stream.expires_after(kFirstByte);
    stream.async_read_some(buffer.prepare(kFirstRead),
                           [self = shared_from_this()](beast::error_code ec, size_t n) {
                             self->buffer.commit(n);
                             if (ec) return self->on_read(ec);
                             self->read_request();
                           });
  }

  // Reads the rest of a request that has begun (its bytes so far are in `buffer`).
  void read_request() {
    parser.emplace();
    parser->header_limit(kHeaderLimit);
    parser->body_limit(kBodyLimit);
    stream.expires_after(kIdle);
    state = State::kRequest;
    bhttp::async_read(stream, buffer, *parser,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    state = State::kWriting;
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    if (ec) {  // malformed or too large: say so, then hang up
      unsigned status = ec == bhttp::error::header_limit ? 431 : ec == bhttp::error::body_limit ? 413 : 400;
      return write(Response{status, "text/plain; charset=utf-8", "bad request: " + ec.message() + "\n"},
                   false);
    }
    const auto& req = parser->get();
    auto authorization = req[bhttp::field::authorization];
    Response r = respond(std::string_view(req.method_string().data(), req.method_string().size()),
                         std::string_view(req.target().data(), req.target().size()), server->handlers,
                         std::string_view(authorization.data(), authorization.size()));
    write(std::move(r), req.keep_alive() && !server->stopped);
  }

  void write(Response r, bool keep_alive) {
    response = {};
    response.version(11);
    response.result(r.status);
    response.set(bhttp::field::server, "convoy-coordinator");
    response.set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) response.set(name, value);
    response.body() = std::move(r.body);
    response.keep_alive(keep_alive);
    response.prepare_payload();
    stream.expires_after(kIdle);
    bhttp::async_write(stream, response, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->response.keep_alive() || self->server->stopped) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    server->sessions.erase(this);
  }
};

void Server::Impl::evict_idlest() {
  std::shared_ptr<Session> idlest;
  for (auto& [raw, weak] : sessions)
    if (auto s = weak.lock();
        s && s->state == Session::State::kIdle && (!idlest || s->idle_since < idlest->idle_since))
      idlest = s;
  if (!idlest) return;  // every session is in the middle of a request: those end within kIdle
  beast::error_code ignored;
  idlest->stream.socket().close(ignored);  // its pending read ends with operation_aborted
  sessions.erase(idlest.get());
}

void Server::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped) return;
    if (ec) {  // out of descriptors, say: try again a little later instead of spinning
      self->retry.expires_after(std::chrono::milliseconds(100));
      self->retry.async_wait([self](beast::error_code e) {
        if (!e && !self->stopped) self->accept();
      });
      return;
    }
    if (self->sessions.size() >= kMaxConnections) self->evict_idlest();
    if (self->sessions.size() < kMaxConnections) {
      auto s = std::make_shared<Session>(self, std::move(socket));
      self->sessions.emplace(s.get(), s);
      s->read();
    }  // else `socket` closes here: every session is busy with a request
    self->accept();
  });
}

void Server::Impl::stop() {
  if (stopped) return;
  stopped = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  for (auto& [raw, weak] : std::map<Session*, std::weak_ptr<Session>>(sessions))
    if (auto s = weak.lock(); s && s->state != Session::State::kWriting)
      s->stream.socket().close(ignored);  // no request read whole yet: hang up
}

Server::Server(asio::io_context& io, const std::string& listen, Handlers handlers, std::ostream& log)
    : impl_(std::make_shared<Impl>(io, std::move(handlers), log)) {
  std::optional<HostPort> hp = parse_host_port(listen);
  CONVOY_CHECK_KIND(kIo, hp.has_value(), "cannot serve HTTP on '", listen, "': not HOST:PORT");
  try {
    tcp::endpoint ep(asio::ip::make_address(hp->host), hp->port);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
    tcp::endpoint bound = impl_->acceptor.local_endpoint();
    std::string host = bound.address().to_string();
    impl_->address = (bound.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(bound.port());
  } catch (const boost::system::system_error& e) {
    fail(ErrorKind::kIo, "cannot serve HTTP on ", listen, ": ", e.code().message());
  }
  impl_->accept();
}

Server::~Server() {
  impl_->stop();
  impl_->handlers = {};  // the daemon's state goes away with it; late requests get 503
}

const std::string& Server::address() const { return impl_->address; }

void Server::stop() { impl_->stop(); }

}  // namespace convoy::http
