// Issue 15: the cluster as its users meet it. deploy/local-cluster.sh starts
// three nodes, the shared S3 store and HAProxy (deploy/haproxy.cfg); every
// request goes through HAProxy, as a viewer's or a producer's would:
//   - 30 producers push; each stream's snapshot is its true newest frame
//     (PSNR against the producer's own frames), from a URL on the shared store;
//   - every way a request names a stream reaches the stream's one node
//     (PutMedia's header, /v1/streams/NAME/..., Kinesis Video's JSON body by
//     name and by ARN);
//   - one node killed with SIGKILL: snapshots of the other streams keep
//     answering (every request checked), the dead node's producers reconnect
//     in a loop and their streams are live again within 5 s of the reconnection
//     (its first frame is a keyframe), the cluster listing names the dead
//     node within its timeout, and the dead node's fragment lists and clips are
//     answered from the archive with every fragment that was PERSISTED;
//   - pulled cameras (the same config on every node) are pulled by the node
//     HAProxy routes each to, and the dead node's camera moves.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/secret.h"
#include "core/time_format.h"
#include "e2e/e2e_util.h"
#include "support/http_client.h"
#include "support/media_check.h"
#include "support/process.h"
#include "support/server.h"
#include "support/temp_dir.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string SourceDir() { return LASTFRAME_SOURCE_DIR; }
std::string Script() { return SourceDir() + "/deploy/local-cluster.sh"; }

constexpr int kNodes = 3;
constexpr int kStreams = 30;
constexpr int kWidth = 160, kHeight = 120, kFps = 10, kGop = 5;

// A free loopback port, for HAProxy (the script wants one named).
uint16_t FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string StreamName(int i) { return "cam" + std::string(i < 10 ? "0" : "") + std::to_string(i); }

double MsSince(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

class HaproxyClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_dir_ = dir_.file("cluster");
    // Cameras every node is given; each pulls those HAProxy routes to it.
    camera_clip_ = TestClip(dir_, "camera.mkv", kWidth, kHeight, kFps, 4.0, kGop);
    std::ofstream(dir_.file("cameras.toml"))
        << "[[streams]]\nname = \"pulled-a\"\nurl = \"file://" << camera_clip_ << "\"\n"
        << "[[streams]]\nname = \"pulled-b\"\nurl = \"file://" << camera_clip_ << "\"\n"
        << "[[streams]]\nname = \"pulled-c\"\nurl = \"file://" << camera_clip_ << "\"\n";
    port_ = FreeLoopbackPort();
    std::string out;
    ASSERT_EQ(
        RunCommand({Script(), "up", std::to_string(kNodes), std::to_string(port_)}, &out, Env()), 0)
        << out;
    up_ = true;
    const size_t at = out.rfind("LASTFRAME_TOKEN=");
    ASSERT_NE(at, std::string::npos) << out;
    token_ = out.substr(at + 16);
    token_ = token_.substr(0, token_.find('\n'));
    ASSERT_EQ(token_.rfind("lf_", 0), 0u) << out;
    SetDefaultBearer(port_, token_);
    std::istringstream creds(ReadFile(cluster_dir_ + "/credentials"));
    std::string k, v;
    while (creds >> k >> v) (k == "access_key" ? access_key_ : secret_key_) = v;
    ASSERT_FALSE(access_key_.empty());
    ASSERT_FALSE(secret_key_.empty());
  }
  void TearDown() override {
    SetDefaultBearer(port_, "");
    if (!up_) return;
    std::string out;
    EXPECT_EQ(RunCommand({Script(), "down"}, &out, Env()), 0) << out;
    if (HasFailure())
      for (const char* name : {"node1", "node2", "node3", "haproxy", "store"}) {
        std::string log = ReadFile(cluster_dir_ + "/" + name + ".log");
        if (log.size() > 6000) log = log.substr(log.size() - 6000);
        std::cerr << "---- " << name << ".log (end)\n" << log << "\n";
      }
  }
  std::vector<std::string> Env() const {
    return {"LASTFRAME_CLUSTER_DIR=" + cluster_dir_, "LASTFRAME_BIN=" + LastframeBinary(),
            "LASTFRAME_CLUSTER_CONFIG=" + dir_.file("cameras.toml")};
  }
  std::map<std::string, std::string> Bearer() const {
    return {{"Authorization", "Bearer " + token_}};
  }
  // A Kinesis Video call through HAProxy, signed with the cluster's key pair.
  HttpResult Kvs(const std::string& op, const json& body) {
    return SignedKvsCall(port_, op, body.dump(), access_key_, secret_key_);
  }
  // The stream's snapshot through HAProxy, its image fetched from the shared
  // store's signed URL; the node that answered in |node|.
  HttpResult Snapshot(const std::string& stream, std::string* node = nullptr,
                      std::string* image = nullptr) {
    HttpResult r = HttpGet(port_, "/v1/streams/" + stream + "/snapshot");
    if (node) *node = r.header("x-lastframe-node");
    if (r.status != 200 || image == nullptr) return r;
    json j = JsonOf(r);
    uint16_t store_port = 0;
    std::string target;
    SplitUrl(j["url"].get<std::string>(), &store_port, &target);
    EXPECT_NE(store_port, port_) << "an image URL must point at the shared store, not a node";
    HttpResult got = HttpRequest(store_port, "GET", target, "", {});
    EXPECT_EQ(got.status, 200) << j;
    *image = got.body;
    return r;
  }
  // A port of cluster.env (local-cluster.sh's): Setting("STORE_PORT"), Setting("2_PORT") for node2.
  int Setting(const std::string& key) {
    const std::string name = key[0] >= '0' && key[0] <= '9' ? "NODE" + key : key;
    std::istringstream env(ReadFile(cluster_dir_ + "/cluster.env"));
    std::string line;
    while (std::getline(env, line))
      if (line.rfind(name + "=", 0) == 0) return std::stoi(line.substr(name.size() + 1));
    ADD_FAILURE() << "no " << name << " in cluster.env";
    return 0;
  }

  TempDir dir_;
  std::string cluster_dir_, camera_clip_, token_, access_key_, secret_key_;
  uint16_t port_ = 0;
  bool up_ = false;
};

// A camera's producer restarted in a loop, as the README shows: ffmpeg
// pushing live through HAProxy; when its connection ends it starts again
// after a short pause (a real camera's reconnect backoff).
class LoopingProducer {
 public:
  LoopingProducer(uint16_t port, std::string stream, std::string token)
      : thread_([this, port, stream = std::move(stream), token = std::move(token)] {
          while (!stop_) {
            {
              std::lock_guard lock(mu_);
              if (stop_) break;
              process_ = std::make_unique<Process>(
                  LiveProducer(port, stream, std::to_string(kWidth) + "x" + std::to_string(kHeight),
                               token, 120));
              last_start_ = Steady::now();
              ++starts_;
            }
            process_->Wait();
            if (!stop_) std::this_thread::sleep_for(milliseconds(200));  // the camera's backoff
          }
        }) {}
  ~LoopingProducer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      if (process_) process_->Signal(SIGKILL);
    }
    thread_.join();
  }
  Steady::time_point last_start() {
    std::lock_guard lock(mu_);
    return last_start_;
  }
  int starts() {
    std::lock_guard lock(mu_);
    return starts_;
  }

 private:
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Process> process_;
  Steady::time_point last_start_;
  int starts_ = 0;
  std::thread thread_;
};

TEST_F(HaproxyClusterTest, RoutesByStreamServesTrueFramesAndSurvivesANodeKilled) {
  // ---- 30 producers, each its own clip (its own last frame), pushed through HAProxy.
  struct Pushed {
    std::string node;
    std::set<std::string> persisted;
    std::vector<RgbImage> frames;
  };
  std::map<std::string, Pushed> pushed;
  const int64_t pushed_from_ms = SystemClock::Get().NowMs();
  for (int i = 0; i < kStreams; ++i) {
    const std::string name = StreamName(i);
    const std::string clip =
        TestClip(dir_, name + ".mkv", kWidth, kHeight, kFps, (10.0 + i) / kFps, kGop);
    HttpResult r =
        HttpRequest(port_, "POST", "/putMedia", ReadFile(clip),
                    {{"x-amzn-stream-name", name}, {"Authorization", "Bearer " + token_}});
    ASSERT_EQ(r.status, 200) << name << ": " << r.body;
    Pushed& p = pushed[name];
    p.node = r.header("x-lastframe-node");
    const std::vector<std::string> persisted = PersistedFragments(r.body);
    p.persisted = {persisted.begin(), persisted.end()};
    // (10 + i) frames, a keyframe every 5: every fragment PERSISTED, in the shared store.
    EXPECT_EQ(p.persisted.size(), static_cast<size_t>((10 + i + kGop - 1) / kGop)) << r.body;
    p.frames = DecodeAllFramesWithFfmpeg(clip, kWidth, kHeight);
    ASSERT_EQ(p.frames.size(), static_cast<size_t>(10 + i));
  }
  const int64_t pushed_to_ms = SystemClock::Get().NowMs();

  // Consistent hashing spread them over all three nodes.
  std::map<std::string, std::vector<std::string>> by_node;
  for (const auto& [name, p] : pushed) by_node[p.node].push_back(name);
  ASSERT_EQ(by_node.size(), static_cast<size_t>(kNodes)) << "streams landed on too few nodes";

  // ---- Every snapshot is its stream's true newest frame, from the node that holds it.
  for (const auto& [name, p] : pushed) {
    std::string node, jpeg;
    HttpResult r = Snapshot(name, &node, &jpeg);
    ASSERT_EQ(r.status, 200) << name << ": " << r.body;
    EXPECT_EQ(node, p.node) << name;
    RgbImage got = DecodeJpeg(jpeg);
    const double newest = Psnr(got, p.frames.back());
    EXPECT_GT(newest, 28.0) << name;  // JPEG quality 80 at 160x120
    EXPECT_GT(newest, Psnr(got, p.frames[p.frames.size() - 2]) + 3.0) << name << ": not the newest";
    // The route probe names the same node.
    EXPECT_EQ(JsonOf(HttpGet(port_, "/v1/streams/" + name + "/node"))["node"], p.node) << name;
  }

  // ---- Kinesis Video through HAProxy: ListFragments by name and by ARN reach the stream's node
  // and list exactly what was PERSISTED.
  for (const auto& [node, names] : by_node) {
    const std::string& name = names.front();
    HttpResult listed = Kvs("listFragments", {{"StreamName", name}});
    ASSERT_EQ(listed.status, 200) << listed.body;
    EXPECT_EQ(listed.header("x-lastframe-node"), node) << name;
    std::set<std::string> numbers;
    const json listed_body = JsonOf(listed);
    for (const json& f : listed_body["Fragments"]) numbers.insert(f["FragmentNumber"]);
    EXPECT_EQ(numbers, pushed[name].persisted) << name;
    HttpResult described = Kvs("describeStream", {{"StreamName", name}});
    ASSERT_EQ(described.status, 200) << described.body;
    EXPECT_EQ(described.header("x-lastframe-node"), node);
    const std::string arn = JsonOf(described)["StreamInfo"]["StreamARN"];
    HttpResult by_arn = Kvs("listFragments", {{"StreamARN", arn}});
    EXPECT_EQ(by_arn.status, 200) << by_arn.body;
    EXPECT_EQ(by_arn.header("x-lastframe-node"), node) << arn;
  }

  // ---- Pulled cameras: each on exactly the node HAProxy routes it to.
  for (const std::string camera : {"pulled-a", "pulled-b", "pulled-c"}) {
    const std::string owner = JsonOf(HttpGet(port_, "/v1/streams/" + camera + "/node"))["node"];
    EXPECT_TRUE(Eventually([&] {
      HttpResult info = HttpGet(port_, "/v1/streams/" + camera);
      return info.status == 200 && JsonOf(info)["node"] == owner && JsonOf(info)["state"] == "live";
    })) << camera
        << " is not live on " << owner;
  }
  const json listing = JsonOf(HttpGet(port_, "/v1/streams"));
  for (const json& s : listing["streams"]) {
    if (s["name"].get<std::string>().rfind("pulled-", 0) == 0) {
      EXPECT_FALSE(s.contains("also_on")) << "a camera pulled twice: " << s;
    }
  }

  // ---- Kill one node (the one with the most streams) while producers of its streams push.
  std::string victim;
  for (const auto& [node, names] : by_node)
    if (victim.empty() || names.size() > by_node[victim].size()) victim = node;
  const std::vector<std::string>& moved = by_node[victim];
  std::vector<std::string> others;
  for (const auto& [node, names] : by_node)
    if (node != victim) others.insert(others.end(), names.begin(), names.end());

  std::vector<std::unique_ptr<LoopingProducer>> producers;
  for (const auto& name : moved)
    producers.push_back(std::make_unique<LoopingProducer>(port_, name, token_));
  for (const auto& name : moved)
    ASSERT_TRUE(Eventually([&] {
      HttpResult info = HttpGet(port_, "/v1/streams/" + name);
      return info.status == 200 && JsonOf(info)["producer_connected"] == true &&
             JsonOf(info)["state"] == "live";
    })) << name
        << " never went live on " << victim;

  // Snapshots of the other streams, round and round, every answer checked.
  std::atomic<bool> checking{true};
  std::atomic<int> checked{0};
  std::mutex failures_mu;
  std::vector<std::string> failures;
  // A jthread: an ASSERT that returns early stops and joins it.
  std::jthread checker([&](std::stop_token stop) {
    for (size_t i = 0; checking && !stop.stop_requested(); ++i) {
      const std::string& name = others[i % others.size()];
      HttpResult r = HttpGet(port_, "/v1/streams/" + name + "/snapshot");
      ++checked;
      if (r.status != 200) {
        std::lock_guard lock(failures_mu);
        failures.push_back(name + ": " + std::to_string(r.status) + " " + r.body);
      }
    }
  });

  std::string out;
  const auto killed_at = Steady::now();
  ASSERT_EQ(RunCommand({Script(), "kill", victim}, &out, Env()), 0) << out;

  // The dead node's streams live again on another node, each within 5 s of its producer's
  // reconnection (whose first frame is a keyframe).
  for (size_t i = 0; i < moved.size(); ++i) {
    const std::string& name = moved[i];
    std::string node, last;
    const bool live = Eventually(
        [&] {
          HttpResult info = HttpGet(port_, "/v1/streams/" + name);
          last = std::to_string(info.status) + " " + info.body;
          if (info.status != 200) return false;
          json j = JsonOf(info);
          node = j["node"];
          if (node == victim || j["producer_connected"] != true || j["state"] != "live")
            return false;
          HttpResult snap = Snapshot(name);
          last += "; snapshot " + std::to_string(snap.status) + " " + snap.body;
          return snap.status == 200;
        },
        seconds(20));
    ASSERT_TRUE(live) << name << ": " << last << " (" << producers[i]->starts() << " starts)";
    const double since_reconnect = MsSince(producers[i]->last_start());
    const double since_kill = MsSince(killed_at);
    std::cerr << name << ": live on " << node << " " << since_kill << " ms after the kill, "
              << since_reconnect << " ms after its producer's last start ("
              << producers[i]->starts() << " starts)\n";
    EXPECT_LT(since_reconnect, 5000.0) << name;
    EXPECT_GE(producers[i]->starts(), 2) << name << " never reconnected";
  }
  // The other streams never failed meanwhile.
  checking = false;
  checker.join();
  EXPECT_GT(checked.load(), 10);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();

  // The cluster listing names the dead node, within its peer timeout (1.5 s).
  const auto listed_at = Steady::now();
  HttpResult all = HttpGet(port_, "/v1/streams");
  const double listing_ms = MsSince(listed_at);
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_LT(listing_ms, 1500.0 + 1000.0);
  // (By its URL: a node dead before this node ever heard from it has no name to give.)
  const std::string victim_url =
      "http://127.0.0.1:" + std::to_string(Setting(victim.substr(4) + "_PORT"));
  const json nodes = JsonOf(all)["nodes"];
  size_t dead_named = 0;
  for (const json& n : nodes) {
    if (n["ok"] == false) {
      EXPECT_EQ(n["url"], victim_url) << nodes;
    }
    dead_named += n["ok"] == false && n["url"] == victim_url;
  }
  EXPECT_EQ(dead_named, 1u) << nodes;

  // The dead node's streams: every fragment PERSISTED before it died is still listed and
  // clipped, from the archive, through HAProxy.
  const std::string range = "timestamp=server&start=" + std::to_string(pushed_from_ms) +
                            "&end=" + std::to_string(pushed_to_ms);
  for (const auto& name : moved) {
    HttpResult list = HttpGet(port_, "/v1/streams/" + name + "/fragments?" + range);
    ASSERT_EQ(list.status, 200) << name << ": " << list.body;
    std::set<std::string> numbers;
    const json list_body = JsonOf(list);
    for (const json& f : list_body["fragments"]) numbers.insert(f["fragment_number"]);
    for (const auto& n : pushed[name].persisted)
      EXPECT_TRUE(numbers.count(n)) << name << ": PERSISTED fragment " << n << " is gone";
    HttpResult clip = HttpGet(port_, "/v1/streams/" + name + "/clip?format=mkv&" + range);
    ASSERT_EQ(clip.status, 200) << name << ": " << clip.body.substr(0, 300);
    const std::string file = dir_.file(name + "-archived.mkv");
    std::ofstream(file, std::ios::binary) << clip.body;
    std::vector<RgbImage> frames = DecodeAllFramesWithFfmpeg(file, kWidth, kHeight);
    ASSERT_EQ(frames.size(), pushed[name].frames.size()) << name;
    EXPECT_GT(Psnr(frames.back(), pushed[name].frames.back()), 40.0) << name;
  }

  // Pulled cameras of the dead node moved too: each is live on the node it now routes to.
  for (const std::string camera : {"pulled-a", "pulled-b", "pulled-c"}) {
    EXPECT_TRUE(Eventually(
        [&] {
          HttpResult owner = HttpGet(port_, "/v1/streams/" + camera + "/node");
          HttpResult info = HttpGet(port_, "/v1/streams/" + camera);
          return owner.status == 200 && info.status == 200 && JsonOf(owner)["node"] != victim &&
                 JsonOf(info)["node"] == JsonOf(owner)["node"] && JsonOf(info)["state"] == "live";
        },
        seconds(20)))
        << camera;
  }
  producers.clear();
}

}  // namespace
}  // namespace lastframe::testing
