#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "core/status.h"

namespace lastframe {

// Replaces |path| with |text| so that a crash or a full disk leaves either the
// old file or the new one, never a part of one: a temp file beside it (mode
// |mode|) is written, synced and renamed over |path|, then the folder synced.
// On failure nothing new is left behind (kUnavailable, saying why).
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view text,
                           mode_t mode = 0600);

}  // namespace lastframe
