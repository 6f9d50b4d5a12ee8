#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/worker_pool.h"
#include "kvs/kvs_client.h"
#include "store/stream_source.h"
#include "store/stream_store.h"

namespace lastframe::kvs {

struct KvsSourceOptions {
  KvsClientOptions client;
  size_t max_warm_streams = 64;        // streams followed with a live GetMedia
  int64_t warm_idle_ms = 120'000;      // a stream nobody looked at this long is let go
  int64_t cold_lookback_ms = 120'000;  // ListFragments looks this far back
  size_t fetch_threads = 8;            // cold fetches in parallel (network waits)
  std::chrono::milliseconds reconnect_backoff_max{5000};
};

struct KvsSourceStats {
  uint64_t warm_answers = 0;        // from a followed stream, no network
  uint64_t cold_fetches = 0;        // ListFragments + GetMediaForFragmentList
  uint64_t reconnects = 0;          // GetMedia sessions restarted
  uint64_t follower_fragments = 0;  // fragments completed from followed GetMedia streams
};

// Snapshots of streams kept in a Kinesis Video endpoint (AWS, or another
// lastframe) instead of our own store. A first look at a stream is cold:
// GetDataEndpoint, ListFragments over the last minutes, and
// GetMediaForFragmentList of the newest fragment. It also starts a GetMedia
// (StartSelector NOW) that follows the stream from then on, so later looks
// answer from memory with the newest frame, with no network call. A followed
// stream whose connection drops reconnects with backoff; until it is back,
// looks go cold again. Fetched media is parsed by the same Matroska ingest as
// PutMedia. Network waits run on the source's own threads, never on the
// caller's (an I/O thread) nor on decode workers.
class KvsSource final : public store::StreamSource {
 public:
  KvsSource(KvsSourceOptions options, const Clock& clock);
  ~KvsSource() override;

  Result<store::FragmentView> LatestFragment(std::string_view stream) const override;
  void LatestFragmentAsync(std::string_view stream, FragmentCallback done) const override;
  // ListFragments (paged), then GetMediaForFragmentList per fragment when frames are wanted.
  // Fragment numbers are the endpoint's where they fit 64 bits (another lastframe's);
  // longer ones (AWS's) are given numbers of ours, remembered for FragmentsByNumber.
  Result<std::vector<store::FragmentView>> Fragments(
      std::string_view stream, const store::FragmentQuery& query) const override;
  Result<std::vector<store::FragmentView>> FragmentsByNumber(
      std::string_view stream, const std::vector<uint64_t>& numbers) const override;
  void FragmentsAsync(std::string_view stream, const store::FragmentQuery& query,
                      FragmentsCallback done) const override;
  void FragmentsByNumberAsync(std::string_view stream, const std::vector<uint64_t>& numbers,
                              FragmentsCallback done) const override;

  // Lets go of streams idle past warm_idle_ms; call periodically.
  void SweepIdle();
  // Ends every GetMedia session and cold fetch (their callers get errors).
  void Stop();
  KvsSourceStats stats() const;
  const std::string& endpoint() const { return client_.endpoint(); }

 private:
  struct Follower {
    std::string stream;
    std::thread thread;
    std::atomic<bool> stop{false};
    std::atomic<bool> live{false};  // connected, and a frame arrived on this connection
  };
  // A followed stream (an entry of followers_, so under mu_ as it is).
  struct Followed {
    std::unique_ptr<Follower> follower;
    int64_t last_used_ms = 0;
  };
  // The newest fragment from the network (cold path); blocks.
  Result<store::FragmentView> FetchCold(const std::string& stream) const;
  // One fragment with its frames, fetched by the endpoint's number.
  Result<store::FragmentView> FetchFragment(const std::string& stream,
                                            const std::string& remote_number) const;
  // Our number for the endpoint's fragment number |remote|, and back.
  uint64_t LocalNumber(const std::string& remote) const;
  std::optional<std::string> RemoteNumber(uint64_t local) const;
  // Runs |work| on a fetcher thread; Overloaded through |done| when none is free.
  void PostFetch(std::function<Result<std::vector<store::FragmentView>>()> work,
                 FragmentsCallback done) const;
  // Parses |chunks| (Matroska) into |store| as stream |name|; blocks until done.
  static Status Ingest(store::StreamStore& store, const std::string& name,
                       const std::string& chunks);
  void Follow(Follower* f) const;
  void EnsureFollowed(const std::string& stream) const LF_REQUIRES(mu_);

  const KvsSourceOptions options_;
  const Clock& clock_;
  KvsClient client_;
  // Where followed streams' fragments land, and where cold fetches are parsed.
  mutable store::StreamStore warm_cache_;
  mutable WorkerPool fetchers_;
  mutable Mutex mu_;
  mutable std::map<std::string, Followed, std::less<>> followers_ LF_GUARDED_BY(mu_);
  // Cold fetches in progress per stream, and who waits for each.
  mutable std::map<std::string, std::vector<FragmentCallback>, std::less<>> cold_waiters_
      LF_GUARDED_BY(mu_);
  mutable KvsSourceStats stats_ LF_GUARDED_BY(mu_);
  // Endpoint fragment numbers too long for 64 bits, by the numbers we gave them (bounded).
  mutable std::map<uint64_t, std::string> long_numbers_ LF_GUARDED_BY(mu_);
  mutable std::map<std::string, uint64_t, std::less<>> long_numbers_back_ LF_GUARDED_BY(mu_);
  mutable bool stopped_ LF_GUARDED_BY(mu_) = false;
};

}  // namespace lastframe::kvs
