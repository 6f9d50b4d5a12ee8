#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "objects/object_store.h"

// OpenSSL's digest context, declared so that OpenSSL stays private to lf_objects.
struct evp_md_ctx_st;

namespace lastframe::objects {

struct LocalStoreOptions {
  std::filesystem::path root;  // objects live at root/<bucket>/<key>
  std::string bucket = "lastframe";
  std::string public_url;  // "http://127.0.0.1:8080": base of the URLs handed out
  std::string region = "us-east-1";
  aws::Credentials credentials;
  // Objects older than this are deleted by Sweep. 0: the longest URL expiry
  // handed out so far (remembered across restarts), at least 600 s.
  int64_t max_age_s = 0;
  uint64_t max_total_bytes = 4ull << 30;  // beyond it, Sweep deletes oldest first
  uint64_t max_object_bytes = 64ull << 20;
  // Multipart uploads neither completed nor aborted are removed this long after they began.
  int64_t multipart_expiry_s = 24 * 3600;
};

// What S3 keeps beside an object's bytes.
struct ObjectMeta {
  std::string content_type = "application/octet-stream";
  std::string cache_control;
  std::string etag;  // hex MD5 of the body (S3's ETag for single-part uploads), unquoted
  std::vector<std::pair<std::string, std::string>> user;  // x-amz-meta-<name>: value
  // The object's checksum as S3 keeps one: its algorithm ("CRC32", ... "" for
  // none), the base64 value ("-N" after a multipart upload's composite one)
  // and its type ("FULL_OBJECT" or "COMPOSITE").
  std::string checksum_algorithm;
  std::string checksum;
  std::string checksum_type;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t last_modified_ms = 0;
  ObjectMeta meta;
};

// A GET's "Range: bytes=..." (one range; S3 ignores the rest of a multi-range).
struct ByteRange {
  std::optional<uint64_t> first;  // absent: the last |last| bytes ("bytes=-N")
  std::optional<uint64_t> last;   // absent: to the end ("bytes=N-")
};
// nullopt when |header| is not a single byte range (S3 then sends the whole object).
std::optional<ByteRange> ParseByteRange(std::string_view header);

struct StoredObject {
  ObjectInfo info;
  std::string bytes;   // the whole body, or the range asked for
  uint64_t first = 0;  // the range sent: [first, first + bytes.size())
  bool partial = false;
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;    // "" or one character, usually "/"
  std::string start_after;  // keys (and prefixes) <= this are skipped
  size_t max_keys = 1000;
};

struct ListResult {
  std::vector<ObjectInfo> objects;           // key order (bytewise, as S3)
  std::vector<std::string> common_prefixes;  // with a delimiter: the "folders"
  bool truncated = false;
  std::string last;  // the last key or prefix returned: where the next page starts
};

struct SweepResult {
  size_t objects = 0;  // left
  uint64_t bytes = 0;  // left
  size_t deleted_expired = 0;
  size_t deleted_for_space = 0;
};

class LocalStore;

// An object's bytes on their way in: written to a file aside as they arrive,
// then committed under a key (or as a multipart upload's part) by an atomic
// rename, so a reader never sees a torn object. Dropped uncommitted, the file
// goes. Not thread-safe: one writer per upload.
class ObjectWriter {
 public:
  ~ObjectWriter();
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;
  Status Append(std::string_view bytes);
  // Appends |length| bytes of the open file |fd| from |offset| (copied by the kernel).
  Status AppendFrom(int fd, uint64_t offset, uint64_t length);
  uint64_t size() const { return size_; }

 private:
  friend class LocalStore;
  ObjectWriter(std::filesystem::path tmp, int fd, size_t header_bytes)
      : tmp_(std::move(tmp)), fd_(fd), header_bytes_(header_bytes) {}
  std::filesystem::path tmp_;
  int fd_ = -1;
  size_t header_bytes_ = 0;  // reserved for the metadata line, written at commit
  uint64_t size_ = 0;
  bool committed_ = false;
};

// A multipart upload's part, as kept until the upload completes.
struct PartInfo {
  int number = 0;
  uint64_t size = 0;
  int64_t last_modified_ms = 0;
  std::string etag;  // hex MD5, unquoted
  // Base64 checksums of the part by algorithm name: always "CRC64NVME" (for the
  // object's default full-object checksum), and the upload's own algorithm.
  std::vector<std::pair<std::string, std::string>> checksums;
};

// What CreateMultipartUpload fixes for the object to be.
struct MultipartUpload {
  std::string upload_id;
  std::string key;
  int64_t initiated_ms = 0;
  ObjectMeta meta;  // content type, cache control, user metadata; checksum algorithm and type
};

// A part as CompleteMultipartUpload lists it.
struct CompletedPart {
  int number = 0;
  std::string etag;                                            // unquoted
  std::vector<std::pair<std::string, std::string>> checksums;  // algorithm name -> base64
};

// The embedded object store: one bucket of files under the data directory,
// answering the S3 object subset (see http/s3_api.h) and handing out S3-style
// presigned URLs. Each object is one file, written by atomic rename; its
// metadata rides in a one-line header before the bytes.
class LocalStore final : public ObjectStore {
 public:
  // Fails if the bucket name is not a valid S3 bucket name or the root cannot be made.
  static Result<std::unique_ptr<LocalStore>> Open(LocalStoreOptions options, const Clock& clock);

  // ObjectStore: snapshots, with a short Cache-Control.
  Status Put(const std::string& key, std::string_view bytes,
             const std::string& content_type) override;
  Result<std::string> PresignGet(const std::string& key, int64_t expires_s) override;
  int64_t UrlExpiresAtMs(int64_t signed_at_ms, int64_t expires_s) const override {
    return aws::PresignedUrlExpiresAtMs(signed_at_ms, expires_s);
  }
  bool Holds(const std::string& key) const override;
  // GetObject's bytes, and List by pages (|from| is a key: the page starts after it).
  Result<std::string> Get(const std::string& key) override;
  Result<ObjectPage> ListPage(const std::string& prefix, const std::string& start_after,
                              const std::string& from, size_t max_keys) override;

  // Checks how an S3 request on |path| (decoded, "/bucket/key") was signed:
  // presigned (X-Amz-* query parameters) or in its Authorization header.
  // Returns the payload hash the client declared ("UNSIGNED-PAYLOAD" for
  // presigned requests). Errors carry S3's codes as reasons.
  Result<std::string> Authenticate(const std::string& method, const std::string& path,
                                   const QueryParams& query, const aws::HeaderList& headers) const;

  // The S3 object operations. Keys are validated first (InvalidKey);
  // a missing object is NotFound "NoSuchKey".
  Result<ObjectInfo> PutObject(const std::string& key, std::string_view bytes, ObjectMeta meta);
  Result<ObjectInfo> HeadObject(const std::string& key) const;
  // InvalidRange (416) when |range| starts past the end.
  Result<StoredObject> GetObject(const std::string& key,
                                 std::optional<ByteRange> range = std::nullopt) const;
  Status DeleteObject(const std::string& key);  // a missing key is not an error (as S3)

  // Streamed writes: BeginWrite reserves room for |meta| (content type, user
  // metadata; the final meta may add its ETag and checksum); CommitObject
  // stores the bytes under |key| with |meta| (its etag as given).
  Result<std::unique_ptr<ObjectWriter>> BeginWrite(const ObjectMeta& meta);
  Result<ObjectInfo> CommitObject(std::unique_ptr<ObjectWriter> writer, const std::string& key,
                                  ObjectMeta meta);
  // CopyObject: |source|'s bytes under |key|, with |meta| (nullopt: the
  // source's own), their MD5 and the checksum named by |checksum_algorithm|
  // ("" : the source's algorithm, else CRC64NVME), computed as they are copied.
  Result<ObjectInfo> CopyObject(const std::string& source, const std::string& key,
                                std::optional<ObjectMeta> meta,
                                const std::string& checksum_algorithm);

  // Multipart uploads, kept under the data directory (.uploads/ID/) until
  // completed, aborted, or older than multipart_expiry_s. NoSuchUpload (404)
  // for an ID that is not (or no longer) there.
  Result<MultipartUpload> CreateMultipartUpload(const std::string& key, ObjectMeta meta);
  Result<MultipartUpload> FindMultipartUpload(const std::string& upload_id,
                                              const std::string& key) const;
  Result<PartInfo> CommitPart(std::unique_ptr<ObjectWriter> writer, const MultipartUpload& upload,
                              PartInfo part);
  Result<std::vector<PartInfo>> ListParts(const MultipartUpload& upload) const;
  std::vector<MultipartUpload> ListMultipartUploads() const;
  Status AbortMultipartUpload(const MultipartUpload& upload);
  // Assembles the listed parts, checked as S3 checks them (InvalidPartOrder,
  // InvalidPart, EntityTooSmall, EntityTooLarge), into the object, with S3's
  // multipart ETag and the upload's checksum (composite or full-object); then
  // the upload is gone. |full_object_checksum|: a base64 value the client sent
  // for the whole object, checked (BadDigest) when given.
  Result<ObjectInfo> CompleteMultipartUpload(const MultipartUpload& upload,
                                             const std::vector<CompletedPart>& parts,
                                             const std::string& full_object_checksum);
  Result<ListResult> List(const ListRequest& request) const;

  // Deletes objects past their age, then the oldest until the total fits;
  // and multipart uploads past multipart_expiry_s.
  SweepResult Sweep();
  int64_t max_age_s() const;

  const std::string& bucket() const { return options_.bucket; }
  int64_t created_ms() const { return created_ms_; }
  uint64_t max_object_bytes() const { return options_.max_object_bytes; }
  const aws::SigV4& signer() const { return signer_; }

 private:
  LocalStore(LocalStoreOptions options, std::string host, const Clock& clock);
  // The operations; their public names count them (store_metrics.h).
  Result<ObjectInfo> WriteObject(const std::string& key, std::string_view bytes, ObjectMeta meta);
  // A writer whose file starts with |header_bytes| kept for the metadata line.
  Result<std::unique_ptr<ObjectWriter>> StartWrite(size_t header_bytes, const ObjectMeta& meta);
  // Writes the metadata line into the room BeginWrite reserved, then renames
  // the file to |dest| (making its folders; KeyConflict when a folder or
  // object is in the way).
  // |make_folders| false (a part): the folder must exist, else NotFound.
  Status Commit(ObjectWriter& writer, const ObjectMeta& meta, const std::filesystem::path& dest,
                const std::string& key, bool make_folders = true);
  std::filesystem::path UploadDir(const std::string& upload_id) const;
  void SweepUploads(int64_t now_ms);
  Result<StoredObject> ReadObject(const std::string& key, std::optional<ByteRange> range) const;
  Status RemoveObject(const std::string& key);
  Result<ListResult> ListKeys(const ListRequest& request) const;
  std::filesystem::path PathOf(const std::string& key) const;
  void NoteUrlExpiry(int64_t expires_s);

  const LocalStoreOptions options_;
  const std::string host_;  // host[:port] of public_url, as signed
  const Clock& clock_;
  aws::SigV4 signer_;
  std::atomic<int64_t> longest_url_s_{600};
  std::atomic<int64_t> persisted_url_s_{600};  // what .longest-url-expiry says (or the default)
  std::atomic<uint64_t> bytes_since_sweep_{0};
  std::atomic<uint64_t> last_total_bytes_{0};
  // Neither guards a member: one sweep of the folders at a time, one writer of
  // .longest-url-expiry at a time (what they order is on disk).
  std::mutex sweep_mu_;
  std::mutex url_file_mu_;
  int64_t created_ms_ = 0;  // the bucket folder's modification time at Open
};

// "http://h:1/x" -> "h:1"; default ports (80 for http, 443 for https) dropped,
// as HTTP clients send Host. nullopt if not an http(s) URL.
std::optional<std::string> HostOfUrl(const std::string& url);
// Checks an S3 bucket name: 3-63 of a-z 0-9 . -, starting and ending alphanumeric.
bool ValidBucketName(const std::string& bucket);
// Checks what an object's metadata line will hold: UTF-8 text only (InvalidArgument).
Status ValidateObjectMeta(const ObjectMeta& meta);
// Hex MD5 of |bytes|.
std::string Md5Hex(std::string_view bytes);
// MD5 taken piece by piece (S3's ETag of a streamed body). Not copyable.
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void Update(std::string_view bytes);
  std::string FinishHex();  // once

 private:
  ::evp_md_ctx_st* ctx_;
};

}  // namespace lastframe::objects
