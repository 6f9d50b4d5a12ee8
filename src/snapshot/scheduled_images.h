#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/worker_pool.h"
#include "objects/object_store.h"
#include "snapshot/snapshot_service.h"

namespace lastframe::snapshot {

// One stream's image generation (Kinesis Video's UpdateImageGenerationConfiguration).
struct ImageSchedule {
  int64_t sampling_interval_ms = 3000;
  bool producer_timestamps = false;  // name images by producer (else server) time
  SnapshotOptions encode;            // format, quality, size (0: the stream's)
  std::string key_prefix;            // "" or "cams/" ('/' added if missing)
};

// Writes images of streams to the object store as frames arrive, without a
// request: at most one per sampling interval per stream, named
// "<prefix><stream>/<frame epoch ms>.<ext>". Renders run on the worker pool
// (a full queue skips a sample rather than wait); uploads on the store's own
// threads. Thread-safe.
class ScheduledImages {
 public:
  ScheduledImages(SnapshotService& snapshots, objects::ObjectStore& objects, WorkerPool& workers,
                  const Clock& clock);

  void Set(const std::string& stream, ImageSchedule schedule);
  void Remove(const std::string& stream);
  // A frame arrived on |stream| (the store's frame observer).
  void OnFrame(const std::string& stream);

  // Images written, and samples skipped or failed, since start.
  uint64_t written() const;
  uint64_t failed() const;

 private:
  struct State {
    ImageSchedule schedule;
    int64_t next_due_ms = 0;
    bool in_flight = false;
  };
  void Done(const std::string& stream, bool ok);

  SnapshotService& snapshots_;
  objects::ObjectStore& objects_;
  WorkerPool& workers_;
  const Clock& clock_;
  mutable Mutex mu_;
  std::map<std::string, State, std::less<>> streams_ LF_GUARDED_BY(mu_);
  uint64_t written_ LF_GUARDED_BY(mu_) = 0;
  uint64_t failed_ LF_GUARDED_BY(mu_) = 0;
};

}  // namespace lastframe::snapshot
