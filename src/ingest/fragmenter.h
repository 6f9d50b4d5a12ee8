#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "media/ffmpeg.h"
#include "store/stream_store.h"

namespace lastframe::ingest {

// Kinesis Video's PutMedia acknowledgement error ids (API reference, PutMedia).
enum class AckError {
  kStreamReadError = 4000,
  kMaxFragmentSizeReached = 4001,
  kMaxFragmentDurationReached = 4002,
  kFragmentTimecodeLesserThanPrevious = 4004,
  kMoreThanAllowedTracksFound = 4005,
  kInvalidMkvData = 4006,
  kInternalError = 5000,
  kArchivalError = 5001,
};
// Every AckError, for tables by id (the ingest errors metric).
inline constexpr AckError kAckErrors[] = {AckError::kStreamReadError,
                                          AckError::kMaxFragmentSizeReached,
                                          AckError::kMaxFragmentDurationReached,
                                          AckError::kFragmentTimecodeLesserThanPrevious,
                                          AckError::kMoreThanAllowedTracksFound,
                                          AckError::kInvalidMkvData,
                                          AckError::kInternalError,
                                          AckError::kArchivalError};
const char* AckErrorName(AckError id);

struct FragmenterOptions {
  // true: packet timestamps are epoch milliseconds (x-amzn-fragment-timecode-type
  // ABSOLUTE); false: they count from producer_start_ms.
  bool absolute_timecodes = false;
  int64_t producer_start_ms = 0;
  size_t max_fragment_bytes = 50 * 1024 * 1024;  // Kinesis Video's fragment limits
  int64_t max_fragment_duration_ms = 10'000;
};

struct FragmenterEvents {
  std::function<void(const store::FragmentView&)> on_fragment;  // one completed
  std::function<void(AckError, const std::string& message, int64_t timecode,
                     std::optional<uint64_t> fragment)>
      on_error;
};

// Cuts one video track's packets into the store's fragments, each beginning
// at a keyframe, whatever the container's clusters or the source's groups are.
// Pushed (PutMedia) and pulled (RTSP, ...) streams share it. Never decodes.
// Kinesis Video's limits hold: a fragment past its size or duration limit is
// ended there and frames are dropped until the next keyframe; a fragment whose
// timecode is not after the previous one's is dropped whole. Each is reported
// through on_error with Kinesis Video's ErrorId.
class Fragmenter {
 public:
  // |time_base|: the track's, in which packets' timestamps come.
  Fragmenter(store::StreamStore& store, std::shared_ptr<store::Stream> stream,
             media::SharedCodecParameters codec, AVRational time_base, FragmenterOptions options,
             FragmenterEvents events);

  // Takes one packet of the video track (moved from |pkt|).
  void Push(AVPacket* pkt);
  // Completes the fragment in progress, if any.
  void Finish();
  // Drops the fragment in progress, if any (its input was cut short).
  void Discard();

  bool open() const { return open_; }
  int64_t open_timecode() const { return open_timecode_; }
  std::optional<uint64_t> open_number() const {
    return open_ ? std::optional(open_number_) : std::nullopt;
  }

 private:
  // Ends the open fragment at a Kinesis Video limit and skips to the next keyframe.
  void CutAtLimit(AckError id, const std::string& why);

  store::StreamStore& store_;
  std::shared_ptr<store::Stream> stream_;
  media::SharedCodecParameters codec_;
  const AVRational time_base_;
  const FragmenterOptions options_;
  const FragmenterEvents events_;
  bool open_ = false;      // a fragment is open in the store
  bool skipping_ = false;  // dropping frames until the next keyframe
  int64_t open_timecode_ = 0;
  uint64_t open_number_ = 0;
  std::optional<int64_t> last_timecode_;  // of the newest fragment begun
};

// The video track snapshots are taken from: the first video track FFmpeg can
// decode, wherever it sits among the tracks. -1 if none.
int FindVideoStream(const AVFormatContext& ctx);

}  // namespace lastframe::ingest
