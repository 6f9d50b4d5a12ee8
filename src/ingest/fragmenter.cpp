#include "ingest/fragmenter.h"

namespace lastframe::ingest {
namespace {

// 9999-12-31T23:59:59.999Z: fragment times must be dates the API can write.
constexpr int64_t kLastTimestampMs = 253'402'300'799'999;

}  // namespace

const char* AckErrorName(AckError id) {
  switch (id) {
    case AckError::kStreamReadError:
      return "STREAM_READ_ERROR";
    case AckError::kMaxFragmentSizeReached:
      return "MAX_FRAGMENT_SIZE_REACHED";
    case AckError::kMaxFragmentDurationReached:
      return "MAX_FRAGMENT_DURATION_REACHED";
    case AckError::kFragmentTimecodeLesserThanPrevious:
      return "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS";
    case AckError::kMoreThanAllowedTracksFound:
      return "MORE_THAN_ALLOWED_TRACKS_FOUND";
    case AckError::kInvalidMkvData:
      return "INVALID_MKV_DATA";
    case AckError::kInternalError:
      return "INTERNAL_ERROR";
    case AckError::kArchivalError:
      return "ARCHIVAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

int FindVideoStream(const AVFormatContext& ctx) {
  for (unsigned i = 0; i < ctx.nb_streams; ++i) {
    const AVCodecParameters* par = ctx.streams[i]->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO && avcodec_find_decoder(par->codec_id) != nullptr)
      return static_cast<int>(i);
  }
  return -1;
}

Fragmenter::Fragmenter(store::StreamStore& store, std::shared_ptr<store::Stream> stream,
                       media::SharedCodecParameters codec, AVRational time_base,
                       FragmenterOptions options, FragmenterEvents events)
    : store_(store),
      stream_(std::move(stream)),
      codec_(std::move(codec)),
      time_base_(time_base),
      options_(options),
      events_(std::move(events)) {}

void Fragmenter::Finish() {
  if (!open_) return;
  open_ = false;
  if (auto done = stream_->CompleteFragment())
    if (events_.on_fragment) events_.on_fragment(*done);
}

void Fragmenter::Discard() {
  if (!open_) return;
  open_ = false;
  stream_->DropOpenFragment();
}

void Fragmenter::CutAtLimit(AckError id, const std::string& why) {
  int64_t timecode = open_timecode_;
  uint64_t number = open_number_;
  Finish();
  skipping_ = true;
  if (events_.on_error)
    events_.on_error(id, why + "; frames are dropped until the next keyframe", timecode, number);
}

void Fragmenter::Push(AVPacket* pkt) {
  if (pkt->size <= 0) return;
  if (pkt->pts == AV_NOPTS_VALUE) pkt->pts = pkt->dts;
  if (pkt->pts == AV_NOPTS_VALUE) return;  // cannot be placed in time
  av_packet_rescale_ts(pkt, time_base_, AVRational{1, 1000});
  if (pkt->pts == AV_NOPTS_VALUE) return;  // out of int64 range once in milliseconds
  store::Frame frame;
  frame.pts_ms = pkt->pts;
  frame.dts_ms = pkt->dts == AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
  frame.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
  int64_t now = store_.clock().NowMs();
  if (frame.keyframe) {
    Finish();
    if (last_timecode_ && frame.pts_ms <= *last_timecode_) {
      skipping_ = true;
      if (events_.on_error)
        events_.on_error(AckError::kFragmentTimecodeLesserThanPrevious,
                         "fragment timecode " + std::to_string(frame.pts_ms) +
                             " is not after the previous fragment's " +
                             std::to_string(*last_timecode_) + "; the fragment is dropped",
                         frame.pts_ms, std::nullopt);
      return;
    }
    int64_t producer_ts = frame.pts_ms;
    bool overflow = !options_.absolute_timecodes &&
                    __builtin_add_overflow(options_.producer_start_ms, frame.pts_ms, &producer_ts);
    if (overflow || producer_ts < 0 || producer_ts > kLastTimestampMs) {
      skipping_ = true;
      if (events_.on_error)
        events_.on_error(AckError::kInvalidMkvData,
                         "fragment timecode " + std::to_string(frame.pts_ms) +
                             " puts the fragment outside the years 1970-9999; the fragment is "
                             "dropped",
                         frame.pts_ms, std::nullopt);
      return;
    }
    last_timecode_ = frame.pts_ms;
    open_timecode_ = frame.pts_ms;
    frame.packet = media::TakePacket(pkt);
    open_number_ =
        stream_->BeginFragment(codec_, producer_ts, open_timecode_, std::move(frame), now);
    open_ = true;
    skipping_ = false;
    return;
  }
  if (!open_ || skipping_) return;  // nothing decodable before the first keyframe
  int64_t into_fragment = 0;
  if (__builtin_sub_overflow(frame.pts_ms, open_timecode_, &into_fragment) ||
      into_fragment >= options_.max_fragment_duration_ms)
    return CutAtLimit(AckError::kMaxFragmentDurationReached,
                      "fragment longer than " + std::to_string(options_.max_fragment_duration_ms) +
                          " ms (keyframes too far apart)");
  if (stream_->OpenFragmentBytes() + static_cast<size_t>(pkt->size) > options_.max_fragment_bytes)
    return CutAtLimit(AckError::kMaxFragmentSizeReached,
                      "fragment exceeds " + std::to_string(options_.max_fragment_bytes) + " bytes");
  frame.packet = media::TakePacket(pkt);
  stream_->Append(std::move(frame), now);
}

}  // namespace lastframe::ingest
