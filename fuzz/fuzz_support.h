#pragma once
// Helpers shared by the fuzz targets (see FUZZING.md): splitting an input into
// fields, checking invariants, a scratch directory in memory.

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace lastframe::fuzz {

// An invariant of the code under test: a failure is a finding, reported as a
// crash (abort) so that libFuzzer keeps the input.
#define FUZZ_CHECK(cond, what)                                                                  \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                                  \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// The input's '\n'-separated fields; the last one takes the rest (it may hold
// newlines of its own when |max_fields| is reached). Line-shaped inputs keep
// seeds readable and let dictionary words land in the field they belong to.
inline std::vector<std::string_view> Fields(std::string_view text, size_t max_fields) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_fields) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;
    out.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  out.push_back(text);
  return out;
}

// Field |i| of |fields|, or "" when the input had fewer.
inline std::string Field(const std::vector<std::string_view>& fields, size_t i) {
  return i < fields.size() ? std::string(fields[i]) : std::string();
}

// A directory in memory (/dev/shm when there is one) for targets that need
// files; removed when the process exits normally.
class ScratchDir {
 public:
  ScratchDir() {
    std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string pattern = base + "/lastframe-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Targets log nothing: a warning per input would drown libFuzzer's own output.
// Whether |s| can be written as a JSON string (valid UTF-8): an oracle
// independent of core::IsValidUtf8, which the code under test uses.
inline bool JsonSerialisable(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

inline void QuietLogs() { spdlog::set_level(spdlog::level::off); }

}  // namespace lastframe::fuzz
