#include "http/cluster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <thread>

#include "http/api.h"
#include "http/running_server_for_test.h"
#include "http/server.h"
#include "support/http_client.h"

namespace lastframe::http {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

TEST(ValidateNodeId, IsAShortTokenOfLettersDigitsDotsUnderscoresAndDashes) {
  for (const std::string& ok :
       std::vector<std::string>{"a", "node-1", "cams.b_2", "A.b-C_d", std::string(64, 'x')})
    EXPECT_TRUE(ValidateNodeId(ok).ok()) << ok;
  for (const std::string& bad : std::vector<std::string>{
           "", std::string(65, 'x'), "a b", "a/b", "a:1", "n\xc3\xa9", "a\nb", "a,b", "<b>"}) {
    Status st = ValidateNodeId(bad);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
  }
  EXPECT_TRUE(ValidateNodeId(DefaultNodeId()).ok()) << DefaultNodeId();
}

TEST(ParsePeer, TakesANodesUrlOrADnsNameWithItsPort) {
  auto url = ParsePeer("HTTP://Node-B.Example:8080/");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->url, "http://node-b.example:8080");
  EXPECT_EQ(url->dns_host, "");
  auto prefixed = ParsePeer("https://cams.example/lastframe/");
  ASSERT_TRUE(prefixed.ok());
  EXPECT_EQ(prefixed->url, "https://cams.example/lastframe");  // the path's case is kept
  auto dns = ParsePeer("dns://lastframe.internal:8080");
  ASSERT_TRUE(dns.ok()) << dns.status().ToString();
  EXPECT_EQ(dns->dns_host, "lastframe.internal");
  EXPECT_EQ(dns->dns_port, 8080);
  EXPECT_EQ(dns->url, "dns://lastframe.internal:8080");

  for (const char* bad : {"node-b:8080", "ftp://x", "http://", "http://:80", "http://a/b?c=1",
                          "http://u:p@a", "dns://host", "dns://host:0", "dns://host:65536",
                          "dns://:80", "dns://a/b:80", "dns://host:8x", "http://a b"}) {
    auto r = ParsePeer(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

json Stream(const std::string& name, const std::string& state, const std::string& last_frame) {
  return {{"name", name}, {"state", state}, {"last_frame_time", last_frame}};
}

TEST(MergeListings, ListsEachStreamOnceWithTheNodeThatHoldsIt) {
  json own = json::array({Stream("cam-a", "live", "2025-01-01T00:00:05.000Z"),
                          Stream("shared", "stale", "2025-01-01T00:00:01.000Z")});
  PeerAnswer b{.url = "http://b:8080",
               .ok = true,
               .node = "b",
               .streams = json::array({Stream("cam-b", "live", "2025-01-01T00:00:04.000Z"),
                                       Stream("shared", "live", "2025-01-01T00:00:03.000Z")}),
               .elapsed_ms = 12};
  PeerAnswer c{.url = "http://c:8080", .error = "timeout after 1.5 s", .elapsed_ms = 1500};
  PeerAnswer d{.url = "http://d:8080",
               .ok = true,
               .node = "d",
               .streams = json::array({Stream("secret", "live", "2025-01-01T00:00:09.000Z")})};
  json merged = MergeListings("a", "http://a:8080", own, {b, c, d},
                              [](std::string_view name) { return name != "secret"; });
  EXPECT_EQ(merged["node"], "a");
  std::map<std::string, json> by_name;
  for (const json& s : merged["streams"]) by_name[s["name"]] = s;
  ASSERT_EQ(merged["streams"].size(), 3u) << merged.dump(2);
  EXPECT_EQ(merged["streams"][0]["name"], "cam-a");  // sorted by name
  EXPECT_EQ(by_name["cam-a"]["node"], "a");
  EXPECT_EQ(by_name["cam-b"]["node"], "b");
  // Held by two nodes: shown as the live one, the other named beside it.
  EXPECT_EQ(by_name["shared"]["node"], "b");
  EXPECT_EQ(by_name["shared"]["state"], "live");
  EXPECT_EQ(by_name["shared"]["also_on"], json::array({"a"}));
  EXPECT_FALSE(by_name["cam-a"].contains("also_on"));
  // What the caller may not view stays out, whoever listed it.
  EXPECT_FALSE(by_name.contains("secret"));

  const json& nodes = merged["nodes"];
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_EQ(
      nodes[0],
      (json{
          {"node", "a"}, {"url", "http://a:8080"}, {"ok", true}, {"self", true}, {"streams", 2}}));
  EXPECT_EQ(nodes[1]["node"], "b");
  EXPECT_EQ(nodes[1]["ok"], true);
  EXPECT_EQ(nodes[1]["streams"], 2);
  EXPECT_EQ(nodes[1]["ms"], 12);
  EXPECT_TRUE(nodes[2]["node"].is_null());
  EXPECT_EQ(nodes[2]["url"], "http://c:8080");
  EXPECT_EQ(nodes[2]["ok"], false);
  EXPECT_EQ(nodes[2]["error"], "timeout after 1.5 s");
  EXPECT_FALSE(nodes[1].contains("error"));
}

TEST(MergeListings, BetweenTwoLiveCopiesTheNewestFrameWins) {
  json own = json::array({Stream("x", "live", "2025-01-01T00:00:01.000Z")});
  PeerAnswer b{.url = "http://b",
               .ok = true,
               .node = "b",
               .streams = json::array({Stream("x", "live", "2025-01-01T00:00:02.000Z")})};
  json merged = MergeListings("a", "http://a", own, {b}, [](std::string_view) { return true; });
  ASSERT_EQ(merged["streams"].size(), 1u);
  EXPECT_EQ(merged["streams"][0]["node"], "b");
  EXPECT_EQ(merged["streams"][0]["also_on"], json::array({"a"}));
}

// A peer's side: GET /v1/streams answers |streams| (or |status|), and the
// headers of each request are kept for the test to read.
class PeerApp final : public Application {
 public:
  PeerApp(std::string node, json streams, unsigned status = 200)
      : node_(std::move(node)), streams_(std::move(streams)), status_(status) {}
  void Handle(Request r, Respond respond) override {
    {
      std::lock_guard lock(mu_);
      std::map<std::string, std::string> headers;
      for (const auto& f : r.header) headers[std::string(f.name_string())] = std::string(f.value());
      requests_.push_back(std::move(headers));
    }
    if (status_ != 200) return respond(JsonError(status_, "Unauthorized", "no key"));
    if (r.path != "/v1/streams") return respond(JsonError(404, "NotFound", "no route"));
    respond(JsonResponse(200, json{{"node", node_}, {"streams", streams_}}.dump()));
  }
  bool IsUpload(const Request& r) const override { return r.path == "/putMedia"; }
  std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request&,
                                                                  UploadEvents) override {
    return JsonError(400, "BadRequest", "no uploads here");
  }
  RouteInfo RouteOf(const Request& r) const override { return ApiRouteOf(r); }
  std::vector<std::map<std::string, std::string>> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  const std::string node_;
  const json streams_;
  const unsigned status_;
  mutable std::mutex mu_;
  std::vector<std::map<std::string, std::string>> requests_;
};

// A node on a loopback port, named |node| in its answers.
ServerOptions Node(std::string node = "") {
  return ServerOptions{.host = "127.0.0.1", .port = 0, .io_threads = 1, .node = std::move(node)};
}

// An io_context run by a thread of its own, as the server's I/O threads run theirs.
class IoThread {
 public:
  IoThread() : thread_([this] { ioc_.run(); }) {}
  ~IoThread() {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  boost::asio::io_context& ioc() { return ioc_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      ioc_.get_executor()};
  std::thread thread_;
};

// AskPeers' answers, and how long they took to come.
struct Asked {
  std::vector<PeerAnswer> answers;
  milliseconds took{0};
};
Asked AskAndWait(Cluster& cluster, const std::string& authorization) {
  std::promise<std::vector<PeerAnswer>> promise;
  auto future = promise.get_future();
  std::atomic<int> calls{0};
  const auto start = Steady::now();
  cluster.AskPeers(authorization, [&](std::vector<PeerAnswer> answers) {
    ++calls;
    promise.set_value(std::move(answers));
  });
  EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  Asked out{future.get(), std::chrono::duration_cast<milliseconds>(Steady::now() - start)};
  EXPECT_EQ(calls.load(), 1);
  return out;
}

uint16_t ClosedPort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed when |a| goes
}

TEST(Cluster, AsksEveryPeerAtOnceWithTheCallersKeyAndNamesThoseThatFail) {
  PeerApp b_app("b", json::array({Stream("cam-b", "live", "2025-01-01T00:00:01.000Z")}));
  PeerApp c_app("c", json::array());
  RunningServer b(Node(), b_app), c(Node(), c_app);
  testing::SilentListener hangs;
  const std::string silent = "http://127.0.0.1:" + std::to_string(hangs.port());
  const std::string closed = "http://127.0.0.1:" + std::to_string(ClosedPort());
  IoThread io;
  const milliseconds timeout(600);
  Cluster cluster(
      {.node = "a",
       .peers = {*ParsePeer(b.url()), *ParsePeer(silent), *ParsePeer(closed), *ParsePeer(c.url())},
       .self_urls = {"http://a.example:1"},
       .timeout = timeout},
      io.ioc());
  Asked asked = AskAndWait(cluster, "Bearer lf_test");
  // The silent peer holds the answer for the timeout, not longer: the others
  // were asked beside it, not after it.
  EXPECT_GE(asked.took, timeout - milliseconds(50));
  EXPECT_LT(asked.took, timeout + milliseconds(700));
  ASSERT_EQ(asked.answers.size(), 4u);  // in --peers order
  EXPECT_EQ(asked.answers[0].url, b.url());
  EXPECT_TRUE(asked.answers[0].ok) << asked.answers[0].error;
  EXPECT_EQ(asked.answers[0].node, "b");
  EXPECT_EQ(asked.answers[0].streams.size(), 1u);
  EXPECT_EQ(asked.answers[1].url, silent);
  EXPECT_FALSE(asked.answers[1].ok);
  EXPECT_EQ(asked.answers[1].error, "timeout after 0.6 s");
  EXPECT_EQ(asked.answers[2].url, closed);
  EXPECT_FALSE(asked.answers[2].ok);
  EXPECT_EQ(asked.answers[2].error.rfind("unreachable: ", 0), 0u) << asked.answers[2].error;
  EXPECT_LT(asked.answers[2].elapsed_ms, timeout.count());
  EXPECT_TRUE(asked.answers[3].ok) << asked.answers[3].error;
  EXPECT_EQ(asked.answers[3].node, "c");

  // Each peer was asked once, for itself only, with the caller's key.
  for (PeerApp* app : {&b_app, &c_app}) {
    auto requests = app->requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0]["X-Lastframe-Fanout"], "1");
    EXPECT_EQ(requests[0]["Authorization"], "Bearer lf_test");
    EXPECT_FALSE(requests[0].contains("x-amz-date") || requests[0].contains("X-Amz-Date"));
  }
  EXPECT_TRUE(hangs.ConnectionArrived());
}

TEST(Cluster, APeerThatFailsIsNamedByTheIdItLastAnsweredWith) {
  PeerApp b_app("b", json::array());
  auto b = std::make_unique<RunningServer>(Node(), b_app);
  const std::string url = b->url();
  IoThread io;
  Cluster cluster({.node = "a", .peers = {*ParsePeer(url)}, .timeout = milliseconds(1000)},
                  io.ioc());
  Asked first = AskAndWait(cluster, "");
  ASSERT_EQ(first.answers.size(), 1u);
  EXPECT_TRUE(first.answers[0].ok);
  b.reset();  // the peer goes away
  Asked then = AskAndWait(cluster, "");
  ASSERT_EQ(then.answers.size(), 1u);
  EXPECT_FALSE(then.answers[0].ok);
  EXPECT_EQ(then.answers[0].node, "b");
  EXPECT_EQ(then.answers[0].url, url);
}

TEST(Cluster, APeersRefusalIsNamedWithItsStatusAndMessage) {
  PeerApp refusing("b", json::array(), 401);
  RunningServer b(Node("b"), refusing);
  IoThread io;
  Cluster cluster({.node = "a", .peers = {*ParsePeer(b.url())}, .timeout = milliseconds(2000)},
                  io.ioc());
  Asked asked = AskAndWait(cluster, "");
  ASSERT_EQ(asked.answers.size(), 1u);
  EXPECT_FALSE(asked.answers[0].ok);
  EXPECT_EQ(asked.answers[0].error, "HTTP 401: no key");
  EXPECT_EQ(asked.answers[0].node, "b");  // from its X-Lastframe-Node header
  auto requests = refusing.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].contains("Authorization"));  // none given, none sent
}

TEST(Cluster, ThisNodeIsNeverAskedNorListedAsItsOwnPeer) {
  PeerApp self_app("a", json::array());  // a node whose id is ours: this node
  PeerApp b_app("b", json::array());
  RunningServer self(Node(), self_app), b(Node(), b_app);
  IoThread io;
  Cluster cluster(
      {.node = "a",
       .peers = {*ParsePeer("http://A.example:1/"), *ParsePeer(self.url()), *ParsePeer(b.url())},
       .self_urls = {"http://a.example:1"},
       .timeout = milliseconds(2000)},
      io.ioc());
  EXPECT_EQ(cluster.self_url(), "http://a.example:1");
  Asked asked = AskAndWait(cluster, "");
  ASSERT_EQ(asked.answers.size(), 1u);  // named by its URL: not asked; by its id: left out
  EXPECT_EQ(asked.answers[0].node, "b");
  EXPECT_EQ(self_app.requests().size(), 1u);

  // Only itself among the peers: answered at once, with nobody.
  Cluster alone({.node = "a",
                 .peers = {*ParsePeer("http://a.example:1")},
                 .self_urls = {"http://a.example:1"}},
                io.ioc());
  EXPECT_TRUE(AskAndWait(alone, "").answers.empty());
}

TEST(Cluster, ADnsNameIsAPeerAtEachOfItsAddresses) {
  PeerApp b_app("b", json::array({Stream("cam-b", "live", "2025-01-01T00:00:01.000Z")}));
  RunningServer b(Node(), b_app);
  IoThread io;
  const std::string name = "dns://localhost:" + std::to_string(b.port());
  Cluster cluster({.node = "a", .peers = {*ParsePeer(name)}, .timeout = milliseconds(2000)},
                  io.ioc());
  for (int round = 0; round < 2; ++round) {  // resolved, then from what was resolved
    Asked asked = AskAndWait(cluster, "");
    // localhost is 127.0.0.1, and ::1 where the machine has IPv6 (the peer
    // listens on the first only: the second is named unreachable).
    ASSERT_GE(asked.answers.size(), 1u);
    bool found = false;
    for (const PeerAnswer& a : asked.answers) {
      if (a.url == b.url()) {
        found = true;
        EXPECT_TRUE(a.ok) << a.error;
        EXPECT_EQ(a.node, "b");
      } else {
        EXPECT_FALSE(a.ok);
        EXPECT_EQ(a.url, "http://[::1]:" + std::to_string(b.port()));
      }
    }
    EXPECT_TRUE(found);
  }
  EXPECT_EQ(b_app.requests().size(), 2u);

  Cluster nowhere({.node = "a",
                   .peers = {*ParsePeer("dns://no-such-host.invalid:8080")},
                   .timeout = milliseconds(1000)},
                  io.ioc());
  Asked asked = AskAndWait(nowhere, "");
  ASSERT_EQ(asked.answers.size(), 1u);
  EXPECT_FALSE(asked.answers[0].ok);
  EXPECT_EQ(asked.answers[0].url, "dns://no-such-host.invalid:8080");
  // A resolver that answers says so; one that does not answer in time, that.
  EXPECT_TRUE(asked.answers[0].error.rfind("cannot resolve no-such-host.invalid: ", 0) == 0 ||
              asked.answers[0].error == "timeout after 1 s (resolving its name)")
      << asked.answers[0].error;
}

// An answer of every kind the server sends carries the node's id.
TEST(NodeHeader, EveryAnswerOfTheServerNamesTheNode) {
  PeerApp app("n1", json::array());
  RunningServer server(Node("n1"), app);
  EXPECT_EQ(testing::HttpGet(server.port(), "/v1/streams").header("x-lastframe-node"), "n1");
  EXPECT_EQ(testing::HttpGet(server.port(), "/nowhere").header("x-lastframe-node"), "n1");
  // An upload refused, and a request the server itself refuses (a bad target).
  testing::HttpResult upload =
      testing::HttpRequest(server.port(), "POST", "/putMedia", "x", {{"x-amzn-stream-name", "s"}});
  EXPECT_EQ(upload.status, 400);
  EXPECT_EQ(upload.header("x-lastframe-node"), "n1");
  std::string raw = testing::RawExchange(server.port(), "GET nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(raw.find("\r\nX-Lastframe-Node: n1\r\n"), std::string::npos) << raw;
}

}  // namespace
}  // namespace lastframe::http
