#include "ingest/push_session.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "media/demuxer.h"

namespace lastframe::ingest {
namespace {

const char* AckErrorName(AckError id) {
  switch (id) {
    case AckError::kStreamReadError:
      return "STREAM_READ_ERROR";
    case AckError::kMaxFragmentSizeReached:
      return "MAX_FRAGMENT_SIZE_REACHED";
    case AckError::kInvalidMkvData:
      return "INVALID_MKV_DATA";
    case AckError::kInternalError:
      return "INTERNAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

// The video track snapshots are taken from: the first video track FFmpeg can
// decode, wherever it sits among the tracks.
int FindVideoStream(const AVFormatContext& ctx) {
  for (unsigned i = 0; i < ctx.nb_streams; ++i) {
    const AVCodecParameters* par = ctx.streams[i]->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO && avcodec_find_decoder(par->codec_id) != nullptr)
      return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

Result<std::unique_ptr<PushSession>> PushSession::Start(store::StreamStore& store,
                                                        PushOptions options,
                                                        PushCallbacks callbacks) {
  std::shared_ptr<store::Stream> stream = store.Open(options.stream);
  if (!stream->AcquireWriter())
    return Status(Code::kConflict,
                  "another producer is already pushing to stream '" + options.stream + "'",
                  "StreamBusy");
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
      pipe_(options_.pipe_high_water, callbacks_.on_space) {}

PushSession::~PushSession() {
  Abort();
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();  // destroyed from its own callback: it is returning anyway
    else
      thread_.join();
  }
}

bool PushSession::Feed(const uint8_t* data, size_t size) { return pipe_.Write(data, size); }
bool PushSession::WaitForSpace() { return pipe_.WaitForSpace(); }
void PushSession::Finish() { pipe_.Close(); }
void PushSession::Abort() { pipe_.Abort(); }

void PushSession::Run() {
  Status status = Parse();
  stream_->ReleaseWriter(status.ok() ? "" : status.message());
  if (callbacks_.on_done) callbacks_.on_done(status);
}

Status PushSession::Parse() {
  auto demuxer = media::Demuxer::Open(
      [this](uint8_t* buf, int size) {
        int n = pipe_.Read(buf, size);
        return n < 0 ? AVERROR_EXIT : n;
      },
      "matroska");
  if (!demuxer.ok()) {
    if (pipe_.aborted()) return Status(Code::kUnavailable, "connection closed", "StreamReadError");
    SendErrorAck(AckError::kInvalidMkvData, demuxer.status().message(), 0, std::nullopt);
    return InvalidArgument("not a Matroska stream: " + demuxer.status().message(),
                           "InvalidMkvData");
  }
  const AVFormatContext& ctx = (*demuxer)->context();
  int video = FindVideoStream(ctx);
  if (video < 0) {
    SendErrorAck(AckError::kInvalidMkvData, "no decodable video track", 0, std::nullopt);
    return InvalidArgument("the stream has no decodable video track", "InvalidMkvData");
  }
  const AVStream* vst = ctx.streams[video];
  auto codec = media::CopyCodecParameters(*vst->codecpar);
  if (!codec.ok()) return codec.status();
  const int64_t producer_start = options_.producer_start_ms.value_or(start_ms_);
  const AVRational ms = {1, 1000};

  media::PacketPtr pkt = media::MakePacket();
  bool open = false;      // a fragment is open in the store
  bool skipping = false;  // dropping frames until the next keyframe
  int64_t open_timecode = 0;
  uint64_t open_number = 0;
  for (;;) {
    auto next = (*demuxer)->Read(pkt.get());
    if (!next.ok() || *next == media::Demuxer::Next::kEnd) {
      if (open)
        if (auto done = stream_->CompleteFragment()) AckFragment(*done);
      if (next.ok()) return Status::Ok();
      if (pipe_.aborted()) {
        SendErrorAck(AckError::kStreamReadError, "the producer's connection ended", open_timecode,
                     open ? std::optional(open_number) : std::nullopt);
        return Status(Code::kUnavailable, "connection closed mid-stream", "StreamReadError");
      }
      // A stream cut short mid-element reads as invalid data: what arrived
      // complete is kept and acknowledged above.
      SendErrorAck(AckError::kInvalidMkvData, next.status().message(), open_timecode,
                   open ? std::optional(open_number) : std::nullopt);
      return InvalidArgument(next.status().message(), "InvalidMkvData");
    }
    if (pkt->stream_index != video || pkt->size <= 0) continue;
    if (pkt->pts == AV_NOPTS_VALUE) pkt->pts = pkt->dts;
    if (pkt->pts == AV_NOPTS_VALUE) continue;  // cannot be placed in time
    av_packet_rescale_ts(pkt.get(), vst->time_base, ms);
    store::Frame frame;
    frame.pts_ms = pkt->pts;
    frame.dts_ms = pkt->dts == AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    frame.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
    int64_t now = store_.clock().NowMs();
    if (frame.keyframe) {
      if (open)
        if (auto done = stream_->CompleteFragment()) AckFragment(*done);
      int64_t producer_ts =
          options_.absolute_timecodes ? frame.pts_ms : producer_start + frame.pts_ms;
      open_timecode = frame.pts_ms;
      frame.packet = media::TakePacket(pkt.get());
      open_number =
          stream_->BeginFragment(*codec, producer_ts, open_timecode, std::move(frame), now);
      open = true;
      skipping = false;
      continue;
    }
    if (!open || skipping) continue;  // nothing decodable before the first keyframe
    if (stream_->OpenFragmentBytes() + static_cast<size_t>(pkt->size) >
        options_.max_fragment_bytes) {
      if (auto done = stream_->CompleteFragment()) AckFragment(*done);
      SendErrorAck(AckError::kMaxFragmentSizeReached,
                   "fragment exceeds " + std::to_string(options_.max_fragment_bytes) +
                       " bytes; frames are dropped until the next keyframe",
                   open_timecode, open_number);
      open = false;
      skipping = true;
      continue;
    }
    frame.packet = media::TakePacket(pkt.get());
    stream_->Append(std::move(frame), now);
  }
}

void PushSession::AckFragment(const store::FragmentView& f) {
  fragments_.fetch_add(1);
  if (!callbacks_.on_ack) return;
  // The store is in memory: a fragment is persisted as soon as it is received.
  for (const char* event : {"RECEIVED", "PERSISTED"}) {
    nlohmann::json ack = {{"EventType", event},
                          {"FragmentTimecode", f.timecode_ms},
                          {"FragmentNumber", std::to_string(f.number)}};
    callbacks_.on_ack(ack.dump());
  }
}

void PushSession::SendErrorAck(AckError id, const std::string& message, int64_t timecode,
                               std::optional<uint64_t> number) {
  spdlog::warn("putMedia stream={} error={} {}", options_.stream, AckErrorName(id), message);
  if (!callbacks_.on_ack) return;
  nlohmann::json ack = {{"EventType", "ERROR"},
                        {"FragmentTimecode", timecode},
                        {"ErrorId", static_cast<int>(id)},
                        {"ErrorCode", AckErrorName(id)},
                        {"Message", message}};
  if (number) ack["FragmentNumber"] = std::to_string(*number);
  callbacks_.on_ack(ack.dump());
}

}  // namespace lastframe::ingest
