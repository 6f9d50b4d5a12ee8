#include "core/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace lastframe::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // The first bucket whose bound is at least v (Prometheus' "le").
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                        1,      2.5,     5,      10,    30};
  return b;
}

const std::vector<double>& SizeBuckets() {
  static const std::vector<double> b = [] {
    std::vector<double> v;
    for (double x = 1024; x <= 64.0 * 1024 * 1024; x *= 4) v.push_back(x);
    return v;
  }();
  return b;
}

namespace {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Label values: backslash, double quote and line feed escaped. Help text: the
// same but quotes.
std::string Escape(const std::string& s, bool quotes) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quotes)
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integers as integers (counters read best that way), others shortest.
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{}", v);
}

std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i)
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + Escape(values[i], true) + "\"";
  if (!extra_name.empty())
    out += (out.empty() ? "" : ",") + extra_name + "=\"" + Escape(extra_value, true) + "\"";
  return out.empty() ? "" : "{" + out + "}";
}

}  // namespace

void TextWriter::Header(const std::string& name, Type type, const std::string& help) {
  out_ += "# HELP " + name + " " + Escape(help, false) + "\n# TYPE " + name + " " + TypeName(type) +
          "\n";
}

void TextWriter::Sample(const std::string& name, const std::vector<std::string>& label_names,
                        const std::vector<std::string>& label_values, double value) {
  out_ += name + Labels(label_names, label_values) + " " + Number(value) + "\n";
}

void TextWriter::Histogram(const std::string& name, const std::vector<std::string>& label_names,
                           const std::vector<std::string>& label_values,
                           const Histogram::Snapshot& h) {
  for (size_t i = 0; i < h.cumulative.size(); ++i) {
    std::string le = i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf";
    out_ += name + "_bucket" + Labels(label_names, label_values, "le", le) + " " +
            Number(static_cast<double>(h.cumulative[i])) + "\n";
  }
  out_ += name + "_sum" + Labels(label_names, label_values) + " " + Number(h.sum) + "\n";
  out_ += name + "_count" + Labels(label_names, label_values) + " " +
          Number(static_cast<double>(h.count)) + "\n";
}

Registry& Registry::Global() {
  static Registry* registry = new Registry();  // never destroyed: statics refer to it
  return *registry;
}

Registry::Entry& Registry::Find(const std::string& name, Type type, const std::string& help) {
  for (Entry& e : entries_)
    if (e.name == name) return e;
  Entry& e = entries_.emplace_back();
  e.name = name;
  e.help = help;
  e.type = type;
  return e;
}

Family<Counter>& Registry::Counters(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names, size_t max_children) {
  MutexLock lock(mu_);
  Entry& e = Find(name, Type::kCounter, help);
  if (!e.counters)
    e.counters = std::make_unique<Family<Counter>>(
        std::move(label_names), [] { return std::make_unique<Counter>(); }, max_children);
  return *e.counters;
}

Family<Gauge>& Registry::Gauges(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, size_t max_children) {
  MutexLock lock(mu_);
  Entry& e = Find(name, Type::kGauge, help);
  if (!e.gauges)
    e.gauges = std::make_unique<Family<Gauge>>(
        std::move(label_names), [] { return std::make_unique<Gauge>(); }, max_children);
  return *e.gauges;
}

Family<Histogram>& Registry::Histograms(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds, size_t max_children) {
  MutexLock lock(mu_);
  Entry& e = Find(name, Type::kHistogram, help);
  if (!e.histograms)
    e.histograms = std::make_unique<Family<Histogram>>(
        std::move(label_names),
        [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); }, max_children);
  return *e.histograms;
}

Registry::CollectorHandle& Registry::CollectorHandle::operator=(CollectorHandle&& o) noexcept {
  if (this != &o) {
    if (registry_) registry_->RemoveCollector(id_);
    registry_ = o.registry_;
    id_ = o.id_;
    o.registry_ = nullptr;
  }
  return *this;
}

Registry::CollectorHandle::~CollectorHandle() {
  if (registry_) registry_->RemoveCollector(id_);
}

Registry::CollectorHandle Registry::AddCollector(Collector c) {
  MutexLock lock(mu_);
  uint64_t id = next_collector_++;
  collectors_[id] = std::move(c);
  return CollectorHandle(this, id);
}

void Registry::RemoveCollector(uint64_t id) {
  MutexLock lock(mu_);
  collectors_.erase(id);
}

std::string Registry::Prometheus() const {
  TextWriter w;
  MutexLock lock(mu_);
  for (const Entry& e : entries_) {
    w.Header(e.name, e.type, e.help);
    if (e.counters)
      e.counters->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
        w.Sample(e.name, e.counters->label_names(), values, static_cast<double>(c.value()));
      });
    if (e.gauges)
      e.gauges->ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
        w.Sample(e.name, e.gauges->label_names(), values, g.value());
      });
    if (e.histograms)
      e.histograms->ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
        w.Histogram(e.name, e.histograms->label_names(), values, h.snapshot());
      });
  }
  for (const auto& [id, collect] : collectors_) collect(w);
  return w.Take();
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace lastframe::metrics
