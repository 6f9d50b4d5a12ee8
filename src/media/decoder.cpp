#include "media/decoder.h"

#include <string>

namespace lastframe::media {

Result<CodecContextPtr> OpenDecoder(const AVCodecParameters& par, int threads) {
  const AVCodec* codec = avcodec_find_decoder(par.codec_id);
  if (codec == nullptr)
    return Status(Code::kMediaError,
                  std::string("no decoder for codec ") + avcodec_get_name(par.codec_id));
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) return Internal("out of memory");
  int err = avcodec_parameters_to_context(ctx.get(), &par);
  if (err < 0) return AvError(err, "configuring the decoder");
  ctx->pkt_timebase = {1, 1000};
  ctx->thread_count = threads;
  ctx->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  if ((err = avcodec_open2(ctx.get(), codec, nullptr)) < 0)
    return AvError(err, "opening the decoder");
  return ctx;
}

}  // namespace lastframe::media
