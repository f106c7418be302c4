// The coordinator daemon (docs/distributed.md, "The coordinator"): one Boost.Asio io_context drives
// the control ROUTER (workers and clients), a DEALER per worker data endpoint (stage-0 inputs), the
// liveness timer and, in `serve`, the signal set. Single-threaded: every handler runs on the
// io_context's thread, so the state below needs no locks.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "coordinator/cluster_config.h"

namespace boost::asio {
class io_context;
}

namespace convoy {

class OpRegistry;

class CoordinatorServer {
 public:
  // Binds `config.listen` (a "tcp://127.0.0.1:*" port is chosen by the system) and starts serving on
  // `io`; throws convoy::Error(kIo) when the endpoint cannot be bound. `log` gets one line per
  // event ("info: ...", "warning: ..."); it must outlive the server.
  CoordinatorServer(boost::asio::io_context& io, const ClusterConfig& config, const OpRegistry& registry,
                    std::ostream& log);
  ~CoordinatorServer();
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  // The bound control endpoint, with the chosen port ("tcp://127.0.0.1:41234").
  const std::string& endpoint() const;

  // Graceful stop (on the io_context's thread): cancels running and queued jobs, releases their
  // stages on the workers, closes every socket and timer, so io.run() returns.
  void shutdown(const std::string& reason);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `convoy-coordinator serve`: serves until SIGINT or SIGTERM, then shuts down gracefully. Returns the
// process exit status.
int serve(const ClusterConfig& config, std::ostream& log);

// A coordinator on a thread of its own (`run --workers N`, tests). stop() (or the destructor) shuts it
// down and joins the thread.
class EmbeddedCoordinator {
 public:
  EmbeddedCoordinator(const ClusterConfig& config, std::ostream& log);
  ~EmbeddedCoordinator();
  const std::string& endpoint() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convoy
