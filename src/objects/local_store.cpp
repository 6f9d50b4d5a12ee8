#include "objects/local_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lastframe::objects {
namespace {

bool ValidBucketName(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  return b.front() != '-' && b.front() != '.' && b.back() != '-' && b.back() != '.';
}

std::string ContentTypeOf(const std::string& key) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return key.size() >= e.size() && key.compare(key.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".jpg") || ends(".jpeg")) return "image/jpeg";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

Status WriteAll(int fd, std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kUnavailable, std::string("write failed: ") + strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status ValidateObjectKey(std::string_view key) {
  auto bad = [](std::string message) { return InvalidArgument(std::move(message), "InvalidKey"); };
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

Result<std::unique_ptr<LocalStore>> LocalStore::Open(LocalStoreOptions options,
                                                     const Clock& clock) {
  if (!ValidBucketName(options.bucket))
    return InvalidArgument("bucket name '" + options.bucket +
                           "' is not a valid S3 bucket name (3-63 of a-z 0-9 . -)");
  auto host = HostOfUrl(options.public_url);
  if (!host)
    return InvalidArgument("public URL must be http:// or https://: " + options.public_url);
  std::error_code ec;
  std::filesystem::create_directories(options.root / options.bucket, ec);
  if (ec)
    return Status(Code::kUnavailable,
                  "cannot create " + options.root.string() + ": " + ec.message());
  return std::unique_ptr<LocalStore>(new LocalStore(std::move(options), *host, clock));
}

LocalStore::LocalStore(LocalStoreOptions options, std::string host, const Clock& clock)
    : options_(std::move(options)),
      host_(std::move(host)),
      signer_(options_.credentials, options_.region, "s3", clock) {}

std::filesystem::path LocalStore::PathOf(const std::string& key) const {
  return options_.root / options_.bucket / key;
}

Status LocalStore::Put(const std::string& key, std::string_view bytes, const std::string&) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  std::filesystem::path path = PathOf(key);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec)
    return Status(Code::kUnavailable, "cannot create a directory for the object: " + ec.message());
  // Atomic replace: readers see the old object or the new one, never a torn one.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                    std::to_string(counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return Status(Code::kUnavailable, std::string("cannot write object: ") + strerror(errno));
  Status written = WriteAll(fd, bytes);
  ::close(fd);
  if (written.ok() && std::rename(tmp.c_str(), path.c_str()) != 0)
    written = Status(Code::kUnavailable, std::string("cannot store object: ") + strerror(errno));
  if (!written.ok()) ::unlink(tmp.c_str());
  return written;
}

Result<std::string> LocalStore::PresignGet(const std::string& key, int64_t expires_s) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (expires_s < 1 || expires_s > kMaxPresignExpiresSeconds)
    return InvalidArgument("expiry must be 1 to 604800 seconds");
  std::string path = "/" + options_.bucket + "/" + key;
  std::string base = options_.public_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + UriEncode(path, false) + "?" + signer_.PresignQuery("GET", host_, path, expires_s);
}

Result<StoredObject> LocalStore::GetPresigned(const std::string& method, const std::string& host,
                                              const std::string& bucket, const std::string& key,
                                              const QueryParams& query) const {
  if (bucket != options_.bucket)
    return NotFound("The specified bucket does not exist", "NoSuchBucket");
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  LF_RETURN_IF_ERROR(signer_.VerifyPresigned(method, host, "/" + bucket + "/" + key, query));
  std::ifstream in(PathOf(key), std::ios::binary);
  if (!in) return NotFound("The specified key does not exist.", "NoSuchKey");
  std::ostringstream ss;
  ss << in.rdbuf();
  return StoredObject{ss.str(), ContentTypeOf(key)};
}

}  // namespace lastframe::objects
