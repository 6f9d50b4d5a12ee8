#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lastframe::ingest {

// Checks, ahead of libwebm, that every element's header and body fit inside
// the master element of known size that holds it. libwebm asserts instead
// (Debian builds it with assertions on): an element ID that begins inside its
// parent and ends past it, cut across two reads, aborts the process on the
// next read. So every byte goes through this check before libwebm sees it, and
// the first element that does not fit ends the parse with a clear error.
// Every element ID libwebm parses as a master is entered, wherever it appears
// (a superset of where libwebm enters them: stricter, never looser); masters
// may have an unknown size, other elements may not.
class EbmlNesting {
 public:
  // Follows |size| more bytes. False once the structure is invalid (and from
  // then on); error() says why.
  bool Feed(const uint8_t* data, size_t size);
  const std::string& error() const { return error_; }
  // The declared size of the element that did not fit (0 if none, or if it
  // was its header that did not fit).
  uint64_t overflowing_size() const { return overflowing_size_; }

 private:
  bool Fail(std::string why);
  bool ParseHeader();  // consumes header_ once it holds a whole element header

  uint64_t pos_ = 0;             // bytes followed
  uint64_t skip_ = 0;            // body bytes still to pass over
  std::vector<uint8_t> header_;  // a partial element header
  std::vector<uint64_t> ends_;   // ends of the entered masters of known size
  std::string error_;
  uint64_t overflowing_size_ = 0;
};

}  // namespace lastframe::ingest
