#include "core/time_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace lastframe {
namespace {

std::tm UtcTm(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return tm;
}

bool AllDigits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

std::string FormatIso8601Ms(int64_t ms) {
  std::tm tm = UtcTm(ms);
  int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string FormatAmzDate(int64_t ms) {
  std::tm tm = UtcTm(ms);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string FormatHttpDate(int64_t ms) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm = UtcTm(ms);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::optional<int64_t> ParseTimestampMs(std::string_view text) {
  if (!text.empty() && AllDigits(text)) {
    if (text.size() > 15) return std::nullopt;  // and no overflow below
    int64_t ms = std::stoll(std::string(text));
    if (ms > kMaxTimestampMs) return std::nullopt;
    return ms;
  }
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (text.size() < 20 || text.back() != 'Z' || text[4] != '-' || text[7] != '-' ||
      text[10] != 'T' || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  for (size_t i : {0, 5, 8, 11, 14, 17})
    if (!AllDigits(text.substr(i, i == 0 ? 4 : 2))) return std::nullopt;
  int millis = 0;
  if (text.size() > 20) {
    std::string_view frac = text.substr(20, text.size() - 21);
    if (text[19] != '.' || frac.empty() || frac.size() > 3 || !AllDigits(frac)) return std::nullopt;
    millis = ToInt(frac);
    for (size_t i = frac.size(); i < 3; ++i) millis *= 10;
  } else if (text.size() != 20) {
    return std::nullopt;
  }
  // The same fields as SigV4's compact form, checked the same way (no Feb 31).
  std::string compact = std::string(text.substr(0, 4)) + std::string(text.substr(5, 2)) +
                        std::string(text.substr(8, 2)) + "T" + std::string(text.substr(11, 2)) +
                        std::string(text.substr(14, 2)) + std::string(text.substr(17, 2)) + "Z";
  std::optional<int64_t> seconds = ParseAmzDate(compact);
  if (!seconds || *seconds < 0) return std::nullopt;  // before 1970: no epoch time
  return *seconds + millis;
}

std::optional<int64_t> EpochSecondsToMs(double seconds) {
  // Written so that NaN, which compares false with everything, fails too.
  if (!(std::isfinite(seconds) && seconds >= 0 &&
        seconds * 1000 <= static_cast<double>(kMaxTimestampMs)))
    return std::nullopt;
  return static_cast<int64_t>(std::llround(seconds * 1000));
}

std::optional<int64_t> ParseEpochSecondsMs(std::string_view text) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return EpochSecondsToMs(seconds);
}

std::optional<int64_t> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  if (!AllDigits(text.substr(0, 8)) || !AllDigits(text.substr(9, 6))) return std::nullopt;
  std::tm tm{};
  tm.tm_year = ToInt(text.substr(0, 4)) - 1900;
  tm.tm_mon = ToInt(text.substr(4, 2)) - 1;
  tm.tm_mday = ToInt(text.substr(6, 2));
  tm.tm_hour = ToInt(text.substr(9, 2));
  tm.tm_min = ToInt(text.substr(11, 2));
  tm.tm_sec = ToInt(text.substr(13, 2));
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  std::tm check = tm;
  std::time_t t = timegm(&check);
  // timegm normalises out-of-range days (Feb 31): reject those.
  if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon) return std::nullopt;
  return static_cast<int64_t>(t) * 1000;
}

}  // namespace lastframe
