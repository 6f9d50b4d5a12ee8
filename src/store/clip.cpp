#include "store/clip.h"

#include <algorithm>
#include <cstring>

namespace lastframe::store {
namespace {

// A seekable output in memory: the MP4 muxer seeks back to fix sizes. (Its
// faststart pass reopens the output by name, which memory has not: the
// index stays at the end, where players that download the file find it.)
struct MemoryFile {
  std::string data;
  size_t pos = 0;
  size_t max_bytes = 0;
  bool overflow = false;

  static int Read(void* opaque, uint8_t* buf, int size) {
    auto* m = static_cast<MemoryFile*>(opaque);
    size_t n =
        std::min(static_cast<size_t>(size), m->data.size() - std::min(m->pos, m->data.size()));
    if (n == 0) return AVERROR_EOF;
    std::memcpy(buf, m->data.data() + m->pos, n);
    m->pos += n;
    return static_cast<int>(n);
  }
  static int Write(void* opaque, uint8_t* buf, int size) {
    auto* m = static_cast<MemoryFile*>(opaque);
    size_t end = m->pos + static_cast<size_t>(size);
    if (end > m->max_bytes) {
      m->overflow = true;
      return AVERROR(EFBIG);
    }
    if (end > m->data.size()) m->data.resize(end);
    std::memcpy(m->data.data() + m->pos, buf, static_cast<size_t>(size));
    m->pos = end;
    return size;
  }
  static int64_t Seek(void* opaque, int64_t offset, int whence) {
    auto* m = static_cast<MemoryFile*>(opaque);
    if (whence & AVSEEK_SIZE) return static_cast<int64_t>(m->data.size());
    int64_t base = 0;
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET:
        base = 0;
        break;
      case SEEK_CUR:
        base = static_cast<int64_t>(m->pos);
        break;
      case SEEK_END:
        base = static_cast<int64_t>(m->data.size());
        break;
      default:
        return AVERROR(EINVAL);
    }
    if (base + offset < 0) return AVERROR(EINVAL);
    m->pos = static_cast<size_t>(base + offset);
    return static_cast<int64_t>(m->pos);
  }
};

bool SameCodec(const AVCodecParameters& a, const AVCodecParameters& b) {
  return a.codec_id == b.codec_id && a.width == b.width && a.height == b.height &&
         a.extradata_size == b.extradata_size &&
         (a.extradata_size == 0 || std::memcmp(a.extradata, b.extradata, a.extradata_size) == 0);
}

}  // namespace

Result<std::string> MuxClip(const std::vector<FragmentView>& fragments, ClipFormat format,
                            size_t max_bytes) {
  if (fragments.empty() || fragments.front().frames.empty() || !fragments.front().codec)
    return NotFound("no fragments in the range", "NoFragments");
  const AVCodecParameters& codec = *fragments.front().codec;
  MemoryFile file;
  file.max_bytes = max_bytes;
  constexpr int kBufferSize = 64 * 1024;
  auto* buffer = static_cast<uint8_t*>(av_malloc(kBufferSize));
  AVIOContext* io = avio_alloc_context(buffer, kBufferSize, 1, &file, &MemoryFile::Read,
                                       &MemoryFile::Write, &MemoryFile::Seek);
  AVFormatContext* ctx = nullptr;
  auto cleanup = [&] {
    if (ctx) avformat_free_context(ctx);
    if (io) {
      av_freep(&io->buffer);
      avio_context_free(&io);
    }
  };
  auto fail = [&](Status s) -> Result<std::string> {
    cleanup();
    if (file.overflow)
      return Status(
          Code::kTooLarge,
          "the clip would exceed " + std::to_string(max_bytes) + " bytes: ask for a shorter range",
          "ClipTooLarge");
    return s;
  };
  int rc = avformat_alloc_output_context2(&ctx, nullptr,
                                          format == ClipFormat::kMp4 ? "mp4" : "matroska", nullptr);
  if (rc < 0 || io == nullptr) return fail(media::AvError(rc, "cannot make the clip's muxer"));
  ctx->pb = io;
  ctx->flags |= AVFMT_FLAG_CUSTOM_IO;
  AVStream* st = avformat_new_stream(ctx, nullptr);
  if (st == nullptr || avcodec_parameters_copy(st->codecpar, &codec) < 0)
    return fail(Internal("cannot add the clip's video track"));
  st->codecpar->codec_tag = 0;
  st->time_base = {1, 1000};
  rc = avformat_write_header(ctx, nullptr);
  if (rc < 0) return fail(media::AvError(rc, "cannot start the clip"));

  // The producer's timeline: fragment start plus the frame's offset in it.
  struct Placed {
    const Frame* frame;
    int64_t pts, dts;
  };
  std::vector<Placed> placed;
  int64_t last_pts = INT64_MIN;
  for (const FragmentView& f : fragments) {
    if (f.frames.empty() || !f.codec || !SameCodec(*f.codec, codec)) break;
    const int64_t first_pts = f.frames.front().pts_ms;
    int64_t shift = 0;  // a producer clock that stepped back: follow on
    if (f.producer_ts_ms <= last_pts) shift = last_pts + 1 - f.producer_ts_ms;
    for (const Frame& frame : f.frames) {
      int64_t pts = f.producer_ts_ms + shift + (frame.pts_ms - first_pts);
      placed.push_back({&frame, pts, 0});
      last_pts = std::max(last_pts, pts);
    }
  }
  // Decode times from presentation times alone (Matroska producers often send
  // none): the i-th smallest presentation time, less the reordering delay, so
  // that each frame is decoded before it is shown and in the order it came.
  std::vector<int64_t> sorted;
  for (const Placed& p : placed) sorted.push_back(p.pts);
  std::sort(sorted.begin(), sorted.end());
  int64_t delay = 0;
  for (size_t i = 0; i < placed.size(); ++i) delay = std::max(delay, sorted[i] - placed[i].pts);
  const int64_t base = placed.empty() ? 0 : sorted.front() - delay;
  for (size_t i = 0; i < placed.size(); ++i) {
    placed[i].dts = sorted[i] - delay - base;
    placed[i].pts -= base;
    if (i > 0 && placed[i].dts <= placed[i - 1].dts) placed[i].dts = placed[i - 1].dts + 1;
  }
  media::PacketPtr pkt = media::MakePacket();
  for (size_t i = 0; i < placed.size(); ++i) {
    av_packet_unref(pkt.get());
    if (av_packet_ref(pkt.get(), placed[i].frame->packet.get()) < 0)
      return fail(Internal("out of memory"));
    pkt->stream_index = st->index;
    pkt->pts = placed[i].pts;
    pkt->dts = placed[i].dts;
    // Every frame lasts until the next; the last as long as the one before it
    // (MP4 gives a frame without a duration no time, and players skip it).
    pkt->duration = i + 1 < placed.size() ? placed[i + 1].dts - placed[i].dts
                    : i > 0               ? placed[i].dts - placed[i - 1].dts
                                          : 40;
    pkt->flags = placed[i].frame->keyframe ? AV_PKT_FLAG_KEY : 0;
    av_packet_rescale_ts(pkt.get(), AVRational{1, 1000}, st->time_base);
    rc = av_interleaved_write_frame(ctx, pkt.get());
    if (rc < 0) return fail(media::AvError(rc, "cannot write the clip"));
  }
  rc = av_write_trailer(ctx);
  if (rc < 0) return fail(media::AvError(rc, "cannot finish the clip"));
  avio_flush(io);
  if (file.overflow) return fail(Internal("overflow"));
  std::string out = std::move(file.data);
  cleanup();
  return out;
}

}  // namespace lastframe::store
