#pragma once

#include <functional>
#include <string_view>

#include "core/status.h"
#include "store/fragment.h"

namespace lastframe::store {

// Where snapshots read video from: the embedded store, or a remote Kinesis
// Video endpoint (kvs::KvsSource).
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
};

}  // namespace lastframe::store
