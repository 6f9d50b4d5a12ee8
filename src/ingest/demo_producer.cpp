#include "ingest/demo_producer.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" {
#include <libavutil/opt.h>
}

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <ctime>

#include "ingest/push_session.h"
#include "media/ffmpeg.h"

namespace lastframe::ingest {
namespace {

// Seven-segment glyphs for 0-9: bits a,b,c,d,e,f,g.
constexpr uint8_t kSegments[10] = {0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f};

void FillRect(AVFrame* f, int x0, int y0, int w, int h, uint8_t y, uint8_t u, uint8_t v) {
  for (int y_ = std::max(0, y0); y_ < std::min(f->height, y0 + h); ++y_)
    for (int x = std::max(0, x0); x < std::min(f->width, x0 + w); ++x) {
      f->data[0][y_ * f->linesize[0] + x] = y;
      f->data[1][(y_ / 2) * f->linesize[1] + x / 2] = u;
      f->data[2][(y_ / 2) * f->linesize[2] + x / 2] = v;
    }
}

// Draws one digit, |s| pixels per segment length, at (x, y).
void DrawDigit(AVFrame* f, int digit, int x, int y, int s) {
  const int t = std::max(2, s / 5);  // stroke
  uint8_t m = kSegments[digit];
  auto seg = [&](int bit, int sx, int sy, int w, int h) {
    if (m & (1 << bit)) FillRect(f, x + sx, y + sy, w, h, 235, 128, 128);
  };
  seg(0, t, 0, s, t);              // a
  seg(1, s + t, t, t, s);          // b
  seg(2, s + t, s + 2 * t, t, s);  // c
  seg(3, t, 2 * s + 2 * t, s, t);  // d
  seg(4, 0, s + 2 * t, t, s);      // e
  seg(5, 0, t, t, s);              // f
  seg(6, t, s + t, s, t);          // g
}

void DrawFrame(AVFrame* f, int64_t index, int64_t now_ms) {
  const int w = f->width, h = f->height;
  // A diagonal gradient that scrolls, so every frame differs everywhere.
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      f->data[0][y * f->linesize[0] + x] = static_cast<uint8_t>(16 + ((x + y + index * 8) & 127));
  for (int y = 0; y < (h + 1) / 2; ++y)
    for (int x = 0; x < (w + 1) / 2; ++x) {
      f->data[1][y * f->linesize[1] + x] = static_cast<uint8_t>(64 + ((x * 2 + index * 3) & 127));
      f->data[2][y * f->linesize[2] + x] = static_cast<uint8_t>(64 + ((y * 2 + index * 5) & 127));
    }
  // A box bouncing across the picture.
  int box = h / 6;
  int span_x = std::max(1, w - box), span_y = std::max(1, h - box);
  int bx = static_cast<int>((index * 13) % (2 * span_x));
  int by = static_cast<int>((index * 7) % (2 * span_y));
  if (bx > span_x) bx = 2 * span_x - bx;
  if (by > span_y) by = 2 * span_y - by;
  FillRect(f, bx, by, box, box, 82, 90, 240);
  // The wall clock, HH:MM:SS UTC, on a dark band.
  std::time_t secs = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  int digits[6] = {tm.tm_hour / 10, tm.tm_hour % 10, tm.tm_min / 10,
                   tm.tm_min % 10,  tm.tm_sec / 10,  tm.tm_sec % 10};
  int s = std::max(6, h / 16), t = std::max(2, s / 5);
  int cell = s + 3 * t + s / 2;
  FillRect(f, 0, 0, 6 * cell + 3 * s, 2 * s + 5 * t, 16, 128, 128);
  for (int i = 0; i < 6; ++i) {
    int x = t + i * cell + (i / 2) * s;
    DrawDigit(f, digits[i], x, t, s);
    if (i % 2 == 1 && i < 5) {  // colon
      FillRect(f, x + cell, t + s / 2, t, t, 235, 128, 128);
      FillRect(f, x + cell, t + s + s / 2, t, t, 235, 128, 128);
    }
  }
}

struct OutputContextDeleter {
  void operator()(AVFormatContext* c) const {
    if (c->pb) {
      av_freep(&c->pb->buffer);
      avio_context_free(&c->pb);
    }
    avformat_free_context(c);
  }
};

// FFmpeg 5.1 declares the buffer non-const.
int WriteToSession(void* opaque, uint8_t* buf, int size) {
  auto* session = static_cast<PushSession*>(opaque);
  if (!session->Feed(buf, static_cast<size_t>(size)) && !session->WaitForSpace())
    return AVERROR_EXIT;
  return size;
}

}  // namespace

DemoProducer::DemoProducer(store::StreamStore& store, DemoOptions options)
    : store_(store), options_(std::move(options)) {}

DemoProducer::~DemoProducer() { Stop(); }

Status DemoProducer::Start() {
  if (avcodec_find_encoder(AV_CODEC_ID_H264) == nullptr)
    return Internal("no H.264 encoder in this FFmpeg build");
  thread_ = std::thread([this] {
    // The synthetic camera stands in for one elsewhere: its encoder yields to serving.
    auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    (void)::setpriority(PRIO_PROCESS, tid, ::getpriority(PRIO_PROCESS, tid) + 5);
    Run();
  });
  return Status::Ok();
}

void DemoProducer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void DemoProducer::Run() {
  auto session = PushSession::Start(store_, {.stream = options_.stream}, {});
  if (!session.ok()) {
    spdlog::error("demo: {}", session.status().ToString());
    return;
  }
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (codec == nullptr) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  media::CodecContextPtr enc(avcodec_alloc_context3(codec));
  enc->width = options_.width;
  enc->height = options_.height;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = {1, options_.fps};
  enc->framerate = {options_.fps, 1};
  enc->gop_size = options_.gop;
  enc->max_b_frames = 0;
  // Constant bit rate, as cameras send: x264 pads the simple picture up to it.
  enc->bit_rate = enc->rc_min_rate = enc->rc_max_rate = options_.bitrate;
  enc->rc_buffer_size = static_cast<int>(options_.bitrate);
  enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;  // Matroska keeps SPS/PPS in CodecPrivate
  av_opt_set(enc->priv_data, "preset", "veryfast", 0);
  av_opt_set(enc->priv_data, "tune", "zerolatency", 0);
  // Keyframes exactly every GOP; HRD signalling makes the rate constant.
  av_opt_set(enc->priv_data, "x264-params", "scenecut=0:nal-hrd=cbr", 0);
  if (int err = avcodec_open2(enc.get(), codec, nullptr); err < 0) {
    spdlog::error("demo: {}", media::AvError(err, "opening the H.264 encoder").ToString());
    return;
  }

  AVFormatContext* raw_oc = nullptr;
  avformat_alloc_output_context2(&raw_oc, nullptr, "matroska", nullptr);
  std::unique_ptr<AVFormatContext, OutputContextDeleter> oc(raw_oc);
  constexpr int kIoBuffer = 32 * 1024;
  auto* iobuf = static_cast<unsigned char*>(av_malloc(kIoBuffer));
  oc->pb =
      avio_alloc_context(iobuf, kIoBuffer, 1, session->get(), nullptr, &WriteToSession, nullptr);
  oc->flags |= AVFMT_FLAG_CUSTOM_IO;
  AVStream* st = avformat_new_stream(oc.get(), nullptr);
  avcodec_parameters_from_context(st->codecpar, enc.get());
  st->time_base = {1, 1000};
  AVDictionary* mux_opts = nullptr;
  av_dict_set(&mux_opts, "live", "1", 0);
  int err = avformat_write_header(oc.get(), &mux_opts);
  av_dict_free(&mux_opts);
  if (err < 0) {
    spdlog::error("demo: {}", media::AvError(err, "writing the Matroska header").ToString());
    return;
  }
  spdlog::info("demo: stream '{}' {}x{} {} fps H.264 {} kb/s", options_.stream, options_.width,
               options_.height, options_.fps, options_.bitrate / 1000);

  media::FramePtr frame = media::MakeFrame();
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = options_.width;
  frame->height = options_.height;
  av_frame_get_buffer(frame.get(), 0);
  media::PacketPtr pkt = media::MakePacket();
  auto period = std::chrono::microseconds(1'000'000 / options_.fps);
  auto next = std::chrono::steady_clock::now();
  for (int64_t i = 0; !stop_; ++i) {
    av_frame_make_writable(frame.get());
    DrawFrame(frame.get(), i, store_.clock().NowMs());
    frame->pts = i;
    frame->pict_type = AV_PICTURE_TYPE_NONE;
    if (avcodec_send_frame(enc.get(), frame.get()) < 0) break;
    bool failed = false;
    while (avcodec_receive_packet(enc.get(), pkt.get()) == 0) {
      av_packet_rescale_ts(pkt.get(), enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      // One cluster per frame: the frame reaches the store now, not at the
      // end of a cluster.
      if (av_write_frame(oc.get(), pkt.get()) < 0 || av_write_frame(oc.get(), nullptr) < 0)
        failed = true;
      avio_flush(oc->pb);
      av_packet_unref(pkt.get());
    }
    if (failed) {
      spdlog::error("demo: the push session stopped taking data");
      break;
    }
    next += period;
    std::this_thread::sleep_until(next);  // pacing at the camera's frame rate
  }
  av_write_trailer(oc.get());
  avio_flush(oc->pb);
  (*session)->Finish();
}

}  // namespace lastframe::ingest
