#include "aws/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <random>
#include <thread>

#include "core/encoding.h"
#include "core/time_format.h"

namespace lastframe::aws {
namespace {

// What the write and header callbacks fill in during one transfer.
struct Transfer {
  CURL* handle = nullptr;
  HttpResponse* response = nullptr;
  size_t max_body_bytes = 0;
  const std::function<bool(const char*, size_t)>* on_data = nullptr;  // Stream only
  const std::atomic<bool>* stop = nullptr;                            // Stream only
};

size_t OnBody(char* data, size_t size, size_t n, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  HttpResponse& r = *t->response;
  size_t bytes = size * n;
  if (t->on_data != nullptr) {
    if (r.status == 0) curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &r.status);
    // Only a 200 streams to the caller; an error's body is kept to be read.
    if (r.status == 200) {
      if (!(*t->on_data)(data, bytes)) {
        r.stopped = true;
        return 0;  // aborts the transfer
      }
      return bytes;
    }
  }
  if (r.body.size() + bytes > t->max_body_bytes) return 0;  // aborts the transfer
  r.body.append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t n, void* opaque) {
  auto* headers = &static_cast<Transfer*>(opaque)->response->headers;
  std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    headers->clear();  // a new response (after "100 Continue" or a redirect)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  headers->emplace_back(AsciiLower(line.substr(0, colon)), std::string(value));
  return size * n;
}

int OnProgress(void* opaque, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(opaque);
  if (t->stop->load()) {
    t->response->stopped = true;
    return 1;  // aborts the transfer
  }
  return 0;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::chrono::milliseconds BackoffCap(std::chrono::milliseconds base, int attempt) {
  return base * (int64_t{1} << std::clamp(attempt, 0, 10));
}

HttpClient::HttpClient(HttpClientOptions options, SigV4 signer, const Clock& clock)
    : options_(std::move(options)), signer_(std::move(signer)), clock_(clock) {
  GlobalInit();
}

HttpClient::~HttpClient() {
  for (void* h : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

HttpClientStats HttpClient::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void* HttpClient::AcquireHandle() const {
  if (options_.reuse_connections) {
    MutexLock lock(mu_);
    if (!idle_handles_.empty()) {
      void* h = idle_handles_.back();
      idle_handles_.pop_back();
      curl_easy_reset(static_cast<CURL*>(h));  // keeps the handle's open connections
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::ReleaseHandle(void* handle) const {
  if (!options_.reuse_connections) {
    curl_easy_cleanup(static_cast<CURL*>(handle));
    return;
  }
  MutexLock lock(mu_);
  idle_handles_.push_back(handle);
}

Result<HttpResponse> HttpClient::Attempt(const HttpRequest& request,
                                         const std::string& payload_hash,
                                         std::chrono::milliseconds timeout,
                                         const std::function<bool(const char*, size_t)>* on_data,
                                         const std::atomic<bool>* stop) const {
  const int64_t now = clock_.NowMs();
  const std::string amz_date = FormatAmzDate(now);
  const std::string& token = signer_.credentials().session_token;
  CanonicalRequest req;
  req.method = request.method;
  req.path = request.path;
  req.query = request.query;
  req.payload_hash = payload_hash;
  req.headers = request.signed_headers;
  req.headers.emplace_back("host", request.host);
  if (request.send_payload_hash) req.headers.emplace_back("x-amz-content-sha256", payload_hash);
  req.headers.emplace_back("x-amz-date", amz_date);
  if (!token.empty()) req.headers.emplace_back("x-amz-security-token", token);

  curl_slist* list = nullptr;
  auto add = [&list](const std::string& line) { list = curl_slist_append(list, line.c_str()); };
  if (request.sign) {
    for (const auto& [k, v] : req.headers)
      if (k != "host") add(k + ": " + v);  // curl sends Host from the URL, identically
    add("Authorization: " + signer_.Authorization(req, now));
  }
  add("Expect:");  // no 100-continue round trip: bodies are small
  for (const auto& [k, v] : request.headers) add(k + ": " + v);

  CURL* h = static_cast<CURL*>(AcquireHandle());
  if (h == nullptr) {
    curl_slist_free_all(list);
    return Internal("curl_easy_init failed");
  }
  HttpResponse out;
  Transfer t{.handle = h,
             .response = &out,
             .max_body_bytes = options_.max_body_bytes,
             .on_data = on_data,
             .stop = stop};
  char error[CURL_ERROR_SIZE] = {0};
  const std::string url =
      request.query.empty() ? request.url : request.url + "?" + CanonicalQueryString(request.query);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(options_.budget.connect_timeout, timeout).count()));
  if (on_data == nullptr) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  } else {
    // A live stream has no end: a stalled one is noticed by its silence instead.
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  if (stop != nullptr) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    if (request.method == "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  out.status = status;
  curl_slist_free_all(list);
  ReleaseHandle(h);
  {
    MutexLock lock(mu_);
    ++stats_.attempts;
  }
  if (out.stopped) return out;
  // A stream the server ends early is a stream that ended.
  bool ended = on_data != nullptr && status == 200 && rc == CURLE_PARTIAL_FILE;
  if (rc != CURLE_OK && !ended) {
    std::string what = error[0] ? std::string(error) : curl_easy_strerror(rc);
    return Status(rc == CURLE_OPERATION_TIMEDOUT ? Code::kTimeout : Code::kUnavailable, what);
  }
  return out;
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  const std::string payload_hash = Sha256Hex(request.body);
  const auto deadline =
      std::chrono::steady_clock::now() + (request.timeout.count() > 0
                                              ? std::min(options_.budget.deadline, request.timeout)
                                              : options_.budget.deadline);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Result<HttpResponse> last = Status(Code::kTimeout, "no time left for a try");
  for (int attempt = 0; attempt < options_.budget.max_attempts; ++attempt) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (attempt > 0) {
      if (request.retries != nullptr) request.retries->Add();
      MutexLock lock(mu_);
      ++stats_.retries;
    }
    last = Attempt(request, payload_hash, std::min(options_.budget.attempt_timeout, left), nullptr,
                   nullptr);
    bool retry = !last.ok() || (options_.retryable && options_.retryable(*last));
    if (!retry || attempt + 1 >= options_.budget.max_attempts) break;
    // Full jitter: a random wait below the cap, within the deadline.
    auto cap = BackoffCap(options_.budget.backoff_base, attempt);
    auto wait = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap.count() - 1, 0))(rng));
    if (std::chrono::steady_clock::now() + wait >= deadline) break;
    std::this_thread::sleep_for(wait);
  }
  return last;
}

Result<HttpResponse> HttpClient::Stream(const HttpRequest& request,
                                        const std::function<bool(const char*, size_t)>& on_data,
                                        const std::atomic<bool>& stop) const {
  return Attempt(request, Sha256Hex(request.body), options_.budget.attempt_timeout, &on_data,
                 &stop);
}

}  // namespace lastframe::aws
