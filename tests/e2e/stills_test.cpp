// Stills the way people ask for them (issue 16), end to end: any moment
// (at=), freshness (X-Frame-Age, max_age), WebP and AVIF, fit, rotate and
// overlay, animated previews and the events of GET /v1/events; every image
// decoded back by the ffmpeg CLI and compared with ffmpeg's decode of the clip
// that was pushed.

#include "core/time_format.h"
#include "e2e/e2e_util.h"
#include "support/process.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

// Decodes an image file's frames with the ffmpeg CLI (stills: one frame).
std::vector<RgbImage> DecodeWithFfmpeg(const TempDir& dir, const std::string& name,
                                       const std::string& bytes, int w, int h) {
  std::string path = dir.file(name);
  WriteFile(path, bytes);
  return DecodeAllFramesWithFfmpeg(path, w, h);
}

// The chunks of a RIFF WebP file: their four-character codes in order.
std::vector<std::string> WebpChunks(const std::string& b) {
  std::vector<std::string> out;
  if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WEBP") != 0) return out;
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    uint32_t size = static_cast<uint8_t>(b[pos + 4]) | static_cast<uint8_t>(b[pos + 5]) << 8 |
                    static_cast<uint8_t>(b[pos + 6]) << 16 |
                    static_cast<uint32_t>(static_cast<uint8_t>(b[pos + 7])) << 24;
    out.push_back(b.substr(pos, 4));
    pos += 8 + size + (size & 1);
  }
  return out;
}

class StillsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 4 s at 10 fps, a keyframe a second: 40 frames, 4 fragments; testsrc2 changes every frame.
    clip_ = TestClip(dir_, "clip.mkv", 320, 240, 10, 4, 10);
    HttpResult push = PushOneShot(port(), "cam", ReadFile(clip_));
    ASSERT_EQ(push.status, 200) << push.body;
    frames_ = DecodeAllFramesWithFfmpeg(clip_, 320, 240);
    ASSERT_EQ(frames_.size(), 40u);
    json info = JsonOf(HttpGet(port(), "/v1/streams/cam/fragments"));
    ASSERT_EQ(info["fragments"].size(), 4u) << info.dump();
  }
  uint16_t port() { return server_.port(); }
  // The producer time of the clip's first frame: the newest frame's, less 3.9 s.
  int64_t FirstFrameMs() {
    HttpResult r = HttpGet(port(), "/v1/streams/cam/latest.jpg");
    EXPECT_EQ(r.status, 200);
    auto t = ParseTimestampHeader(r.header("x-frame-timestamp"));
    return t - 3900;
  }
  static int64_t ParseTimestampHeader(const std::string& iso) {
    auto ms = lastframe::ParseTimestampMs(iso);
    EXPECT_TRUE(ms.has_value()) << iso;
    return ms.value_or(0);
  }
  // The index of the clip's frame |image| is (the best PSNR), and that PSNR.
  std::pair<size_t, double> Closest(const RgbImage& image) {
    size_t best = 0;
    double best_psnr = -1;
    for (size_t i = 0; i < frames_.size(); ++i) {
      double p = Psnr(image, frames_[i]);
      if (p > best_psnr) best_psnr = p, best = i;
    }
    return {best, best_psnr};
  }

  TempDir dir_;
  LastframeServer server_{dir_.file("data"), TestServerArgs()};
  std::string clip_;
  std::vector<RgbImage> frames_;
};

TEST_F(StillsTest, WebpAndAvifAreTheNewestFrameAsFfmpegDecodesThem) {
  for (const std::string format : {"webp", "avif"}) {
    HttpResult r = HttpGet(port(), "/v1/streams/cam/latest." + format);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "image/" + format);
    auto decoded = DecodeWithFfmpeg(dir_, "still." + format, r.body, 320, 240);
    ASSERT_EQ(decoded.size(), 1u) << format;
    auto [index, psnr] = Closest(decoded[0]);
    EXPECT_EQ(index, 39u) << format;
    EXPECT_GT(psnr, 30.0) << format;
    // The snapshot route's format= makes the same, in the store, behind a signed URL.
    json j = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot?format=" + format));
    EXPECT_EQ(j["format"], format);
    uint16_t p = 0;
    std::string target;
    SplitUrl(j["url"], &p, &target);
    EXPECT_NE(target.find("." + format + "?"), std::string::npos) << target;
    HttpResult stored = HttpGet(p, target);
    EXPECT_EQ(stored.status, 200);
    EXPECT_EQ(stored.header("content-type"), "image/" + format);
  }
}

TEST_F(StillsTest, AtShowsTheFrameOfThatMomentFromAnyRetainedFragment) {
  const int64_t first = FirstFrameMs();
  // Moments in the first, a middle and the last fragment; between frames the one shown.
  for (int index : {0, 3, 14, 25, 39}) {
    for (int64_t offset : {0, 60}) {
      const int64_t at = first + index * 100 + offset;
      HttpResult r = HttpGet(port(), "/v1/streams/cam/latest.png?at=" + std::to_string(at));
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(ParseTimestampHeader(r.header("x-frame-timestamp")), first + index * 100);
      auto decoded = DecodeWithFfmpeg(dir_, "at.png", r.body, 320, 240);
      ASSERT_EQ(decoded.size(), 1u);
      EXPECT_GT(Psnr(decoded[0], frames_[index]), 40.0) << "frame " << index << " +" << offset;
      auto [closest, psnr] = Closest(decoded[0]);
      EXPECT_EQ(closest, static_cast<size_t>(index)) << psnr;
    }
  }
  // ISO 8601 too, and the snapshot route.
  json j = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot?at=" + FormatIso8601Ms(first + 1000)));
  EXPECT_EQ(j["frame_timestamp_ms"], first + 1000);
  // Outside what is retained: 404 NoFrame.
  for (int64_t at : {first - 5000, int64_t{1000}}) {
    HttpResult r = HttpGet(port(), "/v1/streams/cam/latest.jpg?at=" + std::to_string(at));
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(JsonOf(r)["code"], "NoFrame");
  }
}

TEST_F(StillsTest, EveryAnswerSaysHowOldItsFrameIsAndMaxAgeRefusesAnOldOne) {
  HttpResult r = HttpGet(port(), "/v1/streams/cam/latest.jpg");
  ASSERT_EQ(r.status, 200);
  const int64_t age = std::stoll(r.header("x-frame-age"));
  EXPECT_GE(age, 0);
  // The push ended before the look: the newest frame arrived during it.
  json j = JsonOf(HttpGet(port(), "/v1/streams/cam/snapshot"));
  EXPECT_GE(j["frame_age_ms"].get<int64_t>(), age);
  // An old frame is refused with max_age once it is older than that, with its timestamp.
  ASSERT_TRUE(Eventually([&] {
    return std::stoll(HttpGet(port(), "/v1/streams/cam/latest.jpg").header("x-frame-age")) > 1000;
  }));
  for (const std::string route : {"latest.jpg", "snapshot", "preview.gif"}) {
    HttpResult stale = HttpGet(port(), "/v1/streams/cam/" + route + "?max_age=1");
    EXPECT_EQ(stale.status, 409) << route << ": " << stale.body;
    json e = JsonOf(stale);
    EXPECT_EQ(e["code"], "StaleFrame");
    EXPECT_GT(e["frame_age_ms"].get<int64_t>(), 1000);
    EXPECT_EQ(e["frame_timestamp_ms"], FirstFrameMs() + 3900);
  }
  HttpResult recipe = HttpGet(port(), "/snapshot?stream_name=cam&max_age=1");
  EXPECT_EQ(recipe.status, 409);
  EXPECT_EQ(JsonOf(recipe)["statusCode"], 409);
  EXPECT_EQ(HttpGet(port(), "/v1/streams/cam/latest.jpg?max_age=3600").status, 200);
}

TEST_F(StillsTest, FitRotateAndOverlayShapeTheImage) {
  auto get = [&](const std::string& query) {
    HttpResult r = HttpGet(port(), "/v1/streams/cam/latest.png?" + query);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    return r;
  };
  // contain: a 4:3 frame in a 200x200 box keeps its shape with bars above and below.
  HttpResult contain = get("width=200&height=200&fit=contain");
  auto c = DecodeWithFfmpeg(dir_, "c.png", contain.body, 200, 200);
  ASSERT_EQ(c.size(), 1u);
  auto dark = [](const RgbImage& img, int x, int y) {
    const uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
    return p[0] < 20 && p[1] < 20 && p[2] < 20;
  };
  EXPECT_TRUE(dark(c[0], 100, 2));
  EXPECT_TRUE(dark(c[0], 100, 197));
  // cover: the box is filled; fill stretches: the two differ.
  HttpResult cover = get("width=200&height=200&fit=cover");
  HttpResult fill = get("width=200&height=200");
  auto cv = DecodeWithFfmpeg(dir_, "cv.png", cover.body, 200, 200);
  auto fl = DecodeWithFfmpeg(dir_, "fl.png", fill.body, 200, 200);
  EXPECT_FALSE(dark(cv[0], 100, 2));
  EXPECT_LT(Psnr(cv[0], fl[0]), 25.0);
  // rotate=90 turns the 320x240 frame into 240x320; rotated back it is the frame.
  HttpResult rotated = get("rotate=90");
  EXPECT_EQ(rotated.header("x-image-width"), "240");
  EXPECT_EQ(rotated.header("x-image-height"), "320");
  std::string path = dir_.file("r.png");
  WriteFile(path, rotated.body);
  std::string back = dir_.file("back.png");
  std::string out;
  ASSERT_EQ(
      RunCommand({"ffmpeg", "-loglevel", "error", "-y", "-i", path, "-vf", "transpose=2", back},
                 &out),
      0)
      << out;
  auto turned = DecodeAllFramesWithFfmpeg(back, 320, 240);
  ASSERT_EQ(turned.size(), 1u);
  EXPECT_GT(Psnr(turned[0], frames_.back()), 40.0);
  // overlay=time changes the bottom-left corner only.
  auto plain = DecodeWithFfmpeg(dir_, "p.png", get("").body, 320, 240);
  auto labelled = DecodeWithFfmpeg(dir_, "l.png", get("overlay=time").body, 320, 240);
  int changed_bottom = 0, changed_top = 0;
  for (int y = 0; y < 240; ++y)
    for (int x = 0; x < 320; ++x) {
      size_t i = (static_cast<size_t>(y) * 320 + x) * 3;
      bool differs = std::abs(plain[0].pixels[i] - labelled[0].pixels[i]) > 30;
      (y >= 200 ? changed_bottom : changed_top) += differs;
    }
  EXPECT_GT(changed_bottom, 500);
  EXPECT_EQ(changed_top, 0);
}

TEST_F(StillsTest, PreviewsAnimateTheRecentPastAsFfmpegDecodesIt) {
  // 2 s at 5 fps ending at the newest frame: moments 39, 37, ... 21 (frame indices), oldest first.
  HttpResult gif = HttpGet(port(), "/v1/streams/cam/preview.gif?seconds=2&fps=5");
  ASSERT_EQ(gif.status, 200) << gif.body;
  EXPECT_EQ(gif.header("content-type"), "image/gif");
  EXPECT_EQ(gif.header("x-preview-frames"), "10");
  auto frames = DecodeWithFfmpeg(dir_, "p.gif", gif.body, 320, 240);
  ASSERT_EQ(frames.size(), 10u);
  for (size_t k = 0; k < frames.size(); ++k) {
    auto [closest, psnr] = Closest(frames[k]);
    EXPECT_EQ(closest, 21 + 2 * k) << "preview frame " << k << " psnr " << psnr;
  }
  // Ending at at=, in WebP: one ANMF chunk per frame.
  const int64_t first = FirstFrameMs();
  HttpResult webp = HttpGet(
      port(), "/v1/streams/cam/preview.webp?seconds=1&fps=4&at=" + std::to_string(first + 1500));
  ASSERT_EQ(webp.status, 200) << webp.body;
  EXPECT_EQ(webp.header("content-type"), "image/webp");
  EXPECT_EQ(ParseTimestampHeader(webp.header("x-frame-timestamp")), first + 1500);
  auto chunks = WebpChunks(webp.body);
  EXPECT_EQ(std::count(chunks.begin(), chunks.end(), "ANIM"), 1);
  EXPECT_EQ(std::count(chunks.begin(), chunks.end(), "ANMF"),
            std::stoi(webp.header("x-preview-frames")));
  EXPECT_EQ(webp.header("x-preview-frames"), "4");
  // Nothing retained in the span: 404 NoFrame; bad values: 400 naming them.
  HttpResult none = HttpGet(port(), "/v1/streams/cam/preview.gif?at=1000");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(JsonOf(none)["code"], "NoFrame");
  for (const std::string bad : {"seconds=31", "fps=0", "width=2000", "at=soon", "size=3"}) {
    HttpResult r = HttpGet(port(), "/v1/streams/cam/preview.webp?" + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(JsonOf(r)["code"], "InvalidArgument") << bad;
  }
  EXPECT_EQ(HttpGet(port(), "/v1/streams/cam/preview.mp4").status, 404);
  EXPECT_EQ(HttpGet(port(), "/v1/streams/nocam/preview.gif").status, 404);
}

TEST_F(StillsTest, EveryNewStillParameterRefusesItsBadValues) {
  const std::pair<const char*, const char*> bad[] = {
      {"latest.jpg?fit=contain&width=10", "fit"},   {"latest.jpg?rotate=45", "rotate"},
      {"latest.jpg?overlay=logo", "overlay"},       {"latest.jpg?at=tomorrow", "at"},
      {"latest.jpg?timestamp=server", "timestamp"}, {"latest.jpg?max_age=x", "max_age"},
      {"snapshot?format=tiff", "format"},           {"snapshot?fit=zoom&width=1&height=1", "fit"},
      {"latest.webp?quality=0", "quality"},         {"latest.avif?width=99999", "width"},
  };
  for (const auto& [query, param] : bad) {
    HttpResult r = HttpGet(port(), std::string("/v1/streams/cam/") + query);
    EXPECT_EQ(r.status, 400) << query;
    json e = JsonOf(r);
    EXPECT_EQ(e["code"], "InvalidArgument") << query;
    EXPECT_NE(e["message"].get<std::string>().find(param), std::string::npos) << e.dump();
  }
  HttpResult recipe = HttpGet(port(), "/snapshot?stream_name=cam&rotate=1");
  EXPECT_EQ(recipe.status, 400);
  EXPECT_EQ(JsonOf(recipe)["statusCode"], 400);
}

// Who may call the new routes: a viewer of the stream; others are refused
// (no key, an unknown key, a viewer of other streams, a cookie on a POST).
TEST(StillsAccess, TheNewRoutesAreAViewersOfTheStreamOnly) {
  TempDir dir;
  const std::string data = dir.file("data");
  const std::string viewer = MakeKey(data, {"--role", "viewer", "--streams", "cam*"});
  const std::string outsider = MakeKey(data, {"--role", "viewer", "--streams", "door*"});
  LastframeServer server(data, TestServerArgs());
  std::string clip = TestClip(dir, "clip.mkv", 160, 120, 10, 1, 10);
  ASSERT_EQ(PushOneShot(server.port(), "cam", ReadFile(clip)).status, 200);
  for (const std::string route :
       {"latest.webp", "latest.avif", "preview.webp", "preview.gif", "latest.jpg?at=0"}) {
    const std::string target = "/v1/streams/cam/" + route;
    auto as = [&](const std::string& token) {
      return HttpRequest(server.port(), "GET", target, "", {{"Authorization", "Bearer " + token}})
          .status;
    };
    EXPECT_EQ(as("lf_nosuchkey_000"), 401) << route;
    EXPECT_EQ(as(outsider), 403) << route;
    const int allowed = as(viewer);
    EXPECT_TRUE(allowed == 200 || allowed == 404) << route << ": " << allowed;  // at=0: NoFrame
  }
  // /v1/events: any key, showing only its streams; none without one.
  EXPECT_EQ(HttpRequest(server.port(), "GET", "/v1/events", "",
                        {{"Authorization", "Bearer lf_nosuchkey_000"}})
                .status,
            401);
  Process curl(
      {"curl", "-sN", "-H", "Authorization: Bearer " + outsider, server.base_url() + "/v1/events"});
  ASSERT_NE(curl.WaitForLine(R"("interval_s")", std::chrono::seconds(20)), "") << curl.Output();
  ASSERT_EQ(PushOneShot(server.port(), "door1", ReadFile(clip)).status, 200);
  ASSERT_NE(curl.WaitForLine(R"("stream":"door1")", std::chrono::seconds(20)), "") << curl.Output();
  EXPECT_EQ(curl.Output().find(R"("stream":"cam")"), std::string::npos) << curl.Output();
}

// A preview fits a 1280 px square whatever the frame's shape: a tall frame is
// bounded by its height.
TEST(PreviewBounds, ATallFrameIsBoundedByItsHeight) {
  TempDir dir;
  LastframeServer server(dir.file("data"), TestServerArgs());
  std::string clip = TestClip(dir, "tall.mkv", 64, 1600, 10, 1, 10);
  ASSERT_EQ(PushOneShot(server.port(), "tall", ReadFile(clip)).status, 200);
  HttpResult r = HttpGet(server.port(), "/v1/streams/tall/preview.gif?seconds=1&fps=2&width=1280");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-image-height"), "1280");
  EXPECT_EQ(r.header("x-image-width"), "51");
}

// GET /v1/events read by curl, a real client: the hello, the stream's state
// and newest frame, its turn to stale, its removal; callers without a key refused.
TEST(EventsTest, ARealClientSeesStatesFramesAndRemovals) {
  TempDir dir;
  std::vector<std::string> args = TestServerArgs();
  args.insert(args.end(), {"--live-window", "2"});
  LastframeServer server(dir.file("data"), args);
  const std::string url = server.base_url() + "/v1/events?interval=1";
  // Refused: a bad key, a POST, bad parameters.
  EXPECT_EQ(HttpRequest(server.port(), "GET", "/v1/events", "",
                        {{"Authorization", "Bearer lf_nosuchkey_000"}})
                .status,
            401);
  EXPECT_EQ(HttpRequest(server.port(), "POST", "/v1/events").status, 405);
  for (const std::string bad : {"interval=0", "interval=x", "streams=a,,b", "streams=../x", "x=1"})
    EXPECT_EQ(HttpGet(server.port(), "/v1/events?" + bad).status, 400) << bad;

  Process curl({"curl", "-sN", "-H", "Authorization: Bearer " + server.admin_token(), url});
  std::string hello = curl.WaitForLine(R"("interval_s":1)", std::chrono::seconds(20));
  ASSERT_NE(hello, "") << curl.Output();
  // The node as the dashboard names it: the same for the page and its events.
  EXPECT_EQ(json::parse(hello.substr(hello.find('{')))["node"],
            JsonOf(HttpGet(server.port(), "/ui/session"))["node"]);
  std::string clip = TestClip(dir, "clip.mkv", 160, 120, 10, 1, 10);
  ASSERT_EQ(PushOneShot(server.port(), "cam", ReadFile(clip)).status, 200);
  std::string live = curl.WaitForLine(R"("state":"live","stream":"cam")", std::chrono::seconds(20));
  ASSERT_NE(live, "") << curl.Output();
  json state = json::parse(live.substr(live.find('{')));
  EXPECT_EQ(state["width"], 160);
  std::string frame = curl.WaitForLine(R"("frame_age_ms")", std::chrono::seconds(20));
  ASSERT_NE(frame, "") << curl.Output();
  json f = json::parse(frame.substr(frame.find('{')));
  EXPECT_EQ(f["stream"], "cam");
  EXPECT_GE(f["frame_age_ms"].get<int64_t>(), 0);
  // The producer is done: two seconds later the stream is stale, and says so.
  EXPECT_NE(curl.WaitForLine(R"("state":"stale","stream":"cam")", std::chrono::seconds(20)), "")
      << curl.Output();
  ASSERT_EQ(HttpRequest(server.port(), "DELETE", "/v1/streams/cam").status, 204);
  EXPECT_NE(curl.WaitForLine(R"(event: removed)", std::chrono::seconds(20)), "") << curl.Output();
  // The server stops with the subscriber connected: curl sees the end of the body.
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_EQ(curl.WaitFor(std::chrono::seconds(20)), 0) << curl.Output();
}

}  // namespace
}  // namespace lastframe::testing
