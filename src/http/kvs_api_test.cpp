#include "http/kvs_api.h"

#include <gtest/gtest.h>

namespace lastframe::http {
namespace {

struct Case {
  Status error;
  unsigned status;
  std::string_view type;
};

// Kinesis Video's statuses and error types for what the service and the
// signature check report, as the AWS SDKs expect them.
TEST(KvsErrorKindOf, MapsOurReasonsAndCodesToKinesisVideosErrors) {
  const Case cases[] = {
      {Status(Code::kNotFound, "m", Reason::kStreamNotFound), 404, "ResourceNotFoundException"},
      {Status(Code::kNotFound, "m", Reason::kFragmentNotFound), 404, "ResourceNotFoundException"},
      {Status(Code::kNotFound, "m", Reason::kNoFragments), 404, "ResourceNotFoundException"},
      {Status(Code::kConflict, "m", Reason::kStreamExists), 400, "ResourceInUseException"},
      {Status(Code::kConflict, "m", Reason::kStreamBusy), 400, "ResourceInUseException"},
      {Status(Code::kInvalidArgument, "m", Reason::kVersionMismatch), 400,
       "VersionMismatchException"},
      {Status(Code::kInvalidArgument, "m", Reason::kNoDataRetention), 400,
       "NoDataRetentionException"},
      {Status(Code::kInvalidArgument, "m", Reason::kTooManyTags), 400,
       "TagsPerResourceExceededLimitException"},
      {Status(Code::kOverloaded, "m", Reason::kTooManyStreams), 400,
       "AccountStreamLimitExceededException"},
      {Status(Code::kOverloaded, "m", Reason::kTooManyGetMediaConnections), 400,
       "ConnectionLimitExceededException"},
      {Status(Code::kOverloaded, "the workers are busy"), 400, "ClientLimitExceededException"},
      {Status(Code::kInvalidArgument, "m"), 400, "InvalidArgumentException"},
      {Status(Code::kTooLarge, "m", Reason::kClipTooLarge), 400, "InvalidArgumentException"},
      {Status(Code::kMediaError, "m"), 400, "InvalidMediaFrameException"},
      {Status(Code::kUnavailable, "stopping", Reason::kStopping), 503,
       "ServiceUnavailableException"},
      {Status(Code::kUpstreamFailed, "m", Reason::kKvsError), 503, "ServiceUnavailableException"},
      {Status(Code::kTimeout, "m"), 503, "ServiceUnavailableException"},
      {Status(Code::kUnauthenticated, "m", Reason::kNoSignature), 403,
       "MissingAuthenticationTokenException"},
      {Status(Code::kUnauthenticated, "m", Reason::kUnknownCredentials), 403,
       "UnrecognizedClientException"},
      {Status(Code::kUnauthenticated, "m", Reason::kBadSignature), 403,
       "InvalidSignatureException"},
      {Status(Code::kInvalidArgument, "m", Reason::kIncompleteSignature), 400,
       "IncompleteSignatureException"},
      {Internal("a bug"), 500, "InternalFailure"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error.ToString());
    KvsErrorKind kind = KvsErrorKindOf(c.error);
    EXPECT_EQ(kind.status, c.status);
    EXPECT_EQ(kind.type, c.type);
  }
}

TEST(KvsErrorOf, AnswersWithTheTypeAndAMessage) {
  Response r = KvsErrorOf(
      NotFound("The requested stream cam is not found or not active.", Reason::kStreamNotFound));
  EXPECT_EQ(r.result_int(), 404u);
  EXPECT_EQ(r["x-amzn-ErrorType"], "ResourceNotFoundException");
  EXPECT_FALSE(r["x-amzn-RequestId"].empty());
  EXPECT_EQ(
      r.body(),
      std::string(R"({"message":"The requested stream cam is not found or not active."})") + "\n");
}

}  // namespace
}  // namespace lastframe::http
