#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// A small bitmap font of our own for burning text into stills: printable ASCII
// (32..126) in 5x8 cells, the shapes of the classic 5x7 LCD character
// generator (with descenders). No FreeType, no FFmpeg drawtext.

namespace lastframe::media {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 8;
// A glyph's advance: its width and one column of space.
inline constexpr int kGlyphAdvance = kGlyphWidth + 1;

// Whether the font pixel (x, y) of |c|'s glyph is lit, x in [0, kGlyphWidth),
// y in [0, kGlyphHeight) from the top. Characters outside 32..126 draw as '?'.
bool GlyphPixel(char c, int x, int y);

// |utf8| as the font can draw it: one character per code point, each outside
// printable ASCII (controls, non-ASCII, broken UTF-8) replaced by '?'.
std::string ToFontText(std::string_view utf8);

// The integer scale (font pixels to image pixels) for text on an image of
// |width| x |height|: 2 at 320x240, 7 at 1920x1080, at least 1.
int TextScale(int width, int height);

// A rendered label: a dark box |width| x |height| whose |ink| (row-major, one
// byte per pixel, 1 where a glyph pixel is lit) is the text.
struct TextBox {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> ink;
  bool lit(int x, int y) const { return ink[static_cast<size_t>(y) * width + x] != 0; }
};

// Lays |utf8| out on one line at |scale|, with a margin of |scale| font pixels'
// worth around it, clipped to |max_width| x |max_height|. Empty text gives an
// empty box.
TextBox RenderText(std::string_view utf8, int scale, int max_width, int max_height);

}  // namespace lastframe::media
