// The decode floor of a cold snapshot, in process: decode the newest
// fragment from its keyframe to its last frame, then encode one JPEG.
// On the 640x480 clip (p480) also the still formats, sizes, fits, rotation and
// label of issue 16, and 10-frame animated previews (still/..., preview/...).
// Clips come from bench/run.py (LASTFRAME_BENCH_CLIPS=<dir of *.mkv>).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "ingest/push_session.h"
#include "media/animation_encoder.h"
#include "media/ffmpeg.h"
#include "media/image_encoder.h"
#include "snapshot/frame_decoder.h"
#include "store/stream_store.h"

namespace lastframe {
namespace {

store::StreamStore& Store() {
  static store::StreamStore store(SystemClock::Get(),
                                  {.retention_ms = 3'600'000, .max_bytes_per_stream = 1ull << 32});
  return store;
}

// The newest fragment of |clip| as lastframe's own ingest cuts it.
store::FragmentView LastFragment(const std::string& clip) {
  store::StreamStore& store = Store();
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

// One still of the clip's newest frame per iteration; "bytes" is its size.
void BM_Still(benchmark::State& state, const std::string& clip, media::EncodeOptions options) {
  auto frame = snapshot::DecodeNewestFrame(LastFragment(clip), 1);
  size_t bytes = 0;
  for (auto _ : state) {
    auto image = media::EncodeImage(**frame, options);
    if (!image.ok()) {
      state.SkipWithError(image.status().ToString().c_str());
      return;
    }
    bytes = image->bytes.size();
    benchmark::DoNotOptimize(image->bytes.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

// The last 5 s of |clip| at 2 fps (as preview.webp's defaults sample them):
// 10 decoded frames, each shown 500 ms.
std::vector<media::FramePtr> PreviewFrames(const std::string& clip) {
  LastFragment(clip);
  std::vector<media::FramePtr> all;
  std::vector<int64_t> pts;
  auto fragments = Store().Fragments(clip, {});  // kept: a range-for would not extend it
  for (const auto& fragment : *fragments)
    (void)snapshot::DecodeEachFrame(fragment, /*threads=*/1,
                                    [&](const AVFrame& picture, int64_t t) {
                                      all.emplace_back(av_frame_clone(&picture));
                                      pts.push_back(t);
                                      return true;
                                    });
  std::vector<media::FramePtr> picked;
  for (int i = 9; i >= 0 && !pts.empty(); --i) {
    int64_t moment = pts.back() - i * 500;
    size_t k = 0;  // the frame shown at |moment|: the last at or before it
    while (k + 1 < pts.size() && pts[k + 1] <= moment) ++k;
    picked.emplace_back(av_frame_clone(all[k].get()));
  }
  return picked;
}

// One 10-frame animation per iteration; "bytes" is its size.
void BM_Preview(benchmark::State& state, const std::string& clip, media::AnimationFormat format,
                media::EncodeOptions options) {
  std::vector<media::FramePtr> frames = PreviewFrames(clip);
  if (frames.empty()) return state.SkipWithError("no frame decoded");
  size_t bytes = 0;
  for (auto _ : state) {
    auto encoder = media::AnimationEncoder::Create(format, options);
    Status added = encoder.status();
    for (size_t i = 0; i < frames.size() && added.ok(); ++i)
      added = (*encoder)->Add(*frames[i], 500);
    auto file = added.ok() ? (*encoder)->Finish() : Result<std::string>(added);
    if (!file.ok()) {
      state.SkipWithError(file.status().ToString().c_str());
      return;
    }
    bytes = file->size();
    benchmark::DoNotOptimize(file->data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["frames"] = static_cast<double>(frames.size());
}

// Issue 16's stills and previews, of the 640x480 clip's newest frame.
void RegisterFormats(const std::string& name, const std::string& clip) {
  using media::Fit;
  using media::ImageFormat;
  const std::string label = "camera-1 2026-12-01 08:06:00Z";  // as overlay=time draws it
  const std::pair<std::string, media::EncodeOptions> stills[] = {
      {"jpeg", {ImageFormat::kJpeg, 80}},
      {"png", {ImageFormat::kPng, 80}},
      {"webp", {ImageFormat::kWebp, 80}},
      {"avif", {ImageFormat::kAvif, 80}},
      {"jpeg/w320", {ImageFormat::kJpeg, 80, 320}},
      {"png/w320", {ImageFormat::kPng, 80, 320}},
      {"webp/w320", {ImageFormat::kWebp, 80, 320}},
      {"avif/w320", {ImageFormat::kAvif, 80, 320}},
      {"jpeg/cover320x320", {ImageFormat::kJpeg, 80, 320, 320, Fit::kCover}},
      {"jpeg/rotate90", {ImageFormat::kJpeg, 80, 0, 0, Fit::kFill, 90}},
      {"jpeg/overlay", {ImageFormat::kJpeg, 80, 0, 0, Fit::kFill, 0, label}},
  };
  for (const auto& [suffix, options] : stills)
    benchmark::RegisterBenchmark(("still/" + name + "/" + suffix).c_str(), BM_Still, clip, options)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  // preview.webp's default quality (PreviewOptions); GIF has none.
  const media::EncodeOptions preview = {.quality = 60, .width = 320};
  benchmark::RegisterBenchmark(("preview/" + name + "/webp/10x320").c_str(), BM_Preview, clip,
                               media::AnimationFormat::kWebp, preview)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("preview/" + name + "/gif/10x320").c_str(), BM_Preview, clip,
                               media::AnimationFormat::kGif, preview)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
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
      if (name == "p480") lastframe::RegisterFormats(name, c.string());
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
