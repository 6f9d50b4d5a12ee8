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
  Response res = JsonError(NotFound("no stream named 'x'", "StreamNotFound"));
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
  Response res = S3Error(Status(Code::kPermissionDenied, "a <b> & 'c'", "AccessDenied"), "/b/k&1");
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/xml");
  EXPECT_NE(res.body().find("<Code>AccessDenied</Code>"), std::string::npos);
  EXPECT_NE(res.body().find("a &lt;b&gt; &amp; &apos;c&apos;"), std::string::npos);
  EXPECT_NE(res.body().find("<Resource>/b/k&amp;1</Resource>"), std::string::npos);
}

}  // namespace
}  // namespace lastframe::http
