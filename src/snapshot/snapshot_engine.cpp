#include "snapshot/snapshot_engine.h"

namespace lastframe::snapshot {

const char* ImageFormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kAvif:
      return "avif";
    case ImageFormat::kGif:
      return "gif";
    case ImageFormat::kJpeg:
      break;
  }
  return "jpeg";
}

const char* ImageContentType(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng:
      return "image/png";
    case ImageFormat::kWebp:
      return "image/webp";
    case ImageFormat::kAvif:
      return "image/avif";
    case ImageFormat::kGif:
      return "image/gif";
    case ImageFormat::kJpeg:
      break;
  }
  return "image/jpeg";
}

const char* ImageExtension(ImageFormat f) {
  return f == ImageFormat::kJpeg ? "jpg" : ImageFormatName(f);
}

}  // namespace lastframe::snapshot
