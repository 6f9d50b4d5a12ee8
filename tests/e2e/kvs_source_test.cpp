// Kinesis Video as a source: one lastframe (B, `--source kvs`) takes its
// snapshots from another (A) through the Kinesis Video API, as it would from
// AWS; and image generation writing to the object store without a request.

#include <signal.h>

#include <set>

#include "core/clock.h"
#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

std::vector<std::string> SourceArgs(const LastframeServer& a) {
  std::vector<std::string> args = TestServerArgs();
  for (const std::string& arg :
       {std::string("--source"), std::string("kvs"), std::string("--kvs-endpoint"), a.base_url(),
        std::string("--kvs-region"), std::string("us-east-1"), std::string("--kvs-access-key"),
        std::string(kAccessKey), std::string("--kvs-secret-key"), std::string(kSecretKey),
        std::string("--kvs-timeout"), std::string("3")})
    args.push_back(arg);
  return args;
}

// The newest picture of |stream| through |port|, at quality 95.
HttpResult Latest(uint16_t port, const std::string& stream) {
  return HttpGet(port, "/v1/streams/" + stream + "/latest.jpg?quality=95");
}

TEST(KvsSource, SnapshotsThroughAnotherServerAreTheTrueLastFrameAndSurviveItsRestart) {
  TempDir dir;
  auto a = std::make_unique<LastframeServer>(dir.file("a"), TestServerArgs());
  const uint16_t a_port = a->port();
  std::string first = TestClip(dir, "first.mkv", 320, 240, 10, 3.2, 10);
  ASSERT_EQ(PushOneShot(a_port, "cam", ReadFile(first)).status, 200);

  LastframeServer b(dir.file("b"), SourceArgs(*a));
  auto first_frames = DecodeAllFramesWithFfmpeg(first, 320, 240);
  ASSERT_EQ(first_frames.size(), 32u);
  // The first look is cold: ListFragments + GetMediaForFragmentList.
  const std::string cold_fetches = "lastframe_kvs_cold_fetches_total";
  const std::string followed = "lastframe_kvs_follower_fragments_total";
  EXPECT_EQ(Metric(b.port(), cold_fetches), 0);
  HttpResult cold = Latest(b.port(), "cam");
  ASSERT_EQ(cold.status, 200) << cold.body;
  RgbImage got = DecodeJpeg(cold.body);
  EXPECT_GT(Psnr(got, first_frames.back()), 32.0);
  EXPECT_GT(Psnr(got, first_frames.back()), Psnr(got, first_frames[first_frames.size() - 2]) + 3.0);
  EXPECT_EQ(Metric(b.port(), cold_fetches), 1);
  // That look also started a GetMedia that follows the stream from NOW; wait until B's
  // warm answers come from it (a look answered warm, with no new cold fetch).
  ASSERT_TRUE(Eventually([&] {
    return Latest(b.port(), "cam").status == 200 &&
           Metric(b.port(), "lastframe_kvs_warm_answers_total") > 0;
  }));
  const double fetches_before = Metric(b.port(), cold_fetches);
  const double followed_before = Metric(b.port(), followed);
  // Warm: frames pushed to A now reach B only through the followed GetMedia. B shows the new
  // clip's last frame, its follower counted the new fragments, and no look fetched cold.
  // (A one-shot push runs ahead of the clock: the first clip's producer times reach 3.2 s
  // past its push, so this one starts after them, as a camera pushing in real time would.)
  std::string next = TestClip(dir, "next.mkv", 320, 240, 10, 2.5, 10);
  const int64_t next_start_s = SystemClock::Get().NowMs() / 1000 + 4;
  const std::string start_s = std::to_string(next_start_s);
  HttpResult pushed =
      HttpRequest(a_port, "POST", "/putMedia", ReadFile(next),
                  {{"x-amzn-stream-name", "cam"}, {"x-amzn-producer-start-timestamp", start_s}});
  ASSERT_EQ(pushed.status, 200);
  ASSERT_EQ(pushed.body.find("ERROR"), std::string::npos) << pushed.body;
  auto next_frames = DecodeAllFramesWithFfmpeg(next, 320, 240);
  double warm_psnr = 0;
  ASSERT_TRUE(Eventually([&] {
    HttpResult image = Latest(b.port(), "cam");
    if (image.status != 200) return false;
    warm_psnr = Psnr(DecodeJpeg(image.body), next_frames.back());
    return warm_psnr > 32.0;
  })) << warm_psnr;
  EXPECT_GE(Metric(b.port(), followed) - followed_before, 2) << "fragments the follower received";
  EXPECT_EQ(Metric(b.port(), cold_fetches), fetches_before) << "a warm look fetched cold";
  // A stream A does not have is B's 404, with Kinesis Video's reason.
  HttpResult missing = Latest(b.port(), "nobody");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(JsonOf(missing)["code"], "StreamNotFound");

  // A goes away: B says why, promptly (502), rather than hang or show an old frame as new.
  ASSERT_EQ(a->Stop(), 0);
  a.reset();
  HttpResult down;
  ASSERT_TRUE(Eventually([&] {
    down = Latest(b.port(), "cam");
    return down.status == 502;
  })) << down.status
      << " " << down.body;
  EXPECT_EQ(JsonOf(down)["code"], "KvsUnavailable");

  // A is back on the same address with its data; a new clip goes there, and B shows its last frame.
  a = std::make_unique<LastframeServer>(dir.file("a"), TestServerArgs(), std::vector<std::string>{},
                                        a_port);
  // (After the producer times of the clip before it, as above.)
  std::string second = TestClip(dir, "second.mkv", 320, 240, 10, 2.3, 10);
  const int64_t second_start_s = std::max(SystemClock::Get().NowMs() / 1000, next_start_s + 3);
  HttpResult second_push =
      HttpRequest(a_port, "POST", "/putMedia", ReadFile(second),
                  {{"x-amzn-stream-name", "cam"},
                   {"x-amzn-producer-start-timestamp", std::to_string(second_start_s)}});
  ASSERT_EQ(second_push.status, 200);
  ASSERT_EQ(second_push.body.find("ERROR"), std::string::npos) << second_push.body;
  auto second_frames = DecodeAllFramesWithFfmpeg(second, 320, 240);
  double psnr = 0;
  ASSERT_TRUE(Eventually([&] {
    HttpResult image = Latest(b.port(), "cam");
    if (image.status != 200) return false;
    psnr = Psnr(DecodeJpeg(image.body), second_frames.back());
    return psnr > 32.0;
  })) << psnr;
}

// Range reads go to the source too: B's fragment listing, clips and Kinesis
// Video archived-media operations answer with A's fragments, fetched from A,
// not from B's own (empty) store.
TEST(KvsSource, ListingsClipsAndArchivedMediaThroughAnotherServerAreItsFragments) {
  TempDir dir;
  LastframeServer a(dir.file("a"), TestServerArgs());
  std::string clip = TestClip(dir, "clip.mkv", 320, 240, 10, 3.2, 10);
  ASSERT_EQ(PushOneShot(a.port(), "cam", ReadFile(clip)).status, 200);
  LastframeServer b(dir.file("b"), SourceArgs(a));
  const std::vector<RgbImage> frames = DecodeAllFramesWithFfmpeg(clip, 320, 240);
  ASSERT_EQ(frames.size(), 32u);

  // The listing: A's fragments, numbers and times as A has them.
  const std::string all = "/v1/streams/cam/fragments?start=0&end=253402300799999";
  json from_a = JsonOf(HttpGet(a.port(), all))["fragments"];
  HttpResult listed = HttpGet(b.port(), all);
  ASSERT_EQ(listed.status, 200) << listed.body;
  json from_b = JsonOf(listed)["fragments"];
  ASSERT_EQ(from_a.size(), 4u);
  ASSERT_EQ(from_b.size(), from_a.size()) << listed.body;
  for (size_t i = 0; i < from_a.size(); ++i)
    for (const char* key : {"fragment_number", "producer_timestamp_ms", "server_timestamp_ms",
                            "duration_ms", "bytes"})
      EXPECT_EQ(from_b[i][key], from_a[i][key]) << key << " of fragment " << i;
  EXPECT_TRUE(from_b[0]["frames"].is_null());  // listed without fetching the media
  // A range: the fragments that overlap it, on the producer's timeline.
  const int64_t second_ms = from_a[1]["producer_timestamp_ms"].get<int64_t>();
  json ranged =
      JsonOf(HttpGet(b.port(), "/v1/streams/cam/fragments?start=" + std::to_string(second_ms) +
                                   "&end=" + std::to_string(second_ms + 1500)))["fragments"];
  ASSERT_EQ(ranged.size(), 2u) << ranged.dump();
  EXPECT_EQ(ranged[0]["fragment_number"], from_a[1]["fragment_number"]);

  // The clip: every frame of A's fragments, fetched from A and remuxed by B.
  HttpResult got = HttpGet(b.port(), "/v1/streams/cam/clip?format=mkv&start=0");
  ASSERT_EQ(got.status, 200) << got.body;
  const std::string through_b = dir.file("through-b.mkv");
  WriteFile(through_b, got.body);
  const std::vector<RgbImage> clipped = DecodeAllFramesWithFfmpeg(through_b, 320, 240);
  ASSERT_EQ(clipped.size(), frames.size());
  EXPECT_GT(Psnr(clipped.back(), frames.back()), 40.0);
  EXPECT_GT(Psnr(clipped.front(), frames.front()), 40.0);

  // Kinesis Video's archived-media API of B: A's fragments and pictures.
  std::string out;
  ASSERT_EQ(
      RunAwsCli(dir, b.base_url(),
                {"kinesis-video-archived-media", "list-fragments", "--stream-name", "cam"}, &out),
      0)
      << out;
  json kvs_listed = json::parse(out.substr(out.find('{')), nullptr, false)["Fragments"];
  ASSERT_EQ(kvs_listed.size(), from_a.size()) << out;
  std::set<std::string> numbers_b, numbers_a;
  for (const json& f : kvs_listed) numbers_b.insert(f["FragmentNumber"].get<std::string>());
  for (const json& f : from_a) numbers_a.insert(f["fragment_number"].get<std::string>());
  EXPECT_EQ(numbers_b, numbers_a);
  // The picture at the first whole second past 1 s into the clip (awscli sends
  // whole seconds): the frame shown then (frames every 100 ms), as A would show it.
  const int64_t first_ms = from_a[0]["producer_timestamp_ms"].get<int64_t>();
  const int64_t at_ms = (first_ms + 1000 + 999) / 1000 * 1000;
  const size_t shown = static_cast<size_t>((at_ms - first_ms) / 100);
  const std::string at = std::to_string(at_ms / 1000);
  ASSERT_EQ(RunAwsCli(dir, b.base_url(),
                      {"kinesis-video-archived-media", "get-images", "--stream-name", "cam",
                       "--image-selector-type", "PRODUCER_TIMESTAMP", "--start-timestamp", at,
                       "--end-timestamp", at, "--sampling-interval", "3000", "--format", "JPEG",
                       "--format-config", "JPEGQuality=95"},
                      &out),
            0)
      << out;
  json images = json::parse(out.substr(out.find('{')), nullptr, false)["Images"];
  ASSERT_EQ(images.size(), 1u) << out;
  ASSERT_TRUE(images[0].contains("ImageContent")) << out;
  auto jpeg = Base64Decode(images[0]["ImageContent"].get<std::string>());
  const RgbImage picture = DecodeJpeg(jpeg);
  EXPECT_GT(Psnr(picture, frames[shown]), 32.0) << "frame " << shown;
  EXPECT_GT(Psnr(picture, frames[shown]), Psnr(picture, frames[shown + 1]) + 3.0);

  // What A does not have, B says so.
  HttpResult missing = HttpGet(b.port(), "/v1/streams/nobody/fragments");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(JsonOf(missing)["code"], "StreamNotFound");
}

// An endpoint that never answers is a 504 within --kvs-timeout; one that
// refuses our signature a 502 that says what it said.
TEST(KvsSource, AnEndpointThatHangsOrRefusesGivesClearErrors) {
  TempDir dir;
  SilentListener silent;
  std::vector<std::string> hanging = TestServerArgs();
  for (const std::string& arg :
       {std::string("--source"), std::string("kvs"), std::string("--kvs-endpoint"),
        "http://127.0.0.1:" + std::to_string(silent.port()), std::string("--kvs-access-key"),
        std::string(kAccessKey), std::string("--kvs-secret-key"), std::string(kSecretKey),
        std::string("--kvs-timeout"), std::string("1")})
    hanging.push_back(arg);
  LastframeServer b(dir.file("b"), hanging);
  auto started = std::chrono::steady_clock::now();
  HttpResult r = Latest(b.port(), "cam");
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(JsonOf(r)["code"], "KvsTimeout");
  EXPECT_LT(took, std::chrono::seconds(10));  // bounded by --kvs-timeout, not by the peer

  LastframeServer a(dir.file("a"), TestServerArgs());
  std::vector<std::string> wrong = TestServerArgs();
  for (const std::string& arg :
       {std::string("--source"), std::string("kvs"), std::string("--kvs-endpoint"), a.base_url(),
        std::string("--kvs-access-key"), std::string(kAccessKey), std::string("--kvs-secret-key"),
        std::string("not-the-secret")})
    wrong.push_back(arg);
  LastframeServer c(dir.file("c"), wrong);
  HttpResult refused = Latest(c.port(), "cam");
  EXPECT_EQ(refused.status, 502) << refused.body;
  EXPECT_EQ(JsonOf(refused)["code"], "KvsError");
  EXPECT_NE(refused.body.find("InvalidSignatureException"), std::string::npos) << refused.body;
}

TEST(KvsSource, BadSourceFlagsAreRefusedAtStart) {
  TempDir dir;
  std::string out;
  EXPECT_NE(RunLastframe({"serve", "--listen", "127.0.0.1:0", "--data-dir", dir.file("d"),
                          "--source", "kinesis"},
                         &out),
            0);
  EXPECT_NE(out.find("--source"), std::string::npos) << out;
  EXPECT_NE(RunLastframe({"serve", "--listen", "127.0.0.1:0", "--data-dir", dir.file("d"),
                          "--source", "kvs", "--kvs-timeout", "0"},
                         &out),
            0);
  EXPECT_NE(out.find("--kvs-timeout"), std::string::npos) << out;
}

int Aws(const TempDir& dir, uint16_t port, const std::vector<std::string>& args,
        std::string* output) {
  return RunAwsCli(dir, "http://127.0.0.1:" + std::to_string(port), args, output);
}

TEST(KvsImageGeneration, WritesImagesToTheObjectStoreAsFramesArrive) {
  TempDir dir;
  LastframeServer server(dir.file("data"), TestServerArgs());
  std::string out;
  ASSERT_EQ(Aws(dir, server.port(),
                {"kinesisvideo", "create-stream", "--stream-name", "gate",
                 "--data-retention-in-hours", "1"},
                &out),
            0)
      << out;
  const std::string config =
      R"({"Status": "ENABLED", "ImageSelectorType": "PRODUCER_TIMESTAMP",
          "DestinationConfig": {"Uri": "s3://lastframe/thumbs", "DestinationRegion": "us-east-1"},
          "SamplingInterval": 3000, "Format": "JPEG", "FormatConfig": {"JPEGQuality": "60"},
          "WidthPixels": 160, "HeightPixels": 120})";
  ASSERT_EQ(Aws(dir, server.port(),
                {"kinesisvideo", "update-image-generation-configuration", "--stream-name", "gate",
                 "--image-generation-configuration", config},
                &out),
            0)
      << out;
  ASSERT_EQ(
      Aws(dir, server.port(),
          {"kinesisvideo", "describe-image-generation-configuration", "--stream-name", "gate"},
          &out),
      0)
      << out;
  json described = json::parse(out);
  EXPECT_EQ(described["ImageGenerationConfiguration"]["SamplingInterval"], 3000);
  EXPECT_EQ(described["ImageGenerationConfiguration"]["DestinationConfig"]["Uri"],
            "s3://lastframe/thumbs");

  // A destination that is not this server's store is refused, and says which is.
  std::string elsewhere = config;
  elsewhere.replace(elsewhere.find("s3://lastframe"), 14, "s3://elsewhere");
  EXPECT_NE(Aws(dir, server.port(),
                {"kinesisvideo", "update-image-generation-configuration", "--stream-name", "gate",
                 "--image-generation-configuration", elsewhere},
                &out),
            0);
  EXPECT_NE(out.find("InvalidArgumentException"), std::string::npos) << out;
  EXPECT_NE(out.find("s3://lastframe"), std::string::npos) << out;

  Process producer(LiveProducer(server.port(), "gate", "320x240"));
  std::string listing;
  ASSERT_TRUE(Eventually(
      [&] {
        return Aws(dir, server.port(), {"s3", "ls", "s3://lastframe/thumbs/gate/"}, &listing) ==
                   0 &&
               listing.find(".jpg") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << listing;
  std::string key = listing.substr(listing.rfind(' ') + 1);
  key = key.substr(0, key.find('\n'));
  ASSERT_EQ(Aws(dir, server.port(),
                {"s3", "cp", "s3://lastframe/thumbs/gate/" + key, dir.file("thumb.jpg")}, &out),
            0)
      << out;
  RgbImage thumb = DecodeJpeg(ReadFile(dir.file("thumb.jpg")));
  EXPECT_EQ(thumb.width, 160);
  EXPECT_EQ(thumb.height, 120);
  // Named by the frame's producer time: a recent epoch millisecond.
  int64_t named_ms = std::stoll(key.substr(0, key.find('.')));
  EXPECT_NEAR(static_cast<double>(named_ms), static_cast<double>(SystemClock::Get().NowMs()),
              60'000.0);
  producer.Signal(SIGTERM);
  producer.Wait();
}

}  // namespace
}  // namespace lastframe::testing
