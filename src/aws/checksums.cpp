#include "aws/checksums.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "aws/checksums_internal.h"
#include "core/encoding.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace lastframe::aws {
namespace {

// ---------------------------------------------------------------------------
// Reflected CRCs over GF(2). T holds the register; kPoly is the reflected
// polynomial. All three of S3's CRCs start from all ones and end XORed with
// all ones, which CombineCrc relies on.

template <typename T>
constexpr int kWidth = static_cast<int>(sizeof(T) * 8);

// Slice-by-8: t[k][b] is the CRC register after byte b followed by k zero
// bytes, so eight bytes fold into the register with eight independent loads.
template <typename T>
using SliceTables = std::array<std::array<T, 256>, 8>;

template <typename T, T kPoly>
constexpr SliceTables<T> MakeSliceTables() {
  SliceTables<T> t{};
  for (unsigned b = 0; b < 256; ++b) {
    T crc = b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ kPoly : crc >> 1;
    t[0][b] = crc;
  }
  for (int k = 1; k < 8; ++k)
    for (unsigned b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  return t;
}

template <typename T, T kPoly>
constexpr SliceTables<T> kSliceTables = MakeSliceTables<T, kPoly>();

// Advances the register |reg| (not a finished CRC) over n bytes at p.
template <typename T, T kPoly>
T SliceBy8(T reg, const unsigned char* p, size_t n) {
  const SliceTables<T>& t = kSliceTables<T, kPoly>;
  if constexpr (std::endian::native == std::endian::little) {
    while (n >= 8) {
      uint64_t v;
      std::memcpy(&v, p, 8);
      v ^= reg;  // the register's bytes line up with the first bytes of input
      reg = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^
            t[4][(v >> 24) & 0xff] ^ t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^
            t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
      p += 8;
      n -= 8;
    }
  }
  for (; n > 0; --n, ++p) reg = (reg >> 8) ^ t[0][(reg ^ *p) & 0xff];
  return reg;
}

// a(x) * b(x) mod P(x), both reflected: the top bit is x^0.
template <typename T, T kPoly>
constexpr T MultModP(T a, T b) {
  T product = 0;
  for (T m = T{1} << (kWidth<T> - 1); m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

// x^(2^k) mod P for k in [0, 67): enough for x^(8n) with any 64-bit n.
template <typename T, T kPoly>
constexpr std::array<T, 67> MakePowersOfTwo() {
  std::array<T, 67> t{};
  T p = T{1} << (kWidth<T> - 2);  // x^1
  for (T& entry : t) {
    entry = p;
    p = MultModP<T, kPoly>(p, p);
  }
  return t;
}

template <typename T, T kPoly>
constexpr std::array<T, 67> kPowersOfTwo = MakePowersOfTwo<T, kPoly>();

// The CRC of A||B from the finished CRCs of A and B: shifting A's CRC past
// n zero bytes is a multiplication by x^(8n) mod P. The initial value's and
// the final XOR's contributions cancel because the two are equal.
template <typename T, T kPoly>
T Combine(T crc_a, T crc_b, uint64_t b_bytes) {
  const std::array<T, 67>& powers = kPowersOfTwo<T, kPoly>;
  T shift = T{1} << (kWidth<T> - 1);  // x^0
  for (int k = 3; b_bytes != 0; b_bytes >>= 1, ++k)
    if (b_bytes & 1) shift = MultModP<T, kPoly>(powers[k], shift);
  return MultModP<T, kPoly>(shift, crc_a) ^ crc_b;
}

constexpr uint32_t kCrc32Poly = 0xedb88320;              // CRC-32/ISO-HDLC, reflected
constexpr uint32_t kCrc32cPoly = 0x82f63b78;             // CRC-32/ISCSI (Castagnoli), reflected
constexpr uint64_t kCrc64NvmePoly = 0x9a6c9329ac4bc9b5;  // CRC-64/NVME, reflected

uint32_t Crc32(uint32_t crc, std::string_view bytes) {
  // zlib's braided CRC-32 (twice as fast as slice-by-8 here); crc32_z takes
  // a size_t length.
  return static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  uint64_t reg = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    reg = _mm_crc32_u64(reg, v);
  }
  auto reg32 = static_cast<uint32_t>(reg);
  for (; n > 0; --n, ++p) reg32 = _mm_crc32_u8(reg32, *p);
  return ~reg32;
}
#endif

bool DetectSse42() {
#if defined(__x86_64__)
  __builtin_cpu_init();  // needed where this runs before main (a static initialiser)
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

uint32_t Crc32c(uint32_t crc, std::string_view bytes) {
#if defined(__x86_64__)
  static const bool kSse42 = DetectSse42();
  if (kSse42) return Crc32cSse42(crc, bytes);
#endif
  return internal::Crc32cPortable(crc, bytes);
}

uint64_t UpdateCrc(ChecksumAlgorithm a, uint64_t crc, std::string_view bytes) {
  switch (a) {
    case ChecksumAlgorithm::kCrc32:
      return Crc32(static_cast<uint32_t>(crc), bytes);
    case ChecksumAlgorithm::kCrc32c:
      return Crc32c(static_cast<uint32_t>(crc), bytes);
    case ChecksumAlgorithm::kCrc64Nvme:
      return internal::Crc64Nvme(crc, bytes);
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      break;
  }
  return 0;
}

std::string BigEndian(uint64_t value, size_t bytes) {
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i)
    out[bytes - 1 - i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

uint64_t FromBigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

// ---------------------------------------------------------------------------

struct AlgorithmInfo {
  ChecksumAlgorithm algorithm;
  std::string_view name;
  std::string_view header;
  std::string_view xml;
  size_t bytes;
};

constexpr AlgorithmInfo kInfo[] = {
    {ChecksumAlgorithm::kCrc32, "CRC32", "x-amz-checksum-crc32", "ChecksumCRC32", 4},
    {ChecksumAlgorithm::kCrc32c, "CRC32C", "x-amz-checksum-crc32c", "ChecksumCRC32C", 4},
    {ChecksumAlgorithm::kCrc64Nvme, "CRC64NVME", "x-amz-checksum-crc64nvme", "ChecksumCRC64NVME",
     8},
    {ChecksumAlgorithm::kSha1, "SHA1", "x-amz-checksum-sha1", "ChecksumSHA1", 20},
    {ChecksumAlgorithm::kSha256, "SHA256", "x-amz-checksum-sha256", "ChecksumSHA256", 32},
};

constexpr bool InfoFollowsEnum() {
  for (size_t i = 0; i < std::size(kInfo); ++i)
    if (static_cast<size_t>(kInfo[i].algorithm) != i ||
        kChecksumAlgorithms[i] != kInfo[i].algorithm)
      return false;
  return std::size(kInfo) == std::size(kChecksumAlgorithms);
}
static_assert(InfoFollowsEnum(), "kInfo is indexed by ChecksumAlgorithm");

const AlgorithmInfo& Info(ChecksumAlgorithm a) { return kInfo[static_cast<size_t>(a)]; }

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

const EVP_MD* Md(ChecksumAlgorithm a) {
  return a == ChecksumAlgorithm::kSha1 ? EVP_sha1() : EVP_sha256();
}

// OpenSSL's digest calls fail only on a broken context or an allocation
// failure inside it: a broken invariant, not bad input.
void CheckEvp(int ok, const char* what) {
  if (ok == 1) return;
  std::fprintf(stderr, "lastframe::aws::Checksum: %s failed\n", what);
  std::abort();
}

}  // namespace

namespace internal {

uint32_t Crc32cPortable(uint32_t crc, std::string_view bytes) {
  return ~SliceBy8<uint32_t, kCrc32cPoly>(
      ~crc, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

bool Crc32cHardwareAvailable() {
  static const bool kSse42 = DetectSse42();
  return kSse42;
}

uint32_t Crc32cHardware(uint32_t crc, std::string_view bytes) {
#if defined(__x86_64__)
  return Crc32cSse42(crc, bytes);
#else
  return Crc32cPortable(crc, bytes);
#endif
}

uint64_t Crc64Nvme(uint64_t crc, std::string_view bytes) {
  return ~SliceBy8<uint64_t, kCrc64NvmePoly>(
      ~crc, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

}  // namespace internal

std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name) {
  for (const AlgorithmInfo& info : kInfo)
    if (EqualsIgnoringCase(name, info.name)) return info.algorithm;
  return std::nullopt;
}

std::string_view ChecksumName(ChecksumAlgorithm a) { return Info(a).name; }
std::string_view ChecksumHeaderName(ChecksumAlgorithm a) { return Info(a).header; }
std::string_view ChecksumXmlName(ChecksumAlgorithm a) { return Info(a).xml; }
size_t ChecksumBytes(ChecksumAlgorithm a) { return Info(a).bytes; }

bool IsCrc(ChecksumAlgorithm a) {
  return a == ChecksumAlgorithm::kCrc32 || a == ChecksumAlgorithm::kCrc32c ||
         a == ChecksumAlgorithm::kCrc64Nvme;
}

void Checksum::EvpCtxDeleter::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

Checksum::Checksum(ChecksumAlgorithm a) : algorithm_(a) {
  if (IsCrc(a)) return;
  md_.reset(EVP_MD_CTX_new());
  if (!md_) throw std::bad_alloc();
  CheckEvp(EVP_DigestInit_ex(md_.get(), Md(a), nullptr), "EVP_DigestInit_ex");
}

void Checksum::Update(std::string_view bytes) {
  if (IsCrc(algorithm_)) {
    crc_ = UpdateCrc(algorithm_, crc_, bytes);
    return;
  }
  CheckEvp(EVP_DigestUpdate(md_.get(), bytes.data(), bytes.size()), "EVP_DigestUpdate");
}

std::string Checksum::Finish() {
  if (IsCrc(algorithm_)) {
    std::string out = BigEndian(crc_, ChecksumBytes(algorithm_));
    crc_ = 0;
    return out;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  CheckEvp(EVP_DigestFinal_ex(md_.get(), digest, &size), "EVP_DigestFinal_ex");
  CheckEvp(EVP_DigestInit_ex(md_.get(), Md(algorithm_), nullptr), "EVP_DigestInit_ex");
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string ChecksumOf(ChecksumAlgorithm a, std::string_view bytes) {
  if (IsCrc(a)) return BigEndian(UpdateCrc(a, 0, bytes), ChecksumBytes(a));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  CheckEvp(EVP_Digest(bytes.data(), bytes.size(), digest, &size, Md(a), nullptr), "EVP_Digest");
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string CombineCrc(ChecksumAlgorithm a, std::string_view crc_a, std::string_view crc_b,
                       uint64_t b_bytes) {
  if (!IsCrc(a) || crc_a.size() != ChecksumBytes(a) || crc_b.size() != ChecksumBytes(a)) return "";
  uint64_t x = FromBigEndian(crc_a), y = FromBigEndian(crc_b), combined = 0;
  switch (a) {
    case ChecksumAlgorithm::kCrc32:
      combined = Combine<uint32_t, kCrc32Poly>(static_cast<uint32_t>(x), static_cast<uint32_t>(y),
                                               b_bytes);
      break;
    case ChecksumAlgorithm::kCrc32c:
      combined = Combine<uint32_t, kCrc32cPoly>(static_cast<uint32_t>(x), static_cast<uint32_t>(y),
                                                b_bytes);
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      combined = Combine<uint64_t, kCrc64NvmePoly>(x, y, b_bytes);
      break;
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      break;
  }
  return BigEndian(combined, ChecksumBytes(a));
}

std::optional<std::string> DecodeChecksumValue(ChecksumAlgorithm a, std::string_view base64) {
  std::optional<std::string> raw = Base64Decode(base64);
  if (!raw || raw->size() != ChecksumBytes(a)) return std::nullopt;
  return raw;
}

}  // namespace lastframe::aws
