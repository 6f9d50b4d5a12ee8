#include "media/demuxer.h"

extern "C" {
#include <libavutil/mem.h>
}

namespace lastframe::media {
namespace {
constexpr int kIoBufferSize = 64 * 1024;
}

int Demuxer::ReadThunk(void* opaque, uint8_t* buf, int size) {
  int n = static_cast<Demuxer*>(opaque)->read_(buf, size);
  return n == 0 ? AVERROR_EOF : n;
}

Result<std::unique_ptr<Demuxer>> Demuxer::Open(ReadFn read, const char* format_name) {
  std::unique_ptr<Demuxer> d(new Demuxer());
  d->read_ = std::move(read);
  const AVInputFormat* format = av_find_input_format(format_name);
  if (format == nullptr) return Internal(std::string("demuxer not built in: ") + format_name);
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
  if (buffer == nullptr) return Internal("out of memory");
  d->io_ =
      avio_alloc_context(buffer, kIoBufferSize, 0, d.get(), &Demuxer::ReadThunk, nullptr, nullptr);
  if (d->io_ == nullptr) {
    av_free(buffer);
    return Internal("out of memory");
  }
  d->io_->seekable = 0;
  d->ctx_ = avformat_alloc_context();
  if (d->ctx_ == nullptr) return Internal("out of memory");
  d->ctx_->pb = d->io_;
  d->ctx_->flags |= AVFMT_FLAG_CUSTOM_IO;
  int err = avformat_open_input(&d->ctx_, nullptr, format, nullptr);
  if (err < 0) {
    // avformat_open_input frees the context on failure; the AVIO stays ours.
    d->ctx_ = nullptr;
    return AvError(err, "reading the container header");
  }
  return d;
}

Demuxer::~Demuxer() {
  if (ctx_ != nullptr) avformat_close_input(&ctx_);
  if (io_ != nullptr) {
    av_freep(&io_->buffer);
    avio_context_free(&io_);
  }
}

Result<Demuxer::Next> Demuxer::Read(AVPacket* pkt) {
  av_packet_unref(pkt);
  int err = av_read_frame(ctx_, pkt);
  if (err == AVERROR_EOF) return Next::kEnd;
  if (err < 0) return AvError(err, "reading a packet");
  return Next::kPacket;
}

}  // namespace lastframe::media
