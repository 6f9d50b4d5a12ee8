#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/limits.h"
#include "core/status.h"
#include "core/worker_pool.h"
#include "media/image_encoder.h"
#include "objects/object_store.h"
#include "snapshot/warm_decoders.h"
#include "store/stream_source.h"

namespace lastframe::snapshot {

// The newest picture of a stream, encoded.
struct Image {
  std::string bytes;
  media::ImageFormat format = media::ImageFormat::kJpeg;
  int width = 0;
  int height = 0;
  int64_t frame_timestamp_ms = 0;  // producer time of the frame (epoch ms)
  uint64_t fragment_number = 0;
};

// An image put in the object store, and a signed URL to it.
struct PublishedImage {
  Image image;  // without bytes: callers want the URL
  size_t bytes = 0;
  std::string key;
  std::string url;
  int64_t expires_at_ms = 0;
};

// What to render: the image's encoding, and which frame.
struct SnapshotOptions {
  media::EncodeOptions encode;
  // The newest fragment's keyframe instead of its newest frame: one frame to
  // decode, the cheapest still, but up to a GOP older.
  bool keyframe_only = false;
};

struct ServiceOptions {
  size_t max_cache_bytes = 64 << 20;  // encoded images kept for repeat looks
  size_t max_warm_decoders = 64;      // streams whose decoder stays alive
  int64_t warm_idle_ms = 60'000;      // a decoder unused this long is dropped
  // Feed every stream's decoder as frames arrive (up to max_warm_decoders
  // streams, on spare worker capacity), so that even first looks need no GOP decode.
  bool warm_all = false;
  // The largest image made, as output width x height: asking for more is
  // InvalidArgument ("TooManyPixels"); a larger source is scaled down to fit.
  uint64_t max_render_pixels = 3840ull * 2160;
  // Counts the asks refused for their size (may be null).
  Limit* render_limit = nullptr;
  // Renders costlier than this (output pixels, PNG counted 4x) run on the
  // heavy pool when there is one, so they never queue ahead of cheap ones.
  uint64_t heavy_render_cost = 1920ull * 1080;
};

struct SnapshotStats {
  uint64_t renders = 0;     // decodes + encodes done
  uint64_t cache_hits = 0;  // answered from the cache (same frame, same options)
  uint64_t coalesced = 0;   // joined a render already in progress
  WarmDecoderStats warm;
};

// Takes the newest frame of a stream: reads the latest fragment from a
// StreamSource, decodes and encodes on the worker pool (never on the caller's
// thread) and optionally publishes to an ObjectStore.
//
// The newest frame is named by (fragment number, frames in it): while no frame
// arrives, the same request is answered from a cache (a repeat snapshot costs
// one URL signature), and concurrent requests for the same frame and options
// share one render.
class SnapshotService {
 public:
  // |heavy_workers| (may be null) renders the large images, apart from |workers|.
  SnapshotService(const store::StreamSource& source, objects::ObjectStore& objects,
                  WorkerPool& workers, const Clock& clock, ServiceOptions options = {},
                  WorkerPool* heavy_workers = nullptr);

  // Renders synchronously on the calling thread (no image cache).
  Result<Image> Render(const std::string& stream, const SnapshotOptions& options);

  using ImageCallback = std::function<void(Result<Image>)>;
  using PublishCallback = std::function<void(Result<PublishedImage>)>;

  // |done| runs exactly once: at once on the calling thread when the answer is
  // known (an unknown stream, a cached image), else on a worker thread. A full
  // worker queue gives Overloaded.
  void RenderAsync(const std::string& stream, SnapshotOptions options, ImageCallback done);
  // As RenderAsync, then put in the object store and presigned for |expires_s|
  // seconds (1..604800).
  void PublishAsync(const std::string& stream, SnapshotOptions options, int64_t expires_s,
                    PublishCallback done);

  // A frame arrived on |stream| (the store's observer): with warm_all, feeds
  // its decoder on a worker if the queue has room to spare.
  void OnFrame(const std::string& stream);
  // Drops idle warm decoders; call periodically.
  void SweepIdle();

  // The object key of an image: "snapshots/<stream>/<frame ms>.jpg", with
  // "_q<quality>" and "_<w>x<h>" added when they differ from the defaults.
  static std::string ObjectKey(const std::string& stream, const Image& image,
                               const SnapshotOptions& options);

  SnapshotStats stats() const;

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
  void AcquireFragment(const std::string& stream, const SnapshotOptions& options, bool publish,
                       Waiter done, Result<store::FragmentView> fragment);
  // Signs a URL to a stored render and answers.
  void Answer(const Rendered& rendered, int64_t expires_s, const PublishCallback& done);
  // Caches a finished render and answers everyone waiting for it.
  void Finish(const std::string& key, Result<Rendered> result);
  Result<Image> RenderFragment(const std::string& stream, const store::FragmentView& fragment,
                               const SnapshotOptions& options);
  void Insert(const std::string& key, const Rendered& rendered);  // mu_ held
  // Holds |fitted| (the output size) within max_render_pixels.
  Status BoundPixels(const media::EncodeOptions& asked, media::EncodeOptions* fitted) const;
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

  mutable std::mutex mu_;
  std::unordered_map<std::string, CacheEntry> cache_;               // guarded by mu_
  std::list<std::string> lru_;                                      // front: most recent
  size_t cache_bytes_ = 0;                                          // guarded by mu_
  std::unordered_map<std::string, std::vector<Waiter>> in_flight_;  // guarded by mu_
  SnapshotStats stats_;                                             // guarded by mu_
  std::unordered_map<std::string, bool> catching_up_;               // guarded by mu_
};

}  // namespace lastframe::snapshot
