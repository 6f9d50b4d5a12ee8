#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/status.h"
#include "store/stream_store.h"

namespace lastframe::ingest {

struct DemoOptions {
  std::string stream = "demo";
  // The original recipe's stream profile.
  int width = 640;
  int height = 480;
  int fps = 5;
  int gop = 10;  // 2 s
  int64_t bitrate = 1'000'000;
};

// An in-process synthetic camera: draws a moving pattern with a visible clock,
// encodes it as H.264 with libavcodec, muxes it as live Matroska and pushes the
// bytes through the same PushSession a network producer gets. Real time.
class DemoProducer {
 public:
  DemoProducer(store::StreamStore& store, DemoOptions options);
  ~DemoProducer();  // stops

  // Opens the encoder and starts the producer thread.
  Status Start();
  void Stop();

 private:
  void Run();

  store::StreamStore& store_;
  const DemoOptions options_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace lastframe::ingest
