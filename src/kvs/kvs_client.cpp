#include "kvs/kvs_client.h"

#include <curl/curl.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/time_format.h"

namespace lastframe::kvs {

namespace {

struct Transfer {
  std::string* body = nullptr;
  const std::function<bool(const char*, size_t)>* on_data = nullptr;
  const std::atomic<bool>* stop = nullptr;
  std::string error_type;
  long status = 0;
  bool stopped = false;
  CURL* handle = nullptr;
};

size_t OnBody(char* data, size_t size, size_t n, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  size_t bytes = size * n;
  if (t->status == 0) curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &t->status);
  // Only a 200 streams to the caller; an error's body is kept to be read.
  if (t->on_data != nullptr && t->status == 200) {
    if (!(*t->on_data)(data, bytes)) {
      t->stopped = true;
      return 0;  // aborts the transfer
    }
    return bytes;
  }
  if (t->body->size() + bytes > (1u << 20)) return 0;  // an error body past 1 MiB is not one
  t->body->append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t n, void* opaque) {
  auto* t = static_cast<Transfer*>(opaque);
  std::string line(data, size * n);
  const std::string name = "x-amzn-errortype:";
  if (line.size() > name.size()) {
    std::string lower = line.substr(0, name.size());
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == name) {
      std::string v = line.substr(name.size());
      v.erase(0, v.find_first_not_of(' '));
      v = v.substr(0, v.find_first_of(":\r\n"));
      t->error_type = v;
    }
  }
  return size * n;
}

int OnProgress(void* opaque, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(opaque);
  if (t->stop != nullptr && t->stop->load()) {
    t->stopped = true;
    return 1;
  }
  return 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "http://host:port/base" -> host ("host:port") and base path ("/base" or "").
void SplitUrl(const std::string& url, std::string* host, std::string* base) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t slash = url.find('/', start);
  *host = url.substr(start, slash - start);
  *base = slash == std::string::npos ? "" : url.substr(slash);
  // Default ports are not part of the signed host, as clients send it.
  if (url.starts_with("http://") && host->ends_with(":80")) host->resize(host->size() - 3);
  if (url.starts_with("https://") && host->ends_with(":443")) host->resize(host->size() - 4);
}

}  // namespace

KvsClient::KvsClient(KvsClientOptions options, const Clock& clock)
    : options_(options),
      clock_(clock),
      endpoint_(options.endpoint.empty()
                    ? "https://kinesisvideo." + options.region + ".amazonaws.com"
                    : Trim(options.endpoint)),
      signer_(options.credentials, options.region, "kinesisvideo", clock) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

Result<KvsClient::Answer> KvsClient::Attempt(
    const std::string& url, const std::string& path, const std::string& json_body,
    std::chrono::milliseconds timeout, const std::function<bool(const char*, size_t)>* on_data,
    const std::atomic<bool>* stop) const {
  std::string host, base;
  SplitUrl(url, &host, &base);
  const int64_t now = clock_.NowMs();
  objects::CanonicalRequest req;
  req.method = "POST";
  req.path = base + path;
  req.headers = {
      {"content-type", "application/json"}, {"host", host}, {"x-amz-date", FormatAmzDate(now)}};
  if (!options_.credentials.session_token.empty())
    req.headers.emplace_back("x-amz-security-token", options_.credentials.session_token);
  req.payload_hash = objects::Sha256Hex(json_body);
  std::string authorization = signer_.Authorization(req, now);

  CURL* h = curl_easy_init();
  if (h == nullptr) return Internal("curl_easy_init failed");
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Content-Type: application/json");
  list = curl_slist_append(list, ("X-Amz-Date: " + FormatAmzDate(now)).c_str());
  list = curl_slist_append(list, ("Authorization: " + authorization).c_str());
  if (!options_.credentials.session_token.empty())
    list = curl_slist_append(
        list, ("X-Amz-Security-Token: " + options_.credentials.session_token).c_str());
  list = curl_slist_append(list, "Expect:");
  std::string body;
  Transfer t;
  t.body = &body;
  t.on_data = on_data;
  t.stop = stop;
  t.handle = h;
  char error[CURL_ERROR_SIZE] = {0};
  const std::string full = url + path;
  curl_easy_setopt(h, CURLOPT_URL, full.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(options_.connect_timeout, timeout).count()));
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
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  curl_easy_cleanup(h);
  if (t.stopped) return Answer{status == 0 ? 200 : status, "", ""};
  if (rc == CURLE_OPERATION_TIMEDOUT)
    return Status(Code::kTimeout, "Kinesis Video endpoint " + url + " did not answer in time",
                  "KvsTimeout");
  if (rc != CURLE_OK && !(on_data != nullptr && status == 200 && rc == CURLE_PARTIAL_FILE))
    return Status(Code::kUpstreamFailed,
                  "Kinesis Video endpoint " + url +
                      " failed: " + (error[0] ? std::string(error) : curl_easy_strerror(rc)),
                  "KvsUnavailable");
  return Answer{status, std::move(body), t.error_type};
}

Status KvsClient::ErrorOf(const Answer& a, const std::string& operation) {
  std::string message;
  auto j = nlohmann::json::parse(a.body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("message") && j["message"].is_string()) message = j["message"];
    if (j.contains("Message") && j["Message"].is_string()) message = j["Message"];
  }
  std::string what = operation + ": " +
                     (a.error_type.empty() ? "HTTP " + std::to_string(a.status) : a.error_type) +
                     (message.empty() ? "" : " (" + message + ")");
  if (a.error_type == "ResourceNotFoundException")
    return NotFound("Kinesis Video: " + what, "StreamNotFound");
  if (a.status >= 500)
    return Status(Code::kUpstreamFailed, "Kinesis Video endpoint failed: " + what,
                  "KvsUnavailable");
  return Status(Code::kUpstreamFailed, "Kinesis Video refused " + what, "KvsError");
}

Result<std::string> KvsClient::Call(const std::string& endpoint, const std::string& operation,
                                    const std::string& json_body) const {
  const auto deadline = std::chrono::steady_clock::now() + options_.deadline;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Status last = Status(Code::kInternal, "no attempt");
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto answer = Attempt(Trim(endpoint), "/" + operation, json_body,
                          std::min(options_.attempt_timeout, left), nullptr, nullptr);
    bool retry = false;
    if (!answer.ok()) {
      last = answer.status();
      retry = true;
    } else if (answer->status == 200) {
      return std::move(answer->body);
    } else {
      last = ErrorOf(*answer, operation);
      retry = answer->status >= 500 || answer->error_type == "ClientLimitExceededException";
    }
    if (!retry || attempt + 1 == options_.max_attempts) break;
    int64_t cap = options_.backoff_base.count() << attempt;
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(cap, 1));
    auto sleep = std::chrono::milliseconds(jitter(rng));
    if (std::chrono::steady_clock::now() + sleep >= deadline) break;
    std::this_thread::sleep_for(sleep);  // backoff between retries, bounded by the deadline
  }
  return last;
}

Status KvsClient::Stream(const std::string& endpoint, const std::string& operation,
                         const std::string& json_body,
                         const std::function<bool(const char*, size_t)>& on_data,
                         const std::atomic<bool>& stop) const {
  auto answer = Attempt(Trim(endpoint), "/" + operation, json_body, options_.attempt_timeout,
                        &on_data, &stop);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return ErrorOf(*answer, operation);
  return Status::Ok();
}

Result<std::string> KvsClient::DataEndpoint(const std::string& stream,
                                            const std::string& api_name) const {
  auto body = Call(endpoint_, "getDataEndpoint",
                   nlohmann::json{{"StreamName", stream}, {"APIName", api_name}}.dump());
  if (!body.ok()) return body.status();
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (!j.is_object() || !j.contains("DataEndpoint") || !j["DataEndpoint"].is_string())
    return Status(Code::kUpstreamFailed, "GetDataEndpoint answered without a DataEndpoint",
                  "KvsError");
  return j["DataEndpoint"].get<std::string>();
}

}  // namespace lastframe::kvs
