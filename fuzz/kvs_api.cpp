// Kinesis Video's JSON operations, through KvsApi::Handle as the server calls
// it: createStream, describeStream, listStreams, deleteStream,
// updateDataRetention, getDataEndpoint, update/describeImageGeneration-
// Configuration, listFragments, getMediaForFragmentList, getClip, getImages,
// getMedia, and the operations answered 501.
//
// Input: line 1 the operation ("listFragments"); line 2 empty to have the
// request signed here (SigV4, service kinesisvideo, the server's key pair and
// pinned clock), or an Authorization header to send as it is; the rest is the
// JSON body. Each input meets a fresh store holding the stream "cam" with two
// fragments of a real H.264 camera (fuzz/media/camera.mkv), and a registry
// that knows it.
// Invariants: every request is answered exactly once, with a status Kinesis
// Video uses (never 500), errors carry x-amzn-ErrorType and a JSON message.

#include "http/kvs_api.h"

#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aws/sigv4.h"
#include "camera.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "core/worker_pool.h"
#include "fuzz_support.h"
#include "ingest/push_session.h"
#include "kvs/kvs_service.h"
#include "kvs/stream_registry.h"
#include "media/ffmpeg.h"
#include "objects/local_store.h"
#include "snapshot/scheduled_images.h"
#include "snapshot/snapshot_service.h"
#include "store/stream_store.h"

using namespace lastframe;
namespace bhttp = boost::beast::http;

namespace {

constexpr int64_t kNowMs = 1'795'617'013'000;   // 2026-11-25T14:30:13Z
constexpr int64_t kPushedMs = kNowMs - 30'000;  // when the camera's fragments arrived
const aws::Credentials kCredentials{"AKIDEXAMPLE",
                                    Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), ""};

// What every input shares: the camera's fragments, and the image side (a
// store for images, the snapshot service and the image generation schedule).
struct World {
  ManualClock clock{kNowMs};
  fuzz::ScratchDir dir;
  std::vector<store::FragmentView> fragments;
  store::StreamStore images_source{clock, {}};
  WorkerPool workers{1, 64};
  std::unique_ptr<objects::LocalStore> objects;
  std::unique_ptr<snapshot::SnapshotService> snapshots;
  std::unique_ptr<snapshot::ScheduledImages> images;
  aws::SigV4 signer{kCredentials, "us-east-1", "kinesisvideo", clock};
};

World* world = nullptr;

std::vector<store::FragmentView> PushCamera() {
  ManualClock clock(kPushedMs);
  store::StreamStore store(clock, {});
  fuzz::PushCamera(store,
                   {.stream = "cam", .absolute_timecodes = false, .producer_start_ms = kPushedMs});
  auto fragments = store.Find("cam")->Fragments();
  FUZZ_CHECK(fragments.size() >= 2, "the camera file should make two fragments");
  return fragments;
}

// A streamed body (GetMedia) that takes what is written, then closes.
class Sink final : public http::BodyWriter {
 public:
  bool Write(std::string chunk) override {
    std::lock_guard lock(mu_);
    bytes_ += chunk.size();
    open_ = false;  // one pass over the fragments is enough
    return true;
  }
  bool TryWrite(std::string chunk, size_t) override { return Write(std::move(chunk)); }
  void End() override {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  bool open() const override {
    std::lock_guard lock(mu_);
    return open_;
  }

 private:
  mutable std::mutex mu_;
  size_t bytes_ = 0;
  bool open_ = true;
};

bool KnownStatus(unsigned s) {
  for (unsigned ok : {200u, 400u, 401u, 403u, 404u, 405u, 429u, 501u, 503u})
    if (s == ok) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  media::QuietFfmpegLogs();
  world = new World();
  world->fragments = PushCamera();
  objects::LocalStoreOptions o;
  o.root = world->dir.path() / "objects";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = kCredentials;
  auto opened = objects::LocalStore::Open(o, world->clock);
  FUZZ_CHECK(opened.ok(), opened.status().ToString());
  world->objects = std::move(*opened);
  world->snapshots = std::make_unique<snapshot::SnapshotService>(
      world->images_source, *world->objects, world->workers, world->clock);
  world->images = std::make_unique<snapshot::ScheduledImages>(*world->snapshots, *world->objects,
                                                              world->workers, world->clock);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 3);
  const std::string op = "/" + fuzz::Field(fields, 0);
  const std::string authorization = fuzz::Field(fields, 1);
  const std::string body = fuzz::Field(fields, 2);

  store::StreamStore streams(world->clock, {});
  streams.Restore({store::RecoveredStream{"cam", std::nullopt, world->fragments}});
  auto registry = kvs::StreamRegistry::Open("");
  FUZZ_CHECK(registry.ok(), registry.status().ToString());
  (*registry)->Ensure("cam", kPushedMs);  // as a first describeStream would: ARNs name it
  // GetImages renders this input's fragments, through an engine over its store.
  snapshot::SnapshotService engine(streams, *world->objects, world->workers, world->clock);
  kvs::KvsService service(
      streams, streams, **registry, &engine, world->images.get(), world->workers, world->clock,
      kvs::KvsServiceOptions{.public_url = "http://127.0.0.1:8080", .images_bucket = "lastframe"});
  auto kvs =
      std::make_unique<http::KvsApi>(service, kCredentials, world->clock, http::KvsApiOptions{});

  http::Request req;
  req.header.method(bhttp::verb::post);
  req.header.target(op);
  req.header.set(bhttp::field::host, "127.0.0.1:8080");
  req.header.set("x-amz-date", FormatAmzDate(kNowMs));
  req.header.set(bhttp::field::content_type, "application/json");
  req.path = req.raw_path = op;
  req.body = body;
  if (authorization.empty()) {
    aws::CanonicalRequest canonical;
    canonical.method = "POST";
    canonical.path = op;
    canonical.headers = {{"host", "127.0.0.1:8080"}, {"x-amz-date", FormatAmzDate(kNowMs)}};
    canonical.payload_hash = aws::Sha256Hex(body);
    req.header.set(bhttp::field::authorization, world->signer.Authorization(canonical, kNowMs));
  } else {
    req.header.set(bhttp::field::authorization, authorization);
  }

  std::promise<http::Response> answered;
  std::atomic<int> answers{0};
  auto answer = [&](http::Response res) {
    FUZZ_CHECK(answers.fetch_add(1) == 0, "a request was answered twice");
    answered.set_value(std::move(res));
  };
  req.respond_streaming = [&](http::Response head, http::StreamStart start) {
    start(std::make_shared<Sink>());
    answer(std::move(head));
  };
  if (kvs->Owns(req)) {
    kvs->Handle(std::move(req), answer);
    auto future = answered.get_future();
    http::Response res = future.get();
    const unsigned status = res.result_int();
    if (std::getenv("LASTFRAME_FUZZ_VERBOSE"))  // to see what seeds reach
      std::fprintf(stderr, "%s -> %u %s\n", op.c_str(), status, res.body().substr(0, 160).c_str());
    FUZZ_CHECK(KnownStatus(status), "status " + std::to_string(status) + ": " + res.body());
    if (status != 200) {
      FUZZ_CHECK(res.find("x-amzn-ErrorType") != res.end(), "an error without its type");
      auto j = nlohmann::json::parse(res.body(), nullptr, false);
      FUZZ_CHECK(j.is_object() && j.contains("message"), "an error body: " + res.body());
    } else if (res[bhttp::field::content_type] == "application/json") {
      FUZZ_CHECK(nlohmann::json::parse(res.body(), nullptr, false).is_object(), res.body());
    }
  }
  // Followers (GetMedia) end once their stream closes; then the service joins them.
  for (const auto& info : streams.List())
    if (auto s = streams.Find(info.name)) s->Close();
  kvs.reset();
  service.Shutdown();
  return 0;
}
