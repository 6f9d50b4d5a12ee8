// Matroska ingest: PutMedia body bytes -> PushSession (libwebm's parser in
// MkvParser on the parse pool, EbmlBoundary, Fragmenter) -> fragments in a store.
//
// Input: one flags byte (bit 0: ABSOLUTE timecodes; bit 1: the next 8 bytes are
// x-amzn-producer-start-timestamp in ms; bits 2-3 how the body is cut into
// socket reads), then the body. Invariants: the session ends; acks are JSON,
// each RECEIVED followed by PERSISTED; every stored fragment begins at its only
// keyframe, is complete, and numbers grow; EbmlBoundary's verdict does not
// depend on how the bytes were cut.
//
// libwebm (and libavformat, which muxes what is persisted) are not
// instrumented (Debian's builds): coverage guides the fuzzer through our code,
// and ASan sees their memory use only through the allocations and copies it
// intercepts.

#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "fuzz_support.h"
#include "ingest/ebml_boundary.h"
#include "ingest/push_session.h"
#include "media/ffmpeg.h"
#include "store/stream_store.h"

using namespace lastframe;

namespace {

// Socket-like read sizes from |seed|: 1..|max| bytes each.
class Cuts {
 public:
  Cuts(uint64_t seed, size_t max) : state_(seed | 1), max_(max) {}
  size_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return 1 + state_ % max_;
  }

 private:
  uint64_t state_;
  size_t max_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  media::QuietFfmpegLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  ++data, --size;
  ingest::PushOptions options;
  options.stream = "fuzz";
  options.absolute_timecodes = flags & 1;
  if (flags & 2) {
    if (size < 8) return 0;
    int64_t start = 0;
    std::memcpy(&start, data, 8);
    options.producer_start_ms = start;
    data += 8, size -= 8;
  }
  static const size_t kMaxCut[] = {1, 7, 512, 65536};
  const size_t max_cut = kMaxCut[(flags >> 2) & 3];

  // EbmlBoundary: whole, then in pieces: the same verdict.
  {
    ingest::EbmlBoundary whole, pieces;
    whole.Feed(data, size);
    Cuts cuts(size, max_cut);
    for (size_t off = 0; off < size;) {
      size_t n = std::min(size - off, cuts.Next());
      pieces.Feed(data + off, n);
      off += n;
    }
    FUZZ_CHECK(whole.AtBoundary() == pieces.AtBoundary(), "EbmlBoundary depends on the cuts");
  }

  ManualClock clock(1'764'000'000'000);
  store::StreamStore store(clock, {});
  std::mutex mu;
  std::vector<nlohmann::json> acks;
  std::promise<Status> done;
  auto session = ingest::PushSession::Start(
      store, options,
      {.on_ack =
           [&](std::string ack) {
             auto j = nlohmann::json::parse(ack, nullptr, false);
             FUZZ_CHECK(j.is_object(), "an ack is not a JSON object: " + ack);
             std::lock_guard lock(mu);
             acks.push_back(std::move(j));
           },
       .on_space = nullptr,
       .on_done = [&](Status s) { done.set_value(std::move(s)); }});
  FUZZ_CHECK(session.ok(), session.status().ToString());
  Cuts cuts(size * 31 + flags, max_cut);
  for (size_t off = 0; off < size;) {
    size_t n = std::min(size - off, cuts.Next());
    if (!(*session)->Feed(data + off, n)) (*session)->WaitForSpace();
    off += n;
  }
  (*session)->Finish();
  Status status = done.get_future().get();
  const uint64_t acknowledged = (*session)->fragments();
  session->reset();

  size_t received = 0, persisted = 0;
  for (const auto& a : acks) {
    const std::string type = a.value("EventType", "");
    FUZZ_CHECK(type == "RECEIVED" || type == "PERSISTED" || type == "ERROR", a.dump());
    received += type == "RECEIVED";
    persisted += type == "PERSISTED";
    if (type == "ERROR") FUZZ_CHECK(a.contains("ErrorId") && a.contains("ErrorCode"), a.dump());
  }
  FUZZ_CHECK(received == persisted && received == acknowledged,
             "RECEIVED " + std::to_string(received) + ", PERSISTED " + std::to_string(persisted) +
                 ", fragments " + std::to_string(acknowledged));
  if (!status.ok())
    FUZZ_CHECK(status.code() != Code::kInternal,
               "a bad body is not an internal error: " + status.ToString());
  if (auto stream = store.Find("fuzz")) {
    uint64_t last = 0;
    for (const auto& f : stream->Fragments()) {
      FUZZ_CHECK(!f.frames.empty() && f.frames.front().keyframe, "a fragment without its keyframe");
      for (size_t i = 1; i < f.frames.size(); ++i)
        FUZZ_CHECK(!f.frames[i].keyframe, "a keyframe inside a fragment");
      FUZZ_CHECK(f.complete, "a stored fragment was left open");
      FUZZ_CHECK(f.number > last, "fragment numbers do not grow");
      FUZZ_CHECK(f.codec != nullptr, "a fragment without codec parameters");
      FUZZ_CHECK(f.duration_ms >= 0, "a negative duration");
      last = f.number;
    }
  }
  return 0;
}
