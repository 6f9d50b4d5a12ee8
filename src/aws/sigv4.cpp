#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

#include "core/time_format.h"

namespace lastframe::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

const std::string* Find(const QueryParams& q, std::string_view key) {
  for (const auto& [k, v] : q)
    if (k == key) return &v;
  return nullptr;
}

// The query parameters of SigV4's query authentication: each may come once.
constexpr std::string_view kQueryAuthParams[] = {
    "X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Date",          "X-Amz-Expires",
    "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Security-Token"};

constexpr int64_t kMaxSkewMs = 15 * 60 * 1000;

bool SignatureMatches(const std::string& given, const std::string& expected) {
  return given.size() == expected.size() &&
         CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

Status SignatureMismatch() {
  return Status(Code::kPermissionDenied,
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                Reason::kSignatureDoesNotMatch);
}

Status UnknownKey() {
  return Status(Code::kPermissionDenied,
                "The AWS Access Key Id you provided does not exist in our records.",
                Reason::kInvalidAccessKeyId);
}

Status QueryError(std::string message) {
  return Status(Code::kInvalidArgument, std::move(message),
                Reason::kAuthorizationQueryParametersError);
}

Status Malformed(const std::string& why) {
  return Status(Code::kInvalidArgument, "The authorization header is malformed; " + why,
                Reason::kAuthorizationHeaderMalformed);
}

// The parts of an Authorization header ("AWS4-HMAC-SHA256 Credential=...,
// SignedHeaders=..., Signature=...": one such header, each part once, in any order).
struct AuthorizationParts {
  std::string credential;
  std::string signed_headers;
  std::string signature;
};

Result<AuthorizationParts> ParseAuthorization(const HeaderList& headers) {
  size_t authorizations = 0;
  for (const auto& [k, v] : headers) authorizations += k == "authorization";
  if (authorizations > 1) return Malformed("it must be given once");
  std::optional<std::string> authorization = CanonicalHeaderValue(headers, "authorization");
  if (!authorization)
    return Status(Code::kPermissionDenied, "Access Denied: the request is not signed",
                  Reason::kAccessDenied);
  std::string_view auth = *authorization;
  if (auth.substr(0, kAlgorithm.size()) != kAlgorithm || auth.size() == kAlgorithm.size() ||
      auth[kAlgorithm.size()] != ' ')
    return Status(Code::kInvalidArgument,
                  "The authorization mechanism you have provided is not supported. Please use "
                  "AWS4-HMAC-SHA256.",
                  Reason::kInvalidRequest);
  AuthorizationParts parts;
  std::string_view rest = auth.substr(kAlgorithm.size() + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return Malformed("expected Name=Value parts");
    std::string_view name = part.substr(0, eq), value = part.substr(eq + 1);
    std::string* slot = name == "Credential"      ? &parts.credential
                        : name == "SignedHeaders" ? &parts.signed_headers
                        : name == "Signature"     ? &parts.signature
                                                  : nullptr;
    if (slot == nullptr) return Malformed("unknown part '" + std::string(name) + "'");
    // Given twice, either one could be what was meant: neither is taken.
    if (!slot->empty()) return Malformed("the " + std::string(name) + " part is given twice");
    if (value.empty()) return Malformed("the " + std::string(name) + " part is empty");
    *slot = std::string(value);
  }
  if (parts.credential.empty() || parts.signed_headers.empty() || parts.signature.empty())
    return Malformed("Credential, SignedHeaders and Signature are required");
  return parts;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string CanonicalQueryString(const QueryParams& params) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(params.size());
  for (const auto& [k, v] : params) encoded.emplace_back(UriEncode(k, true), UriEncode(v, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string CanonicalRequest::SignedHeaders() const {
  std::vector<std::string> names;
  for (const auto& [k, v] : headers) names.push_back(k);
  if (!headers_in_given_order) std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out.push_back(';');
    out += n;
  }
  return out;
}

std::string CanonicalRequest::ToString() const {
  auto sorted = headers;
  if (!headers_in_given_order) std::sort(sorted.begin(), sorted.end());
  std::string out =
      method + "\n" + UriEncode(path, false) + "\n" + CanonicalQueryString(query) + "\n";
  for (const auto& [k, v] : sorted) out += k + ":" + v + "\n";
  out += "\n" + SignedHeaders() + "\n" + payload_hash;
  return out;
}

SigV4::SigV4(Credentials credentials, std::string region, std::string service, const Clock& clock)
    : credentials_(std::move(credentials)),
      region_(std::move(region)),
      service_(std::move(service)),
      clock_(clock) {}

std::string SigV4::Scope(int64_t now_ms) const {
  return FormatAmzDate(now_ms).substr(0, 8) + "/" + region_ + "/" + service_ + "/aws4_request";
}

std::string SigV4::SigningKey(const std::string& date) const {
  std::string k = HmacSha256("AWS4" + credentials_.secret_access_key.Reveal(), date);
  k = HmacSha256(k, region_);
  k = HmacSha256(k, service_);
  return HmacSha256(k, "aws4_request");
}

std::string SigV4::Sign(const CanonicalRequest& request, int64_t now_ms) const {
  std::string amz_date = FormatAmzDate(now_ms);
  std::string string_to_sign = std::string(kAlgorithm) + "\n" + amz_date + "\n" + Scope(now_ms) +
                               "\n" + Sha256Hex(request.ToString());
  return HexEncode(HmacSha256(SigningKey(amz_date.substr(0, 8)), string_to_sign));
}

std::string SigV4::PresignQuery(const std::string& method, const std::string& host,
                                const std::string& path, int64_t expires_s,
                                const QueryParams& extra) const {
  int64_t now = clock_.NowMs();
  CanonicalRequest req;
  req.method = method;
  req.path = path;
  req.query = extra;
  req.query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  req.query.emplace_back("X-Amz-Credential", credentials_.access_key_id + "/" + Scope(now));
  req.query.emplace_back("X-Amz-Date", FormatAmzDate(now));
  req.query.emplace_back("X-Amz-Expires", std::to_string(expires_s));
  if (!credentials_.session_token.empty())
    req.query.emplace_back("X-Amz-Security-Token", credentials_.session_token);
  req.query.emplace_back("X-Amz-SignedHeaders", "host");
  // Signed in its canonical form (trimmed, blanks folded), as VerifyPresigned
  // reads it: a host with a stray blank made URLs that never verified (found by fuzz/sigv4).
  req.headers = {{"host", *CanonicalHeaderValue({{"host", host}}, "host")}};
  req.payload_hash = "UNSIGNED-PAYLOAD";
  std::string signature = Sign(req, now);
  std::string out = CanonicalQueryString(req.query);
  out += "&X-Amz-Signature=" + signature;
  return out;
}

Status SigV4::VerifyPresigned(const std::string& method, const std::string& host,
                              const std::string& path, const QueryParams& query) const {
  return VerifyPresigned(method, path, query, HeaderList{{"host", host}});
}

Status SigV4::VerifyPresigned(const std::string& method, const std::string& path,
                              const QueryParams& query, const HeaderList& headers) const {
  // A repeated parameter would leave open which one was meant (and the first
  // one checked while both are signed): S3 refuses it as a malformed query.
  for (std::string_view name : kQueryAuthParams) {
    size_t seen = 0;
    for (const auto& [k, v] : query) seen += k == name;
    if (seen > 1) return QueryError(std::string(name) + " must be given only once");
  }
  const std::string* algorithm = Find(query, "X-Amz-Algorithm");
  const std::string* credential = Find(query, "X-Amz-Credential");
  const std::string* date = Find(query, "X-Amz-Date");
  const std::string* expires = Find(query, "X-Amz-Expires");
  const std::string* signed_headers = Find(query, "X-Amz-SignedHeaders");
  const std::string* signature = Find(query, "X-Amz-Signature");
  if (!algorithm || !credential || !date || !expires || !signed_headers || !signature)
    return QueryError(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  if (*algorithm != kAlgorithm)
    return QueryError("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  std::optional<int64_t> signed_at = ParseAmzDate(*date);
  if (!signed_at)
    return QueryError("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  int64_t expires_s = -1;
  auto [end, ec] = std::from_chars(expires->data(), expires->data() + expires->size(), expires_s);
  if (ec != std::errc() || end != expires->data() + expires->size() || expires_s < 0)
    return QueryError("X-Amz-Expires should be a number");
  if (expires_s > kMaxPresignExpiresSeconds)
    return QueryError("X-Amz-Expires must be less than a week (in seconds) that is 604800");
  // Credential: <key id>/<yyyymmdd>/<region>/<service>/aws4_request
  std::string expected_scope = Scope(*signed_at);
  size_t slash = credential->find('/');
  if (slash == std::string::npos) return QueryError("Error parsing the X-Amz-Credential parameter");
  std::string key_id = credential->substr(0, slash);
  std::string scope = credential->substr(slash + 1);
  if (key_id != credentials_.access_key_id) return UnknownKey();
  if (scope != expected_scope)
    return QueryError("Error parsing the X-Amz-Credential parameter; the scope must be '" +
                      expected_scope + "'");
  if (Status s = CheckToken(Find(query, "X-Amz-Security-Token")); !s.ok()) return s;

  CanonicalRequest req;
  req.method = method;
  req.path = path;
  for (const auto& [k, v] : query)
    if (k != "X-Amz-Signature") req.query.emplace_back(k, v);
  auto signed_values = SignedHeaderValues(*signed_headers, headers);
  if (!signed_values.ok())
    return QueryError("X-Amz-SignedHeaders: " + signed_values.status().message());
  req.headers = std::move(*signed_values);
  req.headers_in_given_order = true;
  req.payload_hash = "UNSIGNED-PAYLOAD";
  if (!SignatureMatches(*signature, Sign(req, *signed_at))) return SignatureMismatch();
  // Time is checked after the signature, so a forged URL learns nothing from it.
  int64_t now = clock_.NowMs();
  if (now + kMaxSkewMs < *signed_at)
    return Status(Code::kPermissionDenied, "Request is not valid yet", Reason::kAccessDenied);
  if (now >= PresignedUrlExpiresAtMs(*signed_at, expires_s))
    return Status(Code::kPermissionDenied, "Request has expired", Reason::kAccessDenied);
  return Status::Ok();
}

std::string SigV4::Authorization(const CanonicalRequest& request, int64_t now_ms) const {
  return std::string(kAlgorithm) + " Credential=" + credentials_.access_key_id + "/" +
         Scope(now_ms) + ", SignedHeaders=" + request.SignedHeaders() +
         ", Signature=" + Sign(request, now_ms);
}

Result<std::string> SigV4::VerifyHeaderAuth(
    const std::string& method, const std::string& path, const QueryParams& query,
    const HeaderList& headers, const std::optional<std::string>& unsigned_payload_hash) const {
  auto parts = ParseAuthorization(headers);
  if (!parts.ok()) return parts.status();
  const auto& [credential, signed_headers, signature] = *parts;

  Result<int64_t> signed_at = CheckDateAndScope(credential, headers);
  if (!signed_at.ok()) return signed_at.status();
  auto signed_values = SignedHeaderValues(signed_headers, headers);
  if (!signed_values.ok()) return Malformed(signed_values.status().message());
  std::optional<std::string> payload_hash = CanonicalHeaderValue(headers, "x-amz-content-sha256");
  if (!payload_hash) payload_hash = unsigned_payload_hash;
  if (!payload_hash)
    return Status(Code::kInvalidArgument,
                  "Missing required header for this request: x-amz-content-sha256",
                  Reason::kInvalidRequest);
  if (Status s = CheckToken(CanonicalHeaderValue(headers, "x-amz-security-token")); !s.ok())
    return s;

  CanonicalRequest req;
  req.method = method;
  req.path = path;
  req.query = query;
  req.headers = std::move(*signed_values);
  req.headers_in_given_order = true;
  req.payload_hash = *payload_hash;
  if (!SignatureMatches(signature, Sign(req, *signed_at))) return SignatureMismatch();
  int64_t now = clock_.NowMs();
  if (*signed_at > now + kMaxSkewMs || *signed_at < now - kMaxSkewMs)
    return Status(Code::kPermissionDenied,
                  "The difference between the request time and the current time is too large.",
                  Reason::kRequestTimeTooSkewed);
  return *payload_hash;
}

Result<int64_t> SigV4::CheckDateAndScope(const std::string& credential,
                                         const HeaderList& headers) const {
  std::optional<std::string> date = CanonicalHeaderValue(headers, "x-amz-date");
  std::optional<int64_t> signed_at = date ? ParseAmzDate(*date) : std::nullopt;
  if (!signed_at)
    return Status(Code::kPermissionDenied,
                  "AWS authentication requires a valid Date or x-amz-date header",
                  Reason::kAccessDenied);
  size_t slash = credential.find('/');
  if (slash == std::string::npos) return Malformed("the Credential must be KEY/SCOPE");
  if (credential.substr(0, slash) != credentials_.access_key_id) return UnknownKey();
  std::string scope = credential.substr(slash + 1);
  if (scope != Scope(*signed_at)) {
    // Well formed, but scoped to another day, region or service (S3 says
    // AuthorizationHeaderMalformed, Kinesis Video InvalidSignatureException).
    auto wrong_scope = [](const std::string& why) {
      return Status(Code::kInvalidArgument, "The authorization header is malformed; " + why,
                    Reason::kCredentialScopeMismatch);
    };
    std::string region = scope.substr(std::min(scope.size(), size_t{9}));
    region = region.substr(0, region.find('/'));
    if (scope.size() > 9 && region != region_)
      return wrong_scope("the region '" + region + "' is wrong; expecting '" + region_ + "'");
    return wrong_scope("the credential scope must be '" + Scope(*signed_at) + "'");
  }
  return *signed_at;
}

Result<ChunkSigning> SigV4::ChunkSigningFor(const HeaderList& headers) const {
  auto parts = ParseAuthorization(headers);
  if (!parts.ok()) return parts.status();
  Result<int64_t> signed_at = CheckDateAndScope(parts->credential, headers);
  if (!signed_at.ok()) return signed_at.status();
  ChunkSigning out;
  out.amz_date = FormatAmzDate(*signed_at);
  out.scope = Scope(*signed_at);
  out.signing_key = SigningKey(out.amz_date.substr(0, 8));
  out.seed_signature = std::move(parts->signature);
  return out;
}

Status SigV4::CheckToken(std::optional<std::string> token) const {
  if (credentials_.session_token.empty() && !token) return Status::Ok();
  if (token && token->size() == credentials_.session_token.size() &&
      CRYPTO_memcmp(token->data(), credentials_.session_token.data(), token->size()) == 0)
    return Status::Ok();
  return Status(Code::kInvalidArgument, "The provided token is malformed or otherwise invalid.",
                Reason::kInvalidToken);
}

Status SigV4::CheckToken(const std::string* token) const {
  return CheckToken(token ? std::optional<std::string>(*token) : std::nullopt);
}

Result<HeaderList> SigV4::SignedHeaderValues(const std::string& signed_headers,
                                             const HeaderList& headers) {
  // Parsed as the list it is: "xhost;a" names no host header.
  HeaderList out;
  bool host = false;
  size_t start = 0;
  while (start <= signed_headers.size()) {
    size_t semi = signed_headers.find(';', start);
    std::string name = signed_headers.substr(start, semi - start);
    if (name.empty()) return InvalidArgument("empty header name in SignedHeaders");
    for (char c : name)
      if (c >= 'A' && c <= 'Z') return InvalidArgument("SignedHeaders must be lower case");
    for (const auto& [k, v] : out)
      if (k == name) return InvalidArgument("SignedHeaders names '" + name + "' twice");
    host = host || name == "host";
    std::optional<std::string> value = CanonicalHeaderValue(headers, name);
    if (!value) return InvalidArgument("signed header '" + name + "' is not in the request");
    out.emplace_back(name, std::move(*value));
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  if (!host) return InvalidArgument("SignedHeaders must include host");
  return out;
}

int64_t PresignedUrlExpiresAtMs(int64_t signed_at_ms, int64_t expires_s) {
  int64_t second = signed_at_ms >= 0 ? signed_at_ms / 1000 : (signed_at_ms - 999) / 1000;
  return (second + expires_s + 1) * 1000;
}

std::optional<std::string> CanonicalHeaderValue(const HeaderList& headers, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k != name) continue;
    std::string folded;
    for (char c : v) {
      if (c == ' ' || c == '\t') {
        if (!folded.empty() && folded.back() != ' ') folded.push_back(' ');
      } else {
        folded.push_back(c);
      }
    }
    while (!folded.empty() && folded.back() == ' ') folded.pop_back();
    out = out ? *out + "," + folded : folded;
  }
  return out;
}

}  // namespace lastframe::aws
