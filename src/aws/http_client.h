#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "core/status.h"

namespace lastframe::aws {

// One answer: the final response's status, body and headers.
struct HttpResponse {
  long status = 0;
  std::string body;
  HeaderList headers;    // lower-case names, values trimmed, in the order they came
  bool stopped = false;  // Stream only: on_data or |stop| ended the transfer
  // The first value of header |name| (lower case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

// A request to sign and send.
struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE, ...
  std::string url;             // scheme://host[:port]/path, the path encoded as sent
  std::string host;            // the Host header libcurl sends for |url|: signed
  std::string path;            // decoded, as signed
  // Query parameters, decoded: signed, and sent after |url| (which then has no
  // query of its own) as SigV4's canonical query string.
  QueryParams query;
  // Signed and sent (lower-case names), beyond host, x-amz-date and the
  // credentials' session token, which every request signs.
  HeaderList signed_headers;
  HeaderList headers;              // sent, not signed
  std::string_view body;           // the payload of PUT and POST; its hash is signed
  bool send_payload_hash = false;  // also send it as x-amz-content-sha256 (S3 asks for it)
  // Counts each try of Send after the first (the caller's metric, labelled by
  // what it calls); may be null.
  metrics::Counter* retries = nullptr;
  // false: sent as it is, with no SigV4 headers (no x-amz-date, no
  // Authorization: the caller's own |headers| may carry one), for a service
  // that is not AWS's (another lastframe node's API).
  bool sign = true;
  // Send only: when above zero, the most this call may take, all tries
  // together (the client's deadline still bounds it), for a caller whose
  // own deadline is nearer than the client's.
  std::chrono::milliseconds timeout{0};
};

// How a client times, bounds and retries its calls.
// How long and how often one call may try: the part of a client's options its
// users set (S3Store, KvsClient, their flags).
struct CallBudget {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds attempt_timeout{5000};  // one try, connect included
  std::chrono::milliseconds deadline{10000};        // all tries of one call, backoff included
  int max_attempts = 3;                             // < 1: no try at all
  std::chrono::milliseconds backoff_base{100};      // full jitter: sleep in [0, base * 2^try)

  // All tries of a call within |deadline| (a --*-timeout flag): no one try longer.
  void LimitTo(std::chrono::milliseconds call_deadline) {
    deadline = call_deadline;
    attempt_timeout = std::min(attempt_timeout, deadline);
  }
};

struct HttpClientOptions {
  CallBudget budget;
  // The answers worth another try; failures to connect, send or hear back in
  // time always are. Unset: no answer is retried.
  std::function<bool(const HttpResponse&)> retryable;
  // A larger body aborts the transfer (a failure). In Stream, the bound of an
  // error answer's body (a 200's goes to the caller).
  size_t max_body_bytes = 1 << 20;
  // Keep libcurl handles, and so their open connections, from call to call.
  bool reuse_connections = true;
};

struct HttpClientStats {
  uint64_t attempts = 0;  // requests sent (or tried)
  uint64_t retries = 0;
};

// The longest wait before the try after |attempt| (0-based): base * 2^attempt,
// the exponent capped at 10. The wait is drawn from [0, cap).
std::chrono::milliseconds BackoffCap(std::chrono::milliseconds base, int attempt);

// AWS's services from the calling side: each request signed with SigV4 (a
// fresh x-amz-date per try; HttpRequest::sign false leaves one unsigned) and sent over libcurl
// (http and https only, no signals, TCP keep-alive, no "Expect: 100-continue"), retried with
// jittered exponential backoff inside an overall deadline. Thread-safe.
class HttpClient {
 public:
  HttpClient(HttpClientOptions options, SigV4 signer, const Clock& clock);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const SigV4& signer() const { return signer_; }
  const HttpClientOptions& options() const { return options_; }

  // Signs and sends |request|, again while the answer is retryable or the try
  // failed, as long as tries and the deadline allow. Returns the last answer,
  // whatever its status, or the last try's failure: Timeout (libcurl timed
  // out, or no time was left for a try), Unavailable (no connection, or the
  // transfer broke; libcurl's words as the message), Internal.
  Result<HttpResponse> Send(const HttpRequest& request) const;

  // One try with no overall time limit (a stalled transfer, silent for 60 s,
  // times out): a 200's body goes to |on_data| as it arrives, until the server
  // ends it, |on_data| returns false or |stop| is set (then the answer says
  // stopped); another status's body is kept in the answer. Failures as Send's.
  Result<HttpResponse> Stream(const HttpRequest& request,
                              const std::function<bool(const char* data, size_t size)>& on_data,
                              const std::atomic<bool>& stop) const;

  HttpClientStats stats() const;

 private:
  Result<HttpResponse> Attempt(const HttpRequest& request, const std::string& payload_hash,
                               std::chrono::milliseconds timeout,
                               const std::function<bool(const char*, size_t)>* on_data,
                               const std::atomic<bool>* stop) const;
  void* AcquireHandle() const;
  void ReleaseHandle(void* handle) const;

  const HttpClientOptions options_;
  const SigV4 signer_;
  const Clock& clock_;
  mutable Mutex mu_;
  mutable std::vector<void*> idle_handles_ LF_GUARDED_BY(mu_);  // CURL*
  mutable HttpClientStats stats_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe::aws
