#include "snapshot/snapshot_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/metrics.h"
#include "snapshot/frame_decoder.h"

namespace lastframe::snapshot {
namespace {

media::ImageFormat MediaFormat(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng:
      return media::ImageFormat::kPng;
    case ImageFormat::kJpeg:
      break;
  }
  return media::ImageFormat::kJpeg;
}

ImageFormat FormatOf(media::ImageFormat f) {
  return f == media::ImageFormat::kPng ? ImageFormat::kPng : ImageFormat::kJpeg;
}

media::EncodeOptions EncodeOptionsOf(const SnapshotOptions& o) {
  return {
      .format = MediaFormat(o.format), .quality = o.quality, .width = o.width, .height = o.height};
}

// lastframe_snapshot_stage_duration_seconds' children, looked up once: a
// stage's time is then one observation, no lock.
struct StageTimes {
  metrics::Histogram& decode;
  metrics::Histogram& encode;
  metrics::Histogram& store;  // the object store's put
  metrics::Histogram& sign;   // presigning the URL
};

const StageTimes& Stages() {
  static const StageTimes stages = [] {
    auto& f = metrics::Registry::Global().Histograms(
        "lastframe_snapshot_stage_duration_seconds",
        "Snapshot time by stage: decode, encode, store (the object store's put), sign (the URL).",
        {"stage"}, metrics::LatencyBuckets());
    return StageTimes{f.With({"decode"}), f.With({"encode"}), f.With({"store"}), f.With({"sign"})};
  }();
  return stages;
}

Status Overloaded() {
  return Status(Code::kOverloaded, "too many snapshots in progress; retry shortly",
                Reason::kOverloaded);
}

// Names one rendering: the stream, its newest frame, the options, publishing.
std::string CacheKey(const std::string& stream, const store::FragmentView& f,
                     const SnapshotOptions& so, bool publish, std::optional<int64_t> shown_pts) {
  const SnapshotOptions& o = so;
  // In keyframe mode every frame count of the fragment shows the same picture.
  size_t frames = so.keyframe_only ? 1 : f.frames.size();
  // The producer time too: fragments a remote source numbers in two ways (a
  // followed stream's, a cold fetch's) are told apart all the same.
  return stream + '\n' + std::to_string(f.number) + '@' + std::to_string(f.producer_ts_ms) + ':' +
         std::to_string(frames) + ':' + ImageFormatName(o.format) + ':' +
         std::to_string(o.quality) + ':' + std::to_string(o.width) + 'x' +
         std::to_string(o.height) + (so.keyframe_only ? ":k" : "") + (publish ? ":p" : "") +
         (shown_pts ? ":@" + std::to_string(*shown_pts) : "");
}

}  // namespace

SnapshotService::SnapshotService(const store::StreamSource& source, objects::ObjectStore& objects,
                                 WorkerPool& workers, const Clock& clock, ServiceOptions options,
                                 WorkerPool* heavy_workers)
    : source_(source),
      objects_(objects),
      workers_(workers),
      heavy_workers_(heavy_workers),
      clock_(clock),
      options_(options),
      warm_(clock, options.max_warm_decoders, options.warm_idle_ms) {}

Status SnapshotService::BoundPixels(const SnapshotOptions& asked,
                                    media::EncodeOptions* fitted) const {
  const uint64_t max = options_.max_render_pixels;
  uint64_t pixels = static_cast<uint64_t>(fitted->width) * static_cast<uint64_t>(fitted->height);
  if (pixels <= max) return Status::Ok();
  if ((asked.width > 0 || asked.height > 0) && !asked.shrink_to_fit) {
    if (options_.render_limit) options_.render_limit->CountRefusal();
    return InvalidArgument("an image of " + std::to_string(fitted->width) + "x" +
                               std::to_string(fitted->height) + " is larger than the " +
                               std::to_string(max) +
                               " pixels this server renders (--max-render-pixels)",
                           Reason::kTooManyPixels);
  }
  // The source itself is larger: keep its shape, within the bound.
  media::ShrinkToPixels(max, &fitted->width, &fitted->height);
  return Status::Ok();
}

WorkerPool& SnapshotService::PoolFor(const store::FragmentView& fragment,
                                     const SnapshotOptions& options) {
  if (heavy_workers_ == nullptr || !fragment.codec) return workers_;
  int w = options.width, h = options.height;
  media::FitSize(fragment.codec->width, fragment.codec->height, options.width, options.height, &w,
                 &h);
  uint64_t cost = static_cast<uint64_t>(std::max(w, 0)) * static_cast<uint64_t>(std::max(h, 0));
  if (options.format == ImageFormat::kPng) cost *= 4;
  return cost > options_.heavy_render_cost ? *heavy_workers_ : workers_;
}

Result<Image> SnapshotService::Render(const std::string& stream, const SnapshotOptions& options) {
  Result<store::FragmentView> fragment = source_.LatestFragment(stream);
  if (!fragment.ok()) return fragment.status();
  return RenderFragment(stream, *fragment, options);
}

Result<Image> SnapshotService::RenderFragment(const std::string& stream,
                                              const store::FragmentView& fragment,
                                              const SnapshotOptions& options, FramePick pick) {
  auto t0 = std::chrono::steady_clock::now();
  bool catch_up = false;
  Result<media::FramePtr> frame = Status(Code::kInternal, "unset");
  if (options.keyframe_only) {
    store::FragmentView keyframe = fragment;
    keyframe.frames.resize(1);
    frame = DecodeNewestFrame(keyframe, 1);
  } else if (pick.warm) {
    frame = warm_.Newest(stream, fragment, &catch_up);
  } else {
    frame = DecodeNewestFrame(fragment, 1, pick.shown_pts.value_or(INT64_MAX));
  }
  Stages().decode.Observe(metrics::SecondsSince(t0));
  if (!frame.ok()) return frame.status();
  const AVFrame& f = **frame;
  media::EncodeOptions fitted = EncodeOptionsOf(options);
  media::FitSize(f.width, f.height, options.width, options.height, &fitted.width, &fitted.height);
  if (Status s = BoundPixels(options, &fitted); !s.ok()) return s;
  auto t1 = std::chrono::steady_clock::now();
  Result<media::EncodedImage> encoded = media::EncodeImage(f, fitted);
  Stages().encode.Observe(metrics::SecondsSince(t1));
  if (!encoded.ok()) return encoded.status();
  auto t2 = std::chrono::steady_clock::now();
  spdlog::debug("render stream={} frames={} decode_ms={:.2f} encode_ms={:.2f}", stream,
                fragment.frames.size(), std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count());
  Image image;
  image.bytes = std::move(encoded->bytes);
  image.format = FormatOf(encoded->format);
  image.width = encoded->width;
  image.height = encoded->height;
  image.fragment_number = fragment.number;
  int64_t first_pts = fragment.frames.front().pts_ms;
  image.frame_timestamp_ms = fragment.producer_ts_ms + (f.pts - first_pts);
  // After the encode, not before: the catch-up must not compete with this look.
  if (catch_up) ScheduleCatchUp(stream);
  return image;
}

void SnapshotService::Acquire(const std::string& stream, const SnapshotOptions& options,
                              bool publish, Waiter done) {
  // From the embedded store the newest fragment is at hand (references only,
  // cheap on any thread); a remote source answers from its own threads.
  source_.LatestFragmentAsync(stream, [this, stream, options, publish, done = std::move(done)](
                                          Result<store::FragmentView> fragment) mutable {
    AcquireFragment(stream, options, publish, FramePick{}, std::move(done), std::move(fragment));
  });
}

void SnapshotService::AcquireFragment(const std::string& stream, const SnapshotOptions& options,
                                      bool publish, FramePick pick, Waiter done,
                                      Result<store::FragmentView> fragment) {
  if (!fragment.ok()) return done(fragment.status());
  if (fragment->codec) {  // an ask over the pixel bound is refused before any decode
    media::EncodeOptions fitted = EncodeOptionsOf(options);
    media::FitSize(fragment->codec->width, fragment->codec->height, options.width, options.height,
                   &fitted.width, &fitted.height);
    if (Status s = BoundPixels(options, &fitted); !s.ok()) return done(s);
  }
  std::string key = CacheKey(stream, *fragment, options, publish, pick.shown_pts);
  {
    MutexLock lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      ++stats_.cache_hits;
      Rendered hit = it->second.rendered;
      lock.Unlock();
      return done(std::move(hit));
    }
    if (auto it = in_flight_.find(key); it != in_flight_.end()) {
      ++stats_.coalesced;
      it->second.push_back(std::move(done));
      return;
    }
    in_flight_[key].push_back(std::move(done));
  }
  WorkerPool& pool = PoolFor(*fragment, options);
  bool queued = pool.TryPost(
      [this, key, stream, fragment = std::move(*fragment), options, publish, pick]() mutable {
        Result<Image> image = RenderFragment(stream, fragment, options, pick);
        if (!image.ok()) return Finish(key, image.status());
        Rendered out;
        out.image = std::make_shared<const Image>(std::move(*image));
        if (!publish) return Finish(key, std::move(out));
        out.object_key = ObjectKey(stream, *out.image, options);
        // The upload may go on the store's own threads: this worker is free at once.
        std::shared_ptr<const std::string> bytes(out.image, &out.image->bytes);
        const auto put = std::chrono::steady_clock::now();
        objects_.PutAsync(out.object_key, std::move(bytes), ImageContentType(out.image->format),
                          [this, key, out, put](Status stored) {
                            Stages().store.Observe(metrics::SecondsSince(put));
                            if (!stored.ok()) return Finish(key, stored);
                            Finish(key, out);
                          });
      });
  if (!queued) {
    std::vector<Waiter> waiters;
    {
      MutexLock lock(mu_);
      waiters = std::move(in_flight_[key]);
      in_flight_.erase(key);
    }
    for (auto& w : waiters) w(Overloaded());
  }
}

void SnapshotService::Finish(const std::string& key, Result<Rendered> result) {
  std::vector<Waiter> waiters;
  {
    MutexLock lock(mu_);
    ++stats_.renders;
    if (result.ok()) Insert(key, *result);
    waiters = std::move(in_flight_[key]);
    in_flight_.erase(key);
  }
  for (auto& w : waiters) w(result);
}

void SnapshotService::Insert(const std::string& key, const Rendered& rendered) {
  if (cache_.count(key)) return;
  size_t size = rendered.image->bytes.size();
  if (size > options_.max_cache_bytes) return;
  lru_.push_front(key);
  cache_.emplace(key, CacheEntry{rendered, lru_.begin()});
  cache_bytes_ += size;
  while (cache_bytes_ > options_.max_cache_bytes && !lru_.empty()) {
    auto it = cache_.find(lru_.back());
    cache_bytes_ -= it->second.rendered.image->bytes.size();
    cache_.erase(it);
    lru_.pop_back();
  }
}

void SnapshotService::RenderAsync(const std::string& stream, SnapshotOptions options,
                                  ImageCallback done) {
  Acquire(stream, options, false, [done = std::move(done)](Result<Rendered> r) {
    if (!r.ok()) return done(r.status());
    done(*r->image);  // a copy: the cached image stays shared
  });
}

void SnapshotService::RenderAtAsync(const std::string& stream, FrameTime at,
                                    SnapshotOptions options, ImageCallback done) {
  store::FragmentQuery q;
  q.timeline = at.server_timeline ? store::FragmentQuery::Timeline::kServer
                                  : store::FragmentQuery::Timeline::kProducer;
  q.match = store::FragmentQuery::Match::kTouches;
  q.start_ms = q.end_ms = at.at_ms;
  Waiter answer = [done = std::move(done)](Result<Rendered> r) {
    if (!r.ok()) return done(r.status());
    done(*r->image);
  };
  source_.FragmentsAsync(
      stream, q,
      [this, stream, at, options,
       answer = std::move(answer)](Result<std::vector<store::FragmentView>> found) mutable {
        if (!found.ok()) return answer(found.status());
        // The fragment showing |at|: the last to begin at or before it.
        const store::FragmentView* f = found->empty() ? nullptr : &found->back();
        if (f == nullptr || f->frames.empty() || !f->codec)
          return answer(NotFound(
              "no frame of '" + stream + "' at " + std::to_string(at.at_ms) + " ms is retained",
              Reason::kNoMedia));
        // The picture on screen at |at|: the latest presented at or before it. With
        // B-frames it may come after later ones in decode order: every frame up to
        // the last one presented by then is decoded.
        const int64_t begin = at.server_timeline ? f->server_ts_ms : f->producer_ts_ms;
        const int64_t first_pts = f->frames.front().pts_ms;
        const int64_t wanted = first_pts + (at.at_ms - begin);
        size_t n = 1;
        int64_t shown = first_pts;
        for (size_t i = 0; i < f->frames.size(); ++i) {
          if (f->frames[i].pts_ms > wanted) continue;
          n = i + 1;
          shown = std::max(shown, f->frames[i].pts_ms);
        }
        int64_t newest_decoded = INT64_MIN;
        for (size_t i = 0; i < n; ++i)
          newest_decoded = std::max(newest_decoded, f->frames[i].pts_ms);
        FramePick pick;
        // When the picture is the newest of the frames decoded, the render is the
        // one a look at the stream made when those frames had arrived: one cache entry.
        if (shown != newest_decoded) pick.shown_pts = shown;
        // Only the fragment still arriving is the stream's latest, followed by a warm decoder.
        pick.warm = !f->complete && n == f->frames.size() && !pick.shown_pts;
        store::FragmentView upto = std::move(found->back());
        upto.frames.resize(n);
        AcquireFragment(stream, options, /*publish=*/false, pick, std::move(answer),
                        std::move(upto));
      });
}

void SnapshotService::PublishAsync(const std::string& stream, SnapshotOptions options,
                                   int64_t expires_s, PublishCallback done) {
  Acquire(stream, options, true, [this, expires_s, done = std::move(done)](Result<Rendered> r) {
    if (!r.ok()) return done(r.status());
    if (objects_.Holds(r->object_key)) return Answer(*r, expires_s, done);
    // The store let the object go since it was cached (expiry, size bound): put it back.
    std::shared_ptr<const std::string> bytes(r->image, &r->image->bytes);
    const auto put = std::chrono::steady_clock::now();
    objects_.PutAsync(r->object_key, std::move(bytes), ImageContentType(r->image->format),
                      [this, rendered = *r, expires_s, done, put](Status stored) {
                        Stages().store.Observe(metrics::SecondsSince(put));
                        if (!stored.ok()) return done(stored);
                        Answer(rendered, expires_s, done);
                      });
  });
}

void SnapshotService::Answer(const Rendered& r, int64_t expires_s, const PublishCallback& done) {
  // Each caller gets its own signature and expiry: an HMAC, microseconds.
  // The clock is read first: should the signer's reading fall in the next
  // second, the expiry told is a second early, never late.
  const int64_t signed_at_ms = clock_.NowMs();
  const auto start = std::chrono::steady_clock::now();
  Result<std::string> url = objects_.PresignGet(r.object_key, expires_s);
  Stages().sign.Observe(metrics::SecondsSince(start));
  if (!url.ok()) return done(url.status());
  PublishedImage out;
  out.image.format = r.image->format;
  out.image.width = r.image->width;
  out.image.height = r.image->height;
  out.image.frame_timestamp_ms = r.image->frame_timestamp_ms;
  out.image.fragment_number = r.image->fragment_number;
  out.bytes = r.image->bytes.size();
  out.key = r.object_key;
  out.url = std::move(*url);
  out.expires_at_ms = objects_.UrlExpiresAtMs(signed_at_ms, expires_s);
  done(std::move(out));
}

std::string SnapshotService::ObjectKey(const std::string& stream, const Image& image,
                                       const SnapshotOptions& options) {
  const SnapshotOptions& o = options;
  std::string key = "snapshots/" + stream + "/" + std::to_string(image.frame_timestamp_ms);
  if (o.format == ImageFormat::kJpeg && o.quality != 80) key += "_q" + std::to_string(o.quality);
  if (o.width > 0 || o.height > 0)
    key += "_" + std::to_string(image.width) + "x" + std::to_string(image.height);
  return key + "." + ImageExtension(image.format);
}

void SnapshotService::OnFrame(const std::string& stream) {
  if (options_.warm_all) ScheduleCatchUp(stream);
}

void SnapshotService::ScheduleCatchUp(const std::string& stream) {
  {
    MutexLock lock(mu_);
    // One catch-up per stream in the queue at a time, and only on spare
    // capacity: looks come first.
    if (catching_up_.count(stream)) return;
    catching_up_[stream] = true;
  }
  bool queued = workers_.queued() < workers_.threads() && workers_.TryPost([this, stream] {
    {
      MutexLock lock(mu_);
      catching_up_.erase(stream);
    }
    Result<store::FragmentView> f = source_.LatestFragment(stream);
    if (f.ok()) warm_.CatchUp(stream, *f);
  });
  if (!queued) {
    MutexLock lock(mu_);
    catching_up_.erase(stream);
  }
}

void SnapshotService::SweepIdle() { warm_.SweepIdle(); }

SnapshotStats SnapshotService::stats() const {
  MutexLock lock(mu_);
  SnapshotStats s = stats_;
  s.warm = warm_.stats();
  return s;
}

}  // namespace lastframe::snapshot
