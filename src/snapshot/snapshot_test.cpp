#include <gtest/gtest.h>

#include <future>
#include <map>

#include "core/metrics.h"
#include "core/test_metrics.h"
#include "core/worker_pool.h"
#include "objects/local_store.h"
#include "snapshot/frame_decoder.h"
#include "snapshot/snapshot_service.h"
#include "support/media_check.h"
#include "support/push.h"
#include "support/temp_dir.h"

namespace lastframe::snapshot {
namespace {

using testing::DecodeAllFramesWithFfmpeg;
using testing::DecodeJpeg;
using testing::MakeClip;
using testing::Psnr;
using testing::ReadFile;
using testing::RgbImage;
using testing::TempDir;

// Pushes a clip file into |store| as stream |name| and waits for the end.
void PushFile(store::StreamStore& store, const std::string& name, const std::string& path) {
  Status pushed = testing::PushBytes(store, name, ReadFile(path));
  ASSERT_TRUE(pushed.ok()) << pushed.ToString();
}

using metrics::test::MetricValue;

// Observations of one stage of lastframe_snapshot_stage_duration_seconds.
double StageCount(const std::string& stage) {
  return MetricValue(R"(lastframe_snapshot_stage_duration_seconds_count{stage=")" + stage + "\"}");
}

struct Case {
  std::string name;
  int width, height;
  std::vector<std::string> encode;
};

class NewestFrame : public ::testing::TestWithParam<Case> {};

// The snapshot is the clip's last frame as ffmpeg itself decodes it: much
// closer to it than to the frame before, and close enough to be the same picture.
TEST_P(NewestFrame, MatchesFfmpegsDecodeOfTheLastFrame) {
  const Case& c = GetParam();
  TempDir dir;
  std::vector<std::string> args = {
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=" + std::to_string(c.width) + "x" + std::to_string(c.height) + ":rate=10",
      "-t",
      "2.3"};
  args.insert(args.end(), c.encode.begin(), c.encode.end());
  std::string clip = MakeClip(dir.file("clip.mkv"), args);
  store::StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  PushFile(store, "cam", clip);

  WorkerPool workers(1, 4);
  objects::LocalStoreOptions lo;
  lo.root = dir.path() / "objects";
  lo.public_url = "http://127.0.0.1:1";
  lo.credentials = {"K", Secret("S"), ""};
  auto objects = objects::LocalStore::Open(lo, SystemClock::Get());
  ASSERT_TRUE(objects.ok());
  SnapshotService service(store, **objects, workers, SystemClock::Get());
  auto image = service.Render("cam", {ImageFormat::kJpeg, 95});
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->width, c.width);
  EXPECT_EQ(image->height, c.height);

  auto reference = DecodeAllFramesWithFfmpeg(clip, c.width, c.height);
  ASSERT_EQ(reference.size(), 23u);
  auto got = DecodeJpeg(image->bytes);
  double to_last = Psnr(got, reference.back());
  double to_previous = Psnr(got, reference[reference.size() - 2]);
  RecordProperty("psnr_last", std::to_string(to_last));
  EXPECT_GT(to_last, 32.0);
  EXPECT_GT(to_last, to_previous + 3.0) << "last " << to_last << " previous " << to_previous;
  // The 23rd frame at 10 fps is 2.2 s after the first.
  auto fragment = store.LatestFragment("cam");
  EXPECT_EQ(image->frame_timestamp_ms - fragment->producer_ts_ms + fragment->frames[0].pts_ms,
            2200);
}

INSTANTIATE_TEST_SUITE_P(
    Profiles, NewestFrame,
    ::testing::Values(
        Case{"h264", 320, 240, {"-c:v", "libx264", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p"}},
        Case{"h264_bframes",
             320,
             240,
             {"-c:v", "libx264", "-g", "10", "-bf", "3", "-pix_fmt", "yuv420p"}},
        Case{"h264_10bit", 320, 240, {"-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p10le"}},
        Case{"h264_fullrange", 320, 240, {"-c:v", "libx264", "-g", "10", "-pix_fmt", "yuvj420p"}},
        Case{"h264_odd_size_444",
             321,
             241,
             {"-vf", "scale=321:241", "-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv444p"}},
        Case{"h264_bt709",
             320,
             240,
             {"-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
              "-color_primaries", "bt709", "-color_trc", "bt709"}},
        Case{"hevc",
             320,
             240,
             {"-c:v", "libx265", "-x265-params", "keyint=10:log-level=error", "-pix_fmt",
              "yuv420p"}}),
    [](const auto& info) { return info.param.name; });

class SnapshotServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clip_ = MakeClip(dir_.file("clip.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                                             "-t", "1", "-c:v", "libx264", "-g", "10"});
    PushFile(store_, "cam", clip_);
    objects::LocalStoreOptions lo;
    lo.root = dir_.path() / "objects";
    lo.public_url = "http://127.0.0.1:1";
    lo.credentials = {"K", Secret("S"), ""};
    auto objects = objects::LocalStore::Open(lo, clock_);
    ASSERT_TRUE(objects.ok());
    objects_ = std::move(*objects);
    service_ = std::make_unique<SnapshotService>(store_, *objects_, workers_, clock_);
  }

  Result<PublishedImage> Publish(SnapshotOptions options, int64_t expires_s = 600) {
    std::promise<Result<PublishedImage>> promise;
    service_->PublishAsync("cam", options, expires_s,
                           [&](Result<PublishedImage> r) { promise.set_value(std::move(r)); });
    return promise.get_future().get();
  }

  // Occupies the only worker until the returned promise is set.
  std::promise<void> BlockWorker() {
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<void> started;
    EXPECT_TRUE(workers_.TryPost([&started, released] {
      started.set_value();
      released.wait();
    }));
    started.get_future().wait();
    return release;
  }

  Result<Image> RenderAt(const std::string& stream, FrameTime at, SnapshotOptions options = {}) {
    std::promise<Result<Image>> promise;
    service_->RenderAtAsync(stream, at, options,
                            [&](Result<Image> r) { promise.set_value(std::move(r)); });
    return promise.get_future().get();
  }

  TempDir dir_;
  std::string clip_;
  ManualClock clock_{1'764'000'000'500};
  store::StreamStore store_{SystemClock::Get(), {.retention_ms = 3'600'000}};
  WorkerPool workers_{1, 4};
  std::unique_ptr<objects::LocalStore> objects_;
  std::unique_ptr<SnapshotService> service_;
};

TEST_F(SnapshotServiceTest, PublishesToTheObjectStoreWithASignedUrl) {
  Result<PublishedImage> published = Publish({ImageFormat::kJpeg, 80, 80, 0});
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->image.width, 80);
  EXPECT_EQ(published->image.height, 60);
  // Signed at .500 in a whole-second X-Amz-Date, the URL is valid through
  // second 600 after that date: at least the 600 s asked, and said so.
  EXPECT_EQ(published->expires_at_ms, 1'764'000'000'000 + 601'000);
  EXPECT_EQ(published->key,
            "snapshots/cam/" + std::to_string(published->image.frame_timestamp_ms) + "_80x60.jpg");
  auto object = objects_->GetObject(published->key);
  ASSERT_TRUE(object.ok()) << object.status().ToString();
  EXPECT_EQ(object->info.meta.content_type, "image/jpeg");
  const std::string& stored = object->bytes;
  EXPECT_EQ(stored.size(), published->bytes);
  EXPECT_EQ(DecodeJpeg(stored).width, 80);
  EXPECT_NE(published->url.find("X-Amz-Signature="), std::string::npos);
}

// A frame at a time (Kinesis Video's GetImages): the one shown then, from the
// cache when it is the newest frame already rendered.
TEST_F(SnapshotServiceTest, AFrameAtATimeIsTheOneShownThenAndSharesTheCache) {
  auto fragments = store_.Fragments("cam", {});
  ASSERT_TRUE(fragments.ok());
  ASSERT_EQ(fragments->size(), 1u);  // 1 s at 10 fps, a keyframe every 10 frames
  const store::FragmentView& f = fragments->front();
  ASSERT_EQ(f.frames.size(), 10u);
  const std::vector<RgbImage> frames = DecodeAllFramesWithFfmpeg(clip_, 160, 120);
  ASSERT_EQ(frames.size(), 10u);

  // 450 ms in, the fifth frame (shown from 400 ms) is on screen.
  auto at = RenderAt("cam", {.at_ms = f.producer_ts_ms + 450});
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(at->frame_timestamp_ms, f.producer_ts_ms + 400);
  EXPECT_EQ(at->fragment_number, f.number);
  const RgbImage got = DecodeJpeg(at->bytes);
  EXPECT_GT(Psnr(got, frames[4]), 30.0);
  EXPECT_GT(Psnr(got, frames[4]), Psnr(got, frames[5]) + 3.0);
  // The server's timeline: the fragment arrived at server_ts_ms.
  auto server = RenderAt("cam", {.at_ms = f.server_ts_ms + 450, .server_timeline = true});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ(server->frame_timestamp_ms, f.producer_ts_ms + 400);

  // The newest frame, rendered once: a time at or after it is the same render.
  std::promise<Result<Image>> newest;
  service_->RenderAsync("cam", {}, [&](Result<Image> r) { newest.set_value(std::move(r)); });
  ASSERT_TRUE(newest.get_future().get().ok());
  const SnapshotStats before = service_->stats();
  auto last = RenderAt("cam", {.at_ms = f.producer_ts_ms + f.duration_ms});
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->frame_timestamp_ms, f.producer_ts_ms + 900);
  EXPECT_EQ(service_->stats().renders, before.renders);
  EXPECT_EQ(service_->stats().cache_hits, before.cache_hits + 1);

  // Before the stream, after it, or of no stream: said so, nothing rendered.
  auto before_stream = RenderAt("cam", {.at_ms = f.producer_ts_ms - 10'000});
  EXPECT_EQ(before_stream.status().reason(), Reason::kNoFrame);
  auto after_stream = RenderAt("cam", {.at_ms = f.producer_ts_ms + f.duration_ms + 1});
  EXPECT_EQ(after_stream.status().reason(), Reason::kNoFrame);
  EXPECT_EQ(RenderAt("nobody", {.at_ms = f.producer_ts_ms}).status().reason(),
            Reason::kStreamNotFound);
  // An explicit size over the pixel bound is refused, unless it may be scaled down.
  auto big = RenderAt("cam", {.at_ms = f.producer_ts_ms}, {.width = 8000, .height = 6000});
  EXPECT_EQ(big.status().reason(), Reason::kTooManyPixels);
  auto shrunk = RenderAt("cam", {.at_ms = f.producer_ts_ms},
                         {.width = 8000, .height = 6000, .shrink_to_fit = true});
  ASSERT_TRUE(shrunk.ok()) << shrunk.status().ToString();
  EXPECT_LE(uint64_t{static_cast<uint64_t>(shrunk->width)} * static_cast<uint64_t>(shrunk->height),
            3840ull * 2160);
}

TEST_F(SnapshotServiceTest, AnObjectSweptWhileCachedIsStoredAgain) {
  auto first = Publish({});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(objects_->DeleteObject(first->key).ok());
  ASSERT_FALSE(objects_->Holds(first->key));
  auto again = Publish({});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->key, first->key);
  EXPECT_EQ(service_->stats().renders, 1u);  // from the cache, not rendered twice
  auto object = objects_->GetObject(first->key);
  ASSERT_TRUE(object.ok()) << object.status().ToString();
  EXPECT_EQ(object->bytes.size(), first->bytes);
}

// The registry is the process's: each check compares before and after.
TEST_F(SnapshotServiceTest, EachStageIsTimedWhenItRuns) {
  const std::vector<std::string> stages = {"decode", "encode", "store", "sign"};
  std::map<std::string, double> before;
  for (const auto& stage : stages) before[stage] = StageCount(stage);
  ASSERT_TRUE(Publish({}).ok());
  for (const auto& stage : stages) EXPECT_EQ(StageCount(stage) - before[stage], 1) << stage;
  // From the cache: signed again, nothing decoded, encoded or stored.
  ASSERT_TRUE(Publish({}).ok());
  EXPECT_EQ(StageCount("sign") - before["sign"], 2);
  for (const auto& stage : {"decode", "encode", "store"})
    EXPECT_EQ(StageCount(stage) - before[stage], 1) << stage;
}

TEST_F(SnapshotServiceTest, SameFrameSameOptionsIsRenderedOnce) {
  auto first = Publish({});
  ASSERT_TRUE(first.ok());
  clock_.Advance(5'000);
  auto second = Publish({}, 60);  // answered from the cache, signed anew
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->key, first->key);
  EXPECT_NE(second->url, first->url);
  EXPECT_NE(second->url.find("X-Amz-Expires=60"), std::string::npos);
  auto other_options = Publish({ImageFormat::kJpeg, 50});
  ASSERT_TRUE(other_options.ok());
  EXPECT_NE(other_options->key, first->key);
  SnapshotStats stats = service_->stats();
  EXPECT_EQ(stats.renders, 2u);
  EXPECT_EQ(stats.cache_hits, 1u);
}

TEST_F(SnapshotServiceTest, KeyframeModeShowsTheFragmentsFirstFrame) {
  auto fragment = store_.LatestFragment("cam");
  ASSERT_TRUE(fragment.ok());
  auto newest = service_->Render("cam", {});
  auto keyframe = service_->Render("cam", {.keyframe_only = true});
  ASSERT_TRUE(newest.ok() && keyframe.ok());
  EXPECT_EQ(keyframe->frame_timestamp_ms, fragment->producer_ts_ms);
  int64_t last_pts = 0;  // in presentation order: the clip has B-frames
  for (const auto& f : fragment->frames) last_pts = std::max(last_pts, f.pts_ms);
  EXPECT_EQ(newest->frame_timestamp_ms,
            fragment->producer_ts_ms + last_pts - fragment->frames[0].pts_ms);
  EXPECT_NE(keyframe->bytes, newest->bytes);
}

TEST_F(SnapshotServiceTest, ConcurrentRequestsShareOneRender) {
  std::promise<void> release = BlockWorker();
  std::vector<std::promise<Result<PublishedImage>>> results(5);
  for (auto& p : results)
    service_->PublishAsync("cam", {}, 600,
                           [&p](Result<PublishedImage> r) { p.set_value(std::move(r)); });
  release.set_value();
  std::string key;
  for (auto& p : results) {
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (key.empty()) key = r->key;
    EXPECT_EQ(r->key, key);
  }
  SnapshotStats stats = service_->stats();
  EXPECT_EQ(stats.renders, 1u);
  EXPECT_EQ(stats.coalesced, 4u);
}

TEST_F(SnapshotServiceTest, UnknownStreamAnswersAtOnceAndAFullQueueOverloads) {
  bool answered = false;
  service_->RenderAsync("nope", {}, [&](Result<Image> r) {
    EXPECT_EQ(r.status().reason(), Reason::kStreamNotFound);
    answered = true;
  });
  EXPECT_TRUE(answered);  // no worker needed to know

  std::promise<void> release = BlockWorker();
  // Four different renders fill the queue of four; the fifth is refused.
  std::vector<std::promise<Status>> queued(4);
  for (int q = 0; q < 4; ++q)
    service_->RenderAsync("cam", {ImageFormat::kJpeg, 10 + q},
                          [&queued, q](Result<Image> r) { queued[q].set_value(r.status()); });
  Status refused;
  service_->RenderAsync("cam", {ImageFormat::kJpeg, 99},
                        [&](Result<Image> r) { refused = r.status(); });
  EXPECT_EQ(refused.code(), Code::kOverloaded);
  release.set_value();
  for (auto& q : queued) EXPECT_TRUE(q.get_future().get().ok());
}

TEST(FrameDecoder, CorruptPacketsGiveMediaError) {
  store::FragmentView f;
  AVCodecParameters par{};
  par.codec_type = AVMEDIA_TYPE_VIDEO;
  par.codec_id = AV_CODEC_ID_H264;
  par.width = 64;
  par.height = 64;
  f.codec = *media::CopyCodecParameters(par);
  media::PacketPtr pkt = media::MakePacket();
  ASSERT_EQ(av_new_packet(pkt.get(), 1000), 0);
  for (int i = 0; i < 1000; ++i) pkt->data[i] = static_cast<uint8_t>(i * 31 + 7);
  pkt->pts = pkt->dts = 0;
  store::Frame frame;
  frame.packet = media::TakePacket(pkt.get());
  frame.keyframe = true;
  f.frames.push_back(frame);
  auto decoded = DecodeNewestFrame(f);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Code::kMediaError);
}

}  // namespace
}  // namespace lastframe::snapshot
