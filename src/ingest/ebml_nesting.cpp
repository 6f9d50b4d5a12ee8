#include "ingest/ebml_nesting.h"

#include <algorithm>
#include <array>

#include "ingest/ebml_header.h"

namespace lastframe::ingest {
namespace {

// Every element libwebm parses as a master (webm/id.h; webm_parser/src/*_parser.h).
constexpr std::array<uint32_t, 33> kMasters = {
    0x1A45DFA3,  // EBML
    0x18538067,  // Segment
    0x114D9B74,  // SeekHead
    0x4DBB,      // Seek
    0x1549A966,  // Info
    0x1F43B675,  // Cluster
    0xA0,        // BlockGroup
    0x75A1,      // BlockAdditions
    0xA6,        // BlockMore
    0x8E,        // Slices
    0xE8,        // TimeSlice
    0x1654AE6B,  // Tracks
    0xAE,        // TrackEntry
    0xE0,        // Video
    0x55B0,      // Colour
    0x55D0,      // MasteringMetadata
    0x7670,      // Projection
    0xE1,        // Audio
    0x6D80,      // ContentEncodings
    0x6240,      // ContentEncoding
    0x5035,      // ContentEncryption
    0x47E7,      // ContentEncAESSettings
    0x1C53BB6B,  // Cues
    0xBB,        // CuePoint
    0xB7,        // CueTrackPositions
    0x1043A770,  // Chapters
    0x45B9,      // EditionEntry
    0xB6,        // ChapterAtom
    0x80,        // ChapterDisplay
    0x1254C367,  // Tags
    0x7373,      // Tag
    0x63C0,      // Targets
    0x67C8,      // SimpleTag
};

bool IsMaster(uint32_t id) {
  return std::find(kMasters.begin(), kMasters.end(), id) != kMasters.end();
}

}  // namespace

bool EbmlNesting::Fail(std::string why) {
  error_ = std::move(why) + " (at byte " + std::to_string(pos_) + ")";
  return false;
}

bool EbmlNesting::Feed(const uint8_t* data, size_t size) {
  while (size > 0) {
    if (!error_.empty()) return false;
    if (skip_ > 0) {
      const uint64_t n = std::min<uint64_t>(skip_, size);
      skip_ -= n;
      pos_ += n;
      data += n;
      size -= n;
    } else {
      header_.push_back(*data++);
      --size;
      if (!ParseHeader()) return false;
    }
    while (skip_ == 0 && header_.empty() && !ends_.empty() && ends_.back() <= pos_)
      ends_.pop_back();
  }
  return error_.empty();
}

bool EbmlNesting::ParseHeader() {
  const int id_len = EbmlVintLength(header_[0]);
  if (id_len == 0 || id_len > 4) return Fail("an invalid element ID");
  // Known from the ID's first byte: whether the ID ends past its parent.
  if (!ends_.empty() && pos_ + static_cast<uint64_t>(id_len) > ends_.back())
    return Fail("an element ID runs past the end of the element holding it");
  if (header_.size() <= static_cast<size_t>(id_len)) return true;
  const int size_len = EbmlVintLength(header_[id_len]);
  if (size_len == 0) return Fail("an invalid element size");
  if (!ends_.empty() && pos_ + static_cast<uint64_t>(id_len + size_len) > ends_.back())
    return Fail("an element header runs past the end of the element holding it");
  if (header_.size() < static_cast<size_t>(id_len + size_len)) return true;
  const EbmlElementHeader h = DecodeEbmlHeader(header_, id_len, size_len);
  const uint32_t id = h.id;
  const uint64_t value = h.size;
  const bool unknown = h.unknown_size;
  const uint64_t body = pos_ + header_.size();
  const bool master = IsMaster(id);
  if (unknown && !master) return Fail("an element of unknown size that holds no elements");
  if (!unknown && !ends_.empty() && value > ends_.back() - body) {
    overflowing_size_ = value;
    return Fail("an element of " + std::to_string(value) +
                " bytes runs past the end of the element holding it");
  }
  pos_ = body;
  header_.clear();
  if (master) {
    if (!unknown) ends_.push_back(body + value);
  } else {
    skip_ = value;
  }
  return true;
}

}  // namespace lastframe::ingest
