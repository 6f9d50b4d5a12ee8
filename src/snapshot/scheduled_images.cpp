#include "snapshot/scheduled_images.h"

#include <spdlog/spdlog.h>

#include <memory>

namespace lastframe::snapshot {

ScheduledImages::ScheduledImages(SnapshotService& snapshots, objects::ObjectStore& objects,
                                 WorkerPool& workers, const Clock& clock)
    : snapshots_(snapshots), objects_(objects), workers_(workers), clock_(clock) {}

void ScheduledImages::Set(const std::string& stream, ImageSchedule schedule) {
  if (!schedule.key_prefix.empty() && schedule.key_prefix.back() != '/')
    schedule.key_prefix.push_back('/');
  MutexLock lock(mu_);
  State& s = streams_[stream];
  s.schedule = std::move(schedule);
  s.next_due_ms = 0;
}

void ScheduledImages::Remove(const std::string& stream) {
  MutexLock lock(mu_);
  streams_.erase(stream);
}

void ScheduledImages::OnFrame(const std::string& stream) {
  const int64_t now = clock_.NowMs();
  ImageSchedule schedule;
  {
    MutexLock lock(mu_);
    auto it = streams_.find(stream);
    if (it == streams_.end() || it->second.in_flight || now < it->second.next_due_ms) return;
    it->second.in_flight = true;
    it->second.next_due_ms = now + it->second.schedule.sampling_interval_ms;
    schedule = it->second.schedule;
  }
  bool queued = workers_.TryPost([this, stream, schedule, now] {
    const SnapshotOptions& options = schedule.encode;
    Result<Image> image = snapshots_.Render(stream, options);
    if (!image.ok()) {
      spdlog::warn("scheduled image of {}: {}", stream, image.status().ToString());
      return Done(stream, false);
    }
    int64_t at = schedule.producer_timestamps ? image->frame_timestamp_ms : now;
    std::string key = schedule.key_prefix + stream + "/" + std::to_string(at) + "." +
                      ImageExtension(image->format);
    auto bytes = std::make_shared<const std::string>(std::move(image->bytes));
    objects_.PutAsync(key, bytes, ImageContentType(image->format),
                      [this, stream, key](Status stored) {
                        if (!stored.ok())
                          spdlog::warn("scheduled image {}: {}", key, stored.ToString());
                        Done(stream, stored.ok());
                      });
  });
  if (!queued) Done(stream, false);
}

void ScheduledImages::Done(const std::string& stream, bool ok) {
  MutexLock lock(mu_);
  (ok ? written_ : failed_)++;
  if (auto it = streams_.find(stream); it != streams_.end()) it->second.in_flight = false;
}

uint64_t ScheduledImages::written() const {
  MutexLock lock(mu_);
  return written_;
}

uint64_t ScheduledImages::failed() const {
  MutexLock lock(mu_);
  return failed_;
}

}  // namespace lastframe::snapshot
