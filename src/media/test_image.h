#pragma once

// Test-only: source frames and independent decoders for the image and
// animation encoders' tests. Every decoder here is another library's than the
// encoder's: libjpeg-turbo's for JPEG, libavcodec's for PNG, WebP, GIF and
// AVIF (libavformat's mov demuxer, dav1d), libwebpdemux for animated WebP;
// libavif only reads AVIF headers.

#include <string>
#include <vector>

#include "media/ffmpeg.h"
#include "media/image_encoder.h"
#include "support/media_check.h"

namespace lastframe::media::test {

using lastframe::testing::RgbImage;

// A test clip made by the ffmpeg CLI: |count| frames of testsrc2 at w x h,
// 4:2:0, stored losslessly (FFV1), with the frames as libavcodec decodes them
// and, as the reference, the same frames as the ffmpeg CLI converts them to RGB.
struct SourceClip {
  std::vector<FramePtr> frames;
  std::vector<RgbImage> rgb;
};
SourceClip MakeSourceClip(int w, int h, int count);

// PSNR in dB of the BT.601 luma of two same-sized RGB pictures: blind to
// how a decoder upsamples chroma (libwebp's fancy upsampling, for one, which
// costs ~15 dB of RGB PSNR at testsrc2's sharp colour edges), not to the picture.
double LumaPsnr(const RgbImage& a, const RgbImage& b);

// A frame of |fmt| (a YUV or RGB format) made from |rgb| by swscale, flagged
// with |space| and |range| and converted by them.
FramePtr FrameFromRgb(const RgbImage& rgb, AVPixelFormat fmt, AVColorSpace space,
                      AVColorRange range);
// A w x h picture filled with |r, g, b|.
RgbImage Solid(int w, int h, int r, int g, int b);
void FillRect(RgbImage* img, int x, int y, int w, int h, int r, int g, int b);
const uint8_t* Pixel(const RgbImage& img, int x, int y);

// |frame| as RGB, converted by swscale as its colour metadata says.
RgbImage FrameToRgb(const AVFrame& frame);

// Decodes one still of |format| with an independent decoder (see above);
// fails the test and returns an empty image when it cannot.
RgbImage DecodeStill(const std::string& bytes, ImageFormat format);

// AVIF's header, as libavif reads it (the pixels are FFmpeg's to decode).
struct AvifInfo {
  int matrix = -1;  // H.273 matrix coefficients
  bool full_range = false;
  int depth = 0;
  bool yuv420 = false;
};
AvifInfo ReadAvifInfo(const std::string& bytes);

// An animation's frames as decoded (each whole, composed on the canvas), with
// each frame's display time in milliseconds, and its loop count (0: forever).
struct DecodedAnimation {
  std::vector<RgbImage> frames;
  std::vector<int> durations_ms;
  int loop_count = -1;
};
// Animated WebP, by libwebpdemux's WebPAnimDecoder.
DecodedAnimation DecodeAnimatedWebp(const std::string& bytes);
// GIF, by libavformat's GIF demuxer and libavcodec's GIF decoder; durations
// from the demuxer's pts, loop count from the NETSCAPE2.0 block.
DecodedAnimation DecodeGif(const std::string& bytes);

}  // namespace lastframe::media::test
