#include "app/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

#include "http/api.h"
#include "ingest/sources_config.h"
#include "support/temp_dir.h"

namespace lastframe::app {
namespace {

// The message ValidateServeConfig refuses |config| with ("" when it accepts it).
std::string Refusal(const ServeConfig& config) {
  auto settings = ValidateServeConfig(config);
  if (settings.ok()) return "";
  EXPECT_EQ(settings.status().code(), Code::kInvalidArgument);
  return settings.status().message();
}

TEST(ValidateServeConfig, TheDefaultsAreServedAsTheFlagsSay) {
  auto s = ValidateServeConfig(ServeConfig{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->host, "127.0.0.1");
  EXPECT_EQ(s->port, 8080);
  EXPECT_EQ(s->retention_ms, 60'000);
  EXPECT_EQ(s->memory_retention_ms, 10'000);
  EXPECT_EQ(s->max_render_pixels, 3840u * 2160u);
  EXPECT_FALSE(s->store_credentials);
  EXPECT_TRUE(s->local_store);
  EXPECT_TRUE(s->auth);
  EXPECT_FALSE(s->kvs_source);
  EXPECT_EQ(s->s3_timeout, std::chrono::milliseconds(12'000));
  EXPECT_EQ(s->kvs_timeout, std::chrono::milliseconds(10'000));
  EXPECT_GE(s->io_threads, 1u);
  EXPECT_LE(s->io_threads, 4u);
  EXPECT_GE(s->workers, 1u);
  EXPECT_EQ(s->max_queued, 64 * s->workers);
  EXPECT_EQ(s->node_id, http::DefaultNodeId());
  EXPECT_TRUE(s->peers.empty());
  EXPECT_EQ(s->peer_timeout, std::chrono::milliseconds(1500));
}

TEST(ValidateServeConfig, NodeIdIsAShortToken) {
  ServeConfig c;
  c.node_id = "cams-b.rack_2";
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->node_id, "cams-b.rack_2");
  for (const std::string& bad :
       std::vector<std::string>{"a b", "a/b", "node:1", std::string(65, 'n'), "caf\xc3\xa9"}) {
    c.node_id = bad;
    EXPECT_EQ(Refusal(c).rfind("--node-id: a node id is 1 to 64 characters", 0), 0u)
        << bad << ": " << Refusal(c);
  }
}

TEST(ValidateServeConfig, PeersAreNodeUrlsOrADnsName) {
  ServeConfig c;
  c.peers = {"http://10.0.0.5:8080/", "", "dns://lastframe.internal:8080", "HTTPS://B.example"};
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->peers.size(), 3u);  // the empty entry ("a,,b") left out
  EXPECT_EQ(s->peers[0].url, "http://10.0.0.5:8080");
  EXPECT_EQ(s->peers[1].dns_host, "lastframe.internal");
  EXPECT_EQ(s->peers[1].dns_port, 8080);
  EXPECT_EQ(s->peers[2].url, "https://b.example");
  for (const char* bad : {"10.0.0.5:8080", "dns://lastframe.internal", "http://a?x=1"}) {
    c.peers = {bad};
    EXPECT_EQ(Refusal(c).rfind(std::string("--peers: '") + bad + "'", 0), 0u) << Refusal(c);
  }
}

TEST(ValidateServeConfig, PullRouteIsTheRoutersUrl) {
  ServeConfig c;
  auto none = ValidateServeConfig(c);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->pull_route, "");
  c.pull_route = "HTTP://HAProxy.internal:8080/";
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->pull_route, "http://haproxy.internal:8080");
  for (const char* bad :
       {"haproxy:8080", "dns://haproxy.internal:8080", "ftp://h", "http://a?b=1"}) {
    c.pull_route = bad;
    EXPECT_EQ(Refusal(c).rfind(std::string("--pull-route: '") + bad + "'", 0), 0u) << Refusal(c);
  }
}

TEST(ServeFlags, PeersAreACommaListOrRepeatedAndComeFromTheEnvironmentToo) {
  {
    CLI::App cli;
    ServeConfig c;
    AddServeFlags(cli, c);
    cli.parse("--peers http://a:1,http://b:2 --peers dns://c:3 --node-id n1 --peer-timeout 0.25",
              false);
    EXPECT_EQ(c.peers, (std::vector<std::string>{"http://a:1", "http://b:2", "dns://c:3"}));
    EXPECT_EQ(c.node_id, "n1");
    EXPECT_EQ(c.peer_timeout_s, 0.25);
    EXPECT_THROW(cli.parse("--peer-timeout 0", false), CLI::ValidationError);
    EXPECT_THROW(cli.parse("--peer-timeout 61", false), CLI::ValidationError);
  }
  CLI::App cli;
  ServeConfig c;
  AddServeFlags(cli, c);
  ::setenv("LASTFRAME_PEERS", "http://a:1,http://b:2", 1);
  ::setenv("LASTFRAME_NODE_ID", "from-env", 1);
  cli.parse("", false);
  ::unsetenv("LASTFRAME_PEERS");
  ::unsetenv("LASTFRAME_NODE_ID");
  EXPECT_EQ(c.peers, (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_EQ(c.node_id, "from-env");
}

TEST(ValidateServeConfig, ListenIsHostColonPort) {
  for (const char* bad : {"8080", ":8080", "localhost", "127.0.0.1:", "127.0.0.1:http",
                          "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x"}) {
    ServeConfig c;
    c.listen = bad;
    EXPECT_EQ(Refusal(c), "--listen must be HOST:PORT, got '" + std::string(bad) + "'");
  }
  ServeConfig c;
  c.listen = "[::1]:0";
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->host, "::1");
  EXPECT_EQ(s->port, 0);
}

TEST(ValidateServeConfig, MaxRenderPixelsIsWidthByHeight) {
  for (const char* bad :
       {"4k", "3840", "3840x", "x2160", "0x2160", "3840x0", "3840*2160", "3840x2160x", "-1x-1"}) {
    ServeConfig c;
    c.max_render_pixels = bad;
    EXPECT_EQ(Refusal(c), "--max-render-pixels must be WIDTHxHEIGHT, e.g. 3840x2160") << bad;
  }
  ServeConfig c;
  c.max_render_pixels = "1920x1080";
  EXPECT_EQ(ValidateServeConfig(c)->max_render_pixels, 1920u * 1080u);
}

TEST(ValidateServeConfig, AccessKeyAndSecretKeyGoTogether) {
  ServeConfig lonely_access;
  lonely_access.access_key = "AKID";
  EXPECT_EQ(Refusal(lonely_access), "--access-key and --secret-key go together");
  ServeConfig lonely_secret;
  lonely_secret.secret_key = "secret";
  EXPECT_EQ(Refusal(lonely_secret), "--access-key and --secret-key go together");
  ServeConfig both = lonely_access;
  both.secret_key = "secret";
  auto s = ValidateServeConfig(both);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->store_credentials);
  EXPECT_EQ(s->store_credentials->access_key_id, "AKID");
}

TEST(ValidateServeConfig, RetentionIsAtLeastASecond) {
  ServeConfig c;
  c.retention_s = 0;
  EXPECT_EQ(Refusal(c), "--retention must be at least 1 second");
  c = {};
  c.memory_retention_s = 0;
  EXPECT_EQ(Refusal(c), "--memory-retention must be at least 1 second");
}

TEST(ValidateServeConfig, TheEmbeddedStoreBucketMayNotHideARoute) {
  // Every route of the API, in lowercase as bucket names are.
  for (std::string segment : http::Api::ReservedPathSegments()) {
    std::transform(segment.begin(), segment.end(), segment.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    ServeConfig c;
    c.bucket = segment;
    EXPECT_EQ(Refusal(c), "--bucket '" + segment + "' would hide the API's /" + segment +
                              " routes: choose another name");
    c.store = "s3://snaps";  // the bucket is not served then
    EXPECT_EQ(Refusal(c), "");
  }
  ServeConfig c;
  c.bucket = "v1s";
  EXPECT_EQ(Refusal(c), "");
}

TEST(ValidateServeConfig, StoreIsLocalOrAnS3Uri) {
  ServeConfig c;
  c.store = "gcs://bucket";
  EXPECT_EQ(Refusal(c).rfind("--store must be 'local' or s3://BUCKET[/PREFIX]: ", 0), 0u)
      << Refusal(c);
  c.store = "s3://snaps/cams/gate";
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->local_store);
  EXPECT_EQ(s->s3_bucket, "snaps");
  EXPECT_EQ(s->s3_prefix, "cams/gate/");  // keys go under it
}

TEST(ValidateServeConfig, ArchiveIsAnS3UriBesideTheFragmentFiles) {
  ServeConfig c;
  c.archive = "s3://video/site-a/";
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->archive_bucket, "video");
  EXPECT_EQ(s->archive_prefix, "site-a/");
  EXPECT_TRUE(s->local_store);  // images may go elsewhere
  EXPECT_EQ(ValidateServeConfig(ServeConfig{})->archive_bucket, "");
  for (const char* bad : {"video", "s3://Bad_Bucket", "s3://video/../x", "gcs://video"}) {
    c.archive = bad;
    EXPECT_EQ(Refusal(c).rfind("--archive must be s3://BUCKET[/PREFIX]: ", 0), 0u) << Refusal(c);
  }
  c.archive = "s3://video";
  c.no_persist = true;
  EXPECT_EQ(Refusal(c).rfind("--archive cannot go with --no-persist", 0), 0u) << Refusal(c);
  c.no_persist = false;
  c.source = "kvs";
  EXPECT_EQ(Refusal(c).rfind("--archive cannot go with --source kvs", 0), 0u) << Refusal(c);
}

TEST(ValidateServeConfig, PullPolicyRangesAreCidrs) {
  ServeConfig c;
  c.pull_allow = {"127.0.0.0/8"};
  c.pull_deny = {"10.0.0.0/33"};
  EXPECT_EQ(Refusal(c).rfind("--pull-deny: ", 0), 0u) << Refusal(c);
  c.pull_deny = {"10.0.0.0/8", "::1"};
  auto s = ValidateServeConfig(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->pull_allow.size(), 1u);
  EXPECT_EQ(s->pull_deny.size(), 2u);
}

TEST(ServeFlags, EachFlagHasItsEnvironmentName) {
  CLI::App cli;
  ServeConfig c;
  AddServeFlags(cli, c);
  size_t flags = 0;
  for (const CLI::Option* o : cli.get_options()) {
    if (o->get_name() == "--help") continue;
    std::string env = "LASTFRAME_";
    for (char ch : o->get_name().substr(2)) env += ch == '-' ? '_' : std::toupper(ch);
    EXPECT_EQ(o->get_envname(), env) << o->get_name();
    ++flags;
  }
  EXPECT_EQ(flags, 60u);  // every flag of `lastframe serve`
}

TEST(ServeFlags, ParseIntoTheConfigFromArgumentsAndEnvironment) {
  CLI::App cli;
  ServeConfig c;
  AddServeFlags(cli, c);
  ::setenv("LASTFRAME_S3_ENDPOINT", "http://127.0.0.1:9000", 1);
  cli.parse("--listen 0.0.0.0:9 --objects-max-size 1GiB --demo --pull-allow 127.0.0.0/8", false);
  ::unsetenv("LASTFRAME_S3_ENDPOINT");
  EXPECT_EQ(c.listen, "0.0.0.0:9");
  EXPECT_EQ(c.objects_max_bytes, 1ull << 30);
  EXPECT_TRUE(c.demo);
  EXPECT_EQ(c.pull_allow, std::vector<std::string>{"127.0.0.0/8"});
  EXPECT_EQ(c.s3_endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c.data_dir, "./lastframe-data");  // untouched: the default
  EXPECT_THROW(cli.parse("--retention 0", false), CLI::ValidationError);
  EXPECT_THROW(cli.parse("--memory-retention 0", false), CLI::ValidationError);
  cli.parse("--no-persist --memory-retention 30", false);
  EXPECT_TRUE(c.no_persist);
  EXPECT_EQ(c.memory_retention_s, 30);
  EXPECT_THROW(cli.parse("--log-format xml", false), CLI::ValidationError);
  EXPECT_THROW(cli.parse("--request-log-level loud", false), CLI::ValidationError);
  cli.parse("--log-format json --request-log-level info", false);
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.request_log_level, "info");
}

// `lastframe serve` as main parses it: |args| (and the environment), then
// the --config file those name. The config, or the message ApplyConfigFile
// refused the file with.
struct Parsed {
  ServeConfig config;
  std::string refusal;
};
Parsed ParseServe(const std::string& args) {
  CLI::App cli;
  Parsed p;
  AddServeFlags(cli, p.config);
  cli.parse(args, false);
  if (Status s = ApplyConfigFile(cli, p.config); !s.ok()) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
    p.refusal = s.message();
  }
  return p;
}

// A value for each flag of `lastframe serve` other than its default, as a
// --config file's lines and as command-line arguments.
const std::map<std::string, std::pair<std::string, std::string>>& FlagExamples() {
  static const std::map<std::string, std::pair<std::string, std::string>> examples = {
      {"listen", {"listen = \"0.0.0.0:9000\"", "--listen 0.0.0.0:9000"}},
      {"data-dir", {"data-dir = \"/var/lib/lastframe\"", "--data-dir /var/lib/lastframe"}},
      {"public-url",
       {"public-url = \"https://cams.example\"", "--public-url https://cams.example"}},
      {"retention", {"retention = 120", "--retention 120"}},
      {"live-window", {"live-window = 20", "--live-window 20"}},
      {"demo", {"demo = true", "--demo"}},
      // Only together (ValidateServeConfig).
      {"access-key",
       {"access-key = \"AKID\"\nsecret-key = \"s3cr3t\"", "--access-key AKID --secret-key s3cr3t"}},
      {"secret-key",
       {"access-key = \"AKID\"\nsecret-key = \"s3cr3t\"", "--access-key AKID --secret-key s3cr3t"}},
      {"bucket", {"bucket = \"photos\"", "--bucket photos"}},
      {"objects-max-age", {"objects-max-age = 3600", "--objects-max-age 3600"}},
      {"objects-max-size", {"objects-max-size = \"1GiB\"", "--objects-max-size 1073741824"}},
      {"max-object-size", {"max-object-size = 1048576", "--max-object-size 1MiB"}},
      {"multipart-expiry", {"multipart-expiry = 600", "--multipart-expiry 600"}},
      {"store", {"store = \"s3://snaps/cams\"", "--store s3://snaps/cams"}},
      {"archive", {"archive = \"s3://video/site-a\"", "--archive s3://video/site-a"}},
      {"s3-endpoint",
       {"s3-endpoint = \"http://127.0.0.1:9000\"", "--s3-endpoint http://127.0.0.1:9000"}},
      {"s3-region", {"s3-region = \"eu-west-1\"", "--s3-region eu-west-1"}},
      {"s3-addressing", {"s3-addressing = \"path\"", "--s3-addressing path"}},
      {"s3-access-key", {"s3-access-key = \"AKIA1\"", "--s3-access-key AKIA1"}},
      {"s3-secret-key", {"s3-secret-key = \"secret1\"", "--s3-secret-key secret1"}},
      {"s3-session-token", {"s3-session-token = \"token1\"", "--s3-session-token token1"}},
      {"aws-profile", {"aws-profile = \"cams\"", "--aws-profile cams"}},
      {"s3-timeout", {"s3-timeout = 2.5", "--s3-timeout 2.5"}},
      {"io-threads", {"io-threads = 2", "--io-threads 2"}},
      {"workers", {"workers = 3", "--workers 3"}},
      {"max-queued", {"max-queued = 99", "--max-queued 99"}},
      {"warm-decoders", {"warm-decoders = 8", "--warm-decoders 8"}},
      {"producer-timeout", {"producer-timeout = 5", "--producer-timeout 5"}},
      {"fragments-max-size", {"fragments-max-size = \"2GiB\"", "--fragments-max-size 2GiB"}},
      {"no-persist", {"no-persist = true", "--no-persist"}},
      {"memory-retention", {"memory-retention = 30", "--memory-retention 30"}},
      {"source", {"source = \"kvs\"", "--source kvs"}},
      {"kvs-endpoint",
       {"kvs-endpoint = \"http://10.0.0.5:8080\"", "--kvs-endpoint http://10.0.0.5:8080"}},
      {"kvs-region", {"kvs-region = \"eu-west-1\"", "--kvs-region eu-west-1"}},
      {"kvs-access-key", {"kvs-access-key = \"AKIA2\"", "--kvs-access-key AKIA2"}},
      {"kvs-secret-key", {"kvs-secret-key = \"secret2\"", "--kvs-secret-key secret2"}},
      {"kvs-session-token", {"kvs-session-token = \"token2\"", "--kvs-session-token token2"}},
      {"kvs-timeout", {"kvs-timeout = 3", "--kvs-timeout 3"}},
      {"unsigned-putmedia", {"unsigned-putmedia = true", "--unsigned-putmedia"}},
      {"auth", {"auth = \"off\"", "--auth off"}},
      {"keys-file",
       {"keys-file = \"/etc/lastframe/keys.json\"", "--keys-file /etc/lastframe/keys.json"}},
      {"public-metrics", {"public-metrics = true", "--public-metrics"}},
      {"max-url-expiry", {"max-url-expiry = 600", "--max-url-expiry 600"}},
      {"pull-allow",
       {"pull-allow = [\"127.0.0.0/8\", \"::1/128\"]",
        "--pull-allow 127.0.0.0/8 --pull-allow ::1/128"}},
      {"pull-deny", {"pull-deny = [\"10.9.0.0/16\"]", "--pull-deny 10.9.0.0/16"}},
      {"max-connections", {"max-connections = 500", "--max-connections 500"}},
      {"max-connections-per-ip", {"max-connections-per-ip = 16", "--max-connections-per-ip 16"}},
      {"max-buffered-bytes", {"max-buffered-bytes = 268435456", "--max-buffered-bytes 268435456"}},
      {"max-streams", {"max-streams = 10", "--max-streams 10"}},
      {"max-pulls", {"max-pulls = 11", "--max-pulls 11"}},
      {"max-producers", {"max-producers = 12", "--max-producers 12"}},
      {"max-render-pixels", {"max-render-pixels = \"1920x1080\"", "--max-render-pixels 1920x1080"}},
      {"log-level", {"log-level = \"debug\"", "--log-level debug"}},
      {"log-format", {"log-format = \"json\"", "--log-format json"}},
      {"request-log-level", {"request-log-level = \"off\"", "--request-log-level off"}},
      {"node-id", {"node-id = \"node-b\"", "--node-id node-b"}},
      {"peers",
       {"peers = [\"http://10.0.0.5:8080\", \"dns://lastframe.internal:8080\"]",
        "--peers http://10.0.0.5:8080,dns://lastframe.internal:8080"}},
      {"peer-timeout", {"peer-timeout = 0.5", "--peer-timeout 0.5"}},
      {"pull-route",
       {"pull-route = \"http://haproxy.internal:8080\"",
        "--pull-route http://haproxy.internal:8080"}},
  };
  return examples;
}

// Every flag, read from CLI11's own list (so a new flag fails here until it
// has an example), sets the same config from the file as from the command line.
TEST(ConfigFile, EveryFlagCanComeFromTheFile) {
  testing::TempDir dir;
  const std::string file = dir.file("lastframe.toml");
  CLI::App cli;
  ServeConfig unused;
  AddServeFlags(cli, unused);
  size_t checked = 0;
  for (const CLI::Option* o : cli.get_options()) {
    const std::string name = o->get_name().substr(2);
    if (name == "help" || name == "config") continue;
    EXPECT_TRUE(ConfigFileKeys().contains(name)) << name;
    auto example = FlagExamples().find(name);
    if (example == FlagExamples().end()) {
      ADD_FAILURE() << "--" << name << " has no example in FlagExamples: give it one";
      continue;
    }
    const auto& [toml_lines, args] = example->second;
    testing::WriteFile(file, toml_lines + "\n");
    Parsed from_file = ParseServe("--config " + file);
    EXPECT_EQ(from_file.refusal, "") << name;
    from_file.config.config.clear();
    Parsed from_flags = ParseServe(args);
    EXPECT_TRUE(from_file.config == from_flags.config) << name << ": " << toml_lines;
    EXPECT_FALSE(from_flags.config == ServeConfig{}) << name << ": the example is the default";
    ++checked;
  }
  EXPECT_EQ(checked, 59u);  // every flag of `lastframe serve` but --config (and --help)
  EXPECT_EQ(ConfigFileKeys().size(), checked);
  EXPECT_FALSE(ConfigFileKeys().contains("config"));

  // All of them in one file, as a packaged file would hold many.
  std::string all_lines, all_args;
  for (const auto& [name, example] : FlagExamples())
    // access-key's example holds secret-key; archive goes with neither
    // no-persist nor source = "kvs", which the file holds too.
    if (name != "secret-key" && name != "archive") {
      all_lines += example.first + "\n";
      all_args += " " + example.second;
    }
  testing::WriteFile(file, all_lines);
  Parsed all = ParseServe("--config " + file);
  EXPECT_EQ(all.refusal, "");
  all.config.config.clear();
  EXPECT_TRUE(all.config == ParseServe(all_args).config);
}

TEST(ConfigFile, AFlagWinsOverItsVariableWhichWinsOverTheFile) {
  testing::TempDir dir;
  const std::string file = dir.file("lastframe.toml");
  testing::WriteFile(file,
                     "# the file\n"
                     "retention = 5\n"
                     "demo = true\n"
                     "pull-allow = [\"10.1.0.0/16\", \"10.2.0.0/16\"]\n"
                     "data-dir = \"/var/lib/lastframe\"\n"
                     "listen = \"127.0.0.1:9001\"\n");
  const std::string config = "--config " + file;
  // The file alone.
  ServeConfig c = ParseServe(config).config;
  EXPECT_EQ(c.retention_s, 5);
  EXPECT_TRUE(c.demo);
  EXPECT_EQ(c.pull_allow, (std::vector<std::string>{"10.1.0.0/16", "10.2.0.0/16"}));
  EXPECT_EQ(c.data_dir, "/var/lib/lastframe");
  EXPECT_EQ(c.listen, "127.0.0.1:9001");
  EXPECT_EQ(c.live_window_s, 10);  // in no file: the default

  // A variable over the file; a switch and a list too.
  ::setenv("LASTFRAME_RETENTION", "6", 1);
  ::setenv("LASTFRAME_DEMO", "false", 1);
  ::setenv("LASTFRAME_PULL_ALLOW", "10.3.0.0/16", 1);
  c = ParseServe(config).config;
  EXPECT_EQ(c.retention_s, 6);
  EXPECT_FALSE(c.demo);
  EXPECT_EQ(c.pull_allow, std::vector<std::string>{"10.3.0.0/16"});
  EXPECT_EQ(c.data_dir, "/var/lib/lastframe");  // the file's still, where no variable is

  // A flag over both.
  c = ParseServe(config + " --retention 7 --pull-allow 10.4.0.0/16 --data-dir /srv/lf").config;
  EXPECT_EQ(c.retention_s, 7);
  EXPECT_EQ(c.pull_allow, std::vector<std::string>{"10.4.0.0/16"});  // replaced, not merged
  EXPECT_EQ(c.data_dir, "/srv/lf");
  EXPECT_FALSE(c.demo);                   // the variable's
  EXPECT_EQ(c.listen, "127.0.0.1:9001");  // the file's
  ::unsetenv("LASTFRAME_RETENTION");
  ::unsetenv("LASTFRAME_DEMO");
  ::unsetenv("LASTFRAME_PULL_ALLOW");

  // A flag over the file, without a variable.
  c = ParseServe(config + " --retention 8").config;
  EXPECT_EQ(c.retention_s, 8);
  EXPECT_TRUE(c.demo);

  // The file named by its variable.
  ::setenv("LASTFRAME_CONFIG", file.c_str(), 1);
  c = ParseServe("").config;
  ::unsetenv("LASTFRAME_CONFIG");
  EXPECT_EQ(c.retention_s, 5);
  EXPECT_EQ(c.config, file);
}

TEST(ConfigFile, RefusesUnknownKeysWrongTypesAndBadValuesNamingTheFileAndKey) {
  testing::TempDir dir;
  const std::string file = dir.file("lastframe.toml");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"data_dir = \"x\"",
       "key 'data_dir': not a flag of lastframe serve (did you mean 'data-dir'?)"},
      {"colour = \"blue\"", "key 'colour': not a flag of lastframe serve"},
      {"[server]\nlisten = \"0.0.0.0:80\"", "key 'server': not a flag of lastframe serve"},
      {"config = \"other.toml\"", "key 'config': a config file cannot name another"},
      {"help = true", "key 'help': not a flag of lastframe serve"},
      {"retention = \"60\"", "key 'retention': must be an integer, not string"},
      {"retention = 1.5", "key 'retention': must be an integer, not floating"},
      {"listen = 8080", "key 'listen': must be a string, not integer"},
      {"demo = \"yes\"", "key 'demo': must be true or false, not string"},
      {"demo = 1", "key 'demo': must be true or false, not integer"},
      {"pull-allow = \"10.0.0.0/8\"", "key 'pull-allow': must be an array of strings, not string"},
      {"pull-deny = [1]", "key 'pull-deny': must be an array of strings, not hold integer"},
      {"s3-timeout = \"12\"", "key 's3-timeout': must be a number, not string"},
      {"s3-timeout = nan", "key 's3-timeout': must be a finite number"},
      {"kvs-timeout = inf", "key 'kvs-timeout': must be a finite number"},
      {"objects-max-size = true", "key 'objects-max-size': must be a byte count"},
      {"store = { bucket = \"b\" }", "key 'store': must be a string, not table"},
      // Refused by the flag's own checks, as on the command line.
      {"retention = 0", "key 'retention': Value 0 not in range 1 to 31536000"},
      {"io-threads = 0", "key 'io-threads': Value 0 not in range 1 to 64"},
      {"io-threads = -1", "key 'io-threads': must not be negative"},
      {"max-connections = -1", "key 'max-connections': must not be negative"},
      {"objects-max-size = -1", "key 'objects-max-size': must not be negative"},
      {"log-format = \"xml\"", "key 'log-format': "},
      {"objects-max-size = \"4XB\"", "key 'objects-max-size': "},
      {"pull-allow = [\"10.0.0.0/33\"]", "key 'pull-allow': "},
      // Refused by ValidateServeConfig.
      {"listen = \"nope\"", "key 'listen': --listen must be HOST:PORT, got 'nope'"},
      {"max-render-pixels = \"4k\"", "key 'max-render-pixels': --max-render-pixels must be"},
      {"secret-key = \"s\"", "key 'secret-key': --access-key and --secret-key go together"},
      {"store = \"gcs://b\"", "key 'store': --store must be 'local' or s3://"},
      // What toml11 cannot read, or must not be given (core's ParseToml).
      {"listen = ", "missing value"},
      {"listen = \"\xff\"", "not UTF-8"},
      {"pull-allow = " + std::string(10'000, '['), "nested more than 32 deep"},
  };
  for (const auto& [text, why] : bad) {
    testing::WriteFile(file, text + "\n");
    const std::string refusal = ParseServe("--config " + file).refusal;
    EXPECT_NE(refusal.find(why), std::string::npos) << text << "\n-> " << refusal;
    // The file is named: first, or (toml11's syntax errors) on its " --> " line.
    EXPECT_TRUE(refusal.rfind(file + ": ", 0) == 0 ||
                refusal.find("--> " + file) != std::string::npos)
        << refusal;
  }
  // A file that cannot be read.
  CLI::App cli;
  ServeConfig c;
  AddServeFlags(cli, c);
  c.config = dir.file("missing.toml");
  Status missing = ApplyConfigFile(cli, c);
  EXPECT_EQ(missing.message().rfind(c.config + ": cannot read: ", 0), 0u) << missing.message();
  // What a flag gave wrong is the flag's to report (Service::Create), not the file's.
  testing::WriteFile(file, "retention = 5\n");
  Parsed p = ParseServe("--config " + file + " --listen nope");
  EXPECT_EQ(p.refusal, "");
  EXPECT_EQ(p.config.retention_s, 5);
  // A wrong value the flag overrides is never read.
  testing::WriteFile(file, "retention = \"sixty\"\n");
  EXPECT_EQ(ParseServe("--config " + file + " --retention 60").refusal, "");
}

// The file of flags is also the file of pulled streams ([[streams]], read
// when the service starts): each part leaves the other's keys alone.
TEST(ConfigFile, HoldsTheStreamsToPullBesideTheFlags) {
  testing::TempDir dir;
  const std::string file = dir.file("lastframe.toml");
  testing::WriteFile(file,
                     "listen = \"127.0.0.1:0\"\n"
                     "data-dir = \"/var/lib/lastframe\"\n"
                     "pull-allow = [\"127.0.0.0/8\"]\n\n"
                     "[[streams]]\nname = \"frontdoor\"\nurl = \"rtsp://10.0.0.2/s\"\n");
  Parsed p = ParseServe("--config " + file);
  EXPECT_EQ(p.refusal, "");
  EXPECT_EQ(p.config.data_dir, "/var/lib/lastframe");
  auto streams = ingest::LoadSourcesConfig(file, ConfigFileKeys());
  ASSERT_TRUE(streams.ok()) << streams.status().ToString();
  ASSERT_EQ(streams->size(), 1u);
  EXPECT_EQ((*streams)[0].stream, "frontdoor");
  // Without the flags' keys, they are unknown to the streams' reader.
  auto alone = ingest::LoadSourcesConfig(file);
  EXPECT_NE(alone.status().message().find("unknown key"), std::string::npos);
  // A mistake in [[streams]] is still the streams' reader's to find.
  testing::WriteFile(file, "listen = \"127.0.0.1:0\"\n[[streams]]\nname = \"a\"\nurll = \"x\"\n");
  EXPECT_EQ(ParseServe("--config " + file).refusal, "");
  EXPECT_NE(ingest::LoadSourcesConfig(file, ConfigFileKeys())
                .status()
                .message()
                .find("unknown key 'urll' in [[streams]]"),
            std::string::npos);
}

TEST(KeysFileFlags, TheKeysFileDefaultsToTheDataDirectorys) {
  EXPECT_EQ(KeysFileOf("/srv/lf", ""), std::filesystem::path("/srv/lf/keys.json"));
  EXPECT_EQ(KeysFileOf("/srv/lf", "/etc/lf/keys.json"), std::filesystem::path("/etc/lf/keys.json"));
  CLI::App cli;
  KeysConfig k;
  AddKeysFileFlags(cli, k);
  ::setenv("LASTFRAME_KEYS_FILE", "/etc/lf/keys.json", 1);
  cli.parse("--data-dir /srv/lf", false);
  ::unsetenv("LASTFRAME_KEYS_FILE");
  EXPECT_EQ(k.data_dir, "/srv/lf");
  EXPECT_EQ(k.keys_file, "/etc/lf/keys.json");
}

TEST(ApiRoutes, ReservedPathSegmentsAreTheRoutesFirstSegments) {
  std::vector<std::string> segments = http::Api::ReservedPathSegments();
  std::sort(segments.begin(), segments.end());
  EXPECT_EQ(segments,
            (std::vector<std::string>{"healthz", "metrics", "putMedia", "snapshot", "ui", "v1"}));
}

}  // namespace
}  // namespace lastframe::app
