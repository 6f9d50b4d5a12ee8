#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "core/mutex.h"

namespace lastframe {

// A fixed set of threads for CPU work (decode, encode), fed from a bounded
// queue. TryPost never blocks: a full queue is the caller's signal to shed load
// (HTTP 429), so the queue can never grow without bound.
class WorkerPool {
 public:
  // |nice| > 0 lowers the threads' scheduling priority (Linux, per thread):
  // CPU-heavy work then yields to the I/O threads, which answer cheap requests.
  WorkerPool(size_t threads, size_t max_queued, int nice = 0);
  ~WorkerPool();  // runs what was queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues |task|. Returns false, and drops it, when max_queued tasks wait already
  // or the pool is shutting down.
  bool TryPost(std::function<void()> task);
  // Stops taking tasks, finishes the queued ones and joins the threads.
  void Shutdown();

  size_t threads() const { return threads_.size(); }
  size_t queued() const;

 private:
  void Run();

  const size_t max_queued_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_ LF_GUARDED_BY(mu_);
  bool stopping_ LF_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace lastframe
