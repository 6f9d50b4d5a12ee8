// FragmentArchive::Read: one fragment back from its file, on demand (the
// store keeps only the newest in memory; clips, lists and Kinesis Video reads
// of older ones come here).

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
  // An open file stays readable if it is trimmed meanwhile: only a failed
  // open can be a file gone, told apart from a file that does not read back.
  auto read = fragment_file::ReadFragment(path, name);
  if (read.ok()) return read;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_there();
  return Status(Code::kMediaError, "fragment " + std::to_string(index.number) + " of stream '" +
                                       stream + "' does not read back: " + read.status().message());
}

}  // namespace lastframe::store
