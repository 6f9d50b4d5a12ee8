#pragma once

// S3's "aws-chunked" request bodies (Content-Encoding: aws-chunked), decoded
// incrementally. Three framings, named by x-amz-content-sha256:
//
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD (kSigned)
//     hex-size;chunk-signature=SIG CRLF data CRLF ... 0;chunk-signature=SIG CRLF CRLF
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (kSignedWithTrailer)
//     the same chunks, then after the final one's line: trailer lines
//     ("x-amz-checksum-crc32:BASE64" CRLF), "x-amz-trailer-signature:SIG" CRLF, CRLF
//   STREAMING-UNSIGNED-PAYLOAD-TRAILER (kUnsignedWithTrailer)
//     hex-size CRLF data CRLF ... 0 CRLF, trailer lines, CRLF
//
// Each chunk signature signs "AWS4-HMAC-SHA256-PAYLOAD" with the previous
// signature (see ChunkSigning in sigv4.h); the trailer signature signs
// "AWS4-HMAC-SHA256-TRAILER\n" + date + "\n" + scope + "\n" + the final chunk's
// signature + "\n" + hex SHA-256 of the trailers in canonical form: each
// "name:value\n", names lower case and sorted, values trimmed (blank runs folded),
// as aws-c-auth signs them.
//
// Strict where every client we know of is (CRLF after chunk lines and data, the
// closing empty line required, so that a cut body is never taken for a whole
// one); tolerant where some are not: trailer lines may end in LF alone, and
// unsigned chunk lines may carry chunk extensions (ignored, as RFC 9112 asks).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/sigv4.h"
#include "core/status.h"

// OpenSSL's digest context, declared rather than included so that OpenSSL stays
// a private dependency of lf_aws.
struct evp_md_ctx_st;

namespace lastframe::aws {

enum class ChunkedMode : uint8_t { kSigned, kSignedWithTrailer, kUnsignedWithTrailer };

// The mode that x-amz-content-sha256 names (exactly, case-sensitive, as S3
// reads it); nullopt for anything else: a hex hash, UNSIGNED-PAYLOAD, or a
// STREAMING-* value this decoder does not verify (STREAMING-AWS4-ECDSA-P256-SHA256-*).
std::optional<ChunkedMode> ParseChunkedMode(std::string_view content_sha256);

// The x-amz-content-sha256 value of |mode| ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"...).
std::string_view ChunkedModeName(ChunkedMode mode);

// The bounds the decoder holds a body to.
inline constexpr size_t kMaxChunkLineBytes = 4096;        // a chunk-size line, without CRLF
inline constexpr size_t kMaxChunkSizeDigits = 16;         // hex digits of a chunk size
inline constexpr size_t kMaxTrailerSectionBytes = 16384;  // all trailer lines, with their ends
inline constexpr size_t kMaxTrailerLines = 8;             // trailer lines, with the signature's

// Decodes one aws-chunked body pushed in pieces of any size (a socket's reads),
// checking each chunk's signature as its last byte arrives. A chunk's data is
// never held: it goes to |out| as it arrives, hashed on the way, so a chunk may
// be any size. Data appended to |out| is only vouched for once Finish returns
// Ok: on any error the caller must throw away everything decoded.
//
// Errors (Status, final: every later call returns the same one):
//   400 (Code::kInvalidArgument) with Reason
//     kIncompleteBody         the body ended before its end (Finish)
//     kInvalidChunkSizeError  a chunk size that is not 1-16 hex digits, or sizes past 2^64
//     kInvalidRequest         other framing: a chunk line over kMaxChunkLineBytes, a missing
//                             or malformed chunk-signature, no CRLF after a line or the
//                             data, bytes after the end, a declared trailer in kSigned
//     kIncompleteSignature    a chunk or trailer signature that is not 64 hex digits
//     kMalformedTrailerError  the trailer section: a line that is not "name:value", over its
//                             bounds, an undeclared, repeated or missing trailer, no
//                             x-amz-trailer-signature (kSignedWithTrailer) or one elsewhere
//   403 (Code::kPermissionDenied) with Reason kSignatureDoesNotMatch: a chunk or trailer
//     signature that does not match.
//   Code::kInternal: a signed mode constructed without |signing| (a bug in the caller).
// Messages say what was wrong and where (chunk number, byte offset in the body).
//
// Thread-compatible. Movable, not copyable.
class AwsChunkedDecoder {
 public:
  // |signing| is required for the signed modes (ignored for kUnsignedWithTrailer).
  // |declared_trailer|: the x-amz-trailer header's value (e.g.
  // "x-amz-checksum-crc32"), or "" if none was sent. In the trailer modes the
  // trailer section must carry exactly the headers it names (a comma-separated
  // list is read as HTTP's Trailer header is, names compared in lower case),
  // besides x-amz-trailer-signature. kSigned takes no trailer: it must be "".
  AwsChunkedDecoder(ChunkedMode mode, std::optional<ChunkSigning> signing,
                    std::string declared_trailer);
  ~AwsChunkedDecoder();
  AwsChunkedDecoder(AwsChunkedDecoder&&) noexcept;
  AwsChunkedDecoder& operator=(AwsChunkedDecoder&&) noexcept;
  AwsChunkedDecoder(const AwsChunkedDecoder&) = delete;
  AwsChunkedDecoder& operator=(const AwsChunkedDecoder&) = delete;

  // Decodes the next body bytes (any split, down to one byte at a time),
  // appending payload bytes to |out|. An error is final (later calls return it
  // again and decode nothing).
  Status Feed(std::string_view data, std::string& out);
  // The body ended: Ok only if the final chunk (and the trailer section, with
  // its signature where the mode has one) arrived whole and verified and
  // nothing followed it. Otherwise kIncompleteBody, or the error Feed returned.
  Status Finish();

  // True once the body's last byte (the closing empty line) has been decoded.
  bool done() const { return state_ == State::kDone; }
  // The trailer headers received (lower-case names, values trimmed), without
  // x-amz-trailer-signature, in the order sent. Complete once done().
  const HeaderList& trailers() const { return trailers_; }
  // Payload bytes decoded so far (appended to |out| by Feed).
  uint64_t decoded_bytes() const { return decoded_bytes_; }

 private:
  enum class State : uint8_t { kChunkLine, kData, kDataCr, kDataLf, kTrailer, kDone, kFailed };
  struct DigestFree {
    void operator()(evp_md_ctx_st* ctx) const;
  };

  bool signed_mode() const { return mode_ != ChunkedMode::kUnsignedWithTrailer; }
  Status Init(std::optional<ChunkSigning> signing, std::string_view declared_trailer);
  Status Fail(Status status);
  // Each takes bytes from the front of |data| (at least one unless failing).
  Status ReadChunkLine(std::string_view& data);
  Status ReadData(std::string_view& data, std::string& out);
  Status ReadTrailer(std::string_view& data);
  Status OnChunkLine();
  Status OnChunkDataEnd();
  Status OnTrailerLine(std::string_view line);
  Status OnTrailerEnd();
  // "chunk 3 (byte 66000 of the body)".
  std::string Where() const;

  ChunkedMode mode_;
  std::optional<ChunkSigning> signing_;
  std::vector<std::string> declared_;  // lower-case trailer names, each once
  State state_ = State::kChunkLine;
  Status error_;

  std::string line_;              // the line being read, without its end
  uint64_t offset_ = 0;           // body bytes consumed
  uint64_t line_offset_ = 0;      // where the current chunk line (or trailer section) began
  uint64_t chunk_number_ = 1;     // 1-based, of the chunk being read
  uint64_t chunk_size_ = 0;       // the current chunk's
  uint64_t chunk_remaining_ = 0;  // data bytes left in the current chunk
  uint64_t decoded_bytes_ = 0;
  std::string chunk_signature_;  // the current chunk's, as sent
  std::string previous_signature_;
  std::unique_ptr<evp_md_ctx_st, DigestFree> digest_;  // SHA-256 of the current chunk

  size_t trailer_bytes_ = 0;
  size_t trailer_lines_ = 0;
  HeaderList trailers_;
  std::optional<std::string> trailer_signature_;
};

}  // namespace lastframe::aws
