#include "app/service.h"

#include <spdlog/spdlog.h>

#include <iostream>
#include <utility>

#include "app/factories.h"
#include "core/process_metrics.h"
#include "core/worker_pool.h"
#include "http/kvs_api.h"
#include "http/pull_routing.h"
#include "ingest/demo_producer.h"
#include "kvs/kvs_service.h"
#include "snapshot/scheduled_images.h"
#include "snapshot/snapshot_service.h"

namespace lastframe::app {

// The modules, declared in the order Create builds them, so that they are
// destroyed newest first: each before the modules it holds references to
// (the API before the services it routes to, the services before the store
// and the server whose I/O context their timers use).
struct Service::Parts {
  explicit Parts(ServeSettings s) : settings(std::move(s)) {}
  // Maintenance: see Start.
  void EverySecond();
  void EveryThirtySeconds();

  const ServeSettings settings;
  const Clock& clock = SystemClock::Get();
  fs::path data_dir;
  // process_* and lastframe_build_info on /metrics, while the service lives.
  metrics::Registry::CollectorHandle process_metrics =
      metrics::AddProcessMetrics(metrics::Registry::Global(), kVersion, LASTFRAME_COMMIT);
  Limits limits;
  DeferredApplication deferred;
  std::unique_ptr<http::Server> server;
  std::string listen_url;
  std::unique_ptr<store::StreamStore> streams;
  // --archive: before the fragment files, so that it outlives their writers,
  // whose last fragments it uploads as they go.
  SharedArchiveParts shared_archive;
  std::unique_ptr<store::FragmentArchive> archive;
  std::unique_ptr<kvs::StreamRegistry> registry;
  ObjectStores objects;
  std::unique_ptr<kvs::KvsSource> kvs_source;
  std::unique_ptr<store::ArchivedSource> archived_source;  // with --archive
  std::unique_ptr<WorkerPool> workers;
  std::unique_ptr<WorkerPool> heavy_workers;
  std::unique_ptr<snapshot::SnapshotService> snapshots;
  std::unique_ptr<snapshot::ScheduledImages> images;
  std::unique_ptr<ingest::PullSources> sources;
  // --pull-route: which configured cameras are this node's, asked of the router.
  std::unique_ptr<http::PullRouting> pull_routing;
  std::unique_ptr<kvs::KvsService> kvs_service;
  std::unique_ptr<http::KvsApi> kvs_api;
  Keys keys;
  std::unique_ptr<http::Cluster> cluster;  // with --peers
  std::unique_ptr<http::Api> api;
  std::unique_ptr<RepeatingTimer> retention_timer;
  std::unique_ptr<RepeatingTimer> sweep_timer;
  std::unique_ptr<ingest::DemoProducer> demo;
};

void Service::Parts::EverySecond() {
  streams->ApplyRetention();
  snapshots->SweepIdle();
  // Created and revoked keys take effect within 2 s; reading files is a worker's job.
  if (keys.ring)
    workers->TryPost([this] {
      if (Status s = keys.ring->Reload(); !s.ok())
        spdlog::warn("keys: {} (keeping the keys loaded)", s.message());
      if (Status s = keys.ring->SaveLastUsed(); !s.ok()) spdlog::warn("keys: {}", s.message());
    });
  if (kvs_source) workers->TryPost([this] { kvs_source->SweepIdle(); });
}

void Service::Parts::EveryThirtySeconds() {
  // Old snapshots leave the embedded store: past their age, or oldest first
  // past its size. Walking folders is disk work: a worker does it.
  workers->TryPost([this] {
    if (objects.local) {
      auto r = objects.local->Sweep();
      if (r.deleted_expired + r.deleted_for_space > 0)
        spdlog::info("objects swept: {} expired, {} for space; {} objects, {} bytes left",
                     r.deleted_expired, r.deleted_for_space, r.objects, r.bytes);
    }
    if (archive) TrimArchive(*archive, *streams, settings, clock);
  });
}

Result<std::unique_ptr<Service>> Service::Create(const ServeConfig& config, int* exit_code) {
  if (exit_code) *exit_code = kExitBadConfig;
  auto settings = ValidateServeConfig(config);
  if (!settings.ok()) return settings.status();
  auto p = std::make_unique<Parts>(std::move(*settings));
  const ServeSettings& s = p->settings;
  auto data_dir = MakeDataDir(s.flags.data_dir);
  if (!data_dir.ok()) return data_dir.status();
  p->data_dir = *data_dir;
  auto credentials = StoreCredentials(s, p->data_dir);
  if (!credentials.ok()) return credentials.status();

  p->server = std::make_unique<http::Server>(ServerOptionsFor(s, p->limits), p->deferred);
  if (Status st = p->server->Listen(); !st.ok()) {
    if (exit_code) *exit_code = kExitCannotServe;
    return Named(st);
  }
  const std::string url_host = UrlHost(s.host);
  p->listen_url = "http://" + url_host + ":" + std::to_string(p->server->port());
  const std::string public_url = s.flags.public_url.empty() ? p->listen_url : s.flags.public_url;
  if (s.flags.public_url.empty() && url_host != s.host)
    spdlog::warn("listening on all interfaces, but URLs name {}: set --public-url for other hosts",
                 url_host);

  p->streams = std::make_unique<store::StreamStore>(
      p->clock, store::StoreOptions{
                    .retention_ms = s.retention_ms,
                    .live_window_ms = s.flags.live_window_s * 1000,
                    .memory_retention_ms = s.memory_retention_ms,
                    .stream_limit = &p->limits.Add("streams", "streams", s.flags.max_streams)});
  auto shared_archive = OpenSharedArchive(s, p->clock);
  if (!shared_archive.ok()) return shared_archive.status();
  p->shared_archive = std::move(*shared_archive);
  auto archive = OpenArchive(s, p->data_dir, *p->streams, p->clock);
  if (!archive.ok()) return archive.status();
  p->archive = std::move(*archive);
  if (p->shared_archive.archive) p->streams->SetSharedArchive(p->shared_archive.archive.get());
  auto registry = OpenRegistry(s, p->data_dir, *p->streams);
  if (!registry.ok()) return registry.status();
  p->registry = std::move(*registry);
  auto configured = LoadConfiguredPulls(s);
  if (!configured.ok()) return configured.status();
  auto objects = OpenObjectStores(s, p->data_dir, public_url, *credentials, p->clock);
  if (!objects.ok()) return objects.status();
  p->objects = std::move(*objects);
  auto kvs_source = OpenKvsSource(s, p->clock);
  if (!kvs_source.ok()) return kvs_source.status();
  p->kvs_source = std::move(*kvs_source);
  if (p->shared_archive.archive)
    p->archived_source = std::make_unique<store::ArchivedSource>(
        *p->streams, *p->shared_archive.archive, p->clock,
        store::ArchivedSourceOptions{.retention_ms = s.retention_ms});
  const store::StreamSource& snapshot_source =
      p->kvs_source        ? static_cast<const store::StreamSource&>(*p->kvs_source)
      : p->archived_source ? static_cast<const store::StreamSource&>(*p->archived_source)
                           : *p->streams;

  p->workers = std::make_unique<WorkerPool>(s.workers, s.max_queued);
  // Large renders (up to --max-render-pixels) have threads of their own, at a
  // lower priority: a queue of them never holds up a cheap or warm snapshot.
  p->heavy_workers =
      std::make_unique<WorkerPool>(std::max<size_t>(1, s.workers / 2), 4 * s.workers, /*nice=*/10);
  p->snapshots = std::make_unique<snapshot::SnapshotService>(
      snapshot_source, p->objects.get(), *p->workers, p->clock,
      snapshot::ServiceOptions{
          .max_warm_decoders = s.flags.warm_decoders,
          .max_render_pixels = s.max_render_pixels,
          .render_limit = &p->limits.Add("render_pixels", "pixels", s.max_render_pixels)},
      p->heavy_workers.get());
  p->images = std::make_unique<snapshot::ScheduledImages>(*p->snapshots, p->objects.get(),
                                                          *p->workers, p->clock);
  p->streams->SetFrameObserver(
      [parts = p.get()](const std::string& stream) { parts->images->OnFrame(stream); });
  // With a router, each configured camera is pulled by the node the router sends it to:
  // none is started here; PullRouting starts and stops them (Start).
  std::vector<ingest::PullOptions> routed;
  if (!s.pull_route.empty()) routed = std::exchange(*configured, {});
  auto sources = MakePulls(s, *p->streams, p->limits, std::move(*configured));
  if (!sources.ok()) return sources.status();
  p->sources = std::move(*sources);
  if (!routed.empty())
    p->pull_routing = std::make_unique<http::PullRouting>(
        http::PullRoutingOptions{.route_url = s.pull_route, .node = s.node_id}, std::move(routed),
        *p->sources);

  p->kvs_service = std::make_unique<kvs::KvsService>(
      *p->streams, snapshot_source, *p->registry, p->snapshots.get(), p->images.get(), *p->workers,
      p->clock,
      kvs::KvsServiceOptions{.public_url = public_url,
                             .images_bucket = s.local_store ? s.flags.bucket : s.s3_bucket,
                             .default_retention_ms = s.retention_ms});
  p->kvs_service->RestoreImageGeneration();
  p->kvs_api = std::make_unique<http::KvsApi>(
      *p->kvs_service, *credentials, p->clock,
      http::KvsApiOptions{.require_signed_putmedia = (s.store_credentials.has_value() || s.auth) &&
                                                     !s.flags.unsigned_putmedia});
  auto keys = OpenKeys(s, p->data_dir, p->clock);
  if (!keys.ok()) return keys.status();
  p->keys = std::move(*keys);
  http::ApiOptions api_options = ApiOptionsFor(s, p->limits, p->kvs_source.get());
  if (!s.peers.empty()) {
    // A peer named by this node's own URL is never asked.
    std::vector<std::string> self_urls = {public_url};
    if (p->listen_url != public_url) self_urls.push_back(p->listen_url);
    p->cluster = std::make_unique<http::Cluster>(
        http::ClusterOptions{
            .node = s.node_id, .peers = s.peers, .self_urls = self_urls, .timeout = s.peer_timeout},
        p->server->io_context());
    api_options.cluster = p->cluster.get();
  }
  p->api = std::make_unique<http::Api>(
      *p->streams, snapshot_source, *p->snapshots, p->objects.local.get(), *p->workers, p->clock,
      p->sources.get(), std::move(api_options), p->kvs_api.get(), p->keys.ring.get());
  p->deferred.Set(p->api.get());

  auto& ioc = p->server->io_context();
  p->retention_timer = std::make_unique<RepeatingTimer>(
      ioc, std::chrono::seconds(1), [parts = p.get()] { parts->EverySecond(); });
  p->sweep_timer = std::make_unique<RepeatingTimer>(
      ioc, std::chrono::seconds(30), [parts = p.get()] { parts->EveryThirtySeconds(); });
  if (exit_code) *exit_code = 0;
  return std::unique_ptr<Service>(new Service(std::move(p)));
}

Service::Service(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Service::~Service() = default;

uint16_t Service::port() const { return parts_->server->port(); }

const std::string& Service::listen_url() const { return parts_->listen_url; }

Status Service::Start() {
  Parts& p = *parts_;
  p.retention_timer->Start();
  p.sweep_timer->Start();
  if (p.settings.flags.demo) {
    p.demo = std::make_unique<ingest::DemoProducer>(*p.streams, ingest::DemoOptions{});
    if (Status s = p.demo->Start(); !s.ok()) return Explained("demo: " + s.reason_name() + ": ", s);
  }
  const std::string& url = p.listen_url;
  spdlog::info("lastframe {} listening on {} (data {}, {} I/O threads, {} workers)", kVersion, url,
               p.data_dir.string(), p.settings.io_threads, p.settings.workers);
  spdlog::info("images go to {}", p.objects.description);
  if (p.shared_archive.archive)
    spdlog::info("fragments are archived to {}: PERSISTED once stored there",
                 p.shared_archive.description);
  if (p.pull_routing) {
    spdlog::info("node {}: pulls the configured cameras that {} routes to it", p.settings.node_id,
                 p.settings.pull_route);
    p.pull_routing->Start();  // its first round now, off this thread
  }
  if (p.cluster)
    spdlog::info("node {}: GET /v1/streams lists the cluster ({} peer entries, {} ms timeout)",
                 p.settings.node_id, p.settings.peers.size(), p.settings.peer_timeout.count());
  const bool demo = p.settings.flags.demo;
  if (!p.keys.ring) {
    spdlog::warn(
        "--auth off: every route is open to anyone who can reach {}; use it only on a "
        "trusted network",
        url);
    if (demo) spdlog::info("try: curl -s '{}/snapshot?stream_name=demo'", url);
  } else if (p.keys.first) {
    // Once, on the terminal (not in a log line): the first run needs no step of its own.
    std::cout << "\nFirst start: created an admin key and a viewer key; both tokens are in "
              << (p.data_dir / "initial-keys.txt").string() << " (0600). Try:\n\n  curl -s -H "
              << "'Authorization: Bearer " << p.keys.first->viewer_token << "' '" << url
              << "/snapshot?stream_name=" << (demo ? "demo" : "STREAM") << "'\n\n"
              << std::flush;
  } else if (demo) {
    spdlog::info(
        "try: curl -s -H 'Authorization: Bearer <a viewer key>' "
        "'{}/snapshot?stream_name=demo' (keys: lastframe keys create --role viewer)",
        url);
  }
  return Status::Ok();
}

void Service::Stop() {
  parts_->retention_timer->Cancel();
  parts_->sweep_timer->Cancel();
  parts_->server->Stop();
}

void Service::Run() {
  parts_->server->Run();
  Shutdown();
}

void Service::Shutdown() {
  Parts& p = *parts_;
  // The server has drained: no request is in flight and none can start new
  // work. What still runs are threads of the modules' own, each stopped before
  // what it feeds goes.
  auto step = [](const char* what) { spdlog::debug("stopping {}", what); };
  // /v1/events: a thread writing to connections the drain has closed.
  step("event subscribers");
  p.api->Shutdown();
  // Cluster listings under way: their peer requests end within --peer-timeout;
  // their answers go to connections the drain has closed.
  step("peer requests");
  if (p.cluster) p.cluster->Shutdown();
  // GetMedia followers: a thread each, waiting on its stream for the next
  // fragment to write to a connection the drain has closed. Nothing else would
  // wake them before a fragment came (never, once producers stop): end and
  // join them first.
  step("GetMedia followers");
  p.kvs_service->Shutdown();
  // --source kvs: cold fetches on the source's own threads answer into the
  // snapshot service, and its followers feed its cache: end them while the
  // snapshot service is there.
  step("the Kinesis Video source");
  if (p.kvs_source) p.kvs_source->Stop();
  // --archive: reads of the shared archive answer into the snapshot service
  // and the API, as the Kinesis Video source's do.
  step("shared archive reads");
  if (p.archived_source) p.archived_source->Stop();
  // Producers inside the process: their fragments reach the store, whose
  // frame observer posts work to the workers; they stop before the workers.
  step("the demo producer");
  if (p.demo) p.demo->Stop();
  step("pulled sources");
  // Pull routing first: it would start the sources StopAll ends.
  if (p.pull_routing) p.pull_routing->Stop();
  p.sources->StopAll();
  // The workers finish what is queued (renders, sweeps, keys saved) while
  // everything those tasks touch is still there, and take no more.
  step("workers");
  p.workers->Shutdown();
  // Renders hand their images to the object store on the workers, and queued
  // uploads answer into the snapshot service: after the workers, before it goes.
  step("object store uploads");
  p.objects.get().Shutdown();
  spdlog::info("stopped");
  // The rest goes with Parts, newest first (its members' order).
}

}  // namespace lastframe::app