#include "media/image_encoder.h"

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <vector>

namespace lastframe::media {
namespace {

struct TjDeleter {
  void operator()(void* h) const { tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

struct SwsDeleter {
  void operator()(SwsContext* c) const { sws_freeContext(c); }
};
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;

// JFIF's YCbCr is BT.601; frames in these matrices (or unspecified, which
// FFmpeg also treats as BT.601) can go to JPEG as YCbCr with a range fix only.
bool IsBt601(AVColorSpace cs) {
  return cs == AVCOL_SPC_UNSPECIFIED || cs == AVCOL_SPC_BT470BG || cs == AVCOL_SPC_SMPTE170M ||
         cs == AVCOL_SPC_FCC;
}

bool IsFullRange(const AVFrame& f) {
  auto fmt = static_cast<AVPixelFormat>(f.format);
  return f.color_range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P ||
         fmt == AV_PIX_FMT_YUVJ422P || fmt == AV_PIX_FMT_YUVJ444P || fmt == AV_PIX_FMT_YUVJ440P;
}

int SwsColorspace(AVColorSpace cs) {
  switch (cs) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    default:
      return SWS_CS_ITU601;
  }
}

// A tightly owned image in one pixel format, with aligned strides.
struct Planes {
  uint8_t* data[4] = {nullptr, nullptr, nullptr, nullptr};
  int linesize[4] = {0, 0, 0, 0};
  ~Planes() { av_freep(&data[0]); }
};

// Scales/converts |src| into |dst_fmt| at (w, h), with the source's matrix and
// range and the destination's full range (JFIF / sRGB).
Status Convert(const AVFrame& src, AVPixelFormat dst_fmt, int w, int h, Planes* out) {
  auto src_fmt = static_cast<AVPixelFormat>(src.format);
  // The J formats are deprecated aliases in swscale: name the plain format and
  // pass the range explicitly.
  AVPixelFormat plain_src = src_fmt;
  switch (src_fmt) {
    case AV_PIX_FMT_YUVJ420P:
      plain_src = AV_PIX_FMT_YUV420P;
      break;
    case AV_PIX_FMT_YUVJ422P:
      plain_src = AV_PIX_FMT_YUV422P;
      break;
    case AV_PIX_FMT_YUVJ444P:
      plain_src = AV_PIX_FMT_YUV444P;
      break;
    case AV_PIX_FMT_YUVJ440P:
      plain_src = AV_PIX_FMT_YUV440P;
      break;
    default:
      break;
  }
  AVPixelFormat plain_dst = dst_fmt;
  // RGB output is full range; YUV output keeps the source's range (see ExpandToFullRange).
  int dst_full = dst_fmt == AV_PIX_FMT_RGB24 ? 1 : (IsFullRange(src) ? 1 : 0);
  int flags = (w == src.width && h == src.height) ? SWS_POINT : SWS_BILINEAR;
  flags |= SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT;
  SwsPtr sws(sws_getContext(src.width, src.height, plain_src, w, h, plain_dst, flags, nullptr,
                            nullptr, nullptr));
  if (!sws) return Status(Code::kMediaError, "cannot convert pixel format");
  const int* src_coeffs = sws_getCoefficients(SwsColorspace(src.colorspace));
  const int* dst_coeffs = sws_getCoefficients(SWS_CS_ITU601);
  sws_setColorspaceDetails(sws.get(), src_coeffs, IsFullRange(src) ? 1 : 0, dst_coeffs, dst_full, 0,
                           1 << 16, 1 << 16);
  if (av_image_alloc(out->data, out->linesize, w, h, plain_dst, 32) < 0)
    return Internal("out of memory");
  int rows = sws_scale(sws.get(), src.data, src.linesize, 0, src.height, out->data, out->linesize);
  if (rows != h) return Status(Code::kMediaError, "pixel conversion failed");
  return Status::Ok();
}

// Limited range (Y 16..235, C 16..240) to JFIF's full range, in place, by table.
void ExpandToFullRange(Planes* yuv, int w, int h) {
  static const auto tables = [] {
    std::array<std::array<uint8_t, 256>, 2> t{};
    for (int v = 0; v < 256; ++v) {
      t[0][v] = static_cast<uint8_t>(std::clamp((v - 16) * 255.0 / 219.0 + 0.5, 0.0, 255.0));
      t[1][v] = static_cast<uint8_t>(std::clamp((v - 128) * 255.0 / 224.0 + 128.5, 0.0, 255.0));
    }
    return t;
  }();
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int y = 0; y < h; ++y) {
    uint8_t* row = yuv->data[0] + static_cast<ptrdiff_t>(y) * yuv->linesize[0];
    for (int x = 0; x < w; ++x) row[x] = tables[0][row[x]];
  }
  for (int p = 1; p < 3; ++p)
    for (int y = 0; y < ch; ++y) {
      uint8_t* row = yuv->data[p] + static_cast<ptrdiff_t>(y) * yuv->linesize[p];
      for (int x = 0; x < cw; ++x) row[x] = tables[1][row[x]];
    }
}

// Runs one TurboJPEG compression (|compress| fills the buffer TurboJPEG
// allocates) and owns the result.
template <typename CompressFn>
Result<EncodedImage> Compress(int w, int h, CompressFn compress) {
  TjHandle tj(tjInitCompress());
  if (!tj) return Internal("cannot create a JPEG compressor");
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  if (compress(tj.get(), &jpeg, &size) != 0) {
    std::string why = tjGetErrorStr2(tj.get());
    tjFree(jpeg);
    return Internal("JPEG compression failed: " + why);
  }
  EncodedImage img{std::string(reinterpret_cast<char*>(jpeg), size), ImageFormat::kJpeg, w, h};
  tjFree(jpeg);
  return img;
}

Result<EncodedImage> CompressYuv420(const uint8_t* const planes[3], const int strides[3], int w,
                                    int h, int quality) {
  const unsigned char* p[3] = {planes[0], planes[1], planes[2]};
  return Compress(w, h, [&](tjhandle tj, unsigned char** jpeg, unsigned long* size) {
    return tjCompressFromYUVPlanes(tj, p, w, strides, h, TJSAMP_420, jpeg, size, quality, 0);
  });
}

Result<EncodedImage> CompressRgb(const uint8_t* rgb, int stride, int w, int h, int quality,
                                 int subsampling) {
  return Compress(w, h, [&](tjhandle tj, unsigned char** jpeg, unsigned long* size) {
    return tjCompress2(tj, rgb, w, stride, h, TJPF_RGB, jpeg, size, subsampling, quality, 0);
  });
}

Result<EncodedImage> EncodePngRgb(const Planes& rgb, int w, int h) {
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (codec == nullptr) return Internal("PNG encoder not built in");
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) return Internal("out of memory");
  ctx->width = w;
  ctx->height = h;
  ctx->pix_fmt = AV_PIX_FMT_RGB24;
  ctx->time_base = {1, 1};
  ctx->compression_level = 3;  // fast: these are previews, not archives
  int err = avcodec_open2(ctx.get(), codec, nullptr);
  if (err < 0) return AvError(err, "opening the PNG encoder");
  FramePtr frame = MakeFrame();
  frame->format = AV_PIX_FMT_RGB24;
  frame->width = w;
  frame->height = h;
  for (int i = 0; i < 4; ++i) {
    frame->data[i] = rgb.data[i];
    frame->linesize[i] = rgb.linesize[i];
  }
  if ((err = avcodec_send_frame(ctx.get(), frame.get())) < 0) return AvError(err, "PNG encode");
  PacketPtr pkt = MakePacket();
  if ((err = avcodec_receive_packet(ctx.get(), pkt.get())) < 0) return AvError(err, "PNG encode");
  return EncodedImage{std::string(reinterpret_cast<char*>(pkt->data), pkt->size), ImageFormat::kPng,
                      w, h};
}

}  // namespace

void FitSize(int src_w, int src_h, int req_w, int req_h, int* out_w, int* out_h) {
  if (req_w <= 0 && req_h <= 0) {
    *out_w = src_w;
    *out_h = src_h;
  } else if (req_w > 0 && req_h > 0) {
    *out_w = req_w;
    *out_h = req_h;
  } else if (req_w > 0) {
    *out_w = req_w;
    *out_h = static_cast<int>(std::lround(static_cast<double>(src_h) * req_w / src_w));
  } else {
    *out_h = req_h;
    *out_w = static_cast<int>(std::lround(static_cast<double>(src_w) * req_h / src_h));
  }
  *out_w = std::max(*out_w, 1);
  *out_h = std::max(*out_h, 1);
}

Result<EncodedImage> EncodeImage(const AVFrame& frame, const EncodeOptions& options) {
  if (frame.width <= 0 || frame.height <= 0 || frame.format < 0)
    return Status(Code::kMediaError, "frame has no picture");
  int w = options.width > 0 ? options.width : frame.width;
  int h = options.height > 0 ? options.height : frame.height;
  auto fmt = static_cast<AVPixelFormat>(frame.format);

  if (options.format == ImageFormat::kPng) {
    Planes rgb;
    LF_RETURN_IF_ERROR(Convert(frame, AV_PIX_FMT_RGB24, w, h, &rgb));
    return EncodePngRgb(rgb, w, h);
  }
  int quality = std::clamp(options.quality, 1, 100);
  bool same_size = w == frame.width && h == frame.height;
  bool planar420 = fmt == AV_PIX_FMT_YUVJ420P || fmt == AV_PIX_FMT_YUV420P;
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(fmt);
  if (desc == nullptr) return Status(Code::kMediaError, "unknown pixel format");
  bool chroma420 = desc->log2_chroma_w == 1 && desc->log2_chroma_h == 1 &&
                   (desc->flags & AV_PIX_FMT_FLAG_RGB) == 0 && desc->nb_components >= 3;
  if (IsBt601(frame.colorspace) && chroma420) {
    if (same_size && planar420 && IsFullRange(frame)) {
      // Already JFIF's colour space: compress the decoder's planes as they are.
      const uint8_t* planes[3] = {frame.data[0], frame.data[1], frame.data[2]};
      const int strides[3] = {frame.linesize[0], frame.linesize[1], frame.linesize[2]};
      return CompressYuv420(planes, strides, w, h, quality);
    }
    // swscale does the size and bit depth; the range expansion is ours,
    // because swscale skips it on some YUV-to-YUV paths (10-bit input).
    Planes yuv;
    LF_RETURN_IF_ERROR(Convert(frame, AV_PIX_FMT_YUV420P, w, h, &yuv));
    if (!IsFullRange(frame)) ExpandToFullRange(&yuv, w, h);
    const uint8_t* planes[3] = {yuv.data[0], yuv.data[1], yuv.data[2]};
    return CompressYuv420(planes, yuv.linesize, w, h, quality);
  }
  // Other matrices (BT.709, BT.2020) and chroma layouts go through RGB so that
  // colours stay true, and keep the source's chroma resolution.
  int subsampling = TJSAMP_420;
  if (desc->log2_chroma_w == 0 && desc->log2_chroma_h == 0)
    subsampling = TJSAMP_444;
  else if (desc->log2_chroma_w == 1 && desc->log2_chroma_h == 0)
    subsampling = TJSAMP_422;
  Planes rgb;
  LF_RETURN_IF_ERROR(Convert(frame, AV_PIX_FMT_RGB24, w, h, &rgb));
  return CompressRgb(rgb.data[0], rgb.linesize[0], w, h, quality, subsampling);
}

void ShrinkToPixels(uint64_t max_pixels, int* w, int* h) {
  const double pixels = static_cast<double>(*w) * static_cast<double>(*h);
  if (pixels <= static_cast<double>(max_pixels)) return;
  const double scale = std::sqrt(static_cast<double>(max_pixels) / pixels);
  *w = std::max(2, static_cast<int>(*w * scale) & ~1);
  *h = std::max(2, static_cast<int>(*h * scale) & ~1);
}

}  // namespace lastframe::media
