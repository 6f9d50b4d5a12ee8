// The dashboard over real HTTP (issue 16): GET / and /ui/... open to anyone
// with their CSP and caching, GET / with S3's credentials still S3's
// ListBuckets, the sign-in and its cookie as a credential for reads only, with
// the key's role and glob, and every refused caller: a bad key at sign-in, a
// forged, unknown, signed-out or revoked session, a cookie on a write.
// (tests/e2e/ui_browser_test.cpp drives the page itself in Chromium.)

#include <filesystem>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;
using Headers = std::map<std::string, std::string>;

std::string IdOf(const std::string& token) { return token.substr(3, token.find('_', 3) - 3); }

class UiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.file("data");
    admin_ = MakeKey(data_, {"--role", "admin"});
    viewer_ = MakeKey(data_, {"--role", "viewer", "--streams", "cam*"});
    server_ = std::make_unique<LastframeServer>(
        data_, std::vector<std::string>{"--auth", "on", "--access-key", kAccessKey, "--secret-key",
                                        kSecretKey, "--retention", "600"});
    std::string clip = ReadFile(TestClip(dir_, "clip.mkv", 160, 120, 10, 2, 10));
    for (const std::string stream : {"cam1", "other"})
      ASSERT_EQ(HttpRequest(port(), "POST", "/putMedia", clip,
                            {{"x-amzn-stream-name", stream}, {"Authorization", "Bearer " + admin_}})
                    .status,
                200);
  }
  uint16_t port() const { return server_->port(); }

  // Signs in with |key|; the response (its Set-Cookie holds the session).
  HttpResult SignIn(const std::string& key, const Headers& extra = {}) {
    Headers h = {{"Content-Type", "application/json"}};
    h.insert(extra.begin(), extra.end());
    return HttpRequest(port(), "POST", "/ui/session", json{{"key", key}}.dump(), h);
  }
  // The lf_session token a sign-in set.
  static std::string TokenOf(const HttpResult& r) {
    std::string cookie = r.header("set-cookie");
    EXPECT_EQ(cookie.rfind("lf_session=", 0), 0u) << cookie;
    return cookie.substr(11, cookie.find(';') - 11);
  }
  HttpResult WithCookie(const std::string& method, const std::string& target,
                        const std::string& token, const std::string& body = "") {
    return HttpRequest(port(), method, target, body, {{"Cookie", "lf_session=" + token}});
  }

  TempDir dir_;
  std::string data_, admin_, viewer_;
  std::unique_ptr<LastframeServer> server_;
};

TEST_F(UiTest, ThePageAndItsAssetsAreOpenWithTheirCspAndCaching) {
  HttpResult page = HttpRequest(port(), "GET", "/", "", {});
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.header("cache-control"), "no-cache");
  EXPECT_NE(page.header("content-security-policy").find("default-src 'self'"), std::string::npos);
  EXPECT_NE(page.body.find("<title>lastframe</title>"), std::string::npos);
  size_t at = page.body.find("/ui/app.js?v=");
  ASSERT_NE(at, std::string::npos);
  std::string js_url = page.body.substr(at, page.body.find('"', at) - at);
  HttpResult js = HttpRequest(port(), "GET", js_url, "", {});
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.header("cache-control"), "public, max-age=31536000, immutable");
  HttpResult revalidated =
      HttpRequest(port(), "GET", "/ui/app.js", "", {{"If-None-Match", js.header("etag")}});
  EXPECT_EQ(revalidated.status, 304);
  EXPECT_EQ(HttpRequest(port(), "GET", "/ui/app.css", "", {}).header("content-type"),
            "text/css; charset=utf-8");
  HttpResult head = HttpRequest(port(), "HEAD", "/", "", {});
  EXPECT_EQ(head.status, 200);
  // Unknown paths and other methods, as every route answers them.
  HttpResult missing = HttpRequest(port(), "GET", "/ui/nope.js", "", {});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(JsonOf(missing)["code"], "NotFound");
  HttpResult post = HttpRequest(port(), "POST", "/", "x", {});
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
  EXPECT_EQ(HttpRequest(port(), "DELETE", "/ui/app.js", "", {}).status, 405);
}

TEST_F(UiTest, GetSlashWithS3CredentialsIsStillListBuckets) {
  std::string out;
  ASSERT_EQ(RunAwsCli(dir_, server_->base_url(), {"s3", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("lastframe"), std::string::npos) << out;
  // A wrong secret is S3's refusal, not the page.
  EXPECT_NE(RunAwsCli(dir_, server_->base_url(), {"s3", "ls"}, &out, "wrong-secret"), 0);
  EXPECT_NE(out.find("SignatureDoesNotMatch"), std::string::npos) << out;
  // A presigned ListBuckets (query credentials) is S3's too.
  HttpResult presigned = HttpRequest(
      port(), "GET",
      "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + std::string(kAccessKey) +
          "%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-"
          "Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
      "", {});
  EXPECT_EQ(presigned.status, 403) << presigned.body;
  EXPECT_NE(presigned.body.find("<Error>"), std::string::npos) << presigned.body;
}

TEST_F(UiTest, SignInGivesAStrictHttpOnlyCookieThatReadsWithTheKeysRoleAndGlob) {
  HttpResult open = HttpRequest(port(), "GET", "/ui/session", "", {});
  ASSERT_EQ(open.status, 200);
  json state = JsonOf(open);
  EXPECT_EQ(state["auth"], true);
  EXPECT_EQ(state["signed_in"], false);
  EXPECT_TRUE(state["role"].is_null());
  EXPECT_FALSE(state["node"].get<std::string>().empty());

  HttpResult in = SignIn(viewer_);
  ASSERT_EQ(in.status, 204) << in.body;
  const std::string cookie = in.header("set-cookie");
  EXPECT_NE(cookie.find("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"), std::string::npos)
      << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);
  const std::string token = TokenOf(in);
  EXPECT_EQ(token.size(), 64u);
  state = JsonOf(WithCookie("GET", "/ui/session", token));
  EXPECT_EQ(state["signed_in"], true);
  EXPECT_EQ(state["role"], "viewer");
  EXPECT_EQ(state["streams"], "cam*");

  // The routes the page reads, as the viewer: its glob's streams and no others.
  json listed = JsonOf(WithCookie("GET", "/v1/streams", token))["streams"];
  ASSERT_EQ(listed.size(), 1u) << listed.dump();
  EXPECT_EQ(listed[0]["name"], "cam1");
  HttpResult still = WithCookie("GET", "/v1/streams/cam1/latest.jpg?width=160", token);
  EXPECT_EQ(still.status, 200) << still.body;
  EXPECT_EQ(still.header("content-type"), "image/jpeg");
  EXPECT_EQ(WithCookie("GET", "/v1/streams/cam1/fragments", token).status, 200);
  HttpResult outside = WithCookie("GET", "/v1/streams/other/latest.jpg", token);
  EXPECT_EQ(outside.status, 403) << outside.body;
  EXPECT_EQ(JsonOf(outside)["code"], "Forbidden");
  EXPECT_EQ(WithCookie("GET", "/v1/streams/other", token).status, 403);

  // Behind a TLS proxy the cookie is Secure.
  EXPECT_NE(SignIn(admin_, {{"X-Forwarded-Proto", "https"}}).header("set-cookie").find("; Secure"),
            std::string::npos);
}

TEST_F(UiTest, RefusedCallersGet401AndNoCookieOpensAWrite) {
  // A bad key signs nobody in.
  for (const std::string& bad : {viewer_.substr(0, viewer_.size() - 4) + "0000",
                                 std::string("lf_nokey_x"), std::string("")}) {
    HttpResult refused = SignIn(bad);
    EXPECT_EQ(refused.status, 401) << bad;
    EXPECT_EQ(JsonOf(refused)["code"], "Unauthorized");
    EXPECT_EQ(refused.header("set-cookie"), "");
  }
  // A form post (cross-site) is refused before the key is looked at.
  HttpResult form = HttpRequest(port(), "POST", "/ui/session", "key=" + admin_,
                                {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form.status, 415);
  EXPECT_EQ(form.header("set-cookie"), "");

  const std::string admin = TokenOf(SignIn(admin_));
  ASSERT_EQ(WithCookie("GET", "/v1/streams", admin).status, 200);
  // A cookie never authorises a change: 401 as without credentials, and nothing changes.
  HttpResult create = WithCookie("POST", "/v1/streams", admin, R"({"name":"made"})");
  EXPECT_EQ(create.status, 401) << create.body;
  EXPECT_EQ(JsonOf(create)["code"], "Unauthorized");
  EXPECT_EQ(WithCookie("DELETE", "/v1/streams/other", admin).status, 401);
  // Nor a GET that stores an object: the snapshot routes publish to the store.
  EXPECT_EQ(WithCookie("GET", "/v1/streams/cam1/snapshot", admin).status, 401);
  EXPECT_EQ(WithCookie("GET", "/snapshot?stream_name=cam1", admin).status, 401);
  EXPECT_EQ(WithCookie("GET", "/v1/streams/other", admin).status, 200);
  EXPECT_EQ(WithCookie("GET", "/v1/streams/made", admin).status, 404);
  // Forged and unknown sessions.
  std::string forged = admin;
  forged[5] = forged[5] == 'a' ? 'b' : 'a';
  for (const std::string& bad : {forged, std::string("0"), admin_}) {
    HttpResult got = WithCookie("GET", "/v1/streams", bad);
    EXPECT_EQ(got.status, 401) << bad;
    EXPECT_EQ(got.header("www-authenticate"), "Bearer realm=\"lastframe\"");
    EXPECT_EQ(JsonOf(got)["code"], "Unauthorized");
  }
  // Signed out: the session is gone on the server, and the cookie cleared.
  HttpResult out = WithCookie("DELETE", "/ui/session", admin);
  EXPECT_EQ(out.status, 204);
  EXPECT_NE(out.header("set-cookie").find("lf_session=; Path=/"), std::string::npos);
  EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(WithCookie("GET", "/v1/streams", admin).status, 401);
  EXPECT_EQ(JsonOf(WithCookie("GET", "/ui/session", admin))["signed_in"], false);
  // The S3 and Kinesis Video routes take SigV4 only: a cookie opens nothing there.
  const std::string viewer = TokenOf(SignIn(viewer_));
  EXPECT_EQ(WithCookie("GET", "/lastframe?list-type=2", viewer).status, 403);
  EXPECT_EQ(WithCookie("POST", "/listStreams", viewer, "{}").status, 403);
}

TEST_F(UiTest, ARevokedKeyEndsItsSessions) {
  const std::string session = TokenOf(SignIn(viewer_));
  ASSERT_EQ(WithCookie("GET", "/v1/streams", session).status, 200);
  std::string out;
  ASSERT_EQ(RunLastframe({"keys", "revoke", "--data-dir", data_, IdOf(viewer_)}, &out), 0) << out;
  ASSERT_TRUE(Eventually([&] { return WithCookie("GET", "/v1/streams", session).status == 401; },
                         std::chrono::seconds(5)));
  EXPECT_NE(WithCookie("GET", "/v1/streams", session).body.find("session"), std::string::npos);
  EXPECT_EQ(SignIn(viewer_).status, 401);
}

TEST(UiAuthOff, ThereIsNoSignInAndThePageReadsOpenly) {
  TempDir dir;
  LastframeServer server(dir.file("data"), {"--auth", "off"});
  json state = JsonOf(HttpGet(server.port(), "/ui/session"));
  EXPECT_EQ(state["auth"], false);
  EXPECT_EQ(state["signed_in"], false);
  EXPECT_EQ(HttpGet(server.port(), "/").status, 200);
  EXPECT_EQ(HttpRequest(server.port(), "POST", "/ui/session", R"({"key":"lf_a_b"})",
                        {{"Content-Type", "application/json"}})
                .status,
            400);
}

TEST(UiBucket, TheEmbeddedStoreRefusesABucketNamedUi) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(RunLastframe({"serve", "--listen", "127.0.0.1:0", "--data-dir", dir.file("data"),
                          "--bucket", "ui"},
                         &out),
            2)
      << out;
  EXPECT_NE(out.find("would hide the API's /ui routes"), std::string::npos) << out;
}

}  // namespace
}  // namespace lastframe::testing
