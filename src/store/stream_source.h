#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/fragment.h"

namespace lastframe::store {

// Which fragments of a stream a range read wants.
struct FragmentQuery {
  enum class Timeline { kProducer, kServer };
  enum class Match {
    kOverlaps,      // the fragment's span overlaps [start, end]; touching start is not overlapping
    kTouches,       // the same, touching included (a frame shown at |start| counts)
    kStartsWithin,  // the fragment begins within [start, end] (Kinesis Video's ListFragments)
  };
  Timeline timeline = Timeline::kProducer;
  Match match = Match::kOverlaps;
  int64_t start_ms = std::numeric_limits<int64_t>::min();
  int64_t end_ms = std::numeric_limits<int64_t>::max();
  uint64_t first_number = 0;   // only fragments numbered at least this
  bool complete_only = false;  // leave out a fragment still arriving
  // false: the fragments' numbers, times and sizes are enough: the answer
  // carries no media (frames empty, codec null), so a remote source fetches
  // none and the embedded store reads no fragment file back.
  bool with_frames = true;

  // Whether |f|'s times are ones this query wants (numbers and completeness aside).
  bool InRange(const FragmentView& f) const {
    const int64_t begin = timeline == Timeline::kServer ? f.server_ts_ms : f.producer_ts_ms;
    switch (match) {
      case Match::kOverlaps:
        return begin + f.duration_ms > start_ms && begin <= end_ms;
      case Match::kTouches:
        return begin + f.duration_ms >= start_ms && begin <= end_ms;
      case Match::kStartsWithin:
        return begin >= start_ms && begin <= end_ms;
    }
    return false;
  }
  // Whether |f| is one this query wants.
  bool Wants(const FragmentView& f) const {
    return f.number >= first_number && (f.complete || !complete_only) && InRange(f);
  }
};

// Where video is read from: the embedded store, or a remote Kinesis Video
// endpoint (kvs::KvsSource). Snapshots, clips, fragment listings and the
// Kinesis Video archived-media operations all read through it.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The newest fragment of |stream|, including one still arriving. NotFound
  // ("StreamNotFound") for an unknown stream, NotFound ("NoFrame") when the
  // stream has no frame retained.
  virtual Result<FragmentView> LatestFragment(std::string_view stream) const = 0;

  using FragmentCallback = std::function<void(Result<FragmentView>)>;
  // The same, answered through |done| exactly once: at once when the answer
  // is at hand, else from a thread of the source's own (a remote source that
  // must go to the network never blocks its caller, an I/O thread).
  virtual void LatestFragmentAsync(std::string_view stream, FragmentCallback done) const {
    done(LatestFragment(stream));
  }

  // The fragments of |stream| that |query| wants, oldest first. NotFound
  // ("StreamNotFound") for an unknown stream; an empty list when none match.
  virtual Result<std::vector<FragmentView>> Fragments(std::string_view stream,
                                                      const FragmentQuery& query) const = 0;
  // The fragments numbered |numbers| with their frames, in that order.
  // NotFound ("FragmentNotFound") naming the first one not retained.
  virtual Result<std::vector<FragmentView>> FragmentsByNumber(
      std::string_view stream, const std::vector<uint64_t>& numbers) const = 0;

  using FragmentsCallback = std::function<void(Result<std::vector<FragmentView>>)>;
  // As above, answered through |done| exactly once, as LatestFragmentAsync is.
  virtual void FragmentsAsync(std::string_view stream, const FragmentQuery& query,
                              FragmentsCallback done) const {
    done(Fragments(stream, query));
  }
  virtual void FragmentsByNumberAsync(std::string_view stream, const std::vector<uint64_t>& numbers,
                                      FragmentsCallback done) const {
    done(FragmentsByNumber(stream, numbers));
  }
};

}  // namespace lastframe::store
