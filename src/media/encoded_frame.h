#pragma once

#include <cstddef>
#include <cstdint>

#include "media/ffmpeg.h"

namespace lastframe::media {

// One compressed video frame: the packet, shared, never copied, and its
// timestamps in milliseconds. The store keeps frames as they arrived (on the
// producer's timeline); the muxers read |pts_ms| as the time to write.
struct EncodedFrame {
  SharedPacket packet;
  int64_t pts_ms = 0;
  int64_t dts_ms = 0;
  bool keyframe = false;
  size_t size() const { return packet ? static_cast<size_t>(packet->size) : 0; }
};

}  // namespace lastframe::media
