#include "ingest/pull_source.h"

#include <gtest/gtest.h>

#include <condition_variable>

#include "core/mutex.h"
#include "core/test_metrics.h"
#include "ingest/sources_config.h"
#include "support/http_client.h"
#include "support/media_check.h"
#include "support/temp_dir.h"

namespace lastframe::ingest {
namespace {

using metrics::test::MetricDeltas;
using testing::MakeClip;
using testing::TempDir;
using namespace std::chrono_literals;

// Waits (bounded) until |done| holds, re-checking whenever the store reports a frame.
class FrameWaiter {
 public:
  explicit FrameWaiter(store::StreamStore& store) {
    store.SetFrameObserver([this](const std::string&) {
      MutexLock lock(mu_);
      ++frames_;
      cv_.notify_all();
    });
  }
  bool WaitForFrames(size_t n, std::chrono::seconds timeout) {
    MutexLock lock(mu_);
    return lock.WaitFor(cv_, timeout, [&]() LF_REQUIRES(mu_) { return frames_ >= n; });
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  size_t frames_ LF_GUARDED_BY(mu_) = 0;
};

// Polls |probe| until it holds or |timeout| passes: for state a source reports
// without an event to wait on.
bool Within(std::chrono::seconds timeout, const std::function<bool()>& probe) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (probe()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return probe();
}

TEST(PullSource, LoopsAFileAtItsOwnPaceWithATimelineThatKeepsGoing) {
  TempDir dir;
  // 0.5 s at 20 fps, a keyframe every 5 frames: 2 fragments per pass.
  std::string clip = MakeClip(dir.file("loop.mkv"),
                              {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=20", "-t", "0.5",
                               "-c:v", "libx264", "-g", "5", "-bf", "0", "-pix_fmt", "yuv420p"});
  store::StreamStore store(SystemClock::Get(), {.retention_ms = 600'000});
  FrameWaiter waiter(store);
  auto source = PullSource::Start(store, {.stream = "looped", .url = "file://" + clip});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(waiter.WaitForFrames(25, 30s));  // two and a half passes
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 1000ms);  // paced: 25 frames at 20 fps take 1.2 s, not a burst
  SourceInfo info = (*source)->Info();
  EXPECT_EQ(info.state, "live");
  EXPECT_EQ(info.reconnects, 0u);
  (*source)->Stop();
  auto fragments = store.Find("looped")->Fragments();
  ASSERT_GE(fragments.size(), 5u);
  for (size_t i = 1; i < fragments.size(); ++i) {
    EXPECT_GT(fragments[i].timecode_ms, fragments[i - 1].timecode_ms) << i;
    EXPECT_GT(fragments[i].producer_ts_ms, fragments[i - 1].producer_ts_ms) << i;
    EXPECT_TRUE(fragments[i].frames.front().keyframe);
  }
}

// These tests' cameras are on loopback, which pulls may not reach by default.
std::shared_ptr<const PullPolicy> LoopbackAllowed() {
  return std::make_shared<const PullPolicy>(std::vector<Cidr>{*ParseCidr("127.0.0.0/8")},
                                            std::vector<Cidr>{});
}

TEST(PullSource, AnUnreachableCameraRetriesWithBackoffAndShowsWhy) {
  store::StreamStore store(SystemClock::Get(), {});
  MetricDeltas delta({"lastframe_pull_reconnects_total"});
  auto source = PullSource::Start(store, {.stream = "dead",
                                          .url = "rtsp://user:secret@127.0.0.1:1/stream",
                                          .backoff_base = 20ms,
                                          .backoff_max = 100ms,
                                          .policy = LoopbackAllowed()});
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE(Within(20s, [&] { return (*source)->Info().reconnects >= 3; }));
  SourceInfo info = (*source)->Info();
  // Counted as Info's count is, under the same lock: never behind it.
  EXPECT_GE(delta["lastframe_pull_reconnects_total"], static_cast<double>(info.reconnects));
  EXPECT_NE(info.last_error.find("cannot open the source"), std::string::npos) << info.last_error;
  EXPECT_EQ(info.url, "rtsp://user:***@127.0.0.1:1/stream");
  EXPECT_TRUE(store.Find("dead"));  // listed before it ever delivers a frame
}

TEST(PullSource, MetricsFollowASourceFromConnectingToLiveAndCountItsFirstFrame) {
  TempDir dir;
  std::string clip = MakeClip(
      dir.file("m.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=20", "-t", "0.5", "-c:v",
                          "libx264", "-g", "5", "-bf", "0", "-pix_fmt", "yuv420p"});
  store::StreamStore store(SystemClock::Get(), {});
  FrameWaiter waiter(store);
  MetricDeltas delta(
      {R"(lastframe_pull_sources{state="connecting"})", R"(lastframe_pull_sources{state="live"})",
       R"(lastframe_pull_sources{state="error"})", "lastframe_pull_first_frame_seconds_count"});
  auto source = PullSource::Start(store, {.stream = "metered", .url = "file://" + clip});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  // Live and the first frame timed before the first frame reaches the store.
  ASSERT_TRUE(waiter.WaitForFrames(1, 30s));
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="live"})"], 1);
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="connecting"})"], 0);
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="error"})"], 0);
  EXPECT_EQ(delta["lastframe_pull_first_frame_seconds_count"], 1);  // one connection
  source->reset();
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="live"})"], 0);
}

TEST(PullSource, AFailedSourceIsCountedInStateErrorWhileItWaits) {
  store::StreamStore store(SystemClock::Get(), {});
  MetricDeltas delta({R"(lastframe_pull_sources{state="connecting"})",
                      R"(lastframe_pull_sources{state="error"})"});
  // Refused at once, then a backoff of at least 30 s: state error throughout the checks.
  auto source = PullSource::Start(store, {.stream = "refused",
                                          .url = "rtsp://127.0.0.1:1/x",
                                          .backoff_base = 60s,
                                          .backoff_max = 60s,
                                          .policy = LoopbackAllowed()});
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE(Within(20s, [&] { return (*source)->Info().state == "error"; }));
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="error"})"], 1);
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="connecting"})"], 0);
  source->reset();  // prompt: Stop wakes the backoff
  EXPECT_EQ(delta[R"(lastframe_pull_sources{state="error"})"], 0);
}

TEST(PullSource, StopIsPromptWhileACameraHangs) {
  // A listener that never answers: the RTSP handshake waits on it.
  testing::SilentListener hung;
  std::string url = "rtsp://127.0.0.1:" + std::to_string(hung.port()) + "/x";
  store::StreamStore store(SystemClock::Get(), {});
  auto source = PullSource::Start(
      store, {.stream = "hung", .url = url, .open_timeout = 60s, .policy = LoopbackAllowed()});
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE(Within(10s, [&] { return (*source)->Info().state == "connecting"; }));
  auto start = std::chrono::steady_clock::now();
  (*source)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not the 60 s open timeout
}

TEST(PullSource, UrlsAreCheckedAndRedacted) {
  EXPECT_TRUE(ValidateSourceUrl("rtsp://cam.local:554/s1", false).ok());
  EXPECT_TRUE(ValidateSourceUrl("srt://10.0.0.1:9000?mode=caller", false).ok());
  EXPECT_TRUE(ValidateSourceUrl("https://feeds.example/cam.ts", false).ok());
  EXPECT_TRUE(ValidateSourceUrl("file:///var/clips/demo.mkv", true).ok());
  for (const std::string& bad :
       {std::string("file:///etc/passwd"), std::string("ftp://x/y"), std::string("rtsp://"),
        std::string("rtsp:///path"), std::string("rtsp://host/a b"), std::string("cam.local"),
        std::string("concat:a|b"), std::string("")})
    EXPECT_EQ(ValidateSourceUrl(bad, false).reason(), Reason::kInvalidSourceUrl) << bad;
  EXPECT_FALSE(ValidateSourceUrl("file://relative/path.mkv", true).ok());
  EXPECT_EQ(RedactUrl("rtsp://admin:hunter2@10.0.0.5/live"), "rtsp://admin:***@10.0.0.5/live");
  EXPECT_EQ(RedactUrl("rtmp://token@host/app"), "rtmp://***@host/app");
  EXPECT_EQ(RedactUrl("srt://h:1?mode=caller&passphrase=abc&latency=20"),
            "srt://h:1?mode=caller&passphrase=***&latency=20");
  EXPECT_EQ(RedactUrl("http://h/x.ts?token=abc"), "http://h/x.ts?token=***");
  EXPECT_EQ(RedactUrl("rtsp://h/a@b"), "rtsp://h/a@b");  // '@' in the path is not userinfo
}

TEST(PullSources, OneSourcePerStreamAndRemove) {
  store::StreamStore store(SystemClock::Get(), {});
  PullSources sources(store, *LoopbackAllowed());
  PullOptions o{.stream = "cam", .url = "rtsp://127.0.0.1:1/x", .backoff_base = 50ms};
  ASSERT_TRUE(sources.Add(o, false).ok());
  EXPECT_EQ(sources.Add(o, false).reason(), Reason::kStreamExists);
  EXPECT_EQ(sources.Add({.stream = "f", .url = "file:///tmp/x.mkv"}, false).reason(),
            Reason::kInvalidSourceUrl);
  EXPECT_TRUE(sources.Find("cam"));
  EXPECT_EQ(sources.List().size(), 1u);
  EXPECT_TRUE(sources.Remove("cam").ok());
  EXPECT_EQ(sources.Remove("cam").reason(), Reason::kSourceNotFound);
  EXPECT_FALSE(sources.Find("cam"));
}

// Under the default policy a loopback camera is refused before any packet leaves: at
// Add from the API, and at connect for a configured source (state error, with the code).
TEST(PullSources, TheDefaultPolicyRefusesInsideAddressesAtEveryStep) {
  testing::SilentListener inside;
  const std::string url = "rtsp://127.0.0.1:" + std::to_string(inside.port()) + "/x";
  store::StreamStore store(SystemClock::Get(), {});
  PullSources sources(store);
  Status refused = sources.Add({.stream = "api", .url = url}, /*configured=*/false);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_EQ(refused.reason(), Reason::kPullAddressDenied);
  EXPECT_FALSE(sources.Find("api"));
  ASSERT_TRUE(sources
                  .Add({.stream = "configured", .url = url, .backoff_base = 20ms},
                       /*configured=*/true)
                  .ok());
  ASSERT_TRUE(Within(10s, [&] {
    auto info = sources.Find("configured");
    return info && info->last_error_code == "PullAddressDenied";
  }));
  EXPECT_NE(sources.Find("configured")->last_error.find("127.0.0.1"), std::string::npos);
  EXPECT_FALSE(inside.ConnectionArrived());
  sources.StopAll();
}

// A pull never takes over a stream that exists (pushed, or created for pushes).
TEST(PullSources, AnExistingStreamIsNeverTakenOver) {
  store::StreamStore store(SystemClock::Get(), {});
  (void)store.Open("pushed");
  PullSources sources(store, *LoopbackAllowed());
  EXPECT_EQ(sources.Add({.stream = "pushed", .url = "rtsp://127.0.0.1:1/x"}, false).reason(),
            Reason::kStreamExists);
  EXPECT_FALSE(sources.Find("pushed"));
}

TEST(SourcesConfig, ReadsStreamsAndRefusesMistakes) {
  TempDir dir;
  testing::WriteFile(dir.file("ok.toml"),
                     "[[streams]]\nname = \"front\"\nurl = \"rtsp://u:p@10.0.0.2/s\"\n"
                     "rtsp_transport = \"udp\"\nread_timeout_s = 5\n\n"
                     "[[streams]]\nname = \"demo\"\nurl = \"file:///clips/demo.mkv\"\n");
  auto ok = LoadSourcesConfig(dir.file("ok.toml"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].stream, "front");
  EXPECT_EQ((*ok)[0].rtsp_transport, "udp");
  EXPECT_EQ((*ok)[0].read_timeout, std::chrono::seconds(5));
  EXPECT_EQ((*ok)[1].rtsp_transport, "tcp");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"[[streams]]\nname = \"a\"\n", "url"},
      {"[[streams]]\nname = \"bad name\"\nurl = \"rtsp://h/x\"\n", "bad name"},
      {"[[streams]]\nname = \"a\"\nurl = \"ftp://h/x\"\n", "scheme"},
      {"[[streams]]\nname = \"a\"\nurl = \"rtsp://h/x\"\nrtsp_transport = \"http\"\n",
       "tcp or udp"},
      {"[[streams]]\nname = \"a\"\nurl = \"rtsp://h/x\"\nurll = \"typo\"\n", "unknown key"},
      {"[[streams]]\nname = \"a\"\nurl = \"rtsp://h/x\"\n[[streams]]\nname = \"a\"\n"
       "url = \"rtsp://h/y\"\n",
       "defined twice"},
      {"[[streams]\nname = \"a\"\n", ""},
      // Found by fuzz/config: toml11 read past its buffer on such bytes in a literal string.
      {"a = '\xc3'\n", "not UTF-8"},
      {"[[streams]]\nname = \"a\"\nurl = \"rtsp://h/\xff\"\n", "not UTF-8"},
      // Found by fuzz/config: toml11 recursed once per '[' until its stack overflowed.
      {"a = " + std::string(100'000, '['), "nested"},
      {"a = [\"\"\"x\"\"\"\", " + std::string(100'000, '[') + "]\n", "nested"},
  };
  for (const auto& [text, why] : bad) {
    testing::WriteFile(dir.file("bad.toml"), text);
    auto r = LoadSourcesConfig(dir.file("bad.toml"));
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(LoadSourcesConfig(dir.file("missing.toml")).ok());
  // Brackets in strings and comments are no nesting.
  const std::string many(100, '[');
  auto brackets = ParseSourcesConfig(
      "# " + many + "\n[[streams]]\nname = 'a' # " + many + "\nurl = \"rtsp://h/" + many + "\"\n",
      "brackets.toml");
  EXPECT_TRUE(brackets.ok()) << brackets.status().ToString();
}

}  // namespace
}  // namespace lastframe::ingest
