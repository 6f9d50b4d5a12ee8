// FragmentArchive::Read: one fragment back from its file, on demand (the
// store keeps only the newest in memory; clips, lists and Kinesis Video reads
// of older ones come here).

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "store/fragment_archive.h"
#include "store/fragment_file.h"

namespace lastframe::store {

Result<FragmentView> FragmentArchive::Read(const std::string& stream,
                                           const FragmentView& index) const {
  const fragment_file::FileName name{index.server_ts_ms, index.number, index.producer_ts_ms,
                                     static_cast<int64_t>(index.frames.size()), index.timecode_ms};
  const std::filesystem::path path = FolderOf(stream) / fragment_file::Format(name);
  auto not_there = [&] {
    return NotFound("fragment " + std::to_string(index.number) + " of stream '" + stream +
                        "' is no longer on disk",
                    Reason::kFragmentNotFound);
  };
  // Trimmed files are recycled (written over by later fragments), and leave their name
  // first: if the name still holds the file read, from before the read to after it, nothing
  // wrote over it meanwhile. Else the fragment is gone, as if asked for a moment later.
  struct stat before {};
  if (::stat(path.c_str(), &before) != 0) return not_there();
  auto read = fragment_file::ReadFragment(path, name);
  struct stat after {};
  if (::stat(path.c_str(), &after) != 0 || after.st_ino != before.st_ino ||
      after.st_dev != before.st_dev)
    return not_there();
  if (read.ok()) return read;
  return Status(Code::kMediaError, "fragment " + std::to_string(index.number) + " of stream '" +
                                       stream + "' does not read back: " + read.status().message());
}

}  // namespace lastframe::store
