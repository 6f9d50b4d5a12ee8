#include "objects/s3_store.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <random>
#include <thread>

#include "core/time_format.h"
#include "objects/local_store.h"

namespace lastframe::objects {
namespace {

constexpr size_t kMaxResponseBytes = 256ull << 20;

std::string Md5Base64(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<char*>(digest), len));
}

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// The text of <Tag>...</Tag> in an S3 XML error, or "".
std::string XmlField(const std::string& xml, const std::string& tag) {
  size_t a = xml.find("<" + tag + ">");
  if (a == std::string::npos) return "";
  a += tag.size() + 2;
  size_t b = xml.find("</" + tag + ">", a);
  return b == std::string::npos ? "" : xml.substr(a, b - a);
}

const std::string* HeaderOf(const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& name) {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

bool Retryable(long status) {
  return status == 500 || status == 502 || status == 503 || status == 504;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() + size * n > kMaxResponseBytes) return 0;  // aborts the transfer
  out->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<HeaderList*>(user);
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
  headers->emplace_back(Lower(std::string(line.substr(0, colon))), std::string(value));
  return size * n;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseS3Uri(const std::string& uri) {
  if (uri.rfind("s3://", 0) != 0) return InvalidArgument("expected s3://BUCKET[/PREFIX]: " + uri);
  std::string rest = uri.substr(5);
  size_t slash = rest.find('/');
  std::string bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!ValidBucketName(bucket))
    return InvalidArgument("'" + bucket + "' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)");
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) {
    LF_RETURN_IF_ERROR(ValidateObjectKey(prefix));
    prefix += "/";
  }
  return std::pair{bucket, prefix};
}

Result<std::unique_ptr<S3Store>> S3Store::Open(S3StoreOptions options, const Clock& clock) {
  if (!ValidBucketName(options.bucket))
    return InvalidArgument("'" + options.bucket + "' is not a valid S3 bucket name");
  if (options.credentials.access_key_id.empty() || options.credentials.secret_access_key.empty())
    return InvalidArgument("S3 credentials are required");
  if (options.region.empty()) return InvalidArgument("an S3 region is required");
  if (!options.prefix.empty() && options.prefix.back() != '/') options.prefix += "/";
  if (options.endpoint.empty())
    options.endpoint = "https://s3." + options.region + ".amazonaws.com";
  while (!options.endpoint.empty() && options.endpoint.back() == '/') options.endpoint.pop_back();
  auto host = HostOfUrl(options.endpoint);
  if (!host || options.endpoint.find('/', options.endpoint.find("://") + 3) != std::string::npos)
    return InvalidArgument("the S3 endpoint must be http(s)://HOST[:PORT], without a path: " +
                           options.endpoint);
  std::string scheme = options.endpoint.substr(0, options.endpoint.find("://"));
  if (options.addressing == S3Addressing::kAuto) {
    bool aws = host->size() >= 14 && host->compare(host->size() - 14, 14, ".amazonaws.com") == 0;
    // Dotted bucket names break the TLS wildcard of virtual hosts: AWS keeps path style for them.
    options.addressing = aws && options.bucket.find('.') == std::string::npos
                             ? S3Addressing::kVirtual
                             : S3Addressing::kPath;
  }
  if (options.max_attempts < 1) options.max_attempts = 1;
  GlobalInit();
  return std::unique_ptr<S3Store>(new S3Store(std::move(options), clock, scheme, *host));
}

S3Store::S3Store(S3StoreOptions options, const Clock& clock, std::string scheme, std::string host)
    : options_(std::move(options)),
      clock_(clock),
      scheme_(std::move(scheme)),
      endpoint_host_(std::move(host)),
      signer_(options_.credentials, options_.region, "s3", clock),
      uploads_(options_.upload_threads, options_.max_queued_uploads) {}

S3Store::~S3Store() {
  uploads_.Shutdown();
  for (void* h : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

std::string S3Store::Describe() const {
  return TargetOf("").url + " (region " + options_.region + ", " +
         (options_.addressing == S3Addressing::kPath ? "path" : "virtual-hosted") + " style)";
}

S3Stats S3Store::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

S3Store::Target S3Store::TargetOf(const std::string& key) const {
  Target t;
  std::string object = options_.prefix + key;
  if (options_.addressing == S3Addressing::kVirtual) {
    t.host = options_.bucket + "." + endpoint_host_;
    t.path = "/" + object;
  } else {
    t.host = endpoint_host_;
    t.path = "/" + options_.bucket + "/" + object;
  }
  t.url = scheme_ + "://" + t.host + UriEncode(t.path, false);
  return t;
}

void* S3Store::AcquireHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_handles_.empty()) {
      void* h = idle_handles_.back();
      idle_handles_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Store::ReleaseHandle(void* handle) {
  std::lock_guard lock(mu_);
  idle_handles_.push_back(handle);
}

Result<S3Store::HttpResult> S3Store::Attempt(const std::string& method, const Target& target,
                                             std::string_view body, const std::string& content_type,
                                             std::chrono::milliseconds timeout) {
  int64_t now = clock_.NowMs();
  CanonicalRequest req;
  req.method = method;
  req.path = target.path;
  req.payload_hash = Sha256Hex(body);
  req.headers = {{"host", target.host},
                 {"x-amz-content-sha256", req.payload_hash},
                 {"x-amz-date", FormatAmzDate(now)}};
  if (!options_.credentials.session_token.empty())
    req.headers.emplace_back("x-amz-security-token", options_.credentials.session_token);

  std::vector<std::string> lines;
  for (const auto& [k, v] : req.headers)
    if (k != "host") lines.push_back(k + ": " + v);  // curl sends Host from the URL, identically
  lines.push_back("Authorization: " + signer_.Authorization(req, now));
  lines.push_back("Expect:");  // no 100-continue round trip: snapshots are small
  if (method == "PUT") {
    lines.push_back("Content-Type: " + content_type);
    lines.push_back("Content-MD5: " + Md5Base64(body));
    if (!options_.cache_control.empty())
      lines.push_back("Cache-Control: " + options_.cache_control);
  }
  curl_slist* list = nullptr;
  for (const auto& l : lines) list = curl_slist_append(list, l.c_str());

  CURL* h = static_cast<CURL*>(AcquireHandle());
  if (h == nullptr) {
    curl_slist_free_all(list);
    return Internal("curl_easy_init failed");
  }
  curl_easy_reset(h);  // keeps the handle's open connections
  HttpResult out;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, target.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(options_.connect_timeout, timeout).count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &out.headers);
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  curl_slist_free_all(list);
  ReleaseHandle(h);
  {
    std::lock_guard lock(mu_);
    ++stats_.requests;
  }
  if (rc != CURLE_OK)
    return Status(Code::kUnavailable,
                  "object store " + endpoint_host_ +
                      " unreachable: " + (error[0] ? std::string(error) : curl_easy_strerror(rc)),
                  "ObjectStoreUnavailable");
  return out;
}

Result<S3Store::HttpResult> S3Store::Call(const std::string& method, const std::string& key,
                                          std::string_view body, const std::string& content_type) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  Target target = TargetOf(key);
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + options_.deadline;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Result<HttpResult> last = Status(Code::kUnavailable, "no attempt made", "ObjectStoreUnavailable");
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (attempt > 0) {
      std::lock_guard lock(mu_);
      ++stats_.retries;
    }
    last = Attempt(method, target, body, content_type, std::min(options_.attempt_timeout, left));
    bool retry = last.ok() ? Retryable(last->status) : true;
    if (!retry) break;
    // Full jitter: a random wait below base * 2^attempt, within the deadline.
    auto cap = options_.backoff_base * (1 << std::min(attempt, 10));
    auto wait = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap.count() - 1, 0))(rng));
    if (attempt + 1 >= options_.max_attempts || std::chrono::steady_clock::now() + wait >= deadline)
      break;
    std::this_thread::sleep_for(wait);
  }
  auto fail = [&](Status s) -> Result<HttpResult> {
    std::lock_guard lock(mu_);
    ++stats_.failures;
    return s;
  };
  if (!last.ok()) return fail(last.status());
  long status = last->status;
  if (status >= 200 && status < 300) return last;
  if (status == 404 && method != "PUT") return fail(NotFound("no object " + key, "NoSuchKey"));
  std::string code = XmlField(last->body, "Code");
  std::string message = XmlField(last->body, "Message");
  return fail(
      Status(Code::kUpstreamFailed,
             "object store answered " + std::to_string(status) + (code.empty() ? "" : " " + code) +
                 (message.empty() ? "" : ": " + message) + " (" + method + " " + target.path + ")",
             "ObjectStoreError"));
}

Status S3Store::Put(const std::string& key, std::string_view bytes,
                    const std::string& content_type) {
  auto r = Call("PUT", key, bytes, content_type);
  if (!r.ok()) return r.status();
  // The ETag S3 gives a single-part upload is the body's MD5: a cheap end-to-end check.
  const std::string* etag = HeaderOf(r->headers, "etag");
  if (etag && Unquote(*etag).size() == 32 && Unquote(*etag) != Md5Hex(bytes))
    return Status(Code::kUpstreamFailed, "object store stored different bytes (ETag mismatch)",
                  "ObjectStoreError");
  return Status::Ok();
}

void S3Store::PutAsync(std::string key, std::shared_ptr<const std::string> bytes,
                       std::string content_type, std::function<void(Status)> done) {
  auto shared_done = std::make_shared<std::function<void(Status)>>(std::move(done));
  bool queued =
      uploads_.TryPost([this, key = std::move(key), bytes, content_type = std::move(content_type),
                        shared_done] { (*shared_done)(Put(key, *bytes, content_type)); });
  if (!queued)
    (*shared_done)(Status(Code::kOverloaded, "too many uploads to the object store in flight",
                          "ObjectStoreBusy"));
}

Result<std::string> S3Store::PresignGet(const std::string& key, int64_t expires_s) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (expires_s < 1 || expires_s > kMaxPresignExpiresSeconds)
    return InvalidArgument("expiry must be 1 to 604800 seconds");
  Target t = TargetOf(key);
  return t.url + "?" + signer_.PresignQuery("GET", t.host, t.path, expires_s);
}

Result<S3ObjectHead> S3Store::Head(const std::string& key) {
  auto r = Call("HEAD", key, "", "");
  if (!r.ok()) return r.status();
  S3ObjectHead out;
  if (const std::string* v = HeaderOf(r->headers, "content-length"))
    out.size = std::strtoull(v->c_str(), nullptr, 10);
  if (const std::string* v = HeaderOf(r->headers, "etag")) out.etag = Unquote(*v);
  if (const std::string* v = HeaderOf(r->headers, "content-type")) out.content_type = *v;
  if (const std::string* v = HeaderOf(r->headers, "cache-control")) out.cache_control = *v;
  return out;
}

Result<std::string> S3Store::Get(const std::string& key) {
  auto r = Call("GET", key, "", "");
  if (!r.ok()) return r.status();
  return std::move(r->body);
}

Status S3Store::Delete(const std::string& key) { return Call("DELETE", key, "", "").status(); }

}  // namespace lastframe::objects
