#include "http/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/optional.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>
#include <variant>

#include "core/log.h"
#include "core/metrics.h"

namespace lastframe::http {

namespace {

// lastframe_http_request_duration_seconds' child for |route| and |status|'s
// class. Each child is looked up once, on its first request (With takes a
// lock), then read from a table: a request costs one observation, and only
// the pairs that occurred show on /metrics (not 40 histograms of zeros).
metrics::Histogram& RequestDuration(RouteGroup route, unsigned status) {
  static constexpr std::array<const char*, 5> kClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  static auto& family = metrics::Registry::Global().Histograms(
      "lastframe_http_request_duration_seconds",
      "HTTP requests, from their header read to their answer handed to the socket (a streamed "
      "body's or an upload's header), by route group and status class.",
      {"route", "code"}, metrics::LatencyBuckets());
  static std::array<std::array<std::atomic<metrics::Histogram*>, kClasses.size()>, kRouteGroups>
      children{};
  const size_t c = std::clamp<unsigned>(status / 100, 1, 5) - 1;
  std::atomic<metrics::Histogram*>& slot = children[static_cast<size_t>(route)][c];
  metrics::Histogram* child = slot.load(std::memory_order_acquire);
  if (child == nullptr) {  // two threads may both look it up: With gives both the same child
    child = &family.With({std::string(RouteGroupName(route)), kClasses[c]});
    slot.store(child, std::memory_order_release);
  }
  return *child;
}

}  // namespace

std::string_view RouteGroupName(RouteGroup group) {
  switch (group) {
    case RouteGroup::kHealthz:
      return "healthz";
    case RouteGroup::kMetrics:
      return "metrics";
    case RouteGroup::kPutMedia:
      return "put_media";
    case RouteGroup::kSnapshot:
      return "snapshot";
    case RouteGroup::kApi:
      return "api";
    case RouteGroup::kObjects:
      return "objects";
    case RouteGroup::kKvs:
      return "kvs";
    case RouteGroup::kOther:
      break;
  }
  return "other";
}

Session::Session(tcp::socket socket, Server& server)
    : stream_(std::move(socket)), server_(server), options_(server.options_) {
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
}

Session::~Session() {
  ReleaseBuffered();
  server_.Unregister(this);
}

void Session::Start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
}

void Session::Shutdown() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->OnShutdown(); });
}

// ---- ordinary requests ----

void Session::ReadHeader() {
  if (shutting_down_) return Close();
  log_method_ = log_path_ = "-";
  route_ = {};
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

void Session::OnHeader(beast::error_code ec, size_t) {
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
  log_path_ = request_.raw_path;
  route_ = server_.app_.RouteOf(request_);
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

void Session::ReadBody() {
  bhttp::async_read(stream_, buffer_, *body_parser_,
                    beast::bind_front_handler(&Session::OnBody, shared_from_this()));
}

void Session::Refuse(Response res) {
  keep_alive_ = false;
  linger_ = true;
  Send(std::move(res));
}

void Session::OnBody(beast::error_code ec, size_t) {
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

void Session::ReleaseBuffered() {
  if (buffered_ == 0) return;
  server_.buffered_limit_.Release(buffered_);
  buffered_ = 0;
}

void Session::SendError(unsigned status, const std::string& code, const std::string& message) {
  keep_alive_ = false;  // the stream is out of sync: answer and close
  linger_ = true;
  Send(JsonError(status, code, message));
}

void Session::Send(Response res) {
  auto keep = std::move(awaiting_);  // released when this returns; the write holds us
  if (stopping_writes_) return;
  bool keep_alive = keep_alive_ && !shutting_down_;
  res.version(11);
  res.keep_alive(keep_alive);
  res.set(bhttp::field::server, "lastframe");
  if (!options_.node.empty()) res.set("X-Lastframe-Node", options_.node);
  if (is_head_) {
    // HEAD: the length of what GET would send, unless the handler set it.
    if (res.find(bhttp::field::content_length) == res.end()) res.content_length(res.body().size());
    res.body().clear();
  } else {
    res.prepare_payload();
  }
  CountRequest(res.result_int(), res.body().size());
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

void Session::CountRequest(unsigned status, std::optional<uint64_t> bytes) {
  const double seconds = metrics::SecondsSince(started_);
  RequestDuration(route_.group, status).Observe(seconds);
  auto level = options_.request_log_level;
  // A request that took over a second is worth a line even when requests are not logged.
  if (seconds > 1 && level < spdlog::level::warn) level = spdlog::level::warn;
  LogRequest(level, "request", status, seconds, bytes);
}

void Session::LogRequest(spdlog::level::level_enum level, std::string_view message, unsigned status,
                         double seconds, std::optional<uint64_t> bytes) {
  if (!spdlog::should_log(level)) return;
  const log::Field method("method", log_method_), route("route", RouteGroupName(route_.group)),
      path("path", log_path_), code("status", static_cast<int>(status)),
      ms("duration_ms", std::round(seconds * 10'000) / 10), remote("remote", remote_);
  const bool has_stream = !route_.stream.empty();
  if (bytes && has_stream)
    log::Event(level, message,
               {method, route, path, code, ms, log::Field("bytes", *bytes),
                log::Field("stream", route_.stream), remote});
  else if (bytes)
    log::Event(level, message,
               {method, route, path, code, ms, log::Field("bytes", *bytes), remote});
  else if (has_stream)
    log::Event(level, message,
               {method, route, path, code, ms, log::Field("stream", route_.stream), remote});
  else
    log::Event(level, message, {method, route, path, code, ms, remote});
}

// ---- streamed response bodies (GetMedia) ----

void Session::SendStreaming(Response head, StreamStart start) {
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
  if (!options_.node.empty()) head.set("X-Lastframe-Node", options_.node);
  for (const auto& field : head)
    if (field.name() != bhttp::field::content_length &&
        field.name() != bhttp::field::transfer_encoding &&
        field.name() != bhttp::field::connection && field.name() != bhttp::field::server)
      raw += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
  raw += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  status_ = head.result_int();
  CountRequest(status_, std::nullopt);
  upload_self_ = shared_from_this();  // alive until the body ends
  body_writer_ = std::make_shared<SessionBodyWriter>(weak_from_this(), stream_.get_executor());
  QueueRaw(std::move(raw));
  WatchForClose();
  start(body_writer_);
}

void Session::WatchForClose() {
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

void Session::StartUpload() {
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
  events.on_response = [weak, ex](Response res) {
    net::post(ex, [weak, res = std::move(res)]() mutable {
      if (auto self = weak.lock()) self->AnswerUpload(std::move(res));
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
  // Our own idle timer, not the stream's expiry: that would close the socket,
  // and a stalled producer is owed an ERROR acknowledgement first.
  stream_.expires_never();
  last_upload_read_ = std::chrono::steady_clock::now();
  // Beast reads as much as the buffer has room for (at least 512 bytes): room for 64 KiB
  // reads, or a body arrives in thousands of tiny ones (a PutMedia producer at 1 Mbit/s had
  // cost ~100 reads a second, and 500 producers most of a core in reads alone).
  buffer_.reserve(64 * 1024);
  if (sink_->AnswersOnce()) {
    auto expect = request_.header.find(bhttp::field::expect);
    if (expect != request_.header.end() && beast::iequals(expect->value(), "100-continue")) {
      // Nothing is read until it is sent: an answer meanwhile waits for it (AnswerUpload).
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      continue_pending_ = true;
      return net::async_write(stream_, net::buffer(kContinue),
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                self->continue_pending_ = false;
                                if (self->upload_answer_) {
                                  Response res = std::move(*self->upload_answer_);
                                  self->upload_answer_.reset();
                                  return self->AnswerUpload(std::move(res));
                                }
                                if (ec) return self->sink_->Abort();  // it answers, in vain
                                self->WatchUploadProgress(self->options_.upload_idle_timeout);
                                self->ReadUpload();
                              });
    }
  } else {
    status_ = 200;
    CountRequest(status_, std::nullopt);
    // Kinesis Video answers 200 at once and streams acknowledgements after it.
    QueueRaw("HTTP/1.1 200 OK\r\nServer: lastframe\r\n" +
             (options_.node.empty() ? "" : "X-Lastframe-Node: " + options_.node + "\r\n") +
             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
             "Connection: close\r\n\r\n");
  }
  WatchUploadProgress(options_.upload_idle_timeout);
  ReadUpload();
}

void Session::WatchUploadProgress(std::chrono::steady_clock::duration wait) {
  upload_idle_timer_.expires_after(wait);
  upload_idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->upload_reading_done_ || !self->sink_) return;
    auto now = std::chrono::steady_clock::now();
    // While we hold the producer back (the parser is behind), it cannot progress.
    auto last = self->paused_ ? now : self->sink_->LastProgress().value_or(self->last_upload_read_);
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

void Session::ReadUpload() {
  if (upload_reading_done_) return;
  paused_ = false;
  auto& body = upload_parser_->get().body();
  body.data = Scratch().data();
  body.size = Scratch().size();
  upload_reading_ = true;
  if (upload_parser_->is_done()) {
    // An empty body (or one read whole with the header): a read would wait for bytes that never
    // come. Finish as a read would, from the strand, never from inside the caller.
    return net::post(stream_.get_executor(),
                     beast::bind_front_handler(&Session::OnUploadRead, shared_from_this(),
                                               beast::error_code{}, 0));
  }
  bhttp::async_read_some(stream_, buffer_, *upload_parser_,
                         beast::bind_front_handler(&Session::OnUploadRead, shared_from_this()));
}

void Session::OnUploadRead(beast::error_code ec, size_t) {
  upload_reading_ = false;
  if (upload_answer_) {  // answered while this read was pending (and cancelled)
    Response res = std::move(*upload_answer_);
    upload_answer_.reset();
    return AnswerUpload(std::move(res));
  }
  if (stalled_) return;                                  // the idle timer ended this upload
  if (upload_finished_ && sink_->AnswersOnce()) return;  // answered: nothing more is read
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
    // An object is stored whole or not at all: one cut short is abandoned.
    if (ec && sink_->AnswersOnce() && !upload_parser_->is_done())
      sink_->Abort();
    else
      sink_->Finish();
    return;
  }
  if (!more) {
    paused_ = true;  // ResumeUpload reads again once the parser has caught up
    return;
  }
  ReadUpload();
}

void Session::ResumeUpload() {
  if (paused_ && !upload_reading_done_) ReadUpload();
}

void Session::AnswerUpload(Response res) {
  if (upload_finished_) return;
  if (upload_reading_ || continue_pending_) {
    // One read and one write at a time: the pending one ends first (a pending
    // read is cut short; LingeringClose reads too).
    upload_answer_ = std::move(res);
    beast::error_code ignored;
    if (upload_reading_) stream_.socket().cancel(ignored);
    return;
  }
  upload_finished_ = true;
  upload_reading_done_ = true;
  upload_idle_timer_.cancel();
  const bool whole = upload_parser_ && upload_parser_->is_done();
  keep_alive_ = false;
  linger_ = !whole;  // a refusal mid-body: let the client finish sending and read it
  status_ = res.result_int();
  Send(std::move(res));
  upload_self_.reset();  // the write holds us now
}

void Session::QueueLine(std::string line) {
  line.push_back('\n');
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", line.size());
  QueueRaw(size + line + "\r\n");
}

void Session::QueueRaw(std::string bytes) {
  if (stopping_writes_) return;
  // A producer that never reads its acknowledgements must not grow this
  // without bound: past the cap, the oldest unsent lines are dropped.
  // (A streamed body is bounded by its writer instead: nothing may be dropped.)
  constexpr size_t kMaxQueued = 1024;
  if (!body_writer_ && writes_.size() >= kMaxQueued) writes_.erase(writes_.begin() + 1);
  writes_.push_back(std::move(bytes));
  if (!writing_) WriteNext();
}

void Session::WriteNext() {
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

void Session::UploadDone() {
  if (upload_finished_) return;
  upload_finished_ = true;
  QueueRaw("0\r\n\r\n");
  if (!writing_) FinishUpload();
}

void Session::FinishUpload() {
  LogRequest(options_.request_log_level, "request ended", status_, metrics::SecondsSince(started_),
             std::nullopt);
  Close();
  upload_self_.reset();  // may destroy us once the current handler returns
}

void Session::OnShutdown() {
  shutting_down_ = true;
  if (body_writer_ && !upload_finished_) {
    body_writer_->Close();  // the writing thread stops at its next chunk
    UploadDone();
    return;
  }
  if (sink_ && !upload_finished_) {
    // A body that arrived whole is being stored: its answer is on its way, and must say so.
    if (sink_->AnswersOnce() && upload_reading_done_) return;
    upload_reading_done_ = true;
    sink_->Stopping();  // the sink ends promptly and answers (on_done or on_response)
    return;
  }
  if (idle_) {
    beast::error_code ec;
    stream_.socket().cancel(ec);  // the pending header read ends and closes
  }
}

void Session::LingeringClose() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.expires_after(std::chrono::seconds(5));
  Discard();
}

void Session::Discard() {
  constexpr size_t kMaxDiscard = 64 * 1024 * 1024;
  stream_.async_read_some(net::buffer(Scratch()),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->discarded_ += n;
                            if (ec || self->discarded_ > kMaxDiscard) return self->Close();
                            self->Discard();
                          });
}

void Session::Close() {
  if (body_writer_) body_writer_->Close();
  upload_idle_timer_.cancel();  // its handler holds us alive
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

bool SessionBodyWriter::Write(std::string chunk) {
  if (chunk.empty()) return open();  // an empty chunk would end the body
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  std::string framed = size + chunk + "\r\n";
  {
    MutexLock lock(mu_);
    lock.Wait(space_, [this]() LF_REQUIRES(mu_) { return !open_ || queued_ < kMaxQueuedBytes; });
    if (!open_) return false;
    queued_ += framed.size();
  }
  net::post(executor_, [weak = session_, framed = std::move(framed)]() mutable {
    if (auto self = weak.lock()) self->QueueBodyChunk(std::move(framed));
  });
  return true;
}

bool SessionBodyWriter::TryWrite(std::string chunk, size_t max_queued) {
  if (chunk.empty()) return open();
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  std::string framed = size + chunk + "\r\n";
  {
    MutexLock lock(mu_);
    // The bound is on what is behind: a first chunk of any size goes (a new
    // subscriber's first events name every stream at once).
    if (!open_ || (queued_ > 0 && queued_ + framed.size() > std::min(max_queued, kMaxQueuedBytes)))
      return false;
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

}  // namespace lastframe::http
