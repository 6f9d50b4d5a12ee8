// Fragment listings and clips: a pushed clip comes back as the fragments it
// was cut into, and as MP4 or Matroska files that ffprobe plays with the
// expected duration and frame count.

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

struct Probe {
  std::string codec;
  int frames = 0;
  double duration_s = 0;
};

// What ffprobe (an independent reader) finds in |path|.
Probe FfprobeFile(const std::string& path) {
  std::string out;
  EXPECT_EQ(RunCommand({"ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=codec_name,nb_read_frames:format=duration", "-of",
                        "json", path},
                       &out),
            0)
      << out;
  json j = json::parse(out.substr(out.find('{')), nullptr, false);
  Probe p;
  if (j.is_discarded()) return p;
  p.codec = j["streams"][0]["codec_name"];
  p.frames = std::stoi(j["streams"][0]["nb_read_frames"].get<std::string>());
  p.duration_s = std::stod(j["format"]["duration"].get<std::string>());
  return p;
}

class ClipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 4 s at 10 fps, a keyframe every second: four fragments of ten frames.
    clip_ = TestClip(dir_, "four.mkv", 160, 120, 10, 4, 10);
    ASSERT_EQ(PushOneShot(port(), "cam", ReadFile(clip_)).status, 200);
    json list = JsonOf(HttpGet(port(), "/v1/streams/cam/fragments"));
    fragments_ = list["fragments"];
  }
  uint16_t port() { return server_.port(); }

  TempDir dir_;
  LastframeServer server_{dir_.file("data"), TestServerArgs()};
  std::string clip_;
  json fragments_;
};

TEST_F(ClipTest, FragmentsAreListedWithTheirTimes) {
  ASSERT_EQ(fragments_.size(), 4u) << fragments_.dump();
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(fragments_[i]["frames"], 10);
    EXPECT_EQ(fragments_[i]["duration_ms"], 1000);
    EXPECT_TRUE(fragments_[i]["complete"].get<bool>());
    if (i > 0) {
      EXPECT_EQ(fragments_[i]["producer_timestamp_ms"].get<int64_t>() -
                    fragments_[i - 1]["producer_timestamp_ms"].get<int64_t>(),
                1000);
    }
  }
  // A range on the producer's timeline, in ISO 8601 or epoch milliseconds.
  int64_t second = fragments_[1]["producer_timestamp_ms"];
  std::string start = fragments_[1]["producer_timestamp"];
  json middle = JsonOf(HttpGet(port(), "/v1/streams/cam/fragments?start=" + start +
                                           "&end=" + std::to_string(second + 1500)));
  ASSERT_EQ(middle["fragments"].size(), 2u) << middle.dump();
  EXPECT_EQ(middle["fragments"][0]["fragment_number"], fragments_[1]["fragment_number"]);
  json by_server = JsonOf(
      HttpGet(port(), "/v1/streams/cam/fragments?timestamp=server&start=" +
                          std::to_string(fragments_[3]["server_timestamp_ms"].get<int64_t>())));
  EXPECT_GE(by_server["fragments"].size(), 1u);
}

TEST_F(ClipTest, ClipsPlayWithTheExpectedDuration) {
  ASSERT_EQ(fragments_.size(), 4u);
  int64_t second = fragments_[1]["producer_timestamp_ms"];
  std::string range = "start=" + std::to_string(second) + "&end=" + std::to_string(second + 1500);
  for (const std::string format : {"mp4", "mkv"}) {
    HttpResult r = HttpGet(port(), "/v1/streams/cam/clip?format=" + format + "&" + range);
    ASSERT_EQ(r.status, 200) << r.body;  // the error says why
    EXPECT_EQ(r.header("content-type"), format == "mp4" ? "video/mp4" : "video/x-matroska");
    EXPECT_NE(r.header("content-disposition").find("." + format), std::string::npos);
    std::string path = dir_.file("clip." + format);
    WriteFile(path, r.body);
    Probe p = FfprobeFile(path);
    EXPECT_EQ(p.codec, "h264");
    EXPECT_EQ(p.frames, 20) << format;  // two whole fragments
    EXPECT_NEAR(p.duration_s, 2.0, 0.15) << format;
  }
  // The whole stream, and the frames match ffmpeg's decode of the original.
  HttpResult all = HttpGet(port(), "/v1/streams/cam/clip");
  ASSERT_EQ(all.status, 200);
  WriteFile(dir_.file("all.mp4"), all.body);
  EXPECT_EQ(FfprobeFile(dir_.file("all.mp4")).frames, 40);
  auto original = DecodeAllFramesWithFfmpeg(clip_, 160, 120);
  auto remuxed = DecodeAllFramesWithFfmpeg(dir_.file("all.mp4"), 160, 120);
  ASSERT_EQ(remuxed.size(), original.size());
  EXPECT_GT(Psnr(remuxed.back(), original.back()), 60.0);  // the same bits, not re-encoded
}

TEST_F(ClipTest, BadRangesAndFormatsAreRefused) {
  auto expect = [&](const std::string& target, int status, const std::string& code) {
    HttpResult r = HttpGet(port(), target);
    EXPECT_EQ(r.status, status) << target << " " << r.body;
    EXPECT_EQ(JsonOf(r)["code"], code) << target;
  };
  expect("/v1/streams/cam/clip?format=avi", 400, "InvalidArgument");
  expect("/v1/streams/cam/clip?start=yesterday", 400, "InvalidArgument");
  expect("/v1/streams/cam/clip?start=2026-13-01T00:00:00Z", 400, "InvalidArgument");
  expect("/v1/streams/cam/clip?start=2000&end=1000", 400, "InvalidArgument");
  expect("/v1/streams/cam/fragments?timestamp=local", 400, "InvalidArgument");
  expect("/v1/streams/cam/clip?start=1000&end=2000", 404, "NoFragments");
  expect("/v1/streams/nosuch/clip", 404, "StreamNotFound");
  expect("/v1/streams/nosuch/fragments", 404, "StreamNotFound");
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/streams/cam/clip").status, 405);
}

}  // namespace
}  // namespace lastframe::testing
