#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "media/ffmpeg.h"

namespace lastframe::media {

enum class ImageFormat { kJpeg, kPng, kWebp, kAvif };

// How a frame fills a box of both a width and a height.
enum class Fit { kFill, kContain, kCover };

struct EncodeOptions {
  ImageFormat format = ImageFormat::kJpeg;
  int quality = 80;  // JPEG/WebP/AVIF quality 1..100 (clamped); ignored for PNG
  // The final image's size, after rotation. Both 0 keeps the (rotated) frame's
  // size; one 0 follows the other, keeping the frame's shape (see FitSize).
  int width = 0;
  int height = 0;
  // With both width and height: fill stretches the frame to the box; contain
  // keeps the frame's shape inside the box (the output is the box, the frame
  // centred, letterboxed with black bars); cover keeps its shape and crops the
  // centre to fill the box. Contain and cover need both width and height.
  Fit fit = Fit::kFill;
  // 0, 90, 180 or 270, clockwise; applied to the frame before sizing, so
  // width/height name the rotated image's size.
  int rotate_degrees = 0;
  // When not empty: burned into the bottom-left corner, light text on a dark
  // box, in bitmap_font's glyphs scaled with the image (legible from 320x240 to
  // 1920x1080), clipped to the image's width. UTF-8; any character outside
  // printable ASCII is drawn as '?'.
  std::string overlay_text;
};

struct EncodedImage {
  std::string bytes;
  ImageFormat format = ImageFormat::kJpeg;
  int width = 0;
  int height = 0;
};

// Resolves a requested size against the source size: both 0 keeps the source;
// one 0 keeps the aspect ratio from the other. Results are at least 1.
void FitSize(int src_w, int src_h, int req_w, int req_h, int* out_w, int* out_h);
// Scales *w x *h down, keeping its shape (even sides, at least 2), until it
// holds at most |max_pixels|; a size within it is left as it is.
void ShrinkToPixels(uint64_t max_pixels, int* w, int* h);

// The largest width or height of an image of |format|: WebP stores a side in
// 14 bits (16383); PNG, JPEG and AVIF (as libavif writes it) in 16 (65535).
int MaxImageSide(ImageFormat format);

// InvalidArgument, saying which, when |options| cannot be met for any frame:
// a rotation other than 0/90/180/270, a negative or too large (> 65535) width
// or height, or contain/cover without both width and height. OK otherwise.
Status ValidateEncodeOptions(const EncodeOptions& options);

// Encodes a decoded video frame of any pixel format, range and bit depth as
// |options| say. Colours are converted as the frame's metadata says (limited
// or full range, BT.601 or BT.709 matrices): JPEG gets JFIF's full-range
// BT.601 YCbCr, WebP VP8's limited-range BT.601, AVIF 8-bit 4:2:0 in the
// frame's own matrix and range (named in its header), PNG sRGB. InvalidArgument
// for bad options (see ValidateEncodeOptions), MediaError for a frame with no
// picture. Thread-safe: each call uses its own encoder state.
Result<EncodedImage> EncodeImage(const AVFrame& frame, const EncodeOptions& options);

}  // namespace lastframe::media
