#pragma once

// The query parameters and headers of lastframe's own routes, parsed into
// plain values: api.cpp's handlers stay thin, and tests and the fuzz targets
// (fuzz/snapshot_params, fuzz/time_range) call these directly.

#include <boost/beast/http.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.h"
#include "core/encoding.h"
#include "core/status.h"
#include "snapshot/snapshot_engine.h"

namespace lastframe::http {

// Query parameters of one request, each at most once.
class Params {
 public:
  // InvalidArgument for a malformed escape or a parameter given twice.
  static Result<Params> Parse(std::string_view raw);
  // The value of |name|, or null when it is absent.
  const std::string* Get(std::string_view name) const;
  // An integer in [min, max], or |fallback| when absent.
  Result<int64_t> Int(std::string_view name, int64_t min, int64_t max, int64_t fallback) const;
  // 1, 0, true or false; false when absent.
  Result<bool> Bool(std::string_view name) const;
  const QueryParams& all() const { return q_; }

 private:
  QueryParams q_;
};

// What a snapshot may ask for: the server's defaults and bounds, and the
// longest URL lifetime the caller may have (see ApiOptions).
struct SnapshotLimits {
  int default_quality = 80;
  int max_dimension = 8192;
  int64_t default_expires_s = 600;
  int64_t max_expires_s = aws::kMaxPresignExpiresSeconds;
};

struct SnapshotRequest {
  snapshot::SnapshotOptions options;
  int64_t expires_s = 600;
  bool redirect = false;
  // max_age: a frame older than this (on the server's clock) is refused ("StaleFrame").
  std::optional<int64_t> max_age_ms;
};

// The snapshot routes' parameters: quality (1-100), width and height
// (1-max_dimension; absent: the frame's), fit (fill, contain or cover; the
// last two with both width and height), rotate (0, 90, 180, 270), overlay
// (time), expires (1-max_expires_s), redirect, format (jpeg, jpg, png, webp or
// avif; |fixed_format| instead when given), mode (newest or keyframe), at
// (epoch ms or ISO 8601 UTC, with timestamp=producer|server) and max_age
// (seconds, 0-31536000). InvalidArgument naming the parameter otherwise.
Result<SnapshotRequest> ParseSnapshotRequest(const Params& p, const SnapshotLimits& limits,
                                             std::optional<snapshot::ImageFormat> fixed_format);

// The moment of at= (epoch ms or ISO 8601 UTC) on the timeline of timestamp=
// (producer, the default, or server); nullopt when at is absent.
Result<std::optional<snapshot::FrameTime>> ParseFrameTime(const Params& p);

// The preview route's parameters: seconds (1-30, default 5), fps (1-10,
// default 2), width (1-1280; absent: the frame's, at most 1280), quality
// (1-100, default 60), at and timestamp as for stills; |format| from the route.
struct PreviewRequest {
  snapshot::PreviewOptions options;
  std::optional<int64_t> max_age_ms;
};
Result<PreviewRequest> ParsePreviewRequest(const Params& p, snapshot::ImageFormat format);

// The range of /fragments and /clip: start and end (epoch milliseconds or
// ISO 8601 UTC, from 1970 to 9999; an absent end is open) on the producer's
// timeline, or the server's with timestamp=server.
struct TimeRange {
  int64_t start_ms = INT64_MIN;
  int64_t end_ms = INT64_MAX;
  bool server = false;
};
Result<TimeRange> ParseTimeRange(const Params& p);

// PutMedia's x-amzn-fragment-timecode-type (ABSOLUTE or RELATIVE) and
// x-amzn-producer-start-timestamp (epoch seconds, 1970 to 9999).
struct PushTiming {
  bool absolute_timecodes = false;
  std::optional<int64_t> producer_start_ms;
};
Result<PushTiming> ParsePushTiming(const boost::beast::http::request_header<>& header);

// A JSON request body (POST /v1/streams, Kinesis Video's operations), or a
// discarded value (is_discarded()) when it is not JSON or nests arrays and
// objects more than kMaxJsonNesting deep: nlohmann::json parses without
// recursion, but copies and serialises by it, and a body of a million '['
// overflowed a thread's stack.
inline constexpr size_t kMaxJsonNesting = 64;
nlohmann::json ParseJsonBody(std::string_view text);

}  // namespace lastframe::http
