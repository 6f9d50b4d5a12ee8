#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lastframe::ingest {

// Follows the element structure of a Matroska byte stream as it arrives (IDs
// and sizes only, payloads skipped) to tell, when the input ends, whether it
// ended between elements or inside one. FFmpeg's demuxer reads a stream cut
// short mid-element as a plain end of input, which would make the fragment in
// progress look complete. Segments and Clusters are entered (either size);
// every other element is skipped whole.
class EbmlBoundary {
 public:
  // Elements other than Segments and Clusters larger than |max_element_bytes|
  // are reported by oversized() as soon as their header arrives, before the
  // demuxer buffers them (a 120 MiB keyframe is refused, not read).
  explicit EbmlBoundary(uint64_t max_element_bytes = UINT64_MAX)
      : max_element_bytes_(max_element_bytes) {}
  void Feed(const uint8_t* data, size_t size);
  // The declared size of the first element over the limit, 0 if none.
  uint64_t oversized() const { return oversized_; }
  // True if the bytes so far end between elements, outside any element of
  // known size still short of its end. Also true once the structure could not
  // be followed (an invalid size or ID): the demuxer judges those bytes.
  bool AtBoundary() const;

 private:
  void Parse();  // consumes header_ when it holds a whole element header

  uint64_t pos_ = 0;             // bytes consumed
  uint64_t skip_ = 0;            // payload bytes still to skip
  std::vector<uint8_t> header_;  // a partial element header
  std::vector<uint64_t> ends_;   // ends of the entered elements of known size
  bool lost_ = false;
  bool in_segment_ = false;
  const uint64_t max_element_bytes_;
  uint64_t oversized_ = 0;
};

}  // namespace lastframe::ingest
