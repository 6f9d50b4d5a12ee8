#include "store/shared_archive.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "store/archived_source.h"
#include "store/stream_store.h"
#include "support/media_check.h"
#include "support/push.h"
#include "support/temp_dir.h"

namespace lastframe::store {
namespace {

namespace fs = std::filesystem;
using testing::MakeClip;
using testing::ReadFile;
using testing::TempDir;

// An object store in memory, shared by the "nodes" of a test, as a bucket is.
// PutAsync answers on a thread of its own; while held, puts wait until Release
// (in any order), so a test sees what happens before an object is stored.
class MemoryObjects final : public objects::ObjectStore {
 public:
  ~MemoryObjects() override { Shutdown(); }
  Status Put(const std::string& key, std::string_view bytes, const std::string&) override {
    std::lock_guard lock(mu_);
    if (!refuse_.ok()) return refuse_;
    objects_[key] = std::string(bytes);
    return Status::Ok();
  }
  void PutAsync(std::string key, std::shared_ptr<const std::string> bytes, std::string type,
                std::function<void(Status)> done) override {
    std::lock_guard lock(mu_);
    held_.push_back([this, key, bytes, type, done] { done(Put(key, *bytes, type)); });
    if (!holding_) ReleaseLocked(held_.size() - 1);
  }
  void Shutdown() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      holding_ = false;
      for (size_t i = 0; i < held_.size(); ++i) ReleaseLocked(i);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }
  Result<std::string> Get(const std::string& key) override {
    std::lock_guard lock(mu_);
    ++gets_;
    auto it = objects_.find(key);
    if (it == objects_.end()) return NotFound("no object " + key, Reason::kNoSuchKey);
    return it->second;
  }
  Result<objects::ObjectPage> ListPage(const std::string& prefix, const std::string& start_after,
                                       const std::string& from, size_t max_keys) override {
    std::lock_guard lock(mu_);
    ++lists_;
    objects::ObjectPage page;
    for (auto it = objects_.upper_bound(std::max(start_after, from)); it != objects_.end(); ++it) {
      if (!it->first.starts_with(prefix)) continue;
      if (page.objects.size() == max_keys) {
        page.next = page.objects.back().key;
        break;
      }
      page.objects.push_back({it->first, it->second.size()});
    }
    return page;
  }
  Result<std::string> PresignGet(const std::string& key, int64_t) override { return key; }

  void Hold() {
    std::lock_guard lock(mu_);
    holding_ = true;
  }
  // Lets held put |i| (in the order they came) go.
  void Release(size_t i) {
    std::lock_guard lock(mu_);
    ReleaseLocked(i);
  }
  size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void Refuse(Status s) {
    std::lock_guard lock(mu_);
    refuse_ = std::move(s);
  }
  void Add(const std::string& key, std::string bytes) {
    std::lock_guard lock(mu_);
    objects_[key] = std::move(bytes);
  }
  std::map<std::string, std::string> objects() {
    std::lock_guard lock(mu_);
    return objects_;
  }
  int gets() {
    std::lock_guard lock(mu_);
    return gets_;
  }
  int lists() {
    std::lock_guard lock(mu_);
    return lists_;
  }

 private:
  void ReleaseLocked(size_t i) {
    if (!held_[i]) return;
    threads_.emplace_back(std::move(held_[i]));
    held_[i] = nullptr;
  }
  std::mutex mu_;
  std::map<std::string, std::string> objects_;
  std::vector<std::function<void()>> held_;
  std::vector<std::thread> threads_;
  bool holding_ = false;
  Status refuse_;
  int gets_ = 0;
  int lists_ = 0;
};

// Polls |probe| until true or 20 s pass: for state another thread reaches in its own time.
bool Eventually(const std::function<bool()>& probe) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!probe()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::string Clip(const TempDir& dir, double seconds) {
  return MakeClip(dir.file("c.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-t",
                                      std::to_string(seconds), "-c:v", "libx264", "-g", "10", "-bf",
                                      "2", "-sc_threshold", "0"});
}

std::unique_ptr<FragmentArchive> OpenArchive(const fs::path& root) {
  auto opened = FragmentArchive::Open(root);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return std::move(*opened);
}

// A node: its stream store, its own fragment files, the shared archive over
// the test's bucket, and what it reads through (ArchivedSource).
struct Node {
  Node(const TempDir& dir, const std::string& name, MemoryObjects& bucket)
      : store(SystemClock::Get(), {.retention_ms = 3'600'000}),
        shared(bucket),
        archive(OpenArchive(dir.path() / name)),
        source(store, shared, SystemClock::Get(), {.retention_ms = 3'600'000}) {
    store.SetArchive(archive.get());
    store.SetSharedArchive(&shared);
  }
  ~Node() { source.Stop(); }
  StreamStore store;
  SharedArchive shared;  // outlives the archive, whose last writes it uploads
  std::unique_ptr<FragmentArchive> archive;
  ArchivedSource source;
};

std::vector<uint64_t> Numbers(const std::vector<FragmentView>& fragments) {
  std::vector<uint64_t> out;
  for (const auto& f : fragments) out.push_back(f.number);
  return out;
}

// The numbers of the PERSISTED acks of a push.
std::vector<uint64_t> PushPersisted(StreamStore& store, const std::string& stream,
                                    const std::string& bytes) {
  std::vector<uint64_t> persisted;
  std::mutex mu;
  Status pushed = testing::PushBytes(store, stream, bytes, [&](const std::string& ack) {
    if (ack.find("\"PERSISTED\"") == std::string::npos) return;
    size_t at = ack.find("\"FragmentNumber\":\"") + 18;
    std::lock_guard lock(mu);
    persisted.push_back(std::stoull(ack.substr(at, ack.find('"', at) - at)));
  });
  EXPECT_TRUE(pushed.ok()) << pushed.ToString();
  return persisted;
}

TEST(SharedArchive, KeysCarryTheIndexAndParseBack) {
  FragmentView f;
  f.number = 1'764'000'000'000'123;
  f.server_ts_ms = 1'764'000'000'500;
  f.producer_ts_ms = 1'764'000'000'400;
  f.timecode_ms = -40;
  f.duration_ms = 1000;
  f.bytes = 12345;
  f.frame_count = 10;
  const std::string key = SharedArchive::KeyOf("cam-1", f);
  EXPECT_EQ(key, "cam-1/001764000000500-1764000000000123-1764000000400-10-1000-12345--40.mkv");
  auto back = SharedArchive::ParseName(key.substr(6));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->number, f.number);
  EXPECT_EQ(back->server_ts_ms, f.server_ts_ms);
  EXPECT_EQ(back->producer_ts_ms, f.producer_ts_ms);
  EXPECT_EQ(back->timecode_ms, -40);
  EXPECT_EQ(back->duration_ms, 1000);
  EXPECT_EQ(back->bytes, 12345u);
  EXPECT_EQ(back->frame_count, 10u);
  EXPECT_TRUE(back->complete);
  EXPECT_TRUE(back->frames.empty());
  // A name that begins with '.' cannot be a folder of its own: "~", which no name has, leads it.
  EXPECT_EQ(SharedArchive::FolderOf(".hidden"), "~.hidden/");
  EXPECT_EQ(SharedArchive::FolderOf("a.b"), "a.b/");
  for (const char* junk :
       {"", ".mkv", "notes.txt", "1-2-3-4-5-6-7.mp4", "1-2-3-4-5-6.mkv", "1-2-3-4-5-6-7-8.mkv",
        "1-0-3-4-5-6-7.mkv", "1-2-3-0-5-6-7.mkv", "a-2-3-4-5-6-7.mkv", "1-2-3-4-5-6-.mkv",
        "1--2-3-4-5-6-7.mkv", "99999999999999999999-2-3-4-5-6-7.mkv", "1-2-3-4-5-6-7x.mkv"})
    EXPECT_FALSE(SharedArchive::ParseName(junk)) << junk;
}

// PERSISTED means "in the shared archive": a fragment's done waits for its
// object, the object is the local file's bytes, and the dones of one stream
// come in order however the uploads end.
TEST(SharedArchive, PersistedOnlyOnceStoredInOrderWithTheFilesBytes) {
  TempDir dir;
  StreamStore source(SystemClock::Get(), {.retention_ms = 3'600'000});
  ASSERT_TRUE(testing::PushBytes(source, "cam", ReadFile(Clip(dir, 3))).ok());
  std::vector<FragmentView> fragments = source.Find("cam")->Fragments();
  ASSERT_EQ(fragments.size(), 3u);

  MemoryObjects bucket;
  Node node(dir, "a", bucket);
  bucket.Hold();
  std::mutex mu;
  std::vector<uint64_t> order;
  std::vector<std::promise<Status>> outcomes(3);
  for (size_t i = 0; i < 3; ++i)
    node.store.PersistAsync("cam", fragments[i], [&, i](Status s) {
      {
        std::lock_guard lock(mu);
        order.push_back(fragments[i].number);
      }
      outcomes[i].set_value(std::move(s));
    });
  // The local files are durable first; nothing is PERSISTED while the puts wait.
  ASSERT_TRUE(Eventually([&] { return bucket.held() == 3; }));
  EXPECT_TRUE(bucket.objects().empty());
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(order.empty());
  }
  // The last upload ends first, then the first: the first fragment's done comes
  // first, the third's only after the second's.
  bucket.Release(2);
  bucket.Release(0);
  EXPECT_TRUE(outcomes[0].get_future().get().ok());
  bucket.Release(1);
  EXPECT_TRUE(outcomes[1].get_future().get().ok());
  EXPECT_TRUE(outcomes[2].get_future().get().ok());
  EXPECT_EQ(order, Numbers(fragments));
  // Each object is its fragment's local file, byte for byte (muxed once).
  auto objects = bucket.objects();
  ASSERT_EQ(objects.size(), 3u);
  for (const FragmentView& f : fragments) {
    FragmentView index = f;
    index.frame_count = f.frames.size();
    auto it = objects.find(SharedArchive::KeyOf("cam", index));
    ASSERT_NE(it, objects.end()) << SharedArchive::KeyOf("cam", index);
    const std::string infix = "-" + std::to_string(f.number) + "-";
    std::string file;
    for (const auto& e : fs::directory_iterator(dir.path() / "a" / "cam"))
      if (e.path().filename().string().find(infix) != std::string::npos)
        file = ReadFile(e.path().string());
    EXPECT_EQ(it->second, file);
  }
}

TEST(SharedArchive, AStoreThatRefusesIsAnArchivalErrorNeverPersisted) {
  TempDir dir;
  MemoryObjects bucket;
  bucket.Refuse(Status(Code::kUpstreamFailed, "object store answered 403 SignatureDoesNotMatch",
                       Reason::kObjectStoreError));
  Node node(dir, "a", bucket);
  std::vector<std::string> acks;
  std::mutex mu;
  ASSERT_TRUE(testing::PushBytes(node.store, "cam", ReadFile(Clip(dir, 2)), [&](std::string ack) {
                std::lock_guard lock(mu);
                acks.push_back(std::move(ack));
              }).ok());
  int errors = 0;
  for (const std::string& ack : acks) {
    EXPECT_EQ(ack.find("\"PERSISTED\""), std::string::npos) << ack;
    if (ack.find("\"ERROR\"") != std::string::npos) {
      ++errors;
      EXPECT_NE(ack.find("ARCHIVAL_ERROR"), std::string::npos) << ack;
      EXPECT_NE(ack.find("shared archive"), std::string::npos) << ack;
      EXPECT_NE(ack.find("SignatureDoesNotMatch"), std::string::npos) << ack;
    }
  }
  EXPECT_EQ(errors, 2);
  EXPECT_TRUE(bucket.objects().empty());
}

// Node A's stream, read by node B, which never held it; then continued on B.
TEST(ArchivedSource, AnotherNodeReadsTheArchiveAndMergesItsOwnFragments) {
  TempDir dir;
  const std::string clip = ReadFile(Clip(dir, 3));
  MemoryObjects bucket;
  std::vector<uint64_t> persisted;
  {
    Node a(dir, "a", bucket);
    persisted = PushPersisted(a.store, "cam", clip);
  }  // A is gone
  ASSERT_EQ(persisted.size(), 3u);
  // Junk under the prefix is left alone.
  bucket.Add("cam/notes.txt", "hello");
  bucket.Add("cam/000000000000001-5-6-7-8-9-10.mkv", "not a fragment");  // long past retention
  bucket.Add("cam/" + std::string(15, '9') + "-5-6-7-8-9-10.mkv", "not matroska either");

  Node b(dir, "b", bucket);
  // A listing: from the keys alone, no GET.
  FragmentQuery list;
  list.with_frames = false;
  const int gets = bucket.gets();
  auto listed = b.source.Fragments("cam", list);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(bucket.gets(), gets);
  std::vector<uint64_t> numbers = Numbers(*listed);
  ASSERT_EQ(numbers.size(), 4u);  // the one named as a fragment far in the future is listed
  EXPECT_EQ(std::vector<uint64_t>(numbers.begin(), numbers.begin() + 3), persisted);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*listed)[i].frame_count, 10u);
    EXPECT_GT((*listed)[i].bytes, 0u);
    EXPECT_TRUE((*listed)[i].complete);
  }
  // With frames: fetched and demuxed as the local files are; a junk object that
  // does not read back is left out, as a local file that does not.
  std::promise<Result<std::vector<FragmentView>>> async;
  b.source.FragmentsAsync("cam", FragmentQuery{},
                          [&](Result<std::vector<FragmentView>> r) { async.set_value(r); });
  auto with_frames = async.get_future().get();
  ASSERT_TRUE(with_frames.ok()) << with_frames.status().ToString();
  ASSERT_EQ(Numbers(*with_frames), persisted);
  for (const FragmentView& f : *with_frames) {
    EXPECT_EQ(f.frames.size(), 10u);
    EXPECT_TRUE(f.codec);
    EXPECT_TRUE(f.frames.front().keyframe);
  }
  auto by_number = b.source.FragmentsByNumber("cam", {persisted[2], persisted[0]});
  ASSERT_TRUE(by_number.ok()) << by_number.status().ToString();
  EXPECT_EQ(Numbers(*by_number), (std::vector<uint64_t>{persisted[2], persisted[0]}));
  EXPECT_EQ(b.source.FragmentsByNumber("cam", {persisted[0], 42}).status().reason(),
            Reason::kFragmentNotFound);
  auto latest = b.source.LatestFragment("cam");
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->number, persisted[2]);  // the junk newest does not read back: skipped
  EXPECT_EQ(latest->frames.size(), 10u);
  EXPECT_EQ(b.source.Fragments("nobody", list).status().reason(), Reason::kStreamNotFound);
  EXPECT_EQ(b.source.LatestFragment("nobody").status().reason(), Reason::kStreamNotFound);
  // A name no stream may have never reaches the bucket's keys.
  const int lists_before = bucket.lists();
  EXPECT_EQ(b.source.Fragments("../cam", list).status().reason(), Reason::kStreamNotFound);
  EXPECT_EQ(b.source.Fragments("cam/x", list).status().reason(), Reason::kStreamNotFound);
  EXPECT_EQ(bucket.lists(), lists_before);

  // The producer continues on B: B's fragments and A's, one list.
  std::vector<uint64_t> more = PushPersisted(b.store, "cam", clip);
  ASSERT_EQ(more.size(), 3u);
  auto merged = b.source.Fragments("cam", list);
  ASSERT_TRUE(merged.ok());
  std::vector<uint64_t> want = persisted;
  want.insert(want.end(), more.begin(), more.end());
  numbers = Numbers(*merged);
  numbers.erase(std::remove(numbers.begin(), numbers.end(), 5u), numbers.end());
  EXPECT_EQ(numbers, want);
  // Held here first: B's fragments are answered without the archive.
  auto mixed = b.source.FragmentsByNumber("cam", {persisted[1], more[1]});
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_EQ(Numbers(*mixed), (std::vector<uint64_t>{persisted[1], more[1]}));
  EXPECT_EQ(b.source.LatestFragment("cam")->number, more[2]);
  // A range that starts within what B holds reads no archive.
  const int lists = bucket.lists();
  FragmentQuery recent = list;
  recent.timeline = FragmentQuery::Timeline::kServer;
  recent.start_ms = b.store.Find("cam")->Fragments().front().server_ts_ms;
  auto local_only = b.source.Fragments("cam", recent);
  ASSERT_TRUE(local_only.ok());
  EXPECT_EQ(Numbers(*local_only), more);
  EXPECT_EQ(bucket.lists(), lists);
}

}  // namespace
}  // namespace lastframe::store
