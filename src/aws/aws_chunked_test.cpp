#include "aws/aws_chunked.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/encoding.h"
#include "support/aws_chunked_encoder.h"

namespace lastframe::aws {
namespace {

// AWS's published example credentials and time (S3 API reference,
// "Signature Calculations for the Authorization Header: Transferring Payload in
// Multiple Chunks" and "... Including Trailing Headers").
const Credentials kExampleCredentials{"AKIAIOSFODNN7EXAMPLE",
                                      Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), ""};
constexpr int64_t kExampleTime = 1369353600000;  // 20130524T000000Z
constexpr char kScope[] = "20130524/us-east-1/s3/aws4_request";

// "Transferring Payload in Multiple Chunks": 66560 bytes of 'a' in chunks of
// 65536 and 1024 bytes, then the final chunk. The seed and each chunk signature
// as AWS publishes them (aws-c-auth's tests/test_chunked_signing.c checks the same).
constexpr char kSeed[] = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr char kChunk1[] = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
constexpr char kChunk2[] = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
constexpr char kFinal[] = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";
// aws-c-auth's signed trailer after that final chunk: first:1st, second:2nd, third:3rd.
constexpr char kThreeTrailersSignature[] =
    "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c";

// "Including Trailing Headers": the same data under
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, with x-amz-trailer:
// x-amz-checksum-crc32c (the CRC32C of the data is sOO8/Q==).
constexpr char kTrailerSeed[] = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
constexpr char kTrailerChunk1[] =
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2";
constexpr char kTrailerChunk2[] =
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7";
constexpr char kTrailerFinal[] = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992";
constexpr char kTrailerSignature[] =
    "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

std::string ExampleKey() {
  return lastframe::testing::SigV4SigningKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524",
                                             "us-east-1", "s3");
}

ChunkSigning ExampleSigning(const std::string& seed) {
  return ChunkSigning{"20130524T000000Z", kScope, ExampleKey(), seed};
}

// The request headers of AWS's two examples, as a client signs them.
HeaderList ExampleHeaders(bool trailer) {
  HeaderList h = {{"host", "s3.amazonaws.com"},
                  {"x-amz-date", "20130524T000000Z"},
                  {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                  {"content-encoding", "aws-chunked"},
                  {"x-amz-decoded-content-length", "66560"}};
  if (trailer) {
    h.emplace_back("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    h.emplace_back("x-amz-trailer", "x-amz-checksum-crc32c");
    h.emplace_back("content-length", "66946");
    h.emplace_back("authorization",
                   std::string("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/") + kScope +
                       ",SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
                       "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
                       "Signature=" +
                       kTrailerSeed);
  } else {
    h.emplace_back("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    h.emplace_back("content-length", "66824");
    h.emplace_back("authorization",
                   std::string("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/") + kScope +
                       ",SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
                       "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=" +
                       kSeed);
  }
  return h;
}

std::string ExampleBody(const char* s1, const char* s2, const char* final_signature) {
  return std::string("10000;chunk-signature=") + s1 + "\r\n" + std::string(65536, 'a') + "\r\n" +
         "400;chunk-signature=" + s2 + "\r\n" + std::string(1024, 'a') + "\r\n" +
         "0;chunk-signature=" + final_signature + "\r\n";
}
// AWS's first example, byte for byte (Content-Length 66824).
std::string AwsSignedBody() { return ExampleBody(kChunk1, kChunk2, kFinal) + "\r\n"; }
// AWS's trailer example (Content-Length 66946).
std::string AwsTrailerBody() {
  return ExampleBody(kTrailerChunk1, kTrailerChunk2, kTrailerFinal) +
         "x-amz-checksum-crc32c:sOO8/Q==\r\n" + "x-amz-trailer-signature:" + kTrailerSignature +
         "\r\n\r\n";
}

// The test-side encoder (tests/support, shared with the end-to-end tests),
// written from the specification, not from the decoder's code.
using Encoder = lastframe::testing::AwsChunkedEncoder;

struct Decoded {
  Status status;  // the first error, from Feed or Finish
  std::string out;
  HeaderList trailers;
  uint64_t decoded_bytes = 0;
};

// Feeds |body| in the pieces |cuts| gives (ascending offsets), then Finish.
Decoded DecodeCut(ChunkedMode mode, std::optional<ChunkSigning> signing, std::string declared,
                  std::string_view body, const std::vector<size_t>& cuts) {
  AwsChunkedDecoder d(mode, std::move(signing), std::move(declared));
  Decoded r;
  size_t at = 0;
  for (size_t i = 0; i <= cuts.size() && r.status.ok(); ++i) {
    size_t end = i < cuts.size() ? cuts[i] : body.size();
    r.status = d.Feed(body.substr(at, end - at), r.out);
    at = end;
  }
  if (r.status.ok()) r.status = d.Finish();
  r.trailers = d.trailers();
  r.decoded_bytes = d.decoded_bytes();
  return r;
}
Decoded Decode(ChunkedMode mode, std::optional<ChunkSigning> signing, std::string declared,
               std::string_view body) {
  return DecodeCut(mode, std::move(signing), std::move(declared), body, {});
}
std::vector<size_t> EveryByte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}
std::vector<size_t> RandomCuts(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::set<size_t> cuts;
  size_t count = std::uniform_int_distribution<size_t>(1, 64)(rng);
  for (size_t i = 0; i < count && n > 1; ++i)
    cuts.insert(std::uniform_int_distribution<size_t>(1, n - 1)(rng));
  return {cuts.begin(), cuts.end()};
}

std::string Flip(std::string s, size_t at) {
  s[at] = s[at] == '0' ? '1' : '0';
  return s;
}

TEST(AwsChunked, ParseChunkedMode) {
  EXPECT_EQ(ParseChunkedMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ChunkedMode::kSigned);
  EXPECT_EQ(ParseChunkedMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
            ChunkedMode::kSignedWithTrailer);
  EXPECT_EQ(ParseChunkedMode("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ChunkedMode::kUnsignedWithTrailer);
  for (ChunkedMode m :
       {ChunkedMode::kSigned, ChunkedMode::kSignedWithTrailer, ChunkedMode::kUnsignedWithTrailer})
    EXPECT_EQ(ParseChunkedMode(ChunkedModeName(m)), m);
  for (std::string_view other :
       {"UNSIGNED-PAYLOAD", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD",
        "streaming-aws4-hmac-sha256-payload", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD ", ""})
    EXPECT_EQ(ParseChunkedMode(other), std::nullopt) << other;
}

// The seed signatures of both AWS examples verify as Authorization headers,
// and ChunkSigningFor hands over what their chunk signatures need.
TEST(AwsChunked, ChunkSigningForAwsExamples) {
  ManualClock clock(kExampleTime);
  SigV4 signer(kExampleCredentials, "us-east-1", "s3", clock);
  for (bool trailer : {false, true}) {
    HeaderList headers = ExampleHeaders(trailer);
    auto payload = signer.VerifyHeaderAuth("PUT", "/examplebucket/chunkObject.txt", {}, headers);
    ASSERT_TRUE(payload.ok()) << payload.status().ToString();
    EXPECT_EQ(ParseChunkedMode(*payload),
              trailer ? ChunkedMode::kSignedWithTrailer : ChunkedMode::kSigned);
    auto signing = signer.ChunkSigningFor(headers);
    ASSERT_TRUE(signing.ok()) << signing.status().ToString();
    EXPECT_EQ(signing->amz_date, "20130524T000000Z");
    EXPECT_EQ(signing->scope, kScope);
    EXPECT_EQ(signing->signing_key, ExampleKey());
    EXPECT_EQ(signing->seed_signature, trailer ? kTrailerSeed : kSeed);

    auto body = trailer ? AwsTrailerBody() : AwsSignedBody();
    EXPECT_EQ(body.size(), trailer ? 66946u : 66824u);  // the examples' Content-Length
    auto r =
        Decode(*ParseChunkedMode(*payload), *signing, trailer ? "x-amz-checksum-crc32c" : "", body);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.out, std::string(66560, 'a'));
  }
}

TEST(AwsChunked, ChunkSigningForRefusesWhatVerifyHeaderAuthRefuses) {
  ManualClock clock(kExampleTime);
  SigV4 signer(kExampleCredentials, "us-east-1", "s3", clock);
  HeaderList none = {{"host", "s3.amazonaws.com"}, {"x-amz-date", "20130524T000000Z"}};
  EXPECT_EQ(signer.ChunkSigningFor(none).status().reason(), Reason::kAccessDenied);
  SigV4 other(kExampleCredentials, "eu-west-1", "s3", clock);
  EXPECT_EQ(other.ChunkSigningFor(ExampleHeaders(false)).status().reason(),
            Reason::kCredentialScopeMismatch);
  HeaderList no_date = ExampleHeaders(false);
  std::erase_if(no_date, [](const auto& h) { return h.first == "x-amz-date"; });
  EXPECT_EQ(signer.ChunkSigningFor(no_date).status().reason(), Reason::kAccessDenied);
}

TEST(AwsChunked, AwsPublishedSignedExampleWholeByteByByteAndRandomSplits) {
  const std::string body = AwsSignedBody();
  auto whole = Decode(ChunkedMode::kSigned, ExampleSigning(kSeed), "", body);
  ASSERT_TRUE(whole.status.ok()) << whole.status.ToString();
  EXPECT_EQ(whole.out, std::string(66560, 'a'));
  EXPECT_EQ(whole.decoded_bytes, 66560u);
  EXPECT_TRUE(whole.trailers.empty());

  auto bytes =
      DecodeCut(ChunkedMode::kSigned, ExampleSigning(kSeed), "", body, EveryByte(body.size()));
  ASSERT_TRUE(bytes.status.ok()) << bytes.status.ToString();
  EXPECT_EQ(bytes.out, whole.out);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    auto cut = DecodeCut(ChunkedMode::kSigned, ExampleSigning(kSeed), "", body,
                         RandomCuts(body.size(), seed));
    ASSERT_TRUE(cut.status.ok()) << "seed " << seed << ": " << cut.status.ToString();
    EXPECT_EQ(cut.out, whole.out) << "seed " << seed;
  }
}

TEST(AwsChunked, AwsPublishedTrailerExample) {
  const std::string body = AwsTrailerBody();
  for (auto cuts : {std::vector<size_t>{}, EveryByte(body.size()), RandomCuts(body.size(), 7)}) {
    auto r = DecodeCut(ChunkedMode::kSignedWithTrailer, ExampleSigning(kTrailerSeed),
                       "x-amz-checksum-crc32c", body, cuts);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.out, std::string(66560, 'a'));
    EXPECT_EQ(r.trailers, (HeaderList{{"x-amz-checksum-crc32c", "sOO8/Q=="}}));
  }
  // The same trailer, as signed: any other value breaks the trailer signature.
  std::string other = body;
  other[other.find("sOO8/Q==")] = 'S';
  auto r = Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kTrailerSeed),
                  "x-amz-checksum-crc32c", other);
  EXPECT_EQ(r.status.code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status.reason(), Reason::kSignatureDoesNotMatch);
}

// aws-c-auth's vector: three trailers after AWS's first example, signed over
// "first:1st\nsecond:2nd\nthird:3rd\n"; the order on the wire does not matter.
TEST(AwsChunked, AwsCAuthThreeTrailersVector) {
  for (std::string lines : {"first:1st\r\nsecond:2nd\r\nthird:3rd\r\n",
                            "third: 3rd\r\nFirst:1st \r\nsecond:\t2nd\r\n"}) {
    std::string body = ExampleBody(kChunk1, kChunk2, kFinal) + lines +
                       "x-amz-trailer-signature:" + kThreeTrailersSignature + "\r\n\r\n";
    auto r =
        Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "first, second,Third", body);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    HeaderList sorted = r.trailers;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (HeaderList{{"first", "1st"}, {"second", "2nd"}, {"third", "3rd"}}));
  }
}

TEST(AwsChunked, TamperedChunkSignatureRefused) {
  const std::string body = AwsSignedBody();
  for (const char* signature : {kChunk1, kChunk2, kFinal}) {
    size_t at = body.find(signature);
    ASSERT_NE(at, std::string::npos);
    for (size_t digit : {size_t{0}, size_t{63}}) {
      auto r = Decode(ChunkedMode::kSigned, ExampleSigning(kSeed), "", Flip(body, at + digit));
      EXPECT_EQ(r.status.code(), Code::kPermissionDenied) << r.status.ToString();
      EXPECT_EQ(r.status.reason(), Reason::kSignatureDoesNotMatch);
      EXPECT_NE(r.status.message().find("chunk-signature of chunk"), std::string::npos)
          << r.status.message();
    }
  }
  // A wrong seed breaks the first chunk.
  auto r = Decode(ChunkedMode::kSigned, ExampleSigning(kTrailerSeed), "", body);
  EXPECT_EQ(r.status.reason(), Reason::kSignatureDoesNotMatch);
  EXPECT_NE(r.status.message().find("chunk 1 "), std::string::npos) << r.status.message();
  EXPECT_TRUE(r.out.size() <= 65536u);  // nothing past the chunk that failed
}

TEST(AwsChunked, TamperedDataRefused) {
  const std::string body = AwsSignedBody();
  for (size_t at : {size_t{88}, size_t{88 + 65535}, body.find("400;") + 86 + 500}) {
    std::string bad = body;
    bad[at] = 'b';
    auto r = Decode(ChunkedMode::kSigned, ExampleSigning(kSeed), "", bad);
    EXPECT_EQ(r.status.code(), Code::kPermissionDenied) << at;
    EXPECT_EQ(r.status.reason(), Reason::kSignatureDoesNotMatch) << at;
  }
}

TEST(AwsChunked, ErrorsAreFinal) {
  AwsChunkedDecoder d(ChunkedMode::kSigned, ExampleSigning(kTrailerSeed), "");
  std::string out;
  Status first = d.Feed(AwsSignedBody(), out);
  EXPECT_EQ(first.reason(), Reason::kSignatureDoesNotMatch);
  size_t size = out.size();
  Status again = d.Feed("0;chunk-signature=", out);
  EXPECT_EQ(again.reason(), first.reason());
  EXPECT_EQ(again.message(), first.message());
  EXPECT_EQ(out.size(), size);
  EXPECT_EQ(d.Finish().message(), first.message());
}

TEST(AwsChunked, SignedTrailerRoundTrip) {
  std::mt19937 rng(42);
  std::string payload(200000, '\0');
  for (char& c : payload) c = static_cast<char>(rng());
  // The payload holds CR, LF and "0\r\n" sequences of its own.
  payload.replace(100, 9, "\r\n0\r\n\r\n\r\n");
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{8192}, size_t{65536}, payload.size()}) {
    Encoder enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
    std::string part = chunk == 1 ? payload.substr(0, 300) : payload;
    std::string body = enc.Encode(part, chunk, {{"x-amz-checksum-crc32", "AAAAAA=="}});
    for (auto cuts : {std::vector<size_t>{}, RandomCuts(body.size(), 3)}) {
      auto r = DecodeCut(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed),
                         "x-amz-checksum-crc32", body, cuts);
      ASSERT_TRUE(r.status.ok()) << chunk << ": " << r.status.ToString();
      EXPECT_EQ(r.out, part);
      EXPECT_EQ(r.decoded_bytes, part.size());
      EXPECT_EQ(r.trailers, (HeaderList{{"x-amz-checksum-crc32", "AAAAAA=="}}));
    }
  }
  // An empty payload is only the final chunk and the trailer.
  Encoder enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
  auto r = Decode(
      ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "x-amz-checksum-sha256",
      enc.Encode("", 1,
                 {{"x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}}));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.out, "");
}

TEST(AwsChunked, TamperedTrailerSignatureRefused) {
  Encoder enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
  std::string body = enc.Encode("hello world", 5, {{"x-amz-checksum-crc32", "DUoRhQ=="}});
  size_t at = body.find("x-amz-trailer-signature:") + 24;
  auto r = Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "x-amz-checksum-crc32",
                  Flip(body, at + 10));
  EXPECT_EQ(r.status.code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status.reason(), Reason::kSignatureDoesNotMatch);
  EXPECT_NE(r.status.message().find("x-amz-trailer-signature"), std::string::npos);
  // The trailer signature chains from the final chunk's: one signed after
  // another request's chunks does not verify.
  Encoder other(ChunkedMode::kSignedWithTrailer, ExampleSigning(kTrailerSeed));
  std::string foreign = other.Encode("hello world", 5, {{"x-amz-checksum-crc32", "DUoRhQ=="}});
  std::string spliced = body.substr(0, body.find("x-amz-trailer-signature:")) +
                        foreign.substr(foreign.find("x-amz-trailer-signature:"));
  r = Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "x-amz-checksum-crc32",
             spliced);
  EXPECT_EQ(r.status.reason(), Reason::kSignatureDoesNotMatch);
}

// What botocore (AwsChunkedWrapper), the JS SDK v3 (getAwsChunkedEncodingStream)
// and the Go SDK v2 send by default.
TEST(AwsChunked, UnsignedTrailerMode) {
  std::string body = "b\r\nhello world\r\n3\r\n!!!\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
  for (auto cuts : {std::vector<size_t>{}, EveryByte(body.size())}) {
    auto r = DecodeCut(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "x-amz-checksum-crc32",
                       body, cuts);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.out, "hello world!!!");
    EXPECT_EQ(r.trailers, (HeaderList{{"x-amz-checksum-crc32", "DUoRhQ=="}}));
  }
  // botocore without a checksum: "0\r\n\r\n", no x-amz-trailer.
  auto r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "", "2\r\nhi\r\n0\r\n\r\n");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.out, "hi");
  // Signing material is ignored in this mode.
  r = Decode(ChunkedMode::kUnsignedWithTrailer, ExampleSigning(kSeed), "", "0\r\n\r\n");
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  // Round trip through the encoder, a large chunk and a mixed-case, padded trailer.
  Encoder enc(ChunkedMode::kUnsignedWithTrailer, {});
  std::string payload(300000, 'z');
  body = enc.Encode(payload, 100000, {{"X-Amz-Checksum-SHA1", "  abc=  "}});
  r = DecodeCut(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "x-amz-checksum-sha1", body,
                RandomCuts(body.size(), 9));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.out, payload);
  EXPECT_EQ(r.trailers, (HeaderList{{"x-amz-checksum-sha1", "abc="}}));
}

TEST(AwsChunked, Tolerances) {
  // Trailer lines ending in LF alone (minio and s3s read them so).
  auto r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "x-amz-checksum-crc32",
                  "2\r\nhi\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\n\n");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  Encoder enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
  std::string body = enc.Encode("hi", 2, {{"x-amz-checksum-crc32", "AAAAAA=="}});
  std::string lf = body;
  for (size_t at = lf.find("0;chunk-signature"); (at = lf.find("\r\n", at)) != std::string::npos;)
    lf.erase(at, 1);
  lf.insert(lf.find("0;chunk-signature") + 82, "\r");  // the final chunk's line keeps its CRLF
  r = Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "x-amz-checksum-crc32", lf);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString() << "\n" << lf;
  // Unsigned chunk extensions are ignored (RFC 9112).
  r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "",
             "2;foo=bar;baz\r\nhi\r\n0;chunk-signature=x\r\n\r\n");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.out, "hi");
  // Upper-case and zero-padded hex sizes.
  r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "",
             "00000000000000F\r\n0123456789abcde\r\n0000\r\n\r\n");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.out, "0123456789abcde");
}

// Every prefix of a body (every cut, each fed whole and byte by byte) is an
// error from Feed or Finish, never Ok.
void ExpectEveryTruncationRefused(ChunkedMode mode, std::optional<ChunkSigning> signing,
                                  const std::string& declared, const std::string& body,
                                  size_t stride = 1) {
  auto full = Decode(mode, signing, declared, body);
  ASSERT_TRUE(full.status.ok()) << full.status.ToString();
  for (size_t n = 0; n < body.size(); n += stride) {
    auto r = Decode(mode, signing, declared, std::string_view(body).substr(0, n));
    ASSERT_FALSE(r.status.ok()) << "a body cut at " << n << " of " << body.size() << " passed";
    EXPECT_EQ(r.status.code(), Code::kInvalidArgument) << n;
    EXPECT_EQ(r.status.reason(), Reason::kIncompleteBody) << n << ": " << r.status.ToString();
    EXPECT_EQ(r.out, full.out.substr(0, r.out.size())) << n;
  }
}

TEST(AwsChunked, TruncatedBodiesRefusedAtEverySplit) {
  Encoder signed_enc(ChunkedMode::kSigned, ExampleSigning(kSeed));
  ExpectEveryTruncationRefused(ChunkedMode::kSigned, ExampleSigning(kSeed), "",
                               signed_enc.Encode("0123456789abcdefghij", 7));
  Encoder trailer_enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
  ExpectEveryTruncationRefused(
      ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "x-amz-checksum-crc32c",
      trailer_enc.Encode("0123456789abcdefghij", 7, {{"x-amz-checksum-crc32c", "AAAAAA=="}}));
  ExpectEveryTruncationRefused(ChunkedMode::kUnsignedWithTrailer, std::nullopt,
                               "x-amz-checksum-crc32",
                               "b\r\nhello world\r\n3\r\n!!!\r\n0\r\nx-amz-checksum-crc32:"
                               "DUoRhQ==\r\n\r\n");
  ExpectEveryTruncationRefused(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "",
                               "2\r\nhi\r\n0\r\n\r\n");
  // AWS's examples: every byte around each frame, a stride through the data.
  for (bool trailer : {false, true}) {
    std::string body = trailer ? AwsTrailerBody() : AwsSignedBody();
    ExpectEveryTruncationRefused(trailer ? ChunkedMode::kSignedWithTrailer : ChunkedMode::kSigned,
                                 ExampleSigning(trailer ? kTrailerSeed : kSeed),
                                 trailer ? "x-amz-checksum-crc32c" : "", body, 4099);
    size_t second = body.find("\r\n400;") - 2;
    for (size_t n = 0; n < body.size(); ++n) {
      bool near_frame = n < 100 || (n >= second && n < second + 100) || n + 300 >= body.size();
      if (!near_frame) continue;
      auto r = Decode(trailer ? ChunkedMode::kSignedWithTrailer : ChunkedMode::kSigned,
                      ExampleSigning(trailer ? kTrailerSeed : kSeed),
                      trailer ? "x-amz-checksum-crc32c" : "", body.substr(0, n));
      EXPECT_EQ(r.status.reason(), Reason::kIncompleteBody) << n << ": " << r.status.ToString();
    }
  }
}

TEST(AwsChunked, IncompleteBodyMessagesSayWhere) {
  auto r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "", "");
  EXPECT_EQ(r.status.reason(), Reason::kIncompleteBody);
  EXPECT_NE(r.status.message().find("empty"), std::string::npos) << r.status.message();
  r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "", "a\r\nhello");
  EXPECT_NE(r.status.message().find("5 of its 10 bytes are missing"), std::string::npos)
      << r.status.message();
  r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "", "2\r\nhi\r\n");
  EXPECT_NE(r.status.message().find("before chunk 2's size line"), std::string::npos)
      << r.status.message();
}

TEST(AwsChunked, OversizedAndMalformedSizesRefused) {
  auto expect = [](std::string body, Reason reason, std::string_view says = "") {
    auto r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "", body);
    EXPECT_EQ(r.status.code(), Code::kInvalidArgument) << body.substr(0, 40);
    EXPECT_EQ(r.status.reason(), reason) << body.substr(0, 40) << ": " << r.status.ToString();
    EXPECT_NE(r.status.message().find(says), std::string::npos) << r.status.message();
  };
  expect("10000000000000000\r\n", Reason::kInvalidChunkSizeError, "1-16 hex digits");
  expect("00000000000000001\r\nx\r\n0\r\n\r\n", Reason::kInvalidChunkSizeError);
  expect("1\r\nx\r\nffffffffffffffff\r\n", Reason::kInvalidChunkSizeError, "past 2^64");
  expect("\r\n", Reason::kInvalidChunkSizeError, "chunk 1 ");
  for (const char* size : {"1g", "-1", " 1", "1 ", "0x10", "+1"})
    expect(std::string(size) + "\r\nx\r\n0\r\n\r\n", Reason::kInvalidChunkSizeError);
  // A line without end: refused once past the bound, before the body ends.
  AwsChunkedDecoder d(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "");
  std::string out;
  Status s = d.Feed("1;x=" + std::string(kMaxChunkLineBytes, 'y'), out);
  EXPECT_EQ(s.reason(), Reason::kInvalidRequest) << s.ToString();
  EXPECT_NE(s.message().find("longer than 4096 bytes"), std::string::npos) << s.message();
  // Just under the bound is fine.
  std::string line = "1;x=" + std::string(kMaxChunkLineBytes - 4, 'y');
  auto r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "", line + "\r\nq\r\n0\r\n\r\n");
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  // Framing: LF alone after a chunk line, data not followed by CRLF, bad extensions.
  expect("2\nhi\r\n0\r\n\r\n", Reason::kInvalidRequest, "does not end in CRLF");
  expect("2\r\nhix\r\n0\r\n\r\n", Reason::kInvalidRequest, "not followed by CRLF");
  expect("2\r\nhi\n0\r\n\r\n", Reason::kInvalidRequest, "not followed by CRLF");
  expect("2;\r\nhi\r\n0\r\n\r\n", Reason::kInvalidRequest, "extension");
  expect("2;a\x01=b\r\nhi\r\n0\r\n\r\n", Reason::kInvalidRequest, "extension");
}

TEST(AwsChunked, SignedFramingRefused) {
  auto decode = [](ChunkedMode mode, std::string body) {
    return Decode(mode, ExampleSigning(kSeed), "", body).status;
  };
  Status s = decode(ChunkedMode::kSigned, "2\r\nhi\r\n0\r\n\r\n");
  EXPECT_EQ(s.reason(), Reason::kInvalidRequest);
  EXPECT_NE(s.message().find("no ';chunk-signature='"), std::string::npos) << s.message();
  s = decode(ChunkedMode::kSigned, "2;foo=bar\r\nhi\r\n");
  EXPECT_EQ(s.reason(), Reason::kInvalidRequest);
  s = decode(ChunkedMode::kSigned, "2;chunk-signature=abc\r\nhi\r\n");
  EXPECT_EQ(s.reason(), Reason::kIncompleteSignature) << s.ToString();
  s = decode(ChunkedMode::kSigned, "2;chunk-signature=" + std::string(kChunk1) + ";x=y\r\nhi\r\n");
  EXPECT_EQ(s.reason(), Reason::kIncompleteSignature) << s.ToString();
  // kSigned has no trailer.
  Encoder enc(ChunkedMode::kSigned, ExampleSigning(kSeed));
  std::string body = enc.Encode("hi", 2);
  body.insert(body.size() - 2, "x-amz-checksum-crc32:AAAAAA==\r\n");
  s = decode(ChunkedMode::kSigned, body);
  EXPECT_EQ(s.reason(), Reason::kMalformedTrailerError) << s.ToString();
}

TEST(AwsChunked, TrailingGarbageRefused) {
  Encoder signed_enc(ChunkedMode::kSigned, ExampleSigning(kSeed));
  Encoder trailer_enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
  struct Case {
    ChunkedMode mode;
    std::string declared;
    std::string body;
  } cases[] = {
      {ChunkedMode::kSigned, "", signed_enc.Encode("hi", 2)},
      {ChunkedMode::kSignedWithTrailer, "x-amz-checksum-crc32",
       trailer_enc.Encode("hi", 2, {{"x-amz-checksum-crc32", "AAAAAA=="}})},
      {ChunkedMode::kUnsignedWithTrailer, "", "2\r\nhi\r\n0\r\n\r\n"},
  };
  for (const Case& c : cases) {
    for (std::string garbage : {"x", "\r\n", "0\r\n\r\n"}) {
      auto r = Decode(c.mode, ExampleSigning(kSeed), c.declared, c.body + garbage);
      EXPECT_EQ(r.status.reason(), Reason::kInvalidRequest) << r.status.ToString();
      EXPECT_NE(r.status.message().find("follow the end of the body"), std::string::npos);
      // Also when it comes in a later read.
      AwsChunkedDecoder d(c.mode, ExampleSigning(kSeed), c.declared);
      std::string out;
      ASSERT_TRUE(d.Feed(c.body, out).ok());
      EXPECT_TRUE(d.done());
      EXPECT_EQ(d.Feed(garbage, out).reason(), Reason::kInvalidRequest);
      EXPECT_EQ(d.Finish().reason(), Reason::kInvalidRequest);
    }
  }
}

TEST(AwsChunked, DeclaredTrailerEnforced) {
  auto unsigned_status = [](std::string declared, std::string trailer_lines) {
    return Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, declared,
                  "2\r\nhi\r\n0\r\n" + trailer_lines + "\r\n")
        .status;
  };
  auto expect_malformed = [](const Status& s, std::string_view says) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
    EXPECT_EQ(s.reason(), Reason::kMalformedTrailerError) << s.ToString();
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  };
  expect_malformed(unsigned_status("x-amz-checksum-crc32", ""), "is missing");
  expect_malformed(unsigned_status("x-amz-checksum-crc32", "x-amz-checksum-crc32c:AAAAAA==\r\n"),
                   "not declared");
  expect_malformed(unsigned_status("", "x-amz-checksum-crc32:AAAAAA==\r\n"), "absent");
  expect_malformed(
      unsigned_status("x-amz-checksum-crc32",
                      "x-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n"),
      "given twice");
  expect_malformed(unsigned_status("a,b", "a:1\r\n"), "'b' declared");
  expect_malformed(unsigned_status("x-amz-checksum-crc32", "x-amz-checksum-crc32\r\n"),
                   "not 'name:value'");
  expect_malformed(unsigned_status("x-amz-checksum-crc32", ":AAAAAA==\r\n"), "not 'name:value'");
  expect_malformed(unsigned_status("x-amz-checksum-crc32", "x-amz-checksum-crc32:A\x01\r\n"),
                   "control character");
  expect_malformed(unsigned_status("x-amz-checksum-crc32", "x-amz-checksum-crc32:A\rB\r\n"),
                   "control character");
  expect_malformed(unsigned_status("", "x-amz-trailer-signature:" + std::string(kSeed) + "\r\n"),
                   "has no trailer signature");

  // Signed: the trailer signature is required, and last.
  Encoder enc(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed));
  std::string body = enc.Encode("hi", 2, {{"x-amz-checksum-crc32", "AAAAAA=="}});
  std::string no_signature = body.substr(0, body.find("x-amz-trailer-signature:")) + "\r\n";
  expect_malformed(Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed),
                          "x-amz-checksum-crc32", no_signature)
                       .status,
                   "no x-amz-trailer-signature");
  std::string late = body;
  late.insert(late.size() - 2, "x-amz-meta-a:b\r\n");
  expect_malformed(Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed),
                          "x-amz-checksum-crc32,x-amz-meta-a", late)
                       .status,
                   "must come last");
  // Declared differently from what was signed and sent.
  expect_malformed(
      Decode(ChunkedMode::kSignedWithTrailer, ExampleSigning(kSeed), "x-amz-checksum-sha256", body)
          .status,
      "not declared");
  // kSigned takes no x-amz-trailer at all.
  auto r = Decode(ChunkedMode::kSigned, ExampleSigning(kSeed), "x-amz-checksum-crc32", "");
  EXPECT_EQ(r.status.reason(), Reason::kInvalidRequest) << r.status.ToString();
}

TEST(AwsChunked, TrailerSectionBounded) {
  auto r =
      Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "x-amz-checksum-crc32",
             "0\r\nx-amz-checksum-crc32:" + std::string(kMaxTrailerSectionBytes, 'A') + "\r\n\r\n");
  EXPECT_EQ(r.status.reason(), Reason::kMalformedTrailerError) << r.status.ToString();
  EXPECT_NE(r.status.message().find("longer than 16384 bytes"), std::string::npos);
  std::string many;
  for (int i = 0; i < 9; ++i) many += "x-amz-checksum-crc32:A\r\n";
  r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "x-amz-checksum-crc32",
             "0\r\n" + many + "\r\n");
  EXPECT_EQ(r.status.reason(), Reason::kMalformedTrailerError);
  // x-amz-trailer may not name more than the lines allow.
  r = Decode(ChunkedMode::kUnsignedWithTrailer, std::nullopt, "a,b,c,d,e,f,g,h", "0\r\n\r\n");
  EXPECT_EQ(r.status.reason(), Reason::kInvalidRequest) << r.status.ToString();
}

TEST(AwsChunked, SignedModeWithoutSigningIsABug) {
  for (ChunkedMode mode : {ChunkedMode::kSigned, ChunkedMode::kSignedWithTrailer}) {
    auto r = Decode(mode, std::nullopt, "", "0\r\n\r\n");
    EXPECT_EQ(r.status.code(), Code::kInternal);
    ChunkSigning bad = ExampleSigning("not hex");
    EXPECT_EQ(Decode(mode, bad, "", "0\r\n\r\n").status.code(), Code::kInternal);
  }
}

TEST(AwsChunked, MovedDecoderContinues) {
  const std::string body = AwsSignedBody();
  AwsChunkedDecoder first(ChunkedMode::kSigned, ExampleSigning(kSeed), "");
  std::string out;
  ASSERT_TRUE(first.Feed(std::string_view(body).substr(0, 30000), out).ok());
  AwsChunkedDecoder second = std::move(first);
  ASSERT_TRUE(second.Feed(std::string_view(body).substr(30000), out).ok());
  EXPECT_TRUE(second.Finish().ok());
  EXPECT_EQ(out, std::string(66560, 'a'));
  EXPECT_EQ(second.decoded_bytes(), 66560u);
}

}  // namespace
}  // namespace lastframe::aws
