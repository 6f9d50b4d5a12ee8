#include "media/image_encoder.h"

extern "C" {
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <avif/avif.h>
#include <turbojpeg.h>
#include <webp/encode.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "media/image_render.h"

namespace lastframe::media {
namespace {

using internal::PixelSpec;
using internal::Planes;
using internal::Rendered;

struct TjDeleter {
  void operator()(void* h) const { tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

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

Result<EncodedImage> EncodeJpeg(const AVFrame& frame, const EncodeOptions& options) {
  const int quality = std::clamp(options.quality, 1, 100);
  auto fmt = static_cast<AVPixelFormat>(frame.format);
  if (internal::IsBt601Yuv420(frame)) {
    if (internal::IsIdentity(frame, options) && internal::IsFullRange(frame) &&
        (fmt == AV_PIX_FMT_YUVJ420P || fmt == AV_PIX_FMT_YUV420P)) {
      // Already JFIF's colour space: compress the decoder's planes as they are.
      const uint8_t* planes[3] = {frame.data[0], frame.data[1], frame.data[2]};
      const int strides[3] = {frame.linesize[0], frame.linesize[1], frame.linesize[2]};
      return CompressYuv420(planes, strides, frame.width, frame.height, quality);
    }
    Rendered r;
    LF_RETURN_IF_ERROR(internal::Render(frame, options, {AV_PIX_FMT_YUV420P, true, false}, &r));
    const uint8_t* planes[3] = {r.planes.data[0], r.planes.data[1], r.planes.data[2]};
    return CompressYuv420(planes, r.planes.linesize, r.width, r.height, quality);
  }
  // Other matrices (BT.709, BT.2020) and chroma layouts go through RGB so that
  // colours stay true, and keep the source's chroma resolution.
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(fmt);
  int subsampling = TJSAMP_420;
  if (desc != nullptr && desc->log2_chroma_w == 0 && desc->log2_chroma_h == 0)
    subsampling = TJSAMP_444;
  else if (desc != nullptr && desc->log2_chroma_w == 1 && desc->log2_chroma_h == 0)
    subsampling = TJSAMP_422;
  // A quarter turn turns 4:2:2's horizontal halving into a vertical one.
  if (subsampling == TJSAMP_422 && (options.rotate_degrees == 90 || options.rotate_degrees == 270))
    subsampling = TJSAMP_440;
  Rendered r;
  LF_RETURN_IF_ERROR(internal::Render(frame, options, {AV_PIX_FMT_RGB24}, &r));
  return CompressRgb(r.planes.data[0], r.planes.linesize[0], r.width, r.height, quality,
                     subsampling);
}

Result<EncodedImage> EncodePng(const AVFrame& frame, const EncodeOptions& options) {
  Rendered r;
  LF_RETURN_IF_ERROR(internal::Render(frame, options, {AV_PIX_FMT_RGB24}, &r));
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (codec == nullptr) return Internal("PNG encoder not built in");
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) return Internal("out of memory");
  ctx->width = r.width;
  ctx->height = r.height;
  ctx->pix_fmt = AV_PIX_FMT_RGB24;
  ctx->time_base = {1, 1};
  ctx->compression_level = 3;  // fast: these are previews, not archives
  int err = avcodec_open2(ctx.get(), codec, nullptr);
  if (err < 0) return AvError(err, "opening the PNG encoder");
  FramePtr pic = MakeFrame();
  pic->format = AV_PIX_FMT_RGB24;
  pic->width = r.width;
  pic->height = r.height;
  for (int i = 0; i < 4; ++i) {
    pic->data[i] = r.planes.data[i];
    pic->linesize[i] = r.planes.linesize[i];
  }
  if ((err = avcodec_send_frame(ctx.get(), pic.get())) < 0) return AvError(err, "PNG encode");
  PacketPtr pkt = MakePacket();
  if ((err = avcodec_receive_packet(ctx.get(), pkt.get())) < 0) return AvError(err, "PNG encode");
  return EncodedImage{std::string(reinterpret_cast<char*>(pkt->data), pkt->size), ImageFormat::kPng,
                      r.width, r.height};
}

// One lossy WebP (VP8) from 4:2:0 planes in VP8's limited-range BT.601, or
// from RGB, which libwebp converts.
Result<std::string> WebpFromRendered(const Rendered& r, bool yuv, int quality) {
  WebPConfig config;
  if (!WebPConfigPreset(&config, WEBP_PRESET_DEFAULT, static_cast<float>(quality)))
    return Internal("libwebp version mismatch");
  config.method = 2;  // 0 fastest .. 6 smallest; a still is on a request's path
  WebPPicture pic;
  if (!WebPPictureInit(&pic)) return Internal("libwebp version mismatch");
  pic.width = r.width;
  pic.height = r.height;
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  pic.writer = WebPMemoryWrite;
  pic.custom_ptr = &writer;
  if (yuv) {
    pic.use_argb = 0;
    pic.colorspace = WEBP_YUV420;
    pic.y = r.planes.data[0];
    pic.u = r.planes.data[1];
    pic.v = r.planes.data[2];
    pic.y_stride = r.planes.linesize[0];
    pic.uv_stride = r.planes.linesize[1];  // av_image_alloc gives U and V one stride
  } else if (!WebPPictureImportRGB(&pic, r.planes.data[0], r.planes.linesize[0])) {
    WebPPictureFree(&pic);
    return Internal("out of memory");
  }
  int ok = WebPEncode(&config, &pic);
  WebPEncodingError why = pic.error_code;
  WebPPictureFree(&pic);  // frees only what libwebp allocated, not our planes
  std::string bytes(reinterpret_cast<const char*>(writer.mem), writer.size);
  WebPMemoryWriterClear(&writer);
  if (!ok) return Internal("WebP encoding failed (libwebp error " + std::to_string(why) + ")");
  return bytes;
}

Result<EncodedImage> EncodeWebp(const AVFrame& frame, const EncodeOptions& options) {
  const int quality = std::clamp(options.quality, 1, 100);
  // VP8 is limited-range BT.601: a BT.601 frame needs a range fix at most;
  // other matrices go through RGB, which libwebp converts with its own.
  const bool yuv = internal::IsYuv(frame) && internal::SwsMatrix(frame) == SWS_CS_ITU601;
  Rendered r;
  LF_RETURN_IF_ERROR(internal::Render(
      frame, options, {yuv ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_RGB24, false, false}, &r));
  Result<std::string> bytes = WebpFromRendered(r, yuv, quality);
  if (!bytes.ok()) return bytes.status();
  return EncodedImage{std::move(*bytes), ImageFormat::kWebp, r.width, r.height};
}

avifMatrixCoefficients AvifMatrix(int sws_matrix) {
  switch (sws_matrix) {
    case SWS_CS_ITU709:
      return AVIF_MATRIX_COEFFICIENTS_BT709;
    case SWS_CS_BT2020:
      return AVIF_MATRIX_COEFFICIENTS_BT2020_NCL;
    case SWS_CS_SMPTE240M:
      return AVIF_MATRIX_COEFFICIENTS_SMPTE240;
    default:
      return AVIF_MATRIX_COEFFICIENTS_BT601;
  }
}

struct AvifImageDeleter {
  void operator()(avifImage* i) const { avifImageDestroy(i); }
};
struct AvifEncoderDeleter {
  void operator()(avifEncoder* e) const { avifEncoderDestroy(e); }
};

Result<EncodedImage> EncodeAvif(const AVFrame& frame, const EncodeOptions& options) {
  const int quality = std::clamp(options.quality, 1, 100);
  // 8-bit 4:2:0 in the frame's own matrix and range, which the header names,
  // so no colour conversion beyond the bit depth and chroma layout.
  Rendered r;
  LF_RETURN_IF_ERROR(
      internal::Render(frame, options, {AV_PIX_FMT_YUV420P, true, /*keep_source_range=*/true}, &r));
  std::unique_ptr<avifImage, AvifImageDeleter> image(
      avifImageCreate(static_cast<uint32_t>(r.width), static_cast<uint32_t>(r.height), 8,
                      AVIF_PIXEL_FORMAT_YUV420));
  if (!image) return Internal("out of memory");
  image->yuvRange = r.full_range ? AVIF_RANGE_FULL : AVIF_RANGE_LIMITED;
  image->matrixCoefficients = AvifMatrix(r.sws_matrix);
  // FFmpeg's primaries and transfer enums are H.273's code points, as AVIF's are.
  if (frame.color_primaries != AVCOL_PRI_UNSPECIFIED && frame.color_primaries < AVCOL_PRI_NB)
    image->colorPrimaries = static_cast<avifColorPrimaries>(frame.color_primaries);
  if (frame.color_trc != AVCOL_TRC_UNSPECIFIED && frame.color_trc < AVCOL_TRC_NB)
    image->transferCharacteristics = static_cast<avifTransferCharacteristics>(frame.color_trc);
  // The planes stay ours: libavif reads them, never frees them.
  image->imageOwnsYUVPlanes = AVIF_FALSE;
  for (int p = 0; p < 3; ++p) {
    image->yuvPlanes[p] = r.planes.data[p];
    image->yuvRowBytes[p] = static_cast<uint32_t>(r.planes.linesize[p]);
  }
  std::unique_ptr<avifEncoder, AvifEncoderDeleter> encoder(avifEncoderCreate());
  if (!encoder) return Internal("out of memory");
  encoder->speed = AVIF_SPEED_FASTEST;  // a still is on a request's path
  encoder->maxThreads = 1;              // requests run in parallel on the worker pool
  // Quality 100 is the best quantizer (0), 1 nearly the worst (63), as libavif
  // 1.0's own quality setting maps it.
  const int quantizer = ((100 - quality) * AVIF_QUANTIZER_WORST_QUALITY + 50) / 100;
  encoder->minQuantizer = encoder->maxQuantizer = quantizer;
  avifRWData out = AVIF_DATA_EMPTY;
  avifResult res = avifEncoderWrite(encoder.get(), image.get(), &out);
  for (int p = 0; p < 3; ++p) image->yuvPlanes[p] = nullptr;
  if (res != AVIF_RESULT_OK) {
    avifRWDataFree(&out);
    return Internal(std::string("AVIF encoding failed: ") + avifResultToString(res));
  }
  EncodedImage img{std::string(reinterpret_cast<const char*>(out.data), out.size),
                   ImageFormat::kAvif, r.width, r.height};
  avifRWDataFree(&out);
  return img;
}

}  // namespace

int MaxImageSide(ImageFormat format) { return format == ImageFormat::kWebp ? 16383 : 65535; }

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

Status ValidateEncodeOptions(const EncodeOptions& o) {
  const int r = o.rotate_degrees;
  if (r != 0 && r != 90 && r != 180 && r != 270)
    return InvalidArgument("rotation must be 0, 90, 180 or 270 degrees, not " + std::to_string(r));
  if (o.width < 0 || o.height < 0) return InvalidArgument("width and height must not be negative");
  if (o.width > 65535 || o.height > 65535)
    return InvalidArgument("width and height must be at most 65535");
  if (o.fit != Fit::kFill && (o.width == 0 || o.height == 0))
    return InvalidArgument(
        std::string("fit=") + (o.fit == Fit::kContain ? "contain" : "cover") +
        " needs both a width and a height (with one, the frame's shape is kept anyway)");
  return Status::Ok();
}

Result<EncodedImage> EncodeImage(const AVFrame& frame, const EncodeOptions& options) {
  LF_RETURN_IF_ERROR(ValidateEncodeOptions(options));
  if (frame.width <= 0 || frame.height <= 0 || frame.format < 0)
    return Status(Code::kMediaError, "frame has no picture");
  int w = 0, h = 0;
  LF_RETURN_IF_ERROR(internal::OutputSize(frame, options, MaxImageSide(options.format), &w, &h));
  switch (options.format) {
    case ImageFormat::kPng:
      return EncodePng(frame, options);
    case ImageFormat::kWebp:
      return EncodeWebp(frame, options);
    case ImageFormat::kAvif:
      return EncodeAvif(frame, options);
    case ImageFormat::kJpeg:
      break;
  }
  return EncodeJpeg(frame, options);
}

void ShrinkToPixels(uint64_t max_pixels, int* w, int* h) {
  const double pixels = static_cast<double>(*w) * static_cast<double>(*h);
  if (pixels <= static_cast<double>(max_pixels)) return;
  const double scale = std::sqrt(static_cast<double>(max_pixels) / pixels);
  *w = std::max(2, static_cast<int>(*w * scale) & ~1);
  *h = std::max(2, static_cast<int>(*h * scale) & ~1);
}

}  // namespace lastframe::media
