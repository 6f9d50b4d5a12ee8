// Configuration read at start: the --config TOML file of pulled streams
// (ingest::ParseSourcesConfig: stream names, source URLs, transports,
// timeouts), the AWS CLI's INI files (aws::ParseIni), --store s3:// URIs
// (objects::ParseS3Uri), and the source URLs shown and logged redacted
// (ingest::RedactUrl).
//
// Input: a TOML file, also read as an INI file; each of its lines is also
// tried as an s3:// URI and as a source URL. Invariants: accepted streams are
// valid names with valid URLs, each name once; accepted text is UTF-8 (it is
// shown in JSON); a redacted URL keeps no password that libavformat would
// send; an s3:// URI gives a valid bucket and a prefix that is a valid key.

extern "C" {
#include <libavformat/avformat.h>
}

#include <nlohmann/json.hpp>
#include <set>

#include "aws/aws_config.h"
#include "core/stream_name.h"
#include "fuzz_support.h"
#include "ingest/pull_source.h"
#include "ingest/sources_config.h"
#include "objects/local_store.h"
#include "objects/object_store.h"
#include "objects/s3_store.h"

using namespace lastframe;

namespace {

// The password libavformat would send for |url| must not survive redaction.
void CheckRedaction(const std::string& url) {
  const std::string redacted = ingest::RedactUrl(url);
  char proto[64], auth[1024], host[1024], path[2048];
  int port = -1;
  av_url_split(proto, sizeof proto, auth, sizeof auth, host, sizeof host, &port, path, sizeof path,
               url.c_str());
  const std::string authorization = auth;
  size_t colon = authorization.find(':');
  if (colon == std::string::npos || url.find('\0') != std::string::npos) return;
  const std::string password = authorization.substr(colon + 1);
  if (password.size() < 4 || password == "***") return;  // too short to tell from other text
  // The authority, as libavformat reads it: up to the first '/', '?' or '#'.
  size_t start = redacted.find("://");
  if (start == std::string::npos) return;
  start += 3;
  const std::string authority =
      redacted.substr(start, redacted.find_first_of("/?#", start) - start);
  FUZZ_CHECK(authority.find(":" + password + "@") == std::string::npos,
             "the password of '" + url + "' survives redaction: " + redacted);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(fuzz::AsText(data, size));
  auto sources = ingest::ParseSourcesConfig(text, "fuzz.toml");
  if (sources.ok()) {
    std::set<std::string> names;
    for (const ingest::PullOptions& o : *sources) {
      FUZZ_CHECK(ValidateStreamName(o.stream).ok(), "an invalid stream name: " + o.stream);
      FUZZ_CHECK(names.insert(o.stream).second, "a stream named twice: " + o.stream);
      FUZZ_CHECK(ingest::ValidateSourceUrl(o.url, true).ok(), "an invalid URL: " + o.url);
      FUZZ_CHECK(fuzz::JsonSerialisable(o.url),
                 "a source URL that is not UTF-8 (GET /v1/streams shows it)");
      FUZZ_CHECK(o.rtsp_transport == "tcp" || o.rtsp_transport == "udp", o.rtsp_transport);
      const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(o.read_timeout);
      FUZZ_CHECK(timeout.count() >= 1 && timeout.count() <= 3600, "read_timeout_s");
      CheckRedaction(o.url);
    }
  } else {
    FUZZ_CHECK(sources.status().code() == Code::kInvalidArgument, sources.status().ToString());
  }

  auto ini = aws::ParseIni(text);
  if (ini.ok()) {
    for (const auto& [section, values] : *ini)
      for (const auto& [key, value] : values) {
        FUZZ_CHECK(key.find('\n') == std::string::npos && value.find('\n') == std::string::npos,
                   "an INI value spans lines");
        FUZZ_CHECK(key.empty() || (key.front() != ' ' && key.back() != ' '), "untrimmed key");
      }
  }

  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    const std::string line(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (auto s3 = objects::ParseS3Uri(line); s3.ok()) {
      FUZZ_CHECK(objects::ValidBucketName(s3->first), "bucket " + s3->first);
      const std::string& prefix = s3->second;
      if (!prefix.empty())
        FUZZ_CHECK(prefix.back() == '/' &&
                       objects::ValidateObjectKey(prefix.substr(0, prefix.size() - 1)).ok(),
                   "prefix '" + prefix + "'");
    }
    if (ingest::ValidateSourceUrl(line, true).ok()) CheckRedaction(line);
  }
  return 0;
}
