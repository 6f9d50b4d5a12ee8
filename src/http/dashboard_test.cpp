#include "http/dashboard.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "http/ui_assets.h"
#include "support/temp_dir.h"

namespace lastframe::http {
namespace {

namespace bhttp = boost::beast::http;
using nlohmann::json;

constexpr int64_t kT0 = 1'800'000'000'000;

Request MakeRequest(bhttp::verb method, const std::string& target,
                    const std::map<std::string, std::string>& headers = {},
                    const std::string& body = "") {
  Request r;
  r.header.method(method);
  r.header.target(target);
  for (const auto& [k, v] : headers) r.header.insert(k, v);
  r.body = body;
  EXPECT_TRUE(SplitTarget(target, r)) << target;
  return r;
}

std::string Header(const Response& r, bhttp::field f) { return std::string(r[f]); }
std::string Header(const Response& r, const char* name) { return std::string(r[name]); }

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto viewer = auth::CreateKey(file_, auth::Role::kViewer, "cam*", 3600, "", clock_);
    auto admin = auth::CreateKey(file_, auth::Role::kAdmin, "*", std::nullopt, "", clock_);
    ASSERT_TRUE(viewer.ok() && admin.ok());
    viewer_ = viewer->token;
    viewer_id_ = viewer->key.id;
    admin_ = admin->token;
    ASSERT_TRUE(ring_.Reload().ok());
  }
  // Signs in with |key|; the lf_session token, or "" when refused.
  std::string SignIn(const std::string& key, unsigned expect = 204,
                     std::map<std::string, std::string> headers = {}) {
    headers.emplace("Content-Type", "application/json");
    Response res = dashboard_.Handle(
        MakeRequest(bhttp::verb::post, "/ui/session", headers, json{{"key", key}}.dump()));
    EXPECT_EQ(res.result_int(), expect) << res.body();
    std::string cookie = Header(res, bhttp::field::set_cookie);
    if (expect != 204) {
      EXPECT_EQ(cookie, "");
      return "";
    }
    EXPECT_EQ(cookie.rfind("lf_session=", 0), 0u) << cookie;
    return cookie.substr(11, cookie.find(';') - 11);
  }
  Request WithCookie(bhttp::verb method, const std::string& target, const std::string& token) {
    return MakeRequest(method, target, {{"Cookie", "theme=dark; lf_session=" + token + "; x=1"}});
  }

  testing::TempDir dir_;
  std::filesystem::path file_ = dir_.path() / "keys.json";
  ManualClock clock_{kT0};
  auth::KeyRing ring_{file_, dir_.path() / "used.json", clock_};
  Dashboard dashboard_{&ring_, clock_, "node-a", {.ttl_ms = 12 * 3600 * 1000, .max_sessions = 100}};
  std::string viewer_, viewer_id_, admin_;
};

TEST(UiAssets, ThePageAndItsAssetsAreBuiltIn) {
  std::map<std::string, std::string> files;
  for (const EmbeddedFile& f : UiAssets()) {
    EXPECT_EQ(f.etag.size(), 16u) << f.name;
    EXPECT_FALSE(f.bytes.empty()) << f.name;
    files[std::string(f.name)] = std::string(f.bytes);
  }
  ASSERT_TRUE(files.count("index.html") && files.count("app.js") && files.count("app.css"));
  const std::string& index = files["index.html"];
  // Its assets by versioned URLs, the placeholders replaced; no inline script or style (CSP).
  EXPECT_EQ(index.find("{{"), std::string::npos);
  EXPECT_NE(index.find("/ui/app.js?v="), std::string::npos);
  EXPECT_NE(index.find("/ui/app.css?v="), std::string::npos);
  EXPECT_EQ(index.find("<style"), std::string::npos);
  EXPECT_EQ(index.find("style=\""), std::string::npos);
  EXPECT_EQ(index.find("<script>"), std::string::npos);
  EXPECT_EQ(index.find("http://"), std::string::npos);
  EXPECT_EQ(index.find("https://"), std::string::npos);
}

TEST_F(DashboardTest, OwnsThePageItsAssetsAndItsSessionOnly) {
  EXPECT_TRUE(Dashboard::Owns(MakeRequest(bhttp::verb::get, "/")));
  EXPECT_TRUE(Dashboard::Owns(MakeRequest(bhttp::verb::get, "/ui/app.js?v=1")));
  EXPECT_TRUE(Dashboard::Owns(MakeRequest(bhttp::verb::post, "/ui/session")));
  EXPECT_TRUE(Dashboard::Owns(MakeRequest(bhttp::verb::get, "/ui")));
  EXPECT_FALSE(Dashboard::Owns(MakeRequest(bhttp::verb::get, "/uix")));
  EXPECT_FALSE(Dashboard::Owns(MakeRequest(bhttp::verb::get, "/v1/streams")));
  EXPECT_FALSE(Dashboard::Owns(MakeRequest(bhttp::verb::get, "/lastframe/ui/x")));
}

TEST_F(DashboardTest, ThePageIsRevalidatedItsVersionedAssetsKeptAndEveryAnswerHasTheCsp) {
  Response page = dashboard_.Handle(MakeRequest(bhttp::verb::get, "/"));
  ASSERT_EQ(page.result_int(), 200);
  EXPECT_EQ(Header(page, bhttp::field::content_type), "text/html; charset=utf-8");
  EXPECT_EQ(Header(page, bhttp::field::cache_control), "no-cache");
  const std::string csp = Header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("img-src 'self' data: blob:"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
  EXPECT_EQ(Header(page, "X-Content-Type-Options"), "nosniff");

  // The page's own reference to app.js carries its hash: that URL is immutable.
  size_t at = page.body().find("/ui/app.js?v=");
  ASSERT_NE(at, std::string::npos);
  std::string version = page.body().substr(at + 13, 16);
  Response js = dashboard_.Handle(MakeRequest(bhttp::verb::get, "/ui/app.js?v=" + version));
  ASSERT_EQ(js.result_int(), 200);
  EXPECT_EQ(Header(js, bhttp::field::content_type), "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(js, bhttp::field::cache_control), "public, max-age=31536000, immutable");
  EXPECT_EQ(Header(js, bhttp::field::etag), "\"" + version + "\"");
  EXPECT_FALSE(Header(js, "Content-Security-Policy").empty());
  // Another version (or none) is revalidated; a known ETag is a 304 without a body.
  Response old = dashboard_.Handle(MakeRequest(bhttp::verb::get, "/ui/app.js?v=0123456789abcdef"));
  EXPECT_EQ(Header(old, bhttp::field::cache_control), "no-cache");
  Response again = dashboard_.Handle(
      MakeRequest(bhttp::verb::get, "/ui/app.js", {{"If-None-Match", "\"" + version + "\""}}));
  EXPECT_EQ(again.result_int(), 304);
  EXPECT_TRUE(again.body().empty());
  Response css = dashboard_.Handle(MakeRequest(bhttp::verb::get, "/ui/app.css"));
  EXPECT_EQ(Header(css, bhttp::field::content_type), "text/css; charset=utf-8");
}

TEST_F(DashboardTest, UnknownPathsAre404AndOtherMethods405) {
  for (const char* target : {"/ui/nope.js", "/ui/", "/ui", "/ui/index.html", "/ui/../app.js"}) {
    Response res = dashboard_.Handle(MakeRequest(bhttp::verb::get, target));
    EXPECT_EQ(res.result_int(), 404) << target;
    EXPECT_EQ(json::parse(res.body())["code"], "NotFound") << target;
  }
  Response post = dashboard_.Handle(MakeRequest(bhttp::verb::post, "/"));
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(Header(post, bhttp::field::allow), "GET, HEAD");
  EXPECT_EQ(dashboard_.Handle(MakeRequest(bhttp::verb::put, "/ui/app.js")).result_int(), 405);
  EXPECT_EQ(dashboard_.Handle(MakeRequest(bhttp::verb::put, "/ui/session")).result_int(), 405);
}

TEST_F(DashboardTest, SignInSetsAStrictHttpOnlyCookieThatStandsForTheKey) {
  Response res = dashboard_.Handle(MakeRequest(bhttp::verb::post, "/ui/session",
                                               {{"Content-Type", "application/json"}},
                                               json{{"key", viewer_}}.dump()));
  ASSERT_EQ(res.result_int(), 204) << res.body();
  const std::string cookie = Header(res, bhttp::field::set_cookie);
  EXPECT_NE(cookie.find("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"), std::string::npos)
      << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);  // plain HTTP
  const std::string token = cookie.substr(11, cookie.find(';') - 11);
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find(viewer_.substr(viewer_.rfind('_') + 1)), std::string::npos);

  auto who = dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/v1/streams", token));
  ASSERT_TRUE(who && who->ok());
  EXPECT_EQ((*who)->key_id, viewer_id_);
  EXPECT_EQ((*who)->role, auth::Role::kViewer);
  EXPECT_EQ((*who)->streams, "cam*");

  json state =
      json::parse(dashboard_.Handle(WithCookie(bhttp::verb::get, "/ui/session", token)).body());
  EXPECT_EQ(state["auth"], true);
  EXPECT_EQ(state["signed_in"], true);
  EXPECT_EQ(state["role"], "viewer");
  EXPECT_EQ(state["streams"], "cam*");
  EXPECT_EQ(state["node"], "node-a");  // no Host header: no port
  state = json::parse(
      dashboard_
          .Handle(MakeRequest(bhttp::verb::get, "/ui/session", {{"Host", "cams.example:8080"}}))
          .body());
  EXPECT_EQ(state["node"], "node-a:8080");
  // Behind a TLS proxy the cookie is Secure.
  Response tls = dashboard_.Handle(
      MakeRequest(bhttp::verb::post, "/ui/session",
                  {{"Content-Type", "application/json"}, {"X-Forwarded-Proto", "https"}},
                  json{{"key", admin_}}.dump()));
  EXPECT_NE(Header(tls, bhttp::field::set_cookie).find("; Secure"), std::string::npos);
}

TEST_F(DashboardTest, BadKeysAndBadBodiesGetNoCookie) {
  std::string wrong = viewer_;  // its last character changed, whatever it was
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  SignIn(wrong, 401);
  SignIn("lf_nokey_abc", 401);
  SignIn("", 401);
  for (const std::string& body : {std::string("{}"), std::string("[]"), std::string("not json"),
                                  std::string(R"({"key": 5})")}) {
    Response res = dashboard_.Handle(MakeRequest(bhttp::verb::post, "/ui/session",
                                                 {{"Content-Type", "application/json"}}, body));
    EXPECT_EQ(res.result_int(), 400) << body;
    EXPECT_EQ(Header(res, bhttp::field::set_cookie), "");
  }
  // A cross-site form cannot send JSON: a form's body is refused (login CSRF).
  Response form = dashboard_.Handle(
      MakeRequest(bhttp::verb::post, "/ui/session",
                  {{"Content-Type", "application/x-www-form-urlencoded"}}, "key=" + viewer_));
  EXPECT_EQ(form.result_int(), 415);
  EXPECT_EQ(Header(form, bhttp::field::set_cookie), "");
}

TEST_F(DashboardTest, ACookieIdentifiesOnlyReadsAndOnlyWhileSessionAndKeyLive) {
  const std::string token = SignIn(viewer_);
  ASSERT_FALSE(token.empty());
  // No cookie: nothing to say (the bearer key decides).
  EXPECT_FALSE(dashboard_.SessionOf(MakeRequest(bhttp::verb::get, "/v1/streams")));
  // A cookie never authorises a change.
  for (bhttp::verb method : {bhttp::verb::post, bhttp::verb::delete_, bhttp::verb::put})
    EXPECT_FALSE(dashboard_.SessionOf(WithCookie(method, "/v1/streams", token)));
  EXPECT_TRUE(dashboard_.SessionOf(WithCookie(bhttp::verb::head, "/v1/streams", token)));
  // Forged and unknown tokens.
  std::string forged = token;
  forged[0] = forged[0] == 'a' ? 'b' : 'a';
  for (const std::string& bad : {forged, std::string("x"), std::string("")}) {
    auto who = dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/v1/streams", bad));
    ASSERT_TRUE(who) << bad;
    EXPECT_EQ(who->status().code(), Code::kUnauthenticated);
  }
  // The key expires (its keys file says 3600 s): the session ends with it.
  clock_.Advance(3600 * 1000);
  auto expired = dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/v1/streams", token));
  ASSERT_TRUE(expired);
  EXPECT_NE(expired->status().message().find("expired"), std::string::npos);
}

TEST_F(DashboardTest, SessionsExpireAfterTwelveHoursAndSignOutEndsThem) {
  const std::string a = SignIn(admin_), b = SignIn(admin_);
  ASSERT_TRUE(dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/", a))->ok());
  Response out = dashboard_.Handle(WithCookie(bhttp::verb::delete_, "/ui/session", a));
  EXPECT_EQ(out.result_int(), 204);
  EXPECT_NE(Header(out, bhttp::field::set_cookie)
                .find("lf_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            std::string::npos);
  EXPECT_FALSE(dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/", a))->ok());
  EXPECT_EQ(
      json::parse(
          dashboard_.Handle(WithCookie(bhttp::verb::get, "/ui/session", a)).body())["signed_in"],
      false);
  ASSERT_TRUE(dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/", b))->ok());
  clock_.Advance(12 * 3600 * 1000);
  EXPECT_FALSE(dashboard_.SessionOf(WithCookie(bhttp::verb::get, "/", b))->ok());
}

TEST(DashboardAuthOff, ThereIsNoSignIn) {
  ManualClock clock(kT0);
  Dashboard dashboard(nullptr, clock);
  json state = json::parse(dashboard.Handle(MakeRequest(bhttp::verb::get, "/ui/session")).body());
  EXPECT_EQ(state["auth"], false);
  EXPECT_EQ(state["signed_in"], false);
  EXPECT_TRUE(state["role"].is_null());
  Response res =
      dashboard.Handle(MakeRequest(bhttp::verb::post, "/ui/session",
                                   {{"Content-Type", "application/json"}}, R"({"key":"lf_a_b"})"));
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_FALSE(dashboard.SessionOf(
      MakeRequest(bhttp::verb::get, "/v1/streams", {{"Cookie", "lf_session=abc"}})));
}

TEST(CookieValue, FindsTheNamedCookieAmongOthersAndAcrossHeaders) {
  Request r = MakeRequest(bhttp::verb::get, "/", {{"Cookie", "a=1; lf_sessionx=no"}});
  r.header.insert("X-Other", "1");
  r.header.insert(bhttp::field::cookie, "b=2;lf_session=yes");
  EXPECT_EQ(CookieValue(r, "lf_session"), "yes");
  EXPECT_EQ(CookieValue(r, "a"), "1");
  EXPECT_EQ(CookieValue(r, "c"), std::nullopt);
}

}  // namespace
}  // namespace lastframe::http
