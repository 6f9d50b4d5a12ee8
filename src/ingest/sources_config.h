#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "ingest/pull_source.h"

namespace lastframe::ingest {

// Reads the streams to pull from a TOML file (`lastframe serve --config FILE`):
//
//   [[streams]]
//   name = "frontdoor"                              # a stream name
//   url = "rtsp://user:pass@192.168.1.20/stream1"   # rtsp(s), rtmp(s), srt, http(s), file
//   rtsp_transport = "tcp"                          # optional: tcp (default) or udp
//   read_timeout_s = 10                             # optional: silence before a reconnect
//
// Every problem (syntax, an unknown key, a bad name or URL, a name twice) is
// InvalidArgument with the file, stream and reason in its message. The file
// is read with core's ParseToml. Top-level keys in |other_keys| are someone
// else's (`lastframe serve`'s flags, read from the same file) and left alone;
// any other key but streams is refused.
Result<std::vector<PullOptions>> LoadSourcesConfig(const std::string& path,
                                                   const std::set<std::string>& other_keys = {});
// The same for the file's text; |name| is what messages call the file.
Result<std::vector<PullOptions>> ParseSourcesConfig(std::string_view text, const std::string& name,
                                                    const std::set<std::string>& other_keys = {});

}  // namespace lastframe::ingest
