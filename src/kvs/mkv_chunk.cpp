#include "kvs/mkv_chunk.h"

namespace lastframe::kvs {

std::string TagSeconds(int64_t ms) {
  std::string frac = std::to_string(((ms % 1000) + 1000) % 1000);
  return std::to_string(ms / 1000) + "." + std::string(3 - frac.size(), '0') + frac;
}

MkvTags FragmentTags(const store::FragmentView& f) {
  return {{"AWS_KINESISVIDEO_FRAGMENT_NUMBER", std::to_string(f.number)},
          {"AWS_KINESISVIDEO_SERVER_TIMESTAMP", TagSeconds(f.server_ts_ms)},
          {"AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", TagSeconds(f.producer_ts_ms)}};
}

Result<std::unique_ptr<MkvChunkWriter>> MkvChunkWriter::Begin(const store::FragmentView& f,
                                                              const MkvTags& tags) {
  if (!f.codec || f.frames.empty())
    return NotFound("the fragment holds no frame", Reason::kNoFrame);
  std::unique_ptr<MkvChunkWriter> w(new MkvChunkWriter());
  w->producer_ts_ms_ = f.producer_ts_ms;
  w->first_pts_ms_ = f.frames.front().pts_ms;
  auto writer = media::MatroskaWriter::Begin(*f.codec, tags);
  if (!writer.ok()) return writer.status();
  w->writer_ = std::move(*writer);
  return w;
}

MkvChunkWriter::~MkvChunkWriter() = default;

Status MkvChunkWriter::Add(const store::Frame& frame, bool flush) {
  // Clusters on the producer's epoch timeline, as Kinesis Video writes them.
  store::Frame placed = frame;
  placed.pts_ms = producer_ts_ms_ + (frame.pts_ms - first_pts_ms_);
  return writer_->Add(placed, flush);
}

Status MkvChunkWriter::End(const MkvTags& trailing) { return writer_->End(trailing); }

std::string MkvChunkWriter::Take() { return writer_->Take(); }

Result<std::string> MkvChunk(const store::FragmentView& fragment, const MkvTags& trailing) {
  auto writer = MkvChunkWriter::Begin(fragment, FragmentTags(fragment));
  if (!writer.ok()) return writer.status();
  for (const store::Frame& frame : fragment.frames)
    LF_RETURN_IF_ERROR((*writer)->Add(frame, /*flush=*/false));
  LF_RETURN_IF_ERROR((*writer)->End(trailing));
  return (*writer)->Take();
}

}  // namespace lastframe::kvs
