// What S3's flexible checksums cost per uploaded byte (aws/checksums.h): each
// algorithm over a 1 MiB buffer, in bytes per second, with the CRC32C
// kernels measured apart so that the SSE4.2 path and its portable fallback
// both show.

#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "aws/checksums.h"
#include "aws/checksums_internal.h"

namespace {

using lastframe::aws::Checksum;
using lastframe::aws::ChecksumAlgorithm;
namespace internal = lastframe::aws::internal;

constexpr size_t kBufferBytes = 1 << 20;

const std::string& Buffer() {
  static const std::string buffer = [] {
    std::mt19937_64 rng(42);
    std::string s(kBufferBytes, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  }();
  return buffer;
}

void BM_Checksum(benchmark::State& state, ChecksumAlgorithm a) {
  const std::string& buffer = Buffer();
  Checksum checksum(a);
  for (auto _ : state) {
    checksum.Update(buffer);
    benchmark::DoNotOptimize(checksum);
  }
  benchmark::DoNotOptimize(checksum.Finish());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBufferBytes);
}
BENCHMARK_CAPTURE(BM_Checksum, crc32, ChecksumAlgorithm::kCrc32);
BENCHMARK_CAPTURE(BM_Checksum, crc32c, ChecksumAlgorithm::kCrc32c);
BENCHMARK_CAPTURE(BM_Checksum, crc64nvme, ChecksumAlgorithm::kCrc64Nvme);
BENCHMARK_CAPTURE(BM_Checksum, sha1, ChecksumAlgorithm::kSha1);
BENCHMARK_CAPTURE(BM_Checksum, sha256, ChecksumAlgorithm::kSha256);

void BM_Crc32cPortable(benchmark::State& state) {
  const std::string& buffer = Buffer();
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = internal::Crc32cPortable(crc, buffer);
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBufferBytes);
}
BENCHMARK(BM_Crc32cPortable)->Name("BM_Checksum/crc32c_portable");

void BM_Crc32cHardware(benchmark::State& state) {
  if (!internal::Crc32cHardwareAvailable()) {
    state.SkipWithError("no SSE4.2 on this CPU");
    return;
  }
  const std::string& buffer = Buffer();
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = internal::Crc32cHardware(crc, buffer);
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBufferBytes);
}
BENCHMARK(BM_Crc32cHardware)->Name("BM_Checksum/crc32c_sse42");

}  // namespace

BENCHMARK_MAIN();
