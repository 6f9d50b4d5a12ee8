#pragma once

#include <memory>
#include <optional>
#include <variant>

#include "aws/aws_chunked.h"
#include "aws/checksums.h"
#include "core/worker_pool.h"
#include "http/server.h"
#include "objects/local_store.h"

namespace lastframe::http {

// What a streamed PUT (PutObject, UploadPart) must do with its body, settled
// from its header before any byte is read.
struct S3UploadPlan {
  std::string key;
  std::string resource;  // for error documents
  // UploadPart: the upload and the part's number.
  std::optional<objects::MultipartUpload> upload;
  int part_number = 0;
  std::optional<std::string> payload_sha256;  // hex, when the payload's hash was signed
  std::optional<aws::ChunkedMode> chunked;    // an aws-chunked body
  std::optional<aws::ChunkSigning> signing;   // its chunks' signatures
  std::string declared_trailer;               // x-amz-trailer
  std::optional<uint64_t> decoded_length;     // x-amz-decoded-content-length
  std::optional<std::string> content_md5;     // raw
  // The client's checksum algorithm (header or trailer) and, from a header, its base64 value.
  std::optional<aws::ChecksumAlgorithm> client_algorithm;
  std::string expected_checksum;
  std::vector<aws::ChecksumAlgorithm> algorithms;  // computed: the client's and CRC64NVME
  objects::ObjectMeta meta;                        // content type, cache control, user metadata
  uint64_t max_bytes = 0;
};

// The streamed body's consumer (s3_upload.cpp).
std::unique_ptr<UploadSink> MakeS3UploadSink(objects::LocalStore& store, WorkerPool& workers,
                                             S3UploadPlan plan, UploadEvents events);

// The embedded store's S3 subset, path-style, so that awscli, boto3 and
// current SDKs work against it unchanged:
//   GET /                       ListBuckets (the one bucket)
//   GET /B?list-type=2 | GET /B ListObjectsV2 | ListObjects (prefix, delimiter, pages)
//   GET /B?uploads              ListMultipartUploads
//   HEAD /B                     HeadBucket
//   PUT|GET|HEAD|DELETE /B/KEY  PutObject, GetObject (Range, If-None-Match), HeadObject,
//                               DeleteObject
//   PUT /B/KEY + x-amz-copy-source  CopyObject
//   POST /B/KEY?uploads         CreateMultipartUpload
//   PUT /B/KEY?partNumber&uploadId  UploadPart
//   POST /B/KEY?uploadId        CompleteMultipartUpload
//   DELETE /B/KEY?uploadId      AbortMultipartUpload
//   GET /B/KEY?uploadId         ListParts
// Every request is authenticated (SigV4 header or presigned query). PUT
// bodies stream to disk (plain, or aws-chunked with signed chunks or a
// trailer) and are checked against x-amz-content-sha256, Content-MD5 and any
// x-amz-checksum-* (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), which the object
// keeps and GET/HEAD return with x-amz-checksum-mode: ENABLED. Errors are
// S3's XML documents with S3's codes and statuses. Anything else S3 has
// (ACLs, versions, other buckets, UploadPartCopy) answers 501 NotImplemented.
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
  // PutObject and UploadPart stream their bodies (Application::IsUpload).
  bool IsUpload(const Request& request) const;
  std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request& request,
                                                                  UploadEvents events);

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

  // The plan of a streamed PUT, or why it is refused.
  Result<S3UploadPlan> PlanUpload(const Request& request, const Parsed& parsed,
                                  const std::string& payload_hash) const;
  Response CopyObject(const Parsed& parsed, const std::string& resource);
  Response GetObject(const Request& request, const Parsed& parsed);
  // Multipart uploads.
  Response CreateMultipartUpload(const Parsed& parsed, const std::string& resource);
  Response CompleteMultipartUpload(const Request& request, const Parsed& parsed,
                                   const std::string& resource, const std::string& payload_hash);
  Response AbortMultipartUpload(const Parsed& parsed, const std::string& resource);
  Response ListParts(const Parsed& parsed, const std::string& resource);
  Response ListMultipartUploads(const Parsed& parsed, const std::string& resource);
  Response ListObjects(const Parsed& parsed);
  Response ListBuckets() const;

  objects::LocalStore& store_;
  WorkerPool& workers_;
};

}  // namespace lastframe::http
