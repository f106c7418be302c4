#include "worker/downstream.h"

#include <algorithm>
#include <optional>

#include "runtime/error.h"

namespace convoy {

struct Downstreams::Link {
  zmq::socket_t socket;
  std::string key;
  std::unique_ptr<wire::AsioZmqWatcher> watch;
  bool answered = false;
};

struct Downstreams::Waiter {
  std::set<std::string> pending;
  std::function<void(const std::string&)> done;
  std::unique_ptr<boost::asio::steady_timer> timer, retry;
  bool fired = false;
};

Downstreams::Downstreams(boost::asio::io_context& io, zmq::context_t& ctx, uint64_t opset, int linger_ms,
                         Warn warn, const auth::KeyPair* own)
    : io_(io), ctx_(ctx), opset_(opset), linger_ms_(linger_ms), warn_(std::move(warn)), own_(own) {}

void Downstreams::set_key(const std::string& endpoint, const std::string& key) {
  keys_[endpoint] = key;
  auto it = links_.find(endpoint);
  if (it != links_.end() && it->second->key != key) {  // a new worker on that endpoint
    it->second->watch.reset();
    links_.erase(it);
  }
}

Downstreams::~Downstreams() { close(); }

Downstreams::Link& Downstreams::link(const std::string& endpoint) {
  auto it = links_.find(endpoint);
  if (it != links_.end()) return *it->second;
  auto l = std::make_unique<Link>(Link{zmq::socket_t(ctx_, zmq::socket_type::dealer), {}, nullptr});
  l->socket.set(zmq::sockopt::linger, linger_ms_);
  l->socket.set(zmq::sockopt::maxmsgsize, int64_t{1} << 20);  // it only ever receives hello replies
  if (own_) {
    auto k = keys_.find(endpoint);
    CONVOY_CHECK_KIND(kIo, k != keys_.end() && auth::is_z85_key(k->second),
                      "no CURVE key for the next stage at ", endpoint,
                      " (the coordinator sends one with each assignment)");
    l->key = k->second;
    auth::make_client(l->socket, *own_, l->key);
  }
  l->socket.connect(endpoint);
  Link* raw = l.get();
  l->watch = std::make_unique<wire::AsioZmqWatcher>(io_, l->socket, [this, raw, endpoint] {
    // Answers from the next stage: its helloReply, or an error.
    for (;;) {
      std::optional<wire::InMessage> m;
      try {
        m = wire::InMessage::receive(raw->socket, false, false);
      } catch (const std::exception& e) {  // the socket itself failed: do not spin on it
        warn_(str_cat("receiving from ", endpoint, " failed: ", e.what()));
        return;
      }
      if (!m) return;
      try {
        auto body = m->envelope().getBody();
        if (body.which() == schema::Envelope::Body::HELLO_REPLY) {
          if (!raw->answered) {
            raw->answered = true;
            on_answer(endpoint);
          }
        } else if (body.which() == schema::Envelope::Body::ERROR) {
          warn_(str_cat("the next stage at ", endpoint,
                        " answered: ", std::string(body.getError().getMessage())));
        }
      } catch (const std::exception& e) {
        warn_(str_cat("dropped message from ", endpoint, ": ", e.what()));
      }
    }
  });
  wire::OutMessage hello;
  wire::make_hello(hello.envelope(), schema::Role::UPSTREAM, opset_);
  hello.send(l->socket);
  l->watch->kick();
  return *links_.emplace(endpoint, std::move(l)).first->second;
}

void Downstreams::send(const std::string& endpoint, wire::OutMessage& m) {
  Link& l = link(endpoint);
  m.send(l.socket);
  l.watch->kick();
}

void Downstreams::when_answered(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout,
                                std::function<void(const std::string&)> done) {
  auto w = std::make_shared<Waiter>();
  for (const std::string& ep : endpoints)
    if (!link(ep).answered) w->pending.insert(ep);
  if (w->pending.empty()) {
    done("");
    return;
  }
  w->done = std::move(done);
  retry_unanswered(w);
  w->timer = std::make_unique<boost::asio::steady_timer>(io_, timeout);
  std::weak_ptr<Waiter> weak = w;
  w->timer->async_wait([this, weak](const boost::system::error_code& ec) {
    auto w = weak.lock();
    if (ec || !w || w->fired) return;
    w->fired = true;
    std::string silent = *w->pending.begin();
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), w));
    w->done(silent);
  });
  waiters_.push_back(std::move(w));
}

// ZeroMQ does not reconnect after a refused CURVE handshake, and the next worker refuses our key until
// its own assignment has named us as its upstream: connect afresh, and say hello again, every second
// until it answers or the wait times out.
void Downstreams::retry_unanswered(const std::shared_ptr<Waiter>& w) {
  w->retry = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::seconds(1));
  std::weak_ptr<Waiter> weak = w;
  w->retry->async_wait([this, weak](const boost::system::error_code& ec) {
    auto w = weak.lock();
    if (ec || !w || w->fired) return;
    for (const std::string& ep : std::set<std::string>(w->pending)) {
      auto it = links_.find(ep);
      if (it == links_.end() || it->second->answered) continue;
      it->second->watch.reset();
      links_.erase(it);
      link(ep);
    }
    retry_unanswered(w);
  });
}

void Downstreams::on_answer(const std::string& endpoint) {
  std::vector<std::shared_ptr<Waiter>> ready;
  for (auto& w : waiters_) {
    w->pending.erase(endpoint);
    if (w->pending.empty() && !w->fired) ready.push_back(w);
  }
  for (auto& w : ready) {
    w->fired = true;
    w->timer->cancel();
    if (w->retry) w->retry->cancel();
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), w));
    w->done("");
  }
}

void Downstreams::close() {
  for (auto& w : waiters_) {
    w->fired = true;
    if (w->timer) w->timer->cancel();
    if (w->retry) w->retry->cancel();
  }
  waiters_.clear();
  for (auto& [endpoint, l] : links_) l->watch.reset();
  links_.clear();
}

}  // namespace convoy
