#include "objects/local_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "aws/credentials_file.h"
#include "core/metrics.h"
#include "core/test_metrics.h"
#include "support/temp_dir.h"

namespace lastframe::objects {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

using metrics::test::MetricValue;

double Requests(const std::string& op) {
  return MetricValue(R"(lastframe_object_store_requests_total{store="embedded",operation=")" + op +
                     "\"}");
}
double Failures(const std::string& op) {
  return MetricValue(R"(lastframe_object_store_failures_total{store="embedded",operation=")" + op +
                     "\"}");
}
double Uploads() {
  return MetricValue(R"(lastframe_object_upload_duration_seconds_count{store="embedded"})");
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalStoreOptions o;
    o.root = dir_.path() / "objects";
    o.public_url = "http://127.0.0.1:8080";
    o.credentials = {"LFKEY", Secret("s3cr3t"), ""};
    auto s = LocalStore::Open(o, clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // Follows a URL we handed out the way the HTTP layer does.
  Result<StoredObject> Fetch(const std::string& url) {
    std::string prefix = "http://127.0.0.1:8080";
    EXPECT_EQ(url.rfind(prefix, 0), 0u);
    std::string rest = url.substr(prefix.size());
    size_t q = rest.find('?');
    std::string path = *UriDecode(rest.substr(0, q));
    auto query = ParseQuery(rest.substr(q + 1));
    size_t slash = path.find('/', 1);
    auto auth = store_->Authenticate("GET", path, *query, {{"host", "127.0.0.1:8080"}});
    if (!auth.ok()) return auth.status();
    EXPECT_EQ(path.substr(1, slash - 1), store_->bucket());
    return store_->GetObject(path.substr(slash + 1));
  }

  TempDir dir_;
  ManualClock clock_{1'764'000'000'000};
  std::unique_ptr<LocalStore> store_;
};

TEST_F(LocalStoreTest, PutPresignGet) {
  ASSERT_TRUE(store_->Put("snapshots/cam/1.jpg", "JPEGDATA", "image/jpeg").ok());
  auto url = store_->PresignGet("snapshots/cam/1.jpg", 600);
  ASSERT_TRUE(url.ok());
  EXPECT_NE(url->find("http://127.0.0.1:8080/lastframe/snapshots/cam/1.jpg?X-Amz-Algorithm="),
            std::string::npos);
  auto got = Fetch(*url);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->bytes, "JPEGDATA");
  EXPECT_EQ(got->info.meta.content_type, "image/jpeg");
  EXPECT_EQ(got->info.meta.cache_control, "private, max-age=600");
  EXPECT_EQ(got->info.meta.etag, Md5Hex("JPEGDATA"));
  ASSERT_TRUE(store_->Put("snapshots/cam/1.jpg", "NEWER", "image/jpeg").ok());
  EXPECT_EQ(Fetch(*url)->bytes, "NEWER");
  clock_.Advance(601'000);
  EXPECT_EQ(Fetch(*url).status().message(), "Request has expired");
}

TEST_F(LocalStoreTest, AUrlLivesAtLeastTheSecondsAsked) {
  // Made late in a second: X-Amz-Date says the second before, and a 1 s URL
  // checked in milliseconds against it would have 100 ms to live.
  clock_.Set(1'764'000'000'900);
  ASSERT_TRUE(store_->Put("k.jpg", "x", "image/jpeg").ok());
  auto url = store_->PresignGet("k.jpg", 1);
  ASSERT_TRUE(url.ok());
  EXPECT_NE(url->find("X-Amz-Date=20251124T160000Z&X-Amz-Expires=1&"), std::string::npos) << *url;
  EXPECT_TRUE(Fetch(*url).ok());  // at once
  const int64_t expires_at = store_->UrlExpiresAtMs(1'764'000'000'900, 1);
  EXPECT_EQ(expires_at, 1'764'000'002'000);
  clock_.Set(1'764'000'001'900);  // a full second after it was made
  EXPECT_TRUE(Fetch(*url).ok()) << Fetch(*url).status().ToString();
  clock_.Set(expires_at - 1);
  EXPECT_TRUE(Fetch(*url).ok());
  clock_.Set(expires_at);
  EXPECT_EQ(Fetch(*url).status().message(), "Request has expired");
}

// The longest URL handed out is kept whole: a disk that refuses the write (a
// file-size limit, as a full disk) keeps the file as it was, where the old
// unsynced rewrite left it empty or cut ("86" for 86400) and a restart swept
// objects behind still-valid URLs. The next longer URL writes it again.
TEST_F(LocalStoreTest, TheLongestUrlExpiryIsNeverLeftTorn) {
  const fs::path file = dir_.path() / "objects" / ".longest-url-expiry";
  ASSERT_TRUE(store_->PresignGet("k.jpg", 7200).ok());
  EXPECT_EQ(testing::ReadFile(file.string()), "7200\n");
  {
    signal(SIGXFSZ, SIG_IGN);
    rlimit saved{};
    getrlimit(RLIMIT_FSIZE, &saved);
    rlimit tiny = saved;
    tiny.rlim_cur = 2;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    auto url = store_->PresignGet("k.jpg", 86400);
    setrlimit(RLIMIT_FSIZE, &saved);
    EXPECT_TRUE(url.ok());  // the URL itself is fine
  }
  EXPECT_EQ(store_->max_age_s(), 86400);
  EXPECT_EQ(testing::ReadFile(file.string()), "7200\n");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_.path() / "objects"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{".longest-url-expiry", ".tmp", ".uploads", "lastframe"}));
  // Tried again by the next URL longer than what the file says.
  ASSERT_TRUE(store_->PresignGet("k.jpg", 3600).ok());
  EXPECT_EQ(testing::ReadFile(file.string()), "7200\n");  // not longer than 7200: no write
  ASSERT_TRUE(store_->PresignGet("k.jpg", 10000).ok());
  EXPECT_EQ(testing::ReadFile(file.string()), "86400\n");
  LocalStoreOptions o;
  o.root = dir_.path() / "objects";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = {"LFKEY", Secret("s3cr3t"), ""};
  auto reopened = LocalStore::Open(o, clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->max_age_s(), 86400);
}

TEST_F(LocalStoreTest, KeysNeverEscapeTheDirectory) {
  const std::vector<std::string> keys = {
      "../escape.jpg", "a/../../b",           "/abs", "a//b", "./a", "a/.", "",
      "a\\..\\b",      std::string("a\0b", 3)};
  for (const std::string& key : keys) {
    EXPECT_EQ(store_->Put(key, "x", "image/jpeg").reason(), Reason::kInvalidKey) << key;
    EXPECT_FALSE(store_->PresignGet(key, 600).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "escape.jpg"));
  EXPECT_EQ(store_->GetObject("../../etc/passwd").status().reason(), Reason::kInvalidKey);
  EXPECT_EQ(store_->HeadObject("a/../../x").status().reason(), Reason::kInvalidKey);
  EXPECT_EQ(store_->DeleteObject("../objects").reason(), Reason::kInvalidKey);
  EXPECT_EQ(store_->PutObject("..", "x", {}).status().reason(), Reason::kInvalidKey);
}

TEST_F(LocalStoreTest, MissingObjects) {
  auto url = store_->PresignGet("snapshots/none.jpg", 600);
  EXPECT_EQ(Fetch(*url).status().reason(), Reason::kNoSuchKey);
  EXPECT_EQ(store_->HeadObject("none").status().reason(), Reason::kNoSuchKey);
  EXPECT_TRUE(store_->DeleteObject("none").ok());  // as S3: deleting nothing succeeds
}

TEST_F(LocalStoreTest, ObjectsKeepTheirMetadataAndRanges) {
  ObjectMeta meta;
  meta.content_type = "text/plain";
  meta.user = {{"camera", "north gate"}};
  auto put = store_->PutObject("dir/a b+c~é.txt", "0123456789", meta);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->meta.etag, Md5Hex("0123456789"));
  auto head = store_->HeadObject("dir/a b+c~é.txt");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, 10u);
  EXPECT_EQ(head->meta.content_type, "text/plain");
  ASSERT_EQ(head->meta.user.size(), 1u);
  EXPECT_EQ(head->meta.user[0].second, "north gate");
  auto part = store_->GetObject("dir/a b+c~é.txt", ParseByteRange("bytes=2-4"));
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->bytes, "234");
  EXPECT_TRUE(part->partial);
  EXPECT_EQ(store_->GetObject("dir/a b+c~é.txt", ParseByteRange("bytes=-3"))->bytes, "789");
  EXPECT_EQ(store_->GetObject("dir/a b+c~é.txt", ParseByteRange("bytes=7-"))->bytes, "789");
  EXPECT_EQ(store_->GetObject("dir/a b+c~é.txt", ParseByteRange("bytes=8-100"))->bytes, "89");
  EXPECT_EQ(store_->GetObject("dir/a b+c~é.txt", ParseByteRange("bytes=10-")).status().reason(),
            Reason::kInvalidRange);
  EXPECT_FALSE(ParseByteRange("bytes=5-2"));
  EXPECT_FALSE(ParseByteRange("bytes=1-2,4-5"));
  EXPECT_FALSE(ParseByteRange("items=1-2"));
  // A key cannot be both an object and a folder of others.
  EXPECT_EQ(store_->PutObject("dir", "x", {}).status().reason(), Reason::kObjectKeyConflict);
  EXPECT_EQ(store_->PutObject("dir/a b+c~é.txt/x", "x", {}).status().reason(),
            Reason::kObjectKeyConflict);
  ASSERT_TRUE(store_->DeleteObject("dir/a b+c~é.txt").ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "objects/lastframe/dir"));  // emptied folder
}

TEST_F(LocalStoreTest, MetadataThatIsNotUtf8IsRefused) {
  // Found by fuzz/object_key: the metadata's JSON writer threw on such bytes
  // (an S3 PUT's Content-Type), which ended the server.
  for (auto bad : {ObjectMeta{.content_type = "image/\xff"},
                   ObjectMeta{.cache_control = "\xc0\xaf"},           // an overlong '/'
                   ObjectMeta{.user = {{"cam", "\xed\xa0\x80"}}}}) {  // a surrogate
    auto put = store_->PutObject("k", "x", bad);
    EXPECT_EQ(put.status().reason(), Reason::kInvalidArgument) << put.status().ToString();
  }
  EXPECT_FALSE(store_->HeadObject("k").ok());
  ObjectMeta good{.content_type = "text/plain; charset=utf-8", .user = {{"lieu", "entrée €𝄞"}}};
  ASSERT_TRUE(store_->PutObject("k", "x", good).ok());
  EXPECT_EQ(store_->HeadObject("k")->meta.user, good.user);
}

TEST_F(LocalStoreTest, ListsLikeS3) {
  for (const char* k : {"a/1", "a/2", "a/b/3", "b", "c/4"})
    ASSERT_TRUE(store_->PutObject(k, k, {}).ok());
  auto all = store_->List({});
  ASSERT_TRUE(all.ok());
  std::vector<std::string> keys;
  for (const auto& o : all->objects) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a/1", "a/2", "a/b/3", "b", "c/4"}));
  auto folders = store_->List({.prefix = "a/", .delimiter = "/"});
  ASSERT_TRUE(folders.ok());
  ASSERT_EQ(folders->objects.size(), 2u);
  EXPECT_EQ(folders->common_prefixes, std::vector<std::string>{"a/b/"});
  auto top = store_->List({.delimiter = "/"});
  EXPECT_EQ(top->common_prefixes, (std::vector<std::string>{"a/", "c/"}));
  ASSERT_EQ(top->objects.size(), 1u);
  EXPECT_EQ(top->objects[0].key, "b");
  // Pages of two, each starting after the last of the one before.
  std::vector<std::string> paged;
  std::string after;
  for (int page = 0; page < 5; ++page) {
    auto r = store_->List({.start_after = after, .max_keys = 2});
    ASSERT_TRUE(r.ok());
    for (const auto& o : r->objects) paged.push_back(o.key);
    if (!r->truncated) break;
    after = r->last;
  }
  EXPECT_EQ(paged, keys);
  EXPECT_TRUE(store_->List({.prefix = "../"})->objects.empty());
  EXPECT_TRUE(store_->List({.prefix = "zzz/"})->objects.empty());
}

TEST_F(LocalStoreTest, SweepDeletesByAgeThenBySize) {
  LocalStoreOptions o;
  o.root = dir_.path() / "small";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = {"LFKEY", Secret("s3cr3t"), ""};
  o.max_age_s = 100;
  o.max_total_bytes = 1200;  // each file: 400 bytes and a ~100-byte header
  auto store = LocalStore::Open(o, clock_);
  ASSERT_TRUE(store.ok());
  // File times come from the real clock: age them by hand.
  auto age = [&](const std::string& key, int seconds) {
    auto path = o.root / "lastframe" / key;
    std::filesystem::last_write_time(
        path, std::filesystem::last_write_time(path) - std::chrono::seconds(seconds));
  };
  ManualClock& clock = clock_;
  clock.Set(std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count());
  ASSERT_TRUE((*store)->PutObject("old", std::string(100, 'o'), {}).ok());
  ASSERT_TRUE((*store)->PutObject("s/older", std::string(400, 'a'), {}).ok());
  ASSERT_TRUE((*store)->PutObject("s/newer", std::string(400, 'b'), {}).ok());
  age("old", 200);
  age("s/older", 50);
  age("s/newer", 10);
  auto r = (*store)->Sweep();
  EXPECT_EQ(r.deleted_expired, 1u);
  EXPECT_EQ(r.deleted_for_space, 0u);
  EXPECT_EQ((*store)->HeadObject("old").status().reason(), Reason::kNoSuchKey);
  // Past the size bound, a put sweeps the oldest.
  ASSERT_TRUE((*store)->PutObject("s/newest", std::string(400, 'c'), {}).ok());
  EXPECT_EQ((*store)->HeadObject("s/older").status().reason(), Reason::kNoSuchKey);
  EXPECT_TRUE((*store)->HeadObject("s/newer").ok());
  EXPECT_TRUE((*store)->HeadObject("s/newest").ok());
}

TEST_F(LocalStoreTest, DefaultAgeIsTheLongestUrlHandedOut) {
  EXPECT_EQ(store_->max_age_s(), 600);
  ASSERT_TRUE(store_->Put("k.jpg", "x", "image/jpeg").ok());
  ASSERT_TRUE(store_->PresignGet("k.jpg", 7200).ok());
  EXPECT_EQ(store_->max_age_s(), 7200);
  ASSERT_TRUE(store_->PresignGet("k.jpg", 60).ok());
  EXPECT_EQ(store_->max_age_s(), 7200);
  // Remembered across a restart.
  LocalStoreOptions o;
  o.root = dir_.path() / "objects";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = {"LFKEY", Secret("s3cr3t"), ""};
  auto reopened = LocalStore::Open(o, clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->max_age_s(), 7200);
}

TEST_F(LocalStoreTest, ExpiryBounds) {
  ASSERT_TRUE(store_->Put("k.jpg", "x", "image/jpeg").ok());
  EXPECT_FALSE(store_->PresignGet("k.jpg", 0).ok());
  EXPECT_FALSE(store_->PresignGet("k.jpg", 604801).ok());
  EXPECT_TRUE(store_->PresignGet("k.jpg", 604800).ok());
}

// The registry is the process's: each check compares before and after.
TEST_F(LocalStoreTest, OperationsAreCountedAndOnlyTheStoresFailuresAreFailures) {
  const std::vector<std::string> ops = {"put", "get", "delete", "list", "head", "sweep"};
  std::map<std::string, double> requests, failures;
  for (const auto& op : ops) {
    requests[op] = Requests(op);
    failures[op] = Failures(op);
  }
  const double uploads = Uploads();

  ASSERT_TRUE(store_->Put("a/1.jpg", "JPEG", "image/jpeg").ok());
  ASSERT_TRUE(store_->PutObject("a/2.bin", "BIN", {}).ok());
  ASSERT_FALSE(store_->PutObject("../x", "BIN", {}).ok());  // the caller's: no upload timed
  ASSERT_TRUE(store_->GetObject("a/1.jpg").ok());
  ASSERT_FALSE(store_->GetObject("a/none").ok());  // a missing key is not the store failing
  ASSERT_TRUE(store_->HeadObject("a/1.jpg").ok());
  ASSERT_TRUE(store_->List({.prefix = "a/"}).ok());
  ASSERT_TRUE(store_->DeleteObject("a/2.bin").ok());
  store_->Sweep();
  // An object file the store cannot read back is the store failing.
  std::ofstream(dir_.path() / "objects" / "lastframe" / "a" / "torn") << "LFO1 {not json\n";
  auto torn = store_->GetObject("a/torn");
  ASSERT_EQ(torn.status().code(), Code::kInternal) << torn.status().ToString();

  EXPECT_EQ(Requests("put") - requests["put"], 3);
  EXPECT_EQ(Requests("get") - requests["get"], 3);
  EXPECT_EQ(Requests("head") - requests["head"], 1);
  EXPECT_EQ(Requests("list") - requests["list"], 1);
  EXPECT_EQ(Requests("delete") - requests["delete"], 1);
  EXPECT_EQ(Requests("sweep") - requests["sweep"], 1);
  EXPECT_EQ(Failures("get") - failures["get"], 1);
  for (const auto& op : {"put", "delete", "list", "head", "sweep"})
    EXPECT_EQ(Failures(op) - failures[op], 0) << op;
  EXPECT_EQ(Uploads() - uploads, 2);
}

TEST(HostOfUrl, DropsDefaultPorts) {
  EXPECT_EQ(HostOfUrl("http://127.0.0.1:8080"), "127.0.0.1:8080");
  EXPECT_EQ(HostOfUrl("http://example.com:80/x"), "example.com");
  EXPECT_EQ(HostOfUrl("https://example.com:443"), "example.com");
  EXPECT_EQ(HostOfUrl("https://example.com:8443"), "example.com:8443");
  EXPECT_FALSE(HostOfUrl("ftp://x"));
}

}  // namespace
}  // namespace lastframe::objects
