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
    cameras.push_back(std::make_unique<Process>(LiveProducer(port, s, "640x360", admin, 110)));
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
