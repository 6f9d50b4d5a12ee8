#include "kvs/mkv_chunk.h"

#include <cstring>

namespace lastframe::kvs {
namespace {

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

std::string TagSeconds(int64_t ms) {
  std::string frac = std::to_string(((ms % 1000) + 1000) % 1000);
  return std::to_string(ms / 1000) + "." + std::string(3 - frac.size(), '0') + frac;
}

std::string MkvTagsElement(const MkvTags& tags) {
  std::string tag = Element(0x63C0, "");  // Targets: the whole segment
  for (const auto& [name, value] : tags)
    tag += Element(0x67C8, Element(0x45A3, name) + Element(0x4487, value));  // SimpleTag
  return Element(0x1254C367, Element(0x7373, tag));
}

MkvTags FragmentTags(const store::FragmentView& f) {
  return {{"AWS_KINESISVIDEO_FRAGMENT_NUMBER", std::to_string(f.number)},
          {"AWS_KINESISVIDEO_SERVER_TIMESTAMP", TagSeconds(f.server_ts_ms)},
          {"AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", TagSeconds(f.producer_ts_ms)}};
}

int MkvChunkWriter::Write(void* opaque, uint8_t* buf, int size) {
  static_cast<MkvChunkWriter*>(opaque)->out_.append(reinterpret_cast<const char*>(buf),
                                                    static_cast<size_t>(size));
  return size;
}

Result<std::unique_ptr<MkvChunkWriter>> MkvChunkWriter::Begin(const store::FragmentView& f,
                                                              const MkvTags& tags) {
  if (!f.codec || f.frames.empty()) return NotFound("the fragment holds no frame", "NoFrame");
  std::unique_ptr<MkvChunkWriter> w(new MkvChunkWriter());
  w->producer_ts_ms_ = f.producer_ts_ms;
  w->first_pts_ms_ = f.frames.front().pts_ms;
  constexpr int kBufferSize = 64 * 1024;
  auto* buffer = static_cast<uint8_t*>(av_malloc(kBufferSize));
  // No seek callback: the muxer writes a live stream (unknown sizes, no index).
  w->io_ =
      avio_alloc_context(buffer, kBufferSize, 1, w.get(), nullptr, &MkvChunkWriter::Write, nullptr);
  if (w->io_ == nullptr) {
    av_free(buffer);
    return Internal("out of memory");
  }
  int rc = avformat_alloc_output_context2(&w->ctx_, nullptr, "matroska", nullptr);
  if (rc < 0) return media::AvError(rc, "cannot make the chunk's muxer");
  w->ctx_->pb = w->io_;
  w->ctx_->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_BITEXACT;
  AVStream* st = avformat_new_stream(w->ctx_, nullptr);
  if (st == nullptr || avcodec_parameters_copy(st->codecpar, f.codec.get()) < 0)
    return Internal("cannot add the chunk's video track");
  st->codecpar->codec_tag = 0;
  st->time_base = {1, 1000};
  for (const auto& [name, value] : tags)
    av_dict_set(&w->ctx_->metadata, name.c_str(), value.c_str(), 0);
  rc = avformat_write_header(w->ctx_, nullptr);
  if (rc < 0) return media::AvError(rc, "cannot start the chunk");
  avio_flush(w->io_);
  return w;
}

MkvChunkWriter::~MkvChunkWriter() {
  if (ctx_) avformat_free_context(ctx_);
  if (io_) {
    av_freep(&io_->buffer);
    avio_context_free(&io_);
  }
}

Status MkvChunkWriter::Add(const store::Frame& frame, bool flush) {
  if (ended_) return Internal("the chunk has ended");
  media::PacketPtr pkt = media::MakePacket();
  if (av_packet_ref(pkt.get(), frame.packet.get()) < 0) return Internal("out of memory");
  pkt->stream_index = 0;
  pkt->pts = producer_ts_ms_ + (frame.pts_ms - first_pts_ms_);
  // Matroska keeps presentation times only; the muxer still wants decode
  // times that rise and never pass them (B-frames come out of order).
  pkt->dts = producer_ts_ms_ - 60'000 + frames_++;
  pkt->flags = frame.keyframe ? AV_PKT_FLAG_KEY : 0;
  int rc = av_write_frame(ctx_, pkt.get());
  if (rc < 0) return media::AvError(rc, "cannot write the chunk");
  if (flush) {
    rc = av_write_frame(ctx_, nullptr);  // closes the cluster: the frame goes out now
    if (rc < 0) return media::AvError(rc, "cannot flush the chunk");
  }
  avio_flush(io_);
  return Status::Ok();
}

Status MkvChunkWriter::End(const MkvTags& trailing) {
  if (ended_) return Status::Ok();
  ended_ = true;
  int rc = av_write_trailer(ctx_);
  if (rc < 0) return media::AvError(rc, "cannot end the chunk");
  avio_flush(io_);
  if (!trailing.empty()) out_ += MkvTagsElement(trailing);
  return Status::Ok();
}

std::string MkvChunkWriter::Take() {
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

Result<std::string> MkvChunk(const store::FragmentView& fragment, const MkvTags& trailing) {
  auto writer = MkvChunkWriter::Begin(fragment, FragmentTags(fragment));
  if (!writer.ok()) return writer.status();
  for (const store::Frame& frame : fragment.frames)
    LF_RETURN_IF_ERROR((*writer)->Add(frame, /*flush=*/false));
  LF_RETURN_IF_ERROR((*writer)->End(trailing));
  return (*writer)->Take();
}

}  // namespace lastframe::kvs
