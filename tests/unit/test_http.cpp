// The coordinator's HTTP endpoints: the exposition text for a state snapshot, the routing of
// requests, and the Beast server itself on a loopback port against good, garbage and huge requests.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "coordinator/http.h"

using namespace convoy;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

http::MetricsSnapshot sample_snapshot() {
  http::MetricsSnapshot m;
  m.workers = 2;
  m.jobs_queued = 1;
  m.jobs_running = 1;
  m.jobs_done = 3;
  m.jobs_failed = 0;
  m.jobs_cancelled = 2;
  m.micro_batches_done_total = 40;
  m.samples_done_total = 320;
  m.micro_batches_in_flight = 4;
  m.running_job = 7;
  m.running_job_samples_per_second = 12.5;
  m.worker_list = {{"w1", 0.25, 1048576, {3, 7}}, {"odd \"name\"\\", 1.5, 2, {}}};
  m.messages_dropped = {{"not_routed", 5}, {"malformed", 1}};
  m.replays_total = 3;
  m.ledger_commits_total = 9;
  return m;
}

}  // namespace

TEST_CASE("http: metrics are Prometheus text format 0.0.4", "[http]") {
  std::string text = http::format_metrics(sample_snapshot());
  CHECK_THAT(text, StartsWith("# HELP convoy_workers "));
  CHECK_THAT(text, Contains("# TYPE convoy_workers gauge\nconvoy_workers 2\n"));
  CHECK_THAT(text, Contains("# TYPE convoy_jobs gauge\n"));
  CHECK_THAT(text, Contains("convoy_jobs{state=\"queued\"} 1\nconvoy_jobs{state=\"running\"} 1\n"
                            "convoy_jobs{state=\"done\"} 3\nconvoy_jobs{state=\"failed\"} 0\n"
                            "convoy_jobs{state=\"cancelled\"} 2\n"));
  CHECK_THAT(
      text, Contains("# TYPE convoy_micro_batches_done_total counter\nconvoy_micro_batches_done_total 40\n"));
  CHECK_THAT(text, Contains("# TYPE convoy_samples_done_total counter\nconvoy_samples_done_total 320\n"));
  CHECK_THAT(text,
             Contains("# TYPE convoy_micro_batches_in_flight gauge\nconvoy_micro_batches_in_flight 4\n"));
  CHECK_THAT(text, Contains("convoy_job_samples_per_second{job=\"7\"} 12.5\n"));
  CHECK_THAT(text, Contains("convoy_worker_last_heartbeat_seconds{worker=\"w1\"} 0.25\n"));
  CHECK_THAT(text, Contains("convoy_worker_last_heartbeat_seconds{worker=\"odd \\\"name\\\"\\\\\"} 1.5\n"));
  CHECK_THAT(text, Contains("convoy_worker_rss_bytes{worker=\"w1\"} 1048576\n"));
  CHECK_THAT(
      text,
      Contains(
          "convoy_worker_job{worker=\"w1\",job=\"3\"} 1\nconvoy_worker_job{worker=\"w1\",job=\"7\"} 1\n"));
  CHECK_THAT(text,
             Contains("# TYPE convoy_messages_dropped_total counter\nconvoy_messages_dropped_total{reason=\"malformed\"} "
                      "1\nconvoy_messages_dropped_total{reason=\"not_routed\"} 5\n"));
  CHECK_THAT(text, Contains("# TYPE convoy_replays_total counter\nconvoy_replays_total 3\n"));
  CHECK_THAT(text, Contains("# TYPE convoy_ledger_commits_total counter\nconvoy_ledger_commits_total 9\n"));
  CHECK_THAT(text, Contains("# TYPE convoy_backup_copies_total counter\nconvoy_backup_copies_total 0\n"));
  // Every sample line belongs to a family announced just before; each family has HELP and TYPE.
  std::istringstream lines(text);
  std::string line, family;
  int helps = 0, types = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      ++helps;
      family = line.substr(7, line.find(' ', 7) - 7);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      ++types;
      CHECK(line.substr(7, family.size()) == family);
    } else {
      INFO(line);
      CHECK(line.substr(0, family.size()) == family);
      CHECK((line[family.size()] == ' ' || line[family.size()] == '{'));
    }
  }
  CHECK(helps == 13);
  CHECK(types == 13);
  CHECK(text.back() == '\n');

  // No running job, no workers: the families are still announced, without samples.
  http::MetricsSnapshot idle;
  std::string empty = http::format_metrics(idle);
  CHECK_THAT(empty, Contains("# TYPE convoy_job_samples_per_second gauge\n# HELP convoy_worker_last"));
  CHECK_THAT(empty, Contains("convoy_jobs{state=\"done\"} 0\n"));
}

TEST_CASE("http: requests are routed, with 404, 405 and 503", "[http]") {
  std::string unavailable;
  http::Handlers h{[] { return sample_snapshot(); }, [&] { return unavailable; }};
  http::Response ok = http::respond("GET", "/healthz", h);
  CHECK(ok.status == 200);
  CHECK(ok.body == "ok\n");
  http::Response metrics = http::respond("GET", "/metrics?x=1", h);
  CHECK(metrics.status == 200);
  CHECK_THAT(metrics.content_type, StartsWith("text/plain; version=0.0.4"));
  CHECK_THAT(metrics.body, Contains("convoy_workers 2\n"));
  CHECK(http::respond("GET", "/", h).status == 404);
  CHECK(http::respond("GET", "/metricsx", h).status == 404);
  CHECK(http::respond("POST", "/metrics", h).status == 405);
  CHECK(http::respond("HEAD", "/healthz", h).status == 405);
  unavailable = "shutting down: terminated (SIGTERM)";
  http::Response down = http::respond("GET", "/healthz", h);
  CHECK(down.status == 503);
  CHECK(down.body == "shutting down: terminated (SIGTERM)\n");
  CHECK(http::respond("GET", "/healthz", http::Handlers{}).status == 503);
}

TEST_CASE("http: HOST:PORT addresses", "[http]") {
  auto hp = http::parse_host_port("127.0.0.1:7701");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == 7701);
  CHECK(http::parse_host_port("localhost:0")->host == "127.0.0.1");
  CHECK(http::parse_host_port("[::1]:8080")->host == "::1");
  for (const char* bad : {"", "7701", ":1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80",
                          "[127.0.0.1]:80", "host.example:80", "127.0.0.1:80 "})
    CHECK_FALSE(http::parse_host_port(bad));
}

namespace {

using boost::asio::ip::tcp;

// A TCP connection to "HOST:PORT".
tcp::socket connect_to(boost::asio::io_context& io, const std::string& address) {
  tcp::socket s(io);
  auto colon = address.rfind(':');
  s.connect(tcp::endpoint(boost::asio::ip::make_address(address.substr(0, colon)),
                          static_cast<uint16_t>(std::stoi(address.substr(colon + 1)))));
  return s;
}

// Every byte until the server closes the connection.
std::string read_all(tcp::socket& s) {
  boost::system::error_code ec;
  std::string reply;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    reply.append(buf, n);
    if (ec) break;
  }
  return reply;
}

// Sends `request` raw, then reads until the server closes; the reply's bytes.
std::string http_exchange(const std::string& address, const std::string& request, bool half_close = true) {
  boost::asio::io_context io;
  tcp::socket s = connect_to(io, address);
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(request), ec);
  if (half_close) s.shutdown(tcp::socket::shutdown_send, ec);
  return read_all(s);
}

// A Server on a loopback port, its io_context run on a thread of its own until destruction.
struct RunningServer {
  boost::asio::io_context io;
  std::ostringstream log;
  http::Server server;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread loop{[this] { io.run(); }};

  explicit RunningServer(http::Handlers h) : server(io, "127.0.0.1:0", std::move(h), log) {}
  ~RunningServer() {
    boost::asio::post(io, [this] { server.stop(); });
    work.reset();
    loop.join();
  }
};

}  // namespace

TEST_CASE("http: the server answers on its io_context and survives bad clients", "[http]") {
  boost::asio::io_context io;
  std::ostringstream log;
  int scrapes = 0;
  http::Server server(io, "127.0.0.1:0",
                      http::Handlers{[&] {
                                       ++scrapes;
                                       return sample_snapshot();
                                     },
                                     [] { return std::string(); }},
                      log);
  REQUIRE_THAT(server.address(), StartsWith("127.0.0.1:"));
  auto work = boost::asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  const std::string addr = server.address();

  std::string ok = http_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(ok, Contains("\r\n\r\nok\n"));

  // Two requests on one keep-alive connection.
  std::string two =
      http_exchange(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_THAT(two, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(two, Contains("Content-Type: text/plain; version=0.0.4"));
  CHECK_THAT(two, Contains("convoy_samples_done_total 320\n"));
  CHECK_THAT(two, Contains("HTTP/1.1 404 Not Found\r\n"));

  CHECK_THAT(http_exchange(addr, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), StartsWith("HTTP/1.1 405"));
  CHECK_THAT(http_exchange(addr, "\x01\x02garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  CHECK_THAT(http_exchange(addr, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n"),
             StartsWith("HTTP/1.1 431"));
  CHECK_THAT(http_exchange(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"),
             StartsWith("HTTP/1.1 413"));
  CHECK_THAT(http_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n"),  // cut short
             StartsWith("HTTP/1.1 400"));

  // A client that connects and says nothing is hung up on after 2 s without a request's first byte,
  // while others are served meanwhile.
  auto begin = std::chrono::steady_clock::now();
  std::thread silent([&] { CHECK(http_exchange(addr, "", false).empty()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_THAT(http_exchange(addr, "GET /healthz HTTP/1.0\r\n\r\n"), StartsWith("HTTP/1.1 200"));
  silent.join();
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  CHECK(waited > 1.5);
  CHECK(waited < 4.5);  // not the 5 s a request that has begun gets
  CHECK(scrapes == 1);

  // A request whose bytes arrive slowly has 5 s from its first byte, longer than the 2 s above.
  {
    boost::asio::io_context client;
    tcp::socket s = connect_to(client, addr);
    boost::asio::write(s, boost::asio::buffer(std::string("GET /healthz HTTP/1.1\r\n")));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    boost::asio::write(s, boost::asio::buffer(std::string("Host: x\r\nConnection: close\r\n\r\n")));
    CHECK_THAT(read_all(s), StartsWith("HTTP/1.1 200 OK\r\n"));
  }

  boost::asio::post(io, [&] { server.stop(); });
  work.reset();
  loop.join();  // stop() leaves nothing waiting on the io_context
}

TEST_CASE("http: /healthz answers while 150 idle connections are held open", "[http]") {
  RunningServer running(http::Handlers{[] { return sample_snapshot(); }, [] { return std::string(); }});
  const std::string addr = running.server.address();
  boost::asio::io_context client;
  std::vector<tcp::socket> flood;
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < 150; ++i) flood.push_back(connect_to(client, addr));  // none sends a byte

  auto probe = std::chrono::steady_clock::now();
  std::string ok = http_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - probe).count();
  CHECK_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(ok, Contains("\r\n\r\nok\n"));
  CHECK(took < 1.0);

  // The oldest idle connection made room: the server has hung it up, well before the 2 s without a
  // request's first byte would have.
  CHECK(read_all(flood.front()).empty());
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  CHECK(waited < 1.5);
}

TEST_CASE("http: /metrics takes a bearer token when one is set", "[http]") {
  http::Handlers h{[] { return sample_snapshot(); }, [] { return std::string(); }, "s3cret-token"};

  SECTION("respond") {
    http::Response none = http::respond("GET", "/metrics", h);
    CHECK(none.status == 401);
    CHECK(none.headers == std::vector<std::pair<std::string, std::string>>{{"WWW-Authenticate", "Bearer"}});
    CHECK(http::respond("GET", "/metrics", h, "Bearer wrong-token").status == 401);
    CHECK(http::respond("GET", "/metrics", h, "Bearer s3cret-toke").status == 401);    // a prefix
    CHECK(http::respond("GET", "/metrics", h, "Bearer s3cret-tokenX").status == 401);  // longer
    CHECK(http::respond("GET", "/metrics", h, "Basic s3cret-token").status == 401);
    CHECK(http::respond("GET", "/metrics", h, "s3cret-token").status == 401);
    CHECK(http::respond("GET", "/metrics", h, "Bearer ").status == 401);
    http::Response right = http::respond("GET", "/metrics", h, "Bearer s3cret-token");
    CHECK(right.status == 200);
    CHECK_THAT(right.body, Contains("convoy_workers 2\n"));
    CHECK(http::respond("GET", "/metrics", h, "bearer s3cret-token").status == 200);  // scheme in any case
    CHECK(http::respond("GET", "/healthz", h).status == 200);                         // never needs it
    CHECK(http::respond("POST", "/metrics", h).status == 405);
  }

  SECTION("over a socket") {
    RunningServer running(h);
    const std::string addr = running.server.address();
    auto get = [&](const std::string& path, const std::string& extra) {
      return http_exchange(addr,
                           "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "Connection: close\r\n\r\n");
    };
    std::string none = get("/metrics", "");
    CHECK_THAT(none, StartsWith("HTTP/1.1 401 Unauthorized\r\n"));
    CHECK_THAT(none, Contains("\r\nWWW-Authenticate: Bearer\r\n"));
    CHECK_THAT(none, !Contains("convoy_workers"));
    std::string wrong = get("/metrics", "Authorization: Bearer nope\r\n");
    CHECK_THAT(wrong, StartsWith("HTTP/1.1 401 Unauthorized\r\n"));
    CHECK_THAT(wrong, !Contains("convoy_workers"));
    std::string right = get("/metrics", "Authorization: Bearer s3cret-token\r\n");
    CHECK_THAT(right, StartsWith("HTTP/1.1 200 OK\r\n"));
    CHECK_THAT(right, Contains("convoy_workers 2\n"));
    CHECK_THAT(get("/healthz", ""), StartsWith("HTTP/1.1 200 OK\r\n"));
  }

  SECTION("no token configured: /metrics is open") {
    h.metrics_token.clear();
    CHECK(http::respond("GET", "/metrics", h).status == 200);
    RunningServer running(h);
    CHECK_THAT(http_exchange(running.server.address(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
               StartsWith("HTTP/1.1 200 OK\r\n"));
  }
}
