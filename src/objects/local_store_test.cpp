#include "objects/local_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "objects/credentials_file.h"
#include "support/temp_dir.h"

namespace lastframe::objects {
namespace {

using testing::TempDir;

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
    return store_->GetPresigned("GET", "127.0.0.1:8080", path.substr(1, slash - 1),
                                path.substr(slash + 1), *query);
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
  EXPECT_EQ(got->content_type, "image/jpeg");
  ASSERT_TRUE(store_->Put("snapshots/cam/1.jpg", "NEWER", "image/jpeg").ok());
  EXPECT_EQ(Fetch(*url)->bytes, "NEWER");
  clock_.Advance(601'000);
  EXPECT_EQ(Fetch(*url).status().message(), "Request has expired");
}

TEST_F(LocalStoreTest, KeysNeverEscapeTheDirectory) {
  const std::vector<std::string> keys = {
      "../escape.jpg", "a/../../b",           "/abs", "a//b", "./a", "a/.", "",
      "a\\..\\b",      std::string("a\0b", 3)};
  for (const std::string& key : keys) {
    EXPECT_EQ(store_->Put(key, "x", "image/jpeg").reason(), "InvalidKey") << key;
    EXPECT_FALSE(store_->PresignGet(key, 600).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "escape.jpg"));
  QueryParams none;
  EXPECT_EQ(store_->GetPresigned("GET", "127.0.0.1:8080", "lastframe", "../../etc/passwd", none)
                .status()
                .reason(),
            "InvalidKey");
}

TEST_F(LocalStoreTest, MissingObjectsAndBuckets) {
  auto url = store_->PresignGet("snapshots/none.jpg", 600);
  EXPECT_EQ(Fetch(*url).status().reason(), "NoSuchKey");
  QueryParams none;
  EXPECT_EQ(store_->GetPresigned("GET", "h", "otherbucket", "k", none).status().reason(),
            "NoSuchBucket");
}

TEST_F(LocalStoreTest, ExpiryBounds) {
  ASSERT_TRUE(store_->Put("k.jpg", "x", "image/jpeg").ok());
  EXPECT_FALSE(store_->PresignGet("k.jpg", 0).ok());
  EXPECT_FALSE(store_->PresignGet("k.jpg", 604801).ok());
  EXPECT_TRUE(store_->PresignGet("k.jpg", 604800).ok());
}

TEST(HostOfUrl, DropsDefaultPorts) {
  EXPECT_EQ(HostOfUrl("http://127.0.0.1:8080"), "127.0.0.1:8080");
  EXPECT_EQ(HostOfUrl("http://example.com:80/x"), "example.com");
  EXPECT_EQ(HostOfUrl("https://example.com:443"), "example.com");
  EXPECT_EQ(HostOfUrl("https://example.com:8443"), "example.com:8443");
  EXPECT_FALSE(HostOfUrl("ftp://x"));
}

TEST(Credentials, GeneratedOnceKeptPrivate) {
  TempDir dir;
  auto path = dir.path() / "credentials.json";
  auto first = LoadOrCreateCredentials(path);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->access_key_id.size(), 20u);
  EXPECT_EQ(first->secret_access_key.Reveal().size(), 40u);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = LoadOrCreateCredentials(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->access_key_id, first->access_key_id);
  EXPECT_EQ(second->secret_access_key.Reveal(), first->secret_access_key.Reveal());
  testing::WriteFile(path.string(), "{not json");
  EXPECT_FALSE(LoadOrCreateCredentials(path).ok());
}

}  // namespace
}  // namespace lastframe::objects
