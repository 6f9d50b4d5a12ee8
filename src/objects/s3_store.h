#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "aws/http_client.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/mutex.h"
#include "core/worker_pool.h"
#include "objects/object_store.h"

namespace lastframe::objects {

enum class S3Addressing {
  kAuto,     // virtual-hosted on amazonaws.com (for bucket names without dots), else path
  kPath,     // https://endpoint/bucket/key (MinIO, Ceph RGW, s3rver)
  kVirtual,  // https://bucket.endpoint/key
};

struct S3StoreOptions {
  std::string bucket;
  std::string prefix;    // put before every key: "" or "cams/" (a '/' is added if missing)
  std::string endpoint;  // "http://127.0.0.1:9000"; empty: https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  S3Addressing addressing = S3Addressing::kAuto;
  aws::Credentials credentials;
  aws::CallBudget budget{.deadline = std::chrono::milliseconds(12000), .max_attempts = 4};
  size_t upload_threads = 8;
  size_t max_queued_uploads = 512;
  std::string cache_control = "private, max-age=600";
};

struct S3ObjectHead {
  uint64_t size = 0;
  std::string etag;  // unquoted
  std::string content_type;
  std::string cache_control;
};

struct S3Stats {
  uint64_t requests = 0;  // attempts sent
  uint64_t retries = 0;
  uint64_t failures = 0;  // calls that ended in an error
};

// An ObjectStore on any S3-compatible service (AWS S3, MinIO, Ceph RGW, ...):
// SigV4 header auth with the payload's SHA-256 and Content-MD5, presigned
// GETs, keep-alive connections (libcurl handles reused across calls),
// per-try timeouts inside an overall deadline, and retries with jittered
// exponential backoff on connection errors, timeouts, 500/502/503/504 (and
// S3's SlowDown), never on other 4xx (all through aws::HttpClient). Uploads
// run on the store's own threads.
//
// Errors: a store that cannot be reached is Unavailable ("ObjectStoreUnavailable",
// HTTP 503 to our callers); one that answers with an error is UpstreamFailed
// ("ObjectStoreError", 502) with S3's code and message in the text; a missing
// key is NotFound ("NoSuchKey").
class S3Store final : public ObjectStore {
 public:
  static Result<std::unique_ptr<S3Store>> Open(S3StoreOptions options, const Clock& clock);
  ~S3Store() override;

  Status Put(const std::string& key, std::string_view bytes,
             const std::string& content_type) override;
  void PutAsync(std::string key, std::shared_ptr<const std::string> bytes, std::string content_type,
                std::function<void(Status)> done) override;
  Result<std::string> PresignGet(const std::string& key, int64_t expires_s) override;
  void Shutdown() override { uploads_.Shutdown(); }

  Result<S3ObjectHead> Head(const std::string& key);
  Result<std::string> Get(const std::string& key) override;
  // ListObjectsV2: one page, its continuation token as |next| (opaque, S3's).
  Result<ObjectPage> ListPage(const std::string& prefix, const std::string& start_after,
                              const std::string& from, size_t max_keys) override;
  Status Delete(const std::string& key);

  // "http://127.0.0.1:9000/bucket/prefix/" or "https://bucket.s3.../prefix/": for the log.
  std::string Describe() const;
  S3Stats stats() const;

 private:
  struct Target {
    std::string url;   // scheme://host/encoded-path
    std::string host;  // as sent and signed
    std::string path;  // decoded, as signed
  };

  S3Store(S3StoreOptions options, const Clock& clock, std::string scheme, std::string host);
  Target TargetOf(const std::string& key) const;
  // The bucket itself (ListObjectsV2's target).
  Target BucketTarget() const;
  // Put's upload and its ETag check; Put counts it.
  Status Upload(const std::string& key, std::string_view bytes, const std::string& content_type);
  // One call: signs and sends, retrying as the class comment says.
  Result<aws::HttpResponse> Call(const std::string& method, const std::string& key,
                                 std::string_view body, const std::string& content_type);
  // Call's sending and its errors, to |target| with |query|; |what| names it in messages.
  Result<aws::HttpResponse> Send(const std::string& method, const Target& target,
                                 const QueryParams& query, std::string_view body,
                                 const std::string& content_type, const std::string& what);

  const S3StoreOptions options_;
  const std::string scheme_;         // "http" or "https"
  const std::string endpoint_host_;  // host[:port], default ports dropped
  aws::HttpClient client_;
  WorkerPool uploads_;
  mutable Mutex mu_;
  uint64_t failures_ LF_GUARDED_BY(mu_) = 0;
};

// Parses "s3://bucket[/prefix]" into bucket and prefix.
Result<std::pair<std::string, std::string>> ParseS3Uri(const std::string& uri);

}  // namespace lastframe::objects
