#include "kvs/kvs_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/clock.h"
#include "ingest/push_session.h"
#include "objects/local_store.h"
#include "snapshot/scheduled_images.h"
#include "snapshot/snapshot_service.h"
#include "support/media_check.h"
#include "support/temp_dir.h"

namespace lastframe::kvs {
namespace {

using testing::MakeClip;
using testing::ReadFile;
using testing::TempDir;

constexpr int64_t kNow = 1'764'000'000'000;
constexpr int64_t kProducerStart = kNow - 60'000;

// The answer a callback-style operation gives, waited for.
template <typename T, typename Call>
Result<T> Await(Call call) {
  std::promise<Result<T>> answer;
  call([&answer](Result<T> r) { answer.set_value(std::move(r)); });
  return answer.get_future().get();
}

// A 3 s clip at 10 fps with a keyframe every 10 frames: three fragments of 1 s.
const std::string& Clip() {
  static TempDir* dir = new TempDir();
  static const std::string bytes = ReadFile(MakeClip(
      dir->file("clip.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
                              "-c:v", "libx264", "-g", "10", "-bf", "0", "-sc_threshold", "0"}));
  return bytes;
}

// Pushes the clip into |stream| as a producer that started at kProducerStart.
void PushClip(store::StreamStore& store, const std::string& stream) {
  std::promise<Status> done;
  ingest::PushOptions options;
  options.stream = stream;
  options.producer_start_ms = kProducerStart;
  auto session = ingest::PushSession::Start(
      store, options, {.on_done = [&done](Status s) { done.set_value(std::move(s)); }});
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  const std::string& bytes = Clip();
  if (!(*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))
    (*session)->WaitForSpace();
  (*session)->Finish();
  Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

class KvsServiceTest : public ::testing::Test {
 protected:
  KvsServiceTest() { Reopen(); }

  // A service over the same store and registry file, as after a restart.
  void Reopen(snapshot::SnapshotEngine* engine = nullptr,
              snapshot::ScheduledImages* images = nullptr) {
    service_.reset();
    registry_.reset();
    auto opened = StreamRegistry::Open(dir_.file("kvs-streams.json"));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    registry_ = std::move(*opened);
    service_ = std::make_unique<KvsService>(
        streams_, streams_, *registry_, engine, images, workers_, clock_,
        KvsServiceOptions{.public_url = "http://kvs.test", .images_bucket = "lastframe"});
  }

  // The ARN CreateStream gives |name| when made now.
  static std::string ArnOf(const std::string& name) {
    return "arn:aws:kinesisvideo:us-east-1:000000000000:stream/" + name + "/" +
           std::to_string(kNow);
  }

  std::string Create(const std::string& name, int64_t retention_hours = 1) {
    auto arn = service_->CreateStream({.name = name, .retention_hours = retention_hours});
    EXPECT_TRUE(arn.ok()) << arn.status().ToString();
    return arn.ok() ? *arn : "";
  }

  std::string VersionOf(const std::string& name) {
    auto d = service_->DescribeStream({.name = name});
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::to_string(d->version) : "";
  }

  Result<ListFragmentsResult> List(ListFragmentsRequest r) {
    r.stream.name = "cam";
    return Await<ListFragmentsResult>([&](auto done) { service_->ListFragments(r, done); });
  }

  TempDir dir_;
  ManualClock clock_{kNow};
  store::StreamStore streams_{clock_, {.retention_ms = 3'600'000}};
  WorkerPool workers_{2, 64};
  std::unique_ptr<StreamRegistry> registry_;
  std::unique_ptr<KvsService> service_;
};

TEST_F(KvsServiceTest, CreateDescribeAndDeleteAStream) {
  EXPECT_EQ(Create("cam", 2), ArnOf("cam"));
  auto again = service_->CreateStream({.name = "cam"});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().reason(), Reason::kStreamExists);
  EXPECT_EQ(again.status().code(), Code::kConflict);

  auto by_name = service_->DescribeStream({.name = "cam"});
  ASSERT_TRUE(by_name.ok()) << by_name.status().ToString();
  EXPECT_EQ(by_name->arn, ArnOf("cam"));
  EXPECT_EQ(by_name->retention_hours, 2);
  EXPECT_EQ(by_name->version, 1u);
  EXPECT_EQ(by_name->creation_ms, kNow);
  auto by_arn = service_->DescribeStream({.arn = ArnOf("cam")});
  ASSERT_TRUE(by_arn.ok()) << by_arn.status().ToString();
  EXPECT_EQ(by_arn->name, "cam");

  // An ARN of another creation time, a name and ARN that disagree, a bad name.
  auto stale = service_->DescribeStream({.arn = "arn:aws:kinesisvideo:us-east-1:0:stream/cam/1"});
  EXPECT_EQ(stale.status().reason(), Reason::kStreamNotFound);
  auto mixed = service_->DescribeStream({.name = "other", .arn = ArnOf("cam")});
  EXPECT_EQ(mixed.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(service_->DescribeStream({.name = "no/slash"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(service_->DescribeStream({}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(service_->DescribeStream({.name = "nope"}).status().reason(), Reason::kStreamNotFound);

  Status stale_delete = service_->DeleteStream(
      {.stream = {.arn = ArnOf("cam")}, .current_version = std::string("7")});
  EXPECT_EQ(stale_delete.reason(), Reason::kVersionMismatch);
  EXPECT_TRUE(
      service_->DeleteStream({.stream = {.arn = ArnOf("cam")}, .current_version = std::string("1")})
          .ok());
  EXPECT_EQ(service_->DescribeStream({.name = "cam"}).status().reason(), Reason::kStreamNotFound);
  EXPECT_FALSE(registry_->Find("cam"));
}

TEST_F(KvsServiceTest, CreateStreamBounds) {
  auto tags = service_->CreateStream({.name = "cam", .tags = kMaxTags + 1});
  EXPECT_EQ(tags.status().reason(), Reason::kTooManyTags);
  auto type = service_->CreateStream({.name = "cam", .media_type = "h264"});
  EXPECT_EQ(type.status().code(), Code::kInvalidArgument);
  auto hours = service_->CreateStream({.name = "cam", .retention_hours = kMaxRetentionHours + 1});
  EXPECT_EQ(hours.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(streams_.Find("cam"));
}

TEST_F(KvsServiceTest, ListStreamsPagesByName) {
  for (const char* name : {"a3", "b1", "a1", "a2"}) Create(name);
  auto first = service_->ListStreams({.prefix = "a", .max_results = 2});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->streams.size(), 2u);
  EXPECT_EQ(first->streams[0].name, "a1");
  EXPECT_EQ(first->streams[1].name, "a2");
  ASSERT_TRUE(first->last);
  EXPECT_EQ(*first->last, "a2");
  auto second = service_->ListStreams({.prefix = "a", .after = *first->last, .max_results = 2});
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->streams.size(), 1u);
  EXPECT_EQ(second->streams[0].name, "a3");
  EXPECT_FALSE(second->last);
  auto all = service_->ListStreams({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->streams.size(), 4u);
}

TEST_F(KvsServiceTest, UpdateDataRetentionChecksVersionAndBounds) {
  Create("cam", 1);
  ASSERT_TRUE(service_
                  ->UpdateDataRetention({.stream = {.name = "cam"},
                                         .current_version = "1",
                                         .increase = true,
                                         .change_hours = 2})
                  .ok());
  auto d = service_->DescribeStream({.name = "cam"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->retention_hours, 3);
  EXPECT_EQ(d->version, 2u);
  EXPECT_EQ(streams_.Find("cam")->retention_ms(), 3 * 3'600'000);

  Status stale = service_->UpdateDataRetention(
      {.stream = {.name = "cam"}, .current_version = "1", .increase = true, .change_hours = 1});
  EXPECT_EQ(stale.reason(), Reason::kVersionMismatch);
  Status below = service_->UpdateDataRetention(
      {.stream = {.name = "cam"}, .current_version = "2", .increase = false, .change_hours = 4});
  EXPECT_EQ(below.code(), Code::kInvalidArgument);
  Status above = service_->UpdateDataRetention({.stream = {.name = "cam"},
                                                .current_version = "2",
                                                .increase = true,
                                                .change_hours = kMaxRetentionHours});
  EXPECT_EQ(above.code(), Code::kInvalidArgument);
  EXPECT_EQ(VersionOf("cam"), "2");  // refused changes change nothing
  // Down to 0 hours: the store's own retention again.
  ASSERT_TRUE(service_
                  ->UpdateDataRetention({.stream = {.name = "cam"},
                                         .current_version = "2",
                                         .increase = false,
                                         .change_hours = 3})
                  .ok());
  EXPECT_EQ(streams_.Find("cam")->retention_ms(), KvsServiceOptions{}.default_retention_ms);
}

TEST_F(KvsServiceTest, StreamsAPushMadeAreDescribedSinceTheirFirstFragment) {
  PushClip(streams_, "cam");
  clock_.Advance(5'000);
  auto d = service_->DescribeStream({.name = "cam"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->creation_ms, kNow);
  EXPECT_EQ(d->media_type, "video/h264");
  EXPECT_EQ(d->retention_hours, 1);  // the store's hour, in whole hours
  auto endpoint = service_->GetDataEndpoint({.name = "cam"});
  ASSERT_TRUE(endpoint.ok());
  EXPECT_EQ(*endpoint, "http://kvs.test");
}

ImageGenerationConfig Thumbnails() {
  return {.enabled = true,
          .server_timestamps = false,
          .uri = "s3://lastframe/thumbs",
          .destination_region = "us-east-1",
          .sampling_interval_ms = 3000,
          .jpeg_quality = 60,
          .width = 80};
}

TEST_F(KvsServiceTest, ImageGenerationIsKeptAndRestoredWithoutHttp) {
  auto objects = objects::LocalStore::Open(
      {.root = dir_.file("objects"), .public_url = "http://127.0.0.1:1"}, clock_);
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  snapshot::SnapshotService snapshots(streams_, **objects, workers_, clock_);
  snapshot::ScheduledImages images(snapshots, **objects, workers_, clock_);
  // Without a scheduler there is no image generation.
  Create("cam", 1);
  Create("live", 0);
  EXPECT_EQ(service_->UpdateImageGeneration({{.name = "cam"}, Thumbnails()}).code(),
            Code::kInvalidArgument);
  Reopen(nullptr, &images);

  ImageGenerationConfig elsewhere = Thumbnails();
  elsewhere.uri = "s3://elsewhere/thumbs";
  EXPECT_EQ(service_->UpdateImageGeneration({{.name = "cam"}, elsewhere}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(service_->UpdateImageGeneration({{.name = "live"}, Thumbnails()}).reason(),
            Reason::kNoDataRetention);
  ASSERT_TRUE(service_->UpdateImageGeneration({{.name = "cam"}, Thumbnails()}).ok());
  auto described = service_->DescribeImageGeneration({.name = "cam"});
  ASSERT_TRUE(described.ok());
  ASSERT_TRUE(*described);
  EXPECT_EQ(**described, Thumbnails());
  EXPECT_EQ(
      ImageGenerationJson(**described),
      (nlohmann::json{{"Status", "ENABLED"},
                      {"ImageSelectorType", "PRODUCER_TIMESTAMP"},
                      {"DestinationConfig",
                       {{"Uri", "s3://lastframe/thumbs"}, {"DestinationRegion", "us-east-1"}}},
                      {"SamplingInterval", 3000},
                      {"Format", "JPEG"},
                      {"FormatConfig", {{"JPEGQuality", "60"}}},
                      {"WidthPixels", 80}}));

  // A restart: the registry file keeps the configuration, and restoring it
  // schedules images again (a fresh scheduler knows nothing until then).
  snapshot::ScheduledImages restarted(snapshots, **objects, workers_, clock_);
  Reopen(nullptr, &restarted);
  described = service_->DescribeImageGeneration({.name = "cam"});
  ASSERT_TRUE(described.ok() && *described);
  EXPECT_EQ(**described, Thumbnails());
  PushClip(streams_, "cam");
  restarted.OnFrame("cam");
  EXPECT_EQ(restarted.written() + restarted.failed(), 0u);
  service_->RestoreImageGeneration();
  restarted.OnFrame("cam");
  for (int i = 0; i < 500 && restarted.written() + restarted.failed() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(restarted.written(), 1u);
  auto listed = (*objects)->List({.prefix = "thumbs/cam/"});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->objects.size(), 1u);

  // Removed: described as none.
  ASSERT_TRUE(service_->UpdateImageGeneration({{.name = "cam"}, std::nullopt}).ok());
  described = service_->DescribeImageGeneration({.name = "cam"});
  ASSERT_TRUE(described.ok());
  EXPECT_FALSE(*described);
}

TEST_F(KvsServiceTest, ListFragmentsByRangeAndPage) {
  PushClip(streams_, "cam");
  auto all = List({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->fragments.size(), 3u);
  EXPECT_FALSE(all->next_number);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(all->fragments[i].producer_ts_ms, kProducerStart + 1000 * static_cast<int64_t>(i));
    EXPECT_EQ(all->fragments[i].duration_ms, 1000);
    EXPECT_GT(all->fragments[i].bytes, 0u);
  }
  // Fragments that begin within the range, both ends included.
  auto two = List(
      {.range = TimeRange{.start_ms = kProducerStart + 1000, .end_ms = kProducerStart + 2000}});
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->fragments.size(), 2u);
  EXPECT_EQ(two->fragments[0].number, all->fragments[1].number);
  auto none =
      List({.range = TimeRange{.start_ms = kProducerStart + 1, .end_ms = kProducerStart + 999}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->fragments.empty());
  auto by_server = List({.range = TimeRange{.server = true, .start_ms = kNow, .end_ms = kNow}});
  ASSERT_TRUE(by_server.ok());
  EXPECT_EQ(by_server->fragments.size(), 3u);  // they all arrived at kNow

  auto page = List({.max_results = 2});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->fragments.size(), 2u);
  ASSERT_TRUE(page->next_number);
  EXPECT_EQ(*page->next_number, all->fragments[2].number);
  auto rest = List({.first_number = *page->next_number, .max_results = 2});
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->fragments.size(), 1u);
  EXPECT_FALSE(rest->next_number);

  auto missing = Await<ListFragmentsResult>(
      [&](auto done) { service_->ListFragments({.stream = {.name = "nope"}}, done); });
  EXPECT_EQ(missing.status().reason(), Reason::kStreamNotFound);
  EXPECT_NE(missing.status().message().find("nope is not found"), std::string::npos);
}

TEST_F(KvsServiceTest, GetMediaForFragmentListAndGetClip) {
  PushClip(streams_, "cam");
  auto all = List({});
  ASSERT_TRUE(all.ok() && all->fragments.size() == 3u);
  const uint64_t first = all->fragments[0].number, last = all->fragments[2].number;
  auto media = Await<std::string>([&](auto done) {
    service_->GetMediaForFragmentList({{.name = "cam"}, {last, first}}, done);
  });
  ASSERT_TRUE(media.ok()) << media.status().ToString();
  EXPECT_EQ(media->substr(0, 4), std::string("\x1A\x45\xDF\xA3", 4));  // a Matroska document
  EXPECT_LT(media->find(std::to_string(last)), media->find(std::to_string(first)));
  auto missing = Await<std::string>([&](auto done) {
    service_->GetMediaForFragmentList({{.name = "cam"}, {first, last + 1000}}, done);
  });
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().reason(), Reason::kFragmentNotFound);

  auto clip = Await<ClipResult>([&](auto done) {
    service_->GetClip(
        {{.name = "cam"}, {.start_ms = kProducerStart + 500, .end_ms = kProducerStart + 1500}},
        done);
  });
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  EXPECT_EQ(clip->mp4.substr(4, 4), "ftyp");
  EXPECT_TRUE(clip->truncated.empty());
  auto empty = Await<ClipResult>([&](auto done) {
    service_->GetClip({{.name = "cam"}, {.start_ms = kNow + 60'000, .end_ms = kNow + 61'000}},
                      done);
  });
  EXPECT_EQ(empty.status().reason(), Reason::kNoFragments);
}

// A SnapshotEngine that answers RenderAtAsync from a table, at once.
class FakeEngine final : public snapshot::SnapshotEngine {
 public:
  std::map<int64_t, Status> errors;  // by time; others render "image@<ms>"
  std::vector<snapshot::FrameTime> asked;
  std::vector<snapshot::SnapshotOptions> options;
  void RenderAsync(const std::string&, snapshot::SnapshotOptions, ImageCallback done) override {
    done(Internal("unused"));
  }
  void PublishAsync(const std::string&, snapshot::SnapshotOptions, int64_t,
                    PublishCallback done) override {
    done(Internal("unused"));
  }
  void RenderAtAsync(const std::string&, snapshot::FrameTime at, snapshot::SnapshotOptions o,
                     ImageCallback done) override {
    asked.push_back(at);
    options.push_back(o);
    if (auto it = errors.find(at.at_ms); it != errors.end()) return done(it->second);
    done(snapshot::Image{.bytes = "image@" + std::to_string(at.at_ms)});
  }
  void RenderPreviewAsync(const std::string&, snapshot::PreviewOptions,
                          ImageCallback done) override {
    done(Internal("unused"));
  }
  snapshot::SnapshotStats stats() const override { return {}; }
};

TEST_F(KvsServiceTest, GetImagesSamplesTheRangeThroughTheEngine) {
  FakeEngine engine;
  Reopen(&engine);
  engine.errors[13'000] = NotFound("no fragment then", Reason::kNoMedia);
  engine.errors[16'000] = Status(Code::kMediaError, "undecodable");
  GetImagesRequest r{.stream = {.name = "cam"},
                     .server = true,
                     .start_ms = 10'000,
                     .end_ms = 22'000,
                     .first_ms = 10'000,
                     .interval_ms = 3000,
                     .max_results = 3};
  auto page = Await<GetImagesResult>([&](auto done) { service_->GetImages(r, done); });
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->images.size(), 3u);
  EXPECT_EQ(page->images[0].bytes, "image@10000");
  EXPECT_EQ(page->images[1].error, SampledImage::Error::kNoMedia);
  EXPECT_EQ(page->images[2].error, SampledImage::Error::kMediaError);
  ASSERT_TRUE(page->next_ms);
  EXPECT_EQ(*page->next_ms, 19'000);
  ASSERT_EQ(engine.asked.size(), 3u);
  EXPECT_TRUE(engine.asked[0].server_timeline);
  // Images Kinesis Video may ask for (up to 3840x2160) past --max-render-pixels are scaled
  // down to it, never refused.
  for (const auto& o : engine.options) EXPECT_TRUE(o.shrink_to_fit);

  r.first_ms = *page->next_ms;
  auto last = Await<GetImagesResult>([&](auto done) { service_->GetImages(r, done); });
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->images.size(), 2u);  // 19 s and 22 s: the end is included
  EXPECT_EQ(last->images[1].time_ms, 22'000);
  EXPECT_FALSE(last->next_ms);

  // An engine out of room fails the whole call, and is asked no more.
  engine.asked.clear();
  engine.errors[10'000] = Status(Code::kOverloaded, "busy");
  r.first_ms = 10'000;
  auto busy = Await<GetImagesResult>([&](auto done) { service_->GetImages(r, done); });
  EXPECT_EQ(busy.status().code(), Code::kOverloaded);
  EXPECT_EQ(engine.asked.size(), 1u);
  engine.errors[10'000] = NotFound("no stream named 'cam'", Reason::kStreamNotFound);
  auto unknown = Await<GetImagesResult>([&](auto done) { service_->GetImages(r, done); });
  EXPECT_EQ(unknown.status().reason(), Reason::kStreamNotFound);
}

// Collects what a GetMedia session writes.
class Collector final : public ChunkSink {
 public:
  bool Write(std::string bytes) override {
    std::lock_guard lock(mu_);
    bytes_ += bytes;
    return true;
  }
  bool open() const override { return !ended_; }
  void End() override { ended_ = true; }
  std::string bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  bool ended() const { return ended_; }

 private:
  mutable std::mutex mu_;
  std::string bytes_;
  std::atomic<bool> ended_{false};
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(KvsServiceTest, GetMediaFollowsTheStreamIntoASink) {
  PushClip(streams_, "cam");
  auto fragments = streams_.Find("cam")->Fragments();
  ASSERT_EQ(fragments.size(), 3u);
  using Type = StartSelector::Type;
  EXPECT_EQ(*FirstFragmentNumber(fragments, {.type = Type::kNow}), fragments[2].number);
  EXPECT_EQ(*FirstFragmentNumber(fragments,
                                 {.type = Type::kContinuationToken, .number = fragments[0].number}),
            fragments[1].number);
  EXPECT_EQ(*FirstFragmentNumber(fragments, {.type = Type::kProducerTimestamp,
                                             .timestamp_ms = kProducerStart + 1500}),
            fragments[1].number);
  EXPECT_EQ(FirstFragmentNumber(fragments, {.type = Type::kFragmentNumber, .number = 1})
                .status()
                .reason(),
            Reason::kFragmentNotFound);

  auto session = service_->GetMedia({{.name = "cam"}, {.type = Type::kEarliest}});
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  auto sink = std::make_shared<Collector>();
  session->Start(sink);
  const std::string tag = "AWS_KINESISVIDEO_CONTINUATION_TOKEN";
  for (int i = 0; i < 500 && Count(sink->bytes(), tag) < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(Count(sink->bytes(), tag), 3u);  // one chunk per fragment, each ended
  EXPECT_EQ(Count(sink->bytes(), std::string("\x1A\x45\xDF\xA3", 4)), 3u);
  service_->Shutdown();
  EXPECT_TRUE(sink->ended());
  EXPECT_EQ(service_->GetMedia({{.name = "cam"}, {}}).status().code(), Code::kUnavailable);
}

TEST_F(KvsServiceTest, GetMediaSessionsPerStreamAreBounded) {
  Create("cam");
  std::vector<MediaFollowers::Session> held;
  for (size_t i = 0; i < KvsServiceOptions{}.max_get_media_per_stream; ++i) {
    auto s = service_->GetMedia({{.name = "cam"}, {}});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    held.push_back(std::move(*s));
  }
  auto refused = service_->GetMedia({{.name = "cam"}, {}});
  EXPECT_EQ(refused.status().reason(), Reason::kTooManyGetMediaConnections);
  EXPECT_EQ(refused.status().code(), Code::kOverloaded);
  held.pop_back();  // never started: its place is given back
  EXPECT_TRUE(service_->GetMedia({{.name = "cam"}, {}}).ok());
  EXPECT_EQ(service_->GetMedia({{.name = "nope"}, {}}).status().reason(), Reason::kStreamNotFound);
}

}  // namespace
}  // namespace lastframe::kvs
