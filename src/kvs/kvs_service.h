#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/worker_pool.h"
#include "kvs/get_media.h"
#include "kvs/image_generation.h"
#include "kvs/stream_registry.h"
#include "snapshot/snapshot_engine.h"
#include "store/stream_source.h"
#include "store/stream_store.h"

namespace lastframe::snapshot {
class ScheduledImages;
}

// Kinesis Video Streams' operations as typed calls: requests and results are
// plain structs, errors are Statuses with our own reasons (the HTTP layer,
// http::KvsApi, maps them to Kinesis Video's error names). Bounds that Kinesis
// Video documents are checked here; the shape of each field is the caller's.
namespace lastframe::kvs {

inline constexpr int64_t kMaxRetentionHours = 87'600;  // 10 years
inline constexpr size_t kMaxTags = 50;
inline constexpr size_t kMaxListFragments = 1000;  // MaxResults, and a list's fragment numbers
inline constexpr size_t kMaxStreamsListed = 10000;
inline constexpr size_t kMaxImagesListed = 100;
inline constexpr size_t kMaxClipFragments = 200;
inline constexpr size_t kMaxClipBytes = 100 * 1024 * 1024;
inline constexpr size_t kMaxFragmentListBytes = 100 * 1024 * 1024;

struct KvsServiceOptions {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";  // in ARNs
  std::string public_url;                   // what GetDataEndpoint answers
  std::string images_bucket;                // image generation writes only here
  int64_t default_retention_ms = 60'000;    // the store's, for DataRetentionInHours 0
  size_t max_get_media_per_stream = 10;
};

// A stream as a request names it: by name, by ARN, or both (then they must agree).
struct StreamRef {
  std::optional<std::string> name;
  std::optional<std::string> arn;
};

// DescribeStream's StreamInfo.
struct StreamDescription {
  std::string name;
  std::string arn;
  uint64_t version = 1;
  int64_t creation_ms = 0;
  int64_t retention_hours = 0;
  std::string device_name;  // "" when not set
  std::string media_type;   // as created, else the codec's ("video/h264"), else ""
  std::string kms_key_id;
};

struct CreateStreamRequest {
  std::string name;
  std::string device_name, media_type, kms_key_id;  // "" when not given
  int64_t retention_hours = 0;                      // 0: the server's live window
  size_t tags = 0;                                  // how many tags were asked for
};

struct ListStreamsRequest {
  std::string prefix;  // StreamNameCondition BEGINS_WITH
  std::string after;   // names after this one (a previous page's last)
  size_t max_results = kMaxStreamsListed;
};
struct ListStreamsResult {
  std::vector<StreamDescription> streams;  // by name
  std::optional<std::string> last;         // set when more follow: pass as |after|
};

struct DeleteStreamRequest {
  StreamRef stream;
  std::optional<std::string> current_version;
};

struct UpdateDataRetentionRequest {
  StreamRef stream;
  std::string current_version;
  bool increase = true;
  int64_t change_hours = 0;  // 1..kMaxRetentionHours
};

struct UpdateImageGenerationRequest {
  StreamRef stream;
  std::optional<ImageGenerationConfig> config;  // none: image generation is removed
};

// A time range on the producer's or the server's timeline, both ends included.
struct TimeRange {
  bool server = false;
  int64_t start_ms = 0, end_ms = 0;
};

// ListFragments' Fragment.
struct FragmentInfo {
  uint64_t number = 0;
  size_t bytes = 0;
  int64_t producer_ts_ms = 0;
  int64_t server_ts_ms = 0;
  int64_t duration_ms = 0;
};

struct ListFragmentsRequest {
  StreamRef stream;
  std::optional<TimeRange> range;  // fragments that begin within it; none: all
  uint64_t first_number = 0;       // from a previous page's |next_number|
  size_t max_results = kMaxListFragments;
};
struct ListFragmentsResult {
  std::vector<FragmentInfo> fragments;  // complete ones, oldest first
  std::optional<uint64_t> next_number;  // set when more follow
};

struct GetMediaForFragmentListRequest {
  StreamRef stream;
  std::vector<uint64_t> numbers;  // 1..kMaxListFragments
};

struct GetClipRequest {
  StreamRef stream;
  TimeRange range;  // start before end
};
struct ClipResult {
  std::string mp4;
  // Kinesis Video truncates a clip silently; this says where ("" when whole).
  std::string truncated;
};

struct GetImagesRequest {
  StreamRef stream;
  bool server = false;  // the server's timeline, else the producer's
  int64_t start_ms = 0, end_ms = 0;
  int64_t first_ms = 0;  // start_ms, or a previous page's |next_ms|
  int64_t interval_ms = kMinSamplingIntervalMs;
  size_t max_results = kMaxImagesListed;
  snapshot::SnapshotOptions image;
};
struct SampledImage {
  enum class Error { kNone, kNoMedia, kMediaError };
  int64_t time_ms = 0;
  Error error = Error::kNone;
  std::string bytes;  // the image, when no error
};
struct GetImagesResult {
  std::vector<SampledImage> images;  // one per sampled time, in order
  std::optional<int64_t> next_ms;    // set when more times follow in the range
};

struct GetMediaRequest {
  StreamRef stream;
  StartSelector start;
};

// Kinesis Video's operations over this server's streams: the control plane on
// the embedded store and the registry; the archived-media reads through the
// stream source (the store, or a remote endpoint under --source kvs); GetMedia
// live from the store. Thread-safe. Reasons: StreamNotFound, StreamExists,
// StreamBusy, TooManyStreams, TooManyTags, VersionMismatch, NoDataRetention,
// FragmentNotFound, NoFragments, TooManyGetMediaConnections; Overloaded when
// the workers' queue is full; InvalidArgument for a value out of bounds.
class KvsService {
 public:
  // |engine| (may be null: GetImages is then Unavailable) renders GetImages;
  // |images| (may be null: image generation is refused) writes image generation's.
  KvsService(store::StreamStore& streams, const store::StreamSource& source,
             StreamRegistry& registry, snapshot::SnapshotEngine* engine,
             snapshot::ScheduledImages* images, WorkerPool& workers, const Clock& clock,
             KvsServiceOptions options);
  ~KvsService();  // ends and joins GetMedia sessions

  const KvsServiceOptions& options() const { return options_; }

  // CreateStream: the new stream's ARN.
  Result<std::string> CreateStream(const CreateStreamRequest& request);
  Result<StreamDescription> DescribeStream(const StreamRef& stream);
  Result<ListStreamsResult> ListStreams(const ListStreamsRequest& request);
  Status DeleteStream(const DeleteStreamRequest& request);
  Status UpdateDataRetention(const UpdateDataRetentionRequest& request);
  // GetDataEndpoint: this server's public URL (it answers every API).
  Result<std::string> GetDataEndpoint(const StreamRef& stream);
  Status UpdateImageGeneration(const UpdateImageGenerationRequest& request);
  // The stream's configuration as last set (DISABLED included); none when never set or removed.
  Result<std::optional<ImageGenerationConfig>> DescribeImageGeneration(const StreamRef& stream);
  // Applies every stream's saved image generation (call once at start).
  void RestoreImageGeneration();

  // The archived-media reads answer through |done| exactly once: at once when
  // the answer is known, else from a worker (or the source's own thread).
  using ListFragmentsCallback = std::function<void(Result<ListFragmentsResult>)>;
  using MediaCallback = std::function<void(Result<std::string>)>;
  using ClipCallback = std::function<void(Result<ClipResult>)>;
  using ImagesCallback = std::function<void(Result<GetImagesResult>)>;
  void ListFragments(const ListFragmentsRequest& request, ListFragmentsCallback done);
  // The fragments as Kinesis Video chunks (Matroska documents), one after another.
  void GetMediaForFragmentList(const GetMediaForFragmentListRequest& request, MediaCallback done);
  // An MP4 of the fragments overlapping the range: the first 200 or 100 MB of them.
  void GetClip(const GetClipRequest& request, ClipCallback done);
  void GetImages(const GetImagesRequest& request, ImagesCallback done);

  // GetMedia: a session's place; Start it with the response's sink.
  Result<MediaFollowers::Session> GetMedia(const GetMediaRequest& request);
  // Ends the GetMedia sessions now (server stop).
  void Shutdown();

 private:
  // The stream |ref| names. With |here|, it must be in the embedded store;
  // else (range reads) the source says whether it exists. A stream named by
  // ARN must be this server's in any case (its creation time is ours).
  Result<std::string> Resolve(const StreamRef& ref, bool here) const;
  std::string Arn(const StreamMeta& meta) const;
  // The stream's metadata, made now for a stream the control plane has not seen.
  StreamMeta MetaOf(const std::string& name);
  // DataRetentionInHours as described: as set, else the stream's retention in hours.
  int64_t RetentionHours(const StreamMeta& meta) const;
  StreamDescription Describe(const std::string& name);
  Status CheckVersion(const StreamMeta& meta, const std::string& version) const;
  // Applies |config| to the image scheduler; InvalidArgument for a Uri not ours.
  Status Schedule(const std::string& stream, const ImageGenerationConfig& config);
  // Posts |work| to the workers; Overloaded through |fail| when the queue is full.
  void Post(std::function<void()> work, const std::function<void(Status)>& fail);

  store::StreamStore& streams_;
  const store::StreamSource& source_;
  StreamRegistry& registry_;
  snapshot::SnapshotEngine* const engine_;
  snapshot::ScheduledImages* const images_;
  WorkerPool& workers_;
  const Clock& clock_;
  const KvsServiceOptions options_;
  MediaFollowers followers_;
};

}  // namespace lastframe::kvs
