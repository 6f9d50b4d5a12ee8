// lastframe: the newest frame of any live stream, as a signed URL.
// This file only reads flags and wires the modules together.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/clock.h"
#include "core/worker_pool.h"
#include "http/api.h"
#include "http/server.h"
#include "ingest/demo_producer.h"
#include "media/ffmpeg.h"
#include "objects/credentials_file.h"
#include "objects/local_store.h"
#include "snapshot/snapshot_service.h"
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
  size_t io_threads = 0;
  size_t workers = 0;
  size_t max_queued = 0;
  size_t warm_decoders = 64;
  bool warm_all = false;
  std::string log_level = "info";
};

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
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  media::QuietFfmpegLogs();
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
  if (!cfg.access_key.empty() || !cfg.secret_key.empty()) {
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

  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  http::ServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.io_threads = cfg.io_threads ? cfg.io_threads : std::min<size_t>(cores, 4);
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

  store::StreamStore streams(clock, {.retention_ms = cfg.retention_s * 1000});
  auto local = objects::LocalStore::Open({.root = data_dir / "objects",
                                          .bucket = cfg.bucket,
                                          .public_url = public_url,
                                          .region = "us-east-1",
                                          .credentials = credentials},
                                         clock);
  if (!local.ok()) {
    spdlog::critical("{}", local.status().ToString());
    return 2;
  }
  const size_t workers_n = cfg.workers ? cfg.workers : cores;
  WorkerPool workers(workers_n, cfg.max_queued ? cfg.max_queued : 64 * workers_n);
  snapshot::SnapshotService snapshots(
      streams, **local, workers, clock,
      {.max_warm_decoders = cfg.warm_decoders, .warm_all = cfg.warm_all});
  streams.SetFrameObserver([&snapshots](const std::string& s) { snapshots.OnFrame(s); });
  http::Api api(streams, snapshots, local->get(), clock);
  deferred.Set(&api);

  auto& ioc = server.io_context();
  boost::asio::steady_timer retention(ioc);
  std::function<void()> schedule_retention = [&] {
    retention.expires_after(std::chrono::seconds(1));
    retention.async_wait([&](boost::system::error_code e) {
      if (e) return;
      streams.ApplyRetention();
      snapshots.SweepIdle();
      schedule_retention();
    });
  };
  schedule_retention();

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
    server.Stop();
  });

  spdlog::info("lastframe {} listening on {} (data {}, bucket {}, {} I/O threads, {} workers)",
               kVersion, listen_url, data_dir.string(), cfg.bucket, server_options.io_threads,
               workers_n);
  if (cfg.demo) spdlog::info("try: curl -s '{}/snapshot?stream_name=demo'", listen_url);
  server.Run();
  signals.cancel();
  if (demo) demo->Stop();
  workers.Shutdown();
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
  serve->add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error")
      ->envname("LASTFRAME_LOG_LEVEL")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_subcommand("version", "print the version")->callback([] {
    std::cout << "lastframe " << lastframe::kVersion << "\n";
  });
  CLI11_PARSE(app, argc, argv);
  if (serve->parsed()) {
    auto logger = spdlog::stderr_color_mt("lastframe");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    return lastframe::Serve(cfg);
  }
  return 0;
}
