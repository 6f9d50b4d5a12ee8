// S3 in both directions, proven with clients and servers nobody here wrote:
// awscli v2 and boto3 against the embedded store, our S3Store against
// @20minutes/s3rver (which checks SigV4) and against the embedded store in
// another process, and `lastframe serve --store s3://...` end to end.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "aws/aws_chunked.h"
#include "aws/checksums.h"
#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/time_format.h"
#include "e2e/e2e_util.h"
#include "objects/local_store.h"
#include "objects/s3_store.h"
#include "support/aws_chunked_encoder.h"
#include "support/s3rver.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

const char* kS3Key = kS3rverKey;  // support/s3rver.h's S3rver takes this pair only
const char* kS3Secret = kS3rverSecret;

std::string SourceDir() { return LASTFRAME_SOURCE_DIR; }

// The value of query parameter |name| in |url|, still encoded.
std::string QueryParam(const std::string& url, const std::string& name) {
  size_t at = url.find("?" + name + "=");
  if (at == std::string::npos) at = url.find("&" + name + "=");
  if (at == std::string::npos) return "";
  size_t start = at + name.size() + 2;
  return url.substr(start, url.find('&', start) - start);
}

// The sorted "k=v" parameters of a URL's query.
std::vector<std::string> SortedParams(const std::string& url) {
  std::vector<std::string> out;
  std::string q = url.substr(url.find('?') + 1);
  size_t start = 0;
  while (start <= q.size()) {
    size_t amp = q.find('&', start);
    out.push_back(q.substr(start, amp - start));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

objects::S3StoreOptions StoreOptions(const std::string& endpoint, const std::string& bucket,
                                     const std::string& key, const std::string& secret) {
  objects::S3StoreOptions o;
  o.bucket = bucket;
  o.endpoint = endpoint;
  o.credentials = {key, Secret(secret), ""};
  o.upload_threads = 2;
  return o;
}

std::unique_ptr<objects::S3Store> OpenStore(objects::S3StoreOptions o) {
  auto store = objects::S3Store::Open(std::move(o), SystemClock::Get());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

// Fetches a URL we were handed (on loopback).
HttpResult Fetch(const std::string& url) {
  uint16_t port = 0;
  std::string target;
  SplitUrl(url, &port, &target);
  return HttpGet(port, target);
}

// ---- the embedded store, driven by real S3 clients and by hand ----

// How SignHeaders signs (and mis-signs) a request.
struct SignOptions {
  int64_t skew_ms = 0;
  std::string secret = kSecretKey;
  std::string access_key = kAccessKey;
  std::string region = "us-east-1";
  std::optional<std::string> payload_hash;  // default: SHA-256 of the body
  bool send_payload_hash = true;
};

// The headers of a request to 127.0.0.1:|port| signed in its Authorization
// header by our signer: |headers| (lower-case names), every one of them
// signed, with x-amz-date, x-amz-content-sha256 (unless |o| says not) and
// Authorization added. |target| is the encoded path and query as sent.
std::map<std::string, std::string> SignHeaders(uint16_t port, const std::string& method,
                                               const std::string& target, const std::string& body,
                                               std::map<std::string, std::string> headers,
                                               const SignOptions& o = {}) {
  ManualClock clock(SystemClock::Get().NowMs() + o.skew_ms);
  aws::SigV4 signer({o.access_key, Secret(o.secret), ""}, o.region, "s3", clock);
  size_t q = target.find('?');
  aws::CanonicalRequest req;
  req.method = method;
  req.path = *UriDecode(target.substr(0, q));
  req.query = q == std::string::npos ? QueryParams{} : *ParseQuery(target.substr(q + 1));
  req.payload_hash = o.payload_hash.value_or(aws::Sha256Hex(body));
  headers["x-amz-date"] = FormatAmzDate(clock.NowMs());
  if (o.send_payload_hash) headers["x-amz-content-sha256"] = req.payload_hash;
  req.headers = {{"host", "127.0.0.1:" + std::to_string(port)}};
  for (const auto& [k, v] : headers) req.headers.emplace_back(k, v);
  headers["Authorization"] = signer.Authorization(req, clock.NowMs());
  return headers;
}

// An HTTP/1.1 request as bytes on the wire (for RawExchange and
// RawConnection): |headers| as given (Host added), then |body|.
std::string RawRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers,
                       const std::string& body = "") {
  std::string raw =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& [k, v] : headers) raw += k + ": " + v + "\r\n";
  return raw + "\r\n" + body;
}

// The embedded store in a real server with --max-object-size |max_object_size|,
// and requests to it signed with SigV4 by the test key pair.
class EmbeddedS3Fixture : public ::testing::Test {
 protected:
  explicit EmbeddedS3Fixture(const std::string& max_object_size)
      : server_(dir_.file("data"), [&] {
          auto args = TestServerArgs();
          args.insert(args.end(), {"--max-object-size", max_object_size});
          return args;
        }()) {}

  uint16_t port() { return server_.port(); }

  // Runs Debian's awscli v2 against the server; returns its exit status.
  int Aws(const std::vector<std::string>& args, std::string* output,
          const std::string& secret = kSecretKey) {
    return RunAwsCli(dir_, server_.base_url(), args, output, secret);
  }

  // A request signed in its Authorization header by our signer (SignHeaders).
  HttpResult Signed(const std::string& method, const std::string& target,
                    const std::string& body = "", std::map<std::string, std::string> headers = {},
                    const SignOptions& o = {}) {
    return HttpRequest(port(), method, target, body,
                       SignHeaders(port(), method, target, body, std::move(headers), o));
  }
  static void ExpectS3Error(const HttpResult& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.body.find("<Code>" + code + "</Code>"), std::string::npos) << r.body;
  }

  TempDir dir_;
  LastframeServer server_;
};

// The server of most tests: objects up to 64 KiB.
class EmbeddedS3Test : public EmbeddedS3Fixture {
 protected:
  EmbeddedS3Test() : EmbeddedS3Fixture("65536") {}
};

TEST_F(EmbeddedS3Test, AwsCliCopiesListsPresignsAndRemoves) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data += std::to_string(i * 7919 % 10007) + ",";
  WriteFile(dir_.file("up.txt"), data);
  const std::string object = "s3://lastframe/cli/a key+plus~é.txt";
  std::string out;
  ASSERT_EQ(Aws({"s3", "cp", dir_.file("up.txt"), object}, &out), 0) << out;
  ASSERT_EQ(Aws({"s3", "ls", "s3://lastframe/cli/"}, &out), 0) << out;
  EXPECT_NE(out.find(std::to_string(data.size()) + " a key+plus~é.txt"), std::string::npos) << out;
  ASSERT_EQ(Aws({"s3", "ls", "s3://lastframe/"}, &out), 0) << out;
  EXPECT_NE(out.find("PRE cli/"), std::string::npos) << out;
  ASSERT_EQ(Aws({"s3", "cp", object, dir_.file("down.txt")}, &out), 0) << out;
  EXPECT_EQ(ReadFile(dir_.file("down.txt")), data);

  ASSERT_EQ(Aws({"s3", "presign", object, "--expires-in", "120"}, &out), 0) << out;
  std::string url = out.substr(0, out.find_last_not_of("\r\n") + 1);
  ASSERT_EQ(url.rfind(server_.base_url() + "/lastframe/cli/", 0), 0u) << url;
  HttpResult presigned = Fetch(url);
  EXPECT_EQ(presigned.status, 200) << presigned.body;
  EXPECT_EQ(presigned.body, data);
  EXPECT_EQ(presigned.header("etag"), "\"" + objects::Md5Hex(data) + "\"");

  ASSERT_EQ(Aws({"s3", "rm", object}, &out), 0) << out;
  ASSERT_EQ(Aws({"s3", "ls", "--recursive", "s3://lastframe/"}, &out), 0) << out;
  EXPECT_EQ(out.find("a key+plus"), std::string::npos) << out;
  EXPECT_EQ(Fetch(url).status, 404);
}

TEST_F(EmbeddedS3Test, AwsCliWithTheWrongSecretIsRefused) {
  std::string out;
  WriteFile(dir_.file("x.txt"), "x");
  EXPECT_NE(Aws({"s3", "cp", dir_.file("x.txt"), "s3://lastframe/x.txt"}, &out, "wrong-secret"), 0);
  EXPECT_NE(out.find("SignatureDoesNotMatch"), std::string::npos) << out;
  EXPECT_NE(Aws({"s3", "ls", "s3://lastframe/"}, &out, "wrong-secret"), 0);
  EXPECT_NE(out.find("SignatureDoesNotMatch"), std::string::npos) << out;
  EXPECT_EQ(Signed("HEAD", "/lastframe/x.txt").status, 404);  // nothing was stored
}

TEST_F(EmbeddedS3Test, Boto3ExercisesTheObjectApi) {
  std::string out;
  int rc = RunCommand({"/usr/bin/python3", SourceDir() + "/tests/e2e/s3_clients/boto3_check.py",
                       "exercise", server_.base_url(), "lastframe", kAccessKey, kSecretKey},
                      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("boto3 checks passed"), std::string::npos) << out;
}

TEST_F(EmbeddedS3Test, S3StoreAgreesWithTheEmbeddedStore) {
  auto store = OpenStore(StoreOptions(server_.base_url(), "lastframe", kAccessKey, kSecretKey));
  ASSERT_TRUE(store);
  const std::string key = "agree/a b+c~é.jpg";
  ASSERT_TRUE(store->Put(key, "JPEGBYTES", "image/jpeg").ok());
  auto head = store->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 9u);
  EXPECT_EQ(head->etag, objects::Md5Hex("JPEGBYTES"));
  EXPECT_EQ(head->content_type, "image/jpeg");
  EXPECT_EQ(head->cache_control, "private, max-age=600");
  EXPECT_EQ(*store->Get(key), "JPEGBYTES");
  auto url = store->PresignGet(key, 60);
  ASSERT_TRUE(url.ok());
  HttpResult fetched = Fetch(*url);
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.body, "JPEGBYTES");
  ASSERT_TRUE(store->Delete(key).ok());
  EXPECT_EQ(store->Head(key).status().reason(), Reason::kNoSuchKey);
  auto wrong = OpenStore(StoreOptions(server_.base_url(), "lastframe", kAccessKey, "wrong"));
  Status refused = wrong->Put(key, "x", "image/jpeg");
  EXPECT_EQ(refused.code(), Code::kUpstreamFailed);
  EXPECT_NE(refused.message().find("SignatureDoesNotMatch"), std::string::npos)
      << refused.message();
  EXPECT_EQ(wrong->stats().retries, 0u);  // a 4xx is never retried
}

TEST_F(EmbeddedS3Test, ExpectContinueComesOnlyAfterAuthentication) {
  auto raw_put = [&](const std::string& secret) {
    const std::string target = "/lastframe/continue.txt";
    const std::string body = "continued body";
    auto headers = SignHeaders(port(), "PUT", target, body, {}, {.secret = secret});
    headers["Expect"] = "100-continue";
    headers["Content-Length"] = std::to_string(body.size());
    headers["Connection"] = "close";
    return RawExchange(port(), RawRequest(port(), "PUT", target, headers, body));
  };
  std::string accepted = raw_put(kSecretKey);
  EXPECT_EQ(accepted.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0), 0u) << accepted;
  std::string refused = raw_put("wrong");
  EXPECT_EQ(refused.rfind("HTTP/1.1 403", 0), 0u) << refused;
  EXPECT_EQ(refused.find("100 Continue"), std::string::npos) << refused;
  EXPECT_NE(refused.find("SignatureDoesNotMatch"), std::string::npos);
}

TEST_F(EmbeddedS3Test, BodiesAreCheckedAgainstTheirDigests) {
  const std::string target = "/lastframe/digest.txt";
  ExpectS3Error(Signed("PUT", target, "body", {}, {.payload_hash = aws::Sha256Hex("other")}), 400,
                "XAmzContentSHA256Mismatch");
  // Content-MD5 of "other" (base64 of its digest), then one that is not base64 MD5.
  ExpectS3Error(Signed("PUT", target, "body", {{"content-md5", "eV7IxYqm2Gnf9qGuE0QxNQ=="}}), 400,
                "BadDigest");
  ExpectS3Error(Signed("PUT", target, "body", {{"content-md5", "not-md5"}}), 400, "InvalidDigest");
  // aws-chunked needs its decoded length; an algorithm we do not verify is refused as such.
  ExpectS3Error(
      Signed("PUT", target, "body", {}, {.payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}),
      411, "MissingContentLength");
  ExpectS3Error(Signed("PUT", target, "body", {},
                       {.payload_hash = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"}),
                501, "NotImplemented");
  ExpectS3Error(Signed("PUT", target, "body", {}, {.payload_hash = "nonsense"}), 400,
                "InvalidArgument");
  EXPECT_EQ(Signed("HEAD", target).status, 404);  // none of them stored anything
  // The right MD5 (of "body") and an unsigned payload are both fine.
  EXPECT_EQ(Signed("PUT", target, "body", {{"content-md5", "hBotaJrYa9FhFEdFPCLG/A=="}}).status,
            200);
  EXPECT_EQ(Signed("PUT", target, "body2", {}, {.payload_hash = "UNSIGNED-PAYLOAD"}).status, 200);
  HttpResult got = Signed("GET", target);
  EXPECT_EQ(got.body, "body2");
  EXPECT_EQ(got.header("content-type"), "binary/octet-stream");
}

TEST_F(EmbeddedS3Test, AnEmptyBodyIsAnEmptyObject) {
  // Once a regression: with nothing to read after the header, the upload waited for bytes.
  HttpResult put = Signed("PUT", "/lastframe/empty", "");
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.header("etag"), "\"" + objects::Md5Hex("") + "\"");
  HttpResult got = Signed("GET", "/lastframe/empty");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "");
  EXPECT_EQ(got.header("content-length"), "0");
}

TEST_F(EmbeddedS3Test, BadAuthenticationGetsS3Codes) {
  const std::string target = "/lastframe/auth.txt";
  ASSERT_EQ(Signed("PUT", target, "x").status, 200);
  ExpectS3Error(HttpRequest(port(), "GET", target), 403, "AccessDenied");
  ExpectS3Error(
      HttpRequest(port(), "GET", target, "", {{"Authorization", "AWS4-HMAC-SHA256 junk"}}), 400,
      "AuthorizationHeaderMalformed");
  ExpectS3Error(
      HttpRequest(port(), "GET", target, "", {{"Authorization", "AWS AKID:c2lnbmF0dXJl"}}), 400,
      "InvalidRequest");
  ExpectS3Error(
      HttpRequest(port(), "GET", target, "",
                  {{"Authorization", "AWS4-HMAC-SHA256 Credential=" + std::string(kAccessKey) +
                                         "/20261125/us-east-1/s3/aws4_request, "
                                         "SignedHeaders=host, Signature=00"}}),
      403, "AccessDenied");  // no x-amz-date
  ExpectS3Error(Signed("GET", target, "", {}, {.access_key = "AKIDNOTOURS"}), 403,
                "InvalidAccessKeyId");
  ExpectS3Error(Signed("GET", target, "", {}, {.secret = "wrong"}), 403, "SignatureDoesNotMatch");
  ExpectS3Error(Signed("GET", target, "", {}, {.region = "eu-west-1"}), 400,
                "AuthorizationHeaderMalformed");
  ExpectS3Error(Signed("GET", target, "", {}, {.send_payload_hash = false}), 400, "InvalidRequest");
  // Clocks more than 15 minutes apart, either way; 14 minutes is fine.
  ExpectS3Error(Signed("GET", target, "", {}, {.skew_ms = -16 * 60'000}), 403,
                "RequestTimeTooSkewed");
  ExpectS3Error(Signed("GET", target, "", {}, {.skew_ms = 16 * 60'000}), 403,
                "RequestTimeTooSkewed");
  EXPECT_EQ(Signed("GET", target, "", {}, {.skew_ms = 14 * 60'000}).status, 200);
  // Presigned: expired, and dated in the future.
  auto presigned = [&](int64_t at_ms, int64_t expires_s) {
    ManualClock clock(at_ms);
    aws::SigV4 signer({kAccessKey, Secret(kSecretKey), ""}, "us-east-1", "s3", clock);
    return target + "?" +
           signer.PresignQuery("GET", "127.0.0.1:" + std::to_string(port()), target, expires_s);
  };
  int64_t now = SystemClock::Get().NowMs();
  HttpResult expired = HttpGet(port(), presigned(now - 120'000, 60));
  ExpectS3Error(expired, 403, "AccessDenied");
  EXPECT_NE(expired.body.find("expired"), std::string::npos);
  HttpResult future = HttpGet(port(), presigned(now + 3'600'000, 60));
  ExpectS3Error(future, 403, "AccessDenied");
  EXPECT_NE(future.body.find("not valid yet"), std::string::npos);
  EXPECT_EQ(HttpGet(port(), presigned(now, 60)).status, 200);
}

TEST_F(EmbeddedS3Test, KeysAndSizesAreBounded) {
  // Canaries where each traversal below lands if a key could leave the bucket's folder
  // (DATA/objects/lastframe): one, two and three levels up.
  const std::vector<std::string> canaries = {dir_.file("data/objects/secret.txt"),
                                             dir_.file("data/secret.txt"), dir_.file("secret.txt")};
  for (const std::string& path : canaries) WriteFile(path, "do not serve");
  for (const std::string& target :
       {std::string("/lastframe/../secret.txt"), std::string("/lastframe/%2e%2e/secret.txt"),
        std::string("/lastframe/a/%2E%2E/%2e%2e/%2e%2e/secret.txt"),
        std::string("/lastframe/%2e%2e/%2e%2e/%2e%2e/secret.txt"),
        std::string("/lastframe/a%5Cb")}) {
    HttpResult get = Signed("GET", target);
    ExpectS3Error(get, 400, "InvalidKey");
    EXPECT_EQ(get.body.find("do not serve"), std::string::npos) << target;
    HttpResult put = Signed("PUT", target, "overwrite?");
    ExpectS3Error(put, 400, "InvalidKey");
    ExpectS3Error(Signed("DELETE", target), 400, "InvalidKey");
  }
  for (const std::string& canary : canaries) EXPECT_EQ(ReadFile(canary), "do not serve") << canary;
  // Over --max-object-size (64 KiB here): S3's EntityTooLarge, declared or chunked.
  ExpectS3Error(Signed("PUT", "/lastframe/big.bin", std::string(65537, 'b')), 400,
                "EntityTooLarge");
  EXPECT_EQ(Signed("PUT", "/lastframe/fits.bin", std::string(65536, 'f')).status, 200);
  EXPECT_EQ(Signed("HEAD", "/lastframe/big.bin").status, 404);
  // Operations S3 has and we do not: a clear 501, not a misreading.
  ExpectS3Error(Signed("GET", "/lastframe?versions"), 501, "NotImplemented");
  ExpectS3Error(Signed("GET", "/lastframe/fits.bin?acl"), 501, "NotImplemented");
  ExpectS3Error(Signed("PUT", "/lastframe/copy.bin?partNumber=1&uploadId=0123", "",
                       {{"x-amz-copy-source", "/lastframe/fits.bin"}}),
                501, "NotImplemented");
  ExpectS3Error(Signed("GET", "/lastframe?list-type=2&max-keys=lots"), 400, "InvalidArgument");
  ExpectS3Error(Signed("GET", "/lastframe?list-type=2&continuation-token=zz"), 400,
                "InvalidArgument");
}

TEST_F(EmbeddedS3Test, RangesAndConditionalGets) {
  const std::string target = "/lastframe/range.txt";
  ASSERT_EQ(Signed("PUT", target, "0123456789").status, 200);
  HttpResult part = Signed("GET", target, "", {{"range", "bytes=2-5"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "2345");
  EXPECT_EQ(part.header("content-range"), "bytes 2-5/10");
  HttpResult tail = Signed("GET", target, "", {{"range", "bytes=-3"}});
  EXPECT_EQ(tail.body, "789");
  HttpResult past = Signed("GET", target, "", {{"range", "bytes=10-"}});
  ExpectS3Error(past, 416, "InvalidRange");
  EXPECT_EQ(past.header("content-range"), "bytes */10");
  std::string etag = "\"" + objects::Md5Hex("0123456789") + "\"";
  EXPECT_EQ(Signed("GET", target, "", {{"if-none-match", etag}}).status, 304);
  ExpectS3Error(Signed("GET", target, "", {{"if-match", "\"nope\""}}), 412, "PreconditionFailed");
  HttpResult head = Signed("HEAD", target);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), "10");
  EXPECT_EQ(head.header("etag"), etag);
  EXPECT_TRUE(head.body.empty());
}

// ---- checksums, aws-chunked bodies, copies and multipart uploads, over the wire ----

const std::map<std::string, std::string> kChecksumMode = {{"x-amz-checksum-mode", "ENABLED"}};

// |n| bytes of every value (CR, LF and NUL among them), the same for the same |seed|.
std::string TestBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

// A checksum as S3 sends it in x-amz-checksum-* headers: base64 of the raw digest.
std::string ChecksumB64(aws::ChecksumAlgorithm a, std::string_view bytes) {
  return Base64Encode(aws::ChecksumOf(a, bytes));
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// The x-amz-checksum-<algorithm> headers of |r|, as "name: value".
std::vector<std::string> ChecksumHeaders(const HttpResult& r) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers)
    if (k.rfind("x-amz-checksum-", 0) == 0 && k != "x-amz-checksum-type")
      out.push_back(k + ": " + v);
  return out;
}

// The text of each <tag> element of |xml| (no attributes, no nesting), entities decoded.
std::vector<std::string> XmlValues(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at)) {
    at += open.size();
    size_t end = xml.find(close, at);
    if (end == std::string::npos) break;
    std::string text = xml.substr(at, end - at), decoded;
    for (size_t i = 0; i < text.size(); ++i) {
      bool replaced = false;
      for (const auto& [entity, c] : {std::pair<const char*, char>{"&quot;", '"'},
                                      {"&apos;", '\''},
                                      {"&lt;", '<'},
                                      {"&gt;", '>'},
                                      {"&amp;", '&'}})
        if (text.compare(i, std::strlen(entity), entity) == 0) {
          decoded.push_back(c);
          i += std::strlen(entity) - 1;
          replaced = true;
          break;
        }
      if (!replaced) decoded.push_back(text[i]);
    }
    out.push_back(std::move(decoded));
  }
  return out;
}
std::string XmlValue(const std::string& xml, const std::string& tag) {
  auto values = XmlValues(xml, tag);
  return values.empty() ? "" : values.front();
}

// The entries of folder |path| (0 when there is no such folder).
size_t EntriesIn(const std::string& path) {
  std::error_code ec;
  size_t n = 0;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
    ++n;
  return n;
}

// A loopback connection driven by hand: a client that stops halfway. Reads
// give up after 10 s.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    timeval timeout{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Ends the request's bytes (the server reads end of stream), still reading.
  void CloseSending() { ::shutdown(fd_, SHUT_WR); }
  // Everything the server sends until it closes (or 10 s pass).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// What an aws-chunked PUT with signed chunks needs: its signed headers (the
// seed signature in Authorization) and what signing its chunks takes.
struct ChunkedPut {
  std::map<std::string, std::string> headers;
  aws::ChunkSigning signing;
};

ChunkedPut SignChunkedPut(uint16_t port, const std::string& target, aws::ChunkedMode mode,
                          uint64_t decoded_length, const std::string& trailer = "") {
  std::map<std::string, std::string> headers = {
      {"content-encoding", "aws-chunked"},
      {"x-amz-decoded-content-length", std::to_string(decoded_length)}};
  if (!trailer.empty()) headers["x-amz-trailer"] = trailer;
  ChunkedPut put;
  put.headers = SignHeaders(port, "PUT", target, "", std::move(headers),
                            {.payload_hash = std::string(aws::ChunkedModeName(mode))});
  const std::string& authorization = put.headers["Authorization"];
  const std::string date = put.headers["x-amz-date"];
  const std::string day = date.substr(0, 8);
  put.signing = {date, day + "/us-east-1/s3/aws4_request",
                 SigV4SigningKey(kSecretKey, day, "us-east-1", "s3"),
                 authorization.substr(authorization.find("Signature=") + 10)};
  return put;
}

TEST_F(EmbeddedS3Test, EachChecksumIsVerifiedKeptAndReturned) {
  uint32_t seed = 1;
  for (aws::ChecksumAlgorithm a : aws::kChecksumAlgorithms) {
    const std::string name(aws::ChecksumName(a));
    const std::string header(aws::ChecksumHeaderName(a));
    SCOPED_TRACE(name);
    const std::string target = "/lastframe/sums/" + name;
    const std::string body = TestBytes(3000, seed++);
    const std::string value = ChecksumB64(a, body);
    HttpResult put = Signed("PUT", target, body, {{header, value}});
    EXPECT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.header(header), value);
    EXPECT_EQ(put.header("etag"), Quoted(objects::Md5Hex(body)));

    // Asked for (header or query): the client's checksum, and only it.
    HttpResult head = Signed("HEAD", target, "", kChecksumMode);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(ChecksumHeaders(head), std::vector<std::string>{header + ": " + value});
    EXPECT_EQ(head.header("x-amz-checksum-type"), "FULL_OBJECT");
    HttpResult get = Signed("GET", target, "", kChecksumMode);
    EXPECT_EQ(get.status, 200);
    EXPECT_TRUE(get.body == body);
    EXPECT_EQ(ChecksumHeaders(get), std::vector<std::string>{header + ": " + value});
    EXPECT_EQ(get.header("x-amz-checksum-type"), "FULL_OBJECT");
    HttpResult by_query = Signed("GET", target + "?x-amz-checksum-mode=ENABLED");
    EXPECT_EQ(ChecksumHeaders(by_query), std::vector<std::string>{header + ": " + value});

    // Not asked for, or asked for with a range (a checksum is of the whole object): none.
    HttpResult plain = Signed("GET", target);
    EXPECT_TRUE(plain.body == body);
    EXPECT_TRUE(ChecksumHeaders(plain).empty());
    EXPECT_EQ(plain.header("x-amz-checksum-type"), "");
    EXPECT_TRUE(ChecksumHeaders(Signed("HEAD", target)).empty());
    auto ranged_headers = kChecksumMode;
    ranged_headers["range"] = "bytes=10-19";
    HttpResult ranged = Signed("GET", target, "", ranged_headers);
    EXPECT_EQ(ranged.status, 206);
    EXPECT_EQ(ranged.body, body.substr(10, 10));
    EXPECT_TRUE(ChecksumHeaders(ranged).empty());
    EXPECT_EQ(ranged.header("x-amz-checksum-type"), "");
  }
}

TEST_F(EmbeddedS3Test, WrongOrMalformedChecksumsStoreNothing) {
  const std::string body = "the body whose checksums are sent";
  for (aws::ChecksumAlgorithm a : aws::kChecksumAlgorithms) {
    const std::string header(aws::ChecksumHeaderName(a));
    SCOPED_TRACE(header);
    const std::string target = "/lastframe/refused/" + std::string(aws::ChecksumName(a));
    // Well formed, but of other bytes: the body is read, then thrown away.
    ExpectS3Error(Signed("PUT", target, body, {{header, ChecksumB64(a, "other bytes")}}), 400,
                  "BadDigest");
    // Not base64; base64 of one byte too many.
    ExpectS3Error(Signed("PUT", target, body, {{header, "not base64!"}}), 400, "InvalidRequest");
    ExpectS3Error(
        Signed("PUT", target, body, {{header, Base64Encode(aws::ChecksumOf(a, body) + "x")}}), 400,
        "InvalidRequest");
    EXPECT_EQ(Signed("HEAD", target).status, 404);
  }
  const std::string target = "/lastframe/refused/mixed";
  const std::string crc32 = ChecksumB64(aws::ChecksumAlgorithm::kCrc32, body);
  // Two checksums, each right.
  ExpectS3Error(
      Signed("PUT", target, body,
             {{"x-amz-checksum-crc32", crc32},
              {"x-amz-checksum-sha256", ChecksumB64(aws::ChecksumAlgorithm::kSha256, body)}}),
      400, "InvalidRequest");
  // x-amz-sdk-checksum-algorithm naming another algorithm than the header's, or without one.
  ExpectS3Error(
      Signed("PUT", target, body,
             {{"x-amz-checksum-crc32", crc32}, {"x-amz-sdk-checksum-algorithm", "SHA256"}}),
      400, "InvalidRequest");
  ExpectS3Error(Signed("PUT", target, body, {{"x-amz-sdk-checksum-algorithm", "CRC32"}}), 400,
                "InvalidRequest");
  EXPECT_EQ(Signed("HEAD", target).status, 404);
  // The same header with the algorithm named alike (in any case) is stored...
  HttpResult named =
      Signed("PUT", target, body,
             {{"x-amz-checksum-crc32", crc32}, {"x-amz-sdk-checksum-algorithm", "crc32"}});
  EXPECT_EQ(named.status, 200) << named.body;
  EXPECT_EQ(named.header("x-amz-checksum-crc32"), crc32);
  // ...and a refused overwrite leaves it as it was.
  ExpectS3Error(Signed("PUT", target, "new bytes", {{"x-amz-checksum-crc32", crc32}}), 400,
                "BadDigest");
  HttpResult kept = Signed("GET", target, "", kChecksumMode);
  EXPECT_EQ(kept.body, body);
  EXPECT_EQ(kept.header("x-amz-checksum-crc32"), crc32);
  EXPECT_EQ(EntriesIn(dir_.file("data/objects/.tmp")), 0u);
}

TEST_F(EmbeddedS3Test, AnObjectSentWithoutAChecksumGetsCrc64Nvme) {
  const std::string body = TestBytes(5000, 7);
  HttpResult put = Signed("PUT", "/lastframe/plain.bin", body);
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_TRUE(ChecksumHeaders(put).empty());  // the client sent none to echo
  HttpResult head = Signed("HEAD", "/lastframe/plain.bin", "", kChecksumMode);
  EXPECT_EQ(ChecksumHeaders(head),
            std::vector<std::string>{"x-amz-checksum-crc64nvme: " +
                                     ChecksumB64(aws::ChecksumAlgorithm::kCrc64Nvme, body)});
  EXPECT_EQ(head.header("x-amz-checksum-type"), "FULL_OBJECT");
}

TEST_F(EmbeddedS3Test, AnUnsignedChunkedBodyIsDecodedAndItsTrailerChecked) {
  const std::string payload = TestBytes(40000, 11);
  const std::string crc = ChecksumB64(aws::ChecksumAlgorithm::kCrc32, payload);
  auto put = [&](const std::string& target, const std::string& trailer_value) {
    AwsChunkedEncoder encoder(aws::ChunkedMode::kUnsignedWithTrailer, {});
    return Signed("PUT", target,
                  encoder.Encode(payload, 8192, {{"x-amz-checksum-crc32", trailer_value}}),
                  {{"content-encoding", "aws-chunked"},
                   {"x-amz-decoded-content-length", std::to_string(payload.size())},
                   {"x-amz-trailer", "x-amz-checksum-crc32"}},
                  {.payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"});
  };
  HttpResult ok = put("/lastframe/chunked/unsigned.bin", crc);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.header("etag"), Quoted(objects::Md5Hex(payload)));
  EXPECT_EQ(ok.header("x-amz-checksum-crc32"), crc);
  HttpResult got = Signed("GET", "/lastframe/chunked/unsigned.bin", "", kChecksumMode);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body.size(), payload.size());
  EXPECT_TRUE(got.body == payload);  // the framing gone, byte for byte
  EXPECT_EQ(got.header("x-amz-checksum-crc32"), crc);
  EXPECT_EQ(got.header("x-amz-checksum-type"), "FULL_OBJECT");
  // The trailer holds the CRC32 of other bytes.
  ExpectS3Error(put("/lastframe/chunked/wrong.bin",
                    ChecksumB64(aws::ChecksumAlgorithm::kCrc32, "other bytes")),
                400, "BadDigest");
  EXPECT_EQ(Signed("HEAD", "/lastframe/chunked/wrong.bin").status, 404);
  EXPECT_EQ(EntriesIn(dir_.file("data/objects/.tmp")), 0u);
}

TEST_F(EmbeddedS3Test, SignedChunksAreVerifiedOneByOne) {
  const std::string payload = TestBytes(50000, 13);
  // Each chunk signed after the Authorization header's signature, as AWS specifies.
  const std::string target = "/lastframe/chunked/signed.bin";
  ChunkedPut put = SignChunkedPut(port(), target, aws::ChunkedMode::kSigned, payload.size());
  AwsChunkedEncoder encoder(aws::ChunkedMode::kSigned, put.signing);
  HttpResult ok = HttpRequest(port(), "PUT", target, encoder.Encode(payload, 16384), put.headers);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.header("etag"), Quoted(objects::Md5Hex(payload)));
  EXPECT_TRUE(Signed("GET", target).body == payload);

  // With a signed trailer: a CRC32C, kept.
  const std::string trailed = "/lastframe/chunked/trailer.bin";
  const std::string crc32c = ChecksumB64(aws::ChecksumAlgorithm::kCrc32c, payload);
  ChunkedPut with_trailer = SignChunkedPut(port(), trailed, aws::ChunkedMode::kSignedWithTrailer,
                                           payload.size(), "x-amz-checksum-crc32c");
  AwsChunkedEncoder trailer_encoder(aws::ChunkedMode::kSignedWithTrailer, with_trailer.signing);
  HttpResult ok_trailer =
      HttpRequest(port(), "PUT", trailed,
                  trailer_encoder.Encode(payload, 20000, {{"x-amz-checksum-crc32c", crc32c}}),
                  with_trailer.headers);
  EXPECT_EQ(ok_trailer.status, 200) << ok_trailer.body;
  EXPECT_EQ(ok_trailer.header("x-amz-checksum-crc32c"), crc32c);
  HttpResult got = Signed("GET", trailed, "", kChecksumMode);
  EXPECT_TRUE(got.body == payload);
  EXPECT_EQ(got.header("x-amz-checksum-crc32c"), crc32c);

  // The second chunk's signature changed by one digit.
  const std::string forged = "/lastframe/chunked/forged.bin";
  ChunkedPut forged_put = SignChunkedPut(port(), forged, aws::ChunkedMode::kSigned, payload.size());
  AwsChunkedEncoder forger(aws::ChunkedMode::kSigned, forged_put.signing);
  std::string first = forger.Chunk(payload.substr(0, 16384));
  std::string second = forger.Chunk(payload.substr(16384, 16384));
  std::string rest = forger.Chunk(payload.substr(32768)) + forger.End();
  size_t digit = second.find("chunk-signature=") + 16;
  second[digit] = second[digit] == '0' ? '1' : '0';
  ExpectS3Error(HttpRequest(port(), "PUT", forged, first + second + rest, forged_put.headers), 403,
                "SignatureDoesNotMatch");
  EXPECT_EQ(Signed("HEAD", forged).status, 404);
  EXPECT_EQ(EntriesIn(dir_.file("data/objects/.tmp")), 0u);
  // The server goes on answering.
  EXPECT_EQ(Signed("PUT", "/lastframe/chunked/after.txt", "still serving").status, 200);
  EXPECT_EQ(Signed("GET", "/lastframe/chunked/after.txt").body, "still serving");
}

TEST_F(EmbeddedS3Test, AChunkedBodyMustHoldWhatItDeclares) {
  const std::string target = "/lastframe/chunked/declared.bin";
  const std::string payload = TestBytes(20000, 17);
  const std::string crc = ChecksumB64(aws::ChecksumAlgorithm::kCrc32, payload);
  AwsChunkedEncoder encoder(aws::ChunkedMode::kUnsignedWithTrailer, {});
  const std::string whole = encoder.Encode(payload, 4096, {{"x-amz-checksum-crc32", crc}});
  auto put = [&](const std::string& body, uint64_t decoded_length) {
    return Signed("PUT", target, body,
                  {{"content-encoding", "aws-chunked"},
                   {"x-amz-decoded-content-length", std::to_string(decoded_length)},
                   {"x-amz-trailer", "x-amz-checksum-crc32"}},
                  {.payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"});
  };
  // x-amz-decoded-content-length says more, or less, than the chunks hold.
  ExpectS3Error(put(whole, payload.size() + 1), 400, "IncompleteBody");
  ExpectS3Error(put(whole, payload.size() - 1), 400, "IncompleteBody");
  // The body (and its Content-Length) ends after the last data chunk, before the final one.
  const std::string cut = whole.substr(0, whole.rfind("\r\n0\r\n") + 2);
  ExpectS3Error(put(cut, payload.size()), 400, "IncompleteBody");
  EXPECT_EQ(Signed("HEAD", target).status, 404);
  EXPECT_EQ(EntriesIn(dir_.file("data/objects/.tmp")), 0u);
  HttpResult right = put(whole, payload.size());  // the control
  EXPECT_EQ(right.status, 200) << right.body;
  EXPECT_TRUE(Signed("GET", target).body == payload);
}

TEST_F(EmbeddedS3Test, AChunkedTransferOverTheLimitIsRefused) {
  // Transfer-Encoding: chunked and no Content-Length: the size shows only as the body comes.
  auto put = [&](const std::string& target, const std::string& payload) {
    auto headers = SignHeaders(port(), "PUT", target, payload, {});
    headers["Transfer-Encoding"] = "chunked";
    std::string body;
    for (size_t at = 0; at < payload.size(); at += 10000) {
      std::string piece = payload.substr(at, 10000);
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      body += size + piece + "\r\n";
    }
    return RawExchange(port(), RawRequest(port(), "PUT", target, headers, body + "0\r\n\r\n"));
  };
  const std::string fits = TestBytes(65536, 29);
  std::string accepted = put("/lastframe/te/fits.bin", fits);
  EXPECT_EQ(accepted.rfind("HTTP/1.1 200 ", 0), 0u) << accepted.substr(0, 400);
  EXPECT_TRUE(Signed("GET", "/lastframe/te/fits.bin").body == fits);
  std::string refused = put("/lastframe/te/big.bin", TestBytes(65537, 31));
  EXPECT_EQ(refused.rfind("HTTP/1.1 400 ", 0), 0u) << refused.substr(0, 400);
  EXPECT_NE(refused.find("<Code>EntityTooLarge</Code>"), std::string::npos) << refused;
  EXPECT_EQ(Signed("HEAD", "/lastframe/te/big.bin").status, 404);
  EXPECT_EQ(EntriesIn(dir_.file("data/objects/.tmp")), 0u);
}

TEST_F(EmbeddedS3Test, CopyObjectCopiesBytesAndMetadata) {
  const std::string body = TestBytes(30000, 23);
  const std::string crc32c = ChecksumB64(aws::ChecksumAlgorithm::kCrc32c, body);
  const std::string etag = Quoted(objects::Md5Hex(body));
  ASSERT_EQ(Signed("PUT", "/lastframe/copy/src.png", body,
                   {{"content-type", "image/png"},
                    {"x-amz-meta-color", "red"},
                    {"x-amz-checksum-crc32c", crc32c}})
                .status,
            200);
  const std::map<std::string, std::string> from_src = {
      {"x-amz-copy-source", "/lastframe/copy/src.png"}};
  HttpResult copied = Signed("PUT", "/lastframe/copy/dst.png", "", from_src);
  EXPECT_EQ(copied.status, 200) << copied.body;
  EXPECT_NE(copied.body.find("<CopyObjectResult"), std::string::npos) << copied.body;
  EXPECT_EQ(XmlValue(copied.body, "ETag"), etag);
  HttpResult got = Signed("GET", "/lastframe/copy/dst.png", "", kChecksumMode);
  EXPECT_TRUE(got.body == body);
  EXPECT_EQ(got.header("etag"), etag);
  EXPECT_EQ(got.header("content-type"), "image/png");
  EXPECT_EQ(got.header("x-amz-meta-color"), "red");
  EXPECT_EQ(got.header("x-amz-checksum-crc32c"), crc32c);  // the source's algorithm

  // COPY (the default) keeps the source's metadata whatever the request sends;
  // the source may be named without its leading slash, percent-encoded.
  HttpResult kept = Signed("PUT", "/lastframe/copy/kept.png", "",
                           {{"x-amz-copy-source", "lastframe/copy/src%2Epng"},
                            {"content-type", "text/plain"},
                            {"x-amz-meta-shape", "round"}});
  EXPECT_EQ(kept.status, 200) << kept.body;
  HttpResult kept_head = Signed("HEAD", "/lastframe/copy/kept.png");
  EXPECT_EQ(kept_head.header("content-type"), "image/png");
  EXPECT_EQ(kept_head.header("x-amz-meta-color"), "red");
  EXPECT_EQ(kept_head.header("x-amz-meta-shape"), "");

  // REPLACE takes the request's.
  auto replace = from_src;
  replace.insert({{"x-amz-metadata-directive", "REPLACE"},
                  {"content-type", "text/plain"},
                  {"x-amz-meta-shape", "round"}});
  HttpResult replaced = Signed("PUT", "/lastframe/copy/replaced.txt", "", replace);
  EXPECT_EQ(replaced.status, 200) << replaced.body;
  HttpResult replaced_get = Signed("GET", "/lastframe/copy/replaced.txt");
  EXPECT_TRUE(replaced_get.body == body);
  EXPECT_EQ(replaced_get.header("content-type"), "text/plain");
  EXPECT_EQ(replaced_get.header("x-amz-meta-shape"), "round");
  EXPECT_EQ(replaced_get.header("x-amz-meta-color"), "");

  // Onto itself, with REPLACE: new metadata, the same bytes.
  HttpResult self = Signed("PUT", "/lastframe/copy/src.png", "", replace);
  EXPECT_EQ(self.status, 200) << self.body;
  HttpResult self_get = Signed("GET", "/lastframe/copy/src.png");
  EXPECT_TRUE(self_get.body == body);
  EXPECT_EQ(self_get.header("content-type"), "text/plain");
}

TEST_F(EmbeddedS3Test, CopyObjectRefusesAsS3Does) {
  ASSERT_EQ(Signed("PUT", "/lastframe/copy/src.txt", "source bytes").status, 200);
  const std::string etag = Quoted(objects::Md5Hex("source bytes"));
  const std::string dest = "/lastframe/copy/dest.txt";
  auto copy = [&](const std::string& source, std::map<std::string, std::string> headers = {},
                  const std::string& to = "/lastframe/copy/dest.txt") {
    headers["x-amz-copy-source"] = source;
    return Signed("PUT", to, "", std::move(headers));
  };
  ExpectS3Error(copy("/lastframe/copy/missing.txt"), 404, "NoSuchKey");
  ExpectS3Error(copy("/otherbucket/copy/src.txt"), 404, "NoSuchBucket");
  // Onto itself without new metadata: nothing would change.
  ExpectS3Error(copy("/lastframe/copy/src.txt", {}, "/lastframe/copy/src.txt"), 400,
                "InvalidRequest");
  ExpectS3Error(copy("/lastframe/copy/src.txt", {{"x-amz-metadata-directive", "COPY"}},
                     "/lastframe/copy/src.txt"),
                400, "InvalidRequest");
  // Preconditions on the source.
  ExpectS3Error(copy("/lastframe/copy/src.txt",
                     {{"x-amz-copy-source-if-match", Quoted(objects::Md5Hex("other"))}}),
                412, "PreconditionFailed");
  ExpectS3Error(copy("/lastframe/copy/src.txt", {{"x-amz-copy-source-if-none-match", etag}}), 412,
                "PreconditionFailed");
  EXPECT_EQ(Signed("HEAD", dest).status, 404);
  // A source outside the bucket's folder.
  WriteFile(dir_.file("data/objects/secret.txt"), "do not copy");
  for (const std::string& source :
       {std::string("/lastframe/../secret.txt"), std::string("/lastframe/%2e%2e/secret.txt"),
        std::string("lastframe/copy/../../secret.txt")})
    ExpectS3Error(copy(source), 400, "InvalidKey");
  EXPECT_EQ(Signed("HEAD", dest).status, 404);
  // The control: the precondition that holds.
  HttpResult copied = copy("/lastframe/copy/src.txt", {{"x-amz-copy-source-if-match", etag}});
  EXPECT_EQ(copied.status, 200) << copied.body;
  EXPECT_EQ(Signed("GET", dest).body, "source bytes");
}

// A server whose objects may reach 16 MiB: room for multipart uploads, whose
// parts are at least 5 MiB (the last excepted).
class EmbeddedS3MultipartTest : public EmbeddedS3Fixture {
 protected:
  EmbeddedS3MultipartTest() : EmbeddedS3Fixture("16MiB") {}

  static constexpr size_t kMiB = 1 << 20;

  // CreateMultipartUpload of |key| (no leading slash); its upload ID.
  std::string Create(const std::string& key, const std::map<std::string, std::string>& headers = {},
                     HttpResult* response = nullptr) {
    HttpResult r = Signed("POST", "/lastframe/" + key + "?uploads", "", headers);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(XmlValue(r.body, "Key"), key);
    std::string id = XmlValue(r.body, "UploadId");
    EXPECT_EQ(id.size(), 32u) << r.body;
    if (response) *response = std::move(r);
    return id;
  }
  HttpResult UploadPart(const std::string& key, const std::string& id, int number,
                        const std::string& body,
                        const std::map<std::string, std::string>& headers = {}) {
    return Signed("PUT",
                  "/lastframe/" + key + "?partNumber=" + std::to_string(number) + "&uploadId=" + id,
                  body, headers);
  }
  HttpResult Complete(const std::string& key, const std::string& id, const std::string& xml,
                      const std::map<std::string, std::string>& headers = {}) {
    return Signed("POST", "/lastframe/" + key + "?uploadId=" + id, xml, headers);
  }
  HttpResult ListParts(const std::string& key, const std::string& id) {
    return Signed("GET", "/lastframe/" + key + "?uploadId=" + id);
  }
  HttpResult Abort(const std::string& key, const std::string& id) {
    return Signed("DELETE", "/lastframe/" + key + "?uploadId=" + id);
  }
  std::vector<std::string> ListedUploadIds() {
    HttpResult r = Signed("GET", "/lastframe?uploads");
    EXPECT_EQ(r.status, 200) << r.body;
    return XmlValues(r.body, "UploadId");
  }
  std::string UploadsDir() const { return dir_.file("data/objects/.uploads"); }
};

// A part as CompleteMultipartUpload lists it: number, ETag (quoted) and any
// more XML (a checksum element).
struct ListedPart {
  int number;
  std::string etag;
  std::string extra;
};

std::string CompleteXml(const std::vector<ListedPart>& parts) {
  std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const ListedPart& p : parts)
    xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>" + p.etag +
           "</ETag>" + p.extra + "</Part>";
  return xml + "</CompleteMultipartUpload>";
}

// S3's ETag of a multipart object: the MD5 of the parts' raw MD5s, "-" their number.
std::string MultipartEtag(const std::vector<std::string>& parts) {
  std::string md5s;
  for (const std::string& part : parts) md5s += *HexDecode(objects::Md5Hex(part));
  return Quoted(objects::Md5Hex(md5s) + "-" + std::to_string(parts.size()));
}

TEST_F(EmbeddedS3MultipartTest, PartsAreListedThenAssembled) {
  const std::string key = "mp/whole.bin";
  const std::string part1 = TestBytes(5 * kMiB, 31), part2 = TestBytes(1000, 37);
  const std::string id =
      Create(key, {{"content-type", "video/mp4"}, {"x-amz-meta-camera", "gate"}});
  ASSERT_FALSE(id.empty());
  HttpResult r1 = UploadPart(key, id, 1, part1);
  HttpResult r2 = UploadPart(key, id, 2, part2);
  ASSERT_EQ(r1.status, 200) << r1.body;
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r1.header("etag"), Quoted(objects::Md5Hex(part1)));
  EXPECT_EQ(r2.header("etag"), Quoted(objects::Md5Hex(part2)));

  HttpResult parts = ListParts(key, id);
  EXPECT_EQ(parts.status, 200) << parts.body;
  EXPECT_EQ(XmlValues(parts.body, "PartNumber"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(XmlValues(parts.body, "Size"), (std::vector<std::string>{"5242880", "1000"}));
  EXPECT_EQ(XmlValues(parts.body, "ETag"),
            (std::vector<std::string>{r1.header("etag"), r2.header("etag")}));
  EXPECT_EQ(ListedUploadIds(), std::vector<std::string>{id});
  HttpResult uploads = Signed("GET", "/lastframe?uploads");
  EXPECT_EQ(XmlValues(uploads.body, "Key"), std::vector<std::string>{key});
  EXPECT_TRUE(std::filesystem::is_directory(UploadsDir() + "/" + id));

  const std::string xml = CompleteXml({{1, r1.header("etag"), ""}, {2, r2.header("etag"), ""}});
  HttpResult done = Complete(key, id, xml);
  EXPECT_EQ(done.status, 200) << done.body;
  const std::string etag = MultipartEtag({part1, part2});
  EXPECT_EQ(XmlValue(done.body, "ETag"), etag) << done.body;
  HttpResult got = Signed("GET", "/lastframe/" + key, "", kChecksumMode);
  EXPECT_EQ(got.status, 200);
  ASSERT_EQ(got.body.size(), part1.size() + part2.size());
  EXPECT_TRUE(got.body == part1 + part2);
  EXPECT_EQ(got.header("etag"), etag);
  EXPECT_EQ(got.header("content-type"), "video/mp4");
  EXPECT_EQ(got.header("x-amz-meta-camera"), "gate");
  // No algorithm asked for: S3's default, CRC64NVME of the whole object.
  EXPECT_EQ(got.header("x-amz-checksum-crc64nvme"),
            ChecksumB64(aws::ChecksumAlgorithm::kCrc64Nvme, part1 + part2));
  EXPECT_EQ(got.header("x-amz-checksum-type"), "FULL_OBJECT");

  // The upload is gone.
  ExpectS3Error(ListParts(key, id), 404, "NoSuchUpload");
  ExpectS3Error(Complete(key, id, xml), 404, "NoSuchUpload");
  EXPECT_TRUE(ListedUploadIds().empty());
  EXPECT_EQ(EntriesIn(UploadsDir()), 0u);
}

TEST_F(EmbeddedS3MultipartTest, ACompositeCrc32IsTheCrcOfThePartCrcs) {
  const std::string key = "mp/composite.bin";
  const std::string part1 = TestBytes(5 * kMiB, 41), part2 = TestBytes(3000, 43);
  HttpResult created;
  const std::string id = Create(key, {{"x-amz-checksum-algorithm", "CRC32"}}, &created);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(created.header("x-amz-checksum-algorithm"), "CRC32");
  EXPECT_EQ(created.header("x-amz-checksum-type"), "COMPOSITE");  // CRC32's default
  const std::string raw1 = aws::ChecksumOf(aws::ChecksumAlgorithm::kCrc32, part1);
  const std::string raw2 = aws::ChecksumOf(aws::ChecksumAlgorithm::kCrc32, part2);
  HttpResult r1 = UploadPart(key, id, 1, part1, {{"x-amz-checksum-crc32", Base64Encode(raw1)}});
  HttpResult r2 = UploadPart(key, id, 2, part2, {{"x-amz-checksum-crc32", Base64Encode(raw2)}});
  ASSERT_EQ(r1.status, 200) << r1.body;
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r1.header("x-amz-checksum-crc32"), Base64Encode(raw1));
  EXPECT_EQ(XmlValues(ListParts(key, id).body, "ChecksumCRC32"),
            (std::vector<std::string>{Base64Encode(raw1), Base64Encode(raw2)}));

  HttpResult done = Complete(
      key, id,
      CompleteXml(
          {{1, r1.header("etag"), "<ChecksumCRC32>" + Base64Encode(raw1) + "</ChecksumCRC32>"},
           {2, r2.header("etag"), "<ChecksumCRC32>" + Base64Encode(raw2) + "</ChecksumCRC32>"}}));
  EXPECT_EQ(done.status, 200) << done.body;
  const std::string composite =
      Base64Encode(aws::ChecksumOf(aws::ChecksumAlgorithm::kCrc32, raw1 + raw2)) + "-2";
  EXPECT_EQ(XmlValue(done.body, "ChecksumCRC32"), composite);
  EXPECT_EQ(XmlValue(done.body, "ChecksumType"), "COMPOSITE");
  HttpResult head = Signed("HEAD", "/lastframe/" + key, "", kChecksumMode);
  EXPECT_EQ(ChecksumHeaders(head), std::vector<std::string>{"x-amz-checksum-crc32: " + composite});
  EXPECT_EQ(head.header("x-amz-checksum-type"), "COMPOSITE");
  EXPECT_EQ(head.header("content-length"), std::to_string(part1.size() + part2.size()));
}

TEST_F(EmbeddedS3MultipartTest, AFullObjectCrc32IsTheCrcOfTheWholeBody) {
  const std::string key = "mp/full.bin";
  const std::string part1 = TestBytes(5 * kMiB, 47), part2 = TestBytes(7000, 53);
  const std::string whole = ChecksumB64(aws::ChecksumAlgorithm::kCrc32, part1 + part2);
  const std::string id =
      Create(key, {{"x-amz-checksum-algorithm", "CRC32"}, {"x-amz-checksum-type", "FULL_OBJECT"}});
  ASSERT_FALSE(id.empty());
  HttpResult r1 =
      UploadPart(key, id, 1, part1,
                 {{"x-amz-checksum-crc32", ChecksumB64(aws::ChecksumAlgorithm::kCrc32, part1)}});
  HttpResult r2 =
      UploadPart(key, id, 2, part2,
                 {{"x-amz-checksum-crc32", ChecksumB64(aws::ChecksumAlgorithm::kCrc32, part2)}});
  ASSERT_EQ(r1.status, 200) << r1.body;
  ASSERT_EQ(r2.status, 200) << r2.body;
  const std::string xml = CompleteXml({{1, r1.header("etag"), ""}, {2, r2.header("etag"), ""}});
  // The client's whole-object CRC is checked when it sends one.
  ExpectS3Error(
      Complete(key, id, xml,
               {{"x-amz-checksum-crc32", ChecksumB64(aws::ChecksumAlgorithm::kCrc32, part1)}}),
      400, "BadDigest");
  HttpResult done = Complete(key, id, xml, {{"x-amz-checksum-crc32", whole}});
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(XmlValue(done.body, "ChecksumCRC32"), whole);
  EXPECT_EQ(XmlValue(done.body, "ChecksumType"), "FULL_OBJECT");
  HttpResult head = Signed("HEAD", "/lastframe/" + key, "", kChecksumMode);
  EXPECT_EQ(ChecksumHeaders(head), std::vector<std::string>{"x-amz-checksum-crc32: " + whole});
  EXPECT_EQ(head.header("x-amz-checksum-type"), "FULL_OBJECT");
  EXPECT_EQ(head.header("etag"), MultipartEtag({part1, part2}));
}

TEST_F(EmbeddedS3MultipartTest, CompleteChecksTheListAsS3Does) {
  const std::string key = "mp/checked.bin";
  const std::string small1 = TestBytes(1000, 59), small2 = TestBytes(2000, 61);
  const std::string id = Create(key);
  ASSERT_FALSE(id.empty());
  // Part numbers run from 1 to 10000.
  ExpectS3Error(UploadPart(key, id, 0, "x"), 400, "InvalidArgument");
  ExpectS3Error(UploadPart(key, id, 10001, "x"), 400, "InvalidArgument");
  HttpResult r1 = UploadPart(key, id, 1, small1);
  HttpResult r2 = UploadPart(key, id, 2, small2);
  ASSERT_EQ(r1.status, 200) << r1.body;
  ASSERT_EQ(r2.status, 200) << r2.body;
  const std::string e1 = r1.header("etag"), e2 = r2.header("etag");

  ExpectS3Error(Complete(key, id, "<CompleteMultipartUpload><Part><PartNumber>1"), 400,
                "MalformedXML");
  ExpectS3Error(Complete(key, id, "<Parts/>"), 400, "MalformedXML");
  ExpectS3Error(Complete(key, id, "<CompleteMultipartUpload/>"), 400, "MalformedXML");
  ExpectS3Error(Complete(key, id, CompleteXml({{2, e2, ""}, {1, e1, ""}})), 400,
                "InvalidPartOrder");
  ExpectS3Error(
      Complete(key, id, CompleteXml({{1, Quoted(objects::Md5Hex("other")), ""}, {2, e2, ""}})), 400,
      "InvalidPart");
  ExpectS3Error(Complete(key, id, CompleteXml({{3, e2, ""}})), 400,
                "InvalidPart");  // part 3 was never uploaded
  // Every part but the last must be 5 MiB or more.
  ExpectS3Error(Complete(key, id, CompleteXml({{1, e1, ""}, {2, e2, ""}})), 400, "EntityTooSmall");
  // None of them completed it.
  EXPECT_EQ(Signed("HEAD", "/lastframe/" + key).status, 404);
  EXPECT_EQ(XmlValues(ListParts(key, id).body, "PartNumber"), (std::vector<std::string>{"1", "2"}));

  // The control: a lone part may be small, being the last.
  HttpResult done = Complete(key, id, CompleteXml({{2, e2, ""}}));
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(XmlValue(done.body, "ETag"), MultipartEtag({small2}));
  EXPECT_EQ(Signed("GET", "/lastframe/" + key).body, small2);
  EXPECT_EQ(EntriesIn(UploadsDir()), 0u);  // the unused part 1 went with the upload
}

TEST_F(EmbeddedS3MultipartTest, AbortedOrUnknownUploadsAreNoSuchUpload) {
  const std::string key = "mp/aborted.bin";
  for (const std::string& bad : {std::string("0123"), std::string(32, 'a')}) {
    SCOPED_TRACE(bad);
    ExpectS3Error(ListParts(key, bad), 404, "NoSuchUpload");
    ExpectS3Error(UploadPart(key, bad, 1, "x"), 404, "NoSuchUpload");
    ExpectS3Error(Complete(key, bad, CompleteXml({{1, Quoted(objects::Md5Hex("x")), ""}})), 404,
                  "NoSuchUpload");
    ExpectS3Error(Abort(key, bad), 404, "NoSuchUpload");
  }
  const std::string id = Create(key);
  ASSERT_FALSE(id.empty());
  ExpectS3Error(ListParts("mp/another-key.bin", id), 404, "NoSuchUpload");  // another key's ID
  HttpResult part = UploadPart(key, id, 1, "part bytes");
  ASSERT_EQ(part.status, 200) << part.body;
  EXPECT_TRUE(std::filesystem::is_directory(UploadsDir() + "/" + id));

  HttpResult aborted = Abort(key, id);
  EXPECT_EQ(aborted.status, 204) << aborted.body;
  EXPECT_EQ(EntriesIn(UploadsDir()), 0u);  // its folder, parts and all
  ExpectS3Error(ListParts(key, id), 404, "NoSuchUpload");
  ExpectS3Error(UploadPart(key, id, 2, "late part"), 404, "NoSuchUpload");
  ExpectS3Error(Complete(key, id, CompleteXml({{1, part.header("etag"), ""}})), 404,
                "NoSuchUpload");
  ExpectS3Error(Abort(key, id), 404, "NoSuchUpload");
  EXPECT_TRUE(ListedUploadIds().empty());
  EXPECT_EQ(Signed("HEAD", "/lastframe/" + key).status, 404);
  EXPECT_EQ(EntriesIn(UploadsDir()), 0u);
}

TEST_F(EmbeddedS3MultipartTest, PartsMustCarryTheUploadsChecksum) {
  // SHA256 has no full-object form.
  ExpectS3Error(
      Signed("POST", "/lastframe/mp/sha.bin?uploads", "",
             {{"x-amz-checksum-algorithm", "SHA256"}, {"x-amz-checksum-type", "FULL_OBJECT"}}),
      400, "InvalidRequest");
  EXPECT_TRUE(ListedUploadIds().empty());

  const std::string key = "mp/crc.bin";
  const std::string body = TestBytes(4000, 67);
  const std::string id = Create(key, {{"x-amz-checksum-algorithm", "CRC32"}});
  ASSERT_FALSE(id.empty());
  // Without a checksum, or with another algorithm's.
  ExpectS3Error(UploadPart(key, id, 1, body), 400, "InvalidRequest");
  ExpectS3Error(
      UploadPart(key, id, 1, body,
                 {{"x-amz-checksum-sha256", ChecksumB64(aws::ChecksumAlgorithm::kSha256, body)}}),
      400, "InvalidRequest");
  // The right algorithm, the wrong value.
  ExpectS3Error(
      UploadPart(key, id, 1, body,
                 {{"x-amz-checksum-crc32", ChecksumB64(aws::ChecksumAlgorithm::kCrc32, "x")}}),
      400, "BadDigest");
  EXPECT_TRUE(XmlValues(ListParts(key, id).body, "PartNumber").empty());
  HttpResult ok =
      UploadPart(key, id, 1, body,
                 {{"x-amz-checksum-crc32", ChecksumB64(aws::ChecksumAlgorithm::kCrc32, body)}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(XmlValues(ListParts(key, id).body, "PartNumber"), std::vector<std::string>{"1"});
}

// Who may call the routes this store gained: a caller with the store's key
// pair. Anyone else (no signature, another secret) is refused and changes nothing.
TEST_F(EmbeddedS3MultipartTest, OnlyTheStoresKeyPairMayUploadInPartsOrCopy) {
  const std::string key = "mp/guarded.bin";
  const std::string id = Create(key);
  ASSERT_FALSE(id.empty());
  HttpResult part = UploadPart(key, id, 1, "part one");
  ASSERT_EQ(part.status, 200) << part.body;
  ASSERT_EQ(Signed("PUT", "/lastframe/source.txt", "source").status, 200);
  const std::string upload = "/lastframe/" + key + "?uploadId=" + id;
  const std::string xml = CompleteXml({{1, part.header("etag"), ""}});
  struct Call {
    std::string method, target, body;
    std::map<std::string, std::string> headers;
  };
  const std::vector<Call> calls = {
      {"POST", "/lastframe/" + key + "?uploads", "", {}},
      {"PUT", "/lastframe/" + key + "?partNumber=2&uploadId=" + id, "part two", {}},
      {"GET", upload, "", {}},
      {"GET", "/lastframe?uploads", "", {}},
      {"POST", upload, xml, {}},
      {"DELETE", upload, "", {}},
      {"PUT", "/lastframe/copy.txt", "", {{"x-amz-copy-source", "/lastframe/source.txt"}}},
      {"PUT", "/lastframe/chunked.txt", "", {}},
  };
  for (const Call& c : calls) {
    SCOPED_TRACE(c.method + " " + c.target);
    std::map<std::string, std::string> unsigned_headers = c.headers;
    ExpectS3Error(HttpRequest(port(), c.method, c.target, c.body, unsigned_headers), 403,
                  "AccessDenied");
    ExpectS3Error(Signed(c.method, c.target, c.body, c.headers, {.secret = "not-the-secret"}), 403,
                  "SignatureDoesNotMatch");
  }
  // Nothing changed: the upload holds its one part, no copy, no second part, no object.
  HttpResult parts = ListParts(key, id);
  EXPECT_EQ(parts.status, 200);
  EXPECT_EQ(XmlValue(parts.body, "PartNumber"), "1");
  EXPECT_EQ(parts.body.find("<PartNumber>2</PartNumber>"), std::string::npos) << parts.body;
  EXPECT_EQ(Signed("HEAD", "/lastframe/copy.txt").status, 404);
  EXPECT_EQ(Signed("HEAD", "/lastframe/chunked.txt").status, 404);
  EXPECT_EQ(Signed("HEAD", "/lastframe/" + key).status, 404);
  // The key pair may: the upload completes.
  EXPECT_EQ(Complete(key, id, CompleteXml({{1, part.header("etag"), ""}})).status, 200);
}

TEST_F(EmbeddedS3MultipartTest, PartsPastTheObjectLimitAreRefused) {
  const std::string key = "mp/large.bin";
  const std::string five = TestBytes(5 * kMiB, 71), two = TestBytes(2 * kMiB, 73);
  const std::string id = Create(key);
  ASSERT_FALSE(id.empty());
  std::vector<ListedPart> listed;
  for (int n = 1; n <= 3; ++n) {  // 15 MiB: within the 16 MiB an object may have
    HttpResult r = UploadPart(key, id, n, five);
    ASSERT_EQ(r.status, 200) << r.body;
    listed.push_back({n, r.header("etag"), ""});
  }
  // A part that would take the upload past it is refused as it arrives (the disk is not filled
  // with parts a complete would refuse), and the upload stays as it was.
  ExpectS3Error(UploadPart(key, id, 4, two), 400, "EntityTooLarge");
  std::vector<ListedPart> with_missing = listed;
  with_missing.push_back({4, "\"" + objects::Md5Hex(two) + "\"", ""});
  ExpectS3Error(Complete(key, id, CompleteXml(with_missing)), 400, "InvalidPart");
  // A smaller part 3 replaces the first: then part 4 fits.
  HttpResult smaller = UploadPart(key, id, 3, two);
  ASSERT_EQ(smaller.status, 200) << smaller.body;
  listed[2].etag = smaller.header("etag");
  HttpResult fourth = UploadPart(key, id, 4, two);
  ASSERT_EQ(fourth.status, 200) << fourth.body;
  listed.push_back({4, fourth.header("etag"), ""});
  ExpectS3Error(Complete(key, id, CompleteXml(listed)), 400, "EntityTooSmall");  // part 3: 2 MiB
  listed.erase(listed.begin() + 2);  // parts 1, 2 and 4: 12 MiB
  HttpResult done = Complete(key, id, CompleteXml(listed));
  EXPECT_EQ(done.status, 200) << done.body;
  HttpResult head = Signed("HEAD", "/lastframe/" + key);
  EXPECT_EQ(head.header("content-length"), std::to_string(12 * kMiB));
  EXPECT_EQ(head.header("etag"), MultipartEtag({five, five, two}));
}

// Here rather than beside the other aws-chunked and streaming tests: the
// server hands a body to its worker in batches, and only a body of some MiB
// is sure to be written aside before it ends.
TEST_F(EmbeddedS3MultipartTest, AnUploadCutShortLeavesNothingBehind) {
  const std::string tmp = dir_.file("data/objects/.tmp");
  const std::string body = TestBytes(8 * kMiB, 19);
  // Sends 3 of the 8 MiB Content-Length promises, then ends the request: the answer.
  auto cut_short = [&](const std::string& target) {
    auto headers = SignHeaders(port(), "PUT", target, "", {}, {.payload_hash = "UNSIGNED-PAYLOAD"});
    headers["Content-Length"] = std::to_string(body.size());
    RawConnection client(port());
    EXPECT_TRUE(client.connected());
    EXPECT_TRUE(client.Send(RawRequest(port(), "PUT", target, headers, body.substr(0, 3 * kMiB))));
    // The server is writing it aside (polled: it gets there in its own time).
    EXPECT_TRUE(Eventually([&] { return EntriesIn(tmp) == 1; })) << EntriesIn(tmp);
    client.CloseSending();
    return client.ReadAll();
  };
  std::string answer = cut_short("/lastframe/cut.bin");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("<Code>IncompleteBody</Code>"), std::string::npos) << answer;
  // Answered only once what it had written aside was gone.
  EXPECT_EQ(EntriesIn(tmp), 0u);
  EXPECT_EQ(Signed("HEAD", "/lastframe/cut.bin").status, 404);

  // A part cut short: no part.
  const std::string id = Create("mp/cut.bin");
  ASSERT_FALSE(id.empty());
  answer = cut_short("/lastframe/mp/cut.bin?partNumber=1&uploadId=" + id);
  EXPECT_NE(answer.find("<Code>IncompleteBody</Code>"), std::string::npos) << answer;
  EXPECT_EQ(EntriesIn(tmp), 0u);
  HttpResult parts = ListParts("mp/cut.bin", id);
  EXPECT_EQ(parts.status, 200) << parts.body;
  EXPECT_TRUE(XmlValues(parts.body, "PartNumber").empty()) << parts.body;
}

// ---- our S3 client against an S3 server we did not write ----

class S3rverTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(S3rverTest, UploadsAndPresignedGets) {
  S3rver s3(dir_);
  auto o = StoreOptions(s3.endpoint(), "snaps", kS3Key, kS3Secret);
  o.prefix = "cams";
  auto store = OpenStore(o);
  ASSERT_TRUE(store);
  const std::string key = "snapshots/gate 1/x+y~é.jpg";
  ASSERT_TRUE(store->Put(key, "IMAGEBYTES", "image/jpeg").ok());
  auto head = store->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 10u);
  EXPECT_EQ(head->etag, objects::Md5Hex("IMAGEBYTES"));
  EXPECT_EQ(head->content_type, "image/jpeg");
  auto url = store->PresignGet(key, 60);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->rfind(s3.endpoint() + "/snaps/cams/snapshots/gate%201/x%2By~%C3%A9.jpg?", 0), 0u)
      << *url;
  HttpResult fetched = Fetch(*url);
  EXPECT_EQ(fetched.status, 200) << fetched.body;
  EXPECT_EQ(fetched.body, "IMAGEBYTES");
  std::string tampered = *url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(Fetch(tampered).status, 403);
  ASSERT_TRUE(store->Delete(key).ok());
  EXPECT_EQ(store->Head(key).status().reason(), Reason::kNoSuchKey);
}

TEST_F(S3rverTest, WrongSecretIsRefusedAndNotRetried) {
  S3rver s3(dir_);
  auto store = OpenStore(StoreOptions(s3.endpoint(), "snaps", kS3Key, "not-the-secret"));
  Status s = store->Put("k.jpg", "x", "image/jpeg");
  EXPECT_EQ(s.code(), Code::kUpstreamFailed);
  EXPECT_EQ(s.reason(), Reason::kObjectStoreError);
  EXPECT_NE(s.message().find("403 SignatureDoesNotMatch"), std::string::npos) << s.message();
  EXPECT_EQ(store->stats().requests, 1u);
}

TEST_F(S3rverTest, A503IsRetriedThenSucceeds) {
  S3rver s3(dir_, {"--fail-first", "2"});
  auto store = OpenStore(StoreOptions(s3.endpoint(), "snaps", kS3Key, kS3Secret));
  ASSERT_TRUE(store->Put("retried.jpg", "x", "image/jpeg").ok());
  EXPECT_EQ(store->stats().retries, 2u);
  EXPECT_EQ(store->stats().requests, 3u);
  EXPECT_EQ(*store->Get("retried.jpg"), "x");
  std::string log = s3.Output();
  size_t first = log.find("request PUT /snaps/retried.jpg 503");
  size_t ok = log.find("request PUT /snaps/retried.jpg 200");
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_NE(ok, std::string::npos) << log;
  EXPECT_LT(first, ok);
}

TEST_F(S3rverTest, A503ThatPersistsEndsWithinTheDeadline) {
  S3rver s3(dir_, {"--fail-first", "100"});
  auto o = StoreOptions(s3.endpoint(), "snaps", kS3Key, kS3Secret);
  o.budget.max_attempts = 3;
  auto store = OpenStore(o);
  Status s = store->Put("k.jpg", "x", "image/jpeg");
  EXPECT_EQ(s.code(), Code::kUpstreamFailed);
  EXPECT_NE(s.message().find("503 SlowDown"), std::string::npos) << s.message();
  EXPECT_EQ(store->stats().requests, 3u);
}

TEST_F(S3rverTest, ASlowServerTimesOut) {
  S3rver s3(dir_, {"--delay-ms", "5000"});
  auto o = StoreOptions(s3.endpoint(), "snaps", kS3Key, kS3Secret);
  o.budget.attempt_timeout = std::chrono::milliseconds(300);
  o.budget.deadline = std::chrono::milliseconds(1000);
  auto store = OpenStore(o);
  auto start = std::chrono::steady_clock::now();
  Status s = store->Put("slow.jpg", "x", "image/jpeg");
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_EQ(s.reason(), Reason::kObjectStoreUnavailable);
  EXPECT_NE(s.message().find("imed out"), std::string::npos) << s.message();
  EXPECT_GE(store->stats().requests, 2u);  // a timeout is retried, within the deadline
  // Bounded by the deadline, not by the server: it would have answered after 5 s.
  EXPECT_LT(waited, std::chrono::milliseconds(4000));
}

TEST_F(S3rverTest, AServerThatIsDownIsUnavailable) {
  uint16_t closed_port = 0;
  {
    S3rver s3(dir_);
    closed_port = s3.port();
  }  // stopped: nothing listens there now
  auto store = OpenStore(
      StoreOptions("http://127.0.0.1:" + std::to_string(closed_port), "snaps", kS3Key, kS3Secret));
  Status s = store->Put("k.jpg", "x", "image/jpeg");
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(closed_port)), std::string::npos);
  EXPECT_GE(store->stats().retries, 1u);
}

// ---- lastframe serve --store s3://... end to end ----

TEST_F(S3rverTest, ServeUploadsSnapshotsToS3AndHandsOutItsUrls) {
  S3rver s3(dir_);
  std::string clip = TestClip(dir_, "cam.mkv", 320, 240, 10, 2, 10);
  LastframeServer server(
      dir_.file("data"),
      {"--store", "s3://snaps/site-a", "--s3-endpoint", s3.endpoint(), "--s3-access-key", kS3Key,
       "--s3-secret-key", kS3Secret, "--s3-timeout", "2", "--unsigned-putmedia"});
  ASSERT_EQ(PushOneShot(server.port(), "cam", ReadFile(clip)).status, 200);
  HttpResult snap = HttpGet(server.port(), "/v1/streams/cam/snapshot?expires=120");
  ASSERT_EQ(snap.status, 200) << snap.body;
  json j = JsonOf(snap);
  std::string url = j["url"];
  EXPECT_EQ(url.rfind(s3.endpoint() + "/snaps/site-a/snapshots/cam/", 0), 0u) << url;
  EXPECT_EQ(QueryParam(url, "X-Amz-Expires"), "120");
  HttpResult image = Fetch(url);
  ASSERT_EQ(image.status, 200) << image.body;
  EXPECT_EQ(image.header("content-type"), "image/jpeg");
  RgbImage decoded = DecodeJpeg(image.body);
  EXPECT_EQ(decoded.width, 320);
  EXPECT_EQ(decoded.height, 240);
  EXPECT_EQ(image.body.size(), j["bytes"].get<size_t>());

  // The store goes away: a new render fails fast with a JSON 503, and the
  // server stays healthy.
  s3.Stop();
  HttpResult down = HttpGet(server.port(), "/v1/streams/cam/snapshot?quality=50");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(JsonOf(down)["code"], "ObjectStoreUnavailable");
  EXPECT_EQ(HttpGet(server.port(), "/healthz").status, 200);
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams/cam/latest.jpg").status, 200);
}

TEST(ServeFlags, BadStoreSettingsAreRefusedAtStart) {
  TempDir dir;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--store", "s3://Bad_Bucket"},
           {"--store", "gcs://bucket"},
           {"--store", "s3://snaps", "--s3-endpoint", "ftp://x", "--s3-access-key", "a",
            "--s3-secret-key", "b"},
           {"--store", "s3://snaps", "--s3-access-key", "only-half"},
           {"--bucket", "v1"},
           {"--bucket", "Not_A_Bucket"}}) {
    std::vector<std::string> argv = {LastframeBinary(), "serve",      "--listen",
                                     "127.0.0.1:0",     "--data-dir", dir.file("data")};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    // Isolated from any real AWS configuration of the machine running the tests.
    argv.insert(argv.begin(), {"/usr/bin/env", "-u", "AWS_ACCESS_KEY_ID", "-u",
                               "AWS_SECRET_ACCESS_KEY", "HOME=" + dir.path().string()});
    EXPECT_EQ(RunCommand(argv, &out), 2) << out;
    EXPECT_FALSE(out.empty());
  }
}

// ---- SigV4: our signer and botocore agree ----

TEST(SigV4Interop, Boto3PresignsWithOurSignature) {
  const std::string key = "cams/gate 1+2/x~é.jpg";
  const std::string amz_date = "20261125T120000Z";
  std::string out;
  int rc = RunCommand({"/usr/bin/python3", SourceDir() + "/tests/e2e/s3_clients/boto3_check.py",
                       "presign", "http://127.0.0.1:9000", "lastframe", key, "AKIDEXAMPLE",
                       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", amz_date, "600"},
                      &out);
  ASSERT_EQ(rc, 0) << out;
  std::string boto_url = out.substr(0, out.find_last_not_of("\r\n") + 1);
  ManualClock clock(*ParseAmzDate(amz_date));
  aws::SigV4 signer({"AKIDEXAMPLE", Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), ""},
                    "us-east-1", "s3", clock);
  std::string path = "/lastframe/" + key;
  std::string ours = "http://127.0.0.1:9000" + UriEncode(path, false) + "?" +
                     signer.PresignQuery("GET", "127.0.0.1:9000", path, 600);
  EXPECT_EQ(QueryParam(boto_url, "X-Amz-Signature"), QueryParam(ours, "X-Amz-Signature"))
      << boto_url << "\n"
      << ours;
  EXPECT_EQ(SortedParams(boto_url), SortedParams(ours));
  EXPECT_EQ(boto_url.substr(0, boto_url.find('?')), ours.substr(0, ours.find('?')));
}

}  // namespace
}  // namespace lastframe::testing
