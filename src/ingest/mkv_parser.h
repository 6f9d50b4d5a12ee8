#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "media/ffmpeg.h"

namespace lastframe::ingest {

// The video track a Matroska stream's packets are taken from.
struct MkvVideoTrack {
  media::SharedCodecParameters codec;
  AVRational time_base{1, 1000};  // TimecodeScale: packets' timestamps come in it
};

struct MkvParserEvents {
  // The stream's tracks are known (at its first Cluster, or its end): the video
  // track chosen, as libavformat's matroska demuxer would describe it.
  std::function<void(const MkvVideoTrack&)> on_video_track;
  // One whole frame of the video track, in its time base (pts, duration, key
  // flag; no dts: Matroska keeps none). The callee may take its data.
  std::function<void(AVPacket*)> on_packet;
};

// An incremental, non-blocking Matroska parse (libwebm's WebmParser) of one
// producer's stream: Feed hands it the bytes that arrived and returns once
// they are parsed, without waiting for more. Only the first video track
// FFmpeg can decode is read; other tracks' blocks are skipped unread. Frames
// are assembled as their bytes come, so the parser holds at most one frame
// of its own, never a whole Cluster.
//
// Errors carry the Kinesis Video reason: InvalidMkvData (not Matroska, a
// malformed element, no decodable video track, the input cut short inside an
// element), MoreThanAllowedTracksFound (over 3 tracks), MaxFragmentSizeReached
// (an element other than a Segment or Cluster declares more than
// |max_element_bytes|; seen from its header, before any of it is buffered).
// After an error, Feed and Finish return it again.
class MkvParser {
 public:
  MkvParser(size_t max_element_bytes, MkvParserEvents events);
  ~MkvParser();
  MkvParser(const MkvParser&) = delete;
  MkvParser& operator=(const MkvParser&) = delete;

  // Parses |data|; events fire from within. Ok while the stream is well formed
  // so far (whatever is missing yet).
  Status Feed(const uint8_t* data, size_t size);
  // The input ended: Ok if it ended between elements, after a Segment.
  Status Finish();

  // The declared size of the element refused as oversized (0 if none).
  uint64_t oversized() const;
  // Whether the video track has been chosen (on_video_track fired).
  bool has_video_track() const;
  // Whether the error was the input ending inside an element (Finish).
  bool truncated() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// FFmpeg's codec for a Matroska CodecID (V_MPEG4/ISO/AVC, V_VP9, ...), as
// libavformat's matroska demuxer maps it; AV_CODEC_ID_NONE if unknown.
AVCodecID CodecIdOfMatroska(const std::string& codec_id);

}  // namespace lastframe::ingest
