#include "store/stream_store.h"

#include <gtest/gtest.h>

namespace lastframe::store {
namespace {

Frame MakeTestFrame(int64_t pts_ms, bool key, int size = 1000, int64_t duration_ms = 200) {
  media::PacketPtr pkt = media::MakePacket();
  EXPECT_EQ(av_new_packet(pkt.get(), size), 0);
  pkt->pts = pkt->dts = pts_ms;
  pkt->duration = duration_ms;
  if (key) pkt->flags |= AV_PKT_FLAG_KEY;
  Frame f;
  f.pts_ms = f.dts_ms = pts_ms;
  f.keyframe = key;
  f.packet = media::TakePacket(pkt.get());
  return f;
}

media::SharedCodecParameters H264Params(int w, int h) {
  AVCodecParameters par{};
  par.codec_type = AVMEDIA_TYPE_VIDEO;
  par.codec_id = AV_CODEC_ID_H264;
  par.width = w;
  par.height = h;
  return *media::CopyCodecParameters(par);
}

// Pushes |gops| fragments of |frames| frames each at 5 fps, advancing |clock|.
void PushGops(Stream& s, ManualClock& clock, int gops, int frames, int64_t* pts, int size = 1000) {
  for (int g = 0; g < gops; ++g) {
    s.BeginFragment(H264Params(640, 480), 1'000'000 + *pts, *pts, MakeTestFrame(*pts, true, size),
                    clock.NowMs());
    for (int i = 1; i < frames; ++i) {
      *pts += 200;
      clock.Advance(200);
      ASSERT_TRUE(s.Append(MakeTestFrame(*pts, false, size), clock.NowMs()));
    }
    *pts += 200;
    clock.Advance(200);
  }
}

TEST(StreamStore, UnknownStreamAndEmptyStreamAreDistinctNotFounds) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {});
  auto missing = store.LatestFragment("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason(), Reason::kStreamNotFound);
  (void)store.Open("cam");
  auto empty = store.LatestFragment("cam");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().reason(), Reason::kNoFrame);
}

// The range reads every listing, clip and Kinesis Video range operation goes through.
TEST(StreamStore, RangeReadsSelectByTimelineMatchNumberAndCompleteness) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {.retention_ms = 3'600'000});
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushGops(*s, clock, 3, 5,
           &pts);  // producer times 1'000'000 + [0, 1000), [1000, 2000), [2000, ...)
  auto all = store.Fragments("cam", {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_FALSE(all->back().complete);  // the last is still arriving
  auto numbers = [](const std::vector<FragmentView>& v) {
    std::vector<uint64_t> out;
    for (const auto& f : v) out.push_back(f.number);
    return out;
  };
  const uint64_t n0 = (*all)[0].number, n1 = (*all)[1].number, n2 = (*all)[2].number;

  FragmentQuery q;
  q.start_ms = 1'001'000;  // where the first ends and the second begins
  q.end_ms = 1'001'500;
  EXPECT_EQ(numbers(*store.Fragments("cam", q)),
            (std::vector<uint64_t>{n1}));  // touching is not overlapping
  q.match = FragmentQuery::Match::kTouches;
  EXPECT_EQ(numbers(*store.Fragments("cam", q)), (std::vector<uint64_t>{n0, n1}));
  q.match = FragmentQuery::Match::kStartsWithin;
  q.start_ms = 1'000'500;
  q.end_ms = 1'003'000;
  EXPECT_EQ(numbers(*store.Fragments("cam", q)), (std::vector<uint64_t>{n1, n2}));
  q.complete_only = true;
  EXPECT_EQ(numbers(*store.Fragments("cam", q)), (std::vector<uint64_t>{n1}));
  q = {};
  q.first_number = n1;
  EXPECT_EQ(numbers(*store.Fragments("cam", q)), (std::vector<uint64_t>{n1, n2}));
  // The server's timeline is the arrival clock's, not the producer's.
  q = {};
  q.timeline = FragmentQuery::Timeline::kServer;
  q.start_ms = (*all)[2].server_ts_ms;
  EXPECT_EQ(numbers(*store.Fragments("cam", q)), (std::vector<uint64_t>{n2}));
  q.timeline = FragmentQuery::Timeline::kProducer;
  EXPECT_TRUE(store.Fragments("cam", q)->empty());  // producer times are far earlier

  auto picked = store.FragmentsByNumber("cam", {n2, n0});
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(numbers(*picked), (std::vector<uint64_t>{n2, n0}));  // in the order asked
  EXPECT_EQ((*picked)[1].frames.size(), 5u);
  auto missing = store.FragmentsByNumber("cam", {n0, n2 + 7});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason(), Reason::kFragmentNotFound);
  EXPECT_NE(missing.status().message().find(std::to_string(n2 + 7)), std::string::npos);
  EXPECT_EQ(store.Fragments("nobody", {}).status().reason(), Reason::kStreamNotFound);
  EXPECT_EQ(store.FragmentsByNumber("nobody", {n0}).status().reason(), Reason::kStreamNotFound);
}

TEST(StreamStore, LatestIncludesTheFragmentStillArriving) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {});
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushGops(*s, clock, 2, 10, &pts);
  uint64_t open =
      s->BeginFragment(H264Params(640, 480), 0, pts, MakeTestFrame(pts, true), clock.NowMs());
  ASSERT_TRUE(s->Append(MakeTestFrame(pts + 200, false), clock.NowMs()));
  auto latest = store.LatestFragment("cam");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->number, open);
  EXPECT_FALSE(latest->complete);
  ASSERT_EQ(latest->frames.size(), 2u);
  EXPECT_TRUE(latest->frames[0].keyframe);
  EXPECT_EQ(latest->frames[1].pts_ms, pts + 200);
  auto done = s->CompleteFragment();
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->complete);
  EXPECT_EQ(done->duration_ms, 400);
  EXPECT_FALSE(s->Append(MakeTestFrame(pts + 400, false), clock.NowMs()));
}

TEST(StreamStore, FragmentNumbersRiseAcrossStreams) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {});
  auto a = *store.Open("a");
  auto b = *store.Open("b");
  uint64_t n1 = a->BeginFragment(H264Params(64, 64), 0, 0, MakeTestFrame(0, true), 0);
  uint64_t n2 = b->BeginFragment(H264Params(64, 64), 0, 0, MakeTestFrame(0, true), 0);
  uint64_t n3 = a->BeginFragment(H264Params(64, 64), 0, 0, MakeTestFrame(0, true), 0);
  EXPECT_LT(n1, n2);
  EXPECT_LT(n2, n3);
}

TEST(StreamStore, RetentionDropsOldFragments) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {.retention_ms = 5'000});
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushGops(*s, clock, 3, 10, &pts);  // 3 x 2 s
  s->CompleteFragment();
  EXPECT_EQ(store.List()[0].fragment_count, 3u);
  clock.Advance(1'000);  // only the first fragment's last frame is now > 5 s old
  store.ApplyRetention();
  EXPECT_EQ(store.List()[0].fragment_count, 2u);
  clock.Advance(60'000);
  store.ApplyRetention();
  StreamInfo info = store.List()[0];
  EXPECT_EQ(info.fragment_count, 0u);
  EXPECT_EQ(info.state, "idle");
  EXPECT_EQ(store.LatestFragment("cam").status().reason(), Reason::kNoFrame);
}

TEST(StreamStore, BytesPerStreamAreBounded) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {.retention_ms = 3'600'000, .max_bytes_per_stream = 50'000});
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushGops(*s, clock, 10, 10, &pts, 1000);  // 10 x 10 kB
  s->CompleteFragment();
  store.ApplyRetention();
  StreamInfo info = store.List()[0];
  EXPECT_LE(info.bytes, 50'000u);
  EXPECT_GE(info.fragment_count, 4u);
}

TEST(StreamStore, OneWriterAtATime) {
  ManualClock clock(0);
  StreamStore store(clock, {});
  auto s = *store.Open("cam");
  EXPECT_TRUE(s->AcquireWriter());
  EXPECT_FALSE(s->AcquireWriter());
  s->ReleaseWriter("");
  EXPECT_TRUE(s->AcquireWriter());
}

TEST(StreamStore, ObserverHearsEveryStoredFrame) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {});
  std::vector<std::string> heard;
  store.SetFrameObserver([&](const std::string& s) { heard.push_back(s); });
  auto s = *store.Open("cam");
  int64_t pts = 0;
  PushGops(*s, clock, 2, 3, &pts);  // 2 fragments x 3 frames
  EXPECT_EQ(heard, std::vector<std::string>(6, "cam"));
  s->CompleteFragment();
  EXPECT_FALSE(s->Append(MakeTestFrame(pts, false), clock.NowMs()));
  EXPECT_EQ(heard.size(), 6u);  // a refused frame is not announced
}

TEST(StreamStore, InfoDescribesTheStream) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {});
  auto s = *store.Open("cam");
  s->AcquireWriter();
  int64_t pts = 0;
  PushGops(*s, clock, 2, 10, &pts);
  StreamInfo info = store.List()[0];
  EXPECT_EQ(info.name, "cam");
  EXPECT_EQ(info.state, "live");
  EXPECT_TRUE(info.producer_connected);
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.width, 640);
  EXPECT_EQ(info.height, 480);
  EXPECT_NEAR(info.fps, 5.0, 0.01);
  EXPECT_NEAR(static_cast<double>(info.bitrate_bps), 40'000.0, 1000.0);  // 1000 B x 5 fps
  s->ReleaseWriter("connection reset");
  clock.Advance(30'000);
  info = store.List()[0];
  EXPECT_EQ(info.state, "error");
  EXPECT_EQ(info.last_error, "connection reset");
}

TEST(StreamStore, StreamsPastTheLimitAreRefusedAndRemovingOneMakesRoom) {
  ManualClock clock(1'700'000'000'000);
  Limit limit("streams", "streams", 2);
  StreamStore store(clock, {.stream_limit = &limit});
  ASSERT_TRUE(store.Open("a").ok());
  ASSERT_TRUE(store.Create("b", std::nullopt).ok());
  auto refused = store.Open("c");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().reason(), Reason::kTooManyStreams);
  EXPECT_EQ(refused.status().code(), Code::kOverloaded);
  EXPECT_EQ(store.Create("c", std::nullopt).status().reason(), Reason::kTooManyStreams);
  EXPECT_TRUE(store.Open("a").ok());  // an existing stream is no new one
  EXPECT_EQ(limit.in_use(), 2u);
  EXPECT_EQ(limit.refusals(), 2u);
  ASSERT_TRUE(store.Remove("a").ok());
  EXPECT_TRUE(store.Open("c").ok());
}

TEST(StreamStore, AStreamThatNeverGotAFrameAndHasNoOwnerIsForgottenAfterItsRetention) {
  ManualClock clock(1'700'000'000'000);
  Limit limit("streams", "streams", 10);
  StreamStore store(clock, {.retention_ms = 5'000, .stream_limit = &limit});
  auto headers_only = *store.Open("headers-only");
  ASSERT_TRUE(headers_only->AcquireWriter());
  headers_only->ReleaseWriter("not a Matroska stream");
  (void)store.Create("created", std::nullopt);  // made ahead of its producer: kept
  auto framed = *store.Open("framed");
  int64_t pts = 0;
  PushGops(*framed, clock, 1, 2, &pts);
  (void)framed->CompleteFragment();
  auto writing = *store.Open("writing");  // a producer still connected: kept
  ASSERT_TRUE(writing->AcquireWriter());
  clock.Advance(5'001);
  store.ApplyRetention();
  EXPECT_FALSE(store.Find("headers-only"));
  EXPECT_TRUE(store.Find("created"));
  EXPECT_TRUE(store.Find("framed"));  // its fragments aged out, but it had frames
  EXPECT_TRUE(store.Find("writing"));
  EXPECT_EQ(limit.in_use(), 3u);
  // Opening a stream for writing renews it: it is not forgotten under its producer.
  writing->ReleaseWriter("");
  clock.Advance(4'000);
  (void)store.Open("writing");
  clock.Advance(4'000);
  store.ApplyRetention();
  EXPECT_TRUE(store.Find("writing"));
}

TEST(StreamStore, OpenForWritingTakesAFreeStreamRefusesAHeldOneAndRemakesADeletedOne) {
  ManualClock clock(1'700'000'000'000);
  StreamStore store(clock, {});
  auto first = store.OpenForWriting("cam");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(store.OpenForWriting("cam").status().reason(), Reason::kStreamBusy);
  // Deleted between a producer's open and its claim: the claim goes to a new stream.
  (*first)->ReleaseWriter("");
  auto held = *store.Open("cam");
  ASSERT_TRUE(store.Remove("cam").ok());
  EXPECT_TRUE(held->closed());
  EXPECT_FALSE(held->AcquireWriter());
  auto again = store.OpenForWriting("cam");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->get(), held.get());
  EXPECT_EQ(store.Find("cam"), *again);
}

}  // namespace
}  // namespace lastframe::store
