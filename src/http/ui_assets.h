#pragma once

#include <span>
#include <string_view>

namespace lastframe::http {

// One file of the dashboard (src/http/ui/), built into the binary by
// cmake/embed_files.cmake.
struct EmbeddedFile {
  std::string_view name;   // "index.html", "app.js": its path under src/http/ui/
  std::string_view bytes;  // {{hash:NAME}} already replaced in .html files
  std::string_view etag;   // 16 hex digits of the SHA-256 of |bytes|, unquoted
};

// Every embedded file of the dashboard.
std::span<const EmbeddedFile> UiAssets();

}  // namespace lastframe::http
