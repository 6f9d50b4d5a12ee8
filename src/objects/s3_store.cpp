#include "objects/s3_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <pugixml.hpp>

#include "core/encoding.h"
#include "objects/local_store.h"
#include "objects/store_metrics.h"

namespace lastframe::objects {
namespace {

constexpr size_t kMaxResponseBytes = 256ull << 20;

std::string Md5Base64(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<char*>(digest), len));
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

bool Retryable(const aws::HttpResponse& r) {
  return r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504;
}

// The operation an S3 call of |method| is, for the metrics.
StoreOp OpOf(const std::string& method) {
  if (method == "PUT") return StoreOp::kPut;
  if (method == "DELETE") return StoreOp::kDelete;
  if (method == "HEAD") return StoreOp::kHead;
  return StoreOp::kGet;
}

aws::HttpClientOptions ClientOptions(const S3StoreOptions& o) {
  return {.budget = o.budget,
          .retryable = Retryable,
          .max_body_bytes = kMaxResponseBytes,
          .reuse_connections = true};
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
  if (options.budget.max_attempts < 1) options.budget.max_attempts = 1;
  return std::unique_ptr<S3Store>(new S3Store(std::move(options), clock, scheme, *host));
}

S3Store::S3Store(S3StoreOptions options, const Clock& clock, std::string scheme, std::string host)
    : options_(std::move(options)),
      scheme_(std::move(scheme)),
      endpoint_host_(std::move(host)),
      client_(ClientOptions(options_),
              aws::SigV4(options_.credentials, options_.region, "s3", clock), clock),
      uploads_(options_.upload_threads, options_.max_queued_uploads) {}

S3Store::~S3Store() { uploads_.Shutdown(); }

std::string S3Store::Describe() const {
  return TargetOf("").url + " (region " + options_.region + ", " +
         (options_.addressing == S3Addressing::kPath ? "path" : "virtual-hosted") + " style)";
}

S3Stats S3Store::stats() const {
  aws::HttpClientStats sent = client_.stats();
  MutexLock lock(mu_);
  return {.requests = sent.attempts, .retries = sent.retries, .failures = failures_};
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

S3Store::Target S3Store::BucketTarget() const {
  Target t;
  if (options_.addressing == S3Addressing::kVirtual) {
    t.host = options_.bucket + "." + endpoint_host_;
    t.path = "/";
  } else {
    t.host = endpoint_host_;
    t.path = "/" + options_.bucket;  // as AWS's SDKs send it
  }
  t.url = scheme_ + "://" + t.host + UriEncode(t.path, false);
  return t;
}

Result<aws::HttpResponse> S3Store::Call(const std::string& method, const std::string& key,
                                        std::string_view body, const std::string& content_type) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  return Send(method, TargetOf(key), {}, body, content_type, key);
}

Result<aws::HttpResponse> S3Store::Send(const std::string& method, const Target& target,
                                        const QueryParams& query, std::string_view body,
                                        const std::string& content_type, const std::string& what) {
  aws::HttpRequest request{.method = method,
                           .url = target.url,
                           .host = target.host,
                           .path = target.path,
                           .query = query,
                           .body = body,
                           .send_payload_hash = true};
  if (method == "PUT") {
    request.headers = {{"Content-Type", content_type}, {"Content-MD5", Md5Base64(body)}};
    if (!options_.cache_control.empty())
      request.headers.emplace_back("Cache-Control", options_.cache_control);
  }
  request.retries = S3StoreMetrics().retries(query.empty() ? OpOf(method) : StoreOp::kList);
  Result<aws::HttpResponse> last = client_.Send(request);
  auto fail = [&](Status s) -> Result<aws::HttpResponse> {
    MutexLock lock(mu_);
    ++failures_;
    return s;
  };
  if (!last.ok()) {
    const Status& s = last.status();
    if (s.code() != Code::kTimeout && s.code() != Code::kUnavailable) return fail(s);
    return fail(Status(Code::kUnavailable,
                       "object store " + endpoint_host_ + " unreachable: " + s.message(),
                       Reason::kObjectStoreUnavailable));
  }
  long status = last->status;
  if (status >= 200 && status < 300) return last;
  std::string code = XmlField(last->body, "Code");
  if (status == 404 && method != "PUT" && code != "NoSuchBucket")
    return fail(NotFound("no object " + what, Reason::kNoSuchKey));
  std::string message = XmlField(last->body, "Message");
  return fail(
      Status(Code::kUpstreamFailed,
             "object store answered " + std::to_string(status) + (code.empty() ? "" : " " + code) +
                 (message.empty() ? "" : ": " + message) + " (" + method + " " + target.path + ")",
             Reason::kObjectStoreError));
}

Status S3Store::Put(const std::string& key, std::string_view bytes,
                    const std::string& content_type) {
  const auto start = std::chrono::steady_clock::now();
  Status put = Upload(key, bytes, content_type);
  S3StoreMetrics().CountUpload(put, start);
  return put;
}

Status S3Store::Upload(const std::string& key, std::string_view bytes,
                       const std::string& content_type) {
  auto r = Call("PUT", key, bytes, content_type);
  if (!r.ok()) return r.status();
  // The ETag S3 gives a single-part upload is the body's MD5: a cheap end-to-end check.
  const std::string* etag = r->Header("etag");
  if (etag && Unquote(*etag).size() == 32 && Unquote(*etag) != Md5Hex(bytes))
    return Status(Code::kUpstreamFailed, "object store stored different bytes (ETag mismatch)",
                  Reason::kObjectStoreError);
  return Status::Ok();
}

void S3Store::PutAsync(std::string key, std::shared_ptr<const std::string> bytes,
                       std::string content_type, std::function<void(Status)> done) {
  auto shared_done = std::make_shared<std::function<void(Status)>>(std::move(done));
  bool queued =
      uploads_.TryPost([this, key = std::move(key), bytes, content_type = std::move(content_type),
                        shared_done] { (*shared_done)(Put(key, *bytes, content_type)); });
  if (!queued) {
    Status busy(Code::kOverloaded, "too many uploads to the object store in flight",
                Reason::kObjectStoreBusy);
    S3StoreMetrics().Count(StoreOp::kPut, busy);
    (*shared_done)(std::move(busy));
  }
}

Result<std::string> S3Store::PresignGet(const std::string& key, int64_t expires_s) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (expires_s < 1 || expires_s > aws::kMaxPresignExpiresSeconds)
    return InvalidArgument("expiry must be 1 to 604800 seconds");
  Target t = TargetOf(key);
  return t.url + "?" + client_.signer().PresignQuery("GET", t.host, t.path, expires_s);
}

Result<S3ObjectHead> S3Store::Head(const std::string& key) {
  auto r = Call("HEAD", key, "", "");
  S3StoreMetrics().Count(StoreOp::kHead, r.status());
  if (!r.ok()) return r.status();
  S3ObjectHead out;
  if (const std::string* v = r->Header("content-length"))
    out.size = std::strtoull(v->c_str(), nullptr, 10);
  if (const std::string* v = r->Header("etag")) out.etag = Unquote(*v);
  if (const std::string* v = r->Header("content-type")) out.content_type = *v;
  if (const std::string* v = r->Header("cache-control")) out.cache_control = *v;
  return out;
}

Result<std::string> S3Store::Get(const std::string& key) {
  auto r = Call("GET", key, "", "");
  S3StoreMetrics().Count(StoreOp::kGet, r.status());
  if (!r.ok()) return r.status();
  return std::move(r->body);
}

Result<ObjectPage> S3Store::ListPage(const std::string& prefix, const std::string& start_after,
                                     const std::string& from, size_t max_keys) {
  QueryParams query = {{"list-type", "2"},
                       {"prefix", options_.prefix + prefix},
                       {"max-keys", std::to_string(std::clamp<size_t>(max_keys, 1, 1000))}};
  if (!start_after.empty()) query.emplace_back("start-after", options_.prefix + start_after);
  if (!from.empty()) query.emplace_back("continuation-token", from);
  auto r = Send("GET", BucketTarget(), query, "", "", "listing " + options_.prefix + prefix);
  auto done = [](Result<ObjectPage> page) {
    S3StoreMetrics().Count(StoreOp::kList, page.status());
    return page;
  };
  if (!r.ok()) return done(r.status());
  pugi::xml_document doc;
  if (!doc.load_buffer(r->body.data(), r->body.size()))
    return done(Status(Code::kUpstreamFailed, "object store answered a listing that is not XML",
                       Reason::kObjectStoreError));
  pugi::xml_node result = doc.child("ListBucketResult");
  if (!result)
    return done(Status(Code::kUpstreamFailed, "object store answered no ListBucketResult",
                       Reason::kObjectStoreError));
  ObjectPage page;
  for (pugi::xml_node c = result.child("Contents"); c; c = c.next_sibling("Contents")) {
    std::string key = c.child_value("Key");
    // Keys are ours below the prefix; one outside it (a broken answer) is left out.
    if (key.compare(0, options_.prefix.size(), options_.prefix) != 0) continue;
    page.objects.push_back(
        {key.substr(options_.prefix.size()), std::strtoull(c.child_value("Size"), nullptr, 10)});
  }
  if (std::string_view(result.child_value("IsTruncated")) == "true") {
    page.next = result.child_value("NextContinuationToken");
    if (page.next.empty())
      return done(Status(Code::kUpstreamFailed,
                         "object store answered a truncated listing without a continuation token",
                         Reason::kObjectStoreError));
  }
  return done(std::move(page));
}

Status S3Store::Delete(const std::string& key) {
  Status deleted = Call("DELETE", key, "", "").status();
  S3StoreMetrics().Count(StoreOp::kDelete, deleted);
  return deleted;
}

}  // namespace lastframe::objects
