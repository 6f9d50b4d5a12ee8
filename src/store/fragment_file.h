#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/fragment.h"

// The fragment archive's files, one per fragment: how each is named and read
// back. Shared by fragment_archive.cpp (Persist, Recover, Trim) and
// fragment_archive_read.cpp (Read); not part of the store's interface.
namespace lastframe::store::fragment_file {

// What a fragment file's name carries:
//   <server ms>-<number>-<producer ms>-<frames>-<timecode ms>.mkv
struct FileName {
  int64_t server_ms = 0;
  uint64_t number = 0;
  int64_t producer_ms = 0;
  int64_t frames = 0;  // what a whole file holds: a file that reads short is torn
  int64_t timecode_ms = 0;
};

// The file name of |n|.
std::string Format(const FileName& n);
// The fields of a fragment file's name; nullopt if |name| is not one.
std::optional<FileName> Parse(const std::string& name);
// Reads the fragment file at |path| (named |name|) back: its frames on the
// fragment's own timeline, decode times rebuilt. MediaError if it does not
// open, has no video, is not led by a keyframe or holds fewer frames than its
// name says (torn).
Result<FragmentView> ReadFragment(const std::filesystem::path& path, const FileName& name);
// The same from a fragment file's bytes in memory (an object of the shared
// archive), checked alike.
Result<FragmentView> ReadFragmentBytes(std::string_view bytes, const FileName& name);

}  // namespace lastframe::store::fragment_file
