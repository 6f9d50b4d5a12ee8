#pragma once

// The CRC kernels behind aws/checksums.h, for its tests and benchmark only:
// the library picks one CRC32C kernel at run time, and a test must check each
// whatever CPU it runs on. Every function takes and returns a finished CRC
// (0 for no bytes), like zlib's crc32(): Crc(Crc(0, a), b) == Crc(0, a + b).

#include <cstdint>
#include <string_view>

namespace lastframe::aws::internal {

// CRC-32/ISCSI (Castagnoli) by slice-by-8 tables, on any CPU.
uint32_t Crc32cPortable(uint32_t crc, std::string_view bytes);
// Whether this CPU has SSE4.2's crc32 instruction (and this is an x86-64 build).
bool Crc32cHardwareAvailable();
// CRC-32/ISCSI by SSE4.2's crc32 instruction. Only where Crc32cHardwareAvailable().
uint32_t Crc32cHardware(uint32_t crc, std::string_view bytes);
// CRC-64/NVME by slice-by-8 tables.
uint64_t Crc64Nvme(uint64_t crc, std::string_view bytes);

}  // namespace lastframe::aws::internal
