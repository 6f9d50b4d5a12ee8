#pragma once

#include <string_view>

#include "core/status.h"
#include "store/fragment.h"

namespace lastframe::store {

// Where snapshots read video from: the embedded store, or (later) a remote
// Kinesis Video endpoint.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The newest fragment of |stream|, including one still arriving. NotFound
  // ("StreamNotFound") for an unknown stream, NotFound ("NoFrame") when the
  // stream has no frame retained.
  virtual Result<FragmentView> LatestFragment(std::string_view stream) const = 0;
};

}  // namespace lastframe::store
