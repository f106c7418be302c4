// The coordinator's HTTP endpoints (docs/coordinator.md, "HTTP: /healthz and /metrics"): a small
// Boost.Beast HTTP/1.1 server on the daemon's own io_context (no thread of its own, so its handlers
// read the server's state like every other handler), serving
//   GET /healthz   200 "ok\n", or 503 and the reason while the daemon shuts down
//   GET /metrics   Prometheus text exposition format 0.0.4; 401 without the bearer token, when one
//                  is set (Handlers::metrics_token)
// Anything else is 404, a method other than GET 405. Requests are capped (8 KiB of header, 8 KiB of
// body) and so are connections, so a bad client cannot block the daemon or keep others out:
//   - a connection that sends no byte of a request within 2 s of connecting (or of its previous
//     answer) is closed, and so is one whose request is not whole 5 s after its first byte, or that
//     does not take an answer within 5 s;
//   - at most 64 connections are open; when a 65th arrives, the one that has waited longest for a
//     request's first byte is closed to make room (only when all 64 are reading the rest of a request
//     or being answered is the new one closed instead). A flood of idle connections thus never keeps
//     a /healthz probe out.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace convoy::http {

// What /metrics reports, taken from the coordinator's state when a scrape arrives.
struct WorkerMetrics {
  std::string name;
  double last_heartbeat_seconds = 0;  // since its last heartbeat
  uint64_t rss_bytes = 0;             // as its last heartbeat reported
  std::vector<uint64_t> jobs;         // the active jobs holding a stage on it
};

struct MetricsSnapshot {
  uint64_t workers = 0;
  uint64_t jobs_queued = 0, jobs_running = 0, jobs_done = 0, jobs_failed = 0, jobs_cancelled = 0;
  int64_t micro_batches_done_total = 0;  // over every job the daemon has seen
  int64_t samples_done_total = 0;
  uint64_t micro_batches_in_flight = 0;  // of the running job
  std::optional<uint64_t> running_job;   // planning or running
  double running_job_samples_per_second = 0;
  std::vector<WorkerMetrics> worker_list;
  std::map<std::string, uint64_t> messages_dropped;  // by reason: messages the daemon dropped
  uint64_t replays_total = 0;                        // micro-batches sent again on a new pipeline
  uint64_t ledger_commits_total = 0;  // group commits of written micro-batches to the job ledger
  uint64_t backup_copies_total = 0;   // tail micro-batches sent again to an idle replica
};

// The snapshot in Prometheus text exposition format 0.0.4 (# HELP and # TYPE before every family).
std::string format_metrics(const MetricsSnapshot& m);

struct Handlers {
  std::function<MetricsSnapshot()> metrics;
  // "" while healthy, else why not (the daemon is shutting down).
  std::function<std::string()> unavailable;
  // When not empty, GET /metrics must carry `Authorization: Bearer <metrics_token>` (the scheme in any
  // case; compared in constant time) and is answered 401 with `WWW-Authenticate: Bearer` otherwise.
  // /healthz never needs it.
  std::string metrics_token = {};  // (a default, so that Handlers{metrics, unavailable} stays warning-free)
};

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};  // more, e.g. {"Allow", "GET"} with a 405
};

// The answer to one request (`target` may carry a query, which is ignored); `authorization` is the
// request's Authorization header ("" when it has none).
Response respond(std::string_view method, std::string_view target, const Handlers& handlers,
                 std::string_view authorization = {});

// "HOST:PORT" (HOST an IPv4 address, [IPv6] or localhost; PORT 0-65535, 0: the system chooses);
// nullopt when `text` is not one.
struct HostPort {
  std::string host;  // an IP address ("localhost" as 127.0.0.1), without brackets
  uint16_t port = 0;
};
std::optional<HostPort> parse_host_port(const std::string& text);

class Server {
 public:
  // Binds `listen` (see parse_host_port) and serves on `io`; throws convoy::Error(kIo) when it cannot.
  Server(boost::asio::io_context& io, const std::string& listen, Handlers handlers, std::ostream& log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address with the chosen port: "127.0.0.1:7701", "[::1]:7701".
  const std::string& address() const;

  // Stops accepting and closes idle connections; a request already read is still answered (with
  // Connection: close). Called on the io_context's thread.
  void stop();

  struct Impl;  // http.cpp's connections share it

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace convoy::http
