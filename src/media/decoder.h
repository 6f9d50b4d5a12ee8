#pragma once

#include "core/status.h"
#include "media/ffmpeg.h"

namespace lastframe::media {

// Opens a decoder for |codec|, to be fed packets timed in milliseconds. With
// |threads| 1 it decodes on the caller's thread and, but for a stream that
// reorders frames, gives a frame out as soon as its packet goes in; more
// threads decode frames and slices in parallel, which is faster on long runs
// but holds frames back until the decoder is drained. MediaError when no
// decoder for the codec is built in or it will not open.
Result<CodecContextPtr> OpenDecoder(const AVCodecParameters& codec, int threads);

}  // namespace lastframe::media
