// Snapshot parameters (quality, width, height, expires, redirect, format,
// mode, fit, rotate, overlay, at, timestamp, max_age) as the snapshot routes
// read them (http::ParseSnapshotRequest), the preview route's
// (http::ParsePreviewRequest), the
// output size they make of a frame (media::FitSize), and the render itself
// (SnapshotService::Render on a real H.264 fragment, fuzz/media/camera.mkv).
//
// Input lines: the query string; "WxH", a source frame size for FitSize.
// Invariants: accepted values are within their bounds, for a viewer as for an
// admin; FitSize keeps what was asked and the source's shape otherwise; a
// render is the size FitSize says, or refused as too large, never larger than
// the service's pixel bound.

#include <charconv>
#include <fstream>
#include <future>
#include <sstream>

#include "camera.h"
#include "core/clock.h"
#include "core/worker_pool.h"
#include "fuzz_support.h"
#include "http/params.h"
#include "ingest/push_session.h"
#include "media/ffmpeg.h"
#include "objects/local_store.h"
#include "snapshot/snapshot_service.h"
#include "store/stream_store.h"

using namespace lastframe;

namespace {

constexpr uint64_t kMaxRenderPixels = 640 * 480;  // small: renders stay cheap

struct World {
  ManualClock clock{1'795'617'013'000};
  fuzz::ScratchDir dir;
  store::StreamStore streams{clock, {}};
  WorkerPool workers{1, 16};
  std::unique_ptr<objects::LocalStore> objects;
  std::unique_ptr<snapshot::SnapshotService> snapshots;
};
World* world = nullptr;

void PushCamera() { fuzz::PushCamera(world->streams, {.stream = "cam"}); }

void CheckFitSize(int src_w, int src_h, int req_w, int req_h) {
  int w = -1, h = -1;
  media::FitSize(src_w, src_h, req_w, req_h, &w, &h);
  FUZZ_CHECK(w >= 1 && h >= 1, "FitSize made an empty image");
  if (req_w > 0) FUZZ_CHECK(w == req_w, "the width asked for is not kept");
  if (req_h > 0) FUZZ_CHECK(h == req_h, "the height asked for is not kept");
  if (req_w <= 0 && req_h <= 0) FUZZ_CHECK(w == src_w && h == src_h, "the source size is not kept");
  // One side asked: the other keeps the source's shape, to the pixel.
  if (req_w > 0 && req_h <= 0) {
    double exact = static_cast<double>(src_h) * req_w / src_w;
    FUZZ_CHECK(std::abs(h - exact) <= 0.5 || (exact < 1 && h == 1), "height off the aspect ratio");
  }
  if (req_h > 0 && req_w <= 0) {
    double exact = static_cast<double>(src_w) * req_h / src_h;
    FUZZ_CHECK(std::abs(w - exact) <= 0.5 || (exact < 1 && w == 1), "width off the aspect ratio");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  media::QuietFfmpegLogs();
  world = new World();
  objects::LocalStoreOptions o;
  o.root = world->dir.path() / "objects";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = {"AKIDEXAMPLE", Secret("secret"), ""};
  auto opened = objects::LocalStore::Open(o, world->clock);
  FUZZ_CHECK(opened.ok(), opened.status().ToString());
  world->objects = std::move(*opened);
  world->snapshots = std::make_unique<snapshot::SnapshotService>(
      world->streams, *world->objects, world->workers, world->clock,
      snapshot::ServiceOptions{.max_render_pixels = kMaxRenderPixels});
  PushCamera();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 2);
  auto params = http::Params::Parse(fuzz::Field(fields, 0));
  if (!params.ok()) return 0;
  const http::SnapshotLimits viewer{.max_expires_s = 86'400}, admin{};
  std::optional<http::SnapshotRequest> parsed;
  for (const auto* limits : {&viewer, &admin}) {
    auto r = http::ParseSnapshotRequest(*params, *limits, std::nullopt);
    if (!r.ok()) {
      FUZZ_CHECK(r.status().code() == Code::kInvalidArgument, r.status().ToString());
      continue;
    }
    const snapshot::SnapshotOptions& e = r->options;
    FUZZ_CHECK(e.quality >= 1 && e.quality <= 100, "quality");
    FUZZ_CHECK(e.width >= 0 && e.width <= limits->max_dimension, "width");
    FUZZ_CHECK(e.height >= 0 && e.height <= limits->max_dimension, "height");
    FUZZ_CHECK(r->expires_s >= 1 && r->expires_s <= limits->max_expires_s, "expires");
    auto fixed = http::ParseSnapshotRequest(*params, *limits, snapshot::ImageFormat::kPng);
    FUZZ_CHECK(fixed.ok() || !params->Get("format"), "a fixed format refused another reason");
    if (fixed.ok()) FUZZ_CHECK(fixed->options.format == snapshot::ImageFormat::kPng, "fixed");
    FUZZ_CHECK(e.rotate_degrees % 90 == 0 && e.rotate_degrees >= 0 && e.rotate_degrees < 360,
               "rotate");
    FUZZ_CHECK(e.fit == snapshot::Fit::kFill || (e.width > 0 && e.height > 0),
               "contain or cover without a box");
    FUZZ_CHECK(!r->max_age_ms || (*r->max_age_ms >= 0 && *r->max_age_ms % 1000 == 0), "max_age");
    parsed = *r;
  }
  for (auto format : {snapshot::ImageFormat::kWebp, snapshot::ImageFormat::kGif}) {
    auto preview = http::ParsePreviewRequest(*params, format);
    if (!preview.ok()) {
      FUZZ_CHECK(preview.status().code() == Code::kInvalidArgument, preview.status().ToString());
      continue;
    }
    const snapshot::PreviewOptions& o = preview->options;
    FUZZ_CHECK(o.format == format, "preview format");
    FUZZ_CHECK(o.seconds >= 1 && o.seconds <= snapshot::kMaxPreviewSeconds, "seconds");
    FUZZ_CHECK(o.fps >= 1 && o.fps <= snapshot::kMaxPreviewFps, "fps");
    FUZZ_CHECK(o.width >= 0 && o.width <= snapshot::kMaxPreviewWidth, "preview width");
  }

  // FitSize for a source frame of the size the input names (what decoders make).
  const std::string wxh = fuzz::Field(fields, 1);
  int src_w = 0, src_h = 0;
  size_t x = wxh.find('x');
  if (x != std::string::npos) {
    std::from_chars(wxh.data(), wxh.data() + x, src_w);
    std::from_chars(wxh.data() + x + 1, wxh.data() + wxh.size(), src_h);
  }
  if (parsed && src_w >= 1 && src_w <= 16384 && src_h >= 1 && src_h <= 16384)
    CheckFitSize(src_w, src_h, parsed->options.width, parsed->options.height);

  if (!parsed) return 0;
  int want_w = 0, want_h = 0;
  const bool turned = parsed->options.rotate_degrees % 180 != 0;  // the camera is 64x48
  media::FitSize(turned ? 48 : 64, turned ? 64 : 48, parsed->options.width, parsed->options.height,
                 &want_w, &want_h);
  // Large renders are refused without a decode; keep the fuzzer's renders small.
  if (static_cast<uint64_t>(want_w) * static_cast<uint64_t>(want_h) > 4 * kMaxRenderPixels)
    return 0;
  auto image = world->snapshots->Render("cam", parsed->options);
  if (static_cast<uint64_t>(want_w) * static_cast<uint64_t>(want_h) > kMaxRenderPixels) {
    FUZZ_CHECK(!image.ok() && image.status().reason() == Reason::kTooManyPixels,
               "a render past the pixel bound: " + image.status().ToString());
    return 0;
  }
  FUZZ_CHECK(image.ok(), image.status().ToString());
  FUZZ_CHECK(image->width == want_w && image->height == want_h,
             "rendered " + std::to_string(image->width) + "x" + std::to_string(image->height) +
                 ", FitSize said " + std::to_string(want_w) + "x" + std::to_string(want_h));
  FUZZ_CHECK(image->format == parsed->options.format && !image->bytes.empty(), "format");
  return 0;
}
