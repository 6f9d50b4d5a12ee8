#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"
#include "media/ffmpeg.h"
#include "snapshot/snapshot_engine.h"  // WarmDecoderStats
#include "store/fragment.h"

namespace lastframe::snapshot {

// Decoders kept alive per recently looked-at stream, so that the next look
// decodes only the frames that arrived since the last one instead of the
// whole GOP. Bounded in count (least recently used goes first) and in idle
// time; an idle stream holds none. Thread-safe; each stream's decoder is used
// by one thread at a time.
//
// A warm decoder runs on one thread with no reordering delay, so a frame
// comes out as soon as its packet goes in. Streams whose decoder must delay
// output (B-frames) are flagged and decoded cold (see DecodeNewestFrame).
class WarmDecoders {
 public:
  WarmDecoders(const Clock& clock, size_t max_decoders, int64_t idle_ms);

  // The newest frame of |fragment| (the latest fragment of |stream|), decoding
  // as little as possible. Returns a reference to the decoder's frame. When
  // many frames are to be decoded, a multi-threaded cold decode answers
  // faster than the single-threaded warm decoder could: then the decoder is
  // left behind and |*catch_up| set, so the caller can CatchUp off the
  // request's path.
  Result<media::FramePtr> Newest(const std::string& stream, const store::FragmentView& fragment,
                                 bool* catch_up = nullptr);
  // Feeds |stream|'s decoder the frames that arrived, ahead of any look, if
  // it has a decoder or there is room for one without evicting another.
  // Returns whether it did.
  bool CatchUp(const std::string& stream, const store::FragmentView& fragment);
  // Drops decoders idle for longer than the idle time.
  void SweepIdle();
  WarmDecoderStats stats() const;

 private:
  struct Warm {
    Mutex mu;  // one user at a time
    media::CodecContextPtr ctx LF_GUARDED_BY(mu);
    media::SharedCodecParameters codec LF_GUARDED_BY(mu);  // what ctx was opened with
    uint64_t fragment LF_GUARDED_BY(mu) = 0;               // fragment being followed
    size_t fed LF_GUARDED_BY(mu) = 0;                      // frames of it sent to the decoder
    media::FramePtr newest LF_GUARDED_BY(mu);
    int64_t newest_pts LF_GUARDED_BY(mu) = INT64_MIN;
    bool reorders LF_GUARDED_BY(mu) = false;  // decoder delays output: use cold decodes
  };
  struct Slot {
    std::shared_ptr<Warm> warm;
    int64_t last_used_ms = 0;
    std::list<std::string>::iterator lru;
  };

  // The stream's decoder, made if absent; nullptr if absent and |may_evict| is
  // false while the table is full.
  std::shared_ptr<Warm> Acquire(const std::string& stream, bool may_evict = true);
  // Brings |w| to the end of |fragment|. Returns whether that was a warm hit.
  Result<bool> Advance(Warm& w, const store::FragmentView& fragment) LF_REQUIRES(w.mu);
  Status Reset(Warm& w, const store::FragmentView& fragment) LF_REQUIRES(w.mu);
  Status Feed(Warm& w, const store::FragmentView& fragment) LF_REQUIRES(w.mu);

  const Clock& clock_;
  const size_t max_decoders_;
  const int64_t idle_ms_;
  // Taken after a Warm's mu, never before.
  mutable Mutex mu_;
  std::unordered_map<std::string, Slot> slots_ LF_GUARDED_BY(mu_);
  std::list<std::string> lru_ LF_GUARDED_BY(mu_);  // front: most recent
  WarmDecoderStats stats_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe::snapshot
