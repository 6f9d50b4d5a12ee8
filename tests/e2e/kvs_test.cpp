// Kinesis Video Streams' API on lastframe, proven with clients nobody here
// wrote: awscli v2 (kinesisvideo, kinesis-video-archived-media) and boto3
// against a running server, checked with ffprobe, ffmpeg's decode and
// libjpeg-turbo; then requests signed by hand (our SigV4) for what those
// clients never send: GetMedia read as it streams, bad input, PutMedia's
// signature.

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "e2e/e2e_util.h"
#include "support/http_client.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

std::string SourceDir() { return LASTFRAME_SOURCE_DIR; }

// The clip every test pushes: testsrc2, 6 s at 10 fps, a keyframe every 10
// frames, so 6 fragments of 1 s.
constexpr int kWidth = 320, kHeight = 240, kFps = 10, kGop = 10, kSeconds = 6;
constexpr int kFrames = kFps * kSeconds, kFragments = kSeconds * kFps / kGop;

// A producer start timestamp a minute ago, in whole seconds: awscli and boto3
// send timestamps as whole epoch seconds, so ranges line up with fragments.
int64_t ClipStartSeconds() { return SystemClock::Get().NowMs() / 1000 - 60; }

// A Kinesis Video call signed by our signer with the test key pair (|secret| may differ).
HttpResult KvsCall(uint16_t port, const std::string& op, const std::string& body,
                   const std::string& secret = kSecretKey) {
  return SignedKvsCall(port, op, body, kAccessKey, secret);
}

// Kinesis Video's error shape: the status, x-amzn-ErrorType, {"message": ...}.
void ExpectKvsError(const HttpResult& r, int status, const std::string& type) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("x-amzn-errortype"), type) << r.body;
  EXPECT_FALSE(r.header("x-amzn-requestid").empty());
  auto j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_TRUE(j.contains("message") && j["message"].is_string() &&
              !j["message"].get<std::string>().empty())
      << r.body;
}

// PutMedia in one plain POST, from a producer that started at |start_s|;
// signed (with |secret|) as Kinesis Video's producer SDK signs it (an empty
// payload's hash: the body streams) unless |secret| is empty.
HttpResult PutMedia(uint16_t port, const std::string& stream, const std::string& bytes,
                    int64_t start_s, const std::string& secret = "") {
  std::map<std::string, std::string> headers = {
      {"x-amzn-stream-name", stream},
      {"x-amzn-producer-start-timestamp", std::to_string(start_s)},
      {"x-amzn-fragment-timecode-type", "RELATIVE"}};
  if (!secret.empty()) {
    const SystemClock& clock = SystemClock::Get();
    int64_t now = clock.NowMs();
    aws::SigV4 signer({kAccessKey, Secret(secret), ""}, "us-east-1", "kinesisvideo", clock);
    aws::CanonicalRequest req;
    req.method = "POST";
    req.path = "/putMedia";
    req.payload_hash = aws::Sha256Hex("");
    headers["x-amz-date"] = FormatAmzDate(now);
    req.headers = {{"host", "127.0.0.1:" + std::to_string(port)},
                   {"x-amz-date", headers["x-amz-date"]},
                   {"x-amzn-stream-name", stream}};
    headers["Authorization"] = signer.Authorization(req, now);
  }
  return HttpRequest(port, "POST", "/putMedia", bytes, headers);
}

std::vector<std::string> Persisted(const HttpResult& r) { return PersistedFragments(r.body); }

struct Probe {
  std::string codec;
  int frames = 0;
  int width = 0, height = 0;
  double duration_s = 0;
};

// What ffprobe (an independent reader) finds in |path|.
Probe FfprobeFile(const std::string& path) {
  std::string out;
  EXPECT_EQ(
      RunCommand(
          {"ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
           "stream=codec_name,nb_read_frames,width,height:format=duration", "-of", "json", path},
          &out),
      0)
      << out;
  // Warnings (stderr) come before the JSON (stdout, written at exit).
  size_t at = out.find("{\n");
  json j = json::parse(at == std::string::npos ? "" : out.substr(at), nullptr, false);
  Probe p;
  if (j.is_discarded() || !j.contains("streams") || j["streams"].empty()) {
    ADD_FAILURE() << "ffprobe " << path << ": " << out;
    return p;
  }
  const json& s = j["streams"][0];
  p.codec = s.value("codec_name", "");
  p.frames = std::stoi(s.value("nb_read_frames", "0"));
  p.width = s.value("width", 0);
  p.height = s.value("height", 0);
  if (j.contains("format") && j["format"].contains("duration"))
    p.duration_s = std::stod(j["format"]["duration"].get<std::string>());
  return p;
}

// awscli prints timestamps as "2026-11-25T22:12:19.384000+00:00" (the
// fraction only when there is one); milliseconds since the epoch.
int64_t AwsTimeMs(const json& v) {
  if (!v.is_string()) {
    ADD_FAILURE() << "not a timestamp: " << v;
    return 0;
  }
  std::string t = v.get<std::string>();
  if (t.size() < 25 || !t.ends_with("+00:00")) {
    ADD_FAILURE() << "not a UTC timestamp: " << t;
    return 0;
  }
  std::string fraction = t.size() > 25 && t[19] == '.' ? t.substr(20, t.size() - 26) : "";
  auto ms = ParseTimestampMs(t.substr(0, 19) + "." + (fraction + "000").substr(0, 3) + "Z");
  EXPECT_TRUE(ms.has_value()) << t;
  return ms.value_or(0);
}

// A signed POST /getMedia, its body read as it streams (GetMedia follows the
// stream live and never ends by itself) until |enough| says so, or 30 s.
struct Streamed {
  int status = 0;
  std::string content_type;
  std::string body;
};
Streamed ReadGetMedia(uint16_t port, const std::string& request_body,
                      const std::function<bool(const std::string&)>& enough) {
  namespace beast = boost::beast;
  namespace bhttp = beast::http;
  namespace net = boost::asio;
  Streamed result;
  const SystemClock& clock = SystemClock::Get();
  int64_t now = clock.NowMs();
  aws::SigV4 signer({kAccessKey, Secret(kSecretKey), ""}, "us-east-1", "kinesisvideo", clock);
  aws::CanonicalRequest canonical;
  canonical.method = "POST";
  canonical.path = "/getMedia";
  canonical.payload_hash = aws::Sha256Hex(request_body);
  const std::string host = "127.0.0.1:" + std::to_string(port);
  canonical.headers = {{"host", host}, {"x-amz-date", FormatAmzDate(now)}};

  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  const net::ip::tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  if (Await(ioc, [&](auto done) { stream.async_connect(endpoint, done); })) return result;
  bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/getMedia", 11);
  req.set(bhttp::field::host, host);
  req.set("x-amz-date", FormatAmzDate(now));
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::authorization, signer.Authorization(canonical, now));
  req.body() = request_body;
  req.prepare_payload();
  if (Await(ioc, [&](auto done) { bhttp::async_write(stream, req, done); })) return result;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (Await(ioc, [&](auto done) { bhttp::async_read_header(stream, buffer, parser, done); }))
    return result;
  result.status = parser.get().result_int();
  result.content_type = std::string(parser.get()[bhttp::field::content_type]);
  char chunk[16384];
  while (!parser.is_done() && !enough(result.body)) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // Returns with what has arrived; ends at the stream's expiry if nothing does.
    ec = Await(ioc, [&](auto done) { bhttp::async_read_some(stream, buffer, parser, done); });
    if (ec == bhttp::error::need_buffer) ec = {};
    result.body.append(chunk, sizeof chunk - parser.get().body().size);
    if (ec) break;
  }
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  return result;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++n;
  return n;
}

// GetMedia sends each fragment as a Matroska chunk whose closing tags carry
// its number as the continuation token: true once the chunks of |numbers|
// (the last fragments of the stream, in order) have all come, whole.
std::function<bool(const std::string&)> HasChunks(std::vector<std::string> numbers) {
  return [numbers = std::move(numbers)](const std::string& body) {
    const std::string token = "AWS_KINESISVIDEO_CONTINUATION_TOKEN";
    if (Count(body, token) < numbers.size()) return false;
    return body.find(numbers.back(), body.rfind(token)) != std::string::npos;
  };
}

class KvsTest : public ::testing::Test {
 protected:
  uint16_t port() { return server_.port(); }

  // Runs Debian's awscli v2 against the server, isolated from any AWS
  // configuration of the machine; returns its exit status.
  int Aws(const std::vector<std::string>& args, std::string* output,
          const std::string& secret = kSecretKey) {
    return RunAwsCli(dir_, server_.base_url(), args, output, secret);
  }
  // An awscli call that must succeed; its output.
  std::string AwsOk(const std::vector<std::string>& args) {
    std::string out;
    EXPECT_EQ(Aws(args, &out), 0) << args[1] << ": " << out;
    return out;
  }
  // An awscli call that must succeed and print JSON; that JSON.
  json AwsJson(const std::vector<std::string>& args) {
    std::string out = AwsOk(args);
    size_t at = out.find('{');
    json j = json::parse(at == std::string::npos ? "" : out.substr(at), nullptr, false);
    EXPECT_TRUE(j.is_object()) << args[1] << ": " << out;
    return j.is_object() ? j : json::object();
  }
  // An awscli call that must fail with Kinesis Video error |type|.
  void ExpectAwsError(const std::vector<std::string>& args, const std::string& type,
                      const std::string& secret = kSecretKey) {
    std::string out;
    EXPECT_NE(Aws(args, &out, secret), 0) << out;
    EXPECT_NE(out.find("An error occurred (" + type + ")"), std::string::npos) << out;
  }

  // Pushes the test clip to |stream|; returns the fragment numbers persisted.
  std::vector<std::string> PushClip(const std::string& stream, int64_t start_s) {
    HttpResult r = PutMedia(port(), stream, ReadFile(clip_), start_s);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> persisted = Persisted(r);
    EXPECT_EQ(persisted.size(), static_cast<size_t>(kFragments)) << r.body;
    return persisted;
  }

  TempDir dir_;
  LastframeServer server_{dir_.file("data"), TestServerArgs()};
  std::string clip_ = TestClip(dir_, "cam.mkv", kWidth, kHeight, kFps, kSeconds, kGop);
};

TEST_F(KvsTest, AwsCliManagesStreams) {
  json created = AwsJson({"kinesisvideo", "create-stream", "--stream-name", "cli-a",
                          "--data-retention-in-hours", "2", "--media-type", "video/h264",
                          "--device-name", "gate"});
  const std::string arn = created.value("StreamARN", "");
  EXPECT_EQ(arn.rfind("arn:aws:kinesisvideo:us-east-1:", 0), 0u) << arn;
  EXPECT_NE(arn.find(":stream/cli-a/"), std::string::npos) << arn;
  AwsJson({"kinesisvideo", "create-stream", "--stream-name", "cli-b"});
  ExpectAwsError({"kinesisvideo", "create-stream", "--stream-name", "cli-a"},
                 "ResourceInUseException");

  json info = AwsJson({"kinesisvideo", "describe-stream", "--stream-name", "cli-a"})["StreamInfo"];
  EXPECT_EQ(info["StreamName"], "cli-a");
  EXPECT_EQ(info["StreamARN"], arn);
  EXPECT_EQ(info["Status"], "ACTIVE");
  EXPECT_EQ(info["DataRetentionInHours"], 2);
  EXPECT_EQ(info["MediaType"], "video/h264");
  EXPECT_EQ(info["DeviceName"], "gate");
  int64_t created_ms = AwsTimeMs(info["CreationTime"]);
  EXPECT_LE(std::abs(created_ms - SystemClock::Get().NowMs()), 60'000) << info;
  const std::string version = info["Version"];

  // Paged one stream at a time: awscli follows NextToken to the end.
  const std::string condition = "ComparisonOperator=BEGINS_WITH,ComparisonValue=cli-";
  json listed = AwsJson(
      {"kinesisvideo", "list-streams", "--stream-name-condition", condition, "--page-size", "1"});
  std::vector<std::string> names;
  for (const json& s : listed["StreamInfoList"]) names.push_back(s["StreamName"]);
  EXPECT_EQ(names, (std::vector<std::string>{"cli-a", "cli-b"})) << listed;
  json first = AwsJson(
      {"kinesisvideo", "list-streams", "--stream-name-condition", condition, "--max-items", "1"});
  ASSERT_EQ(first["StreamInfoList"].size(), 1u) << first;
  EXPECT_EQ(first["StreamInfoList"][0]["StreamName"], "cli-a");
  EXPECT_TRUE(first.contains("NextToken")) << first;

  AwsOk({"kinesisvideo", "update-data-retention", "--stream-name", "cli-a", "--current-version",
         version, "--operation", "INCREASE_DATA_RETENTION", "--data-retention-change-in-hours",
         "3"});
  json updated = AwsJson({"kinesisvideo", "describe-stream", "--stream-arn", arn})["StreamInfo"];
  EXPECT_EQ(updated["DataRetentionInHours"], 5);
  EXPECT_NE(updated["Version"], version);
  ExpectAwsError(
      {"kinesisvideo", "update-data-retention", "--stream-name", "cli-a", "--current-version",
       version, "--operation", "DECREASE_DATA_RETENTION", "--data-retention-change-in-hours", "1"},
      "VersionMismatchException");

  json endpoint = AwsJson(
      {"kinesisvideo", "get-data-endpoint", "--stream-name", "cli-a", "--api-name", "GET_MEDIA"});
  EXPECT_EQ(endpoint["DataEndpoint"], server_.base_url());

  AwsOk({"kinesisvideo", "delete-stream", "--stream-arn", arn});
  ExpectAwsError({"kinesisvideo", "describe-stream", "--stream-name", "cli-a"},
                 "ResourceNotFoundException");
  listed = AwsJson({"kinesisvideo", "list-streams", "--stream-name-condition", condition});
  ASSERT_EQ(listed["StreamInfoList"].size(), 1u) << listed;
  EXPECT_EQ(listed["StreamInfoList"][0]["StreamName"], "cli-b");
}

TEST_F(KvsTest, AwsCliReadsAPushedClipBack) {
  const int64_t start_s = ClipStartSeconds();
  std::vector<std::string> persisted = PushClip("cam", start_s);
  ASSERT_EQ(persisted.size(), static_cast<size_t>(kFragments));

  // ListFragments: one fragment a second from the producer's start.
  json fragments = AwsJson(
      {"kinesis-video-archived-media", "list-fragments", "--stream-name", "cam"})["Fragments"];
  ASSERT_EQ(fragments.size(), static_cast<size_t>(kFragments)) << fragments;
  for (int i = 0; i < kFragments; ++i) {
    const json& f = fragments[i];
    EXPECT_EQ(f["FragmentNumber"], persisted[i]) << f;
    EXPECT_EQ(AwsTimeMs(f["ProducerTimestamp"]), (start_s + i) * 1000) << f;
    EXPECT_EQ(f["FragmentLengthInMilliseconds"], 1000) << f;
    EXPECT_GT(f["FragmentSizeInBytes"].get<int64_t>(), 0) << f;
    EXPECT_LE(std::abs(AwsTimeMs(f["ServerTimestamp"]) - SystemClock::Get().NowMs()), 60'000) << f;
  }

  // GetClip: an MP4 of the whole range, as long as the clip.
  const std::string start = std::to_string(start_s), end = std::to_string(start_s + kSeconds);
  const std::string mp4 = dir_.file("clip.mp4");
  json clip =
      AwsJson({"kinesis-video-archived-media", "get-clip", "--stream-name", "cam",
               "--clip-fragment-selector",
               "FragmentSelectorType=PRODUCER_TIMESTAMP,TimestampRange={StartTimestamp=" + start +
                   ",EndTimestamp=" + end + "}",
               mp4});
  EXPECT_EQ(clip["ContentType"], "video/mp4");
  Probe probed = FfprobeFile(mp4);
  EXPECT_EQ(probed.codec, "h264");
  EXPECT_EQ(probed.frames, kFrames);
  EXPECT_NEAR(probed.duration_s, kSeconds, 1.0 / kFps + 0.01);

  // GetImages every 3 s from the start to the end: frames 0, 30 and the last,
  // as ffmpeg decodes them from the clip pushed.
  json images = AwsJson({"kinesis-video-archived-media", "get-images", "--stream-name", "cam",
                         "--image-selector-type", "PRODUCER_TIMESTAMP", "--start-timestamp", start,
                         "--end-timestamp", end, "--sampling-interval", "3000", "--format",
                         "JPEG"})["Images"];
  ASSERT_EQ(images.size(), 3u) << images;
  std::vector<RgbImage> reference = DecodeAllFramesWithFfmpeg(clip_, kWidth, kHeight);
  ASSERT_EQ(reference.size(), static_cast<size_t>(kFrames));
  for (size_t i = 0; i < images.size(); ++i) {
    const json& image = images[i];
    int64_t at_ms = AwsTimeMs(image["TimeStamp"]);
    EXPECT_EQ(at_ms, start_s * 1000 + static_cast<int64_t>(i) * 3000) << image.dump(0, ' ');
    ASSERT_FALSE(image.contains("Error")) << image["Error"];
    RgbImage decoded = DecodeJpeg(Base64Decode(image.value("ImageContent", "")));
    ASSERT_EQ(decoded.width, kWidth);
    ASSERT_EQ(decoded.height, kHeight);
    size_t frame = std::min<size_t>((at_ms - start_s * 1000) * kFps / 1000, kFrames - 1);
    EXPECT_GT(Psnr(decoded, reference[frame]), 30.0) << "image " << i << ", frame " << frame;
  }
  // WidthPixels and HeightPixels: the images are that size.
  json sized = AwsJson({"kinesis-video-archived-media", "get-images", "--stream-name", "cam",
                        "--image-selector-type", "PRODUCER_TIMESTAMP", "--start-timestamp", start,
                        "--end-timestamp", end, "--sampling-interval", "3000", "--format", "JPEG",
                        "--width-pixels", "160", "--height-pixels", "90"})["Images"];
  ASSERT_EQ(sized.size(), 3u) << sized;
  for (const json& image : sized) {
    RgbImage decoded = DecodeJpeg(Base64Decode(image.value("ImageContent", "")));
    EXPECT_EQ(decoded.width, 160);
    EXPECT_EQ(decoded.height, 90);
  }

  // GetMediaForFragmentList: Matroska holding that fragment's frames.
  const std::string mkv = dir_.file("fragment.mkv");
  json media = AwsJson({"kinesis-video-archived-media", "get-media-for-fragment-list",
                        "--stream-name", "cam", "--fragments", persisted[2], "--", mkv});
  EXPECT_EQ(media["ContentType"], "video/webm");
  EXPECT_EQ(ReadFile(mkv).substr(0, 4), "\x1a\x45\xdf\xa3");  // EBML
  Probe fragment = FfprobeFile(mkv);
  EXPECT_EQ(fragment.codec, "h264");
  EXPECT_EQ(fragment.frames, kGop);
  EXPECT_EQ(fragment.width, kWidth);
  EXPECT_EQ(fragment.height, kHeight);
}

TEST_F(KvsTest, GetMediaStreamsFromTheEarliestFragment) {
  std::vector<std::string> persisted = PushClip("cam", ClipStartSeconds());
  ASSERT_EQ(persisted.size(), static_cast<size_t>(kFragments));
  auto all_chunks = HasChunks(persisted);
  Streamed got = ReadGetMedia(
      port(), R"({"StreamName":"cam","StartSelector":{"StartSelectorType":"EARLIEST"}})",
      all_chunks);
  ASSERT_EQ(got.status, 200) << got.body.substr(0, 300);
  EXPECT_EQ(got.content_type, "video/webm");
  ASSERT_TRUE(all_chunks(got.body))
      << got.body.size() << " bytes, " << Count(got.body, "AWS_KINESISVIDEO_CONTINUATION_TOKEN")
      << " chunks";
  EXPECT_EQ(got.body.substr(0, 4), "\x1a\x45\xdf\xa3");  // EBML
  for (const std::string& number : persisted)
    EXPECT_NE(got.body.find(number), std::string::npos) << number;
  WriteFile(dir_.file("media.mkv"), got.body);
  Probe probed = FfprobeFile(dir_.file("media.mkv"));
  EXPECT_EQ(probed.codec, "h264");
  EXPECT_EQ(probed.frames, kFrames);

  // From a fragment number: that fragment and the ones after it.
  Streamed from = ReadGetMedia(
      port(),
      json{{"StreamName", "cam"},
           {"StartSelector",
            {{"StartSelectorType", "FRAGMENT_NUMBER"}, {"AfterFragmentNumber", persisted[3]}}}}
          .dump(),
      HasChunks({persisted.begin() + 3, persisted.end()}));
  ASSERT_EQ(from.status, 200) << from.body.substr(0, 300);
  EXPECT_EQ(from.body.find(persisted[2]), std::string::npos);
  WriteFile(dir_.file("from.mkv"), from.body);
  EXPECT_EQ(FfprobeFile(dir_.file("from.mkv")).frames, kFrames - 3 * kGop);
}

TEST_F(KvsTest, AwsCliErrors) {
  PushClip("cam", ClipStartSeconds());
  ExpectAwsError({"kinesisvideo", "list-streams"}, "InvalidSignatureException", "wrong-secret");
  ExpectAwsError({"kinesis-video-archived-media", "list-fragments", "--stream-name", "cam"},
                 "InvalidSignatureException", "wrong-secret");
  ExpectAwsError({"kinesisvideo", "describe-stream", "--stream-name", "nope"},
                 "ResourceNotFoundException");
  ExpectAwsError({"kinesis-video-archived-media", "list-fragments", "--stream-name", "nope"},
                 "ResourceNotFoundException");
}

TEST_F(KvsTest, Boto3ExercisesTheApi) {
  const int64_t start_s = ClipStartSeconds();
  PushClip("cam", start_s);
  std::string out;
  int rc = RunCommand({"/usr/bin/python3",
                       SourceDir() + "/tests/e2e/kvs_clients/boto3_kvs_check.py",
                       "--endpoint",
                       server_.base_url(),
                       "--access-key",
                       kAccessKey,
                       "--secret-key",
                       kSecretKey,
                       "--stream",
                       "cam",
                       "--clip-start",
                       std::to_string(start_s),
                       "--fragments",
                       std::to_string(kFragments),
                       "--frame-ms",
                       std::to_string(1000 / kFps),
                       "--gop",
                       std::to_string(kGop),
                       "--width",
                       std::to_string(kWidth),
                       "--height",
                       std::to_string(kHeight)},
                      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("boto3 kvs checks passed"), std::string::npos) << out;
}

TEST_F(KvsTest, BadRequestsGetKinesisVideoErrors) {
  const int64_t start_s = ClipStartSeconds();
  PushClip("cam", start_s);
  // Unsigned, or signed with the wrong secret.
  ExpectKvsError(HttpRequest(port(), "POST", "/listStreams", "{}"), 403,
                 "MissingAuthenticationTokenException");
  ExpectKvsError(KvsCall(port(), "listStreams", "{}", "wrong"), 403, "InvalidSignatureException");
  EXPECT_EQ(KvsCall(port(), "listStreams", "{}").status, 200);
  // Not JSON, or not an object.
  ExpectKvsError(KvsCall(port(), "listStreams", "{not json"), 400, "SerializationException");
  ExpectKvsError(KvsCall(port(), "describeStream", "[\"cam\"]"), 400, "SerializationException");
  // Fields of the wrong type or out of range.
  ExpectKvsError(KvsCall(port(), "listStreams", R"({"MaxResults":0})"), 400,
                 "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "listFragments", R"({"StreamName":"cam","MaxResults":0})"), 400,
                 "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "listFragments", R"({"StreamName":"cam","MaxResults":"10"})"), 400,
                 "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "describeStream", R"({"StreamName":7})"), 400,
                 "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "describeStream", R"({"StreamName":"a/b"})"), 400,
                 "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "createStream", R"({"StreamName":"a/b"})"), 400,
                 "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "describeStream", "{}"), 400, "InvalidArgumentException");
  const std::string start = std::to_string(start_s), later = std::to_string(start_s + 5);
  ExpectKvsError(
      KvsCall(port(), "getImages",
              R"({"StreamName":"cam","ImageSelectorType":"PRODUCER_TIMESTAMP","StartTimestamp":)" +
                  start + R"(,"EndTimestamp":)" + later +
                  R"(,"SamplingInterval":100,"Format":"JPEG"})"),
      400, "InvalidArgumentException");
  ExpectKvsError(
      KvsCall(
          port(), "listFragments",
          R"({"StreamName":"cam","FragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP","TimestampRange":{"StartTimestamp":)" +
              later + R"(,"EndTimestamp":)" + start + "}}}"),
      400, "InvalidArgumentException");
  ExpectKvsError(
      KvsCall(
          port(), "getClip",
          R"({"StreamName":"cam","ClipFragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP","TimestampRange":{"StartTimestamp":)" +
              later + R"(,"EndTimestamp":)" + start + "}}}"),
      400, "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "getMedia",
                         R"({"StreamName":"cam","StartSelector":{"StartSelectorType":"SOON"}})"),
                 400, "InvalidArgumentException");
  // A fragment that is not there, and fragment numbers that are not strings.
  ExpectKvsError(
      KvsCall(port(), "getMediaForFragmentList", R"({"StreamName":"cam","Fragments":["12345"]})"),
      404, "ResourceNotFoundException");
  ExpectKvsError(
      KvsCall(port(), "getMediaForFragmentList", R"({"StreamName":"cam","Fragments":[12345]})"),
      400, "InvalidArgumentException");
  ExpectKvsError(KvsCall(port(), "describeStream", R"({"StreamName":"nope"})"), 404,
                 "ResourceNotFoundException");
  // Operations lastframe does not have, and a GET.
  ExpectKvsError(KvsCall(port(), "tagStream", R"({"StreamName":"cam","Tags":{"a":"b"}})"), 501,
                 "NotImplemented");
  ExpectKvsError(HttpRequest(port(), "GET", "/listStreams"), 405, "MethodNotAllowed");
  // None of it changed the stream.
  HttpResult listed = KvsCall(port(), "listFragments", R"({"StreamName":"cam"})");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(JsonOf(listed)["Fragments"].size(), static_cast<size_t>(kFragments));
}

// Timestamps, as numbers (epoch seconds) or strings, are finite times from
// 1970 to 9999 in every operation that takes them.
TEST_F(KvsTest, TimestampsOutsideYears1970To9999AreRefused) {
  PushClip("cam", ClipStartSeconds());
  const std::string start = std::to_string(ClipStartSeconds());
  for (const std::string bad :
       {"1e300", "-1", "-0.001", "253402300800", "1e19", "18446744073709551615",
        "\"999999999999999\"", "\"0000-01-01T00:00:00Z\"", "\"10000-01-01T00:00:00Z\""}) {
    SCOPED_TRACE(bad);
    const std::string range =
        R"("TimestampRange":{"StartTimestamp":)" + bad + R"(,"EndTimestamp":253402300799.999})";
    ExpectKvsError(
        KvsCall(
            port(), "listFragments",
            R"({"StreamName":"cam","FragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP",)" +
                range + "}}"),
        400, "InvalidArgumentException");
    ExpectKvsError(
        KvsCall(
            port(), "getClip",
            R"({"StreamName":"cam","ClipFragmentSelector":{"FragmentSelectorType":"SERVER_TIMESTAMP",)" +
                range + "}}"),
        400, "InvalidArgumentException");
    ExpectKvsError(
        KvsCall(
            port(), "getImages",
            R"({"StreamName":"cam","ImageSelectorType":"PRODUCER_TIMESTAMP","StartTimestamp":)" +
                start + R"(,"EndTimestamp":)" + bad +
                R"(,"SamplingInterval":3000,"Format":"JPEG"})"),
        400, "InvalidArgumentException");
    ExpectKvsError(
        KvsCall(
            port(), "getMedia",
            R"({"StreamName":"cam","StartSelector":{"StartSelectorType":"PRODUCER_TIMESTAMP","StartTimestamp":)" +
                bad + "}}"),
        400, "InvalidArgumentException");
  }
  // The widest range there is lists every fragment.
  HttpResult all = KvsCall(
      port(), "listFragments",
      R"({"StreamName":"cam","FragmentSelector":{"FragmentSelectorType":"SERVER_TIMESTAMP","TimestampRange":{"StartTimestamp":0,"EndTimestamp":253402300799.999}}})");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(JsonOf(all)["Fragments"].size(), static_cast<size_t>(kFragments)) << all.body;
}

// Digit strings past 64 bits where the API takes numbers as strings
// (fragment numbers, tokens, JPEGQuality): refused, and the server goes on.
TEST_F(KvsTest, NumbersPast64BitsAreRefusedAndTheServerGoesOn) {
  PushClip("cam", ClipStartSeconds());
  const std::string huge = "99999999999999999999";           // 20 digits, over 2^64
  const std::string token = "OTk5OTk5OTk5OTk5OTk5OTk5OTk=";  // base64 of |huge|
  const json images = {{"StreamName", "cam"},      {"ImageSelectorType", "PRODUCER_TIMESTAMP"},
                       {"StartTimestamp", 1},      {"EndTimestamp", 100},
                       {"SamplingInterval", 3000}, {"Format", "JPEG"}};
  json with_token = images, with_quality = images;
  with_token["NextToken"] = token;
  with_quality["FormatConfig"] = {{"JPEGQuality", huge}};
  const json generation = {
      {"Status", "ENABLED"},
      {"ImageSelectorType", "PRODUCER_TIMESTAMP"},
      {"DestinationConfig", {{"Uri", "s3://lastframe/x"}, {"DestinationRegion", "us-east-1"}}},
      {"SamplingInterval", 3000},
      {"Format", "JPEG"},
      {"FormatConfig", {{"JPEGQuality", huge}}}};
  const std::vector<std::pair<std::string, json>> calls = {
      {"getMediaForFragmentList", {{"StreamName", "cam"}, {"Fragments", {huge}}}},
      {"listFragments", {{"StreamName", "cam"}, {"NextToken", token}}},
      {"getMedia",
       {{"StreamName", "cam"},
        {"StartSelector",
         {{"StartSelectorType", "FRAGMENT_NUMBER"}, {"AfterFragmentNumber", huge}}}}},
      {"getMedia",
       {{"StreamName", "cam"},
        {"StartSelector",
         {{"StartSelectorType", "CONTINUATION_TOKEN"}, {"ContinuationToken", huge}}}}},
      {"getImages", with_token},
      {"getImages", with_quality},
      {"updateImageGenerationConfiguration",
       {{"StreamName", "cam"}, {"ImageGenerationConfiguration", generation}}}};
  for (const auto& [op, body] : calls) {
    SCOPED_TRACE(op + " " + body.dump());
    HttpResult r = KvsCall(port(), op, body.dump());
    EXPECT_TRUE(r.status == 400 || r.status == 404) << r.status << " " << r.body;
    EXPECT_FALSE(r.header("x-amzn-errortype").empty());
    ASSERT_EQ(HttpGet(port(), "/healthz").status, 200) << "the server stopped:\n"
                                                       << server_.process().Output();
  }
}

// UpdateDataRetention changes the retention DescribeStream reports, also for
// a stream a producer made (which keeps the server's --retention until then).
TEST_F(KvsTest, UpdateDataRetentionChangesTheRetentionDescribed) {
  PushClip("cam", ClipStartSeconds());
  auto describe = [&] {
    HttpResult r = KvsCall(port(), "describeStream", R"({"StreamName":"cam"})");
    EXPECT_EQ(r.status, 200) << r.body;
    return JsonOf(r)["StreamInfo"];
  };
  json before = describe();
  const int64_t hours = before["DataRetentionInHours"];
  EXPECT_EQ(hours, 1);  // --retention 600: ten minutes, in whole hours
  HttpResult increased = KvsCall(port(), "updateDataRetention",
                                 json{{"StreamName", "cam"},
                                      {"CurrentVersion", before["Version"]},
                                      {"Operation", "INCREASE_DATA_RETENTION"},
                                      {"DataRetentionChangeInHours", 2}}
                                     .dump());
  ASSERT_EQ(increased.status, 200) << increased.body;
  json after = describe();
  EXPECT_EQ(after["DataRetentionInHours"], hours + 2) << after;
  HttpResult decreased = KvsCall(port(), "updateDataRetention",
                                 json{{"StreamName", "cam"},
                                      {"CurrentVersion", after["Version"]},
                                      {"Operation", "DECREASE_DATA_RETENTION"},
                                      {"DataRetentionChangeInHours", hours + 1}}
                                     .dump());
  EXPECT_EQ(decreased.status, 200) << decreased.body;
  EXPECT_EQ(describe()["DataRetentionInHours"], 1);
}

TEST_F(KvsTest, PutMediaSignedWithTheWrongSecretIsRefused) {
  // Unsigned pushes are allowed here (--unsigned-putmedia), a bad signature is not.
  HttpResult refused = PutMedia(port(), "cam", ReadFile(clip_), ClipStartSeconds(), "wrong");
  ExpectKvsError(refused, 403, "InvalidSignatureException");
  ExpectKvsError(KvsCall(port(), "describeStream", R"({"StreamName":"cam"})"), 404,
                 "ResourceNotFoundException");
}

TEST(KvsPutMedia, WithCredentialsPutMediaMustBeSigned) {
  TempDir dir;
  LastframeServer server(dir.file("data"), {"--access-key", kAccessKey, "--secret-key", kSecretKey,
                                            "--retention", "600"});  // no --unsigned-putmedia
  std::string clip = TestClip(dir, "cam.mkv", 160, 120, kFps, 2, kGop);
  const int64_t start_s = ClipStartSeconds();
  ExpectKvsError(PutMedia(server.port(), "cam", ReadFile(clip), start_s), 403,
                 "MissingAuthenticationTokenException");
  ExpectKvsError(PutMedia(server.port(), "cam", ReadFile(clip), start_s, "wrong"), 403,
                 "InvalidSignatureException");
  ExpectKvsError(KvsCall(server.port(), "describeStream", R"({"StreamName":"cam"})"), 404,
                 "ResourceNotFoundException");

  HttpResult accepted = PutMedia(server.port(), "cam", ReadFile(clip), start_s, kSecretKey);
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  std::vector<std::string> persisted = Persisted(accepted);
  ASSERT_EQ(persisted.size(), 2u) << accepted.body;
  HttpResult listed = KvsCall(server.port(), "listFragments", R"({"StreamName":"cam"})");
  ASSERT_EQ(listed.status, 200) << listed.body;
  json fragments = JsonOf(listed)["Fragments"];
  ASSERT_EQ(fragments.size(), 2u) << listed.body;
  for (size_t i = 0; i < fragments.size(); ++i) {
    EXPECT_EQ(fragments[i]["FragmentNumber"], persisted[i]);
    EXPECT_NEAR(fragments[i]["ProducerTimestamp"].get<double>(),
                static_cast<double>(start_s + static_cast<int64_t>(i)), 0.0005);
  }
}

}  // namespace
}  // namespace lastframe::testing
