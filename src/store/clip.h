#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"
#include "media/muxer.h"
#include "store/fragment.h"

namespace lastframe::store {

using ClipFormat = media::ClipFormat;

// Remuxes whole fragments into one playable file (no re-encode): MP4 or
// Matroska (see media::MuxClip). Frames are placed on the producer's
// timeline, so fragments from different producer sessions follow one another.
// Fragments whose codec differs from the first one's (a new resolution) end
// the clip there. NotFound ("NoFragments") when the first fragment holds no
// frame; TooLarge ("ClipTooLarge") past |max_bytes|.
Result<std::string> MuxClip(const std::vector<FragmentView>& fragments, ClipFormat format,
                            size_t max_bytes);

}  // namespace lastframe::store
