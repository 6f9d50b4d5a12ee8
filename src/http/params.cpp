#include "http/params.h"

#include <charconv>

#include "core/time_format.h"

namespace lastframe::http {

Result<Params> Params::Parse(std::string_view raw) {
  auto q = ParseQuery(raw);
  if (!q) return InvalidArgument("malformed query string (bad percent-encoding)");
  Params p;
  for (auto& [k, v] : *q) {
    for (const auto& [k2, v2] : p.q_)
      if (k2 == k) return InvalidArgument("parameter '" + k + "' given more than once");
    p.q_.emplace_back(std::move(k), std::move(v));
  }
  return p;
}

const std::string* Params::Get(std::string_view name) const {
  for (const auto& [k, v] : q_)
    if (k == name) return &v;
  return nullptr;
}

Result<int64_t> Params::Int(std::string_view name, int64_t min, int64_t max,
                            int64_t fallback) const {
  const std::string* v = Get(name);
  if (v == nullptr) return fallback;
  int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || out < min || out > max)
    return InvalidArgument("parameter '" + std::string(name) + "' must be an integer from " +
                           std::to_string(min) + " to " + std::to_string(max));
  return out;
}

Result<bool> Params::Bool(std::string_view name) const {
  const std::string* v = Get(name);
  if (v == nullptr) return false;
  if (*v == "1" || *v == "true") return true;
  if (*v == "0" || *v == "false") return false;
  return InvalidArgument("parameter '" + std::string(name) + "' must be 1, 0, true or false");
}

Result<SnapshotRequest> ParseSnapshotRequest(const Params& p, const SnapshotLimits& limits,
                                             std::optional<snapshot::ImageFormat> fixed_format) {
  SnapshotRequest r;
  auto quality = p.Int("quality", 1, 100, limits.default_quality);
  if (!quality.ok()) return quality.status();
  auto width = p.Int("width", 1, limits.max_dimension, 0);
  if (!width.ok()) return width.status();
  auto height = p.Int("height", 1, limits.max_dimension, 0);
  if (!height.ok()) return height.status();
  auto expires = p.Int("expires", 1, limits.max_expires_s,
                       std::min(limits.default_expires_s, limits.max_expires_s));
  if (!expires.ok()) return expires.status();
  auto redirect = p.Bool("redirect");
  if (!redirect.ok()) return redirect.status();
  snapshot::SnapshotOptions& encode = r.options;
  encode.quality = static_cast<int>(*quality);
  encode.width = static_cast<int>(*width);
  encode.height = static_cast<int>(*height);
  r.expires_s = *expires;
  r.redirect = *redirect;
  if (fixed_format) {
    encode.format = *fixed_format;
  } else if (const std::string* f = p.Get("format")) {
    if (*f == "jpeg" || *f == "jpg")
      encode.format = snapshot::ImageFormat::kJpeg;
    else if (*f == "png")
      encode.format = snapshot::ImageFormat::kPng;
    else if (*f == "webp")
      encode.format = snapshot::ImageFormat::kWebp;
    else if (*f == "avif")
      encode.format = snapshot::ImageFormat::kAvif;
    else
      return InvalidArgument("parameter 'format' must be jpeg, png, webp or avif");
  }
  if (const std::string* f = p.Get("fit")) {
    if (*f == "fill")
      encode.fit = snapshot::Fit::kFill;
    else if (*f == "contain")
      encode.fit = snapshot::Fit::kContain;
    else if (*f == "cover")
      encode.fit = snapshot::Fit::kCover;
    else
      return InvalidArgument("parameter 'fit' must be fill, contain or cover");
    if (encode.fit != snapshot::Fit::kFill && (encode.width == 0 || encode.height == 0))
      return InvalidArgument("parameter 'fit' (" + *f +
                             ") needs both 'width' and 'height': the box to fit the frame in");
  }
  if (const std::string* r = p.Get("rotate")) {
    if (*r == "0" || *r == "90" || *r == "180" || *r == "270")
      encode.rotate_degrees = std::stoi(*r);
    else
      return InvalidArgument("parameter 'rotate' must be 0, 90, 180 or 270 (degrees clockwise)");
  }
  if (const std::string* o = p.Get("overlay")) {
    if (*o != "time") return InvalidArgument("parameter 'overlay' must be time");
    encode.overlay_time = true;
  }
  auto at = ParseFrameTime(p);
  if (!at.ok()) return at.status();
  encode.at = *at;
  auto max_age = p.Int("max_age", 0, 31'536'000, -1);
  if (!max_age.ok()) return max_age.status();
  if (*max_age >= 0) r.max_age_ms = *max_age * 1000;
  if (const std::string* m = p.Get("mode")) {
    if (*m == "keyframe")
      r.options.keyframe_only = true;
    else if (*m != "newest")
      return InvalidArgument("parameter 'mode' must be newest or keyframe");
  }
  return r;
}

Result<std::optional<snapshot::FrameTime>> ParseFrameTime(const Params& p) {
  const std::string* at = p.Get("at");
  const std::string* timeline = p.Get("timestamp");
  if (timeline && *timeline != "server" && *timeline != "producer")
    return InvalidArgument("parameter 'timestamp' must be producer or server");
  if (at == nullptr) {
    if (timeline) return InvalidArgument("parameter 'timestamp' goes with 'at'");
    return std::optional<snapshot::FrameTime>();
  }
  auto t = ParseTimestampMs(*at);
  if (!t)
    return InvalidArgument(
        "parameter 'at' must be epoch milliseconds or ISO 8601 UTC "
        "(2026-11-25T12:00:00.000Z), from 1970 to 9999");
  return std::optional<snapshot::FrameTime>(
      snapshot::FrameTime{.at_ms = *t, .server_timeline = timeline && *timeline == "server"});
}

Result<PreviewRequest> ParsePreviewRequest(const Params& p, snapshot::ImageFormat format) {
  PreviewRequest r;
  snapshot::PreviewOptions& o = r.options;
  o.format = format;
  auto seconds = p.Int("seconds", 1, snapshot::kMaxPreviewSeconds, 5);
  if (!seconds.ok()) return seconds.status();
  auto fps = p.Int("fps", 1, snapshot::kMaxPreviewFps, 2);
  if (!fps.ok()) return fps.status();
  auto width = p.Int("width", 1, snapshot::kMaxPreviewWidth, 0);
  if (!width.ok()) return width.status();
  auto quality = p.Int("quality", 1, 100, 60);
  if (!quality.ok()) return quality.status();
  auto at = ParseFrameTime(p);
  if (!at.ok()) return at.status();
  auto max_age = p.Int("max_age", 0, 31'536'000, -1);
  if (!max_age.ok()) return max_age.status();
  for (const auto& [key, value] : p.all())
    if (key != "seconds" && key != "fps" && key != "width" && key != "quality" && key != "at" &&
        key != "timestamp" && key != "max_age" && key != "v")
      return InvalidArgument("unknown parameter '" + key +
                             "' (seconds, fps, width, quality, at, timestamp and max_age are "
                             "known)");
  o.seconds = static_cast<int>(*seconds);
  o.fps = static_cast<int>(*fps);
  o.width = static_cast<int>(*width);
  o.quality = static_cast<int>(*quality);
  o.at = *at;
  if (*max_age >= 0) r.max_age_ms = *max_age * 1000;
  return r;
}

Result<TimeRange> ParseTimeRange(const Params& p) {
  TimeRange r;
  for (auto [param, slot] : {std::pair{"start", &r.start_ms}, std::pair{"end", &r.end_ms}}) {
    if (const std::string* v = p.Get(param)) {
      auto t = ParseTimestampMs(*v);
      if (!t)
        return InvalidArgument(std::string("parameter '") + param +
                               "' must be epoch milliseconds or ISO 8601 UTC "
                               "(2026-11-25T12:00:00.000Z), from 1970 to 9999");
      *slot = *t;
    }
  }
  if (r.start_ms > r.end_ms) return InvalidArgument("'start' is after 'end'");
  if (const std::string* t = p.Get("timestamp")) {
    if (*t == "server")
      r.server = true;
    else if (*t != "producer")
      return InvalidArgument("parameter 'timestamp' must be producer or server");
  }
  return r;
}

nlohmann::json ParseJsonBody(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonNesting) return nlohmann::json(nlohmann::json::value_t::discarded);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return nlohmann::json::parse(text, nullptr, false);
}

Result<PushTiming> ParsePushTiming(const boost::beast::http::request_header<>& header) {
  PushTiming t;
  auto type = header.find("x-amzn-fragment-timecode-type");
  if (type != header.end()) {
    if (type->value() == "ABSOLUTE")
      t.absolute_timecodes = true;
    else if (type->value() != "RELATIVE")
      return InvalidArgument("x-amzn-fragment-timecode-type must be ABSOLUTE or RELATIVE");
  }
  auto start = header.find("x-amzn-producer-start-timestamp");
  if (start != header.end()) {
    // Finite, from 1970 to 9999: "nan" once slipped through as INT64_MIN.
    std::optional<int64_t> ms =
        ParseEpochSecondsMs(std::string_view(start->value().data(), start->value().size()));
    if (!ms)
      return InvalidArgument(
          "x-amzn-producer-start-timestamp must be epoch seconds from 1970 to 9999, "
          "e.g. 1764000000.123");
    t.producer_start_ms = *ms;
  }
  return t;
}

}  // namespace lastframe::http
