#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "core/worker_pool.h"
#include "media/image_encoder.h"
#include "objects/object_store.h"
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
  Image image;  // bytes cleared after upload: callers want the URL
  size_t bytes = 0;
  std::string key;
  std::string url;
  int64_t expires_at_ms = 0;
};

// Takes the newest frame of a stream: reads the latest fragment from a
// StreamSource, decodes and encodes on the worker pool (never on the
// caller's thread), and optionally publishes to an ObjectStore.
class SnapshotService {
 public:
  SnapshotService(const store::StreamSource& source, objects::ObjectStore& objects,
                  WorkerPool& workers, const Clock& clock);

  // Renders synchronously on the calling thread (for workers and tests).
  Result<Image> Render(const std::string& stream, const media::EncodeOptions& options) const;

  using ImageCallback = std::function<void(Result<Image>)>;
  using PublishCallback = std::function<void(Result<PublishedImage>)>;

  // Queues a render; |done| runs on a worker thread. Returns Overloaded (and
  // never calls |done|) when the worker queue is full.
  Status RenderAsync(const std::string& stream, media::EncodeOptions options, ImageCallback done);
  // Queues a render, a Put and a presign (|expires_s| 1..604800).
  Status PublishAsync(const std::string& stream, media::EncodeOptions options, int64_t expires_s,
                      PublishCallback done);

  // The object key of an image: "snapshots/<stream>/<frame ms>.jpg", with
  // "_q<quality>" and "_<w>x<h>" added when they differ from the defaults.
  static std::string ObjectKey(const std::string& stream, const Image& image,
                               const media::EncodeOptions& options);

 private:
  Result<PublishedImage> Publish(const std::string& stream, const media::EncodeOptions& options,
                                 int64_t expires_s);

  const store::StreamSource& source_;
  objects::ObjectStore& objects_;
  WorkerPool& workers_;
  const Clock& clock_;
};

}  // namespace lastframe::snapshot
