#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "media/encoded_frame.h"
#include "media/ffmpeg.h"

namespace lastframe::media {

namespace internal {
class MuxOutput;
}

// FFmpeg's muxers over memory, for one video track timed in milliseconds.
// Frames are remuxed as they are (Annex B H.264/H.265 become the container's
// length-prefixed form in the muxer); none is decoded or re-encoded.

enum class ClipFormat { kMp4, kMatroska };

// Whether frames coded for |a| can share a track with frames coded for |b|:
// the same codec, size and extradata.
bool SameCodec(const AVCodecParameters& a, const AVCodecParameters& b);

// Muxes |frames| (decode order, the first a keyframe, all coded for |codec|)
// into one playable file. Each frame is shown at its pts_ms, all moved so that
// the first decode time is 0. Decode times are rebuilt from presentation times
// alone (dts_ms is not read: Matroska producers often send none): the i-th
// smallest presentation time less the reordering delay, so that each frame is
// decoded before it is shown and in the order given. Each frame lasts until
// the next; the last as long as the one before it. The MP4 index is written at
// the end (memory cannot be reopened for a faststart pass). TooLarge
// ("ClipTooLarge") when the file would pass |max_bytes|.
Result<std::string> MuxClip(const AVCodecParameters& codec, std::span<const EncodedFrame> frames,
                            ClipFormat format, size_t max_bytes);

// Matroska tags: name, then string value.
using MatroskaTags = std::vector<std::pair<std::string, std::string>>;

// A Matroska Tags element holding |tags| (one Tag whose target is the whole
// segment), for a document's reader to find after its last cluster.
std::string MatroskaTagsElement(const MatroskaTags& tags);

// A Matroska document written as frames come, on an output that cannot seek:
// a Segment of unknown size, no index, so that a reader can play it while it
// grows. Bit-exact: the same frames give the same bytes. Not thread-safe.
class MatroskaWriter {
 public:
  // Writes the document's head: the EBML header, the Segment, |tags| as its
  // Tags and the track of |codec|.
  static Result<std::unique_ptr<MatroskaWriter>> Begin(const AVCodecParameters& codec,
                                                       const MatroskaTags& tags);
  ~MatroskaWriter();
  MatroskaWriter(const MatroskaWriter&) = delete;
  MatroskaWriter& operator=(const MatroskaWriter&) = delete;

  // Adds the next frame (decode order), shown at |frame.pts_ms|. Matroska keeps
  // presentation times only; the decode times the muxer asks for are made up,
  // one millisecond apart from 60 s before the first frame's presentation.
  // |flush| closes the cluster so that the frame goes out at once instead of
  // when the cluster fills. Internal after End.
  Status Add(const EncodedFrame& frame, bool flush);
  // Ends the document, then appends |trailing| as a Tags element after its
  // last cluster (nothing when empty). Ending twice does nothing.
  Status End(const MatroskaTags& trailing = {});
  // The bytes written since the last Take.
  std::string Take();

 private:
  MatroskaWriter();
  static int Write(void* opaque, uint8_t* buf, int size);

  std::string out_;  // before output_, which writes into it, so that it outlives it
  std::unique_ptr<internal::MuxOutput> output_;
  int64_t first_pts_ms_ = 0;
  int64_t frames_ = 0;
  bool ended_ = false;
};

}  // namespace lastframe::media
