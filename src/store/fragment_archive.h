#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/fragment.h"

namespace lastframe::store {

struct RecoveredStream {
  std::string name;
  std::optional<int64_t> retention_ms;  // the stream's own, if it was created with one
  std::vector<FragmentView> fragments;  // oldest first, complete
};

struct RecoveryReport {
  std::vector<RecoveredStream> streams;
  size_t fragments = 0;
  size_t discarded = 0;  // torn writes and unreadable files, removed
};

// Durable fragments: each completed fragment is one Matroska file (ffmpeg
// plays it), written aside, fsync'd, renamed into its stream's folder and the
// folder fsync'd, so after a crash a fragment file is whole or absent. Names
// carry what the store needs back:
//   ROOT/<stream folder>/<server ms>-<number>-<producer ms>-<frames>-<timecode ms>.mkv
// (a file that reads back fewer frames than its name says is torn, and goes)
// Stream folders are the stream's name, or "h-<sha256 of it>" for names a
// folder cannot have ("." and "..", over 200 bytes); each holds "name" too.
class FragmentArchive {
 public:
  static Result<std::unique_ptr<FragmentArchive>> Open(std::filesystem::path root);

  // Writes |fragment| of |stream| durably. Unavailable ("ArchivalError") when
  // the disk refuses (full, read-only): nothing partial is left behind.
  Status Persist(const std::string& stream, const FragmentView& fragment);
  // Every fragment on disk, by stream; temp files of interrupted writes and
  // files that do not demux are removed.
  RecoveryReport Recover();
  // Deletes fragments older than their stream's retention (its own, else
  // |default_retention_ms|) at |now_ms|, then the oldest of a stream past
  // |max_bytes_per_stream|, then the oldest of all past |max_total_bytes|.
  // Returns how many were deleted.
  size_t Trim(int64_t now_ms, int64_t default_retention_ms, uint64_t max_bytes_per_stream,
              uint64_t max_total_bytes = UINT64_MAX);
  // Remembers |stream|'s own retention, for Recover and Trim.
  Status SetRetention(const std::string& stream, int64_t retention_ms);
  // Deletes all of |stream|'s fragments.
  void Forget(const std::string& stream);

 private:
  explicit FragmentArchive(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path FolderOf(const std::string& stream) const;

  const std::filesystem::path root_;
  std::mutex trim_mu_;
};

}  // namespace lastframe::store
