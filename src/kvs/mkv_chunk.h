#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "media/muxer.h"
#include "store/fragment.h"

namespace lastframe::kvs {

// Matroska tags as Kinesis Video sends them: name, then string value.
using MkvTags = media::MatroskaTags;

// Epoch milliseconds as Kinesis Video's tags write them: "1764000000.123".
std::string TagSeconds(int64_t ms);

// One Kinesis Video "chunk": a fragment as a Matroska document of its own
// (EBML header, Segment of unknown size, Tracks, the fragment's Tags, its
// frames in clusters whose timecodes are the producer's epoch milliseconds),
// written as frames come, so that GetMedia can send a fragment while it grows.
// The muxing is media::MatroskaWriter's; no frame is decoded or re-encoded.
class MkvChunkWriter {
 public:
  // Starts the chunk of |fragment| (its codec and producer timestamp), with
  // |tags| written before its first cluster.
  static Result<std::unique_ptr<MkvChunkWriter>> Begin(const store::FragmentView& fragment,
                                                       const MkvTags& tags);
  ~MkvChunkWriter();
  MkvChunkWriter(const MkvChunkWriter&) = delete;
  MkvChunkWriter& operator=(const MkvChunkWriter&) = delete;

  // Adds the fragment's next frame; |flush| sends it at once (its own cluster)
  // instead of when the muxer's cluster fills.
  Status Add(const store::Frame& frame, bool flush);
  // Ends the chunk, then appends |trailing| tags after its cluster (as Kinesis
  // Video does).
  Status End(const MkvTags& trailing);
  // The bytes written since the last Take.
  std::string Take();

 private:
  MkvChunkWriter() = default;

  std::unique_ptr<media::MatroskaWriter> writer_;
  int64_t producer_ts_ms_ = 0;
  int64_t first_pts_ms_ = 0;
};

// A whole fragment as one chunk, with Kinesis Video's tags (fragment number,
// server and producer timestamps) and |trailing| ones after it.
Result<std::string> MkvChunk(const store::FragmentView& fragment, const MkvTags& trailing = {});

// The tags that open a fragment's chunk.
MkvTags FragmentTags(const store::FragmentView& fragment);

}  // namespace lastframe::kvs
