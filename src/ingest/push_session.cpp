#include "ingest/push_session.h"

#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/metrics.h"
#include "ingest/ebml_boundary.h"
#include "ingest/fragmenter.h"
#include "media/demuxer.h"

namespace lastframe::ingest {

// Each child is looked up here once, so that counting a chunk, an ack or an
// error is one relaxed atomic operation.
struct PushSession::Metrics {
  metrics::Counter& bytes;
  metrics::Counter& fragments;
  metrics::Counter& producers_started;
  metrics::Counter& producers_ended;
  // RECEIVED or PERSISTED: how many were sent, and how long after the fragment's end.
  struct FragmentAck {
    metrics::Counter& sent;
    metrics::Histogram& delay;
    void Sent(std::chrono::steady_clock::time_point fragment_end) const {
      sent.Add();
      delay.Observe(metrics::SecondsSince(fragment_end));
    }
  };
  FragmentAck received;
  FragmentAck persisted;
  metrics::Counter& error_acks;
  metrics::Family<metrics::Counter>& errors;
  std::map<AckError, metrics::Counter*> error_ids;  // every AckError, by its ErrorId

  static const Metrics& Get() {
    static const Metrics* m = [] {
      auto& r = metrics::Registry::Global();
      auto& acks = r.Counters("lastframe_ingest_acks_total",
                              "Acknowledgements sent to producers, by EventType.", {"type"});
      auto& delay = r.Histograms(
          "lastframe_ingest_ack_delay_seconds",
          "From the arrival of a fragment's last frame to its acknowledgement being sent.",
          {"type"}, metrics::LatencyBuckets());
      auto& errors = r.Counters("lastframe_ingest_errors_total",
                                "Ingest errors, by Kinesis Video ErrorId.", {"error"});
      auto* out = new Metrics{
          .bytes = r.AddCounter("lastframe_ingest_bytes_total",
                                "Bytes received from producers (PutMedia bodies)."),
          .fragments = r.AddCounter("lastframe_ingest_fragments_total",
                                    "Fragments completed from pushed streams."),
          .producers_started = r.AddCounter("lastframe_ingest_producers_started_total",
                                            "Producers that started pushing."),
          .producers_ended = r.AddCounter("lastframe_ingest_producers_ended_total",
                                          "Producers whose push ended, cleanly or not."),
          .received = {acks.With({"RECEIVED"}), delay.With({"RECEIVED"})},
          .persisted = {acks.With({"PERSISTED"}), delay.With({"PERSISTED"})},
          .error_acks = acks.With({"ERROR"}),
          .errors = errors,
          .error_ids = {}};
      for (AckError id : kAckErrors)
        out->error_ids[id] = &errors.With({std::to_string(static_cast<int>(id))});
      return out;  // never destroyed, as the registry's families are not
    }();
    return *m;
  }

  metrics::Counter& Error(AckError id) const {
    auto it = error_ids.find(id);
    // An id missing from the list above is still counted, through the lock.
    return it != error_ids.end() ? *it->second
                                 : errors.With({std::to_string(static_cast<int>(id))});
  }
};

Result<std::unique_ptr<PushSession>> PushSession::Start(store::StreamStore& store,
                                                        PushOptions options,
                                                        PushCallbacks callbacks) {
  auto opened = store.OpenForWriting(options.stream);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<store::Stream> stream = std::move(*opened);
  std::unique_ptr<PushSession> session(
      new PushSession(store, std::move(stream), std::move(options), std::move(callbacks)));
  session->thread_ = std::thread([s = session.get()] { s->Run(); });
  return session;
}

PushSession::PushSession(store::StreamStore& store, std::shared_ptr<store::Stream> stream,
                         PushOptions options, PushCallbacks callbacks)
    : store_(store),
      stream_(std::move(stream)),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      start_ms_(store.clock().NowMs()),
      metrics_(options_.from_producer ? &Metrics::Get() : nullptr),
      last_frame_ns_(std::chrono::steady_clock::now().time_since_epoch().count()),
      pipe_(options_.pipe_high_water, callbacks_.on_space) {
  if (metrics_) metrics_->producers_started.Add();
}

PushSession::~PushSession() {
  Abort();
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();  // destroyed from its own callback: it is returning anyway
    else
      thread_.join();
  }
}

bool PushSession::Feed(const uint8_t* data, size_t size) {
  if (metrics_) metrics_->bytes.Add(size);
  return pipe_.Write(data, size);
}
bool PushSession::WaitForSpace() { return pipe_.WaitForSpace(); }
void PushSession::Finish() { pipe_.Close(); }
void PushSession::Abort() { pipe_.Abort(); }
void PushSession::Stalled() {
  stalled_ = true;
  pipe_.Abort();
}

void PushSession::Run() {
  Status status = Parse();
  stream_->ReleaseWriter(status.ok() ? "" : status.message());
  if (metrics_) metrics_->producers_ended.Add();
  if (callbacks_.on_done) callbacks_.on_done(status);
}

Status PushSession::Parse() {
  // Where the body ended, which the demuxer does not say; and elements too
  // large for a fragment, refused as their header arrives.
  EbmlBoundary boundary(options_.max_fragment_bytes);
  auto demuxer = media::Demuxer::Open(
      [this, &boundary](uint8_t* buf, int size) {
        if (boundary.oversized()) return AVERROR_EXIT;
        int n = pipe_.Read(buf, size);
        if (n > 0) boundary.Feed(buf, static_cast<size_t>(n));
        return n < 0 ? AVERROR_EXIT : n;
      },
      "matroska");
  // An element over the fragment limit: the input is refused, nothing of it kept.
  auto refuse_oversized = [&](std::optional<uint64_t> number, int64_t timecode) {
    std::string why = "an element of " + std::to_string(boundary.oversized()) +
                      " bytes exceeds the fragment limit of " +
                      std::to_string(options_.max_fragment_bytes) + " bytes";
    SendErrorAck(AckError::kMaxFragmentSizeReached, why, timecode, number);
    return Status(Code::kTooLarge, why, Reason::kMaxFragmentSizeReached);
  };
  if (!demuxer.ok() && boundary.oversized()) return refuse_oversized(std::nullopt, 0);
  if (!demuxer.ok()) {
    if (pipe_.aborted())
      return Status(Code::kUnavailable, "connection closed", Reason::kStreamReadError);
    SendErrorAck(AckError::kInvalidMkvData, demuxer.status().message(), 0, std::nullopt);
    return InvalidArgument("not a Matroska stream: " + demuxer.status().message(),
                           Reason::kInvalidMkvData);
  }
  const AVFormatContext& ctx = (*demuxer)->context();
  constexpr unsigned kMaxTracks = 3;  // Kinesis Video's limit
  if (ctx.nb_streams > kMaxTracks) {
    std::string why = "the stream has " + std::to_string(ctx.nb_streams) + " tracks; at most " +
                      std::to_string(kMaxTracks) + " are allowed";
    SendErrorAck(AckError::kMoreThanAllowedTracksFound, why, 0, std::nullopt);
    return InvalidArgument(why, Reason::kMoreThanAllowedTracksFound);
  }
  int video = FindVideoStream(ctx);
  if (video < 0) {
    SendErrorAck(AckError::kInvalidMkvData, "no decodable video track", 0, std::nullopt);
    return InvalidArgument("the stream has no decodable video track", Reason::kInvalidMkvData);
  }
  const AVStream* vst = ctx.streams[video];
  auto codec = media::CopyCodecParameters(*vst->codecpar);
  if (!codec.ok()) return codec.status();
  Fragmenter fragmenter(store_, stream_, *codec, vst->time_base,
                        {.absolute_timecodes = options_.absolute_timecodes,
                         .producer_start_ms = options_.producer_start_ms.value_or(start_ms_),
                         .max_fragment_bytes = options_.max_fragment_bytes,
                         .max_fragment_duration_ms = options_.max_fragment_duration_ms},
                        {.on_fragment = [this](const store::FragmentView& f) { AckFragment(f); },
                         .on_error =
                             [this](AckError id, const std::string& message, int64_t timecode,
                                    std::optional<uint64_t> number) {
                               SendErrorAck(id, message, timecode, number);
                             }});

  media::PacketPtr pkt = media::MakePacket();
  for (;;) {
    auto next = (*demuxer)->Read(pkt.get());
    if (!next.ok() || *next == media::Demuxer::Next::kEnd) {
      int64_t timecode = fragmenter.open_timecode();
      std::optional<uint64_t> number = fragmenter.open_number();
      if (boundary.oversized()) {
        fragmenter.Discard();  // the fragment the element belonged to is not kept either
        return refuse_oversized(number, timecode);
      }
      if (next.ok() && !boundary.AtBoundary()) {
        // The body ended inside an element: the fragment in progress is cut off, so it is
        // neither completed nor kept; the whole fragments before it were acknowledged.
        fragmenter.Discard();
        const std::string why = "the body ended inside a Matroska element";
        SendErrorAck(AckError::kInvalidMkvData,
                     why + (number ? ": the fragment in progress is incomplete and dropped" : ""),
                     timecode, number);
        return InvalidArgument(why, Reason::kInvalidMkvData);
      }
      fragmenter.Finish();
      if (next.ok()) return Status::Ok();
      if (pipe_.aborted()) {
        SendErrorAck(AckError::kStreamReadError,
                     stalled_ ? "the producer sent nothing for too long (idle timeout)"
                              : "the producer's connection ended",
                     timecode, number);
        return Status(Code::kUnavailable, "connection closed mid-stream", Reason::kStreamReadError);
      }
      // A stream cut short mid-element reads as invalid data: what arrived
      // complete is kept and acknowledged above.
      SendErrorAck(AckError::kInvalidMkvData, next.status().message(), timecode, number);
      return InvalidArgument(next.status().message(), Reason::kInvalidMkvData);
    }
    if (boundary.oversized()) {  // read in the same buffer as the element's header
      int64_t timecode = fragmenter.open_timecode();
      std::optional<uint64_t> number = fragmenter.open_number();
      fragmenter.Discard();
      return refuse_oversized(number, timecode);
    }
    if (pkt->stream_index == video) {
      const auto arrived = std::chrono::steady_clock::now();
      last_frame_ns_.store(arrived.time_since_epoch().count(), std::memory_order_relaxed);
      fragmenter.Push(pkt.get());  // a fragment it completes ended with the packet before
      last_video_packet_ = arrived;
    }
    av_packet_unref(pkt.get());
  }
}

void PushSession::AckFragment(const store::FragmentView& f) {
  fragments_.fetch_add(1);
  if (metrics_) metrics_->fragments.Add();
  if (!callbacks_.on_ack) {
    (void)store_.Persist(options_.stream, f);  // in-process producers: durable all the same
    return;
  }
  auto ack = [&](const char* event) {
    callbacks_.on_ack(nlohmann::json{{"EventType", event},
                                     {"FragmentTimecode", f.timecode_ms},
                                     {"FragmentNumber", std::to_string(f.number)}}
                          .dump());
  };
  const auto fragment_end = last_video_packet_;
  ack("RECEIVED");
  if (metrics_) metrics_->received.Sent(fragment_end);
  // PERSISTED only once the fragment is on disk and synced (or at once, in memory only).
  Status persisted = store_.Persist(options_.stream, f);
  if (persisted.ok()) {
    ack("PERSISTED");
    if (metrics_) metrics_->persisted.Sent(fragment_end);
    return;
  }
  SendErrorAck(AckError::kArchivalError, "the fragment could not be stored: " + persisted.message(),
               f.timecode_ms, f.number);
}

void PushSession::SendErrorAck(AckError id, const std::string& message, int64_t timecode,
                               std::optional<uint64_t> number) {
  spdlog::warn("putMedia stream={} error={} {}", options_.stream, AckErrorName(id), message);
  if (id == AckError::kMaxFragmentSizeReached && options_.fragment_limit)
    options_.fragment_limit->CountRefusal();
  if (metrics_) metrics_->Error(id).Add();
  if (!callbacks_.on_ack) return;
  nlohmann::json ack = {{"EventType", "ERROR"},
                        {"FragmentTimecode", timecode},
                        {"ErrorId", static_cast<int>(id)},
                        {"ErrorCode", AckErrorName(id)},
                        {"Message", message}};
  if (number) ack["FragmentNumber"] = std::to_string(*number);
  callbacks_.on_ack(ack.dump());
  if (metrics_) metrics_->error_acks.Add();
}

}  // namespace lastframe::ingest
