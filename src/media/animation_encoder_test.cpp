#include "media/animation_encoder.h"

#include <gtest/gtest.h>

#include "media/test_image.h"

namespace lastframe::media {
namespace {

using test::DecodedAnimation;
using test::FillRect;
using test::FrameFromRgb;
using test::Pixel;
using test::RgbImage;
using test::Solid;
using testing::Psnr;

DecodedAnimation Decode(AnimationFormat format, const std::string& bytes) {
  return format == AnimationFormat::kWebp ? test::DecodeAnimatedWebp(bytes)
                                          : test::DecodeGif(bytes);
}

const char* Name(AnimationFormat f) { return f == AnimationFormat::kWebp ? "WebP" : "GIF"; }

// Each frame of a 10-frame clip, shown for its own time, decodes back close to
// its source, in order, with its duration, looping forever.
void ExpectRoundTrip(AnimationFormat format, double min_luma_psnr, double min_rgb_psnr) {
  test::SourceClip clip = test::MakeSourceClip(320, 240, 10);
  ASSERT_EQ(clip.frames.size(), 10u);
  EncodeOptions options;
  options.quality = 90;
  auto enc = AnimationEncoder::Create(format, options);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ((*enc)->width(), 0);
  const int durations[10] = {100, 200, 50, 40, 1000, 100, 30, 250, 60, 500};
  for (int i = 0; i < 10; ++i) {
    Status s = (*enc)->Add(*clip.frames[i], durations[i]);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ((*enc)->width(), 320);
  EXPECT_EQ((*enc)->height(), 240);
  auto bytes = (*enc)->Finish();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  DecodedAnimation anim = Decode(format, *bytes);
  ASSERT_EQ(anim.frames.size(), 10u) << Name(format);
  EXPECT_EQ(anim.loop_count, 0) << Name(format);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(anim.durations_ms[i], durations[i]) << Name(format) << " frame " << i;
    ASSERT_EQ(anim.frames[i].width, 320);
    ASSERT_EQ(anim.frames[i].height, 240);
    double psnr = test::LumaPsnr(anim.frames[i], clip.rgb[i]);
    EXPECT_GT(psnr, min_luma_psnr) << Name(format) << " frame " << i;
    // Colours, with room for chroma upsampling (see LumaPsnr).
    EXPECT_GT(Psnr(anim.frames[i], clip.rgb[i]), min_rgb_psnr) << Name(format) << " frame " << i;
    // And not merely close to any frame: the next one's source is further.
    if (i + 1 < 10) {
      EXPECT_LT(test::LumaPsnr(anim.frames[i], clip.rgb[i + 1]), psnr - 3) << i;
    }
  }
}

TEST(AnimationEncoder, AnimatedWebpDecodesBackFrameByFrame) {
  ExpectRoundTrip(AnimationFormat::kWebp, 39, 23);  // measured: 43 and 26 dB
}

TEST(AnimationEncoder, GifDecodesBackFrameByFrame) {
  // 252 fixed colours with ordered dither: looser.
  ExpectRoundTrip(AnimationFormat::kGif, 31, 28);  // measured: 35 and 32 dB
}

TEST(AnimationEncoder, LaterFramesAreFittedToTheFirstOnesSize) {
  for (AnimationFormat format : {AnimationFormat::kWebp, AnimationFormat::kGif}) {
    EncodeOptions options;
    options.quality = 95;
    options.width = 160;
    options.height = 120;
    options.fit = Fit::kContain;
    auto enc = AnimationEncoder::Create(format, options);
    ASSERT_TRUE(enc.ok());
    FramePtr first = FrameFromRgb(Solid(320, 240, 200, 200, 200), AV_PIX_FMT_YUV420P,
                                  AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
    // Twice as wide: contained, it is 160x60 with bars of 30 above and below.
    FramePtr wide = FrameFromRgb(Solid(640, 240, 60, 120, 220), AV_PIX_FMT_YUV420P, AVCOL_SPC_BT709,
                                 AVCOL_RANGE_MPEG);
    ASSERT_TRUE((*enc)->Add(*first, 100).ok());
    ASSERT_TRUE((*enc)->Add(*wide, 100).ok());
    EXPECT_EQ((*enc)->width(), 160);
    EXPECT_EQ((*enc)->height(), 120);
    auto bytes = (*enc)->Finish();
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    DecodedAnimation anim = Decode(format, *bytes);
    ASSERT_EQ(anim.frames.size(), 2u) << Name(format);
    const RgbImage& f = anim.frames[1];
    ASSERT_EQ(f.width, 160);
    for (int x : {5, 80, 155}) {
      EXPECT_LT(Pixel(f, x, 10)[2], 40) << Name(format) << " bar above at " << x;
      EXPECT_LT(Pixel(f, x, 110)[2], 40) << Name(format) << " bar below at " << x;
      EXPECT_GT(Pixel(f, x, 60)[2], 180) << Name(format) << " picture at " << x;
    }
  }
}

TEST(AnimationEncoder, RotationAndSizeApplyToEveryFrame) {
  RgbImage rgb = Solid(160, 120, 128, 128, 128);
  FillRect(&rgb, 0, 0, 30, 20, 230, 20, 20);  // a red top-left marker
  FramePtr a = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
  FillRect(&rgb, 60, 60, 10, 10, 0, 0, 0);  // a different second frame
  FramePtr b = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
  EncodeOptions options;
  options.rotate_degrees = 90;
  options.height = 320;  // the turned frame is 120x160: 240x320
  auto enc = AnimationEncoder::Create(AnimationFormat::kWebp, options);
  ASSERT_TRUE(enc.ok());
  ASSERT_TRUE((*enc)->Add(*a, 100).ok());
  ASSERT_TRUE((*enc)->Add(*b, 100).ok());
  EXPECT_EQ((*enc)->width(), 240);
  EXPECT_EQ((*enc)->height(), 320);
  auto bytes = (*enc)->Finish();
  ASSERT_TRUE(bytes.ok());
  DecodedAnimation anim = test::DecodeAnimatedWebp(*bytes);
  ASSERT_EQ(anim.frames.size(), 2u);
  for (const RgbImage& f : anim.frames) {
    EXPECT_GT(Pixel(f, 220, 30)[0], 190);  // top-right now
    EXPECT_LT(Pixel(f, 20, 30)[0], 160);
  }
}

TEST(AnimationEncoder, OverlayTextIsPerFrame) {
  for (AnimationFormat format : {AnimationFormat::kWebp, AnimationFormat::kGif}) {
    EncodeOptions options;
    options.quality = 95;
    options.overlay_text = "default";
    auto enc = AnimationEncoder::Create(format, options);
    ASSERT_TRUE(enc.ok());
    // Distinct frames, so that WebP does not merge them.
    for (int i = 0; i < 3; ++i) {
      FramePtr f = FrameFromRgb(Solid(320, 240, 150 + 20 * i, 150, 150), AV_PIX_FMT_YUV420P,
                                AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
      ASSERT_TRUE((*enc)->Add(*f, 100, i == 1 ? "a much longer label for frame 1" : "").ok());
    }
    auto bytes = (*enc)->Finish();
    ASSERT_TRUE(bytes.ok());
    DecodedAnimation anim = Decode(format, *bytes);
    ASSERT_EQ(anim.frames.size(), 3u) << Name(format);
    // "default" is 7 glyphs: its box ends at 2 * (7 * 6 + 1) = 86 pixels; the
    // long label's goes on. Every frame has a dark box at the bottom left, and
    // the top is untouched.
    for (int i = 0; i < 3; ++i) {
      const RgbImage& f = anim.frames[i];
      EXPECT_LT(Pixel(f, 1, 238)[1], 60) << Name(format) << " frame " << i;
      EXPECT_GT(Pixel(f, 1, 200)[1], 120) << Name(format) << " frame " << i;
      bool long_label = Pixel(f, 150, 238)[1] < 60;
      EXPECT_EQ(long_label, i == 1) << Name(format) << " frame " << i;
    }
  }
}

TEST(AnimationEncoder, MisuseIsAnInvalidArgument) {
  EncodeOptions bad;
  bad.rotate_degrees = 45;
  auto rejected = AnimationEncoder::Create(AnimationFormat::kGif, bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), Code::kInvalidArgument);

  for (AnimationFormat format : {AnimationFormat::kWebp, AnimationFormat::kGif}) {
    auto enc = AnimationEncoder::Create(format, {});
    ASSERT_TRUE(enc.ok());
    auto empty = (*enc)->Finish();
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
    EXPECT_NE(empty.status().message().find("at least one frame"), std::string::npos);

    auto enc2 = AnimationEncoder::Create(format, {});
    ASSERT_TRUE(enc2.ok());
    FramePtr f = FrameFromRgb(Solid(32, 24, 10, 20, 30), AV_PIX_FMT_YUV420P, AVCOL_SPC_BT470BG,
                              AVCOL_RANGE_MPEG);
    Status short_frame = (*enc2)->Add(*f, 5);
    EXPECT_EQ(short_frame.code(), Code::kInvalidArgument);
    EXPECT_NE(short_frame.message().find("duration"), std::string::npos);
    EXPECT_EQ((*enc2)->width(), 0);  // nothing was added
    EXPECT_EQ((*enc2)->Add(*MakeFrame(), 100).code(), Code::kMediaError);
    ASSERT_TRUE((*enc2)->Add(*f, 100).ok());
    ASSERT_TRUE((*enc2)->Finish().ok());
    EXPECT_EQ((*enc2)->Add(*f, 100).code(), Code::kInvalidArgument);
    EXPECT_FALSE((*enc2)->Finish().ok());
  }
}

}  // namespace
}  // namespace lastframe::media
