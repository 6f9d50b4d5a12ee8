#include "app/factories.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "auth/api_keys.h"
#include "aws/aws_config.h"
#include "aws/credentials_file.h"
#include "core/metrics.h"
#include "ingest/push_session.h"
#include "ingest/sources_config.h"

namespace lastframe::app {

Status Explained(const std::string& context, const Status& why) {
  return Status(why.code(), context + why.message(), why.reason());
}
Status Named(const Status& why) { return Explained(why.reason_name() + ": ", why); }

Result<fs::path> MakeDataDir(const std::string& flag) {
  std::error_code ec;
  fs::path data_dir = fs::absolute(flag, ec).lexically_normal();
  fs::create_directories(data_dir, ec);
  if (ec) return InvalidArgument("cannot create data directory " + flag + ": " + ec.message());
  return data_dir;
}

Result<aws::Credentials> StoreCredentials(const ServeSettings& s, const fs::path& data_dir) {
  if (s.store_credentials) return *s.store_credentials;
  auto loaded = aws::LoadOrCreateCredentials(data_dir / "credentials.json");
  if (!loaded.ok()) return Named(loaded.status());
  return std::move(*loaded);
}

http::ServerOptions ServerOptionsFor(const ServeSettings& s, Limits& limits) {
  http::ServerOptions o;
  o.limits = &limits;
  o.max_connections = s.flags.max_connections;
  o.max_connections_per_ip = s.flags.max_connections_per_ip;
  o.max_buffered_bytes = s.flags.max_buffered_bytes;
  o.host = s.host;
  o.port = s.port;
  o.io_threads = s.io_threads;
  o.upload_idle_timeout = std::chrono::seconds(s.flags.producer_timeout_s);
  o.request_log_level = spdlog::level::from_str(s.flags.request_log_level);
  o.node = s.node_id;
  return o;
}

std::string UrlHost(const std::string& host) {
  if (host == "0.0.0.0" || host == "::") return "127.0.0.1";
  if (host.find(':') != std::string::npos) return "[" + host + "]";
  return host;
}

void TrimArchive(store::FragmentArchive& archive, const store::StreamStore& streams,
                 const ServeSettings& s, const Clock& clock) {
  archive.Trim(clock.NowMs(), s.retention_ms, streams.options().max_bytes_per_stream,
               s.flags.fragments_max_bytes);
}

Result<std::unique_ptr<store::FragmentArchive>> OpenArchive(const ServeSettings& s,
                                                            const fs::path& data_dir,
                                                            store::StreamStore& streams,
                                                            const Clock& clock) {
  if (s.flags.no_persist) return std::unique_ptr<store::FragmentArchive>();
  auto opened = store::FragmentArchive::Open(data_dir / "fragments");
  if (!opened.ok()) return Named(opened.status());
  std::unique_ptr<store::FragmentArchive> archive = std::move(*opened);
  TrimArchive(*archive, streams, s, clock);
  store::RecoveryReport recovered = archive->Recover();
  spdlog::info("fragments recovered from {}: {} in {} streams ({} torn or unreadable removed)",
               (data_dir / "fragments").string(), recovered.fragments, recovered.streams.size(),
               recovered.discarded);
  streams.Restore(std::move(recovered.streams));
  streams.SetArchive(archive.get());
  return archive;
}

Result<std::unique_ptr<kvs::StreamRegistry>> OpenRegistry(const ServeSettings& s,
                                                          const fs::path& data_dir,
                                                          store::StreamStore& streams) {
  auto registry =
      kvs::StreamRegistry::Open(s.flags.no_persist ? fs::path() : data_dir / "kvs-streams.json");
  if (!registry.ok()) return Named(registry.status());
  for (const kvs::StreamMeta& m : (*registry)->All())
    if (!streams.Find(m.name)) {
      std::optional<int64_t> retention;
      if (m.retention_hours && *m.retention_hours > 0) retention = *m.retention_hours * 3'600'000;
      if (auto made = streams.Create(m.name, retention); !made.ok())
        spdlog::warn("Kinesis Video stream '{}' not restored: {}", m.name, made.status().message());
    }
  return std::move(*registry);
}

Result<std::vector<ingest::PullOptions>> LoadConfiguredPulls(const ServeSettings& s) {
  if (s.flags.config.empty()) return std::vector<ingest::PullOptions>();
  auto loaded = ingest::LoadSourcesConfig(s.flags.config, ConfigFileKeys());
  if (!loaded.ok()) return Explained("--config: ", loaded.status());
  return std::move(*loaded);
}

namespace {

Result<ObjectStores> OpenLocalStore(const ServeSettings& s, const fs::path& data_dir,
                                    const std::string& public_url,
                                    const aws::Credentials& credentials, const Clock& clock) {
  auto opened = objects::LocalStore::Open({.root = data_dir / "objects",
                                           .bucket = s.flags.bucket,
                                           .public_url = public_url,
                                           .region = "us-east-1",
                                           .credentials = credentials,
                                           .max_age_s = s.flags.objects_max_age_s,
                                           .max_total_bytes = s.flags.objects_max_bytes,
                                           .max_object_bytes = s.flags.max_object_bytes,
                                           .multipart_expiry_s = s.flags.multipart_expiry_s},
                                          clock);
  if (!opened.ok()) return Named(opened.status());
  ObjectStores stores{.local = std::move(*opened)};
  auto swept = stores.local->Sweep();
  stores.description = "embedded, bucket " + s.flags.bucket + " (" + std::to_string(swept.objects) +
                       " objects, " + std::to_string(swept.bytes) + " bytes)";
  return stores;
}

// An S3Store of |bucket| and |prefix| reached with the --s3-* flags; |source|
// says where its credentials came from.
Result<std::unique_ptr<objects::S3Store>> OpenS3(const ServeSettings& s, const std::string& bucket,
                                                 const std::string& prefix, const Clock& clock,
                                                 std::string* source,
                                                 objects::S3StoreOptions o = {}) {
  auto aws = aws::ResolveAwsSettings({.access_key_id = s.flags.s3_access_key,
                                      .secret_access_key = s.flags.s3_secret_key,
                                      .session_token = s.flags.s3_session_token,
                                      .region = s.flags.s3_region,
                                      .profile = s.flags.aws_profile});
  if (!aws.ok()) return aws.status();
  o.bucket = bucket;
  o.prefix = prefix;
  o.endpoint = s.flags.s3_endpoint;
  o.region = aws->region;
  o.addressing = s.s3_addressing;
  o.credentials = aws->credentials;
  o.budget.LimitTo(s.s3_timeout);
  *source = aws->source;
  auto opened = objects::S3Store::Open(std::move(o), clock);
  if (!opened.ok()) return opened.status();
  return std::move(*opened);
}

Result<ObjectStores> OpenS3Store(const ServeSettings& s, const Clock& clock) {
  std::string source;
  auto opened = OpenS3(s, s.s3_bucket, s.s3_prefix, clock, &source);
  if (!opened.ok()) return opened.status();
  ObjectStores stores{.remote = std::move(*opened)};
  stores.description = stores.remote->Describe() + ", credentials from " + source;
  return stores;
}

}  // namespace

Result<ObjectStores> OpenObjectStores(const ServeSettings& s, const fs::path& data_dir,
                                      const std::string& public_url,
                                      const aws::Credentials& credentials, const Clock& clock) {
  return s.local_store ? OpenLocalStore(s, data_dir, public_url, credentials, clock)
                       : OpenS3Store(s, clock);
}

Result<SharedArchiveParts> OpenSharedArchive(const ServeSettings& s, const Clock& clock) {
  SharedArchiveParts parts;
  if (s.archive_bucket.empty()) return parts;
  // Every producer's fragments go through these threads: more than a
  // snapshot store's, and a deeper queue (past it a fragment is refused, not
  // PERSISTED). No Cache-Control: the objects are not handed out.
  objects::S3StoreOptions o;
  o.upload_threads = 16;
  o.max_queued_uploads = 4096;
  o.cache_control = "";
  std::string source;
  auto opened = OpenS3(s, s.archive_bucket, s.archive_prefix, clock, &source, std::move(o));
  if (!opened.ok()) return Explained("--archive: ", opened.status());
  parts.objects = std::move(*opened);
  parts.archive = std::make_unique<store::SharedArchive>(*parts.objects);
  parts.description = parts.objects->Describe() + ", credentials from " + source;
  return parts;
}

Result<std::unique_ptr<kvs::KvsSource>> OpenKvsSource(const ServeSettings& s, const Clock& clock) {
  if (!s.kvs_source) return std::unique_ptr<kvs::KvsSource>();
  auto aws = aws::ResolveAwsSettings({.flag_prefix = "kvs",
                                      .access_key_id = s.flags.kvs_access_key,
                                      .secret_access_key = s.flags.kvs_secret_key,
                                      .session_token = s.flags.kvs_session_token,
                                      .region = s.flags.kvs_region,
                                      .profile = s.flags.aws_profile});
  if (!aws.ok()) return Explained("--source kvs: ", aws.status());
  kvs::KvsSourceOptions o;
  o.client.endpoint = s.flags.kvs_endpoint;
  o.client.region = aws->region;
  o.client.credentials = aws->credentials;
  o.client.budget.LimitTo(s.kvs_timeout);
  auto source = std::make_unique<kvs::KvsSource>(std::move(o), clock);
  spdlog::info("snapshots read Kinesis Video at {} (region {}, credentials from {})",
               source->endpoint(), aws->region, aws->source);
  return source;
}

Result<std::unique_ptr<ingest::PullSources>> MakePulls(
    const ServeSettings& s, store::StreamStore& streams, Limits& limits,
    std::vector<ingest::PullOptions> configured) {
  auto sources =
      std::make_unique<ingest::PullSources>(streams, ingest::PullPolicy(s.pull_allow, s.pull_deny),
                                            &limits.Add("pulls", "sources", s.flags.max_pulls));
  for (auto& o : configured) {
    std::string name = o.stream;
    if (Status st = sources->Add(std::move(o), /*configured=*/true); !st.ok())
      return Explained("--config: stream '" + name + "': ", st);
  }
  return sources;
}

Result<Keys> OpenKeys(const ServeSettings& s, const fs::path& data_dir, const Clock& clock) {
  Keys keys;
  if (!s.auth) return keys;
  const fs::path keys_file = KeysFileOf(data_dir.string(), s.flags.keys_file);
  if (s.flags.keys_file.empty()) {  // a shared --keys-file is made with `lastframe keys`
    auto made = auth::CreateInitialKeys(keys_file, data_dir / "initial-keys.txt", clock);
    if (!made.ok()) return Explained("cannot create the first keys: ", made.status());
    keys.first = *made;
  }
  keys.ring = std::make_unique<auth::KeyRing>(keys_file, data_dir / "keys-used.json", clock);
  if (Status st = keys.ring->Reload(); !st.ok()) return Explained("--keys-file: ", st);
  return keys;
}

namespace {

// The Kinesis Video source's counters, as Prometheus text for /metrics.
std::string KvsSourceMetrics(const kvs::KvsSource& source) {
  kvs::KvsSourceStats s = source.stats();
  metrics::TextWriter w;
  auto counter = [&w](const char* name, const char* help, uint64_t value) {
    w.Header(name, metrics::Type::kCounter, help);
    w.Sample(name, {}, {}, static_cast<double>(value));
  };
  counter("lastframe_kvs_warm_answers_total", "Looks answered from a followed stream.",
          s.warm_answers);
  counter("lastframe_kvs_cold_fetches_total",
          "Looks that fetched over the API (ListFragments + GetMediaForFragmentList).",
          s.cold_fetches);
  counter("lastframe_kvs_follower_fragments_total",
          "Fragments received by followed GetMedia streams.", s.follower_fragments);
  counter("lastframe_kvs_follower_reconnects_total", "GetMedia sessions restarted.", s.reconnects);
  return w.Take();
}

}  // namespace

http::ApiOptions ApiOptionsFor(const ServeSettings& s, Limits& limits,
                               const kvs::KvsSource* kvs_source) {
  http::ApiOptions o;
  o.public_metrics = s.flags.public_metrics;
  o.max_url_expiry_s = s.flags.max_url_expiry_s;
  o.limits = &limits;
  o.producer_limit = &limits.Add("producers", "producers", s.flags.max_producers);
  o.fragment_limit =
      &limits.Add("fragment_bytes", "bytes", ingest::PushOptions{}.max_fragment_bytes);
  if (kvs_source) o.extra_metrics = [kvs_source] { return KvsSourceMetrics(*kvs_source); };
  o.node = s.node_id;
  return o;
}

}  // namespace lastframe::app
