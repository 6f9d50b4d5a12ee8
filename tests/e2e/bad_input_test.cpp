// Bad input of every kind gets a precise status or error acknowledgement, and
// harms nothing: the server stays healthy and other streams keep working.

#include <signal.h>

#include <random>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clip_ = TestClip(dir_, "good.mkv", 160, 120, 10, 2, 10);
    ASSERT_EQ(PushOneShot(port(), "good", ReadFile(clip_)).status, 200);
  }
  void TearDown() override {
    // Whatever happened, the server is healthy and the good stream still answers.
    EXPECT_EQ(HttpGet(port(), "/healthz").status, 200);
    HttpResult snap = HttpGet(port(), "/v1/streams/good/snapshot");
    EXPECT_EQ(snap.status, 200) << snap.body;
  }
  uint16_t port() { return server_.port(); }
  void ExpectError(const HttpResult& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(JsonOf(r)["code"], code) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
  }
  // A presigned URL for |path| made by our own signer at |signed_at_ms|.
  std::string SignedTarget(const std::string& path, int64_t signed_at_ms, int64_t expires_s,
                           const std::string& secret = kSecretKey) {
    ManualClock clock(signed_at_ms);
    aws::SigV4 signer({kAccessKey, Secret(secret), ""}, "us-east-1", "s3", clock);
    return path + "?" +
           signer.PresignQuery("GET", "127.0.0.1:" + std::to_string(port()), path, expires_s);
  }
  std::string SnapshotKeyPath() {
    json j = JsonOf(HttpGet(port(), "/v1/streams/good/snapshot"));
    return "/lastframe/" + j["key"].get<std::string>();
  }

  TempDir dir_;
  LastframeServer server_{dir_.file("data"), TestServerArgs()};
  std::string clip_;
};

TEST_F(BadInputTest, RandomBytesGetAnInvalidMkvAck) {
  std::string junk(200'000, '\0');
  std::mt19937 rng(1);
  for (char& c : junk) c = static_cast<char>(rng());
  HttpResult r = PushOneShot(port(), "junk", junk);
  ASSERT_EQ(r.status, 200);
  auto acks = Acks(r.body);
  ASSERT_EQ(acks.size(), 1u) << r.body;
  EXPECT_EQ(acks[0]["EventType"], "ERROR");
  EXPECT_EQ(acks[0]["ErrorId"], 4006);
  EXPECT_EQ(acks[0]["ErrorCode"], "INVALID_MKV_DATA");
  ExpectError(HttpGet(port(), "/v1/streams/junk/snapshot"), 404, "NoFrame");
  EXPECT_EQ(JsonOf(HttpGet(port(), "/v1/streams/junk"))["state"], "error");
}

TEST_F(BadInputTest, TruncatedClipKeepsItsWholeFragments) {
  // Three fragments of ten frames; the body stops three quarters in, inside the third.
  std::string clip = TestClip(dir_, "long.mkv", 160, 120, 10, 3, 10);
  std::string bytes = ReadFile(clip);
  HttpResult r = PushOneShot(port(), "cut", bytes.substr(0, bytes.size() * 3 / 4));
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> persisted;
  std::vector<json> errors;
  for (const auto& a : Acks(r.body)) {
    if (a["EventType"] == "PERSISTED") persisted.push_back(a["FragmentNumber"]);
    if (a["EventType"] == "ERROR") errors.push_back(a);
  }
  ASSERT_EQ(persisted.size(), 2u) << r.body;
  ASSERT_EQ(errors.size(), 1u) << r.body;
  EXPECT_EQ(errors[0]["ErrorId"], 4006);
  EXPECT_EQ(errors[0]["FragmentTimecode"], 2000) << "the cut-off fragment is the one named";
  EXPECT_NE(errors[0]["FragmentNumber"], persisted.back());
  // Only the whole fragments are listed, and the newest frame is the second one's last.
  json listed = JsonOf(HttpGet(port(), "/v1/streams/cut/fragments"))["fragments"];
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  for (const json& f : listed) EXPECT_EQ(f["frames"], 10);
  EXPECT_EQ(listed[1]["fragment_number"], persisted.back());
  HttpResult image = HttpGet(port(), "/v1/streams/cut/latest.jpg?quality=95");
  ASSERT_EQ(image.status, 200);
  auto frames = DecodeAllFramesWithFfmpeg(clip, 160, 120);
  ASSERT_EQ(frames.size(), 30u);
  EXPECT_GT(Psnr(DecodeJpeg(image.body), frames[19]), 32.0);
}

TEST_F(BadInputTest, PutMediaHeadersAndBodyAreValidated) {
  std::string clip = ReadFile(clip_);
  ExpectError(HttpRequest(port(), "POST", "/putMedia", clip), 400, "MissingParameter");
  ExpectError(HttpRequest(port(), "POST", "/putMedia", clip, {{"x-amzn-stream-name", "a/b"}}), 400,
              "InvalidStreamName");
  ExpectError(HttpRequest(port(), "POST", "/putMedia", clip,
                          {{"x-amzn-stream-name", std::string(257, 'x')}}),
              400, "InvalidStreamName");
  ExpectError(HttpRequest(port(), "POST", "/putMedia", "", {{"x-amzn-stream-name", "e"}}), 400,
              "EmptyBody");
  ExpectError(
      HttpRequest(port(), "POST", "/putMedia", clip,
                  {{"x-amzn-stream-name", "t"}, {"x-amzn-fragment-timecode-type", "SOMETIMES"}}),
      400, "InvalidArgument");
  ExpectError(
      HttpRequest(port(), "POST", "/putMedia", clip,
                  {{"x-amzn-stream-name", "t"}, {"x-amzn-producer-start-timestamp", "soon"}}),
      400, "InvalidArgument");
  ExpectError(HttpGet(port(), "/putMedia"), 405, "MethodNotAllowed");
  // The stream by ARN (Kinesis Video takes either header): its NAME, checked as a name.
  ExpectError(HttpRequest(port(), "POST", "/putMedia", clip,
                          {{"x-amzn-stream-arn", "arn:aws:s3:::bucket/key"}}),
              400, "InvalidArgument");
  ExpectError(HttpRequest(port(), "POST", "/putMedia", clip,
                          {{"x-amzn-stream-arn", "arn:aws:kinesisvideo:us-east-1:0:stream/a b/1"}}),
              400, "InvalidStreamName");
  HttpResult by_arn = HttpRequest(
      port(), "POST", "/putMedia", clip,
      {{"x-amzn-stream-arn", "arn:aws:kinesisvideo:us-east-1:000000000000:stream/by-arn/1"}});
  EXPECT_EQ(by_arn.status, 200) << by_arn.body;
  EXPECT_EQ(JsonOf(HttpGet(port(), "/v1/streams/by-arn"))["name"], "by-arn");
}

// Times a caller gives are finite and from 1970 to 9999: "nan" once became
// INT64_MIN (a stream at year 292278994), 15 digits of milliseconds year 33658.
TEST_F(BadInputTest, TimesOutsideYears1970To9999AreRefused) {
  std::string clip = ReadFile(clip_);
  for (const char* bad : {"nan", "NaN", "-nan", "inf", "-inf", "infinity", "1e300", "-1", "-0.5",
                          "253402300800", "9223372036854775.807", "1e19"}) {
    HttpResult r =
        HttpRequest(port(), "POST", "/putMedia", clip,
                    {{"x-amzn-stream-name", "t"}, {"x-amzn-producer-start-timestamp", bad}});
    ExpectError(r, 400, "InvalidArgument");
    EXPECT_NE(JsonOf(r)["message"].get<std::string>().find("x-amzn-producer-start-timestamp must "
                                                           "be epoch seconds"),
              std::string::npos)
        << bad << ": " << r.body;
  }
  EXPECT_EQ(HttpGet(port(), "/v1/streams/t").status, 404);  // no stream was made
  // The range of a fragment listing or a clip.
  for (const std::string param : {"start", "end"})
    for (const char* bad : {"999999999999999", "253402300800000", "0000-01-01T00:00:00Z",
                            "1969-12-31T23:59:59Z", "nan", "inf", "-1"})
      for (const char* route : {"fragments", "clip"}) {
        std::string target = std::string("/v1/streams/good/") + route + "?" + param + "=" + bad;
        HttpResult r = HttpGet(port(), target);
        ExpectError(r, 400, "InvalidArgument");
        EXPECT_NE(r.body.find("from 1970 to 9999"), std::string::npos) << target << ": " << r.body;
      }
  // The limits themselves are times.
  HttpResult all = HttpGet(port(), "/v1/streams/good/fragments?start=0&end=253402300799999");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(JsonOf(all)["fragments"].size(), 2u) << all.body;
  // A start time with a fraction, the largest one, is taken.
  HttpResult late = HttpRequest(
      port(), "POST", "/putMedia", clip,
      {{"x-amzn-stream-name", "late"}, {"x-amzn-producer-start-timestamp", "253402300000.5"}});
  ASSERT_EQ(late.status, 200) << late.body;
  EXPECT_EQ(Acks(late.body).back()["EventType"], "PERSISTED") << late.body;
  json fragments = JsonOf(HttpGet(port(), "/v1/streams/late/fragments"));
  ASSERT_FALSE(fragments["fragments"].empty()) << fragments.dump();
  EXPECT_EQ(fragments["fragments"][0]["producer_timestamp"].get<std::string>().substr(0, 4), "9999")
      << fragments.dump();
}

TEST_F(BadInputTest, SecondProducerOnALiveStreamIsRefused) {
  Process producer(LiveProducer(port(), "busy", "160x120"));
  ASSERT_TRUE(Eventually([&] {
    HttpResult r = HttpGet(port(), "/v1/streams/busy");
    return r.status == 200 && JsonOf(r)["producer_connected"] == true;
  }));
  ExpectError(PushOneShot(port(), "busy", ReadFile(clip_)), 409, "StreamBusy");
  producer.Signal(SIGKILL);
  producer.Wait();
}

TEST_F(BadInputTest, HugeHeaderAndGarbageRequests) {
  std::string huge =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  std::string reply = RawExchange(port(), huge);
  EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << reply.substr(0, 200);
  EXPECT_NE(reply.find("RequestHeaderFieldsTooLarge"), std::string::npos);
  reply = RawExchange(port(), "NOT AN HTTP REQUEST\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  reply = RawExchange(port(),
                      "POST /putMedia HTTP/1.1\r\nHost: x\r\nx-amzn-stream-name: chunky\r\n"
                      "Transfer-Encoding: chunked\r\n\r\nZZZ\r\nnot a chunk\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;  // accepted, then the stream breaks
  EXPECT_TRUE(Eventually([&] {
    return JsonOf(HttpGet(port(), "/v1/streams/chunky"))["producer_connected"] == false;
  }));
  ExpectError(HttpRequest(port(), "POST", "/healthz", std::string(2 * 1024 * 1024, 'x')), 413,
              "TooLarge");
}

TEST_F(BadInputTest, BytesThatAreNotUtf8AreQuotedNotFatal) {
  // Found by fuzz/kvs_api: an error message quoting a client's bytes that are
  // not UTF-8 made nlohmann::json throw on an I/O thread, which ended the
  // server: one unsigned request was enough.
  std::string reply = RawExchange(port(),
                                  "POST /listStreams HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: AWS4-HMAC-SHA256 \xad=1\r\n"
                                  "Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("IncompleteSignatureException"), std::string::npos) << reply;
  ExpectError(HttpGet(port(), "/v1/streams/good/fragments?%ff=1&%ff=2"), 400, "InvalidArgument");
  HttpResult recipe = HttpGet(port(), "/snapshot?stream_name=good&%ff=1&%ff=2");
  EXPECT_EQ(recipe.status, 400) << recipe.body;
  EXPECT_TRUE(json::accept(recipe.body)) << recipe.body;
}

TEST_F(BadInputTest, SnapshotParametersAreValidated) {
  for (const char* q : {"quality=0", "quality=101", "quality=abc", "quality=8x", "width=0",
                        "width=99999", "height=-5", "expires=0", "expires=604801", "format=gif",
                        "redirect=maybe", "mode=oldest", "quality=80&quality=90", "a=%zz"}) {
    HttpResult r = HttpGet(port(), std::string("/v1/streams/good/snapshot?") + q);
    ExpectError(r, 400, "InvalidArgument");
  }
  ExpectError(HttpGet(port(), "/v1/streams/bad%20name/snapshot"), 400, "InvalidStreamName");
  ExpectError(HttpGet(port(), "/v1/streams/../snapshot"), 400, "InvalidStreamName");
  ExpectError(HttpGet(port(), "/snapshot?stream_name=a%2Fb"), 400, "InvalidStreamName");
  ExpectError(HttpGet(port(), "/v1/streams/nobody/snapshot"), 404, "StreamNotFound");
  ExpectError(HttpGet(port(), "/v1/streams/nobody/latest.jpg"), 404, "StreamNotFound");
  ExpectError(HttpGet(port(), "/v1/streams/good/nothing"), 404, "NotFound");
  // Closed by default: an unknown route says nothing to a caller without a key.
  ExpectError(HttpGet(port(), "/nothing/here"), 401, "Unauthorized");
  ExpectError(HttpRequest(port(), "GET", "/nothing/here", "",
                          {{"Authorization", "Bearer " + server_.admin_token()}}),
              404, "NotFound");
  HttpResult post = HttpRequest(port(), "POST", "/v1/streams/good/snapshot", "x");
  ExpectError(post, 405, "MethodNotAllowed");
  EXPECT_EQ(post.header("allow"), "GET");
}

TEST_F(BadInputTest, ExpiredTamperedAndForeignUrlsAreRefused) {
  std::string path = SnapshotKeyPath();
  int64_t now = SystemClock::Get().NowMs();
  EXPECT_EQ(HttpGet(port(), SignedTarget(path, now, 60)).status, 200);  // our signer agrees

  HttpResult expired = HttpGet(port(), SignedTarget(path, now - 3'600'000, 60));
  EXPECT_EQ(expired.status, 403);
  EXPECT_NE(expired.body.find("<Code>AccessDenied</Code>"), std::string::npos);
  EXPECT_NE(expired.body.find("Request has expired"), std::string::npos);

  std::string good = SignedTarget(path, now, 60);
  std::string tampered = good;
  char& last = tampered.back();
  last = last == '0' ? '1' : '0';
  HttpResult bad_sig = HttpGet(port(), tampered);
  EXPECT_EQ(bad_sig.status, 403);
  EXPECT_NE(bad_sig.body.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos);

  // A second signature beside a valid one is not a choice the server makes: 400, as S3.
  for (const std::string& twice :
       {good + "&X-Amz-Signature=" + std::string(64, '0'),
        path + "?X-Amz-Signature=" + std::string(64, '0') + "&" + good.substr(path.size() + 1),
        good + "&X-Amz-Signature=" + good.substr(good.size() - 64)}) {
    HttpResult r = HttpGet(port(), twice);
    EXPECT_EQ(r.status, 400) << twice;
    EXPECT_NE(r.body.find("<Code>AuthorizationQueryParametersError</Code>"), std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("X-Amz-Signature must be given only once"), std::string::npos) << r.body;
  }

  HttpResult wrong_secret = HttpGet(port(), SignedTarget(path, now, 60, "not-the-secret"));
  EXPECT_EQ(wrong_secret.status, 403);
  EXPECT_NE(wrong_secret.body.find("SignatureDoesNotMatch"), std::string::npos);

  // Anonymous access is S3's AccessDenied; a half-presigned URL is a malformed query.
  HttpResult unsigned_get = HttpGet(port(), path);
  EXPECT_EQ(unsigned_get.status, 403);
  EXPECT_NE(unsigned_get.body.find("<Code>AccessDenied</Code>"), std::string::npos);
  HttpResult half_signed = HttpGet(port(), path + "?X-Amz-Credential=x");
  EXPECT_EQ(half_signed.status, 400);
  EXPECT_NE(half_signed.body.find("AuthorizationQueryParametersError"), std::string::npos);
}

// Canary files where each traversal tried below would land if a key could climb out
// of the bucket's folder (DATA/objects/lastframe): one, two and three levels up.
std::vector<std::string> PlantCanaries(const TempDir& dir) {
  std::vector<std::string> canaries = {dir.file("data/objects/secret.txt"),
                                       dir.file("data/secret.txt"), dir.file("secret.txt")};
  for (const std::string& path : canaries) WriteFile(path, "do not serve");
  return canaries;
}

TEST_F(BadInputTest, KeysCannotEscapeTheDataDirectory) {
  const std::vector<std::string> canaries = PlantCanaries(dir_);
  int64_t now = SystemClock::Get().NowMs();
  for (const std::string& raw :
       {std::string("/lastframe/../secret.txt"), std::string("/lastframe/../../secret.txt"),
        std::string("/lastframe/../../../secret.txt"),
        std::string("/lastframe/%2e%2e/%2e%2e/secret.txt"),
        std::string("/lastframe/..%2F..%2Fsecret.txt"),
        std::string("/lastframe/a%5C..%5Csecret.txt")}) {
    std::string reply = RawExchange(
        port(), "GET " + raw + "?X-Amz-Date=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << raw << "\n" << reply;
    EXPECT_NE(reply.find("<Code>InvalidKey</Code>"), std::string::npos) << reply;
    EXPECT_EQ(reply.find("do not serve"), std::string::npos);
  }
  // Even correctly signed, a traversal key is refused before any file is opened.
  for (const std::string& path :
       {std::string("/lastframe/../secret.txt"), std::string("/lastframe/x/../../../secret.txt"),
        std::string("/lastframe/x/../../../../secret.txt")}) {
    HttpResult signed_traversal = HttpGet(port(), SignedTarget(path, now, 60));
    EXPECT_EQ(signed_traversal.status, 400) << path << "\n" << signed_traversal.body;
    EXPECT_EQ(signed_traversal.body.find("do not serve"), std::string::npos) << path;
  }
  for (const std::string& canary : canaries) EXPECT_EQ(ReadFile(canary), "do not serve");
  HttpResult other_bucket = HttpGet(port(), SignedTarget("/otherbucket/k.jpg", now, 60));
  EXPECT_EQ(other_bucket.status, 404);
}

TEST(ProducerTimeout, AProducerThatGoesSilentIsDroppedWithAnErrorAck) {
  TempDir dir;
  auto args = TestServerArgs();
  args.insert(args.end(), {"--producer-timeout", "1"});
  LastframeServer server(dir.file("data"), args);
  std::string clip = ReadFile(TestClip(dir, "c.mkv", 160, 120, 10, 3, 10));
  std::string half = clip.substr(0, clip.size() * 2 / 3);
  char size[20];
  std::snprintf(size, sizeof size, "%zx", half.size());
  // One chunk of the clip, then silence: no more chunks, no terminator.
  std::string reply =
      RawExchange(server.port(),
                  "POST /putMedia HTTP/1.1\r\nHost: x\r\nx-amzn-stream-name: quiet\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n" +
                      std::string(size) + "\r\n" + half + "\r\n",
                  /*keep_sending_side_open=*/true);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("\"PERSISTED\""), std::string::npos) << reply;  // what arrived whole
  EXPECT_NE(reply.find("\"ErrorId\":4000"), std::string::npos) << reply;
  EXPECT_NE(reply.find("idle timeout"), std::string::npos) << reply;
  // The stream is free again for the next producer.
  EXPECT_EQ(PushOneShot(server.port(), "quiet", clip).status, 200);
}

}  // namespace
}  // namespace lastframe::testing
