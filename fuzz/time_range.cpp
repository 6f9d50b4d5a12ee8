// Time and range parameters: start/end/timestamp of /v1/streams/N/fragments
// and /clip (http::ParseTimeRange), the timestamps they and Kinesis Video's
// operations take (ParseTimestampMs, EpochSecondsToMs), SigV4's dates
// (ParseAmzDate), PutMedia's timing headers (http::ParsePushTiming), and the
// formats lastframe writes times in.
//
// Input lines: a query string; a timestamp; x-amzn-fragment-timecode-type;
// x-amzn-producer-start-timestamp; an X-Amz-Date; epoch seconds as a number.
// Invariants: whatever is accepted lies from 1970 to 9999; a range's start is
// not after its end; a time written by us parses back to itself, and a time
// parsed is written back as it was given (up to leap seconds and fractions).

#include <charconv>

#include "core/time_format.h"
#include "fuzz_support.h"
#include "http/params.h"

using namespace lastframe;

namespace {

bool InRange(int64_t ms) { return ms >= 0 && ms <= kMaxTimestampMs; }

void CheckTimestamp(const std::string& text) {
  auto t = ParseTimestampMs(text);
  if (!t) return;
  FUZZ_CHECK(InRange(*t), "'" + text + "' is outside the years 1970-9999");
  const std::string iso = FormatIso8601Ms(*t);
  FUZZ_CHECK(ParseTimestampMs(iso) == t, "'" + text + "' -> " + iso + " does not parse back");
  const std::string amz = FormatAmzDate(*t);
  FUZZ_CHECK(ParseAmzDate(amz) == *t / 1000 * 1000, amz + " does not parse back");
  (void)FormatHttpDate(*t);
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    int64_t n = -1;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    FUZZ_CHECK(ec == std::errc() && n == *t, "epoch milliseconds read as another number: " + text);
  } else if (text[17] != '6' || text[18] != '0') {  // leap seconds are the next minute's first
    // The time as written, to the millisecond: what was given (fractions aside).
    FUZZ_CHECK(iso.substr(0, 19) == text.substr(0, 19), "'" + text + "' came back as " + iso);
  }
}

void CheckAmzDate(const std::string& text) {
  auto t = ParseAmzDate(text);
  if (!t) return;
  FUZZ_CHECK(*t % 1000 == 0, "an X-Amz-Date with milliseconds");
  if (text.substr(13, 2) != "60")
    FUZZ_CHECK(FormatAmzDate(*t) == text, "'" + text + "' came back as " + FormatAmzDate(*t));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 6);
  if (auto params = http::Params::Parse(fuzz::Field(fields, 0)); params.ok()) {
    if (auto range = http::ParseTimeRange(*params); range.ok()) {
      FUZZ_CHECK(range->start_ms <= range->end_ms, "start after end");
      FUZZ_CHECK(range->start_ms == INT64_MIN || InRange(range->start_ms), "start out of range");
      FUZZ_CHECK(range->end_ms == INT64_MAX || InRange(range->end_ms), "end out of range");
    }
    for (const char* name : {"start", "end"})
      if (const std::string* v = params->Get(name)) CheckTimestamp(*v);
  }
  CheckTimestamp(fuzz::Field(fields, 1));

  boost::beast::http::request_header<> header;
  if (fields.size() > 2 && !fields[2].empty())
    header.set("x-amzn-fragment-timecode-type", fuzz::Field(fields, 2));
  if (fields.size() > 3 && !fields[3].empty())
    header.set("x-amzn-producer-start-timestamp", fuzz::Field(fields, 3));
  if (auto timing = http::ParsePushTiming(header); timing.ok() && timing->producer_start_ms)
    FUZZ_CHECK(InRange(*timing->producer_start_ms),
               "a producer start outside 1970-9999: " + fuzz::Field(fields, 3));

  CheckAmzDate(fuzz::Field(fields, 4));

  const std::string seconds = fuzz::Field(fields, 5);
  double s = 0;
  auto [end, ec] = std::from_chars(seconds.data(), seconds.data() + seconds.size(), s);
  if (ec == std::errc() && end != seconds.data())
    if (auto ms = EpochSecondsToMs(s)) FUZZ_CHECK(InRange(*ms), "seconds " + seconds);
  if (auto ms = ParseEpochSecondsMs(seconds)) FUZZ_CHECK(InRange(*ms), "seconds text " + seconds);
  return 0;
}
