#include "media/test_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "media/demuxer.h"
#include "support/media_check.h"
#include "support/temp_dir.h"

namespace lastframe::media::test {
namespace {

// Appends |pkt| (of |st|) to |out| as an EncodedFrame in milliseconds.
void AddPacket(const AVStream& st, AVPacket* pkt, TestStream* out) {
  const AVRational ms = {1, 1000};
  EncodedFrame f;
  f.pts_ms = av_rescale_q(pkt->pts, st.time_base, ms);
  f.dts_ms = pkt->dts == AV_NOPTS_VALUE ? f.pts_ms : av_rescale_q(pkt->dts, st.time_base, ms);
  f.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
  f.packet = TakePacket(pkt);
  out->frames.push_back(std::move(f));
}

}  // namespace

TestStream EncodeTestStream(const std::vector<std::string>& encode) {
  lastframe::testing::TempDir dir;
  std::vector<std::string> args = {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "2"};
  args.insert(args.end(), encode.begin(), encode.end());
  std::string clip = lastframe::testing::MakeClip(dir.file("clip.mkv"), args);
  return DemuxMatroska(lastframe::testing::ReadFile(clip));
}

TestStream DemuxMatroska(const std::string& bytes) {
  TestStream out;
  size_t pos = 0;
  auto demuxer = Demuxer::Open(
      [&](uint8_t* buf, int size) {
        size_t n = std::min(static_cast<size_t>(size), bytes.size() - pos);
        std::memcpy(buf, bytes.data() + pos, n);
        pos += n;
        return static_cast<int>(n);
      },
      "matroska");
  EXPECT_TRUE(demuxer.ok()) << demuxer.status().ToString();
  if (!demuxer.ok()) return out;
  const AVFormatContext& ctx = (*demuxer)->context();
  EXPECT_GE(ctx.nb_streams, 1u);
  if (ctx.nb_streams < 1) return out;
  auto codec = CopyCodecParameters(*ctx.streams[0]->codecpar);
  EXPECT_TRUE(codec.ok());
  if (codec.ok()) out.codec = *codec;
  PacketPtr pkt = MakePacket();
  for (;;) {
    auto next = (*demuxer)->Read(pkt.get());
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || *next == Demuxer::Next::kEnd) break;
    if (pkt->stream_index == 0) AddPacket(*ctx.streams[0], pkt.get(), &out);
  }
  return out;
}

TestStream DemuxFile(const std::string& path) {
  TestStream out;
  AVFormatContext* ctx = nullptr;
  int rc = avformat_open_input(&ctx, path.c_str(), nullptr, nullptr);
  EXPECT_EQ(rc, 0) << AvError(rc, path).ToString();
  if (rc < 0) return out;
  EXPECT_GE(ctx->nb_streams, 1u);
  if (ctx->nb_streams >= 1) {
    auto codec = CopyCodecParameters(*ctx->streams[0]->codecpar);
    EXPECT_TRUE(codec.ok());
    if (codec.ok()) out.codec = *codec;
    PacketPtr pkt = MakePacket();
    while (av_read_frame(ctx, pkt.get()) == 0) {
      if (pkt->stream_index == 0) AddPacket(*ctx->streams[0], pkt.get(), &out);
      av_packet_unref(pkt.get());
    }
  }
  avformat_close_input(&ctx);
  return out;
}

}  // namespace lastframe::media::test
