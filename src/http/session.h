#pragma once

// One connection of the Server: its read, dispatch and write state machine,
// streamed request bodies (uploads) and streamed response bodies. Private to
// http/: server.cpp and session.cpp include it, nothing outside this folder.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "http/server.h"

namespace lastframe::http {

// Shorthands of server.cpp and session.cpp.
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

// A streamed response body's writer: chunks are framed here and queued on the
// session's strand; the queue is bounded in bytes, so a reader that falls
// behind blocks the writing thread instead of growing memory.
class SessionBodyWriter final : public BodyWriter {
 public:
  SessionBodyWriter(std::weak_ptr<Session> session, net::any_io_executor executor)
      : session_(std::move(session)), executor_(std::move(executor)) {}
  bool Write(std::string chunk) override;
  bool TryWrite(std::string chunk, size_t max_queued) override;
  void End() override;
  bool open() const override {
    MutexLock lock(mu_);
    return open_;
  }
  // The strand sent |bytes| of what was queued.
  void Sent(size_t bytes) {
    MutexLock lock(mu_);
    queued_ -= std::min(queued_, bytes);
    space_.notify_all();
  }
  void Close() {
    MutexLock lock(mu_);
    open_ = false;
    space_.notify_all();
  }

 private:
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  std::weak_ptr<Session> session_;
  net::any_io_executor executor_;
  mutable Mutex mu_;
  std::condition_variable space_;
  size_t queued_ LF_GUARDED_BY(mu_) = 0;
  bool open_ LF_GUARDED_BY(mu_) = true;
};

// One connection, on its own strand; it unregisters from the Server when destroyed.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server);
  ~Session();

  void Start();

  // Called on Stop, from any thread.
  void Shutdown();

 private:
  // ---- ordinary requests ----
  void ReadHeader();
  void OnHeader(beast::error_code ec, size_t);
  void ReadBody();
  // Answers without reading the body, then closes.
  void Refuse(Response res);
  void OnBody(beast::error_code ec, size_t);
  void ReleaseBuffered();
  void SendError(unsigned status, const std::string& code, const std::string& message);
  void Send(Response res);
  // The request's duration metric and its log line, as its answer is handed
  // to the socket (a streamed body's or an upload's header included).
  void CountRequest(unsigned status, std::optional<uint64_t> bytes);
  // The "request" (or, at a streamed body's end, "request ended") line.
  void LogRequest(spdlog::level::level_enum level, std::string_view message, unsigned status,
                  double seconds, std::optional<uint64_t> bytes);

  // ---- streamed response bodies (GetMedia) ----
 public:
  void QueueBodyChunk(std::string framed) { QueueRaw(std::move(framed)); }
  void EndBody() { UploadDone(); }

 private:
  void SendStreaming(Response head, StreamStart start);
  // A reader that hangs up is noticed even while no chunk is being written.
  void WatchForClose();

  // ---- streamed uploads (PutMedia) ----
  void StartUpload();
  // Ends an upload that made no progress (a complete frame, or for sinks
  // that do not say, a byte) for upload_idle_timeout.
  void WatchUploadProgress(std::chrono::steady_clock::duration wait);
  void ReadUpload();
  void OnUploadRead(beast::error_code ec, size_t);
  void ResumeUpload();
  // The answer of a sink that AnswersOnce: sent once no read is pending.
  void AnswerUpload(Response res);
  void QueueLine(std::string line);
  void QueueRaw(std::string bytes);
  void WriteNext();
  void UploadDone();
  void FinishUpload();
  void OnShutdown();

  // After refusing a request whose body is still arriving: stop sending, and
  // read and discard for a while, so the client finishes writing and reads
  // our answer instead of meeting a reset.
  void LingeringClose();
  void Discard();
  void Close();

  beast::tcp_stream stream_;
  Server& server_;
  const ServerOptions& options_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> header_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> body_parser_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> upload_parser_;
  Request request_;
  // Kept for the log line and the metric: request_ moves to the handler.
  std::string log_method_ = "-";
  std::string log_path_ = "-";  // the path as sent; never the query (it holds signatures)
  RouteInfo route_;
  unsigned status_ = 0;  // of a streamed body or upload, for its end's line
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
  bool upload_reading_ = false;            // a read of the upload's body is pending
  bool continue_pending_ = false;          // "100 Continue" is being written
  std::optional<Response> upload_answer_;  // waits for that read to end
  std::deque<std::string> writes_;
  bool writing_ = false;
  bool stopping_writes_ = false;
};

}  // namespace lastframe::http
