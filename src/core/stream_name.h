#pragma once

#include <string_view>

#include "core/status.h"

namespace lastframe {

// Validates a stream name by Kinesis Video's rule: [a-zA-Z0-9_.-]{1,256}.
// Returns InvalidArgument (reason "InvalidStreamName") otherwise.
Status ValidateStreamName(std::string_view name);

}  // namespace lastframe
