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
// Parses a point in time given by a caller: epoch milliseconds ("1764000000000")
// or ISO 8601 UTC ("2026-11-24T16:00:00Z", "2026-11-24T16:00:00.250Z").
std::optional<int64_t> ParseTimestampMs(std::string_view text);
// Parses "YYYYMMDDTHHMMSSZ". Returns nullopt for anything else.
std::optional<int64_t> ParseAmzDate(std::string_view text);

}  // namespace lastframe
