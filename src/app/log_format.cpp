#include "app/log_format.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <string_view>

namespace lastframe::app {

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const std::time_t seconds = duration_cast<std::chrono::seconds>(since_epoch).count();
  const auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char time[32];
  size_t n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string_view payload(msg.payload.data(), msg.payload.size());
  // A log::Event line: marker, fields, marker, message.
  std::string_view fields;
  if (payload.size() >= 2 && payload.front() == log::kFieldsMarker) {
    size_t end = payload.find(log::kFieldsMarker, 1);
    if (end != std::string_view::npos) {
      fields = payload.substr(1, end - 1);
      payload = payload.substr(end + 1);
    }
  }
  const auto level = spdlog::level::to_string_view(msg.level);
  std::string line =
      fmt::format(R"({{"time":"{}.{:03}Z","level":"{}","message":"{}")", std::string_view(time, n),
                  millis, std::string_view(level.data(), level.size()), log::JsonEscape(payload));
  if (!fields.empty()) line += "," + std::string(fields);
  line += "}\n";
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

void UseLogFormat(spdlog::logger& logger, log::Format format) {
  log::SetFormat(format);
  if (format == log::Format::kJson)
    logger.set_formatter(std::make_unique<JsonLogFormatter>());
  else
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
}

}  // namespace lastframe::app
