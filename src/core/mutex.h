#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include "core/thread_annotations.h"

namespace lastframe {

// A std::mutex that clang's thread-safety analysis knows as a capability (in
// the manner of Abseil's Mutex): members it guards are declared
// LF_GUARDED_BY(mu_), helpers that expect it held LF_REQUIRES(mu_), and the
// fuzz build (clang, -Werror=thread-safety) rejects any access without it.
// Not recursive. Take it with a MutexLock; wait on a std::condition_variable
// through MutexLock::Wait and its kin.
class LF_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() LF_ACQUIRE() {
    mu_.lock();
    SetOwner();
  }
  void Unlock() LF_RELEASE() {
    ClearOwner();
    mu_.unlock();
  }
  // Takes the mutex if it is free; returns whether it did. Never blocks.
  [[nodiscard]] bool TryLock() LF_TRY_ACQUIRE(true) {
    if (!mu_.try_lock()) return false;
    SetOwner();
    return true;
  }
  // Crashes, in every build, unless the calling thread holds the mutex. For
  // code the analysis cannot follow (a callback run under the lock): from
  // here on it takes the mutex as held.
  void AssertHeld() const LF_ASSERT_CAPABILITY(this) {
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      std::fputs("lastframe::Mutex::AssertHeld: the calling thread does not hold the mutex\n",
                 stderr);
      std::abort();
    }
  }

 private:
  friend class MutexLock;

  // Waits on |cv| (the mutex held, as a MutexLock holds it): lets the mutex go
  // while blocked, and holds it again on return, like cv.wait_until.
  template <class Clock, class Duration>
  std::cv_status WaitUntil(std::condition_variable& cv,
                           const std::chrono::time_point<Clock, Duration>& deadline) {
    ClearOwner();
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    std::cv_status status = cv.wait_until(lock, deadline);
    lock.release();  // still held: it stays with the caller's MutexLock
    SetOwner();
    return status;
  }
  void Wait(std::condition_variable& cv) {
    ClearOwner();
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    cv.wait(lock);
    lock.release();
    SetOwner();
  }

  // Only the holder writes owner_: a thread that reads its own id holds the
  // mutex, whatever the ordering, so relaxed is enough.
  void SetOwner() { owner_.store(std::this_thread::get_id(), std::memory_order_relaxed); }
  void ClearOwner() { owner_.store(std::thread::id(), std::memory_order_relaxed); }

  std::mutex mu_;
  std::atomic<std::thread::id> owner_{};
};

// Holds a Mutex for its scope, like std::lock_guard, and can let it go and
// take it back before then (Unlock, Lock). Waits on a std::condition_variable
// (notified as usual) with the mutex held before and after, as
// std::condition_variable's waits with a predicate do. The predicate runs with
// the mutex held; one that reads guarded members says so:
//
//   MutexLock lock(mu_);
//   lock.Wait(cv_, [this]() LF_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
class LF_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) LF_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() LF_RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Lets the mutex go before the scope ends; Lock takes it back.
  void Unlock() LF_RELEASE() {
    held_ = false;
    mu_.Unlock();
  }
  void Lock() LF_ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

  // Blocks until |ready()| is true.
  //
  // The analysis cannot see that |ready| runs with the mutex held (it is the
  // caller's capability, not this lock's): the caller's predicate carries
  // LF_REQUIRES, and these wrappers are not analysed.
  template <class Predicate>
  void Wait(std::condition_variable& cv, Predicate ready) LF_NO_THREAD_SAFETY_ANALYSIS {
    mu_.AssertHeld();  // not after Unlock
    while (!ready()) mu_.Wait(cv);
  }
  // Blocks until |ready()| is true or |deadline| passes; returns |ready()|.
  template <class Clock, class Duration, class Predicate>
  bool WaitUntil(std::condition_variable& cv,
                 const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate ready) LF_NO_THREAD_SAFETY_ANALYSIS {
    mu_.AssertHeld();
    while (!ready())
      if (mu_.WaitUntil(cv, deadline) == std::cv_status::timeout) return ready();
    return true;
  }
  // Blocks until |ready()| is true or |timeout| passes (steady clock); returns |ready()|.
  template <class Rep, class Period, class Predicate>
  bool WaitFor(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& timeout,
               Predicate ready) {
    using std::chrono::steady_clock;
    return WaitUntil(cv, steady_clock::now() + std::chrono::ceil<steady_clock::duration>(timeout),
                     std::move(ready));
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

}  // namespace lastframe
