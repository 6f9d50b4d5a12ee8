#include "ingest/ebml_boundary.h"

#include <algorithm>

namespace lastframe::ingest {
namespace {

constexpr uint32_t kSegment = 0x18538067;
constexpr uint32_t kCluster = 0x1F43B675;

// Length of an EBML variable-size integer from its first byte (1-8), 0 if invalid.
int VintLength(uint8_t first) {
  for (int len = 1; len <= 8; ++len)
    if (first & (0x80 >> (len - 1))) return len;
  return 0;
}

}  // namespace

void EbmlBoundary::Feed(const uint8_t* data, size_t size) {
  while (size > 0 && !lost_) {
    if (skip_ > 0) {
      uint64_t n = std::min<uint64_t>(skip_, size);
      skip_ -= n;
      pos_ += n;
      data += n;
      size -= n;
    } else {
      header_.push_back(*data++);
      --size;
      Parse();
    }
    while (skip_ == 0 && header_.empty() && !ends_.empty() && ends_.back() <= pos_)
      ends_.pop_back();
  }
}

void EbmlBoundary::Parse() {
  int id_len = VintLength(header_[0]);
  if (id_len == 0 || id_len > 4) {
    lost_ = true;
    return;
  }
  if (header_.size() <= static_cast<size_t>(id_len)) return;
  int size_len = VintLength(header_[id_len]);
  if (size_len == 0) {
    lost_ = true;
    return;
  }
  if (header_.size() < static_cast<size_t>(id_len + size_len)) return;
  uint32_t id = 0;
  for (int i = 0; i < id_len; ++i) id = (id << 8) | header_[i];
  uint64_t value = header_[id_len] & (0xFF >> size_len);
  bool unknown = value == (0xFFu >> size_len);
  for (int i = 1; i < size_len; ++i) {
    value = (value << 8) | header_[id_len + i];
    unknown = unknown && header_[id_len + i] == 0xFF;
  }
  pos_ += header_.size();
  header_.clear();
  if (id == kSegment) in_segment_ = true;
  if (id == kSegment || id == kCluster) {
    if (!unknown) ends_.push_back(pos_ + value);
    return;
  }
  if (unknown) {  // only Segments and Clusters may be of unknown size
    lost_ = true;
    return;
  }
  // Only within a Segment: random bytes are the demuxer's to judge (invalid data).
  if (in_segment_ && value > max_element_bytes_ && oversized_ == 0) oversized_ = value;
  skip_ = value;
}

bool EbmlBoundary::AtBoundary() const {
  if (lost_) return true;
  return skip_ == 0 && header_.empty() && ends_.empty();
}

}  // namespace lastframe::ingest
