#include "http/kvs_operations.h"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "core/encoding.h"
#include "core/time_format.h"
#include "http/kvs_api.h"

namespace lastframe::http::kvs_ops {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

Status Invalid(const std::string& message) { return InvalidArgument(message); }

// A decimal number that fits 64 bits (signs, spaces and overflow refused).
std::optional<uint64_t> ParseU64(const std::string& s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Typed access to a request body's fields, each error naming the field.
Result<std::optional<std::string>> OptString(const json& body, const char* key, size_t max_len) {
  if (!body.contains(key) || body[key].is_null()) return std::optional<std::string>();
  if (!body[key].is_string()) return Invalid(std::string(key) + " must be a string");
  std::string v = body[key].get<std::string>();
  if (v.empty() || v.size() > max_len)
    return Invalid(std::string(key) + " must be 1 to " + std::to_string(max_len) +
                   " characters long");
  return std::optional<std::string>(std::move(v));
}

Result<std::optional<int64_t>> OptInt(const json& body, const char* key, int64_t min, int64_t max) {
  if (!body.contains(key) || body[key].is_null()) return std::optional<int64_t>();
  const json& v = body[key];
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max)
    return Invalid(std::string(key) + " must be an integer from " + std::to_string(min) + " to " +
                   std::to_string(max));
  return std::optional<int64_t>(v.get<int64_t>());
}

// A timestamp as the SDKs send them: epoch seconds (fractions allowed), or
// an ISO 8601 string.
Result<int64_t> TimestampMs(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return Invalid(std::string(key) + " is required");
  const json& v = body[key];
  if (v.is_number()) {
    if (auto t = EpochSecondsToMs(v.get<double>())) return *t;
    return Invalid(std::string(key) + " must be epoch seconds from 1970 to 9999");
  }
  if (v.is_string())
    if (auto t = ParseTimestampMs(v.get<std::string>())) return *t;
  return Invalid(std::string(key) + " must be epoch seconds or an ISO 8601 time, 1970 to 9999");
}

// A NextToken this server gave: base64 of a decimal number.
Result<uint64_t> NumberToken(const std::string& token) {
  auto decoded = Base64Decode(token);
  auto number = decoded ? ParseU64(*decoded) : std::nullopt;
  if (!number) return Invalid("NextToken is not one this server gave");
  return *number;
}
std::string NumberToken(uint64_t n) { return Base64Encode(std::to_string(n)); }

// The stream a body names: StreamName, StreamARN or both.
Result<kvs::StreamRef> StreamRefOf(const json& body) {
  auto name = OptString(body, "StreamName", 256);
  if (!name.ok()) return name.status();
  auto arn = OptString(body, "StreamARN", 1024);
  if (!arn.ok()) return arn.status();
  return kvs::StreamRef{*name, *arn};
}

// {"FragmentSelectorType": ..., "TimestampRange": {"StartTimestamp", "EndTimestamp"}}
Result<kvs::TimeRange> ParseSelector(const json& body, const char* key) {
  if (!body.contains(key) || !body[key].is_object())
    return Invalid(std::string(key) + " is required (FragmentSelectorType, TimestampRange)");
  const json& sel = body[key];
  kvs::TimeRange r;
  const json type = sel.value("FragmentSelectorType", json());
  if (type == "SERVER_TIMESTAMP")
    r.server = true;
  else if (type != "PRODUCER_TIMESTAMP")
    return Invalid("FragmentSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP");
  if (!sel.contains("TimestampRange") || !sel["TimestampRange"].is_object())
    return Invalid("TimestampRange is required (StartTimestamp, EndTimestamp)");
  auto start = TimestampMs(sel["TimestampRange"], "StartTimestamp");
  if (!start.ok()) return start.status();
  auto end = TimestampMs(sel["TimestampRange"], "EndTimestamp");
  if (!end.ok()) return end.status();
  if (*end < *start) return Invalid("The EndTimestamp must not be before the StartTimestamp.");
  r.start_ms = *start;
  r.end_ms = *end;
  return r;
}

// An image's Format, FormatConfig, WidthPixels and HeightPixels (GetImages
// and image generation alike).
struct ImageFields {
  snapshot::ImageFormat format = snapshot::ImageFormat::kJpeg;
  std::optional<int> quality, width, height;
};
Result<ImageFields> ParseImageFields(const json& obj) {
  ImageFields f;
  const json format = obj.value("Format", json());
  if (format != "JPEG" && format != "PNG") return Invalid("Format must be JPEG or PNG");
  f.format = format == "PNG" ? snapshot::ImageFormat::kPng : snapshot::ImageFormat::kJpeg;
  if (obj.contains("FormatConfig")) {
    const json& fc = obj["FormatConfig"];
    if (!fc.is_object() || fc.size() != 1 || !fc.contains("JPEGQuality") ||
        !fc["JPEGQuality"].is_string())
      return Invalid("FormatConfig may hold only JPEGQuality, a string from 1 to 100");
    auto q = ParseU64(fc["JPEGQuality"].get<std::string>());
    if (!q || *q < 1 || *q > 100) return Invalid("JPEGQuality must be from 1 to 100");
    f.quality = static_cast<int>(*q);
  }
  auto width = OptInt(obj, "WidthPixels", 1, kvs::kMaxImageWidth);
  if (!width.ok()) return width.status();
  auto height = OptInt(obj, "HeightPixels", 1, kvs::kMaxImageHeight);
  if (!height.ok()) return height.status();
  if (*width) f.width = static_cast<int>(**width);
  if (*height) f.height = static_cast<int>(**height);
  return f;
}

Result<int64_t> SamplingInterval(const json& obj, const char* missing) {
  auto interval =
      OptInt(obj, "SamplingInterval", kvs::kMinSamplingIntervalMs, kvs::kMaxSamplingIntervalMs);
  if (!interval.ok()) return interval.status();
  if (!*interval) return Invalid(missing);
  return **interval;
}

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

Response JsonOk(const json& j) {
  Response res = JsonResponse(200, JsonText(j));
  res.set("x-amzn-RequestId", RequestId());
  return res;
}

// An empty JSON object for a Status::Ok(), else the error.
Response Answer(const Status& s) { return s.ok() ? JsonOk(json::object()) : KvsErrorOf(s); }

Response MediaOk(std::string bytes, const char* content_type) {
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, content_type);
  res.set("x-amzn-RequestId", RequestId());
  res.body() = std::move(bytes);
  return res;
}

json StreamInfoJson(const kvs::StreamDescription& d) {
  json j = {{"StreamName", d.name},
            {"StreamARN", d.arn},
            {"Version", std::to_string(d.version)},
            {"Status", "ACTIVE"},
            {"CreationTime", Seconds(d.creation_ms)},
            {"DataRetentionInHours", d.retention_hours}};
  if (!d.device_name.empty()) j["DeviceName"] = d.device_name;
  if (!d.media_type.empty()) j["MediaType"] = d.media_type;
  if (!d.kms_key_id.empty()) j["KmsKeyId"] = d.kms_key_id;
  return j;
}

// ImageGenerationConfiguration, checked field by field.
Result<kvs::ImageGenerationConfig> ParseImageGeneration(const json& cfg) {
  if (!cfg.is_object()) return Invalid("ImageGenerationConfiguration must be an object");
  kvs::ImageGenerationConfig c;
  const json status = cfg.value("Status", json());
  if (status != "ENABLED" && status != "DISABLED")
    return Invalid("Status must be ENABLED or DISABLED");
  c.enabled = status == "ENABLED";
  const json selector = cfg.value("ImageSelectorType", json());
  if (selector != "SERVER_TIMESTAMP" && selector != "PRODUCER_TIMESTAMP")
    return Invalid("ImageSelectorType must be SERVER_TIMESTAMP or PRODUCER_TIMESTAMP");
  c.server_timestamps = selector == "SERVER_TIMESTAMP";
  const json dest = cfg.value("DestinationConfig", json());
  if (!dest.is_object() || !dest.contains("Uri") || !dest["Uri"].is_string() ||
      !dest.contains("DestinationRegion") || !dest["DestinationRegion"].is_string())
    return Invalid("DestinationConfig {Uri, DestinationRegion} is required");
  c.uri = dest["Uri"].get<std::string>();
  c.destination_region = dest["DestinationRegion"].get<std::string>();
  auto interval = SamplingInterval(cfg, "SamplingInterval is required");
  if (!interval.ok()) return interval.status();
  c.sampling_interval_ms = *interval;
  auto image = ParseImageFields(cfg);
  if (!image.ok()) return image.status();
  c.format = image->format;
  c.jpeg_quality = image->quality;
  c.width = image->width;
  c.height = image->height;
  return c;
}

// GetMedia's StartSelector.
Result<kvs::StartSelector> ParseStartSelector(const json& body) {
  using Type = kvs::StartSelector::Type;
  const json sel = body.value("StartSelector", json());
  if (!sel.is_object()) return Invalid("StartSelector is required");
  const json type = sel.value("StartSelectorType", json());
  kvs::StartSelector s;
  if (type == "NOW") {
    s.type = Type::kNow;
  } else if (type == "EARLIEST") {
    s.type = Type::kEarliest;
  } else if (type == "FRAGMENT_NUMBER" || type == "CONTINUATION_TOKEN") {
    const bool by_number = type == "FRAGMENT_NUMBER";
    const char* key = by_number ? "AfterFragmentNumber" : "ContinuationToken";
    const json v = sel.value(key, json());
    auto parsed = v.is_string() ? ParseU64(v.get<std::string>()) : std::nullopt;
    if (!parsed || *parsed == UINT64_MAX)
      return Invalid(std::string(key) + " (a fragment number) is required");
    s.type = by_number ? Type::kFragmentNumber : Type::kContinuationToken;
    s.number = *parsed;
  } else if (type == "SERVER_TIMESTAMP" || type == "PRODUCER_TIMESTAMP") {
    auto t = TimestampMs(sel, "StartTimestamp");
    if (!t.ok()) return t.status();
    s.type = type == "SERVER_TIMESTAMP" ? Type::kServerTimestamp : Type::kProducerTimestamp;
    s.timestamp_ms = *t;
  } else {
    return Invalid(
        "StartSelectorType must be FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, "
        "EARLIEST or CONTINUATION_TOKEN");
  }
  return s;
}

}  // namespace

std::string RequestId() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  return HexEncode(std::string(reinterpret_cast<char*>(raw), sizeof raw));
}

Response CreateStream(kvs::KvsService& kvs, const json& body) {
  auto name = OptString(body, "StreamName", 256);
  if (!name.ok()) return KvsErrorOf(name.status());
  if (!*name) return KvsErrorOf(Invalid("StreamName is required"));
  kvs::CreateStreamRequest r;
  r.name = **name;
  for (auto [key, slot, max] : {std::tuple{"DeviceName", &r.device_name, size_t{128}},
                                std::tuple{"MediaType", &r.media_type, size_t{128}},
                                std::tuple{"KmsKeyId", &r.kms_key_id, size_t{2048}}}) {
    auto v = OptString(body, key, max);
    if (!v.ok()) return KvsErrorOf(v.status());
    if (*v) *slot = **v;
  }
  auto hours = OptInt(body, "DataRetentionInHours", 0, kvs::kMaxRetentionHours);
  if (!hours.ok()) return KvsErrorOf(hours.status());
  r.retention_hours = hours->value_or(0);
  if (body.contains("Tags")) {
    if (!body["Tags"].is_object())
      return KvsErrorOf(Invalid("Tags must be a map of at most 50 tags"));
    r.tags = body["Tags"].size();
  }
  auto arn = kvs.CreateStream(r);
  if (!arn.ok()) return KvsErrorOf(arn.status());
  return JsonOk({{"StreamARN", *arn}});
}

Response DescribeStream(kvs::KvsService& kvs, const json& body) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return KvsErrorOf(ref.status());
  auto d = kvs.DescribeStream(*ref);
  if (!d.ok()) return KvsErrorOf(d.status());
  return JsonOk({{"StreamInfo", StreamInfoJson(*d)}});
}

Response ListStreams(kvs::KvsService& kvs, const json& body) {
  kvs::ListStreamsRequest r;
  auto max = OptInt(body, "MaxResults", 1, kvs::kMaxStreamsListed);
  if (!max.ok()) return KvsErrorOf(max.status());
  r.max_results = static_cast<size_t>(max->value_or(kvs::kMaxStreamsListed));
  if (body.contains("StreamNameCondition")) {
    const json& c = body["StreamNameCondition"];
    if (!c.is_object() || c.value("ComparisonOperator", json()) != "BEGINS_WITH" ||
        !c.contains("ComparisonValue") || !c["ComparisonValue"].is_string())
      return KvsErrorOf(Invalid(
          "StreamNameCondition must be {ComparisonOperator: BEGINS_WITH, ComparisonValue}"));
    r.prefix = c["ComparisonValue"].get<std::string>();
  }
  auto token = OptString(body, "NextToken", 512);
  if (!token.ok()) return KvsErrorOf(token.status());
  if (*token) {
    auto decoded = Base64Decode(**token);
    if (!decoded) return KvsErrorOf(Invalid("NextToken is not one this server gave"));
    r.after = *decoded;
  }
  auto listed = kvs.ListStreams(r);
  if (!listed.ok()) return KvsErrorOf(listed.status());
  json list = json::array();
  for (const auto& d : listed->streams) list.push_back(StreamInfoJson(d));
  json out = {{"StreamInfoList", list}};
  if (listed->last) out["NextToken"] = Base64Encode(*listed->last);
  return JsonOk(out);
}

Response DeleteStream(kvs::KvsService& kvs, const json& body) {
  if (!body.contains("StreamARN")) return KvsErrorOf(Invalid("StreamARN is required"));
  auto ref = StreamRefOf(json{{"StreamARN", body["StreamARN"]}});  // a name alongside is ignored
  if (!ref.ok()) return KvsErrorOf(ref.status());
  auto version = OptString(body, "CurrentVersion", 64);
  if (!version.ok()) return KvsErrorOf(version.status());
  return Answer(kvs.DeleteStream({*ref, *version}));
}

Response UpdateDataRetention(kvs::KvsService& kvs, const json& body) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return KvsErrorOf(ref.status());
  auto version = OptString(body, "CurrentVersion", 64);
  if (!version.ok()) return KvsErrorOf(version.status());
  if (!*version) return KvsErrorOf(Invalid("CurrentVersion is required"));
  const json op = body.value("Operation", json());
  if (op != "INCREASE_DATA_RETENTION" && op != "DECREASE_DATA_RETENTION")
    return KvsErrorOf(
        Invalid("Operation must be INCREASE_DATA_RETENTION or DECREASE_DATA_RETENTION"));
  auto change = OptInt(body, "DataRetentionChangeInHours", 1, kvs::kMaxRetentionHours);
  if (!change.ok()) return KvsErrorOf(change.status());
  if (!*change) return KvsErrorOf(Invalid("DataRetentionChangeInHours is required"));
  return Answer(kvs.UpdateDataRetention(
      {*ref, **version, /*increase=*/op == "INCREASE_DATA_RETENTION", **change}));
}

Response GetDataEndpoint(kvs::KvsService& kvs, const json& body) {
  const json api = body.value("APIName", json());
  static const char* const kApis[] = {"PUT_MEDIA",
                                      "GET_MEDIA",
                                      "LIST_FRAGMENTS",
                                      "GET_MEDIA_FOR_FRAGMENT_LIST",
                                      "GET_HLS_STREAMING_SESSION_URL",
                                      "GET_DASH_STREAMING_SESSION_URL",
                                      "GET_CLIP",
                                      "GET_IMAGES"};
  if (!api.is_string() ||
      std::none_of(std::begin(kApis), std::end(kApis), [&](const char* a) { return api == a; }))
    return KvsErrorOf(
        Invalid("APIName must be one of PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, "
                "GET_MEDIA_FOR_FRAGMENT_LIST, GET_HLS_STREAMING_SESSION_URL, "
                "GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES"));
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return KvsErrorOf(ref.status());
  auto endpoint = kvs.GetDataEndpoint(*ref);
  if (!endpoint.ok()) return KvsErrorOf(endpoint.status());
  return JsonOk({{"DataEndpoint", *endpoint}});
}

Response UpdateImageGeneration(kvs::KvsService& kvs, const json& body) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return KvsErrorOf(ref.status());
  kvs::UpdateImageGenerationRequest r{*ref, std::nullopt};
  const json cfg = body.value("ImageGenerationConfiguration", json());
  if (!cfg.is_null()) {  // none: image generation is removed
    auto parsed = ParseImageGeneration(cfg);
    if (!parsed.ok()) return KvsErrorOf(parsed.status());
    r.config = *parsed;
  }
  return Answer(kvs.UpdateImageGeneration(r));
}

Response DescribeImageGeneration(kvs::KvsService& kvs, const json& body) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return KvsErrorOf(ref.status());
  auto config = kvs.DescribeImageGeneration(*ref);
  if (!config.ok()) return KvsErrorOf(config.status());
  if (!*config) return JsonOk(json::object());
  return JsonOk({{"ImageGenerationConfiguration", kvs::ImageGenerationJson(**config)}});
}

void ListFragments(kvs::KvsService& kvs, const json& body, Respond respond) {
  kvs::ListFragmentsRequest r;
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return respond(KvsErrorOf(ref.status()));
  r.stream = *ref;
  auto max = OptInt(body, "MaxResults", 1, kvs::kMaxListFragments);
  if (!max.ok()) return respond(KvsErrorOf(max.status()));
  r.max_results = static_cast<size_t>(max->value_or(kvs::kMaxListFragments));
  if (body.contains("FragmentSelector") && !body["FragmentSelector"].is_null()) {
    auto range = ParseSelector(body, "FragmentSelector");
    if (!range.ok()) return respond(KvsErrorOf(range.status()));
    r.range = *range;
  }
  auto token = OptString(body, "NextToken", 4096);
  if (!token.ok()) return respond(KvsErrorOf(token.status()));
  if (*token) {
    auto from = NumberToken(**token);
    if (!from.ok()) return respond(KvsErrorOf(from.status()));
    r.first_number = *from;
  }
  kvs.ListFragments(r, [respond = std::move(respond)](Result<kvs::ListFragmentsResult> listed) {
    if (!listed.ok()) return respond(KvsErrorOf(listed.status()));
    json list = json::array();
    for (const auto& f : listed->fragments)
      list.push_back({{"FragmentNumber", std::to_string(f.number)},
                      {"FragmentSizeInBytes", f.bytes},
                      {"ProducerTimestamp", Seconds(f.producer_ts_ms)},
                      {"ServerTimestamp", Seconds(f.server_ts_ms)},
                      {"FragmentLengthInMilliseconds", f.duration_ms}});
    json out = {{"Fragments", list}};
    if (listed->next_number) out["NextToken"] = NumberToken(*listed->next_number);
    respond(JsonOk(out));
  });
}

void GetMediaForFragmentList(kvs::KvsService& kvs, const json& body, Respond respond) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return respond(KvsErrorOf(ref.status()));
  if (!body.contains("Fragments") || !body["Fragments"].is_array() || body["Fragments"].empty() ||
      body["Fragments"].size() > kvs::kMaxListFragments)
    return respond(KvsErrorOf(Invalid("Fragments must list 1 to 1000 fragment numbers")));
  kvs::GetMediaForFragmentListRequest r{*ref, {}};
  for (const json& n : body["Fragments"]) {
    auto number = n.is_string() ? ParseU64(n.get<std::string>()) : std::nullopt;
    if (!number)
      return respond(KvsErrorOf(Invalid("each fragment number must be a string of digits")));
    r.numbers.push_back(*number);
  }
  kvs.GetMediaForFragmentList(r, [respond = std::move(respond)](Result<std::string> media) {
    if (!media.ok()) return respond(KvsErrorOf(media.status()));
    respond(MediaOk(std::move(*media), "video/webm"));
  });
}

void GetClip(kvs::KvsService& kvs, const json& body, Respond respond) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return respond(KvsErrorOf(ref.status()));
  auto range = ParseSelector(body, "ClipFragmentSelector");
  if (!range.ok()) return respond(KvsErrorOf(range.status()));
  kvs.GetClip({*ref, *range}, [respond = std::move(respond)](Result<kvs::ClipResult> clip) {
    if (!clip.ok()) return respond(KvsErrorOf(clip.status()));
    Response res = MediaOk(std::move(clip->mp4), "video/mp4");
    // Kinesis Video truncates silently; this says where, for those who look.
    if (!clip->truncated.empty()) res.set("x-lastframe-clip-truncated", clip->truncated);
    respond(std::move(res));
  });
}

void GetImages(kvs::KvsService& kvs, const json& body, Respond respond) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return respond(KvsErrorOf(ref.status()));
  kvs::GetImagesRequest r;
  r.stream = *ref;
  const json selector = body.value("ImageSelectorType", json());
  if (selector != "PRODUCER_TIMESTAMP" && selector != "SERVER_TIMESTAMP")
    return respond(
        KvsErrorOf(Invalid("ImageSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP")));
  r.server = selector == "SERVER_TIMESTAMP";
  auto start = TimestampMs(body, "StartTimestamp");
  if (!start.ok()) return respond(KvsErrorOf(start.status()));
  auto end = TimestampMs(body, "EndTimestamp");
  if (!end.ok()) return respond(KvsErrorOf(end.status()));
  if (*end < *start)
    return respond(KvsErrorOf(Invalid("The EndTimestamp must not be before the StartTimestamp.")));
  r.start_ms = r.first_ms = *start;
  r.end_ms = *end;
  auto interval = SamplingInterval(body, "SamplingInterval is required (3000 to 20000 ms)");
  if (!interval.ok()) return respond(KvsErrorOf(interval.status()));
  r.interval_ms = *interval;
  auto image = ParseImageFields(body);
  if (!image.ok()) return respond(KvsErrorOf(image.status()));
  r.image.format = image->format;
  if (image->quality) r.image.quality = *image->quality;
  r.image.width = image->width.value_or(0);
  r.image.height = image->height.value_or(0);
  auto max = OptInt(body, "MaxResults", 1, kvs::kMaxImagesListed);
  if (!max.ok()) return respond(KvsErrorOf(max.status()));
  r.max_results = static_cast<size_t>(max->value_or(kvs::kMaxImagesListed));
  auto token = OptString(body, "NextToken", 4096);
  if (!token.ok()) return respond(KvsErrorOf(token.status()));
  if (*token) {
    auto first = NumberToken(**token);
    if (!first.ok() || *first > static_cast<uint64_t>(r.end_ms))
      return respond(KvsErrorOf(Invalid("NextToken is not one this server gave")));
    r.first_ms = static_cast<int64_t>(*first);
    if (r.first_ms < r.start_ms || (r.first_ms - r.start_ms) % r.interval_ms != 0)
      return respond(KvsErrorOf(Invalid("NextToken does not belong to this time range")));
  }
  kvs.GetImages(r, [respond = std::move(respond)](Result<kvs::GetImagesResult> got) {
    if (!got.ok()) return respond(KvsErrorOf(got.status()));
    json images = json::array();
    for (const auto& i : got->images) {
      json image = {{"TimeStamp", Seconds(i.time_ms)}};
      switch (i.error) {
        case kvs::SampledImage::Error::kNone:
          image["ImageContent"] = Base64Encode(i.bytes);
          break;
        case kvs::SampledImage::Error::kNoMedia:
          image["Error"] = "NO_MEDIA";
          break;
        case kvs::SampledImage::Error::kMediaError:
          image["Error"] = "MEDIA_ERROR";
          break;
      }
      images.push_back(std::move(image));
    }
    json out = {{"Images", images}};
    if (got->next_ms) out["NextToken"] = NumberToken(static_cast<uint64_t>(*got->next_ms));
    respond(JsonOk(out));
  });
}

Result<kvs::GetMediaRequest> ParseGetMedia(const json& body) {
  auto ref = StreamRefOf(body);
  if (!ref.ok()) return ref.status();
  auto start = ParseStartSelector(body);
  if (!start.ok()) return start.status();
  return kvs::GetMediaRequest{*ref, *start};
}

}  // namespace lastframe::http::kvs_ops
