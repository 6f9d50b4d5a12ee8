// Pulled streams end to end: a real RTSP camera (GStreamer's RTSP server,
// tests/rtsp/rtsp_server.py) pulled over TCP and UDP through its restart, a
// looped file from --config, and the stream API's bad input.

#include <signal.h>

#include "core/clock.h"
#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

// GStreamer's RTSP server serving live colour bars at 320x240, 10 fps.
class RtspCamera {
 public:
  RtspCamera(const TempDir& dir, uint16_t port = 0) {
    reference_path_ = dir.file("reference.yuv");
    process_ = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/python3", std::string(LASTFRAME_SOURCE_DIR) + "/tests/rtsp/rtsp_server.py",
        "--port", std::to_string(port), "--reference", reference_path_});
    const std::string ready = "rtsp server listening on ";
    std::string line = process_->WaitForLine(ready, std::chrono::seconds(60));
    EXPECT_FALSE(line.empty()) << process_->Output();
    url_ = line.substr(line.find(ready) + ready.size());
    while (!url_.empty() && (url_.back() == '\n' || url_.back() == '\r')) url_.pop_back();
    port_ = static_cast<uint16_t>(std::stoi(url_.substr(url_.rfind(':') + 1)));
  }
  ~RtspCamera() { Stop(); }
  void Stop() {
    if (process_->running()) {
      process_->Signal(SIGTERM);
      process_->Wait();
    }
  }
  const std::string& url() const { return url_; }
  uint16_t port() const { return port_; }
  // The camera's picture as GStreamer hands it to the encoder, made RGB by the ffmpeg CLI.
  RgbImage Reference() const {
    std::string rgb = reference_path_ + ".rgb";
    std::string out;
    EXPECT_EQ(RunCommand({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-s", "320x240", "-i", reference_path_, "-f",
                          "rawvideo", "-pix_fmt", "rgb24", rgb},
                         &out),
              0)
        << out;
    RgbImage img{320, 240, {}};
    std::string raw = ReadFile(rgb);
    img.pixels.assign(raw.begin(), raw.end());
    EXPECT_EQ(img.pixels.size(), 320u * 240 * 3);
    return img;
  }

 private:
  std::unique_ptr<Process> process_;
  std::string reference_path_;
  std::string url_;
  uint16_t port_ = 0;
};

json Stream(uint16_t port, const std::string& name) {
  return JsonOf(HttpGet(port, "/v1/streams/" + name));
}

// The newest frame of |name| as JPEG q95, decoded; its frame time in |frame_ms|.
RgbImage LatestImage(uint16_t port, const std::string& name, int64_t* frame_ms) {
  HttpResult r = HttpGet(port, "/v1/streams/" + name + "/snapshot?quality=95");
  EXPECT_EQ(r.status, 200) << r.body;
  json j = JsonOf(r);
  *frame_ms = j["frame_timestamp_ms"].get<int64_t>();
  HttpResult image = HttpGet(
      port, j["url"].get<std::string>().substr(j["url"].get<std::string>().find("/lastframe/")));
  EXPECT_EQ(image.status, 200);
  return DecodeJpeg(image.body);
}

class RtspPull : public ::testing::TestWithParam<std::string> {
 protected:
  TempDir dir_;
  LastframeServer server_{dir_.file("data"), LoopbackPullArgs()};
};

TEST_P(RtspPull, PullsACameraAndReconnectsAfterItRestarts) {
  const std::string transport = GetParam();
  auto camera = std::make_unique<RtspCamera>(dir_);
  const uint16_t port = server_.port();
  HttpResult added = HttpRequest(
      port, "POST", "/v1/streams",
      json{{"name", "gate"}, {"url", camera->url()}, {"rtsp_transport", transport}}.dump());
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(added.header("location"), "/v1/streams/gate");
  ASSERT_TRUE(Eventually([&] { return Stream(port, "gate")["fragment_count"].get<int>() >= 2; },
                         std::chrono::seconds(30)))
      << Stream(port, "gate").dump();
  json live = Stream(port, "gate");
  EXPECT_EQ(live["state"], "live");
  EXPECT_EQ(live["source"]["state"], "live");
  EXPECT_EQ(live["source"]["rtsp_transport"], transport);
  EXPECT_EQ(live["codec"], "h264");
  EXPECT_EQ(live["width"], 320);

  RgbImage reference = camera->Reference();
  int64_t frame_ms = 0;
  EXPECT_GT(Psnr(LatestImage(port, "gate", &frame_ms), reference), 35.0);

  // The camera goes away: lastframe notices, keeps retrying, and says why.
  const uint16_t camera_port = camera->port();
  camera.reset();
  ASSERT_TRUE(Eventually([&] { return Stream(port, "gate")["source"]["state"] != "live"; }));
  ASSERT_TRUE(Eventually([&] { return !Stream(port, "gate")["source"]["last_error"].is_null(); }));
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200);

  // Back on the same address: lastframe reconnects by itself and shows new frames.
  int64_t restarted_ms = SystemClock::Get().NowMs();
  camera = std::make_unique<RtspCamera>(dir_, camera_port);
  ASSERT_TRUE(Eventually(
      [&] {
        json j = Stream(port, "gate");
        return j["source"]["state"] == "live" && !j["last_frame_time"].is_null() &&
               j["fragment_count"].get<int>() >= 3;
      },
      std::chrono::seconds(60)))
      << Stream(port, "gate").dump();
  json again = Stream(port, "gate");
  EXPECT_GE(again["source"]["reconnects"].get<int>(), 1);
  ASSERT_TRUE(Eventually([&] {
    int64_t ms = 0;
    RgbImage img = LatestImage(port, "gate", &ms);
    frame_ms = ms;
    return ms >= restarted_ms;
  }));
  EXPECT_GT(Psnr(LatestImage(port, "gate", &frame_ms), reference), 35.0);

  // Deleted: no longer pulled, no longer listed.
  EXPECT_EQ(HttpRequest(port, "DELETE", "/v1/streams/gate").status, 204);
  EXPECT_EQ(HttpGet(port, "/v1/streams/gate").status, 404);
}

INSTANTIATE_TEST_SUITE_P(Transports, RtspPull, ::testing::Values("tcp", "udp"));

TEST(ConfigSources, ALoopedFileFromTheConfigIsPulled) {
  TempDir dir;
  std::string clip = MakeClip(dir.file("loop.mkv"),
                              {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "1",
                               "-c:v", "libx264", "-g", "5", "-bf", "0", "-pix_fmt", "yuv420p"});
  WriteFile(dir.file("streams.toml"), "[[streams]]\nname = \"looped\"\nurl = \"file://" + clip +
                                          "\"\n\n[[streams]]\nname = \"far\"\n"
                                          "url = \"rtsp://user:topsecret@127.0.0.1:1/x\"\n");
  auto args = LoopbackPullArgs();
  args.insert(args.end(), {"--config", dir.file("streams.toml")});
  LastframeServer server(dir.file("data"), args);
  ASSERT_TRUE(Eventually([&] {
    return Stream(server.port(), "looped")["fragment_count"].get<int>() >= 3;
  })) << Stream(server.port(), "looped").dump();
  int64_t frame_ms = 0;
  RgbImage latest = LatestImage(server.port(), "looped", &frame_ms);
  double best = 0;
  for (const RgbImage& frame : DecodeAllFramesWithFfmpeg(clip, 160, 120))
    best = std::max(best, Psnr(latest, frame));
  EXPECT_GT(best, 30.0);  // one of the file's own frames
  // The unreachable camera is listed with its error; its password is not.
  ASSERT_TRUE(Eventually(
      [&] { return Stream(server.port(), "far")["source"]["reconnects"].get<int>() >= 1; }));
  HttpResult list = HttpGet(server.port(), "/v1/streams");
  EXPECT_EQ(list.body.find("topsecret"), std::string::npos);
  EXPECT_NE(list.body.find("rtsp://user:***@127.0.0.1:1/x"), std::string::npos);
  EXPECT_EQ(server.process().Output().find("topsecret"), std::string::npos);
}

TEST(ConfigSources, ABadConfigIsRefusedAtStart) {
  TempDir dir;
  WriteFile(dir.file("bad.toml"), "[[streams]]\nname = \"x\"\nurl = \"ftp://h/x\"\n");
  std::string out;
  EXPECT_EQ(RunLastframe({"serve", "--listen", "127.0.0.1:0", "--data-dir", dir.file("data"),
                          "--config", dir.file("bad.toml")},
                         &out),
            2);
  EXPECT_NE(out.find("unsupported source URL scheme"), std::string::npos) << out;
}

TEST(StreamApi, BadSourcesAreRefusedAndDeadCamerasBlockNothing) {
  TempDir dir;
  LastframeServer server(dir.file("data"), LoopbackPullArgs());
  const uint16_t port = server.port();
  auto post = [&](const std::string& body) {
    return HttpRequest(port, "POST", "/v1/streams", body);
  };
  auto expect = [](const HttpResult& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(JsonOf(r)["code"], code) << r.body;
  };
  expect(post("not json"), 400, "InvalidArgument");
  expect(post(R"({"url":"rtsp://h/x"})"), 400, "MissingParameter");
  expect(post(R"({"name":"a","url":7})"), 400, "InvalidArgument");
  expect(post(R"({"name":"a","retention_s":0})"), 400, "InvalidArgument");
  expect(post(R"({"name":"a","retention_s":"1h"})"), 400, "InvalidArgument");
  expect(post(R"({"name":"a","url":"file:///etc/passwd"})"), 400, "InvalidSourceUrl");
  expect(post(R"({"name":"a","url":"gopher://h/x"})"), 400, "InvalidSourceUrl");
  expect(post(R"({"name":"a","url":"rtsp://h/x","rtsp_transport":"carrier-pigeon"})"), 400,
         "InvalidArgument");
  expect(post(R"({"name":"a b","url":"rtsp://h/x"})"), 400, "InvalidStreamName");
  expect(post(R"({"name":"a","url":"rtsp://h/x","extra":1})"), 400, "InvalidArgument");
  expect(HttpRequest(port, "DELETE", "/v1/streams/nosuch"), 404, "StreamNotFound");

  // A camera that refuses, and one that accepts but never answers.
  SilentListener hung;
  EXPECT_EQ(post(R"({"name":"refused","url":"rtsp://127.0.0.1:1/x"})").status, 201);
  EXPECT_EQ(
      post(json{{"name", "hung"}, {"url", "rtsp://127.0.0.1:" + std::to_string(hung.port()) + "/x"}}
               .dump())
          .status,
      201);
  expect(post(R"({"name":"refused","url":"rtsp://127.0.0.1:2/y"})"), 409, "StreamExists");

  // Meanwhile a pushed stream works as ever, and cannot be taken over by a source.
  std::string clip = TestClip(dir, "pushed.mkv", 160, 120, 10, 2, 10);
  ASSERT_EQ(PushOneShot(port, "pushed", ReadFile(clip)).status, 200);
  EXPECT_EQ(HttpGet(port, "/v1/streams/pushed/snapshot").status, 200);
  ASSERT_TRUE(Eventually([&] { return Stream(port, "refused")["state"] == "error"; }));
  EXPECT_NE(Stream(port, "refused")["last_error"].get<std::string>().find("refused"),
            std::string::npos);
  EXPECT_EQ(Stream(port, "hung")["state"], "connecting");
  HttpResult none = HttpGet(port, "/v1/streams/refused/snapshot");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(JsonOf(none)["code"], "NoFrame");

  EXPECT_EQ(HttpRequest(port, "DELETE", "/v1/streams/hung").status, 204);
  EXPECT_EQ(HttpRequest(port, "DELETE", "/v1/streams/refused").status, 204);
  EXPECT_EQ(HttpRequest(port, "DELETE", "/v1/streams/pushed").status, 204);
  EXPECT_EQ(JsonOf(HttpGet(port, "/v1/streams"))["streams"].size(), 0u);
}

}  // namespace
}  // namespace lastframe::testing
