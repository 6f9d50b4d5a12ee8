#include "core/limits.h"

#include "core/metrics.h"

namespace lastframe {

bool Limit::TryAcquire(uint64_t n) {
  uint64_t used = in_use_.load(std::memory_order_relaxed);
  do {
    if (used > max_ || n > max_ - used) {
      refusals_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!in_use_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

void Limit::Release(uint64_t n) {
  uint64_t used = in_use_.load(std::memory_order_relaxed);
  while (
      !in_use_.compare_exchange_weak(used, used >= n ? used - n : 0, std::memory_order_relaxed)) {
  }
}

Limit& Limits::Add(std::string name, std::string unit, uint64_t max) {
  MutexLock lock(mu_);
  return limits_.emplace_back(std::move(name), std::move(unit), max);
}

std::string Limits::Prometheus() const {
  struct Row {
    std::vector<std::string> labels;
    double max, in_use, refusals;
  };
  std::vector<Row> rows;
  {
    MutexLock lock(mu_);
    for (const Limit& l : limits_)
      rows.push_back({{l.name(), l.unit()},
                      static_cast<double>(l.max()),
                      static_cast<double>(l.in_use()),
                      static_cast<double>(l.refusals())});
  }
  const std::vector<std::string> names = {"limit", "unit"};
  metrics::TextWriter w;
  auto family = [&](const char* name, metrics::Type type, const char* help, double Row::*value) {
    w.Header(name, type, help);
    for (const Row& r : rows) w.Sample(name, names, r.labels, r.*value);
  };
  family("lastframe_limit_max", metrics::Type::kGauge,
         "The configured maximum of each bounded resource.", &Row::max);
  family("lastframe_limit_in_use", metrics::Type::kGauge,
         "How much of each bounded resource is in use.", &Row::in_use);
  family("lastframe_limit_refusals_total", metrics::Type::kCounter,
         "Requests refused because a limit was reached.", &Row::refusals);
  return w.Take();
}

}  // namespace lastframe
