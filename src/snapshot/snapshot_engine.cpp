#include "snapshot/snapshot_engine.h"

namespace lastframe::snapshot {

const char* ImageFormatName(ImageFormat f) { return f == ImageFormat::kPng ? "png" : "jpeg"; }
const char* ImageContentType(ImageFormat f) {
  return f == ImageFormat::kPng ? "image/png" : "image/jpeg";
}
const char* ImageExtension(ImageFormat f) { return f == ImageFormat::kPng ? "png" : "jpg"; }

}  // namespace lastframe::snapshot
