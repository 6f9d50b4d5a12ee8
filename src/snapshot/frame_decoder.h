#pragma once

#include <cstdint>
#include <functional>

#include "core/status.h"
#include "media/ffmpeg.h"
#include "store/fragment.h"

namespace lastframe::snapshot {

// Decodes |fragment| from its keyframe to its last frame and returns the
// newest picture: the decoded frame with the highest presentation time (with
// B-frames the last packet sent is not the last shown). Packets that fail to
// decode are skipped; MediaError if none decodes. |threads| 0 picks by the
// amount of work: one thread for short or small fragments, FFmpeg's choice else.
// |max_pts| (the frames' pts, milliseconds): the newest picture presented at
// or before it instead (a frame at a time; with B-frames a later one may be
// decoded first).
Result<media::FramePtr> DecodeNewestFrame(const store::FragmentView& fragment, int threads = 0,
                                          int64_t max_pts = INT64_MAX);

// Decodes every frame of |fragment| and hands each picture to |picture| in
// presentation order, with its pts (the frames', milliseconds); |picture|
// returning false stops early. |threads| as OpenDecoder's (0: by the amount of
// work, as DecodeNewestFrame). MediaError when none decodes.
Status DecodeEachFrame(const store::FragmentView& fragment, int threads,
                       const std::function<bool(const AVFrame& picture, int64_t pts)>& picture);

// Keeps the decoded |*frame| as |*newest| when it is presented at or after
// |*newest_pts| (decoders give frames in presentation order, but a frame can
// repeat a timestamp); |*frame| is left blank, ready for the next decode.
void KeepIfNewer(media::FramePtr* frame, media::FramePtr* newest, int64_t* newest_pts,
                 int64_t max_pts = INT64_MAX);

// Whether decoding |fragment|'s frames from |first| on is long enough for
// frame threads to pay off (more than eight 1080p frames' worth of pixels).
bool WorthFrameThreads(const store::FragmentView& fragment, size_t first = 0);

}  // namespace lastframe::snapshot
