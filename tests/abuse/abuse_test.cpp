// The abuse suite: each fault or attack of issue 12 against the real server,
// with the answer it must give, and after each, the server unharmed (see
// AbuseTest::ExpectUnharmed). RELIABILITY.md quotes the [figures] lines.

#include <poll.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include "abuse/abuse_util.h"

namespace lastframe::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(AbuseTest, AtTheDescriptorLimitTheAcceptorBacksOffAndOpenConnectionsAreServed) {
  // More connections allowed than descriptors: the kernel's limit is what stops accepts.
  Start({"--max-connections", "1000"}, {"prlimit", "--nofile=128:128", "--"});
  RawConnection kept(port());  // open before the flood
  ASSERT_EQ(StatusOf(kept.Get("/healthz")), 200);
  std::vector<std::unique_ptr<RawConnection>> flood;
  for (int i = 0; i < 200; ++i) flood.push_back(std::make_unique<RawConnection>(port()));
  ASSERT_NE(server_->process().WaitForLine("accept failed", 20s), "");
  // A measuring window, not a synchronisation: the server must idle through it.
  ProcStats before = StatsOf(pid());
  auto t0 = Clock::now();
  std::this_thread::sleep_for(2s);
  ProcStats after = StatsOf(pid());
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = static_cast<double>(after.cpu_ticks - before.cpu_ticks) /
               static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds;
  EXPECT_LT(cpu, 0.25) << "the acceptor spins at the descriptor limit";
  std::printf("[figures] descriptor limit: CPU %.0f%% of a core while 200 connections wait\n",
              cpu * 100);
  // The connection it had is still served, while new ones wait in the backlog.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(StatusOf(kept.Get("/healthz")), 200);
  // One warning a second at most.
  std::string log = server_->process().Output();
  EXPECT_LE(CountOf(log, "accept failed"), 30u) << "log lines per second are not bounded";
  flood.clear();
  EXPECT_TRUE(Eventually([&] { return HttpGet(port(), "/healthz").status == 200; }));
  ExpectUnharmed("descriptor limit");
}

TEST_F(AbuseTest, PastTheConnectionLimitNewConnectionsGet503AndAreCounted) {
  // 320 descriptors: a quarter (at least 256) stays free, so at most 64 connections.
  Start({}, {"prlimit", "--nofile=320:320", "--"});
  EXPECT_NE(server_->process().Output().find("connections: at most 64 "), std::string::npos)
      << server_->process().Output();
  RawConnection kept(port());
  ASSERT_EQ(StatusOf(kept.Get("/healthz")), 200);
  // This one and the one asking.
  ASSERT_TRUE(Eventually(
      [&] { return LimitMetric(port(), "lastframe_limit_in_use", "connections") == 2; }));
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 63; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_EQ(StatusOf(idle.back()->Get("/healthz")), 200) << "connection " << i + 2;
  }
  RawConnection over(port());
  std::string refused = over.ReadUntilClosed();
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_NE(refused.find("\"code\":\"TooManyConnections\""), std::string::npos) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  std::string metrics = kept.Get("/metrics", Bearer());
  EXPECT_NE(
      metrics.find("lastframe_limit_refusals_total{limit=\"connections\",unit=\"connections\"} 1"),
      std::string::npos)
      << metrics;
  idle.pop_back();  // one place comes free
  EXPECT_TRUE(Eventually([&] { return HttpGet(port(), "/healthz").status == 200; }));
  idle.clear();
  ExpectUnharmed("connection limit");
}

TEST_F(AbuseTest, ConnectionsFromOneAddressAreBoundedAndOtherAddressesServed) {
  Start({"--max-connections-per-ip", "8"});
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_EQ(StatusOf(held.back()->Get("/healthz")), 200);
  }
  RawConnection ninth(port());
  std::string refused = ninth.ReadUntilClosed();
  EXPECT_EQ(StatusOf(refused), 429) << refused;
  EXPECT_NE(refused.find("\"code\":\"TooManyConnectionsFromAddress\""), std::string::npos);
  RawConnection elsewhere(port(), "127.0.0.2");
  ASSERT_TRUE(elsewhere.connected());
  EXPECT_EQ(StatusOf(elsewhere.Get("/healthz")), 200);
  held.clear();
  EXPECT_TRUE(Eventually([&] { return HttpGet(port(), "/healthz").status == 200; }));
  ExpectUnharmed("connections per address");
}

TEST_F(AbuseTest, BufferedRequestBodiesAreBoundedAcrossConnections) {
  Start({"--max-buffered-bytes", "4194304"});
  const std::string head = "POST /v1/streams HTTP/1.1\r\nHost: x\r\n" + Bearer() +
                           "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 4; ++i) {  // 4 x 1,000,000 bytes fit in 4 MiB
    slow.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(slow.back()->Send(head + std::string(1000, ' ')));
  }
  ASSERT_TRUE(Eventually([&] {
    return LimitMetric(port(), "lastframe_limit_in_use", "buffered_request_bytes") == 4'000'000;
  }));
  RawConnection fifth(port());
  ASSERT_TRUE(fifth.Send(head + std::string(1000, ' ')));
  std::string busy = fifth.ReadUntilClosed();
  EXPECT_EQ(StatusOf(busy), 503) << busy;
  EXPECT_NE(busy.find("\"code\":\"ServerBusy\""), std::string::npos) << busy;
  EXPECT_NE(busy.find("Retry-After: 1"), std::string::npos) << busy;
  EXPECT_LE(StatsOf(pid()).rss_bytes, baseline_.rss_bytes + (64u << 20));
  slow.clear();
  ASSERT_TRUE(Eventually([&] {
    return LimitMetric(port(), "lastframe_limit_in_use", "buffered_request_bytes") == 0;
  }));
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/streams", R"({"name":"after"})").status, 201);
  ExpectUnharmed("buffered bodies");
}

TEST_F(AbuseTest, AKeyframeOverTheFragmentLimitIsRefusedAsItArrives) {
  Start();
  std::string head = MatroskaHead(ReadFile(TestClip(dir_, "head.mkv", 160, 120, 10, 1, 10)));
  // A Cluster of unknown size, its Timecode, and a SimpleBlock declaring 120 MiB.
  std::string block_head = std::string("\x1F\x43\xB6\x75\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 12) +
                           std::string("\xE7\x81\x00", 3) +
                           std::string("\xA3\x01\x00\x00\x00\x07\x80\x00\x00", 9) +
                           std::string("\x81\x00\x00\x80", 4);
  RawConnection producer(port());
  ASSERT_TRUE(
      producer.Send("POST /putMedia HTTP/1.1\r\nHost: x\r\nx-amzn-stream-name: huge\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n" +
                    Chunk(head + block_head)));
  std::atomic<size_t> sent{0};
  std::thread sender([&] {
    const std::string junk = Chunk(std::string(1 << 20, '\x42'));
    for (int i = 0; i < 121; ++i) {
      if (!producer.Send(junk)) return;
      sent += 1 << 20;
    }
    producer.Send("0\r\n\r\n");
  });
  std::string reply = producer.ReadUntilClosed();
  sender.join();
  EXPECT_NE(reply.find("\"ErrorId\":4001"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("PERSISTED"), std::string::npos) << reply;
  EXPECT_EQ(LimitMetric(port(), "lastframe_limit_refusals_total", "fragment_bytes"), 1);
  EXPECT_LT(sent.load(), 100u << 20) << "the server read the whole keyframe";
  HttpResult info = HttpGet(port(), "/v1/streams/huge");
  if (info.status == 200) {
    EXPECT_EQ(JsonOf(info)["fragment_count"], 0) << info.body;
  }
  uintmax_t on_disk = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir_.file("data"), ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) on_disk = std::max(on_disk, it->file_size());
  EXPECT_LT(on_disk, 16u << 20) << "a large file was written";
  EXPECT_LE(StatsOf(pid()).rss_bytes, baseline_.rss_bytes + (96u << 20));
  ExpectUnharmed("120 MiB keyframe");
}

TEST_F(AbuseTest, ProducersThatTrickleBytesButNoFrameAreDroppedAtTheProducerTimeout) {
  Start({"--producer-timeout", "2"});
  std::string clip = ReadFile(TestClip(dir_, "trickle.mkv", 160, 120, 10, 2, 10));
  std::string head = MatroskaHead(clip);
  constexpr int kProducers = 5;
  std::vector<std::unique_ptr<RawConnection>> producers;
  for (int i = 0; i < kProducers; ++i) {
    producers.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(producers.back()->Send(
        "POST /putMedia HTTP/1.1\r\nHost: x\r\nx-amzn-stream-name: "
        "trickle" +
        std::to_string(i) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk(head)));
  }
  // One byte of the first cluster every 250 ms to each: never a whole frame for 20 s.
  std::atomic<bool> trickling{true};
  std::thread trickler([&] {
    for (size_t at = head.size(); at < clip.size() && at < head.size() + 80 && trickling; ++at) {
      for (auto& p : producers) p->Send(Chunk(clip.substr(at, 1)));
      std::this_thread::sleep_for(250ms);  // the attacker's pace
    }
    trickling = false;
  });
  std::vector<std::string> replies(kProducers);
  std::vector<bool> while_trickling(kProducers);
  std::vector<std::thread> readers;
  for (int i = 0; i < kProducers; ++i)
    readers.emplace_back([&, i] {
      replies[i] = producers[i]->ReadUntilClosed();
      while_trickling[i] = trickling;
    });
  for (auto& r : readers) r.join();
  trickling = false;
  trickler.join();
  for (int i = 0; i < kProducers; ++i) {
    EXPECT_NE(replies[i].find("\"ErrorId\":4000"), std::string::npos) << replies[i];
    EXPECT_NE(replies[i].find("idle timeout"), std::string::npos) << replies[i];
    EXPECT_TRUE(while_trickling[i]) << "producer " << i << " was kept while it trickled bytes";
  }
  producers.clear();
  EXPECT_TRUE(Eventually([&] { return StatsOf(pid()).threads <= baseline_.threads; }))
      << "producer threads were not given back";
  ExpectUnharmed("trickling producers");
}

TEST_F(AbuseTest, StreamsLeftByProducersThatSentNothingUsableAreForgotten) {
  Start({}, {}, /*retention_s=*/3);
  ASSERT_EQ(HttpRequest(port(), "POST", "/v1/streams", R"({"name":"made"})").status, 201);
  for (int i = 0; i < 20; ++i) {
    std::string name = "junk" + std::to_string(i);
    HttpResult r = PushOneShot(port(), name, "not a Matroska stream");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"ErrorId\":4006"), std::string::npos) << r.body;
    // Listed, with its error, for its retention at least (3 s: far longer than this takes).
    HttpResult listed = HttpGet(port(), "/v1/streams/" + name);
    ASSERT_EQ(listed.status, 200) << listed.body;
    EXPECT_EQ(JsonOf(listed)["state"], "error") << listed.body;
  }
  auto names = [&] {
    std::vector<std::string> out;
    HttpResult list = HttpGet(port(), "/v1/streams");
    EXPECT_EQ(list.status, 200) << list.body;
    json streams = JsonOf(list)["streams"];
    for (const auto& s : streams) out.push_back(s["name"]);
    return out;
  };
  ASSERT_TRUE(Eventually([&] { return names().size() == 2; }, 30s))
      << "streams that never had a frame stay listed";
  std::vector<std::string> left = names();
  EXPECT_NE(std::find(left.begin(), left.end(), "made"), left.end());
  EXPECT_NE(std::find(left.begin(), left.end(), "witness"), left.end());
  ExpectUnharmed("abandoned streams");
}

TEST_F(AbuseTest, StreamsProducersAndPullsAreBoundedWith429) {
  Start({"--max-streams", "5", "--max-producers", "2", "--max-pulls", "1", "--pull-allow",
         "127.0.0.0/8"});
  std::string head = MatroskaHead(ReadFile(TestClip(dir_, "held.mkv", 160, 120, 10, 1, 10)));
  std::vector<std::unique_ptr<RawConnection>> held;
  for (const char* name : {"p1", "p2"}) {
    held.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(held.back()->Send(std::string("POST /putMedia HTTP/1.1\r\nHost: x\r\n") +
                                  "x-amzn-stream-name: " + name +
                                  "\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk(head)));
  }
  ASSERT_TRUE(
      Eventually([&] { return LimitMetric(port(), "lastframe_limit_in_use", "producers") == 2; }));
  HttpResult third = PushOneShot(port(), "p3", ReadFile(witness_clip_));
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_EQ(JsonOf(third)["code"], "TooManyProducers");
  EXPECT_EQ(third.body.find("EventType"), std::string::npos) << "acknowledged before refusing";
  // Streams: witness, p1, p2; a pull makes 4.
  HttpResult pull = HttpRequest(port(), "POST", "/v1/streams",
                                R"({"name":"pulled","url":"http://127.0.0.1:9/cam.mkv"})");
  EXPECT_EQ(pull.status, 201) << pull.body;
  HttpResult second_pull = HttpRequest(port(), "POST", "/v1/streams",
                                       R"({"name":"pulled2","url":"http://127.0.0.1:9/c.mkv"})");
  EXPECT_EQ(second_pull.status, 429) << second_pull.body;
  EXPECT_EQ(JsonOf(second_pull)["code"], "TooManyPulls");
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/streams", R"({"name":"c5"})").status, 201);
  HttpResult sixth = HttpRequest(port(), "POST", "/v1/streams", R"({"name":"c6"})");
  EXPECT_EQ(sixth.status, 429) << sixth.body;
  EXPECT_EQ(JsonOf(sixth)["code"], "TooManyStreams");
  EXPECT_EQ(sixth.header("retry-after"), "1");
  std::string aws;
  EXPECT_NE(RunAwsCli(dir_, server_->base_url(),
                      {"kinesisvideo", "create-stream", "--stream-name", "kv6"}, &aws),
            0);
  EXPECT_NE(aws.find("AccountStreamLimitExceededException"), std::string::npos) << aws;
  for (const char* limit : {"producers", "pulls"})
    EXPECT_EQ(LimitMetric(port(), "lastframe_limit_refusals_total", limit), 1) << limit;
  EXPECT_EQ(LimitMetric(port(), "lastframe_limit_refusals_total", "streams"), 2);
  // Places come back: a producer ends, a stream is deleted.
  held.clear();
  ASSERT_TRUE(
      Eventually([&] { return LimitMetric(port(), "lastframe_limit_in_use", "producers") == 0; }));
  EXPECT_EQ(HttpRequest(port(), "DELETE", "/v1/streams/c5").status, 204);
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/streams", R"({"name":"c6"})").status, 201);
  ExpectUnharmed("stream, producer and pull counts");
}

// A camera that sends one short clip per connection and hangs up.
class FlakyCamera {
 public:
  explicit FlakyCamera(std::string clip) : clip_(std::move(clip)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FlakyCamera() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<Clock::time_point> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(Clock::now());
      }
      char buf[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: video/x-matroska\r\nContent-Length: " +
                          std::to_string(clip_.size()) + "\r\nConnection: close\r\n\r\n" + clip_;
      (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  const std::string clip_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Clock::time_point> requests_;
};

TEST_F(AbuseTest, ASourceThatDropsAfterAFrameIsRetriedEverMoreSlowly) {
  Start({"--pull-allow", "127.0.0.0/8"});
  FlakyCamera camera(ReadFile(TestClip(dir_, "flaky.mkv", 160, 120, 10, 1, 10)));
  std::string body = R"({"name":"flaky","url":"http://127.0.0.1:)" + std::to_string(camera.port()) +
                     R"(/cam.mkv"})";
  ASSERT_EQ(HttpRequest(port(), "POST", "/v1/streams", body).status, 201);
  ASSERT_TRUE(Eventually([&] { return !camera.requests().empty(); }));
  // A window to count requests in: the attack is a rate.
  std::this_thread::sleep_for(8s);
  auto requests = camera.requests();
  size_t in_window = 0;
  for (auto t : requests) in_window += t - requests.front() <= 8s;
  // Backoff 0.5-1, 1-2, 2-4, 4-8 s after each short session: at most 5 in 8 s
  // (with the backoff reset by each frame it was 16 or more).
  EXPECT_LE(in_window, 5u) << "the source is hammered";
  EXPECT_GE(in_window, 2u) << "the source is not retried";
  std::printf("[figures] flaky source: %zu requests in 8 s\n", in_window);
  EXPECT_EQ(HttpRequest(port(), "DELETE", "/v1/streams/flaky").status, 204);
  ExpectUnharmed("flaky source");
}

TEST_F(AbuseTest, RendersAreBoundedInPixelsAndLargeOnesNeverHoldUpSmallOnes) {
  Start({"--max-render-pixels", "1920x1080"});
  HttpResult too_big = HttpGet(port(), "/v1/streams/witness/latest.png?width=4000&height=3000");
  EXPECT_EQ(too_big.status, 400) << too_big.body;
  EXPECT_EQ(JsonOf(too_big)["code"], "TooManyPixels");
  EXPECT_EQ(LimitMetric(port(), "lastframe_limit_refusals_total", "render_pixels"), 1);
  // Eight large PNGs (upscaled to the bound, each a render of its own), then a small JPEG.
  constexpr int kLarge = 8;
  std::mutex mu;
  std::vector<Clock::time_point> large_done;
  std::vector<int> large_status(kLarge);
  std::vector<std::thread> large;
  for (int i = 0; i < kLarge; ++i)
    large.emplace_back([&, i] {
      HttpResult r =
          HttpGet(port(), "/v1/streams/witness/latest.png?width=" + std::to_string(1920 - 2 * i) +
                              "&height=1080");
      std::lock_guard lock(mu);
      large_status[i] = r.status;
      if (r.status == 200) large_done.push_back(Clock::now());
    });
  // Once the first large one is done, the others wait for the heavy pool: now a small look.
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return !large_done.empty();
  }));
  HttpResult small = HttpGet(port(), "/v1/streams/witness/latest.jpg?width=80");
  Clock::time_point small_done = Clock::now();
  for (auto& t : large) t.join();
  ASSERT_EQ(small.status, 200) << small.body;
  size_t large_before_small = 0;
  for (auto t : large_done) large_before_small += t < small_done;
  EXPECT_GE(large_done.size(), 4u) << "large renders under the bound were refused";
  EXPECT_LE(large_before_small, 2u) << "a small render waited behind the large ones";
  std::printf("[figures] renders: %zu of %zu large PNGs finished before a small JPEG\n",
              large_before_small, large_done.size());
  ExpectUnharmed("large renders");
}

TEST_F(AbuseTest, AThousandKeepAliveClientsAreAllServedWithinTwoSeconds) {
  // The clients need descriptors too: as many as this machine's hard limit allows.
  rlimit fds{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &fds), 0);
  fds.rlim_cur = fds.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &fds), 0);
  const uint64_t clients = std::min<uint64_t>(1000, fds.rlim_max > 400 ? fds.rlim_max - 300 : 100);
  Start({"--demo", "--max-connections", std::to_string(clients + 100)});
  ASSERT_TRUE(
      Eventually([&] { return HttpGet(port(), "/v1/streams/demo/snapshot").status == 200; }));
  std::string out;
  int rc = RunCommand({"wrk", "-t2", "-c" + std::to_string(clients), "-d8s", "--timeout", "2s",
                       "--latency", "-H", "Authorization: Bearer " + server_->admin_token(),
                       server_->base_url() + "/v1/streams/demo/snapshot"},
                      &out);
  ASSERT_EQ(rc, 0) << out;
  std::printf("[figures] %llu keep-alive clients:\n%s\n", static_cast<unsigned long long>(clients),
              out.c_str());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"((\d+) requests in)"))) << out;
  const uint64_t requests = std::stoull(m[1]);
  EXPECT_GT(requests, clients) << out;
  EXPECT_EQ(out.find("Non-2xx"), std::string::npos) << out;
  if (std::regex_search(out, m, std::regex(R"(timeout (\d+))"))) {
    EXPECT_EQ(m[1], "0") << "requests waited over 2 s:\n" << out;
  }
  // One log line per request (at the default level, info), of bounded length.
  ExpectUnharmed("1000 keep-alive clients", 384ull << 20, 48, 256 * (requests + clients));
}

TEST_F(AbuseTest, TransferCodingsOtherThanChunkedAre501) {
  Start();
  std::string reply =
      RawExchange(port(), "POST /v1/streams HTTP/1.1\r\nHost: x\r\n" + Bearer() +
                              "Transfer-Encoding: identity\r\n\r\n{\"name\":\"te\"}");
  EXPECT_EQ(StatusOf(reply), 501) << reply;
  EXPECT_NE(reply.find("\"code\":\"NotImplemented\""), std::string::npos) << reply;
  EXPECT_EQ(HttpGet(port(), "/v1/streams/te").status, 404);
  ExpectUnharmed("transfer coding");
}

TEST_F(AbuseTest, DeletingAStreamWhileRetentionTrimsItLeavesNothingOnDisk) {
  Start();
  // Retention 1 s: the trim works on the stream's files while it is deleted.
  ASSERT_EQ(HttpRequest(port(), "POST", "/v1/streams", R"({"name":"gone","retention_s":1})").status,
            201);
  std::string clip = ReadFile(TestClip(dir_, "many.mkv", 160, 120, 10, 20, 2));
  for (int round = 0; round < 3; ++round) {
    HttpResult pushed = PushOneShot(port(), "gone", clip);
    ASSERT_EQ(pushed.status, 200);
    ASSERT_EQ(CountOf(pushed.body, "PERSISTED"), 100u) << pushed.body;
    ASSERT_EQ(HttpRequest(port(), "DELETE", "/v1/streams/gone").status, 204);
    std::filesystem::path folder = std::filesystem::path(dir_.file("data")) / "fragments";
    EXPECT_TRUE(Eventually([&] {
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(folder, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (it->path().string().find("gone") != std::string::npos) return false;
      return true;
    })) << "the deleted stream's files stay on disk";
    ASSERT_EQ(
        HttpRequest(port(), "POST", "/v1/streams", R"({"name":"gone","retention_s":1})").status,
        201);
  }
  ExpectUnharmed("delete under trim");
}

TEST(FullDisk, AFirstStartLeavesNoHalfWrittenStateBehind) {
  TempDir dir;
  std::string out;
  // Writes of more than 0 bytes fail as on a full disk (SIGXFSZ is ignored by the server).
  int rc = RunCommand({"prlimit", "--fsize=0", "--", LastframeBinary(), "serve", "--data-dir",
                       dir.file("data"), "--listen", "127.0.0.1:0"},
                      &out);
  EXPECT_EQ(rc, 2) << out;
  for (const char* file : {"credentials.json", "keys.json", "initial-keys.txt"}) {
    std::error_code ec;
    auto size = std::filesystem::file_size(dir.file("data") + "/" + file, ec);
    EXPECT_TRUE(ec) << file << " was left behind, " << size << " bytes";
  }
  // The next start, with room, makes them whole and serves.
  LastframeServer server(dir.file("data"));
  EXPECT_EQ(HttpGet(server.port(), "/healthz").status, 200);
  EXPECT_GT(std::filesystem::file_size(dir.file("data") + "/credentials.json"), 10u);
}

}  // namespace
}  // namespace lastframe::testing
