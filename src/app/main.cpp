// lastframe: the newest frame of any live stream, as a signed URL.
// This file only reads flags and wires the modules together.

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "auth/api_keys.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "core/worker_pool.h"
#include "http/api.h"
#include "http/server.h"
#include "ingest/demo_producer.h"
#include "ingest/pull_policy.h"
#include "ingest/pull_source.h"
#include "ingest/push_session.h"
#include "ingest/sources_config.h"
#include "kvs/kvs_source.h"
#include "kvs/stream_registry.h"
#include "media/ffmpeg.h"
#include "objects/aws_config.h"
#include "objects/credentials_file.h"
#include "objects/local_store.h"
#include "objects/s3_store.h"
#include "snapshot/scheduled_images.h"
#include "snapshot/snapshot_service.h"
#include "store/fragment_archive.h"
#include "store/stream_store.h"

namespace lastframe {
namespace {

constexpr const char* kVersion = "0.1.0";

struct ServeConfig {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./lastframe-data";
  std::string public_url;
  int64_t retention_s = 60;
  bool demo = false;
  std::string access_key;
  std::string secret_key;
  std::string bucket = "lastframe";
  int64_t objects_max_age_s = 0;
  uint64_t objects_max_bytes = 4ull << 30;
  uint64_t max_object_bytes = 64ull << 20;
  std::string store = "local";
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
  bool warm_all = false;
  std::string log_level = "info";
  std::string config;
  int producer_timeout_s = 30;
  bool no_persist = false;
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
};

struct KeysConfig {
  std::string data_dir = "./lastframe-data";
  std::string keys_file;
  std::string role;
  std::string streams = "*";
  int64_t expires_in_s = 0;
  std::string label;
  std::string id;
};

std::filesystem::path KeysFileOf(const std::string& data_dir, const std::string& keys_file) {
  return keys_file.empty() ? std::filesystem::path(data_dir) / "keys.json"
                           : std::filesystem::path(keys_file);
}

// `lastframe keys create|list|revoke|init`: the keys file, as a running server shares it.
int Keys(const std::string& command, const KeysConfig& k) {
  ::umask(027);
  const Clock& clock = SystemClock::Get();
  const std::filesystem::path file = KeysFileOf(k.data_dir, k.keys_file);
  if (command == "create") {
    auto role = auth::ParseRole(k.role);
    auto made = auth::CreateKey(file, *role, k.streams,
                                k.expires_in_s > 0 ? std::optional(k.expires_in_s) : std::nullopt,
                                k.label, clock);
    if (!made.ok()) {
      std::cerr << "lastframe keys create: " << made.status().message() << "\n";
      return 1;
    }
    std::cout << made->token << "\n" << std::flush;  // the only line on stdout: scripts read it
    std::cerr << "created " << auth::RoleName(made->key.role) << " key " << made->key.id
              << " for streams '" << made->key.streams << "' in " << file.string()
              << " (the token is shown once)\n";
    return 0;
  }
  if (command == "revoke") {
    Status s = auth::RevokeKey(file, k.id, clock);
    if (!s.ok()) {
      std::cerr << "lastframe keys revoke: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "revoked key " << k.id << " (a running server refuses it within 2 s)\n";
    return 0;
  }
  if (command == "init") {
    auto made = auth::CreateInitialKeys(
        file, std::filesystem::path(k.data_dir) / "initial-keys.txt", clock);
    if (!made.ok()) {
      std::cerr << "lastframe keys init: " << made.status().message() << "\n";
      return 1;
    }
    std::cerr << (*made ? "created an admin and a viewer key: " : "keys exist already: ")
              << (std::filesystem::path(k.data_dir) / "initial-keys.txt").string() << "\n";
    return 0;
  }
  auto keys = auth::LoadKeys(file);  // list
  if (!keys.ok()) {
    std::cerr << "lastframe keys list: " << keys.status().message() << "\n";
    return 1;
  }
  // The server keeps last-used times in its data directory, apart from a shared keys file.
  auto used = auth::LoadLastUsed(std::filesystem::path(k.data_dir) / "keys-used.json");
  auto when = [](std::optional<int64_t> ms) {
    return ms ? FormatIso8601Ms(*ms) : std::string("-");
  };
  std::cout << "ID            ROLE      STREAMS          CREATED                   EXPIRES         "
               "          "
               "LAST USED                 STATE    LABEL\n";
  for (const auth::ApiKey& key : *keys) {
    auto last = used.find(key.id);
    std::string state = key.revoked_ms                                       ? "revoked"
                        : key.expires_ms && *key.expires_ms <= clock.NowMs() ? "expired"
                                                                             : "active";
    std::cout << fmt::format(
        "{:<13} {:<9} {:<16} {:<25} {:<25} {:<25} {:<8} {}\n", key.id, auth::RoleName(key.role),
        key.streams, FormatIso8601Ms(key.created_ms), when(key.expires_ms),
        when(last == used.end() ? std::nullopt : std::optional(last->second)), state, key.label);
  }
  return 0;
}

// Lets the server bind (and learn its port) before the routes, which need the
// public URL, exist. Nothing is served before Set: the server is not running.
class DeferredApplication final : public http::Application {
 public:
  void Set(http::Application* app) { app_ = app; }
  void Handle(http::Request r, http::Respond respond) override {
    app_->Handle(std::move(r), std::move(respond));
  }
  bool IsUpload(const http::Request& r) const override { return app_->IsUpload(r); }
  std::variant<std::unique_ptr<http::UploadSink>, http::Response> StartUpload(
      const http::Request& r, http::UploadEvents events) override {
    return app_->StartUpload(r, std::move(events));
  }
  std::optional<http::Response> Admit(const http::Request& r) override { return app_->Admit(r); }
  std::optional<uint64_t> BodyLimit(const http::Request& r) const override {
    return app_->BodyLimit(r);
  }
  http::Response TooLarge(const http::Request& r, uint64_t limit) const override {
    return app_->TooLarge(r, limit);
  }

 private:
  http::Application* app_ = nullptr;
};

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

int Serve(const ServeConfig& cfg) {
  // Fragments, objects and keys are the owner's (and its group's), never the world's.
  ::umask(027);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  media::QuietFfmpegLogs();
  // A file-size limit (ulimit -f) must fail a write, as a full disk does, not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
  const Clock& clock = SystemClock::Get();

  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(cfg.listen, &host, &port)) {
    spdlog::critical("--listen must be HOST:PORT, got '{}'", cfg.listen);
    return 2;
  }
  if (cfg.retention_s < 1) {
    spdlog::critical("--retention must be at least 1 second");
    return 2;
  }
  std::error_code ec;
  std::filesystem::path data_dir = std::filesystem::absolute(cfg.data_dir, ec).lexically_normal();
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data directory {}: {}", cfg.data_dir, ec.message());
    return 2;
  }

  objects::Credentials credentials;
  const bool credentials_given = !cfg.access_key.empty() || !cfg.secret_key.empty();
  if (credentials_given) {
    if (cfg.access_key.empty() || cfg.secret_key.empty()) {
      spdlog::critical("--access-key and --secret-key go together");
      return 2;
    }
    credentials = {cfg.access_key, Secret(cfg.secret_key), ""};
  } else {
    auto loaded = objects::LoadOrCreateCredentials(data_dir / "credentials.json");
    if (!loaded.ok()) {
      spdlog::critical("{}", loaded.status().ToString());
      return 2;
    }
    credentials = std::move(*loaded);
  }

  // Every connection, fragment file and decoder takes a descriptor: use all we may.
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &fds) != 0) spdlog::warn("cannot raise the descriptor limit");
  }
  uint64_t render_pixels = 0;
  {
    int w = 0, h = 0;
    char x = 0, extra = 0;
    if (std::sscanf(cfg.max_render_pixels.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 ||
        x != 'x' || w < 1 || h < 1) {
      spdlog::critical("--max-render-pixels must be WIDTHxHEIGHT, e.g. 3840x2160");
      return 2;
    }
    render_pixels = static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
  }
  Limits limits;
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  http::ServerOptions server_options;
  server_options.limits = &limits;
  server_options.max_connections = cfg.max_connections;
  server_options.max_connections_per_ip = cfg.max_connections_per_ip;
  server_options.max_buffered_bytes = cfg.max_buffered_bytes;
  server_options.host = host;
  server_options.port = port;
  server_options.io_threads = cfg.io_threads ? cfg.io_threads : std::min<size_t>(cores, 4);
  server_options.upload_idle_timeout = std::chrono::seconds(cfg.producer_timeout_s);
  DeferredApplication deferred;
  http::Server server(server_options, deferred);
  if (Status s = server.Listen(); !s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }
  std::string url_host = host;
  if (host == "0.0.0.0" || host == "::")
    url_host = "127.0.0.1";
  else if (host.find(':') != std::string::npos)
    url_host = "[" + host + "]";
  const std::string listen_url = "http://" + url_host + ":" + std::to_string(server.port());
  std::string public_url = cfg.public_url.empty() ? listen_url : cfg.public_url;
  if (cfg.public_url.empty() && url_host != host)
    spdlog::warn("listening on all interfaces, but URLs name {}: set --public-url for other hosts",
                 url_host);

  store::StreamStore streams(clock,
                             {.retention_ms = cfg.retention_s * 1000,
                              .stream_limit = &limits.Add("streams", "streams", cfg.max_streams)});
  // Durable fragments: back from disk before any producer connects.
  std::unique_ptr<store::FragmentArchive> archive;
  if (!cfg.no_persist) {
    auto opened = store::FragmentArchive::Open(data_dir / "fragments");
    if (!opened.ok()) {
      spdlog::critical("{}", opened.status().ToString());
      return 2;
    }
    archive = std::move(*opened);
    archive->Trim(clock.NowMs(), cfg.retention_s * 1000, streams.options().max_bytes_per_stream,
                  cfg.fragments_max_bytes);
    store::RecoveryReport recovered = archive->Recover();
    spdlog::info("fragments recovered from {}: {} in {} streams ({} torn or unreadable removed)",
                 (data_dir / "fragments").string(), recovered.fragments, recovered.streams.size(),
                 recovered.discarded);
    streams.Restore(std::move(recovered.streams));
    streams.SetArchive(archive.get());
  }
  // Kinesis Video's view of the streams (ARNs, versions, image generation).
  auto registry = kvs::StreamRegistry::Open(cfg.no_persist ? std::filesystem::path()
                                                           : data_dir / "kvs-streams.json");
  if (!registry.ok()) {
    spdlog::critical("{}", registry.status().ToString());
    return 2;
  }
  for (const kvs::StreamMeta& m : (*registry)->All())
    if (!streams.Find(m.name)) {
      std::optional<int64_t> retention;
      if (m.retention_hours && *m.retention_hours > 0) retention = *m.retention_hours * 3'600'000;
      if (auto made = streams.Create(m.name, retention); !made.ok())
        spdlog::warn("Kinesis Video stream '{}' not restored: {}", m.name, made.status().message());
    }
  std::vector<ingest::PullOptions> configured;
  if (!cfg.config.empty()) {
    auto loaded = ingest::LoadSourcesConfig(cfg.config);
    if (!loaded.ok()) {
      spdlog::critical("--config: {}", loaded.status().message());
      return 2;
    }
    configured = std::move(*loaded);
  }
  // Where images go: the embedded store (served by our own S3 routes) or a remote S3.
  std::unique_ptr<objects::LocalStore> local;
  std::unique_ptr<objects::S3Store> remote;
  std::string store_description;
  if (cfg.store == "local") {
    // The embedded store's bucket is a path prefix beside the JSON API's routes.
    for (const char* route : {"v1", "healthz", "metrics", "snapshot", "putmedia"})
      if (cfg.bucket == route) {
        spdlog::critical("--bucket '{}' would hide the API's /{} routes: choose another name",
                         cfg.bucket, route);
        return 2;
      }
    auto opened = objects::LocalStore::Open({.root = data_dir / "objects",
                                             .bucket = cfg.bucket,
                                             .public_url = public_url,
                                             .region = "us-east-1",
                                             .credentials = credentials,
                                             .max_age_s = cfg.objects_max_age_s,
                                             .max_total_bytes = cfg.objects_max_bytes,
                                             .max_object_bytes = cfg.max_object_bytes},
                                            clock);
    if (!opened.ok()) {
      spdlog::critical("{}", opened.status().ToString());
      return 2;
    }
    local = std::move(*opened);
    auto swept = local->Sweep();
    store_description = "embedded, bucket " + cfg.bucket + " (" + std::to_string(swept.objects) +
                        " objects, " + std::to_string(swept.bytes) + " bytes)";
  } else {
    auto target = objects::ParseS3Uri(cfg.store);
    if (!target.ok()) {
      spdlog::critical("--store must be 'local' or s3://BUCKET[/PREFIX]: {}",
                       target.status().message());
      return 2;
    }
    auto aws = objects::ResolveAwsSettings({.access_key_id = cfg.s3_access_key,
                                            .secret_access_key = cfg.s3_secret_key,
                                            .session_token = cfg.s3_session_token,
                                            .region = cfg.s3_region,
                                            .profile = cfg.aws_profile});
    if (!aws.ok()) {
      spdlog::critical("{}", aws.status().message());
      return 2;
    }
    objects::S3StoreOptions o;
    o.bucket = target->first;
    o.prefix = target->second;
    o.endpoint = cfg.s3_endpoint;
    o.region = aws->region;
    o.addressing = cfg.s3_addressing == "path"      ? objects::S3Addressing::kPath
                   : cfg.s3_addressing == "virtual" ? objects::S3Addressing::kVirtual
                                                    : objects::S3Addressing::kAuto;
    o.credentials = aws->credentials;
    o.deadline = std::chrono::milliseconds(static_cast<int64_t>(cfg.s3_timeout_s * 1000));
    o.attempt_timeout = std::min(o.attempt_timeout, o.deadline);
    auto opened = objects::S3Store::Open(std::move(o), clock);
    if (!opened.ok()) {
      spdlog::critical("{}", opened.status().message());
      return 2;
    }
    remote = std::move(*opened);
    store_description = remote->Describe() + ", credentials from " + aws->source;
  }
  objects::ObjectStore& object_store = local ? static_cast<objects::ObjectStore&>(*local) : *remote;
  // Where snapshots read video: our own store, or a Kinesis Video endpoint.
  std::unique_ptr<kvs::KvsSource> kvs_source;
  if (cfg.source == "kvs") {
    auto aws = objects::ResolveAwsSettings({.flag_prefix = "kvs",
                                            .access_key_id = cfg.kvs_access_key,
                                            .secret_access_key = cfg.kvs_secret_key,
                                            .session_token = cfg.kvs_session_token,
                                            .region = cfg.kvs_region,
                                            .profile = cfg.aws_profile});
    if (!aws.ok()) {
      spdlog::critical("--source kvs: {}", aws.status().message());
      return 2;
    }
    kvs::KvsSourceOptions o;
    o.client.endpoint = cfg.kvs_endpoint;
    o.client.region = aws->region;
    o.client.credentials = aws->credentials;
    o.client.deadline = std::chrono::milliseconds(static_cast<int64_t>(cfg.kvs_timeout_s * 1000));
    o.client.attempt_timeout = std::min(o.client.attempt_timeout, o.client.deadline);
    kvs_source = std::make_unique<kvs::KvsSource>(std::move(o), clock);
    spdlog::info("snapshots read Kinesis Video at {} (region {}, credentials from {})",
                 kvs_source->endpoint(), aws->region, aws->source);
  }
  const store::StreamSource& snapshot_source =
      kvs_source ? static_cast<const store::StreamSource&>(*kvs_source) : streams;
  const size_t workers_n = cfg.workers ? cfg.workers : cores;
  WorkerPool workers(workers_n, cfg.max_queued ? cfg.max_queued : 64 * workers_n);
  // Large renders (up to --max-render-pixels) have threads of their own, at a
  // lower priority: a queue of them never holds up a cheap or warm snapshot.
  WorkerPool heavy_workers(std::max<size_t>(1, workers_n / 2), 4 * workers_n, /*nice=*/10);
  snapshot::SnapshotService snapshots(
      snapshot_source, object_store, workers, clock,
      {.max_warm_decoders = cfg.warm_decoders,
       .warm_all = cfg.warm_all,
       .max_render_pixels = render_pixels,
       .render_limit = &limits.Add("render_pixels", "pixels", render_pixels)},
      &heavy_workers);
  snapshot::ScheduledImages images(snapshots, object_store, workers, clock);
  streams.SetFrameObserver([&snapshots, &images](const std::string& s) {
    snapshots.OnFrame(s);
    images.OnFrame(s);
  });
  std::vector<ingest::Cidr> allow, deny;
  for (const auto& [flag, list, out] : {std::tuple{"--pull-allow", &cfg.pull_allow, &allow},
                                        {"--pull-deny", &cfg.pull_deny, &deny}})
    for (const std::string& text : *list) {
      auto cidr = ingest::ParseCidr(text);
      if (!cidr.ok()) {
        spdlog::critical("{}: {}", flag, cidr.status().message());
        return 2;
      }
      out->push_back(*cidr);
    }
  ingest::PullSources sources(streams, ingest::PullPolicy(std::move(allow), std::move(deny)),
                              &limits.Add("pulls", "sources", cfg.max_pulls));
  for (auto& o : configured) {
    std::string name = o.stream;
    if (Status s = sources.Add(std::move(o), /*configured=*/true); !s.ok()) {
      spdlog::critical("--config: stream '{}': {}", name, s.message());
      return 2;
    }
  }
  kvs::KvsService kvs_service(
      streams, snapshot_source, **registry, &snapshots, &images, workers, clock,
      {.public_url = public_url,
       .images_bucket = local ? cfg.bucket : objects::ParseS3Uri(cfg.store)->first,
       .default_retention_ms = cfg.retention_s * 1000});
  kvs_service.RestoreImageGeneration();
  http::KvsApi kvs_api(kvs_service, credentials, clock,
                       {.require_signed_putmedia =
                            (credentials_given || cfg.auth == "on") && !cfg.unsigned_putmedia});
  // Access control: API keys from the keys file, re-read as the CLI changes it.
  std::unique_ptr<auth::KeyRing> keys;
  std::optional<auth::InitialKeys> first_keys;
  if (cfg.auth == "on") {
    const std::filesystem::path keys_file = KeysFileOf(data_dir.string(), cfg.keys_file);
    if (cfg.keys_file.empty()) {  // a shared --keys-file is made with `lastframe keys`
      auto made = auth::CreateInitialKeys(keys_file, data_dir / "initial-keys.txt", clock);
      if (!made.ok()) {
        spdlog::critical("cannot create the first keys: {}", made.status().message());
        return 2;
      }
      first_keys = *made;
    }
    keys = std::make_unique<auth::KeyRing>(keys_file, data_dir / "keys-used.json", clock);
    if (Status s = keys->Reload(); !s.ok()) {
      spdlog::critical("--keys-file: {}", s.message());
      return 2;
    }
  }
  http::ApiOptions api_options;
  api_options.public_metrics = cfg.public_metrics;
  api_options.max_url_expiry_s = cfg.max_url_expiry_s;
  api_options.limits = &limits;
  api_options.producer_limit = &limits.Add("producers", "producers", cfg.max_producers);
  api_options.fragment_limit =
      &limits.Add("fragment_bytes", "bytes", ingest::PushOptions{}.max_fragment_bytes);
  if (kvs_source)
    api_options.extra_metrics = [source = kvs_source.get()] {
      kvs::KvsSourceStats s = source->stats();
      std::string body;
      auto counter = [&body](const char* name, const char* help, uint64_t value) {
        body += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" +
                name + " " + std::to_string(value) + "\n";
      };
      counter("lastframe_kvs_warm_answers_total", "Looks answered from a followed stream.",
              s.warm_answers);
      counter("lastframe_kvs_cold_fetches_total",
              "Looks that fetched over the API (ListFragments + GetMediaForFragmentList).",
              s.cold_fetches);
      counter("lastframe_kvs_follower_fragments_total",
              "Fragments received by followed GetMedia streams.", s.follower_fragments);
      counter("lastframe_kvs_follower_reconnects_total", "GetMedia sessions restarted.",
              s.reconnects);
      return body;
    };
  http::Api api(streams, snapshot_source, snapshots, local.get(), workers, clock, &sources,
                std::move(api_options), &kvs_api, keys.get());
  deferred.Set(&api);

  auto& ioc = server.io_context();
  boost::asio::steady_timer retention(ioc);
  std::function<void()> schedule_retention = [&] {
    retention.expires_after(std::chrono::seconds(1));
    retention.async_wait([&](boost::system::error_code e) {
      if (e) return;
      streams.ApplyRetention();
      snapshots.SweepIdle();
      // Created and revoked keys take effect within 2 s; reading files is a worker's job.
      if (keys)
        workers.TryPost([&] {
          if (Status s = keys->Reload(); !s.ok())
            spdlog::warn("keys: {} (keeping the keys loaded)", s.message());
          if (Status s = keys->SaveLastUsed(); !s.ok()) spdlog::warn("keys: {}", s.message());
        });
      if (kvs_source) workers.TryPost([&] { kvs_source->SweepIdle(); });
      schedule_retention();
    });
  };
  schedule_retention();
  // Old snapshots leave the embedded store: past their age, or oldest first past its size.
  boost::asio::steady_timer object_sweep(ioc);
  std::function<void()> schedule_sweep = [&] {
    object_sweep.expires_after(std::chrono::seconds(30));
    object_sweep.async_wait([&](boost::system::error_code e) {
      if (e) return;
      // Walking folders is disk work: a worker does it.
      workers.TryPost([&] {
        if (local) {
          auto r = local->Sweep();
          if (r.deleted_expired + r.deleted_for_space > 0)
            spdlog::info("objects swept: {} expired, {} for space; {} objects, {} bytes left",
                         r.deleted_expired, r.deleted_for_space, r.objects, r.bytes);
        }
        if (archive)
          archive->Trim(clock.NowMs(), cfg.retention_s * 1000,
                        streams.options().max_bytes_per_stream, cfg.fragments_max_bytes);
      });
      schedule_sweep();
    });
  };
  schedule_sweep();

  std::unique_ptr<ingest::DemoProducer> demo;
  if (cfg.demo) {
    demo = std::make_unique<ingest::DemoProducer>(streams, ingest::DemoOptions{});
    if (Status s = demo->Start(); !s.ok()) {
      spdlog::critical("demo: {}", s.ToString());
      return 1;
    }
  }

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (e) return;
    spdlog::info("signal {}: draining", sig);
    retention.cancel();
    object_sweep.cancel();
    server.Stop();
  });

  spdlog::info("lastframe {} listening on {} (data {}, {} I/O threads, {} workers)", kVersion,
               listen_url, data_dir.string(), server_options.io_threads, workers_n);
  spdlog::info("images go to {}", store_description);
  if (!keys) {
    spdlog::warn(
        "--auth off: every route is open to anyone who can reach {}; use it only on a "
        "trusted network",
        listen_url);
    if (cfg.demo) spdlog::info("try: curl -s '{}/snapshot?stream_name=demo'", listen_url);
  } else if (first_keys) {
    // Once, on the terminal (not in a log line): the first run needs no step of its own.
    std::cout << "\nFirst start: created an admin key and a viewer key; both tokens are in "
              << (data_dir / "initial-keys.txt").string() << " (0600). Try:\n\n  curl -s -H "
              << "'Authorization: Bearer " << first_keys->viewer_token << "' '" << listen_url
              << "/snapshot?stream_name=" << (cfg.demo ? "demo" : "STREAM") << "'\n\n"
              << std::flush;
  } else if (cfg.demo) {
    spdlog::info(
        "try: curl -s -H 'Authorization: Bearer <a viewer key>' "
        "'{}/snapshot?stream_name=demo' (keys: lastframe keys create --role viewer)",
        listen_url);
  }
  server.Run();
  signals.cancel();
  kvs_service.Shutdown();
  if (kvs_source) kvs_source->Stop();  // cold fetches answer into the snapshot service
  if (demo) demo->Stop();
  sources.StopAll();
  workers.Shutdown();
  object_store.Shutdown();  // queued uploads answer into the snapshot service: before it goes
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace lastframe

int main(int argc, char** argv) {
  using lastframe::ServeConfig;
  CLI::App app{"lastframe: the newest frame of any live stream, as a signed URL"};
  app.require_subcommand(1);
  ServeConfig cfg;
  CLI::App* serve = app.add_subcommand("serve", "run the HTTP service");
  serve->add_option("--listen", cfg.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->envname("LASTFRAME_LISTEN")
      ->capture_default_str();
  serve->add_option("--data-dir", cfg.data_dir, "where images and keys are kept")
      ->envname("LASTFRAME_DATA_DIR")
      ->capture_default_str();
  serve
      ->add_option("--public-url", cfg.public_url,
                   "base of the URLs handed out (default: from --listen)")
      ->envname("LASTFRAME_PUBLIC_URL");
  serve->add_option("--retention", cfg.retention_s, "seconds of video kept per stream")
      ->envname("LASTFRAME_RETENTION")
      ->capture_default_str()
      ->check(CLI::Range(1, 31'536'000));
  serve->add_flag("--demo", cfg.demo, "run a synthetic camera named 'demo'")
      ->envname("LASTFRAME_DEMO");
  serve
      ->add_option("--access-key", cfg.access_key,
                   "embedded store access key (default: generated, kept in the data dir)")
      ->envname("LASTFRAME_ACCESS_KEY");
  serve->add_option("--secret-key", cfg.secret_key, "embedded store secret key")
      ->envname("LASTFRAME_SECRET_KEY");
  serve->add_option("--bucket", cfg.bucket, "bucket name of the embedded store")
      ->envname("LASTFRAME_BUCKET")
      ->capture_default_str();
  serve
      ->add_option("--objects-max-age", cfg.objects_max_age_s,
                   "seconds the embedded store keeps an object (default: the longest URL "
                   "expiry handed out, at least 600)")
      ->envname("LASTFRAME_OBJECTS_MAX_AGE")
      ->check(CLI::Range(int64_t{1}, int64_t{10} * 365 * 86400));
  serve
      ->add_option("--objects-max-size", cfg.objects_max_bytes,
                   "bytes the embedded store may hold; past it the oldest objects go (e.g. 4GiB)")
      ->envname("LASTFRAME_OBJECTS_MAX_SIZE")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve
      ->add_option("--max-object-size", cfg.max_object_bytes,
                   "the largest object an S3 client may PUT to the embedded store")
      ->envname("LASTFRAME_MAX_OBJECT_SIZE")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve
      ->add_option("--store", cfg.store,
                   "where snapshots go: 'local' (the embedded store) or s3://BUCKET[/PREFIX]")
      ->envname("LASTFRAME_STORE")
      ->capture_default_str();
  serve
      ->add_option("--s3-endpoint", cfg.s3_endpoint,
                   "S3 endpoint URL, e.g. http://127.0.0.1:9000 for MinIO (default: AWS S3 of "
                   "the region)")
      ->envname("LASTFRAME_S3_ENDPOINT");
  serve
      ->add_option("--s3-region", cfg.s3_region,
                   "S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1)")
      ->envname("LASTFRAME_S3_REGION");
  serve
      ->add_option("--s3-addressing", cfg.s3_addressing,
                   "auto (virtual-hosted on AWS, else path), path or virtual")
      ->envname("LASTFRAME_S3_ADDRESSING")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "path", "virtual"}));
  serve
      ->add_option("--s3-access-key", cfg.s3_access_key,
                   "S3 access key id (default: AWS_ACCESS_KEY_ID, then ~/.aws/credentials)")
      ->envname("LASTFRAME_S3_ACCESS_KEY");
  serve->add_option("--s3-secret-key", cfg.s3_secret_key, "S3 secret access key")
      ->envname("LASTFRAME_S3_SECRET_KEY");
  serve->add_option("--s3-session-token", cfg.s3_session_token, "S3 session token (temporary keys)")
      ->envname("LASTFRAME_S3_SESSION_TOKEN");
  serve->add_option("--aws-profile", cfg.aws_profile, "profile in ~/.aws/credentials and config")
      ->envname("LASTFRAME_AWS_PROFILE");
  serve
      ->add_option("--s3-timeout", cfg.s3_timeout_s,
                   "seconds an upload may take, retries included, before the snapshot fails")
      ->envname("LASTFRAME_S3_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 300.0));
  serve->add_option("--io-threads", cfg.io_threads, "HTTP I/O threads (default: cores, max 4)")
      ->envname("LASTFRAME_IO_THREADS")
      ->check(CLI::Range(1, 64));
  serve->add_option("--workers", cfg.workers, "decode/encode threads (default: cores)")
      ->envname("LASTFRAME_WORKERS")
      ->check(CLI::Range(1, 256));
  serve
      ->add_option("--max-queued", cfg.max_queued,
                   "snapshots that may wait for a worker before 429 (default: 64 per worker)")
      ->envname("LASTFRAME_MAX_QUEUED")
      ->check(CLI::Range(1, 100000));
  serve
      ->add_option("--warm-decoders", cfg.warm_decoders,
                   "streams whose decoder stays alive between looks")
      ->envname("LASTFRAME_WARM_DECODERS")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  serve
      ->add_flag("--warm-all", cfg.warm_all,
                 "decode every stream as frames arrive (up to --warm-decoders streams, on spare "
                 "worker time), so that first looks are instant too")
      ->envname("LASTFRAME_WARM_ALL");
  serve
      ->add_option("--producer-timeout", cfg.producer_timeout_s,
                   "seconds a pushing producer may go without a complete frame before it is "
                   "dropped with an ERROR ack")
      ->envname("LASTFRAME_PRODUCER_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  serve
      ->add_option("--fragments-max-size", cfg.fragments_max_bytes,
                   "bytes of durable fragments kept in all; past it the oldest go (e.g. 16GiB)")
      ->envname("LASTFRAME_FRAGMENTS_MAX_SIZE")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  serve
      ->add_flag("--no-persist", cfg.no_persist,
                 "keep fragments in memory only (default: each fragment is written to "
                 "DATA_DIR/fragments and synced before PERSISTED is acknowledged)")
      ->envname("LASTFRAME_NO_PERSIST");
  serve
      ->add_option("--source", cfg.source,
                   "where snapshots read video: 'local' (this server's streams) or 'kvs' (a "
                   "Kinesis Video endpoint: AWS, or another lastframe)")
      ->envname("LASTFRAME_SOURCE")
      ->capture_default_str()
      ->check(CLI::IsMember({"local", "kvs"}));
  serve
      ->add_option("--kvs-endpoint", cfg.kvs_endpoint,
                   "Kinesis Video control endpoint, e.g. http://10.0.0.5:8080 (default: AWS's "
                   "https://kinesisvideo.REGION.amazonaws.com)")
      ->envname("LASTFRAME_KVS_ENDPOINT");
  serve
      ->add_option("--kvs-region", cfg.kvs_region,
                   "Kinesis Video region (default: AWS_REGION, AWS_DEFAULT_REGION, the "
                   "profile's, us-east-1)")
      ->envname("LASTFRAME_KVS_REGION");
  serve
      ->add_option("--kvs-access-key", cfg.kvs_access_key,
                   "Kinesis Video access key id (default: AWS_ACCESS_KEY_ID, then "
                   "~/.aws/credentials)")
      ->envname("LASTFRAME_KVS_ACCESS_KEY");
  serve->add_option("--kvs-secret-key", cfg.kvs_secret_key, "Kinesis Video secret access key")
      ->envname("LASTFRAME_KVS_SECRET_KEY");
  serve
      ->add_option("--kvs-session-token", cfg.kvs_session_token,
                   "Kinesis Video session token (temporary keys)")
      ->envname("LASTFRAME_KVS_SESSION_TOKEN");
  serve
      ->add_option("--kvs-timeout", cfg.kvs_timeout_s,
                   "seconds one Kinesis Video call may take, retries included, before the "
                   "snapshot fails (502/504)")
      ->envname("LASTFRAME_KVS_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 300.0));
  serve
      ->add_flag("--unsigned-putmedia", cfg.unsigned_putmedia,
                 "accept PutMedia without a SigV4 signature even when --access-key is given "
                 "(ffmpeg cannot sign); without --access-key unsigned pushes are always accepted")
      ->envname("LASTFRAME_UNSIGNED_PUTMEDIA");
  serve
      ->add_option("--config", cfg.config,
                   "TOML file of streams to pull ([[streams]] name, url, rtsp_transport)")
      ->envname("LASTFRAME_CONFIG")
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--auth", cfg.auth,
                   "on: every route but /healthz and signed URLs needs an API key; off: open, "
                   "for a trusted network")
      ->envname("LASTFRAME_AUTH")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  serve
      ->add_option("--keys-file", cfg.keys_file,
                   "the API keys (default DATA_DIR/keys.json, made at first start); several "
                   "nodes may share one, read-only to them")
      ->envname("LASTFRAME_KEYS_FILE");
  serve->add_flag("--public-metrics", cfg.public_metrics, "serve /metrics without credentials")
      ->envname("LASTFRAME_PUBLIC_METRICS");
  serve
      ->add_option("--max-url-expiry", cfg.max_url_expiry_s,
                   "the longest signed-URL lifetime (expires=) a key may ask for; admins up to "
                   "604800")
      ->envname("LASTFRAME_MAX_URL_EXPIRY")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{604'800}));
  serve
      ->add_option("--pull-allow", cfg.pull_allow,
                   "CIDR a pulled source may reach although refused by default (loopback, "
                   "link-local, ...); repeatable")
      ->envname("LASTFRAME_PULL_ALLOW");
  serve
      ->add_option("--pull-deny", cfg.pull_deny,
                   "CIDR a pulled source may not reach (wins over --pull-allow); repeatable")
      ->envname("LASTFRAME_PULL_DENY");
  serve
      ->add_option("--max-connections", cfg.max_connections,
                   "connections open at once; past it 503 (default: from the descriptor limit)")
      ->envname("LASTFRAME_MAX_CONNECTIONS")
      ->capture_default_str();
  serve
      ->add_option("--max-connections-per-ip", cfg.max_connections_per_ip,
                   "connections from one client address; past it 429")
      ->check(CLI::PositiveNumber)
      ->envname("LASTFRAME_MAX_CONNECTIONS_PER_IP")
      ->capture_default_str();
  serve
      ->add_option("--max-buffered-bytes", cfg.max_buffered_bytes,
                   "request bodies held in memory at once; past it 503 with Retry-After")
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40))
      ->envname("LASTFRAME_MAX_BUFFERED_BYTES")
      ->capture_default_str();
  serve->add_option("--max-streams", cfg.max_streams, "streams that may exist; past it 429")
      ->check(CLI::PositiveNumber)
      ->envname("LASTFRAME_MAX_STREAMS")
      ->capture_default_str();
  serve->add_option("--max-pulls", cfg.max_pulls, "pulled sources at once; past it 429")
      ->check(CLI::PositiveNumber)
      ->envname("LASTFRAME_MAX_PULLS")
      ->capture_default_str();
  serve->add_option("--max-producers", cfg.max_producers, "producers pushing at once; past it 429")
      ->check(CLI::PositiveNumber)
      ->envname("LASTFRAME_MAX_PRODUCERS")
      ->capture_default_str();
  serve
      ->add_option("--max-render-pixels", cfg.max_render_pixels,
                   "largest image rendered, as WIDTHxHEIGHT of output; larger asks get 400")
      ->envname("LASTFRAME_MAX_RENDER_PIXELS")
      ->capture_default_str();
  serve->add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error")
      ->envname("LASTFRAME_LOG_LEVEL")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  lastframe::KeysConfig keys_cfg;
  CLI::App* keys = app.add_subcommand("keys", "create, list and revoke API keys");
  keys->require_subcommand(1);
  auto key_location = [&keys_cfg](CLI::App* c) {
    c->add_option("--data-dir", keys_cfg.data_dir, "the server's data directory")
        ->envname("LASTFRAME_DATA_DIR")
        ->capture_default_str();
    c->add_option("--keys-file", keys_cfg.keys_file, "the keys file (default DATA_DIR/keys.json)")
        ->envname("LASTFRAME_KEYS_FILE");
  };
  CLI::App* keys_create = keys->add_subcommand("create", "make a key; prints its token, once");
  key_location(keys_create);
  keys_create->add_option("--role", keys_cfg.role, "admin, producer or viewer")
      ->required()
      ->check(CLI::IsMember({"admin", "producer", "viewer"}));
  keys_create->add_option("--streams", keys_cfg.streams, "the streams it covers (a glob)")
      ->capture_default_str();
  keys_create->add_option("--expires-in", keys_cfg.expires_in_s, "seconds it is valid")
      ->check(CLI::Range(int64_t{1}, int64_t{100} * 365 * 86400));
  keys_create->add_option("--label", keys_cfg.label, "a note to tell keys apart");
  CLI::App* keys_list = keys->add_subcommand("list", "list keys (never their secrets)");
  key_location(keys_list);
  CLI::App* keys_revoke = keys->add_subcommand("revoke", "revoke a key by its id");
  key_location(keys_revoke);
  keys_revoke->add_option("id", keys_cfg.id, "the key's id (lf_<id>_...)")->required();
  CLI::App* keys_init = keys->add_subcommand(
      "init", "make the first admin and viewer keys (DATA_DIR/initial-keys.txt) if there are none");
  key_location(keys_init);
  app.add_subcommand("version", "print the version")->callback([] {
    std::cout << "lastframe " << lastframe::kVersion << "\n";
  });
  CLI11_PARSE(app, argc, argv);
  if (serve->parsed()) {
    // Lines are written by a thread of the logger's own: an I/O thread never
    // waits on a slow stderr (a full pipe, a busy journal). Past 8 Ki queued
    // lines (about 3 MiB, allocated up front) the oldest are dropped, and the
    // count is logged at exit.
    spdlog::init_thread_pool(8192, 1);
    auto logger = spdlog::create_async_nb<spdlog::sinks::stderr_color_sink_mt>("lastframe");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    int rc = lastframe::Serve(cfg);
    if (size_t dropped = spdlog::thread_pool()->overrun_counter(); dropped > 0)
      spdlog::warn("{} log lines dropped: the log was written slower than lines came", dropped);
    spdlog::shutdown();  // writes what is queued
    return rc;
  }
  for (CLI::App* c : {keys_create, keys_list, keys_revoke, keys_init})
    if (c->parsed()) return lastframe::Keys(c->get_name(), keys_cfg);
  return 0;
}
