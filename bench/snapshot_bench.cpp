// The decode floor of a cold snapshot, in process: decode the newest
// fragment from its keyframe to its last frame, then encode one JPEG.
// Clips come from bench/run.py (LASTFRAME_BENCH_CLIPS=<dir of *.mkv>).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>

#include "core/clock.h"
#include "ingest/push_session.h"
#include "media/ffmpeg.h"
#include "media/image_encoder.h"
#include "snapshot/frame_decoder.h"
#include "store/stream_store.h"

namespace lastframe {
namespace {

// The newest fragment of |clip| as lastframe's own ingest cuts it.
store::FragmentView LastFragment(const std::string& clip) {
  static store::StreamStore store(SystemClock::Get(),
                                  {.retention_ms = 3'600'000, .max_bytes_per_stream = 1ull << 32});
  if (auto f = store.LatestFragment(clip); f.ok()) return *f;
  std::ifstream in(clip, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::promise<Status> done;
  auto session = ingest::PushSession::Start(store, {.stream = clip},
                                            {.on_done = [&](Status s) { done.set_value(s); }});
  (*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  (*session)->Finish();
  done.get_future().wait();
  return *store.LatestFragment(clip);
}

void BM_DecodeFloor(benchmark::State& state, const std::string& clip, int threads) {
  store::FragmentView fragment = LastFragment(clip);
  for (auto _ : state) {
    auto frame = snapshot::DecodeNewestFrame(fragment, threads);
    auto jpeg = media::EncodeImage(**frame, {media::ImageFormat::kJpeg, 80});
    benchmark::DoNotOptimize(jpeg->bytes.data());
  }
  state.counters["frames"] = static_cast<double>(fragment.frames.size());
}

void BM_EncodeOnly(benchmark::State& state, const std::string& clip) {
  store::FragmentView fragment = LastFragment(clip);
  auto frame = snapshot::DecodeNewestFrame(fragment, 1);
  for (auto _ : state) {
    auto jpeg = media::EncodeImage(**frame, {media::ImageFormat::kJpeg, 80});
    benchmark::DoNotOptimize(jpeg->bytes.data());
  }
}

}  // namespace
}  // namespace lastframe

int main(int argc, char** argv) {
  lastframe::media::QuietFfmpegLogs();
  const char* dir = std::getenv("LASTFRAME_BENCH_CLIPS");
  if (dir != nullptr) {
    std::vector<std::filesystem::path> clips;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".mkv") clips.push_back(e.path());
    std::sort(clips.begin(), clips.end());
    for (const auto& c : clips) {
      std::string name = c.stem().string();
      for (int threads : {1, 2})
        benchmark::RegisterBenchmark(
            ("floor/" + name + "/threads:" + std::to_string(threads)).c_str(),
            lastframe::BM_DecodeFloor, c.string(), threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      benchmark::RegisterBenchmark(("encode/" + name).c_str(), lastframe::BM_EncodeOnly, c.string())
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
