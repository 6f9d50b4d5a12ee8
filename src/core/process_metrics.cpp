#include "core/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace lastframe::metrics {
namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double start_time_seconds = 0;  // since the epoch
  double virtual_bytes = 0;
  double resident_bytes = 0;
  double threads = 0;
};

// /proc/self/stat's fields after the command name (which may hold spaces and
// parentheses: the last ')' ends it).
bool ReadStat(ProcStat* out) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  // f[0] is field 3 (state): field N is f[N - 3].
  if (f.size() < 22) return false;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  out->cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
  out->threads = std::stod(f[20 - 3]);
  out->virtual_bytes = std::stod(f[23 - 3]);
  out->resident_bytes = std::stod(f[24 - 3]) * page;
  // Start time is in ticks since boot; boot time is "btime" in /proc/stat.
  std::ifstream stat("/proc/stat");
  for (std::string l; std::getline(stat, l);)
    if (l.rfind("btime ", 0) == 0)
      out->start_time_seconds = std::stod(l.substr(6)) + std::stod(f[22 - 3]) / ticks;
  return true;
}

double OpenFds() {
  std::error_code ec;
  double n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n > 0 ? n - 1 : 0;  // less the directory's own descriptor
}

}  // namespace

Registry::CollectorHandle AddProcessMetrics(Registry& registry, const std::string& version,
                                            const std::string& commit) {
  return registry.AddCollector([version, commit](TextWriter& w) {
    ProcStat s;
    if (ReadStat(&s)) {
      w.Header("process_cpu_seconds_total", Type::kCounter,
               "Total user and system CPU time spent in seconds.");
      w.Sample("process_cpu_seconds_total", {}, {}, s.cpu_seconds);
      w.Header("process_resident_memory_bytes", Type::kGauge, "Resident memory size in bytes.");
      w.Sample("process_resident_memory_bytes", {}, {}, s.resident_bytes);
      w.Header("process_virtual_memory_bytes", Type::kGauge, "Virtual memory size in bytes.");
      w.Sample("process_virtual_memory_bytes", {}, {}, s.virtual_bytes);
      w.Header("process_threads", Type::kGauge, "Number of OS threads in the process.");
      w.Sample("process_threads", {}, {}, s.threads);
      w.Header("process_start_time_seconds", Type::kGauge,
               "Start time of the process since unix epoch in seconds.");
      w.Sample("process_start_time_seconds", {}, {}, s.start_time_seconds);
    }
    w.Header("process_open_fds", Type::kGauge, "Number of open file descriptors.");
    w.Sample("process_open_fds", {}, {}, OpenFds());
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
      w.Header("process_max_fds", Type::kGauge, "Maximum number of open file descriptors.");
      w.Sample("process_max_fds", {}, {},
               nofile.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(nofile.rlim_cur));
    }
    w.Header("lastframe_build_info", Type::kGauge,
             "The version and commit lastframe was built from (always 1).");
    w.Sample("lastframe_build_info", {"version", "commit"}, {version, commit}, 1);
  });
}

}  // namespace lastframe::metrics
