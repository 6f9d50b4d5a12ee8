#include "snapshot/warm_decoders.h"

#include "media/decoder.h"
#include "snapshot/frame_decoder.h"

namespace lastframe::snapshot {

WarmDecoders::WarmDecoders(const Clock& clock, size_t max_decoders, int64_t idle_ms)
    : clock_(clock), max_decoders_(max_decoders), idle_ms_(idle_ms) {}

std::shared_ptr<WarmDecoders::Warm> WarmDecoders::Acquire(const std::string& stream,
                                                          bool may_evict) {
  MutexLock lock(mu_);
  int64_t now = clock_.NowMs();
  auto it = slots_.find(stream);
  if (it != slots_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    it->second.last_used_ms = now;
    return it->second.warm;
  }
  if (!may_evict && slots_.size() >= max_decoders_) return nullptr;
  while (!lru_.empty() && slots_.size() >= max_decoders_) {
    slots_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(stream);
  auto warm = std::make_shared<Warm>();
  slots_.emplace(stream, Slot{warm, now, lru_.begin()});
  return warm;
}

Status WarmDecoders::Reset(Warm& w, const store::FragmentView& fragment) {
  w.newest.reset();
  w.newest_pts = INT64_MIN;
  w.fed = 0;
  w.fragment = fragment.number;
  if (w.ctx && w.codec == fragment.codec) {
    avcodec_flush_buffers(w.ctx.get());
    return Status::Ok();
  }
  // One thread: frame threads would hold frames back.
  auto ctx = media::OpenDecoder(*fragment.codec, /*threads=*/1);
  if (!ctx.ok()) return ctx.status();
  w.ctx = std::move(*ctx);
  w.codec = fragment.codec;
  w.reorders = false;
  return Status::Ok();
}

Status WarmDecoders::Feed(Warm& w, const store::FragmentView& fragment) {
  media::FramePtr frame = media::MakeFrame();
  for (; w.fed < fragment.frames.size(); ++w.fed) {
    int rc = avcodec_send_packet(w.ctx.get(), fragment.frames[w.fed].packet.get());
    if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_INVALIDDATA)
      return media::AvError(rc, "decoding");
    while (avcodec_receive_frame(w.ctx.get(), frame.get()) == 0) {
      KeepIfNewer(&frame, &w.newest, &w.newest_pts);
    }
  }
  // A decoder that reorders keeps the newest frames inside until it is
  // drained, which would end its warmth: such streams are decoded cold.
  if (w.ctx->has_b_frames > 0) w.reorders = true;
  return Status::Ok();
}

Result<bool> WarmDecoders::Advance(Warm& w, const store::FragmentView& fragment) {
  bool warm_hit = w.ctx && w.fragment == fragment.number && w.codec == fragment.codec &&
                  w.fed <= fragment.frames.size() && w.newest;
  if (!warm_hit) LF_RETURN_IF_ERROR(Reset(w, fragment));
  if (Status s = Feed(w, fragment); !s.ok()) {
    w.ctx.reset();  // start clean next time
    return s;
  }
  return warm_hit;
}

Result<media::FramePtr> WarmDecoders::Newest(const std::string& stream,
                                             const store::FragmentView& fragment, bool* catch_up) {
  if (catch_up) *catch_up = false;
  if (!fragment.codec || fragment.frames.empty())
    return NotFound("the fragment holds no frame", Reason::kNoFrame);
  std::shared_ptr<Warm> warm = Acquire(stream);
  Warm& w = *warm;
  MutexLock lock(w.mu);
  bool positioned = w.ctx && w.fragment == fragment.number && w.codec == fragment.codec &&
                    w.fed <= fragment.frames.size() && w.newest;
  if (!w.reorders && WorthFrameThreads(fragment, positioned ? w.fed : 0)) {
    {
      MutexLock stats_lock(mu_);
      ++stats_.cold_starts;
    }
    if (catch_up) *catch_up = true;
    return DecodeNewestFrame(fragment);
  }
  bool warm_hit = false;
  if (!w.reorders) {
    Result<bool> advanced = Advance(w, fragment);
    if (!advanced.ok()) return advanced.status();
    warm_hit = *advanced;
  }
  {
    MutexLock stats_lock(mu_);
    if (w.reorders)
      ++stats_.fallbacks;
    else if (warm_hit)
      ++stats_.warm_hits;
    else
      ++stats_.resets;
  }
  if (w.reorders) return DecodeNewestFrame(fragment);
  if (!w.newest) return Status(Code::kMediaError, "no frame of the fragment could be decoded");
  media::FramePtr out = media::MakeFrame();
  if (av_frame_ref(out.get(), w.newest.get()) < 0) return Internal("out of memory");
  out->pts = w.newest_pts;
  return out;
}

bool WarmDecoders::CatchUp(const std::string& stream, const store::FragmentView& fragment) {
  if (!fragment.codec || fragment.frames.empty()) return false;
  std::shared_ptr<Warm> warm = Acquire(stream, /*may_evict=*/false);
  if (!warm) return false;
  Warm& w = *warm;
  MutexLock lock(w.mu);
  if (w.reorders || !Advance(w, fragment).ok()) return false;
  MutexLock stats_lock(mu_);
  ++stats_.catch_ups;
  return true;
}

void WarmDecoders::SweepIdle() {
  MutexLock lock(mu_);
  int64_t cutoff = clock_.NowMs() - idle_ms_;
  while (!lru_.empty()) {
    auto it = slots_.find(lru_.back());
    if (it->second.last_used_ms >= cutoff) break;
    slots_.erase(it);
    lru_.pop_back();
  }
}

WarmDecoderStats WarmDecoders::stats() const {
  MutexLock lock(mu_);
  WarmDecoderStats s = stats_;
  s.decoders = slots_.size();
  return s;
}

}  // namespace lastframe::snapshot
