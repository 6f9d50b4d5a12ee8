#include "http/kvs_api.h"

#include <algorithm>
#include <memory>

#include "core/encoding.h"
#include "http/kvs_operations.h"
#include "http/params.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

// SigV4 failures as Kinesis Video tells them (reasons for KvsErrorKindOf).
Status AuthError(const Status& s) {
  const Reason r = s.reason();
  if (r == Reason::kInvalidAccessKeyId || r == Reason::kInvalidToken)
    return Status(Code::kUnauthenticated, "The security token included in the request is invalid.",
                  Reason::kUnknownCredentials);
  if (r == Reason::kSignatureDoesNotMatch)
    return Status(Code::kUnauthenticated, s.message(), Reason::kBadSignature);
  if (r == Reason::kRequestTimeTooSkewed)
    return Status(Code::kUnauthenticated, "Signature expired: " + s.message(),
                  Reason::kBadSignature);
  // A credential scoped to another region or service is a wrong signature, as AWS says.
  if (r == Reason::kCredentialScopeMismatch)
    return Status(
        Code::kUnauthenticated,
        "Credential should be scoped to this server's region and to service kinesisvideo: " +
            s.message(),
        Reason::kBadSignature);
  return Status(Code::kInvalidArgument, s.message(), Reason::kIncompleteSignature);
}

// The request's headers as SigV4 reads them: lower-case names.
aws::HeaderList HeadersOf(const Request& r) {
  aws::HeaderList headers;
  for (const auto& field : r.header) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    headers.emplace_back(std::move(name), std::string(field.value()));
  }
  return headers;
}

// A streamed response body as GetMedia's chunk sink.
class BodySink final : public kvs::ChunkSink {
 public:
  explicit BodySink(std::shared_ptr<BodyWriter> writer) : writer_(std::move(writer)) {}
  bool Write(std::string bytes) override { return writer_->Write(std::move(bytes)); }
  bool open() const override { return writer_->open(); }
  void End() override { writer_->End(); }

 private:
  const std::shared_ptr<BodyWriter> writer_;
};

const char* const kOperations[] = {"/createStream",
                                   "/describeStream",
                                   "/listStreams",
                                   "/deleteStream",
                                   "/updateDataRetention",
                                   "/getDataEndpoint",
                                   "/listFragments",
                                   "/getMediaForFragmentList",
                                   "/getClip",
                                   "/getImages",
                                   "/getMedia",
                                   "/updateImageGenerationConfiguration",
                                   "/describeImageGenerationConfiguration"};
// Kinesis Video operations lastframe does not have: a clear 501, not a 404.
const char* const kUnsupported[] = {"/updateStream",
                                    "/tagStream",
                                    "/untagStream",
                                    "/listTagsForStream",
                                    "/tagResource",
                                    "/untagResource",
                                    "/listTagsForResource",
                                    "/getHLSStreamingSessionURL",
                                    "/getDASHStreamingSessionURL",
                                    "/describeNotificationConfiguration",
                                    "/updateNotificationConfiguration",
                                    "/describeEdgeConfiguration",
                                    "/startEdgeConfigurationUpdate",
                                    "/describeMappedResourceConfiguration",
                                    "/describeMediaStorageConfiguration",
                                    "/updateMediaStorageConfiguration",
                                    "/createSignalingChannel",
                                    "/listSignalingChannels"};

}  // namespace

Response KvsError(unsigned status, const std::string& type, const std::string& message) {
  Response res = JsonResponse(status, JsonText(json{{"message", message}}));
  res.set("x-amzn-ErrorType", type);
  res.set("x-amzn-RequestId", kvs_ops::RequestId());
  return res;
}

KvsErrorKind KvsErrorKindOf(const Status& s) {
  // Our reasons that Kinesis Video names otherwise than by their code.
  static constexpr std::pair<Reason, KvsErrorKind> kByReason[] = {
      {Reason::kVersionMismatch, {400, "VersionMismatchException"}},
      {Reason::kNoDataRetention, {400, "NoDataRetentionException"}},
      {Reason::kTooManyTags, {400, "TagsPerResourceExceededLimitException"}},
      {Reason::kTooManyStreams, {400, "AccountStreamLimitExceededException"}},
      {Reason::kTooManyGetMediaConnections, {400, "ConnectionLimitExceededException"}},
      {Reason::kNoSignature, {403, "MissingAuthenticationTokenException"}},
      {Reason::kUnknownCredentials, {403, "UnrecognizedClientException"}},
      {Reason::kBadSignature, {403, "InvalidSignatureException"}},
      {Reason::kIncompleteSignature, {400, "IncompleteSignatureException"}},
  };
  for (const auto& [r, kind] : kByReason)
    if (s.reason() == r) return kind;
  switch (s.code()) {
    case Code::kInvalidArgument:
    case Code::kTooLarge:
      return {400, "InvalidArgumentException"};
    case Code::kNotFound:  // StreamNotFound, FragmentNotFound, NoFragments
      return {404, "ResourceNotFoundException"};
    case Code::kConflict:  // StreamExists, StreamBusy
      return {400, "ResourceInUseException"};
    case Code::kOverloaded:
      return {400, "ClientLimitExceededException"};
    case Code::kMediaError:
      return {400, "InvalidMediaFrameException"};
    case Code::kUnavailable:
    case Code::kUpstreamFailed:
    case Code::kTimeout:
      return {503, "ServiceUnavailableException"};
    default:
      return {500, "InternalFailure"};
  }
}

Response KvsErrorOf(const Status& s) {
  KvsErrorKind kind = KvsErrorKindOf(s);
  return KvsError(kind.status, std::string(kind.type), s.message());
}

KvsApi::KvsApi(kvs::KvsService& service, aws::Credentials credentials, const Clock& clock,
               KvsApiOptions options)
    : service_(service),
      signer_(std::move(credentials), service.options().region, "kinesisvideo", clock),
      options_(options) {}

bool KvsApi::Owns(const Request& r) const {
  for (const char* op : kOperations)
    if (r.path == op) return true;
  if (r.header.method() != bhttp::verb::post) return false;
  for (const char* op : kUnsupported)
    if (r.path == op) return true;
  return false;
}

Status KvsApi::Authenticate(const Request& r) const {
  aws::HeaderList headers = HeadersOf(r);
  if (!aws::CanonicalHeaderValue(headers, "authorization"))
    return Status(Code::kUnauthenticated, "Missing Authentication Token", Reason::kNoSignature);
  auto query = ParseQuery(r.raw_query);
  if (!query) return InvalidArgument("malformed query string");
  const std::string body_hash = aws::Sha256Hex(r.body);
  auto declared = signer_.VerifyHeaderAuth(std::string(r.header.method_string()), r.path, *query,
                                           headers, body_hash);
  if (!declared.ok()) return AuthError(declared.status());
  if (*declared != body_hash)
    return Status(Code::kUnauthenticated,
                  "The x-amz-content-sha256 header does not match the request body.",
                  Reason::kBadSignature);
  return Status::Ok();
}

std::optional<Response> KvsApi::AuthorizePutMedia(const Request& r) const {
  if (r.header.find(bhttp::field::authorization) == r.header.end()) {
    if (!options_.require_signed_putmedia) return std::nullopt;
    return KvsErrorOf(Status(Code::kUnauthenticated,
                             "Missing Authentication Token: PutMedia must be signed (SigV4, "
                             "service kinesisvideo)",
                             Reason::kNoSignature));
  }
  aws::HeaderList headers = HeadersOf(r);
  auto query = ParseQuery(r.raw_query);
  if (!query) return KvsErrorOf(InvalidArgument("malformed query string"));
  // A streamed body cannot be hashed before it is read: producers sign an
  // empty payload's hash (Kinesis Video's producer SDK) or UNSIGNED-PAYLOAD.
  auto declared = signer_.VerifyHeaderAuth("POST", r.path, *query, headers, aws::Sha256Hex(""));
  if (!declared.ok()) return KvsErrorOf(AuthError(declared.status()));
  return std::nullopt;
}

void KvsApi::Handle(Request req, Respond respond) {
  if (req.header.method() != bhttp::verb::post) {
    Response res = KvsError(405, "MethodNotAllowed", req.path.substr(1) + " takes POST");
    res.set(bhttp::field::allow, "POST");
    return respond(std::move(res));
  }
  if (Status s = Authenticate(req); !s.ok()) return respond(KvsErrorOf(s));
  for (const char* op : kUnsupported)
    if (req.path == op)
      return respond(
          KvsError(501, "NotImplemented", "lastframe does not implement " + req.path.substr(1)));
  json body = req.body.empty() ? json::object() : ParseJsonBody(req.body);
  if (body.is_discarded() || !body.is_object())
    return respond(KvsError(400, "SerializationException", "the body must be a JSON object"));
  const std::string& op = req.path;
  kvs::KvsService& kvs = service_;
  if (op == "/createStream") return respond(kvs_ops::CreateStream(kvs, body));
  if (op == "/describeStream") return respond(kvs_ops::DescribeStream(kvs, body));
  if (op == "/listStreams") return respond(kvs_ops::ListStreams(kvs, body));
  if (op == "/deleteStream") return respond(kvs_ops::DeleteStream(kvs, body));
  if (op == "/updateDataRetention") return respond(kvs_ops::UpdateDataRetention(kvs, body));
  if (op == "/getDataEndpoint") return respond(kvs_ops::GetDataEndpoint(kvs, body));
  if (op == "/updateImageGenerationConfiguration")
    return respond(kvs_ops::UpdateImageGeneration(kvs, body));
  if (op == "/describeImageGenerationConfiguration")
    return respond(kvs_ops::DescribeImageGeneration(kvs, body));
  if (op == "/listFragments") return kvs_ops::ListFragments(kvs, body, std::move(respond));
  if (op == "/getMediaForFragmentList")
    return kvs_ops::GetMediaForFragmentList(kvs, body, std::move(respond));
  if (op == "/getClip") return kvs_ops::GetClip(kvs, body, std::move(respond));
  if (op == "/getImages") return kvs_ops::GetImages(kvs, body, std::move(respond));
  if (op == "/getMedia") return GetMedia(body, req, std::move(respond));
  respond(KvsError(404, "UnknownOperationException", "no operation " + op));
}

void KvsApi::GetMedia(const json& body, Request& request, Respond respond) {
  auto parsed = kvs_ops::ParseGetMedia(body);
  if (!parsed.ok()) return respond(KvsErrorOf(parsed.status()));
  auto session = service_.GetMedia(*parsed);
  if (!session.ok()) return respond(KvsErrorOf(session.status()));
  Response head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "video/webm");
  head.set("x-amzn-RequestId", kvs_ops::RequestId());
  // StreamStart is a std::function, which copies: the session is shared.
  auto shared = std::make_shared<kvs::MediaFollowers::Session>(std::move(*session));
  request.respond_streaming(std::move(head), [shared](std::shared_ptr<BodyWriter> writer) {
    shared->Start(std::make_shared<BodySink>(std::move(writer)));
  });
}

}  // namespace lastframe::http
