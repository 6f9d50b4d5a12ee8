#include "media/animation_encoder.h"

extern "C" {
#include <libavutil/opt.h>
}

#include <webp/encode.h>
#include <webp/mux.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "media/image_render.h"

namespace lastframe::media {

// A format's encoder: Start once with the size, then one Add per frame of
// RGB24 planes, then Finish.
class AnimationEncoder::Backend {
 public:
  virtual ~Backend() = default;
  virtual Status Start(int width, int height) = 0;
  virtual Status Add(const internal::Planes& rgb, int64_t start_ms, int duration_ms) = 0;
  virtual Result<std::string> Finish(int64_t end_ms, int last_duration_ms) = 0;
};

namespace {

struct WebpAnimDeleter {
  void operator()(WebPAnimEncoder* e) const { WebPAnimEncoderDelete(e); }
};

class WebpBackend : public AnimationEncoder::Backend {
 public:
  explicit WebpBackend(int quality) : quality_(std::clamp(quality, 1, 100)) {}

  Status Start(int width, int height) override {
    WebPAnimEncoderOptions options;
    if (!WebPAnimEncoderOptionsInit(&options)) return Internal("libwebpmux version mismatch");
    options.anim_params.loop_count = 0;  // forever
    options.allow_mixed = 0;             // lossy frames only
    encoder_.reset(WebPAnimEncoderNew(width, height, &options));
    if (!encoder_) return Internal("cannot create a WebP animation encoder");
    width_ = width;
    height_ = height;
    return Status::Ok();
  }

  Status Add(const internal::Planes& rgb, int64_t start_ms, int) override {
    WebPConfig config;
    WebPPicture pic;
    if (!WebPConfigPreset(&config, WEBP_PRESET_DEFAULT, static_cast<float>(quality_)) ||
        !WebPPictureInit(&pic))
      return Internal("libwebp version mismatch");
    config.method = 2;  // fast, as for stills
    pic.width = width_;
    pic.height = height_;
    pic.use_argb = 1;  // WebPAnimEncoder works in ARGB
    if (!WebPPictureImportRGB(&pic, rgb.data[0], rgb.linesize[0])) {
      WebPPictureFree(&pic);
      return Internal("out of memory");
    }
    int ok = WebPAnimEncoderAdd(encoder_.get(), &pic, static_cast<int>(start_ms), &config);
    WebPPictureFree(&pic);
    if (!ok)
      return Internal(std::string("WebP animation: ") + WebPAnimEncoderGetError(encoder_.get()));
    return Status::Ok();
  }

  Result<std::string> Finish(int64_t end_ms, int) override {
    if (!WebPAnimEncoderAdd(encoder_.get(), nullptr, static_cast<int>(end_ms), nullptr))
      return Internal(std::string("WebP animation: ") + WebPAnimEncoderGetError(encoder_.get()));
    WebPData data;
    WebPDataInit(&data);
    if (!WebPAnimEncoderAssemble(encoder_.get(), &data))
      return Internal(std::string("WebP animation: ") + WebPAnimEncoderGetError(encoder_.get()));
    std::string out(reinterpret_cast<const char*>(data.bytes), data.size);
    WebPDataClear(&data);
    return out;
  }

 private:
  int quality_;
  int width_ = 0, height_ = 0;
  std::unique_ptr<WebPAnimEncoder, WebpAnimDeleter> encoder_;
};

// GIF's palette: 6 levels of red, 7 of green (the eye's most sensitive), 6 of
// blue; 252 colours including black, white and five greys between. Fixed, so
// every frame shares the global colour table and nothing flickers.
constexpr int kLevelsR = 6, kLevelsG = 7, kLevelsB = 6;

// Per-channel quantization with a 4x4 Bayer ordered dither: [threshold][value]
// -> level. Ordered rather than error-diffusion dither keeps a still scene's
// pixels still from frame to frame.
struct Quantizer {
  std::array<std::array<uint8_t, 256>, 16> r{}, g{}, b{};
  std::array<uint32_t, 256> palette{};

  Quantizer() {
    static constexpr int kBayer[16] = {0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5};
    auto fill = [](std::array<std::array<uint8_t, 256>, 16>& t, int levels) {
      const double step = 255.0 / (levels - 1);
      for (int k = 0; k < 16; ++k)
        for (int v = 0; v < 256; ++v) {
          double level = v / step + (kBayer[k] + 0.5) / 16.0 - 0.5;
          t[k][v] = static_cast<uint8_t>(std::clamp(static_cast<int>(level + 0.5), 0, levels - 1));
        }
    };
    fill(r, kLevelsR);
    fill(g, kLevelsG);
    fill(b, kLevelsB);
    for (int i = 0; i < kLevelsR * kLevelsG * kLevelsB; ++i) {
      uint32_t rv =
          static_cast<uint32_t>(std::lround(i / (kLevelsG * kLevelsB) * 255.0 / (kLevelsR - 1)));
      uint32_t gv =
          static_cast<uint32_t>(std::lround(i / kLevelsB % kLevelsG * 255.0 / (kLevelsG - 1)));
      uint32_t bv = static_cast<uint32_t>(std::lround(i % kLevelsB * 255.0 / (kLevelsB - 1)));
      palette[i] = 0xFF000000u | rv << 16 | gv << 8 | bv;
    }
    for (size_t i = kLevelsR * kLevelsG * kLevelsB; i < palette.size(); ++i)
      palette[i] = 0xFF000000u;
  }

  uint8_t Index(int x, int y, const uint8_t* rgb) const {
    int k = (y & 3) * 4 + (x & 3);
    return static_cast<uint8_t>((r[k][rgb[0]] * kLevelsG + g[k][rgb[1]]) * kLevelsB + b[k][rgb[2]]);
  }
};

const Quantizer& GifQuantizer() {
  static const Quantizer q;
  return q;
}

struct FormatContextDeleter {
  void operator()(AVFormatContext* c) const {
    if (c->pb != nullptr) {
      uint8_t* buf = nullptr;
      avio_close_dyn_buf(c->pb, &buf);
      av_free(buf);
    }
    avformat_free_context(c);
  }
};

class GifBackend : public AnimationEncoder::Backend {
 public:
  Status Start(int width, int height) override {
    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_GIF);
    if (codec == nullptr) return Internal("GIF encoder not built in");
    ctx_.reset(avcodec_alloc_context3(codec));
    if (!ctx_) return Internal("out of memory");
    ctx_->width = width;
    ctx_->height = height;
    ctx_->pix_fmt = AV_PIX_FMT_PAL8;
    ctx_->time_base = {1, 100};  // GIF's delays are in hundredths of a second
    int err = avcodec_open2(ctx_.get(), codec, nullptr);
    if (err < 0) return AvError(err, "opening the GIF encoder");
    frame_ = MakeFrame();
    frame_->format = AV_PIX_FMT_PAL8;
    frame_->width = width;
    frame_->height = height;
    if ((err = av_frame_get_buffer(frame_.get(), 0)) < 0) return AvError(err, "GIF frame");
    return Status::Ok();
  }

  Status Add(const internal::Planes& rgb, int64_t start_ms, int) override {
    // The encoder may still hold the last frame's buffer.
    int err = av_frame_make_writable(frame_.get());
    if (err < 0) return AvError(err, "GIF frame");
    const Quantizer& q = GifQuantizer();
    for (int y = 0; y < ctx_->height; ++y) {
      const uint8_t* in = rgb.data[0] + ptrdiff_t{y} * rgb.linesize[0];
      uint8_t* out = frame_->data[0] + ptrdiff_t{y} * frame_->linesize[0];
      for (int x = 0; x < ctx_->width; ++x) out[x] = q.Index(x, y, in + 3 * x);
    }
    std::copy(q.palette.begin(), q.palette.end(), reinterpret_cast<uint32_t*>(frame_->data[1]));
    frame_->pts = Centiseconds(start_ms);
    if ((err = avcodec_send_frame(ctx_.get(), frame_.get())) < 0) return AvError(err, "GIF encode");
    return Drain();
  }

  Result<std::string> Finish(int64_t, int last_duration_ms) override {
    int err = avcodec_send_frame(ctx_.get(), nullptr);
    if (err < 0) return AvError(err, "GIF encode");
    LF_RETURN_IF_ERROR(Drain());
    // Muxed only now, when the last frame's delay is known (the muxer takes
    // each other frame's from the next one's pts).
    AVFormatContext* raw = nullptr;
    err = avformat_alloc_output_context2(&raw, nullptr, "gif", nullptr);
    if (err < 0) return AvError(err, "GIF muxer");
    std::unique_ptr<AVFormatContext, FormatContextDeleter> oc(raw);
    AVStream* st = avformat_new_stream(oc.get(), nullptr);
    if (st == nullptr) return Internal("out of memory");
    if ((err = avcodec_parameters_from_context(st->codecpar, ctx_.get())) < 0)
      return AvError(err, "GIF muxer");
    st->time_base = ctx_->time_base;
    if ((err = avio_open_dyn_buf(&oc->pb)) < 0) return AvError(err, "GIF muxer");
    AVDictionary* opts = nullptr;
    av_dict_set_int(&opts, "loop", 0, 0);  // forever
    av_dict_set_int(&opts, "final_delay", Centiseconds(last_duration_ms), 0);
    err = avformat_write_header(oc.get(), &opts);
    av_dict_free(&opts);
    if (err < 0) return AvError(err, "GIF muxer");
    for (PacketPtr& pkt : packets_) {
      av_packet_rescale_ts(pkt.get(), ctx_->time_base, st->time_base);
      pkt->stream_index = st->index;
      if ((err = av_write_frame(oc.get(), pkt.get())) < 0) return AvError(err, "GIF muxer");
    }
    if ((err = av_write_trailer(oc.get())) < 0) return AvError(err, "GIF muxer");
    uint8_t* buf = nullptr;
    int size = avio_close_dyn_buf(oc->pb, &buf);
    oc->pb = nullptr;
    std::string out(reinterpret_cast<const char*>(buf), static_cast<size_t>(size));
    av_free(buf);
    return out;
  }

 private:
  static int64_t Centiseconds(int64_t ms) { return (ms + 5) / 10; }

  Status Drain() {
    for (;;) {
      PacketPtr pkt = MakePacket();
      int err = avcodec_receive_packet(ctx_.get(), pkt.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::Ok();
      if (err < 0) return AvError(err, "GIF encode");
      packets_.push_back(std::move(pkt));
    }
  }

  CodecContextPtr ctx_;
  FramePtr frame_;
  std::vector<PacketPtr> packets_;
};

int MaxSide(AnimationFormat format) {
  return MaxImageSide(format == AnimationFormat::kWebp ? ImageFormat::kWebp : ImageFormat::kPng);
}

}  // namespace

AnimationEncoder::AnimationEncoder(AnimationFormat format, EncodeOptions options)
    : format_(format), options_(std::move(options)) {}

AnimationEncoder::~AnimationEncoder() = default;

Result<std::unique_ptr<AnimationEncoder>> AnimationEncoder::Create(AnimationFormat format,
                                                                   EncodeOptions options) {
  LF_RETURN_IF_ERROR(ValidateEncodeOptions(options));
  std::unique_ptr<AnimationEncoder> enc(new AnimationEncoder(format, std::move(options)));
  if (format == AnimationFormat::kWebp)
    enc->backend_ = std::make_unique<WebpBackend>(enc->options_.quality);
  else
    enc->backend_ = std::make_unique<GifBackend>();
  return enc;
}

Status AnimationEncoder::Add(const AVFrame& frame, int duration_ms,
                             const std::string& overlay_text) {
  if (finished_) return InvalidArgument("the animation is already finished");
  if (duration_ms < 10 || duration_ms > 655350)
    return InvalidArgument("a frame's duration must be 10 to 655350 ms, not " +
                           std::to_string(duration_ms));
  if (frame.width <= 0 || frame.height <= 0 || frame.format < 0)
    return Status(Code::kMediaError, "frame has no picture");
  EncodeOptions options = options_;
  if (!overlay_text.empty()) options.overlay_text = overlay_text;
  if (width_ == 0) {
    int w = 0, h = 0;
    LF_RETURN_IF_ERROR(internal::OutputSize(frame, options, MaxSide(format_), &w, &h));
    LF_RETURN_IF_ERROR(backend_->Start(w, h));
    width_ = w;
    height_ = h;
  }
  // Every frame into the first one's box, fitted as asked.
  options.width = width_;
  options.height = height_;
  internal::Rendered r;
  LF_RETURN_IF_ERROR(internal::Render(frame, options, {AV_PIX_FMT_RGB24}, &r));
  LF_RETURN_IF_ERROR(backend_->Add(r.planes, elapsed_ms_, duration_ms));
  elapsed_ms_ += duration_ms;
  last_duration_ms_ = duration_ms;
  return Status::Ok();
}

Result<std::string> AnimationEncoder::Finish() {
  if (finished_) return InvalidArgument("the animation is already finished");
  if (width_ == 0) return InvalidArgument("an animation needs at least one frame");
  finished_ = true;
  return backend_->Finish(elapsed_ms_, last_duration_ms_);
}

int AnimationEncoder::width() const { return width_; }
int AnimationEncoder::height() const { return height_; }

}  // namespace lastframe::media
