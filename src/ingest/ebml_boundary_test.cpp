#include "ingest/ebml_boundary.h"

#include <gtest/gtest.h>

#include <string>

#include "support/media_check.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace lastframe::ingest {
namespace {

using Bytes = std::vector<uint8_t>;

bool EndsAtBoundary(const Bytes& bytes, size_t feed_size = 3) {
  EbmlBoundary b;
  for (size_t at = 0; at < bytes.size(); at += feed_size)
    b.Feed(bytes.data() + at, std::min(feed_size, bytes.size() - at));
  return b.AtBoundary();
}

// EBML header (empty), a Segment of unknown size, a Cluster of |cluster| size
// (0xFF: unknown), a Timecode and two SimpleBlocks of 3 payload bytes.
Bytes Stream(uint8_t cluster_size) {
  return {0x1A, 0x45, 0xDF, 0xA3, 0x80,          // EBML, size 0
          0x18, 0x53, 0x80, 0x67, 0xFF,          // Segment, unknown size
          0x1F, 0x43, 0xB6, 0x75, cluster_size,  // Cluster
          0xE7, 0x81, 0x00,                      // Timecode 0
          0xA3, 0x83, 0x81, 0x00, 0x00,          // SimpleBlock, 3 bytes
          0xA3, 0x83, 0x81, 0x00, 0x28};         // SimpleBlock, 3 bytes
}

TEST(EbmlBoundary, WholeElementsEndAtABoundary) {
  EXPECT_TRUE(EndsAtBoundary(Stream(0xFF)));
  EXPECT_TRUE(EndsAtBoundary(Stream(0x80 | 13)));  // a Cluster of known size, all there
  EXPECT_TRUE(EndsAtBoundary(Stream(0xFF), 1));
  EXPECT_TRUE(EndsAtBoundary({}));
}

TEST(EbmlBoundary, AStreamCutInsideAnElementDoesNot) {
  Bytes whole = Stream(0xFF);
  for (size_t cut : {3u, 7u, 16u, 19u, 21u, 27u}) {
    Bytes part(whole.begin(), whole.begin() + cut);
    EXPECT_FALSE(EndsAtBoundary(part)) << "cut at " << cut;
  }
  // Between whole blocks of a Cluster of known size: the Cluster itself is short.
  Bytes known = Stream(0x80 | 13);
  EXPECT_FALSE(EndsAtBoundary(Bytes(known.begin(), known.begin() + 23)));
  Bytes unknown = Stream(0xFF);
  EXPECT_TRUE(EndsAtBoundary(Bytes(unknown.begin(), unknown.begin() + 23)));
}

TEST(EbmlBoundary, AnElementOverTheLimitIsSeenFromItsHeaderAlone) {
  Bytes head = Stream(0xFF);
  head.resize(18);                                                       // up to the Timecode
  Bytes block = {0xA3, 0x01, 0x00, 0x00, 0x00, 0x07, 0x80, 0x00, 0x00};  // 120 MiB SimpleBlock
  head.insert(head.end(), block.begin(), block.end());
  EbmlBoundary b(50 << 20);
  b.Feed(head.data(), head.size());
  EXPECT_EQ(b.oversized(), 120u << 20);
  // Small blocks pass; and outside a Segment, sizes are the demuxer's to judge.
  EbmlBoundary small(50 << 20);
  Bytes whole = Stream(0xFF);
  small.Feed(whole.data(), whole.size());
  EXPECT_EQ(small.oversized(), 0u);
  EbmlBoundary no_segment(50 << 20);
  no_segment.Feed(block.data(), block.size());
  EXPECT_EQ(no_segment.oversized(), 0u);
}

TEST(EbmlBoundary, FollowsFfmpegsMatroska) {
  testing::TempDir dir;
  for (const std::string live : {"0", "1"}) {
    std::string path = testing::MakeClip(dir.file("clip" + live + ".mkv"),
                                         {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                                          "-t", "2", "-c:v", "libx264", "-g", "10", "-live", live});
    std::string file = testing::ReadFile(path);
    Bytes bytes(file.begin(), file.end());
    EXPECT_TRUE(EndsAtBoundary(bytes, 4096)) << "live " << live;
    EXPECT_FALSE(EndsAtBoundary(Bytes(bytes.begin(), bytes.end() - 7), 4096)) << "live " << live;
  }
}

TEST(EbmlBoundary, InvalidBytesAreLeftToTheDemuxer) {
  EXPECT_TRUE(EndsAtBoundary({0x00, 0x01, 0x02}));
}

}  // namespace
}  // namespace lastframe::ingest
