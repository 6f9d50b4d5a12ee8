#include "media/ffmpeg.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <string>

namespace lastframe::media {

PacketPtr MakePacket() { return PacketPtr(av_packet_alloc()); }
FramePtr MakeFrame() { return FramePtr(av_frame_alloc()); }

SharedPacket TakePacket(AVPacket* pkt) {
  AVPacket* owned = av_packet_alloc();
  if (owned == nullptr) return nullptr;
  av_packet_move_ref(owned, pkt);
  return SharedPacket(owned, PacketDeleter{});
}

Result<SharedCodecParameters> CopyCodecParameters(const AVCodecParameters& par) {
  AVCodecParameters* copy = avcodec_parameters_alloc();
  if (copy == nullptr) return Internal("out of memory");
  int err = avcodec_parameters_copy(copy, &par);
  if (err < 0) {
    avcodec_parameters_free(&copy);
    return AvError(err, "copying codec parameters");
  }
  return SharedCodecParameters(copy, CodecParametersDeleter{});
}

Status AvError(int err, std::string_view what) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return Status(Code::kMediaError, std::string(what) + ": " + buf);
}

// Fatal only: what goes wrong reaches callers as a Status, and FFmpeg's own
// messages (one per Kinesis Video chunk's unknown-length segment, or per
// damaged packet of a hostile producer) would only flood the log.
void QuietFfmpegLogs() { av_log_set_level(AV_LOG_FATAL); }

}  // namespace lastframe::media
