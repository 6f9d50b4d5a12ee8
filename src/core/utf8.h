#pragma once

#include <string_view>

namespace lastframe {

// Whether |text| is well-formed UTF-8: no stray continuation bytes, overlong
// forms, surrogates or code points past U+10FFFF. Text kept as JSON, or read
// as TOML, must be (both libraries misbehave on anything else).
bool IsValidUtf8(std::string_view text);

}  // namespace lastframe
