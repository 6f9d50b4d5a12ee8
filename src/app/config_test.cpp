#include "app/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>

#include "http/api.h"

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
  EXPECT_EQ(flags, 55u);  // every flag of `lastframe serve`
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
