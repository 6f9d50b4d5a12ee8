// The cluster as one service (issue 15, item 3): three real nodes sharing
// one keys file, each with the others as --peers. Every answer names its
// node (X-Lastframe-Node); GET /v1/streams of any node lists every node's
// streams with the node that holds them, for the caller's key only; a node
// stopped or killed is named in the listing, which still answers within
// --peer-timeout.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

// A loopback port held for a node to come: bound (SO_REUSEADDR) but not
// listening, so that no other process is given it meanwhile, while the
// node, which sets SO_REUSEADDR too, may still bind and listen on it. The
// nodes must know each other's ports before any of them starts.
class HeldPort {
 public:
  HeldPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      ADD_FAILURE() << "bind: " << errno;
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~HeldPort() { ::close(fd_); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The state letter of process |pid| in /proc (R, S, T for stopped, ...).
char ProcessState(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');  // the name may hold spaces
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

std::string UrlOf(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

constexpr double kPeerTimeoutS = 1;
// What a listing may take beyond --peer-timeout on a loaded 2-core machine
// (the merge, the JSON, a sanitizer build's slowness).
constexpr milliseconds kSlack(1500);

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = dir_.file("keys.json");
    admin_ = MakeKey(dir_.file("keys-dir"), {"--keys-file", keys_, "--role", "admin"});
    viewer_ = MakeKey(dir_.file("keys-dir"),
                      {"--keys-file", keys_, "--role", "viewer", "--streams", "cam-2"});
    HeldPort held[3];
    std::string peers;
    for (const HeldPort& h : held) peers += (peers.empty() ? "" : ",") + UrlOf(h.port());
    for (int i = 0; i < 3; ++i) {
      // The same --peers on every node, as one config file would give them:
      // each node finds itself among them and skips itself.
      std::vector<std::string> args = TestServerArgs();
      args.insert(args.end(), {"--keys-file", keys_, "--node-id", Id(i), "--peers", peers,
                               "--peer-timeout", "1"});
      nodes_.push_back(std::make_unique<LastframeServer>(
          dir_.file("data-" + Id(i)), args, std::vector<std::string>{}, held[i].port()));
      ASSERT_EQ(nodes_.back()->port(), held[i].port());
    }
  }

  static std::string Id(int i) { return "node-" + std::to_string(i + 1); }
  uint16_t port(int i) const { return nodes_[i]->port(); }

  HttpResult Get(int node, const std::string& target, const std::string& token,
                 std::map<std::string, std::string> headers = {}) {
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return HttpRequest(port(node), "GET", target, "", headers);
  }

  // The merged listing as |node| answers it to |token|, and how long it took.
  json Listing(int node, const std::string& token, milliseconds* took = nullptr) {
    const auto start = Steady::now();
    HttpResult r = Get(node, "/v1/streams", token);
    if (took) *took = std::chrono::duration_cast<milliseconds>(Steady::now() - start);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-lastframe-node"), Id(node));
    return JsonOf(r);
  }

  // Each stream of |listing| with the node that holds it.
  static std::map<std::string, std::string> Holders(const json& listing) {
    std::map<std::string, std::string> out;
    for (const json& s : listing["streams"]) out[s["name"]] = s["node"];
    return out;
  }

  // "nodes" of |listing|, by URL.
  static std::map<std::string, json> NodesByUrl(const json& listing) {
    std::map<std::string, json> out;
    for (const json& n : listing["nodes"]) out[n["url"]] = n;
    return out;
  }

  TempDir dir_;
  std::string keys_, admin_, viewer_;
  std::vector<std::unique_ptr<LastframeServer>> nodes_;
};

TEST_F(ClusterTest, EveryNodeListsTheWholeClusterAndNamesADeadPeer) {
  // One stream pushed to each node: cam-1 to node-1, ...
  const std::string clip = TestClip(dir_, "clip.mkv", 160, 120, 10, 1, 10);
  const std::string bytes = ReadFile(clip);
  for (int i = 0; i < 3; ++i) {
    HttpResult push = PushOneShot(port(i), "cam-" + std::to_string(i + 1), bytes);
    EXPECT_EQ(push.status, 200) << push.body;
    // PutMedia's streamed answer names the node too.
    EXPECT_EQ(push.header("x-lastframe-node"), Id(i));
  }
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(Eventually([&] {
      return Get(i, "/v1/streams/cam-" + std::to_string(i + 1), admin_).status == 200;
    })) << Id(i);

  // Any node answers for all three, each stream with its node, every node asked named ok.
  const std::map<std::string, std::string> expected = {
      {"cam-1", "node-1"}, {"cam-2", "node-2"}, {"cam-3", "node-3"}};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(Id(i));
    json listing = Listing(i, admin_);
    EXPECT_EQ(listing["node"], Id(i));
    EXPECT_EQ(Holders(listing), expected) << listing.dump(2);
    ASSERT_EQ(listing["nodes"].size(), 3u) << listing.dump(2);  // itself once, not as a peer
    EXPECT_EQ(listing["nodes"][0]["node"], Id(i));
    EXPECT_EQ(listing["nodes"][0]["self"], true);
    std::set<std::string> named;
    for (const json& n : listing["nodes"]) {
      EXPECT_EQ(n["ok"], true) << n.dump();
      named.insert(n["node"]);
    }
    EXPECT_EQ(named, (std::set<std::string>{"node-1", "node-2", "node-3"}));
    for (const json& s : listing["streams"]) EXPECT_EQ(s["state"].is_string(), true);
  }

  // A viewer key sees, cluster-wide, the streams it may view: cam-2 on node-2.
  json viewed = Listing(0, viewer_);
  EXPECT_EQ(Holders(viewed), (std::map<std::string, std::string>{{"cam-2", "node-2"}}));
  for (const json& n : viewed["nodes"]) EXPECT_EQ(n["ok"], true) << n.dump();

  // A node asked by a peer (or by anyone who says so) answers for itself only.
  HttpResult own = Get(1, "/v1/streams", admin_, {{"X-Lastframe-Fanout", "1"}});
  ASSERT_EQ(own.status, 200);
  EXPECT_EQ(Holders(JsonOf(own)), (std::map<std::string, std::string>{{"cam-2", "node-2"}}));
  EXPECT_FALSE(JsonOf(own).contains("nodes"));

  // Every answer names its node: health, a stream, a snapshot and the image it
  // points to on the embedded store, an unknown route.
  json health = JsonOf(Get(2, "/healthz", ""));
  EXPECT_EQ(health["node"], "node-3");
  EXPECT_EQ(Get(2, "/healthz", "").header("x-lastframe-node"), "node-3");
  HttpResult stream = Get(0, "/v1/streams/cam-1", admin_);
  EXPECT_EQ(JsonOf(stream)["node"], "node-1");
  EXPECT_EQ(stream.header("x-lastframe-node"), "node-1");
  HttpResult snapshot = Get(1, "/snapshot?stream_name=cam-2", admin_);
  ASSERT_EQ(snapshot.status, 200) << snapshot.body;
  EXPECT_EQ(snapshot.header("x-lastframe-node"), "node-2");
  uint16_t image_port = 0;
  std::string image_target;
  SplitUrl(JsonOf(snapshot)["url"], &image_port, &image_target);
  EXPECT_EQ(image_port, port(1));
  HttpResult image = HttpGet(image_port, image_target);
  EXPECT_EQ(image.status, 200);
  EXPECT_EQ(image.header("x-lastframe-node"), "node-2");
  EXPECT_EQ(Get(0, "/no/such/route", admin_).header("x-lastframe-node"), "node-1");

  // A node that stops answering (SIGSTOP: its socket still takes connections)
  // is named as timed out, and the listing comes within the timeout.
  nodes_[1]->process().Signal(SIGSTOP);
  // A signal is delivered in its own time: until then node-2 still answers.
  ASSERT_TRUE(Eventually([&] { return ProcessState(nodes_[1]->process().pid()) == 'T'; }));
  milliseconds took{0};
  json stalled = Listing(0, admin_, &took);
  nodes_[1]->process().Signal(SIGCONT);
  EXPECT_GE(took, milliseconds(static_cast<int64_t>(kPeerTimeoutS * 1000) - 100));
  EXPECT_LT(took, milliseconds(static_cast<int64_t>(kPeerTimeoutS * 1000)) + kSlack);
  EXPECT_EQ(Holders(stalled),
            (std::map<std::string, std::string>{{"cam-1", "node-1"}, {"cam-3", "node-3"}}));
  json slow = NodesByUrl(stalled)[UrlOf(port(1))];
  EXPECT_EQ(slow["ok"], false) << stalled.dump(2);
  EXPECT_EQ(slow["node"], "node-2");  // as it last named itself
  EXPECT_EQ(slow["error"], "timeout after 1 s");

  // node-3 killed: the others still list the cluster, naming it, within the timeout.
  const uint16_t dead_port = port(2);
  nodes_[2]->process().Signal(SIGKILL);
  EXPECT_EQ(nodes_[2]->process().Wait(), 128 + SIGKILL);
  for (int i : {0, 1}) {
    SCOPED_TRACE(Id(i));
    json after = Listing(i, admin_, &took);
    EXPECT_LT(took, milliseconds(static_cast<int64_t>(kPeerTimeoutS * 1000)) + kSlack);
    std::map<std::string, std::string> alive = {{"cam-1", "node-1"}, {"cam-2", "node-2"}};
    EXPECT_EQ(Holders(after), alive) << after.dump(2);
    json dead = NodesByUrl(after)[UrlOf(dead_port)];
    EXPECT_EQ(dead["ok"], false) << after.dump(2);
    EXPECT_EQ(dead["node"], "node-3");
    EXPECT_TRUE(dead["error"].is_string() && !dead["error"].get<std::string>().empty());
    for (const json& n : after["nodes"])
      if (n["url"] != UrlOf(dead_port)) {
        EXPECT_EQ(n["ok"], true) << n.dump();
      }
  }
}

// The requests of the API's group (/v1/...) |port| has answered, from its /metrics.
double ApiRequests(uint16_t port, const std::string& admin) {
  HttpResult r = HttpRequest(port, "GET", "/metrics", "", {{"Authorization", "Bearer " + admin}});
  EXPECT_EQ(r.status, 200);
  const std::string series = "lastframe_http_request_duration_seconds_count{route=\"api\"";
  double total = 0;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series, 0) == 0) total += std::stod(line.substr(line.rfind(' ') + 1));
  return total;
}

TEST_F(ClusterTest, RefusedCallersAreRefusedBeforeAnyPeerIsAsked) {
  const double asked_before[] = {ApiRequests(port(1), admin_), ApiRequests(port(2), admin_)};
  const std::string unknown = "lf_" + std::string(64, '0');
  for (const std::map<std::string, std::string>& headers :
       {std::map<std::string, std::string>{},
        std::map<std::string, std::string>{{"X-Lastframe-Fanout", "1"}},
        std::map<std::string, std::string>{{"Authorization", "Bearer " + unknown}},
        std::map<std::string, std::string>{{"Authorization", "Bearer " + unknown},
                                           {"X-Lastframe-Fanout", "1"}}}) {
    HttpResult r = HttpRequest(port(0), "GET", "/v1/streams", "", headers);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(JsonOf(r)["code"], "Unauthorized");
    EXPECT_EQ(r.header("x-lastframe-node"), "node-1");
  }
  // None of them reached a peer: the peers answered no API request meanwhile.
  EXPECT_EQ(ApiRequests(port(1), admin_), asked_before[0]);
  EXPECT_EQ(ApiRequests(port(2), admin_), asked_before[1]);
  // A key that is good is forwarded and asks them (the count does move).
  EXPECT_EQ(Listing(0, viewer_)["nodes"].size(), 3u);
  EXPECT_EQ(ApiRequests(port(1), admin_), asked_before[0] + 1);
  // The fan-out mark never widens a key: a viewer of cam-2 still sees nothing else.
  HttpResult own = Get(0, "/v1/streams", viewer_, {{"X-Lastframe-Fanout", "1"}});
  ASSERT_EQ(own.status, 200);
  EXPECT_EQ(JsonOf(own)["streams"], json::array());
  // ... nor opens an admin route.
  HttpResult create =
      HttpRequest(port(0), "POST", "/v1/streams", R"({"name":"x","url":"rtsp://127.0.0.1:1/x"})",
                  {{"Authorization", "Bearer " + viewer_}, {"X-Lastframe-Fanout", "1"}});
  EXPECT_EQ(create.status, 403) << create.body;
}

}  // namespace
}  // namespace lastframe::testing
