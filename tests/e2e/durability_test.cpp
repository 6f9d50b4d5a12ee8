// Durable fragments: what a producer was told is PERSISTED survives kill -9,
// torn writes are repaired at start, and --no-persist keeps nothing.

#include <signal.h>

#include <filesystem>
#include <set>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

std::set<std::string> PersistedNumbers(const HttpResult& push) {
  std::vector<std::string> persisted = PersistedFragments(push.body);
  return {persisted.begin(), persisted.end()};
}

std::set<std::string> ListedNumbers(uint16_t port, const std::string& stream) {
  std::set<std::string> out;
  json list = JsonOf(HttpGet(port, "/v1/streams/" + stream + "/fragments"));
  for (const json& f : list["fragments"]) out.insert(f["fragment_number"].get<std::string>());
  return out;
}

int FramesInClip(uint16_t port, const std::string& stream, const TempDir& dir) {
  HttpResult clip = HttpGet(port, "/v1/streams/" + stream + "/clip?format=mkv");
  EXPECT_EQ(clip.status, 200) << clip.body;
  std::string path = dir.file(stream + "-clip.mkv");
  WriteFile(path, clip.body);
  std::string out;
  EXPECT_EQ(RunCommand({"ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path},
                       &out),
            0)
      << out;
  return std::atoi(out.c_str());
}

TEST(Durability, EveryPersistedFragmentSurvivesKillNine) {
  TempDir dir;
  std::string clip = TestClip(dir, "cam.mkv", 160, 120, 10, 4, 10);
  std::set<std::string> persisted;
  {
    LastframeServer server(dir.file("data"), TestServerArgs());
    HttpResult push = PushOneShot(server.port(), "cam", ReadFile(clip));
    ASSERT_EQ(push.status, 200);
    persisted = PersistedNumbers(push);
    ASSERT_EQ(persisted.size(), 4u) << push.body;
    // A live producer is pushing when the process dies, two fragments of it on
    // disk: completed fragments are listed before the archive's writers have
    // made them durable (group commit), so the listing is not what to wait for.
    Process live(LiveProducer(server.port(), "live", "160x120"));
    const std::filesystem::path live_files =
        std::filesystem::path(dir.file("data")) / "fragments" / "live";
    ASSERT_TRUE(Eventually([&] {
      std::error_code ec;
      size_t files = 0;
      for (const auto& e : std::filesystem::directory_iterator(live_files, ec))
        files += e.path().extension() == ".mkv";
      return files >= 2;
    }));
    server.process().Signal(SIGKILL);
    EXPECT_EQ(server.process().Wait(), 128 + SIGKILL);
  }
  LastframeServer restarted(dir.file("data"), TestServerArgs());
  std::set<std::string> listed = ListedNumbers(restarted.port(), "cam");
  for (const std::string& n : persisted) EXPECT_TRUE(listed.count(n)) << "lost fragment " << n;
  EXPECT_EQ(FramesInClip(restarted.port(), "cam", dir), 40);  // every frame decodes
  // The newest frame after the restart is still the clip's last one.
  HttpResult image = HttpGet(restarted.port(), "/v1/streams/cam/latest.jpg?quality=95");
  ASSERT_EQ(image.status, 200);
  auto frames = DecodeAllFramesWithFfmpeg(clip, 160, 120);
  EXPECT_GT(Psnr(DecodeJpeg(image.body), frames.back()), 32.0);
  // What the live producer had completed before the kill came back and decodes too.
  EXPECT_GE(ListedNumbers(restarted.port(), "live").size(), 2u);
  EXPECT_GT(FramesInClip(restarted.port(), "live", dir), 0);
  // New fragments are numbered after the recovered ones.
  HttpResult again = PushOneShot(restarted.port(), "cam", ReadFile(clip));
  ASSERT_EQ(again.status, 200) << again.body;
  std::set<std::string> renumbered = PersistedNumbers(again);
  ASSERT_EQ(renumbered.size(), 4u) << again.body;
  for (const std::string& n : renumbered)
    EXPECT_GT(std::stoull(n), std::stoull(*persisted.rbegin()));
}

TEST(Durability, TornWritesAreRepairedAtStart) {
  TempDir dir;
  std::string clip = TestClip(dir, "cam.mkv", 160, 120, 10, 3, 10);
  {
    LastframeServer server(dir.file("data"), TestServerArgs());
    ASSERT_EQ(PushOneShot(server.port(), "cam", ReadFile(clip)).status, 200);
    server.process().Signal(SIGKILL);
    server.process().Wait();
  }
  // As a crash mid-write leaves them: a temp file never renamed, a file cut short.
  namespace fs = std::filesystem;
  fs::path root = fs::path(dir.file("data")) / "fragments";
  WriteFile((root / ".tmp" / "4242-7.mkv").string(), "\x1a\x45\xdf\xa3 torn");
  fs::path newest;
  for (const auto& e : fs::directory_iterator(root / "cam"))
    if (e.path().extension() == ".mkv" && e.path() > newest) newest = e.path();
  ASSERT_FALSE(newest.empty());
  fs::resize_file(newest, fs::file_size(newest) / 2);

  LastframeServer restarted(dir.file("data"), TestServerArgs());
  ASSERT_FALSE(restarted.process()
                   .WaitForLine("2 torn or unreadable removed", std::chrono::seconds(10))
                   .empty())
      << restarted.process().Output();
  EXPECT_EQ(ListedNumbers(restarted.port(), "cam").size(), 2u);
  EXPECT_EQ(FramesInClip(restarted.port(), "cam", dir), 20);
  EXPECT_FALSE(fs::exists(newest));
  EXPECT_EQ(HttpGet(restarted.port(), "/v1/streams/cam/snapshot").status, 200);
}

TEST(Durability, StreamsCreatedWithTheirOwnRetentionKeepIt) {
  TempDir dir;
  {
    LastframeServer server(dir.file("data"), TestServerArgs());
    HttpResult created = HttpRequest(server.port(), "POST", "/v1/streams",
                                     R"({"name":"archive","retention_s":86400})");
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(JsonOf(created)["retention_s"], 86400);
    EXPECT_EQ(JsonOf(created)["state"], "idle");
    HttpResult again = HttpRequest(server.port(), "POST", "/v1/streams", R"({"name":"archive"})");
    EXPECT_EQ(again.status, 409);
    EXPECT_EQ(JsonOf(again)["code"], "StreamExists");
    // Others keep the server's retention (600 s in the tests).
    ASSERT_EQ(
        PushOneShot(server.port(), "other", ReadFile(TestClip(dir, "c.mkv", 160, 120, 10, 1, 10)))
            .status,
        200);
    EXPECT_EQ(JsonOf(HttpGet(server.port(), "/v1/streams/other"))["retention_s"], 600);
    server.process().Signal(SIGKILL);
    server.process().Wait();
  }
  LastframeServer restarted(dir.file("data"), TestServerArgs());
  HttpResult described = HttpGet(restarted.port(), "/v1/streams/archive");
  ASSERT_EQ(described.status, 200) << described.body;
  EXPECT_EQ(JsonOf(described)["retention_s"], 86400);
  EXPECT_EQ(HttpRequest(restarted.port(), "DELETE", "/v1/streams/archive").status, 204);
  EXPECT_EQ(HttpGet(restarted.port(), "/v1/streams/archive").status, 404);
}

TEST(Durability, AFullDiskGivesProducersAnErrorAndStopsNothing) {
  TempDir dir;
  // No file of the server may grow past 4 KiB: fragment files fail as on a full disk.
  LastframeServer server(dir.file("data"), TestServerArgs(), {"prlimit", "--fsize=4096", "--"});
  std::string clip = ReadFile(TestClip(dir, "c.mkv", 160, 120, 10, 2, 10));
  HttpResult push = PushOneShot(server.port(), "cam", clip);
  ASSERT_EQ(push.status, 200);
  int received = 0, archival = 0;
  for (const json& ack : Acks(push.body)) {
    received += ack["EventType"] == "RECEIVED";
    archival += ack["EventType"] == "ERROR" && ack["ErrorId"] == 5001 &&
                ack["ErrorCode"] == "ARCHIVAL_ERROR";
  }
  EXPECT_EQ(received, 2) << push.body;
  EXPECT_EQ(archival, 2) << push.body;
  EXPECT_TRUE(PersistedNumbers(push).empty());
  // The process and every stream carry on, from memory.
  EXPECT_EQ(HttpGet(server.port(), "/healthz").status, 200);
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams/cam/latest.jpg").status, 200);
  EXPECT_EQ(PushOneShot(server.port(), "other", clip).status, 200);
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams/other/latest.jpg").status, 200);
  EXPECT_TRUE(server.process().running());
}

TEST(Durability, NoPersistKeepsNothing) {
  TempDir dir;
  auto args = TestServerArgs();
  args.push_back("--no-persist");
  {
    LastframeServer server(dir.file("data"), args);
    ASSERT_EQ(
        PushOneShot(server.port(), "cam", ReadFile(TestClip(dir, "c.mkv", 160, 120, 10, 2, 10)))
            .status,
        200);
    server.process().Signal(SIGKILL);
    server.process().Wait();
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir.file("data")) / "fragments"));
  LastframeServer restarted(dir.file("data"), args);
  EXPECT_EQ(HttpGet(restarted.port(), "/v1/streams/cam").status, 404);
}

}  // namespace
}  // namespace lastframe::testing
