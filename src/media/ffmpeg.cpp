#include "media/ffmpeg.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <string>
#include <string_view>

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

namespace {

// FFmpeg's lines go through the process's logger, so that they take its
// format (--log-format json: a line of FFmpeg's own would not be JSON) and
// its writer thread. Called on whatever thread FFmpeg logs from.
void ToProcessLog(void* context, int level, const char* format, va_list args) {
  if (level > av_log_get_level()) return;
  char line[1024];
  int print_prefix = 1;
  if (av_log_format_line2(context, level, format, args, line, sizeof line, &print_prefix) < 0)
    return;
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (text.empty()) return;
  spdlog::log(level <= AV_LOG_ERROR ? spdlog::level::err : spdlog::level::warn, "ffmpeg: {}", text);
}

}  // namespace

// Fatal only: what goes wrong reaches callers as a Status, and FFmpeg's own
// messages (one per Kinesis Video chunk's unknown-length segment, or per
// damaged packet of a hostile producer) would only flood the log.
void QuietFfmpegLogs() {
  av_log_set_level(AV_LOG_FATAL);
  av_log_set_callback(ToProcessLog);
}

}  // namespace lastframe::media
