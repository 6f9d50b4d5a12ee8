// The dashboard in Debian's headless Chromium (issue 16), driven by
// tests/ui/ui_check.py (selenium): the real server with keys, three live
// producers pushing real Matroska (ffmpeg), one more stream the viewer's key
// may not see. The checker signs in through the form, sees three tiles load,
// a tile refresh on its frame events, the stream page's slider show an older
// frame, and, when it prints "STOP <stream>", this driver stops that producer
// and the checker waits for the tile to turn stale. Its screenshots go to
// build/tests/artefacts/ui/. Heavy: run once, in the normal build.

#include <csignal>
#include <filesystem>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

std::string SourceDir() { return LASTFRAME_SOURCE_DIR; }

std::string MakeKey(const std::string& data_dir, const std::vector<std::string>& args) {
  std::vector<std::string> lastframe_args = {"keys", "create", "--data-dir", data_dir};
  lastframe_args.insert(lastframe_args.end(), args.begin(), args.end());
  std::string out;
  EXPECT_EQ(RunLastframe(lastframe_args, &out), 0) << out;
  return TokenIn(out);
}

// A camera: ffmpeg pushing testsrc2 in real time (10 fps, a keyframe a
// second) for up to |seconds|, with a producer's key.
std::vector<std::string> Camera(uint16_t port, const std::string& stream, const std::string& token,
                                int seconds) {
  return {"ffmpeg",
          "-hide_banner",
          "-loglevel",
          "error",
          "-re",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=640x360:rate=10",
          "-t",
          std::to_string(seconds),
          "-c:v",
          "libx264",
          "-g",
          "10",
          "-bf",
          "0",
          "-tune",
          "zerolatency",
          "-pix_fmt",
          "yuv420p",
          "-f",
          "matroska",
          "-live",
          "1",
          "-cluster_time_limit",
          "200",
          "-flush_packets",
          "1",
          "-method",
          "POST",
          "-chunked_post",
          "1",
          "-headers",
          "x-amzn-stream-name: " + stream + "\r\nAuthorization: Bearer " + token + "\r\n",
          "http://127.0.0.1:" + std::to_string(port) + "/putMedia"};
}

TEST(DashboardInChromium, SignInTilesRefreshStaleSliderAndScreenshots) {
  TempDir dir;
  const std::string data = dir.file("data");
  const std::string admin = MakeKey(data, {"--role", "admin"});
  const std::string viewer = MakeKey(data, {"--role", "viewer", "--streams", "cam*"});
  // A short live window: a stopped camera's tile turns stale 3 s after its last frame.
  LastframeServer server(data, {"--auth", "on", "--retention", "600", "--live-window", "3"});
  const uint16_t port = server.port();

  const std::vector<std::string> streams = {"cam1", "cam2", "cam3"};
  std::vector<std::unique_ptr<Process>> cameras;
  for (const std::string& s : streams)
    cameras.push_back(std::make_unique<Process>(Camera(port, s, admin, 110)));
  // A stream the viewer's key does not cover: never a tile.
  HttpResult pushed = HttpRequest(
      port, "POST", "/putMedia", ReadFile(TestClip(dir, "other.mkv", 160, 120, 10, 2, 10)),
      {{"x-amzn-stream-name", "other"}, {"Authorization", "Bearer " + admin}});
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  // Every camera live before the browser looks.
  ASSERT_TRUE(Eventually([&] {
    HttpResult r =
        HttpRequest(port, "GET", "/v1/streams", "", {{"Authorization", "Bearer " + viewer}});
    auto list = nlohmann::json::parse(r.body, nullptr, false);
    if (list.is_discarded() || list["streams"].size() != streams.size()) return false;
    for (const auto& s : list["streams"])
      if (s["state"] != "live") return false;
    return true;
  })) << "the cameras never went live";

  const std::string artefacts = LASTFRAME_UI_ARTEFACTS;
  std::filesystem::create_directories(artefacts);
  for (const char* shot : {"grid-desktop.png", "grid-phone.png", "stream.png"})
    std::filesystem::remove(artefacts + "/" + shot);
  Process checker({"/usr/bin/python3", SourceDir() + "/tests/ui/ui_check.py", "--base",
                   server.base_url(), "--key", viewer, "--streams", "cam1,cam2,cam3", "--stop",
                   "cam3", "--artefacts", artefacts});
  // The checker says when to stop cam3's producer, then waits for its tile to turn stale.
  std::string stop = checker.WaitForLine("STOP cam3", std::chrono::seconds(90));
  ASSERT_FALSE(stop.empty()) << checker.Output();
  cameras[2]->Signal(SIGKILL);
  cameras[2]->Wait();
  int rc = checker.WaitFor(std::chrono::seconds(90));
  const std::string out = checker.Output();
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\nui checks passed"), std::string::npos) << out;
  for (const char* check :
       {"ok: signed in through the form", "ok: 3 tiles", "refreshed on its frame events",
        "turned stale", "shows an older frame", "fits a phone's width"})
    EXPECT_NE(out.find(check), std::string::npos) << check << "\n" << out;
  for (const char* shot : {"grid-desktop.png", "grid-phone.png", "stream.png"})
    EXPECT_GT(std::filesystem::file_size(artefacts + "/" + shot), 10'000u) << shot;
  std::cout << out;
  for (auto& camera : cameras)
    if (camera->running()) camera->Signal(SIGKILL);
}

}  // namespace
}  // namespace lastframe::testing
