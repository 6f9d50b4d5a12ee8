// Clips made by ffmpeg in the test, pushed over real HTTP two ways (ffmpeg's
// own chunked POST and a plain one-shot POST): one fragment per keyframe,
// each starting at a keyframe as ffprobe (independent of lastframe) sees them.

#include <sstream>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

struct ClipCase {
  std::string name;
  std::vector<std::string> args;
};

void PrintTo(const ClipCase& c, std::ostream* os) { *os << c.name; }

// Presentation times (ms) of the video keyframes of |clip|, by ffprobe.
std::vector<int64_t> KeyframeTimesMs(const std::string& clip) {
  std::string out;
  EXPECT_EQ(RunCommand({"ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        "packet=pts_time,flags", "-of", "csv=p=0", clip},
                       &out),
            0)
      << out;
  std::vector<int64_t> times;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t comma = line.find(',');
    if (comma == std::string::npos) continue;
    if (line.find('K', comma) != std::string::npos)
      times.push_back(static_cast<int64_t>(std::llround(std::stod(line.substr(0, comma)) * 1000)));
  }
  std::sort(times.begin(), times.end());
  return times;
}

class PushedClips : public ::testing::TestWithParam<ClipCase> {};

TEST_P(PushedClips, OneFragmentPerKeyframeBothWays) {
  TempDir dir;
  LastframeServer server(dir.file("data"), TestServerArgs());
  std::string clip = MakeClip(dir.file("clip.mkv"), GetParam().args);
  std::vector<int64_t> keyframes = KeyframeTimesMs(clip);
  ASSERT_GE(keyframes.size(), 2u);

  HttpResult push = PushOneShot(server.port(), "oneshot", ReadFile(clip));
  ASSERT_EQ(push.status, 200);
  std::vector<int64_t> timecodes;
  for (const auto& ack : Acks(push.body)) {
    EXPECT_NE(ack["EventType"], "ERROR") << ack.dump();
    if (ack["EventType"] == "RECEIVED") timecodes.push_back(ack["FragmentTimecode"]);
  }
  EXPECT_EQ(timecodes, keyframes);

  ASSERT_EQ(PushWithFfmpeg(server.port(), "chunked", clip), 0);
  nlohmann::json info;
  EXPECT_TRUE(Eventually([&] {
    info = JsonOf(HttpGet(server.port(), "/v1/streams/chunked"));
    return info["producer_connected"] == false &&
           info["fragment_count"] == static_cast<int>(keyframes.size());
  })) << info.dump();
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams/chunked/snapshot").status, 200);
}

const std::vector<std::string> kTestSource = {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10"};

std::vector<std::string> With(std::vector<std::string> extra) {
  std::vector<std::string> args = kTestSource;
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, PushedClips,
    ::testing::Values(
        ClipCase{"h264", With({"-t", "3", "-c:v", "libx264", "-g", "10", "-bf", "0"})},
        ClipCase{"h264_bframes", With({"-t", "4", "-c:v", "libx264", "-g", "12", "-bf", "3",
                                       "-sc_threshold", "0"})},
        ClipCase{"h265", With({"-t", "3", "-c:v", "libx265", "-x265-params",
                               "keyint=10:min-keyint=10:scenecut=0:log-level=error"})},
        ClipCase{"audio_track_first",
                 {"-f",   "lavfi",   "-i",   "testsrc2=size=320x240:rate=10",
                  "-f",   "lavfi",   "-i",   "sine=frequency=440:sample_rate=48000",
                  "-t",   "3",       "-map", "1:a",
                  "-map", "0:v",     "-c:a", "libopus",
                  "-c:v", "libx264", "-g",   "10",
                  "-bf",  "0"}}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace lastframe::testing
