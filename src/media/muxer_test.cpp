#include "media/muxer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "media/test_stream.h"
#include "support/temp_dir.h"

namespace lastframe::media {
namespace {

using test::DemuxFile;
using test::DemuxMatroska;
using test::EncodeTestStream;
using test::TestStream;

constexpr int64_t kEpochMs = 1'764'000'000'000;

std::vector<std::string> X264(int b_frames) {
  return {"-c:v", "libx264", "-g", "10", "-bf", std::to_string(b_frames), "-sc_threshold", "0"};
}

// |in|'s frames moved to start at |start_ms|, as the store places them.
std::vector<EncodedFrame> Placed(const TestStream& in, int64_t start_ms) {
  std::vector<EncodedFrame> out = in.frames;
  for (EncodedFrame& f : out) f.pts_ms += start_ms - in.frames.front().pts_ms;
  return out;
}

// |out| holds |in|'s frames, byte for byte, in the same order, with the same
// keyframes and the same presentation times relative to the first. Where the
// container keeps decode times (MP4; Matroska does not), each frame is decoded
// before it is shown, in rising decode order.
void ExpectSameFrames(const std::vector<EncodedFrame>& in, const TestStream& out,
                      bool decode_times = false) {
  ASSERT_EQ(out.frames.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const EncodedFrame& a = in[i];
    const EncodedFrame& b = out.frames[i];
    EXPECT_EQ(b.keyframe, a.keyframe) << i;
    EXPECT_EQ(b.pts_ms - out.frames[0].pts_ms, a.pts_ms - in[0].pts_ms) << i;
    if (decode_times) {
      EXPECT_LE(b.dts_ms, b.pts_ms) << i;
      if (i > 0) {
        EXPECT_GT(b.dts_ms, out.frames[i - 1].dts_ms) << i;
      }
    }
    ASSERT_EQ(b.size(), a.size()) << i;
    EXPECT_EQ(std::memcmp(b.packet->data, a.packet->data, a.size()), 0) << i;
  }
}

class MuxClipTest : public ::testing::TestWithParam<int> {};

// A clip read back by FFmpeg's demuxers holds the frames it was given, with
// B-frames or without: decode times rebuilt from presentation times alone.
TEST_P(MuxClipTest, MatroskaReadsBackFrameForFrame) {
  TestStream in = EncodeTestStream(X264(GetParam()));
  ASSERT_EQ(in.frames.size(), 20u);
  std::vector<EncodedFrame> frames = Placed(in, kEpochMs);
  auto clip = MuxClip(*in.codec, frames, ClipFormat::kMatroska, 8 << 20);
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  TestStream out = DemuxMatroska(*clip);
  ASSERT_TRUE(out.codec);
  EXPECT_TRUE(SameCodec(*out.codec, *in.codec));
  ExpectSameFrames(frames, out);
}

TEST_P(MuxClipTest, Mp4ReadsBackFrameForFrame) {
  TestStream in = EncodeTestStream(X264(GetParam()));
  std::vector<EncodedFrame> frames = Placed(in, kEpochMs);
  auto clip = MuxClip(*in.codec, frames, ClipFormat::kMp4, 8 << 20);
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  EXPECT_EQ(clip->substr(4, 4), "ftyp");
  lastframe::testing::TempDir dir;
  lastframe::testing::WriteFile(dir.file("clip.mp4"), *clip);
  TestStream out = DemuxFile(dir.file("clip.mp4"));
  ASSERT_TRUE(out.codec);
  EXPECT_EQ(out.codec->codec_id, AV_CODEC_ID_H264);
  EXPECT_EQ(out.codec->width, 160);
  EXPECT_EQ(out.codec->height, 120);
  ExpectSameFrames(frames, out, /*decode_times=*/true);
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutBFrames, MuxClipTest, ::testing::Values(0, 2));

TEST(MuxClip, PastItsBoundIsTooLarge) {
  TestStream in = EncodeTestStream(X264(0));
  for (ClipFormat format : {ClipFormat::kMp4, ClipFormat::kMatroska}) {
    auto clip = MuxClip(*in.codec, in.frames, format, 2000);
    ASSERT_FALSE(clip.ok());
    EXPECT_EQ(clip.status().code(), Code::kTooLarge);
    EXPECT_EQ(clip.status().reason(), Reason::kClipTooLarge);
  }
}

TEST(SameCodec, ComparesCodecSizeAndExtradata) {
  TestStream in = EncodeTestStream(X264(0));
  auto copy = CopyCodecParameters(*in.codec);
  ASSERT_TRUE(copy.ok());
  EXPECT_TRUE(SameCodec(**copy, *in.codec));
  AVCodecParameters* other = avcodec_parameters_alloc();
  ASSERT_EQ(avcodec_parameters_copy(other, in.codec.get()), 0);
  other->width = 320;
  EXPECT_FALSE(SameCodec(*other, *in.codec));
  other->width = in.codec->width;
  ASSERT_GT(other->extradata_size, 0);
  other->extradata[other->extradata_size - 1] ^= 1;
  EXPECT_FALSE(SameCodec(*other, *in.codec));
  avcodec_parameters_free(&other);
}

TEST(MatroskaTagsElement, WritesOneTagForTheWholeSegment) {
  // Tags { Tag { Targets {}, SimpleTag { TagName "A", TagString "b" } } }
  const std::string expected(
      "\x12\x54\xC3\x67\x91"
      "\x73\x73\x8E"
      "\x63\xC0\x80"
      "\x67\xC8\x88"
      "\x45\xA3\x81"
      "A"
      "\x44\x87\x81"
      "b",
      22);
  EXPECT_EQ(MatroskaTagsElement({{"A", "b"}}), expected);
}

class MatroskaWriterTest : public ::testing::TestWithParam<int> {};

// Written frame by frame, each flushed, the document reads back as the same
// frames at the same (absolute) presentation times, with its tags.
TEST_P(MatroskaWriterTest, ReadsBackFrameForFrameAtTheGivenTimes) {
  TestStream in = EncodeTestStream(X264(GetParam()));
  std::vector<EncodedFrame> frames = Placed(in, kEpochMs);
  auto writer = MatroskaWriter::Begin(*in.codec, {{"LASTFRAME_TEST_TAG", "head-value"}});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  std::string bytes = (*writer)->Take();
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x1A\x45\xDF\xA3", 4));  // before any frame
  EXPECT_NE(bytes.find("LASTFRAME_TEST_TAG"), std::string::npos);
  EXPECT_NE(bytes.find("head-value"), std::string::npos);
  for (const EncodedFrame& f : frames) {
    ASSERT_TRUE((*writer)->Add(f, /*flush=*/true).ok());
    std::string out = (*writer)->Take();
    EXPECT_GE(out.size(), f.size());  // the frame itself left the writer
    bytes += out;
  }
  const MatroskaTags trailing = {{"LASTFRAME_TRAILING", "12"}};
  ASSERT_TRUE((*writer)->End(trailing).ok());
  std::string tail = (*writer)->Take();
  const std::string tags = MatroskaTagsElement(trailing);
  ASSERT_GE(tail.size(), tags.size());
  EXPECT_EQ(tail.substr(tail.size() - tags.size()), tags);  // after the last cluster
  bytes += tail;
  EXPECT_FALSE((*writer)->Add(frames[0], true).ok());  // nothing after the end
  EXPECT_TRUE((*writer)->End().ok());

  TestStream out = DemuxMatroska(bytes);
  ExpectSameFrames(frames, out);
  ASSERT_EQ(out.frames.size(), frames.size());
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(out.frames[i].pts_ms, frames[i].pts_ms);
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutBFrames, MatroskaWriterTest, ::testing::Values(0, 2));

TEST(MatroskaWriter, TheSameFramesGiveTheSameBytes) {
  TestStream in = EncodeTestStream(X264(2));
  std::vector<EncodedFrame> frames = Placed(in, kEpochMs);
  auto write = [&] {
    auto writer = MatroskaWriter::Begin(*in.codec, {{"K", "v"}});
    EXPECT_TRUE(writer.ok());
    if (!writer.ok()) return std::string();
    for (const EncodedFrame& f : frames) EXPECT_TRUE((*writer)->Add(f, /*flush=*/false).ok());
    EXPECT_TRUE((*writer)->End().ok());
    return (*writer)->Take();
  };
  std::string first = write();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(write(), first);
}

}  // namespace
}  // namespace lastframe::media
