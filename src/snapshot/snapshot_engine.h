#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/status.h"

// All that the HTTP layer and the Kinesis Video service see of snapshots: what
// may be asked for (formats, sizes, which frame) and what comes back. The
// decoding and encoding behind it (media/) stay out of their sight.
namespace lastframe::snapshot {

// Stills are JPEG, PNG, WebP or AVIF; previews (animations) WebP or GIF.
enum class ImageFormat { kJpeg, kPng, kWebp, kAvif, kGif };

// How a frame fills a box given by both a width and a height (media::Fit).
enum class Fit { kFill, kContain, kCover };

// "jpeg" / "png" / "webp" / "avif" / "gif"; "image/jpeg" ...; "jpg" / "png" / ...
const char* ImageFormatName(ImageFormat f);
const char* ImageContentType(ImageFormat f);
const char* ImageExtension(ImageFormat f);

// A moment of a stream: the frame shown then is the last one that began at or
// before it, within the fragment that covers it.
struct FrameTime {
  int64_t at_ms = 0;
  bool server_timeline = false;  // the server's arrival times, else the producer's
};

// What to render.
struct SnapshotOptions {
  ImageFormat format = ImageFormat::kJpeg;
  int quality = 80;  // JPEG, WebP and AVIF quality 1..100; ignored for PNG
  // Output size (after rotation); 0 keeps the frame's. One of them alone keeps
  // the frame's shape; both make an image of that size, as |fit| says.
  int width = 0;
  int height = 0;
  Fit fit = Fit::kFill;
  int rotate_degrees = 0;  // 0, 90, 180, 270 clockwise
  // The frame's UTC time and the stream's name burned into a corner.
  bool overlay_time = false;
  // The frame shown at this moment instead of the newest (any retained fragment).
  std::optional<FrameTime> at;
  // The newest fragment's keyframe instead of its newest frame: one frame to
  // decode, the cheapest still, but up to a GOP older.
  bool keyframe_only = false;
  // An explicit size over the server's pixel bound is scaled down to fit it
  // (keeping its shape) instead of refused ("TooManyPixels").
  bool shrink_to_fit = false;
};

// A picture of a stream, encoded.
struct Image {
  std::string bytes;
  ImageFormat format = ImageFormat::kJpeg;
  int width = 0;
  int height = 0;
  int64_t frame_timestamp_ms = 0;  // producer time of the frame (epoch ms)
  // When the frame arrived, on the server's clock: its fragment's arrival plus
  // its offset in the fragment. A frame's age is measured from it, so that a
  // producer's skewed clock cannot make an old frame look new.
  int64_t frame_arrival_ms = 0;
  uint64_t fragment_number = 0;
  int frames = 1;  // an animation's frames
};

// An animated preview of a stream's recent past.
struct PreviewOptions {
  ImageFormat format = ImageFormat::kWebp;  // kWebp or kGif
  int quality = 60;
  int seconds = 5;  // the span shown, ending at the newest frame or at |at|
  int fps = 2;      // frames per second of the preview
  int width = 0;    // 0: the frame's, at most kMaxPreviewWidth
  std::optional<FrameTime> at;
};
inline constexpr int kMaxPreviewSeconds = 30;
inline constexpr int kMaxPreviewFps = 10;
inline constexpr int kMaxPreviewWidth = 1280;

// An image put in the object store, and a signed URL to it.
struct PublishedImage {
  Image image;  // without bytes: callers want the URL
  size_t bytes = 0;
  std::string key;
  std::string url;
  int64_t expires_at_ms = 0;
};

struct WarmDecoderStats {
  uint64_t warm_hits = 0;    // answered by feeding only the frames that were new
  uint64_t resets = 0;       // a new fragment (or first look): decoded from its keyframe
  uint64_t fallbacks = 0;    // streams that reorder frames (B-frames): decoded cold
  uint64_t catch_ups = 0;    // decoders brought forward off a look's path
  uint64_t cold_starts = 0;  // long runs to decode: answered by a multi-threaded cold decode
  size_t decoders = 0;       // alive now
};

struct SnapshotStats {
  uint64_t renders = 0;     // decodes + encodes done
  uint64_t cache_hits = 0;  // answered from the cache (same frame, same options)
  uint64_t coalesced = 0;   // joined a render already in progress
  WarmDecoderStats warm;
};

// Renders stills of streams. Callbacks run exactly once: at once on the
// calling thread when the answer is known (an unknown stream, a cached image),
// else on a thread of the engine's; never is a caller's thread made to decode
// or encode. A full worker queue gives Overloaded.
class SnapshotEngine {
 public:
  virtual ~SnapshotEngine() = default;

  using ImageCallback = std::function<void(Result<Image>)>;
  using PublishCallback = std::function<void(Result<PublishedImage>)>;

  // The newest frame of |stream| (or the one shown at |options.at|).
  virtual void RenderAsync(const std::string& stream, SnapshotOptions options,
                           ImageCallback done) = 0;
  // As RenderAsync, then put in the object store and presigned for
  // |expires_s| seconds (1..604800).
  virtual void PublishAsync(const std::string& stream, SnapshotOptions options, int64_t expires_s,
                            PublishCallback done) = 0;
  // The frame shown at |at|: NotFound ("NoFrame") when no retained fragment
  // covers that moment.
  virtual void RenderAtAsync(const std::string& stream, FrameTime at, SnapshotOptions options,
                             ImageCallback done) = 0;
  // An animation of |stream|'s retained frames: NotFound ("NoFrame") when none
  // is retained in the span asked for.
  virtual void RenderPreviewAsync(const std::string& stream, PreviewOptions options,
                                  ImageCallback done) = 0;

  virtual SnapshotStats stats() const = 0;
};

}  // namespace lastframe::snapshot
