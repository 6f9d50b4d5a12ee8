#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "core/status.h"
#include "store/fragment.h"
#include "store/fragment_archive.h"
#include "store/shared_archive.h"
#include "store/stream_source.h"

namespace lastframe::store {

struct StoreOptions {
  int64_t retention_ms = 60'000;                   // fragments older than this are dropped
  size_t max_bytes_per_stream = 64 * 1024 * 1024;  // oldest fragments go first past this
  int64_t live_window_ms = 10'000;  // a stream is "live" if a frame came this recently
  // Without an archive (--no-persist) fragments have nowhere to live but
  // memory: those older than this are dropped too (0: only retention_ms
  // bounds them). Ignored once an archive is set.
  int64_t memory_retention_ms = 0;
  // How many streams may exist (null: no bound). Creating one past it is
  // refused with Overloaded ("TooManyStreams").
  Limit* stream_limit = nullptr;
};

// What GET /v1/streams shows of one stream.
struct StreamInfo {
  std::string name;
  std::string state;  // "live", "stale", "idle" (nothing retained) or "error"
  bool producer_connected = false;
  std::string codec;
  int width = 0;
  int height = 0;
  double fps = 0;
  int64_t bitrate_bps = 0;
  std::optional<int64_t> last_fragment_ms;        // server arrival of the newest fragment
  std::optional<int64_t> last_frame_ms;           // server arrival of the newest frame
  std::optional<int64_t> last_frame_producer_ms;  // the newest frame's producer timestamp
  uint64_t last_fragment_number = 0;              // the newest fragment's (0: none)
  size_t fragment_count = 0;
  size_t bytes = 0;
  std::string last_error;
  int64_t retention_ms = 0;  // the stream's own, or the store's
};

class StreamStore;

// One stream's fragments. The writer side (one producer at a time) appends;
// any number of readers copy views. All methods are thread-safe.
//
// Memory holds the frames snapshots need: those of the fragment arriving, and
// of the newest complete one while the arriving one has no frame yet (or none
// is arriving). A complete fragment's frames leave memory once its file is
// durable (MarkPersisted, and restored ones at once); its index (number,
// times, timecode, duration, bytes, frame count, codec) stays. Every reader
// below still gets frames: they are read back from the archive outside the
// stream's lock, and a fragment whose file is gone meanwhile counts as no
// longer retained. Fragments not persisted (no archive, or a disk that
// refused them) keep their frames in memory.
class Stream {
 public:
  Stream(std::string name, StreamStore* store);
  ~Stream();
  const std::string& name() const { return name_; }

  // Claims the stream for one producer. Returns false if another producer
  // holds it, or it was deleted (closed): a producer that opened it just
  // before cannot write into a stream no longer in the store.
  bool AcquireWriter();
  // Closes the stream unless a producer holds it (then returns false), in
  // one step, so that no producer claims it in between.
  bool CloseUnlessWritten();
  // Someone answers for the stream (created by POST /v1/streams or CreateStream,
  // pulled, or restored with fragments): it is kept while it has no frame.
  void SetOwned();
  // Never framed, unowned, no producer, and older than its retention: a
  // producer that sent nothing usable left it behind.
  bool Abandoned(int64_t now_ms) const;
  void Touch(int64_t now_ms);
  // Releases the claim; |error| (empty for a clean end) is shown in the stream's state.
  void ReleaseWriter(const std::string& error);

  // Starts a new fragment with |first| (a keyframe) and returns its number.
  // Completes the previous fragment if still open.
  uint64_t BeginFragment(media::SharedCodecParameters codec, int64_t producer_ts_ms,
                         int64_t timecode_ms, Frame first, int64_t arrival_ms);
  // Appends a frame to the open fragment. Returns false if none is open.
  bool Append(Frame frame, int64_t arrival_ms);
  // Marks the open fragment complete and returns its final view (nullopt if none open).
  std::optional<FragmentView> CompleteFragment();
  // Forgets the open fragment (its input was cut short). Returns false if none was open.
  bool DropOpenFragment();
  // Fragments older than this are dropped: the stream's own setting, else the store's.
  int64_t retention_ms() const;
  void SetRetention(std::optional<int64_t> retention_ms);
  // Puts back fragments read from the archive at start (oldest first, complete).
  // Their frames leave memory as the rule above says once the store has an
  // archive to read them back from (now, or at EvictPersisted).
  void Restore(std::vector<FragmentView> fragments);
  // Lets go of the frames of every fragment on disk that snapshots do not need
  // (StreamStore::SetArchive, for fragments restored before it).
  void EvictPersisted();
  // Size in bytes of the open fragment (0 if none).
  size_t OpenFragmentBytes() const;
  // Fragment |number| is durable in the archive (StreamStore::PersistAsync):
  // its frames leave memory unless snapshots need them (see above).
  void MarkPersisted(uint64_t number);

  // The newest fragment with its frames (read back if only its file has them,
  // nullopt if that fails); nullopt when none is retained.
  std::optional<FragmentView> Latest() const;
  // Every retained fragment, oldest first, with its frames.
  std::vector<FragmentView> Fragments() const;
  // The retained fragments numbered |first| or later, oldest first.
  std::vector<FragmentView> FragmentsFrom(uint64_t first) const;
  // The fragments |query| wants, oldest first (see StreamSource::Fragments).
  std::vector<FragmentView> Select(const FragmentQuery& query) const;
  // The fragments numbered |numbers|, in that order. NotFound
  // ("FragmentNotFound") naming the first one not retained (or whose file is
  // gone); the error of a file that does not read back.
  Result<std::vector<FragmentView>> FragmentsByNumber(const std::vector<uint64_t>& numbers) const;
  // Bytes of frames held in memory, and how many fragments hold theirs there.
  size_t MemoryBytes() const;
  size_t FragmentsInMemory() const;

  // A count that grows with every frame stored or fragment completed: readers
  // that follow the stream live (GetMedia) wait for it to pass what they saw.
  uint64_t version() const;
  // Waits until version() != |seen|, the stream is closed, or |timeout|
  // passes; returns version().
  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const;
  // Wakes and ends every reader following the stream (it was deleted).
  void Close();
  bool closed() const;
  StreamInfo Info(int64_t now_ms, int64_t live_window_ms) const;
  // Drops fragments older than |cutoff_ms| and, oldest first, those over |max_bytes|.
  // The open fragment is never dropped.
  void Trim(int64_t cutoff_ms, size_t max_bytes);

 private:
  void InsertFragment(uint64_t number, media::SharedCodecParameters codec, int64_t producer_ts_ms,
                      int64_t timecode_ms, Frame first, int64_t arrival_ms);
  bool InsertFrame(Frame frame, int64_t arrival_ms);

  struct StoredFragment {
    FragmentView view;  // frames empty while evicted (!in_memory)
    int64_t last_arrival_ms = 0;
    size_t frame_count = 0;     // view.frames.size() while in memory
    int64_t first_pts_ms = 0;   // the first frame's
    int64_t newest_pts_ms = 0;  // the highest presentation time
    bool persisted = false;     // its file is durable: its frames may go
    bool in_memory = true;
  };
  // A fragment as a reader took it under the lock: the view, and what reading
  // its frames back needs when they are only in its file.
  struct Taken {
    FragmentView view;
    size_t frame_count = 0;
    bool evicted = false;
  };
  Taken TakeLocked(const StoredFragment& f) const LF_REQUIRES(mu_);
  // |taken|'s frames read back from the archive; called without mu_.
  Result<FragmentView> Load(Taken taken) const;
  // The views of |taken|, evicted ones read back; those that cannot be are left out.
  std::vector<FragmentView> LoadAll(std::vector<Taken> taken) const;
  // Whether snapshots need fragments_[i]'s frames in memory.
  bool NeededLocked(size_t i) const LF_REQUIRES(mu_);
  // Lets fragments_[i]'s frames go if it is persisted and not needed.
  void MaybeEvictLocked(size_t i) LF_REQUIRES(mu_);
  void PopOldestLocked() LF_REQUIRES(mu_);
  // Adds |delta| to the bytes of frames in memory (and the process's gauge).
  void AccountLocked(int64_t delta) LF_REQUIRES(mu_);
  // Without an archive, fragments that ended before this go (--memory-retention).
  int64_t MemoryCutoff(int64_t now_ms) const;
  const std::string name_;
  StreamStore* const store_;
  mutable Mutex mu_;
  // Oldest first; the back may be open.
  std::deque<StoredFragment> fragments_ LF_GUARDED_BY(mu_);
  size_t bytes_ LF_GUARDED_BY(mu_) = 0;         // of every retained fragment
  size_t memory_bytes_ LF_GUARDED_BY(mu_) = 0;  // of the frames held in memory
  bool writer_ LF_GUARDED_BY(mu_) = false;
  std::string last_error_ LF_GUARDED_BY(mu_);
  bool owned_ LF_GUARDED_BY(mu_) = false;
  bool framed_ LF_GUARDED_BY(mu_) = false;     // ever held a frame
  int64_t touched_ms_ LF_GUARDED_BY(mu_) = 0;  // made, or last opened for writing
  std::optional<int64_t> retention_ms_ LF_GUARDED_BY(mu_);
  uint64_t version_ LF_GUARDED_BY(mu_) = 0;
  bool closed_ LF_GUARDED_BY(mu_) = false;
  mutable std::condition_variable changed_;
};

// The embedded stream store: every stream's recent fragments, bounded by
// retention and bytes; in memory only what snapshots need when an archive
// holds the rest (see Stream), else everything, bounded by memory_retention_ms.
class StreamStore final : public StreamSource {
 public:
  StreamStore(const Clock& clock, StoreOptions options);

  // The stream named |name|, created on first use; Overloaded
  // ("TooManyStreams") when that would pass the stream limit.
  Result<std::shared_ptr<Stream>> Open(const std::string& name);
  std::shared_ptr<Stream> Find(std::string_view name) const;
  // Opens |name| and claims it for one producer. Conflict ("StreamBusy") while
  // another holds it; a stream deleted between the two steps is opened anew.
  Result<std::shared_ptr<Stream>> OpenForWriting(const std::string& name);
  // Creates a stream ahead of its producer, with its own retention if given
  // (kept with its fragments when an archive is set). Conflict ("StreamExists").
  Result<std::shared_ptr<Stream>> Create(const std::string& name,
                                         std::optional<int64_t> retention_ms);
  // Gives an existing stream its own retention (kept as Create keeps it).
  Status SetRetention(const std::string& name, int64_t retention_ms);
  // Where completed fragments are made durable; null keeps them in memory only.
  // Fragments restored before it was set leave memory then (see Stream).
  void SetArchive(FragmentArchive* archive);
  // Where fragments whose frames left memory are read back from (null: none).
  const FragmentArchive* archive() const { return archive_; }
  // Where completed fragments go too once durable in the archive (--archive),
  // for every node to read; null: nowhere. Set once, after SetArchive (it
  // needs one: the local file's bytes are what it stores), before producers start.
  void SetSharedArchive(SharedArchive* shared) { shared_ = shared; }
  // Makes |fragment| of |stream| durable (a no-op without an archive), and
  // with a shared archive stores it there too (muxed once more: PersistAsync
  // is the path that reuses the file's bytes).
  Status Persist(const std::string& stream, const FragmentView& fragment);
  // The same without blocking its caller: |done| runs once the fragment is
  // durable (or refused), on a thread of the archive's (at once, on the
  // caller's thread, without an archive); with a shared archive, once it is
  // stored there too, on a thread of its object store's (refused:
  // Unavailable "ArchivalError", the local file kept). For one stream,
  // |done|s run in the order the calls were made. Once the local file is
  // durable the stream is told (Stream::MarkPersisted), so it may let the
  // fragment's frames go from memory.
  void PersistAsync(const std::string& stream, FragmentView fragment,
                    std::function<void(Status)> done);
  // Rebuilds the streams the archive holds; call before any producer starts.
  void Restore(std::vector<RecoveredStream> streams);
  // Forgets a stream and its fragments. NotFound ("StreamNotFound"), or
  // Conflict ("StreamBusy") while a producer writes to it.
  Status Remove(std::string_view name);

  Result<FragmentView> LatestFragment(std::string_view stream) const override;
  Result<std::vector<FragmentView>> Fragments(std::string_view stream,
                                              const FragmentQuery& query) const override;
  Result<std::vector<FragmentView>> FragmentsByNumber(
      std::string_view stream, const std::vector<uint64_t>& numbers) const override;
  std::vector<StreamInfo> List() const;
  // Applies retention to every stream (also done on each fragment start), and
  // forgets abandoned streams (see Stream::Abandoned).
  void ApplyRetention();

  // Called (on the producer's thread, without locks held) after each frame is
  // stored. Set once, before any producer starts; must not block.
  void SetFrameObserver(std::function<void(const std::string& stream)> observer) {
    observer_ = std::move(observer);
  }
  void NotifyFrame(const std::string& stream) const {
    if (observer_) observer_(stream);
  }

  const Clock& clock() const { return clock_; }
  const StoreOptions& options() const { return options_; }
  uint64_t NextFragmentNumber();

 private:
  const Clock& clock_;
  const StoreOptions options_;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Stream>, std::less<>> streams_ LF_GUARDED_BY(mu_);
  std::function<void(const std::string&)> observer_;
  FragmentArchive* archive_ = nullptr;
  SharedArchive* shared_ = nullptr;
  // Adds a stream (taking a place under the limit unless |bounded| is false).
  Result<std::shared_ptr<Stream>> AddLocked(const std::string& name, bool bounded) LF_REQUIRES(mu_);
  Mutex number_mu_;
  uint64_t next_number_ LF_GUARDED_BY(number_mu_);
};

}  // namespace lastframe::store
