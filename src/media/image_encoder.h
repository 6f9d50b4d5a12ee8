#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "media/ffmpeg.h"

namespace lastframe::media {

enum class ImageFormat { kJpeg, kPng };

struct EncodeOptions {
  ImageFormat format = ImageFormat::kJpeg;
  int quality = 80;  // JPEG quality 1..100; ignored for PNG
  // Output size; 0 keeps the frame's own. Callers resolve aspect ratio first
  // (see FitSize).
  int width = 0;
  int height = 0;
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

// Encodes a decoded video frame of any pixel format, range and bit depth.
// Colours are converted as the frame's metadata says (limited or full range,
// BT.601 or BT.709 matrices) into JFIF's full-range BT.601 YCbCr. Thread-safe:
// each call uses its own encoder state.
Result<EncodedImage> EncodeImage(const AVFrame& frame, const EncodeOptions& options);

}  // namespace lastframe::media
