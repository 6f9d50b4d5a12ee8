#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/clock.h"
#include "http/kvs_api.h"
#include "http/s3_api.h"
#include "http/server.h"
#include "ingest/pull_source.h"
#include "objects/local_store.h"
#include "snapshot/snapshot_service.h"
#include "store/stream_store.h"

namespace lastframe::http {

struct ApiOptions {
  int64_t default_expires_s = 600;
  int default_quality = 80;
  int max_dimension = 8192;  // width/height a caller may ask for
  // More Prometheus text for /metrics (e.g. the stream source's), may be empty.
  std::function<std::string()> extra_metrics;
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
  Api(store::StreamStore& streams, snapshot::SnapshotService& snapshots,
      objects::LocalStore* local_objects, WorkerPool& workers, const Clock& clock,
      ingest::PullSources* sources = nullptr, ApiOptions options = {}, KvsApi* kvs = nullptr);

  void Handle(Request request, Respond respond) override;
  bool IsUpload(const Request& request) const override;
  std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request& request,
                                                                  UploadEvents events) override;
  std::optional<Response> Admit(const Request& request) override;
  std::optional<uint64_t> BodyLimit(const Request& request) const override;
  Response TooLarge(const Request& request, uint64_t limit) const override;

 private:
  void Snapshot(const Request& req, const std::string& stream, Respond respond);
  void RecipeSnapshot(const Request& req, Respond respond);
  void LatestImage(const Request& req, const std::string& stream, media::ImageFormat format,
                   Respond respond);
  void ListStreams(Respond respond);
  void AddSource(const Request& req, Respond respond);
  void DeleteStream(const std::string& name, Respond respond);
  void ListFragments(const Request& req, const std::string& name, Respond respond);
  void Clip(const Request& req, const std::string& name, Respond respond);
  nlohmann::json StreamJson(const store::StreamInfo& info) const;
  Response Metrics() const;

  store::StreamStore& streams_;
  snapshot::SnapshotService& snapshots_;
  std::optional<S3Api> s3_;  // the embedded store's S3 routes
  const Clock& clock_;
  WorkerPool& workers_;
  ingest::PullSources* sources_;
  const ApiOptions options_;
  KvsApi* kvs_;  // Kinesis Video's API, when served
};

}  // namespace lastframe::http
