#include "http/events.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace lastframe::http {
namespace {

using nlohmann::json;

// A BodyWriter that keeps what it is given, and can be made full or closed.
class RecordingWriter final : public BodyWriter {
 public:
  bool Write(std::string chunk) override { return TryWrite(std::move(chunk), SIZE_MAX); }
  bool TryWrite(std::string chunk, size_t) override {
    MutexLock lock(mu_);
    if (!open_ || full_) return false;  // full: a reader far behind
    text_ += chunk;
    cv_.notify_all();
    return true;
  }
  void End() override {
    MutexLock lock(mu_);
    ended_ = true;
    open_ = false;
    cv_.notify_all();
  }
  bool open() const override {
    MutexLock lock(mu_);
    return open_;
  }
  void SetFull() {
    MutexLock lock(mu_);
    full_ = true;
  }
  bool ended() const {
    MutexLock lock(mu_);
    return ended_;
  }
  // Waits (bounded) until the text holds |n| events, and returns them, each
  // as {"event", data}; the text is consumed.
  std::vector<std::pair<std::string, json>> Take(size_t n) {
    MutexLock lock(mu_);
    lock.WaitFor(cv_, std::chrono::seconds(10),
                 [&]() LF_REQUIRES(mu_) { return Count() >= n || ended_; });
    std::vector<std::pair<std::string, json>> out;
    size_t pos = 0;
    while (true) {
      size_t end = text_.find("\n\n", pos);
      if (end == std::string::npos) break;
      std::string block = text_.substr(pos, end - pos);
      pos = end + 2;
      size_t ev = block.find("event: ");
      if (ev == std::string::npos) continue;  // retry: or a comment
      size_t nl = block.find('\n', ev);
      size_t data = block.find("data: ", nl);
      out.emplace_back(block.substr(ev + 7, nl - ev - 7), json::parse(block.substr(data + 6)));
    }
    text_.erase(0, pos);
    return out;
  }

 private:
  size_t Count() const LF_REQUIRES(mu_) {
    size_t n = 0;
    for (size_t pos = text_.find("event: "); pos != std::string::npos;
         pos = text_.find("event: ", pos + 1))
      ++n;
    return n;
  }
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::string text_ LF_GUARDED_BY(mu_);
  bool open_ LF_GUARDED_BY(mu_) = true;
  bool full_ LF_GUARDED_BY(mu_) = false;
  bool ended_ LF_GUARDED_BY(mu_) = false;
};

class EventHubTest : public ::testing::Test {
 protected:
  EventHubTest() {
    EventHubOptions o;
    o.tick = std::chrono::milliseconds(5);
    o.node = "node-a";
    o.max_subscribers = 3;
    o.max_per_owner = 2;
    o.recheck = std::chrono::milliseconds(0);
    hub_ = std::make_unique<EventHub>(
        [this] {
          MutexLock lock(mu_);
          return streams_;
        },
        clock_, o);
  }
  void Set(std::vector<StreamEventState> streams) {
    MutexLock lock(mu_);
    streams_ = std::move(streams);
  }
  static StreamEventState Live(const std::string& name, int64_t frame_ms) {
    StreamEventState s;
    s.name = name;
    s.state = "live";
    s.width = 640;
    s.height = 480;
    s.last_frame_ms = frame_ms;
    s.last_frame_producer_ms = frame_ms - 5;
    s.fragment_number = 7;
    return s;
  }
  std::shared_ptr<RecordingWriter> Subscribe(EventSubscription sub = {}) {
    if (!sub.may_view) sub.may_view = [](std::string_view) { return true; };
    auto w = std::make_shared<RecordingWriter>();
    EXPECT_TRUE(hub_->Reserve(sub.owner).ok());
    hub_->Attach(w, std::move(sub));
    return w;
  }

  ManualClock clock_{1'000'000};
  Mutex mu_;
  std::vector<StreamEventState> streams_ LF_GUARDED_BY(mu_);
  std::unique_ptr<EventHub> hub_;
};

TEST_F(EventHubTest, GreetsThenTellsEachStreamsStateAndNewestFrame) {
  Set({Live("cam1", 999'990)});
  auto w = Subscribe();
  auto events = w->Take(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].first, "hello");
  EXPECT_EQ(events[0].second["node"], "node-a");
  EXPECT_EQ(events[0].second["interval_s"], 1);
  EXPECT_EQ(events[1].first, "state");
  EXPECT_EQ(events[1].second["stream"], "cam1");
  EXPECT_EQ(events[1].second["state"], "live");
  EXPECT_EQ(events[1].second["width"], 640);
  EXPECT_TRUE(events[1].second["reason"].is_null());
  EXPECT_EQ(events[2].first, "frame");
  EXPECT_EQ(events[2].second["stream"], "cam1");
  EXPECT_EQ(events[2].second["frame_age_ms"], 10);  // on the server's clock
  EXPECT_EQ(events[2].second["frame_timestamp_ms"], 999'985);
  EXPECT_EQ(events[2].second["fragment_number"], "7");
}

TEST_F(EventHubTest, FrameEventsComeAtMostOncePerIntervalAndStateChangesAtOnce) {
  Set({Live("cam1", 1'000'000)});
  auto w = Subscribe({.interval_ms = 2000});
  ASSERT_EQ(w->Take(3).size(), 3u);
  // New frames within the interval: nothing yet; a state change: at once.
  Set({Live("cam1", 1'000'100)});
  clock_.Advance(500);
  StreamEventState stale = Live("cam1", 1'000'200);
  stale.state = "error";
  stale.reason = "producer sent bad data";
  stale.public_reason = "producer sent bad data";
  Set({stale});
  auto changed = w->Take(1);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].first, "state");
  EXPECT_EQ(changed[0].second["state"], "error");
  EXPECT_EQ(changed[0].second["reason"], "producer sent bad data");
  // Past the interval the newest frame is told: the one current then.
  clock_.Advance(1500);
  auto frame = w->Take(1);
  ASSERT_EQ(frame.size(), 1u);
  EXPECT_EQ(frame[0].first, "frame");
  EXPECT_EQ(frame[0].second["frame_time_ms"], 1'000'200);
}

TEST_F(EventHubTest, ShowsOnlyTheStreamsTheCallerMayViewAndTellsOfRemovals) {
  Set({Live("cam1", 1'000'000), Live("door", 1'000'000)});
  auto w = Subscribe({.may_view = [](std::string_view s) { return s.rfind("cam", 0) == 0; }});
  auto events = w->Take(3);
  for (const auto& [name, data] : events) {
    if (name != "hello") {
      EXPECT_EQ(data["stream"], "cam1") << name;
    }
  }
  Set({Live("door", 1'000'000)});
  auto removed = w->Take(1);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].first, "removed");
  EXPECT_EQ(removed[0].second["stream"], "cam1");
}

TEST_F(EventHubTest, OnlyNamedStreamsWhenAsked) {
  Set({Live("cam1", 1'000'000), Live("cam2", 1'000'000)});
  auto w = Subscribe({.only = std::set<std::string>{"cam2"}});
  auto events = w->Take(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].second["stream"], "cam2");
  EXPECT_EQ(events[2].second["stream"], "cam2");
}

TEST_F(EventHubTest, AnAdminSeesTheSourcesErrorTextOthersItsCode) {
  StreamEventState s = Live("cam1", 1'000'000);
  s.state = "error";
  s.reason = "connection refused by 10.0.0.7:554";
  s.public_reason = "the source failed (SourceUnavailable)";
  Set({s});
  auto admin = Subscribe({.admin = true});
  auto other = Subscribe({.admin = false});
  EXPECT_EQ(admin->Take(2)[1].second["reason"], "connection refused by 10.0.0.7:554");
  EXPECT_EQ(other->Take(2)[1].second["reason"], "the source failed (SourceUnavailable)");
}

TEST_F(EventHubTest, ASlowReaderIsDroppedAndItsPlaceGivenBack) {
  Set({Live("cam1", 1'000'000)});
  auto slow = Subscribe({.owner = "a"});
  ASSERT_EQ(slow->Take(3).size(), 3u);
  EXPECT_EQ(hub_->subscribers(), 1u);
  slow->SetFull();
  Set({Live("cam1", 1'000'000), Live("cam2", 1'000'000)});
  clock_.Advance(1000);
  slow->Take(100);  // returns once the hub ends it
  EXPECT_TRUE(slow->ended());
  // Its owner's place is free again: two of one owner, then that owner is refused.
  auto a = Subscribe({.owner = "a"});
  auto b = Subscribe({.owner = "a"});
  Status third = hub_->Reserve("a");
  EXPECT_EQ(third.code(), Code::kOverloaded) << third.ToString();
  // Another owner has a place until all are taken.
  auto c = Subscribe({.owner = "b"});
  Status full = hub_->Reserve("c");
  EXPECT_EQ(full.code(), Code::kUnavailable) << full.ToString();
}

TEST_F(EventHubTest, CredentialsThatNoLongerHoldEndTheSubscription) {
  Set({Live("cam1", 1'000'000)});
  std::atomic<bool> allowed{true};
  auto w = Subscribe({.owner = "k", .still_allowed = [&] { return allowed.load(); }});
  ASSERT_EQ(w->Take(3).size(), 3u);
  allowed = false;  // the key revoked, or the session signed out
  w->Take(100);     // returns once the hub ends it
  EXPECT_TRUE(w->ended());
  EXPECT_TRUE(hub_->Reserve("k").ok());
}

TEST_F(EventHubTest, StopEndsEverySubscriber) {
  auto w = Subscribe();
  ASSERT_EQ(w->Take(1).size(), 1u);  // hello
  hub_->Stop();
  EXPECT_TRUE(w->ended());
  EXPECT_EQ(hub_->subscribers(), 0u);
  EXPECT_FALSE(hub_->Reserve("x").ok());
}

}  // namespace
}  // namespace lastframe::http
