#include "core/stream_name.h"

#include <string>

namespace lastframe {

Status ValidateStreamName(std::string_view name) {
  if (name.empty() || name.size() > 256)
    return InvalidArgument("stream name must be 1 to 256 characters long",
                           Reason::kInvalidStreamName);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok)
      return InvalidArgument("stream name may contain only letters, digits, '_', '.' and '-'",
                             Reason::kInvalidStreamName);
  }
  // "." and ".." pass the character rule but name directories: refuse them so a
  // name can always be used as a path segment.
  if (name == "." || name == "..")
    return InvalidArgument("stream name may not be '.' or '..'", Reason::kInvalidStreamName);
  return Status::Ok();
}

}  // namespace lastframe
