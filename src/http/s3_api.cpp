#include "http/s3_api.h"

#include <openssl/evp.h>

#include <charconv>

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

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Query parameters that do not change what an object request means.
bool PlainObjectParam(const std::string& k) {
  return k.rfind("X-Amz-", 0) == 0 || k.rfind("response-", 0) == 0 || k == "x-id";
}

std::string Quoted(const std::string& etag) { return "\"" + etag + "\""; }

std::string Element(const char* name, const std::string& text) {
  return std::string("<") + name + ">" + XmlEscape(text) + "</" + name + ">";
}

std::string HexEncodeToken(const std::string& s) { return HexEncode(s); }

std::optional<std::string> HexDecodeToken(const std::string& s) {
  if (s.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data() + i, s.data() + i + 2, v, 16);
    if (ec != std::errc() || end != s.data() + i + 2) return std::nullopt;
    out.push_back(static_cast<char>(v));
  }
  return out;
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
    p.headers.emplace_back(Lower(std::string(field.name_string())), std::string(field.value()));
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
  if (hash->rfind("STREAMING-", 0) == 0)
    return S3Error(NotImplemented("x-amz-content-sha256: " + *hash +
                                  " (aws-chunked uploads); sign the payload's SHA-256 or send "
                                  "UNSIGNED-PAYLOAD"),
                   r.path);
  if (*hash != "UNSIGNED-PAYLOAD" && !IsHex64(*hash))
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kInvalidArgument,
                            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of "
                            "the payload"),
                   r.path);
  bool chunked = r.header.find(bhttp::field::transfer_encoding) != r.header.end();
  if (r.header.find(bhttp::field::content_length) == r.header.end() && !chunked)
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kMissingContentLength,
                            "You must provide the Content-Length HTTP header."),
                   r.path);
  if (Status s = objects::ValidateObjectKey(parsed->key); !s.ok()) return S3Error(s, r.path);
  return std::nullopt;
}

uint64_t S3Api::BodyLimit(const Request& r) const {
  return r.header.method() == bhttp::verb::put ? store_.max_object_bytes() : 1024 * 1024;
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
    for (const char* sub : {"uploads", "versions", "acl", "policy", "tagging", "lifecycle", "cors",
                            "website", "versioning", "delete", "notification", "encryption"})
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
  for (const auto& [k, v] : parsed->query)
    if (!PlainObjectParam(k))
      return respond(S3Error(NotImplemented("the '" + k + "' parameter"), resource));
  switch (method) {
    case bhttp::verb::get:
    case bhttp::verb::head:
      // Small files, read from the page cache: cheaper here than a hop to a worker.
      return respond(GetObject(r, *parsed));
    case bhttp::verb::put:
      if (Header(parsed->headers, "x-amz-copy-source"))
        return respond(S3Error(NotImplemented("x-amz-copy-source (CopyObject)"), resource));
      return on_worker([this, r = std::move(r), p = std::move(*parsed), h = std::move(*hash)] {
        return PutObject(r, p, h);
      });
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

Response S3Api::PutObject(const Request& r, const Parsed& p, const std::string& payload_hash) {
  const std::string& body = r.body;
  if (payload_hash != "UNSIGNED-PAYLOAD" && payload_hash != aws::Sha256Hex(body))
    return S3Error(S3Status(Code::kInvalidArgument, Reason::kXAmzContentSHA256Mismatch,
                            "The provided 'x-amz-content-sha256' header does not match what was "
                            "computed."),
                   r.path);
  std::string md5 = objects::Md5Hex(body);
  if (const std::string* given = Header(p.headers, "content-md5")) {
    auto digest = Base64Decode(*given);
    if (!digest || digest->size() != 16)
      return S3Error(S3Status(Code::kInvalidArgument, Reason::kInvalidDigest,
                              "The Content-MD5 you specified was invalid."),
                     r.path);
    if (HexEncode(*digest) != md5)
      return S3Error(S3Status(Code::kInvalidArgument, Reason::kBadDigest,
                              "The Content-MD5 you specified did not match what we received."),
                     r.path);
  }
  objects::ObjectMeta meta;
  if (const std::string* t = Header(p.headers, "content-type"))
    meta.content_type = *t;
  else
    meta.content_type = "binary/octet-stream";
  if (const std::string* c = Header(p.headers, "cache-control")) meta.cache_control = *c;
  for (const auto& [k, v] : p.headers)
    if (k.rfind("x-amz-meta-", 0) == 0) meta.user.emplace_back(k.substr(11), v);
  auto stored = store_.PutObject(p.key, body, std::move(meta));
  if (!stored.ok()) return S3Error(stored.status(), r.path);
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::etag, Quoted(stored->meta.etag));
  return res;
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
    auto decoded = HexDecodeToken(*token);
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
    if (listed->truncated) body += Element("NextContinuationToken", HexEncodeToken(listed->last));
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

}  // namespace lastframe::http
