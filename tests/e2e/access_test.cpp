// Closed by default: every route of lastframe's own API walked with every kind
// of caller (none, malformed, wrong, revoked, expired, outside its glob, the
// wrong role, the right key), keys made and revoked while the server runs, the
// first start's keys, and pulls that cannot reach inside the network.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;
using Headers = std::map<std::string, std::string>;

std::string IdOf(const std::string& token) { return token.substr(3, token.find('_', 3) - 3); }

Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

int Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.file("data");
    admin_ = MakeKey(data_, {"--role", "admin"});
    viewer_ = MakeKey(data_, {"--role", "viewer", "--streams", "cam*", "--label", "lobby screen"});
    producer_ = MakeKey(data_, {"--role", "producer", "--streams", "cam*"});
    revoked_ = MakeKey(data_, {"--role", "admin"});
    std::string out;
    ASSERT_EQ(RunLastframe({"keys", "revoke", "--data-dir", data_, IdOf(revoked_)}, &out), 0)
        << out;
    expiring_ = MakeKey(data_, {"--role", "admin", "--expires-in", "1"});
    std::vector<std::string> args = {"--auth",       "on",       "--access-key", kAccessKey,
                                     "--secret-key", kSecretKey, "--retention",  "600"};
    server_ = std::make_unique<LastframeServer>(data_, args);
    clip_ = ReadFile(TestClip(dir_, "clip.mkv", 160, 120, 10, 2, 10));
    ASSERT_EQ(Push("cam1", producer_).status, 200);
    ASSERT_EQ(Push("other", admin_).status, 200);
  }
  uint16_t port() const { return server_->port(); }
  HttpResult Push(const std::string& stream, const std::string& token) {
    Headers h = {{"x-amzn-stream-name", stream}};
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return HttpRequest(port(), "POST", "/putMedia", clip_, h);
  }
  HttpResult Call(const std::string& method, const std::string& target, const Headers& h,
                  const std::string& body = "") {
    return HttpRequest(port(), method, target, body, h);
  }
  size_t FragmentsOf(const std::string& stream) {
    return JsonOf(Call("GET", "/v1/streams/" + stream + "/fragments", Bearer(admin_)))["fragments"]
        .size();
  }

  TempDir dir_;
  std::string data_, admin_, viewer_, producer_, revoked_, expiring_, clip_;
  std::unique_ptr<LastframeServer> server_;
};

struct Route {
  std::string method, target, body;
};

// The routes of lastframe's own API and what each expects from a key that may call it.
std::vector<Route> ReadRoutes(const std::string& stream) {
  return {{"GET", "/snapshot?stream_name=" + stream, ""},
          {"GET", "/v1/streams/" + stream + "/snapshot", ""},
          {"GET", "/v1/streams/" + stream + "/latest.jpg", ""},
          {"GET", "/v1/streams/" + stream + "/latest.png", ""},
          {"GET", "/v1/streams/" + stream, ""},
          {"GET", "/v1/streams/" + stream + "/fragments", ""},
          {"GET", "/v1/streams/" + stream + "/clip", ""}};
}

std::vector<Route> AdminRoutes() {
  return {{"POST", "/v1/streams", R"({"name":"newcam","url":"rtsp://127.0.0.1:1/x"})"},
          {"DELETE", "/v1/streams/other", ""},
          {"GET", "/metrics", ""}};
}

TEST_F(AccessTest, CallersWithoutAValidKeyGet401AndChangeNothing) {
  // The expiring key works until it expires (1 s), then is refused like the others.
  ASSERT_TRUE(
      Eventually([&] { return Call("GET", "/v1/streams", Bearer(expiring_)).status == 401; },
                 std::chrono::seconds(10)));
  const std::vector<std::pair<std::string, Headers>> callers = {
      {"no credentials", {}},
      {"a malformed header", {{"Authorization", "Basic YWRtaW46YWRtaW4="}}},
      {"a token that is no key", {{"Authorization", "Bearer lf_nokey"}}},
      {"a wrong secret", Bearer(admin_.substr(0, admin_.size() - 4) + "0000")},
      {"a revoked key", Bearer(revoked_)},
      {"an expired key", Bearer(expiring_)}};
  const size_t fragments = FragmentsOf("other");
  std::vector<Route> routes = ReadRoutes("cam1");
  for (const Route& r : AdminRoutes()) routes.push_back(r);
  routes.push_back({"GET", "/v1/streams", ""});
  for (const auto& [who, headers] : callers)
    for (const Route& r : routes) {
      HttpResult got = Call(r.method, r.target, headers, r.body);
      EXPECT_EQ(got.status, 401) << who << ": " << r.method << " " << r.target << "\n" << got.body;
      EXPECT_EQ(JsonOf(got)["code"], "Unauthorized") << who << " " << r.target;
      EXPECT_EQ(got.header("www-authenticate"), "Bearer realm=\"lastframe\"") << r.target;
      EXPECT_EQ(got.body.find(admin_.substr(admin_.rfind('_') + 1, 20)), std::string::npos)
          << "a secret in an answer";
    }
  // The messages say which, so a user knows what to fix.
  EXPECT_NE(Call("GET", "/v1/streams", Bearer(revoked_)).body.find("revoked"), std::string::npos);
  EXPECT_NE(Call("GET", "/v1/streams", Bearer(expiring_)).body.find("expired"), std::string::npos);
  EXPECT_NE(Call("GET", "/v1/streams", {}).body.find("required"), std::string::npos);
  // The recipe's route keeps its shape.
  EXPECT_EQ(JsonOf(Call("GET", "/snapshot?stream_name=cam1", {}))["statusCode"], 401);
  // Nothing changed: no stream created or deleted, no pull started, no push taken.
  EXPECT_EQ(FragmentsOf("other"), fragments);
  EXPECT_EQ(Call("GET", "/v1/streams/newcam", Bearer(admin_)).status, 404);
  EXPECT_EQ(Push("cam2", "").status, 403);  // unsigned PutMedia: Kinesis Video's refusal
  EXPECT_EQ(Push("cam2", revoked_).status, 401);
  EXPECT_EQ(Call("GET", "/v1/streams/cam2", Bearer(admin_)).status, 404);
  // Open to all: health, and signed image URLs (they carry their own signature).
  EXPECT_EQ(Call("GET", "/healthz", {}).status, 200);
  // And which node a stream routes to (pull routing's probe): the node's id, as
  // every answer's header says, and nothing of the stream (no stream "nosuch").
  for (const std::string stream : {"cam1", "nosuch"}) {
    HttpResult node = Call("GET", "/v1/streams/" + stream + "/node", {});
    EXPECT_EQ(node.status, 200) << node.body;
    EXPECT_EQ(JsonOf(node), json({{"stream", stream}, {"node", node.header("x-lastframe-node")}}));
  }
  EXPECT_EQ(Call("POST", "/v1/streams/cam1/node", {}).status, 405);
  EXPECT_EQ(Call("GET", "/v1/streams/a%2Fb/node", {}).status, 401);  // no valid name: a key first
  json snap = JsonOf(Call("GET", "/v1/streams/cam1/snapshot", Bearer(viewer_)));
  uint16_t p = 0;
  std::string target;
  SplitUrl(snap["url"], &p, &target);
  EXPECT_EQ(Call("GET", target, {}).status, 200);
}

TEST_F(AccessTest, KeysMayDoWhatTheirRoleAndGlobAllow) {
  // Viewers and producers read the streams their glob covers, and no others.
  for (const std::string& token : {viewer_, producer_}) {
    for (const Route& r : ReadRoutes("cam1")) {
      HttpResult got = Call(r.method, r.target, Bearer(token));
      EXPECT_EQ(got.status, 200) << r.target << "\n" << got.body;
    }
    for (const Route& r : ReadRoutes("other")) {
      HttpResult got = Call(r.method, r.target, Bearer(token));
      EXPECT_EQ(got.status, 403) << r.target << "\n" << got.body;
      EXPECT_EQ(JsonOf(got)["code"], "Forbidden") << r.target;
    }
    // The listing shows only what the key may see.
    json listed = JsonOf(Call("GET", "/v1/streams", Bearer(token)))["streams"];
    ASSERT_EQ(listed.size(), 1u) << listed.dump();
    EXPECT_EQ(listed[0]["name"], "cam1");
    // Creating, deleting and metrics are for admins.
    for (const Route& r : AdminRoutes()) {
      HttpResult got = Call(r.method, r.target, Bearer(token), r.body);
      EXPECT_EQ(got.status, 403) << r.method << " " << r.target << "\n" << got.body;
      EXPECT_EQ(JsonOf(got)["code"], "Forbidden");
    }
  }
  // A viewer may not push; a producer only to its glob.
  HttpResult viewer_push = Push("cam3", viewer_);
  EXPECT_EQ(viewer_push.status, 403) << viewer_push.body;
  EXPECT_EQ(JsonOf(viewer_push)["code"], "Forbidden");
  EXPECT_EQ(Push("lobby", producer_).status, 403);
  EXPECT_EQ(Push("cam3", producer_).status, 200);
  // The scheme name is case-insensitive (RFC 9110), on pushes as on every route.
  EXPECT_EQ(HttpRequest(port(), "POST", "/putMedia", clip_,
                        {{"x-amzn-stream-name", "cam4"}, {"Authorization", "bearer " + producer_}})
                .status,
            200);
  EXPECT_EQ(Call("GET", "/v1/streams/cam1", {{"Authorization", "BEARER " + viewer_}}).status, 200);
  // Nothing the refused calls asked for happened.
  EXPECT_EQ(Call("GET", "/v1/streams/other", Bearer(admin_)).status, 200);
  EXPECT_EQ(Call("GET", "/v1/streams/newcam", Bearer(admin_)).status, 404);
  EXPECT_EQ(Call("GET", "/v1/streams/lobby", Bearer(admin_)).status, 404);
  // The admin may do everything.
  EXPECT_EQ(JsonOf(Call("GET", "/v1/streams", Bearer(admin_)))["streams"].size(), 4u);
  EXPECT_EQ(Call("GET", "/metrics", Bearer(admin_)).status, 200);
  EXPECT_EQ(Call("POST", "/v1/streams", Bearer(admin_), R"({"name":"made"})").status, 201);
  EXPECT_EQ(Call("DELETE", "/v1/streams/other", Bearer(admin_)).status, 204);
  EXPECT_EQ(Call("GET", "/v1/streams/other", Bearer(admin_)).status, 404);
}

TEST_F(AccessTest, UrlLifetimesAreBoundedByRole) {
  auto expires = [&](const std::string& token, int64_t s) {
    return Call("GET", "/v1/streams/cam1/snapshot?expires=" + std::to_string(s), Bearer(token));
  };
  EXPECT_EQ(expires(viewer_, 86'400).status, 200);
  HttpResult over = expires(viewer_, 86'401);
  EXPECT_EQ(over.status, 400) << over.body;
  EXPECT_EQ(JsonOf(over)["code"], "InvalidArgument");
  EXPECT_EQ(expires(admin_, 604'800).status, 200);
  EXPECT_EQ(expires(admin_, 604'801).status, 400);
}

TEST_F(AccessTest, KeysMadeAndRevokedWhileTheServerRunsTakeEffect) {
  std::string late = MakeKey(data_, {"--role", "viewer"});
  ASSERT_TRUE(Eventually([&] { return Call("GET", "/v1/streams", Bearer(late)).status == 200; },
                         std::chrono::seconds(3)));
  std::string out;
  ASSERT_EQ(RunLastframe({"keys", "revoke", "--data-dir", data_, IdOf(late)}, &out), 0) << out;
  auto revoked_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return Call("GET", "/v1/streams", Bearer(late)).status == 401; },
                         std::chrono::seconds(3)));
  // Within the server's reload period (1 s) plus a worker's turn.
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, std::chrono::seconds(3));
  // The listing shows every key, when each was last used, and never a secret.
  ASSERT_EQ(RunLastframe({"keys", "list", "--data-dir", data_}, &out), 0) << out;
  for (const std::string& token : {admin_, viewer_, producer_, late}) {
    EXPECT_NE(out.find(IdOf(token)), std::string::npos) << out;
    EXPECT_EQ(out.find(token.substr(token.rfind('_') + 1)), std::string::npos) << "secret listed";
  }
  EXPECT_NE(out.find("lobby screen"), std::string::npos);
  EXPECT_NE(out.find("revoked"), std::string::npos);
  // Bad CLI input is refused with a message.
  EXPECT_NE(RunLastframe({"keys", "create", "--data-dir", data_, "--role", "root"}, &out), 0);
  EXPECT_NE(RunLastframe({"keys", "revoke", "--data-dir", data_, "nosuchid"}, &out), 0);
  EXPECT_NE(out.find("no key"), std::string::npos) << out;
  // Tokens never reach the log; the keys file is private.
  std::string log = server_->process().Output();
  for (const std::string& token : {admin_, viewer_, producer_, late})
    EXPECT_EQ(log.find(token.substr(token.rfind('_') + 1)), std::string::npos);
  EXPECT_EQ(Mode(data_ + "/keys.json"), 0600);
}

TEST(FirstStart, MakesKeysAndPrintsACurlLineThatWorks) {
  TempDir dir;
  LastframeServer server(dir.file("data"), {"--auth", "on", "--demo"});
  std::string line = server.process().WaitForLine("curl -s -H", std::chrono::seconds(10));
  ASSERT_FALSE(line.empty()) << server.process().Output();
  size_t start = line.find("Bearer ") + 7;
  std::string token = line.substr(start, line.find('\'', start) - start);
  size_t url_at = line.find("'http://");
  std::string url = line.substr(url_at + 1, line.rfind('\'') - url_at - 1);
  std::string initial = ReadFile(dir.file("data/initial-keys.txt"));
  EXPECT_NE(initial.find("viewer " + token), std::string::npos) << initial;
  EXPECT_NE(initial.find("admin lf_"), std::string::npos);
  EXPECT_EQ(Mode(dir.file("data/initial-keys.txt")), 0600);
  // The line works as printed (once the demo camera has a frame); without the key it does not.
  std::string out;
  ASSERT_TRUE(Eventually([&] {
    RunCommand({"curl", "-s", "-H", "Authorization: Bearer " + token, url}, &out);
    return out.find("\"statusCode\":200") != std::string::npos;
  })) << out;
  RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url}, &out);
  EXPECT_EQ(out, "401");
  // Files are private to the service: nothing in the data directory is world-readable.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.file("data"))) {
    EXPECT_EQ(Mode(e.path().string()) & 07, 0) << e.path();
  }
}

TEST(AuthOff, RunsOpenAndSaysSo) {
  TempDir dir;
  LastframeServer server(dir.file("data"), {"--auth", "off"});
  EXPECT_FALSE(server.process().WaitForLine("--auth off", std::chrono::seconds(10)).empty());
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams").status, 200);
  EXPECT_EQ(HttpGet(server.port(), "/metrics").status, 200);
  EXPECT_FALSE(std::filesystem::exists(dir.file("data/keys.json")));
}

TEST(PublicMetrics, ServesMetricsWithoutAKeyAndNothingElse) {
  TempDir dir;
  LastframeServer server(dir.file("data"), {"--auth", "on", "--public-metrics"});
  EXPECT_EQ(HttpGet(server.port(), "/metrics").status, 200);
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams").status, 401);
}

// ---- pulls that cannot reach inside ----

// An HTTP server on 127.0.0.2 (an address the tests allow pulls to reach)
// answering every request with |answer(path)|; counts the requests.
class ScriptedHttpServer {
 public:
  explicit ScriptedHttpServer(std::function<std::string(const std::string&)> answer)
      : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &addr.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedHttpServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.2:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{.fd = fd_, .events = POLLIN};
      if (::poll(&p, 1, 200) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      ++requests_;
      size_t sp = request.find(' ');
      std::string path = request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
      std::string reply = answer_(path);
      (void)!::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  std::function<std::string(const std::string&)> answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class PullPolicyTest : public ::testing::Test {
 protected:
  // Pulls may reach 127.0.0.2 (the scripted servers), not the rest of loopback.
  std::vector<std::string> Args() {
    std::vector<std::string> args = TestServerArgs();
    args.insert(args.end(), {"--pull-allow", "127.0.0.2/32"});
    return args;
  }
  HttpResult Pull(uint16_t port, const std::string& name, const std::string& url) {
    return HttpRequest(port, "POST", "/v1/streams", json{{"name", name}, {"url", url}}.dump());
  }
  json Source(uint16_t port, const std::string& name) {
    return JsonOf(HttpGet(port, "/v1/streams/" + name))["source"];
  }
  TempDir dir_;
};

TEST_F(PullPolicyTest, InsideAddressesAreRefusedAtCreation) {
  LastframeServer server(dir_.file("data"), Args());
  SilentListener inside;  // on 127.0.0.1
  for (const std::string& url :
       {"rtsp://127.0.0.1:" + std::to_string(inside.port()) + "/x",
        "http://localhost:" + std::to_string(inside.port()) + "/feed.ts",
        std::string("http://169.254.169.254/latest/meta-data/"), std::string("rtsp://[::1]:554/x"),
        std::string("http://[fe80::1]/x"), std::string("rtsp://0.0.0.0/x")}) {
    HttpResult r = Pull(server.port(), "probe", url);
    EXPECT_EQ(r.status, 400) << url << "\n" << r.body;
    EXPECT_EQ(JsonOf(r)["code"], "PullAddressDenied") << url;
  }
  EXPECT_EQ(HttpGet(server.port(), "/v1/streams/probe").status, 404);
  EXPECT_FALSE(inside.ConnectionArrived());
}

TEST_F(PullPolicyTest, ARedirectToAnInsideAddressIsRefusedAtConnect) {
  LastframeServer server(dir_.file("data"), Args());
  SilentListener inside;
  const std::string target = "http://127.0.0.1:" + std::to_string(inside.port()) + "/feed.ts";
  ScriptedHttpServer redirector([&](const std::string&) {
    return "HTTP/1.1 302 Found\r\nLocation: " + target + "\r\nContent-Length: 0\r\n\r\n";
  });
  HttpResult r = Pull(server.port(), "redirected", redirector.url("/feed.ts"));
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(Eventually([&] {
    return Source(server.port(), "redirected")["last_error_code"] == "PullAddressDenied";
  })) << Source(server.port(), "redirected").dump();
  EXPECT_GE(redirector.requests(), 1);  // the pull did run, and stopped at the redirect
  EXPECT_FALSE(inside.ConnectionArrived());
  EXPECT_NE(Source(server.port(), "redirected")["last_error"].get<std::string>().find("127.0.0.1"),
            std::string::npos);
}

TEST_F(PullPolicyTest, APlaylistNamingAnInsideSegmentIsRefusedAtConnect) {
  LastframeServer server(dir_.file("data"), Args());
  SilentListener inside;
  const std::string segment = "http://127.0.0.1:" + std::to_string(inside.port()) + "/seg0.ts";
  ScriptedHttpServer playlist([&](const std::string&) {
    std::string m3u8 =
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:2.0,\n" +
        segment + "\n";
    return "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\nContent-Length: " +
           std::to_string(m3u8.size()) + "\r\n\r\n" + m3u8;
  });
  HttpResult r = Pull(server.port(), "hls", playlist.url("/live.m3u8"));
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(Eventually([&] {
    return Source(server.port(), "hls")["last_error_code"] == "PullAddressDenied";
  })) << Source(server.port(), "hls").dump();
  EXPECT_GE(playlist.requests(), 1);
  EXPECT_FALSE(inside.ConnectionArrived());
}

TEST_F(PullPolicyTest, ConfiguredPullsObeyItAndTheServerStillStarts) {
  SilentListener inside;
  WriteFile(dir_.file("streams.toml"), "[[streams]]\nname = \"door\"\nurl = \"rtsp://127.0.0.1:" +
                                           std::to_string(inside.port()) + "/x\"\n");
  auto args = Args();
  args.insert(args.end(), {"--config", dir_.file("streams.toml")});
  LastframeServer server(dir_.file("data"), args);
  ASSERT_TRUE(Eventually([&] {
    json s = JsonOf(HttpGet(server.port(), "/v1/streams/door"));
    return s["state"] == "error" && s["source"]["last_error_code"] == "PullAddressDenied";
  }));
  EXPECT_FALSE(inside.ConnectionArrived());
  // A deny wins over an allow, and bad ranges stop the start.
  std::string out;
  EXPECT_EQ(RunLastframe({"serve", "--listen", "127.0.0.1:0", "--data-dir", dir_.file("d2"),
                          "--pull-allow", "10.0.0.0/33"},
                         &out),
            2);
  EXPECT_NE(out.find("--pull-allow"), std::string::npos) << out;
}

TEST_F(PullPolicyTest, APullNeverTakesOverAStreamAndUpstreamErrorsAreForAdmins) {
  auto args = TestServerArgs();
  // A deny wins over an allow.
  args.insert(args.end(), {"--pull-allow", "127.0.0.0/8", "--pull-deny", "127.0.0.2/32"});
  LastframeServer server(dir_.file("data"), args);
  ScriptedHttpServer camera(
      [](const std::string&) { return std::string("HTTP/1.1 404 x\r\n\r\n"); });
  HttpResult denied = Pull(server.port(), "denied", camera.url("/feed.ts"));
  EXPECT_EQ(denied.status, 400) << denied.body;
  EXPECT_EQ(JsonOf(denied)["code"], "PullAddressDenied");
  EXPECT_EQ(camera.requests(), 0);

  std::string clip = ReadFile(TestClip(dir_, "c.mkv", 160, 120, 10, 1, 10));
  ASSERT_EQ(PushOneShot(server.port(), "pushed", clip).status, 200);
  HttpResult takeover = Pull(server.port(), "pushed", "rtsp://127.0.0.1:1/x");
  EXPECT_EQ(takeover.status, 409) << takeover.body;
  EXPECT_EQ(JsonOf(takeover)["code"], "StreamExists");
  // A pulled stream takes no pushes (port 1 refuses: the source fails and retries).
  ASSERT_EQ(Pull(server.port(), "pulled", "rtsp://127.0.0.1:1/x").status, 201);
  HttpResult busy = PushOneShot(server.port(), "pulled", clip);
  EXPECT_EQ(busy.status, 409) << busy.body;
  EXPECT_EQ(JsonOf(busy)["code"], "StreamBusy");

  // What the camera's side said is shown to admins only.
  std::string viewer;
  std::string out;
  ASSERT_EQ(
      RunLastframe({"keys", "create", "--data-dir", dir_.file("data"), "--role", "viewer"}, &out),
      0);
  viewer = TokenIn(out);
  ASSERT_TRUE(Eventually([&] {
    HttpResult r = HttpRequest(server.port(), "GET", "/v1/streams/pulled", "",
                               {{"Authorization", "Bearer " + viewer}});
    return r.status == 200 && !JsonOf(r)["source"]["last_error"].is_null();
  }));
  json as_viewer = JsonOf(HttpRequest(server.port(), "GET", "/v1/streams/pulled", "",
                                      {{"Authorization", "Bearer " + viewer}}));
  json as_admin = JsonOf(HttpGet(server.port(), "/v1/streams/pulled"));
  EXPECT_NE(as_admin["source"]["last_error"], as_viewer["source"]["last_error"]);
  EXPECT_NE(as_viewer["source"]["last_error"].get<std::string>().find("admin"), std::string::npos);
  EXPECT_EQ(as_admin["source"]["last_error_code"], as_viewer["source"]["last_error_code"]);
}

}  // namespace
}  // namespace lastframe::testing
