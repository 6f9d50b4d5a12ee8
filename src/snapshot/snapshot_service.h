#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "core/status.h"
#include "core/worker_pool.h"
#include "media/image_encoder.h"
#include "objects/object_store.h"
#include "snapshot/snapshot_engine.h"
#include "snapshot/warm_decoders.h"
#include "store/stream_source.h"

namespace lastframe::snapshot {

struct ServiceOptions {
  size_t max_cache_bytes = 64 << 20;  // encoded images kept for repeat looks
  size_t max_warm_decoders = 64;      // streams whose decoder stays alive
  int64_t warm_idle_ms = 60'000;      // a decoder unused this long is dropped
  // The largest image made, as output width x height: asking for more is
  // InvalidArgument ("TooManyPixels"); a larger source is scaled down to fit.
  uint64_t max_render_pixels = 3840ull * 2160;
  // Counts the asks refused for their size (may be null).
  Limit* render_limit = nullptr;
  // Renders costlier than this (output pixels, PNG counted 4x) run on the
  // heavy pool when there is one, so they never queue ahead of cheap ones.
  uint64_t heavy_render_cost = 1920ull * 1080;
};

// Which picture of a fragment's frames, and how to decode it.
struct FramePick {
  // The picture presented at this pts (the frames'), when it is not the
  // newest of the frames given (B-frames decoded after it); nullopt: the newest.
  std::optional<int64_t> shown_pts;
  // The fragment is the stream's latest: its warm decoder may answer. Else
  // it is decoded cold, leaving the warm decoders to live streams.
  bool warm = true;
};

// The SnapshotEngine: takes the newest frame (or the one shown at a time) of a
// stream: reads the fragment from a StreamSource, decodes and encodes on the
// worker pool (never on the caller's thread) and optionally publishes to an
// ObjectStore.
//
// The newest frame is named by (fragment number, frames in it): while no frame
// arrives, the same request is answered from a cache (a repeat snapshot costs
// one URL signature), and concurrent requests for the same frame and options
// share one render.
class SnapshotService final : public SnapshotEngine {
 public:
  // |heavy_workers| (may be null) renders the large images, apart from |workers|.
  SnapshotService(const store::StreamSource& source, objects::ObjectStore& objects,
                  WorkerPool& workers, const Clock& clock, ServiceOptions options = {},
                  WorkerPool* heavy_workers = nullptr);

  // Renders the newest frame synchronously on the calling thread (no image cache).
  Result<Image> Render(const std::string& stream, const SnapshotOptions& options);

  // SnapshotEngine. A frame at a time shares the cache with the newest frame
  // (the same frame is one entry) and the warm decoder while its fragment is
  // the one arriving; an older one is decoded cold, leaving the warm decoders
  // to live streams.
  void RenderAsync(const std::string& stream, SnapshotOptions options, ImageCallback done) override;
  void PublishAsync(const std::string& stream, SnapshotOptions options, int64_t expires_s,
                    PublishCallback done) override;
  void RenderAtAsync(const std::string& stream, FrameTime at, SnapshotOptions options,
                     ImageCallback done) override;
  // Decodes the retained fragments of the span (cold, on the heavy pool when
  // there is one) and encodes the frame shown at each of its moments; cached
  // and coalesced as stills are, by the frames it was made from.
  void RenderPreviewAsync(const std::string& stream, PreviewOptions options,
                          ImageCallback done) override;

  // Drops idle warm decoders; call periodically.
  void SweepIdle();

  // The object key of an image: "snapshots/<stream>/<frame ms>.jpg", with
  // "_q<quality>" and "_<w>x<h>" added when they differ from the defaults.
  static std::string ObjectKey(const std::string& stream, const Image& image,
                               const SnapshotOptions& options);

  SnapshotStats stats() const override;

 private:
  struct Rendered {
    std::shared_ptr<const Image> image;
    std::string object_key;  // set when published
  };
  using Waiter = std::function<void(Result<Rendered>)>;
  struct CacheEntry {
    Rendered rendered;
    std::list<std::string>::iterator lru;
  };

  // Finds or makes the render of |stream|'s newest frame with |options|.
  void Acquire(const std::string& stream, const SnapshotOptions& options, bool publish,
               Waiter done);
  // Finds or makes the render of the frame of |stream| shown at |at|.
  void AcquireAt(const std::string& stream, FrameTime at, const SnapshotOptions& options,
                 bool publish, Waiter done);
  // Answers from the cache or joins a render in progress (true), or takes
  // |key|'s render upon itself (false: the caller renders, then Finish).
  bool JoinOrClaim(const std::string& key, Waiter& done);
  // Makes a preview of |fragments| (those touching [start_ms, end_ms]).
  Result<Image> RenderPreview(const std::string& stream, const PreviewOptions& options,
                              const std::vector<store::FragmentView>& fragments, int64_t end_ms);
  void AcquireFragment(const std::string& stream, const SnapshotOptions& options, bool publish,
                       FramePick pick, Waiter done, Result<store::FragmentView> fragment);
  // Signs a URL to a stored render and answers.
  void Answer(const Rendered& rendered, int64_t expires_s, const PublishCallback& done);
  // Answers everyone waiting for |key|'s render with |why|, caching nothing (it never ran).
  void Abandon(const std::string& key, const Status& why);
  // Caches a finished render and answers everyone waiting for it.
  void Finish(const std::string& key, Result<Rendered> result);
  Result<Image> RenderFragment(const std::string& stream, const store::FragmentView& fragment,
                               const SnapshotOptions& options, FramePick pick = {});
  void Insert(const std::string& key, const Rendered& rendered) LF_REQUIRES(mu_);
  // Holds |fitted| (the output size) within max_render_pixels.
  Status BoundPixels(const SnapshotOptions& asked, media::EncodeOptions* fitted) const;
  // The pool a render of |fragment| with |options| goes to: large ones apart.
  WorkerPool& PoolFor(const store::FragmentView& fragment, const SnapshotOptions& options);
  // Brings |stream|'s warm decoder to its newest frame on a spare worker.
  void ScheduleCatchUp(const std::string& stream);

  const store::StreamSource& source_;
  objects::ObjectStore& objects_;
  WorkerPool& workers_;
  WorkerPool* const heavy_workers_;
  const Clock& clock_;
  const ServiceOptions options_;
  WarmDecoders warm_;

  mutable Mutex mu_;
  std::unordered_map<std::string, CacheEntry> cache_ LF_GUARDED_BY(mu_);
  std::list<std::string> lru_ LF_GUARDED_BY(mu_);  // front: most recent
  size_t cache_bytes_ LF_GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, std::vector<Waiter>> in_flight_ LF_GUARDED_BY(mu_);
  SnapshotStats stats_ LF_GUARDED_BY(mu_);
  std::unordered_map<std::string, bool> catching_up_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe::snapshot
