#include "http/errors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/kvs_api.h"

namespace lastframe::http {
namespace {

TEST(Errors, EveryCodeHasItsStatus) {
  EXPECT_EQ(HttpStatusOf(Code::kInvalidArgument), 400u);
  EXPECT_EQ(HttpStatusOf(Code::kUnauthenticated), 401u);
  EXPECT_EQ(HttpStatusOf(Code::kPermissionDenied), 403u);
  EXPECT_EQ(HttpStatusOf(Code::kNotFound), 404u);
  EXPECT_EQ(HttpStatusOf(Code::kConflict), 409u);
  EXPECT_EQ(HttpStatusOf(Code::kTooLarge), 413u);
  EXPECT_EQ(HttpStatusOf(Code::kMediaError), 422u);
  EXPECT_EQ(HttpStatusOf(Code::kOverloaded), 429u);
  EXPECT_EQ(HttpStatusOf(Code::kInternal), 500u);
  EXPECT_EQ(HttpStatusOf(Code::kUpstreamFailed), 502u);
  EXPECT_EQ(HttpStatusOf(Code::kUnavailable), 503u);
}

TEST(Errors, JsonErrorCarriesCodeAndMessage) {
  Response res = JsonError(NotFound("no stream named 'x'", Reason::kStreamNotFound));
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["code"], "StreamNotFound");
  EXPECT_EQ(j["message"], "no stream named 'x'");
}

TEST(Errors, MessagesQuotingBytesThatAreNotUtf8AreStillJson) {
  // Found by fuzz/kvs_api: "unknown part '\xad'" (an Authorization header's
  // bytes) made nlohmann::json throw, which ended the server.
  Response res = JsonError(InvalidArgument("unknown part '\xad'"));
  auto j = nlohmann::json::parse(res.body(), nullptr, false);
  ASSERT_TRUE(j.is_object()) << res.body();
  EXPECT_EQ(j["message"], "unknown part '\xEF\xBF\xBD'");  // U+FFFD
  Response kvs = KvsError(400, "IncompleteSignatureException", "bad \xff\xfe");
  EXPECT_TRUE(nlohmann::json::parse(kvs.body(), nullptr, false).is_object()) << kvs.body();
}

TEST(Errors, OverloadTellsWhenToRetry) {
  Response res = JsonError(Status(Code::kOverloaded, "busy"));
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(res[boost::beast::http::field::retry_after], "1");
}

TEST(Errors, S3ErrorsAreEscapedXml) {
  Response res =
      S3Error(Status(Code::kPermissionDenied, "a <b> & 'c'", Reason::kAccessDenied), "/b/k&1");
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/xml");
  EXPECT_NE(res.body().find("<Code>AccessDenied</Code>"), std::string::npos);
  EXPECT_NE(res.body().find("a &lt;b&gt; &amp; &apos;c&apos;"), std::string::npos);
  EXPECT_NE(res.body().find("<Resource>/b/k&amp;1</Resource>"), std::string::npos);
}

TEST(Errors, S3ErrorKindOfIsS3sStatusAndName) {
  struct Case {
    Status error;
    unsigned status;
    std::string_view code;
  };
  const Case cases[] = {
      {NotFound("m", Reason::kNoSuchKey), 404, "NoSuchKey"},
      {NotFound("m", Reason::kNoSuchBucket), 404, "NoSuchBucket"},
      {Status(Code::kPermissionDenied, "m", Reason::kSignatureDoesNotMatch), 403,
       "SignatureDoesNotMatch"},
      {Status(Code::kTooLarge, "m", Reason::kEntityTooLarge), 400, "EntityTooLarge"},
      {Status(Code::kInvalidArgument, "m", Reason::kInvalidRange), 416, "InvalidRange"},
      {Status(Code::kInvalidArgument, "m", Reason::kNotImplemented), 501, "NotImplemented"},
      {Status(Code::kInvalidArgument, "m", Reason::kMethodNotAllowed), 405, "MethodNotAllowed"},
      {Status(Code::kInvalidArgument, "m", Reason::kMissingContentLength), 411,
       "MissingContentLength"},
      {Status(Code::kInvalidArgument, "m", Reason::kPreconditionFailed), 412, "PreconditionFailed"},
      {Status(Code::kUnavailable, "m", Reason::kSlowDown), 503, "SlowDown"},
      // SigV4's wrong scope: S3 calls it a malformed header (Kinesis Video, a bad signature).
      {Status(Code::kInvalidArgument, "m", Reason::kCredentialScopeMismatch), 400,
       "AuthorizationHeaderMalformed"},
      {Status(Code::kInvalidArgument, "m"), 400, "InvalidArgument"},
      {Internal("a bug"), 500, "Internal"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error.ToString());
    S3ErrorKind kind = S3ErrorKindOf(c.error);
    EXPECT_EQ(kind.status, c.status);
    EXPECT_EQ(kind.code, c.code);
    Response res = S3Error(c.error, "/b/k");
    EXPECT_EQ(res.result_int(), c.status);
    EXPECT_NE(res.body().find("<Code>" + std::string(c.code) + "</Code>"), std::string::npos);
  }
}

TEST(Errors, JsonErrorsNameTheReasonOrTheCode) {
  EXPECT_EQ(nlohmann::json::parse(JsonError(Status(Code::kConflict, "m")).body())["code"],
            "Conflict");
  Response scoped =
      JsonError(Status(Code::kInvalidArgument, "m", Reason::kCredentialScopeMismatch));
  EXPECT_EQ(scoped.result_int(), 400u);
  EXPECT_EQ(nlohmann::json::parse(scoped.body())["code"], "CredentialScopeMismatch");
}

}  // namespace
}  // namespace lastframe::http
