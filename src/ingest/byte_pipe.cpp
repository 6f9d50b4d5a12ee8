#include "ingest/byte_pipe.h"

#include <algorithm>
#include <cstring>

namespace lastframe::ingest {

BytePipe::BytePipe(size_t high_water, std::function<void()> on_space)
    : high_water_(high_water), on_space_(std::move(on_space)) {}

bool BytePipe::Write(const uint8_t* data, size_t size) {
  MutexLock lock(mu_);
  if (closed_ || aborted_) return true;
  if (size > 0) {
    chunks_.emplace_back(reinterpret_cast<const char*>(data), size);
    size_ += size;
    readable_.notify_one();
  }
  if (size_ >= high_water_) {
    writer_paused_ = true;
    return false;
  }
  return true;
}

bool BytePipe::WaitForSpace() {
  MutexLock lock(mu_);
  lock.Wait(writable_, [this]() LF_REQUIRES(mu_) { return aborted_ || size_ < high_water_; });
  return !aborted_;
}

void BytePipe::Close() {
  MutexLock lock(mu_);
  closed_ = true;
  readable_.notify_all();
}

void BytePipe::Abort() {
  MutexLock lock(mu_);
  aborted_ = true;
  readable_.notify_all();
  writable_.notify_all();
}

int BytePipe::Read(uint8_t* buf, int size) {
  bool notify = false;
  int n = 0;
  {
    MutexLock lock(mu_);
    auto ready = [this]() LF_REQUIRES(mu_) { return aborted_ || closed_ || size_ > 0; };
    if (!ready()) {
      ++blocked_readers_;
      lock.Wait(readable_, ready);
      --blocked_readers_;
    }
    if (aborted_) return -1;
    if (size_ == 0) return 0;  // closed and drained
    while (n < size && !chunks_.empty()) {
      std::string& front = chunks_.front();
      size_t take = std::min(front.size() - front_offset_, static_cast<size_t>(size - n));
      std::memcpy(buf + n, front.data() + front_offset_, take);
      n += static_cast<int>(take);
      front_offset_ += take;
      size_ -= take;
      if (front_offset_ == front.size()) {
        chunks_.pop_front();
        front_offset_ = 0;
      }
    }
    if (size_ < high_water_) writable_.notify_all();
    if (writer_paused_ && size_ <= high_water_ / 2) {
      writer_paused_ = false;
      notify = true;
    }
  }
  if (notify && on_space_) on_space_();
  return n;
}

bool BytePipe::aborted() const {
  MutexLock lock(mu_);
  return aborted_;
}

size_t BytePipe::buffered() const {
  MutexLock lock(mu_);
  return size_;
}

int BytePipe::blocked_readers() const {
  MutexLock lock(mu_);
  return blocked_readers_;
}

}  // namespace lastframe::ingest
