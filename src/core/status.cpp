#include "core/status.h"

namespace lastframe {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "Ok";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotFound:
      return "NotFound";
    case Code::kUnauthenticated:
      return "Unauthenticated";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kConflict:
      return "Conflict";
    case Code::kTooLarge:
      return "TooLarge";
    case Code::kOverloaded:
      return "Overloaded";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kUpstreamFailed:
      return "UpstreamFailed";
    case Code::kTimeout:
      return "Timeout";
    case Code::kMediaError:
      return "MediaError";
    case Code::kInternal:
      return "Internal";
  }
  return "Internal";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return reason() + ": " + message_;
}

}  // namespace lastframe
