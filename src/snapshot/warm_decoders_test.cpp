#include "snapshot/warm_decoders.h"

#include <gtest/gtest.h>

#include <future>

#include "snapshot/frame_decoder.h"
#include "store/stream_store.h"
#include "support/media_check.h"
#include "support/push.h"
#include "support/temp_dir.h"

namespace lastframe::snapshot {
namespace {

using testing::MakeClip;
using testing::ReadFile;
using testing::TempDir;

// Every fragment of an ffmpeg-made clip, as lastframe's ingest cuts it.
std::vector<store::FragmentView> Fragments(const std::vector<std::string>& encode) {
  TempDir dir;
  std::vector<std::string> args = {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "2"};
  args.insert(args.end(), encode.begin(), encode.end());
  std::string clip = MakeClip(dir.file("clip.mkv"), args);
  store::StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  Status pushed = testing::PushBytes(store, "s", ReadFile(clip));
  EXPECT_TRUE(pushed.ok()) << pushed.ToString();
  return store.Find("s")->Fragments();
}

// The first |n| frames of |f|: the fragment as it was while arriving.
store::FragmentView Prefix(store::FragmentView f, size_t n) {
  f.frames.resize(n);
  f.complete = false;
  return f;
}

bool SamePicture(const AVFrame& a, const AVFrame& b) {
  if (a.width != b.width || a.height != b.height || a.format != b.format) return false;
  for (int y = 0; y < a.height; ++y)
    if (memcmp(a.data[0] + y * a.linesize[0], b.data[0] + y * b.linesize[0], a.width) != 0)
      return false;
  return true;
}

const std::vector<std::string> kLowDelay = {"-c:v", "libx264", "-g",    "10",
                                            "-bf",  "0",       "-tune", "zerolatency"};

TEST(WarmDecoders, FollowsNewFramesWithoutRedecodingTheGop) {
  auto fragments = Fragments(kLowDelay);
  ASSERT_EQ(fragments.size(), 2u);
  ManualClock clock(0);
  WarmDecoders warm(clock, 8, 60'000);
  for (size_t n : {3u, 4u, 7u, 10u}) {
    auto view = Prefix(fragments[0], n);
    auto got = warm.Newest("s", view);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto cold = DecodeNewestFrame(view, 1);
    ASSERT_TRUE(cold.ok());
    EXPECT_EQ((*got)->pts, (*cold)->pts);
    EXPECT_TRUE(SamePicture(**got, **cold)) << "after " << n << " frames";
  }
  WarmDecoderStats stats = warm.stats();
  EXPECT_EQ(stats.resets, 1u);
  EXPECT_EQ(stats.warm_hits, 3u);
  // A new fragment starts over from its keyframe.
  auto next = warm.Newest("s", Prefix(fragments[1], 2));
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(SamePicture(**next, **DecodeNewestFrame(Prefix(fragments[1], 2), 1)));
  EXPECT_EQ(warm.stats().resets, 2u);
}

TEST(WarmDecoders, ReorderingStreamsAreDecodedCold) {
  auto fragments = Fragments({"-c:v", "libx264", "-g", "10", "-bf", "3"});
  ManualClock clock(0);
  WarmDecoders warm(clock, 8, 60'000);
  for (size_t n : {5u, 10u}) {
    auto view = Prefix(fragments[0], n);
    auto got = warm.Newest("s", view);
    ASSERT_TRUE(got.ok());
    auto cold = DecodeNewestFrame(view);
    EXPECT_EQ((*got)->pts, (*cold)->pts);
    EXPECT_TRUE(SamePicture(**got, **cold));
  }
  EXPECT_EQ(warm.stats().fallbacks, 2u);
}

TEST(WarmDecoders, BoundedInCountAndIdleTime) {
  auto fragments = Fragments(kLowDelay);
  ManualClock clock(0);
  WarmDecoders warm(clock, 2, 60'000);
  for (const char* s : {"a", "b", "c"}) ASSERT_TRUE(warm.Newest(s, fragments[0]).ok());
  EXPECT_EQ(warm.stats().decoders, 2u);
  // Catching up never evicts a decoder someone looked at.
  EXPECT_FALSE(warm.CatchUp("d", fragments[0]));
  EXPECT_TRUE(warm.CatchUp("c", fragments[1]));
  EXPECT_EQ(warm.stats().decoders, 2u);
  clock.Advance(61'000);
  warm.SweepIdle();
  EXPECT_EQ(warm.stats().decoders, 0u);
}

}  // namespace
}  // namespace lastframe::snapshot

namespace lastframe::snapshot {
namespace {

TEST(FrameThreads, OnlyForLongRunsOfLargeFrames) {
  AVCodecParameters par{};
  par.codec_type = AVMEDIA_TYPE_VIDEO;
  par.codec_id = AV_CODEC_ID_H264;
  par.width = 1920;
  par.height = 1080;
  store::FragmentView f;
  f.codec = *media::CopyCodecParameters(par);
  f.frames.resize(9);
  EXPECT_TRUE(WorthFrameThreads(f));
  EXPECT_FALSE(WorthFrameThreads(f, 1));  // eight frames left to decode
  f.frames.resize(60);
  EXPECT_TRUE(WorthFrameThreads(f, 50));
  EXPECT_FALSE(WorthFrameThreads(f, 55));
  par.width = 640;
  par.height = 480;
  f.codec = *media::CopyCodecParameters(par);
  f.frames.resize(10);
  EXPECT_FALSE(WorthFrameThreads(f));
}

}  // namespace
}  // namespace lastframe::snapshot
