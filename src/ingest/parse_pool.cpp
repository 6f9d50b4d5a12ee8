#include "ingest/parse_pool.h"

#include <pthread.h>

namespace lastframe::ingest {

ParsePool::ParsePool(size_t threads) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "lf-parse");
      Run();
    });
}

ParsePool::~ParsePool() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

ParsePool& ParsePool::Shared() {
  static ParsePool* pool = new ParsePool(2);  // never destroyed, as explained above
  return *pool;
}

void ParsePool::Post(std::function<void()> task) {
  {
    MutexLock lock(mu_);
    queue_.push_back(std::move(task));
  }
  ready_.notify_one();
}

void ParsePool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(mu_);
      lock.Wait(ready_, [this]() LF_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace lastframe::ingest
