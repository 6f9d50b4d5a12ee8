#include "ingest/ebml_boundary.h"

#include <algorithm>

#include "ingest/ebml_header.h"

namespace lastframe::ingest {
namespace {

constexpr uint32_t kSegment = 0x18538067;
constexpr uint32_t kCluster = 0x1F43B675;

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
  int id_len = EbmlVintLength(header_[0]);
  if (id_len == 0 || id_len > 4) {
    lost_ = true;
    return;
  }
  if (header_.size() <= static_cast<size_t>(id_len)) return;
  int size_len = EbmlVintLength(header_[id_len]);
  if (size_len == 0) {
    lost_ = true;
    return;
  }
  if (header_.size() < static_cast<size_t>(id_len + size_len)) return;
  const EbmlElementHeader h = DecodeEbmlHeader(header_, id_len, size_len);
  const uint32_t id = h.id;
  const uint64_t value = h.size;
  const bool unknown = h.unknown_size;
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
