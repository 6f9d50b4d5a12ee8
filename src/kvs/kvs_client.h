#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "aws/http_client.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/status.h"

namespace lastframe::kvs {

struct KvsClientOptions {
  // The control plane: "http://127.0.0.1:8080" (another lastframe), or empty
  // for AWS's https://kinesisvideo.<region>.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  aws::Credentials credentials;
  aws::CallBudget budget;  // one try of a JSON call 5 s, all tries 10 s, 3 tries
};

// Kinesis Video Streams' API from the calling side: SigV4-signed (service
// "kinesisvideo") JSON POSTs through aws::HttpClient, retried with jittered
// exponential backoff on connection errors, timeouts, 5xx and throttling,
// never on other 4xx. Errors: ResourceNotFoundException is NotFound ("StreamNotFound");
// an endpoint that cannot be reached or answers 5xx is UpstreamFailed
// ("KvsUnavailable", 502); one that does not answer in time is Timeout
// ("KvsTimeout", 504); other refusals are UpstreamFailed ("KvsError") with
// Kinesis Video's error type and message. Thread-safe.
class KvsClient {
 public:
  KvsClient(KvsClientOptions options, const Clock& clock);

  // The control plane's URL.
  const std::string& endpoint() const { return endpoint_; }

  // POST |endpoint|/|operation| with |json_body|; the 200 answer's body.
  Result<std::string> Call(const std::string& endpoint, const std::string& operation,
                           const std::string& json_body) const;

  // A streamed call (GetMedia): the body goes to |on_data| as it arrives
  // until the server ends it, |on_data| returns false, or |stop| is set.
  // Not retried: the caller reconnects. Ok when the body ended or was stopped.
  Status Stream(const std::string& endpoint, const std::string& operation,
                const std::string& json_body,
                const std::function<bool(const char* data, size_t size)>& on_data,
                const std::atomic<bool>& stop) const;

  // GetDataEndpoint for |stream| and |api_name| (e.g. "GET_MEDIA").
  Result<std::string> DataEndpoint(const std::string& stream, const std::string& api_name) const;

 private:
  // The POST of |operation| to |endpoint| (no trailing '/'), signed for its host and path.
  static aws::HttpRequest RequestOf(const std::string& endpoint, const std::string& operation,
                                    const std::string& json_body);
  // The error of an answer other than 200.
  static Status ErrorOf(const aws::HttpResponse& answer, const std::string& operation);
  // A failure to hear back, in Kinesis Video's words.
  static Status FailureOf(const Status& failure, const std::string& endpoint);

  const std::string endpoint_;
  aws::HttpClient client_;
};

}  // namespace lastframe::kvs
