#pragma once

// A test-side encoder of S3's aws-chunked request bodies, written from AWS's
// specification ("Signature Calculations for the Authorization Header:
// Transferring Payload in Multiple Chunks" and "... Including Trailing
// Headers"), not from the server's decoder, so that the two check each other.
// Header-only: the unit tests of src/aws and the end-to-end tests share it.

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "aws/aws_chunked.h"
#include "aws/sigv4.h"
#include "core/encoding.h"

namespace lastframe::testing {

// SigV4's signing key for |date| ("20130524"), region and service: the HMAC
// chain from "AWS4" + |secret|, raw bytes.
inline std::string SigV4SigningKey(std::string_view secret, std::string_view date,
                                   std::string_view region, std::string_view service) {
  std::string k = aws::HmacSha256("AWS4" + std::string(secret), date);
  k = aws::HmacSha256(k, region);
  k = aws::HmacSha256(k, service);
  return aws::HmacSha256(k, "aws4_request");
}

// Frames a payload as |mode| asks, signing each chunk (signed modes) with the
// previous signature, starting from |signing|'s seed.
class AwsChunkedEncoder {
 public:
  AwsChunkedEncoder(aws::ChunkedMode mode, aws::ChunkSigning signing)
      : mode_(mode), signing_(std::move(signing)), previous_(signing_.seed_signature) {}

  // One chunk of |data| (the final, empty one when |data| is empty: End adds it).
  std::string Chunk(std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx", data.size());
    if (mode_ == aws::ChunkedMode::kUnsignedWithTrailer)
      return std::string(size) + "\r\n" + std::string(data) + (data.empty() ? "" : "\r\n");
    previous_ = Sign("AWS4-HMAC-SHA256-PAYLOAD\n" + signing_.amz_date + "\n" + signing_.scope +
                     "\n" + previous_ + "\n" + aws::Sha256Hex("") + "\n" + aws::Sha256Hex(data));
    return std::string(size) + ";chunk-signature=" + previous_ + "\r\n" + std::string(data) +
           (data.empty() ? "" : "\r\n");
  }
  // The final chunk and the trailer section (its closing empty line included).
  std::string End(const aws::HeaderList& trailers = {}) {
    std::string out = Chunk("");
    std::string canonical;
    auto sorted = trailers;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [k, v] : trailers) out += k + ":" + v + "\r\n";
    for (const auto& [k, v] : sorted) canonical += k + ":" + v + "\n";
    if (mode_ == aws::ChunkedMode::kSignedWithTrailer)
      out += "x-amz-trailer-signature:" +
             Sign("AWS4-HMAC-SHA256-TRAILER\n" + signing_.amz_date + "\n" + signing_.scope + "\n" +
                  previous_ + "\n" + aws::Sha256Hex(canonical)) +
             "\r\n";
    return out + "\r\n";
  }
  // |payload| in chunks of |chunk| bytes (the last may be shorter), then End.
  std::string Encode(std::string_view payload, size_t chunk, const aws::HeaderList& trailers = {}) {
    std::string out;
    for (size_t i = 0; i < payload.size(); i += chunk) out += Chunk(payload.substr(i, chunk));
    return out + End(trailers);
  }

 private:
  std::string Sign(const std::string& string_to_sign) const {
    return HexEncode(aws::HmacSha256(signing_.signing_key, string_to_sign));
  }
  aws::ChunkedMode mode_;
  aws::ChunkSigning signing_;
  std::string previous_;
};

}  // namespace lastframe::testing
