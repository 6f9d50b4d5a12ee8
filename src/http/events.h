#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"
#include "http/server.h"

namespace lastframe::http {

// One stream as GET /v1/events reports it.
struct StreamEventState {
  std::string name;
  std::string state;          // live, stale, idle, error, or a pulled source's (connecting, ...)
  std::string reason;         // why it is not live, for an admin; empty: nothing to say
  std::string public_reason;  // the same for other keys (a pulled source's error code only)
  int width = 0;
  int height = 0;
  std::optional<int64_t> last_frame_ms;           // server arrival of the newest frame
  std::optional<int64_t> last_frame_producer_ms;  // its producer timestamp
  uint64_t fragment_number = 0;
};

struct EventHubOptions {
  std::chrono::milliseconds tick{250};       // how often streams are looked at
  size_t max_subscribers = 1000;             // past it, 503
  size_t max_per_owner = 16;                 // of one key (or one address with --auth off): 429
  std::chrono::milliseconds recheck{5'000};  // how often a subscriber's credentials are checked
  size_t max_queued_bytes = 256 * 1024;      // a reader further behind is dropped (it reconnects)
  std::chrono::milliseconds keepalive{15'000};  // a comment line when nothing else was sent
  std::string node;                             // named in the hello event
};

// What one subscriber is shown.
struct EventSubscription {
  std::string owner;                               // the key's id (or the client's address)
  std::function<bool(std::string_view)> may_view;  // the caller's streams
  // Whether the caller's credentials still hold (a key revoked or expired, a
  // session signed out end the subscription); empty: always.
  std::function<bool()> still_allowed;
  bool admin = false;                         // sees sources' error text
  std::optional<std::set<std::string>> only;  // streams=: these alone
  int64_t interval_ms = 1000;                 // at most one frame event per stream per this
  std::string node;  // named in the hello event (EventHubOptions::node when empty)
};

// Server-Sent Events for every subscriber of GET /v1/events, from one thread:
// every tick it lists the streams once and tells each subscriber what changed
// for it: a "state" event when a stream's state, reason or size changes (and
// for every stream at first), a "frame" event when its newest frame changed
// (at most once per interval per stream), "removed" when it is gone. Writes
// never block: a reader more than max_queued_bytes behind is dropped.
class EventHub {
 public:
  using Lister = std::function<std::vector<StreamEventState>()>;
  EventHub(Lister lister, const Clock& clock, EventHubOptions options);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Takes a place for a subscriber of |owner| before its response starts:
  // Unavailable when all places are taken, Overloaded when all of |owner|'s are.
  Status Reserve(const std::string& owner);
  // Starts sending to |writer|, in the place Reserve took for its owner (given back when it ends).
  void Attach(std::shared_ptr<BodyWriter> writer, EventSubscription subscription);
  // Ends every subscriber's body and the thread. Idempotent.
  void Stop();
  size_t subscribers() const;

  // The text of one event ("event: NAME\ndata: JSON\n\n").
  static std::string Event(std::string_view name, const std::string& json);

 private:
  struct Known {
    std::string state, reason;
    int width = 0, height = 0;
    std::optional<int64_t> frame_ms;  // the newest frame told of
    int64_t frame_told_at_ms = INT64_MIN / 2;
  };
  struct Subscriber {
    std::shared_ptr<BodyWriter> writer;
    EventSubscription sub;
    bool greeted = false;
    int64_t last_write_ms = 0;
    int64_t last_check_ms = 0;
    std::unordered_map<std::string, Known> known;
  };

  void Run();
  // Gives back the places of |gone| subscribers.
  void Release(const std::vector<std::unique_ptr<Subscriber>>& gone);
  // The events |s| is owed now; empty when nothing changed.
  std::string Changes(Subscriber& s, const std::vector<StreamEventState>& streams, int64_t now_ms);

  const Lister lister_;
  const Clock& clock_;
  const EventHubOptions options_;

  mutable Mutex mu_;
  std::condition_variable wake_;
  size_t places_ LF_GUARDED_BY(mu_) = 0;                              // reserved or attached
  std::unordered_map<std::string, size_t> owned_ LF_GUARDED_BY(mu_);  // places by owner
  std::vector<std::unique_ptr<Subscriber>> joining_ LF_GUARDED_BY(mu_);
  bool stopping_ LF_GUARDED_BY(mu_) = false;
  std::thread thread_ LF_GUARDED_BY(mu_);
  // The thread's own.
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
};

}  // namespace lastframe::http
