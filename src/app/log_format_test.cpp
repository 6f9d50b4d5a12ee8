#include "app/log_format.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace lastframe::app {
namespace {

using nlohmann::json;

// The lines a logger in |format| writes for the calls of |emit|, split.
std::vector<std::string> Logged(log::Format format, const std::function<void()>& emit) {
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>(
      "log_format_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->set_level(spdlog::level::debug);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  UseLogFormat(*logger, format);
  emit();
  logger->flush();
  spdlog::set_default_logger(previous);
  log::SetFormat(log::Format::kText);
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(LogFormat, JsonLinesCarryTimeLevelMessageAndFields) {
  auto lines = Logged(log::Format::kJson, [] {
    spdlog::info("plain line with \"quotes\", a \\ and a\nnewline \x01");
    log::Event(spdlog::level::warn, "request",
               {{"route", "snapshot"},
                {"path", "/snapshot"},
                {"status", 200},
                {"duration_ms", 1.25},
                {"stream", "cam \"7\""}});
    spdlog::debug("{} fragments", 3);
    spdlog::error("not UTF-8: \xff\xfe");
  });
  ASSERT_EQ(lines.size(), 4u);
  std::vector<json> parsed;
  for (const std::string& line : lines) {
    parsed.push_back(json::parse(line, nullptr, false));
    ASSERT_TRUE(parsed.back().is_object()) << line;
    // 2026-12-01T04:32:03.123Z
    const std::string time = parsed.back()["time"];
    EXPECT_EQ(time.size(), 24u) << time;
    EXPECT_EQ(time.back(), 'Z');
  }
  EXPECT_EQ(parsed[0]["level"], "info");
  EXPECT_EQ(parsed[0]["message"], "plain line with \"quotes\", a \\ and a\nnewline \x01");
  EXPECT_EQ(parsed[1]["level"], "warning");
  EXPECT_EQ(parsed[1]["message"], "request");
  EXPECT_EQ(parsed[1]["route"], "snapshot");
  EXPECT_EQ(parsed[1]["status"], 200);
  EXPECT_EQ(parsed[1]["duration_ms"], 1.25);
  EXPECT_EQ(parsed[1]["stream"], "cam \"7\"");
  EXPECT_EQ(parsed[2]["level"], "debug");
  EXPECT_EQ(parsed[2]["message"], "3 fragments");
  EXPECT_EQ(parsed[3]["message"], "not UTF-8: \ufffd\ufffd");
}

TEST(LogFormat, TextLinesCarryFieldsAsKeyValue) {
  auto lines = Logged(log::Format::kText, [] {
    log::Event(spdlog::level::info, "request",
               {{"route", "api"}, {"path", "/v1/streams/a b"}, {"status", 404}});
  });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" info request route=api path=\"/v1/streams/a b\" status=404"),
            std::string::npos)
      << lines[0];
}

TEST(LogFormat, EventsBelowTheLevelAreNotFormatted) {
  auto lines = Logged(log::Format::kJson, [] {
    spdlog::default_logger()->set_level(spdlog::level::info);
    log::Event(spdlog::level::debug, "hidden", {{"x", 1}});
    log::Event(spdlog::level::err, "shown", {{"x", 2}});
  });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0])["x"], 2);
}

TEST(LogFormat, NonFiniteNumbersStayValidJson) {
  auto lines = Logged(log::Format::kJson, [] {
    log::Event(spdlog::level::info, "odd", {{"ratio", std::numeric_limits<double>::infinity()}});
  });
  ASSERT_EQ(lines.size(), 1u);
  json parsed = json::parse(lines[0], nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << lines[0];
  EXPECT_TRUE(parsed["ratio"].is_null());
}

}  // namespace
}  // namespace lastframe::app
