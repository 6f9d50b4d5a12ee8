#include "http/server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/optional.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

#include "objects/sigv4.h"

namespace lastframe::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Presigned URLs are bearer credentials: logs keep the path only.
std::string LoggableTarget(const std::string& target) {
  size_t q = target.find('?');
  if (q == std::string::npos) return target;
  if (target.find("X-Amz-Signature", q) != std::string::npos)
    return target.substr(0, q) + "?<presigned>";
  return target;
}

}  // namespace

bool SplitTarget(std::string_view target, Request& request) {
  size_t q = target.find('?');
  request.raw_path = std::string(target.substr(0, q));
  request.raw_query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  auto decoded = objects::UriDecode(request.raw_path);
  if (!decoded || request.raw_path.empty() || request.raw_path[0] != '/') return false;
  request.path = std::move(*decoded);
  return true;
}

class Session;

// A streamed response body's writer: chunks are framed here and queued on the
// session's strand; the queue is bounded in bytes, so a reader that falls
// behind blocks the writing thread instead of growing memory.
class SessionBodyWriter final : public BodyWriter {
 public:
  SessionBodyWriter(std::weak_ptr<Session> session, net::any_io_executor executor)
      : session_(std::move(session)), executor_(std::move(executor)) {}
  bool Write(std::string chunk) override;
  void End() override;
  bool open() const override {
    std::lock_guard lock(mu_);
    return open_;
  }
  // The strand sent |bytes| of what was queued.
  void Sent(size_t bytes) {
    std::lock_guard lock(mu_);
    queued_ -= std::min(queued_, bytes);
    space_.notify_all();
  }
  void Close() {
    std::lock_guard lock(mu_);
    open_ = false;
    space_.notify_all();
  }

 private:
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  std::weak_ptr<Session> session_;
  net::any_io_executor executor_;
  mutable std::mutex mu_;
  std::condition_variable space_;
  size_t queued_ = 0;
  bool open_ = true;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server)
      : stream_(std::move(socket)), server_(server), options_(server.options_) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() {
    ReleaseBuffered();
    server_.Unregister(this);
  }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Called on Stop, from any thread.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->OnShutdown(); });
  }

 private:
  // ---- ordinary requests ----
  void ReadHeader() {
    if (shutting_down_) return Close();
    log_method_ = log_target_ = "-";
    is_head_ = false;
    header_parser_.emplace();
    header_parser_->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    // Body limits depend on the route, known only once the header is read.
    // (Not boost::none: Beast 1.74 compares a Content-Length against an empty
    // optional as "over the limit".)
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    idle_ = true;
    stream_.expires_after(options_.request_timeout);
    bhttp::async_read_header(stream_, buffer_, *header_parser_,
                             beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    idle_ = false;
    started_ = std::chrono::steady_clock::now();
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::eof || ec == net::error::connection_reset)
      return Close();
    if (ec == bhttp::error::header_limit)
      return SendError(
          431, "RequestHeaderFieldsTooLarge",
          "request header larger than " + std::to_string(options_.max_header_bytes) + " bytes");
    if (ec) return SendError(400, "BadRequest", "malformed HTTP request: " + ec.message());

    request_ = Request{};
    request_.header = header_parser_->get().base();
    request_.remote = remote_;
    std::string target(request_.header.target());
    if (!SplitTarget(target, request_))
      return SendError(400, "BadRequest", "malformed request target");
    keep_alive_ = header_parser_->get().keep_alive();
    log_method_ = std::string(request_.header.method_string());
    log_target_ = LoggableTarget(target);
    is_head_ = request_.header.method() == bhttp::verb::head;
    // Only chunked framing is understood: any other coding would be misread as no body.
    if (auto te = request_.header.find(bhttp::field::transfer_encoding);
        te != request_.header.end() && !beast::iequals(te->value(), "chunked"))
      return SendError(501, "NotImplemented",
                       "Transfer-Encoding '" + std::string(te->value()) +
                           "' is not supported: send the body with Content-Length or chunked");

    if (server_.app_.IsUpload(request_)) return StartUpload();

    // A declared length is checked here; chunked bodies by the parser as they come.
    body_limit_ = server_.app_.BodyLimit(request_).value_or(options_.max_body_bytes);
    if (auto length = header_parser_->content_length(); length && *length > body_limit_)
      return Refuse(server_.app_.TooLarge(request_, body_limit_));
    if (auto refused = server_.app_.Admit(request_)) return Refuse(std::move(*refused));
    // The body will be held in memory: it must fit in what all connections may buffer.
    if (!header_parser_->is_done()) {
      auto length = header_parser_->content_length();
      uint64_t need = length ? *length : body_limit_;
      if (need > server_.buffered_limit_.max()) {
        server_.buffered_limit_.CountRefusal();
        return Refuse(server_.app_.TooLarge(request_, server_.buffered_limit_.max()));
      }
      if (!server_.buffered_limit_.TryAcquire(need)) {
        Response busy = JsonError(503, "ServerBusy",
                                  "the server holds as many request bodies as it may; retry soon");
        busy.set(bhttp::field::retry_after, "1");
        return Refuse(std::move(busy));
      }
      buffered_ = need;
    }
    body_parser_.emplace(std::move(*header_parser_));
    body_parser_->body_limit(body_limit_);
    auto expect = request_.header.find(bhttp::field::expect);
    if (expect != request_.header.end() && beast::iequals(expect->value(), "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(kContinue),
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (ec) return self->Close();
                                self->ReadBody();
                              });
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *body_parser_,
                      beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  // Answers without reading the body, then closes.
  void Refuse(Response res) {
    keep_alive_ = false;
    linger_ = true;
    Send(std::move(res));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec == bhttp::error::body_limit) return Refuse(server_.app_.TooLarge(request_, body_limit_));
    if (ec == beast::error::timeout || ec == net::error::operation_aborted) return Close();
    if (ec) return SendError(400, "BadRequest", "malformed request body: " + ec.message());
    request_.body = std::move(body_parser_->get().body());
    body_parser_.reset();
    ReleaseBuffered();
    std::weak_ptr<Session> weak = shared_from_this();
    auto executor = stream_.get_executor();
    request_.respond_streaming = [weak, executor](Response head, StreamStart start) {
      net::post(executor, [weak, head = std::move(head), start = std::move(start)]() mutable {
        if (auto self = weak.lock()) self->SendStreaming(std::move(head), std::move(start));
      });
    };
    server_.app_.Handle(std::move(request_), [weak, executor](Response res) {
      // Back onto this connection's strand, whatever thread answered.
      net::post(executor, [weak, res = std::move(res)]() mutable {
        if (auto self = weak.lock()) self->Send(std::move(res));
      });
    });
    // The handler's Respond keeps only a weak reference: hold ourselves until it answers.
    awaiting_ = shared_from_this();
  }

  void ReleaseBuffered() {
    if (buffered_ == 0) return;
    server_.buffered_limit_.Release(buffered_);
    buffered_ = 0;
  }

  void SendError(unsigned status, const std::string& code, const std::string& message) {
    keep_alive_ = false;  // the stream is out of sync: answer and close
    linger_ = true;
    Send(JsonError(status, code, message));
  }

  void Send(Response res) {
    auto keep = std::move(awaiting_);  // released when this returns; the write holds us
    if (stopping_writes_) return;
    bool keep_alive = keep_alive_ && !shutting_down_;
    res.version(11);
    res.keep_alive(keep_alive);
    res.set(bhttp::field::server, "lastframe");
    if (is_head_) {
      // HEAD: the length of what GET would send, unless the handler set it.
      if (res.find(bhttp::field::content_length) == res.end())
        res.content_length(res.body().size());
      res.body().clear();
    } else {
      res.prepare_payload();
    }
    auto elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    // A request that took over a second is worth a line even when requests are not logged.
    spdlog::log(elapsed > 1000 ? spdlog::level::warn : spdlog::level::info,
                "http method={} target={} status={} bytes={} ms={:.1f} remote={}", log_method_,
                log_target_, res.result_int(), res.body().size(), elapsed, remote_);
    response_ = std::make_shared<Response>(std::move(res));
    stream_.expires_after(options_.request_timeout);
    bhttp::async_write(stream_, *response_,
                       [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                         self->response_.reset();
                         if (!ec && !keep_alive && self->linger_) return self->LingeringClose();
                         if (ec || !keep_alive) return self->Close();
                         self->ReadHeader();
                       });
  }

  // ---- streamed response bodies (GetMedia) ----
 public:
  void QueueBodyChunk(std::string framed) { QueueRaw(std::move(framed)); }
  void EndBody() { UploadDone(); }

 private:
  void SendStreaming(Response head, StreamStart start) {
    awaiting_.reset();
    if (stopping_writes_ || shutting_down_) {
      // Gone already: the handler still gets a (closed) writer, so it can clean up.
      auto closed = std::make_shared<SessionBodyWriter>(weak_from_this(), stream_.get_executor());
      closed->Close();
      start(closed);
      return Close();
    }
    std::string raw =
        "HTTP/1.1 " + std::to_string(head.result_int()) + " " +
        std::string(head.reason().empty() ? bhttp::obsolete_reason(head.result()) : head.reason()) +
        "\r\nServer: lastframe\r\n";
    for (const auto& field : head)
      if (field.name() != bhttp::field::content_length &&
          field.name() != bhttp::field::transfer_encoding &&
          field.name() != bhttp::field::connection && field.name() != bhttp::field::server)
        raw += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
    raw += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    spdlog::info("http method={} target={} status={} stream=started remote={}", log_method_,
                 log_target_, head.result_int(), remote_);
    upload_self_ = shared_from_this();  // alive until the body ends
    body_writer_ = std::make_shared<SessionBodyWriter>(weak_from_this(), stream_.get_executor());
    QueueRaw(std::move(raw));
    WatchForClose();
    start(body_writer_);
  }

  // A reader that hangs up is noticed even while no chunk is being written.
  void WatchForClose() {
    stream_.socket().async_read_some(net::buffer(Scratch()),
                                     [self = shared_from_this()](beast::error_code ec, size_t) {
                                       if (!ec && !self->upload_finished_)
                                         return self->WatchForClose();
                                       // The writing thread sees Write fail and ends the body,
                                       // which closes us.
                                       if (self->body_writer_) self->body_writer_->Close();
                                       self->stopping_writes_ = true;
                                     });
  }

  // ---- streamed uploads (PutMedia) ----
  void StartUpload() {
    std::weak_ptr<Session> weak = shared_from_this();
    auto ex = stream_.get_executor();
    UploadEvents events;
    events.on_line = [weak, ex](std::string line) {
      net::post(ex, [weak, line = std::move(line)]() mutable {
        if (auto self = weak.lock()) self->QueueLine(std::move(line));
      });
    };
    events.on_space = [weak, ex] {
      net::post(ex, [weak] {
        if (auto self = weak.lock()) self->ResumeUpload();
      });
    };
    events.on_done = [weak, ex] {
      net::post(ex, [weak] {
        if (auto self = weak.lock()) self->UploadDone();
      });
    };
    auto started = server_.app_.StartUpload(request_, std::move(events));
    if (auto* refused = std::get_if<Response>(&started)) {
      keep_alive_ = false;
      linger_ = true;
      return Send(std::move(*refused));
    }
    sink_ = std::move(std::get<std::unique_ptr<UploadSink>>(started));
    upload_parser_.emplace(std::move(*header_parser_));
    upload_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    upload_self_ = shared_from_this();  // alive until the sink says it is done
    spdlog::info("http method={} target={} upload=started remote={}", log_method_, log_target_,
                 remote_);
    // Kinesis Video answers 200 at once and streams acknowledgements after it.
    QueueRaw(
        "HTTP/1.1 200 OK\r\nServer: lastframe\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    // Our own idle timer, not the stream's expiry: that would close the socket,
    // and a stalled producer is owed an ERROR acknowledgement first.
    stream_.expires_never();
    last_upload_read_ = std::chrono::steady_clock::now();
    WatchUploadProgress(options_.upload_idle_timeout);
    ReadUpload();
  }

  // Ends an upload that made no progress (a complete frame, or for sinks
  // that do not say, a byte) for upload_idle_timeout.
  void WatchUploadProgress(std::chrono::steady_clock::duration wait) {
    upload_idle_timer_.expires_after(wait);
    upload_idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->upload_reading_done_ || !self->sink_) return;
      auto now = std::chrono::steady_clock::now();
      // While we hold the producer back (the parser is behind), it cannot progress.
      auto last =
          self->paused_ ? now : self->sink_->LastProgress().value_or(self->last_upload_read_);
      auto deadline = last + self->options_.upload_idle_timeout;
      if (now < deadline) return self->WatchUploadProgress(deadline - now);
      self->upload_reading_done_ = true;
      self->stalled_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);  // the pending read ends
      spdlog::info("http upload from {} stalled: no progress for {} s", self->remote_,
                   self->options_.upload_idle_timeout.count());
      self->sink_->Stalled();  // the sink acks the error and ends
    });
  }

  void ReadUpload() {
    if (upload_reading_done_) return;
    paused_ = false;
    auto& body = upload_parser_->get().body();
    body.data = Scratch().data();
    body.size = Scratch().size();
    bhttp::async_read_some(stream_, buffer_, *upload_parser_,
                           beast::bind_front_handler(&Session::OnUploadRead, shared_from_this()));
  }

  void OnUploadRead(beast::error_code ec, size_t) {
    if (stalled_) return;  // the idle timer ended this upload
    last_upload_read_ = std::chrono::steady_clock::now();
    if (ec == bhttp::error::need_buffer) ec = {};
    size_t got = Scratch().size() - upload_parser_->get().body().size;
    bool more = true;
    if (got > 0 && sink_) more = sink_->Feed(Scratch().data(), got);
    if (ec || upload_parser_->is_done()) {
      upload_reading_done_ = true;
      upload_idle_timer_.cancel();
      if (!sink_) return;
      // A connection that ends early still delivered whole frames: let the
      // parser keep them. (ffmpeg, which never reads the acknowledgements,
      // ends its upload with a reset rather than a clean close.)
      if (ec) spdlog::info("http upload from {} ended: {}", remote_, ec.message());
      sink_->Finish();
      return;
    }
    if (!more) {
      paused_ = true;  // ResumeUpload reads again once the parser has caught up
      return;
    }
    ReadUpload();
  }

  void ResumeUpload() {
    if (paused_ && !upload_reading_done_) ReadUpload();
  }

  void QueueLine(std::string line) {
    line.push_back('\n');
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", line.size());
    QueueRaw(size + line + "\r\n");
  }

  void QueueRaw(std::string bytes) {
    if (stopping_writes_) return;
    // A producer that never reads its acknowledgements must not grow this
    // without bound: past the cap, the oldest unsent lines are dropped.
    // (A streamed body is bounded by its writer instead: nothing may be dropped.)
    constexpr size_t kMaxQueued = 1024;
    if (!body_writer_ && writes_.size() >= kMaxQueued) writes_.erase(writes_.begin() + 1);
    writes_.push_back(std::move(bytes));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (writes_.empty()) {
      writing_ = false;
      if (upload_finished_) FinishUpload();
      return;
    }
    writing_ = true;
    // A streamed body's reader that stops reading is dropped after the request timeout.
    if (body_writer_) stream_.expires_after(options_.request_timeout);
    net::async_write(stream_, net::buffer(writes_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t n) {
                       self->writes_.pop_front();
                       if (self->body_writer_) self->body_writer_->Sent(n);
                       if (ec) {
                         if (self->body_writer_) self->body_writer_->Close();
                         // The peer stopped reading (ffmpeg never reads its acks and
                         // resets on close). Stop writing, but keep reading: the bytes
                         // it sent before are still to be parsed.
                         self->stopping_writes_ = true;
                         self->writes_.clear();
                         self->writing_ = false;
                         if (self->upload_finished_) self->FinishUpload();
                         return;
                       }
                       self->WriteNext();
                     });
  }

  void UploadDone() {
    if (upload_finished_) return;
    upload_finished_ = true;
    QueueRaw("0\r\n\r\n");
    if (!writing_) FinishUpload();
  }

  void FinishUpload() {
    auto elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    spdlog::info("http method={} target={} status=200 ended ms={:.1f} remote={}", log_method_,
                 log_target_, elapsed, remote_);
    Close();
    upload_self_.reset();  // may destroy us once the current handler returns
  }

  void OnShutdown() {
    shutting_down_ = true;
    if (body_writer_ && !upload_finished_) {
      body_writer_->Close();  // the writing thread stops at its next chunk
      UploadDone();
      return;
    }
    if (sink_ && !upload_finished_) {
      upload_reading_done_ = true;
      sink_->Abort();  // the sink ends promptly and calls on_done
      return;
    }
    if (idle_) {
      beast::error_code ec;
      stream_.socket().cancel(ec);  // the pending header read ends and closes
    }
  }

  // After refusing a request whose body is still arriving: stop sending, and
  // read and discard for a while, so the client finishes writing and reads
  // our answer instead of meeting a reset.
  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    Discard();
  }
  void Discard() {
    constexpr size_t kMaxDiscard = 64 * 1024 * 1024;
    stream_.async_read_some(net::buffer(Scratch()),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ > kMaxDiscard) return self->Close();
                              self->Discard();
                            });
  }

  void Close() {
    if (body_writer_) body_writer_->Close();
    upload_idle_timer_.cancel();  // its handler holds us alive
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Server& server_;
  const ServerOptions& options_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> header_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> body_parser_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> upload_parser_;
  Request request_;
  std::string log_method_ = "-";  // kept for the log line: request_ moves to the handler
  std::string log_target_ = "-";
  bool is_head_ = false;
  uint64_t body_limit_ = 0;
  uint64_t buffered_ = 0;  // reserved of the server's buffered-bytes limit
  bool linger_ = false;
  size_t discarded_ = 0;
  bool keep_alive_ = false;
  bool idle_ = false;
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::shared_ptr<Response> response_;
  std::shared_ptr<Session> awaiting_;

  std::unique_ptr<UploadSink> sink_;
  std::shared_ptr<SessionBodyWriter> body_writer_;
  std::shared_ptr<Session> upload_self_;
  // Read buffer of uploads and discarded bodies, made on first use: an idle
  // keep-alive connection costs no more than its header buffer.
  std::vector<uint8_t>& Scratch() {
    if (scratch_.empty()) scratch_.resize(64 * 1024);
    return scratch_;
  }
  std::vector<uint8_t> scratch_;
  bool paused_ = false;
  bool stalled_ = false;
  std::chrono::steady_clock::time_point last_upload_read_{};
  net::steady_timer upload_idle_timer_{stream_.get_executor()};
  bool upload_reading_done_ = false;
  bool upload_finished_ = false;
  std::deque<std::string> writes_;
  bool writing_ = false;
  bool stopping_writes_ = false;
};

bool SessionBodyWriter::Write(std::string chunk) {
  if (chunk.empty()) return open();  // an empty chunk would end the body
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  std::string framed = size + chunk + "\r\n";
  {
    std::unique_lock lock(mu_);
    space_.wait(lock, [&] { return !open_ || queued_ < kMaxQueuedBytes; });
    if (!open_) return false;
    queued_ += framed.size();
  }
  net::post(executor_, [weak = session_, framed = std::move(framed)]() mutable {
    if (auto self = weak.lock()) self->QueueBodyChunk(std::move(framed));
  });
  return true;
}

void SessionBodyWriter::End() {
  net::post(executor_, [weak = session_] {
    if (auto self = weak.lock()) self->EndBody();
  });
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
std::string LimitResponse(unsigned status, const char* reason, const std::string& code,
                          const std::string& message) {
  std::string body = nlohmann::json{{"code", code}, {"message", message}}.dump() + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nServer: lastframe\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
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
      acceptor_(ioc_),
      drain_timer_(ioc_),
      accept_backoff_(ioc_) {}

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
        LimitResponse(503, "Service Unavailable", "TooManyConnections",
                      "the server holds " + std::to_string(options_.max_connections) +
                          " connections, its limit; retry soon"));
  bool admitted = false;
  {
    std::lock_guard lock(mu_);
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
        LimitResponse(429, "Too Many Requests", "TooManyConnectionsFromAddress",
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
  std::lock_guard lock(mu_);
  sessions_[s.get()] = {s, address};
}

void Server::Unregister(Session* s) {
  bool last = false;
  {
    std::lock_guard lock(mu_);
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
  std::lock_guard lock(mu_);
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
  net::post(ioc_, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
    accept_backoff_.cancel();
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(mu_);
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
