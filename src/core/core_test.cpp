#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "core/clock.h"
#include "core/secret.h"
#include "core/status.h"
#include "core/stream_name.h"
#include "core/time_format.h"
#include "core/worker_pool.h"

namespace lastframe {
namespace {

TEST(StreamName, AcceptsKinesisVideoAlphabet) {
  EXPECT_TRUE(ValidateStreamName("cam-1_front.door").ok());
  EXPECT_TRUE(ValidateStreamName(std::string(256, 'a')).ok());
}

TEST(StreamName, RejectsEverythingElse) {
  for (std::string bad : {"", "a/b", "a b", "..", ".", "caf\xc3\xa9", "a%2e", "x\n"}) {
    Status s = ValidateStreamName(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(s.reason(), "InvalidStreamName") << bad;
  }
  EXPECT_FALSE(ValidateStreamName(std::string(257, 'a')).ok());
}

TEST(Status, ResultCarriesValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = NotFound("no such stream");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
  EXPECT_EQ(bad.status().ToString(), "NotFound: no such stream");
}

TEST(TimeFormat, FormatsAndParsesAmzDate) {
  // 2013-05-24T00:00:00Z, the date of AWS's published SigV4 examples.
  const int64_t ms = 1369353600000;
  EXPECT_EQ(FormatAmzDate(ms), "20130524T000000Z");
  EXPECT_EQ(FormatIso8601Ms(ms + 42), "2013-05-24T00:00:00.042Z");
  EXPECT_EQ(ParseAmzDate("20130524T000000Z"), ms);
  EXPECT_FALSE(ParseAmzDate("20130231T000000Z"));
  EXPECT_FALSE(ParseAmzDate("2013-05-24T00:00"));
  EXPECT_FALSE(ParseAmzDate("20130524T00000aZ"));
}

TEST(Secret, NeverPrints) {
  std::ostringstream os;
  os << Secret("hunter2");
  EXPECT_EQ(os.str(), "***");
  EXPECT_EQ(Secret("hunter2").Reveal(), "hunter2");
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock(1000);
  EXPECT_EQ(clock.NowMs(), 1000);
  clock.Advance(500);
  EXPECT_EQ(clock.NowMs(), 1500);
}

TEST(TimeFormat, CallerTimestamps) {
  EXPECT_EQ(ParseTimestampMs("1764000000123"), 1764000000123);
  EXPECT_EQ(ParseTimestampMs("2025-11-24T16:00:00Z"), 1764000000000);
  EXPECT_EQ(ParseTimestampMs("2025-11-24T16:00:00.5Z"), 1764000000500);
  EXPECT_EQ(ParseTimestampMs("2025-11-24T16:00:00.123Z"), 1764000000123);
  EXPECT_EQ(ParseTimestampMs(FormatIso8601Ms(1764000000042)), 1764000000042);
  for (const char* bad :
       {"", "yesterday", "2026-11-24", "2025-11-24T16:00:00", "2026-13-24T16:00:00Z",
        "2025-11-24T16:00:00.1234Z", "2026-11-24 16:00:00Z", "-5", "2026-02-31T00:00:00Z",
        "99999999999999999999"})
    EXPECT_FALSE(ParseTimestampMs(bad)) << bad;
}

TEST(WorkerPool, RunsTasksAndRefusesWhenFull) {
  WorkerPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.TryPost([&] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();  // the one thread is now busy
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.TryPost([&] { ++ran; }));
  EXPECT_TRUE(pool.TryPost([&] { ++ran; }));
  EXPECT_FALSE(pool.TryPost([&] { ++ran; }));  // queue bound reached
  release.set_value();
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_FALSE(pool.TryPost([] {}));
}

}  // namespace
}  // namespace lastframe
