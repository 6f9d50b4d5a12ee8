#include "objects/local_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aws/checksums.h"
#include "core/atomic_file.h"
#include "core/utf8.h"
#include "objects/object_file.h"
#include "objects/store_metrics.h"

namespace lastframe::objects {

namespace fs = std::filesystem;

namespace {

// An object file starts with this, then its metadata as one JSON line.
constexpr std::string_view kMagic = "LFO1 ";
constexpr size_t kMaxHeaderBytes = 64 * 1024;
// Snapshot keys name one frame: the bytes never change, so caches may keep them.
constexpr const char* kSnapshotCacheControl = "private, max-age=600";
constexpr int64_t kDefaultUrlExpiryS = 600;

std::string ContentTypeOf(const std::string& key) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return key.size() >= e.size() && key.compare(key.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".jpg") || ends(".jpeg")) return "image/jpeg";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

}  // namespace

namespace object_file {

Status Unavailable(const std::string& what) {
  return Status(Code::kUnavailable, what + ": " + strerror(errno));
}

Status WriteAll(int fd, std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable("write failed");
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ReadAt(int fd, uint64_t offset, size_t size, std::string& out) {
  out.resize(size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, out.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable("read failed");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return Status::Ok();
}

Status NoSuchKey() { return NotFound("The specified key does not exist.", Reason::kNoSuchKey); }

Status KeyConflict(const std::string& key) {
  return Status(Code::kConflict,
                "'" + key +
                    "' cannot be stored here: it, or one of its prefixes, is both an object "
                    "and a folder of other objects",
                Reason::kObjectKeyConflict);
}

std::string EncodeHeader(const ObjectMeta& meta, size_t pad_to) {
  nlohmann::json user = nlohmann::json::object();
  for (const auto& [k, v] : meta.user) user[k] = v;
  nlohmann::json j = {{"content_type", meta.content_type},
                      {"cache_control", meta.cache_control},
                      {"etag", meta.etag},
                      {"user", user}};
  if (!meta.checksum_algorithm.empty()) {
    j["checksum_algorithm"] = meta.checksum_algorithm;
    j["checksum"] = meta.checksum;
    j["checksum_type"] = meta.checksum_type;
  }
  std::string line = std::string(kMagic) + j.dump();
  // JSON allows trailing blanks: room reserved for fields known only at the end.
  if (line.size() + 1 < pad_to) line.append(pad_to - line.size() - 1, ' ');
  return line + "\n";
}

Result<OpenedObject> OpenObject(const fs::path& path, const std::string& key) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) return NoSuchKey();
    return Unavailable("cannot open object");
  }
  OpenedObject out;
  out.fd = std::make_unique<Fd>(raw);
  struct stat st {};
  if (::fstat(raw, &st) != 0) return Unavailable("cannot stat object");
  if (!S_ISREG(st.st_mode)) return NoSuchKey();
  out.info.key = key;
  out.info.last_modified_ms =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  // The header line is small (metadata only): read a little, more only if needed.
  std::string head;
  size_t want = std::min<size_t>(4096, static_cast<size_t>(st.st_size));
  LF_RETURN_IF_ERROR(ReadAt(raw, 0, want, head));
  size_t nl = head.find('\n');
  if (nl == std::string::npos && head.compare(0, kMagic.size(), kMagic) == 0) {
    LF_RETURN_IF_ERROR(
        ReadAt(raw, 0, std::min<size_t>(kMaxHeaderBytes, static_cast<size_t>(st.st_size)), head));
    nl = head.find('\n');
  }
  if (head.compare(0, kMagic.size(), kMagic) == 0 && nl != std::string::npos) {
    auto j = nlohmann::json::parse(head.begin() + static_cast<long>(kMagic.size()),
                                   head.begin() + static_cast<long>(nl), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return Internal("object '" + key + "' has a corrupt header");
    out.info.meta.content_type = j.value("content_type", "application/octet-stream");
    out.info.meta.cache_control = j.value("cache_control", "");
    out.info.meta.etag = j.value("etag", "");
    out.info.meta.checksum_algorithm = j.value("checksum_algorithm", "");
    out.info.meta.checksum = j.value("checksum", "");
    out.info.meta.checksum_type = j.value("checksum_type", "");
    if (auto u = j.find("user"); u != j.end() && u->is_object())
      for (auto& [k, v] : u->items())
        if (v.is_string()) out.info.meta.user.emplace_back(k, v.get<std::string>());
    out.body_offset = nl + 1;
  } else {
    // A plain file (written by an earlier version): all body.
    out.info.meta.content_type = ContentTypeOf(key);
  }
  out.info.size = static_cast<uint64_t>(st.st_size) - out.body_offset;
  if (out.info.meta.etag.empty()) {
    std::string body;
    LF_RETURN_IF_ERROR(ReadAt(raw, out.body_offset, out.info.size, body));
    out.info.meta.etag = Md5Hex(body);
  }
  return out;
}

}  // namespace object_file

using namespace object_file;

std::string Md5Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), len));
}

Md5::Md5() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr); }
Md5::~Md5() { EVP_MD_CTX_free(ctx_); }
void Md5::Update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
std::string Md5::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), len));
}

bool ValidBucketName(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  return b.front() != '-' && b.front() != '.' && b.back() != '-' && b.back() != '.';
}

Status ValidateObjectKey(std::string_view key) {
  auto bad = [](std::string message) {
    return InvalidArgument(std::move(message), Reason::kInvalidKey);
  };
  if (key.empty() || key.size() > 1024) return bad("object key must be 1 to 1024 bytes");
  if (key.front() == '/') return bad("object key may not start with '/'");
  for (unsigned char c : key)
    if (c < 0x20 || c == 0x7f || c == '\\')
      return bad("object key may not contain control characters or backslashes");
  size_t start = 0;
  while (start <= key.size()) {
    size_t slash = key.find('/', start);
    std::string_view seg =
        key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty() || seg == "." || seg == "..")
      return bad("object key may not contain empty, '.' or '..' segments");
    if (seg.size() > 255) return bad("each '/'-separated part of a key must be at most 255 bytes");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

std::optional<std::string> HostOfUrl(const std::string& url) {
  std::string rest;
  std::string default_port;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    default_port = "80";
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    default_port = "443";
  } else {
    return std::nullopt;
  }
  std::string host = rest.substr(0, rest.find('/'));
  if (host.empty()) return std::nullopt;
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']') == std::string::npos &&
      host.substr(colon + 1) == default_port)
    host = host.substr(0, colon);
  return host;
}

std::optional<ByteRange> ParseByteRange(std::string_view header) {
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return std::nullopt;
  std::string_view spec = header.substr(kUnit.size());
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  ByteRange r;
  if (a.empty()) {  // "bytes=-N": the last N bytes
    r.last = number(b);
    if (!r.last || *r.last == 0) return std::nullopt;
    return r;
  }
  r.first = number(a);
  if (!r.first) return std::nullopt;
  if (!b.empty()) {
    r.last = number(b);
    if (!r.last || *r.last < *r.first) return std::nullopt;
  }
  return r;
}

Result<std::unique_ptr<LocalStore>> LocalStore::Open(LocalStoreOptions options,
                                                     const Clock& clock) {
  if (!ValidBucketName(options.bucket))
    return InvalidArgument("bucket name '" + options.bucket +
                           "' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)");
  auto host = HostOfUrl(options.public_url);
  if (!host)
    return InvalidArgument("public URL must be http:// or https://: " + options.public_url);
  std::error_code ec;
  fs::create_directories(options.root / options.bucket, ec);
  if (!ec) fs::create_directories(options.root / ".tmp", ec);
  if (!ec) fs::create_directories(options.root / ".uploads", ec);
  if (ec)
    return Status(Code::kUnavailable,
                  "cannot create " + options.root.string() + ": " + ec.message());
  std::unique_ptr<LocalStore> store(new LocalStore(std::move(options), *host, clock));
  struct stat st {};
  if (::stat((store->options_.root / store->options_.bucket).c_str(), &st) == 0)
    store->created_ms_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000;
  std::ifstream in(store->options_.root / ".longest-url-expiry");
  int64_t longest = 0;
  if (in >> longest && longest > 0 && longest <= aws::kMaxPresignExpiresSeconds)
    store->longest_url_s_ = std::max(longest, kDefaultUrlExpiryS);
  store->persisted_url_s_ = store->longest_url_s_.load();
  return store;
}

LocalStore::LocalStore(LocalStoreOptions options, std::string host, const Clock& clock)
    : options_(std::move(options)),
      host_(std::move(host)),
      clock_(clock),
      signer_(options_.credentials, options_.region, "s3", clock) {}

fs::path LocalStore::PathOf(const std::string& key) const {
  return options_.root / options_.bucket / key;
}

Status LocalStore::Put(const std::string& key, std::string_view bytes,
                       const std::string& content_type) {
  ObjectMeta meta;
  meta.content_type = content_type;
  meta.cache_control = kSnapshotCacheControl;
  return PutObject(key, bytes, std::move(meta)).status();
}

Result<ObjectInfo> LocalStore::PutObject(const std::string& key, std::string_view bytes,
                                         ObjectMeta meta) {
  const auto start = std::chrono::steady_clock::now();
  Result<ObjectInfo> put = WriteObject(key, bytes, std::move(meta));
  EmbeddedStoreMetrics().CountUpload(put.status(), start);
  return put;
}

namespace {

// Room kept in a streamed object's header for what only its end tells: the
// ETag (up to 32 hex + "-10000") and a checksum (up to 44 base64 + "-10000")
// with their names.
constexpr size_t kHeaderSlack = 256;

}  // namespace

Status ValidateObjectMeta(const ObjectMeta& meta) {
  // The metadata is kept as JSON text, which holds UTF-8 only: other bytes
  // made the JSON writer throw on a worker thread, ending the server (found by fuzz/object_key).
  bool utf8 = IsValidUtf8(meta.content_type) && IsValidUtf8(meta.cache_control);
  for (const auto& [k, v] : meta.user) utf8 = utf8 && IsValidUtf8(k) && IsValidUtf8(v);
  if (!utf8)
    return InvalidArgument("Content-Type, Cache-Control and x-amz-meta-* values must be UTF-8",
                           Reason::kInvalidArgument);
  return Status::Ok();
}

ObjectWriter::~ObjectWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

Status ObjectWriter::Append(std::string_view bytes) {
  LF_RETURN_IF_ERROR(WriteAll(fd_, bytes));
  size_ += bytes.size();
  return Status::Ok();
}

Status ObjectWriter::AppendFrom(int fd, uint64_t offset, uint64_t length) {
  auto in_off = static_cast<off_t>(offset);
  while (length > 0) {
    ssize_t n = ::copy_file_range(fd, &in_off, fd_, nullptr, length, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
      n = ::sendfile(fd_, fd, &in_off, length);  // file systems that cannot copy in place
    if (n < 0) return Unavailable("cannot copy object bytes");
    if (n == 0) return Status(Code::kUnavailable, "the source changed while it was copied");
    length -= static_cast<uint64_t>(n);
    size_ += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<std::unique_ptr<ObjectWriter>> LocalStore::BeginWrite(const ObjectMeta& meta) {
  LF_RETURN_IF_ERROR(ValidateObjectMeta(meta));  // before any JSON is written of it
  ObjectMeta reserve = meta;
  reserve.etag.clear();
  reserve.checksum_algorithm.clear();
  return StartWrite(EncodeHeader(reserve).size() + kHeaderSlack, meta);
}

Result<std::unique_ptr<ObjectWriter>> LocalStore::StartWrite(size_t header_bytes,
                                                             const ObjectMeta& meta) {
  LF_RETURN_IF_ERROR(ValidateObjectMeta(meta));
  static std::atomic<uint64_t> counter{0};
  fs::path tmp = options_.root / ".tmp" /
                 (std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot write object");
  std::unique_ptr<ObjectWriter> writer(new ObjectWriter(tmp, fd, header_bytes));
  if (::lseek(fd, static_cast<off_t>(header_bytes), SEEK_SET) < 0)
    return Unavailable("cannot write object");
  return writer;
}

Status LocalStore::Commit(ObjectWriter& writer, const ObjectMeta& meta, const fs::path& dest,
                          const std::string& key, bool make_folders) {
  LF_RETURN_IF_ERROR(ValidateObjectMeta(meta));
  std::string header = EncodeHeader(meta, writer.header_bytes_);
  if (header.size() != writer.header_bytes_)
    return Internal("object metadata outgrew the room reserved for it");
  ssize_t n = ::pwrite(writer.fd_, header.data(), header.size(), 0);
  if (n != static_cast<ssize_t>(header.size())) return Unavailable("cannot write object");
  ::close(writer.fd_);
  writer.fd_ = -1;
  if (!make_folders) {
    if (std::rename(writer.tmp_.c_str(), dest.c_str()) != 0)
      return errno == ENOENT ? NotFound("the folder to commit into is gone")
                             : Unavailable("cannot store object");
    writer.committed_ = true;
    return Status::Ok();
  }
  // A sweep may remove an emptied folder between making it and the rename: try again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    if (ec && (ec == std::errc::not_a_directory || ec == std::errc::file_exists))
      return KeyConflict(key);
    if (ec)
      return Status(Code::kUnavailable, "cannot create a folder for the object: " + ec.message());
    if (std::rename(writer.tmp_.c_str(), dest.c_str()) == 0) {
      writer.committed_ = true;
      return Status::Ok();
    }
    if (errno == EISDIR || errno == ENOTDIR || errno == ENOTEMPTY || errno == EEXIST)
      return KeyConflict(key);
    if (errno != ENOENT || attempt == 2) return Unavailable("cannot store object");
  }
  return Unavailable("cannot store object");
}

Result<ObjectInfo> LocalStore::CommitObject(std::unique_ptr<ObjectWriter> writer,
                                            const std::string& key, ObjectMeta meta) {
  const auto start = std::chrono::steady_clock::now();
  Status committed = ValidateObjectKey(key);
  if (committed.ok() && writer->size() > options_.max_object_bytes)
    committed = Status(Code::kTooLarge,
                       "Your proposed upload exceeds the maximum allowed size of " +
                           std::to_string(options_.max_object_bytes) + " bytes",
                       Reason::kEntityTooLarge);
  if (committed.ok()) committed = Commit(*writer, meta, PathOf(key), key);
  EmbeddedStoreMetrics().CountUpload(committed, start);
  if (!committed.ok()) return committed;
  uint64_t size = writer->size();
  uint64_t since = bytes_since_sweep_.fetch_add(size) + size;
  if (last_total_bytes_.load() + since > options_.max_total_bytes) Sweep();
  ObjectInfo info;
  info.key = key;
  info.size = size;
  info.last_modified_ms = clock_.NowMs();
  info.meta = std::move(meta);
  return info;
}

Result<ObjectInfo> LocalStore::WriteObject(const std::string& key, std::string_view bytes,
                                           ObjectMeta meta) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (bytes.size() > options_.max_object_bytes)
    return Status(Code::kTooLarge,
                  "Your proposed upload exceeds the maximum allowed size of " +
                      std::to_string(options_.max_object_bytes) + " bytes",
                  Reason::kEntityTooLarge);
  meta.etag = Md5Hex(bytes);
  LF_RETURN_IF_ERROR(ValidateObjectMeta(meta));               // before any JSON is written of it
  auto writer = StartWrite(EncodeHeader(meta).size(), meta);  // all known: no room to spare
  if (!writer.ok()) return writer.status();
  LF_RETURN_IF_ERROR((*writer)->Append(bytes));
  fs::path path = PathOf(key);
  LF_RETURN_IF_ERROR(Commit(**writer, meta, path, key));
  uint64_t since = bytes_since_sweep_.fetch_add(bytes.size()) + bytes.size();
  if (last_total_bytes_.load() + since > options_.max_total_bytes) Sweep();
  ObjectInfo info;
  info.key = key;
  info.size = bytes.size();
  info.last_modified_ms = clock_.NowMs();
  info.meta = std::move(meta);
  return info;
}

Result<ObjectInfo> LocalStore::CopyObject(const std::string& source, const std::string& key,
                                          std::optional<ObjectMeta> meta,
                                          const std::string& checksum_algorithm) {
  const auto start = std::chrono::steady_clock::now();
  auto copy = [&]() -> Result<ObjectInfo> {
    LF_RETURN_IF_ERROR(ValidateObjectKey(source));
    LF_RETURN_IF_ERROR(ValidateObjectKey(key));
    auto opened = OpenObject(PathOf(source), source);
    if (!opened.ok()) return opened.status();
    ObjectMeta out = meta ? std::move(*meta) : opened->info.meta;
    std::string algorithm_name = checksum_algorithm;
    if (algorithm_name.empty()) algorithm_name = opened->info.meta.checksum_algorithm;
    auto algorithm = aws::ParseChecksumAlgorithm(algorithm_name);
    if (!algorithm) algorithm = aws::ChecksumAlgorithm::kCrc64Nvme;
    auto writer = BeginWrite(out);
    if (!writer.ok()) return writer.status();
    // Read through here rather than copied in the kernel: the copy's MD5 and
    // checksum are of its whole bytes (a copy of a multipart object is one part).
    Md5 md5;
    aws::Checksum checksum(*algorithm);
    std::string block;
    Status status;
    for (uint64_t at = 0; status.ok() && at < opened->info.size;) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(1 << 20, opened->info.size - at));
      status = ReadAt(opened->fd->get(), opened->body_offset + at, want, block);
      if (status.ok() && block.size() != want)
        status = Status(Code::kUnavailable, "the source changed while it was copied");
      if (!status.ok()) break;
      md5.Update(block);
      checksum.Update(block);
      status = (*writer)->Append(block);
      at += want;
    }
    LF_RETURN_IF_ERROR(status);
    out.etag = md5.FinishHex();
    out.checksum_algorithm = std::string(aws::ChecksumName(*algorithm));
    out.checksum = Base64Encode(checksum.Finish());
    out.checksum_type = "FULL_OBJECT";
    LF_RETURN_IF_ERROR(Commit(**writer, out, PathOf(key), key));
    uint64_t since = bytes_since_sweep_.fetch_add(opened->info.size) + opened->info.size;
    if (last_total_bytes_.load() + since > options_.max_total_bytes) Sweep();
    ObjectInfo info;
    info.key = key;
    info.size = opened->info.size;
    info.last_modified_ms = clock_.NowMs();
    info.meta = std::move(out);
    return info;
  };
  Result<ObjectInfo> copied = copy();
  EmbeddedStoreMetrics().CountUpload(copied.status(), start);
  return copied;
}

bool LocalStore::Holds(const std::string& key) const {
  struct stat st {};
  return ValidateObjectKey(key).ok() && ::stat(PathOf(key).c_str(), &st) == 0 &&
         S_ISREG(st.st_mode);
}

Result<ObjectInfo> LocalStore::HeadObject(const std::string& key) const {
  Status valid = ValidateObjectKey(key);
  auto opened = valid.ok() ? OpenObject(PathOf(key), key) : Result<OpenedObject>(valid);
  EmbeddedStoreMetrics().Count(StoreOp::kHead, opened.status());
  if (!opened.ok()) return opened.status();
  return std::move(opened->info);
}

Result<StoredObject> LocalStore::GetObject(const std::string& key,
                                           std::optional<ByteRange> range) const {
  Result<StoredObject> got = ReadObject(key, range);
  EmbeddedStoreMetrics().Count(StoreOp::kGet, got.status());
  return got;
}

Result<StoredObject> LocalStore::ReadObject(const std::string& key,
                                            std::optional<ByteRange> range) const {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  auto opened = OpenObject(PathOf(key), key);
  if (!opened.ok()) return opened.status();
  StoredObject out;
  out.info = std::move(opened->info);
  uint64_t size = out.info.size;
  uint64_t first = 0, last = size == 0 ? 0 : size - 1;
  if (range) {
    if (!range->first) {  // the last N bytes
      first = size > *range->last ? size - *range->last : 0;
    } else {
      first = *range->first;
      if (range->last) last = std::min(last, *range->last);
    }
    if (first >= size)
      return Status(Code::kInvalidArgument, "The requested range is not satisfiable",
                    Reason::kInvalidRange);
    out.partial = true;
  }
  out.first = first;
  size_t length = size == 0 ? 0 : static_cast<size_t>(last - first + 1);
  LF_RETURN_IF_ERROR(ReadAt(opened->fd->get(), opened->body_offset + first, length, out.bytes));
  if (out.bytes.size() != length)
    return Status(Code::kUnavailable, "the object changed while it was read");
  return out;
}

Status LocalStore::DeleteObject(const std::string& key) {
  Status deleted = RemoveObject(key);
  EmbeddedStoreMetrics().Count(StoreOp::kDelete, deleted);
  return deleted;
}

Status LocalStore::RemoveObject(const std::string& key) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  fs::path path = PathOf(key);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return Status::Ok();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Unavailable("cannot delete object");
  // Emptied folders go too, so the key space stays as S3's: no empty "folders".
  fs::path bucket_dir = options_.root / options_.bucket;
  for (fs::path dir = path.parent_path(); dir != bucket_dir && dir.has_parent_path();
       dir = dir.parent_path())
    if (::rmdir(dir.c_str()) != 0) break;
  return Status::Ok();
}

Result<std::string> LocalStore::Get(const std::string& key) {
  auto got = GetObject(key);
  if (!got.ok()) return got.status();
  return std::move(got->bytes);
}

Result<ObjectPage> LocalStore::ListPage(const std::string& prefix, const std::string& start_after,
                                        const std::string& from, size_t max_keys) {
  auto listed = List({.prefix = prefix,
                      .start_after = std::max(start_after, from),
                      .max_keys = std::clamp<size_t>(max_keys, 1, 1000)});
  if (!listed.ok()) return listed.status();
  ObjectPage page;
  for (ObjectInfo& o : listed->objects) page.objects.push_back({std::move(o.key), o.size});
  if (listed->truncated) page.next = listed->last;
  return page;
}

Result<ListResult> LocalStore::List(const ListRequest& request) const {
  Result<ListResult> listed = ListKeys(request);
  EmbeddedStoreMetrics().Count(StoreOp::kList, listed.status());
  return listed;
}

Result<ListResult> LocalStore::ListKeys(const ListRequest& request) const {
  ListResult out;
  const std::string& prefix = request.prefix;
  fs::path bucket_dir = options_.root / options_.bucket;
  // Walk only the folder the prefix names; a prefix no key could have lists nothing.
  std::string folder =
      prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/') + 1);
  if (!folder.empty() && !ValidateObjectKey(folder.substr(0, folder.size() - 1)).ok()) return out;
  fs::path walk_root = bucket_dir / folder;
  std::vector<std::string> keys;
  std::error_code ec;
  fs::recursive_directory_iterator it(walk_root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return out;  // no such folder: nothing under the prefix
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec)) continue;
    std::string key = it->path().lexically_relative(bucket_dir).generic_string();
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    if (!request.start_after.empty() && key <= request.start_after) continue;
    if (!ValidateObjectKey(key).ok()) continue;
    keys.push_back(std::move(key));
  }
  std::sort(keys.begin(), keys.end());
  size_t returned = 0;
  for (const std::string& key : keys) {
    std::string common;
    if (!request.delimiter.empty()) {
      size_t at = key.find(request.delimiter, prefix.size());
      if (at != std::string::npos) common = key.substr(0, at + request.delimiter.size());
    }
    if (!common.empty()) {
      // Every key under a prefix already listed, or under the page's start, is skipped.
      if (!out.common_prefixes.empty() && out.common_prefixes.back() == common) continue;
      if (!request.start_after.empty() &&
          request.start_after.compare(0, common.size(), common) == 0)
        continue;
    }
    if (returned == request.max_keys) {
      out.truncated = true;
      break;
    }
    ++returned;
    if (!common.empty()) {
      out.common_prefixes.push_back(common);
      out.last = common;
      continue;
    }
    auto opened = OpenObject(PathOf(key), key);
    if (!opened.ok()) {  // deleted since the walk
      --returned;
      continue;
    }
    out.objects.push_back(std::move(opened->info));
    out.last = key;
  }
  return out;
}

int64_t LocalStore::max_age_s() const {
  return options_.max_age_s > 0 ? options_.max_age_s : longest_url_s_.load();
}

SweepResult LocalStore::Sweep() {
  EmbeddedStoreMetrics().Count(StoreOp::kSweep, Status::Ok());
  std::unique_lock lock(sweep_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return {};  // one is running
  SweepResult result;
  struct File {
    fs::path path;
    uint64_t size;
    int64_t mtime_ms;
  };
  std::vector<File> files;
  std::vector<fs::path> dirs;
  fs::path bucket_dir = options_.root / options_.bucket;
  int64_t now = clock_.NowMs();
  int64_t cutoff = now - max_age_s() * 1000;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(bucket_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      dirs.push_back(it->path());
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    if (mtime < cutoff) {
      if (::unlink(it->path().c_str()) == 0) ++result.deleted_expired;
      continue;
    }
    files.push_back({it->path(), static_cast<uint64_t>(st.st_size), mtime});
    result.bytes += static_cast<uint64_t>(st.st_size);
  }
  if (result.bytes > options_.max_total_bytes) {
    std::sort(files.begin(), files.end(),
              [](const File& a, const File& b) { return a.mtime_ms < b.mtime_ms; });
    size_t i = 0;
    for (; i < files.size() && result.bytes > options_.max_total_bytes; ++i) {
      if (::unlink(files[i].path.c_str()) == 0) ++result.deleted_for_space;
      result.bytes -= files[i].size;
    }
    files.erase(files.begin(), files.begin() + static_cast<long>(i));
  }
  result.objects = files.size();
  // Deepest first, so emptied folders go bottom up; rmdir leaves non-empty ones.
  std::sort(dirs.begin(), dirs.end(),
            [](const fs::path& a, const fs::path& b) { return a.native() > b.native(); });
  for (const fs::path& d : dirs) ::rmdir(d.c_str());
  // Leftovers of writes cut short by a crash.
  for (fs::directory_iterator it(options_.root / ".tmp", ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && st.st_mtim.tv_sec * 1000 < now - 3600 * 1000)
      ::unlink(it->path().c_str());
  }
  SweepUploads(now);
  last_total_bytes_ = result.bytes;
  bytes_since_sweep_ = 0;
  return result;
}

void LocalStore::NoteUrlExpiry(int64_t expires_s) {
  int64_t seen = longest_url_s_.load();
  while (expires_s > seen && !longest_url_s_.compare_exchange_weak(seen, expires_s)) {
  }
  if (expires_s <= persisted_url_s_.load()) return;
  // Remembered across restarts, so objects behind a long URL outlive a restart:
  // replaced whole and synced, so that a full disk or a crash never leaves a
  // torn or empty file (read back as no longer URL). A write that failed is
  // tried again by the next longer URL.
  std::lock_guard lock(url_file_mu_);
  int64_t longest = longest_url_s_.load();
  if (longest <= persisted_url_s_.load()) return;
  if (WriteFileAtomically(options_.root / ".longest-url-expiry", std::to_string(longest) + "\n")
          .ok())
    persisted_url_s_ = longest;
}

Result<std::string> LocalStore::PresignGet(const std::string& key, int64_t expires_s) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (expires_s < 1 || expires_s > aws::kMaxPresignExpiresSeconds)
    return InvalidArgument("expiry must be 1 to 604800 seconds");
  NoteUrlExpiry(expires_s);
  std::string path = "/" + options_.bucket + "/" + key;
  std::string base = options_.public_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + UriEncode(path, false) + "?" + signer_.PresignQuery("GET", host_, path, expires_s);
}

Result<std::string> LocalStore::Authenticate(const std::string& method, const std::string& path,
                                             const QueryParams& query,
                                             const aws::HeaderList& headers) const {
  bool presigned = false;
  for (const auto& [k, v] : query)
    presigned =
        presigned || k == "X-Amz-Signature" || k == "X-Amz-Credential" || k == "X-Amz-Algorithm";
  if (presigned) {
    LF_RETURN_IF_ERROR(signer_.VerifyPresigned(method, path, query, headers));
    return std::string("UNSIGNED-PAYLOAD");
  }
  return signer_.VerifyHeaderAuth(method, path, query, headers);
}

}  // namespace lastframe::objects
