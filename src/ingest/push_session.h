#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/limits.h"
#include "core/status.h"
#include "ingest/byte_pipe.h"
#include "ingest/fragmenter.h"
#include "store/stream_store.h"

namespace lastframe::ingest {

struct PushOptions {
  std::string stream;
  // x-amzn-fragment-timecode-type: ABSOLUTE means the Matroska timecodes are
  // epoch milliseconds; RELATIVE (default) means they count from producer_start_ms.
  bool absolute_timecodes = false;
  // x-amzn-producer-start-timestamp; the session's start when absent.
  std::optional<int64_t> producer_start_ms;
  size_t max_fragment_bytes = 50 * 1024 * 1024;  // Kinesis Video's fragment limits
  int64_t max_fragment_duration_ms = 10'000;
  size_t pipe_high_water = 1024 * 1024;
  // Counts fragments refused for their size (may be null).
  Limit* fragment_limit = nullptr;
  // A producer's PutMedia, counted in the lastframe_ingest_* metrics. False for
  // media that is no producer's (Kinesis Video's GetMedia read into a cache).
  bool from_producer = true;
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
// clusters are. The parse runs on a thread of the session's own (libavformat
// pulls bytes and blocks for them); the socket side only ever calls Feed,
// Finish and Abort, which never block. Callbacks run on the session's thread.
class PushSession {
 public:
  // Claims |options.stream| (created if new) and starts parsing. Fails with
  // reason "StreamBusy" when another producer is pushing to the same stream.
  static Result<std::unique_ptr<PushSession>> Start(store::StreamStore& store, PushOptions options,
                                                    PushCallbacks callbacks);
  ~PushSession();  // aborts and joins
  PushSession(const PushSession&) = delete;
  PushSession& operator=(const PushSession&) = delete;

  // Queues body bytes. Returns false when the caller should wait for on_space.
  bool Feed(const uint8_t* data, size_t size);
  // Blocks while the queue is full (in-process producers only, never I/O threads).
  bool WaitForSpace();
  // The body ended: finish the fragment in progress, then on_done.
  void Finish();
  // Stop now (connection lost, shutdown); on_done still follows.
  void Abort();
  // The producer sent nothing for the server's idle timeout: stop, and say so.
  void Stalled();

  // Fragments acknowledged so far.
  uint64_t fragments() const { return fragments_.load(); }
  // When the last complete frame arrived (the session's start before the first):
  // --producer-timeout counts from here, so trickled bytes do not keep a producer.
  std::chrono::steady_clock::time_point last_frame() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_frame_ns_.load(std::memory_order_relaxed)));
  }

 private:
  // The lastframe_ingest_* metrics, resolved once (push_session.cpp).
  struct Metrics;

  PushSession(store::StreamStore& store, std::shared_ptr<store::Stream> stream, PushOptions options,
              PushCallbacks callbacks);
  void Run();
  Status Parse();
  void AckFragment(const store::FragmentView& f);
  void SendErrorAck(AckError id, const std::string& message, int64_t timecode,
                    std::optional<uint64_t> number);

  store::StreamStore& store_;
  std::shared_ptr<store::Stream> stream_;
  const PushOptions options_;
  const PushCallbacks callbacks_;
  const int64_t start_ms_;
  const Metrics* const metrics_;        // null when not from a producer
  std::atomic<int64_t> last_frame_ns_;  // steady_clock ticks
  // When the newest video packet given to the fragmenter arrived (the session's
  // thread only): while the fragmenter completes a fragment, its last frame.
  std::chrono::steady_clock::time_point last_video_packet_;
  BytePipe pipe_;
  std::atomic<uint64_t> fragments_{0};
  std::atomic<bool> stalled_{false};
  std::thread thread_;
};

}  // namespace lastframe::ingest
