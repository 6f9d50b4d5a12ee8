#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/worker_pool.h"
#include "store/shared_archive.h"
#include "store/stream_source.h"
#include "store/stream_store.h"

namespace lastframe::store {

struct ArchivedSourceOptions {
  // How far back the archive is read: the store's retention (--retention).
  // Older objects stay in the bucket (its lifecycle rule bounds them), unread,
  // as the local files past retention are gone.
  int64_t retention_ms = 60'000;
  size_t fetch_threads = 4;  // archive reads in parallel (network waits)
  size_t max_queued = 1024;  // waiting past it: Overloaded
  // Fragments with frames one read fetches from the archive at most, and
  // their bytes: a read past either is refused (TooLarge), never cut short.
  size_t max_fetched_fragments = 1000;
  uint64_t max_fetched_bytes = 512ull << 20;
};

// What a node reads with `--archive`: its own StreamStore, the fast tier,
// with the shared archive (every node's PERSISTED fragments) behind it.
//   - A stream this node does not hold is read from the archive alone:
//     listed (no GET), and its fragments fetched only when frames are wanted.
//   - A range that reaches back before the oldest fragment this node holds of
//     a stream (a stream that came here from a node that died) is this node's
//     fragments and the archive's, one of each number (this node's first).
//   - FragmentsByNumber: numbers this node does not hold come from the archive.
//   - LatestFragment: this node's newest; for a stream it holds no frame of,
//     the archive's newest.
// Reads that go to the archive run on the source's own threads in the Async
// variants (never on the caller's, an I/O thread); what this node holds is
// answered as StreamStore answers it. The archive is read back to
// ArchivedSourceOptions::retention_ms.
class ArchivedSource final : public StreamSource {
 public:
  ArchivedSource(const StreamStore& local, const SharedArchive& archive, const Clock& clock,
                 ArchivedSourceOptions options = {});
  ~ArchivedSource() override;  // finishes the queued reads

  Result<FragmentView> LatestFragment(std::string_view stream) const override;
  void LatestFragmentAsync(std::string_view stream, FragmentCallback done) const override;
  Result<std::vector<FragmentView>> Fragments(std::string_view stream,
                                              const FragmentQuery& query) const override;
  Result<std::vector<FragmentView>> FragmentsByNumber(
      std::string_view stream, const std::vector<uint64_t>& numbers) const override;
  void FragmentsAsync(std::string_view stream, const FragmentQuery& query,
                      FragmentsCallback done) const override;
  void FragmentsByNumberAsync(std::string_view stream, const std::vector<uint64_t>& numbers,
                              FragmentsCallback done) const override;

  // Takes no more reads and finishes those queued (their callers are answered).
  void Stop();

 private:
  // Whether |query| of |stream| needs the archive: the stream is not held
  // here, or the range starts before the oldest fragment held here.
  bool NeedsArchive(std::string_view stream, const FragmentQuery& query) const;
  // The archive's listing of |stream| back to the retention.
  Result<std::vector<FragmentView>> ListArchive(std::string_view stream) const;
  // |fragments| of |stream| (from ListArchive) with their frames, within the bounds.
  Result<std::vector<FragmentView>> FetchFrames(std::string_view stream,
                                                std::vector<FragmentView> fragments) const;
  // Runs |work| on a fetch thread; Overloaded through |done| when the queue is full.
  void Post(std::function<void()> work, const std::function<void(Status)>& fail) const;

  const StreamStore& local_;
  const SharedArchive& archive_;
  const Clock& clock_;
  const ArchivedSourceOptions options_;
  mutable WorkerPool fetchers_;
};

}  // namespace lastframe::store
