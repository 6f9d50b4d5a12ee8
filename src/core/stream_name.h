#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace lastframe {

// Validates a stream name by Kinesis Video's rule: [a-zA-Z0-9_.-]{1,256}.
// Returns InvalidArgument (reason "InvalidStreamName") otherwise.
Status ValidateStreamName(std::string_view name);

// NAME of a Kinesis Video stream ARN,
// arn:PARTITION:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION (PutMedia's x-amzn-stream-arn, a
// body's StreamARN), checked as a stream name. InvalidArgument when |arn| has another shape or NAME
// is no stream name.
Result<std::string> StreamNameOfArn(std::string_view arn);

}  // namespace lastframe
