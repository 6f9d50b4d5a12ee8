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

Result<std::string> StreamNameOfArn(std::string_view arn) {
  auto bad = [] {
    return InvalidArgument("StreamARN is not a Kinesis Video stream ARN", Reason::kInvalidArgument);
  };
  // arn : partition : kinesisvideo : region : account : stream/NAME/CREATION
  size_t at = 0;
  std::string_view parts[6];
  for (int i = 0; i < 5; ++i) {
    size_t colon = arn.find(':', at);
    if (colon == std::string_view::npos) return bad();
    parts[i] = arn.substr(at, colon - at);
    at = colon + 1;
  }
  parts[5] = arn.substr(at);
  if (parts[0] != "arn" || parts[2] != "kinesisvideo" || !parts[5].starts_with("stream/"))
    return bad();
  std::string_view rest = parts[5].substr(7);
  size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size()) return bad();
  std::string name(rest.substr(0, slash));
  if (Status s = ValidateStreamName(name); !s.ok()) return s;
  return name;
}

}  // namespace lastframe
