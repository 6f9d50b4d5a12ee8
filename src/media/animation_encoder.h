#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "media/ffmpeg.h"
#include "media/image_encoder.h"

namespace lastframe::media {

enum class AnimationFormat { kWebp, kGif };

// Builds one looping animated image from decoded frames, one at a time.
// Animated WebP is lossy (libwebpmux's WebPAnimEncoder at options.quality);
// GIF is libavcodec's GIF encoder and libavformat's GIF muxer over a fixed
// 252-colour palette with ordered dithering. Not thread-safe; one animation
// per encoder.
class AnimationEncoder {
 public:
  // Frames are scaled (and fit/rotated/overlaid, per |options|' width/height/
  // fit/rotate_degrees/overlay_text; options.format is ignored) to one size,
  // fixed by the first frame added. InvalidArgument for bad options (see
  // ValidateEncodeOptions).
  static Result<std::unique_ptr<AnimationEncoder>> Create(AnimationFormat format,
                                                          EncodeOptions options);
  ~AnimationEncoder();
  AnimationEncoder(const AnimationEncoder&) = delete;
  AnimationEncoder& operator=(const AnimationEncoder&) = delete;

  // Adds a frame shown for |duration_ms| (10 .. 655350; GIF keeps it in
  // hundredths of a second). |overlay_text| replaces options.overlay_text for
  // this frame when not empty. InvalidArgument for a bad duration, a first
  // frame too large for the format, or a call after Finish; MediaError for a
  // frame with no picture. WebPAnimEncoder merges a frame identical to the one
  // before into it (one longer frame).
  Status Add(const AVFrame& frame, int duration_ms, const std::string& overlay_text = "");

  // The finished file, looping forever. At least one frame must have been
  // added (InvalidArgument otherwise). Call once.
  Result<std::string> Finish();

  // The animation's size, 0 before the first frame.
  int width() const;
  int height() const;

  class Backend;  // a format's encoder

 private:
  AnimationEncoder(AnimationFormat format, EncodeOptions options);

  AnimationFormat format_;
  EncodeOptions options_;
  std::unique_ptr<Backend> backend_;
  int width_ = 0;
  int height_ = 0;
  int64_t elapsed_ms_ = 0;
  int last_duration_ms_ = 0;
  bool finished_ = false;
};

}  // namespace lastframe::media
