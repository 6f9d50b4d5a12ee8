#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/status.h"
#include "media/ffmpeg.h"

namespace lastframe::media {

// A libavformat demuxer reading from a callback instead of a file, so that a
// container can be parsed incrementally as bytes arrive from a socket.
class Demuxer {
 public:
  // Fills up to |size| bytes at |buf|. Returns the count (> 0), 0 at end of
  // input, or an AVERROR (< 0) to abort. It may block until bytes arrive.
  using ReadFn = std::function<int(uint8_t* buf, int size)>;

  // Opens |format_name| (e.g. "matroska") over |read|. Reads only the container
  // header: no stream probing, so no data is read ahead of the first packet.
  static Result<std::unique_ptr<Demuxer>> Open(ReadFn read, const char* format_name);
  ~Demuxer();

  const AVFormatContext& context() const { return *ctx_; }

  enum class Next { kPacket, kEnd };
  // Reads the next packet into |pkt| (unreferenced first). kEnd at a clean end
  // of input; an error Status for malformed input.
  Result<Next> Read(AVPacket* pkt);

 private:
  Demuxer() = default;
  static int ReadThunk(void* opaque, uint8_t* buf, int size);

  ReadFn read_;
  AVIOContext* io_ = nullptr;
  AVFormatContext* ctx_ = nullptr;
};

}  // namespace lastframe::media
