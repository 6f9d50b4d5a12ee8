#include "objects/s3_store.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace lastframe::objects
