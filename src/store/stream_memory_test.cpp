// Retention on disk, the newest in memory: a stream with an archive keeps in
// memory only the frames snapshots need, and every reader still gets every
// retained fragment's frames, read back from its file.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/test_metrics.h"
#include "store/fragment_archive.h"
#include "store/stream_store.h"
#include "support/media_check.h"
#include "support/push.h"
#include "support/temp_dir.h"

namespace lastframe::store {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr const char* kGauge = "lastframe_store_memory_bytes";

// Real fragments (H.264 with B-frames, 10 frames each), cut by the real push
// path into |source|, a store of their own without an archive: the frames
// every test appends and expects back. |source| outlives the test, so that its
// memory stays put while the test reads the process's gauge.
std::vector<FragmentView> SourceFragments(const TempDir& dir, StreamStore& source) {
  std::string clip = testing::MakeClip(
      dir.file("c.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-t", "4", "-c:v",
                          "libx264", "-g", "10", "-bf", "2", "-sc_threshold", "0"});
  Status pushed = testing::PushBytes(source, "src", testing::ReadFile(clip));
  EXPECT_TRUE(pushed.ok()) << pushed.ToString();
  return source.Find("src")->Fragments();
}

void ExpectSameFrames(const FragmentView& got, const FragmentView& want, const std::string& what) {
  ASSERT_EQ(got.frames.size(), want.frames.size()) << what;
  EXPECT_TRUE(got.codec) << what;
  EXPECT_EQ(got.bytes, want.bytes) << what;
  for (size_t j = 0; j < want.frames.size(); ++j) {
    const Frame& a = want.frames[j];
    const Frame& b = got.frames[j];
    ASSERT_TRUE(b.packet) << what << " frame " << j;
    EXPECT_EQ(b.pts_ms, a.pts_ms) << what << " frame " << j;
    EXPECT_EQ(b.keyframe, a.keyframe) << what << " frame " << j;
    ASSERT_EQ(b.size(), a.size()) << what << " frame " << j;
    EXPECT_EQ(0, std::memcmp(b.packet->data, a.packet->data, a.size())) << what << " frame " << j;
  }
}

// A stream store with a real archive in a temp dir, fed the source fragments
// as a producer would, each persisted through StreamStore::PersistAsync.
class StreamMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = SourceFragments(dir_, source_store_);
    ASSERT_GE(source_.size(), 4u);
    auto opened = FragmentArchive::Open(dir_.path() / "archive");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    archive_ = std::move(*opened);
    store_.SetArchive(archive_.get());
    stream_ = *store_.Open("cam");
  }

  // Begins fragment |i| of the source (its first |frames| frames; all if 0).
  uint64_t Begin(size_t i, size_t frames = 0) {
    const FragmentView& f = source_[i];
    if (frames == 0) frames = f.frames.size();
    uint64_t number = stream_->BeginFragment(f.codec, f.producer_ts_ms, f.timecode_ms, f.frames[0],
                                             clock_.NowMs());
    for (size_t j = 1; j < frames; ++j) {
      clock_.Advance(100);
      EXPECT_TRUE(stream_->Append(f.frames[j], clock_.NowMs()));
    }
    clock_.Advance(100);
    return number;
  }
  // Completes the open fragment; returns its view, to persist.
  FragmentView Complete() {
    auto done = stream_->CompleteFragment();
    EXPECT_TRUE(done);
    return done ? *done : FragmentView{};
  }
  // Persists |f| and waits for its outcome (the stream is told before it).
  void Persist(const FragmentView& f) {
    std::promise<Status> outcome;
    store_.PersistAsync("cam", f, [&](Status s) { outcome.set_value(std::move(s)); });
    Status persisted = outcome.get_future().get();
    EXPECT_TRUE(persisted.ok()) << persisted.ToString();
  }
  // Begins, completes and persists fragment |i| of the source.
  uint64_t Add(size_t i) {
    uint64_t number = Begin(i);
    Persist(Complete());
    return number;
  }
  fs::path FileOf(uint64_t number) const {
    const std::string infix = "-" + std::to_string(number) + "-";
    for (const auto& e : fs::directory_iterator(dir_.path() / "archive" / "cam"))
      if (e.path().filename().string().find(infix) != std::string::npos) return e.path();
    return {};
  }

  TempDir dir_;
  StreamStore source_store_{SystemClock::Get(), {.retention_ms = 3'600'000}};
  ManualClock clock_{1'700'000'000'000};
  StreamStore store_{clock_, {.retention_ms = 3'600'000, .max_bytes_per_stream = 64 << 20}};
  std::unique_ptr<FragmentArchive> archive_;
  std::shared_ptr<Stream> stream_;
  std::vector<FragmentView> source_;
};

TEST_F(StreamMemoryTest, OnceOnDiskOnlyWhatSnapshotsNeedStaysInMemory) {
  metrics::test::MetricDeltas gauge({kGauge});
  Add(0);
  // Complete and on disk, but the newest with none arriving: kept.
  EXPECT_EQ(stream_->FragmentsInMemory(), 1u);
  EXPECT_EQ(stream_->MemoryBytes(), source_[0].bytes);
  EXPECT_EQ(gauge[kGauge], static_cast<double>(source_[0].bytes));
  // The next one's keyframe arrives: the one before leaves memory.
  Begin(1, 1);
  EXPECT_EQ(stream_->FragmentsInMemory(), 1u);
  EXPECT_EQ(stream_->MemoryBytes(), source_[1].frames[0].size());
  for (size_t j = 1; j < source_[1].frames.size(); ++j)
    ASSERT_TRUE(stream_->Append(source_[1].frames[j], clock_.NowMs()));
  FragmentView second = Complete();
  // Persisted late (an asynchronous writer): held until then, evicted at once
  // after when another fragment arrives meanwhile.
  Begin(2);
  EXPECT_EQ(stream_->FragmentsInMemory(), 2u);
  Persist(second);
  EXPECT_EQ(stream_->FragmentsInMemory(), 1u);
  EXPECT_EQ(stream_->MemoryBytes(), source_[2].bytes);
  Persist(Complete());
  Add(3);
  EXPECT_EQ(stream_->FragmentsInMemory(), 1u);
  EXPECT_EQ(stream_->MemoryBytes(), source_[3].bytes);
  EXPECT_EQ(gauge[kGauge], static_cast<double>(source_[3].bytes));
  // The retained bytes and counts are memory's and the disk's together.
  StreamInfo info = store_.List()[0];
  EXPECT_EQ(info.fragment_count, 4u);
  EXPECT_EQ(info.bytes, source_[0].bytes + source_[1].bytes + source_[2].bytes + source_[3].bytes);
  EXPECT_NEAR(info.fps, 10.0, 0.5);
  EXPECT_GT(info.bitrate_bps, 0);
  stream_.reset();
  ASSERT_TRUE(store_.Remove("cam").ok());
  EXPECT_EQ(gauge[kGauge], 0);  // a stream forgotten gives its memory back
}

TEST_F(StreamMemoryTest, EveryReaderGetsTheFramesBackByteForByte) {
  std::vector<uint64_t> numbers;
  for (size_t i = 0; i < 3; ++i) numbers.push_back(Add(i));
  numbers.push_back(Begin(3, 4));  // still arriving, 4 frames in
  ASSERT_EQ(stream_->FragmentsInMemory(), 1u);
  FragmentView arriving = source_[3];
  arriving.frames.resize(4);
  arriving.bytes = 0;
  for (const Frame& f : arriving.frames) arriving.bytes += f.size();
  auto expect_all = [&](const std::vector<FragmentView>& got, const std::string& what) {
    ASSERT_EQ(got.size(), 4u) << what;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(got[i].number, numbers[i]) << what;
      EXPECT_TRUE(got[i].complete) << what;
      ExpectSameFrames(got[i], source_[i], what + " #" + std::to_string(i));
    }
    EXPECT_FALSE(got[3].complete) << what;
    ExpectSameFrames(got[3], arriving, what + " arriving");
  };
  auto all = store_.Fragments("cam", {});
  ASSERT_TRUE(all.ok());
  expect_all(*all, "Fragments");
  FragmentQuery listing;
  listing.with_frames = false;  // the index alone (AListingWithoutMediaReadsNoFileBack)
  auto listed = store_.Fragments("cam", listing);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*listed)[i].number, numbers[i]);
    EXPECT_EQ((*listed)[i].frame_count, i < 3 ? source_[i].frames.size() : 4u);
    EXPECT_TRUE((*listed)[i].frames.empty());
  }
  expect_all(stream_->Fragments(), "Stream::Fragments");
  expect_all(stream_->FragmentsFrom(numbers[0]), "FragmentsFrom");
  // Durations and times are the index's, as they were in memory.
  auto before_eviction = (*all)[1];
  EXPECT_EQ(before_eviction.duration_ms, source_[1].duration_ms);
  EXPECT_EQ(before_eviction.producer_ts_ms, source_[1].producer_ts_ms);
  EXPECT_EQ(before_eviction.timecode_ms, source_[1].timecode_ms);

  auto picked = store_.FragmentsByNumber("cam", {numbers[2], numbers[0]});
  ASSERT_TRUE(picked.ok()) << picked.status().ToString();
  ASSERT_EQ(picked->size(), 2u);
  ExpectSameFrames((*picked)[0], source_[2], "by number #2");
  ExpectSameFrames((*picked)[1], source_[0], "by number #0");
  // Reading back leaves memory as it was.
  EXPECT_EQ(stream_->FragmentsInMemory(), 1u);
  EXPECT_EQ(stream_->MemoryBytes(), arriving.bytes);

  auto latest = store_.LatestFragment("cam");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->number, numbers[3]);
  ExpectSameFrames(*latest, arriving, "latest");
}

TEST_F(StreamMemoryTest, AFileGoneIsAFragmentNoLongerRetained) {
  std::vector<uint64_t> numbers;
  for (size_t i = 0; i < 3; ++i) numbers.push_back(Add(i));
  const fs::path first = FileOf(numbers[0]);
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(fs::remove(first));  // trimmed between the listing and the read
  auto missing = store_.FragmentsByNumber("cam", {numbers[1], numbers[0]});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason(), Reason::kFragmentNotFound);
  EXPECT_NE(missing.status().message().find(std::to_string(numbers[0])), std::string::npos);
  auto all = store_.Fragments("cam", {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);  // left out
  EXPECT_EQ((*all)[0].number, numbers[1]);
  ExpectSameFrames((*all)[0], source_[1], "the next one");
  EXPECT_EQ(stream_->FragmentsFrom(0).size(), 2u);
  // The whole stream's folder gone (forgotten by the archive): the same, no crash.
  archive_->Forget("cam");
  archive_->WaitForDeletions();
  EXPECT_EQ(store_.FragmentsByNumber("cam", {numbers[1]}).status().reason(),
            Reason::kFragmentNotFound);
  ASSERT_EQ(store_.Fragments("cam", {})->size(), 1u);  // the newest, from memory
  ExpectSameFrames(*store_.LatestFragment("cam"), source_[2], "latest");
}

TEST_F(StreamMemoryTest, AListingWithoutMediaReadsNoFileBack) {
  std::vector<uint64_t> numbers = {Add(0), Add(1)};
  numbers.push_back(Begin(2, 3));  // arriving, in memory
  // Every file gone: a listing that wants no media cannot tell, because it reads none.
  ASSERT_TRUE(fs::remove(FileOf(numbers[0])));
  ASSERT_TRUE(fs::remove(FileOf(numbers[1])));
  FragmentQuery index;
  index.with_frames = false;
  auto listed = store_.Fragments("cam", index);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const FragmentView& f = (*listed)[i];
    EXPECT_EQ(f.number, numbers[i]);
    EXPECT_EQ(f.frame_count, i < 2 ? source_[i].frames.size() : 3u) << i;
    EXPECT_TRUE(f.frames.empty()) << i;  // the same shape whatever is in memory
    EXPECT_EQ(f.codec, nullptr) << i;
  }
  // Asked with media, the fragments whose files went are left out.
  auto full = store_.Fragments("cam", {});
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  EXPECT_EQ(full->front().number, numbers[2]);
  EXPECT_EQ(full->front().frame_count, 3u);
}

TEST_F(StreamMemoryTest, TheNewestFrameIsAlwaysInReach) {
  Add(0);
  uint64_t second = Add(1);
  // A fragment cut short is dropped: the one before is the newest again,
  // though its frames left memory when the dropped one began.
  Begin(2, 3);
  ASSERT_EQ(stream_->FragmentsInMemory(), 1u);
  ASSERT_TRUE(stream_->DropOpenFragment());
  EXPECT_EQ(stream_->FragmentsInMemory(), 0u);
  EXPECT_EQ(stream_->MemoryBytes(), 0u);
  auto latest = store_.LatestFragment("cam");
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->number, second);
  ExpectSameFrames(*latest, source_[1], "read back");
  // Then a fragment arriving is its own newest from its first frame on.
  uint64_t third = Begin(3, 1);
  latest = store_.LatestFragment("cam");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->number, third);
  ASSERT_EQ(latest->frames.size(), 1u);
  EXPECT_TRUE(latest->frames[0].keyframe);
}

TEST_F(StreamMemoryTest, RestoredFragmentsStayOnDiskButTheNewest) {
  std::vector<uint64_t> numbers;
  for (size_t i = 0; i < 4; ++i) numbers.push_back(Add(i));
  metrics::test::MetricDeltas gauge({kGauge});
  // A restart: a new store, recovering from the same folder.
  auto reopened = FragmentArchive::Open(dir_.path() / "archive");
  ASSERT_TRUE(reopened.ok());
  RecoveryReport report = (*reopened)->Recover();
  ASSERT_EQ(report.fragments, 4u);
  StreamStore restarted(clock_, {.retention_ms = 3'600'000});
  restarted.Restore(std::move(report.streams));
  auto cam = restarted.Find("cam");
  ASSERT_TRUE(cam);
  // Restored before the archive is set (as the server does): nowhere to read
  // them back from yet, so they wait in memory for it.
  EXPECT_EQ(cam->FragmentsInMemory(), 4u);
  restarted.SetArchive(reopened->get());
  EXPECT_EQ(cam->FragmentsInMemory(), 1u);
  EXPECT_EQ(cam->MemoryBytes(), source_[3].bytes);
  EXPECT_EQ(gauge[kGauge], static_cast<double>(source_[3].bytes));
  EXPECT_EQ(restarted.List()[0].bytes,
            source_[0].bytes + source_[1].bytes + source_[2].bytes + source_[3].bytes);
  auto all = restarted.Fragments("cam", {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*all)[i].number, numbers[i]);
    ExpectSameFrames((*all)[i], source_[i], "restored #" + std::to_string(i));
  }
  ExpectSameFrames(*restarted.LatestFragment("cam"), source_[3], "restored latest");
  // A producer carries on: the restored newest leaves memory at its first frame.
  auto writer = *restarted.Open("cam");
  const FragmentView& f = source_[0];
  writer->BeginFragment(f.codec, f.producer_ts_ms + 10'000, f.timecode_ms + 10'000, f.frames[0],
                        clock_.NowMs());
  EXPECT_EQ(cam->FragmentsInMemory(), 1u);
  EXPECT_EQ(cam->MemoryBytes(), f.frames[0].size());
}

// Fake frames are enough where nothing is written to disk.
Frame FakeFrame(int64_t pts_ms, bool key) {
  media::PacketPtr pkt = media::MakePacket();
  EXPECT_EQ(av_new_packet(pkt.get(), 1000), 0);
  pkt->pts = pkt->dts = pts_ms;
  pkt->duration = 200;
  if (key) pkt->flags |= AV_PKT_FLAG_KEY;
  Frame f;
  f.pts_ms = f.dts_ms = pts_ms;
  f.keyframe = key;
  f.packet = media::TakePacket(pkt.get());
  return f;
}

// Pushes |gops| 2 s fragments (10 frames at 5 fps) into |s|, advancing |clock|.
void PushFakeGops(Stream& s, ManualClock& clock, int gops, int64_t* pts) {
  for (int g = 0; g < gops; ++g) {
    s.BeginFragment(nullptr, 1'000'000 + *pts, *pts, FakeFrame(*pts, true), clock.NowMs());
    for (int i = 1; i < 10; ++i) {
      *pts += 200;
      clock.Advance(200);
      ASSERT_TRUE(s.Append(FakeFrame(*pts, false), clock.NowMs()));
    }
    *pts += 200;
    clock.Advance(200);
  }
}

TEST(StreamMemory, WithoutAnArchiveMemoryRetentionBoundsWhatIsKept) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {.retention_ms = 60'000, .memory_retention_ms = 5'000});
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushFakeGops(*s, clock, 10, &pts);  // 20 s, well within the retention
  // Dropped as fragments begin: what ended more than 5 s before goes.
  StreamInfo info = store.List()[0];
  EXPECT_LE(info.fragment_count, 4u);
  EXPECT_GE(info.fragment_count, 3u);
  EXPECT_EQ(s->MemoryBytes(), info.bytes);
  // And by the sweeper once the producer stops; the open fragment stays.
  ASSERT_TRUE(s->CompleteFragment());
  clock.Advance(10'000);
  store.ApplyRetention();
  EXPECT_EQ(store.List()[0].fragment_count, 0u);
  EXPECT_EQ(s->MemoryBytes(), 0u);
  EXPECT_EQ(store.LatestFragment("cam").status().reason(), Reason::kNoFrame);
}

TEST(StreamMemory, WithAnArchiveMemoryRetentionIsNotTheBound) {
  TempDir dir;
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  ASSERT_TRUE(archive.ok());
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {.retention_ms = 60'000, .memory_retention_ms = 5'000});
  store.SetArchive(archive->get());
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushFakeGops(*s, clock, 10, &pts);  // never persisted: all still in memory
  store.ApplyRetention();
  EXPECT_EQ(store.List()[0].fragment_count, 10u);
  EXPECT_EQ(s->FragmentsInMemory(), 10u);  // nothing on disk to read them back from
}

}  // namespace
}  // namespace lastframe::store
