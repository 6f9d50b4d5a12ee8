#include "media/image_encoder.h"

extern "C" {
#include <libavutil/imgutils.h>
}

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cstring>
#include <vector>

#include "media/test_image.h"

namespace lastframe::media {
namespace {

// A frame whose left half is black and right half white, in |fmt| and |range|.
FramePtr TwoToneFrame(int w, int h, AVPixelFormat fmt, AVColorRange range) {
  FramePtr f = MakeFrame();
  f->width = w;
  f->height = h;
  f->format = fmt;
  f->color_range = range;
  EXPECT_EQ(av_frame_get_buffer(f.get(), 0), 0);
  bool ten_bit = fmt == AV_PIX_FMT_YUV420P10LE;
  int shift = ten_bit ? 2 : 0;
  bool full = range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P;
  int black = (full ? 0 : 16) << shift, white = (full ? 255 : 235) << shift, mid = 128 << shift;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int v = x < w / 2 ? black : white;
      if (ten_bit)
        reinterpret_cast<uint16_t*>(f->data[0] + y * f->linesize[0])[x] = static_cast<uint16_t>(v);
      else
        f->data[0][y * f->linesize[0] + x] = static_cast<uint8_t>(v);
    }
  for (int p = 1; p < 3; ++p)
    for (int y = 0; y < (h + 1) / 2; ++y)
      for (int x = 0; x < (w + 1) / 2; ++x) {
        if (ten_bit)
          reinterpret_cast<uint16_t*>(f->data[p] + y * f->linesize[p])[x] =
              static_cast<uint16_t>(mid);
        else
          f->data[p][y * f->linesize[p] + x] = static_cast<uint8_t>(mid);
      }
  return f;
}

struct Rgb {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  int at(int x, int y, int c) const { return px[(y * w + x) * 3 + c]; }
};

Rgb DecodeJpeg(const std::string& jpeg) {
  Rgb out;
  tjhandle tj = tjInitDecompress();
  int subsamp = 0, cs = 0;
  EXPECT_EQ(tjDecompressHeader3(tj, reinterpret_cast<const unsigned char*>(jpeg.data()),
                                jpeg.size(), &out.w, &out.h, &subsamp, &cs),
            0);
  out.px.resize(static_cast<size_t>(out.w) * out.h * 3);
  EXPECT_EQ(tjDecompress2(tj, reinterpret_cast<const unsigned char*>(jpeg.data()), jpeg.size(),
                          out.px.data(), out.w, 0, out.h, TJPF_RGB, 0),
            0);
  tjDestroy(tj);
  return out;
}

void ExpectBlackThenWhite(const Rgb& img) {
  // Sample away from the edge between halves, where JPEG blurs.
  for (int c = 0; c < 3; ++c) {
    EXPECT_LE(img.at(img.w / 8, img.h / 2, c), 6) << "channel " << c;
    EXPECT_GE(img.at(img.w * 7 / 8, img.h / 2, c), 249) << "channel " << c;
  }
}

TEST(ImageEncoder, LimitedRangeIsExpandedToFullRange) {
  FramePtr f = TwoToneFrame(64, 48, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  auto img = EncodeImage(*f, {});
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->width, 64);
  Rgb rgb = DecodeJpeg(img->bytes);
  ASSERT_EQ(rgb.w, 64);
  ASSERT_EQ(rgb.h, 48);
  ExpectBlackThenWhite(rgb);
}

TEST(ImageEncoder, FullRangeYuvjPassesThrough) {
  FramePtr f = TwoToneFrame(64, 48, AV_PIX_FMT_YUVJ420P, AVCOL_RANGE_JPEG);
  auto img = EncodeImage(*f, {});
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  ExpectBlackThenWhite(DecodeJpeg(img->bytes));
}

TEST(ImageEncoder, TenBitAndOddSizes) {
  FramePtr f = TwoToneFrame(321, 241, AV_PIX_FMT_YUV420P10LE, AVCOL_RANGE_MPEG);
  auto img = EncodeImage(*f, {});
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  Rgb rgb = DecodeJpeg(img->bytes);
  EXPECT_EQ(rgb.w, 321);
  EXPECT_EQ(rgb.h, 241);
  ExpectBlackThenWhite(rgb);
}

TEST(ImageEncoder, Bt709GoesThroughRgb) {
  FramePtr f = TwoToneFrame(64, 48, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  f->colorspace = AVCOL_SPC_BT709;
  auto img = EncodeImage(*f, {});
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  ExpectBlackThenWhite(DecodeJpeg(img->bytes));
}

TEST(ImageEncoder, QualityChangesSize) {
  FramePtr f = TwoToneFrame(320, 240, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  // Noise makes quality matter.
  for (int i = 0; i < 320 * 240; i += 7) f->data[0][(i / 320) * f->linesize[0] + i % 320] ^= 0x5a;
  auto low = EncodeImage(*f, {ImageFormat::kJpeg, 10});
  auto high = EncodeImage(*f, {ImageFormat::kJpeg, 95});
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->bytes.size() * 2, high->bytes.size());
}

TEST(ImageEncoder, ResizesAndKeepsAspect) {
  int w = 0, h = 0;
  FitSize(640, 480, 320, 0, &w, &h);
  EXPECT_EQ(w, 320);
  EXPECT_EQ(h, 240);
  FitSize(1920, 1080, 0, 360, &w, &h);
  EXPECT_EQ(w, 640);
  EXPECT_EQ(h, 360);
  FitSize(100, 100, 0, 0, &w, &h);
  EXPECT_EQ(w, 100);
  FramePtr f = TwoToneFrame(64, 48, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  auto img = EncodeImage(*f, {ImageFormat::kJpeg, 80, 32, 24});
  ASSERT_TRUE(img.ok());
  Rgb rgb = DecodeJpeg(img->bytes);
  EXPECT_EQ(rgb.w, 32);
  EXPECT_EQ(rgb.h, 24);
  ExpectBlackThenWhite(rgb);
}

TEST(ImageEncoder, Png) {
  FramePtr f = TwoToneFrame(64, 48, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  auto img = EncodeImage(*f, {ImageFormat::kPng});
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  ASSERT_GT(img->bytes.size(), 8u);
  EXPECT_EQ(img->bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(img->format, ImageFormat::kPng);
}

TEST(ImageEncoder, RejectsEmptyFrame) {
  FramePtr f = MakeFrame();
  auto img = EncodeImage(*f, {});
  EXPECT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), Code::kMediaError);
}

TEST(ShrinkToPixels, KeepsTheShapeWithinTheBoundAndLeavesSmallerSizesAlone) {
  int w = 3840, h = 983040;  // a 16x4096 source asked at width 3840
  ShrinkToPixels(3840ull * 2160, &w, &h);
  EXPECT_LE(static_cast<uint64_t>(w) * h, 3840ull * 2160);
  EXPECT_NEAR(static_cast<double>(h) / w, 256.0, 1.0);
  EXPECT_EQ(w % 2, 0);
  int small_w = 640, small_h = 480;
  ShrinkToPixels(3840ull * 2160, &small_w, &small_h);
  EXPECT_EQ(small_w, 640);
  EXPECT_EQ(small_h, 480);
}

// ---- WebP and AVIF, fit, rotation, overlay ----

using test::DecodeStill;
using test::FillRect;
using test::FrameFromRgb;
using test::Pixel;
using test::RgbImage;
using test::Solid;
using testing::Psnr;

RgbImage FrameToRgbForTest(const AVFrame& f) { return test::FrameToRgb(f); }

constexpr ImageFormat kAllFormats[] = {ImageFormat::kJpeg, ImageFormat::kPng, ImageFormat::kWebp,
                                       ImageFormat::kAvif};

const char* Name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kAvif:
      return "AVIF";
  }
  return "?";
}

EncodeOptions Options(ImageFormat format, int quality = 90) {
  EncodeOptions o;
  o.format = format;
  o.quality = quality;
  return o;
}

RgbImage EncodeAndDecode(const AVFrame& frame, const EncodeOptions& o) {
  auto img = EncodeImage(frame, o);
  EXPECT_TRUE(img.ok()) << Name(o.format) << ": " << img.status().ToString();
  if (!img.ok()) return {};
  EXPECT_EQ(img->format, o.format);
  RgbImage rgb = DecodeStill(img->bytes, o.format);
  EXPECT_EQ(rgb.width, img->width) << Name(o.format);
  EXPECT_EQ(rgb.height, img->height) << Name(o.format);
  return rgb;
}

// |a| and |b| are within |tolerance| on every channel.
bool Near(const uint8_t* a, std::initializer_list<int> b, int tolerance) {
  int i = 0;
  for (int v : b)
    if (std::abs(a[i++] - v) > tolerance) return false;
  return true;
}

TEST(ImageEncoder, EveryFormatDecodesBackCloseToTheSource) {
  test::SourceClip clip = test::MakeSourceClip(320, 240, 1);
  ASSERT_EQ(clip.frames.size(), 1u);
  // Independent decoders, compared with the ffmpeg CLI's RGB of the source.
  // Measured here: 38.7, 48.7, 44.6 and 45.6 dB.
  const double min_psnr[] = {35, 45, 40, 40};  // JPEG, PNG, WebP, AVIF at quality 90
  for (ImageFormat f : kAllFormats) {
    RgbImage rgb = EncodeAndDecode(*clip.frames[0], Options(f, 90));
    ASSERT_EQ(rgb.width, 320) << Name(f);
    double psnr = Psnr(rgb, clip.rgb[0]);
    EXPECT_GT(psnr, min_psnr[static_cast<int>(f)]) << Name(f);
  }
}

TEST(ImageEncoder, WebpAndAvifQualityChangesSizeAndFidelity) {
  test::SourceClip clip = test::MakeSourceClip(320, 240, 1);
  ASSERT_EQ(clip.frames.size(), 1u);
  for (ImageFormat f : {ImageFormat::kWebp, ImageFormat::kAvif}) {
    auto low = EncodeImage(*clip.frames[0], Options(f, 10));
    auto high = EncodeImage(*clip.frames[0], Options(f, 95));
    ASSERT_TRUE(low.ok() && high.ok()) << Name(f);
    EXPECT_LT(low->bytes.size() * 2, high->bytes.size()) << Name(f);
    EXPECT_LT(Psnr(DecodeStill(low->bytes, f), clip.rgb[0]) + 3,
              Psnr(DecodeStill(high->bytes, f), clip.rgb[0]))
        << Name(f);
  }
}

TEST(ImageEncoder, ColourRangeAndMatrixAreKeptInEveryFormat) {
  // Saturated colours show a matrix or range mistake as a large error.
  RgbImage rgb = Solid(64, 48, 200, 40, 40);
  FillRect(&rgb, 32, 0, 32, 24, 30, 180, 60);
  FillRect(&rgb, 0, 24, 32, 24, 40, 60, 220);
  FillRect(&rgb, 32, 24, 32, 24, 250, 250, 250);
  const AVColorSpace spaces[] = {AVCOL_SPC_BT709, AVCOL_SPC_SMPTE170M, AVCOL_SPC_UNSPECIFIED};
  const AVColorRange ranges[] = {AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG};
  for (AVColorSpace space : spaces)
    for (AVColorRange range : ranges) {
      FramePtr frame = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, space, range);
      for (ImageFormat f : kAllFormats) {
        RgbImage out = EncodeAndDecode(*frame, Options(f, 95));
        ASSERT_EQ(out.width, 64);
        // Sample the middle of each quadrant, away from chroma edges.
        for (auto [x, y] : {std::pair{16, 12}, {48, 12}, {16, 36}, {48, 36}}) {
          const uint8_t* want = Pixel(rgb, x, y);
          EXPECT_TRUE(Near(Pixel(out, x, y), {want[0], want[1], want[2]}, 8))
              << Name(f) << " space " << space << " range " << range << " at " << x << "," << y
              << ": " << int{Pixel(out, x, y)[0]} << "," << int{Pixel(out, x, y)[1]} << ","
              << int{Pixel(out, x, y)[2]};
        }
      }
    }
}

TEST(ImageEncoder, AvifHeaderNamesTheFramesMatrixAndRange) {
  RgbImage rgb = Solid(32, 32, 90, 120, 200);
  struct Case {
    AVColorSpace space;
    AVColorRange range;
    int matrix;
    bool full;
  };
  for (Case c : {Case{AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, 1 /* H.273 BT.709 */, false},
                 Case{AVCOL_SPC_BT709, AVCOL_RANGE_JPEG, 1 /* H.273 BT.709 */, true},
                 Case{AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_MPEG, 6 /* H.273 BT.601 */, false},
                 Case{AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG, 6 /* H.273 BT.601 */, true}}) {
    FramePtr frame = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, c.space, c.range);
    auto img = EncodeImage(*frame, Options(ImageFormat::kAvif));
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    test::AvifInfo info = test::ReadAvifInfo(img->bytes);
    EXPECT_EQ(info.matrix, c.matrix) << c.space;
    EXPECT_EQ(info.full_range, c.full) << c.space;
    EXPECT_EQ(info.depth, 8);
    EXPECT_TRUE(info.yuv420);
  }
  // A 10-bit frame is written in 8 bits.
  FramePtr ten = TwoToneFrame(64, 48, AV_PIX_FMT_YUV420P10LE, AVCOL_RANGE_MPEG);
  auto img = EncodeImage(*ten, Options(ImageFormat::kAvif));
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(test::ReadAvifInfo(img->bytes).depth, 8);
  RgbImage out = DecodeStill(img->bytes, ImageFormat::kAvif);
  ASSERT_EQ(out.width, 64);
  EXPECT_TRUE(Near(Pixel(out, 8, 24), {0, 0, 0}, 8));
  EXPECT_TRUE(Near(Pixel(out, 56, 24), {255, 255, 255}, 8));
}

// 160x120 mid grey with a 40x40 white square in the middle.
RgbImage SquarePattern() {
  RgbImage rgb = Solid(160, 120, 128, 128, 128);
  FillRect(&rgb, 60, 40, 40, 40, 255, 255, 255);
  return rgb;
}

// The length of the run of pixels brighter than 200 along a row or column
// through (x, y).
int BrightRun(const RgbImage& img, int x, int y, bool horizontal) {
  int n = 0;
  for (int i = 0; i < (horizontal ? img.width : img.height); ++i) {
    const uint8_t* p = horizontal ? Pixel(img, i, y) : Pixel(img, x, i);
    if (p[1] > 200) ++n;
  }
  return n;
}

TEST(ImageEncoder, ContainLetterboxesWithoutDistortion) {
  FramePtr frame =
      FrameFromRgb(SquarePattern(), AV_PIX_FMT_YUV420P, AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
  for (ImageFormat f : kAllFormats) {
    // 160x120 into 400x150: scaled by 1.25 to 200x150, bars of 100 each side.
    EncodeOptions o = Options(f, 95);
    o.width = 400;
    o.height = 150;
    o.fit = Fit::kContain;
    RgbImage out = EncodeAndDecode(*frame, o);
    ASSERT_EQ(out.width, 400) << Name(f);
    ASSERT_EQ(out.height, 150) << Name(f);
    for (int y : {5, 75, 145}) {
      EXPECT_TRUE(Near(Pixel(out, 10, y), {0, 0, 0}, 10)) << Name(f) << " left bar at " << y;
      EXPECT_TRUE(Near(Pixel(out, 390, y), {0, 0, 0}, 10)) << Name(f) << " right bar at " << y;
      EXPECT_TRUE(Near(Pixel(out, 105, y), {128, 128, 128}, 12)) << Name(f) << " picture at " << y;
      EXPECT_TRUE(Near(Pixel(out, 294, y), {128, 128, 128}, 12)) << Name(f) << " picture at " << y;
    }
    // The square stays square: 50x50, centred.
    EXPECT_NEAR(BrightRun(out, 200, 75, true), 50, 2) << Name(f);
    EXPECT_NEAR(BrightRun(out, 200, 75, false), 50, 2) << Name(f);
    EXPECT_GT(Pixel(out, 200, 75)[1], 240) << Name(f);
  }
  // Bars top and bottom when the box is taller.
  EncodeOptions o = Options(ImageFormat::kPng);
  o.width = 160;
  o.height = 200;
  o.fit = Fit::kContain;
  RgbImage tall = EncodeAndDecode(*frame, o);
  ASSERT_EQ(tall.height, 200);
  EXPECT_TRUE(Near(Pixel(tall, 80, 10), {0, 0, 0}, 4));
  EXPECT_TRUE(Near(Pixel(tall, 80, 190), {0, 0, 0}, 4));
  EXPECT_TRUE(Near(Pixel(tall, 10, 100), {128, 128, 128}, 6));
  EXPECT_NEAR(BrightRun(tall, 80, 100, true), 40, 2);
  EXPECT_NEAR(BrightRun(tall, 80, 100, false), 40, 2);
}

TEST(ImageEncoder, CoverCropsTheCentre) {
  // Red 20-pixel strips at the left and right edges of a 160x120 frame: a
  // 120x120 cover crops them away; fill squeezes them in.
  RgbImage rgb = SquarePattern();
  FillRect(&rgb, 0, 0, 20, 120, 220, 30, 30);
  FillRect(&rgb, 140, 0, 20, 120, 220, 30, 30);
  FramePtr frame = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
  for (ImageFormat f : kAllFormats) {
    EncodeOptions o = Options(f, 95);
    o.width = 120;
    o.height = 120;
    o.fit = Fit::kCover;
    RgbImage out = EncodeAndDecode(*frame, o);
    ASSERT_EQ(out.width, 120) << Name(f);
    for (int y : {10, 60, 110}) {
      EXPECT_TRUE(Near(Pixel(out, 2, y), {128, 128, 128}, 14)) << Name(f) << " at " << y;
      EXPECT_TRUE(Near(Pixel(out, 117, y), {128, 128, 128}, 14)) << Name(f) << " at " << y;
    }
    // Not scaled: the square is 40x40 in the middle.
    EXPECT_NEAR(BrightRun(out, 60, 60, true), 40, 2) << Name(f);
    EXPECT_NEAR(BrightRun(out, 60, 60, false), 40, 2) << Name(f);
    o.fit = Fit::kFill;
    RgbImage filled = EncodeAndDecode(*frame, o);
    EXPECT_GT(Pixel(filled, 2, 60)[0], 180) << Name(f);
    EXPECT_NEAR(BrightRun(filled, 60, 60, true), 30, 2) << Name(f);
  }
  // A 2:1 cover of the same frame keeps the middle rows, scaled by 1.25.
  EncodeOptions wide = Options(ImageFormat::kPng);
  wide.width = 200;
  wide.height = 100;
  wide.fit = Fit::kCover;
  RgbImage out = EncodeAndDecode(*frame, wide);
  ASSERT_EQ(out.width, 200);
  EXPECT_NEAR(BrightRun(out, 100, 50, true), 50, 2);
  EXPECT_NEAR(BrightRun(out, 100, 50, false), 50, 2);
  EXPECT_GT(Pixel(out, 2, 50)[0], 180);  // the red strips, 25 px wide now
}

TEST(ImageEncoder, RotationMovesTheCornerMarker) {
  // A red marker in the top-left corner of a 160x120 grey frame.
  RgbImage rgb = Solid(160, 120, 128, 128, 128);
  FillRect(&rgb, 0, 0, 30, 20, 230, 20, 20);
  FramePtr frame = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG);
  struct Case {
    int degrees, w, h;
    int marker_x, marker_y;  // the marker's centre after rotation
  };
  for (ImageFormat f : kAllFormats)
    for (Case c : {Case{0, 160, 120, 15, 10}, Case{90, 120, 160, 109, 15},
                   Case{180, 160, 120, 144, 109}, Case{270, 120, 160, 10, 144}}) {
      EncodeOptions o = Options(f, 95);
      o.rotate_degrees = c.degrees;
      RgbImage out = EncodeAndDecode(*frame, o);
      ASSERT_EQ(out.width, c.w) << Name(f) << " " << c.degrees;
      ASSERT_EQ(out.height, c.h) << Name(f) << " " << c.degrees;
      EXPECT_GT(Pixel(out, c.marker_x, c.marker_y)[0], 190) << Name(f) << " " << c.degrees;
      EXPECT_LT(Pixel(out, c.marker_x, c.marker_y)[1], 60) << Name(f) << " " << c.degrees;
      // The other corners stay grey.
      int red_corners = 0;
      for (auto [x, y] : {std::pair{3, 3}, {c.w - 4, 3}, {3, c.h - 4}, {c.w - 4, c.h - 4}})
        if (Pixel(out, x, y)[0] > 190) ++red_corners;
      EXPECT_EQ(red_corners, 1) << Name(f) << " " << c.degrees;
    }
  // Width and height name the rotated image: 90 degrees and a width of 60
  // gives 60x80, the rotated frame's shape.
  EncodeOptions o = Options(ImageFormat::kPng);
  o.rotate_degrees = 90;
  o.width = 60;
  auto img = EncodeImage(*frame, o);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->width, 60);
  EXPECT_EQ(img->height, 80);
  RgbImage out = DecodeStill(img->bytes, ImageFormat::kPng);
  EXPECT_GT(Pixel(out, 55, 5)[0], 190);
}

// The bounding box of the pixels that differ by more than |tolerance|.
struct Box {
  int x0 = INT32_MAX, y0 = INT32_MAX, x1 = -1, y1 = -1;
};
Box Differences(const RgbImage& a, const RgbImage& b, int tolerance) {
  Box box;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x)
      for (int c = 0; c < 3; ++c)
        if (std::abs(Pixel(a, x, y)[c] - Pixel(b, x, y)[c]) > tolerance) {
          box.x0 = std::min(box.x0, x);
          box.y0 = std::min(box.y0, y);
          box.x1 = std::max(box.x1, x);
          box.y1 = std::max(box.y1, y);
        }
  return box;
}

TEST(ImageEncoder, OverlayChangesOnlyTheBottomLeftBox) {
  test::SourceClip clip = test::MakeSourceClip(320, 240, 1);
  ASSERT_EQ(clip.frames.size(), 1u);
  const std::string text = "cam-1 12:00:05";
  // At 320x240 the glyphs are scaled by 2: a box of 2 * (8 + 2) = 20 rows,
  // 2 * (14 * 6 - 1 + 2) = 170 columns.
  for (ImageFormat f : kAllFormats) {
    EncodeOptions plain = Options(f, 95);
    EncodeOptions labelled = plain;
    labelled.overlay_text = text;
    RgbImage a = EncodeAndDecode(*clip.frames[0], plain);
    RgbImage b = EncodeAndDecode(*clip.frames[0], labelled);
    ASSERT_EQ(a.width, 320);
    ASSERT_EQ(b.width, 320);
    // Lossy codecs spread a change a block or two beyond the box.
    int slack = f == ImageFormat::kPng ? 0 : 16;
    Box d = Differences(a, b, f == ImageFormat::kPng ? 0 : 24);
    EXPECT_EQ(d.x0, 0) << Name(f);
    EXPECT_EQ(d.y1, 239) << Name(f);
    EXPECT_GE(d.y0, 240 - 20 - slack) << Name(f);
    EXPECT_LE(d.y0, 240 - 20 + 2) << Name(f);
    EXPECT_LE(d.x1, 170 + slack) << Name(f);
    EXPECT_GE(d.x1, 160) << Name(f);
    // Outside the box (and its slack) the picture is as it was.
    RgbImage top = a, top_b = b;
    top.height = top_b.height = 240 - 20 - slack;
    top.pixels.resize(static_cast<size_t>(320) * top.height * 3);
    top_b.pixels.resize(top.pixels.size());
    EXPECT_GT(Psnr(top, top_b), f == ImageFormat::kPng ? 99 : 40) << Name(f);
    // Inside, light text on a dark box: both are there.
    int light = 0, dark = 0;
    for (int y = 222; y < 238; ++y)
      for (int x = 2; x < 168; ++x) {
        const uint8_t* p = Pixel(b, x, y);
        if (p[0] > 200 && p[1] > 200 && p[2] > 200) ++light;
        if (p[0] < 50 && p[1] < 50 && p[2] < 50) ++dark;
      }
    EXPECT_GT(light, 300) << Name(f);
    EXPECT_GT(dark, 1000) << Name(f);
  }
}

TEST(ImageEncoder, OverlayScalesWithTheImageAndIsClippedToIt) {
  RgbImage rgb = Solid(1920, 1080, 100, 150, 200);
  FramePtr big = FrameFromRgb(rgb, AV_PIX_FMT_YUV420P, AVCOL_SPC_BT709, AVCOL_RANGE_MPEG);
  EncodeOptions o = Options(ImageFormat::kPng);
  o.overlay_text = "HD";
  RgbImage out = EncodeAndDecode(*big, o);
  ASSERT_EQ(out.width, 1920);
  Box d = Differences(out, FrameToRgbForTest(*big), 6);
  // Scale 7: 7 * (8 + 2) = 70 rows, 7 * (2 * 6 - 1 + 2) = 91 columns.
  EXPECT_EQ(d.x0, 0);
  EXPECT_EQ(d.y1, 1079);
  EXPECT_EQ(d.y0, 1080 - 70);
  EXPECT_EQ(d.x1, 90);
  // A long label stops at the right edge of a small image.
  FramePtr small = FrameFromRgb(Solid(160, 120, 100, 150, 200), AV_PIX_FMT_YUV420P,
                                AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG);
  o.overlay_text = std::string(100, 'W') + "\xC3\xA9";
  RgbImage clipped = EncodeAndDecode(*small, o);
  ASSERT_EQ(clipped.width, 160);
  Box c = Differences(clipped, FrameToRgbForTest(*small), 6);
  EXPECT_EQ(c.x1, 159);
  EXPECT_EQ(c.y0, 120 - 10);
}

TEST(ImageEncoder, BadOptionsAreInvalidArguments) {
  FramePtr frame = TwoToneFrame(64, 48, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  auto expect_invalid = [&](EncodeOptions o, const std::string& says) {
    auto img = EncodeImage(*frame, o);
    ASSERT_FALSE(img.ok()) << says;
    EXPECT_EQ(img.status().code(), Code::kInvalidArgument) << says;
    EXPECT_NE(img.status().message().find(says), std::string::npos) << img.status().message();
  };
  EncodeOptions o;
  o.rotate_degrees = 45;
  expect_invalid(o, "rotation");
  o.rotate_degrees = -90;
  expect_invalid(o, "rotation");
  o = {};
  o.fit = Fit::kContain;
  o.width = 100;
  expect_invalid(o, "fit=contain needs both");
  o.fit = Fit::kCover;
  o.width = 0;
  o.height = 100;
  expect_invalid(o, "fit=cover needs both");
  o = {};
  o.width = -1;
  expect_invalid(o, "negative");
  o = {};
  o.format = ImageFormat::kWebp;
  o.width = 20000;
  o.height = 10;
  expect_invalid(o, "larger than");
  // The limit applies to the size the width or height resolves to: a 10x1000
  // frame turned a quarter is 1000x10, 100 high is 10000 wide, 200 high too wide.
  FramePtr thin = TwoToneFrame(10, 1000, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  o = {};
  o.format = ImageFormat::kWebp;
  o.rotate_degrees = 90;
  o.height = 100;
  auto fits = EncodeImage(*thin, o);
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ(fits->width, 10000);
  o.height = 200;
  auto too_wide = EncodeImage(*thin, o);
  EXPECT_EQ(too_wide.status().code(), Code::kInvalidArgument);
  // Fit with both sides, or none asked, is fine.
  o = {};
  o.fit = Fit::kCover;
  o.width = o.height = 16;
  EXPECT_TRUE(EncodeImage(*frame, o).ok());
}

TEST(ImageEncoder, OddSizesWithEveryOptionInEveryFormat) {
  // Odd sides in and out, 10-bit 4:2:0, BT.709 and 4:2:2 sources: every
  // combination encodes at the asked size and keeps the picture's colours.
  FramePtr ten = TwoToneFrame(321, 241, AV_PIX_FMT_YUV420P10LE, AVCOL_RANGE_MPEG);
  FramePtr bt709 = TwoToneFrame(99, 67, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG);
  bt709->colorspace = AVCOL_SPC_BT709;
  FramePtr yuv422 = FrameFromRgb(Solid(75, 51, 40, 90, 200), AV_PIX_FMT_YUV422P, AVCOL_SPC_BT470BG,
                                 AVCOL_RANGE_JPEG);
  for (const AVFrame* frame : {ten.get(), bt709.get(), yuv422.get()})
    for (ImageFormat f : kAllFormats)
      for (int degrees : {0, 90, 180, 270})
        for (Fit fit : {Fit::kFill, Fit::kContain, Fit::kCover}) {
          EncodeOptions o = Options(f, 80);
          o.width = 73;
          o.height = 55;
          o.fit = fit;
          o.rotate_degrees = degrees;
          o.overlay_text = "odd";
          auto img = EncodeImage(*frame, o);
          ASSERT_TRUE(img.ok()) << Name(f) << " " << degrees << ": " << img.status().ToString();
          RgbImage out = DecodeStill(img->bytes, f);
          ASSERT_EQ(out.width, 73) << Name(f);
          ASSERT_EQ(out.height, 55) << Name(f);
          if (frame == yuv422.get()) {  // the middle is the solid colour whatever the fit
            EXPECT_TRUE(Near(Pixel(out, 36, 20), {40, 90, 200}, 10))
                << Name(f) << " " << degrees << " fit " << static_cast<int>(fit);
          }
        }
}

}  // namespace
}  // namespace lastframe::media
