#include "ingest/ebml_nesting.h"

#include <gtest/gtest.h>

#include <string>

#include "support/media_check.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace lastframe::ingest {
namespace {

using Bytes = std::vector<uint8_t>;

// Feeds |bytes| |feed_size| at a time; "" if every element fit, else the error.
std::string Check(const Bytes& bytes, size_t feed_size = 1) {
  EbmlNesting n;
  for (size_t at = 0; at < bytes.size(); at += feed_size)
    if (!n.Feed(bytes.data() + at, std::min(feed_size, bytes.size() - at))) return n.error();
  return "";
}

// EBML header of |ebml_size| holding DocTypeVersion 1 (4 bytes), then a
// Segment of unknown size and a Cluster of |cluster| size (0xFF: unknown)
// with a Timecode and a SimpleBlock of 3 payload bytes.
Bytes Stream(uint8_t ebml_size, uint8_t cluster) {
  return {0x1A, 0x45, 0xDF, 0xA3, static_cast<uint8_t>(0x80 | ebml_size),
          0x42, 0x87, 0x81, 0x01,           // DocTypeVersion 1
          0x18, 0x53, 0x80, 0x67, 0xFF,     // Segment, unknown size
          0x1F, 0x43, 0xB6, 0x75, cluster,  // Cluster
          0xE7, 0x81, 0x00,                 // Timecode 0
          0xA3, 0x83, 0x81, 0x00, 0x00};    // SimpleBlock, 3 bytes
}

TEST(EbmlNesting, ElementsThatFitTheirParentsPass) {
  EXPECT_EQ(Check(Stream(4, 0xFF)), "");
  EXPECT_EQ(Check(Stream(4, 0x80 | 8)), "");  // a Cluster of known size, exactly full
  EXPECT_EQ(Check(Stream(4, 0x80 | 8), 64), "");
  EXPECT_EQ(Check({}), "");
}

TEST(EbmlNesting, AnIdCrossingItsParentsEndIsRefusedFromItsFirstByte) {
  // The EBML header says 3 bytes: DocTypeVersion's 2-byte ID begins inside it
  // and the rest of the element is past its end. libwebm, reading this a byte
  // at a time, aborts the process on an assertion; here it is an error as soon
  // as the ID's first byte arrives.
  Bytes bytes = Stream(1, 0xFF);
  EbmlNesting n;
  ASSERT_TRUE(n.Feed(bytes.data(), 5));  // the EBML header's own header
  EXPECT_FALSE(n.Feed(bytes.data() + 5, 1));
  EXPECT_NE(n.error().find("ID runs past the end"), std::string::npos) << n.error();
  EXPECT_NE(n.error().find("at byte 5"), std::string::npos) << n.error();
  EXPECT_FALSE(n.Feed(bytes.data() + 6, 1));  // and stays refused
}

TEST(EbmlNesting, HeadersAndBodiesPastTheirParentsEndAreRefused) {
  EXPECT_NE(Check(Stream(2, 0xFF)).find("header runs past"), std::string::npos);
  EXPECT_NE(Check(Stream(3, 0xFF)).find("1 bytes runs past"), std::string::npos);
  // A SimpleBlock larger than what is left of its Cluster: its size is told.
  EbmlNesting n;
  Bytes bytes = Stream(4, 0x80 | 7);
  EXPECT_FALSE(n.Feed(bytes.data(), bytes.size()));
  EXPECT_EQ(n.overflowing_size(), 3u);
}

TEST(EbmlNesting, OnlyMastersMayHaveAnUnknownSize) {
  Bytes bytes = Stream(4, 0xFF);
  bytes.resize(22);
  Bytes block = {0xA3, 0xFF, 0x81, 0x00, 0x00};  // SimpleBlock of unknown size
  bytes.insert(bytes.end(), block.begin(), block.end());
  EXPECT_NE(Check(bytes).find("unknown size"), std::string::npos);
  EXPECT_NE(Check({0x00, 0x01}).find("invalid element ID"), std::string::npos);
}

TEST(EbmlNesting, FollowsFfmpegsMatroska) {
  testing::TempDir dir;
  for (const std::string live : {"0", "1"}) {
    std::string path = testing::MakeClip(dir.file("clip" + live + ".mkv"),
                                         {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                                          "-t", "2", "-c:v", "libx264", "-g", "10", "-live", live});
    std::string file = testing::ReadFile(path);
    Bytes bytes(file.begin(), file.end());
    EXPECT_EQ(Check(bytes, 1), "") << "live " << live;
    EXPECT_EQ(Check(bytes, 4096), "") << "live " << live;
  }
}

}  // namespace
}  // namespace lastframe::ingest
