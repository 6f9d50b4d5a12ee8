#include "snapshot/frame_decoder.h"

#include <algorithm>
#include <thread>

#include "media/decoder.h"

namespace lastframe::snapshot {

void KeepIfNewer(media::FramePtr* frame, media::FramePtr* newest, int64_t* newest_pts,
                 int64_t max_pts) {
  AVFrame* f = frame->get();
  int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
  if (pts <= max_pts && (!*newest || pts >= *newest_pts)) {
    *newest_pts = pts;
    *newest = std::move(*frame);
    *frame = media::MakeFrame();
  } else {
    av_frame_unref(f);
  }
}

bool WorthFrameThreads(const store::FragmentView& fragment, size_t first) {
  // Frame threads pay off only on long runs of large frames: for a short run
  // their start-up and pipeline delay cost more than they save.
  if (!fragment.codec || first >= fragment.frames.size()) return false;
  const int64_t pixels = static_cast<int64_t>(fragment.codec->width) * fragment.codec->height *
                         static_cast<int64_t>(fragment.frames.size() - first);
  return pixels > int64_t{1920} * 1080 * 8;
}

Result<media::FramePtr> DecodeNewestFrame(const store::FragmentView& fragment, int threads,
                                          int64_t max_pts) {
  media::FramePtr newest;
  int64_t newest_pts = INT64_MIN;
  Status decoded = DecodeEachFrame(fragment, threads, [&](const AVFrame& picture, int64_t pts) {
    // The newest presented at or before |max_pts| (a repeated timestamp: the later one).
    if (pts <= max_pts && (!newest || pts >= newest_pts)) {
      if (!newest) newest = media::MakeFrame();
      av_frame_unref(newest.get());
      if (av_frame_ref(newest.get(), &picture) < 0) return false;
      newest_pts = pts;
    }
    return true;
  });
  if (!decoded.ok()) return decoded;
  if (!newest) return Status(Code::kMediaError, "no frame of the fragment could be decoded");
  // The picture's timestamp, for the caller.
  newest->pts = newest_pts;
  return newest;
}

Status DecodeEachFrame(const store::FragmentView& fragment, int threads,
                       const std::function<bool(const AVFrame& picture, int64_t pts)>& picture) {
  if (!fragment.codec || fragment.frames.empty())
    return NotFound("the fragment holds no frame", Reason::kNoFrame);
  if (threads == 0)
    threads = WorthFrameThreads(fragment)
                  ? static_cast<int>(std::max(2u, std::thread::hardware_concurrency()))
                  : 1;
  auto opened = media::OpenDecoder(*fragment.codec, threads);
  if (!opened.ok()) return opened.status();
  media::CodecContextPtr ctx = std::move(*opened);
  media::FramePtr frame = media::MakeFrame();
  size_t decoded = 0;
  bool more = true;
  Status last_error;
  auto drain = [&]() {
    while (more) {
      int rc = avcodec_receive_frame(ctx.get(), frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) {
        last_error = media::AvError(rc, "decoding");
        return;
      }
      ++decoded;
      const AVFrame* f = frame.get();
      int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
      more = picture(*f, pts);
      av_frame_unref(frame.get());
    }
  };
  for (const store::Frame& f : fragment.frames) {
    if (!more) break;
    int rc = avcodec_send_packet(ctx.get(), f.packet.get());
    if (rc == AVERROR(EAGAIN)) {
      drain();
      rc = avcodec_send_packet(ctx.get(), f.packet.get());
    }
    if (rc < 0 && rc != AVERROR(EAGAIN)) last_error = media::AvError(rc, "decoding");
    drain();
  }
  if (more) {
    avcodec_send_packet(ctx.get(), nullptr);
    drain();
  }
  if (decoded == 0)
    return Status(Code::kMediaError,
                  "no frame of the fragment could be decoded" +
                      (last_error.ok() ? std::string() : " (" + last_error.message() + ")"));
  return Status::Ok();
}

}  // namespace lastframe::snapshot
