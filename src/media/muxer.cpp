#include "media/muxer.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace lastframe::media {
namespace internal {

// A muxer with one video track timed in milliseconds, writing through AVIO
// callbacks; the header is the caller's to write.
class MuxOutput {
 public:
  using ReadFn = int (*)(void* opaque, uint8_t* buf, int size);
  using WriteFn = int (*)(void* opaque, uint8_t* buf, int size);
  using SeekFn = int64_t (*)(void* opaque, int64_t offset, int whence);

  // Opens FFmpeg's |format| muxer ("mp4", "matroska") over |opaque|'s callbacks
  // (|read| and |seek| null for an output that cannot seek), |flags| added to
  // the format context's, with the track of |codec|. |what| names the output
  // in errors ("clip": "cannot make the clip's muxer").
  static Result<std::unique_ptr<MuxOutput>> Open(const char* format, int flags,
                                                 const AVCodecParameters& codec,
                                                 const std::string& what, void* opaque, ReadFn read,
                                                 WriteFn write, SeekFn seek) {
    std::unique_ptr<MuxOutput> out(new MuxOutput());
    constexpr int kBufferSize = 64 * 1024;
    auto* buffer = static_cast<uint8_t*>(av_malloc(kBufferSize));
    if (buffer == nullptr) return Internal("out of memory");
    out->io = avio_alloc_context(buffer, kBufferSize, 1, opaque, read, write, seek);
    if (out->io == nullptr) {
      av_free(buffer);
      return Internal("out of memory");
    }
    // Looked up once: av_guess_format walks every muxer by name, a cost on each fragment file.
    static const AVOutputFormat* const kMatroska = av_guess_format("matroska", nullptr, nullptr);
    static const AVOutputFormat* const kMp4 = av_guess_format("mp4", nullptr, nullptr);
    const AVOutputFormat* known = std::string_view(format) == "matroska" ? kMatroska
                                  : std::string_view(format) == "mp4"    ? kMp4
                                                                         : nullptr;
    int rc = avformat_alloc_output_context2(&out->ctx, known, known ? nullptr : format, nullptr);
    if (rc < 0) return AvError(rc, "cannot make the " + what + "'s muxer");
    out->ctx->pb = out->io;
    out->ctx->flags |= AVFMT_FLAG_CUSTOM_IO | flags;
    out->stream = avformat_new_stream(out->ctx, nullptr);
    if (out->stream == nullptr || avcodec_parameters_copy(out->stream->codecpar, &codec) < 0)
      return Internal("cannot add the " + what + "'s video track");
    out->stream->codecpar->codec_tag = 0;
    out->stream->time_base = {1, 1000};
    return out;
  }

  ~MuxOutput() {
    if (ctx) avformat_free_context(ctx);
    if (io) {
      av_freep(&io->buffer);
      avio_context_free(&io);
    }
  }

  AVFormatContext* ctx = nullptr;
  AVIOContext* io = nullptr;
  AVStream* stream = nullptr;

 private:
  MuxOutput() = default;
};

}  // namespace internal

namespace {

using internal::MuxOutput;

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
    if (m->pos == m->data.size()) {  // at the end, as nearly every write is: no zero fill
      m->data.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(size));
    } else {
      if (end > m->data.size()) m->data.resize(end);
      std::memcpy(m->data.data() + m->pos, buf, static_cast<size_t>(size));
    }
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

// EBML variable-length size, in the fewest bytes.
void PutSize(std::string* out, uint64_t size) {
  int len = 1;
  while (len < 8 && size >= (uint64_t{1} << (7 * len)) - 1) ++len;
  for (int i = len - 1; i >= 0; --i) {
    uint8_t b = static_cast<uint8_t>(size >> (8 * i));
    if (i == len - 1) b |= static_cast<uint8_t>(0x80 >> (len - 1));
    out->push_back(static_cast<char>(b));
  }
}

void PutId(std::string* out, uint32_t id) {
  bool started = false;
  for (int i = 3; i >= 0; --i) {
    uint8_t b = static_cast<uint8_t>(id >> (8 * i));
    if (b != 0 || started) {
      out->push_back(static_cast<char>(b));
      started = true;
    }
  }
}

std::string Element(uint32_t id, const std::string& payload) {
  std::string out;
  PutId(&out, id);
  PutSize(&out, payload.size());
  return out + payload;
}

}  // namespace

bool SameCodec(const AVCodecParameters& a, const AVCodecParameters& b) {
  return a.codec_id == b.codec_id && a.width == b.width && a.height == b.height &&
         a.extradata_size == b.extradata_size &&
         (a.extradata_size == 0 || std::memcmp(a.extradata, b.extradata, a.extradata_size) == 0);
}

Result<std::string> MuxClip(const AVCodecParameters& codec, std::span<const EncodedFrame> frames,
                            ClipFormat format, size_t max_bytes) {
  MemoryFile file;
  file.max_bytes = max_bytes;
  // Room for the frames and the container's few bytes around them, so that the file is not
  // copied again each time it outgrows its buffer.
  size_t frame_bytes = 0;
  for (const EncodedFrame& f : frames) frame_bytes += f.size();
  file.data.reserve(std::min(max_bytes, frame_bytes + frame_bytes / 16 + 4096));
  auto fail = [&](Status s) -> Result<std::string> {
    if (file.overflow)
      return Status(
          Code::kTooLarge,
          "the clip would exceed " + std::to_string(max_bytes) + " bytes: ask for a shorter range",
          Reason::kClipTooLarge);
    return s;
  };
  auto opened = MuxOutput::Open(format == ClipFormat::kMp4 ? "mp4" : "matroska", 0, codec, "clip",
                                &file, &MemoryFile::Read, &MemoryFile::Write, &MemoryFile::Seek);
  if (!opened.ok()) return fail(opened.status());
  MuxOutput& out = **opened;
  AVDictionary* options = nullptr;
  // No CRC-32 element per cluster: optional in Matroska, checked by no reader we serve, and
  // a tenth of the writers' time when every fragment is written to its file.
  if (format == ClipFormat::kMatroska) av_dict_set(&options, "write_crc32", "0", 0);
  int rc = avformat_write_header(out.ctx, &options);
  av_dict_free(&options);
  if (rc < 0) return fail(AvError(rc, "cannot start the clip"));

  // Decode times from presentation times alone: the i-th smallest presentation
  // time, less the reordering delay, so that each frame is decoded before it is
  // shown and in the order it came.
  struct Placed {
    int64_t pts, dts;
  };
  std::vector<Placed> placed;
  std::vector<int64_t> sorted;
  for (const EncodedFrame& f : frames) {
    placed.push_back({f.pts_ms, 0});
    sorted.push_back(f.pts_ms);
  }
  std::sort(sorted.begin(), sorted.end());
  int64_t delay = 0;
  for (size_t i = 0; i < placed.size(); ++i) delay = std::max(delay, sorted[i] - placed[i].pts);
  const int64_t base = placed.empty() ? 0 : sorted.front() - delay;
  for (size_t i = 0; i < placed.size(); ++i) {
    placed[i].dts = sorted[i] - delay - base;
    placed[i].pts -= base;
    if (i > 0 && placed[i].dts <= placed[i - 1].dts) placed[i].dts = placed[i - 1].dts + 1;
  }
  PacketPtr pkt = MakePacket();
  for (size_t i = 0; i < placed.size(); ++i) {
    av_packet_unref(pkt.get());
    if (av_packet_ref(pkt.get(), frames[i].packet.get()) < 0)
      return fail(Internal("out of memory"));
    pkt->stream_index = out.stream->index;
    pkt->pts = placed[i].pts;
    pkt->dts = placed[i].dts;
    // Every frame lasts until the next; the last as long as the one before it
    // (MP4 gives a frame without a duration no time, and players skip it).
    pkt->duration = i + 1 < placed.size() ? placed[i + 1].dts - placed[i].dts
                    : i > 0               ? placed[i].dts - placed[i - 1].dts
                                          : 40;
    pkt->flags = frames[i].keyframe ? AV_PKT_FLAG_KEY : 0;
    av_packet_rescale_ts(pkt.get(), AVRational{1, 1000}, out.stream->time_base);
    rc = av_interleaved_write_frame(out.ctx, pkt.get());
    if (rc < 0) return fail(AvError(rc, "cannot write the clip"));
  }
  rc = av_write_trailer(out.ctx);
  if (rc < 0) return fail(AvError(rc, "cannot finish the clip"));
  avio_flush(out.io);
  if (file.overflow) return fail(Internal("overflow"));
  return std::move(file.data);
}

std::string MatroskaTagsElement(const MatroskaTags& tags) {
  std::string tag = Element(0x63C0, "");  // Targets: the whole segment
  for (const auto& [name, value] : tags)
    tag += Element(0x67C8, Element(0x45A3, name) + Element(0x4487, value));  // SimpleTag
  return Element(0x1254C367, Element(0x7373, tag));
}

int MatroskaWriter::Write(void* opaque, uint8_t* buf, int size) {
  static_cast<MatroskaWriter*>(opaque)->out_.append(reinterpret_cast<const char*>(buf),
                                                    static_cast<size_t>(size));
  return size;
}

Result<std::unique_ptr<MatroskaWriter>> MatroskaWriter::Begin(const AVCodecParameters& codec,
                                                              const MatroskaTags& tags) {
  std::unique_ptr<MatroskaWriter> w(new MatroskaWriter());
  // No seek callback: the muxer writes a live stream (unknown sizes, no index).
  auto opened = MuxOutput::Open("matroska", AVFMT_FLAG_BITEXACT, codec, "chunk", w.get(), nullptr,
                                &MatroskaWriter::Write, nullptr);
  if (!opened.ok()) return opened.status();
  w->output_ = std::move(*opened);
  for (const auto& [name, value] : tags)
    av_dict_set(&w->output_->ctx->metadata, name.c_str(), value.c_str(), 0);
  int rc = avformat_write_header(w->output_->ctx, nullptr);
  if (rc < 0) return AvError(rc, "cannot start the chunk");
  avio_flush(w->output_->io);
  return w;
}

MatroskaWriter::MatroskaWriter() = default;
MatroskaWriter::~MatroskaWriter() = default;

Status MatroskaWriter::Add(const EncodedFrame& frame, bool flush) {
  if (ended_) return Internal("the chunk has ended");
  PacketPtr pkt = MakePacket();
  if (av_packet_ref(pkt.get(), frame.packet.get()) < 0) return Internal("out of memory");
  if (frames_ == 0) first_pts_ms_ = frame.pts_ms;
  pkt->stream_index = output_->stream->index;
  pkt->pts = frame.pts_ms;
  // Matroska keeps presentation times only; the muxer still wants decode
  // times that rise and never pass them (B-frames come out of order).
  pkt->dts = first_pts_ms_ - 60'000 + frames_++;
  pkt->flags = frame.keyframe ? AV_PKT_FLAG_KEY : 0;
  int rc = av_write_frame(output_->ctx, pkt.get());
  if (rc < 0) return AvError(rc, "cannot write the chunk");
  if (flush) {
    rc = av_write_frame(output_->ctx, nullptr);  // closes the cluster: the frame goes out now
    if (rc < 0) return AvError(rc, "cannot flush the chunk");
  }
  avio_flush(output_->io);
  return Status::Ok();
}

Status MatroskaWriter::End(const MatroskaTags& trailing) {
  if (ended_) return Status::Ok();
  ended_ = true;
  int rc = av_write_trailer(output_->ctx);
  if (rc < 0) return AvError(rc, "cannot end the chunk");
  avio_flush(output_->io);
  if (!trailing.empty()) out_ += MatroskaTagsElement(trailing);
  return Status::Ok();
}

std::string MatroskaWriter::Take() {
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

}  // namespace lastframe::media
