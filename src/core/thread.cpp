#include "core/thread.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace lastframe {
namespace {

void* Trampoline(void* arg) {
  std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
  (*body)();
  return nullptr;
}

}  // namespace

Thread::~Thread() { join(); }

Thread::Thread(Thread&& other) noexcept
    : handle_(other.handle_),
      started_(std::exchange(other.started_, false)),
      stack_bytes_(std::exchange(other.stack_bytes_, 0)) {}

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    join();
    handle_ = other.handle_;
    started_ = std::exchange(other.started_, false);
    stack_bytes_ = std::exchange(other.stack_bytes_, 0);
  }
  return *this;
}

Result<Thread> Thread::Start(size_t stack_bytes, std::function<void()> body) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t size = std::max<size_t>(stack_bytes, PTHREAD_STACK_MIN);
  size = (size + page - 1) / page * page;
  pthread_attr_t attr;
  if (int rc = pthread_attr_init(&attr); rc != 0)
    return Internal(std::string("pthread_attr_init: ") + std::strerror(rc));
  int rc = pthread_attr_setstacksize(&attr, size);
  auto owned = std::make_unique<std::function<void()>>(std::move(body));
  Thread thread;
  if (rc == 0) rc = pthread_create(&thread.handle_, &attr, &Trampoline, owned.get());
  pthread_attr_destroy(&attr);
  if (rc != 0) return Internal(std::string("cannot start a thread: ") + std::strerror(rc));
  owned.release();  // the thread owns it now
  thread.started_ = true;
  thread.stack_bytes_ = size;
  return thread;
}

void Thread::join() {
  if (!started_) return;
  started_ = false;
  pthread_join(handle_, nullptr);
}

}  // namespace lastframe
