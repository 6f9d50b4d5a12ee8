#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/limits.h"
#include "core/mutex.h"
#include "core/status.h"
#include "core/thread.h"
#include "ingest/pull_policy.h"
#include "store/stream_store.h"

namespace lastframe::ingest {

struct PullOptions {
  std::string stream;
  // rtsp://, rtsps://, rtmp://, rtmps://, srt://, http(s):// (MKV, MPEG-TS, fMP4), file://.
  std::string url;
  std::string rtsp_transport = "tcp";              // "tcp" or "udp"
  std::chrono::milliseconds open_timeout{10'000};  // connect, handshake and probe
  std::chrono::milliseconds read_timeout{10'000};  // no packet for this long: reconnect
  std::chrono::milliseconds backoff_base{500};     // full jitter below base * 2^failures
  std::chrono::milliseconds backoff_max{30'000};
  // A connection up this long starts the backoff over.
  std::chrono::milliseconds stable_after{30'000};
  // Where the source may connect (every hop, checked at connect); null: the default policy.
  std::shared_ptr<const PullPolicy> policy;
};

// What GET /v1/streams shows of a pulled stream.
struct SourceInfo {
  std::string url;    // credentials replaced by "***"
  std::string state;  // "connecting", "live" (reading packets), "error" (waiting to retry)
  std::string rtsp_transport;
  uint64_t reconnects = 0;  // connections opened after the first
  std::string last_error;
  std::string last_error_code;  // e.g. "PullAddressDenied", "SourceTimeout"
  std::optional<int64_t> connected_since_ms;
};

// Pulls one camera or feed through libavformat on a thread of its own:
// opens the URL, feeds the video track's packets to a Fragmenter (nothing is
// decoded), and on any failure or end reconnects with jittered exponential
// backoff. Every blocking call is bounded by an interrupt deadline, so a dead
// camera never blocks anything but its own thread, and Stop returns promptly.
// file:// sources loop, paced at their own frame rate.
class PullSource {
 public:
  // Fails on a malformed or unsupported URL (InvalidArgument "InvalidSourceUrl").
  static Result<std::unique_ptr<PullSource>> Start(store::StreamStore& store, PullOptions options);
  ~PullSource();  // Stop
  PullSource(const PullSource&) = delete;
  PullSource& operator=(const PullSource&) = delete;

  void Stop();
  SourceInfo Info() const;
  const PullOptions& options() const { return options_; }

 private:
  PullSource(store::StreamStore& store, PullOptions options);
  void Run();
  // One connection, from open to its end; the error that ended it.
  Status Session();
  // Waits |d| unless stopped first; false if stopped.
  bool SleepFor(std::chrono::milliseconds d);
  void SetState(const std::string& state, const std::string& error = "",
                const std::string& code = "");
  static int Interrupt(void* opaque);

  store::StreamStore& store_;
  const PullOptions options_;
  const std::string redacted_url_;
  std::atomic<bool> stopping_{false};
  // Blocking libavformat calls give up past this (steady clock, ns since epoch).
  std::atomic<int64_t> deadline_ns_{0};
  mutable Mutex mu_;
  std::condition_variable cv_;
  SourceInfo info_ LF_GUARDED_BY(mu_);
  Thread thread_;  // libavformat blocks: one thread per source, on a small stack
};

// Checks a source URL: one of the schemes above, a host for network schemes,
// a path for file://. |allow_file|: whether file:// may be used (only from the
// config file: the HTTP API must not read local files).
Status ValidateSourceUrl(const std::string& url, bool allow_file);
// "rtsp://user:pass@host/x" -> "rtsp://user:***@host/x": URLs are logged and shown this way.
std::string RedactUrl(const std::string& url);

// The pulled streams of a server, by name. Thread-safe.
class PullSources {
 public:
  // |limit| (may be null) bounds how many sources run at once ("TooManyPulls").
  explicit PullSources(store::StreamStore& store, PullPolicy policy = {}, Limit* limit = nullptr)
      : store_(store),
        policy_(std::make_shared<const PullPolicy>(std::move(policy))),
        limit_(limit) {}
  ~PullSources();

  // Starts pulling, under this server's pull policy. Conflict ("StreamExists")
  // if |options.stream| is already pulled or exists (pushed, or created for
  // pushes): a pull never takes over a stream, except |configured| ones (the
  // config file names them; they come back from the archive at each start).
  // InvalidArgument for a bad URL or transport, or "PullAddressDenied" when
  // the URL's host resolves to an address the policy refuses. file:// only
  // when |configured|: the HTTP API must not read local files.
  Status Add(PullOptions options, bool configured);
  // Stops pulling; NotFound if it is not a pulled stream.
  Status Remove(const std::string& stream);
  std::optional<SourceInfo> Find(const std::string& stream) const;
  std::map<std::string, SourceInfo> List() const;
  void StopAll();

 private:
  store::StreamStore& store_;
  const std::shared_ptr<const PullPolicy> policy_;
  Limit* const limit_;
  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<PullSource>> sources_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe::ingest
