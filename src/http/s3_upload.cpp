// The embedded store's streamed PUTs: PutObject and UploadPart bodies go to
// disk as they arrive, never whole in memory. The I/O strand only queues the
// bytes (S3UploadSink::Feed); a worker decodes aws-chunked framing, checks
// chunk signatures, hashes (MD5 for the ETag, SHA-256 for a signed payload,
// the client's checksum and CRC64NVME) and writes; the answer comes once the
// body is consumed, or earlier when it is refused.

#include <atomic>

#include "aws/aws_chunked.h"
#include "aws/checksums.h"
#include "core/encoding.h"
#include "core/mutex.h"
#include "http/s3_api.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;

namespace {

// Bytes queued between the connection and the worker: past it, reading pauses.
constexpr size_t kMaxPending = 1 << 20;
// What wakes the worker (or the body's end).
constexpr size_t kBatch = 256 << 10;
// Bytes queued by all uploads together: past it, each upload pauses after
// every read until its worker has taken what it queued.
constexpr uint64_t kMaxQueuedAllUploads = 64ull << 20;
std::atomic<uint64_t> queued_all_uploads{0};

Status InvalidRequest(std::string message) {
  return Status(Code::kInvalidArgument, std::move(message), Reason::kInvalidRequest);
}

// The body's consumer, shared by the sink (on the connection's strand) and the
// worker task that drains it; it lives until both are done with it.
class UploadState : public std::enable_shared_from_this<UploadState> {
 public:
  UploadState(objects::LocalStore& store, WorkerPool& workers, S3UploadPlan plan,
              UploadEvents events)
      : store_(store), workers_(workers), plan_(std::move(plan)), events_(std::move(events)) {}
  ~UploadState() {
    MutexLock lock(mu_);
    queued_all_uploads.fetch_sub(pending_.size());  // what an abandoned upload left queued
  }

  bool Feed(const uint8_t* data, size_t size) {
    MutexLock lock(mu_);
    if (answered_) return true;  // the connection stops reading once it has the answer
    pending_.append(reinterpret_cast<const char*>(data), size);
    const uint64_t all = queued_all_uploads.fetch_add(size) + size;
    // The worker wakes for a batch, not for every read: fewer hand-offs, longer hashing runs.
    if (pending_.size() >= kBatch) Schedule();
    // Past the bound for all uploads, each pauses after every read until its worker drained it.
    if (pending_.size() < kMaxPending && all <= kMaxQueuedAllUploads) return true;
    // Paused: the worker, which resumes reading (on_space), must be on its way.
    Schedule();
    want_space_ = true;
    return false;
  }

  void Finish() {
    MutexLock lock(mu_);
    ended_ = true;
    Schedule();
  }

  void Abort(const Status& why) {
    MutexLock lock(mu_);
    if (answered_) return;
    answered_ = true;
    // The client hears of it only once the bytes written aside are gone: here
    // when no worker task holds the writer, else as that task ends (Run).
    if (scheduled_) {
      abort_answer_ = S3Error(why, plan_.resource);
      return;
    }
    lock.Unlock();
    writer_.reset();  // no task runs, and none starts once answered_
    events_.on_response(S3Error(why, plan_.resource));
  }

 private:
  // Runs the worker task unless it runs already.
  void Schedule() LF_REQUIRES(mu_) {
    if (scheduled_ || answered_) return;
    scheduled_ = true;
    if (workers_.TryPost([self = shared_from_this()] { self->Run(); })) return;
    scheduled_ = false;
    answered_ = true;
    // Called under the lock: on_response only posts to the connection's strand.
    events_.on_response(
        S3Error(Status(Code::kUnavailable, "Please reduce your request rate.", Reason::kSlowDown),
                plan_.resource));
  }

  // One batch per task, then the task is posted again: an upload as fast as
  // the network does not keep a worker from snapshot renders and other uploads.
  void Run() {
    for (;;) {
      bool ended = false, space = false;
      {
        MutexLock lock(mu_);
        if (answered_) {
          scheduled_ = false;
          writer_.reset();  // the temp file goes
          if (abort_answer_) events_.on_response(*std::exchange(abort_answer_, std::nullopt));
          return;
        }
        // The buffers trade places: each keeps its capacity, so neither grows again.
        batch_.clear();
        batch_.swap(pending_);
        queued_all_uploads.fetch_sub(batch_.size());
        ended = ended_;
        if (batch_.empty() && !ended) {
          scheduled_ = false;
          return;
        }
        if (want_space_) {
          want_space_ = false;
          space = true;
        }
      }
      if (space) events_.on_space();
      Status status = batch_.empty() ? Status::Ok() : Consume(batch_);
      // A buffer grown by a burst is given back rather than kept for the whole upload.
      if (batch_.capacity() > 2 * kBatch) std::string().swap(batch_);
      if (!status.ok()) return AnswerOnce(S3Error(status, plan_.resource));
      {
        MutexLock lock(mu_);
        // Aborted meanwhile (the connection failed or the server stops): nothing is committed.
        if (answered_) {
          scheduled_ = false;
          writer_.reset();
          if (abort_answer_) events_.on_response(*std::exchange(abort_answer_, std::nullopt));
          return;
        }
        if (pending_.empty() && ended) {
          lock.Unlock();
          return AnswerOnce(Complete());
        }
        if (pending_.empty() && !ended_) {
          scheduled_ = false;
          return;
        }
      }
      // More to do (bytes that came meanwhile, or the end): again, behind the queue
      // (or at once, here, when the queue is full).
      if (workers_.TryPost([self = shared_from_this()] { self->Run(); })) return;
    }
  }

  void AnswerOnce(Response res) {
    std::optional<Response> answer;
    {
      MutexLock lock(mu_);
      scheduled_ = false;
      // Answered already: by Abort, whose answer waits for the writer to go.
      answer = answered_ ? std::exchange(abort_answer_, std::nullopt) : std::move(res);
      answered_ = true;
    }
    writer_.reset();
    if (answer) events_.on_response(std::move(*answer));
  }

  Status Begin() {
    objects::ObjectMeta reserve = plan_.meta;
    auto writer = store_.BeginWrite(reserve);
    if (!writer.ok()) return writer.status();
    writer_ = std::move(*writer);
    if (plan_.chunked) decoder_.emplace(*plan_.chunked, plan_.signing, plan_.declared_trailer);
    if (plan_.payload_sha256) sha256_.emplace(aws::ChecksumAlgorithm::kSha256);
    for (aws::ChecksumAlgorithm a : plan_.algorithms) checksums_.emplace_back(a);
    return Status::Ok();
  }

  Status Consume(std::string_view bytes) {
    if (!writer_) LF_RETURN_IF_ERROR(Begin());
    if (!decoder_) return Take(bytes);
    decoded_.clear();
    LF_RETURN_IF_ERROR(decoder_->Feed(bytes, decoded_));
    Status taken = Take(decoded_);
    if (decoded_.capacity() > 2 * kBatch) std::string().swap(decoded_);
    return taken;
  }

  Status Take(std::string_view payload) {
    if (payload.empty()) return Status::Ok();
    size_ += payload.size();
    if (size_ > plan_.max_bytes)
      return Status(Code::kTooLarge,
                    "Your proposed upload exceeds the maximum allowed size of " +
                        std::to_string(plan_.max_bytes) + " bytes",
                    Reason::kEntityTooLarge);
    if (plan_.decoded_length && size_ > *plan_.decoded_length)
      return Status(Code::kInvalidArgument,
                    "The body holds more than x-amz-decoded-content-length says",
                    Reason::kIncompleteBody);
    md5_.Update(payload);
    if (sha256_) sha256_->Update(payload);
    for (aws::Checksum& c : checksums_) c.Update(payload);
    return writer_->Append(payload);
  }

  // The body is whole: checks what the headers and trailer promised, then stores it.
  Response Complete() {
    auto checked = Check();
    if (!checked.ok()) return S3Error(checked.status(), plan_.resource);
    Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::etag, "\"" + checked->etag + "\"");
    if (plan_.client_algorithm) {
      const std::string* value = nullptr;
      for (const auto& [name, v] : checked->checksums)
        if (name == aws::ChecksumName(*plan_.client_algorithm)) value = &v;
      if (value) res.set(std::string(aws::ChecksumHeaderName(*plan_.client_algorithm)), *value);
    }
    return res;
  }

  struct Stored {
    std::string etag;
    std::vector<std::pair<std::string, std::string>> checksums;  // name -> base64
  };

  Result<Stored> Check() {
    if (!writer_) LF_RETURN_IF_ERROR(Begin());  // an empty body
    if (decoder_) LF_RETURN_IF_ERROR(decoder_->Finish());
    if (plan_.decoded_length && size_ != *plan_.decoded_length)
      return Status(Code::kInvalidArgument,
                    "The body holds " + std::to_string(size_) +
                        " bytes; x-amz-decoded-content-length says " +
                        std::to_string(*plan_.decoded_length),
                    Reason::kIncompleteBody);
    if (sha256_ && HexEncode(sha256_->Finish()) != *plan_.payload_sha256)
      return Status(Code::kInvalidArgument,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    Reason::kXAmzContentSHA256Mismatch);
    Stored stored;
    stored.etag = md5_.FinishHex();
    if (plan_.content_md5 && HexEncode(*plan_.content_md5) != stored.etag)
      return Status(Code::kInvalidArgument,
                    "The Content-MD5 you specified did not match what we received.",
                    Reason::kBadDigest);
    for (aws::Checksum& c : checksums_)
      stored.checksums.emplace_back(std::string(aws::ChecksumName(c.algorithm())),
                                    Base64Encode(c.Finish()));
    if (plan_.client_algorithm) {
      // The value the client sent: in its header, or in the trailer.
      std::string expected = plan_.expected_checksum;
      if (expected.empty() && decoder_) {
        std::string header(aws::ChecksumHeaderName(*plan_.client_algorithm));
        for (const auto& [name, value] : decoder_->trailers())
          if (name == header) expected = value;
        if (expected.empty())
          return Status(Code::kInvalidArgument,
                        "The trailer did not carry the " + header + " that x-amz-trailer declared",
                        Reason::kMalformedTrailerError);
        if (!aws::DecodeChecksumValue(*plan_.client_algorithm, expected))
          return InvalidRequest("Value for " + header + " trailing header is invalid.");
      }
      std::string name(aws::ChecksumName(*plan_.client_algorithm));
      for (const auto& [n, value] : stored.checksums)
        if (n == name && value != expected)
          return Status(Code::kInvalidArgument,
                        "The " + name + " you specified did not match the calculated checksum.",
                        Reason::kBadDigest);
    }
    if (plan_.upload) {
      objects::PartInfo part;
      part.number = plan_.part_number;
      part.etag = stored.etag;
      part.checksums = stored.checksums;
      auto committed = store_.CommitPart(std::move(writer_), *plan_.upload, std::move(part));
      if (!committed.ok()) return committed.status();
      return stored;
    }
    objects::ObjectMeta meta = plan_.meta;
    meta.etag = stored.etag;
    // The client's checksum, or S3's default for objects sent without one.
    std::string name(plan_.client_algorithm
                         ? aws::ChecksumName(*plan_.client_algorithm)
                         : aws::ChecksumName(aws::ChecksumAlgorithm::kCrc64Nvme));
    for (const auto& [n, value] : stored.checksums)
      if (n == name) {
        meta.checksum_algorithm = name;
        meta.checksum = value;
        meta.checksum_type = "FULL_OBJECT";
      }
    auto committed = store_.CommitObject(std::move(writer_), plan_.key, std::move(meta));
    if (!committed.ok()) return committed.status();
    return stored;
  }

  objects::LocalStore& store_;
  WorkerPool& workers_;
  const S3UploadPlan plan_;
  const UploadEvents events_;

  Mutex mu_;
  std::string pending_ LF_GUARDED_BY(mu_);
  bool scheduled_ LF_GUARDED_BY(mu_) = false;
  bool ended_ LF_GUARDED_BY(mu_) = false;
  bool answered_ LF_GUARDED_BY(mu_) = false;
  bool want_space_ LF_GUARDED_BY(mu_) = false;
  // Abort's answer while a worker task held the writer: that task sends it.
  std::optional<Response> abort_answer_ LF_GUARDED_BY(mu_);

  // The worker's: one task at a time runs (scheduled_).
  std::string batch_;
  std::unique_ptr<objects::ObjectWriter> writer_;
  std::optional<aws::AwsChunkedDecoder> decoder_;
  std::string decoded_;
  objects::Md5 md5_;
  std::optional<aws::Checksum> sha256_;
  std::vector<aws::Checksum> checksums_;
  uint64_t size_ = 0;
};

class S3UploadSink final : public UploadSink {
 public:
  explicit S3UploadSink(std::shared_ptr<UploadState> state) : state_(std::move(state)) {}
  bool Feed(const uint8_t* data, size_t size) override { return state_->Feed(data, size); }
  void Finish() override { state_->Finish(); }
  void Abort() override {
    state_->Abort(Status(Code::kInvalidArgument,
                         "You did not provide the number of bytes specified by the Content-Length "
                         "HTTP header.",
                         Reason::kIncompleteBody));
  }
  void Stopping() override {
    state_->Abort(Status(Code::kUnavailable,
                         "The server is stopping; the upload was not stored. Please try again.",
                         Reason::kStopping));
  }
  void Stalled() override {
    state_->Abort(Status(Code::kInvalidArgument,
                         "Your socket connection to the server was not read from or written to "
                         "within the timeout period.",
                         Reason::kRequestTimeout));
  }
  bool AnswersOnce() const override { return true; }

 private:
  std::shared_ptr<UploadState> state_;
};

}  // namespace

std::unique_ptr<UploadSink> MakeS3UploadSink(objects::LocalStore& store, WorkerPool& workers,
                                             S3UploadPlan plan, UploadEvents events) {
  return std::make_unique<S3UploadSink>(
      std::make_shared<UploadState>(store, workers, std::move(plan), std::move(events)));
}

}  // namespace lastframe::http
