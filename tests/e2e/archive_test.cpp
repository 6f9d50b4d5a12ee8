// The shared archive (`serve --archive s3://BUCKET/PREFIX`) end to end, on
// @20minutes/s3rver: what a node said was PERSISTED is in the bucket, outlives
// the node's kill -9, and another node with its own data directory answers
// for it (fragment lists, clips, Kinesis Video's ListFragments and
// GetMediaForFragmentList, the newest image), then merges it with what a
// producer pushes there next. A store that refuses is an ERROR ack, never
// PERSISTED.

#include <signal.h>

#include <filesystem>
#include <map>
#include <set>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "e2e/e2e_util.h"
#include "objects/s3_store.h"
#include "support/s3rver.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

// `serve` with the archive in s3rver's bucket "video" under "site" (images stay embedded).
std::vector<std::string> ArchiveArgs(const S3rver& s3, const std::string& secret = kS3rverSecret,
                                     const std::string& timeout = "5") {
  std::vector<std::string> args = TestServerArgs();
  args.insert(args.end(),
              {"--archive", "s3://video/site", "--s3-endpoint", s3.endpoint(), "--s3-access-key",
               kS3rverKey, "--s3-secret-key", secret, "--s3-timeout", timeout});
  return args;
}

std::vector<std::string> PersistedNumbers(const HttpResult& push) {
  return PersistedFragments(push.body);
}

std::vector<std::string> ListedNumbers(uint16_t port, const std::string& stream) {
  HttpResult r = HttpGet(port, "/v1/streams/" + stream + "/fragments");
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<std::string> out;
  const json list = JsonOf(r);
  for (const json& f : list["fragments"]) out.push_back(f["fragment_number"]);
  return out;
}

// The fragment objects s3rver holds for |stream|: the number each key names.
std::set<std::string> ArchivedNumbers(const TempDir& dir, const std::string& stream) {
  std::set<std::string> out;
  std::error_code ec;
  // s3rver keeps an object as a folder or file named by its key (plus metadata files).
  const std::filesystem::path root = std::filesystem::path(dir.file("s3rver")) / "video";
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string rel = it->path().lexically_relative(root).generic_string();
    const std::string folder = "site/" + stream + "/";
    if (rel.rfind(folder, 0) != 0) continue;
    std::string name = rel.substr(folder.size());
    name = name.substr(0, name.find('/'));
    size_t dot = name.find(".mkv");
    if (dot == std::string::npos) continue;
    size_t first = name.find('-');
    if (first == std::string::npos) continue;
    out.insert(name.substr(first + 1, name.find('-', first + 1) - first - 1));
  }
  return out;
}

int FramesIn(const std::string& path) {
  std::string out;
  EXPECT_EQ(RunCommand({"ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path},
                       &out),
            0)
      << out;
  // The count is the last line (concatenated documents get a warning before it).
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return std::atoi(out.substr(out.rfind('\n') + 1).c_str());
}

HttpResult KvsCall(uint16_t port, const std::string& op, const std::string& body) {
  return SignedKvsCall(port, op, body, kAccessKey, kSecretKey);
}

TEST(SharedArchive, PersistedFragmentsOutliveTheirNodeOnAnother) {
  TempDir dir;
  S3rver s3(dir, {}, "video");
  const std::string clip = TestClip(dir, "cam.mkv", 160, 120, 10, 4, 10);
  std::vector<std::string> persisted;
  {
    LastframeServer a(dir.file("a"), ArchiveArgs(s3));
    HttpResult push = PushOneShot(a.port(), "cam", ReadFile(clip));
    ASSERT_EQ(push.status, 200) << push.body;
    persisted = PersistedNumbers(push);
    ASSERT_EQ(persisted.size(), 4u) << push.body;
    // Each fragment acknowledged PERSISTED is in the bucket already.
    std::set<std::string> archived = ArchivedNumbers(dir, "cam");
    for (const std::string& n : persisted) EXPECT_TRUE(archived.count(n)) << n << " not stored";
    EXPECT_EQ(Metric(a.port(), "lastframe_shared_archive_uploads_total{result=\"ok\"}"), 4);
    a.process().Signal(SIGKILL);
    EXPECT_EQ(a.process().Wait(), 128 + SIGKILL);
  }
  // Junk beside the fragments: left alone.
  objects::S3StoreOptions o{.bucket = "video", .prefix = "site", .endpoint = s3.endpoint()};
  o.credentials = {kS3rverKey, Secret(kS3rverSecret), ""};
  auto bucket = objects::S3Store::Open(o, SystemClock::Get());
  ASSERT_TRUE(bucket.ok());
  ASSERT_TRUE((*bucket)->Put("cam/README.txt", "not a fragment", "text/plain").ok());
  ASSERT_TRUE((*bucket)->Put("cam/1-2-3.mkv", "not one either", "video/x-matroska").ok());

  // Node B: a data directory of its own, the same archive. It never held "cam".
  LastframeServer b(dir.file("b"), ArchiveArgs(s3));
  EXPECT_EQ(ListedNumbers(b.port(), "cam"), persisted);
  HttpResult clip_b = HttpGet(b.port(), "/v1/streams/cam/clip?format=mkv");
  ASSERT_EQ(clip_b.status, 200) << clip_b.body;
  WriteFile(dir.file("b-clip.mkv"), clip_b.body);
  EXPECT_EQ(FramesIn(dir.file("b-clip.mkv")), 40);  // every frame pushed to A
  // The newest picture is the clip's last frame.
  HttpResult image = HttpGet(b.port(), "/v1/streams/cam/latest.jpg?quality=95");
  ASSERT_EQ(image.status, 200) << image.body;
  EXPECT_GT(Psnr(DecodeJpeg(image.body), DecodeAllFramesWithFfmpeg(clip, 160, 120).back()), 32.0);
  // Kinesis Video clients read it as they would from the node that died.
  HttpResult listed = KvsCall(b.port(), "listFragments", R"({"StreamName":"cam"})");
  ASSERT_EQ(listed.status, 200) << listed.body;
  std::vector<std::string> kvs_numbers;
  const json kvs_list = JsonOf(listed);
  for (const json& f : kvs_list["Fragments"]) kvs_numbers.push_back(f["FragmentNumber"]);
  std::sort(kvs_numbers.begin(), kvs_numbers.end());
  EXPECT_EQ(kvs_numbers, persisted);
  HttpResult media =
      KvsCall(b.port(), "getMediaForFragmentList",
              json{{"StreamName", "cam"}, {"Fragments", json::array({persisted[1]})}}.dump());
  ASSERT_EQ(media.status, 200) << media.body;
  WriteFile(dir.file("fragment.mkv"), media.body);
  EXPECT_EQ(FramesIn(dir.file("fragment.mkv")), 10);
  EXPECT_EQ(HttpGet(b.port(), "/v1/streams/nobody/fragments").status, 404);

  // The producer continues on B: one list of A's fragments and B's.
  HttpResult again = PushOneShot(b.port(), "cam", ReadFile(clip));
  ASSERT_EQ(again.status, 200) << again.body;
  std::vector<std::string> more = PersistedNumbers(again);
  ASSERT_EQ(more.size(), 4u) << again.body;
  std::vector<std::string> all = persisted;
  all.insert(all.end(), more.begin(), more.end());
  EXPECT_EQ(ListedNumbers(b.port(), "cam"), all);
  HttpResult both = KvsCall(
      b.port(), "getMediaForFragmentList",
      json{{"StreamName", "cam"}, {"Fragments", json::array({persisted[0], more[3]})}}.dump());
  ASSERT_EQ(both.status, 200) << both.body;
  WriteFile(dir.file("both.mkv"), both.body);
  EXPECT_EQ(FramesIn(dir.file("both.mkv")), 20);
}

// A bucket that refuses (a wrong secret: 403 at once; 503s past the deadline):
// ERROR acks naming the archive, never PERSISTED, and the server goes on.
TEST(SharedArchive, AStoreThatRefusesIsNeverPersisted) {
  TempDir dir;
  const std::string clip = ReadFile(TestClip(dir, "cam.mkv", 160, 120, 10, 2, 10));
  struct Case {
    std::vector<std::string> s3rver_args;
    std::string secret;
    std::string said;
  };
  for (const Case& c : {Case{{}, "not-the-secret", "SignatureDoesNotMatch"},
                        Case{{"--fail-first", "1000000"}, kS3rverSecret, "SlowDown"}}) {
    TempDir run;
    S3rver s3(run, c.s3rver_args, "video");
    LastframeServer server(run.file("data"), ArchiveArgs(s3, c.secret, "1"));
    HttpResult push = PushOneShot(server.port(), "cam", clip);
    ASSERT_EQ(push.status, 200) << push.body;
    int errors = 0;
    for (const json& ack : Acks(push.body)) {
      EXPECT_NE(ack["EventType"], "PERSISTED") << ack;
      if (ack["EventType"] != "ERROR") continue;
      ++errors;
      EXPECT_EQ(ack["ErrorCode"], "ARCHIVAL_ERROR") << ack;
      const std::string message = ack["Message"];
      EXPECT_NE(message.find("shared archive"), std::string::npos) << message;
      EXPECT_NE(message.find(c.said), std::string::npos) << message;
    }
    EXPECT_EQ(errors, 2) << push.body;
    EXPECT_TRUE(ArchivedNumbers(run, "cam").empty());
    EXPECT_EQ(Metric(server.port(), "lastframe_shared_archive_uploads_total{result=\"error\"}"), 2);
    EXPECT_EQ(HttpGet(server.port(), "/healthz").status, 200);
  }
}

TEST(SharedArchive, AMalformedArchiveIsRefusedAtStart) {
  TempDir dir;
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--archive", "video"},
                                             {"--archive", "s3://Bad_Bucket"},
                                             {"--archive", "s3://video/../x"},
                                             {"--archive", "s3://video", "--no-persist"},
                                             {"--archive", "s3://video", "--source", "kvs"}}) {
    std::vector<std::string> serve = {"serve", "--listen", "127.0.0.1:0", "--data-dir",
                                      dir.file("data")};
    serve.insert(serve.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(RunLastframe(serve, &out), 2) << out;
    EXPECT_NE(out.find("--archive"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace lastframe::testing
