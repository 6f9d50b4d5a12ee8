#include "ingest/push_session.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "core/mutex.h"
#include "ingest/fragmenter.h"
#include "ingest/mkv_parser.h"
#include "ingest/parse_pool.h"

namespace lastframe::ingest {

namespace {

// Bytes one strand task parses before it yields its pool thread to other
// sessions (it posts itself again when more is queued).
constexpr size_t kSliceBytes = 256 * 1024;

// Each child is looked up here once, so that counting a chunk, an ack or an
// error is one relaxed atomic operation.
struct Metrics {
  metrics::Counter& bytes;
  metrics::Counter& fragments;
  metrics::Counter& producers_started;
  metrics::Counter& producers_ended;
  // RECEIVED or PERSISTED: how many were sent, and how long after the fragment's end.
  struct FragmentAck {
    metrics::Counter& sent;
    metrics::Histogram& delay;
    void Sent(std::chrono::steady_clock::time_point fragment_end) const {
      sent.Add();
      delay.Observe(metrics::SecondsSince(fragment_end));
    }
  };
  FragmentAck received;
  FragmentAck persisted;
  metrics::Counter& error_acks;
  metrics::Family<metrics::Counter>& errors;
  std::map<AckError, metrics::Counter*> error_ids;  // every AckError, by its ErrorId

  static const Metrics& Get() {
    static const Metrics* m = [] {
      auto& r = metrics::Registry::Global();
      auto& acks = r.Counters("lastframe_ingest_acks_total",
                              "Acknowledgements sent to producers, by EventType.", {"type"});
      auto& delay = r.Histograms(
          "lastframe_ingest_ack_delay_seconds",
          "From the arrival of a fragment's last frame to its acknowledgement being sent.",
          {"type"}, metrics::LatencyBuckets());
      auto& errors = r.Counters("lastframe_ingest_errors_total",
                                "Ingest errors, by Kinesis Video ErrorId.", {"error"});
      auto* out = new Metrics{
          .bytes = r.AddCounter("lastframe_ingest_bytes_total",
                                "Bytes received from producers (PutMedia bodies)."),
          .fragments = r.AddCounter("lastframe_ingest_fragments_total",
                                    "Fragments completed from pushed streams."),
          .producers_started = r.AddCounter("lastframe_ingest_producers_started_total",
                                            "Producers that started pushing."),
          .producers_ended = r.AddCounter("lastframe_ingest_producers_ended_total",
                                          "Producers whose push ended, cleanly or not."),
          .received = {acks.With({"RECEIVED"}), delay.With({"RECEIVED"})},
          .persisted = {acks.With({"PERSISTED"}), delay.With({"PERSISTED"})},
          .error_acks = acks.With({"ERROR"}),
          .errors = errors,
          .error_ids = {}};
      for (AckError id : kAckErrors)
        out->error_ids[id] = &errors.With({std::to_string(static_cast<int>(id))});
      return out;  // never destroyed, as the registry's families are not
    }();
    return *m;
  }

  metrics::Counter& Error(AckError id) const {
    auto it = error_ids.find(id);
    // An id missing from the list above is still counted, through the lock.
    return it != error_ids.end() ? *it->second
                                 : errors.With({std::to_string(static_cast<int>(id))});
  }
};

AckError AckErrorOf(const Status& s) {
  switch (s.reason()) {
    case Reason::kMaxFragmentSizeReached:
      return AckError::kMaxFragmentSizeReached;
    case Reason::kMoreThanAllowedTracksFound:
      return AckError::kMoreThanAllowedTracksFound;
    default:
      return AckError::kInvalidMkvData;
  }
}

}  // namespace

// Everything a session is, shared by the handle (PushSession), the strand's
// pool tasks and the store's persist callbacks: whichever lets go last frees it.
class PushSession::Core : public std::enable_shared_from_this<PushSession::Core> {
 public:
  Core(store::StreamStore& store, std::shared_ptr<store::Stream> stream, PushOptions options,
       PushCallbacks callbacks)
      : store_(store),
        stream_(std::move(stream)),
        options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        pool_(options_.pool ? *options_.pool : ParsePool::Shared()),
        start_ms_(store.clock().NowMs()),
        metrics_(options_.from_producer ? &Metrics::Get() : nullptr),
        last_frame_ns_(std::chrono::steady_clock::now().time_since_epoch().count()),
        parser_(options_.max_fragment_bytes,
                {.on_video_track = [this](const MkvVideoTrack& t) { OnVideoTrack(t); },
                 .on_packet = [this](AVPacket* pkt) { OnPacket(pkt); }}) {
    if (metrics_) metrics_->producers_started.Add();
  }

  bool Feed(const uint8_t* data, size_t size) {
    if (metrics_) metrics_->bytes.Add(size);
    // A callback run here may destroy the handle, and with it the last other reference.
    const auto self = options_.parse_on_caller ? shared_from_this() : nullptr;
    bool run_here = false;
    {
      MutexLock lock(mu_);
      if (finished_ || aborted_ || ended_) return true;  // nothing more is read
      if (size > 0) {
        queue_.emplace_back(reinterpret_cast<const char*>(data), size);
        queued_ += size;
        run_here = Schedule();
      }
      if (!run_here) return !PauseWriterIfFull();
    }
    RunTask();
    MutexLock lock(mu_);
    return !PauseWriterIfFull();  // still full only where another thread holds the strand
  }

  bool WaitForSpace() {
    MutexLock lock(mu_);
    lock.Wait(space_, [this]() LF_REQUIRES(mu_) {
      return aborted_ || ended_ || queued_ < options_.pipe_high_water;
    });
    return !aborted_ && !ended_;
  }

  void Finish() {
    {
      MutexLock lock(mu_);
      finished_ = true;
      if (!Schedule()) return;
    }
    RunTask();
  }

  void Abort(bool stalled) {
    const auto self = options_.parse_on_caller ? shared_from_this() : nullptr;  // as in Feed
    {
      MutexLock lock(mu_);
      if (ended_ || aborted_) return;
      aborted_ = true;
      stalled_ = stalled;
      space_.notify_all();
      if (!Schedule()) return;
    }
    RunTask();
  }

  // The handle is going: no callback from now on (but the one running on this
  // thread, if called from it), and the stream released before returning.
  void Detach() {
    MutexLock lock(mu_);
    aborted_ = true;
    detached_ = true;
    space_.notify_all();
    if (running_ && runner_ == std::this_thread::get_id()) return;  // the strand ends it
    lock.Wait(idle_, [this]() LF_REQUIRES(mu_) { return !running_; });
    if (ended_) return;
    // Ended here, on this thread: a pool thread may be busy, and must not be waited for.
    running_ = true;
    runner_ = std::this_thread::get_id();
    lock.Unlock();
    End(Interrupted());
    lock.Lock();
    running_ = false;
    runner_ = std::thread::id();
    idle_.notify_all();
  }

  uint64_t fragments() const { return fragments_.load(); }
  std::chrono::steady_clock::time_point last_frame() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_frame_ns_.load(std::memory_order_relaxed)));
  }

 private:
  struct Persisted {
    Status status;
    int64_t timecode_ms;
    uint64_t number;
    std::chrono::steady_clock::time_point fragment_end;
  };

  // Posts the strand's task unless one is queued or running (it looks again
  // for work before it stops). With parse_on_caller nothing is posted: true
  // says the caller runs the task (RunTask, once mu_ is unlocked).
  [[nodiscard]] bool Schedule() LF_REQUIRES(mu_) {
    if (scheduled_ || running_) return false;
    scheduled_ = true;
    if (options_.parse_on_caller) return true;
    pool_.Post([self = shared_from_this()] { self->RunTask(); });
    return false;
  }

  // Past the high-water mark the writer is asked to wait (Feed returns false).
  bool PauseWriterIfFull() LF_REQUIRES(mu_) {
    if (queued_ < options_.pipe_high_water) return false;
    writer_paused_ = true;
    return true;
  }

  bool HasWork() const LF_REQUIRES(mu_) {
    if (!persisted_.empty()) return true;
    if (ended_) return !done_sent_ && pending_persists_ == 0;
    return aborted_ || finished_ || !queue_.empty();
  }

  // |acks_only|: the first turn only sends PERSISTED acks (and on_done): the thread is the
  // archive's writer, which must not parse a producer's bytes while other streams' rounds
  // wait for it. Bytes queued meanwhile (a Feed that found the strand held) are parsed by the
  // turn after it, here, as nobody else would.
  void RunTask(bool acks_only = false) {
    // Keeps |this| (and the callbacks' targets) alive when a turn on the caller's thread ends
    // the session and the handle lets go of it.
    auto self = shared_from_this();
    bool again = true;
    while (again) {
      {
        MutexLock lock(mu_);
        scheduled_ = false;
        if (running_) return;  // Detach is ending the session on its thread
        running_ = true;
        runner_ = std::this_thread::get_id();
      }
      if (acks_only) {
        SendPersistedAcks();
        MaybeDone();
        acks_only = false;
      } else {
        RunSlice();
      }
      MutexLock lock(mu_);
      running_ = false;
      runner_ = std::thread::id();
      idle_.notify_all();
      again = HasWork() && Schedule();
    }
  }

  // One turn of the strand: acks for persisted fragments, up to kSliceBytes
  // of input parsed, the end of the session, on_done.
  void RunSlice() {
    std::deque<std::string> chunks;
    bool abort = false, finish = false;
    {
      MutexLock lock(mu_);
      if (!ended_) {
        abort = aborted_;
        size_t taken = 0;
        while (!abort && !queue_.empty() && taken < kSliceBytes) {
          taken += queue_.front().size();
          chunks.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        finish = !abort && finished_ && queue_.empty();
      }
    }
    SendPersistedAcks();
    for (std::string& chunk : chunks) {
      Status s = parser_.Feed(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
      Consumed(chunk.size());
      if (!s.ok()) {
        End(ParseError(s));
        finish = abort = false;
        break;
      }
      if (Aborted()) {
        abort = true;
        break;
      }
    }
    if (abort) {
      End(Interrupted());
    } else if (finish) {
      End(Finished());
    }
    SendPersistedAcks();
    MaybeDone();
  }

  bool Aborted() {
    MutexLock lock(mu_);
    return aborted_;
  }
  bool Detached() {
    MutexLock lock(mu_);
    return detached_;
  }

  // |n| queued bytes were parsed: a paused writer may go on below half the mark.
  void Consumed(size_t n) {
    bool resume = false;
    {
      MutexLock lock(mu_);
      queued_ -= n;
      if (queued_ < options_.pipe_high_water) space_.notify_all();
      if (writer_paused_ && queued_ <= options_.pipe_high_water / 2 && !detached_) {
        writer_paused_ = false;
        resume = true;
      }
    }
    if (resume && callbacks_.on_space) callbacks_.on_space();
  }

  void OnVideoTrack(const MkvVideoTrack& track) {
    fragmenter_.emplace(
        store_, stream_, track.codec, track.time_base,
        FragmenterOptions{.absolute_timecodes = options_.absolute_timecodes,
                          .producer_start_ms = options_.producer_start_ms.value_or(start_ms_),
                          .max_fragment_bytes = options_.max_fragment_bytes,
                          .max_fragment_duration_ms = options_.max_fragment_duration_ms},
        FragmenterEvents{.on_fragment = [this](const store::FragmentView& f) { AckFragment(f); },
                         .on_error =
                             [this](AckError id, const std::string& message, int64_t timecode,
                                    std::optional<uint64_t> number) {
                               SendErrorAck(id, message, timecode, number);
                             }});
  }

  void OnPacket(AVPacket* pkt) {
    if (!fragmenter_) return;
    const auto arrived = std::chrono::steady_clock::now();
    last_frame_ns_.store(arrived.time_since_epoch().count(), std::memory_order_relaxed);
    fragmenter_->Push(pkt);  // a fragment it completes ended with the packet before
    last_video_packet_ = arrived;
  }

  // The parse failed: what was whole before it is kept, unless it was refused.
  Status ParseError(const Status& s) {
    const int64_t timecode = fragmenter_ ? fragmenter_->open_timecode() : 0;
    const std::optional<uint64_t> number = fragmenter_ ? fragmenter_->open_number() : std::nullopt;
    if (s.reason() == Reason::kMaxFragmentSizeReached) {
      // An element over the fragment limit: the fragment it belonged to is not kept either.
      if (fragmenter_) fragmenter_->Discard();
      SendErrorAck(AckError::kMaxFragmentSizeReached, s.message(), timecode, number);
      return s;
    }
    if (fragmenter_) fragmenter_->Finish();
    SendErrorAck(AckErrorOf(s), s.message(), timecode, number);
    return s;
  }

  // The body ended.
  Status Finished() {
    Status s = parser_.Finish();
    if (s.ok()) {
      if (fragmenter_) fragmenter_->Finish();
      return s;
    }
    if (!parser_.truncated()) return ParseError(s);
    // The body ended inside an element: the fragment in progress is cut off, so it is
    // neither completed nor kept; the whole fragments before it were acknowledged.
    const int64_t timecode = fragmenter_ ? fragmenter_->open_timecode() : 0;
    const std::optional<uint64_t> number = fragmenter_ ? fragmenter_->open_number() : std::nullopt;
    if (fragmenter_) fragmenter_->Discard();
    SendErrorAck(
        AckError::kInvalidMkvData,
        s.message() + (number ? ": the fragment in progress is incomplete and dropped" : ""),
        timecode, number);
    return s;
  }

  // Aborted (connection lost, idle timeout, the handle gone): the frames that
  // arrived whole are kept.
  Status Interrupted() {
    if (!fragmenter_)
      return Status(Code::kUnavailable, "connection closed", Reason::kStreamReadError);
    const int64_t timecode = fragmenter_->open_timecode();
    const std::optional<uint64_t> number = fragmenter_->open_number();
    fragmenter_->Finish();
    bool stalled;
    {
      MutexLock lock(mu_);
      stalled = stalled_;
    }
    SendErrorAck(AckError::kStreamReadError,
                 stalled ? "the producer sent nothing for too long (idle timeout)"
                         : "the producer's connection ended",
                 timecode, number);
    return Status(Code::kUnavailable, "connection closed mid-stream", Reason::kStreamReadError);
  }

  // The parse is over: the stream goes back, the queue is dropped.
  void End(Status status) {
    stream_->ReleaseWriter(status.ok() ? "" : status.message());
    if (metrics_) metrics_->producers_ended.Add();
    MutexLock lock(mu_);
    ended_ = true;
    end_status_ = std::move(status);
    queue_.clear();
    queued_ = 0;
    space_.notify_all();
  }

  // on_done, once the parse ended and every fragment's persist was acknowledged.
  void MaybeDone() {
    Status status;
    {
      MutexLock lock(mu_);
      if (!ended_ || done_sent_ || pending_persists_ > 0 || !persisted_.empty()) return;
      done_sent_ = true;
      if (detached_) return;
      status = end_status_;
    }
    if (callbacks_.on_done) callbacks_.on_done(status);
  }

  void SendAck(const char* event, const store::FragmentView& f) {
    SendAck(event, f.timecode_ms, f.number);
  }
  void SendAck(const char* event, int64_t timecode_ms, uint64_t number) {
    callbacks_.on_ack(nlohmann::json{{"EventType", event},
                                     {"FragmentTimecode", timecode_ms},
                                     {"FragmentNumber", std::to_string(number)}}
                          .dump());
  }

  void AckFragment(const store::FragmentView& f) {
    fragments_.fetch_add(1);
    if (metrics_) metrics_->fragments.Add();
    const auto fragment_end = last_video_packet_;
    if (callbacks_.on_ack && !Detached()) {
      SendAck("RECEIVED", f);
      if (metrics_) metrics_->received.Sent(fragment_end);
    }
    {
      MutexLock lock(mu_);
      ++pending_persists_;
    }
    // PERSISTED only once the fragment is on disk and synced (or at once, in
    // memory only); |done| may run on a writer's thread, or here at once.
    auto done = [self = shared_from_this(), timecode = f.timecode_ms, number = f.number,
                 fragment_end](Status s) {
      self->OnPersisted({std::move(s), timecode, number, fragment_end});
    };
    if (options_.persist)
      options_.persist(options_.stream, f, std::move(done));
    else
      store_.PersistAsync(options_.stream, f, std::move(done));
    SendPersistedAcks();  // in order after RECEIVED when the store was quick
  }

  // Any thread (the store's): handed to the strand, which acks.
  void OnPersisted(Persisted p) {
    MutexLock lock(mu_);
    if (detached_) {
      --pending_persists_;
      return;
    }
    persisted_.push_back(std::move(p));
    if (!Schedule()) return;
    lock.Unlock();
    RunTask(/*acks_only=*/true);
  }

  void SendPersistedAcks() {
    std::vector<Persisted> done;  // a deque would allocate on every call
    bool detached;
    {
      MutexLock lock(mu_);
      done.swap(persisted_);
      detached = detached_;
    }
    for (Persisted& p : done) {
      if (!detached && callbacks_.on_ack) {
        if (p.status.ok()) {
          SendAck("PERSISTED", p.timecode_ms, p.number);
          if (metrics_) metrics_->persisted.Sent(p.fragment_end);
        } else {
          SendErrorAck(AckError::kArchivalError,
                       "the fragment could not be stored: " + p.status.message(), p.timecode_ms,
                       p.number);
        }
        detached = Detached();
      }
      MutexLock lock(mu_);
      --pending_persists_;
    }
  }

  void SendErrorAck(AckError id, const std::string& message, int64_t timecode,
                    std::optional<uint64_t> number) {
    spdlog::warn("putMedia stream={} error={} {}", options_.stream, AckErrorName(id), message);
    if (id == AckError::kMaxFragmentSizeReached && options_.fragment_limit)
      options_.fragment_limit->CountRefusal();
    if (metrics_) metrics_->Error(id).Add();
    if (!callbacks_.on_ack || Detached()) return;
    nlohmann::json ack = {{"EventType", "ERROR"},
                          {"FragmentTimecode", timecode},
                          {"ErrorId", static_cast<int>(id)},
                          {"ErrorCode", AckErrorName(id)},
                          {"Message", message}};
    if (number) ack["FragmentNumber"] = std::to_string(*number);
    callbacks_.on_ack(ack.dump());
    if (metrics_) metrics_->error_acks.Add();
  }

  store::StreamStore& store_;
  const std::shared_ptr<store::Stream> stream_;
  const PushOptions options_;
  const PushCallbacks callbacks_;
  ParsePool& pool_;
  const int64_t start_ms_;
  const Metrics* const metrics_;        // null when not from a producer
  std::atomic<int64_t> last_frame_ns_;  // steady_clock ticks
  std::atomic<uint64_t> fragments_{0};

  // The strand's own (one task at a time, ordered by mu_ across threads).
  MkvParser parser_;
  std::optional<Fragmenter> fragmenter_;  // once the video track is known
  // When the newest video packet given to the fragmenter arrived: while the
  // fragmenter completes a fragment, its last frame.
  std::chrono::steady_clock::time_point last_video_packet_;

  Mutex mu_;
  std::condition_variable space_;  // queued_ fell, or the session stopped
  std::condition_variable idle_;   // the strand stopped running
  std::deque<std::string> queue_ LF_GUARDED_BY(mu_);
  size_t queued_ LF_GUARDED_BY(mu_) = 0;  // fed and not yet parsed
  bool writer_paused_ LF_GUARDED_BY(mu_) = false;
  bool finished_ LF_GUARDED_BY(mu_) = false;
  bool aborted_ LF_GUARDED_BY(mu_) = false;
  bool stalled_ LF_GUARDED_BY(mu_) = false;
  bool detached_ LF_GUARDED_BY(mu_) = false;
  bool scheduled_ LF_GUARDED_BY(mu_) = false;  // a task posted, not yet begun
  bool running_ LF_GUARDED_BY(mu_) = false;    // the strand runs, on runner_
  std::thread::id runner_ LF_GUARDED_BY(mu_);
  bool ended_ LF_GUARDED_BY(mu_) = false;
  Status end_status_ LF_GUARDED_BY(mu_);
  int pending_persists_ LF_GUARDED_BY(mu_) = 0;  // PersistAsync calls not yet acked
  std::vector<Persisted> persisted_ LF_GUARDED_BY(mu_);
  bool done_sent_ LF_GUARDED_BY(mu_) = false;
};

Result<std::unique_ptr<PushSession>> PushSession::Start(store::StreamStore& store,
                                                        PushOptions options,
                                                        PushCallbacks callbacks) {
  auto opened = store.OpenForWriting(options.stream);
  if (!opened.ok()) return opened.status();
  auto core =
      std::make_shared<Core>(store, std::move(*opened), std::move(options), std::move(callbacks));
  return std::unique_ptr<PushSession>(new PushSession(std::move(core)));
}

PushSession::~PushSession() { core_->Detach(); }

bool PushSession::Feed(const uint8_t* data, size_t size) { return core_->Feed(data, size); }
bool PushSession::WaitForSpace() { return core_->WaitForSpace(); }
void PushSession::Finish() { core_->Finish(); }
void PushSession::Abort() { core_->Abort(false); }
void PushSession::Stalled() { core_->Abort(true); }
uint64_t PushSession::fragments() const { return core_->fragments(); }
std::chrono::steady_clock::time_point PushSession::last_frame() const {
  return core_->last_frame();
}

}  // namespace lastframe::ingest
