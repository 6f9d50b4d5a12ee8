// S3 in both directions, proven with clients and servers nobody here wrote:
// awscli v2 and boto3 against the embedded store, our S3Store against
// @20minutes/s3rver (which checks SigV4) and against the embedded store in
// another process, and `lastframe serve --store s3://...` end to end.

#include <signal.h>

#include <chrono>
#include <cstdlib>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/time_format.h"
#include "e2e/e2e_util.h"
#include "objects/local_store.h"
#include "objects/s3_store.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

const char* kS3Key = "S3RVERTESTKEY";
const char* kS3Secret = "s3rver-test-secret";

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

// @20minutes/s3rver behind tests/s3rver/server.js, on a free loopback port.
class S3rver {
 public:
  S3rver(const TempDir& dir, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"node",         SourceDir() + "/tests/s3rver/server.js",
                                     "--port",       "0",
                                     "--dir",        dir.file("s3rver"),
                                     "--bucket",     "snaps",
                                     "--access-key", kS3Key,
                                     "--secret-key", kS3Secret};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Process>(argv);
    const std::string ready = "s3rver listening on http://127.0.0.1:";
    std::string line = process_->WaitForLine(ready, std::chrono::seconds(60));
    EXPECT_FALSE(line.empty()) << process_->Output();
    if (!line.empty())
      port_ = static_cast<uint16_t>(std::stoi(line.substr(line.find(ready) + ready.size())));
  }
  ~S3rver() { Stop(); }
  void Stop() {
    if (process_->running()) {
      process_->Signal(SIGTERM);
      process_->Wait();
    }
  }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Output() { return process_->Output(); }

 private:
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
};

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

// How EmbeddedS3Test::Signed signs (and mis-signs) a request.
struct SignOptions {
  int64_t skew_ms = 0;
  std::string secret = kSecretKey;
  std::string access_key = kAccessKey;
  std::string region = "us-east-1";
  std::optional<std::string> payload_hash;  // default: SHA-256 of the body
  bool send_payload_hash = true;
};

class EmbeddedS3Test : public ::testing::Test {
 protected:
  uint16_t port() { return server_.port(); }

  // Runs Debian's awscli v2 against the server; returns its exit status.
  int Aws(const std::vector<std::string>& args, std::string* output,
          const std::string& secret = kSecretKey) {
    return RunAwsCli(dir_, server_.base_url(), args, output, secret);
  }

  // A request signed in its Authorization header by our signer. |target| is
  // the encoded path and query as sent.
  HttpResult Signed(const std::string& method, const std::string& target,
                    const std::string& body = "", std::map<std::string, std::string> headers = {},
                    SignOptions o = {}) {
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
    req.headers = {{"host", "127.0.0.1:" + std::to_string(port())}};
    for (const auto& [k, v] : headers) req.headers.emplace_back(k, v);
    headers["Authorization"] = signer.Authorization(req, clock.NowMs());
    return HttpRequest(port(), method, target, body, headers);
  }
  static void ExpectS3Error(const HttpResult& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.body.find("<Code>" + code + "</Code>"), std::string::npos) << r.body;
  }

  TempDir dir_;
  LastframeServer server_{dir_.file("data"), [] {
                            auto args = TestServerArgs();
                            args.insert(args.end(), {"--max-object-size", "65536"});
                            return args;
                          }()};
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
    ManualClock clock(SystemClock::Get().NowMs());
    aws::SigV4 signer({kAccessKey, Secret(secret), ""}, "us-east-1", "s3", clock);
    const std::string body = "continued body";
    aws::CanonicalRequest req;
    req.method = "PUT";
    req.path = "/lastframe/continue.txt";
    req.payload_hash = aws::Sha256Hex(body);
    std::string date = FormatAmzDate(clock.NowMs());
    std::string host = "127.0.0.1:" + std::to_string(port());
    req.headers = {
        {"host", host}, {"x-amz-content-sha256", req.payload_hash}, {"x-amz-date", date}};
    return RawExchange(
        port(), "PUT /lastframe/continue.txt HTTP/1.1\r\nHost: " + host +
                    "\r\nx-amz-date: " + date + "\r\nx-amz-content-sha256: " + req.payload_hash +
                    "\r\nAuthorization: " + signer.Authorization(req, clock.NowMs()) +
                    "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n" + body);
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
