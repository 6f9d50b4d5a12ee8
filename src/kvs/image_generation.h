#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "core/status.h"
#include "snapshot/snapshot_engine.h"

// Kinesis Video's image generation (UpdateImageGenerationConfiguration): the
// typed configuration, how the stream registry keeps it, and the schedule it
// becomes for snapshot::ScheduledImages.
namespace lastframe::snapshot {
struct ImageSchedule;
}

namespace lastframe::kvs {

// Kinesis Video's bounds on image generation and GetImages.
inline constexpr int64_t kMinSamplingIntervalMs = 3000;
inline constexpr int64_t kMaxSamplingIntervalMs = 20000;
inline constexpr int kMaxImageWidth = 3840;
inline constexpr int kMaxImageHeight = 2160;

// One stream's image generation, as the API sets it.
struct ImageGenerationConfig {
  bool enabled = false;           // Status: ENABLED or DISABLED
  bool server_timestamps = true;  // ImageSelectorType: SERVER_TIMESTAMP, else PRODUCER_TIMESTAMP
  std::string uri;                // DestinationConfig.Uri: s3://BUCKET[/PREFIX]
  std::string destination_region;
  int64_t sampling_interval_ms = kMinSamplingIntervalMs;
  snapshot::ImageFormat format = snapshot::ImageFormat::kJpeg;
  std::optional<int> jpeg_quality;  // FormatConfig.JPEGQuality (1..100)
  std::optional<int> width;         // WidthPixels; absent: the stream's (or kept in shape)
  std::optional<int> height;        // HeightPixels

  bool operator==(const ImageGenerationConfig&) const = default;
};

// |config| in Kinesis Video's JSON form (ImageGenerationConfiguration), which
// is also how the stream registry keeps it: only the fields that were set.
nlohmann::json ImageGenerationJson(const ImageGenerationConfig& config);
// The configuration kept as ImageGenerationJson wrote it (or as an older
// registry kept the request's JSON). InvalidArgument when |j| is not one.
Result<ImageGenerationConfig> ImageGenerationFromJson(const nlohmann::json& j);

// The object key prefix that |config|'s Uri names under s3://|bucket|: ""
// or "cams/x". InvalidArgument unless the Uri is s3://|bucket| or
// s3://|bucket|/PREFIX with PREFIX a valid object key (255 characters at most).
Result<std::string> ImageKeyPrefix(const ImageGenerationConfig& config, const std::string& bucket);

// What snapshot::ScheduledImages does for |config|, images going under |key_prefix|.
snapshot::ImageSchedule ImageScheduleOf(const ImageGenerationConfig& config,
                                        const std::string& key_prefix);

}  // namespace lastframe::kvs
