#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lastframe::testing {

// An 8-bit RGB picture.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // RGBRGB..., rows packed
};

// Makes a clip with the ffmpeg CLI: `ffmpeg -y <args> <path>`; aborts the test
// on failure. Returns |path|.
std::string MakeClip(const std::string& path, const std::vector<std::string>& args);

// Decodes a JPEG (or fails the test) with libjpeg-turbo.
RgbImage DecodeJpeg(const std::string& jpeg);

// Every frame of |clip| as decoded by the ffmpeg CLI, in presentation order,
// as RGB at the clip's size. An independent reference for our own decode.
std::vector<RgbImage> DecodeAllFramesWithFfmpeg(const std::string& clip, int width, int height);

// Peak signal-to-noise ratio in dB between two same-sized images.
double Psnr(const RgbImage& a, const RgbImage& b);

}  // namespace lastframe::testing
