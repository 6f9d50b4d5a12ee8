#pragma once

#include <chrono>
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

struct ArchiveOptions {
  // Threads that write (1 or 2), each one commit round at a time; with two, one
  // writes a round's files while the other makes the previous round durable.
  int writer_threads = 2;
  // Fragment bytes (FragmentView::bytes) queued for the writers at most. Past
  // it PersistAsync refuses the fragment (ArchivalError: the disk is behind)
  // rather than block its caller; Persist waits for room. A fragment alone in
  // the queue is taken whatever its size.
  uint64_t max_queued_bytes = 128ull << 20;
  // Writes one commit round takes from the queue at most.
  size_t max_round_writes = 256;
  // A round begins once its oldest write has waited this long (or the round is
  // full), so that writes arriving meanwhile share its two syncs: at 500
  // producers rounds had taken 1.25 fragments each, 400 syncfs a second. A
  // PERSISTED comes this much later at most. Zero: a round takes what is queued.
  std::chrono::milliseconds commit_delay{20};
  // kAuto: one syncfs(2) of the archive's file system per round for the files,
  // one for the renames, falling back to fsync of each when syncfs fails (and
  // always, on kernels before 5.8, whose syncfs does not report write errors).
  // kPerFile: that fallback only (a test seam).
  enum class Sync { kAuto, kPerFile } sync = Sync::kAuto;
};

// Durable fragments: each completed fragment is one Matroska file (ffmpeg
// plays it), written aside, synced, renamed into its stream's folder and the
// folder synced, so after a crash a fragment file is whole or absent. Names
// carry what the store needs back:
//   ROOT/<stream folder>/<server ms>-<number>-<producer ms>-<frames>-<timecode ms>.mkv
// (a file that reads back fewer frames than its name says is torn, and goes)
// Stream folders are the stream's name, or "h-<sha256 of it>" for names a
// folder cannot have ("." and "..", over 200 bytes); each holds "name" too.
//
// Writes are queued for a small pool of writer threads (ArchiveOptions) that
// commit them in groups: a round takes every queued write (up to a bound),
// writes each aside, makes them all durable with one syncfs, renames them into
// place, makes the renames durable with another, then runs their |done|s. Two
// syncs per round, however many fragments, where fsyncs cost two per fragment.
// Rounds commit in the order they took their writes, so |done|s run in the
// order their writes were queued.
class FragmentArchive {
 public:
  static Result<std::unique_ptr<FragmentArchive>> Open(std::filesystem::path root,
                                                       ArchiveOptions options = {});
  // Finishes every write queued (their |done|s run; one queued meanwhile is
  // refused, Unavailable), then the deletions Forget asked for (each tried once
  // more), then stops the archive's threads.
  ~FragmentArchive();

  // Writes |fragment| of |stream| durably, then calls |done| on a writer
  // thread: Ok once the fragment's file is durably in place. Unavailable
  // ("ArchivalError") when the disk refuses (full, read-only) or the queue is
  // past ArchiveOptions::max_queued_bytes: nothing partial is left behind.
  // NotFound ("StreamDeleted") when |stream| was forgotten after this call
  // began: the fragment is dropped, never stored after the Forget. Never
  // blocks on the disk. |done|s run one at a time, in the order of the calls
  // (of PersistAsync, Persist and SetRetention); a |done| must not wait on the
  // archive (Persist, SetRetention), whose writers wait for it.
  void PersistAsync(const std::string& stream, FragmentView fragment,
                    std::function<void(Status)> done);
  // PersistAsync, |done| handed the fragment file's bytes too (one Matroska
  // document, as written; null unless Ok), so that a copy elsewhere (the
  // shared archive) needs no second mux.
  using BytesCallback = std::function<void(Status, std::shared_ptr<const std::string>)>;
  void PersistAsyncKeepingBytes(const std::string& stream, FragmentView fragment,
                                BytesCallback done);
  // PersistAsync, waiting for room in the queue and then for its outcome.
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
  // Remembers |stream|'s own retention, for Recover and Trim. Like Persist
  // (queued with the fragments, in order), StreamDeleted if |stream| is
  // forgotten meanwhile.
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

  // Test seam: called by Persist, PersistAsync and SetRetention on the
  // caller's thread once they are under way (a Forget from then on drops
  // them), before they are queued.
  void SetWriteStartedHookForTest(std::function<void(const std::string& stream)> hook) {
    write_started_hook_ = std::move(hook);
  }
  // Test seam: while paused, writers start no round (writes queue up); a round
  // under way finishes. The destructor ends a pause.
  void PauseWritersForTest(bool paused);
  // Test seam: whether a round syncs with syncfs (else fsync of each file).
  bool UsesSyncfsForTest() const { return use_syncfs_; }

 private:
  FragmentArchive(std::filesystem::path root, ArchiveOptions options);
  std::filesystem::path FolderOf(const std::string& stream) const;

  // A write of |stream| under way: Forgets of |stream| since Begin drop it.
  class Write;
  // One queued write: a fragment (muxed by the writer) or a small file.
  struct Job;
  // Queues |job| (refused at once, in order, when the queue is full unless
  // |wait_for_room|, or when the writers are stopping).
  void Enqueue(std::unique_ptr<Job> job, bool wait_for_room);
  // Persist and SetRetention: |job| queued, and its outcome awaited.
  Status EnqueueAndWait(std::unique_ptr<Job> job);
  void WriterLoop();
  // Writes, syncs and publishes |round|, the |ticket|th taken, then runs its
  // |done|s once every earlier round's have run.
  // |sync_fd|: the writer's own descriptor of the root, for syncfs (-1: none).
  void CommitRound(std::vector<std::unique_ptr<Job>>& round, uint64_t ticket, int sync_fd);
  // Writes |job| aside (unsynced): its temp file, and its folder's name file
  // if the folder has none yet.
  void WriteAside(Job& job);
  // Renames |job|'s files into its stream's folder, unless it was dropped.
  void Publish(Job& job);
  // fsync(2) of every written file of |round| (when syncfs cannot be used).
  void SyncEachFile(std::vector<std::unique_ptr<Job>>& round);
  // Whether |write| was forgotten since it began, or its folder is still being removed.
  bool Dropped(const Write& write) const LF_REQUIRES(mu_);
  // Removes |path| (a folder) and all in it; false if anything is left.
  bool RemoveFolder(const std::filesystem::path& path) const;
  void DeleteLoop();
  // A fragment file Trim lets go, moved to ROOT/.free but not yet given to the writers.
  struct Recycled {
    std::filesystem::path free;  // its name in .free
    std::filesystem::path from;  // the folder it left
    uint64_t size;
  };
  // Moves |file| (|size| bytes) to ROOT/.free into |recycled|, or removes it when enough
  // wait there (at most |max_free_bytes| in all). False if it could do neither.
  bool Recycle(const std::filesystem::path& file, uint64_t size, uint64_t max_free_bytes,
               std::vector<Recycled>& recycled);
  // Makes the moves of |recycled| durable (the folders they left no longer name them), then
  // gives the files to the writers: a file may be written over only once no crash can bring
  // back its old name on its new bytes. If that sync fails they are removed instead.
  void GiveToWriters(std::vector<Recycled> recycled);
  // Writes |bytes| to |path| (a name in .tmp) over a recycled file, or to a new one.
  Status WriteOverFreeFile(const std::filesystem::path& path, const std::string& bytes, bool sync);

  const std::filesystem::path root_;
  const ArchiveOptions options_;
  const bool use_syncfs_;  // kAuto, on a kernel whose syncfs reports errors
  Mutex trim_mu_;          // Trim, and the deletions Forget queues: one at a time
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

  // Recycled fragment files. A new file costs the file system an inode and blocks found
  // and, once retention removes it, freed (on ext4 without a journal, every inode freed in
  // the last minutes is passed over); a file written over costs neither. At 500 producers
  // creating files had taken a fifth of the writers' time. Readers see no file change
  // under them: a file leaves its name before it is written over (Read checks the name).
  Mutex free_mu_;
  struct FreeFile {
    std::filesystem::path path;
    uint64_t size;
  };
  std::vector<FreeFile> free_files_ LF_GUARDED_BY(free_mu_);
  uint64_t free_bytes_ LF_GUARDED_BY(free_mu_) = 0;
  uint64_t free_sequence_ LF_GUARDED_BY(free_mu_) = 0;

  Mutex queue_mu_;  // the writers' queue; never held with mu_, nor for I/O
  std::deque<std::unique_ptr<Job>> queue_ LF_GUARDED_BY(queue_mu_);
  uint64_t queued_bytes_ LF_GUARDED_BY(queue_mu_) = 0;
  bool writers_stopping_ LF_GUARDED_BY(queue_mu_) = false;
  bool paused_ LF_GUARDED_BY(queue_mu_) = false;
  int writers_running_ LF_GUARDED_BY(queue_mu_) = 0;
  uint64_t rounds_taken_ LF_GUARDED_BY(queue_mu_) = 0;      // tickets handed out
  uint64_t rounds_committed_ LF_GUARDED_BY(queue_mu_) = 0;  // their dones all run
  std::condition_variable queue_cv_;  // a write queued, a pause ended, or stopping
  std::condition_variable room_cv_;   // the queue shrank, or stopping
  std::condition_variable turn_cv_;   // a round committed
  std::vector<std::thread> writers_;
};

}  // namespace lastframe::store
