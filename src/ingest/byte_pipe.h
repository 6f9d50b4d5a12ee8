#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "core/mutex.h"

namespace lastframe::ingest {

// A byte queue between a socket (the writer, on an I/O thread, which must
// never block) and a demuxer (the reader, on its own thread, which blocks).
// Backpressure: Write reports when the queue is past its high-water mark; the
// writer then stops reading its socket until on_space is called, which
// happens once the reader has drained the queue to half of that mark.
class BytePipe {
 public:
  BytePipe(size_t high_water, std::function<void()> on_space);

  // Appends bytes (never blocks). Returns false when the writer should pause.
  bool Write(const uint8_t* data, size_t size);
  // Blocks until the queue is below the high-water mark (for in-process
  // producers on threads of their own). Returns false if the pipe was aborted.
  bool WaitForSpace();
  // No more bytes will come: the reader gets end of input after the queue.
  void Close();
  // Stops the reader at once.
  void Abort();

  // Blocks until bytes, end of input or abort. Returns the count (> 0), 0 at
  // end of input, -1 when aborted.
  int Read(uint8_t* buf, int size);

  size_t buffered() const;
  bool aborted() const;
  // How many readers are blocked in Read now (tests wait for a reader to block).
  int blocked_readers() const;

 private:
  const size_t high_water_;
  const std::function<void()> on_space_;
  mutable Mutex mu_;
  std::condition_variable readable_;
  std::condition_variable writable_;
  std::deque<std::string> chunks_ LF_GUARDED_BY(mu_);
  size_t front_offset_ LF_GUARDED_BY(mu_) = 0;  // bytes of chunks_.front() already read
  size_t size_ LF_GUARDED_BY(mu_) = 0;
  bool closed_ LF_GUARDED_BY(mu_) = false;
  bool aborted_ LF_GUARDED_BY(mu_) = false;
  bool writer_paused_ LF_GUARDED_BY(mu_) = false;
  int blocked_readers_ LF_GUARDED_BY(mu_) = 0;
};

}  // namespace lastframe::ingest
