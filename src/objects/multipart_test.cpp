// LocalStore's streamed writes, multipart uploads and copies, on a real
// folder: what S3 promises about them (ETags, checksums, limits, expiry).

#include <gtest/gtest.h>

#include <filesystem>

#include "aws/checksums.h"
#include "core/encoding.h"
#include "objects/local_store.h"
#include "support/temp_dir.h"

namespace lastframe::objects {
namespace {

namespace fs = std::filesystem;
using aws::ChecksumAlgorithm;
using testing::TempDir;

constexpr size_t kMiB = 1 << 20;

std::string Pattern(size_t n, char seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(seed + (i * 131) % 251);
  return out;
}

std::string B64(ChecksumAlgorithm a, std::string_view bytes) {
  return Base64Encode(aws::ChecksumOf(a, bytes));
}

class MultipartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalStoreOptions o;
    o.root = dir_.path() / "objects";
    o.public_url = "http://127.0.0.1:8080";
    o.credentials = {"LFKEY", Secret("s3cr3t"), ""};
    o.max_object_bytes = 16 * kMiB;
    o.multipart_expiry_s = 3600;
    o.max_age_s = 30 * 86400;  // objects outlive the uploads' expiry here
    auto s = LocalStore::Open(o, clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // A part as the HTTP layer commits one: its MD5 and checksums computed from the bytes.
  Result<PartInfo> Part(const MultipartUpload& up, int number, const std::string& bytes) {
    auto writer = store_->BeginWrite({});
    if (!writer.ok()) return writer.status();
    LF_RETURN_IF_ERROR((*writer)->Append(bytes));
    PartInfo part;
    part.number = number;
    part.etag = Md5Hex(bytes);
    part.checksums = {{"CRC64NVME", B64(ChecksumAlgorithm::kCrc64Nvme, bytes)}};
    if (auto a = aws::ParseChecksumAlgorithm(up.meta.checksum_algorithm))
      part.checksums.emplace_back(up.meta.checksum_algorithm, B64(*a, bytes));
    return store_->CommitPart(std::move(*writer), up, std::move(part));
  }

  MultipartUpload Create(const std::string& key, const std::string& algorithm = "",
                         const std::string& type = "") {
    ObjectMeta meta;
    meta.content_type = "video/mp4";
    meta.user = {{"camera", "gate"}};
    meta.checksum_algorithm = algorithm;
    meta.checksum_type = type;
    auto up = store_->CreateMultipartUpload(key, meta);
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    return *up;
  }

  static std::vector<CompletedPart> Listed(const std::vector<PartInfo>& parts) {
    std::vector<CompletedPart> out;
    for (const PartInfo& p : parts) out.push_back({p.number, p.etag, {}});
    return out;
  }

  size_t FilesUnder(const fs::path& dir) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) ++n;
    return n;
  }

  TempDir dir_;
  ManualClock clock_{1'764'000'000'000};
  std::unique_ptr<LocalStore> store_;
};

TEST_F(MultipartTest, AStreamedWriteIsStoredWholeOrNotAtAll) {
  ObjectMeta meta;
  meta.content_type = "text/plain";
  meta.user = {{"a", std::string(2000, 'u')}};  // metadata larger than the slack kept for the end
  auto writer = store_->BeginWrite(meta);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("hello ").ok());
  ASSERT_TRUE((*writer)->Append("world").ok());
  EXPECT_EQ((*writer)->size(), 11u);
  meta.etag = Md5Hex("hello world");
  meta.checksum_algorithm = "CRC32";
  meta.checksum = B64(ChecksumAlgorithm::kCrc32, "hello world");
  meta.checksum_type = "FULL_OBJECT";
  auto info = store_->CommitObject(std::move(*writer), "s/k.txt", meta);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto got = store_->GetObject("s/k.txt");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, "hello world");
  EXPECT_EQ(got->info.meta.etag, meta.etag);
  EXPECT_EQ(got->info.meta.checksum, meta.checksum);
  EXPECT_EQ(got->info.meta.checksum_type, "FULL_OBJECT");
  EXPECT_EQ(got->info.meta.user, meta.user);
  // Dropped before its commit, a write leaves nothing behind.
  {
    auto dropped = store_->BeginWrite({});
    ASSERT_TRUE(dropped.ok());
    ASSERT_TRUE((*dropped)->Append("half").ok());
    EXPECT_EQ(FilesUnder(dir_.path() / "objects" / ".tmp"), 1u);
  }
  EXPECT_EQ(FilesUnder(dir_.path() / "objects" / ".tmp"), 0u);
}

TEST_F(MultipartTest, CompletesWithS3sETagAndTheDefaultFullObjectChecksum) {
  MultipartUpload up = Create("video/clip.mp4");
  const std::string a = Pattern(5 * kMiB, 'a'), b = Pattern(3 * kMiB + 17, 'b');
  auto p2 = Part(up, 2, b);  // parts may arrive in any order
  auto p1 = Part(up, 1, a);
  ASSERT_TRUE(p1.ok() && p2.ok());
  auto listed = store_->ListParts(up);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].number, 1);
  EXPECT_EQ((*listed)[1].size, b.size());
  ASSERT_EQ(store_->ListMultipartUploads().size(), 1u);
  auto done = store_->CompleteMultipartUpload(up, Listed({*p1, *p2}), "");
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  auto got = store_->GetObject("video/clip.mp4");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, a + b);
  EXPECT_EQ(got->info.meta.etag, Md5Hex(*HexDecode(Md5Hex(a)) + *HexDecode(Md5Hex(b))) + "-2");
  EXPECT_EQ(got->info.meta.content_type, "video/mp4");
  EXPECT_EQ(got->info.meta.user, up.meta.user);
  EXPECT_EQ(got->info.meta.checksum_algorithm, "CRC64NVME");
  EXPECT_EQ(got->info.meta.checksum, B64(ChecksumAlgorithm::kCrc64Nvme, a + b));
  EXPECT_EQ(got->info.meta.checksum_type, "FULL_OBJECT");
  // The upload is gone: no second complete, no late part.
  EXPECT_EQ(store_->FindMultipartUpload(up.upload_id, up.key).status().reason(),
            Reason::kNoSuchUpload);
  EXPECT_EQ(Part(up, 3, "late").status().reason(), Reason::kNoSuchUpload);
  EXPECT_TRUE(store_->ListMultipartUploads().empty());
  EXPECT_EQ(FilesUnder(dir_.path() / "objects" / ".uploads"), 0u);
}

TEST_F(MultipartTest, CompositeAndFullObjectChecksumsAreS3s) {
  const std::string a = Pattern(5 * kMiB, 'x'), b = Pattern(1000, 'y');
  for (const std::string type : {"COMPOSITE", "FULL_OBJECT"}) {
    MultipartUpload up = Create("sum-" + type, "CRC32", type);
    auto p1 = Part(up, 1, a), p2 = Part(up, 2, b);
    ASSERT_TRUE(p1.ok() && p2.ok());
    std::vector<CompletedPart> parts = Listed({*p1, *p2});
    parts[0].checksums = {{"CRC32", B64(ChecksumAlgorithm::kCrc32, a)}};
    auto done = store_->CompleteMultipartUpload(up, parts, "");
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_EQ(done->meta.checksum_type, type);
    if (type == "COMPOSITE")
      EXPECT_EQ(done->meta.checksum,
                B64(ChecksumAlgorithm::kCrc32, aws::ChecksumOf(ChecksumAlgorithm::kCrc32, a) +
                                                   aws::ChecksumOf(ChecksumAlgorithm::kCrc32, b)) +
                    "-2");
    else
      EXPECT_EQ(done->meta.checksum, B64(ChecksumAlgorithm::kCrc32, a + b));
  }
  // A whole-object value sent with the complete is checked.
  MultipartUpload up = Create("checked", "CRC32C", "FULL_OBJECT");
  auto p1 = Part(up, 1, a);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(store_->CompleteMultipartUpload(up, Listed({*p1}), B64(ChecksumAlgorithm::kCrc32c, b))
                .status()
                .reason(),
            Reason::kBadDigest);
  EXPECT_TRUE(
      store_->CompleteMultipartUpload(up, Listed({*p1}), B64(ChecksumAlgorithm::kCrc32c, a)).ok());
}

TEST_F(MultipartTest, CompleteRefusesWhatS3Refuses) {
  MultipartUpload up = Create("refused.bin", "SHA256");
  const std::string big = Pattern(5 * kMiB, 'p'), small = Pattern(10, 'q');
  auto p1 = Part(up, 1, small), p2 = Part(up, 2, big), p3 = Part(up, 3, small);
  ASSERT_TRUE(p1.ok() && p2.ok() && p3.ok());
  auto reason = [&](const std::vector<CompletedPart>& parts) {
    return store_->CompleteMultipartUpload(up, parts, "").status().reason();
  };
  EXPECT_EQ(reason({}), Reason::kMalformedXML);
  EXPECT_EQ(reason(Listed({*p1, *p2})), Reason::kEntityTooSmall);  // a small part not last
  EXPECT_EQ(reason(Listed({*p3, *p2})), Reason::kInvalidPartOrder);
  EXPECT_EQ(reason(Listed({*p2, *p2})), Reason::kInvalidPartOrder);
  std::vector<CompletedPart> wrong_etag = Listed({*p2, *p3});
  wrong_etag[1].etag = Md5Hex("other");
  EXPECT_EQ(reason(wrong_etag), Reason::kInvalidPart);
  std::vector<CompletedPart> missing = Listed({*p2});
  missing.push_back({7, Md5Hex(small), {}});
  EXPECT_EQ(reason(missing), Reason::kInvalidPart);
  std::vector<CompletedPart> wrong_sum = Listed({*p2, *p3});
  wrong_sum[1].checksums = {{"SHA256", B64(ChecksumAlgorithm::kSha256, "other")}};
  EXPECT_EQ(reason(wrong_sum), Reason::kInvalidPart);
  // The refusals left the upload as it was.
  EXPECT_TRUE(store_->CompleteMultipartUpload(up, Listed({*p2, *p3}), "").ok());
  // The assembled object is bounded as a PUT's is (16 MiB here): a part that would take its
  // upload past that is refused as it comes, so no disk holds parts a complete would refuse.
  MultipartUpload large = Create("large.bin");
  std::vector<PartInfo> parts;
  for (int n = 1; n <= 3; ++n) {
    auto p = Part(large, n, big);
    ASSERT_TRUE(p.ok());
    parts.push_back(*p);
  }
  EXPECT_EQ(Part(large, 4, big).status().reason(), Reason::kEntityTooLarge);
  EXPECT_TRUE(Part(large, 3, small).ok());  // a part replaced by a smaller one is counted once
  EXPECT_TRUE(Part(large, 4, small).ok());
  EXPECT_EQ(store_->ListParts(large)->size(), 4u);
}

TEST_F(MultipartTest, UploadsAreFoundOnlyByTheirIdAndKey) {
  MultipartUpload up = Create("k");
  EXPECT_TRUE(store_->FindMultipartUpload(up.upload_id, "k").ok());
  EXPECT_EQ(store_->FindMultipartUpload(up.upload_id, "other").status().reason(),
            Reason::kNoSuchUpload);
  for (const std::string& id :
       std::vector<std::string>{"", "../../etc", "0123", std::string(32, 'G'), up.upload_id + "0"})
    EXPECT_EQ(store_->FindMultipartUpload(id, "k").status().reason(), Reason::kNoSuchUpload) << id;
  EXPECT_EQ(store_->CreateMultipartUpload("../escape", {}).status().reason(), Reason::kInvalidKey);
  auto part = store_->BeginWrite({});
  ASSERT_TRUE(part.ok());
  PartInfo out_of_range;
  out_of_range.number = 10001;
  EXPECT_EQ(store_->CommitPart(std::move(*part), up, out_of_range).status().reason(),
            Reason::kInvalidArgument);
}

TEST_F(MultipartTest, AbortedAndAbandonedUploadsGo) {
  MultipartUpload aborted = Create("a");
  ASSERT_TRUE(Part(aborted, 1, "bytes").ok());
  ASSERT_TRUE(store_->AbortMultipartUpload(aborted).ok());
  EXPECT_EQ(store_->AbortMultipartUpload(aborted).reason(), Reason::kNoSuchUpload);
  EXPECT_EQ(Part(aborted, 2, "late").status().reason(), Reason::kNoSuchUpload);
  // A part arriving after the abort makes no folder again (nor leaves its temp file).
  EXPECT_FALSE(fs::exists(dir_.path() / "objects" / ".uploads" / aborted.upload_id));
  EXPECT_EQ(FilesUnder(dir_.path() / "objects" / ".tmp"), 0u);

  MultipartUpload old = Create("old");
  ASSERT_TRUE(Part(old, 1, "bytes").ok());
  clock_.Advance(3000'000);
  MultipartUpload recent = Create("recent");
  clock_.Advance(601'000);  // "old" is past the hour, "recent" is not
  store_->Sweep();
  EXPECT_EQ(store_->FindMultipartUpload(old.upload_id, "old").status().reason(),
            Reason::kNoSuchUpload);
  EXPECT_TRUE(store_->FindMultipartUpload(recent.upload_id, "recent").ok());
  EXPECT_FALSE(fs::exists(dir_.path() / "objects" / ".uploads" / old.upload_id));
  EXPECT_EQ(store_->ListMultipartUploads().size(), 1u);
}

TEST_F(MultipartTest, ACopyHasItsOwnDigestsAndChosenMetadata) {
  MultipartUpload up = Create("parts.bin", "CRC32");
  const std::string a = Pattern(5 * kMiB, 'c'), b = Pattern(99, 'd');
  auto p1 = Part(up, 1, a), p2 = Part(up, 2, b);
  ASSERT_TRUE(p1.ok() && p2.ok());
  ASSERT_TRUE(store_->CompleteMultipartUpload(up, Listed({*p1, *p2}), "").ok());
  // A copy of a multipart object is one part: a plain MD5, and a full-object checksum.
  auto copy = store_->CopyObject("parts.bin", "copy.bin", std::nullopt, "");
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  auto got = store_->GetObject("copy.bin");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, a + b);
  EXPECT_EQ(got->info.meta.etag, Md5Hex(a + b));
  EXPECT_EQ(got->info.meta.checksum, B64(ChecksumAlgorithm::kCrc32, a + b));
  EXPECT_EQ(got->info.meta.checksum_type, "FULL_OBJECT");
  EXPECT_EQ(got->info.meta.content_type, "video/mp4");  // the source's
  ObjectMeta replaced;
  replaced.content_type = "text/plain";
  auto again = store_->CopyObject("copy.bin", "copy2.bin", replaced, "SHA1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(store_->HeadObject("copy2.bin")->meta.content_type, "text/plain");
  EXPECT_EQ(store_->HeadObject("copy2.bin")->meta.checksum, B64(ChecksumAlgorithm::kSha1, a + b));
  EXPECT_EQ(store_->CopyObject("missing", "x", std::nullopt, "").status().reason(),
            Reason::kNoSuchKey);
  EXPECT_EQ(store_->CopyObject("copy.bin", "../x", std::nullopt, "").status().reason(),
            Reason::kInvalidKey);
}

}  // namespace
}  // namespace lastframe::objects
