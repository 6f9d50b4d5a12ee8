#include "app/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string_view>
#include <thread>
#include <type_traits>

#include "core/toml_file.h"
#include "http/api.h"

namespace lastframe::app {
namespace {

constexpr bool kShowDefault = true;

// LASTFRAME_ and the flag's name in capitals, '-' as '_' (s3-endpoint: LASTFRAME_S3_ENDPOINT).
std::string EnvName(std::string_view name) {
  std::string env = "LASTFRAME_";
  for (char c : name) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

// What a flag's key in a --config file must hold: the flag's type.
enum class FileValue {
  kString,
  kInteger,
  kCount,    // an integer, not negative (CLI11 reads "-1" as the largest)
  kNumber,   // an integer or a float
  kBool,     // a switch: true or false
  kSize,     // a byte count: an integer, or a string with a unit ("4GiB")
  kStrings,  // a repeatable flag: an array of strings
};

// Where flags are registered: |app|, and |kinds| (when not null), which
// learns each flag's FileValue from the type it is bound to.
struct Flags {
  CLI::App& app;
  std::map<std::string, FileValue, std::less<>>* kinds = nullptr;
};

template <typename T>
constexpr FileValue FileValueOf() {
  if constexpr (std::is_same_v<T, bool>)
    return FileValue::kBool;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return FileValue::kStrings;
  else if constexpr (std::is_unsigned_v<T>)
    return FileValue::kCount;
  else if constexpr (std::is_integral_v<T>)
    return FileValue::kInteger;
  else if constexpr (std::is_floating_point_v<T>)
    return FileValue::kNumber;
  else
    return FileValue::kString;
}

// --|name|, bound to |value| (a switch when it is a bool), set by its
// environment name too; |show_default| puts the value held now in --help.
template <typename T>
CLI::Option* Flag(Flags c, std::string_view name, T& value, const std::string& help,
                  bool show_default = false) {
  static_assert(FileValueOf<T>() != FileValue::kString || std::is_same_v<T, std::string>,
                "a flag of a type the config file does not know");
  const std::string flag = "--" + std::string(name);
  CLI::Option* option;
  if constexpr (std::is_same_v<T, bool>)
    option = c.app.add_flag(flag, value, help);
  else
    option = c.app.add_option(flag, value, help);
  option->envname(EnvName(name));
  if (show_default) option->capture_default_str();
  if (c.kinds) (*c.kinds)[std::string(name)] = FileValueOf<T>();
  return option;
}

// A byte count, given as a number or with a unit ("4GiB").
CLI::Option* SizeFlag(Flags c, std::string_view name, uint64_t& value, const std::string& help) {
  CLI::Option* option =
      Flag(c, name, value, help, kShowDefault)->transform(CLI::AsSizeValue(false));
  if (c.kinds) (*c.kinds)[std::string(name)] = FileValue::kSize;
  return option;
}

void AddListenAndStoreFlags(Flags c, ServeConfig& f) {
  Flag(c, "listen", f.listen, "HOST:PORT to listen on (port 0: any free port)", kShowDefault);
  Flag(c, "data-dir", f.data_dir, "where images and keys are kept", kShowDefault);
  Flag(c, "public-url", f.public_url, "base of the URLs handed out (default: from --listen)");
  Flag(c, "retention", f.retention_s, "seconds of video kept per stream", kShowDefault)
      ->check(CLI::Range(1, 31'536'000));
  Flag(c, "live-window", f.live_window_s,
       "seconds without a frame after which a stream is no longer live but stale", kShowDefault)
      ->check(CLI::Range(1, 86'400));
  Flag(c, "demo", f.demo, "run a synthetic camera named 'demo'");
  Flag(c, "access-key", f.access_key,
       "embedded store access key (default: generated, kept in the data dir)");
  Flag(c, "secret-key", f.secret_key, "embedded store secret key");
  Flag(c, "bucket", f.bucket, "bucket name of the embedded store", kShowDefault);
  Flag(c, "objects-max-age", f.objects_max_age_s,
       "seconds the embedded store keeps an object (default: the longest URL expiry handed out, "
       "at least 600)")
      ->check(CLI::Range(int64_t{1}, int64_t{10} * 365 * 86400));
  SizeFlag(c, "objects-max-size", f.objects_max_bytes,
           "bytes the embedded store may hold; past it the oldest objects go (e.g. 4GiB)");
  SizeFlag(c, "max-object-size", f.max_object_bytes,
           "the largest object an S3 client may PUT to the embedded store (or assemble from a "
           "multipart upload)");
  Flag(c, "multipart-expiry", f.multipart_expiry_s,
       "seconds after which the embedded store removes a multipart upload neither completed nor "
       "aborted",
       kShowDefault)
      ->check(CLI::Range(int64_t{60}, int64_t{30} * 86400));
  Flag(c, "store", f.store,
       "where snapshots go: 'local' (the embedded store) or s3://BUCKET[/PREFIX]", kShowDefault);
  Flag(c, "archive", f.archive,
       "a shared S3 store for the retained video, s3://BUCKET[/PREFIX], reached with the --s3-* "
       "flags: each fragment is stored there too before it is PERSISTED, and any node reads "
       "streams of a node that died from it");
}

void AddS3Flags(Flags c, ServeConfig& f) {
  Flag(c, "s3-endpoint", f.s3_endpoint,
       "S3 endpoint URL, e.g. http://127.0.0.1:9000 for MinIO (default: AWS S3 of the region)");
  Flag(c, "s3-region", f.s3_region,
       "S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1)");
  Flag(c, "s3-addressing", f.s3_addressing,
       "auto (virtual-hosted on AWS, else path), path or virtual", kShowDefault)
      ->check(CLI::IsMember({"auto", "path", "virtual"}));
  Flag(c, "s3-access-key", f.s3_access_key,
       "S3 access key id (default: AWS_ACCESS_KEY_ID, then ~/.aws/credentials)");
  Flag(c, "s3-secret-key", f.s3_secret_key, "S3 secret access key");
  Flag(c, "s3-session-token", f.s3_session_token, "S3 session token (temporary keys)");
  Flag(c, "aws-profile", f.aws_profile, "profile in ~/.aws/credentials and config");
  Flag(c, "s3-timeout", f.s3_timeout_s,
       "seconds an upload may take, retries included, before the snapshot fails", kShowDefault)
      ->check(CLI::Range(0.1, 300.0));
}

void AddThreadAndIngestFlags(Flags c, ServeConfig& f) {
  Flag(c, "io-threads", f.io_threads, "HTTP I/O threads (default: cores, max 4)")
      ->check(CLI::Range(1, 64));
  Flag(c, "workers", f.workers, "decode/encode threads (default: cores)")
      ->check(CLI::Range(1, 256));
  Flag(c, "max-queued", f.max_queued,
       "snapshots that may wait for a worker before 429 (default: 64 per worker)")
      ->check(CLI::Range(1, 100000));
  Flag(c, "warm-decoders", f.warm_decoders, "streams whose decoder stays alive between looks",
       kShowDefault)
      ->check(CLI::Range(1, 100000));
  Flag(c, "producer-timeout", f.producer_timeout_s,
       "seconds a pushing producer may go without a complete frame before it is dropped with an "
       "ERROR ack",
       kShowDefault)
      ->check(CLI::Range(1, 3600));
  SizeFlag(c, "fragments-max-size", f.fragments_max_bytes,
           "bytes of durable fragments kept in all; past it the oldest go (e.g. 16GiB)");
  Flag(c, "no-persist", f.no_persist,
       "keep fragments in memory only (default: each fragment is written to DATA_DIR/fragments "
       "and synced before PERSISTED is acknowledged)");
  Flag(c, "memory-retention", f.memory_retention_s,
       "with --no-persist, seconds of video each stream keeps (in memory: fragments have nowhere "
       "else to live); with durable fragments memory holds only each stream's newest",
       kShowDefault)
      ->check(CLI::Range(1, 31'536'000));
}

void AddKvsFlags(Flags c, ServeConfig& f) {
  Flag(c, "source", f.source,
       "where video is read (snapshots, listings, clips, archived media): 'local' (this server's "
       "streams) or 'kvs' (a Kinesis Video "
       "endpoint: AWS, or another lastframe)",
       kShowDefault)
      ->check(CLI::IsMember({"local", "kvs"}));
  Flag(c, "kvs-endpoint", f.kvs_endpoint,
       "Kinesis Video control endpoint, e.g. http://10.0.0.5:8080 (default: AWS's "
       "https://kinesisvideo.REGION.amazonaws.com)");
  Flag(c, "kvs-region", f.kvs_region,
       "Kinesis Video region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, "
       "us-east-1)");
  Flag(c, "kvs-access-key", f.kvs_access_key,
       "Kinesis Video access key id (default: AWS_ACCESS_KEY_ID, then ~/.aws/credentials)");
  Flag(c, "kvs-secret-key", f.kvs_secret_key, "Kinesis Video secret access key");
  Flag(c, "kvs-session-token", f.kvs_session_token, "Kinesis Video session token (temporary keys)");
  Flag(c, "kvs-timeout", f.kvs_timeout_s,
       "seconds one Kinesis Video call may take, retries included, before the snapshot fails "
       "(502/504)",
       kShowDefault)
      ->check(CLI::Range(0.1, 300.0));
  Flag(c, "unsigned-putmedia", f.unsigned_putmedia,
       "accept PutMedia without a SigV4 signature even when --access-key is given (ffmpeg "
       "cannot sign); without --access-key unsigned pushes are always accepted");
}

void AddAccessAndLimitFlags(Flags c, ServeConfig& f) {
  Flag(c, "config", f.config,
       "TOML file of these flags (data-dir = \"/var/lib/lastframe\"; a flag or its LASTFRAME_ "
       "variable wins over it) and of streams to pull ([[streams]] name, url, rtsp_transport)")
      ->check(CLI::ExistingFile);
  Flag(c, "auth", f.auth,
       "on: every route but /healthz and signed URLs needs an API key; off: open, for a trusted "
       "network",
       kShowDefault)
      ->check(CLI::IsMember({"on", "off"}));
  Flag(c, "keys-file", f.keys_file,
       "the API keys (default DATA_DIR/keys.json, made at first start); several nodes may share "
       "one, read-only to them");
  Flag(c, "public-metrics", f.public_metrics, "serve /metrics without credentials");
  Flag(c, "max-url-expiry", f.max_url_expiry_s,
       "the longest signed-URL lifetime (expires=) a key may ask for; admins up to 604800",
       kShowDefault)
      ->check(CLI::Range(int64_t{1}, int64_t{604'800}));
  Flag(c, "pull-allow", f.pull_allow,
       "CIDR a pulled source may reach although refused by default (loopback, link-local, ...); "
       "repeatable");
  Flag(c, "pull-deny", f.pull_deny,
       "CIDR a pulled source may not reach (wins over --pull-allow); repeatable");
  Flag(c, "max-connections", f.max_connections,
       "connections open at once; past it 503 (default: from the descriptor limit)", kShowDefault);
  Flag(c, "max-connections-per-ip", f.max_connections_per_ip,
       "connections from one client address; past it 429", kShowDefault)
      ->check(CLI::PositiveNumber);
  Flag(c, "max-buffered-bytes", f.max_buffered_bytes,
       "request bodies held in memory at once; past it 503 with Retry-After", kShowDefault)
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40));
  Flag(c, "max-streams", f.max_streams, "streams that may exist; past it 429", kShowDefault)
      ->check(CLI::PositiveNumber);
  Flag(c, "max-pulls", f.max_pulls, "pulled sources at once; past it 429", kShowDefault)
      ->check(CLI::PositiveNumber);
  Flag(c, "max-producers", f.max_producers, "producers pushing at once; past it 429", kShowDefault)
      ->check(CLI::PositiveNumber);
  Flag(c, "max-render-pixels", f.max_render_pixels,
       "largest image rendered, as WIDTHxHEIGHT of output; larger asks get 400", kShowDefault);
  Flag(c, "node-id", f.node_id,
       "this node's name: every answer carries it (X-Lastframe-Node), listings name it (\"node\"); "
       "1-64 of A-Z a-z 0-9 . _ - (default: the host name)");
  Flag(c, "peers", f.peers,
       "the other nodes, as http(s)://HOST:PORT URLs or dns://HOST:PORT (every address of HOST "
       "is a node): GET /v1/streams then lists the whole cluster; a comma list, repeatable")
      ->delimiter(',');
  Flag(c, "peer-timeout", f.peer_timeout_s,
       "seconds a cluster listing waits for its peers; one slower is named in it as timed out",
       kShowDefault)
      ->check(CLI::Range(0.05, 60.0));
  Flag(c, "pull-route", f.pull_route,
       "the router in front of the nodes (HAProxy), http(s)://HOST:PORT: of the cameras of "
       "--config's [[streams]], pull only those it routes to this node, asked every 2 s "
       "(GET /v1/streams/NAME/node); default: pull them all");
  Flag(c, "log-level", f.log_level, "trace, debug, info, warn, error", kShowDefault)
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  Flag(c, "log-format", f.log_format,
       "text (a line each) or json (an object a line: time, level, message and fields)",
       kShowDefault)
      ->check(CLI::IsMember({"text", "json"}));
  Flag(c, "request-log-level", f.request_log_level,
       "the level of a line per request (method, route, path without query, status, duration); "
       "shown when --log-level lets it through",
       kShowDefault)
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

// "HOST:PORT", "[::1]:PORT": false when it is neither.
bool SplitHostPort(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  try {
    size_t used = 0;
    int p = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

// "WIDTHxHEIGHT" as pixels; 0 when malformed.
uint64_t ParsePixels(const std::string& text) {
  int w = 0, h = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 || x != 'x' || w < 1 || h < 1)
    return 0;
  return static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
}

// The embedded store serves S3 at /BUCKET/..., beside the API's own routes:
// a bucket named as a route's first segment would hide it. Bucket names are
// lowercase (S3's rule), so a segment is compared in lowercase: "putmedia"
// is refused too, a name only case tells apart from /putMedia.
Status CheckBucketName(const std::string& bucket) {
  for (std::string segment : http::Api::ReservedPathSegments()) {
    std::transform(segment.begin(), segment.end(), segment.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (bucket == segment)
      return InvalidArgument("--bucket '" + bucket + "' would hide the API's /" + segment +
                             " routes: choose another name");
  }
  return Status::Ok();
}

Result<std::vector<ingest::Cidr>> ParseCidrs(const char* flag,
                                             const std::vector<std::string>& texts) {
  std::vector<ingest::Cidr> out;
  for (const std::string& text : texts) {
    auto cidr = ingest::ParseCidr(text);
    if (!cidr.ok()) return InvalidArgument(std::string(flag) + ": " + cidr.status().message());
    out.push_back(*cidr);
  }
  return out;
}

std::chrono::milliseconds Seconds(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

void AddAllServeFlags(Flags c, ServeConfig& config) {
  // In the order --help lists them.
  AddListenAndStoreFlags(c, config);
  AddS3Flags(c, config);
  AddThreadAndIngestFlags(c, config);
  AddKvsFlags(c, config);
  AddAccessAndLimitFlags(c, config);
}

// Each flag of `lastframe serve` by name, with what its key in a --config file holds.
const std::map<std::string, FileValue, std::less<>>& FileValues() {
  static const auto kinds = [] {
    std::map<std::string, FileValue, std::less<>> k;
    CLI::App app;
    ServeConfig config;
    AddAllServeFlags(Flags{app, &k}, config);
    return k;
  }();
  return kinds;
}

std::string TomlTypeName(const toml::value& v) {
  std::ostringstream out;
  out << v.type();
  return out.str();
}

// A number as CLI11 reads it back, to the last bit.
std::string NumberText(double d) {
  std::ostringstream out;
  out.precision(17);
  out << d;
  return out.str();
}

// |value|, a file's for a flag of |kind|, as the command line would give
// it (the flag's results), or what is wrong with it ("must be an integer, not string").
Result<std::vector<std::string>> FileResults(FileValue kind, const toml::value& value) {
  auto wrong = [&](const char* expected) {
    return InvalidArgument(std::string("must be ") + expected + ", not " + TomlTypeName(value));
  };
  switch (kind) {
    case FileValue::kString:
      if (!value.is_string()) return wrong("a string");
      return std::vector<std::string>{value.as_string().str};
    case FileValue::kInteger:
      if (!value.is_integer()) return wrong("an integer");
      return std::vector<std::string>{std::to_string(value.as_integer())};
    case FileValue::kCount:
      if (!value.is_integer()) return wrong("an integer");
      if (value.as_integer() < 0) return InvalidArgument("must not be negative");
      return std::vector<std::string>{std::to_string(value.as_integer())};
    case FileValue::kNumber:
      if (value.is_integer()) return std::vector<std::string>{std::to_string(value.as_integer())};
      if (!value.is_floating()) return wrong("a number");
      if (!std::isfinite(value.as_floating())) return InvalidArgument("must be a finite number");
      return std::vector<std::string>{NumberText(value.as_floating())};
    case FileValue::kBool:
      if (!value.is_boolean()) return wrong("true or false");
      return std::vector<std::string>{value.as_boolean() ? "true" : "false"};
    case FileValue::kSize:
      if (value.is_integer() && value.as_integer() < 0)
        return InvalidArgument("must not be negative");
      if (value.is_integer()) return std::vector<std::string>{std::to_string(value.as_integer())};
      if (!value.is_string())
        return wrong("a byte count (an integer, or a string such as \"4GiB\")");
      return std::vector<std::string>{value.as_string().str};
    case FileValue::kStrings: {
      if (!value.is_array()) return wrong("an array of strings");
      std::vector<std::string> out;
      for (const toml::value& item : value.as_array()) {
        if (!item.is_string())
          return InvalidArgument("must be an array of strings, not hold " + TomlTypeName(item));
        out.push_back(item.as_string().str);
      }
      return out;
    }
  }
  return Internal("unknown FileValue");
}

// The first flag |message| names ("--listen must be ...") that is among
// |keys|; "" when none is.
std::string FlagNamedIn(const std::string& message, const std::vector<std::string>& keys) {
  for (size_t at = message.find("--"); at != std::string::npos; at = message.find("--", at + 2)) {
    size_t end = at + 2;
    while (end < message.size() &&
           (std::islower(static_cast<unsigned char>(message[end])) ||
            std::isdigit(static_cast<unsigned char>(message[end])) || message[end] == '-'))
      ++end;
    const std::string name = message.substr(at + 2, end - at - 2);
    if (std::find(keys.begin(), keys.end(), name) != keys.end()) return name;
  }
  return "";
}

}  // namespace

void AddServeFlags(CLI::App& command, ServeConfig& config) {
  AddAllServeFlags(Flags{command}, config);
}

void AddKeysFileFlags(CLI::App& command, KeysConfig& config) {
  Flag(Flags{command}, "data-dir", config.data_dir, "the server's data directory", kShowDefault);
  Flag(Flags{command}, "keys-file", config.keys_file, "the keys file (default DATA_DIR/keys.json)");
}

const std::set<std::string>& ConfigFileKeys() {
  static const auto keys = [] {
    std::set<std::string> k;
    for (const auto& [name, kind] : FileValues())
      if (name != "config") k.insert(name);
    return k;
  }();
  return keys;
}

Status ApplyConfigFile(CLI::App& command, ServeConfig& config) {
  const std::string& path = config.config;
  if (path.empty()) return Status::Ok();
  auto data = LoadToml(path);
  if (!data.ok()) return data.status();
  // In the order of the keys' names, so that the first problem is always the same one.
  std::map<std::string, const toml::value*> entries;
  for (const auto& [key, value] : data->as_table()) entries.emplace(key, &value);
  std::vector<std::string> from_file;
  for (const auto& [key, value] : entries) {
    if (key == "streams") continue;  // the pulled sources: LoadSourcesConfig reads them
    auto refuse = [&](const std::string& why) {
      return InvalidArgument(path + ": key '" + key + "': " + why);
    };
    if (key == "config") return refuse("a config file cannot name another");
    auto kind = FileValues().find(key);
    if (kind == FileValues().end()) {
      std::string hint = "keys are `lastframe serve`'s long flags without '--', e.g. data-dir";
      std::string dashed = key;
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      if (dashed != key && FileValues().contains(dashed)) hint = "did you mean '" + dashed + "'?";
      return refuse("not a flag of lastframe serve (" + hint + ")");
    }
    CLI::Option* option = command.get_option_no_throw("--" + key);
    if (!option) return Internal("--" + key + " is not registered on " + command.get_name());
    if (option->count() > 0) continue;  // given on the command line or by LASTFRAME_*
    auto results = FileResults(kind->second, *value);
    if (!results.ok()) return refuse(results.status().message());
    if (results->empty()) continue;  // an empty array: the flag's default, none
    try {
      option->add_result(*results);
      option->run_callback();  // CLI11's checks and conversion, as for the command line
    } catch (const CLI::Error& e) {
      std::string why = e.what();
      // CLI11 names the option first ("--retention: Value 0 not in range ..."): the key says it.
      if (why.rfind("--" + key + ": ", 0) == 0) why = why.substr(key.size() + 4);
      return refuse(why);
    }
    from_file.push_back(key);
  }
  // What ValidateServeConfig refuses of the file's values is the file's error
  // too; a flag's own is told by Service::Create, as without a file.
  if (auto settings = ValidateServeConfig(config); !settings.ok()) {
    const std::string key = FlagNamedIn(settings.status().message(), from_file);
    if (!key.empty())
      return InvalidArgument(path + ": key '" + key + "': " + settings.status().message());
  }
  return Status::Ok();
}

std::filesystem::path KeysFileOf(const std::string& data_dir, const std::string& keys_file) {
  return keys_file.empty() ? std::filesystem::path(data_dir) / "keys.json"
                           : std::filesystem::path(keys_file);
}

Result<ServeSettings> ValidateServeConfig(const ServeConfig& config) {
  ServeSettings s;
  s.flags = config;
  if (!SplitHostPort(config.listen, &s.host, &s.port))
    return InvalidArgument("--listen must be HOST:PORT, got '" + config.listen + "'");
  if (config.retention_s < 1) return InvalidArgument("--retention must be at least 1 second");
  s.retention_ms = config.retention_s * 1000;
  if (config.memory_retention_s < 1)
    return InvalidArgument("--memory-retention must be at least 1 second");
  s.memory_retention_ms = config.memory_retention_s * 1000;
  if (!config.access_key.empty() || !config.secret_key.empty()) {
    if (config.access_key.empty() || config.secret_key.empty())
      return InvalidArgument("--access-key and --secret-key go together");
    s.store_credentials = aws::Credentials{config.access_key, Secret(config.secret_key), ""};
  }
  s.max_render_pixels = ParsePixels(config.max_render_pixels);
  if (s.max_render_pixels == 0)
    return InvalidArgument("--max-render-pixels must be WIDTHxHEIGHT, e.g. 3840x2160");
  s.local_store = config.store == "local";
  if (s.local_store) {
    LF_RETURN_IF_ERROR(CheckBucketName(config.bucket));
  } else {
    auto target = objects::ParseS3Uri(config.store);
    if (!target.ok())
      return InvalidArgument("--store must be 'local' or s3://BUCKET[/PREFIX]: " +
                             target.status().message());
    s.s3_bucket = target->first;
    s.s3_prefix = target->second;
  }
  if (!config.archive.empty()) {
    auto target = objects::ParseS3Uri(config.archive);
    if (!target.ok())
      return InvalidArgument("--archive must be s3://BUCKET[/PREFIX]: " +
                             target.status().message());
    if (config.no_persist)
      return InvalidArgument(
          "--archive cannot go with --no-persist: fragments reach the shared archive from the "
          "local fragment files");
    if (config.source == "kvs")
      return InvalidArgument(
          "--archive cannot go with --source kvs: the archive holds this cluster's own video, "
          "--source kvs reads another endpoint's");
    s.archive_bucket = target->first;
    s.archive_prefix = target->second;
  }
  s.s3_addressing = config.s3_addressing == "path"      ? objects::S3Addressing::kPath
                    : config.s3_addressing == "virtual" ? objects::S3Addressing::kVirtual
                                                        : objects::S3Addressing::kAuto;
  // CLI11's range check lets NaN through.
  if (!std::isfinite(config.s3_timeout_s))
    return InvalidArgument("--s3-timeout must be a number of seconds");
  s.s3_timeout = Seconds(config.s3_timeout_s);
  s.kvs_source = config.source == "kvs";
  if (!std::isfinite(config.kvs_timeout_s))
    return InvalidArgument("--kvs-timeout must be a number of seconds");
  s.kvs_timeout = Seconds(config.kvs_timeout_s);
  s.auth = config.auth == "on";
  auto allow = ParseCidrs("--pull-allow", config.pull_allow);
  if (!allow.ok()) return allow.status();
  auto deny = ParseCidrs("--pull-deny", config.pull_deny);
  if (!deny.ok()) return deny.status();
  s.pull_allow = std::move(*allow);
  s.pull_deny = std::move(*deny);
  s.node_id = config.node_id.empty() ? http::DefaultNodeId() : config.node_id;
  if (Status st = http::ValidateNodeId(s.node_id); !st.ok())
    return InvalidArgument("--node-id: " + st.message());
  for (const std::string& text : config.peers) {
    if (text.empty()) continue;  // "a,,b" or a trailing comma
    auto peer = http::ParsePeer(text);
    if (!peer.ok()) return peer.status();
    s.peers.push_back(std::move(*peer));
  }
  if (!std::isfinite(config.peer_timeout_s))
    return InvalidArgument("--peer-timeout must be a number of seconds");
  s.peer_timeout = Seconds(config.peer_timeout_s);
  if (!config.pull_route.empty()) {
    auto route = http::ParsePeer(config.pull_route);
    if (!route.ok() || !route->dns_host.empty())
      return InvalidArgument("--pull-route: '" + config.pull_route +
                             "' is not an http(s)://HOST[:PORT] URL of the router");
    s.pull_route = route->url;
  }
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  s.io_threads = config.io_threads ? config.io_threads : std::min<size_t>(cores, 4);
  s.workers = config.workers ? config.workers : cores;
  s.max_queued = config.max_queued ? config.max_queued : 64 * s.workers;
  return s;
}

}  // namespace lastframe::app
