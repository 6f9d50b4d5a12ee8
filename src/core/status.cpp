#include "core/status.h"

#include <ostream>

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

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kNone:
      return "Ok";
    case Reason::kAccessDenied:
      return "AccessDenied";
    case Reason::kArchivalError:
      return "ArchivalError";
    case Reason::kAuthorizationHeaderMalformed:
      return "AuthorizationHeaderMalformed";
    case Reason::kAuthorizationQueryParametersError:
      return "AuthorizationQueryParametersError";
    case Reason::kBadDigest:
      return "BadDigest";
    case Reason::kBadSignature:
      return "BadSignature";
    case Reason::kBucketAlreadyOwnedByYou:
      return "BucketAlreadyOwnedByYou";
    case Reason::kClipTooLarge:
      return "ClipTooLarge";
    case Reason::kConflict:
      return "Conflict";
    case Reason::kCredentialScopeMismatch:
      return "CredentialScopeMismatch";
    case Reason::kEmptyBody:
      return "EmptyBody";
    case Reason::kEntityTooLarge:
      return "EntityTooLarge";
    case Reason::kEntityTooSmall:
      return "EntityTooSmall";
    case Reason::kForbidden:
      return "Forbidden";
    case Reason::kFragmentNotFound:
      return "FragmentNotFound";
    case Reason::kIncompleteBody:
      return "IncompleteBody";
    case Reason::kIncompleteSignature:
      return "IncompleteSignature";
    case Reason::kInternal:
      return "Internal";
    case Reason::kInvalidAccessKeyId:
      return "InvalidAccessKeyId";
    case Reason::kInvalidArgument:
      return "InvalidArgument";
    case Reason::kInvalidChunkSizeError:
      return "InvalidChunkSizeError";
    case Reason::kInvalidDigest:
      return "InvalidDigest";
    case Reason::kInvalidKey:
      return "InvalidKey";
    case Reason::kInvalidMkvData:
      return "InvalidMkvData";
    case Reason::kInvalidPart:
      return "InvalidPart";
    case Reason::kInvalidPartOrder:
      return "InvalidPartOrder";
    case Reason::kInvalidRange:
      return "InvalidRange";
    case Reason::kInvalidRequest:
      return "InvalidRequest";
    case Reason::kInvalidSourceUrl:
      return "InvalidSourceUrl";
    case Reason::kInvalidStreamName:
      return "InvalidStreamName";
    case Reason::kInvalidToken:
      return "InvalidToken";
    case Reason::kKvsError:
      return "KvsError";
    case Reason::kKvsTimeout:
      return "KvsTimeout";
    case Reason::kKvsUnavailable:
      return "KvsUnavailable";
    case Reason::kMalformedTrailerError:
      return "MalformedTrailerError";
    case Reason::kMalformedXML:
      return "MalformedXML";
    case Reason::kMaxFragmentSizeReached:
      return "MaxFragmentSizeReached";
    case Reason::kMediaError:
      return "MediaError";
    case Reason::kMethodNotAllowed:
      return "MethodNotAllowed";
    case Reason::kMissingContentLength:
      return "MissingContentLength";
    case Reason::kMissingParameter:
      return "MissingParameter";
    case Reason::kMoreThanAllowedTracksFound:
      return "MoreThanAllowedTracksFound";
    case Reason::kNoDataRetention:
      return "NoDataRetention";
    case Reason::kNoFragments:
      return "NoFragments";
    case Reason::kNoFrame:
      return "NoFrame";
    case Reason::kNoMedia:
      return "NoMedia";
    case Reason::kNoSignature:
      return "NoSignature";
    case Reason::kNoSuchBucket:
      return "NoSuchBucket";
    case Reason::kNoSuchKey:
      return "NoSuchKey";
    case Reason::kNoSuchUpload:
      return "NoSuchUpload";
    case Reason::kNotFound:
      return "NotFound";
    case Reason::kNotImplemented:
      return "NotImplemented";
    case Reason::kObjectKeyConflict:
      return "ObjectKeyConflict";
    case Reason::kObjectStoreBusy:
      return "ObjectStoreBusy";
    case Reason::kObjectStoreError:
      return "ObjectStoreError";
    case Reason::kObjectStoreUnavailable:
      return "ObjectStoreUnavailable";
    case Reason::kOverloaded:
      return "Overloaded";
    case Reason::kPermissionDenied:
      return "PermissionDenied";
    case Reason::kPreconditionFailed:
      return "PreconditionFailed";
    case Reason::kPullAddressDenied:
      return "PullAddressDenied";
    case Reason::kRequestTimeTooSkewed:
      return "RequestTimeTooSkewed";
    case Reason::kRequestTimeout:
      return "RequestTimeout";
    case Reason::kSignatureDoesNotMatch:
      return "SignatureDoesNotMatch";
    case Reason::kSlowDown:
      return "SlowDown";
    case Reason::kSourceNotFound:
      return "SourceNotFound";
    case Reason::kSourceTimeout:
      return "SourceTimeout";
    case Reason::kSourceUnavailable:
      return "SourceUnavailable";
    case Reason::kStaleFrame:
      return "StaleFrame";
    case Reason::kStopping:
      return "Stopping";
    case Reason::kStreamBusy:
      return "StreamBusy";
    case Reason::kStreamDeleted:
      return "StreamDeleted";
    case Reason::kStreamExists:
      return "StreamExists";
    case Reason::kStreamNotFound:
      return "StreamNotFound";
    case Reason::kStreamReadError:
      return "StreamReadError";
    case Reason::kTimeout:
      return "Timeout";
    case Reason::kTooLarge:
      return "TooLarge";
    case Reason::kTooManyFragments:
      return "TooManyFragments";
    case Reason::kTooManyGetMediaConnections:
      return "TooManyGetMediaConnections";
    case Reason::kTooManyPixels:
      return "TooManyPixels";
    case Reason::kTooManyProducers:
      return "TooManyProducers";
    case Reason::kTooManyPulls:
      return "TooManyPulls";
    case Reason::kTooManyStreams:
      return "TooManyStreams";
    case Reason::kTooManyTags:
      return "TooManyTags";
    case Reason::kUnauthenticated:
      return "Unauthenticated";
    case Reason::kUnauthorized:
      return "Unauthorized";
    case Reason::kUnavailable:
      return "Unavailable";
    case Reason::kUnknownCredentials:
      return "UnknownCredentials";
    case Reason::kUpstreamFailed:
      return "UpstreamFailed";
    case Reason::kVersionMismatch:
      return "VersionMismatch";
    case Reason::kXAmzContentSHA256Mismatch:
      return "XAmzContentSHA256Mismatch";
  }
  return "UnknownReason";  // not a Reason: past the last one
}

Reason ReasonOf(Code code) {
  switch (code) {
    case Code::kOk:
      return Reason::kNone;
    case Code::kInvalidArgument:
      return Reason::kInvalidArgument;
    case Code::kNotFound:
      return Reason::kNotFound;
    case Code::kUnauthenticated:
      return Reason::kUnauthenticated;
    case Code::kPermissionDenied:
      return Reason::kPermissionDenied;
    case Code::kConflict:
      return Reason::kConflict;
    case Code::kTooLarge:
      return Reason::kTooLarge;
    case Code::kOverloaded:
      return Reason::kOverloaded;
    case Code::kUnavailable:
      return Reason::kUnavailable;
    case Code::kUpstreamFailed:
      return Reason::kUpstreamFailed;
    case Code::kTimeout:
      return Reason::kTimeout;
    case Code::kMediaError:
      return Reason::kMediaError;
    case Code::kInternal:
      return Reason::kInternal;
  }
  return Reason::kInternal;
}

std::ostream& operator<<(std::ostream& out, Reason reason) { return out << ReasonName(reason); }

std::string Status::ToString() const {
  if (ok()) return "OK";
  return reason_name() + ": " + message_;
}

}  // namespace lastframe
