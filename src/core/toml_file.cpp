#include "core/toml_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/utf8.h"

namespace lastframe {
namespace {

// How deep arrays and inline tables nest in TOML |text|, strings and comments
// aside.
size_t TomlNesting(std::string_view t) {
  size_t depth = 0, deepest = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '#') {
      i = t.find('\n', i);
      if (i == std::string_view::npos) break;
    } else if (c == '"' || c == '\'') {
      const bool multi = t.substr(i, 3) == std::string(3, c);
      const size_t quotes = multi ? 3 : 1;
      size_t j = i + quotes;
      for (; j < t.size(); ++j) {
        if (c == '"' && t[j] == '\\') {
          ++j;  // an escaped character
        } else if (!multi && t[j] == '\n') {
          break;  // unterminated: toml11 says so
        } else if (t.substr(j, quotes) == std::string(quotes, c)) {
          j += quotes;
          // A multi-line string may end with one or two quotes of its own.
          for (int extra = 0; multi && extra < 2 && j < t.size() && t[j] == c; ++extra) ++j;
          break;
        }
      }
      i = j - 1;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Result<toml::value> ParseToml(std::string_view text, const std::string& name) {
  if (!IsValidUtf8(text)) return InvalidArgument(name + ": not UTF-8 text");
  if (TomlNesting(text) > kMaxTomlNesting)
    return InvalidArgument(name + ": arrays or tables nested more than " +
                           std::to_string(kMaxTomlNesting) + " deep");
  try {
    std::istringstream in{std::string(text)};
    return toml::parse(in, name);
  } catch (const std::exception& e) {
    // toml11's syntax errors name the file and show the line.
    return InvalidArgument(std::string(e.what()));
  }
}

Result<toml::value> LoadToml(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path + ": cannot read: " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return ParseToml(text.str(), path);
}

}  // namespace lastframe
