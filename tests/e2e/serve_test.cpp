// lastframe serve, end to end: producers push Matroska over HTTP, viewers get
// signed URLs to the newest frame and fetch them.

#include <signal.h>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

// Follows a URL the server handed out and decodes the JPEG it serves.
RgbImage FetchJpeg(const std::string& url) {
  uint16_t port = 0;
  std::string target;
  SplitUrl(url, &port, &target);
  HttpResult r = HttpGet(port, target);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "image/jpeg");
  return DecodeJpeg(r.body);
}

json StreamInfo(uint16_t port, const std::string& name) {
  HttpResult r = HttpGet(port, "/v1/streams/" + name);
  EXPECT_EQ(r.status, 200) << r.body;
  return JsonOf(r);
}

class ServeTest : public ::testing::Test {
 protected:
  TempDir dir_;
  LastframeServer server_{dir_.file("data"), TestServerArgs()};
  uint16_t port() { return server_.port(); }
};

TEST_F(ServeTest, OneShotPushThenSnapshotIsTheClipsLastFrame) {
  std::string clip = TestClip(dir_, "clip.mkv", 320, 240, 10, 3.2, 10);
  HttpResult push = PushOneShot(port(), "cam", ReadFile(clip));
  ASSERT_EQ(push.status, 200) << push.body;
  auto acks = Acks(push.body);
  int persisted = 0;
  for (const auto& a : acks) persisted += a["EventType"] == "PERSISTED";
  EXPECT_EQ(persisted, 4);  // 32 frames, a keyframe every 10

  HttpResult snap = HttpGet(port(), "/v1/streams/cam/snapshot?quality=95&expires=120");
  ASSERT_EQ(snap.status, 200) << snap.body;
  json j = JsonOf(snap);
  EXPECT_EQ(j["width"], 320);
  EXPECT_EQ(j["height"], 240);
  EXPECT_EQ(j["expires_in"], 120);
  EXPECT_EQ(j["fragment_number"], acks.back()["FragmentNumber"]);
  EXPECT_GT(j["bytes"].get<int>(), 1000);
  std::string url = j["url"];
  EXPECT_NE(url.find("X-Amz-Algorithm=AWS4-HMAC-SHA256"), std::string::npos);
  EXPECT_NE(url.find("X-Amz-Expires=120"), std::string::npos);
  EXPECT_NE(url.find(std::string("X-Amz-Credential=") + kAccessKey), std::string::npos);

  RgbImage got = FetchJpeg(url);
  auto frames = DecodeAllFramesWithFfmpeg(clip, 320, 240);
  ASSERT_EQ(frames.size(), 32u);
  double to_last = Psnr(got, frames.back());
  double to_previous = Psnr(got, frames[frames.size() - 2]);
  EXPECT_GT(to_last, 32.0);
  EXPECT_GT(to_last, to_previous + 3.0) << to_last << " vs " << to_previous;
}

TEST_F(ServeTest, RecipeShapedSnapshot) {
  std::string clip = TestClip(dir_, "clip.mkv", 160, 120, 10, 1, 10);
  ASSERT_EQ(PushOneShot(port(), "door", ReadFile(clip)).status, 200);
  HttpResult r = HttpGet(port(), "/snapshot?stream_name=door");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = JsonOf(r);
  EXPECT_EQ(j["statusCode"], 200);
  ASSERT_TRUE(j["body"].is_string());
  EXPECT_EQ(j["body"], j["url"]);
  EXPECT_EQ(FetchJpeg(j["body"]).width, 160);

  HttpResult missing = HttpGet(port(), "/snapshot?stream_name=nobody");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(JsonOf(missing)["statusCode"], 404);
  EXPECT_EQ(JsonOf(missing)["code"], "StreamNotFound");
  HttpResult no_name = HttpGet(port(), "/snapshot");
  EXPECT_EQ(no_name.status, 400);
  EXPECT_EQ(JsonOf(no_name)["statusCode"], 400);
}

TEST_F(ServeTest, FfmpegChunkedPushOfH264AndH265) {
  std::string h264 = TestClip(dir_, "a.mkv", 320, 240, 10, 3, 10);
  std::string h265 = MakeClip(
      dir_.file("b.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "2", "-c:v",
                           "libx265", "-x265-params", "keyint=10:log-level=error"});
  ASSERT_EQ(PushWithFfmpeg(port(), "avc", h264), 0);
  ASSERT_EQ(PushWithFfmpeg(port(), "hevc", h265), 0);
  // ffmpeg returns once its bytes are sent; the server parses them in its own time.
  for (auto [name, fragments, codec] :
       {std::tuple{"avc", 3, "h264"}, std::tuple{"hevc", 2, "hevc"}}) {
    EXPECT_TRUE(Eventually([&] {
      json s = StreamInfo(port(), name);
      return s["producer_connected"] == false && s["fragment_count"] == fragments;
    })) << StreamInfo(port(), name).dump();
    json s = StreamInfo(port(), name);
    EXPECT_EQ(s["codec"], codec);
    EXPECT_EQ(s["width"], 320);
    EXPECT_NEAR(s["fps"].get<double>(), 10.0, 0.01);
    HttpResult img = HttpGet(port(), std::string("/v1/streams/") + name + "/latest.jpg");
    ASSERT_EQ(img.status, 200);
    EXPECT_EQ(img.header("content-type"), "image/jpeg");
    EXPECT_FALSE(img.header("x-fragment-number").empty());
    EXPECT_EQ(DecodeJpeg(img.body).height, 240);
  }
}

TEST_F(ServeTest, LivePushSnapshotsShowNewerFrames) {
  // A camera-style live producer: real time, ten frames a second, a keyframe a second.
  Process producer(LiveProducer(port(), "live", "320x240"));
  json first;
  ASSERT_TRUE(Eventually([&] {
    HttpResult r = HttpGet(port(), "/v1/streams/live/snapshot");
    if (r.status != 200) return false;
    first = JsonOf(r);
    return true;
  }));
  EXPECT_EQ(StreamInfo(port(), "live")["state"], "live");
  json second;
  ASSERT_TRUE(Eventually([&] {
    HttpResult r = HttpGet(port(), "/v1/streams/live/snapshot");
    if (r.status != 200) return false;
    second = JsonOf(r);
    return second["frame_timestamp_ms"] > first["frame_timestamp_ms"];
  })) << "no newer frame than "
      << first.dump();
  // A low-delay stream keeps its decoder warm: a look at a newer frame of the
  // same fragment feeds it only the new frames, no keyframe-to-end decode.
  EXPECT_TRUE(Eventually([&] {
    HttpGet(port(), "/v1/streams/live/snapshot");
    return Metric(port(), "lastframe_warm_decoder_hits_total") > 0;
  })) << HttpGet(port(), "/metrics").body;
  EXPECT_EQ(Metric(port(), "lastframe_warm_decoders"), 1);
  // Each URL shows its own frame, and both still work.
  EXPECT_NE(first["url"], second["url"]);
  RgbImage a = FetchJpeg(first["url"]);
  RgbImage b = FetchJpeg(second["url"]);
  EXPECT_LT(Psnr(a, b), 30.0);  // testsrc2 moves: different frames differ
  producer.Signal(SIGKILL);
  producer.Wait();
  // The producer vanished; its stream stays and the server stays healthy.
  EXPECT_TRUE(
      Eventually([&] { return StreamInfo(port(), "live")["producer_connected"] == false; }));
  EXPECT_EQ(HttpGet(port(), "/healthz").status, 200);
  EXPECT_EQ(HttpGet(port(), "/v1/streams/live/snapshot").status, 200);
}

TEST_F(ServeTest, ResizeAndPngAndRedirect) {
  std::string clip = TestClip(dir_, "clip.mkv", 640, 480, 10, 1, 10);
  ASSERT_EQ(PushOneShot(port(), "cam", ReadFile(clip)).status, 200);
  json j = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot?width=320"));
  EXPECT_EQ(j["width"], 320);
  EXPECT_EQ(j["height"], 240);
  RgbImage small = FetchJpeg(j["url"]);
  EXPECT_EQ(small.width, 320);
  EXPECT_EQ(small.height, 240);

  json png = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot?format=png&height=120"));
  EXPECT_EQ(png["format"], "png");
  EXPECT_EQ(png["width"], 160);
  uint16_t p = 0;
  std::string target;
  SplitUrl(png["url"], &p, &target);
  HttpResult img = HttpGet(p, target);
  EXPECT_EQ(img.header("content-type"), "image/png");
  EXPECT_EQ(img.body.substr(1, 3), "PNG");

  // One fragment of ten frames: mode=keyframe shows its first frame, the default its last,
  // each the picture ffmpeg decodes there (testsrc2 changes every frame).
  json keyframe = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot?mode=keyframe"));
  json newest = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot"));
  EXPECT_EQ(
      newest["frame_timestamp_ms"].get<int64_t>() - keyframe["frame_timestamp_ms"].get<int64_t>(),
      900);
  EXPECT_EQ(keyframe["fragment_number"], newest["fragment_number"]);
  auto frames = DecodeAllFramesWithFfmpeg(clip, 640, 480);
  ASSERT_EQ(frames.size(), 10u);
  RgbImage keyframe_image = FetchJpeg(keyframe["url"]);
  RgbImage newest_image = FetchJpeg(newest["url"]);
  EXPECT_GT(Psnr(keyframe_image, frames.front()), 32.0);
  EXPECT_LT(Psnr(keyframe_image, frames.back()), 25.0);
  EXPECT_GT(Psnr(newest_image, frames.back()), 32.0);

  HttpResult redirect = HttpGet(port(), "/v1/streams/cam/snapshot?redirect=1");
  EXPECT_EQ(redirect.status, 302);
  EXPECT_EQ(redirect.header("location"), JsonOf(redirect)["url"]);
  SplitUrl(redirect.header("location"), &p, &target);
  EXPECT_EQ(HttpGet(p, target).status, 200);
}

TEST_F(ServeTest, StreamsListAndHealth) {
  std::string clip = TestClip(dir_, "clip.mkv", 160, 120, 5, 4, 10);
  ASSERT_EQ(PushOneShot(port(), "a", ReadFile(clip)).status, 200);
  ASSERT_EQ(PushOneShot(port(), "b", ReadFile(clip)).status, 200);
  HttpResult r = HttpGet(port(), "/v1/streams");
  ASSERT_EQ(r.status, 200);
  json streams = JsonOf(r)["streams"];
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[0]["name"], "a");
  EXPECT_EQ(streams[0]["fragment_count"], 2);
  EXPECT_EQ(streams[0]["codec"], "h264");
  EXPECT_NEAR(streams[0]["fps"].get<double>(), 5.0, 0.01);
  EXPECT_GT(streams[0]["bitrate_bps"].get<int64_t>(), 0);
  EXPECT_TRUE(streams[0]["last_fragment_time"].is_string());
  EXPECT_EQ(JsonOf(HttpGet(port(), "/healthz"))["status"], "ok");
}

TEST(ServeLifecycle, SigtermDrainsAndExitsZero) {
  TempDir dir;
  LastframeServer server(dir.file("data"), TestServerArgs());
  EXPECT_EQ(HttpGet(server.port(), "/healthz").status, 200);
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_NE(server.process().Output().find("stopped"), std::string::npos);
}

TEST(ServeLifecycle, DemoStreamAnswersOutOfTheBox) {
  TempDir dir;
  // No credentials given: the server makes its own and keeps them private.
  LastframeServer server(dir.file("data"), {"--demo"});
  json j;
  ASSERT_TRUE(Eventually([&] {
    HttpResult r = HttpGet(server.port(), "/snapshot?stream_name=demo");
    if (r.status != 200) return false;
    j = JsonOf(r);
    return true;
  }));
  RgbImage img = FetchJpeg(j["body"]);
  EXPECT_EQ(img.width, 640);
  EXPECT_EQ(img.height, 480);
  EXPECT_TRUE(std::filesystem::exists(dir.file("data") + "/credentials.json"));
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace lastframe::testing
