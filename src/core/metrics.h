#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mutex.h"

// Prometheus metrics in its conventions: counters end in _total, times are
// seconds and sizes bytes, label sets are bounded. Updating a metric is one
// relaxed atomic operation (no lock): callers look a labelled child up once,
// where the label values are known, and keep the reference.
namespace lastframe::metrics {

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, +Inf last
  std::atomic<double> sum_{0};
};

// Buckets for durations, in seconds: 100 us to 30 s.
const std::vector<double>& LatencyBuckets();
// Buckets for sizes, in bytes: 1 KiB to 64 MiB, by 4.
const std::vector<double>& SizeBuckets();

enum class Type { kCounter, kGauge, kHistogram };

// One metric name: its help, type, label names, and a child per label-value
// tuple. Children live as long as the family (references stay valid).
template <typename T>
class Family {
 public:
  // |max_children| bounds the label sets: past it, every new tuple shares the
  // child whose values are all "other" (a metric never grows without bound).
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make,
         size_t max_children)
      : label_names_(std::move(label_names)), make_(std::move(make)), max_(max_children) {}

  // The child for |values| (one per label name), made on first use. Takes a
  // lock: look children up once, not per event, where the values are fixed.
  T& With(const std::vector<std::string>& values) {
    MutexLock lock(mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
    std::vector<std::string> key = values;
    if (key.size() != label_names_.size() || children_.size() >= max_)
      key.assign(label_names_.size(), "other");
    auto& slot = children_[key];
    if (!slot) slot = make_();
    return *slot;
  }

  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls |f(values, child)| for each child, in label order.
  void ForEach(const std::function<void(const std::vector<std::string>&, const T&)>& f) const {
    MutexLock lock(mu_);
    for (const auto& [values, child] : children_) f(values, *child);
  }

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  const size_t max_;
  mutable Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ LF_GUARDED_BY(mu_);
};

// Writes metric families in Prometheus' text format (version 0.0.4).
class TextWriter {
 public:
  // "# HELP" and "# TYPE" lines; then Sample() for each of its samples.
  void Header(const std::string& name, Type type, const std::string& help);
  // name{label="value",...} value
  void Sample(const std::string& name, const std::vector<std::string>& label_names,
              const std::vector<std::string>& label_values, double value);
  void Histogram(const std::string& name, const std::vector<std::string>& label_names,
                 const std::vector<std::string>& label_values, const Histogram::Snapshot& h);
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Every metric of the process. Families are registered once, usually as
// function-local statics beside the code they count, and live for ever.
class Registry {
 public:
  // The process's registry, which /metrics shows.
  static Registry& Global();

  Family<Counter>& Counters(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {}, size_t max_children = 64);
  Family<Gauge>& Gauges(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {}, size_t max_children = 64);
  Family<Histogram>& Histograms(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> bounds,
                                size_t max_children = 64);
  // Unlabelled shorthands.
  Counter& AddCounter(const std::string& name, const std::string& help) {
    return Counters(name, help).With({});
  }
  Gauge& AddGauge(const std::string& name, const std::string& help) {
    return Gauges(name, help).With({});
  }
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds) {
    return Histograms(name, help, {}, std::move(bounds)).With({});
  }

  // Values computed when /metrics is read (the process's CPU, a count kept
  // elsewhere). A collector lives as long as the returned handle.
  using Collector = std::function<void(TextWriter&)>;
  class CollectorHandle {
   public:
    CollectorHandle() = default;
    CollectorHandle(Registry* r, uint64_t id) : registry_(r), id_(id) {}
    CollectorHandle(CollectorHandle&& o) noexcept { *this = std::move(o); }
    CollectorHandle& operator=(CollectorHandle&& o) noexcept;
    ~CollectorHandle();

   private:
    Registry* registry_ = nullptr;
    uint64_t id_ = 0;
  };
  [[nodiscard]] CollectorHandle AddCollector(Collector c);

  std::string Prometheus() const;

 private:
  struct Entry {
    std::string name, help;
    Type type;
    std::unique_ptr<Family<Counter>> counters;
    std::unique_ptr<Family<Gauge>> gauges;
    std::unique_ptr<Family<Histogram>> histograms;
  };
  Entry& Find(const std::string& name, Type type, const std::string& help) LF_REQUIRES(mu_);
  void RemoveCollector(uint64_t id);

  mutable Mutex mu_;
  std::deque<Entry> entries_ LF_GUARDED_BY(mu_);
  std::map<uint64_t, Collector> collectors_ LF_GUARDED_BY(mu_);
  uint64_t next_collector_ LF_GUARDED_BY(mu_) = 1;
};

// Seconds since |start| on a steady clock, for Histogram::Observe.
double SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace lastframe::metrics
