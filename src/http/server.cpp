#include "http/server.h"

// The Server: listening, the accept loop, admission against the connection
// limits, the registry of live sessions, and Run/Stop. One connection's
// request handling is the Session's (session.h, session.cpp).

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/encoding.h"
#include "http/session.h"

namespace lastframe::http {

bool SplitTarget(std::string_view target, Request& request) {
  size_t q = target.find('?');
  request.raw_path = std::string(target.substr(0, q));
  request.raw_query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  auto decoded = UriDecode(request.raw_path);
  if (!decoded || request.raw_path.empty() || request.raw_path[0] != '/') return false;
  request.path = std::move(*decoded);
  return true;
}

size_t DefaultMaxConnections(uint64_t fd_limit) {
  // A quarter of the descriptors (at least 256) stay free for everything else.
  uint64_t reserve = std::max<uint64_t>(256, fd_limit / 4);
  uint64_t usable = fd_limit > reserve + 64 ? fd_limit - reserve : 64;
  return static_cast<size_t>(std::min<uint64_t>(usable, 16384));
}

namespace {

ServerOptions WithDerivedLimits(ServerOptions o) {
  if (o.max_connections == 0) {
    rlimit fds{};
    uint64_t limit = ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY
                         ? fds.rlim_cur
                         : 1024;
    o.max_connections = DefaultMaxConnections(limit);
  }
  return o;
}

Limits& LimitsOf(const ServerOptions& o, Limits& own) { return o.limits ? *o.limits : own; }

// Accepting failed for want of descriptors or memory: waiting helps, retrying at once does not.
bool OutOfResources(const boost::system::error_code& ec) {
  return ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
         ec == net::error::no_memory || ec.value() == ENFILE;
}

// Answers sent on a connection over a limit: nothing of the request is read.
std::string LimitResponse(const std::string& node, unsigned status, const char* reason,
                          const std::string& code, const std::string& message) {
  std::string body = nlohmann::json{{"code", code}, {"message", message}}.dump() + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nServer: lastframe\r\n" +
         (node.empty() ? "" : "X-Lastframe-Node: " + node + "\r\n") +
         "Content-Type: application/json\r\nRetry-After: 1\r\n"
         "Connection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

Server::Server(ServerOptions options, Application& app)
    : options_(WithDerivedLimits(std::move(options))),
      app_(app),
      connection_limit_(LimitsOf(options_, own_limits_)
                            .Add("connections", "connections", options_.max_connections)),
      per_address_limit_(
          LimitsOf(options_, own_limits_)
              .Add("connections_per_address", "connections", options_.max_connections_per_ip)),
      buffered_limit_(LimitsOf(options_, own_limits_)
                          .Add("buffered_request_bytes", "bytes", options_.max_buffered_bytes)),
      accept_strand_(net::make_strand(ioc_)),
      acceptor_(accept_strand_),
      drain_timer_(ioc_),
      accept_backoff_(accept_strand_) {}

Server::~Server() = default;

Status Server::Listen() {
  beast::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  if (ec) return InvalidArgument("cannot listen on '" + options_.host + "': not an IP address");
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Status(Code::kUnavailable, "cannot listen on " + options_.host + ":" +
                                          std::to_string(options_.port) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  spdlog::info("connections: at most {} ({} per client address)", options_.max_connections,
               options_.max_connections_per_ip);
  Accept();
  return Status::Ok();
}

void Server::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (OutOfResources(ec)) return BackOffAccept(ec);
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      Admit(std::move(socket));
      // Take what else waits in the backlog now: busy connections fill the
      // handler queue, and one accept per pass through it would leave new
      // clients (whose requests are already sent) waiting for seconds.
      acceptor_.non_blocking(true, ec);
      for (int i = 0; i < 256 && !ec; ++i) {
        tcp::socket next = acceptor_.accept(net::make_strand(ioc_), ec);
        if (ec == net::error::would_block || ec == net::error::try_again) break;
        if (OutOfResources(ec)) return BackOffAccept(ec);
        if (!ec) Admit(std::move(next));
      }
    }
    if (!stopping_) Accept();
  });
}

void Server::Admit(tcp::socket socket) {
  beast::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  std::string address = ec ? "" : peer.address().to_string();
  if (!connection_limit_.TryAcquire())
    return RefuseConnection(
        std::move(socket),
        LimitResponse(options_.node, 503, "Service Unavailable", "TooManyConnections",
                      "the server holds " + std::to_string(options_.max_connections) +
                          " connections, its limit; retry soon"));
  bool admitted = false;
  {
    MutexLock lock(mu_);
    size_t& n = per_address_[address];
    if (n < options_.max_connections_per_ip) {
      ++n;
      admitted = true;
    } else if (n == 0) {
      per_address_.erase(address);
    }
  }
  if (!admitted) {
    connection_limit_.Release();
    per_address_limit_.CountRefusal();
    return RefuseConnection(
        std::move(socket),
        LimitResponse(options_.node, 429, "Too Many Requests", "TooManyConnectionsFromAddress",
                      "this address holds " + std::to_string(options_.max_connections_per_ip) +
                          " connections, the limit per client address"));
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto session = std::make_shared<Session>(std::move(socket), *this);
  Register(session, address);
  session->Start();
}

void Server::BackOffAccept(const boost::system::error_code& ec) {
  // The connection waits in the listen queue; the served ones go on. One line a second at most.
  auto now = std::chrono::steady_clock::now();
  ++accept_failures_unlogged_;
  if (now - last_accept_warning_ >= std::chrono::seconds(1)) {
    spdlog::warn("accept failed {} time(s): {}; pausing accepts for 100 ms",
                 accept_failures_unlogged_, ec.message());
    last_accept_warning_ = now;
    accept_failures_unlogged_ = 0;
  }
  connection_limit_.CountRefusal();
  accept_backoff_.expires_after(std::chrono::milliseconds(100));
  accept_backoff_.async_wait([this](beast::error_code e) {
    if (!e && !stopping_) Accept();
  });
}

void Server::RefuseConnection(tcp::socket socket, const std::string& response) {
  // The answer is small: it fits the socket's send buffer, so one write
  // without waiting is enough, and nothing is held for the client.
  beast::error_code ec;
  socket.non_blocking(true, ec);
  net::const_buffer buf(response.data(), response.size());
  socket.write_some(buf, ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void Server::Register(const std::shared_ptr<Session>& s, const std::string& address) {
  MutexLock lock(mu_);
  sessions_[s.get()] = {s, address};
}

void Server::Unregister(Session* s) {
  bool last = false;
  {
    MutexLock lock(mu_);
    auto it = sessions_.find(s);
    if (it != sessions_.end()) {
      auto count = per_address_.find(it->second.second);
      if (count != per_address_.end() && --count->second == 0) per_address_.erase(count);
      sessions_.erase(it);
      connection_limit_.Release();
    }
    last = sessions_.empty();
  }
  if (last && stopping_) net::post(ioc_, [this] { ioc_.stop(); });
}

size_t Server::connections() const {
  MutexLock lock(mu_);
  return sessions_.size();
}

void Server::Run() {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < options_.io_threads; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  net::post(accept_strand_, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
    accept_backoff_.cancel();
    std::vector<std::shared_ptr<Session>> live;
    {
      MutexLock lock(mu_);
      for (auto& [ptr, entry] : sessions_)
        if (auto s = entry.first.lock()) live.push_back(std::move(s));
    }
    spdlog::info("draining {} connection(s)", live.size());
    if (live.empty()) {
      ioc_.stop();
      return;
    }
    for (auto& s : live) s->Shutdown();
    drain_timer_.expires_after(options_.drain_timeout);
    drain_timer_.async_wait([this](beast::error_code e) {
      if (!e) {
        spdlog::warn("drain timeout: closing {} connection(s)", connections());
        ioc_.stop();
      }
    });
  });
}

}  // namespace lastframe::http
