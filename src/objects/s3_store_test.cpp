#include "objects/s3_store.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <future>

#include "core/metrics.h"
#include "core/test_metrics.h"
#include "objects/local_store.h"
#include "support/s3rver.h"
#include "support/temp_dir.h"

namespace lastframe::objects {
namespace {

std::unique_ptr<S3Store> Open(S3StoreOptions o, const Clock& clock) {
  o.credentials = {"AKID", Secret("secret"), ""};
  auto s = S3Store::Open(std::move(o), clock);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(S3Store, AddressingStyles) {
  ManualClock clock(1'764'000'000'000);
  // AWS: virtual-hosted by default, the regional endpoint when none is given.
  auto aws = Open({.bucket = "cams", .prefix = "site", .region = "eu-west-1"}, clock);
  std::string url = *aws->PresignGet("snapshots/a b.jpg", 60);
  EXPECT_EQ(url.rfind("https://cams.s3.eu-west-1.amazonaws.com/site/snapshots/a%20b.jpg?", 0), 0u)
      << url;
  EXPECT_NE(url.find("%2Feu-west-1%2Fs3%2Faws4_request"), std::string::npos);
  // Dotted bucket names stay path style on AWS (the TLS wildcard covers one label).
  auto dotted = Open({.bucket = "my.cams", .region = "us-east-1"}, clock);
  EXPECT_EQ(dotted->PresignGet("k", 60)->rfind("https://s3.us-east-1.amazonaws.com/my.cams/k?", 0),
            0u);
  // Other endpoints (MinIO, Ceph): path style, unless asked.
  auto minio = Open({.bucket = "cams", .endpoint = "http://127.0.0.1:9000/"}, clock);
  EXPECT_EQ(minio->PresignGet("k+1", 60)->rfind("http://127.0.0.1:9000/cams/k%2B1?", 0), 0u);
  auto virt = Open({.bucket = "cams",
                    .endpoint = "http://minio.local:9000",
                    .addressing = S3Addressing::kVirtual},
                   clock);
  EXPECT_EQ(virt->PresignGet("k", 60)->rfind("http://cams.minio.local:9000/k?", 0), 0u);
  // The signature covers the host it names: our verifier agrees.
  aws::SigV4 verifier({"AKID", Secret("secret"), ""}, "us-east-1", "s3", clock);
  std::string v = *virt->PresignGet("k", 60);
  EXPECT_TRUE(verifier
                  .VerifyPresigned("GET", "cams.minio.local:9000", "/k",
                                   *ParseQuery(v.substr(v.find('?') + 1)))
                  .ok());
}

TEST(S3Store, RefusesBadSettings) {
  ManualClock clock(0);
  EXPECT_FALSE(
      S3Store::Open({.bucket = "Bad_Name", .credentials = {"a", Secret("b"), ""}}, clock).ok());
  EXPECT_FALSE(S3Store::Open({.bucket = "cams"}, clock).ok());  // no credentials
  EXPECT_FALSE(
      S3Store::Open(
          {.bucket = "cams", .endpoint = "ftp://x", .credentials = {"a", Secret("b"), ""}}, clock)
          .ok());
  EXPECT_FALSE(
      S3Store::Open(
          {.bucket = "cams", .endpoint = "http://x/path", .credentials = {"a", Secret("b"), ""}},
          clock)
          .ok());
  auto store = Open({.bucket = "cams", .endpoint = "http://127.0.0.1:9"}, clock);
  EXPECT_EQ(store->PresignGet("../k", 60).status().reason(), Reason::kInvalidKey);
  EXPECT_FALSE(store->PresignGet("k", 0).ok());
  EXPECT_FALSE(store->PresignGet("k", 604801).ok());
}

using metrics::test::MetricValue;

// A loopback port nothing listens on.
uint16_t ClosedPort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// The registry is the process's: each check compares before and after.
TEST(S3Store, CallsTheirRetriesAndFailuresAreCountedByOperation) {
  auto metric = [](const std::string& name, const std::string& op) {
    return MetricValue(name + R"({store="s3",operation=")" + op + "\"}");
  };
  const std::string kRequests = "lastframe_object_store_requests_total";
  const std::string kFailures = "lastframe_object_store_failures_total";
  const std::string kRetries = "lastframe_object_store_retries_total";
  const std::string kUploads = R"(lastframe_object_upload_duration_seconds_count{store="s3"})";
  const double requests = metric(kRequests, "put"), failures = metric(kFailures, "put"),
               retries = metric(kRetries, "put"), uploads = MetricValue(kUploads),
               get_requests = metric(kRequests, "get"), get_failures = metric(kFailures, "get"),
               get_retries = metric(kRetries, "get");

  ManualClock clock(1'764'000'000'000);
  auto store = Open({.bucket = "cams",
                     .endpoint = "http://127.0.0.1:" + std::to_string(ClosedPort()),
                     .budget = {.deadline = std::chrono::milliseconds(5000),
                                .max_attempts = 3,
                                .backoff_base = std::chrono::milliseconds(1)}},
                    clock);
  // Nothing listens: each try is refused, retried, and the put fails (on the upload threads).
  std::promise<Status> put;
  store->PutAsync("snapshots/cam/1.jpg", std::make_shared<const std::string>("JPEG"), "image/jpeg",
                  [&put](Status s) { put.set_value(std::move(s)); });
  EXPECT_EQ(put.get_future().get().code(), Code::kUnavailable);
  EXPECT_EQ(metric(kRequests, "put") - requests, 1);
  EXPECT_EQ(metric(kFailures, "put") - failures, 1);
  EXPECT_EQ(metric(kRetries, "put") - retries, 2);
  EXPECT_EQ(MetricValue(kUploads) - uploads, 1);  // the time a failed upload held its caller
  // A bad key is the caller's: asked, not sent, not a failure.
  EXPECT_EQ(store->Get("../k").status().reason(), Reason::kInvalidKey);
  EXPECT_EQ(metric(kRequests, "get") - get_requests, 1);
  EXPECT_EQ(metric(kRetries, "get") - get_retries, 0);
  EXPECT_EQ(metric(kFailures, "get") - get_failures, 0);
}

TEST(S3Store, ParsesS3Uris) {
  auto a = ParseS3Uri("s3://cams");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "cams");
  EXPECT_EQ(a->second, "");
  auto b = ParseS3Uri("s3://cams/site/a/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->second, "site/a/");
  EXPECT_FALSE(ParseS3Uri("cams").ok());
  EXPECT_FALSE(ParseS3Uri("s3://UPPER").ok());
  EXPECT_FALSE(ParseS3Uri("s3://cams/../x").ok());
}

// Every page of a listing of |prefix| after |start_after|, |max_keys| at a time.
std::vector<ListedObject> ListAll(ObjectStore& store, const std::string& prefix,
                                  const std::string& start_after, size_t max_keys, int* pages) {
  std::vector<ListedObject> all;
  std::string from;
  *pages = 0;
  do {
    auto page = store.ListPage(prefix, start_after, from, max_keys);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    ++*pages;
    EXPECT_LE(page->objects.size(), max_keys);
    all.insert(all.end(), page->objects.begin(), page->objects.end());
    from = page->next;
  } while (!from.empty() && *pages < 100);
  return all;
}

// Get and ListPage (ListObjectsV2 and its continuation tokens) against an S3
// server we did not write, and the embedded store answering the same calls alike.
TEST(S3StoreAgainstS3rver, GetsAndListsByPages) {
  testing::TempDir dir;
  testing::S3rver s3(dir);
  S3StoreOptions o{.bucket = "snaps", .prefix = "video", .endpoint = s3.endpoint()};
  o.credentials = {testing::kS3rverKey, Secret(testing::kS3rverSecret), ""};
  auto opened = S3Store::Open(o, SystemClock::Get());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  S3Store& store = **opened;
  auto local = LocalStore::Open({.root = dir.path() / "local",
                                 .bucket = "video",
                                 .public_url = "http://127.0.0.1:8080",
                                 .credentials = {"LFKEY", Secret("s3cr3t"), ""}},
                                SystemClock::Get());
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  const std::vector<std::string> keys = {"cam/001-a.mkv", "cam/002 b+c~.mkv", "cam/003-é.mkv",
                                         "cam/004.mkv",   "cam/005.mkv",      "camera/1.mkv",
                                         "other/1.mkv"};
  for (const std::string& key : keys) {
    ASSERT_TRUE(store.Put(key, "bytes of " + key, "video/x-matroska").ok()) << key;
    ASSERT_TRUE((*local)->Put(key, "bytes of " + key, "video/x-matroska").ok()) << key;
  }
  // Outside the store's prefix: never listed.
  S3StoreOptions bare = o;
  bare.prefix = "";
  auto outside = S3Store::Open(bare, SystemClock::Get());
  ASSERT_TRUE((*outside)->Put("cam/000.mkv", "x", "video/x-matroska").ok());

  for (ObjectStore* s : std::vector<ObjectStore*>{&store, local->get()}) {
    int pages = 0;
    std::vector<ListedObject> listed = ListAll(*s, "cam/", "", 2, &pages);
    ASSERT_EQ(listed.size(), 5u);
    EXPECT_EQ(pages, 3);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(listed[i].key, keys[i]);
      EXPECT_EQ(listed[i].size, ("bytes of " + keys[i]).size());
    }
    // start_after skips keys up to it, whatever the page size.
    listed = ListAll(*s, "cam/", "cam/003-é.mkv", 1000, &pages);
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0].key, "cam/004.mkv");
    EXPECT_EQ(pages, 1);
    EXPECT_TRUE(ListAll(*s, "nothing/", "", 10, &pages).empty());
    auto got = s->Get("cam/002 b+c~.mkv");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, "bytes of cam/002 b+c~.mkv");
    EXPECT_EQ(s->Get("cam/missing.mkv").status().reason(), Reason::kNoSuchKey);
  }

  // Refused: the store's error, never an empty listing.
  S3StoreOptions wrong = o;
  wrong.credentials = {testing::kS3rverKey, Secret("not-the-secret"), ""};
  auto refused = S3Store::Open(wrong, SystemClock::Get());
  auto page = (*refused)->ListPage("cam/", "", "", 10);
  EXPECT_EQ(page.status().reason(), Reason::kObjectStoreError) << page.status().ToString();
  EXPECT_EQ((*refused)->Get("cam/004.mkv").status().reason(), Reason::kObjectStoreError);
  // A bucket that is not there is the store's error too, not a missing key.
  S3StoreOptions missing = o;
  missing.bucket = "no-such-bucket";
  auto nowhere = S3Store::Open(missing, SystemClock::Get());
  EXPECT_EQ((*nowhere)->ListPage("cam/", "", "", 10).status().reason(), Reason::kObjectStoreError);
}

}  // namespace
}  // namespace lastframe::objects
