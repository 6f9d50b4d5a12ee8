#include "ingest/sources_config.h"

#include <algorithm>
#include <toml.hpp>

#include "core/stream_name.h"
#include "core/toml_file.h"

namespace lastframe::ingest {
namespace {

// The [[streams]] of |data|, the file |path|'s root.
Result<std::vector<PullOptions>> SourcesOf(const toml::value& data, const std::string& path,
                                           const std::set<std::string>& other_keys) {
  std::vector<PullOptions> out;
  try {
    for (const auto& [key, value] : data.as_table())
      if (key != "streams" && !other_keys.contains(key))
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

}  // namespace

Result<std::vector<PullOptions>> LoadSourcesConfig(const std::string& path,
                                                   const std::set<std::string>& other_keys) {
  auto data = LoadToml(path);
  if (!data.ok()) return data.status();
  return SourcesOf(*data, path, other_keys);
}

Result<std::vector<PullOptions>> ParseSourcesConfig(std::string_view text, const std::string& path,
                                                    const std::set<std::string>& other_keys) {
  auto data = ParseToml(text, path);
  if (!data.ok()) return data.status();
  return SourcesOf(*data, path, other_keys);
}

}  // namespace lastframe::ingest
