#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/secret.h"
#include "core/status.h"

namespace lastframe::aws {

// An access key pair. The secret half never prints (see Secret).
struct Credentials {
  std::string access_key_id;
  Secret secret_access_key;
  std::string session_token;  // optional (temporary credentials)
};

// Request headers: lower-case names, values as sent (a name may repeat).
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Lower-case hex SHA-256 of |data|.
std::string Sha256Hex(std::string_view data);
// Raw (binary) HMAC-SHA256 of |data| under |key|.
std::string HmacSha256(std::string_view key, std::string_view data);

// SigV4's canonical query string: pairs encoded, then sorted by key and value.
std::string CanonicalQueryString(const QueryParams& params);

// The parts of a request that SigV4 signs.
struct CanonicalRequest {
  std::string method;
  std::string path;                                          // decoded, starting with '/'
  QueryParams query;                                         // decoded, without X-Amz-Signature
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, trimmed values
  std::string payload_hash;                                  // hex SHA-256, or "UNSIGNED-PAYLOAD"
  // A signer lists |headers| sorted by name, as SigV4 asks; a verifier keeps
  // the order the client's SignedHeaders gave, the order S3 signs them in
  // (botocore's lists are sorted, so both agree).
  bool headers_in_given_order = false;
  // The canonical form: method, URI, query, headers, signed header list, hash.
  std::string ToString() const;
  std::string SignedHeaders() const;
};

// What checking the chunk signatures of an aws-chunked body needs (S3's
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]): each chunk's string to sign
// is "AWS4-HMAC-SHA256-PAYLOAD\n" + amz_date + "\n" + scope + "\n" + the
// previous signature (seed_signature for the first) + "\n" + hex SHA-256 of ""
// + "\n" + hex SHA-256 of the chunk's data, signed with signing_key.
struct ChunkSigning {
  std::string amz_date;        // "20130524T000000Z" (x-amz-date)
  std::string scope;           // "20130524/us-east-1/s3/aws4_request"
  std::string signing_key;     // raw HMAC key of that date, region and service: a secret
  std::string seed_signature;  // hex, the Authorization header's Signature
};

// Signs and verifies AWS Signature Version 4 for one service and region, with
// the clock injected so that tests pin time.
class SigV4 {
 public:
  SigV4(Credentials credentials, std::string region, std::string service, const Clock& clock);

  const Credentials& credentials() const { return credentials_; }
  const std::string& region() const { return region_; }

  // "20130524/us-east-1/s3/aws4_request" for |now_ms|.
  std::string Scope(int64_t now_ms) const;
  // The hex signature of |request| at |now_ms| (its scope and date).
  std::string Sign(const CanonicalRequest& request, int64_t now_ms) const;

  // The query string (encoded, with X-Amz-Signature last) of a presigned
  // request for |method| |path| on |host| valid |expires_s| seconds from now.
  std::string PresignQuery(const std::string& method, const std::string& host,
                           const std::string& path, int64_t expires_s,
                           const QueryParams& extra = {}) const;

  // Checks a presigned (query-authenticated) request: each X-Amz-* auth
  // parameter given once, algorithm, credential scope, date, expiry
  // (up to 604800 s, not past (PresignedUrlExpiresAtMs), not in the
  // future), and the signature, compared in constant time. Errors carry S3's
  // codes as reasons: AuthorizationQueryParametersError (400),
  // InvalidAccessKeyId, SignatureDoesNotMatch and AccessDenied (403).
  Status VerifyPresigned(const std::string& method, const std::string& host,
                         const std::string& path, const QueryParams& query) const;
  // The same, taking the values of any further signed headers from |headers|.
  Status VerifyPresigned(const std::string& method, const std::string& path,
                         const QueryParams& query, const HeaderList& headers) const;

  // The Authorization header value for |request| signed at |now_ms|.
  std::string Authorization(const CanonicalRequest& request, int64_t now_ms) const;

  // Checks a request signed in its Authorization header ("AWS4-HMAC-SHA256
  // Credential=..., SignedHeaders=..., Signature=...": one such header, each
  // part once): credential scope, x-amz-date (or Date) within 15 minutes of
  // now, the signature (constant time), and a session token if this signer
  // has one. Returns the payload hash the client declared
  // (x-amz-content-sha256), which the caller checks against the body. Errors
  // carry S3's codes: AuthorizationHeaderMalformed, InvalidRequest,
  // InvalidArgument (400), InvalidAccessKeyId, SignatureDoesNotMatch,
  // RequestTimeTooSkewed, AccessDenied (403).
  // |unsigned_payload_hash| is the hash signed when the request has no
  // x-amz-content-sha256 header (JSON APIs sign their body's hash without
  // sending it); nullopt makes that header required, as S3 does.
  Result<std::string> VerifyHeaderAuth(
      const std::string& method, const std::string& path, const QueryParams& query,
      const HeaderList& headers,
      const std::optional<std::string>& unsigned_payload_hash = std::nullopt) const;

  // What checking an aws-chunked body's chunk signatures needs, from the
  // headers (lower-case names) of a request whose Authorization header passed
  // VerifyHeaderAuth: its x-amz-date, credential scope, Signature (the seed)
  // and this signer's key for that date. Parses the Authorization header again
  // and checks its key id and scope (not its signature), with
  // VerifyHeaderAuth's errors.
  Result<ChunkSigning> ChunkSigningFor(const HeaderList& headers) const;

 private:
  std::string SigningKey(const std::string& date) const;
  // The time of x-amz-date, once |credential| ("KEY/SCOPE" of an
  // Authorization header) names this signer's key and that day's scope.
  Result<int64_t> CheckDateAndScope(const std::string& credential, const HeaderList& headers) const;
  // A session token sent must be this signer's; none sent is fine when it has none.
  Status CheckToken(std::optional<std::string> token) const;
  Status CheckToken(const std::string* token) const;
  // The canonical values of the headers named in "a;b;c", in that order.
  // InvalidArgument unless every name is lower case, none is empty or
  // repeated, host is one of them and each is in |headers|.
  static Result<HeaderList> SignedHeaderValues(const std::string& signed_headers,
                                               const HeaderList& headers);

  const Credentials credentials_;
  const std::string region_;
  const std::string service_;
  const Clock& clock_;
};

// The canonical value of header |name| in |headers|: every occurrence, trimmed,
// inner runs of spaces folded, joined by ','. nullopt if absent.
std::optional<std::string> CanonicalHeaderValue(const HeaderList& headers, std::string_view name);

// The most a presigned URL may live, as S3 allows: 7 days.
inline constexpr int64_t kMaxPresignExpiresSeconds = 604800;

// The instant from which VerifyPresigned refuses a URL presigned at
// |signed_at_ms| for |expires_s| seconds. X-Amz-Date has whole seconds, so the
// lifetime counts whole seconds too: signed during second T, the URL is valid
// through second T + |expires_s|, which is at least |expires_s| seconds after
// it was made (a 1 s URL made at T.900 still works at T+1.500).
int64_t PresignedUrlExpiresAtMs(int64_t signed_at_ms, int64_t expires_s);

}  // namespace lastframe::aws
