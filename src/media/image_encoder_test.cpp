#include "media/image_encoder.h"

extern "C" {
#include <libavutil/imgutils.h>
}

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cstring>
#include <vector>

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

}  // namespace
}  // namespace lastframe::media
