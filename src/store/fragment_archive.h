#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"
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
  // Finishes the deletions Forget asked for (each tried once more), then stops
  // the archive's thread.
  ~FragmentArchive();

  // Writes |fragment| of |stream| durably. Unavailable ("ArchivalError") when
  // the disk refuses (full, read-only): nothing partial is left behind.
  // NotFound ("StreamDeleted") when |stream| was forgotten while this was
  // under way: the fragment is dropped, never stored after the Forget.
  Status Persist(const std::string& stream, const FragmentView& fragment);
  // Every fragment on disk, by stream; temp files of interrupted writes,
  // folders of forgotten streams a crash left behind, and files that do not
  // demux are removed. Call at start, before any Persist.
  RecoveryReport Recover();
  // Reads fragment |index.number| of |stream| back from its file, which is
  // named after |index|'s fields as Persist named it (its frame count is
  // |index.frames.size()|: the frames need not be there, only as many
  // entries). Its frames on the fragment's own timeline, decode times rebuilt
  // (Matroska keeps presentation times only); the rest is read from the file
  // too. NotFound ("FragmentNotFound") when the file is not there (trimmed,
  // its stream forgotten); MediaError when it does not read back whole.
  // Safe from any thread, with Persist and Trim under way; takes no lock.
  Result<FragmentView> Read(const std::string& stream, const FragmentView& index) const;
  // Deletes fragments older than their stream's retention (its own, else
  // |default_retention_ms|) at |now_ms|, then the oldest of a stream past
  // |max_bytes_per_stream|, then the oldest of all past |max_total_bytes|.
  // Returns how many were deleted.
  size_t Trim(int64_t now_ms, int64_t default_retention_ms, uint64_t max_bytes_per_stream,
              uint64_t max_total_bytes = UINT64_MAX);
  // Remembers |stream|'s own retention, for Recover and Trim. Like Persist,
  // StreamDeleted if |stream| is forgotten meanwhile.
  Status SetRetention(const std::string& stream, int64_t retention_ms);
  // Deletes |stream|'s fragments and folder. Cheap enough for an I/O thread:
  // the folder is renamed aside at once (a Persist after this returns starts
  // a new one, a new stream's), and removed on the archive's own thread, one
  // deletion at a time with Trim, retried a few times if the disk refuses.
  // Should the folder not move, it is removed where it is, and until that is
  // done Persist and SetRetention of |stream| are refused (StreamDeleted).
  // A Persist or SetRetention of |stream| under way meanwhile leaves nothing.
  void Forget(const std::string& stream);
  // Returns once every deletion Forget asked for is done or given up.
  void WaitForDeletions();

  // Test seam: called by Persist and SetRetention once they are under way
  // (a Forget from then on drops them), before they write anything.
  void SetWriteStartedHookForTest(std::function<void(const std::string& stream)> hook) {
    write_started_hook_ = std::move(hook);
  }

 private:
  explicit FragmentArchive(std::filesystem::path root);
  std::filesystem::path FolderOf(const std::string& stream) const;

  // A write of |stream| under way: Forgets of |stream| since Begin drop it.
  class Write;
  // Whether |write| was forgotten since it began, or its folder is still being removed.
  bool Dropped(const Write& write) const LF_REQUIRES(mu_);
  // Writes |bytes| aside, then moves them to |file| in |stream|'s folder,
  // making the folder and its name file if needed, unless |write| was dropped.
  Status StoreFile(const Write& write, const std::string& stream, const std::string& file,
                   const std::string& bytes);
  // Removes |path| (a folder) and all in it; false if anything is left.
  bool RemoveFolder(const std::filesystem::path& path) const;
  void DeleteLoop();

  const std::filesystem::path root_;
  Mutex trim_mu_;  // Trim, and the deletions Forget queues: one at a time
  std::function<void(const std::string&)> write_started_hook_;

  mutable Mutex mu_;  // held only for renames, never for I/O of data
  struct Writes {
    size_t count = 0;      // writes of the stream under way
    uint64_t forgets = 0;  // Forgets of the stream while any was
  };
  std::map<std::string, Writes> writes_ LF_GUARDED_BY(mu_);
  // Streams whose folder is being removed in place.
  std::map<std::string, int> doomed_ LF_GUARDED_BY(mu_);
  struct Deletion {
    std::filesystem::path path;
    std::string stream;  // set when |path| is the stream's own folder (in place)
  };
  std::deque<Deletion> deletions_ LF_GUARDED_BY(mu_);
  bool deleting_ LF_GUARDED_BY(mu_) = false;  // the thread is on one
  bool stopping_ LF_GUARDED_BY(mu_) = false;
  std::condition_variable deletions_cv_;  // more work, or stopping
  std::condition_variable idle_cv_;       // nothing queued or under way
  uint64_t trash_sequence_ LF_GUARDED_BY(mu_) = 0;
  std::thread deleter_;
};

}  // namespace lastframe::store
