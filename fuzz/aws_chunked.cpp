// aws-chunked request bodies: AwsChunkedDecoder in its three modes.
//
// Input: a flags byte, then either a body to decode (flags & 3 < 3: the mode)
// or, for flags & 3 == 3, a chunk-size byte and a payload that is encoded here
// (mode (flags >> 2) % 3, signed with AWS's example key) and decoded back.
// Invariants: the same bytes cut into any pieces (whole, byte by byte, the
// input's own cuts) decode to the same output and the same verdict; errors
// carry only the decoder's reasons (never Internal); what is accepted has
// decoded_bytes() == output size and only the declared trailer. A body encoded
// here decodes to its payload and trailer; every proper prefix of it is
// IncompleteBody; in the signed modes, changing any one byte makes it refused.

#include "aws/aws_chunked.h"

#include <cstdio>

#include "core/encoding.h"
#include "fuzz_support.h"

using namespace lastframe;
using namespace lastframe::aws;

namespace {

constexpr char kSeed[] = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr char kTrailer[] = "x-amz-checksum-crc32";

const ChunkSigning& Signing() {
  static const ChunkSigning signing = [] {
    std::string k = HmacSha256("AWS4wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524");
    k = HmacSha256(HmacSha256(HmacSha256(k, "us-east-1"), "s3"), "aws4_request");
    return ChunkSigning{"20130524T000000Z", "20130524/us-east-1/s3/aws4_request", k, kSeed};
  }();
  return signing;
}

struct Outcome {
  Status status;
  std::string out;
  AwsChunkedDecoder decoder;
};

// Decodes |body| fed in pieces of |step| bytes (0: whole), then Finish.
Outcome Decode(ChunkedMode mode, std::string_view body, size_t step) {
  Outcome o{Status::Ok(), "",
            AwsChunkedDecoder(mode, Signing(), mode == ChunkedMode::kSigned ? "" : kTrailer)};
  if (step == 0) step = body.size() + 1;
  for (size_t at = 0; at < body.size() && o.status.ok(); at += step)
    o.status = o.decoder.Feed(body.substr(at, step), o.out);
  if (o.status.ok()) o.status = o.decoder.Finish();
  return o;
}

void CheckOutcome(const Outcome& o) {
  if (o.status.ok()) {
    FUZZ_CHECK(o.decoder.done(), "Finish was Ok before the end");
    FUZZ_CHECK(o.decoder.decoded_bytes() == o.out.size(), "decoded_bytes is not the output size");
    for (const auto& [name, value] : o.decoder.trailers())
      FUZZ_CHECK(name == kTrailer, "an undeclared trailer passed: " + name);
    return;
  }
  Reason r = o.status.reason();
  bool known = r == Reason::kIncompleteBody || r == Reason::kInvalidChunkSizeError ||
               r == Reason::kInvalidRequest || r == Reason::kIncompleteSignature ||
               r == Reason::kMalformedTrailerError || r == Reason::kSignatureDoesNotMatch;
  FUZZ_CHECK(known && o.status.code() != Code::kInternal, o.status.ToString());
}

void CheckSame(const Outcome& a, const Outcome& b, const char* what) {
  FUZZ_CHECK(a.status.ok() == b.status.ok() && a.status.message() == b.status.message(),
             std::string(what) + ": " + a.status.ToString() + " vs " + b.status.ToString());
  FUZZ_CHECK(a.out == b.out, std::string(what) + ": the output differs");
  FUZZ_CHECK(a.decoder.trailers() == b.decoder.trailers(), std::string(what) + ": trailers");
}

std::string Encode(ChunkedMode mode, std::string_view payload, size_t chunk,
                   const std::string& checksum) {
  std::string out, previous = kSeed;
  auto add_chunk = [&](std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx", data.size());
    out += size;
    if (mode != ChunkedMode::kUnsignedWithTrailer) {
      previous = HexEncode(
          HmacSha256(Signing().signing_key, "AWS4-HMAC-SHA256-PAYLOAD\n" + Signing().amz_date +
                                                "\n" + Signing().scope + "\n" + previous + "\n" +
                                                Sha256Hex("") + "\n" + Sha256Hex(data)));
      out += ";chunk-signature=" + previous;
    }
    out += "\r\n";
    if (!data.empty()) out += std::string(data) + "\r\n";
  };
  for (size_t i = 0; i < payload.size(); i += chunk) add_chunk(payload.substr(i, chunk));
  add_chunk("");
  if (mode != ChunkedMode::kSigned) out += std::string(kTrailer) + ":" + checksum + "\r\n";
  if (mode == ChunkedMode::kSignedWithTrailer)
    out += "x-amz-trailer-signature:" +
           HexEncode(HmacSha256(Signing().signing_key,
                                "AWS4-HMAC-SHA256-TRAILER\n" + Signing().amz_date + "\n" +
                                    Signing().scope + "\n" + previous + "\n" +
                                    Sha256Hex(std::string(kTrailer) + ":" + checksum + "\n"))) +
           "\r\n";
  return out + "\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input = fuzz::AsText(data + 1, size - 1);
  uint8_t flags = data[0];
  if ((flags & 3) != 3) {
    auto mode = static_cast<ChunkedMode>(flags & 3);
    Outcome whole = Decode(mode, input, 0);
    CheckOutcome(whole);
    CheckSame(whole, Decode(mode, input, 1 + (flags >> 2)), "cut otherwise");
    if (input.size() <= 4096) CheckSame(whole, Decode(mode, input, 1), "byte by byte");
    return 0;
  }
  auto mode = static_cast<ChunkedMode>((flags >> 2) % 3);
  if (input.empty()) return 0;
  size_t chunk = 1 + static_cast<uint8_t>(input[0]) * 37;
  std::string_view payload = input.substr(1);
  std::string checksum = Base64Encode(payload.substr(0, 4));
  std::string body = Encode(mode, payload, chunk, checksum);
  Outcome o = Decode(mode, body, 1 + (flags >> 4));
  FUZZ_CHECK(o.status.ok(), "an encoded body was refused: " + o.status.ToString());
  FUZZ_CHECK(o.out == payload, "an encoded body decoded to other bytes");
  if (mode != ChunkedMode::kSigned)
    FUZZ_CHECK(o.decoder.trailers() == HeaderList({{kTrailer, checksum}}), "the trailer differs");
  size_t cut = (payload.size() * 131 + flags) % body.size();
  Outcome cut_short = Decode(mode, std::string_view(body).substr(0, cut), 0);
  FUZZ_CHECK(cut_short.status.reason() == Reason::kIncompleteBody,
             "a body cut at " + std::to_string(cut) + ": " + cut_short.status.ToString());
  if (mode != ChunkedMode::kUnsignedWithTrailer) {
    std::string changed = body;
    changed[cut] = static_cast<char>(changed[cut] ^ (1 + (flags >> 5)));
    Outcome bad = Decode(mode, changed, 0);
    FUZZ_CHECK(!bad.status.ok(),
               "a signed body with byte " + std::to_string(cut) + " changed passed");
    CheckOutcome(bad);
  }
  return 0;
}
