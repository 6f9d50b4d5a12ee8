#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/status.h"
#include "http/server.h"
#include "kvs/kvs_service.h"

namespace lastframe::http {

struct KvsApiOptions {
  bool require_signed_putmedia = false;  // refuse unsigned PutMedia
};

// Kinesis Video Streams' API, as awscli, boto3 and the AWS SDKs call it
// (rest-json: POST /<operation> with a JSON body, SigV4 for service
// "kinesisvideo", errors as x-amzn-ErrorType plus {"message": ...}), over
// kvs::KvsService: this layer routes, authenticates, parses each body into
// its request, renders the result, and maps errors (KvsErrorOf).
//   control        createStream describeStream listStreams deleteStream
//                  updateDataRetention getDataEndpoint
//                  updateImageGenerationConfiguration describeImageGenerationConfiguration
//   archived media listFragments getMediaForFragmentList getClip getImages
//   media          getMedia (streamed chunks, followed live)
// PutMedia stays in Api (a streamed upload); AuthorizePutMedia checks it.
class KvsApi {
 public:
  // The signer's region is |service|'s.
  KvsApi(kvs::KvsService& service, aws::Credentials credentials, const Clock& clock,
         KvsApiOptions options);

  bool Owns(const Request& request) const;
  void Handle(Request request, Respond respond);
  // nullopt when |request| (a PutMedia) may go on: signed correctly, or
  // unsigned where that is allowed.
  std::optional<Response> AuthorizePutMedia(const Request& request) const;

 private:
  Status Authenticate(const Request& request) const;
  void GetMedia(const nlohmann::json& body, Request& request, Respond respond);

  kvs::KvsService& service_;
  aws::SigV4 signer_;
  const KvsApiOptions options_;
};

// Kinesis Video's error response: |status|, x-amzn-ErrorType |type|, {"message": ...}.
Response KvsError(unsigned status, const std::string& type, const std::string& message);

// The one map from our errors to Kinesis Video's: the HTTP status and the
// x-amzn-ErrorType of |error| (by its reason where Kinesis Video has a name
// for it, else by its code).
struct KvsErrorKind {
  unsigned status;
  std::string_view type;
};
KvsErrorKind KvsErrorKindOf(const Status& error);
// |error| as Kinesis Video's error response.
Response KvsErrorOf(const Status& error);

}  // namespace lastframe::http
