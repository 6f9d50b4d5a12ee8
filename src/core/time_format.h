#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lastframe {

// "2026-11-25T14:08:13.123Z" for |ms| since the epoch (UTC, millisecond precision).
std::string FormatIso8601Ms(int64_t ms);
// "20130524T000000Z", the compact form SigV4 uses, truncated to the second.
std::string FormatAmzDate(int64_t ms);
// "Fri, 24 May 2013 00:00:00 GMT", HTTP's date (RFC 9110 IMF-fixdate).
std::string FormatHttpDate(int64_t ms);
// The latest point in time taken from a caller: 9999-12-31T23:59:59.999Z (the
// last that ISO 8601's four-digit years, and so our formats, can show).
inline constexpr int64_t kMaxTimestampMs = 253'402'300'799'999;

// Parses a point in time given by a caller: epoch milliseconds ("1764000000000")
// or ISO 8601 UTC ("2026-11-24T16:00:00Z", "2026-11-24T16:00:00.250Z"), from
// the epoch to kMaxTimestampMs. nullopt for anything else.
std::optional<int64_t> ParseTimestampMs(std::string_view text);
// Epoch seconds (fractions allowed) as milliseconds, rounded: nullopt unless
// finite and from the epoch to kMaxTimestampMs (NaN, infinities, negative
// times and ones whose milliseconds would overflow are refused).
std::optional<int64_t> EpochSecondsToMs(double seconds);
// The same from text as a header carries it ("1764000000.123", "1.764e9").
std::optional<int64_t> ParseEpochSecondsMs(std::string_view text);
// Parses "YYYYMMDDTHHMMSSZ". Returns nullopt for anything else.
std::optional<int64_t> ParseAmzDate(std::string_view text);

}  // namespace lastframe
