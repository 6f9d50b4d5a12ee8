#pragma once

// RAII owners and error conversion for the FFmpeg C API. Every other module
// that touches FFmpeg does so through these types, so no AVFrame, AVPacket or
// context can leak on an error path.

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
}

#include <memory>
#include <string_view>

#include "core/status.h"

namespace lastframe::media {

struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct CodecParametersDeleter {
  void operator()(AVCodecParameters* p) const { avcodec_parameters_free(&p); }
};

using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;

// Packets and codec parameters are shared, immutable, between ingest (which
// makes them), the store (which keeps them) and snapshots (which decode them):
// the payload is FFmpeg's refcounted buffer, never copied.
using SharedPacket = std::shared_ptr<const AVPacket>;
using SharedCodecParameters = std::shared_ptr<const AVCodecParameters>;

PacketPtr MakePacket();
FramePtr MakeFrame();
// Moves the reference held by |pkt| into a new shared packet; |pkt| is left blank.
SharedPacket TakePacket(AVPacket* pkt);
// Copies |par| (including extradata) into a shared, immutable copy.
Result<SharedCodecParameters> CopyCodecParameters(const AVCodecParameters& par);

// Converts an AVERROR into a Status with code kMediaError, "what: <av_strerror>".
Status AvError(int err, std::string_view what);

// Makes FFmpeg's own logging quiet (fatal only) so that hostile input cannot
// flood the service log. Called once at start-up; idempotent.
void QuietFfmpegLogs();

}  // namespace lastframe::media
