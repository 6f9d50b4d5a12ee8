#include "core/metrics.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <thread>

#include "core/process_metrics.h"

namespace lastframe::metrics {
namespace {

// The sample lines of |text| that start with |prefix|.
std::vector<std::string> Lines(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    std::string line = text.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

TEST(Metrics, CountersAndGaugesAreWrittenInPrometheusTextWithEscapedLabels) {
  Registry r;
  Family<Counter>& acks = r.Counters("test_acks_total", "Acks \\ sent.", {"type"});
  acks.With({"PERSISTED"}).Add(3);
  acks.With({"ERROR"}).Add();
  acks.With({"PERSISTED"}).Add();
  r.AddGauge("test_streams", "Streams known.").Set(2.5);
  r.Counters("test_odd_total", "Odd values.", {"v"}).With({"a\"b\\c\nd"}).Add();
  const std::string text = r.Prometheus();
  EXPECT_NE(text.find("# HELP test_acks_total Acks \\\\ sent.\n# TYPE test_acks_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(Lines(text, "test_acks_total{"),
            (std::vector<std::string>{"test_acks_total{type=\"ERROR\"} 1",
                                      "test_acks_total{type=\"PERSISTED\"} 4"}));
  EXPECT_EQ(Lines(text, "test_streams "), std::vector<std::string>{"test_streams 2.5"});
  EXPECT_EQ(Lines(text, "test_odd_total{"),
            std::vector<std::string>{"test_odd_total{v=\"a\\\"b\\\\c\\nd\"} 1"});
}

TEST(Metrics, RegisteringANameAgainGivesTheSameFamily) {
  Registry r;
  Counter& a = r.AddCounter("test_total", "One.");
  Counter& b = r.AddCounter("test_total", "One.");
  EXPECT_EQ(&a, &b);
  a.Add(2);
  EXPECT_EQ(Lines(r.Prometheus(), "test_total"), std::vector<std::string>{"test_total 2"});
}

TEST(Metrics, LabelSetsAreBoundedPastTheCapEveryNewTupleIsOther) {
  Registry r;
  Family<Counter>& f = r.Counters("test_by_stream_total", "Capped.", {"stream"}, 2);
  f.With({"a"}).Add();
  f.With({"b"}).Add();
  f.With({"c"}).Add();
  f.With({"d"}).Add();
  f.With({"a"}).Add();
  EXPECT_EQ(Lines(r.Prometheus(), "test_by_stream_total{"),
            (std::vector<std::string>{"test_by_stream_total{stream=\"a\"} 2",
                                      "test_by_stream_total{stream=\"b\"} 1",
                                      "test_by_stream_total{stream=\"other\"} 2"}));
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  Histogram& h = r.AddHistogram("test_seconds", "Times.", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.1);  // "le": a value on a bound counts in that bucket
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(
      Lines(r.Prometheus(), "test_seconds"),
      (std::vector<std::string>{
          "test_seconds_bucket{le=\"0.1\"} 2", "test_seconds_bucket{le=\"1\"} 3",
          "test_seconds_bucket{le=\"+Inf\"} 4", "test_seconds_sum 7.65", "test_seconds_count 4"}));
}

TEST(Metrics, LabelledHistogramsPutLeLast) {
  Registry r;
  r.Histograms("test_request_seconds", "Times.", {"route", "code"}, {1})
      .With({"api", "2xx"})
      .Observe(0.5);
  EXPECT_EQ(Lines(r.Prometheus(), "test_request_seconds_bucket"),
            (std::vector<std::string>{
                "test_request_seconds_bucket{route=\"api\",code=\"2xx\",le=\"1\"} 1",
                "test_request_seconds_bucket{route=\"api\",code=\"2xx\",le=\"+Inf\"} 1"}));
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = r.AddCounter("test_total", "Many.");
  Histogram& h = r.AddHistogram("test_seconds", "Many.", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Add();
        h.Observe(1);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.snapshot().count, 40000u);
  EXPECT_EQ(h.snapshot().sum, 40000.0);
}

TEST(Metrics, CollectorsShowWhileTheirHandleLives) {
  Registry r;
  {
    Registry::CollectorHandle handle = r.AddCollector([](TextWriter& w) {
      w.Header("test_computed", Type::kGauge, "Computed when read.");
      w.Sample("test_computed", {}, {}, 42);
    });
    EXPECT_EQ(Lines(r.Prometheus(), "test_computed "),
              std::vector<std::string>{"test_computed 42"});
    Registry::CollectorHandle moved = std::move(handle);
    EXPECT_EQ(Lines(r.Prometheus(), "test_computed ").size(), 1u);
  }
  EXPECT_EQ(r.Prometheus().find("test_computed"), std::string::npos);
}

double Value(const std::string& text, const std::string& name) {
  std::vector<std::string> lines = Lines(text, name + " ");
  EXPECT_EQ(lines.size(), 1u) << name << "\n" << text;
  return lines.empty() ? -1 : std::stod(lines[0].substr(name.size() + 1));
}

TEST(ProcessMetrics, DescribeThisProcess) {
  Registry r;
  Registry::CollectorHandle handle = AddProcessMetrics(r, "1.2.3", "abc123");
  // CPU: spend some, then compare with what getrusage says.
  auto used = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  for (volatile uint64_t spin = 0; used() < 0.1;) spin = spin + 1;
  std::vector<std::thread> threads;
  // Threads: this one and three more, parked until read.
  std::atomic<bool> go{false};
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
    });
  const std::string text = r.Prometheus();
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_GE(Value(text, "process_threads"), 4);
  EXPECT_GT(Value(text, "process_resident_memory_bytes"), 1024 * 1024);
  EXPECT_GE(Value(text, "process_virtual_memory_bytes"),
            Value(text, "process_resident_memory_bytes"));
  EXPECT_GE(Value(text, "process_open_fds"), 3);  // stdin, stdout, stderr at least
  EXPECT_GT(Value(text, "process_max_fds"), Value(text, "process_open_fds"));
  // Kernel ticks are 10 ms: /proc and getrusage agree to a few of them.
  EXPECT_NEAR(Value(text, "process_cpu_seconds_total"), used(), 0.05);
  const double now = static_cast<double>(time(nullptr));
  EXPECT_LE(Value(text, "process_start_time_seconds"), now + 1);
  EXPECT_GT(Value(text, "process_start_time_seconds"), now - 3600);
  EXPECT_EQ(
      Lines(text, "lastframe_build_info"),
      std::vector<std::string>{"lastframe_build_info{version=\"1.2.3\",commit=\"abc123\"} 1"});
}

}  // namespace
}  // namespace lastframe::metrics
