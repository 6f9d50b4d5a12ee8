#include "core/limits.h"

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
  MutexLock lock(mu_);
  std::string max, in_use, refusals;
  for (const Limit& l : limits_) {
    std::string label = "{limit=\"" + l.name() + "\",unit=\"" + l.unit() + "\"} ";
    max += "lastframe_limit_max" + label + std::to_string(l.max()) + "\n";
    in_use += "lastframe_limit_in_use" + label + std::to_string(l.in_use()) + "\n";
    refusals += "lastframe_limit_refusals_total" + label + std::to_string(l.refusals()) + "\n";
  }
  return "# HELP lastframe_limit_max The configured maximum of each bounded resource.\n"
         "# TYPE lastframe_limit_max gauge\n" +
         max +
         "# HELP lastframe_limit_in_use How much of each bounded resource is in use.\n"
         "# TYPE lastframe_limit_in_use gauge\n" +
         in_use +
         "# HELP lastframe_limit_refusals_total Requests refused because a limit was reached.\n"
         "# TYPE lastframe_limit_refusals_total counter\n" +
         refusals;
}

}  // namespace lastframe
