#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "core/mutex.h"

namespace lastframe::ingest {

// A few threads that every push session's Matroska parse shares: a session
// queues its bytes and posts one task when it has work (its strand), so a
// node with hundreds of producers runs a fixed number of parser threads, not
// one per producer. Tasks must not block (they parse what has arrived and
// return); they run in the order they were posted.
class ParsePool {
 public:
  explicit ParsePool(size_t threads);
  ~ParsePool();  // runs the tasks already posted, then joins
  ParsePool(const ParsePool&) = delete;
  ParsePool& operator=(const ParsePool&) = delete;

  // The process's pool (2 threads), made on first use and never destroyed:
  // sessions' late tasks (a persist completing after shutdown began) always
  // have somewhere to run.
  static ParsePool& Shared();

  void Post(std::function<void()> task);
  size_t threads() const { return threads_.size(); }

 private:
  void Run();

  Mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_ LF_GUARDED_BY(mu_);
  bool stopping_ LF_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace lastframe::ingest
