#include "http/s3_api.h"

#include <openssl/evp.h>

#include <charconv>
#include <pugixml.hpp>

#include "aws/checksums.h"
#include "aws/sigv4.h"
#include "core/encoding.h"
#include "core/time_format.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr const char* kXmlns = "http://s3.amazonaws.com/doc/2006-03-01/";

Status S3Status(Code code, Reason reason, std::string message) {
  return Status(code, std::move(message), reason);
}

Status NotImplemented(const std::string& what) {
  return S3Status(Code::kInvalidArgument, Reason::kNotImplemented,
                  "A header or parameter you provided implies functionality that is not "
                  "implemented: " +
                      what);
}

const std::string* Find(const QueryParams& q, std::string_view key) {
  for (const auto& [k, v] : q)
    if (k == key) return &v;
  return nullptr;
}

const std::string* Header(const aws::HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (k == name) return &v;
  return nullptr;
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Query parameters that do not change what an object request means. (Current
// SDKs add x-id, naming the operation, and presign x-amz-checksum-mode.)
// A presigned PUT of the JavaScript SDK (3.729+) carries x-amz-checksum-crc32
// (of an empty body, made before the body is known) and
// x-amz-sdk-checksum-algorithm: S3 ignores checksums in a query, and so do we.
bool PlainObjectParam(const std::string& k) {
  return k.rfind("X-Amz-", 0) == 0 || k.rfind("response-", 0) == 0 || k == "x-id" ||
         k.rfind("x-amz-checksum-", 0) == 0 || k == "x-amz-sdk-checksum-algorithm";
}

// Whether the caller asked for the object's checksum (header or presigned parameter).
bool ChecksumModeEnabled(const QueryParams& q, const aws::HeaderList& h) {
  for (const auto& [k, v] : h)
    if (k == "x-amz-checksum-mode" && boost::beast::iequals(v, "ENABLED")) return true;
  for (const auto& [k, v] : q)
    if (k == "x-amz-checksum-mode" && boost::beast::iequals(v, "ENABLED")) return true;
  return false;
}

Status InvalidRequest(std::string message) {
  return S3Status(Code::kInvalidArgument, Reason::kInvalidRequest, std::move(message));
}

// The metadata a PUT (or CreateMultipartUpload, or a REPLACE copy) gives its object.
objects::ObjectMeta MetaFromHeaders(const aws::HeaderList& headers) {
  objects::ObjectMeta meta;
  meta.content_type = "binary/octet-stream";
  for (const auto& [k, v] : headers) {
    if (k == "content-type") meta.content_type = v;
    if (k == "cache-control") meta.cache_control = v;
    if (k.rfind("x-amz-meta-", 0) == 0) meta.user.emplace_back(k.substr(11), v);
  }
  return meta;
}

// The "uploadId" or "partNumber" parameter: present, given once.
const std::string* Single(const QueryParams& q, std::string_view key, int* count) {
  const std::string* found = nullptr;
  *count = 0;
  for (const auto& [k, v] : q)
    if (k == key) {
      found = &v;
      ++*count;
    }
  return found;
}

std::string Quoted(const std::string& etag) { return "\"" + etag + "\""; }

std::string Element(const char* name, const std::string& text) {
  return std::string("<") + name + ">" + XmlEscape(text) + "</" + name + ">";
}

Response Xml(unsigned status, std::string body) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/xml");
  res.body() = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + std::move(body);
  return res;
}

}  // namespace

S3Api::S3Api(objects::LocalStore& store, WorkerPool& workers) : store_(store), workers_(workers) {}

bool S3Api::Owns(const Request& r) const {
  const std::string root = "/" + store_.bucket();
  if (r.path == root || r.path.rfind(root + "/", 0) == 0) return true;
  auto auth = r.header.find(bhttp::field::authorization);
  if (auth != r.header.end() &&
      (auth->value().starts_with("AWS4-HMAC-SHA256") || auth->value().starts_with("AWS ")))
    return true;
  return r.raw_query.find("X-Amz-Signature=") != std::string::npos ||
         r.raw_query.find("X-Amz-Credential=") != std::string::npos;
}

Result<S3Api::Parsed> S3Api::Parse(const Request& r) const {
  Parsed p;
  std::string rest = r.path.substr(1);
  size_t slash = rest.find('/');
  p.bucket = rest.substr(0, slash);
  p.key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  // Before anything else: a key that could name a path outside the store goes no further.
  if (!p.key.empty()) LF_RETURN_IF_ERROR(objects::ValidateObjectKey(p.key));
  auto query = ParseQuery(r.raw_query);
  if (!query) return InvalidArgument("malformed query string", Reason::kInvalidArgument);
  p.query = std::move(*query);
  for (const auto& field : r.header)
    p.headers.emplace_back(AsciiLower(std::string(field.name_string())),
                           std::string(field.value()));
  return p;
}

Result<std::string> S3Api::Authenticate(const Request& r, const Parsed& p) const {
  auto hash =
      store_.Authenticate(std::string(r.header.method_string()), r.path, p.query, p.headers);
  if (!hash.ok()) return hash;
  if (!p.bucket.empty() && p.bucket != store_.bucket())
    return NotFound("The specified bucket does not exist", Reason::kNoSuchBucket);
  return hash;
}

std::optional<Response> S3Api::Admit(const Request& r) const {
  if (r.header.method() != bhttp::verb::put) return std::nullopt;
  auto parsed = Parse(r);
  if (!parsed.ok()) return S3Error(parsed.status(), r.path);
  if (parsed->key.empty()) return std::nullopt;  // bucket PUTs are refused in Handle
  auto hash = Authenticate(r, *parsed);
  if (!hash.ok()) return S3Error(hash.status(), r.path);
  // What reaches here is a PUT that streams no body (CopyObject, or a request Handle refuses).
  if (*hash != "UNSIGNED-PAYLOAD" && !IsHex64(*hash))
    return S3Error(InvalidRequest("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex "
                                  "SHA-256 of the payload for a request without an object body"),
                   r.path);
  return std::nullopt;
}

uint64_t S3Api::BodyLimit(const Request& r) const {
  // Object bodies stream (IsUpload); a CompleteMultipartUpload lists up to 10,000 parts.
  return r.header.method() == bhttp::verb::post ? 4 * 1024 * 1024 : 1024 * 1024;
}

Response S3Api::TooLarge(const Request& r, uint64_t limit) const {
  return S3Error(S3Status(Code::kTooLarge, Reason::kEntityTooLarge,
                          "Your proposed upload exceeds the maximum allowed size (" +
                              std::to_string(limit) + " bytes)"),
                 r.path);
}

void S3Api::Handle(Request r, Respond respond) {
  const std::string resource = r.path;
  auto parsed = Parse(r);
  if (!parsed.ok()) return respond(S3Error(parsed.status(), resource));
  auto hash = Authenticate(r, *parsed);
  if (!hash.ok()) return respond(S3Error(hash.status(), resource));
  bhttp::verb method = r.header.method();
  auto not_allowed = [&](const char* allow) {
    Response res = S3Error(S3Status(Code::kInvalidArgument, Reason::kMethodNotAllowed,
                                    "The specified method is not allowed against this resource."),
                           resource);
    res.set(bhttp::field::allow, allow);
    return res;
  };
  // Off the I/O thread: hashing and writing a body, walking folders.
  auto on_worker = [&](std::function<Response()> work) {
    auto shared = std::make_shared<Respond>(std::move(respond));
    if (!workers_.TryPost([shared, work = std::move(work)] { (*shared)(work()); }))
      (*shared)(S3Error(
          S3Status(Code::kUnavailable, Reason::kSlowDown, "Please reduce your request rate."),
          resource));
  };

  if (parsed->bucket.empty()) {  // the service
    if (method != bhttp::verb::get) return respond(not_allowed("GET"));
    return respond(ListBuckets());
  }
  if (parsed->key.empty()) {  // the bucket
    if (Find(parsed->query, "uploads")) {
      if (method != bhttp::verb::get) return respond(not_allowed("GET"));
      return on_worker(
          [this, p = std::move(*parsed), resource] { return ListMultipartUploads(p, resource); });
    }
    for (const char* sub : {"versions", "acl", "policy", "tagging", "lifecycle", "cors", "website",
                            "versioning", "delete", "notification", "encryption"})
      if (Find(parsed->query, sub))
        return respond(S3Error(NotImplemented(std::string("?") + sub), resource));
    if (method == bhttp::verb::head) {
      Response res{bhttp::status::ok, 11};
      res.set("x-amz-bucket-region", store_.signer().region());
      return respond(std::move(res));
    }
    if (method == bhttp::verb::put)
      return respond(S3Error(S3Status(Code::kConflict, Reason::kBucketAlreadyOwnedByYou,
                                      "Your previous request to create the named bucket "
                                      "succeeded and you already own it."),
                             resource));
    if (method != bhttp::verb::get) return respond(not_allowed("GET, HEAD"));
    if (Find(parsed->query, "location")) {
      std::string region = store_.signer().region() == "us-east-1" ? "" : store_.signer().region();
      return respond(Xml(200, std::string("<LocationConstraint xmlns=\"") + kXmlns + "\">" +
                                  XmlEscape(region) + "</LocationConstraint>\n"));
    }
    return on_worker([this, p = std::move(*parsed)] { return ListObjects(p); });
  }
  if (Find(parsed->query, "uploads")) {
    if (method != bhttp::verb::post) return respond(not_allowed("POST"));
    return on_worker(
        [this, p = std::move(*parsed), resource] { return CreateMultipartUpload(p, resource); });
  }
  if (Find(parsed->query, "uploadId")) {
    if (Header(parsed->headers, "x-amz-copy-source"))
      return respond(
          S3Error(NotImplemented("x-amz-copy-source with uploadId (UploadPartCopy)"), resource));
    switch (method) {
      case bhttp::verb::post:
        return on_worker(
            [this, r = std::move(r), p = std::move(*parsed), resource, h = std::move(*hash)] {
              return CompleteMultipartUpload(r, p, resource, h);
            });
      case bhttp::verb::delete_:
        return on_worker(
            [this, p = std::move(*parsed), resource] { return AbortMultipartUpload(p, resource); });
      case bhttp::verb::get:
        return on_worker(
            [this, p = std::move(*parsed), resource] { return ListParts(p, resource); });
      default:
        return respond(not_allowed("GET, POST, DELETE"));
    }
  }
  for (const auto& [k, v] : parsed->query)
    if (!PlainObjectParam(k))
      return respond(S3Error(NotImplemented("the '" + k + "' parameter"), resource));
  switch (method) {
    case bhttp::verb::get:
    case bhttp::verb::head:
      // Small files, read from the page cache: cheaper here than a hop to a worker.
      return respond(GetObject(r, *parsed));
    case bhttp::verb::put:
      // Object bodies stream (StartUpload): a PUT here is a copy.
      if (!Header(parsed->headers, "x-amz-copy-source"))
        return respond(S3Error(InvalidRequest("a PUT of an object must send its body"), resource));
      return on_worker(
          [this, p = std::move(*parsed), resource] { return CopyObject(p, resource); });
    case bhttp::verb::delete_:
      return on_worker([this, key = parsed->key, resource] {
        Status s = store_.DeleteObject(key);
        if (!s.ok()) return S3Error(s, resource);
        return Response{bhttp::status::no_content, 11};
      });
    default:
      return respond(not_allowed("GET, HEAD, PUT, DELETE"));
  }
}

Response S3Api::GetObject(const Request& r, const Parsed& p) {
  bool head = r.header.method() == bhttp::verb::head;
  std::optional<objects::ByteRange> range;
  if (const std::string* h = Header(p.headers, "range"); h && !head)
    range = objects::ParseByteRange(*h);
  Result<objects::StoredObject> got = objects::StoredObject{};
  if (head) {
    auto info = store_.HeadObject(p.key);
    if (!info.ok()) return S3Error(info.status(), r.path);
    got->info = std::move(*info);
  } else {
    got = store_.GetObject(p.key, range);
    if (!got.ok()) {
      Response res = S3Error(got.status(), r.path);
      if (got.status().reason() == Reason::kInvalidRange) {
        if (auto info = store_.HeadObject(p.key); info.ok())
          res.set(bhttp::field::content_range, "bytes */" + std::to_string(info->size));
      }
      return res;
    }
  }
  const objects::ObjectInfo& info = got->info;
  std::string etag = Quoted(info.meta.etag);
  if (const std::string* m = Header(p.headers, "if-match"); m && *m != etag && *m != "*")
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kPreconditionFailed,
                            "At least one of the pre-conditions you specified did not hold"),
                   r.path);
  auto response_param = [&](const char* name, const std::string& fallback) {
    const std::string* v = Find(p.query, name);
    return v ? *v : fallback;
  };
  Response res{bhttp::status::ok, 11};
  if (const std::string* nm = Header(p.headers, "if-none-match"); nm && (*nm == etag || *nm == "*"))
    res.result(bhttp::status::not_modified);
  res.set(bhttp::field::etag, etag);
  res.set(bhttp::field::last_modified, FormatHttpDate(info.last_modified_ms));
  res.set(bhttp::field::accept_ranges, "bytes");
  res.set(bhttp::field::content_type,
          response_param("response-content-type", info.meta.content_type));
  if (std::string cc = response_param("response-cache-control", info.meta.cache_control);
      !cc.empty())
    res.set(bhttp::field::cache_control, cc);
  if (std::string cd = response_param("response-content-disposition", ""); !cd.empty())
    res.set(bhttp::field::content_disposition, cd);
  for (const auto& [k, v] : info.meta.user) res.set("x-amz-meta-" + k, v);
  // A checksum is of the whole object: a range gets none (as S3).
  if (!got->partial && !info.meta.checksum_algorithm.empty() &&
      ChecksumModeEnabled(p.query, p.headers)) {
    if (auto a = aws::ParseChecksumAlgorithm(info.meta.checksum_algorithm)) {
      res.set(std::string(aws::ChecksumHeaderName(*a)), info.meta.checksum);
      res.set("x-amz-checksum-type", info.meta.checksum_type);
    }
  }
  if (res.result() == bhttp::status::not_modified) return res;
  if (head) {
    res.content_length(info.size);  // the server keeps it: HEAD sends no body
    return res;
  }
  if (got->partial) {
    res.result(bhttp::status::partial_content);
    res.set(bhttp::field::content_range, "bytes " + std::to_string(got->first) + "-" +
                                             std::to_string(got->first + got->bytes.size() - 1) +
                                             "/" + std::to_string(info.size));
  }
  res.body() = std::move(got->bytes);
  return res;
}

Response S3Api::ListObjects(const Parsed& p) {
  const std::string resource = "/" + p.bucket;
  bool v2 = false;
  if (const std::string* t = Find(p.query, "list-type")) {
    if (*t != "2")
      return S3Error(InvalidArgument("list-type must be 2", Reason::kInvalidArgument), resource);
    v2 = true;
  }
  objects::ListRequest req;
  if (const std::string* v = Find(p.query, "prefix")) req.prefix = *v;
  if (const std::string* v = Find(p.query, "delimiter")) req.delimiter = *v;
  if (const std::string* v = Find(p.query, "max-keys")) {
    int64_t n = -1;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n < 0)
      return S3Error(InvalidArgument("Provided max-keys not an integer or within integer range",
                                     Reason::kInvalidArgument),
                     resource);
    req.max_keys = static_cast<size_t>(std::min<int64_t>(n, 1000));
  }
  bool url_encoding = false;
  if (const std::string* e = Find(p.query, "encoding-type")) {
    if (*e != "url")
      return S3Error(
          InvalidArgument("Invalid Encoding Method specified in Request", Reason::kInvalidArgument),
          resource);
    url_encoding = true;
  }
  const std::string* token = v2 ? Find(p.query, "continuation-token") : nullptr;
  if (token) {
    auto decoded = HexDecode(*token);
    if (!decoded || decoded->empty())
      return S3Error(
          InvalidArgument("The continuation token provided is incorrect", Reason::kInvalidArgument),
          resource);
    req.start_after = *decoded;
  } else if (const std::string* s = Find(p.query, v2 ? "start-after" : "marker")) {
    req.start_after = *s;
  }
  auto listed = store_.List(req);
  if (!listed.ok()) return S3Error(listed.status(), resource);
  auto text = [&](const std::string& s) { return url_encoding ? UriEncode(s, false) : s; };
  std::string body = std::string("<ListBucketResult xmlns=\"") + kXmlns + "\">";
  body += Element("Name", p.bucket) + Element("Prefix", text(req.prefix));
  if (!req.delimiter.empty()) body += Element("Delimiter", text(req.delimiter));
  body += Element("MaxKeys", std::to_string(req.max_keys));
  if (url_encoding) body += Element("EncodingType", "url");
  body += Element("IsTruncated", listed->truncated ? "true" : "false");
  if (v2) {
    body += Element("KeyCount",
                    std::to_string(listed->objects.size() + listed->common_prefixes.size()));
    if (token) body += Element("ContinuationToken", *token);
    if (const std::string* s = Find(p.query, "start-after"))
      body += Element("StartAfter", text(*s));
    if (listed->truncated) body += Element("NextContinuationToken", HexEncode(listed->last));
  } else {
    body += Element("Marker", text(req.start_after));
    if (listed->truncated && !req.delimiter.empty())
      body += Element("NextMarker", text(listed->last));
  }
  for (const auto& o : listed->objects)
    body += "<Contents>" + Element("Key", text(o.key)) +
            Element("LastModified", FormatIso8601Ms(o.last_modified_ms)) +
            Element("ETag", Quoted(o.meta.etag)) + Element("Size", std::to_string(o.size)) +
            Element("StorageClass", "STANDARD") + "</Contents>";
  for (const auto& cp : listed->common_prefixes)
    body += "<CommonPrefixes>" + Element("Prefix", text(cp)) + "</CommonPrefixes>";
  body += "</ListBucketResult>\n";
  return Xml(200, std::move(body));
}

Response S3Api::ListBuckets() const {
  return Xml(200, std::string("<ListAllMyBucketsResult xmlns=\"") + kXmlns + "\">" +
                      "<Owner><ID>lastframe</ID><DisplayName>lastframe</DisplayName></Owner>" +
                      "<Buckets><Bucket>" + Element("Name", store_.bucket()) +
                      Element("CreationDate", FormatIso8601Ms(store_.created_ms())) +
                      "</Bucket></Buckets></ListAllMyBucketsResult>\n");
}

bool S3Api::IsUpload(const Request& r) const {
  if (r.header.method() != bhttp::verb::put || !Owns(r)) return false;
  size_t slash = r.path.find('/', 1);
  if (slash == std::string::npos || slash + 1 == r.path.size()) return false;  // a bucket
  return r.header.find("x-amz-copy-source") == r.header.end();
}

std::variant<std::unique_ptr<UploadSink>, Response> S3Api::StartUpload(const Request& r,
                                                                       UploadEvents events) {
  auto parsed = Parse(r);
  if (!parsed.ok()) return S3Error(parsed.status(), r.path);
  auto hash = Authenticate(r, *parsed);
  if (!hash.ok()) return S3Error(hash.status(), r.path);
  auto plan = PlanUpload(r, *parsed, *hash);
  if (!plan.ok()) return S3Error(plan.status(), r.path);
  return MakeS3UploadSink(store_, workers_, std::move(*plan), std::move(events));
}

Result<S3UploadPlan> S3Api::PlanUpload(const Request& r, const Parsed& p,
                                       const std::string& payload_hash) const {
  S3UploadPlan plan;
  plan.key = p.key;
  plan.resource = r.path;
  plan.max_bytes = store_.max_object_bytes();
  // UploadPart, or a plain PutObject.
  int ids = 0, numbers = 0;
  const std::string* upload_id = Single(p.query, "uploadId", &ids);
  const std::string* number = Single(p.query, "partNumber", &numbers);
  for (const auto& [k, v] : p.query)
    if (!PlainObjectParam(k) && k != "uploadId" && k != "partNumber")
      return NotImplemented("the '" + k + "' parameter");
  if (ids > 1 || numbers > 1) return InvalidRequest("uploadId and partNumber may be given once");
  if ((upload_id == nullptr) != (number == nullptr))
    return InvalidRequest("UploadPart needs both uploadId and partNumber");
  if (number) {
    int n = 0;
    auto [end, ec] = std::from_chars(number->data(), number->data() + number->size(), n);
    if (ec != std::errc() || end != number->data() + number->size() || n < 1 || n > 10000)
      return S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                      "Part number must be an integer between 1 and 10000, inclusive");
    auto upload = store_.FindMultipartUpload(*upload_id, p.key);
    if (!upload.ok()) return upload.status();
    plan.upload = std::move(*upload);
    plan.part_number = n;
  }
  // The body's framing and how its bytes were signed.
  if (IsHex64(payload_hash)) {
    plan.payload_sha256 = payload_hash;
  } else if (payload_hash != "UNSIGNED-PAYLOAD") {
    plan.chunked = aws::ParseChunkedMode(payload_hash);
    if (!plan.chunked) {
      if (payload_hash.rfind("STREAMING-", 0) == 0)
        return NotImplemented("x-amz-content-sha256: " + payload_hash);
      return S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or the hex "
                      "SHA-256 of the payload");
    }
    if (*plan.chunked != aws::ChunkedMode::kUnsignedWithTrailer) {
      auto signing = store_.signer().ChunkSigningFor(p.headers);
      if (!signing.ok()) return signing.status();
      plan.signing = std::move(*signing);
    }
  }
  const bool chunked_framing = r.header.find(bhttp::field::transfer_encoding) != r.header.end();
  auto length = r.header.find(bhttp::field::content_length);
  if (length == r.header.end() && !chunked_framing)
    return S3Status(Code::kInvalidArgument, Reason::kMissingContentLength,
                    "You must provide the Content-Length HTTP header.");
  auto number_of = [](const std::string& text) -> std::optional<uint64_t> {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
  };
  if (const std::string* decoded = Header(p.headers, "x-amz-decoded-content-length")) {
    plan.decoded_length = number_of(*decoded);
    if (!plan.decoded_length)
      return S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                      "x-amz-decoded-content-length must be a number of bytes");
  } else if (plan.chunked) {
    return S3Status(Code::kInvalidArgument, Reason::kMissingContentLength,
                    "You must provide the x-amz-decoded-content-length header with an "
                    "aws-chunked body.");
  }
  std::optional<uint64_t> size = plan.decoded_length;
  if (!plan.chunked && length != r.header.end()) size = number_of(std::string(length->value()));
  if (size && *size > plan.max_bytes)
    return S3Status(Code::kTooLarge, Reason::kEntityTooLarge,
                    "Your proposed upload exceeds the maximum allowed size of " +
                        std::to_string(plan.max_bytes) + " bytes");
  if (const std::string* md5 = Header(p.headers, "content-md5")) {
    auto digest = Base64Decode(*md5);
    if (!digest || digest->size() != 16)
      return S3Status(Code::kInvalidArgument, Reason::kInvalidDigest,
                      "The Content-MD5 you specified was invalid.");
    plan.content_md5 = std::move(*digest);
  }
  // Checksums: one algorithm, its value in a header or (declared by x-amz-trailer) in the trailer.
  std::optional<aws::ChecksumAlgorithm> in_header, in_trailer;
  for (aws::ChecksumAlgorithm a : aws::kChecksumAlgorithms) {
    if (const std::string* v = Header(p.headers, aws::ChecksumHeaderName(a))) {
      if (in_header)
        return InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
      if (!aws::DecodeChecksumValue(a, *v))
        return InvalidRequest("Value for " + std::string(aws::ChecksumHeaderName(a)) +
                              " header is invalid.");
      in_header = a;
      plan.expected_checksum = *v;
    }
  }
  if (const std::string* trailer = Header(p.headers, "x-amz-trailer")) {
    plan.declared_trailer = AsciiLower(*trailer);
    for (aws::ChecksumAlgorithm a : aws::kChecksumAlgorithms)
      if (plan.declared_trailer == aws::ChecksumHeaderName(a)) in_trailer = a;
    if (!in_trailer)
      return InvalidRequest("The value specified in the x-amz-trailer header is not supported");
    if (!plan.chunked || *plan.chunked == aws::ChunkedMode::kSigned)
      return InvalidRequest(
          "x-amz-trailer needs an aws-chunked body with a trailer "
          "(x-amz-content-sha256: STREAMING-...-TRAILER)");
    if (in_header)
      return InvalidRequest(
          "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  }
  plan.client_algorithm = in_header ? in_header : in_trailer;
  if (const std::string* named = Header(p.headers, "x-amz-sdk-checksum-algorithm")) {
    auto a = aws::ParseChecksumAlgorithm(*named);
    if (!a) return InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.");
    if (!plan.client_algorithm)
      return InvalidRequest(
          "x-amz-sdk-checksum-algorithm specified, but no corresponding "
          "x-amz-checksum-* or x-amz-trailer headers were found.");
    if (*a != *plan.client_algorithm)
      return InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid: it names " +
                            std::string(aws::ChecksumName(*a)) + ", the checksum sent is " +
                            std::string(aws::ChecksumName(*plan.client_algorithm)));
  }
  if (plan.upload && !plan.upload->meta.checksum_algorithm.empty()) {
    std::string want = plan.upload->meta.checksum_algorithm;
    std::string got = plan.client_algorithm ? std::string(aws::ChecksumName(*plan.client_algorithm))
                                            : std::string("null");
    if (want != got)
      return InvalidRequest("Checksum Type mismatch occurred, expected checksum Type: " +
                            AsciiLower(want) + ", actual checksum Type: " + AsciiLower(got));
  }
  if (plan.client_algorithm) plan.algorithms.push_back(*plan.client_algorithm);
  if (plan.client_algorithm != aws::ChecksumAlgorithm::kCrc64Nvme)
    plan.algorithms.push_back(aws::ChecksumAlgorithm::kCrc64Nvme);
  // A part keeps no metadata of its own (the upload's was fixed at its creation).
  if (!plan.upload) {
    plan.meta = MetaFromHeaders(p.headers);
    LF_RETURN_IF_ERROR(objects::ValidateObjectMeta(plan.meta));
  }
  return plan;
}

Response S3Api::CopyObject(const Parsed& p, const std::string& resource) {
  // "bucket/key" or "/bucket/key", percent-encoded, perhaps with "?versionId=".
  std::string source = *Header(p.headers, "x-amz-copy-source");
  std::string version;
  if (size_t q = source.find('?'); q != std::string::npos) {
    version = source.substr(q + 1);
    source.resize(q);
  }
  if (!version.empty() && version != "versionId=null")
    return S3Error(NotImplemented("x-amz-copy-source with a version (the store keeps none)"),
                   resource);
  auto decoded = UriDecode(source);
  if (!decoded)
    return S3Error(
        S3Status(Code::kInvalidArgument, Reason::kInvalidArgument, "Invalid copy source encoding"),
        resource);
  std::string path = *decoded;
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  size_t slash = path.find('/');
  if (slash == std::string::npos || slash + 1 == path.size())
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                            "Copy Source must mention the source bucket and key: "
                            "sourcebucket/sourcekey"),
                   resource);
  if (path.substr(0, slash) != store_.bucket())
    return S3Error(NotFound("The specified bucket does not exist", Reason::kNoSuchBucket),
                   resource);
  std::string source_key = path.substr(slash + 1);
  if (Status s = objects::ValidateObjectKey(source_key); !s.ok()) return S3Error(s, resource);
  std::string directive = "COPY";
  if (const std::string* d = Header(p.headers, "x-amz-metadata-directive")) directive = *d;
  if (directive != "COPY" && directive != "REPLACE")
    return S3Error(
        S3Status(Code::kInvalidArgument, Reason::kInvalidArgument, "Unknown metadata directive."),
        resource);
  if (source_key == p.key && directive == "COPY")
    return S3Error(InvalidRequest("This copy request is illegal because it is trying to copy an "
                                  "object to itself without changing the object's metadata, "
                                  "storage class, website redirect location or encryption "
                                  "attributes."),
                   resource);
  auto info = store_.HeadObject(source_key);
  if (!info.ok()) return S3Error(info.status(), resource);
  const std::string etag = Quoted(info->meta.etag);
  const std::string* if_match = Header(p.headers, "x-amz-copy-source-if-match");
  const std::string* if_none = Header(p.headers, "x-amz-copy-source-if-none-match");
  if ((if_match && *if_match != etag && *if_match != "*") ||
      (if_none && (*if_none == etag || *if_none == "*")))
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kPreconditionFailed,
                            "At least one of the pre-conditions you specified did not hold"),
                   resource);
  std::string algorithm;
  if (const std::string* a = Header(p.headers, "x-amz-checksum-algorithm")) {
    auto parsed = aws::ParseChecksumAlgorithm(*a);
    if (!parsed)
      return S3Error(InvalidRequest("Value for x-amz-checksum-algorithm header is invalid."),
                     resource);
    algorithm = std::string(aws::ChecksumName(*parsed));
  }
  std::optional<objects::ObjectMeta> meta;
  if (directive == "REPLACE") meta = MetaFromHeaders(p.headers);
  auto copied = store_.CopyObject(source_key, p.key, std::move(meta), algorithm);
  if (!copied.ok()) return S3Error(copied.status(), resource);
  std::string body = std::string("<CopyObjectResult xmlns=\"") + kXmlns + "\">" +
                     Element("LastModified", FormatIso8601Ms(copied->last_modified_ms)) +
                     Element("ETag", Quoted(copied->meta.etag));
  if (auto a = aws::ParseChecksumAlgorithm(copied->meta.checksum_algorithm)) {
    body += Element("ChecksumType", copied->meta.checksum_type);
    body += Element(std::string(aws::ChecksumXmlName(*a)).c_str(), copied->meta.checksum);
  }
  body += "</CopyObjectResult>\n";
  return Xml(200, std::move(body));
}

namespace {

std::string UploadXml(const objects::MultipartUpload& up) {
  std::string out = Element("Key", up.key) + Element("UploadId", up.upload_id) +
                    "<Initiator><ID>lastframe</ID><DisplayName>lastframe</DisplayName></Initiator>"
                    "<Owner><ID>lastframe</ID><DisplayName>lastframe</DisplayName></Owner>" +
                    Element("StorageClass", "STANDARD");
  if (!up.meta.checksum_algorithm.empty())
    out += Element("ChecksumAlgorithm", up.meta.checksum_algorithm) +
           Element("ChecksumType", up.meta.checksum_type);
  return out;
}

std::optional<uint64_t> NumberParam(const QueryParams& q, std::string_view key) {
  const std::string* v = Find(q, key);
  if (!v) return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size()) return UINT64_MAX;
  return n;
}

}  // namespace

Response S3Api::CreateMultipartUpload(const Parsed& p, const std::string& resource) {
  objects::ObjectMeta meta = MetaFromHeaders(p.headers);
  const std::string* algorithm = Header(p.headers, "x-amz-checksum-algorithm");
  const std::string* type = Header(p.headers, "x-amz-checksum-type");
  if (algorithm) {
    auto a = aws::ParseChecksumAlgorithm(*algorithm);
    if (!a)
      return S3Error(InvalidRequest("Value for x-amz-checksum-algorithm header is invalid."),
                     resource);
    meta.checksum_algorithm = std::string(aws::ChecksumName(*a));
    // CRC64NVME has only a full-object form, the SHAs only a composite one.
    meta.checksum_type = *a == aws::ChecksumAlgorithm::kCrc64Nvme ? "FULL_OBJECT" : "COMPOSITE";
    if (type) {
      if (*type != "COMPOSITE" && *type != "FULL_OBJECT")
        return S3Error(InvalidRequest("Value for x-amz-checksum-type header is invalid."),
                       resource);
      if ((*type == "FULL_OBJECT" && !aws::IsCrc(*a)) ||
          (*type == "COMPOSITE" && *a == aws::ChecksumAlgorithm::kCrc64Nvme))
        return S3Error(InvalidRequest("The " + *type + " checksum type cannot be used with the " +
                                      meta.checksum_algorithm + " checksum algorithm."),
                       resource);
      meta.checksum_type = *type;
    }
  } else if (type) {
    return S3Error(InvalidRequest("x-amz-checksum-type needs x-amz-checksum-algorithm"), resource);
  }
  auto up = store_.CreateMultipartUpload(p.key, std::move(meta));
  if (!up.ok()) return S3Error(up.status(), resource);
  Response res =
      Xml(200, std::string("<InitiateMultipartUploadResult xmlns=\"") + kXmlns + "\">" +
                   Element("Bucket", p.bucket) + Element("Key", p.key) +
                   Element("UploadId", up->upload_id) + "</InitiateMultipartUploadResult>\n");
  if (!up->meta.checksum_algorithm.empty()) {
    res.set("x-amz-checksum-algorithm", up->meta.checksum_algorithm);
    res.set("x-amz-checksum-type", up->meta.checksum_type);
  }
  return res;
}

Response S3Api::CompleteMultipartUpload(const Request& r, const Parsed& p,
                                        const std::string& resource,
                                        const std::string& payload_hash) {
  if (IsHex64(payload_hash) && payload_hash != aws::Sha256Hex(r.body))
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kXAmzContentSHA256Mismatch,
                            "The provided 'x-amz-content-sha256' header does not match what was "
                            "computed."),
                   resource);
  auto up = store_.FindMultipartUpload(*Find(p.query, "uploadId"), p.key);
  if (!up.ok()) return S3Error(up.status(), resource);
  auto malformed = [&](const std::string& why) {
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kMalformedXML,
                            "The XML you provided was not well-formed or did not validate "
                            "against our published schema: " +
                                why),
                   resource);
  };
  pugi::xml_document doc;
  pugi::xml_parse_result parsed_xml = doc.load_buffer(r.body.data(), r.body.size());
  if (!parsed_xml) return malformed(parsed_xml.description());
  pugi::xml_node root = doc.child("CompleteMultipartUpload");
  if (!root) return malformed("the root element must be CompleteMultipartUpload");
  std::vector<objects::CompletedPart> parts;
  for (pugi::xml_node part : root.children()) {
    if (std::string_view(part.name()) != "Part") continue;
    objects::CompletedPart c;
    std::string number = part.child_value("PartNumber");
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), c.number);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size())
      return malformed("PartNumber '" + number + "' is not a number");
    c.etag = part.child_value("ETag");
    if (c.etag.size() >= 2 && c.etag.front() == '"' && c.etag.back() == '"')
      c.etag = c.etag.substr(1, c.etag.size() - 2);
    for (aws::ChecksumAlgorithm a : aws::kChecksumAlgorithms)
      if (pugi::xml_node v = part.child(std::string(aws::ChecksumXmlName(a)).c_str()))
        c.checksums.emplace_back(std::string(aws::ChecksumName(a)), v.child_value());
    parts.push_back(std::move(c));
  }
  if (parts.size() > 10000) return malformed("more than 10000 parts");
  std::string whole;
  if (auto a = aws::ParseChecksumAlgorithm(
          up->meta.checksum_algorithm.empty() ? "CRC64NVME" : up->meta.checksum_algorithm))
    if (const std::string* v = Header(p.headers, aws::ChecksumHeaderName(*a))) whole = *v;
  auto done = store_.CompleteMultipartUpload(*up, parts, whole);
  if (!done.ok()) return S3Error(done.status(), resource);
  std::string body = std::string("<CompleteMultipartUploadResult xmlns=\"") + kXmlns + "\">" +
                     Element("Location", resource) + Element("Bucket", p.bucket) +
                     Element("Key", p.key) + Element("ETag", Quoted(done->meta.etag));
  if (auto a = aws::ParseChecksumAlgorithm(done->meta.checksum_algorithm))
    body += Element(std::string(aws::ChecksumXmlName(*a)).c_str(), done->meta.checksum) +
            Element("ChecksumType", done->meta.checksum_type);
  body += "</CompleteMultipartUploadResult>\n";
  return Xml(200, std::move(body));
}

Response S3Api::AbortMultipartUpload(const Parsed& p, const std::string& resource) {
  auto up = store_.FindMultipartUpload(*Find(p.query, "uploadId"), p.key);
  if (!up.ok()) return S3Error(up.status(), resource);
  if (Status s = store_.AbortMultipartUpload(*up); !s.ok()) return S3Error(s, resource);
  return Response{bhttp::status::no_content, 11};
}

Response S3Api::ListParts(const Parsed& p, const std::string& resource) {
  auto up = store_.FindMultipartUpload(*Find(p.query, "uploadId"), p.key);
  if (!up.ok()) return S3Error(up.status(), resource);
  auto max_parts = NumberParam(p.query, "max-parts").value_or(1000);
  auto marker = NumberParam(p.query, "part-number-marker").value_or(0);
  if (max_parts == UINT64_MAX || marker == UINT64_MAX)
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                            "max-parts and part-number-marker must be whole numbers"),
                   resource);
  if (max_parts == 0) max_parts = 1000;  // a page of none would never end a paginator
  max_parts = std::min<uint64_t>(max_parts, 1000);
  auto parts = store_.ListParts(*up);
  if (!parts.ok()) return S3Error(parts.status(), resource);
  std::string listed;
  size_t shown = 0;
  bool truncated = false;
  int last = 0;
  for (const objects::PartInfo& part : *parts) {
    if (static_cast<uint64_t>(part.number) <= marker) continue;
    if (shown == max_parts) {
      truncated = true;
      break;
    }
    ++shown;
    last = part.number;
    listed += "<Part>" + Element("PartNumber", std::to_string(part.number)) +
              Element("LastModified", FormatIso8601Ms(part.last_modified_ms)) +
              Element("ETag", Quoted(part.etag)) + Element("Size", std::to_string(part.size));
    if (auto a = aws::ParseChecksumAlgorithm(up->meta.checksum_algorithm))
      for (const auto& [name, value] : part.checksums)
        if (name == aws::ChecksumName(*a))
          listed += Element(std::string(aws::ChecksumXmlName(*a)).c_str(), value);
    listed += "</Part>";
  }
  std::string body =
      std::string("<ListPartsResult xmlns=\"") + kXmlns + "\">" + Element("Bucket", p.bucket) +
      UploadXml(*up) + Element("PartNumberMarker", std::to_string(marker)) +
      Element("NextPartNumberMarker", std::to_string(last)) +
      Element("MaxParts", std::to_string(max_parts)) +
      Element("IsTruncated", truncated ? "true" : "false") + listed + "</ListPartsResult>\n";
  return Xml(200, std::move(body));
}

Response S3Api::ListMultipartUploads(const Parsed& p, const std::string& resource) {
  auto max_uploads = NumberParam(p.query, "max-uploads").value_or(1000);
  if (max_uploads == UINT64_MAX)
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                            "max-uploads must be a whole number"),
                   resource);
  if (max_uploads == 0) max_uploads = 1000;
  max_uploads = std::min<uint64_t>(max_uploads, 1000);
  std::string prefix, key_marker, id_marker;
  if (const std::string* v = Find(p.query, "prefix")) prefix = *v;
  if (const std::string* v = Find(p.query, "key-marker")) key_marker = *v;
  if (const std::string* v = Find(p.query, "upload-id-marker")) id_marker = *v;
  std::string listed;
  size_t shown = 0;
  bool truncated = false;
  std::string next_key, next_id;
  for (const objects::MultipartUpload& up : store_.ListMultipartUploads()) {
    if (up.key.compare(0, prefix.size(), prefix) != 0) continue;
    if (!key_marker.empty() &&
        (up.key < key_marker ||
         (up.key == key_marker && (id_marker.empty() || up.upload_id <= id_marker))))
      continue;
    if (shown == max_uploads) {
      truncated = true;
      break;
    }
    ++shown;
    next_key = up.key;
    next_id = up.upload_id;
    listed += "<Upload>" + UploadXml(up) + Element("Initiated", FormatIso8601Ms(up.initiated_ms)) +
              "</Upload>";
  }
  std::string body = std::string("<ListMultipartUploadsResult xmlns=\"") + kXmlns + "\">" +
                     Element("Bucket", p.bucket) + Element("KeyMarker", key_marker) +
                     Element("UploadIdMarker", id_marker) + Element("Prefix", prefix) +
                     Element("MaxUploads", std::to_string(max_uploads)) +
                     Element("IsTruncated", truncated ? "true" : "false");
  if (truncated)
    body += Element("NextKeyMarker", next_key) + Element("NextUploadIdMarker", next_id);
  body += listed + "</ListMultipartUploadsResult>\n";
  return Xml(200, std::move(body));
}

}  // namespace lastframe::http
