#pragma once

// Internal to media: the pixel pipeline stills (image_encoder) and animations
// (animation_encoder) share. One frame in, its final planes out: rotated,
// fitted into the box, converted to 8-bit RGB or 4:2:0 YUV with the colour
// handling of image_encoder.h, the overlay burned in. One swscale pass per
// frame; rotation is a plain pixel copy after it.

#include <cstdint>
#include <utility>

#include "core/status.h"
#include "media/ffmpeg.h"
#include "media/image_encoder.h"

namespace lastframe::media::internal {

// A tightly owned image in one pixel format, with aligned strides.
struct Planes {
  uint8_t* data[4] = {nullptr, nullptr, nullptr, nullptr};
  int linesize[4] = {0, 0, 0, 0};
  Planes() = default;
  Planes(const Planes&) = delete;
  Planes& operator=(const Planes&) = delete;
  Planes(Planes&& o) noexcept { *this = std::move(o); }
  Planes& operator=(Planes&& o) noexcept;
  ~Planes();
  // Allocates |w| x |h| of |fmt| (32-byte aligned rows); false when out of memory.
  bool Allocate(AVPixelFormat fmt, int w, int h);
};

// What the planes must be.
struct PixelSpec {
  // AV_PIX_FMT_RGB24 (always full range) or AV_PIX_FMT_YUV420P.
  AVPixelFormat format = AV_PIX_FMT_RGB24;
  // YUV: the range the planes end in, unless |keep_source_range|.
  bool full_range = true;
  // YUV from a YUV frame: keep the frame's range (and, always, its matrix)
  // rather than converting, for formats whose header names them (AVIF).
  bool keep_source_range = false;
};

struct Rendered {
  Planes planes;
  int width = 0;
  int height = 0;
  bool full_range = true;  // YUV: the planes' range
  int sws_matrix = 0;      // YUV: the planes' matrix, a SWS_CS_* value
};

// Whether |frame| is 4:2:0 YUV (of any depth) in a BT.601 matrix (or none named).
bool IsBt601Yuv420(const AVFrame& frame);
// Whether |frame| is YUV (not RGB, not palettized, at least 3 components).
bool IsYuv(const AVFrame& frame);
// Whether the frame's samples are full range (JPEG) rather than limited.
bool IsFullRange(const AVFrame& frame);
// The SWS_CS_* matrix swscale uses for |frame|'s colorspace.
int SwsMatrix(const AVFrame& frame);

// The final (rotated, fitted) size |options| give |frame|, or InvalidArgument.
// |max_side| bounds each side.
Status OutputSize(const AVFrame& frame, const EncodeOptions& options, int max_side, int* w, int* h);

// Whether rendering |frame| with |options| changes nothing but (maybe) the
// pixel format: no rotation, crop, bars, scaling or overlay.
bool IsIdentity(const AVFrame& frame, const EncodeOptions& options);

// Renders |frame| as |options| say (width/height/fit/rotate_degrees/
// overlay_text; format and quality are not read) into |spec|'s pixel format.
// |options| must have passed ValidateEncodeOptions.
Status Render(const AVFrame& frame, const EncodeOptions& options, const PixelSpec& spec,
              Rendered* out);

}  // namespace lastframe::media::internal
