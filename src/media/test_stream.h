#pragma once

// Test-only: encoded frames for media's tests, made by the ffmpeg CLI and read
// back by a demuxer, as ingest would hand them to the store.

#include <string>
#include <vector>

#include "media/encoded_frame.h"
#include "media/ffmpeg.h"

namespace lastframe::media::test {

// A video track: its codec parameters and its frames in decode order, with
// presentation times in milliseconds (dts_ms as the container gave it, or
// pts_ms where it gave none).
struct TestStream {
  SharedCodecParameters codec;
  std::vector<EncodedFrame> frames;
};

// Two seconds of a 160x120 test pattern at 10 fps, encoded by the ffmpeg CLI
// with |encode| (e.g. {"-c:v", "libx264", "-bf", "2"}) into Matroska and read
// back by DemuxMatroska.
TestStream EncodeTestStream(const std::vector<std::string>& encode);

// The first track of the Matroska document |bytes| and its packets, read by
// media::Demuxer as a live input (no seeking).
TestStream DemuxMatroska(const std::string& bytes);

// The first track of the file at |path| in any container libavformat knows,
// read with seeking (MP4 keeps its index at the end).
TestStream DemuxFile(const std::string& path);

}  // namespace lastframe::media::test
