#pragma once

// S3's "flexible checksums": the five algorithms a client may name in
// x-amz-sdk-checksum-algorithm (or x-amz-checksum-algorithm), their names in
// headers and XML, incremental digests, the CRC combination that makes a
// multipart upload's full-object checksum out of its parts' CRCs, and the
// check of a base64 value as sent in x-amz-checksum-* headers, trailers and XML.
// Pure functions and one value type; no I/O. Thread-compatible.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

// OpenSSL's digest context (SHA1, SHA256), declared rather than included so
// that OpenSSL stays a private dependency of lf_aws.
struct evp_md_ctx_st;

namespace lastframe::aws {

enum class ChecksumAlgorithm : uint8_t { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };

// Every algorithm, in declaration order.
inline constexpr ChecksumAlgorithm kChecksumAlgorithms[] = {
    ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
    ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256};

// "CRC32", "CRC32C", "CRC64NVME", "SHA1" or "SHA256" in any case, as S3 reads
// x-amz-sdk-checksum-algorithm and x-amz-checksum-algorithm; nullopt for
// anything else (no blanks are trimmed).
std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name);
// "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256".
std::string_view ChecksumName(ChecksumAlgorithm a);
// The header (and trailer) that carries the value: "x-amz-checksum-crc32",
// "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1",
// "x-amz-checksum-sha256".
std::string_view ChecksumHeaderName(ChecksumAlgorithm a);
// The XML element: "ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME",
// "ChecksumSHA1", "ChecksumSHA256".
std::string_view ChecksumXmlName(ChecksumAlgorithm a);
// The raw digest's size in bytes: 4, 4, 8, 20, 32.
size_t ChecksumBytes(ChecksumAlgorithm a);
// True for CRC32, CRC32C and CRC64NVME (the algorithms CombineCrc accepts).
bool IsCrc(ChecksumAlgorithm a);

// An incremental digest: Update any number of times, then Finish. Movable, not
// copyable; a moved-from Checksum may only be assigned to or destroyed.
class Checksum {
 public:
  explicit Checksum(ChecksumAlgorithm a);
  Checksum(Checksum&&) noexcept = default;
  Checksum& operator=(Checksum&&) noexcept = default;
  ~Checksum() = default;

  // Adds |bytes| to the digest.
  void Update(std::string_view bytes);
  // The raw digest (ChecksumBytes(algorithm()) bytes; a CRC big-endian, as S3
  // base64-encodes it) of everything Updated since construction or since the
  // last Finish. The Checksum then starts afresh, as if newly constructed.
  std::string Finish();
  ChecksumAlgorithm algorithm() const { return algorithm_; }

 private:
  struct EvpCtxDeleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };

  ChecksumAlgorithm algorithm_;
  uint64_t crc_ = 0;                                  // the CRC of the bytes so far (CRCs)
  std::unique_ptr<evp_md_ctx_st, EvpCtxDeleter> md_;  // SHA1 and SHA256 only
};

// The raw digest of |bytes|, as Checksum would make it.
std::string ChecksumOf(ChecksumAlgorithm a, std::string_view bytes);

// The raw CRC of A||B, from the raw CRCs of A and of B (as Finish makes them)
// and B's length, without the bytes: zlib's crc32_combine, for CRC32C and
// CRC64NVME too. S3 builds a multipart upload's full-object checksum so.
// Returns "" unless |a| is a CRC and both CRCs are ChecksumBytes(a) long.
std::string CombineCrc(ChecksumAlgorithm a, std::string_view crc_a, std::string_view crc_b,
                       uint64_t b_bytes);

// Checks a checksum value as sent in x-amz-checksum-* (headers, trailers,
// XML): padded standard base64 (core/encoding.h's strict Base64Decode) of
// exactly ChecksumBytes(a) bytes. Returns the raw digest, or nullopt.
std::optional<std::string> DecodeChecksumValue(ChecksumAlgorithm a, std::string_view base64);

}  // namespace lastframe::aws
