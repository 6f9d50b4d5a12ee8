#pragma once

#include <pthread.h>

#include <cstddef>
#include <functional>
#include <memory>

#include "core/status.h"

namespace lastframe {

// A joinable thread with a stack of a chosen size. std::thread takes the
// process default (8 MiB of address space on Linux, and whatever the thread
// touches of it stays resident): a service with one thread per pulled camera
// gives each a stack sized to what it runs instead.
class Thread {
 public:
  // The stack every thread that runs libavformat (open, probe, demux) is given:
  // its deepest paths (probing decodes a few frames) use well under this; the
  // sanitizers' redzones make frames several times larger.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  static constexpr size_t kMediaStackBytes = 8 * 1024 * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  static constexpr size_t kMediaStackBytes = 8 * 1024 * 1024;
#else
  static constexpr size_t kMediaStackBytes = 1024 * 1024;
#endif
#else
  static constexpr size_t kMediaStackBytes = 1024 * 1024;
#endif

  Thread() = default;
  ~Thread();  // joins, if still joinable
  Thread(Thread&& other) noexcept;
  Thread& operator=(Thread&& other) noexcept;
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  // Runs |body| on a new thread whose stack is |stack_bytes| (rounded up to
  // the system's minimum and page size). Fails when the system refuses a thread.
  static Result<Thread> Start(size_t stack_bytes, std::function<void()> body);

  bool joinable() const { return started_; }
  void join();
  // The stack size the thread was given (0 if none was started).
  size_t stack_bytes() const { return stack_bytes_; }

 private:
  pthread_t handle_{};
  bool started_ = false;
  size_t stack_bytes_ = 0;
};

}  // namespace lastframe
