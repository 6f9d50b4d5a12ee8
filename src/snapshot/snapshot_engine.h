#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"

// All that the HTTP layer and the Kinesis Video service see of snapshots: what
// may be asked for (formats, sizes, which frame) and what comes back. The
// decoding and encoding behind it (media/) stay out of their sight.
namespace lastframe::snapshot {

enum class ImageFormat { kJpeg, kPng };

// "jpeg" / "png"; "image/jpeg" / "image/png"; "jpg" / "png".
const char* ImageFormatName(ImageFormat f);
const char* ImageContentType(ImageFormat f);
const char* ImageExtension(ImageFormat f);

// What to render.
struct SnapshotOptions {
  ImageFormat format = ImageFormat::kJpeg;
  int quality = 80;  // JPEG quality 1..100; ignored for PNG
  // Output size; 0 keeps the frame's. One of them alone keeps the frame's
  // shape; both fit the frame within them, keeping its shape.
  int width = 0;
  int height = 0;
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

// A moment of a stream: the frame shown then is the last one that began at or
// before it, within the fragment that covers it.
struct FrameTime {
  int64_t at_ms = 0;
  bool server_timeline = false;  // the server's arrival times, else the producer's
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

  // The newest frame of |stream|.
  virtual void RenderAsync(const std::string& stream, SnapshotOptions options,
                           ImageCallback done) = 0;
  // As RenderAsync, then put in the object store and presigned for
  // |expires_s| seconds (1..604800).
  virtual void PublishAsync(const std::string& stream, SnapshotOptions options, int64_t expires_s,
                            PublishCallback done) = 0;
  // The frame shown at |at|: NotFound ("NoMedia") when no retained fragment
  // covers that moment.
  virtual void RenderAtAsync(const std::string& stream, FrameTime at, SnapshotOptions options,
                             ImageCallback done) = 0;

  virtual SnapshotStats stats() const = 0;
};

}  // namespace lastframe::snapshot
