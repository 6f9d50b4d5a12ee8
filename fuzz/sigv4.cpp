// SigV4: Authorization-header and presigned-query verification, and what they
// rest on (percent-decoding, query parsing, canonical forms, base64).
//
// Input lines: the method; the path as sent (percent-decoded here, as the
// server does); the query as sent; then "name: value" headers (names
// lower-cased, as the S3 and Kinesis Video routes pass them). The signer's key
// pair and clock are fixed (the seeds hold requests signed with them).
// Invariants: nothing the input holds crashes either check; the same request,
// signed here in either form, verifies, and verifies no more once a byte of its
// signature changes; the encodings round trip.

#include "aws/sigv4.h"

#include <algorithm>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/time_format.h"
#include "fuzz_support.h"

using namespace lastframe;
using fuzz::Field;

namespace {

constexpr int64_t kNowMs = 1'795'617'013'000;  // 2026-11-25T14:30:13Z

const aws::SigV4& Signer() {
  static ManualClock clock(kNowMs);
  static aws::SigV4 signer(
      {.access_key_id = "AKIDEXAMPLE",
       .secret_access_key = Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")},
      "us-east-1", "s3", clock);
  return signer;
}

// RFC 9110's token characters: all a header name can hold once Beast has read it.
bool TokenName(const std::string& name) {
  if (name.empty()) return false;
  for (unsigned char c : name)
    if (!(std::isalnum(c) ||
          std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos))
      return false;
  return true;
}

void CheckEncodings(const std::string& path, const QueryParams& query) {
  for (bool slash : {false, true}) {
    auto back = UriDecode(UriEncode(path, slash));
    FUZZ_CHECK(back && *back == path, "UriEncode/UriDecode do not round trip");
  }
  auto reparsed = ParseQuery(aws::CanonicalQueryString(query));
  FUZZ_CHECK(reparsed, "a canonical query string does not parse");
  auto a = query, b = *reparsed;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  FUZZ_CHECK(a == b, "a query does not survive its canonical form");
  if (!path.empty())  // "" is refused by design: no field of ours may be empty
    FUZZ_CHECK(Base64Decode(Base64Encode(path)) == path, "base64 round trip");
  if (auto decoded = Base64Decode(path))
    FUZZ_CHECK(Base64Encode(*decoded) == path,
               "Base64Decode accepted text that is not padded standard base64: " + path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 64);
  const std::string method = Field(fields, 0);
  auto path = UriDecode(Field(fields, 1));
  auto query = ParseQuery(Field(fields, 2));
  if (!path || !query) return 0;
  aws::HeaderList headers;
  for (size_t i = 3; i < fields.size(); ++i) {
    std::string line(fields[i]);
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    headers.emplace_back(std::move(name), std::move(value));
  }
  const aws::SigV4& signer = Signer();
  CheckEncodings(*path, *query);

  // 1. The request as it came, both ways.
  auto declared = signer.VerifyHeaderAuth(method, *path, *query, headers);
  if (declared.ok()) FUZZ_CHECK(aws::CanonicalHeaderValue(headers, "authorization"), "no auth");
  (void)signer.VerifyHeaderAuth(method, *path, *query, headers, aws::Sha256Hex(""));
  Status presigned = signer.VerifyPresigned(method, *path, *query, headers);
  if (presigned.ok())
    FUZZ_CHECK(std::any_of(query->begin(), query->end(),
                           [](const auto& kv) { return kv.first == "X-Amz-Signature"; }),
               "a presigned request verified without a signature");

  // 2. The same request signed in its header: it verifies.
  aws::HeaderList clean;
  std::string host = "127.0.0.1:8080";
  for (const auto& [k, v] : headers) {
    if (!TokenName(k) || k == "authorization" || k == "x-amz-date" || k == "x-amz-security-token")
      continue;
    if (k == "host") host = v;
    clean.emplace_back(k, v);
  }
  if (!aws::CanonicalHeaderValue(clean, "host")) clean.emplace_back("host", host);
  clean.emplace_back("x-amz-date", FormatAmzDate(kNowMs));
  aws::CanonicalRequest req;
  req.method = method;
  req.path = *path;
  req.query = *query;
  for (const auto& header : clean) {
    const std::string& name = header.first;
    if (std::none_of(req.headers.begin(), req.headers.end(),
                     [&](const auto& h) { return h.first == name; }))
      req.headers.emplace_back(name, *aws::CanonicalHeaderValue(clean, name));
  }
  auto hash = aws::CanonicalHeaderValue(clean, "x-amz-content-sha256");
  req.payload_hash = hash ? *hash : aws::Sha256Hex("");
  std::string authorization = signer.Authorization(req, kNowMs);
  clean.emplace_back("authorization", authorization);
  auto verified = signer.VerifyHeaderAuth(method, *path, *query, clean, aws::Sha256Hex(""));
  FUZZ_CHECK(verified.ok(), "a request signed here does not verify: " +
                                verified.status().ToString() + "\n" + req.ToString());
  FUZZ_CHECK(*verified == req.payload_hash, "the declared payload hash is not the signed one");
  clean.back().second.back() = clean.back().second.back() == '0' ? '1' : '0';  // the signature
  auto forged = signer.VerifyHeaderAuth(method, *path, *query, clean, aws::Sha256Hex(""));
  FUZZ_CHECK(!forged.ok() && forged.status().reason() == Reason::kSignatureDoesNotMatch,
             "a changed signature: " + forged.status().ToString());

  // 3. A presigned URL for the same resource: it verifies, and a changed one does not.
  QueryParams extra;
  for (const auto& kv : *query)
    if (kv.first.rfind("X-Amz-", 0) != 0) extra.push_back(kv);
  int64_t expires = 1 + static_cast<int64_t>(size % aws::kMaxPresignExpiresSeconds);
  std::string url_query = signer.PresignQuery(method, host, *path, expires, extra);
  auto parsed = ParseQuery(url_query);
  FUZZ_CHECK(parsed, "a presigned query does not parse: " + url_query);
  Status ok = signer.VerifyPresigned(method, host, *path, *parsed);
  FUZZ_CHECK(ok.ok(), "a URL presigned here does not verify: " + ok.ToString() + "\n" + url_query);
  for (auto& [k, v] : *parsed)
    if (k == "X-Amz-Signature") v.back() = v.back() == '0' ? '1' : '0';
  Status bad = signer.VerifyPresigned(method, host, *path, *parsed);
  FUZZ_CHECK(!bad.ok() && bad.reason() == Reason::kSignatureDoesNotMatch,
             "a changed presigned signature: " + bad.ToString());
  return 0;
}
