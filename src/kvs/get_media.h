#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"
#include "store/stream_store.h"

// Kinesis Video's GetMedia: a stream's chunks from a chosen fragment on,
// then live as fragments arrive, one thread per session.
namespace lastframe::kvs {

// Where a GetMedia session's chunks go (the HTTP layer adapts its streamed
// response body to it). Thread-safe.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  // Queues |bytes|; may block while the reader is slow. False once the reader is gone.
  virtual bool Write(std::string bytes) = 0;
  // Whether the reader is still there.
  virtual bool open() const = 0;
  // No more chunks: the body is complete.
  virtual void End() = 0;
};

// GetMedia's StartSelector: where the chunks begin.
struct StartSelector {
  enum class Type {
    kNow,                // the newest fragment, from its keyframe
    kEarliest,           // the oldest fragment retained
    kFragmentNumber,     // |number| (which must be retained)
    kContinuationToken,  // after |number|, the last chunk a previous session sent
    kServerTimestamp,    // the first fragment still showing at |timestamp_ms|
    kProducerTimestamp,
  };
  Type type = Type::kNow;
  uint64_t number = 0;
  int64_t timestamp_ms = 0;
};

// The number of the first fragment to send from |fragments| (oldest first)
// for |start|; a number past them all waits for the next. NotFound
// ("FragmentNotFound") for a kFragmentNumber not among them.
Result<uint64_t> FirstFragmentNumber(const std::vector<store::FragmentView>& fragments,
                                     const StartSelector& start);

// The GetMedia sessions of one server: each follows its stream on a thread of
// its own, waiting on the stream's change counter, and writes one chunk per
// fragment (kvs::MkvChunkWriter) as its frames arrive; a closed reader, a
// deleted stream or Shutdown ends it. Thread-safe.
class MediaFollowers {
  struct Core;
  struct Follower;

 public:
  MediaFollowers(const Clock& clock, size_t max_per_stream);
  ~MediaFollowers();  // Shutdown

  // A session's place, held between the answer's header and its first chunk:
  // Start it once the sink is there; one never started gives its place back.
  // It may outlive its MediaFollowers (then Start only ends the sink).
  class Session {
   public:
    Session(Session&& other) noexcept;
    Session& operator=(Session&&) = delete;
    ~Session();
    // Follows the stream into |sink| on a thread of its own (ends |sink| at
    // once after Shutdown).
    void Start(std::shared_ptr<ChunkSink> sink);

   private:
    friend class MediaFollowers;
    Session(std::shared_ptr<Core> core, Follower* follower, std::shared_ptr<store::Stream> stream,
            uint64_t first_number);
    std::shared_ptr<Core> core_;
    Follower* follower_;  // null once started or moved from
    std::shared_ptr<store::Stream> stream_;
    uint64_t first_number_;
  };

  // A session of |stream| from fragment |first_number| on. Overloaded
  // ("TooManyGetMediaConnections") when the stream has its most sessions,
  // Unavailable ("Stopping") after Shutdown.
  Result<Session> Open(std::shared_ptr<store::Stream> stream, uint64_t first_number);

  // Ends every session now and joins their threads (server stop).
  void Shutdown();

 private:
  struct Follower {
    std::string stream;
    std::shared_ptr<ChunkSink> sink;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  // What sessions share with their MediaFollowers.
  struct Core {
    Core(const Clock& c, size_t max) : clock(c), max_per_stream(max) {}
    void Follow(Follower* follower, const std::shared_ptr<store::Stream>& stream,
                uint64_t first_number);
    void ReapLocked() LF_REQUIRES(mu);

    const Clock& clock;
    const size_t max_per_stream;
    Mutex mu;
    std::list<std::unique_ptr<Follower>> followers LF_GUARDED_BY(mu);
    bool shut_down LF_GUARDED_BY(mu) = false;
    std::atomic<bool> stopping{false};  // followers end at their next wake
  };
  const std::shared_ptr<Core> core_;
};

}  // namespace lastframe::kvs
