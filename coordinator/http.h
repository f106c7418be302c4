// The coordinator's HTTP endpoints (docs/coordinator.md, "HTTP: /healthz and /metrics"): a small
// Boost.Beast HTTP/1.1 server on the daemon's own io_context (no thread of its own, so its handlers
// read the server's state like every other handler), serving
//   GET /healthz   200 "ok\n", or 503 and the reason while the daemon shuts down
//   GET /metrics   Prometheus text exposition format 0.0.4
// Anything else is 404, a method other than GET 405. Requests are capped (8 KiB of header, 8 KiB of
// body, 64 connections) and a connection idle for 5 s is closed, so a bad client cannot block the
// daemon.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
};

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// The answer to one request (`target` may carry a query, which is ignored).
Response respond(std::string_view method, std::string_view target, const Handlers& handlers);

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
