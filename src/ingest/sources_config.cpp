#include "ingest/sources_config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "core/stream_name.h"
#include "core/utf8.h"

namespace lastframe::ingest {
namespace {

// How deep arrays and inline tables nest in TOML |text|, strings and comments
// aside. toml11 parses them by recursion: a few thousand '[' overflow its
// stack (found by fuzz/config), so deep files are refused before it reads them.
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

constexpr size_t kMaxTomlNesting = 32;

}  // namespace

Result<std::vector<PullOptions>> LoadSourcesConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path + ": cannot read: " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return ParseSourcesConfig(text.str(), path);
}

Result<std::vector<PullOptions>> ParseSourcesConfig(std::string_view text,
                                                    const std::string& path) {
  std::vector<PullOptions> out;
  // TOML is UTF-8, and toml11 reads past its buffer on other bytes in a
  // literal string (found by fuzz/config); names and URLs are shown as JSON too.
  if (!IsValidUtf8(text)) return InvalidArgument(path + ": not UTF-8 text");
  if (TomlNesting(text) > kMaxTomlNesting)
    return InvalidArgument(path + ": arrays or tables nested more than " +
                           std::to_string(kMaxTomlNesting) + " deep");
  try {
    std::istringstream in{std::string(text)};
    const toml::value data = toml::parse(in, path);
    for (const auto& [key, value] : data.as_table())
      if (key != "streams")
        return InvalidArgument(path + ": unknown key '" + key + "' (expected [[streams]])");
    if (!data.contains("streams")) return out;
    std::set<std::string> names;
    for (const toml::value& entry : toml::find(data, "streams").as_array()) {
      for (const auto& [key, value] : entry.as_table())
        if (key != "name" && key != "url" && key != "rtsp_transport" && key != "read_timeout_s")
          return InvalidArgument(path + ": unknown key '" + key + "' in [[streams]]");
      PullOptions o;
      o.stream = toml::find<std::string>(entry, "name");
      o.url = toml::find<std::string>(entry, "url");
      o.rtsp_transport = toml::find_or<std::string>(entry, "rtsp_transport", "tcp");
      int64_t timeout_s = toml::find_or<int64_t>(entry, "read_timeout_s", 10);
      auto fail = [&](const std::string& why) {
        return InvalidArgument(path + ": stream '" + o.stream + "': " + why);
      };
      if (Status s = ValidateStreamName(o.stream); !s.ok()) return fail(s.message());
      if (!names.insert(o.stream).second) return fail("defined twice");
      if (Status s = ValidateSourceUrl(o.url, true); !s.ok()) return fail(s.message());
      if (o.rtsp_transport != "tcp" && o.rtsp_transport != "udp")
        return fail("rtsp_transport must be tcp or udp");
      if (timeout_s < 1 || timeout_s > 3600) return fail("read_timeout_s must be 1 to 3600");
      o.read_timeout = std::chrono::seconds(timeout_s);
      o.open_timeout = std::max(o.open_timeout, o.read_timeout);
      out.push_back(std::move(o));
    }
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(e.what()));
  }
  return out;
}

}  // namespace lastframe::ingest
