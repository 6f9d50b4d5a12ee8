#pragma once

#include <string>
#include <string_view>
#include <toml.hpp>

#include "core/status.h"

namespace lastframe {

// TOML |text| parsed by toml11 (its root, a table), or InvalidArgument whose
// message begins with |name| (what messages call the file). The one way
// lastframe reads TOML: text toml11 cannot read safely is refused before it
// sees it, namely bytes that are not UTF-8 (toml11 read past its buffer on
// them in a literal string) and arrays or inline tables nested deeper than
// kMaxTomlNesting (toml11 recurses once per '[' and overflowed its stack);
// both were found by fuzz/config.
Result<toml::value> ParseToml(std::string_view text, const std::string& name);

// The file at |path|, read and parsed as ParseToml does; messages name |path|.
Result<toml::value> LoadToml(const std::string& path);

inline constexpr size_t kMaxTomlNesting = 32;

}  // namespace lastframe
