#pragma once

#include <filesystem>
#include <string>

#include "core/clock.h"
#include "objects/object_store.h"
#include "objects/sigv4.h"

namespace lastframe::objects {

struct LocalStoreOptions {
  std::filesystem::path root;  // objects live at root/<bucket>/<key>
  std::string bucket = "lastframe";
  std::string public_url;  // "http://127.0.0.1:8080": base of the URLs handed out
  std::string region = "us-east-1";
  Credentials credentials;
};

struct StoredObject {
  std::string bytes;
  std::string content_type;
};

// The embedded object store: files under the data directory, handed out as
// S3-style presigned URLs (SigV4 query auth, service "s3") that lastframe's
// own HTTP server verifies and serves.
class LocalStore final : public ObjectStore {
 public:
  // Fails if the bucket name is not a valid S3 bucket name or the root cannot be made.
  static Result<std::unique_ptr<LocalStore>> Open(LocalStoreOptions options, const Clock& clock);

  Status Put(const std::string& key, std::string_view bytes,
             const std::string& content_type) override;
  Result<std::string> PresignGet(const std::string& key, int64_t expires_s) override;

  // Serves a presigned GET: |host| is the request's Host header, |bucket| and
  // |key| are decoded from its path, |query| its decoded parameters. Errors
  // carry S3's codes as reasons (NoSuchBucket, NoSuchKey, InvalidKey,
  // SignatureDoesNotMatch, AccessDenied, ...).
  Result<StoredObject> GetPresigned(const std::string& method, const std::string& host,
                                    const std::string& bucket, const std::string& key,
                                    const QueryParams& query) const;

  const std::string& bucket() const { return options_.bucket; }
  const SigV4& signer() const { return signer_; }

 private:
  LocalStore(LocalStoreOptions options, std::string host, const Clock& clock);
  std::filesystem::path PathOf(const std::string& key) const;

  const LocalStoreOptions options_;
  const std::string host_;  // host[:port] of public_url, as signed
  SigV4 signer_;
};

// "http://h:1/x" -> "h:1"; default ports (80 for http, 443 for https) dropped,
// as HTTP clients send Host. nullopt if not an http(s) URL.
std::optional<std::string> HostOfUrl(const std::string& url);

}  // namespace lastframe::objects
