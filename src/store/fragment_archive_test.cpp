#include "store/fragment_archive.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/mutex.h"
#include "core/test_metrics.h"
#include "store/stream_store.h"
#include "support/media_check.h"
#include "support/push.h"
#include "support/temp_dir.h"

namespace lastframe::store {
namespace {

using testing::MakeClip;
using testing::ReadFile;
using testing::TempDir;

// A clip's fragments, in a store of their own, cut by the real push path.
std::vector<FragmentView> FragmentsOf(const TempDir& dir, StreamStore& store) {
  std::string clip = MakeClip(
      dir.file("c.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-t", "3", "-c:v",
                          "libx264", "-g", "10", "-bf", "2", "-sc_threshold", "0"});
  Status pushed = testing::PushBytes(store, "cam", ReadFile(clip));
  EXPECT_TRUE(pushed.ok()) << pushed.ToString();
  return store.Find("cam")->Fragments();
}

// While alive, no file this process writes may grow past |bytes|: writes fail
// (EFBIG) as on a full disk. Restored on scope exit, whatever the test did.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit small = old_;
    small.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &small) == 0;
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old_); }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  bool ok_ = false;
};

TEST(FragmentArchive, PersistedFragmentsComeBackFrameForFrame) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  ASSERT_EQ(fragments.size(), 3u);
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  ASSERT_TRUE(archive.ok());
  for (const auto& f : fragments) ASSERT_TRUE((*archive)->Persist("cam", f).ok());
  ASSERT_TRUE((*archive)->Persist(".hidden", fragments[0]).ok());  // legal, but not as a folder
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "cam"));       // nothing outside the root

  RecoveryReport report = (*archive)->Recover();
  EXPECT_EQ(report.discarded, 0u);
  ASSERT_EQ(report.streams.size(), 2u);
  const RecoveredStream& cam =
      report.streams[0].name == "cam" ? report.streams[0] : report.streams[1];
  ASSERT_EQ(cam.fragments.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const FragmentView& a = fragments[i];
    const FragmentView& b = cam.fragments[i];
    EXPECT_EQ(b.number, a.number);
    EXPECT_EQ(b.producer_ts_ms, a.producer_ts_ms);
    EXPECT_EQ(b.server_ts_ms, a.server_ts_ms);
    EXPECT_EQ(b.timecode_ms, a.timecode_ms);
    EXPECT_EQ(b.bytes, a.bytes);
    ASSERT_EQ(b.frames.size(), a.frames.size());
    for (size_t j = 0; j < a.frames.size(); ++j) {
      EXPECT_EQ(b.frames[j].pts_ms, a.frames[j].pts_ms) << i << "/" << j;  // B-frames included
      EXPECT_EQ(b.frames[j].keyframe, a.frames[j].keyframe);
      ASSERT_EQ(b.frames[j].size(), a.frames[j].size());
      EXPECT_EQ(
          0, std::memcmp(b.frames[j].packet->data, a.frames[j].packet->data, a.frames[j].size()));
    }
  }
}

TEST(FragmentArchive, EachFsyncIsTimed) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  ASSERT_GE(fragments.size(), 2u);
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  ASSERT_TRUE(archive.ok());
  ASSERT_TRUE((*archive)->Persist("cam", fragments[0]).ok());  // makes the folder and its name
  metrics::test::MetricDeltas delta({"lastframe_fragment_fsync_duration_seconds_count"});
  ASSERT_TRUE((*archive)->Persist("cam", fragments[1]).ok());
  // The fragment's file, then its folder for the rename: one syncfs each, or
  // one fsync each.
  EXPECT_EQ(delta["lastframe_fragment_fsync_duration_seconds_count"], 2);
}

TEST(FragmentArchive, TornAndCorruptFilesAreDiscarded) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  for (const auto& f : fragments) ASSERT_TRUE((*archive)->Persist("cam", f).ok());
  // A write cut short by a crash (never renamed), and a file cut in half.
  testing::WriteFile((dir.path() / "archive/.tmp/123-4.mkv").string(), "half a fragm");
  std::filesystem::path last;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "archive/cam"))
    if (e.path().extension() == ".mkv" && e.path() > last) last = e.path();
  std::filesystem::resize_file(last, 10);
  RecoveryReport report = (*archive)->Recover();
  EXPECT_EQ(report.discarded, 2u);
  ASSERT_EQ(report.streams.size(), 1u);
  EXPECT_EQ(report.streams[0].fragments.size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(last));
  // Restored into a store: listed, and numbered after.
  StreamStore restored(SystemClock::Get(), {.retention_ms = 3'600'000});
  restored.Restore(std::move(report.streams));
  ASSERT_EQ(restored.Find("cam")->Fragments().size(), 2u);
  EXPECT_GT(restored.NextFragmentNumber(), fragments[1].number);
}

TEST(FragmentArchive, TrimByAgeAndBytes) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  for (const auto& f : fragments) ASSERT_TRUE((*archive)->Persist("cam", f).ok());
  uint64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "archive/cam"))
    if (e.path().extension() == ".mkv") total += e.file_size();
  EXPECT_EQ((*archive)->Trim(0, 0, total - 1), 1u);  // over the budget by a byte: the oldest goes
  RecoveryReport left = (*archive)->Recover();
  ASSERT_EQ(left.fragments, 2u);
  EXPECT_EQ(left.streams[0].fragments[0].number, fragments[1].number);
  EXPECT_EQ((*archive)->Trim(fragments[2].server_ts_ms + 1, 0, UINT64_MAX), 2u);  // by age
  EXPECT_EQ((*archive)->Recover().fragments, 0u);
}

TEST(FragmentArchive, OwnRetentionAndATotalBudget) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  for (const auto& f : fragments) {
    ASSERT_TRUE((*archive)->Persist("short", f).ok());
    ASSERT_TRUE((*archive)->Persist("long", f).ok());
  }
  ASSERT_TRUE((*archive)->SetRetention("long", 3'600'000).ok());
  // An hour after: the default (1 s) retention takes "short"; "long" keeps its own.
  int64_t later = fragments[2].server_ts_ms + 1'800'000;
  EXPECT_EQ((*archive)->Trim(later, 1'000, UINT64_MAX), 3u);
  RecoveryReport report = (*archive)->Recover();
  ASSERT_EQ(report.fragments, 3u);
  auto long_stream = std::find_if(report.streams.begin(), report.streams.end(),
                                  [](const auto& s) { return s.name == "long"; });
  ASSERT_NE(long_stream, report.streams.end()) << "the stream with its own retention is gone";
  EXPECT_EQ(long_stream->retention_ms, 3'600'000);
  EXPECT_EQ(long_stream->fragments.size(), 3u);
  EXPECT_EQ(report.streams.size(), 1u) << "\"short\" outlived its retention";
  // A total budget of one file: the two oldest go, whatever their stream.
  uint64_t one = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() / "archive"))
    if (e.path().extension() == ".mkv") one = std::max<uint64_t>(one, e.file_size());
  EXPECT_EQ((*archive)->Trim(later, 1'000, UINT64_MAX, one), 2u);
  EXPECT_EQ((*archive)->Recover().fragments, 1u);
}

TEST(FragmentArchive, AFullDiskIsAnErrorNotACrash) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  ASSERT_TRUE((*archive)->Persist("cam", fragments[0]).ok());
  Status s;
  {
    FileSizeLimit full(100);
    ASSERT_TRUE(full.ok());
    s = (*archive)->Persist("cam", fragments[1]);
  }
  EXPECT_EQ(s.reason(), Reason::kArchivalError);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  // Nothing partial is left: the earlier fragment alone comes back.
  RecoveryReport report = (*archive)->Recover();
  EXPECT_EQ(report.fragments, 1u);
  EXPECT_EQ(report.discarded, 0u);
}

TEST(FragmentArchive, AProducerIsToldWhenItsFragmentsCannotBeStored) {
  TempDir dir;
  std::string clip =
      MakeClip(dir.file("c.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-t", "2",
                                   "-c:v", "libx264", "-g", "10", "-bf", "0"});
  auto archive = FragmentArchive::Open(dir.path() / "archive");
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  store.SetArchive(archive->get());
  std::vector<std::string> acks;
  std::mutex mu;
  const std::string bytes = ReadFile(clip);
  std::optional<FileSizeLimit> full(std::in_place, 100);
  ASSERT_TRUE(full->ok());
  Status ended = testing::PushBytes(store, "cam", bytes, [&](std::string a) {
    std::lock_guard lock(mu);
    acks.push_back(a);
  });
  full.reset();
  EXPECT_TRUE(ended.ok());  // the producer's stream was fine: only storage failed
  int received = 0, persisted = 0, archival = 0;
  for (const auto& a : acks) {
    received += a.find("\"RECEIVED\"") != std::string::npos;
    persisted += a.find("\"PERSISTED\"") != std::string::npos;
    archival += a.find("\"ErrorId\":5001") != std::string::npos &&
                a.find("ARCHIVAL_ERROR") != std::string::npos;
  }
  EXPECT_EQ(received, 2);
  EXPECT_EQ(persisted, 0);
  EXPECT_EQ(archival, 2);
  EXPECT_EQ(store.Find("cam")->Fragments().size(), 2u);  // still served from memory
}

namespace fs = std::filesystem;

// Everything under |folder|, as paths relative to it.
std::vector<std::string> Listing(const fs::path& folder) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    out.push_back(fs::relative(it->path(), folder).string());
  std::sort(out.begin(), out.end());
  return out;
}

// Holds writes of one stream once they are under way (see
// SetWriteStartedHookForTest) until Release, counting them.
class WriteGate {
 public:
  WriteGate(FragmentArchive& archive, std::string stream) : stream_(std::move(stream)) {
    archive.SetWriteStartedHookForTest([this](const std::string& s) {
      if (s != stream_) return;
      MutexLock lock(mu_);
      ++started_;
      cv_.notify_all();
      lock.Wait(cv_, [this]() LF_REQUIRES(mu_) { return open_; });
    });
  }
  void Close() {
    MutexLock lock(mu_);
    open_ = false;
    started_ = 0;
  }
  void WaitForStarted(int n) {
    MutexLock lock(mu_);
    lock.Wait(cv_, [&]() LF_REQUIRES(mu_) { return started_ == n; });
  }
  void Release() {
    MutexLock lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  const std::string stream_;
  Mutex mu_;
  std::condition_variable cv_;
  int started_ LF_GUARDED_BY(mu_) = 0;
  bool open_ LF_GUARDED_BY(mu_) = true;
};

// DELETE racing the retention trim left fragments and the folder behind:
// Forget ignored remove_all's errors, and a write under way recreated the
// folder after it. Each round, writes of "cam" (fragments and its retention)
// are under way when Forget comes and are let go as it runs, while Trim walks
// the archive; then nothing of "cam" may be left, and "other" is untouched.
TEST(FragmentArchive, ForgetRacingWritesAndTrimLeavesNothingBehind) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  ASSERT_EQ(fragments.size(), 3u);
  const fs::path root = dir.path() / "archive";
  auto opened = FragmentArchive::Open(root);
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  WriteGate gate(archive, "cam");
  ASSERT_TRUE(archive.SetRetention("other", 3'600'000'000).ok());
  for (const auto& f : fragments) ASSERT_TRUE(archive.Persist("other", f).ok());
  const std::vector<std::string> other = Listing(root / "other");
  ASSERT_EQ(other.size(), 5u);  // three fragments, name, retention_ms
  // Past the default retention of cam's fragments, within other's own.
  const int64_t later = fragments[2].server_ts_ms + 60'000;
  int dropped = 0, stored_then_deleted = 0;
  for (int round = 0; round < 30; ++round) {
    SCOPED_TRACE(round);
    gate.Release();
    ASSERT_TRUE(archive.Persist("cam", fragments[0]).ok());  // a folder to move, with files
    gate.Close();
    std::vector<std::future<Status>> writes;
    for (int i = 0; i < 3; ++i)
      writes.push_back(std::async(std::launch::async, [&, i] {
        return archive.Persist("cam", fragments[static_cast<size_t>(i)]);
      }));
    writes.push_back(std::async(std::launch::async,
                                [&] { return archive.SetRetention("cam", 3'600'000 + round); }));
    std::atomic<bool> stop{false};
    auto trimming = std::async(std::launch::async, [&] {
      size_t trimmed = 0;
      while (!stop.load()) trimmed += archive.Trim(later, 1'000, UINT64_MAX);
      return trimmed;
    });
    gate.WaitForStarted(4);  // every write of cam is under way
    gate.Release();
    // Some rounds let a few writes finish first: stored, they must go with the folder.
    const size_t finished_first = static_cast<size_t>(round % 5);
    for (size_t i = 0; i < finished_first; ++i) {
      Status s = writes[i].get();
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++stored_then_deleted;
    }
    archive.Forget("cam");
    for (size_t i = finished_first; i < writes.size(); ++i) {
      Status s = writes[i].get();
      // Published before the folder moved (then deleted with it), or dropped.
      EXPECT_TRUE(s.ok() || s.reason() == Reason::kStreamDeleted) << s.ToString();
      (s.ok() ? stored_then_deleted : dropped)++;
    }
    stop.store(true);
    trimming.get();
    archive.WaitForDeletions();
    EXPECT_FALSE(fs::exists(root / "cam")) << ::testing::PrintToString(Listing(root));
    EXPECT_TRUE(Listing(root / ".trash").empty()) << ::testing::PrintToString(Listing(root));
    EXPECT_TRUE(Listing(root / ".tmp").empty()) << ::testing::PrintToString(Listing(root));
    ASSERT_EQ(Listing(root / "other"), other);
  }
  std::printf("writes dropped by Forget: %d, stored then deleted: %d\n", dropped,
              stored_then_deleted);
  // A write that begins after Forget returned is a new stream's: kept.
  gate.Release();
  ASSERT_TRUE(archive.Persist("cam", fragments[1]).ok());
  RecoveryReport report = archive.Recover();
  ASSERT_EQ(report.streams.size(), 2u);
  const RecoveredStream& cam =
      report.streams[0].name == "cam" ? report.streams[0] : report.streams[1];
  EXPECT_EQ(cam.name, "cam");
  EXPECT_EQ(cam.retention_ms, std::nullopt);  // the forgotten stream's retention went with it
  ASSERT_EQ(cam.fragments.size(), 1u);
  EXPECT_EQ(cam.fragments[0].number, fragments[1].number);
}

// A folder that cannot be moved aside is removed where it is; writes of its
// stream under way meanwhile are dropped all the same.
TEST(FragmentArchive, AFolderThatWillNotMoveIsRemovedInPlace) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  const fs::path root = dir.path() / "archive";
  auto opened = FragmentArchive::Open(root);
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  for (const auto& f : fragments) ASSERT_TRUE(archive.Persist("cam", f).ok());
  // Renames into the trash fail (ENOTDIR), as they would with EBUSY or EACCES.
  fs::remove(root / ".trash");
  testing::WriteFile((root / ".trash").string(), "not a folder");
  WriteGate gate(archive, "cam");
  gate.Close();
  auto write = std::async(std::launch::async, [&] { return archive.Persist("cam", fragments[2]); });
  gate.WaitForStarted(1);
  archive.Forget("cam");
  gate.Release();
  EXPECT_EQ(write.get().reason(), Reason::kStreamDeleted);
  archive.WaitForDeletions();
  EXPECT_FALSE(fs::exists(root / "cam")) << ::testing::PrintToString(Listing(root));
  EXPECT_TRUE(Listing(root / ".tmp").empty());
  ASSERT_TRUE(archive.Persist("cam", fragments[0]).ok());  // after it: a new stream's
  EXPECT_EQ(archive.Recover().fragments, 1u);
}

TEST(FragmentArchive, RecoverEmptiesTheTrashAStopLeftBehind) {
  TempDir dir;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, store);
  const fs::path root = dir.path() / "archive";
  auto archive = FragmentArchive::Open(root);
  ASSERT_TRUE(archive.ok());
  ASSERT_TRUE((*archive)->Persist("cam", fragments[0]).ok());
  // What a crash between the move aside and the removal leaves.
  fs::rename(root / "cam", root / ".trash" / "1-0");
  RecoveryReport report = (*archive)->Recover();
  EXPECT_TRUE(report.streams.empty());
  EXPECT_TRUE(Listing(root / ".trash").empty());
}

// A producer that opened a stream just before DELETE cannot claim it
// afterwards and persist into the deleted stream's folder.
TEST(FragmentArchive, ADeletedStreamTakesNoProducerAndLeavesNoFolder) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  const fs::path root = dir.path() / "archive";
  auto archive = FragmentArchive::Open(root);
  ASSERT_TRUE(archive.ok());
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  store.SetArchive(archive->get());
  auto opened = store.Open("cam");
  ASSERT_TRUE(opened.ok());
  std::shared_ptr<Stream> cam = *opened;
  ASSERT_TRUE(store.Persist("cam", fragments[0]).ok());
  ASSERT_TRUE(cam->AcquireWriter());
  EXPECT_EQ(store.Remove("cam").reason(), Reason::kStreamBusy);  // while its producer writes
  cam->ReleaseWriter("");
  ASSERT_TRUE(store.Remove("cam").ok());
  EXPECT_FALSE(cam->AcquireWriter());  // the late producer is refused
  EXPECT_TRUE(cam->closed());
  (*archive)->WaitForDeletions();
  EXPECT_FALSE(fs::exists(root / "cam"));
  EXPECT_FALSE(store.Find("cam"));
}

// The writer pool and its group commit.

// Each fragment of |a| as |b| read it back: timestamps, frames, bytes.
void ExpectSameFragments(const std::vector<FragmentView>& a, const std::vector<FragmentView>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].number, a[i].number);
    EXPECT_EQ(b[i].producer_ts_ms, a[i].producer_ts_ms);
    EXPECT_EQ(b[i].server_ts_ms, a[i].server_ts_ms);
    EXPECT_EQ(b[i].timecode_ms, a[i].timecode_ms);
    ASSERT_EQ(b[i].frames.size(), a[i].frames.size());
    for (size_t j = 0; j < a[i].frames.size(); ++j) {
      EXPECT_EQ(b[i].frames[j].pts_ms, a[i].frames[j].pts_ms) << i << "/" << j;
      EXPECT_EQ(b[i].frames[j].keyframe, a[i].frames[j].keyframe);
      ASSERT_EQ(b[i].frames[j].size(), a[i].frames[j].size());
      EXPECT_EQ(0, std::memcmp(b[i].frames[j].packet->data, a[i].frames[j].packet->data,
                               a[i].frames[j].size()));
    }
  }
}

// The |done|s of PersistAsync, as they ran: in order, with the thread they ran on.
class Dones {
 public:
  std::function<void(Status)> Add(std::string stream, uint64_t number) {
    return [this, stream = std::move(stream), number](Status s) {
      MutexLock lock(mu_);
      ran_.push_back({stream, number, std::move(s), std::this_thread::get_id()});
      cv_.notify_all();
    };
  }
  struct Ran {
    std::string stream;
    uint64_t number;
    Status status;
    std::thread::id thread;
  };
  // Every |done| that ran, once |n| have.
  std::vector<Ran> WaitFor(size_t n) {
    MutexLock lock(mu_);
    lock.Wait(cv_, [&]() LF_REQUIRES(mu_) { return ran_.size() >= n; });
    return ran_;
  }
  std::vector<Ran> SoFar() {
    MutexLock lock(mu_);
    return ran_;
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  std::vector<Ran> ran_ LF_GUARDED_BY(mu_);
};

constexpr const char* kSyncs = "lastframe_archive_syncs_total";
constexpr const char* kRounds = "lastframe_archive_commit_fragments_count";
constexpr const char* kRoundFragments = "lastframe_archive_commit_fragments_sum";
constexpr const char* kPersisted = "lastframe_archive_fragments_persisted_total";
constexpr const char* kQueueBytes = "lastframe_archive_queue_bytes";

// Files retention lets go are written over by later fragments (no inode or blocks to find
// and free): a later fragment lands in a trimmed file, cut to its own length, reads back
// frame for frame, and a trimmed fragment reads as gone. A restart clears what was left.
TEST(FragmentArchive, TrimmedFilesAreWrittenOverByLaterFragments) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  ASSERT_EQ(fragments.size(), 3u);
  auto inodes_of = [](const fs::path& folder) {
    std::map<std::string, std::pair<ino_t, uintmax_t>> out;  // name: inode, size
    for (const auto& e : fs::directory_iterator(folder)) {
      if (e.path().extension() != ".mkv") continue;
      struct stat st {};
      EXPECT_EQ(::stat(e.path().c_str(), &st), 0);
      out[e.path().filename().string()] = {st.st_ino, e.file_size()};
    }
    return out;
  };
  // The same fragments in an archive that never recycled: each file's own length.
  auto fresh = FragmentArchive::Open(dir.path() / "fresh");
  ASSERT_TRUE(fresh.ok());
  for (const auto& f : fragments) ASSERT_TRUE((*fresh)->Persist("new", f).ok());
  const auto fresh_files = inodes_of(dir.path() / "fresh/new");

  const fs::path root = dir.path() / "archive";
  auto opened = FragmentArchive::Open(root);
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  // Trimmed oldest first and taken back last first: each new file is written over another
  // fragment's, longer or shorter (the sizes are compared with the fresh archive's).
  for (const auto& f : fragments) ASSERT_TRUE(archive.Persist("old", f).ok());
  std::set<ino_t> old_inodes;
  for (const auto& [name, file] : inodes_of(root / "old")) old_inodes.insert(file.first);
  ASSERT_EQ(old_inodes.size(), 3u);
  EXPECT_EQ(archive.Trim(fragments[2].server_ts_ms + 1, 0, UINT64_MAX), 3u);
  EXPECT_EQ(Listing(root / ".free").size(), 3u);
  for (const auto& f : fragments) {
    auto read = archive.Read("old", f);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.status().reason(), Reason::kFragmentNotFound);
  }

  for (const auto& f : fragments) ASSERT_TRUE(archive.Persist("new", f).ok());
  EXPECT_TRUE(Listing(root / ".free").empty());
  const auto new_files = inodes_of(root / "new");
  ASSERT_EQ(new_files.size(), 3u);
  for (const auto& [name, file] : new_files) {
    EXPECT_TRUE(old_inodes.count(file.first)) << name << " is a new file, not a trimmed one";
    ASSERT_TRUE(fresh_files.count(name)) << name;
    EXPECT_EQ(file.second, fresh_files.at(name).second) << name << ": not cut to its length";
  }
  std::vector<FragmentView> back;
  for (const auto& f : fragments) {
    auto read = archive.Read("new", f);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    back.push_back(std::move(*read));
  }
  ExpectSameFragments(fragments, back);

  // Trimmed again, then a restart (a new archive on the same root): what waited in .free goes.
  EXPECT_EQ(archive.Trim(fragments[2].server_ts_ms + 1, 0, UINT64_MAX), 3u);
  EXPECT_EQ(Listing(root / ".free").size(), 3u);
  opened->reset();
  auto reopened = FragmentArchive::Open(root);
  ASSERT_TRUE(reopened.ok());
  RecoveryReport report = (*reopened)->Recover();
  EXPECT_EQ(report.fragments, 0u);
  EXPECT_EQ(report.discarded, 0u);
  EXPECT_TRUE(Listing(root / ".free").empty());
}

// Fragments of many streams queued at once are made durable together: one
// round, two syncs (the files, then the renames) instead of two per fragment,
// and every one comes back frame for frame. Without syncfs (the fallback) the
// same writes land as well, a sync per file and folder.
TEST(FragmentArchive, FragmentsQueuedTogetherShareTheirSyncs) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  ASSERT_EQ(fragments.size(), 3u);
  for (auto sync : {ArchiveOptions::Sync::kAuto, ArchiveOptions::Sync::kPerFile}) {
    const bool per_file = sync == ArchiveOptions::Sync::kPerFile;
    SCOPED_TRACE(per_file ? "fsync of each file" : "syncfs");
    const fs::path root = dir.path() / (per_file ? "per-file" : "group");
    auto opened = FragmentArchive::Open(root, {.sync = sync});
    ASSERT_TRUE(opened.ok());
    FragmentArchive& archive = **opened;
    constexpr int kStreams = 8;
    const size_t writes = kStreams * fragments.size();
    metrics::test::MetricDeltas delta({kSyncs, kRounds, kRoundFragments, kPersisted, kQueueBytes});
    archive.PauseWritersForTest(true);
    Dones dones;
    uint64_t queued = 0;
    for (const auto& f : fragments)
      for (int s = 0; s < kStreams; ++s) {
        const std::string stream = "cam" + std::to_string(s);
        archive.PersistAsync(stream, f, dones.Add(stream, f.number));
        queued += f.bytes;
      }
    EXPECT_EQ(delta[kQueueBytes], static_cast<double>(queued));
    EXPECT_TRUE(dones.SoFar().empty());  // nothing durable yet: nothing told
    archive.PauseWritersForTest(false);
    for (const auto& ran : dones.WaitFor(writes)) {
      EXPECT_TRUE(ran.status.ok()) << ran.status.ToString();
      EXPECT_NE(ran.thread, std::this_thread::get_id());  // on a writer thread
    }
    EXPECT_EQ(delta[kQueueBytes], 0);
    EXPECT_EQ(delta[kPersisted], static_cast<double>(writes));
    EXPECT_EQ(delta[kRounds], 1);  // all taken at once
    EXPECT_EQ(delta[kRoundFragments], static_cast<double>(writes));
    std::printf("%s: %zu fragments of %d streams, %.0f syncs (%.3f per fragment)\n",
                per_file ? "fsync each" : "syncfs", writes, kStreams, delta[kSyncs],
                delta[kSyncs] / static_cast<double>(writes));
    if (archive.UsesSyncfsForTest())
      EXPECT_EQ(delta[kSyncs], 2);
    else  // each file and a name file with it (new folders), each folder, the root
      EXPECT_EQ(delta[kSyncs], static_cast<double>(2 * writes + kStreams + 1));
    RecoveryReport report = archive.Recover();
    EXPECT_EQ(report.discarded, 0u);
    ASSERT_EQ(report.streams.size(), static_cast<size_t>(kStreams));
    for (const RecoveredStream& stream : report.streams) {
      SCOPED_TRACE(stream.name);
      ExpectSameFragments(fragments, stream.fragments);
    }
    EXPECT_TRUE(Listing(root / ".tmp").empty());
  }
}

// With two writers taking small rounds back to back, each stream's |done|s
// still run in the order of its calls, one at a time, through the store
// (StreamStore::PersistAsync) as through the archive.
TEST(FragmentArchive, DonesRunInCallOrderPerStream) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  ASSERT_EQ(fragments.size(), 3u);
  auto opened =
      FragmentArchive::Open(dir.path() / "archive", {.writer_threads = 2, .max_round_writes = 2});
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  StreamStore store(SystemClock::Get(), {.retention_ms = 3'600'000});
  store.SetArchive(&archive);
  constexpr int kStreams = 5;
  archive.PauseWritersForTest(true);
  Dones dones;
  std::map<std::string, std::vector<uint64_t>> called;
  uint64_t number = 1000;
  for (int round = 0; round < 4; ++round)
    for (const auto& f : fragments)
      for (int s = 0; s < kStreams; ++s) {
        const std::string stream = "cam" + std::to_string(s);
        FragmentView copy = f;
        copy.number = number++;  // a file of its own
        called[stream].push_back(copy.number);
        if (s % 2 == 0)
          store.PersistAsync(stream, copy, dones.Add(stream, copy.number));
        else
          archive.PersistAsync(stream, copy, dones.Add(stream, copy.number));
      }
  archive.PauseWritersForTest(false);
  std::map<std::string, std::vector<uint64_t>> told;
  std::set<std::thread::id> threads;
  for (const auto& ran : dones.WaitFor(number - 1000)) {
    EXPECT_TRUE(ran.status.ok()) << ran.status.ToString();
    told[ran.stream].push_back(ran.number);
    threads.insert(ran.thread);
  }
  EXPECT_EQ(told, called);
  std::printf("dones ran on %zu writer threads\n", threads.size());
  RecoveryReport report = archive.Recover();
  EXPECT_EQ(report.fragments, number - 1000);
}

// A Forget while a write is queued drops it (StreamDeleted): nothing of the
// stream is stored after the Forget; other streams' writes of the round land.
TEST(FragmentArchive, AForgetWhileQueuedDropsTheWrite) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  const fs::path root = dir.path() / "archive";
  auto opened = FragmentArchive::Open(root);
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  ASSERT_TRUE(archive.Persist("cam", fragments[0]).ok());
  archive.PauseWritersForTest(true);
  Dones dones;
  archive.PersistAsync("cam", fragments[1], dones.Add("cam", fragments[1].number));
  archive.PersistAsync("other", fragments[1], dones.Add("other", fragments[1].number));
  archive.PersistAsync("cam", fragments[2], dones.Add("cam", fragments[2].number));
  archive.Forget("cam");
  archive.PauseWritersForTest(false);
  auto ran = dones.WaitFor(3);
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[0].status.reason(), Reason::kStreamDeleted);
  EXPECT_TRUE(ran[1].status.ok()) << ran[1].status.ToString();
  EXPECT_EQ(ran[2].status.reason(), Reason::kStreamDeleted);
  archive.WaitForDeletions();
  EXPECT_FALSE(fs::exists(root / "cam")) << ::testing::PrintToString(Listing(root));
  EXPECT_TRUE(Listing(root / ".tmp").empty());
  RecoveryReport report = archive.Recover();
  ASSERT_EQ(report.streams.size(), 1u);
  EXPECT_EQ(report.streams[0].name, "other");
}

// A round the disk refuses: every write of it is told ArchivalError, and
// nothing partial is left, aside or in place.
TEST(FragmentArchive, ARoundTheDiskRefusesLeavesNothing) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  const fs::path root = dir.path() / "archive";
  auto opened = FragmentArchive::Open(root);
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  ASSERT_TRUE(archive.Persist("cam", fragments[0]).ok());
  const std::vector<std::string> before = Listing(root);
  archive.PauseWritersForTest(true);
  Dones dones;
  archive.PersistAsync("cam", fragments[1], dones.Add("cam", fragments[1].number));
  archive.PersistAsync("cam", fragments[2], dones.Add("cam", fragments[2].number));
  archive.PersistAsync("new", fragments[1], dones.Add("new", fragments[1].number));
  {
    FileSizeLimit full(100);
    ASSERT_TRUE(full.ok());
    archive.PauseWritersForTest(false);
    for (const auto& ran : dones.WaitFor(3)) {
      EXPECT_EQ(ran.status.reason(), Reason::kArchivalError) << ran.status.ToString();
      EXPECT_EQ(ran.status.code(), Code::kUnavailable);
    }
  }
  EXPECT_EQ(Listing(root), before);
  RecoveryReport report = archive.Recover();
  EXPECT_EQ(report.fragments, 1u);
  EXPECT_EQ(report.discarded, 0u);
}

// Past its bound in bytes the queue refuses PersistAsync at once (in order:
// its |done| runs after those queued before it), while Persist waits for room.
TEST(FragmentArchive, AFullQueueRefusesAsyncWritesAndPersistWaits) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  auto opened =
      FragmentArchive::Open(dir.path() / "archive", {.max_queued_bytes = fragments[0].bytes + 1});
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  archive.PauseWritersForTest(true);
  Dones dones;
  archive.PersistAsync("cam", fragments[0], dones.Add("cam", fragments[0].number));
  archive.PersistAsync("cam", fragments[1], dones.Add("cam", fragments[1].number));  // no room
  EXPECT_TRUE(dones.SoFar().empty());
  auto waiting =
      std::async(std::launch::async, [&] { return archive.Persist("cam", fragments[2]); });
  archive.PauseWritersForTest(false);
  EXPECT_TRUE(waiting.get().ok());
  auto ran = dones.WaitFor(2);
  ASSERT_EQ(ran.size(), 2u);
  EXPECT_EQ(ran[0].number, fragments[0].number);
  EXPECT_TRUE(ran[0].status.ok()) << ran[0].status.ToString();
  EXPECT_EQ(ran[1].number, fragments[1].number);
  EXPECT_EQ(ran[1].status.reason(), Reason::kArchivalError) << ran[1].status.ToString();
  RecoveryReport report = archive.Recover();
  ASSERT_EQ(report.streams.size(), 1u);
  ASSERT_EQ(report.streams[0].fragments.size(), 2u);
  EXPECT_EQ(report.streams[0].fragments[1].number, fragments[2].number);
}

// The archive closing with writes queued finishes them: every |done| runs,
// and what it said was stored comes back.
TEST(FragmentArchive, ClosingFinishesQueuedWrites) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  const fs::path root = dir.path() / "archive";
  auto opened = FragmentArchive::Open(root);
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<FragmentArchive> archive = std::move(*opened);
  archive->PauseWritersForTest(true);
  Dones dones;
  for (int s = 0; s < 3; ++s)
    for (const auto& f : fragments)
      archive->PersistAsync("cam" + std::to_string(s), f, dones.Add("cam", f.number));
  EXPECT_TRUE(dones.SoFar().empty());
  archive.reset();  // still paused: closing ends the pause
  auto ran = dones.SoFar();
  ASSERT_EQ(ran.size(), 3 * fragments.size());
  for (const auto& r : ran) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  auto reopened = FragmentArchive::Open(root);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->Recover().fragments, 3 * fragments.size());
}

// Persist from a |done| (on a writer thread) would wait for itself: refused.
TEST(FragmentArchive, PersistFromADoneIsRefusedNotADeadlock) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  auto fragments = FragmentsOf(dir, source);
  auto opened = FragmentArchive::Open(dir.path() / "archive");
  ASSERT_TRUE(opened.ok());
  FragmentArchive& archive = **opened;
  std::promise<Status> inner;
  archive.PersistAsync("cam", fragments[0], [&](Status s) {
    EXPECT_TRUE(s.ok());
    inner.set_value(archive.Persist("cam", fragments[1]));
  });
  EXPECT_EQ(inner.get_future().get().code(), Code::kInternal);
}

}  // namespace
}  // namespace lastframe::store
