#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>

#include "core/mutex.h"

namespace lastframe {

// One bounded resource (connections, streams, buffered bytes...): how much is
// in use, its maximum, and how often a caller was refused. Lock-free: checked
// on every connection and request.
class Limit {
 public:
  Limit(std::string name, std::string unit, uint64_t max)
      : name_(std::move(name)), unit_(std::move(unit)), max_(max) {}
  Limit(const Limit&) = delete;
  Limit& operator=(const Limit&) = delete;

  // Takes |n| if that keeps use within the maximum; otherwise counts a refusal.
  bool TryAcquire(uint64_t n = 1);
  void Release(uint64_t n = 1);
  // Takes |n| even past the maximum (what was admitted before a restart comes back).
  void AcquireAnyway(uint64_t n = 1) { in_use_.fetch_add(n, std::memory_order_relaxed); }
  // A refusal decided elsewhere (a per-address count, a size check).
  void CountRefusal() { refusals_.fetch_add(1, std::memory_order_relaxed); }

  const std::string& name() const { return name_; }
  const std::string& unit() const { return unit_; }
  uint64_t max() const { return max_; }
  uint64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }

 private:
  const std::string name_;
  const std::string unit_;
  const uint64_t max_;
  std::atomic<uint64_t> in_use_{0};
  std::atomic<uint64_t> refusals_{0};
};

// Every limit of one server, named, for /metrics. Limits live as long as the set.
class Limits {
 public:
  Limit& Add(std::string name, std::string unit, uint64_t max);
  // Prometheus text: lastframe_limit_max, lastframe_limit_in_use and
  // lastframe_limit_refusals_total, labelled by limit.
  std::string Prometheus() const;

 private:
  mutable Mutex mu_;
  std::deque<Limit> limits_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe
