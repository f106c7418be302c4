// A worker's connections to the next stage's data endpoints: one DEALER per endpoint, opened with a
// hello that the next worker answers (docs/distributed.md, "Handshakes"). A stage is reported ready
// only once every endpoint it sends to has answered, so an endpoint that is not reachable from this
// host (a loopback address advertised across hosts, a firewall) fails the assignment with its name
// instead of silently swallowing micro-batches.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "schema/auth.h"
#include "schema/wire.h"

namespace convoy {

class Downstreams {
 public:
  using Warn = std::function<void(const std::string&)>;
  // `own`: this worker's CURVE key pair (null: insecure); it must outlive this.
  Downstreams(boost::asio::io_context& io, zmq::context_t& ctx, uint64_t opset, int linger_ms, Warn warn,
              const auth::KeyPair* own);
  ~Downstreams();

  // The CURVE public key of the worker at `endpoint` (from AssignStage.next): connections to it are
  // made as a CURVE client of that key; a connection made with another key is replaced.
  void set_key(const std::string& endpoint, const std::string& key);

  // Sends `m` to `endpoint`, connecting (and saying hello) first if needed. Throws like
  // OutMessage::send.
  void send(const std::string& endpoint, wire::OutMessage& m);
  // Calls `done("")` once every one of `endpoints` has answered hello (at once if they all have),
  // or `done(endpoint)` with the first that had not within `timeout`.
  void when_answered(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
                     std::function<void(const std::string& silent)> done);
  // Closes every connection (what is queued may flush for linger_ms).
  void close();

 private:
  struct Link;
  struct Waiter;
  Link& link(const std::string& endpoint);
  void on_answer(const std::string& endpoint);
  void retry_unanswered(const std::shared_ptr<Waiter>& w);

  boost::asio::io_context& io_;
  zmq::context_t& ctx_;
  uint64_t opset_;
  int linger_ms_;
  Warn warn_;
  const auth::KeyPair* own_;
  std::map<std::string, std::string> keys_;  // by endpoint
  std::map<std::string, std::unique_ptr<Link>> links_;
  std::vector<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace convoy
