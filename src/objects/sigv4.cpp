#include "objects/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

#include "core/time_format.h"

namespace lastframe::objects {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> Decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const std::string* Find(const QueryParams& q, std::string_view key) {
  for (const auto& [k, v] : q)
    if (k == key) return &v;
  return nullptr;
}

Status QueryError(std::string message) {
  return Status(Code::kInvalidArgument, std::move(message), "AuthorizationQueryParametersError");
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

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

std::string UriEncode(std::string_view s, bool encode_slash) {
  static const char* kDigits = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (Unreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::optional<std::string> UriDecode(std::string_view s) { return Decode(s, false); }

std::optional<QueryParams> ParseQuery(std::string_view raw) {
  QueryParams out;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    auto key = Decode(part.substr(0, eq), true);
    auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                              : Decode(part.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
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
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out.push_back(';');
    out += n;
  }
  return out;
}

std::string CanonicalRequest::ToString() const {
  auto sorted = headers;
  std::sort(sorted.begin(), sorted.end());
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
  req.headers = {{"host", host}};
  req.payload_hash = "UNSIGNED-PAYLOAD";
  std::string signature = Sign(req, now);
  std::string out = CanonicalQueryString(req.query);
  out += "&X-Amz-Signature=" + signature;
  return out;
}

Status SigV4::VerifyPresigned(const std::string& method, const std::string& host,
                              const std::string& path, const QueryParams& query) const {
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
  if (key_id != credentials_.access_key_id)
    return Status(Code::kPermissionDenied,
                  "The AWS Access Key Id you provided does not exist in our records.",
                  "InvalidAccessKeyId");
  if (scope != expected_scope)
    return QueryError("Error parsing the X-Amz-Credential parameter; the scope must be '" +
                      expected_scope + "'");
  // Every header named as signed must be one we can reproduce: presigned GETs sign only host.
  if (*signed_headers != "host")
    return QueryError("X-Amz-SignedHeaders must be 'host' for presigned requests here");

  CanonicalRequest req;
  req.method = method;
  req.path = path;
  for (const auto& [k, v] : query)
    if (k != "X-Amz-Signature") req.query.emplace_back(k, v);
  req.headers = {{"host", host}};
  req.payload_hash = "UNSIGNED-PAYLOAD";
  std::string expected = Sign(req, *signed_at);
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0)
    return Status(Code::kPermissionDenied,
                  "The request signature we calculated does not match the signature you provided. "
                  "Check your key and signing method.",
                  "SignatureDoesNotMatch");
  // Time is checked after the signature, so a forged URL learns nothing from it.
  int64_t now = clock_.NowMs();
  if (now + 15 * 60 * 1000 < *signed_at)
    return Status(Code::kPermissionDenied, "Request is not valid yet", "AccessDenied");
  if (now > *signed_at + expires_s * 1000)
    return Status(Code::kPermissionDenied, "Request has expired", "AccessDenied");
  return Status::Ok();
}

}  // namespace lastframe::objects
