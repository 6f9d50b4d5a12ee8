#include "aws/checksums.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "aws/checksums_internal.h"
#include "core/encoding.h"

namespace lastframe::aws {
namespace {

using A = ChecksumAlgorithm;

constexpr A kCrcs[] = {A::kCrc32, A::kCrc32c, A::kCrc64Nvme};

// The obvious bit-at-a-time reflected CRC (init and xorout all ones): an
// implementation too simple to share a bug with the table and SSE kernels.
template <typename T>
T BitwiseCrc(T poly, std::string_view bytes) {
  T reg = static_cast<T>(~T{0});
  for (unsigned char c : bytes) {
    reg ^= c;
    for (int i = 0; i < 8; ++i) reg = (reg & 1) ? static_cast<T>((reg >> 1) ^ poly) : reg >> 1;
  }
  return static_cast<T>(~reg);
}

uint64_t ReferenceCrc(A a, std::string_view bytes) {
  switch (a) {
    case A::kCrc32:
      return BitwiseCrc<uint32_t>(0xedb88320, bytes);
    case A::kCrc32c:
      return BitwiseCrc<uint32_t>(0x82f63b78, bytes);
    default:
      return BitwiseCrc<uint64_t>(0x9a6c9329ac4bc9b5, bytes);
  }
}

// A raw big-endian CRC as a number.
uint64_t Number(std::string_view raw) {
  uint64_t v = 0;
  for (char c : raw) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string Base64Of(A a, std::string_view bytes) { return Base64Encode(ChecksumOf(a, bytes)); }

TEST(Checksums, CrcCheckValues) {
  // The catalogue's check value of each CRC is its CRC of "123456789".
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32, "123456789")), 0xCBF43926u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32c, "123456789")), 0xE3069283u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc64Nvme, "123456789")), 0xAE8B14860A799888u);
  // Big-endian bytes, as S3 base64-encodes them.
  EXPECT_EQ(HexEncode(ChecksumOf(A::kCrc32, "123456789")), "cbf43926");
  EXPECT_EQ(HexEncode(ChecksumOf(A::kCrc64Nvme, "123456789")), "ae8b14860a799888");
  for (A a : kCrcs) EXPECT_EQ(Number(ChecksumOf(a, "")), 0u) << ChecksumName(a);
}

TEST(Checksums, ShaKnownVectors) {
  // FIPS 180-2's examples.
  EXPECT_EQ(HexEncode(ChecksumOf(A::kSha1, "abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HexEncode(ChecksumOf(A::kSha256, "abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(HexEncode(ChecksumOf(A::kSha1, two_blocks)),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(HexEncode(ChecksumOf(A::kSha256, two_blocks)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(HexEncode(ChecksumOf(A::kSha256, "")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Checksums, AwsSdkExamples) {
  // aws-sdk-js-v3's middleware-flexible-checksums tests: the x-amz-checksum-*
  // values its S3 client sends for these bodies (awscli's and the Java SDK's
  // tests carry the same "Hello world" values).
  struct Case {
    std::string_view body;
    A algorithm;
    std::string_view base64;
  };
  const Case cases[] = {
      {"", A::kCrc32, "AAAAAA=="},
      {"abc", A::kCrc32, "NSRBwg=="},
      {"Hello world", A::kCrc32, "i9aeUg=="},
      {"", A::kCrc32c, "AAAAAA=="},
      {"abc", A::kCrc32c, "Nks/tw=="},
      {"Hello world", A::kCrc32c, "crUfeA=="},
      {"", A::kCrc64Nvme, "AAAAAAAAAAA="},
      {"abc", A::kCrc64Nvme, "BeXKuz/B+us="},
      {"Hello world", A::kCrc64Nvme, "OOJZ0D8xKts="},
      {"", A::kSha1, "2jmj7l5rSw0yVb/vlWAYkK/YBwk="},
      {"abc", A::kSha1, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="},
      {"Hello world", A::kSha1, "e1AsOh9IyGCa4hLN+2Od7jlnP14="},
      {"", A::kSha256, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
      {"abc", A::kSha256, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="},
      {"Hello world", A::kSha256, "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw="},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Base64Of(c.algorithm, c.body), c.base64)
        << ChecksumName(c.algorithm) << " of '" << c.body << "'";
    EXPECT_EQ(DecodeChecksumValue(c.algorithm, c.base64), ChecksumOf(c.algorithm, c.body));
  }
}

TEST(Checksums, AwsCrtExamples) {
  // aws-c-s3's checksum tests (tests/s3_checksums_crc*_tests.c) and
  // aws-checksums' tests/crc64_test.c.
  const std::string abc = "abc";
  const std::string s448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string s896 =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
      "mnopqrsmnopqrstnopqrstu";
  const std::string million_a(1000000, 'a');
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32, abc)), 0x352441c2u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32, s448)), 0x171a3f5fu);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32, s896)), 0x191f3349u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32, million_a)), 0xdc25bfbcu);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32c, abc)), 0x364b3fb7u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32c, s448)), 0x071325f5u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32c, s896)), 0x3f60a4b9u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc32c, million_a)), 0x436fe240u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc64Nvme, "aaaaaaaaaa")), 0x0C1A80036D65C555u);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc64Nvme, "Hello world")), 0x38E259D03F312ADBu);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc64Nvme, std::string(32, '\0'))), 0xCF3473434D4ECF3Bu);
  std::string zero_to_31;
  for (int i = 0; i < 32; ++i) zero_to_31 += static_cast<char>(i);
  EXPECT_EQ(Number(ChecksumOf(A::kCrc64Nvme, zero_to_31)), 0xB9D9D4A8492CBD7Fu);
}

TEST(Checksums, CrcsMatchBitwiseReferenceAtEveryLengthAndAlignment) {
  // Lengths 0..300 from offsets 0..15 cover the slice-by-8 and 8-byte SSE
  // loops, their byte-wise tails and unaligned starts.
  std::mt19937_64 rng(1);
  const std::string buffer = RandomBytes(rng, 16 + 300);
  for (A a : kCrcs) {
    for (size_t offset = 0; offset < 16; ++offset) {
      for (size_t len = 0; len <= 300; ++len) {
        std::string_view bytes(buffer.data() + offset, len);
        ASSERT_EQ(Number(ChecksumOf(a, bytes)), ReferenceCrc(a, bytes))
            << ChecksumName(a) << " offset " << offset << " length " << len;
      }
    }
  }
}

TEST(Checksums, Crc32cKernelsAgree) {
  // The library uses one CRC32C kernel on this CPU; check both, whichever it is.
  std::mt19937_64 rng(2);
  const std::string buffer = RandomBytes(rng, 4096 + 16);
  const bool hardware = internal::Crc32cHardwareAvailable();
  if (!hardware) std::cout << "no SSE4.2 here: only the portable CRC32C kernel is checked\n";
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t len : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 1000, 4093, 4096}) {
      std::string_view bytes(buffer.data() + offset, len);
      const uint32_t expected = BitwiseCrc<uint32_t>(0x82f63b78, bytes);
      EXPECT_EQ(internal::Crc32cPortable(0, bytes), expected) << offset << " " << len;
      if (hardware) {
        EXPECT_EQ(internal::Crc32cHardware(0, bytes), expected) << offset << " " << len;
      }
      // Chained, as Checksum::Update chains them.
      const size_t half = len / 2;
      EXPECT_EQ(internal::Crc32cPortable(internal::Crc32cPortable(0, bytes.substr(0, half)),
                                         bytes.substr(half)),
                expected);
      if (hardware) {
        EXPECT_EQ(internal::Crc32cHardware(internal::Crc32cHardware(0, bytes.substr(0, half)),
                                           bytes.substr(half)),
                  expected);
      }
    }
  }
}

TEST(Checksums, IncrementalMatchesOneShot) {
  std::mt19937_64 rng(3);
  const std::string data = RandomBytes(rng, 10007);  // a prime: every piece ends unaligned
  for (A a : kChecksumAlgorithms) {
    const std::string whole = ChecksumOf(a, data);
    ASSERT_EQ(whole.size(), ChecksumBytes(a));

    // Odd piece sizes, cycling, so pieces start at every alignment.
    for (size_t piece : {1, 3, 7, 8, 9, 13, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1000, 4099}) {
      Checksum c(a);
      for (size_t pos = 0; pos < data.size(); pos += piece)
        c.Update(std::string_view(data).substr(pos, piece));
      EXPECT_EQ(c.Finish(), whole) << ChecksumName(a) << " in pieces of " << piece;
    }

    // Random split points, empty pieces included.
    for (int round = 0; round < 20; ++round) {
      Checksum c(a);
      size_t pos = 0;
      while (pos < data.size()) {
        const size_t piece = std::min<size_t>(rng() % 200, data.size() - pos);
        c.Update(std::string_view(data).substr(pos, piece));
        pos += piece;
      }
      EXPECT_EQ(c.Finish(), whole) << ChecksumName(a) << " round " << round;
    }

    Checksum nothing(a);
    nothing.Update("");
    EXPECT_EQ(nothing.Finish(), ChecksumOf(a, "")) << ChecksumName(a);
  }
}

TEST(Checksums, FinishStartsAfresh) {
  for (A a : kChecksumAlgorithms) {
    Checksum c(a);
    EXPECT_EQ(c.algorithm(), a);
    c.Update("Hello ");
    c.Update("world");
    EXPECT_EQ(c.Finish(), ChecksumOf(a, "Hello world")) << ChecksumName(a);
    c.Update("abc");
    EXPECT_EQ(c.Finish(), ChecksumOf(a, "abc")) << ChecksumName(a);
    EXPECT_EQ(c.Finish(), ChecksumOf(a, "")) << ChecksumName(a);
  }
}

TEST(Checksums, MovedChecksumCarriesItsState) {
  for (A a : kChecksumAlgorithms) {
    Checksum first(a);
    first.Update("Hello ");
    Checksum second(std::move(first));
    second.Update("world");
    EXPECT_EQ(second.algorithm(), a);
    EXPECT_EQ(second.Finish(), ChecksumOf(a, "Hello world")) << ChecksumName(a);

    Checksum third(A::kCrc32);
    third.Update("Hello ");
    third = std::move(second);  // a fresh one after Finish
    third.Update("abc");
    EXPECT_EQ(third.algorithm(), a);
    EXPECT_EQ(third.Finish(), ChecksumOf(a, "abc")) << ChecksumName(a);

    std::vector<Checksum> many;
    for (int i = 0; i < 10; ++i) many.emplace_back(a);  // moved as the vector grows
    for (Checksum& c : many) c.Update("abc");
    for (Checksum& c : many) EXPECT_EQ(c.Finish(), ChecksumOf(a, "abc"));
  }
}

TEST(Checksums, CombineCrcMatchesTheConcatenation) {
  std::mt19937_64 rng(4);
  const std::string data = RandomBytes(rng, 20000);
  for (A a : kCrcs) {
    for (int round = 0; round < 200; ++round) {
      const size_t a_len = round % 10 == 0 ? 0 : rng() % 5000;
      const size_t b_len = round % 7 == 0 ? 0 : rng() % 5000;  // 0-length B included
      const size_t start = rng() % (data.size() - a_len - b_len);
      const std::string_view x(data.data() + start, a_len);
      const std::string_view y(data.data() + start + a_len, b_len);
      const std::string_view xy(data.data() + start, a_len + b_len);
      EXPECT_EQ(CombineCrc(a, ChecksumOf(a, x), ChecksumOf(a, y), b_len), ChecksumOf(a, xy))
          << ChecksumName(a) << " " << a_len << " + " << b_len;
    }
    // Lengths with high bits set, past a few powers of two of x^8.
    const std::string big = RandomBytes(rng, (5 << 20) + 3);
    for (size_t split : {size_t{0}, size_t{1}, size_t{1} << 20, big.size() - 1, big.size()}) {
      const std::string_view x = std::string_view(big).substr(0, split);
      const std::string_view y = std::string_view(big).substr(split);
      EXPECT_EQ(CombineCrc(a, ChecksumOf(a, x), ChecksumOf(a, y), y.size()), ChecksumOf(a, big))
          << ChecksumName(a) << " split at " << split;
    }
  }
}

TEST(Checksums, CombineCrcFoldsParts) {
  // How a multipart upload's full-object CRC is made: part CRCs folded left to right.
  std::mt19937_64 rng(5);
  const std::string object = RandomBytes(rng, 100000);
  for (A a : kCrcs) {
    std::string folded = ChecksumOf(a, "");
    size_t pos = 0;
    while (pos < object.size()) {
      const size_t part = std::min<size_t>(1 + rng() % 9000, object.size() - pos);
      const std::string_view bytes = std::string_view(object).substr(pos, part);
      folded = CombineCrc(a, folded, ChecksumOf(a, bytes), part);
      pos += part;
    }
    EXPECT_EQ(folded, ChecksumOf(a, object)) << ChecksumName(a);
  }
}

TEST(Checksums, CombineCrcRefusesWhatItCannotCombine) {
  const std::string crc32 = ChecksumOf(A::kCrc32, "abc");
  EXPECT_EQ(CombineCrc(A::kSha1, ChecksumOf(A::kSha1, "a"), ChecksumOf(A::kSha1, "b"), 1), "");
  EXPECT_EQ(CombineCrc(A::kSha256, ChecksumOf(A::kSha256, "a"), ChecksumOf(A::kSha256, "b"), 1),
            "");
  EXPECT_EQ(CombineCrc(A::kCrc64Nvme, crc32, crc32, 3), "");  // 4 bytes for an 8-byte CRC
  EXPECT_EQ(CombineCrc(A::kCrc32, crc32, crc32.substr(1), 3), "");
  EXPECT_EQ(CombineCrc(A::kCrc32, crc32 + "x", crc32, 3), "");
  EXPECT_NE(CombineCrc(A::kCrc32, crc32, crc32, 3), "");
}

TEST(Checksums, NamesAndSizes) {
  struct Expected {
    A algorithm;
    std::string_view name, header, xml;
    size_t bytes;
    bool crc;
  };
  const Expected expected[] = {
      {A::kCrc32, "CRC32", "x-amz-checksum-crc32", "ChecksumCRC32", 4, true},
      {A::kCrc32c, "CRC32C", "x-amz-checksum-crc32c", "ChecksumCRC32C", 4, true},
      {A::kCrc64Nvme, "CRC64NVME", "x-amz-checksum-crc64nvme", "ChecksumCRC64NVME", 8, true},
      {A::kSha1, "SHA1", "x-amz-checksum-sha1", "ChecksumSHA1", 20, false},
      {A::kSha256, "SHA256", "x-amz-checksum-sha256", "ChecksumSHA256", 32, false},
  };
  ASSERT_EQ(std::size(kChecksumAlgorithms), std::size(expected));
  for (size_t i = 0; i < std::size(expected); ++i) {
    const Expected& e = expected[i];
    EXPECT_EQ(kChecksumAlgorithms[i], e.algorithm);
    EXPECT_EQ(ChecksumName(e.algorithm), e.name);
    EXPECT_EQ(ChecksumHeaderName(e.algorithm), e.header);
    EXPECT_EQ(ChecksumXmlName(e.algorithm), e.xml);
    EXPECT_EQ(ChecksumBytes(e.algorithm), e.bytes);
    EXPECT_EQ(ChecksumOf(e.algorithm, "x").size(), e.bytes);
    EXPECT_EQ(IsCrc(e.algorithm), e.crc);
  }
}

TEST(Checksums, ParseIgnoresCaseAndRoundTrips) {
  for (A a : kChecksumAlgorithms) {
    EXPECT_EQ(ParseChecksumAlgorithm(ChecksumName(a)), a);
    std::string lower(ChecksumName(a));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(ParseChecksumAlgorithm(lower), a) << lower;
    // The header's suffix names the algorithm too.
    EXPECT_EQ(ParseChecksumAlgorithm(ChecksumHeaderName(a).substr(15)), a);
  }
  EXPECT_EQ(ParseChecksumAlgorithm("crc32c"), A::kCrc32c);
  EXPECT_EQ(ParseChecksumAlgorithm("Crc64Nvme"), A::kCrc64Nvme);
  EXPECT_EQ(ParseChecksumAlgorithm("sHa256"), A::kSha256);
  for (std::string_view bad : {"", "CRC", "CRC64", "CRC32D", "CRC32CC", "SHA-256", "SHA-1", "MD5",
                               "SHA512", " CRC32", "CRC32 ", "CRC 32", "XXHASH64"}) {
    EXPECT_FALSE(ParseChecksumAlgorithm(bad)) << "'" << bad << "'";
  }
  EXPECT_FALSE(ParseChecksumAlgorithm(std::string_view("CRC32\0", 6)));
}

TEST(Checksums, DecodeChecksumValueChecksBase64AndLength) {
  EXPECT_EQ(DecodeChecksumValue(A::kCrc32, "i9aeUg=="), std::string("\x8b\xd6\x9e\x52", 4));
  for (A a : kChecksumAlgorithms) {
    for (std::string_view body : {"", "abc", "Hello world"}) {
      const std::string raw = ChecksumOf(a, body);
      EXPECT_EQ(DecodeChecksumValue(a, Base64Encode(raw)), raw) << ChecksumName(a);
      // One byte short, one byte long.
      EXPECT_FALSE(DecodeChecksumValue(a, Base64Encode(raw.substr(1)))) << ChecksumName(a);
      EXPECT_FALSE(DecodeChecksumValue(a, Base64Encode(raw + "x"))) << ChecksumName(a);
    }
    // Another algorithm's value, unless it is the same size.
    for (A other : kChecksumAlgorithms) {
      const std::string value = Base64Of(other, "abc");
      EXPECT_EQ(DecodeChecksumValue(a, value).has_value(), ChecksumBytes(a) == ChecksumBytes(other))
          << ChecksumName(a) << " given " << ChecksumName(other);
    }
    EXPECT_FALSE(DecodeChecksumValue(a, "")) << ChecksumName(a);
  }
  // Malformed base64 of the right length.
  for (std::string_view bad : {"i9aeUg=", "i9aeUg", "i9aeUg===", " i9aeUg==", "i9aeUg== ",
                               "i9ae\nUg==", "i9a=Ug==", "i9aeUh==",  // stray bits in the last char
                               "i9ae-g==", "i9ae_g==", "i9aeU%==", "AAAAAA==AAAAAA=="}) {
    EXPECT_FALSE(DecodeChecksumValue(A::kCrc32, bad)) << "'" << bad << "'";
  }
  EXPECT_TRUE(DecodeChecksumValue(A::kCrc64Nvme, "OOJZ0D8xKts="));
  EXPECT_FALSE(DecodeChecksumValue(A::kCrc64Nvme, "OOJZ0D8xKts"));
  EXPECT_FALSE(DecodeChecksumValue(A::kCrc64Nvme, "OOJZ0D8xKtt="));  // stray bits
  EXPECT_TRUE(DecodeChecksumValue(A::kSha256, "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw="));
  EXPECT_FALSE(DecodeChecksumValue(A::kSha256, "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw"));
}

}  // namespace
}  // namespace lastframe::aws
