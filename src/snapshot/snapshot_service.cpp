#include "snapshot/snapshot_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/metrics.h"
#include "core/time_format.h"
#include "media/animation_encoder.h"
#include "snapshot/frame_decoder.h"

namespace lastframe::snapshot {
namespace {

media::ImageFormat MediaFormat(ImageFormat f) {
  switch (f) {
    case ImageFormat::kPng:
      return media::ImageFormat::kPng;
    case ImageFormat::kWebp:
      return media::ImageFormat::kWebp;
    case ImageFormat::kAvif:
      return media::ImageFormat::kAvif;
    case ImageFormat::kJpeg:
    case ImageFormat::kGif:  // animations only (AnimationEncoder)
      break;
  }
  return media::ImageFormat::kJpeg;
}

ImageFormat FormatOf(media::ImageFormat f) {
  switch (f) {
    case media::ImageFormat::kPng:
      return ImageFormat::kPng;
    case media::ImageFormat::kWebp:
      return ImageFormat::kWebp;
    case media::ImageFormat::kAvif:
      return ImageFormat::kAvif;
    case media::ImageFormat::kJpeg:
      break;
  }
  return ImageFormat::kJpeg;
}

media::Fit MediaFit(Fit f) {
  switch (f) {
    case Fit::kContain:
      return media::Fit::kContain;
    case Fit::kCover:
      return media::Fit::kCover;
    case Fit::kFill:
      break;
  }
  return media::Fit::kFill;
}

const char* FitName(Fit f) {
  return f == Fit::kContain ? "contain" : f == Fit::kCover ? "cover" : "fill";
}

// What one preview may cost: the pixels it decodes (30 s of 1080p at 30 fps)
// and the bytes it comes to.
constexpr uint64_t kMaxPreviewDecodePixels = 30ull * 30 * 1920 * 1080;
constexpr size_t kMaxPreviewBytes = 32u << 20;

// "2026-12-01 10:53:39Z": the frame's UTC time to the second, for overlay=time.
std::string OverlayTime(int64_t ms) {
  std::string iso = FormatIso8601Ms(ms);  // 2026-12-01T10:53:39.070Z
  if (iso.size() < 19) return iso;
  iso[10] = ' ';
  return iso.substr(0, 19) + "Z";
}

media::EncodeOptions EncodeOptionsOf(const SnapshotOptions& o) {
  return {.format = MediaFormat(o.format),
          .quality = o.quality,
          .width = o.width,
          .height = o.height,
          .fit = MediaFit(o.fit),
          .rotate_degrees = o.rotate_degrees};
}

// The output size of a |src_w| x |src_h| frame rendered with |o|: rotated
// first, then sized as media::FitSize says.
void OutputSize(int src_w, int src_h, const SnapshotOptions& o, int* w, int* h) {
  if (o.rotate_degrees == 90 || o.rotate_degrees == 270) std::swap(src_w, src_h);
  media::FitSize(src_w, src_h, o.width, o.height, w, h);
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
         std::to_string(o.height) + ':' + FitName(o.fit) + ":r" + std::to_string(o.rotate_degrees) +
         (o.overlay_time ? ":t" : "") + (so.keyframe_only ? ":k" : "") + (publish ? ":p" : "") +
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
  OutputSize(fragment.codec->width, fragment.codec->height, options, &w, &h);
  uint64_t cost = static_cast<uint64_t>(std::max(w, 0)) * static_cast<uint64_t>(std::max(h, 0));
  // PNG's deflate and AVIF's AV1 encoder cost several times JPEG's.
  if (options.format == ImageFormat::kPng || options.format == ImageFormat::kAvif) cost *= 4;
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
  OutputSize(f.width, f.height, options, &fitted.width, &fitted.height);
  if (Status s = BoundPixels(options, &fitted); !s.ok()) return s;
  const int64_t first_pts = fragment.frames.front().pts_ms;
  const int64_t frame_ms = fragment.producer_ts_ms + (f.pts - first_pts);
  // The name first: a narrow image clips the end of the line.
  if (options.overlay_time) fitted.overlay_text = stream + " " + OverlayTime(frame_ms);
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
  image.frame_timestamp_ms = frame_ms;
  image.frame_arrival_ms = fragment.server_ts_ms + (f.pts - first_pts);
  // After the encode, not before: the catch-up must not compete with this look.
  if (catch_up) ScheduleCatchUp(stream);
  return image;
}

void SnapshotService::Acquire(const std::string& stream, const SnapshotOptions& options,
                              bool publish, Waiter done) {
  if (options.at) return AcquireAt(stream, *options.at, options, publish, std::move(done));
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
    OutputSize(fragment->codec->width, fragment->codec->height, options, &fitted.width,
               &fitted.height);
    if (Status s = BoundPixels(options, &fitted); !s.ok()) return done(s);
  }
  std::string key = CacheKey(stream, *fragment, options, publish, pick.shown_pts);
  if (JoinOrClaim(key, done)) return;
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
  if (!queued) Abandon(key, Overloaded());
}

void SnapshotService::Abandon(const std::string& key, const Status& why) {
  std::vector<Waiter> waiters;
  {
    MutexLock lock(mu_);
    waiters = std::move(in_flight_[key]);
    in_flight_.erase(key);
  }
  for (auto& w : waiters) w(why);
}

bool SnapshotService::JoinOrClaim(const std::string& key, Waiter& done) {
  MutexLock lock(mu_);
  if (auto it = cache_.find(key); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    ++stats_.cache_hits;
    Rendered hit = it->second.rendered;
    lock.Unlock();
    done(std::move(hit));
    return true;
  }
  if (auto it = in_flight_.find(key); it != in_flight_.end()) {
    ++stats_.coalesced;
    it->second.push_back(std::move(done));
    return true;
  }
  in_flight_[key].push_back(std::move(done));
  return false;
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
  options.at = at;
  RenderAsync(stream, std::move(options), std::move(done));
}

void SnapshotService::AcquireAt(const std::string& stream, FrameTime at,
                                const SnapshotOptions& options, bool publish, Waiter answer) {
  store::FragmentQuery q;
  q.timeline = at.server_timeline ? store::FragmentQuery::Timeline::kServer
                                  : store::FragmentQuery::Timeline::kProducer;
  q.match = store::FragmentQuery::Match::kTouches;
  q.start_ms = q.end_ms = at.at_ms;
  source_.FragmentsAsync(
      stream, q,
      [this, stream, at, options, publish,
       answer = std::move(answer)](Result<std::vector<store::FragmentView>> found) mutable {
        if (!found.ok()) return answer(found.status());
        // The fragment showing |at|: the last to begin at or before it.
        const store::FragmentView* f = found->empty() ? nullptr : &found->back();
        if (f == nullptr || f->frames.empty() || !f->codec)
          return answer(NotFound("no frame of '" + stream + "' at " + FormatIso8601Ms(at.at_ms) +
                                     (at.server_timeline ? " (server time)" : "") + " is retained",
                                 Reason::kNoFrame));
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
        AcquireFragment(stream, options, publish, pick, std::move(answer), std::move(upto));
      });
}

void SnapshotService::RenderPreviewAsync(const std::string& stream, PreviewOptions options,
                                         ImageCallback done) {
  Waiter answer = [done = std::move(done)](Result<Rendered> r) {
    if (!r.ok()) return done(r.status());
    done(*r->image);
  };
  // Once the span's end is known: its fragments, then the cache, then a render.
  auto from_end = [this, stream, options](int64_t end_ms, bool server, Waiter answer) {
    store::FragmentQuery q;
    q.timeline = server ? store::FragmentQuery::Timeline::kServer
                        : store::FragmentQuery::Timeline::kProducer;
    q.match = store::FragmentQuery::Match::kTouches;
    q.start_ms = end_ms - int64_t{options.seconds} * 1000;
    q.end_ms = end_ms;
    source_.FragmentsAsync(
        stream, q,
        [this, stream, options, end_ms,
         answer = std::move(answer)](Result<std::vector<store::FragmentView>> found) mutable {
          if (!found.ok()) return answer(found.status());
          std::erase_if(*found,
                        [](const store::FragmentView& f) { return f.frames.empty() || !f.codec; });
          if (found->empty())
            return answer(NotFound("no frame of '" + stream + "' is retained in the " +
                                       std::to_string(options.seconds) + " s before " +
                                       FormatIso8601Ms(end_ms),
                                   Reason::kNoFrame));
          // Named by the frames it is made of: the same span of the same frames is one entry.
          std::string key = stream + "\npreview:" + ImageFormatName(options.format) + ':' +
                            std::to_string(options.quality) + ':' +
                            std::to_string(options.seconds) + ':' + std::to_string(options.fps) +
                            ':' + std::to_string(options.width) + ':' + std::to_string(end_ms) +
                            (options.at && options.at->server_timeline ? ":s" : "");
          for (const auto& f : *found)
            key += ':' + std::to_string(f.number) + '/' + std::to_string(f.frames.size());
          // Bounded work: every frame of the span's fragments is decoded.
          uint64_t pixels = 0;
          for (const auto& f : *found)
            pixels += static_cast<uint64_t>(f.frames.size()) *
                      static_cast<uint64_t>(std::max(f.codec->width, 0)) *
                      static_cast<uint64_t>(std::max(f.codec->height, 0));
          if (pixels > kMaxPreviewDecodePixels)
            return answer(InvalidArgument("a preview of this span decodes " +
                                              std::to_string(pixels / 1'000'000) +
                                              " million pixels, over the " +
                                              std::to_string(kMaxPreviewDecodePixels / 1'000'000) +
                                              " million a preview may: ask fewer seconds",
                                          Reason::kTooManyPixels));
          if (JoinOrClaim(key, answer)) return;
          WorkerPool& pool = heavy_workers_ ? *heavy_workers_ : workers_;
          bool queued = pool.TryPost(
              [this, key, stream, options, end_ms, fragments = std::move(*found)]() mutable {
                Result<Image> image = RenderPreview(stream, options, fragments, end_ms);
                if (!image.ok()) return Finish(key, image.status());
                Rendered out;
                out.image = std::make_shared<const Image>(std::move(*image));
                Finish(key, std::move(out));
              });
          if (!queued) Abandon(key, Overloaded());
        });
  };
  if (options.at)
    return from_end(options.at->at_ms, options.at->server_timeline, std::move(answer));
  // Ending at the newest frame: its producer time.
  source_.LatestFragmentAsync(stream, [stream, from_end, answer = std::move(answer)](
                                          Result<store::FragmentView> f) mutable {
    if (!f.ok()) return answer(f.status());
    if (f->frames.empty())
      return answer(NotFound("stream '" + stream + "' has no frame yet", Reason::kNoFrame));
    int64_t newest = f->frames.front().pts_ms;
    for (const auto& fr : f->frames) newest = std::max(newest, fr.pts_ms);
    from_end(f->producer_ts_ms + (newest - f->frames.front().pts_ms), false, std::move(answer));
  });
}

Result<Image> SnapshotService::RenderPreview(const std::string& stream,
                                             const PreviewOptions& options,
                                             const std::vector<store::FragmentView>& fragments,
                                             int64_t end_ms) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool server = options.at && options.at->server_timeline;
  const int step_ms = 1000 / options.fps;
  const int samples = options.seconds * options.fps;
  // The moments shown: |samples| of them, |step_ms| apart, the last at |end_ms|.
  int next = 0;
  auto moment = [&](int i) { return end_ms - int64_t{samples - 1 - i} * step_ms; };
  media::EncodeOptions size;
  const auto& codec = *fragments.back().codec;
  // Within a kMaxPreviewWidth square, keeping the frame's shape: a tall frame is
  // bounded by its height, not only its width.
  size.width = options.width > 0 ? options.width : std::min(codec.width, kMaxPreviewWidth);
  size.height = std::max(1, static_cast<int>(std::lround(static_cast<double>(codec.height) *
                                                         size.width / std::max(1, codec.width))));
  if (size.height > kMaxPreviewWidth) {
    size.width =
        std::max(1, static_cast<int>(std::lround(static_cast<double>(codec.width) *
                                                 kMaxPreviewWidth / std::max(1, codec.height))));
    size.height = kMaxPreviewWidth;
  }
  size.quality = options.quality;
  auto encoder = media::AnimationEncoder::Create(options.format == ImageFormat::kGif
                                                     ? media::AnimationFormat::kGif
                                                     : media::AnimationFormat::kWebp,
                                                 size);
  if (!encoder.ok()) return encoder.status();
  // The picture shown now, and how many moments it has been shown for: a frame
  // shown at several moments is one frame of the animation, held that long.
  media::FramePtr shown = media::MakeFrame(), held = media::MakeFrame();
  bool have_shown = false, have_held = false;
  int held_moments = 0;
  int frames = 0;
  // Where the pictures are on the span's timeline; the newest held's producer time and arrival.
  int64_t shown_ms = 0, held_ms = 0;
  int64_t shown_producer_ms = 0, shown_arrival_ms = 0, held_producer_ms = 0, held_arrival_ms = 0;
  Status failed;
  auto show_moment = [&]() -> Status {
    // The moment |next| shows |shown|.
    if (have_held && held->pts == shown->pts && held_ms == shown_ms) {
      ++held_moments;
      return Status::Ok();
    }
    if (have_held) {
      if (Status s = (*encoder)->Add(*held, held_moments * step_ms); !s.ok()) return s;
      ++frames;
    }
    av_frame_unref(held.get());
    if (int rc = av_frame_ref(held.get(), shown.get()); rc < 0)
      return media::AvError(rc, "keeping a frame");
    held_ms = shown_ms;
    held_producer_ms = shown_producer_ms;
    held_arrival_ms = shown_arrival_ms;
    have_held = true;
    held_moments = 1;
    return Status::Ok();
  };
  for (const store::FragmentView& f : fragments) {
    if (next >= samples) break;
    const int64_t begin = server ? f.server_ts_ms : f.producer_ts_ms;
    const int64_t first_pts = f.frames.front().pts_ms;
    // One decoding thread: a preview's decoder holds its own pictures only.
    Status decoded = DecodeEachFrame(f, /*threads=*/1, [&](const AVFrame& picture, int64_t pts) {
      const int64_t at = begin + (pts - first_pts);
      // Every moment before this picture's shows the one before it.
      while (next < samples && moment(next) < at) {
        if (have_shown)
          if (failed = show_moment(); !failed.ok()) return false;
        ++next;
      }
      if (next >= samples) return false;
      av_frame_unref(shown.get());
      if (int rc = av_frame_ref(shown.get(), &picture); rc < 0) {
        failed = media::AvError(rc, "keeping a frame");
        return false;
      }
      shown->pts = pts;
      shown_ms = at;
      shown_producer_ms = f.producer_ts_ms + (pts - first_pts);
      shown_arrival_ms = f.server_ts_ms + (pts - first_pts);
      have_shown = true;
      return true;
    });
    if (!failed.ok()) return failed;
    if (!decoded.ok() && decoded.code() != Code::kMediaError) return decoded;
  }
  // The moments after the last picture decoded show it (up to the span's end).
  while (next < samples && have_shown) {
    if (failed = show_moment(); !failed.ok()) return failed;
    ++next;
  }
  if (!have_held)
    return NotFound("no frame of '" + stream + "' could be decoded in the span asked for",
                    Reason::kNoFrame);
  if (Status s = (*encoder)->Add(*held, held_moments * step_ms); !s.ok()) return s;
  ++frames;
  auto bytes = (*encoder)->Finish();
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() > kMaxPreviewBytes)
    return Status(Code::kTooLarge,
                  "the preview came to " + std::to_string(bytes->size() >> 20) + " MiB, over the " +
                      std::to_string(kMaxPreviewBytes >> 20) +
                      " MiB a preview may be: ask fewer seconds, fewer fps or a smaller width",
                  Reason::kTooLarge);
  spdlog::debug("preview stream={} fragments={} frames={} ms={:.1f}", stream, fragments.size(),
                frames, metrics::SecondsSince(t0) * 1000);
  Image image;
  image.bytes = std::move(*bytes);
  image.format = options.format;
  image.width = (*encoder)->width();
  image.height = (*encoder)->height();
  image.frames = frames;
  image.fragment_number = fragments.back().number;
  image.frame_timestamp_ms = held_producer_ms;  // the last picture's
  image.frame_arrival_ms = held_arrival_ms;
  return image;
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
  out.image.frame_arrival_ms = r.image->frame_arrival_ms;
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
  if (o.format == ImageFormat::kJpeg && o.quality != 80)
    key += "_q" + std::to_string(o.quality);
  else if (o.format != ImageFormat::kJpeg && o.format != ImageFormat::kPng && o.quality != 80)
    key += "_q" + std::to_string(o.quality);
  if (o.width > 0 || o.height > 0)
    key += "_" + std::to_string(image.width) + "x" + std::to_string(image.height);
  if (o.fit != Fit::kFill && o.width > 0 && o.height > 0) key += std::string("_") + FitName(o.fit);
  if (o.rotate_degrees != 0) key += "_r" + std::to_string(o.rotate_degrees);
  if (o.overlay_time) key += "_t";
  return key + "." + ImageExtension(image.format);
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
