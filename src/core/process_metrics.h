#pragma once

#include <string>

#include "core/metrics.h"

namespace lastframe::metrics {

// The standard process_* metrics, read from /proc when /metrics is read
// (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_threads, process_start_time_seconds), and lastframe_build_info
// {version, commit} 1. They show while the handle lives.
[[nodiscard]] Registry::CollectorHandle AddProcessMetrics(Registry& registry,
                                                          const std::string& version,
                                                          const std::string& commit);

}  // namespace lastframe::metrics
