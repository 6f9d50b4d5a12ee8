#include "kvs/image_generation.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "objects/object_store.h"
#include "snapshot/scheduled_images.h"

namespace lastframe::kvs {

using nlohmann::json;

json ImageGenerationJson(const ImageGenerationConfig& c) {
  json j = {{"Status", c.enabled ? "ENABLED" : "DISABLED"},
            {"ImageSelectorType", c.server_timestamps ? "SERVER_TIMESTAMP" : "PRODUCER_TIMESTAMP"},
            {"DestinationConfig", {{"Uri", c.uri}, {"DestinationRegion", c.destination_region}}},
            {"SamplingInterval", c.sampling_interval_ms},
            {"Format", c.format == snapshot::ImageFormat::kPng ? "PNG" : "JPEG"}};
  if (c.jpeg_quality) j["FormatConfig"] = {{"JPEGQuality", std::to_string(*c.jpeg_quality)}};
  if (c.width) j["WidthPixels"] = *c.width;
  if (c.height) j["HeightPixels"] = *c.height;
  return j;
}

Result<ImageGenerationConfig> ImageGenerationFromJson(const json& j) {
  // Written by ImageGenerationJson after the API validated it: a mismatch
  // means the file was edited by hand, which is refused rather than guessed.
  try {
    ImageGenerationConfig c;
    c.enabled = j.at("Status").get<std::string>() == "ENABLED";
    c.server_timestamps = j.at("ImageSelectorType").get<std::string>() != "PRODUCER_TIMESTAMP";
    c.uri = j.at("DestinationConfig").at("Uri").get<std::string>();
    c.destination_region = j.at("DestinationConfig").at("DestinationRegion").get<std::string>();
    c.sampling_interval_ms = j.at("SamplingInterval").get<int64_t>();
    c.format = j.at("Format").get<std::string>() == "PNG" ? snapshot::ImageFormat::kPng
                                                          : snapshot::ImageFormat::kJpeg;
    if (j.contains("FormatConfig")) {
      const std::string q = j["FormatConfig"].at("JPEGQuality").get<std::string>();
      int quality = 0;
      auto [end, ec] = std::from_chars(q.data(), q.data() + q.size(), quality);
      if (ec != std::errc() || end != q.data() + q.size())
        return InvalidArgument("JPEGQuality '" + q + "' is not a number");
      c.jpeg_quality = quality;
    }
    if (j.contains("WidthPixels")) c.width = j["WidthPixels"].get<int>();
    if (j.contains("HeightPixels")) c.height = j["HeightPixels"].get<int>();
    return c;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("not an image generation configuration: ") + e.what());
  }
}

Result<std::string> ImageKeyPrefix(const ImageGenerationConfig& config, const std::string& bucket) {
  const std::string& uri = config.uri;
  const std::string want = "s3://" + bucket;
  if (uri.size() > 255 || !(uri == want || uri.starts_with(want + "/")))
    return InvalidArgument("DestinationConfig.Uri must name this server's object store: " + want +
                           "[/PREFIX]");
  std::string prefix = uri.size() > want.size() + 1 ? uri.substr(want.size() + 1) : "";
  if (!prefix.empty())
    if (Status s = objects::ValidateObjectKey(prefix); !s.ok())
      return InvalidArgument("DestinationConfig.Uri: " + s.message());
  return prefix;
}

snapshot::ImageSchedule ImageScheduleOf(const ImageGenerationConfig& config,
                                        const std::string& key_prefix) {
  snapshot::ImageSchedule schedule;
  schedule.sampling_interval_ms = config.sampling_interval_ms;
  schedule.producer_timestamps = !config.server_timestamps;
  schedule.encode.format = config.format;
  if (config.jpeg_quality) schedule.encode.quality = *config.jpeg_quality;
  schedule.encode.width = config.width.value_or(0);
  schedule.encode.height = config.height.value_or(0);
  schedule.key_prefix = key_prefix;
  return schedule;
}

}  // namespace lastframe::kvs
