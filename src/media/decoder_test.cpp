#include "media/decoder.h"

#include <gtest/gtest.h>

#include "media/test_stream.h"

namespace lastframe::media {
namespace {

using test::EncodeTestStream;
using test::TestStream;

// Every frame |ctx| gives for |in|'s packets, drained at the end.
std::vector<FramePtr> DecodeAll(AVCodecContext* ctx, const TestStream& in) {
  std::vector<FramePtr> out;
  auto drain = [&] {
    for (FramePtr f = MakeFrame(); avcodec_receive_frame(ctx, f.get()) == 0; f = MakeFrame())
      out.push_back(std::move(f));
  };
  for (const EncodedFrame& f : in.frames) {
    EXPECT_EQ(avcodec_send_packet(ctx, f.packet.get()), 0);
    drain();
  }
  EXPECT_EQ(avcodec_send_packet(ctx, nullptr), 0);
  drain();
  return out;
}

TEST(OpenDecoder, OneThreadGivesEachFrameAsItsPacketGoesIn) {
  TestStream in = EncodeTestStream({"-c:v", "libx264", "-bf", "0", "-tune", "zerolatency"});
  ASSERT_FALSE(in.frames.empty());
  auto ctx = OpenDecoder(*in.codec, 1);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ((*ctx)->thread_count, 1);
  EXPECT_EQ((*ctx)->pkt_timebase.num, 1);
  EXPECT_EQ((*ctx)->pkt_timebase.den, 1000);
  ASSERT_EQ(avcodec_send_packet(ctx->get(), in.frames[0].packet.get()), 0);
  FramePtr frame = MakeFrame();
  ASSERT_EQ(avcodec_receive_frame(ctx->get(), frame.get()), 0);
  EXPECT_EQ(frame->width, 160);
  EXPECT_EQ(frame->height, 120);
  EXPECT_EQ(frame->best_effort_timestamp, in.frames[0].pts_ms);
}

TEST(OpenDecoder, FrameThreadsDecodeEveryFrameInPresentationOrder) {
  TestStream in = EncodeTestStream({"-c:v", "libx264", "-bf", "2"});
  auto ctx = OpenDecoder(*in.codec, 4);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ((*ctx)->thread_count, 4);
  EXPECT_NE((*ctx)->active_thread_type & FF_THREAD_FRAME, 0);
  std::vector<FramePtr> frames = DecodeAll(ctx->get(), in);
  ASSERT_EQ(frames.size(), in.frames.size());
  for (size_t i = 1; i < frames.size(); ++i)
    EXPECT_GT(frames[i]->best_effort_timestamp, frames[i - 1]->best_effort_timestamp);
}

TEST(OpenDecoder, ACodecWithNoDecoderIsAMediaError) {
  AVCodecParameters* par = avcodec_parameters_alloc();
  par->codec_type = AVMEDIA_TYPE_VIDEO;
  par->codec_id = AV_CODEC_ID_NONE;
  auto ctx = OpenDecoder(*par, 1);
  avcodec_parameters_free(&par);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), Code::kMediaError);
  EXPECT_NE(ctx.status().message().find("no decoder"), std::string::npos);
}

}  // namespace
}  // namespace lastframe::media
