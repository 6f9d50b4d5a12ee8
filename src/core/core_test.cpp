#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "core/secret.h"
#include "core/status.h"
#include "core/stream_name.h"
#include "core/thread.h"
#include "core/time_format.h"
#include "core/utf8.h"
#include "core/worker_pool.h"

namespace lastframe {
namespace {

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh folder under $TMPDIR, removed at the end.
struct Folder {
  Folder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lf-core-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~Folder() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

TEST(AtomicFile, WritesAndReplacesWholeFiles) {
  Folder dir;
  auto file = dir.path / "sub" / "state.json";
  ASSERT_TRUE(WriteFileAtomically(file, "first").ok());
  EXPECT_EQ(Slurp(file), "first");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_TRUE(WriteFileAtomically(file, "second, longer").ok());
  EXPECT_EQ(Slurp(file), "second, longer");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(file.parent_path()), {}), 1);
}

// A disk that refuses the write (a file-size limit, as a full disk) keeps the
// old file whole and leaves no temp file: never a 0-byte or half file.
TEST(AtomicFile, AFailedWriteKeepsTheOldFile) {
  Folder dir;
  auto file = dir.path / "credentials.json";
  ASSERT_TRUE(WriteFileAtomically(file, "old").ok());
  signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  getrlimit(RLIMIT_FSIZE, &saved);
  rlimit tiny = saved;
  tiny.rlim_cur = 8;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tiny), 0);
  Status s = WriteFileAtomically(file, std::string(100, 'x'));
  setrlimit(RLIMIT_FSIZE, &saved);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("credentials.json"), std::string::npos) << s.message();
  EXPECT_EQ(Slurp(file), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 1);
}

TEST(StreamName, AcceptsKinesisVideoAlphabet) {
  EXPECT_TRUE(ValidateStreamName("cam-1_front.door").ok());
  EXPECT_TRUE(ValidateStreamName(std::string(256, 'a')).ok());
}

TEST(StreamName, RejectsEverythingElse) {
  for (std::string bad : {"", "a/b", "a b", "..", ".", "caf\xc3\xa9", "a%2e", "x\n"}) {
    Status s = ValidateStreamName(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(s.reason(), Reason::kInvalidStreamName) << bad;
  }
  EXPECT_FALSE(ValidateStreamName(std::string(257, 'a')).ok());
}

TEST(StreamName, OfAKinesisVideoArn) {
  auto name =
      StreamNameOfArn("arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam-1/1700000000000");
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_EQ(*name, "cam-1");
  for (std::string bad : {"", "cam-1", "arn:aws:kinesisvideo:us-east-1:0:stream/cam-1",
                          "arn:aws:kinesisvideo:us-east-1:0:stream//1", "arn:aws:s3:::bucket/x/1",
                          "arn:aws:kinesisvideo:us-east-1:0:stream/a/b/1",
                          "arn:aws:kinesisvideo:us-east-1:0:channel/cam/1",
                          "urn:aws:kinesisvideo:us-east-1:0:stream/cam/1"})
    EXPECT_FALSE(StreamNameOfArn(bad).ok()) << bad;
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

TEST(TimeFormat, CallerTimestampsStayWithinYears1970To9999) {
  EXPECT_EQ(ParseTimestampMs("0"), 0);
  EXPECT_EQ(ParseTimestampMs("253402300799999"), kMaxTimestampMs);
  EXPECT_EQ(ParseTimestampMs("9999-12-31T23:59:59.999Z"), kMaxTimestampMs);
  EXPECT_EQ(ParseTimestampMs("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(FormatIso8601Ms(kMaxTimestampMs), "9999-12-31T23:59:59.999Z");
  // Fifteen digits once read as year 33658; ISO years before 1970 as negative times.
  for (const char* bad :
       {"253402300800000", "999999999999999", "1969-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z"})
    EXPECT_FALSE(ParseTimestampMs(bad)) << bad;
}

TEST(TimeFormat, EpochSecondsRefuseWhatIsNoTime) {
  EXPECT_EQ(EpochSecondsToMs(1764000000.123), 1764000000123);
  EXPECT_EQ(EpochSecondsToMs(0), 0);
  EXPECT_EQ(EpochSecondsToMs(-0.0), 0);
  EXPECT_EQ(EpochSecondsToMs(253402300799.999), kMaxTimestampMs);
  for (double bad : {std::nan(""), -std::nan(""), HUGE_VAL, -HUGE_VAL, 1e300, -1.0, -0.001,
                     253402300800.0, 9.3e15, 9.3e18, 1e19})
    EXPECT_FALSE(EpochSecondsToMs(bad)) << bad;

  EXPECT_EQ(ParseEpochSecondsMs("1764000000.123"), 1764000000123);
  EXPECT_EQ(ParseEpochSecondsMs("1764000000"), 1764000000000);
  EXPECT_EQ(ParseEpochSecondsMs("1.764e9"), 1764000000000);
  for (const char* bad : {"",
                          "nan",
                          "NaN",
                          "-nan",
                          "nan(0x1)",
                          "inf",
                          "-inf",
                          "infinity",
                          "1e300",
                          "-1",
                          "-0.5",
                          "253402300800",
                          "9223372036854775.807",
                          "1e16",
                          "soon",
                          "1764000000.5s",
                          " 1764000000",
                          "1764000000 ",
                          "+1764000000",
                          "0x10"})
    EXPECT_FALSE(ParseEpochSecondsMs(bad)) << bad;
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

// A counter bumped by several threads, each increment a read and a write
// apart: only mutual exclusion keeps every one of them.
TEST(Mutex, LockingExcludesOtherThreads) {
  struct Counter {
    Mutex mu;
    int64_t value LF_GUARDED_BY(mu) = 0;
  } counter;
  constexpr int kThreads = 4, kRounds = 10'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&counter] {
      for (int i = 0; i < kRounds; ++i) {
        MutexLock lock(counter.mu);
        int64_t seen = counter.value;
        std::this_thread::yield();
        counter.value = seen + 1;
      }
    });
  for (auto& t : threads) t.join();
  MutexLock lock(counter.mu);
  EXPECT_EQ(counter.value, int64_t{kThreads} * kRounds);
}

TEST(Mutex, TryLockFailsWhileAnotherThreadHoldsIt) {
  Mutex mu;
  {
    MutexLock lock(mu);
    std::thread([&mu] { EXPECT_FALSE(mu.TryLock()); }).join();
    lock.Unlock();  // let go before the scope ends
    std::thread([&mu] {
      if (mu.TryLock())
        mu.Unlock();
      else
        ADD_FAILURE() << "TryLock failed after the holder let go";
    }).join();
    lock.Lock();
    mu.AssertHeld();
  }
  if (mu.TryLock())
    mu.Unlock();
  else
    ADD_FAILURE() << "TryLock failed once the lock was out of scope";
}

TEST(Mutex, AssertHeldCrashesUnlessTheCallerHoldsIt) {
  Mutex mu;
  EXPECT_DEATH(mu.AssertHeld(), "does not hold the mutex");
  {
    MutexLock lock(mu);
    mu.AssertHeld();
  }
  EXPECT_DEATH(mu.AssertHeld(), "does not hold the mutex");  // no longer
}

// Waits let the mutex go while blocked (else the notifier could never take it
// to set the flag) and hold it again when they return.
TEST(MutexLock, WaitWakesWhenNotifiedAndTheConditionHolds) {
  struct {
    Mutex mu;
    std::condition_variable cv;
    int stage LF_GUARDED_BY(mu) = 0;
  } s;
  std::thread other([&s] {
    for (int next : {1, 2}) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      MutexLock lock(s.mu);
      s.stage = next;
      s.cv.notify_all();  // the first wake-up finds the condition still false
    }
  });
  {
    MutexLock lock(s.mu);
    lock.Wait(s.cv, [&s]() LF_REQUIRES(s.mu) { return s.stage == 2; });
    s.mu.AssertHeld();
    EXPECT_EQ(s.stage, 2);
  }
  other.join();
}

TEST(MutexLock, WaitForAnswersWhetherTheConditionHolds) {
  struct {
    Mutex mu;
    std::condition_variable cv;
    bool ready LF_GUARDED_BY(mu) = false;
  } s;
  auto is_ready = [&s]() LF_REQUIRES(s.mu) { return s.ready; };
  {
    MutexLock lock(s.mu);
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(lock.WaitFor(s.cv, std::chrono::milliseconds(20), is_ready));
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
    s.mu.AssertHeld();
    EXPECT_FALSE(lock.WaitUntil(s.cv, std::chrono::steady_clock::now(), is_ready));
  }
  std::thread other([&s] {
    MutexLock lock(s.mu);
    s.ready = true;
    s.cv.notify_all();
  });
  {
    MutexLock lock(s.mu);
    EXPECT_TRUE(lock.WaitFor(s.cv, std::chrono::seconds(30), is_ready));
    EXPECT_TRUE(s.ready);
  }
  other.join();
  MutexLock lock(s.mu);
  EXPECT_TRUE(lock.WaitFor(s.cv, std::chrono::milliseconds(0), is_ready));  // no wait: it holds
}

TEST(Limit, TakesUpToItsMaximumCountsRefusalsAndReleases) {
  Limits limits;
  Limit& streams = limits.Add("streams", "streams", 3);
  EXPECT_TRUE(streams.TryAcquire(2));
  EXPECT_FALSE(streams.TryAcquire(2));
  EXPECT_TRUE(streams.TryAcquire());
  EXPECT_FALSE(streams.TryAcquire());
  EXPECT_EQ(streams.in_use(), 3u);
  EXPECT_EQ(streams.refusals(), 2u);
  streams.Release(2);
  EXPECT_TRUE(streams.TryAcquire(2));
  streams.AcquireAnyway(5);  // restored past the maximum: counted, nothing more fits
  EXPECT_EQ(streams.in_use(), 8u);
  EXPECT_FALSE(streams.TryAcquire());
  Limit& bytes = limits.Add("buffered_request_bytes", "bytes", uint64_t{1} << 40);
  EXPECT_FALSE(bytes.TryAcquire(UINT64_MAX));  // no wrap-around
  std::string text = limits.Prometheus();
  EXPECT_NE(text.find("lastframe_limit_max{limit=\"streams\",unit=\"streams\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lastframe_limit_in_use{limit=\"streams\",unit=\"streams\"} 8\n"),
            std::string::npos);
  EXPECT_NE(text.find("lastframe_limit_refusals_total{limit=\"streams\",unit=\"streams\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE lastframe_limit_refusals_total counter"), std::string::npos);
}

TEST(Utf8, WellFormedOnly) {
  for (std::string_view ok : {"", "plain", "entrée €", "𝄞", "\x7f", "\xf4\x8f\xbf\xbf"})
    EXPECT_TRUE(IsValidUtf8(ok)) << ok;
  for (std::string_view bad : {"\x8f", "\xc3", "a\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                               "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80"})
    EXPECT_FALSE(IsValidUtf8(bad)) << testing::PrintToString(bad);
}

}  // namespace
TEST(Status, EveryReasonHasItsOwnNameAndAStatusWithoutOneHasItsCodes) {
  std::set<std::string_view> names;
  uint16_t r = 0;
  for (; ReasonName(static_cast<Reason>(r)) != "UnknownReason"; ++r)
    EXPECT_TRUE(names.insert(ReasonName(static_cast<Reason>(r))).second)
        << "two reasons named " << ReasonName(static_cast<Reason>(r));
  EXPECT_GT(r, static_cast<uint16_t>(Reason::kXAmzContentSHA256Mismatch));
  Status plain(Code::kTimeout, "slow");
  EXPECT_EQ(plain.reason(), Reason::kTimeout);
  EXPECT_EQ(plain.reason_name(), CodeName(Code::kTimeout));
  Status typed = NotFound("gone", Reason::kStreamNotFound);
  EXPECT_EQ(typed.reason(), Reason::kStreamNotFound);
  EXPECT_EQ(typed.ToString(), "StreamNotFound: gone");
  EXPECT_EQ(Status().reason(), Reason::kNone);
}

TEST(Thread, RunsOnAStackOfTheSizeAsked) {
  size_t seen = 0;
  auto thread = Thread::Start(512 * 1024, [&seen] {
    pthread_attr_t attr;
    ASSERT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
    ASSERT_EQ(pthread_attr_getstacksize(&attr, &seen), 0);
    pthread_attr_destroy(&attr);
  });
  ASSERT_TRUE(thread.ok()) << thread.status().message();
  EXPECT_TRUE(thread->joinable());
  thread->join();
  EXPECT_FALSE(thread->joinable());
  // As asked, not the 8 MiB default; the sanitizers' runtimes may round a small
  // stack up (ThreadSanitizer made this one 900 KiB).
  EXPECT_GE(seen, 512u * 1024u);
  EXPECT_LT(seen, 8u * 1024u * 1024u);
  EXPECT_EQ(thread->stack_bytes(), 512u * 1024u);
}

TEST(Thread, MovedThreadIsJoinedOnceByItsLastOwner) {
  std::atomic<int> runs{0};
  Thread a;
  {
    auto started = Thread::Start(Thread::kMediaStackBytes, [&runs] { runs.fetch_add(1); });
    ASSERT_TRUE(started.ok());
    a = std::move(*started);
    EXPECT_FALSE(started->joinable());
  }
  EXPECT_TRUE(a.joinable());
  a.join();
  EXPECT_EQ(runs.load(), 1);
  auto tiny = Thread::Start(1, [] {});  // raised to the system minimum
  ASSERT_TRUE(tiny.ok());
  EXPECT_GE(tiny->stack_bytes(), static_cast<size_t>(PTHREAD_STACK_MIN));
}

}  // namespace lastframe
