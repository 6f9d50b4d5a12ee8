// What counting costs on a hot path (issue 19): a Counter::Add and a
// Histogram::Observe, beside the floor they are built on, a relaxed atomic
// add, measured in the same run. bench/run.py reports the medians.

#include <benchmark/benchmark.h>

#include <atomic>

#include "core/metrics.h"

namespace {

using lastframe::metrics::Counter;
using lastframe::metrics::Histogram;
using lastframe::metrics::LatencyBuckets;

std::atomic<uint64_t> plain{0};

void BM_RelaxedAtomicAdd(benchmark::State& state) {
  for (auto _ : state) plain.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_RelaxedAtomicAdd)->Name("atomic_add")->Threads(1)->Threads(2);

Counter counter;

void BM_CounterAdd(benchmark::State& state) {
  for (auto _ : state) counter.Add();
}
BENCHMARK(BM_CounterAdd)->Name("counter_add")->Threads(1)->Threads(2);

Histogram histogram(LatencyBuckets());

void BM_HistogramObserve(benchmark::State& state) {
  double v = 0.0001;
  for (auto _ : state) {
    histogram.Observe(v);
    v = v < 10 ? v * 1.7 : 0.0001;  // across the buckets, as request times spread
  }
}
BENCHMARK(BM_HistogramObserve)->Name("histogram_observe")->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
