#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "media/encoded_frame.h"
#include "media/ffmpeg.h"

namespace lastframe::store {

// One video frame as it arrived: the compressed packet, shared, never copied.
// Timestamps are in milliseconds on the producer's timeline.
using Frame = media::EncodedFrame;

// The state of one fragment (a keyframe and the frames that follow it, up to
// the next keyframe) at the moment it was read. A fragment still arriving has
// complete == false and may have grown since.
struct FragmentView {
  uint64_t number = 0;         // monotonic, unique within the store
  int64_t producer_ts_ms = 0;  // producer timestamp of the first frame (epoch ms)
  int64_t server_ts_ms = 0;    // server arrival of the first frame (epoch ms)
  int64_t duration_ms = 0;     // from the first frame to the end of the last one
  int64_t timecode_ms = 0;     // the first frame's timecode as the producer sent it
  bool complete = false;
  media::SharedCodecParameters codec;  // what is needed to decode the frames
  std::vector<Frame> frames;           // decode order; frames[0] is a keyframe
  size_t bytes = 0;
  // Frames in the fragment, known from the index even when |frames| was not
  // read (a listing without media); 0 when unknown (a remote source's listing).
  size_t frame_count = 0;
};

}  // namespace lastframe::store
