#pragma once

// The command line of `lastframe serve` and `lastframe keys`: the flags as
// given (ServeConfig, KeysConfig), registered once on a CLI11 command with
// their LASTFRAME_* environment names, read from a --config file too, and
// checked into the typed settings the modules take (ServeSettings).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "aws/sigv4.h"
#include "core/status.h"
#include "http/cluster.h"
#include "ingest/pull_policy.h"
#include "objects/s3_store.h"

namespace CLI {
class App;
}

namespace lastframe::app {

inline constexpr const char* kVersion = "0.1.0";

// `lastframe serve`'s flags as given; the defaults are the flags' (README's table).
struct ServeConfig {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./lastframe-data";
  std::string public_url;
  int64_t retention_s = 60;
  int64_t live_window_s = 10;
  bool demo = false;
  std::string access_key;
  std::string secret_key;
  std::string bucket = "lastframe";
  int64_t objects_max_age_s = 0;
  uint64_t objects_max_bytes = 4ull << 30;
  uint64_t max_object_bytes = 64ull << 20;
  int64_t multipart_expiry_s = 24 * 3600;
  std::string store = "local";
  std::string archive;  // "": no shared archive
  std::string s3_endpoint;
  std::string s3_region;
  std::string s3_addressing = "auto";
  std::string s3_access_key;
  std::string s3_secret_key;
  std::string s3_session_token;
  std::string aws_profile;
  double s3_timeout_s = 12;
  size_t io_threads = 0;
  size_t workers = 0;
  size_t max_queued = 0;
  size_t warm_decoders = 64;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string request_log_level = "info";
  std::string config;
  int producer_timeout_s = 30;
  bool no_persist = false;
  int64_t memory_retention_s = 10;
  bool unsigned_putmedia = false;
  std::string source = "local";
  std::string kvs_endpoint;
  std::string kvs_region;
  std::string kvs_access_key;
  std::string kvs_secret_key;
  std::string kvs_session_token;
  double kvs_timeout_s = 10;
  uint64_t fragments_max_bytes = 16ull << 30;
  std::string auth = "on";
  std::string keys_file;
  bool public_metrics = false;
  int64_t max_url_expiry_s = 86'400;
  std::vector<std::string> pull_allow;
  std::vector<std::string> pull_deny;
  size_t max_connections = 0;
  size_t max_connections_per_ip = 2048;
  uint64_t max_buffered_bytes = 128ull << 20;
  size_t max_streams = 4096;
  size_t max_pulls = 256;
  size_t max_producers = 1024;
  std::string max_render_pixels = "3840x2160";
  std::string node_id;  // "": the host name
  std::vector<std::string> peers;
  double peer_timeout_s = 1.5;
  std::string pull_route;  // "": every configured camera pulled here

  bool operator==(const ServeConfig&) const = default;
};

// `lastframe keys ...`'s flags as given.
struct KeysConfig {
  std::string data_dir = "./lastframe-data";
  std::string keys_file;
  std::string role;
  std::string streams = "*";
  int64_t expires_in_s = 0;
  std::string label;
  std::string id;
};

// Registers every flag of `lastframe serve` on |command|, bound to |config|'s
// members (whose values are the defaults shown): --NAME, which LASTFRAME_NAME
// sets too (--s3-endpoint: LASTFRAME_S3_ENDPOINT). CLI11 checks ranges and
// choices as it parses; ValidateServeConfig checks the rest.
void AddServeFlags(CLI::App& command, ServeConfig& config);

// Sets each flag of `lastframe serve` that neither the command line nor its
// LASTFRAME_* variable gave from the TOML file --config names
// (|config|.config; nothing when it is empty), so that a flag wins over its
// variable, which wins over the file. To call once |command|, on which
// AddServeFlags registered |config|, has parsed the command line. A key is a
// long flag's name without "--" (data-dir = "/var/lib/lastframe"), holding a
// string, an integer, a number, true or false (a switch), a byte count (an
// integer or "4GiB") or an array of strings (a repeatable flag), as the flag
// takes; CLI11 checks and converts it as it does the flag's. [[streams]] is
// left to LoadSourcesConfig. InvalidArgument naming the file and the key when
// the file cannot be read or parsed (core's ParseToml), a key is no flag (or
// is "config"), a value has the wrong type, or the flag's checks or
// ValidateServeConfig refuse it.
Status ApplyConfigFile(CLI::App& command, ServeConfig& config);

// The keys a --config file may hold besides [[streams]]: every flag of
// `lastframe serve` but --config, by name ("data-dir").
const std::set<std::string>& ConfigFileKeys();

// Registers --data-dir and --keys-file, which say where the keys file is, on
// one of `lastframe keys`' subcommands.
void AddKeysFileFlags(CLI::App& command, KeysConfig& config);

// The keys file: |keys_file|, or DATA_DIR/keys.json when it is empty.
std::filesystem::path KeysFileOf(const std::string& data_dir, const std::string& keys_file);

// A ServeConfig checked, in the types the modules take. What a flag gives as
// it is (paths, names, counts) is read from |flags|.
struct ServeSettings {
  ServeConfig flags;
  std::string host;  // --listen, brackets of an IPv6 address removed
  uint16_t port = 0;
  int64_t retention_ms = 0;
  int64_t memory_retention_ms = 0;  // --memory-retention: the store's bound without an archive
  // --access-key and --secret-key; nullopt: the data directory's own pair.
  std::optional<aws::Credentials> store_credentials;
  uint64_t max_render_pixels = 0;  // --max-render-pixels, WIDTH times HEIGHT
  bool local_store = true;         // --store local; else S3, at:
  std::string s3_bucket;
  std::string s3_prefix;
  objects::S3Addressing s3_addressing = objects::S3Addressing::kAuto;
  std::chrono::milliseconds s3_timeout{0};
  // --archive s3://BUCKET[/PREFIX]: the shared archive, reached with the
  // --s3-* flags as --store s3:// is; empty bucket: none.
  std::string archive_bucket;
  std::string archive_prefix;
  bool kvs_source = false;  // --source kvs
  std::chrono::milliseconds kvs_timeout{0};
  bool auth = true;  // --auth on
  std::vector<ingest::Cidr> pull_allow;
  std::vector<ingest::Cidr> pull_deny;
  std::string node_id;                // --node-id, or the host name (http::DefaultNodeId)
  std::vector<http::PeerSpec> peers;  // --peers, empty entries left out
  std::chrono::milliseconds peer_timeout{0};
  // --pull-route: the router (HAProxy) whose choice of node decides which
  // configured cameras this node pulls; "" pulls them all.
  std::string pull_route;
  // 0 in the flags means "from the machine": resolved here.
  size_t io_threads = 0;
  size_t workers = 0;
  size_t max_queued = 0;
};

// Checks |config| without touching the disk or the network, in the order the
// flags are listed. InvalidArgument whose message is what the user is told,
// naming the flag ("--listen must be HOST:PORT, got 'x'"), when one cannot be
// served: a malformed --listen, --max-render-pixels or --store, a retention
// under a second, --access-key without --secret-key (or the reverse), an
// embedded-store bucket that would hide one of the API's routes, a malformed
// --archive or one with --no-persist or --source kvs, a bad CIDR,
// a --node-id that is no short token, a --peers entry that is neither a
// node's http(s) URL nor dns://HOST:PORT.
Result<ServeSettings> ValidateServeConfig(const ServeConfig& config);

}  // namespace lastframe::app
