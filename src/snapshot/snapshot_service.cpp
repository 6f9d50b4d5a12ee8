#include "snapshot/snapshot_service.h"

#include "snapshot/frame_decoder.h"

namespace lastframe::snapshot {
namespace {

Status Overloaded() {
  return Status(Code::kOverloaded, "too many snapshots in progress; retry shortly", "Overloaded");
}

}  // namespace

SnapshotService::SnapshotService(const store::StreamSource& source, objects::ObjectStore& objects,
                                 WorkerPool& workers, const Clock& clock)
    : source_(source), objects_(objects), workers_(workers), clock_(clock) {}

Result<Image> SnapshotService::Render(const std::string& stream,
                                      const media::EncodeOptions& options) const {
  Result<store::FragmentView> fragment = source_.LatestFragment(stream);
  if (!fragment.ok()) return fragment.status();
  Result<media::FramePtr> frame = DecodeNewestFrame(*fragment);
  if (!frame.ok()) return frame.status();
  const AVFrame& f = **frame;
  media::EncodeOptions fitted = options;
  media::FitSize(f.width, f.height, options.width, options.height, &fitted.width, &fitted.height);
  Result<media::EncodedImage> encoded = media::EncodeImage(f, fitted);
  if (!encoded.ok()) return encoded.status();
  Image image;
  image.bytes = std::move(encoded->bytes);
  image.format = encoded->format;
  image.width = encoded->width;
  image.height = encoded->height;
  image.fragment_number = fragment->number;
  int64_t first_pts = fragment->frames.front().pts_ms;
  image.frame_timestamp_ms = fragment->producer_ts_ms + (f.pts - first_pts);
  return image;
}

Status SnapshotService::RenderAsync(const std::string& stream, media::EncodeOptions options,
                                    ImageCallback done) {
  bool queued = workers_.TryPost(
      [this, stream, options, done = std::move(done)] { done(Render(stream, options)); });
  return queued ? Status::Ok() : Overloaded();
}

Status SnapshotService::PublishAsync(const std::string& stream, media::EncodeOptions options,
                                     int64_t expires_s, PublishCallback done) {
  bool queued = workers_.TryPost([this, stream, options, expires_s, done = std::move(done)] {
    done(Publish(stream, options, expires_s));
  });
  return queued ? Status::Ok() : Overloaded();
}

Result<PublishedImage> SnapshotService::Publish(const std::string& stream,
                                                const media::EncodeOptions& options,
                                                int64_t expires_s) {
  Result<Image> image = Render(stream, options);
  if (!image.ok()) return image.status();
  PublishedImage out;
  out.key = ObjectKey(stream, *image, options);
  LF_RETURN_IF_ERROR(
      objects_.Put(out.key, image->bytes, media::ImageContentType(image->format)));
  Result<std::string> url = objects_.PresignGet(out.key, expires_s);
  if (!url.ok()) return url.status();
  out.url = std::move(*url);
  out.expires_at_ms = clock_.NowMs() + expires_s * 1000;
  out.bytes = image->bytes.size();
  out.image = std::move(*image);
  out.image.bytes.clear();
  return out;
}

std::string SnapshotService::ObjectKey(const std::string& stream, const Image& image,
                                       const media::EncodeOptions& options) {
  std::string key = "snapshots/" + stream + "/" + std::to_string(image.frame_timestamp_ms);
  if (options.format == media::ImageFormat::kJpeg && options.quality != 80)
    key += "_q" + std::to_string(options.quality);
  if (options.width > 0 || options.height > 0)
    key += "_" + std::to_string(image.width) + "x" + std::to_string(image.height);
  return key + "." + media::ImageExtension(image.format);
}

}  // namespace lastframe::snapshot
