#include "media/ffmpeg.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

extern "C" {
#include <libavutil/log.h>
}

namespace lastframe::media {
namespace {

TEST(FfmpegLogs, FatalLinesGoThroughTheProcessLoggerAndOthersAreDropped) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  auto logger = std::make_shared<spdlog::logger>("ffmpeg_test", sink);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  QuietFfmpegLogs();
  av_log(nullptr, AV_LOG_ERROR, "an error of a hostile stream %d\n", 1);
  av_log(nullptr, AV_LOG_FATAL, "out of %s\n", "memory");
  spdlog::set_default_logger(previous);
  std::vector<spdlog::details::log_msg_buffer> lines = sink->last_raw();
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(sink->last_formatted());
  // One line, FFmpeg's newline dropped, at error level, named as FFmpeg's.
  EXPECT_EQ(std::string(lines[0].payload.data(), lines[0].payload.size()),
            "ffmpeg: out of memory");
  EXPECT_EQ(lines[0].level, spdlog::level::err);
}

}  // namespace
}  // namespace lastframe::media
