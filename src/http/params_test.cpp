#include "http/params.h"

#include <gtest/gtest.h>

namespace lastframe::http {
namespace {

Params P(std::string_view raw) {
  auto p = Params::Parse(raw);
  EXPECT_TRUE(p.ok()) << raw;
  return p.ok() ? *p : Params{};
}

TEST(Params, EachAtMostOnceAndWellEscaped) {
  EXPECT_EQ(*P("a=1&b=x+y%21").Get("b"), "x y!");
  EXPECT_EQ(P("a=1").Get("b"), nullptr);
  EXPECT_EQ(Params::Parse("a=1&a=2").status().message(), "parameter 'a' given more than once");
  EXPECT_FALSE(Params::Parse("a=%zz").ok());
  EXPECT_EQ(*P("n=7").Int("n", 1, 10, 5), 7);
  EXPECT_EQ(*P("").Int("n", 1, 10, 5), 5);
  for (const char* bad : {"n=", "n=11", "n=0", "n=7x", "n=+7", "n=99999999999999999999"})
    EXPECT_FALSE(P(bad).Int("n", 1, 10, 5).ok()) << bad;
  EXPECT_TRUE(*P("r=true").Bool("r"));
  EXPECT_FALSE(*P("").Bool("r"));
  EXPECT_FALSE(P("r=yes").Bool("r").ok());
}

TEST(Params, SnapshotParametersAndTheirBounds) {
  SnapshotLimits limits{.max_dimension = 100, .default_expires_s = 600, .max_expires_s = 300};
  auto r = ParseSnapshotRequest(P("width=64&quality=90&format=png&mode=keyframe&redirect=1"),
                                limits, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->options.width, 64);
  EXPECT_EQ(r->options.height, 0);
  EXPECT_EQ(r->options.quality, 90);
  EXPECT_EQ(r->options.format, snapshot::ImageFormat::kPng);
  EXPECT_TRUE(r->options.keyframe_only);
  EXPECT_TRUE(r->redirect);
  EXPECT_EQ(r->expires_s, 300);  // the default, held to what this caller may have
  auto fixed = ParseSnapshotRequest(P("format=png"), limits, snapshot::ImageFormat::kJpeg);
  EXPECT_EQ(fixed->options.format, snapshot::ImageFormat::kJpeg);
  for (const char* bad : {"width=101", "height=0", "quality=101", "expires=301", "format=gif",
                          "mode=oldest", "redirect=2"})
    EXPECT_FALSE(ParseSnapshotRequest(P(bad), limits, std::nullopt).ok()) << bad;
}

TEST(Params, StillsFormatsFitRotateOverlayAtAndMaxAge) {
  SnapshotLimits limits;
  auto r =
      ParseSnapshotRequest(P("format=webp&width=320&height=180&fit=cover&rotate=270&overlay=time"
                             "&at=2025-11-24T16:00:00.250Z&timestamp=server&max_age=5"),
                           limits, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->options.format, snapshot::ImageFormat::kWebp);
  EXPECT_EQ(r->options.fit, snapshot::Fit::kCover);
  EXPECT_EQ(r->options.rotate_degrees, 270);
  EXPECT_TRUE(r->options.overlay_time);
  ASSERT_TRUE(r->options.at.has_value());
  EXPECT_EQ(r->options.at->at_ms, 1'764'000'000'250);
  EXPECT_TRUE(r->options.at->server_timeline);
  EXPECT_EQ(r->max_age_ms, 5000);
  auto plain = ParseSnapshotRequest(P("format=avif&at=1764000000000"), limits, std::nullopt);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->options.format, snapshot::ImageFormat::kAvif);
  EXPECT_EQ(plain->options.fit, snapshot::Fit::kFill);
  EXPECT_FALSE(plain->options.at->server_timeline);
  EXPECT_FALSE(plain->max_age_ms.has_value());
  EXPECT_FALSE(ParseSnapshotRequest(P(""), limits, std::nullopt)->options.at.has_value());
  // Each bad value named in its error.
  const std::pair<const char*, const char*> bad[] = {
      {"format=gif", "'format'"},
      {"fit=stretch&width=1&height=1", "'fit'"},
      {"fit=contain&width=10", "needs both 'width' and 'height'"},
      {"fit=cover", "needs both"},
      {"rotate=45", "'rotate'"},
      {"rotate=-90", "'rotate'"},
      {"overlay=date", "'overlay'"},
      {"at=yesterday", "'at'"},
      {"at=10000-01-01T00:00:00Z", "'at'"},
      {"at=1&timestamp=client", "'timestamp'"},
      {"timestamp=server", "goes with 'at'"},
      {"max_age=-1", "'max_age'"},
      {"max_age=1.5", "'max_age'"},
      {"max_age=31536001", "'max_age'"},
  };
  for (const auto& [query, error] : bad) {
    auto parsed = ParseSnapshotRequest(P(query), limits, std::nullopt);
    ASSERT_FALSE(parsed.ok()) << query;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument) << query;
    EXPECT_NE(parsed.status().message().find(error), std::string::npos)
        << query << ": " << parsed.status().message();
  }
}

TEST(Params, PreviewParametersAndTheirBounds) {
  auto d = ParsePreviewRequest(P(""), snapshot::ImageFormat::kGif);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->options.format, snapshot::ImageFormat::kGif);
  EXPECT_EQ(d->options.seconds, 5);
  EXPECT_EQ(d->options.fps, 2);
  EXPECT_EQ(d->options.width, 0);
  auto r = ParsePreviewRequest(P("seconds=30&fps=10&width=1280&quality=40&at=1764000000000&v=3"),
                               snapshot::ImageFormat::kWebp);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->options.seconds, 30);
  EXPECT_EQ(r->options.fps, 10);
  EXPECT_EQ(r->options.width, 1280);
  EXPECT_EQ(r->options.quality, 40);
  EXPECT_EQ(r->options.at->at_ms, 1'764'000'000'000);
  for (const char* bad : {"seconds=0", "seconds=31", "fps=0", "fps=11", "width=1281", "width=0",
                          "quality=0", "at=x", "format=png", "height=100"}) {
    auto parsed = ParsePreviewRequest(P(bad), snapshot::ImageFormat::kWebp);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(Params, TimeRanges) {
  auto open = ParseTimeRange(P(""));
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->start_ms, INT64_MIN);
  EXPECT_EQ(open->end_ms, INT64_MAX);
  auto r = ParseTimeRange(P("start=1764000000000&end=2025-11-24T16:00:00.250Z&timestamp=server"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->start_ms, 1'764'000'000'000);
  EXPECT_EQ(r->end_ms, 1'764'000'000'250);
  EXPECT_TRUE(r->server);
  for (const char* bad :
       {"start=2&end=1", "start=x", "end=-1", "timestamp=client", "start=10000-01-01T00:00:00Z"})
    EXPECT_FALSE(ParseTimeRange(P(bad)).ok()) << bad;
}

TEST(Params, PushTiming) {
  boost::beast::http::request_header<> h;
  EXPECT_FALSE(ParsePushTiming(h)->absolute_timecodes);
  h.set("x-amzn-fragment-timecode-type", "ABSOLUTE");
  h.set("x-amzn-producer-start-timestamp", "1764000000.123");
  auto t = ParsePushTiming(h);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->absolute_timecodes);
  EXPECT_EQ(t->producer_start_ms, 1'764'000'000'123);
  for (const char* bad : {"nan", "inf", "-1", "1e20", ""}) {
    h.set("x-amzn-producer-start-timestamp", bad);
    EXPECT_FALSE(ParsePushTiming(h).ok()) << bad;
  }
  h.erase("x-amzn-producer-start-timestamp");
  h.set("x-amzn-fragment-timecode-type", "absolute");
  EXPECT_FALSE(ParsePushTiming(h).ok());
}

TEST(Params, JsonBodiesNestAtMost64Deep) {
  // Found by fuzz/kvs_api: nlohmann::json copies and serialises recursively, and
  // an updateImageGenerationConfiguration body 50000 '[' deep overflowed the stack.
  auto deep = [](size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_TRUE(ParseJsonBody("{\"a\":" + deep(63) + "}").is_object());
  EXPECT_TRUE(ParseJsonBody("{\"a\":" + deep(64) + "}").is_discarded());
  EXPECT_TRUE(ParseJsonBody(deep(1'000'000)).is_discarded());
  // Brackets in strings, escaped quotes included, are no nesting.
  auto text = ParseJsonBody(R"({"a":"[[[[\"[[[[","b":[1]})");
  ASSERT_TRUE(text.is_object());
  EXPECT_EQ(text["a"], "[[[[\"[[[[");
  EXPECT_TRUE(ParseJsonBody("{not json").is_discarded());
}

}  // namespace
}  // namespace lastframe::http
