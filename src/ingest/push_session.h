#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/limits.h"
#include "core/status.h"
#include "ingest/fragmenter.h"
#include "store/stream_store.h"

namespace lastframe::ingest {

class ParsePool;

struct PushOptions {
  std::string stream;
  // x-amzn-fragment-timecode-type: ABSOLUTE means the Matroska timecodes are
  // epoch milliseconds; RELATIVE (default) means they count from producer_start_ms.
  bool absolute_timecodes = false;
  // x-amzn-producer-start-timestamp; the session's start when absent.
  std::optional<int64_t> producer_start_ms;
  size_t max_fragment_bytes = 50 * 1024 * 1024;  // Kinesis Video's fragment limits
  int64_t max_fragment_duration_ms = 10'000;
  // Bytes queued and not yet parsed past which Feed asks the writer to wait.
  size_t pipe_high_water = 1024 * 1024;
  // Counts fragments refused for their size (may be null).
  Limit* fragment_limit = nullptr;
  // A producer's PutMedia, counted in the lastframe_ingest_* metrics. False for
  // media that is no producer's (Kinesis Video's GetMedia read into a cache).
  bool from_producer = true;
  // Where the parse runs; null: ParsePool::Shared(), the process's.
  ParsePool* pool = nullptr;
  // Parse on the thread that feeds (a connection's I/O thread), not on the pool: bytes are
  // parsed as Feed is called, without a hand-off and a thread woken for every read. The
  // strand's other turns (a PERSISTED ack, the end) run on the thread that causes them (the
  // store's writer, the caller of Finish or Abort). The I/O threads then parse (libwebm, the
  // fragmenter: no decoding); at 500 producers the hand-offs had cost more than the parse.
  bool parse_on_caller = false;
  // Makes a completed fragment durable, then calls |done| (on any thread) with
  // the outcome; null: the store's PersistAsync. A seam for tests that hold
  // persists back.
  std::function<void(const std::string& stream, store::FragmentView fragment,
                     std::function<void(Status)> done)>
      persist;
};

struct PushCallbacks {
  // One acknowledgement, a JSON object without the trailing newline.
  std::function<void(std::string)> on_ack;
  // The writer may feed again after Feed returned false.
  std::function<void()> on_space;
  // The session is over: no more acks. Ok for a clean end of input.
  std::function<void(Status)> on_done;
};

// One producer's Matroska stream, parsed incrementally as bytes arrive and cut
// into fragments that each begin at a video keyframe, whatever the producer's
// clusters are. No thread of its own: Feed queues the bytes and the session's
// strand parses them on a small ParsePool that all sessions share (libwebm's
// parser takes what has arrived and returns), one task of a session at a time.
// The socket side only ever calls Feed, Finish and Abort, which never block.
//
// Callbacks run on the pool's threads (with parse_on_caller, the threads named
// there), one at a time for a session, never after the destructor has begun (except the one the destructor is called
// from). A completed fragment is acknowledged RECEIVED at once and PERSISTED
// when the store says it is durable (StreamStore::PersistAsync); on_done
// follows the end of the parse and every PERSISTED or ERROR ack.
class PushSession {
 public:
  // Claims |options.stream| (created if new) and starts parsing. Fails with
  // reason "StreamBusy" when another producer is pushing to the same stream.
  static Result<std::unique_ptr<PushSession>> Start(store::StreamStore& store, PushOptions options,
                                                    PushCallbacks callbacks);
  // Aborts (the stream is released before it returns) and stops the callbacks.
  // Safe from within a callback, and while persists are still pending: they
  // complete into state the session shares with them, and ack no one.
  ~PushSession();
  PushSession(const PushSession&) = delete;
  PushSession& operator=(const PushSession&) = delete;

  // Queues body bytes. Returns false when the caller should wait for on_space
  // (past PushOptions::pipe_high_water; on_space once drained to half of it).
  bool Feed(const uint8_t* data, size_t size);
  // Blocks while the queue is full (in-process producers only, never I/O
  // threads nor a ParsePool's). False once the session was aborted or ended.
  bool WaitForSpace();
  // The body ended: finish the fragment in progress, then on_done.
  void Finish();
  // Stop now (connection lost, shutdown); on_done still follows.
  void Abort();
  // The producer sent nothing for the server's idle timeout: stop, and say so.
  void Stalled();

  // Fragments acknowledged so far.
  uint64_t fragments() const;
  // When the last complete frame arrived (the session's start before the first):
  // --producer-timeout counts from here, so trickled bytes do not keep a producer.
  std::chrono::steady_clock::time_point last_frame() const;

 private:
  class Core;  // shared with the pool's tasks and the store's persist callbacks
  explicit PushSession(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  std::shared_ptr<Core> core_;
};

}  // namespace lastframe::ingest
