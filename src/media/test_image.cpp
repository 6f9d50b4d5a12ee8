#include "media/test_image.h"

extern "C" {
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <avif/avif.h>
#include <gtest/gtest.h>
#include <webp/demux.h>

#include <cstring>

#include "media/decoder.h"
#include "media/test_stream.h"
#include "support/temp_dir.h"

namespace lastframe::media::test {
namespace {

// Every frame |par|'s decoder gives for |packets|.
std::vector<FramePtr> DecodePackets(const AVCodecParameters& par,
                                    const std::vector<const AVPacket*>& packets) {
  std::vector<FramePtr> out;
  auto ctx = OpenDecoder(par, 1);
  EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
  if (!ctx.ok()) return out;
  auto drain = [&] {
    for (FramePtr f = MakeFrame(); avcodec_receive_frame(ctx->get(), f.get()) == 0; f = MakeFrame())
      out.push_back(std::move(f));
  };
  for (const AVPacket* p : packets) {
    EXPECT_EQ(avcodec_send_packet(ctx->get(), p), 0);
    drain();
  }
  avcodec_send_packet(ctx->get(), nullptr);
  drain();
  return out;
}

// One still in one packet, decoded by libavcodec's decoder for |id|.
RgbImage DecodeWithLibavcodec(const std::string& bytes, AVCodecID id) {
  AVCodecParameters* par = avcodec_parameters_alloc();
  par->codec_type = AVMEDIA_TYPE_VIDEO;
  par->codec_id = id;
  PacketPtr pkt = MakePacket();
  EXPECT_EQ(av_new_packet(pkt.get(), static_cast<int>(bytes.size())), 0);
  std::memcpy(pkt->data, bytes.data(), bytes.size());
  pkt->flags |= AV_PKT_FLAG_KEY;
  std::vector<FramePtr> frames = DecodePackets(*par, {pkt.get()});
  avcodec_parameters_free(&par);
  EXPECT_EQ(frames.size(), 1u);
  if (frames.empty()) return {};
  return FrameToRgb(*frames[0]);
}

}  // namespace

SourceClip MakeSourceClip(int w, int h, int count) {
  lastframe::testing::TempDir dir;
  std::string clip = lastframe::testing::MakeClip(
      dir.file("source.mkv"),
      {"-f", "lavfi", "-i",
       "testsrc2=size=" + std::to_string(w) + "x" + std::to_string(h) + ":rate=10", "-frames:v",
       std::to_string(count), "-pix_fmt", "yuv420p", "-c:v", "ffv1"});
  SourceClip out;
  TestStream stream = DemuxFile(clip);
  std::vector<const AVPacket*> packets;
  for (const EncodedFrame& f : stream.frames) packets.push_back(f.packet.get());
  if (stream.codec) out.frames = DecodePackets(*stream.codec, packets);
  out.rgb = lastframe::testing::DecodeAllFramesWithFfmpeg(clip, w, h);
  EXPECT_EQ(out.frames.size(), static_cast<size_t>(count));
  EXPECT_EQ(out.rgb.size(), static_cast<size_t>(count));
  return out;
}

double LumaPsnr(const RgbImage& a, const RgbImage& b) {
  auto luma = [](const RgbImage& img) {
    RgbImage y{img.width, img.height, {}};
    y.pixels.resize(static_cast<size_t>(img.width) * img.height);
    for (size_t i = 0; i < y.pixels.size(); ++i) {
      const uint8_t* p = &img.pixels[i * 3];
      y.pixels[i] = static_cast<uint8_t>((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000);
    }
    return y;
  };
  return lastframe::testing::Psnr(luma(a), luma(b));
}

FramePtr FrameFromRgb(const RgbImage& rgb, AVPixelFormat fmt, AVColorSpace space,
                      AVColorRange range) {
  FramePtr f = MakeFrame();
  f->width = rgb.width;
  f->height = rgb.height;
  f->format = fmt;
  f->colorspace = space;
  f->color_range = range;
  EXPECT_EQ(av_frame_get_buffer(f.get(), 0), 0);
  SwsContext* sws = sws_getContext(rgb.width, rgb.height, AV_PIX_FMT_RGB24, rgb.width, rgb.height,
                                   fmt, SWS_POINT | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
  int cs = space == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  sws_setColorspaceDetails(sws, sws_getCoefficients(SWS_CS_ITU601), 1, sws_getCoefficients(cs),
                           range == AVCOL_RANGE_JPEG ? 1 : 0, 0, 1 << 16, 1 << 16);
  const uint8_t* src[1] = {rgb.pixels.data()};
  int stride[1] = {rgb.width * 3};
  sws_scale(sws, src, stride, 0, rgb.height, f->data, f->linesize);
  sws_freeContext(sws);
  return f;
}

RgbImage Solid(int w, int h, int r, int g, int b) {
  RgbImage img{w, h, {}};
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  FillRect(&img, 0, 0, w, h, r, g, b);
  return img;
}

void FillRect(RgbImage* img, int x0, int y0, int w, int h, int r, int g, int b) {
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) {
      uint8_t* p = &img->pixels[(static_cast<size_t>(y) * img->width + x) * 3];
      p[0] = static_cast<uint8_t>(r);
      p[1] = static_cast<uint8_t>(g);
      p[2] = static_cast<uint8_t>(b);
    }
}

const uint8_t* Pixel(const RgbImage& img, int x, int y) {
  return &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
}

RgbImage FrameToRgb(const AVFrame& frame) {
  RgbImage out{frame.width, frame.height, {}};
  out.pixels.resize(static_cast<size_t>(frame.width) * frame.height * 3);
  auto fmt = static_cast<AVPixelFormat>(frame.format);
  bool full = frame.color_range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P;
  if (fmt == AV_PIX_FMT_YUVJ420P) fmt = AV_PIX_FMT_YUV420P;
  SwsContext* sws =
      sws_getContext(frame.width, frame.height, fmt, frame.width, frame.height, AV_PIX_FMT_RGB24,
                     SWS_POINT | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
  int cs = frame.colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  sws_setColorspaceDetails(sws, sws_getCoefficients(cs), full ? 1 : 0,
                           sws_getCoefficients(SWS_CS_ITU601), 1, 0, 1 << 16, 1 << 16);
  uint8_t* dst[1] = {out.pixels.data()};
  int stride[1] = {frame.width * 3};
  sws_scale(sws, frame.data, frame.linesize, 0, frame.height, dst, stride);
  sws_freeContext(sws);
  return out;
}

RgbImage DecodeStill(const std::string& bytes, ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return lastframe::testing::DecodeJpeg(bytes);
    case ImageFormat::kPng:
      return DecodeWithLibavcodec(bytes, AV_CODEC_ID_PNG);
    case ImageFormat::kWebp:
      return DecodeWithLibavcodec(bytes, AV_CODEC_ID_WEBP);
    case ImageFormat::kAvif: {
      // Debian's FFmpeg 5.1 reads AVIF (its mov demuxer knows the still-image
      // brand): libavformat finds the AV1 item and libavcodec decodes it with
      // dav1d, not the aom that encoded it; libavif plays no part.
      lastframe::testing::TempDir dir;
      std::string path = dir.file("still.avif");
      lastframe::testing::WriteFile(path, bytes);
      TestStream stream = DemuxFile(path);
      EXPECT_TRUE(stream.codec != nullptr);
      if (!stream.codec) return {};
      EXPECT_EQ(stream.codec->codec_id, AV_CODEC_ID_AV1);
      std::vector<const AVPacket*> packets;
      for (const EncodedFrame& f : stream.frames) packets.push_back(f.packet.get());
      std::vector<FramePtr> frames = DecodePackets(*stream.codec, packets);
      EXPECT_EQ(frames.size(), 1u);
      if (frames.empty()) return {};
      return FrameToRgb(*frames[0]);
    }
  }
  return {};
}

AvifInfo ReadAvifInfo(const std::string& bytes) {
  AvifInfo info;
  avifDecoder* dec = avifDecoderCreate();
  avifImage* image = avifImageCreateEmpty();
  avifResult res = avifDecoderReadMemory(dec, image, reinterpret_cast<const uint8_t*>(bytes.data()),
                                         bytes.size());
  EXPECT_EQ(res, AVIF_RESULT_OK) << avifResultToString(res);
  if (res == AVIF_RESULT_OK) {
    info.matrix = image->matrixCoefficients;
    info.full_range = image->yuvRange == AVIF_RANGE_FULL;
    info.depth = static_cast<int>(image->depth);
    info.yuv420 = image->yuvFormat == AVIF_PIXEL_FORMAT_YUV420;
  }
  avifImageDestroy(image);
  avifDecoderDestroy(dec);
  return info;
}

DecodedAnimation DecodeAnimatedWebp(const std::string& bytes) {
  DecodedAnimation out;
  WebPData data = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  WebPAnimDecoderOptions opts;
  EXPECT_TRUE(WebPAnimDecoderOptionsInit(&opts));
  opts.color_mode = MODE_RGBA;
  WebPAnimDecoder* dec = WebPAnimDecoderNew(&data, &opts);
  EXPECT_NE(dec, nullptr) << "not an animated WebP";
  if (dec == nullptr) return out;
  WebPAnimInfo info;
  EXPECT_TRUE(WebPAnimDecoderGetInfo(dec, &info));
  out.loop_count = static_cast<int>(info.loop_count);
  int previous_end = 0;
  while (WebPAnimDecoderHasMoreFrames(dec)) {
    uint8_t* rgba = nullptr;
    int end_ms = 0;
    if (!WebPAnimDecoderGetNext(dec, &rgba, &end_ms)) {
      ADD_FAILURE() << "WebPAnimDecoderGetNext failed";
      break;
    }
    RgbImage img{static_cast<int>(info.canvas_width), static_cast<int>(info.canvas_height), {}};
    img.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
    for (size_t i = 0; i < static_cast<size_t>(img.width) * img.height; ++i)
      std::memcpy(&img.pixels[i * 3], rgba + i * 4, 3);
    out.frames.push_back(std::move(img));
    out.durations_ms.push_back(end_ms - previous_end);
    previous_end = end_ms;
  }
  EXPECT_EQ(out.frames.size(), info.frame_count);
  WebPAnimDecoderDelete(dec);
  return out;
}

DecodedAnimation DecodeGif(const std::string& bytes) {
  DecodedAnimation out;
  lastframe::testing::TempDir dir;
  std::string path = dir.file("anim.gif");
  lastframe::testing::WriteFile(path, bytes);
  TestStream stream = DemuxFile(path);
  EXPECT_TRUE(stream.codec != nullptr);
  if (!stream.codec) return out;
  EXPECT_EQ(stream.codec->codec_id, AV_CODEC_ID_GIF);
  std::vector<const AVPacket*> packets;
  for (const EncodedFrame& f : stream.frames) packets.push_back(f.packet.get());
  // Each frame's delay is the next one's pts less its own; the last frame's,
  // its packet's duration (the demuxer's time base is 1/100 s).
  for (size_t i = 0; i < stream.frames.size(); ++i) {
    if (i + 1 < stream.frames.size())
      out.durations_ms.push_back(
          static_cast<int>(stream.frames[i + 1].pts_ms - stream.frames[i].pts_ms));
    else
      out.durations_ms.push_back(static_cast<int>(stream.frames[i].packet->duration * 10));
  }
  for (const FramePtr& f : DecodePackets(*stream.codec, packets))
    out.frames.push_back(FrameToRgb(*f));
  // NETSCAPE2.0 application extension: "NETSCAPE2.0" 03 01 <loop count, LE16>.
  size_t at = bytes.find("NETSCAPE2.0");
  if (at != std::string::npos && at + 16 <= bytes.size())
    out.loop_count = static_cast<uint8_t>(bytes[at + 14]) | static_cast<uint8_t>(bytes[at + 15])
                                                                << 8;
  return out;
}

}  // namespace lastframe::media::test
