#pragma once

#include <cassert>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace lastframe {

// The domain error codes of lastframe. Each maps to exactly one HTTP status, in
// http/errors.cpp; nothing else decides statuses.
enum class Code {
  kOk,
  kInvalidArgument,   // the caller sent something malformed or out of range
  kNotFound,          // no such stream, object or frame
  kUnauthenticated,   // missing or unverifiable credentials
  kPermissionDenied,  // credentials verified but not allowed (expired URL)
  kConflict,          // the resource is held by someone else (a stream's producer)
  kTooLarge,          // a body or field over its limit
  kOverloaded,        // bounded queue full; retry later
  kUnavailable,       // a dependency is down
  kUpstreamFailed,    // a dependency answered with an error
  kTimeout,           // a dependency did not answer in time
  kMediaError,        // the media itself cannot be decoded
  kInternal,          // a broken invariant: a bug
};

// Returns the stable machine-readable name of |code| ("InvalidArgument", ...).
std::string_view CodeName(Code code);

// Why a call failed, finer than its Code: what code branches on, and the
// machine-readable name clients script against (the "code" of a JSON error).
// The names are lastframe's; the HTTP, S3 and Kinesis Video layers each map
// them to their protocol's errors in one place (http/errors.cpp,
// http/kvs_api.cpp). A Status made without one has its Code's (kNotFound...).
enum class Reason : uint16_t {
  kNone,
  kAccessDenied,
  kArchivalError,
  kAuthorizationHeaderMalformed,
  kAuthorizationQueryParametersError,
  kBadDigest,
  kBadSignature,
  kBucketAlreadyOwnedByYou,
  kClipTooLarge,
  kConflict,
  kCredentialScopeMismatch,
  kEmptyBody,
  kEntityTooLarge,
  kEntityTooSmall,
  kForbidden,
  kFragmentNotFound,
  kIncompleteBody,
  kIncompleteSignature,
  kInternal,
  kInvalidAccessKeyId,
  kInvalidArgument,
  kInvalidChunkSizeError,
  kInvalidDigest,
  kInvalidKey,
  kInvalidMkvData,
  kInvalidPart,
  kInvalidPartOrder,
  kInvalidRange,
  kInvalidRequest,
  kInvalidSourceUrl,
  kInvalidStreamName,
  kInvalidToken,
  kKvsError,
  kKvsTimeout,
  kKvsUnavailable,
  kMalformedTrailerError,
  kMalformedXML,
  kMaxFragmentSizeReached,
  kMediaError,
  kMethodNotAllowed,
  kMissingContentLength,
  kMissingParameter,
  kMoreThanAllowedTracksFound,
  kNoDataRetention,
  kNoFragments,
  kNoFrame,
  kNoMedia,
  kNoSignature,
  kNoSuchBucket,
  kNoSuchKey,
  kNoSuchUpload,
  kNotFound,
  kNotImplemented,
  kObjectKeyConflict,
  kObjectStoreBusy,
  kObjectStoreError,
  kObjectStoreUnavailable,
  kOverloaded,
  kPermissionDenied,
  kPreconditionFailed,
  kPullAddressDenied,
  kRequestTimeTooSkewed,
  kRequestTimeout,
  kSignatureDoesNotMatch,
  kSlowDown,
  kSourceNotFound,
  kSourceTimeout,
  kSourceUnavailable,
  kStaleFrame,
  kStopping,
  kStreamBusy,
  kStreamDeleted,
  kStreamExists,
  kStreamNotFound,
  kStreamReadError,
  kTimeout,
  kTooLarge,
  kTooManyFragments,
  kTooManyGetMediaConnections,
  kTooManyPixels,
  kTooManyProducers,
  kTooManyPulls,
  kTooManyStreams,
  kTooManyTags,
  kUnauthenticated,
  kUnauthorized,
  kUnavailable,
  kUnknownCredentials,
  kUpstreamFailed,
  kVersionMismatch,
  kXAmzContentSHA256Mismatch,
};

// The stable name of |reason| ("StreamNotFound", ...).
std::string_view ReasonName(Reason reason);
// The Reason named as CodeName(code) names |code|: a Status's reason when none was given.
Reason ReasonOf(Code code);
// For test failure messages.
std::ostream& operator<<(std::ostream& out, Reason reason);

// Status is the outcome of a fallible call: kOk, or an error code with a
// typed reason (defaults to its Code's) and a human message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, Reason reason = Reason::kNone)
      : code_(code),
        message_(std::move(message)),
        reason_(reason == Reason::kNone ? ReasonOf(code) : reason) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  Reason reason() const { return reason_; }
  // The stable error name callers script against.
  std::string reason_name() const { return std::string(ReasonName(reason_)); }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  Reason reason_ = Reason::kNone;
};

inline Status InvalidArgument(std::string message, Reason reason = Reason::kNone) {
  return {Code::kInvalidArgument, std::move(message), std::move(reason)};
}
inline Status NotFound(std::string message, Reason reason = Reason::kNone) {
  return {Code::kNotFound, std::move(message), std::move(reason)};
}
inline Status Internal(std::string message) { return {Code::kInternal, std::move(message)}; }

// Result<T> holds either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lastframe

// Returns early from the enclosing function when |expr| is a non-ok Status.
#define LF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::lastframe::Status lf_status_ = (expr); \
    if (!lf_status_.ok()) return lf_status_; \
  } while (0)
