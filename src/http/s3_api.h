#pragma once

#include <optional>

#include "core/worker_pool.h"
#include "http/server.h"
#include "objects/local_store.h"

namespace lastframe::http {

// The embedded store's S3 subset, path-style, so that awscli, boto3 and any
// SDK work against it:
//   GET /                       ListBuckets (the one bucket)
//   GET /B?list-type=2 | GET /B ListObjectsV2 | ListObjects (prefix, delimiter, pages)
//   HEAD /B                     HeadBucket
//   PUT|GET|HEAD|DELETE /B/KEY  PutObject, GetObject (Range, If-None-Match), HeadObject,
//                               DeleteObject
// Every request is authenticated (SigV4 header or presigned query); PUT bodies
// are checked against x-amz-content-sha256 and Content-MD5. Errors are S3's
// XML documents with S3's codes and statuses. Anything else S3 has (multipart
// uploads, ACLs, versions, other buckets) answers 501 NotImplemented.
class S3Api {
 public:
  // Disk work that may be large (PUT, DELETE, listings) runs on |workers|.
  S3Api(objects::LocalStore& store, WorkerPool& workers);

  // Whether |request| is for the S3 routes: a path in our bucket, or any
  // request that carries SigV4 authentication.
  bool Owns(const Request& request) const;
  // Before a PUT's body: authentication and the declared length.
  std::optional<Response> Admit(const Request& request) const;
  uint64_t BodyLimit(const Request& request) const;
  Response TooLarge(const Request& request, uint64_t limit) const;
  void Handle(Request request, Respond respond);

 private:
  struct Parsed {
    std::string bucket;  // "" for the service ("/")
    std::string key;     // "" for the bucket itself
    QueryParams query;
    aws::HeaderList headers;
  };
  Result<Parsed> Parse(const Request& request) const;
  // Authenticates, returning the declared payload hash.
  Result<std::string> Authenticate(const Request& request, const Parsed& parsed) const;

  Response PutObject(const Request& request, const Parsed& parsed, const std::string& payload_hash);
  Response GetObject(const Request& request, const Parsed& parsed);
  Response ListObjects(const Parsed& parsed);
  Response ListBuckets() const;

  objects::LocalStore& store_;
  WorkerPool& workers_;
};

}  // namespace lastframe::http
