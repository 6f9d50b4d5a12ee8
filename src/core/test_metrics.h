#pragma once

// Test-only: reads the process's metrics registry as /metrics shows it. The
// registry is process-wide, so tests compare values before and after.

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.h"

namespace lastframe::metrics::test {

// The value of |series| (a name and its labels, as /metrics writes them, e.g.
// lastframe_x_total{type="A"} or a histogram's ..._count); 0 while nothing has
// registered it.
inline double MetricValue(const std::string& series) {
  std::istringstream lines(Registry::Global().Prometheus());
  for (std::string line; std::getline(lines, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return 0;
}

// How much each series named at construction has moved since.
class MetricDeltas {
 public:
  explicit MetricDeltas(const std::vector<std::string>& series) {
    for (const auto& s : series) before_[s] = MetricValue(s);
  }
  double operator[](const std::string& series) const {
    return MetricValue(series) - before_.at(series);
  }

 private:
  std::map<std::string, double> before_;
};

}  // namespace lastframe::metrics::test
