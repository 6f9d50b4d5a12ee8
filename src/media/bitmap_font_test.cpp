#include "media/bitmap_font.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace lastframe::media {
namespace {

// The glyph of |c| as a string of '#' and '.', row by row.
std::string Picture(char c) {
  std::string s;
  for (int y = 0; y < kGlyphHeight; ++y)
    for (int x = 0; x < kGlyphWidth; ++x) s.push_back(GlyphPixel(c, x, y) ? '#' : '.');
  return s;
}

TEST(BitmapFont, EveryPrintableCharacterHasItsOwnGlyph) {
  std::set<std::string> seen;
  for (char c = 33; c <= 126; ++c) {
    std::string p = Picture(c);
    EXPECT_NE(p.find('#'), std::string::npos) << "'" << c << "' is blank";
    EXPECT_TRUE(seen.insert(p).second) << "'" << c << "' looks like another character";
  }
  EXPECT_EQ(Picture(' ').find('#'), std::string::npos);
}

TEST(BitmapFont, GlyphsAreDrawnTheRightWayUp) {
  // 'L': a full left column and a bottom row (row 6, above the descender row).
  for (int y = 0; y < 7; ++y) EXPECT_TRUE(GlyphPixel('L', 0, y)) << y;
  for (int x = 0; x < 5; ++x) EXPECT_TRUE(GlyphPixel('L', x, 6)) << x;
  EXPECT_FALSE(GlyphPixel('L', 4, 0));
  // 'T': a full top row, and the stem in the middle column only.
  for (int x = 0; x < 5; ++x) EXPECT_TRUE(GlyphPixel('T', x, 0)) << x;
  EXPECT_TRUE(GlyphPixel('T', 2, 6));
  EXPECT_FALSE(GlyphPixel('T', 0, 6));
  // 'g' has a descender, 'a' none.
  EXPECT_TRUE(GlyphPixel('g', 2, 7));
  EXPECT_FALSE(GlyphPixel('a', 2, 7));
  EXPECT_FALSE(GlyphPixel('A', -1, 0));
  EXPECT_FALSE(GlyphPixel('A', 5, 0));
}

TEST(BitmapFont, NonAsciiAndControlsBecomeQuestionMarks) {
  EXPECT_EQ(ToFontText("cam 1"), "cam 1");
  EXPECT_EQ(ToFontText("caf\xC3\xA9"), "caf?");      // é: two bytes, one character
  EXPECT_EQ(ToFontText("\xE2\x82\xAC 5"), "? 5");    // €: three bytes
  EXPECT_EQ(ToFontText("\xF0\x9F\x93\xB7!"), "?!");  // an emoji: four bytes
  EXPECT_EQ(ToFontText("a\tb\n\x7F"), "a?b??");      // controls
  EXPECT_EQ(ToFontText("\x80x"), "?x");              // a stray continuation byte
  EXPECT_EQ(Picture('\x01'), Picture('?'));
  EXPECT_EQ(Picture(static_cast<char>(0xE9)), Picture('?'));
}

TEST(BitmapFont, ScaleGrowsWithTheImage) {
  EXPECT_EQ(TextScale(160, 120), 1);
  EXPECT_EQ(TextScale(320, 240), 2);
  EXPECT_EQ(TextScale(1920, 1080), 7);
  EXPECT_EQ(TextScale(1080, 1920), 7);
  EXPECT_EQ(TextScale(8, 8), 1);
}

TEST(BitmapFont, RenderTextLaysOutGlyphsAndClips) {
  TextBox box = RenderText("LT", 2, 1000, 1000);
  // Margins of one font pixel (2 px) around 2 glyphs of 6 columns less the last space.
  EXPECT_EQ(box.width, 2 * 2 + (2 * kGlyphAdvance - 1) * 2);
  EXPECT_EQ(box.height, 2 * 2 + kGlyphHeight * 2);
  // The L's stem at the left margin, top to bottom of its body.
  for (int y = 2; y < 2 + 14; ++y) EXPECT_TRUE(box.lit(2, y)) << y;
  EXPECT_FALSE(box.lit(0, 5));  // the margin
  EXPECT_FALSE(box.lit(1, 5));
  // The T's bar starts at x = margin + 6 font pixels.
  EXPECT_TRUE(box.lit(2 + 12, 2));
  EXPECT_FALSE(box.lit(2 + 10, 2));  // the space between glyphs
  TextBox clipped = RenderText("a long line of text", 3, 50, 10);
  EXPECT_EQ(clipped.width, 50);
  EXPECT_EQ(clipped.height, 10);
  EXPECT_EQ(clipped.ink.size(), 500u);
  EXPECT_EQ(RenderText("", 2, 100, 100).width, 0);
}

}  // namespace
}  // namespace lastframe::media
