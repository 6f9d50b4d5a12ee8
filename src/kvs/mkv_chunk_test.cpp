#include "kvs/mkv_chunk.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "core/clock.h"
#include "ingest/push_session.h"
#include "support/media_check.h"
#include "support/temp_dir.h"

namespace lastframe::kvs {
namespace {

using testing::MakeClip;
using testing::ReadFile;
using testing::TempDir;

// Parses Matroska |bytes| into |store| as PutMedia does; returns the session's end.
Status Ingest(store::StreamStore& store, const std::string& stream, const std::string& bytes,
              ingest::PushOptions options) {
  std::promise<Status> done;
  options.stream = stream;
  auto session = ingest::PushSession::Start(store, options,
                                            {.on_ack = [](std::string) {},
                                             .on_space = nullptr,
                                             .on_done = [&](Status s) { done.set_value(s); }});
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return session.status();
  for (size_t off = 0; off < bytes.size(); off += 4096) {
    size_t n = std::min<size_t>(4096, bytes.size() - off);
    if (!(*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data() + off), n))
      (*session)->WaitForSpace();
  }
  (*session)->Finish();
  return done.get_future().get();
}

class MkvChunkTest : public ::testing::TestWithParam<int> {};

// A fragment written as a Kinesis Video chunk and read back by our own ingest
// (as a --source kvs server reads GetMedia) is the same fragment: the same
// producer time, frames, keyframes, presentation times and bytes.
TEST_P(MkvChunkTest, ChunksReadBackAsTheSameFragments) {
  const int b_frames = GetParam();
  TempDir dir;
  std::string clip =
      MakeClip(dir.file("c.mkv"),
               {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3", "-c:v", "libx264",
                "-g", "10", "-bf", std::to_string(b_frames), "-sc_threshold", "0"});
  ManualClock clock(1'764'000'000'000);
  store::StreamStore original(clock, {.retention_ms = 3'600'000});
  ingest::PushOptions relative;
  relative.producer_start_ms = 1'764'000'000'000;
  ASSERT_TRUE(Ingest(original, "cam", ReadFile(clip), relative).ok());
  auto fragments = original.Find("cam")->Fragments();
  ASSERT_EQ(fragments.size(), 3u);

  std::string chunks;
  for (const auto& f : fragments) {
    auto chunk = MkvChunk(f, {{"AWS_KINESISVIDEO_CONTINUATION_TOKEN", std::to_string(f.number)}});
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    // Each chunk is a Matroska document of its own, with Kinesis Video's tags.
    EXPECT_EQ(chunk->substr(0, 4), std::string("\x1A\x45\xDF\xA3", 4));
    EXPECT_NE(chunk->find(std::to_string(f.number)), std::string::npos);
    EXPECT_NE(chunk->find("AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"), std::string::npos);
    EXPECT_NE(chunk->find(TagSeconds(f.producer_ts_ms)), std::string::npos);
    EXPECT_NE(chunk->find("AWS_KINESISVIDEO_CONTINUATION_TOKEN"), std::string::npos);
    chunks += *chunk;
  }
  store::StreamStore copy(clock, {.retention_ms = 3'600'000});
  ingest::PushOptions absolute;
  absolute.absolute_timecodes = true;
  ASSERT_TRUE(Ingest(copy, "cam", chunks, absolute).ok());
  auto read_back = copy.Find("cam")->Fragments();
  ASSERT_EQ(read_back.size(), fragments.size());
  for (size_t i = 0; i < fragments.size(); ++i) {
    const auto& a = fragments[i];
    const auto& b = read_back[i];
    EXPECT_EQ(b.producer_ts_ms, a.producer_ts_ms) << i;
    ASSERT_EQ(b.frames.size(), a.frames.size()) << i;
    for (size_t k = 0; k < a.frames.size(); ++k) {
      EXPECT_EQ(b.frames[k].keyframe, a.frames[k].keyframe);
      EXPECT_EQ(b.frames[k].pts_ms - b.frames[0].pts_ms, a.frames[k].pts_ms - a.frames[0].pts_ms);
      ASSERT_EQ(b.frames[k].size(), a.frames[k].size());
      EXPECT_EQ(std::memcmp(b.frames[k].packet->data, a.frames[k].packet->data, a.frames[k].size()),
                0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutBFrames, MkvChunkTest, ::testing::Values(0, 2));

TEST(MkvChunkWriter, FlushedFramesGoOutAtOnce) {
  TempDir dir;
  std::string clip =
      MakeClip(dir.file("c.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-t", "1",
                                   "-c:v", "libx264", "-g", "10"});
  ManualClock clock(1'764'000'000'000);
  store::StreamStore store(clock, {});
  ingest::PushOptions o;
  ASSERT_TRUE(Ingest(store, "s", ReadFile(clip), o).ok());
  auto f = *store.LatestFragment("s");
  auto writer = MkvChunkWriter::Begin(f, FragmentTags(f));
  ASSERT_TRUE(writer.ok());
  EXPECT_FALSE((*writer)->Take().empty());  // the header, before any frame
  for (const auto& frame : f.frames) {
    ASSERT_TRUE((*writer)->Add(frame, /*flush=*/true).ok());
    std::string out = (*writer)->Take();
    EXPECT_GE(out.size(), frame.size());  // the frame itself left the writer
  }
  ASSERT_TRUE((*writer)->End({{"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "12"}}).ok());
  std::string tail = (*writer)->Take();
  EXPECT_NE(tail.find("AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"), std::string::npos);
  EXPECT_FALSE((*writer)->Add(f.frames[0], true).ok());  // nothing after the end
}

TEST(MkvChunk, RefusesAnEmptyFragment) {
  store::FragmentView empty;
  EXPECT_FALSE(MkvChunk(empty).ok());
}

TEST(TagSeconds, WritesMillisecondsAsKinesisVideoDoes) {
  EXPECT_EQ(TagSeconds(1'764'000'000'123), "1764000000.123");
  EXPECT_EQ(TagSeconds(5), "0.005");
  EXPECT_EQ(TagSeconds(1'000), "1.000");
}

}  // namespace
}  // namespace lastframe::kvs
