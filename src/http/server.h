#pragma once

#include <spdlog/common.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/limits.h"
#include "core/mutex.h"
#include "core/status.h"
#include "http/errors.h"

namespace lastframe::http {

// The writing end of a response body produced over time (GetMedia), handed
// to the handler once the response header is sent. Thread-safe.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  // Queues |chunk| to send; blocks while too much is queued unsent (a slow
  // reader slows the writer). False once the connection is gone: stop.
  virtual bool Write(std::string chunk) = 0;
  // As Write, but never blocks: false, queueing nothing, when bytes are still
  // unsent and |chunk| would put more than |max_queued| unsent, or the
  // connection is gone. For one
  // thread that writes to many readers (/v1/events): a slow one must not hold
  // up the rest.
  virtual bool TryWrite(std::string chunk, size_t max_queued) = 0;
  // The body is complete; the connection closes once it is sent.
  virtual void End() = 0;
  // Whether the connection is still there to write to.
  virtual bool open() const = 0;
};

// Called with the writer once a streamed response's header is on its way.
// It must not block: a long body is written from a thread of the handler's.
using StreamStart = std::function<void(std::shared_ptr<BodyWriter>)>;

// A request as handlers see it: the header, the decoded path and query, and
// (for ordinary routes) the whole body, already bounded by the server.
struct Request {
  boost::beast::http::request_header<> header;
  std::string path;       // percent-decoded, without the query
  std::string raw_path;   // as sent
  std::string raw_query;  // as sent, without '?'
  std::string body;
  std::string remote;  // "ip:port"
  // Answers with |head| (status and fields; its body is ignored) and then a
  // chunked body written through the BodyWriter given to |start|. A handler
  // calls this or its Respond, exactly once.
  std::function<void(Response head, StreamStart start)> respond_streaming;
  std::string target() const { return std::string(header.target()); }
};

// Answers a request exactly once, from any thread.
using Respond = std::function<void(Response)>;

// Splits |target| ("/a%20b?x=1") into |request|'s raw_path, raw_query and
// percent-decoded path, as a connection does before routing. False for a
// target the server answers 400: not a path (origin-form), or a bad escape.
bool SplitTarget(std::string_view target, Request& request);

// A request body consumed as it streams in (PutMedia). Feed/Finish/Abort are
// called on the connection's I/O strand and must never block.
class UploadSink {
 public:
  virtual ~UploadSink() = default;
  // Takes body bytes; false asks the connection to stop reading until
  // UploadEvents::on_space.
  virtual bool Feed(const uint8_t* data, size_t size) = 0;
  virtual void Finish() = 0;            // the body ended
  virtual void Abort() = 0;             // the connection failed or the server stops
  virtual void Stalled() { Abort(); }   // no progress for upload_idle_timeout
  virtual void Stopping() { Abort(); }  // the server stops before the body ended
  // When the upload last made progress (for PutMedia: a complete frame), or
  // nullopt to count any byte as progress. A producer that trickles bytes but
  // no frame is as stalled as a silent one.
  virtual std::optional<std::chrono::steady_clock::time_point> LastProgress() const {
    return std::nullopt;
  }
  // How the upload is answered. false (PutMedia): 200 at once, then lines
  // (UploadEvents::on_line) until on_done. true (an S3 PUT): one response
  // (UploadEvents::on_response) once the body is consumed, or earlier to
  // refuse it; after Abort or Stalled too. "Expect: 100-continue" is honoured.
  virtual bool AnswersOnce() const { return false; }
};

// What a sink tells its connection, from any thread.
struct UploadEvents {
  std::function<void(std::string line)> on_line;  // one line of the streamed response body
  std::function<void()> on_space;
  std::function<void()> on_done;  // no more lines; close after sending them
  // The answer of a sink that AnswersOnce; the connection closes after it.
  std::function<void(Response)> on_response;
};

// What a request is, for the request duration metric and the request log: a
// bounded set of groups, so the metric's label set stays bounded.
enum class RouteGroup : uint8_t {
  kHealthz,
  kMetrics,
  kPutMedia,
  kSnapshot,  // /snapshot and the routes that render one (/v1/streams/NAME/snapshot, latest.*)
  kApi,       // the rest of /v1/...
  kObjects,   // the embedded object store's S3 API
  kKvs,       // Kinesis Video's API
  kOther,
};
inline constexpr size_t kRouteGroups = 8;
// "healthz", "metrics", "put_media", "snapshot", "api", "objects", "kvs", "other".
std::string_view RouteGroupName(RouteGroup group);

struct RouteInfo {
  RouteGroup group = RouteGroup::kOther;
  std::string stream;  // the stream the request names, where that is cheap to know; else ""
};

// The routes. Handlers run on I/O threads: they validate, hand heavy work to
// a worker pool and return at once; the answer comes through Respond.
class Application {
 public:
  virtual ~Application() = default;
  virtual void Handle(Request request, Respond respond) = 0;
  // Whether |request|'s body must be streamed (its header alone is read).
  virtual bool IsUpload(const Request& request) const = 0;
  // Starts a streamed upload, or refuses it with an error response.
  virtual std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request& request,
                                                                          UploadEvents events) = 0;
  // Checked once an ordinary request's header is read, before its body: a
  // response refuses it (the connection then closes). A client that sent
  // "Expect: 100-continue" is told to go on only after this passes.
  virtual std::optional<Response> Admit(const Request&) { return std::nullopt; }
  // The largest body |request| may send; nullopt: the server's max_body_bytes.
  virtual std::optional<uint64_t> BodyLimit(const Request&) const { return std::nullopt; }
  // Which route |request| takes, known from its header alone; called once per
  // request, before any other of these. No default: a wrapper that forgot to
  // forward it would file every request under "other".
  virtual RouteInfo RouteOf(const Request& request) const = 0;
  // The answer to a body over its limit.
  virtual Response TooLarge(const Request&, uint64_t limit) const {
    return JsonError(413, "TooLarge",
                     "request body larger than " + std::to_string(limit) + " bytes");
  }
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  size_t io_threads = 2;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;           // ordinary requests; uploads stream unbounded
  std::chrono::seconds request_timeout{30};      // to read a request, or write a response
  std::chrono::seconds upload_idle_timeout{30};  // an upload without progress is dropped
  std::chrono::seconds drain_timeout{5};         // on Stop, in-flight requests get this long
  // Connections open at once (past it, new ones get 503 and are closed), and
  // from one client address (429). 0: derived from the file-descriptor limit.
  size_t max_connections = 0;
  size_t max_connections_per_ip = 2048;
  // Request bodies held in memory at once, all connections together: a body
  // that would pass it gets 503 with Retry-After before it is read.
  uint64_t max_buffered_bytes = 128ull << 20;
  // Where the server's limits are shown (/metrics); null: kept to itself.
  Limits* limits = nullptr;
  // The level of the "request" line logged for each request (method, route,
  // path without the query, status, duration, bytes); a request that took
  // over a second is logged at warn at least (none at off).
  spdlog::level::level_enum request_log_level = spdlog::level::debug;
  // When set, every answer names this node in an X-Lastframe-Node header
  // (ordinary, streamed and upload answers, and refusals at accept).
  std::string node;
};

// The connections a server may hold with |fd_limit| descriptors: the rest is
// kept for fragment files, decoders and outgoing connections.
size_t DefaultMaxConnections(uint64_t fd_limit);

class Session;

// An HTTP/1.1 server on Boost.Beast: a listener, one session per connection
// on its own strand, keep-alive, bounded headers and bodies, timeouts, and a
// graceful drain on Stop.
class Server {
 public:
  Server(ServerOptions options, Application& app);
  ~Server();

  // Binds and listens. Afterwards port() is the bound port (for port 0).
  Status Listen();
  uint16_t port() const { return port_; }
  boost::asio::io_context& io_context() { return ioc_; }

  // Runs the I/O threads until Stop has drained; blocks.
  void Run();
  // Stops accepting, lets in-flight requests finish (up to drain_timeout),
  // ends uploads, then returns Run. Thread-safe; idempotent.
  void Stop();

  size_t connections() const;

 private:
  friend class Session;
  void Accept();
  // Accepting failed for want of descriptors or memory: wait, then try again.
  void BackOffAccept(const boost::system::error_code& ec);
  // Serves a new connection, or answers it with the limit it is over.
  void Admit(boost::asio::ip::tcp::socket socket);
  // Answers a connection over a limit with |status| and closes it.
  void RefuseConnection(boost::asio::ip::tcp::socket socket, const std::string& response);
  void Register(const std::shared_ptr<Session>& s, const std::string& address);
  void Unregister(Session* s);

  const ServerOptions options_;
  Application& app_;
  // Declared before the io_context, so destroyed after it: sessions whose
  // handlers it still holds (a drain that timed out) unregister on its way out.
  std::atomic<bool> stopping_{false};
  Limits own_limits_;  // when options_.limits is null
  Limit& connection_limit_;
  Limit& per_address_limit_;  // in_use: none (counted per address below)
  Limit& buffered_limit_;
  mutable Mutex mu_;
  std::unordered_map<Session*, std::pair<std::weak_ptr<Session>, std::string>> sessions_
      LF_GUARDED_BY(mu_);
  // Open connections by client address.
  std::unordered_map<std::string, size_t> per_address_ LF_GUARDED_BY(mu_);
  boost::asio::io_context ioc_;
  // The acceptor, its backoff timer and Stop's closing of them run on this
  // strand: the accept handler (which drains the listen queue with the
  // acceptor) and Stop would otherwise touch the acceptor from two I/O threads.
  boost::asio::strand<boost::asio::io_context::executor_type> accept_strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer drain_timer_;
  uint16_t port_ = 0;
  boost::asio::steady_timer accept_backoff_;
  std::chrono::steady_clock::time_point last_accept_warning_{};
  uint64_t accept_failures_unlogged_ = 0;
};

}  // namespace lastframe::http
