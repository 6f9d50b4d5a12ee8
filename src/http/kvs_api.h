#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/worker_pool.h"
#include "http/server.h"
#include "kvs/stream_registry.h"
#include "objects/sigv4.h"
#include "snapshot/scheduled_images.h"
#include "store/stream_store.h"

namespace lastframe::http {

struct KvsApiOptions {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";  // in ARNs
  std::string public_url;                   // what GetDataEndpoint answers
  std::string images_bucket;                // image generation writes only here
  bool require_signed_putmedia = false;     // refuse unsigned PutMedia
  int64_t default_retention_ms = 60'000;    // the store's, for DataRetentionInHours 0
  size_t max_get_media_per_stream = 10;
  // GetImages' images, as output width x height (--max-render-pixels): a
  // larger fit is scaled down, keeping its shape.
  uint64_t max_render_pixels = 3840ull * 2160;
};

// Kinesis Video Streams' API, as awscli, boto3 and the AWS SDKs call it
// (rest-json: POST /<operation> with a JSON body, SigV4 for service
// "kinesisvideo", errors as x-amzn-ErrorType plus {"message": ...}):
//   control        createStream describeStream listStreams deleteStream
//                  updateDataRetention getDataEndpoint
//                  updateImageGenerationConfiguration describeImageGenerationConfiguration
//   archived media listFragments getMediaForFragmentList getClip getImages
//   media          getMedia (streamed chunks, followed live)
// PutMedia stays in Api (a streamed upload); AuthorizePutMedia checks it.
class KvsApi {
 public:
  KvsApi(store::StreamStore& streams, kvs::StreamRegistry& registry,
         snapshot::ScheduledImages* images, WorkerPool& workers, const Clock& clock,
         objects::Credentials credentials, KvsApiOptions options);
  ~KvsApi();  // ends and joins GetMedia sessions

  bool Owns(const Request& request) const;
  void Handle(Request request, Respond respond);
  // nullopt when |request| (a PutMedia) may go on: signed correctly, or
  // unsigned where that is allowed.
  std::optional<Response> AuthorizePutMedia(const Request& request) const;
  // Applies every stream's saved image generation (call once at start).
  void RestoreImageGeneration();
  // Ends the GetMedia sessions now (server stop).
  void Shutdown();

 private:
  struct Call {
    std::string op;
    nlohmann::json body;
  };
  Status Authenticate(const Request& request) const;
  Result<std::string> StreamOf(const nlohmann::json& body) const;  // by name or ARN
  std::string Arn(const kvs::StreamMeta& meta) const;
  // The stream's metadata, made now for a stream the control plane has not seen.
  kvs::StreamMeta MetaOf(const std::string& name);
  // DataRetentionInHours as described: as set, else the stream's retention in hours.
  int64_t RetentionHours(const kvs::StreamMeta& m) const;
  nlohmann::json StreamInfoJson(const std::string& name);

  Response CreateStream(const nlohmann::json& body);
  Response DescribeStream(const nlohmann::json& body);
  Response ListStreams(const nlohmann::json& body);
  Response DeleteStream(const nlohmann::json& body);
  Response UpdateDataRetention(const nlohmann::json& body);
  Response GetDataEndpoint(const nlohmann::json& body);
  Response UpdateImageGeneration(const nlohmann::json& body);
  Response DescribeImageGeneration(const nlohmann::json& body);
  Response ListFragments(const nlohmann::json& body);
  void GetMediaForFragmentList(const nlohmann::json& body, Respond respond);
  void GetClip(const nlohmann::json& body, Respond respond);
  void GetImages(const nlohmann::json& body, Respond respond);
  void GetMedia(const nlohmann::json& body, Request& request, Respond respond);

  // One GetMedia session: a thread that follows the stream.
  struct Follower {
    std::string stream;
    std::shared_ptr<BodyWriter> writer;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void Follow(Follower* follower, std::shared_ptr<store::Stream> stream, uint64_t first_number,
              bool skip_to_live);
  void ReapFollowers();  // mu_ held

  store::StreamStore& streams_;
  kvs::StreamRegistry& registry_;
  snapshot::ScheduledImages* images_;
  WorkerPool& workers_;
  const Clock& clock_;
  objects::SigV4 signer_;
  const KvsApiOptions options_;
  std::mutex mu_;
  std::list<std::unique_ptr<Follower>> followers_;  // guarded by mu_
  bool shut_down_ = false;                          // guarded by mu_
  std::atomic<bool> stopping_{false};               // followers end at their next wake
};

// Kinesis Video's error response: |status|, x-amzn-ErrorType |type|, {"message": ...}.
Response KvsError(unsigned status, const std::string& type, const std::string& message);

}  // namespace lastframe::http
