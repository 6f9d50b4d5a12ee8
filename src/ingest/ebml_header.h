#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lastframe::ingest {

// Length of an EBML variable-size integer from its first byte (1-8), 0 if invalid.
inline int EbmlVintLength(uint8_t first) {
  for (int len = 1; len <= 8; ++len)
    if (first & (0x80 >> (len - 1))) return len;
  return 0;
}

// An element header (ID and size) read from |bytes|, which hold exactly
// |id_len| + |size_len| bytes, both lengths valid (EbmlVintLength).
struct EbmlElementHeader {
  uint32_t id = 0;
  uint64_t size = 0;
  bool unknown_size = false;  // every size bit set
};
inline EbmlElementHeader DecodeEbmlHeader(const std::vector<uint8_t>& bytes, int id_len,
                                          int size_len) {
  EbmlElementHeader h;
  for (int i = 0; i < id_len; ++i) h.id = (h.id << 8) | bytes[i];
  h.size = bytes[id_len] & (0xFF >> size_len);
  h.unknown_size = h.size == (0xFFu >> size_len);
  for (int i = 1; i < size_len; ++i) {
    h.size = (h.size << 8) | bytes[id_len + i];
    h.unknown_size = h.unknown_size && bytes[id_len + i] == 0xFF;
  }
  return h;
}

}  // namespace lastframe::ingest
