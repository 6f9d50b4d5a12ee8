#include "media/image_render.h"

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>

#include "media/bitmap_font.h"

namespace lastframe::media::internal {
namespace {

struct SwsDeleter {
  void operator()(SwsContext* c) const { sws_freeContext(c); }
};
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;

// A rectangle in pixels.
struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

// Where one frame goes: from |src| (a rectangle of the unrotated frame) into
// |dst| (a rectangle of an unrotated buffer of buf_w x buf_h), which rotating
// by |rotate| clockwise turns into the out_w x out_h image.
struct Layout {
  int out_w = 0, out_h = 0;
  int buf_w = 0, buf_h = 0;
  int rotate = 0;
  Rect src, dst;
};

bool Swaps(int rotate) { return rotate == 90 || rotate == 270; }

// The rectangle |r| of an image of w x h after rotating that image by
// |rotate| clockwise... inverted: |r| is in the rotated image (rw x rh), the
// result in the unrotated one.
Rect Unrotate(const Rect& r, int rotate, int rw, int rh) {
  switch (rotate) {
    case 90:  // unrotated (x, y) -> rotated (uh-1-y, x), with uh = rw
      return {r.y, rw - r.x - r.w, r.h, r.w};
    case 180:
      return {rw - r.x - r.w, rh - r.y - r.h, r.w, r.h};
    case 270:  // unrotated (x, y) -> rotated (y, uw-1-x), with uw = rh
      return {rh - r.y - r.h, r.x, r.h, r.w};
    default:
      return r;
  }
}

int Round(double v) { return static_cast<int>(std::lround(v)); }

Layout MakeLayout(const AVFrame& frame, const EncodeOptions& o, int out_w, int out_h) {
  Layout l;
  l.rotate = o.rotate_degrees;
  l.out_w = out_w;
  l.out_h = out_h;
  l.buf_w = Swaps(l.rotate) ? out_h : out_w;
  l.buf_h = Swaps(l.rotate) ? out_w : out_h;
  // The frame as rotated: rw x rh.
  const int rw = Swaps(l.rotate) ? frame.height : frame.width;
  const int rh = Swaps(l.rotate) ? frame.width : frame.height;
  Rect src{0, 0, rw, rh}, dst{0, 0, out_w, out_h};
  if (o.fit == Fit::kContain) {
    double scale = std::min(static_cast<double>(out_w) / rw, static_cast<double>(out_h) / rh);
    dst.w = std::clamp(Round(rw * scale), 1, out_w);
    dst.h = std::clamp(Round(rh * scale), 1, out_h);
    dst.x = (out_w - dst.w) / 2;
    dst.y = (out_h - dst.h) / 2;
  } else if (o.fit == Fit::kCover) {
    double scale = std::max(static_cast<double>(out_w) / rw, static_cast<double>(out_h) / rh);
    src.w = std::clamp(Round(out_w / scale), 1, rw);
    src.h = std::clamp(Round(out_h / scale), 1, rh);
    src.x = (rw - src.w) / 2;
    src.y = (rh - src.h) / 2;
  }
  l.src = Unrotate(src, l.rotate, rw, rh);
  l.dst = Unrotate(dst, l.rotate, out_w, out_h);
  return l;
}

AVPixelFormat PlainFormat(AVPixelFormat f) {
  // The J formats are deprecated aliases in swscale: name the plain format and
  // pass the range explicitly.
  switch (f) {
    case AV_PIX_FMT_YUVJ420P:
      return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
      return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
      return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
      return AV_PIX_FMT_YUV440P;
    default:
      return f;
  }
}

// Fills |p| (w x h of |fmt|) with black: RGB 0, or Y at |full_range|'s black
// and neutral chroma.
void FillBlack(Planes* p, AVPixelFormat fmt, int w, int h, bool full_range) {
  if (fmt == AV_PIX_FMT_RGB24) {
    for (int y = 0; y < h; ++y) std::memset(p->data[0] + ptrdiff_t{y} * p->linesize[0], 0, w * 3);
    return;
  }
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int y = 0; y < h; ++y)
    std::memset(p->data[0] + ptrdiff_t{y} * p->linesize[0], full_range ? 0 : 16, w);
  for (int c = 1; c < 3; ++c)
    for (int y = 0; y < ch; ++y) std::memset(p->data[c] + ptrdiff_t{y} * p->linesize[c], 128, cw);
}

// Converts 4:2:0 planes between limited range (Y 16..235, C 16..240) and full
// range, in place, by table. swscale's own range conversion is skipped on some
// YUV-to-YUV paths (10-bit input), so it is done here.
void ConvertRange(Planes* yuv, int w, int h, bool to_full) {
  static const auto tables = [] {
    // [to_full][luma/chroma][v]
    std::array<std::array<std::array<uint8_t, 256>, 2>, 2> t{};
    for (int v = 0; v < 256; ++v) {
      t[1][0][v] = static_cast<uint8_t>(std::clamp((v - 16) * 255.0 / 219.0 + 0.5, 0.0, 255.0));
      t[1][1][v] = static_cast<uint8_t>(std::clamp((v - 128) * 255.0 / 224.0 + 128.5, 0.0, 255.0));
      t[0][0][v] = static_cast<uint8_t>(v * 219.0 / 255.0 + 16.5);
      t[0][1][v] = static_cast<uint8_t>(std::clamp((v - 128) * 224.0 / 255.0 + 128.5, 0.0, 255.0));
    }
    return t;
  }();
  const auto& t = tables[to_full ? 1 : 0];
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int y = 0; y < h; ++y) {
    uint8_t* row = yuv->data[0] + ptrdiff_t{y} * yuv->linesize[0];
    for (int x = 0; x < w; ++x) row[x] = t[0][row[x]];
  }
  for (int p = 1; p < 3; ++p)
    for (int y = 0; y < ch; ++y) {
      uint8_t* row = yuv->data[p] + ptrdiff_t{y} * yuv->linesize[p];
      for (int x = 0; x < cw; ++x) row[x] = t[1][row[x]];
    }
}

// Copies a plane of w x h pixels of |bpp| bytes, rotated by |rotate| clockwise.
void RotatePlane(const uint8_t* src, int src_stride, int w, int h, int bpp, int rotate,
                 uint8_t* dst, int dst_stride) {
  const int dw = Swaps(rotate) ? h : w, dh = Swaps(rotate) ? w : h;
  for (int fy = 0; fy < dh; ++fy) {
    uint8_t* out = dst + ptrdiff_t{fy} * dst_stride;
    for (int fx = 0; fx < dw; ++fx) {
      int sx = fx, sy = fy;
      if (rotate == 90) {
        sx = fy;
        sy = h - 1 - fx;
      } else if (rotate == 180) {
        sx = w - 1 - fx;
        sy = h - 1 - fy;
      } else if (rotate == 270) {
        sx = w - 1 - fy;
        sy = fx;
      }
      std::memcpy(out + ptrdiff_t{fx} * bpp, src + ptrdiff_t{sy} * src_stride + ptrdiff_t{sx} * bpp,
                  bpp);
    }
  }
}

// Burns |text| into the bottom-left corner of the w x h planes.
void DrawOverlay(const std::string& text, AVPixelFormat fmt, bool full_range, int w, int h,
                 Planes* p) {
  TextBox box = RenderText(text, TextScale(w, h), w, h);
  if (box.width == 0 || box.height == 0) return;
  const int top = h - box.height;
  if (fmt == AV_PIX_FMT_RGB24) {
    for (int y = 0; y < box.height; ++y) {
      uint8_t* row = p->data[0] + ptrdiff_t{top + y} * p->linesize[0];
      for (int x = 0; x < box.width; ++x) {
        uint8_t v = box.lit(x, y) ? 240 : 16;
        row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
      }
    }
    return;
  }
  // YUV: the same greys in the planes' range and neutral chroma. The box grows
  // by a dark row or column where it would end inside a chroma sample, so that
  // no pixel outside it has its colour changed.
  const uint8_t ink = full_range ? 240 : static_cast<uint8_t>(16 + 240 * 219 / 255);
  const uint8_t dark = full_range ? 16 : static_cast<uint8_t>(16 + 16 * 219 / 255);
  const int box_top = top & ~1;
  const int box_w = std::min(w, (box.width + 1) & ~1);
  for (int y = box_top; y < h; ++y) {
    uint8_t* row = p->data[0] + ptrdiff_t{y} * p->linesize[0];
    for (int x = 0; x < box_w; ++x)
      row[x] = (y >= top && x < box.width && box.lit(x, y - top)) ? ink : dark;
  }
  for (int c = 1; c < 3; ++c)
    for (int y = box_top / 2; y < (h + 1) / 2; ++y)
      std::memset(p->data[c] + ptrdiff_t{y} * p->linesize[c], 128, (box_w + 1) / 2);
}

}  // namespace

Planes& Planes::operator=(Planes&& o) noexcept {
  if (this != &o) {
    av_freep(&data[0]);
    std::copy(o.data, o.data + 4, data);
    std::copy(o.linesize, o.linesize + 4, linesize);
    std::fill(o.data, o.data + 4, nullptr);
  }
  return *this;
}

Planes::~Planes() { av_freep(&data[0]); }

bool Planes::Allocate(AVPixelFormat fmt, int w, int h) {
  av_freep(&data[0]);
  return av_image_alloc(data, linesize, w, h, fmt, 32) >= 0;
}

bool IsFullRange(const AVFrame& f) {
  auto fmt = static_cast<AVPixelFormat>(f.format);
  return f.color_range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P ||
         fmt == AV_PIX_FMT_YUVJ422P || fmt == AV_PIX_FMT_YUVJ444P || fmt == AV_PIX_FMT_YUVJ440P;
}

int SwsMatrix(const AVFrame& frame) {
  switch (frame.colorspace) {
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

bool IsYuv(const AVFrame& frame) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
  return d != nullptr && (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) == 0 &&
         d->nb_components >= 3;
}

bool IsBt601Yuv420(const AVFrame& frame) {
  // JFIF's and VP8's YCbCr is BT.601; frames in these matrices (or
  // unspecified, which FFmpeg also treats as BT.601) need a range fix only.
  const AVColorSpace cs = frame.colorspace;
  bool bt601 = cs == AVCOL_SPC_UNSPECIFIED || cs == AVCOL_SPC_BT470BG ||
               cs == AVCOL_SPC_SMPTE170M || cs == AVCOL_SPC_FCC;
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
  return bt601 && IsYuv(frame) && d->log2_chroma_w == 1 && d->log2_chroma_h == 1;
}

Status OutputSize(const AVFrame& frame, const EncodeOptions& o, int max_side, int* w, int* h) {
  const bool swap = Swaps(o.rotate_degrees);
  FitSize(swap ? frame.height : frame.width, swap ? frame.width : frame.height, o.width, o.height,
          w, h);
  if (*w > max_side || *h > max_side)
    return InvalidArgument("an image of " + std::to_string(*w) + "x" + std::to_string(*h) +
                           " is larger than this format allows (" + std::to_string(max_side) +
                           " pixels a side)");
  return Status::Ok();
}

bool IsIdentity(const AVFrame& frame, const EncodeOptions& o) {
  int w = 0, h = 0;
  FitSize(frame.width, frame.height, o.width, o.height, &w, &h);
  return o.rotate_degrees == 0 && o.overlay_text.empty() && w == frame.width && h == frame.height;
}

Status Render(const AVFrame& frame, const EncodeOptions& options, const PixelSpec& spec,
              Rendered* out) {
  if (frame.width <= 0 || frame.height <= 0 || frame.format < 0)
    return Status(Code::kMediaError, "frame has no picture");
  const auto src_fmt = static_cast<AVPixelFormat>(frame.format);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(src_fmt);
  if (desc == nullptr || (desc->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)))
    return Status(Code::kMediaError, "unsupported pixel format");
  int out_w = 0, out_h = 0;
  LF_RETURN_IF_ERROR(OutputSize(frame, options, INT32_MAX, &out_w, &out_h));
  Layout l = MakeLayout(frame, options, out_w, out_h);

  const bool yuv_out = spec.format == AV_PIX_FMT_YUV420P;
  const bool src_yuv = IsYuv(frame);
  const bool src_full = src_yuv ? IsFullRange(frame) : true;
  // YUV from YUV keeps the source's range through swscale (fixed by table
  // below); YUV from RGB gets its range from swscale directly.
  const bool target_full = spec.keep_source_range && src_yuv ? src_full : spec.full_range;
  const bool scaled_full = !yuv_out ? true : (src_yuv ? src_full : target_full);
  out->full_range = yuv_out ? target_full : true;
  out->sws_matrix = src_yuv ? SwsMatrix(frame) : SWS_CS_ITU601;

  // Crops start on whole chroma samples.
  const int cx = (1 << desc->log2_chroma_w) - 1, cy = (1 << desc->log2_chroma_h) - 1;
  l.src.x &= ~cx;
  l.src.y &= ~cy;
  // Bars are whole chroma samples in the 4:2:0 output.
  if (yuv_out) {
    l.dst.x &= ~1;
    l.dst.y &= ~1;
  }
  const uint8_t* src_data[4] = {nullptr, nullptr, nullptr, nullptr};
  int steps[4] = {0, 0, 0, 0};
  av_image_fill_max_pixsteps(steps, nullptr, desc);
  for (int p = 0; p < 4 && frame.data[p] != nullptr; ++p) {
    bool chroma = (p == 1 || p == 2) && (desc->flags & AV_PIX_FMT_FLAG_PAL) == 0;
    int x = chroma ? l.src.x >> desc->log2_chroma_w : l.src.x;
    int y = chroma ? l.src.y >> desc->log2_chroma_h : l.src.y;
    src_data[p] = frame.data[p];
    if ((desc->flags & AV_PIX_FMT_FLAG_PAL) && p == 1) continue;  // the palette
    src_data[p] += ptrdiff_t{y} * frame.linesize[p] + ptrdiff_t{x} * steps[p];
  }

  Planes scaled;
  if (!scaled.Allocate(spec.format, l.buf_w, l.buf_h)) return Internal("out of memory");
  const bool bars = l.dst.w != l.buf_w || l.dst.h != l.buf_h;
  if (bars) FillBlack(&scaled, spec.format, l.buf_w, l.buf_h, scaled_full);

  int flags = (l.src.w == l.dst.w && l.src.h == l.dst.h) ? SWS_POINT : SWS_BILINEAR;
  flags |= SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT;
  SwsPtr sws(sws_getContext(l.src.w, l.src.h, PlainFormat(src_fmt), l.dst.w, l.dst.h, spec.format,
                            flags, nullptr, nullptr, nullptr));
  if (!sws) return Status(Code::kMediaError, "cannot convert pixel format");
  // YUV out of YUV keeps the frame's matrix (no conversion); out of RGB, it
  // is BT.601.
  const int src_matrix = SwsMatrix(frame);
  const int dst_matrix = yuv_out && src_yuv ? src_matrix : SWS_CS_ITU601;
  sws_setColorspaceDetails(sws.get(), sws_getCoefficients(src_matrix), src_full ? 1 : 0,
                           sws_getCoefficients(dst_matrix), scaled_full ? 1 : 0, 0, 1 << 16,
                           1 << 16);
  uint8_t* dst_data[4] = {nullptr, nullptr, nullptr, nullptr};
  for (int p = 0; p < 4 && scaled.data[p] != nullptr; ++p) {
    int x = (yuv_out && p > 0) ? l.dst.x / 2 : l.dst.x;
    int y = (yuv_out && p > 0) ? l.dst.y / 2 : l.dst.y;
    int step = yuv_out ? 1 : 3;
    dst_data[p] = scaled.data[p] + ptrdiff_t{y} * scaled.linesize[p] + ptrdiff_t{x} * step;
  }
  int rows = sws_scale(sws.get(), src_data, frame.linesize, 0, l.src.h, dst_data, scaled.linesize);
  if (rows != l.dst.h) return Status(Code::kMediaError, "pixel conversion failed");
  if (yuv_out && scaled_full != target_full) ConvertRange(&scaled, l.buf_w, l.buf_h, target_full);

  if (l.rotate == 0) {
    out->planes = std::move(scaled);
  } else {
    if (!out->planes.Allocate(spec.format, out_w, out_h)) return Internal("out of memory");
    if (yuv_out) {
      RotatePlane(scaled.data[0], scaled.linesize[0], l.buf_w, l.buf_h, 1, l.rotate,
                  out->planes.data[0], out->planes.linesize[0]);
      for (int p = 1; p < 3; ++p)
        RotatePlane(scaled.data[p], scaled.linesize[p], (l.buf_w + 1) / 2, (l.buf_h + 1) / 2, 1,
                    l.rotate, out->planes.data[p], out->planes.linesize[p]);
    } else {
      RotatePlane(scaled.data[0], scaled.linesize[0], l.buf_w, l.buf_h, 3, l.rotate,
                  out->planes.data[0], out->planes.linesize[0]);
    }
  }
  out->width = out_w;
  out->height = out_h;
  if (!options.overlay_text.empty())
    DrawOverlay(options.overlay_text, spec.format, out->full_range, out_w, out_h, &out->planes);
  return Status::Ok();
}

}  // namespace lastframe::media::internal
