#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth/api_keys.h"
#include "core/clock.h"
#include "http/cluster.h"
#include "http/dashboard.h"
#include "http/events.h"
#include "http/kvs_api.h"
#include "http/s3_api.h"
#include "http/server.h"
#include "ingest/pull_source.h"
#include "objects/local_store.h"
#include "snapshot/snapshot_engine.h"
#include "store/stream_store.h"

namespace lastframe::http {

struct ApiOptions {
  int64_t default_expires_s = 600;
  int default_quality = 80;
  int max_dimension = 8192;  // width/height a caller may ask for
  // More Prometheus text for /metrics (e.g. the stream source's), may be empty.
  std::function<std::string()> extra_metrics;
  // /metrics without credentials (a scraper on a trusted network).
  bool public_metrics = false;
  // The longest URL lifetime a key that is not an admin's may ask for.
  int64_t max_url_expiry_s = 86'400;
  // Every limit of the server, for /metrics (may be null).
  const Limits* limits = nullptr;
  // Producers pushing at once (may be null: unbounded); past it, 429 "TooManyProducers".
  Limit* producer_limit = nullptr;
  // Counts fragments refused for their size (may be null).
  Limit* fragment_limit = nullptr;
  // The node that answers (--node-id): named by /healthz, GET /v1/streams and
  // each stream's JSON ("node"), and by the dashboard and /v1/events (which
  // add the port the browser reached).
  std::string node;
  // This node's peers (--peers; may be null: none): GET /v1/streams then
  // answers for the whole cluster, unless asked by a peer (kFanoutHeader).
  Cluster* cluster = nullptr;
  // GET /v1/events: its subscribers at most, and how often it looks at the streams.
  EventHubOptions events;
};

// The route group of a request to Api's own routes (not the S3 or Kinesis
// Video routes it hands on: Api::RouteOf asks those first), and the stream it
// names in its path, stream_name parameter or x-amzn-stream-name header.
RouteInfo ApiRouteOf(const Request& request);

// Who a request comes from: anyone (access control off), or a verified key.
struct Caller {
  std::optional<auth::Principal> key;  // nullopt: --auth off
  bool admin() const { return !key || key->admin(); }
  bool MayView(std::string_view stream) const { return !key || key->MayView(stream); }
  bool MayPush(std::string_view stream) const { return !key || key->MayPush(stream); }
};

// lastframe's HTTP API (see README "HTTP API"): thin handlers that parse and
// validate, call the store, the snapshot service or the object store, and
// render JSON. Heavy work runs on the snapshot service's workers.
class Api final : public Application {
 public:
  // |local_objects| may be null when images go to an external store; when
  // set, its S3 routes are served too, their disk work on |workers|.
  // |sources| (may be null) are the pulled streams that POST and DELETE
  // /v1/streams manage. |kvs| (may be null) serves Kinesis Video's API and
  // checks PutMedia's signatures.
  // |streams| is the embedded store (streams made, deleted, pushed to);
  // |source| is where video is read from for snapshots, listings and clips:
  // the same store, or a remote Kinesis Video endpoint.
  Api(store::StreamStore& streams, const store::StreamSource& source,
      snapshot::SnapshotEngine& snapshots, objects::LocalStore* local_objects, WorkerPool& workers,
      const Clock& clock, ingest::PullSources* sources = nullptr, ApiOptions options = {},
      KvsApi* kvs = nullptr, auth::KeyRing* keys = nullptr);

  void Handle(Request request, Respond respond) override;
  bool IsUpload(const Request& request) const override;
  std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request& request,
                                                                  UploadEvents events) override;
  std::optional<Response> Admit(const Request& request) override;
  std::optional<uint64_t> BodyLimit(const Request& request) const override;
  RouteInfo RouteOf(const Request& request) const override;
  Response TooLarge(const Request& request, uint64_t limit) const override;

  // Ends the /v1/events subscribers and their thread, once the server has drained.
  void Shutdown();

  // The first path segments of the routes Api serves itself ("healthz",
  // "metrics", "putMedia", "snapshot", "v1"), taken from the paths its router
  // matches. The embedded store's S3 routes are /BUCKET/...: a bucket named as
  // one of these would hide its routes (app/ refuses such a --bucket).
  static std::vector<std::string> ReservedPathSegments();

 private:
  // The caller of a route behind keys: Unauthenticated ("Unauthorized") when
  // keys are on and the request's bearer key is missing or not valid. Without
  // an Authorization header, a GET or HEAD may name its key by the dashboard's
  // session cookie instead (Dashboard::SessionOf).
  Result<Caller> Identify(const Request& req) const;
  void Snapshot(const Request& req, const Caller& caller, const std::string& stream,
                Respond respond);
  void RecipeSnapshot(const Request& req, const Caller& caller, Respond respond);
  void LatestImage(const Request& req, const Caller& caller, const std::string& stream,
                   snapshot::ImageFormat format, Respond respond);
  // GET /v1/streams: this node's streams |caller| may view; with peers (and
  // not asked by one), the whole cluster's (Cluster::AskPeers, MergeListings).
  void ListStreams(const Request& req, const Caller& caller, Respond respond);
  // GET /v1/streams/NAME/preview.webp|gif: an animation of the recent past.
  void Preview(const Request& req, const std::string& stream, snapshot::ImageFormat format,
               Respond respond);
  // An image with its frame's time, age and fragment, or 409 StaleFrame when
  // it is older than |max_age_ms|.
  Response ImageResponse(snapshot::Image image, std::optional<int64_t> max_age_ms) const;
  // GET /v1/events: Server-Sent Events of the streams |caller| may view.
  void Events(Request& req, const Caller& caller, Respond respond);
  // Every stream's state as /v1/events tells it (EventHub's lister).
  std::vector<StreamEventState> EventStates() const;
  void AddSource(const Request& req, Respond respond);
  void DeleteStream(const std::string& name, Respond respond);
  void ListFragments(const Request& req, const std::string& name, Respond respond);
  void Clip(const Request& req, const std::string& name, Respond respond);
  // |admin|: upstream error text of pulled sources is shown to admins only.
  nlohmann::json StreamJson(const store::StreamInfo& info, bool admin) const;
  Response Metrics() const;

  store::StreamStore& streams_;
  const store::StreamSource& source_;
  snapshot::SnapshotEngine& snapshots_;
  std::optional<S3Api> s3_;  // the embedded store's S3 routes
  const Clock& clock_;
  WorkerPool& workers_;
  ingest::PullSources* sources_;
  const ApiOptions options_;
  KvsApi* kvs_;          // Kinesis Video's API, when served
  auth::KeyRing* keys_;  // API keys; null when access control is off
  Dashboard dashboard_;  // GET /, /ui/: the page, its assets, its sign-in sessions
  std::unique_ptr<EventHub> events_;
};

}  // namespace lastframe::http
