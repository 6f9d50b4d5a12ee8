#pragma once

#include <functional>
#include <string>

#include "core/status.h"
#include "store/stream_store.h"

namespace lastframe::testing {

// Pushes |bytes| (a Matroska stream) into |store| as stream |stream| through
// the real push path (ingest::PushSession: demuxer, fragmenter, acks), and
// waits for it to end; |on_ack| (may be empty) sees each acknowledgement.
// For the unit tests of modules below ingest (store, snapshot), whose own code
// may not depend on it: the fragments they test are cut as producers' are.
Status PushBytes(store::StreamStore& store, const std::string& stream, const std::string& bytes,
                 std::function<void(std::string)> on_ack = {});

}  // namespace lastframe::testing
