#include "store/clip.h"

#include <algorithm>
#include <cstdint>

namespace lastframe::store {

Result<std::string> MuxClip(const std::vector<FragmentView>& fragments, ClipFormat format,
                            size_t max_bytes) {
  if (fragments.empty() || fragments.front().frames.empty() || !fragments.front().codec)
    return NotFound("no fragments in the range", Reason::kNoFragments);
  const AVCodecParameters& codec = *fragments.front().codec;
  // The producer's timeline: fragment start plus the frame's offset in it.
  std::vector<Frame> placed;
  int64_t last_pts = INT64_MIN;
  for (const FragmentView& f : fragments) {
    if (f.frames.empty() || !f.codec || !media::SameCodec(*f.codec, codec)) break;
    const int64_t first_pts = f.frames.front().pts_ms;
    int64_t shift = 0;  // a producer clock that stepped back: follow on
    if (f.producer_ts_ms <= last_pts) shift = last_pts + 1 - f.producer_ts_ms;
    for (const Frame& frame : f.frames) {
      Frame& p = placed.emplace_back(frame);
      p.pts_ms = f.producer_ts_ms + shift + (frame.pts_ms - first_pts);
      last_pts = std::max(last_pts, p.pts_ms);
    }
  }
  return media::MuxClip(codec, placed, format, max_bytes);
}

}  // namespace lastframe::store
