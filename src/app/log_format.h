#pragma once

#include <spdlog/formatter.h>

#include <memory>

#include "core/log.h"

namespace lastframe::app {

// --log-format json: each line one JSON object,
//   {"time":"2026-12-01T04:32:03.123Z","level":"info","message":"...", fields...}
// with the fields of log::Event lines as members of their own.
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Makes |logger| (and log::Event) write in |format|: text lines as
// "TIME LEVEL message key=value", or JSON objects.
void UseLogFormat(spdlog::logger& logger, log::Format format);

}  // namespace lastframe::app
