#include "support/media_check.h"

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cmath>
#include <limits>

#include "support/process.h"
#include "support/temp_dir.h"

namespace lastframe::testing {

std::string MakeClip(const std::string& path, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ffmpeg", "-hide_banner", "-loglevel", "error", "-y"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(path);
  std::string out;
  int rc = RunCommand(argv, &out);
  EXPECT_EQ(rc, 0) << "ffmpeg failed: " << out;
  return path;
}

RgbImage DecodeJpeg(const std::string& jpeg) {
  RgbImage img;
  tjhandle tj = tjInitDecompress();
  int subsamp = 0, cs = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(jpeg.data());
  if (tjDecompressHeader3(tj, data, jpeg.size(), &img.width, &img.height, &subsamp, &cs) != 0) {
    ADD_FAILURE() << "not a JPEG: " << tjGetErrorStr2(tj);
    tjDestroy(tj);
    return {};
  }
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
  // Chroma is upsampled by replication, as swscale does for the ffmpeg-made
  // references: otherwise sharp colour edges alone cost ~15 dB of PSNR.
  EXPECT_EQ(tjDecompress2(tj, data, jpeg.size(), img.pixels.data(), img.width, 0, img.height,
                          TJPF_RGB, TJFLAG_FASTUPSAMPLE),
            0);
  tjDestroy(tj);
  return img;
}

std::vector<RgbImage> DecodeAllFramesWithFfmpeg(const std::string& clip, int width, int height) {
  TempDir dir;
  std::string raw = dir.file("frames.rgb");
  std::string out;
  int rc = RunCommand({"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", clip, "-f",
                       "rawvideo", "-pix_fmt", "rgb24", raw},
                      &out);
  EXPECT_EQ(rc, 0) << out;
  std::string bytes = ReadFile(raw);
  size_t frame_size = static_cast<size_t>(width) * height * 3;
  std::vector<RgbImage> frames;
  for (size_t off = 0; off + frame_size <= bytes.size(); off += frame_size) {
    RgbImage img{width, height, {}};
    img.pixels.assign(bytes.begin() + static_cast<ptrdiff_t>(off),
                      bytes.begin() + static_cast<ptrdiff_t>(off + frame_size));
    frames.push_back(std::move(img));
  }
  return frames;
}

double Psnr(const RgbImage& a, const RgbImage& b) {
  if (a.width != b.width || a.height != b.height || a.pixels.size() != b.pixels.size()) {
    ADD_FAILURE() << "PSNR of differently sized images " << a.width << "x" << a.height << " vs "
                  << b.width << "x" << b.height;
    return 0;
  }
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    double d = static_cast<double>(a.pixels[i]) - b.pixels[i];
    sum += d * d;
  }
  double mse = sum / static_cast<double>(a.pixels.size());
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace lastframe::testing
