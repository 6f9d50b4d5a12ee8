#include "http/kvs_api.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/stream_name.h"
#include "core/time_format.h"
#include "http/params.h"
#include "kvs/mkv_chunk.h"
#include "media/image_encoder.h"
#include "snapshot/frame_decoder.h"
#include "store/clip.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

constexpr int64_t kMaxRetentionHours = 87'600;  // Kinesis Video's: 10 years
// Kinesis Video's limits.
constexpr size_t kMaxClipFragments = 200;
constexpr size_t kMaxClipBytes = 100 * 1024 * 1024;
constexpr size_t kMaxFragmentListBytes = 100 * 1024 * 1024;
constexpr int64_t kMinSamplingMs = 3000;
constexpr int64_t kMaxSamplingMs = 20000;

Status Invalid(const std::string& message) {
  return Status(Code::kInvalidArgument, message, "InvalidArgumentException");
}
Status NoStream(const std::string& name) {
  return Status(Code::kNotFound, "The requested stream " + name + " is not found or not active.",
                "ResourceNotFoundException");
}

std::string RequestId() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  return objects::HexEncode(std::string(reinterpret_cast<char*>(raw), sizeof raw));
}

// Kinesis Video's error type and status for a Status of ours.
Response ErrorOf(const Status& s) {
  const std::string& r = s.reason();
  if (r.size() > 9 && r.ends_with("Exception")) {
    unsigned status = r == "ResourceNotFoundException"                                ? 404
                      : r == "NotAuthorizedException" || r == "AccessDeniedException" ? 401
                      : r == "UnrecognizedClientException" || r == "InvalidSignatureException" ||
                              r == "MissingAuthenticationTokenException"
                          ? 403
                          : 400;
    return KvsError(status, r, s.message());
  }
  switch (s.code()) {
    case Code::kInvalidArgument:
    case Code::kTooLarge:
      return KvsError(400, "InvalidArgumentException", s.message());
    case Code::kNotFound:
      return KvsError(404, "ResourceNotFoundException", s.message());
    case Code::kConflict:
      return KvsError(400, "ResourceInUseException", s.message());
    case Code::kOverloaded:
      return KvsError(400, "ClientLimitExceededException", s.message());
    case Code::kMediaError:
      return KvsError(400, "InvalidMediaFrameException", s.message());
    case Code::kUnavailable:
    case Code::kUpstreamFailed:
      return KvsError(503, "ServiceUnavailableException", s.message());
    default:
      return KvsError(500, "InternalFailure", s.message());
  }
}

// SigV4 failures as Kinesis Video names them.
Status AuthError(const Status& s) {
  const std::string& r = s.reason();
  if (r == "InvalidAccessKeyId" || r == "InvalidToken")
    return Status(Code::kPermissionDenied, "The security token included in the request is invalid.",
                  "UnrecognizedClientException");
  if (r == "SignatureDoesNotMatch")
    return Status(Code::kPermissionDenied, s.message(), "InvalidSignatureException");
  if (r == "RequestTimeTooSkewed")
    return Status(Code::kPermissionDenied, "Signature expired: " + s.message(),
                  "InvalidSignatureException");
  // A credential scoped to another region or service is a wrong signature, as AWS says.
  if (r == "AuthorizationHeaderMalformed" && (s.message().find("region") != std::string::npos ||
                                              s.message().find("scope") != std::string::npos))
    return Status(
        Code::kPermissionDenied,
        "Credential should be scoped to this server's region and to service kinesisvideo: " +
            s.message(),
        "InvalidSignatureException");
  return Status(Code::kInvalidArgument, s.message(), "IncompleteSignatureException");
}

// The request's headers as SigV4 reads them: lower-case names.
objects::HeaderList HeadersOf(const Request& r) {
  objects::HeaderList headers;
  for (const auto& field : r.header) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    headers.emplace_back(std::move(name), std::string(field.value()));
  }
  return headers;
}

// A decimal number that fits 64 bits (signs, spaces and overflow refused).
std::optional<uint64_t> ParseU64(const std::string& s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// JPEGQuality: a string "1".."100".
std::optional<int> JpegQuality(const std::string& s) {
  auto q = ParseU64(s);
  if (!q || *q < 1 || *q > 100) return std::nullopt;
  return static_cast<int>(*q);
}

// Typed access to a request body's fields, each error naming the field.
Result<std::optional<std::string>> OptString(const json& body, const char* key, size_t max_len) {
  if (!body.contains(key) || body[key].is_null()) return std::optional<std::string>();
  if (!body[key].is_string()) return Invalid(std::string(key) + " must be a string");
  std::string v = body[key].get<std::string>();
  if (v.empty() || v.size() > max_len)
    return Invalid(std::string(key) + " must be 1 to " + std::to_string(max_len) +
                   " characters long");
  return std::optional<std::string>(std::move(v));
}

Result<std::optional<int64_t>> OptInt(const json& body, const char* key, int64_t min, int64_t max) {
  if (!body.contains(key) || body[key].is_null()) return std::optional<int64_t>();
  const json& v = body[key];
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max)
    return Invalid(std::string(key) + " must be an integer from " + std::to_string(min) + " to " +
                   std::to_string(max));
  return std::optional<int64_t>(v.get<int64_t>());
}

// A timestamp as the SDKs send them: epoch seconds (fractions allowed), or
// an ISO 8601 string.
Result<int64_t> TimestampMs(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return Invalid(std::string(key) + " is required");
  const json& v = body[key];
  if (v.is_number()) {
    if (auto t = EpochSecondsToMs(v.get<double>())) return *t;
    return Invalid(std::string(key) + " must be epoch seconds from 1970 to 9999");
  }
  if (v.is_string())
    if (auto t = ParseTimestampMs(v.get<std::string>())) return *t;
  return Invalid(std::string(key) + " must be epoch seconds or an ISO 8601 time, 1970 to 9999");
}

struct Range {
  bool server = false;  // SERVER_TIMESTAMP, else PRODUCER_TIMESTAMP
  int64_t start_ms = 0, end_ms = 0;
};

// {"FragmentSelectorType": ..., "TimestampRange": {"StartTimestamp", "EndTimestamp"}}
Result<Range> ParseSelector(const json& body, const char* key) {
  if (!body.contains(key) || !body[key].is_object())
    return Invalid(std::string(key) + " is required (FragmentSelectorType, TimestampRange)");
  const json& sel = body[key];
  Range r;
  const json type = sel.value("FragmentSelectorType", json());
  if (type == "SERVER_TIMESTAMP")
    r.server = true;
  else if (type != "PRODUCER_TIMESTAMP")
    return Invalid("FragmentSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP");
  if (!sel.contains("TimestampRange") || !sel["TimestampRange"].is_object())
    return Invalid("TimestampRange is required (StartTimestamp, EndTimestamp)");
  auto start = TimestampMs(sel["TimestampRange"], "StartTimestamp");
  if (!start.ok()) return start.status();
  auto end = TimestampMs(sel["TimestampRange"], "EndTimestamp");
  if (!end.ok()) return end.status();
  if (*end < *start) return Invalid("The EndTimestamp must not be before the StartTimestamp.");
  r.start_ms = *start;
  r.end_ms = *end;
  return r;
}

int64_t StartOf(const store::FragmentView& f, bool server) {
  return server ? f.server_ts_ms : f.producer_ts_ms;
}

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

Response JsonOk(const json& j) {
  Response res = JsonResponse(200, JsonText(j));
  res.set("x-amzn-RequestId", RequestId());
  return res;
}

std::string MediaTypeOf(const store::StreamInfo& info) {
  if (info.codec == "h264") return "video/h264";
  if (info.codec == "hevc") return "video/h265";
  return info.codec.empty() ? "" : "video/" + info.codec;
}

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
  res.set("x-amzn-RequestId", RequestId());
  return res;
}

KvsApi::KvsApi(store::StreamStore& streams, kvs::StreamRegistry& registry,
               snapshot::ScheduledImages* images, WorkerPool& workers, const Clock& clock,
               objects::Credentials credentials, KvsApiOptions options)
    : streams_(streams),
      registry_(registry),
      images_(images),
      workers_(workers),
      clock_(clock),
      signer_(std::move(credentials), options.region, "kinesisvideo", clock),
      options_(std::move(options)) {}

KvsApi::~KvsApi() { Shutdown(); }

void KvsApi::Shutdown() {
  std::list<std::unique_ptr<Follower>> followers;
  stopping_ = true;
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    followers.swap(followers_);
  }
  for (auto& f : followers)
    if (auto* w = f->writer.get()) w->End();  // no more chunks; the thread sees it closed
  for (auto& f : followers)
    if (f->thread.joinable()) f->thread.join();
}

bool KvsApi::Owns(const Request& r) const {
  if (r.header.method() != bhttp::verb::post) {
    for (const char* op : kOperations)
      if (r.path == op) return true;
    return false;
  }
  for (const char* op : kOperations)
    if (r.path == op) return true;
  for (const char* op : kUnsupported)
    if (r.path == op) return true;
  return false;
}

Status KvsApi::Authenticate(const Request& r) const {
  objects::HeaderList headers = HeadersOf(r);
  if (!objects::CanonicalHeaderValue(headers, "authorization"))
    return Status(Code::kPermissionDenied, "Missing Authentication Token",
                  "MissingAuthenticationTokenException");
  auto query = objects::ParseQuery(r.raw_query);
  if (!query) return Invalid("malformed query string");
  const std::string body_hash = objects::Sha256Hex(r.body);
  auto declared = signer_.VerifyHeaderAuth(std::string(r.header.method_string()), r.path, *query,
                                           headers, body_hash);
  if (!declared.ok()) return AuthError(declared.status());
  if (*declared != body_hash)
    return Status(Code::kPermissionDenied,
                  "The x-amz-content-sha256 header does not match the request body.",
                  "InvalidSignatureException");
  return Status::Ok();
}

std::optional<Response> KvsApi::AuthorizePutMedia(const Request& r) const {
  if (r.header.find(bhttp::field::authorization) == r.header.end()) {
    if (!options_.require_signed_putmedia) return std::nullopt;
    return KvsError(403, "MissingAuthenticationTokenException",
                    "Missing Authentication Token: PutMedia must be signed (SigV4, service "
                    "kinesisvideo)");
  }
  objects::HeaderList headers = HeadersOf(r);
  auto query = objects::ParseQuery(r.raw_query);
  if (!query) return ErrorOf(Invalid("malformed query string"));
  // A streamed body cannot be hashed before it is read: producers sign an
  // empty payload's hash (Kinesis Video's producer SDK) or UNSIGNED-PAYLOAD.
  auto declared = signer_.VerifyHeaderAuth("POST", r.path, *query, headers, objects::Sha256Hex(""));
  if (!declared.ok()) return ErrorOf(AuthError(declared.status()));
  return std::nullopt;
}

void KvsApi::Handle(Request req, Respond respond) {
  if (req.header.method() != bhttp::verb::post) {
    Response res = KvsError(405, "MethodNotAllowed", req.path.substr(1) + " takes POST");
    res.set(bhttp::field::allow, "POST");
    return respond(std::move(res));
  }
  if (Status s = Authenticate(req); !s.ok()) return respond(ErrorOf(s));
  for (const char* op : kUnsupported)
    if (req.path == op)
      return respond(
          KvsError(501, "NotImplemented", "lastframe does not implement " + req.path.substr(1)));
  json body = req.body.empty() ? json::object() : ParseJsonBody(req.body);
  if (body.is_discarded() || !body.is_object())
    return respond(KvsError(400, "SerializationException", "the body must be a JSON object"));
  const std::string& op = req.path;
  if (op == "/createStream") return respond(CreateStream(body));
  if (op == "/describeStream") return respond(DescribeStream(body));
  if (op == "/listStreams") return respond(ListStreams(body));
  if (op == "/deleteStream") return respond(DeleteStream(body));
  if (op == "/updateDataRetention") return respond(UpdateDataRetention(body));
  if (op == "/getDataEndpoint") return respond(GetDataEndpoint(body));
  if (op == "/updateImageGenerationConfiguration") return respond(UpdateImageGeneration(body));
  if (op == "/describeImageGenerationConfiguration") return respond(DescribeImageGeneration(body));
  if (op == "/listFragments") return respond(ListFragments(body));
  if (op == "/getMediaForFragmentList") return GetMediaForFragmentList(body, std::move(respond));
  if (op == "/getClip") return GetClip(body, std::move(respond));
  if (op == "/getImages") return GetImages(body, std::move(respond));
  if (op == "/getMedia") return GetMedia(body, req, std::move(respond));
  respond(KvsError(404, "UnknownOperationException", "no operation " + op));
}

std::string KvsApi::Arn(const kvs::StreamMeta& m) const {
  return "arn:aws:kinesisvideo:" + options_.region + ":" + options_.account_id + ":stream/" +
         m.name + "/" + std::to_string(m.creation_ms);
}

Result<std::string> KvsApi::StreamOf(const json& body) const {
  auto name = OptString(body, "StreamName", 256);
  if (!name.ok()) return name.status();
  auto arn = OptString(body, "StreamARN", 1024);
  if (!arn.ok()) return arn.status();
  if (!*name && !*arn) return Invalid("StreamName or StreamARN is required");
  std::string stream;
  if (*name) {
    stream = **name;
    if (Status s = ValidateStreamName(stream); !s.ok()) return Invalid(s.message());
  }
  if (*arn) {
    // arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION
    const std::string& a = **arn;
    size_t at = a.find(":stream/");
    size_t last = a.rfind('/');
    if (!a.starts_with("arn:") || at == std::string::npos || last <= at + 8)
      return Invalid("StreamARN is not a Kinesis Video stream ARN");
    std::string from_arn = a.substr(at + 8, last - at - 8);
    if (*name && from_arn != stream)
      return Invalid("StreamName and StreamARN name different streams");
    auto meta = registry_.Find(from_arn);
    if (!meta || !streams_.Find(from_arn) || Arn(*meta) != a) return NoStream(a);
    stream = from_arn;
  }
  if (!streams_.Find(stream)) return NoStream(stream);
  return stream;
}

kvs::StreamMeta KvsApi::MetaOf(const std::string& name) {
  if (auto known = registry_.Find(name)) return *known;
  // A stream made by a push or a pull began no later than its oldest fragment
  // (looked up once: listings run on I/O threads).
  int64_t since = clock_.NowMs();
  if (auto s = streams_.Find(name))
    for (const auto& f : s->Fragments()) since = std::min(since, f.server_ts_ms);
  return registry_.Ensure(name, since);
}

int64_t KvsApi::RetentionHours(const kvs::StreamMeta& m) const {
  if (m.retention_hours) return *m.retention_hours;
  auto s = streams_.Find(m.name);
  int64_t ms = s ? s->retention_ms() : options_.default_retention_ms;
  return (ms + 3'599'999) / 3'600'000;  // whole hours, rounded up: never less than is kept
}

json KvsApi::StreamInfoJson(const std::string& name) {
  kvs::StreamMeta m = MetaOf(name);
  store::StreamInfo info;
  if (auto s = streams_.Find(name))
    info = s->Info(clock_.NowMs(), streams_.options().live_window_ms);
  std::string media_type = m.media_type.empty() ? MediaTypeOf(info) : m.media_type;
  int64_t hours = RetentionHours(m);
  json j = {{"StreamName", name},
            {"StreamARN", Arn(m)},
            {"Version", std::to_string(m.version)},
            {"Status", "ACTIVE"},
            {"CreationTime", Seconds(m.creation_ms)},
            {"DataRetentionInHours", hours}};
  if (!m.device_name.empty()) j["DeviceName"] = m.device_name;
  if (!media_type.empty()) j["MediaType"] = media_type;
  if (!m.kms_key_id.empty()) j["KmsKeyId"] = m.kms_key_id;
  return j;
}

Response KvsApi::CreateStream(const json& body) {
  auto name = OptString(body, "StreamName", 256);
  if (!name.ok()) return ErrorOf(name.status());
  if (!*name) return ErrorOf(Invalid("StreamName is required"));
  if (Status s = ValidateStreamName(**name); !s.ok()) return ErrorOf(Invalid(s.message()));
  kvs::StreamMeta m;
  m.name = **name;
  for (auto [key, slot, max] : {std::tuple{"DeviceName", &m.device_name, size_t{128}},
                                std::tuple{"MediaType", &m.media_type, size_t{128}},
                                std::tuple{"KmsKeyId", &m.kms_key_id, size_t{2048}}}) {
    auto v = OptString(body, key, max);
    if (!v.ok()) return ErrorOf(v.status());
    if (*v) *slot = **v;
  }
  if (!m.media_type.empty() && m.media_type.find('/') == std::string::npos)
    return ErrorOf(Invalid("MediaType must be a media type such as video/h264"));
  auto hours = OptInt(body, "DataRetentionInHours", 0, kMaxRetentionHours);
  if (!hours.ok()) return ErrorOf(hours.status());
  if (body.contains("Tags") && (!body["Tags"].is_object() || body["Tags"].size() > 50))
    return ErrorOf(Status(Code::kInvalidArgument, "Tags must be a map of at most 50 tags",
                          body["Tags"].is_object() ? "TagsPerResourceExceededLimitException"
                                                   : "InvalidArgumentException"));
  m.retention_hours = hours->value_or(0);
  m.creation_ms = clock_.NowMs();
  std::optional<int64_t> retention;  // 0: no archive in Kinesis Video; here the live window
  if (*m.retention_hours > 0) retention = *m.retention_hours * 3'600'000;
  auto created = streams_.Create(m.name, retention);
  if (!created.ok() && created.status().reason() == "TooManyStreams")  // --max-streams
    return KvsError(400, "AccountStreamLimitExceededException", created.status().message());
  if (!created.ok())
    return ErrorOf(Status(Code::kConflict, "The stream " + m.name + " already exists.",
                          "ResourceInUseException"));
  if (Status s = registry_.Put(m); !s.ok()) return ErrorOf(s);
  return JsonOk({{"StreamARN", Arn(m)}});
}

Response KvsApi::DescribeStream(const json& body) {
  auto name = StreamOf(body);
  if (!name.ok()) return ErrorOf(name.status());
  return JsonOk({{"StreamInfo", StreamInfoJson(*name)}});
}

Response KvsApi::ListStreams(const json& body) {
  auto max = OptInt(body, "MaxResults", 1, 10000);
  if (!max.ok()) return ErrorOf(max.status());
  std::string prefix, after;
  if (body.contains("StreamNameCondition")) {
    const json& c = body["StreamNameCondition"];
    if (!c.is_object() || c.value("ComparisonOperator", json()) != "BEGINS_WITH" ||
        !c.contains("ComparisonValue") || !c["ComparisonValue"].is_string())
      return ErrorOf(Invalid(
          "StreamNameCondition must be {ComparisonOperator: BEGINS_WITH, ComparisonValue}"));
    prefix = c["ComparisonValue"].get<std::string>();
  }
  auto token = OptString(body, "NextToken", 512);
  if (!token.ok()) return ErrorOf(token.status());
  if (*token) {
    auto decoded = objects::Base64Decode(**token);
    if (!decoded) return ErrorOf(Invalid("NextToken is not one this server gave"));
    after = *decoded;
  }
  std::vector<std::string> names;
  for (const auto& s : streams_.List())
    if (s.name.starts_with(prefix) && (after.empty() || s.name > after)) names.push_back(s.name);
  std::sort(names.begin(), names.end());
  size_t limit = static_cast<size_t>(max->value_or(10000));
  json list = json::array();
  for (size_t i = 0; i < names.size() && i < limit; ++i) list.push_back(StreamInfoJson(names[i]));
  json out = {{"StreamInfoList", list}};
  if (names.size() > limit) out["NextToken"] = objects::Base64Encode(names[limit - 1]);
  return JsonOk(out);
}

Response KvsApi::DeleteStream(const json& body) {
  if (!body.contains("StreamARN")) return ErrorOf(Invalid("StreamARN is required"));
  json only_arn = {{"StreamARN", body["StreamARN"]}};
  auto name = StreamOf(only_arn);
  if (!name.ok()) return ErrorOf(name.status());
  auto version = OptString(body, "CurrentVersion", 64);
  if (!version.ok()) return ErrorOf(version.status());
  kvs::StreamMeta m = MetaOf(*name);
  if (*version && **version != std::to_string(m.version))
    return ErrorOf(Status(Code::kInvalidArgument,
                          "The stream version " + **version + " is not the current version " +
                              std::to_string(m.version) + ".",
                          "VersionMismatchException"));
  Status removed = streams_.Remove(*name);
  if (!removed.ok())
    return ErrorOf(removed.reason() == "StreamBusy"
                       ? Status(Code::kConflict, removed.message(), "ResourceInUseException")
                       : removed);
  registry_.Remove(*name);
  if (images_) images_->Remove(*name);
  return JsonOk(json::object());
}

Response KvsApi::UpdateDataRetention(const json& body) {
  auto name = StreamOf(body);
  if (!name.ok()) return ErrorOf(name.status());
  auto version = OptString(body, "CurrentVersion", 64);
  if (!version.ok()) return ErrorOf(version.status());
  if (!*version) return ErrorOf(Invalid("CurrentVersion is required"));
  const json op = body.value("Operation", json());
  if (op != "INCREASE_DATA_RETENTION" && op != "DECREASE_DATA_RETENTION")
    return ErrorOf(Invalid("Operation must be INCREASE_DATA_RETENTION or DECREASE_DATA_RETENTION"));
  auto change = OptInt(body, "DataRetentionChangeInHours", 1, kMaxRetentionHours);
  if (!change.ok()) return ErrorOf(change.status());
  if (!*change) return ErrorOf(Invalid("DataRetentionChangeInHours is required"));
  kvs::StreamMeta m = MetaOf(*name);
  if (**version != std::to_string(m.version))
    return ErrorOf(Status(Code::kInvalidArgument,
                          "The stream version " + **version + " is not the current version " +
                              std::to_string(m.version) + ".",
                          "VersionMismatchException"));
  int64_t current = RetentionHours(m);
  int64_t next = op == "INCREASE_DATA_RETENTION" ? current + **change : current - **change;
  if (next < 0 || next > kMaxRetentionHours)
    return ErrorOf(Invalid("the retention would be " + std::to_string(next) +
                           " hours; it must stay from 0 to " + std::to_string(kMaxRetentionHours)));
  Status s =
      streams_.SetRetention(*name, next > 0 ? next * 3'600'000 : options_.default_retention_ms);
  if (!s.ok()) return ErrorOf(s);
  m.retention_hours = next;
  ++m.version;
  if (Status saved = registry_.Put(m); !saved.ok()) return ErrorOf(saved);
  return JsonOk(json::object());
}

Response KvsApi::GetDataEndpoint(const json& body) {
  const json api = body.value("APIName", json());
  static const char* const kApis[] = {"PUT_MEDIA",
                                      "GET_MEDIA",
                                      "LIST_FRAGMENTS",
                                      "GET_MEDIA_FOR_FRAGMENT_LIST",
                                      "GET_HLS_STREAMING_SESSION_URL",
                                      "GET_DASH_STREAMING_SESSION_URL",
                                      "GET_CLIP",
                                      "GET_IMAGES"};
  if (!api.is_string() ||
      std::none_of(std::begin(kApis), std::end(kApis), [&](const char* a) { return api == a; }))
    return ErrorOf(
        Invalid("APIName must be one of PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, "
                "GET_MEDIA_FOR_FRAGMENT_LIST, GET_HLS_STREAMING_SESSION_URL, "
                "GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES"));
  auto name = StreamOf(body);
  if (!name.ok()) return ErrorOf(name.status());
  // One server answers every API: its own public URL.
  return JsonOk({{"DataEndpoint", options_.public_url}});
}

Response KvsApi::UpdateImageGeneration(const json& body) {
  auto name = StreamOf(body);
  if (!name.ok()) return ErrorOf(name.status());
  if (images_ == nullptr) return ErrorOf(Invalid("this server writes no images"));
  kvs::StreamMeta m = MetaOf(*name);
  const json cfg = body.value("ImageGenerationConfiguration", json());
  if (cfg.is_null()) {  // no configuration: image generation is removed
    images_->Remove(*name);
    m.image_generation = json();
    if (Status s = registry_.Put(m); !s.ok()) return ErrorOf(s);
    return JsonOk(json::object());
  }
  if (!cfg.is_object()) return ErrorOf(Invalid("ImageGenerationConfiguration must be an object"));
  const json status = cfg.value("Status", json());
  if (status != "ENABLED" && status != "DISABLED")
    return ErrorOf(Invalid("Status must be ENABLED or DISABLED"));
  const json selector = cfg.value("ImageSelectorType", json());
  if (selector != "SERVER_TIMESTAMP" && selector != "PRODUCER_TIMESTAMP")
    return ErrorOf(Invalid("ImageSelectorType must be SERVER_TIMESTAMP or PRODUCER_TIMESTAMP"));
  const json dest = cfg.value("DestinationConfig", json());
  if (!dest.is_object() || !dest.contains("Uri") || !dest["Uri"].is_string() ||
      !dest.contains("DestinationRegion") || !dest["DestinationRegion"].is_string())
    return ErrorOf(Invalid("DestinationConfig {Uri, DestinationRegion} is required"));
  const std::string uri = dest["Uri"].get<std::string>();
  const std::string want = "s3://" + options_.images_bucket;
  if (uri.size() > 255 || !(uri == want || uri.starts_with(want + "/")))
    return ErrorOf(Invalid("DestinationConfig.Uri must name this server's object store: " + want +
                           "[/PREFIX]"));
  std::string prefix = uri.size() > want.size() + 1 ? uri.substr(want.size() + 1) : "";
  if (!prefix.empty())
    if (Status s = objects::ValidateObjectKey(prefix); !s.ok())
      return ErrorOf(Invalid("DestinationConfig.Uri: " + s.message()));
  auto interval = OptInt(cfg, "SamplingInterval", kMinSamplingMs, kMaxSamplingMs);
  if (!interval.ok()) return ErrorOf(interval.status());
  if (!*interval) return ErrorOf(Invalid("SamplingInterval is required"));
  const json format = cfg.value("Format", json());
  if (format != "JPEG" && format != "PNG") return ErrorOf(Invalid("Format must be JPEG or PNG"));
  snapshot::ImageSchedule schedule;
  schedule.sampling_interval_ms = **interval;
  schedule.producer_timestamps = selector == "PRODUCER_TIMESTAMP";
  schedule.encode.format = format == "PNG" ? media::ImageFormat::kPng : media::ImageFormat::kJpeg;
  schedule.key_prefix = prefix;
  if (cfg.contains("FormatConfig")) {
    const json& fc = cfg["FormatConfig"];
    if (!fc.is_object() || fc.size() != 1 || !fc.contains("JPEGQuality") ||
        !fc["JPEGQuality"].is_string())
      return ErrorOf(Invalid("FormatConfig may hold only JPEGQuality, a string from 1 to 100"));
    auto q = JpegQuality(fc["JPEGQuality"].get<std::string>());
    if (!q) return ErrorOf(Invalid("JPEGQuality must be from 1 to 100"));
    schedule.encode.quality = *q;
  }
  auto width = OptInt(cfg, "WidthPixels", 1, 3840);
  if (!width.ok()) return ErrorOf(width.status());
  auto height = OptInt(cfg, "HeightPixels", 1, 2160);
  if (!height.ok()) return ErrorOf(height.status());
  schedule.encode.width = static_cast<int>(width->value_or(0));
  schedule.encode.height = static_cast<int>(height->value_or(0));
  if (status == "ENABLED" && m.retention_hours && *m.retention_hours == 0)
    return ErrorOf(Status(Code::kInvalidArgument,
                          "image generation needs a stream with data retention (it has 0 hours)",
                          "NoDataRetentionException"));
  if (status == "ENABLED")
    images_->Set(*name, schedule);
  else
    images_->Remove(*name);
  m.image_generation = cfg;
  if (Status s = registry_.Put(m); !s.ok()) return ErrorOf(s);
  return JsonOk(json::object());
}

void KvsApi::RestoreImageGeneration() {
  if (images_ == nullptr) return;
  for (const kvs::StreamMeta& m : registry_.All()) {
    if (m.image_generation.is_null() || m.image_generation.value("Status", "") != "ENABLED")
      continue;
    json body = {{"StreamName", m.name}, {"ImageGenerationConfiguration", m.image_generation}};
    if (!streams_.Find(m.name)) continue;
    Response r = UpdateImageGeneration(body);
    if (r.result_int() != 200)
      spdlog::warn("image generation of {} not restored: {}", m.name, r.body());
  }
}

Response KvsApi::DescribeImageGeneration(const json& body) {
  auto name = StreamOf(body);
  if (!name.ok()) return ErrorOf(name.status());
  auto m = registry_.Find(*name);
  if (!m || m->image_generation.is_null()) return JsonOk(json::object());
  return JsonOk({{"ImageGenerationConfiguration", m->image_generation}});
}

Response KvsApi::ListFragments(const json& body) {
  auto name = StreamOf(body);
  if (!name.ok()) return ErrorOf(name.status());
  auto max = OptInt(body, "MaxResults", 1, 1000);
  if (!max.ok()) return ErrorOf(max.status());
  std::optional<Range> range;
  if (body.contains("FragmentSelector") && !body["FragmentSelector"].is_null()) {
    auto r = ParseSelector(body, "FragmentSelector");
    if (!r.ok()) return ErrorOf(r.status());
    range = *r;
  }
  uint64_t from = 0;
  auto token = OptString(body, "NextToken", 4096);
  if (!token.ok()) return ErrorOf(token.status());
  if (*token) {
    auto decoded = objects::Base64Decode(**token);
    auto number = decoded ? ParseU64(*decoded) : std::nullopt;
    if (!number) return ErrorOf(Invalid("NextToken is not one this server gave"));
    from = *number;
  }
  auto stream = streams_.Find(*name);
  if (!stream) return ErrorOf(NoStream(*name));
  std::vector<store::FragmentView> matching;
  for (auto& f : stream->FragmentsFrom(from)) {
    if (!f.complete) continue;  // listed once whole, as Kinesis Video lists them
    if (range) {
      int64_t t = StartOf(f, range->server);
      if (t < range->start_ms || t > range->end_ms) continue;
    }
    matching.push_back(std::move(f));
  }
  size_t limit = static_cast<size_t>(max->value_or(1000));
  json list = json::array();
  for (size_t i = 0; i < matching.size() && i < limit; ++i) {
    const auto& f = matching[i];
    list.push_back({{"FragmentNumber", std::to_string(f.number)},
                    {"FragmentSizeInBytes", f.bytes},
                    {"ProducerTimestamp", Seconds(f.producer_ts_ms)},
                    {"ServerTimestamp", Seconds(f.server_ts_ms)},
                    {"FragmentLengthInMilliseconds", f.duration_ms}});
  }
  json out = {{"Fragments", list}};
  if (matching.size() > limit)
    out["NextToken"] = objects::Base64Encode(std::to_string(matching[limit].number));
  return JsonOk(out);
}

void KvsApi::GetMediaForFragmentList(const json& body, Respond respond) {
  auto name = StreamOf(body);
  if (!name.ok()) return respond(ErrorOf(name.status()));
  if (!body.contains("Fragments") || !body["Fragments"].is_array() || body["Fragments"].empty() ||
      body["Fragments"].size() > 1000)
    return respond(ErrorOf(Invalid("Fragments must list 1 to 1000 fragment numbers")));
  std::vector<uint64_t> numbers;
  for (const json& n : body["Fragments"]) {
    auto number = n.is_string() ? ParseU64(n.get<std::string>()) : std::nullopt;
    if (!number)
      return respond(ErrorOf(Invalid("each fragment number must be a string of digits")));
    numbers.push_back(*number);
  }
  auto stream = streams_.Find(*name);
  if (!stream) return respond(ErrorOf(NoStream(*name)));
  std::map<uint64_t, store::FragmentView> by_number;
  for (auto& f : stream->Fragments()) by_number.emplace(f.number, std::move(f));
  std::vector<store::FragmentView> chosen;
  size_t bytes = 0;
  for (uint64_t n : numbers) {
    auto it = by_number.find(n);
    if (it == by_number.end())
      return respond(ErrorOf(Status(Code::kNotFound,
                                    "Fragment " + std::to_string(n) + " of stream " + *name +
                                        " is not found (past the retention, or never there).",
                                    "ResourceNotFoundException")));
    bytes += it->second.bytes;
    chosen.push_back(it->second);
  }
  if (bytes > kMaxFragmentListBytes)
    return respond(ErrorOf(Invalid("the fragments hold " + std::to_string(bytes) +
                                   " bytes; one call may return at most 100 MB")));
  auto shared = std::make_shared<Respond>(std::move(respond));
  bool queued = workers_.TryPost([shared, chosen = std::move(chosen)] {
    std::string out;
    for (const auto& f : chosen) {
      auto chunk = kvs::MkvChunk(f);
      if (!chunk.ok()) return (*shared)(ErrorOf(chunk.status()));
      out += *chunk;
    }
    Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "video/webm");
    res.set("x-amzn-RequestId", RequestId());
    res.body() = std::move(out);
    (*shared)(std::move(res));
  });
  if (!queued) (*shared)(ErrorOf(Status(Code::kOverloaded, "the workers are busy; retry")));
}

void KvsApi::GetClip(const json& body, Respond respond) {
  auto name = StreamOf(body);
  if (!name.ok()) return respond(ErrorOf(name.status()));
  auto range = ParseSelector(body, "ClipFragmentSelector");
  if (!range.ok()) return respond(ErrorOf(range.status()));
  if (range->end_ms <= range->start_ms)
    return respond(ErrorOf(Invalid("The StartTimestamp must be before the EndTimestamp.")));
  auto stream = streams_.Find(*name);
  if (!stream) return respond(ErrorOf(NoStream(*name)));
  std::vector<store::FragmentView> chosen;
  size_t bytes = 0;
  std::string truncated;
  for (auto& f : stream->Fragments()) {
    int64_t t = StartOf(f, range->server);
    if (t + f.duration_ms <= range->start_ms || t > range->end_ms) continue;
    // Kinesis Video's GetClip: the first 200 fragments or 100 MB of the range.
    if (chosen.size() == kMaxClipFragments) {
      truncated = "the first 200 fragments";
      break;
    }
    if (bytes + f.bytes > kMaxClipBytes) {
      truncated = "the first 100 MB";
      break;
    }
    bytes += f.bytes;
    chosen.push_back(std::move(f));
  }
  if (chosen.empty())
    return respond(
        ErrorOf(Status(Code::kNotFound, "No fragments found in the specified time range.",
                       "ResourceNotFoundException")));
  auto shared = std::make_shared<Respond>(std::move(respond));
  bool queued = workers_.TryPost([shared, chosen = std::move(chosen), truncated] {
    auto clip = store::MuxClip(chosen, store::ClipFormat::kMp4, kMaxClipBytes + (8 << 20));
    if (!clip.ok()) return (*shared)(ErrorOf(clip.status()));
    Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "video/mp4");
    res.set("x-amzn-RequestId", RequestId());
    // Kinesis Video truncates silently; this says where, for those who look.
    if (!truncated.empty()) res.set("x-lastframe-clip-truncated", truncated);
    res.body() = std::move(*clip);
    (*shared)(std::move(res));
  });
  if (!queued) (*shared)(ErrorOf(Status(Code::kOverloaded, "the workers are busy; retry")));
}

void KvsApi::GetImages(const json& body, Respond respond) {
  auto name = StreamOf(body);
  if (!name.ok()) return respond(ErrorOf(name.status()));
  const json selector = body.value("ImageSelectorType", json());
  if (selector != "PRODUCER_TIMESTAMP" && selector != "SERVER_TIMESTAMP")
    return respond(
        ErrorOf(Invalid("ImageSelectorType must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP")));
  const bool server = selector == "SERVER_TIMESTAMP";
  auto start = TimestampMs(body, "StartTimestamp");
  if (!start.ok()) return respond(ErrorOf(start.status()));
  auto end = TimestampMs(body, "EndTimestamp");
  if (!end.ok()) return respond(ErrorOf(end.status()));
  if (*end < *start)
    return respond(ErrorOf(Invalid("The EndTimestamp must not be before the StartTimestamp.")));
  auto interval = OptInt(body, "SamplingInterval", kMinSamplingMs, kMaxSamplingMs);
  if (!interval.ok()) return respond(ErrorOf(interval.status()));
  if (!*interval)
    return respond(ErrorOf(Invalid("SamplingInterval is required (3000 to 20000 ms)")));
  const json format = body.value("Format", json());
  if (format != "JPEG" && format != "PNG")
    return respond(ErrorOf(Invalid("Format must be JPEG or PNG")));
  media::EncodeOptions encode;
  encode.format = format == "PNG" ? media::ImageFormat::kPng : media::ImageFormat::kJpeg;
  if (body.contains("FormatConfig")) {
    const json& fc = body["FormatConfig"];
    if (!fc.is_object() || fc.size() != 1 || !fc.contains("JPEGQuality") ||
        !fc["JPEGQuality"].is_string())
      return respond(
          ErrorOf(Invalid("FormatConfig may hold only JPEGQuality, a string from 1 to 100")));
    auto q = JpegQuality(fc["JPEGQuality"].get<std::string>());
    if (!q) return respond(ErrorOf(Invalid("JPEGQuality must be from 1 to 100")));
    encode.quality = *q;
  }
  auto width = OptInt(body, "WidthPixels", 1, 3840);
  if (!width.ok()) return respond(ErrorOf(width.status()));
  auto height = OptInt(body, "HeightPixels", 1, 2160);
  if (!height.ok()) return respond(ErrorOf(height.status()));
  auto max = OptInt(body, "MaxResults", 1, 100);
  if (!max.ok()) return respond(ErrorOf(max.status()));
  int64_t first = *start;
  auto token = OptString(body, "NextToken", 4096);
  if (!token.ok()) return respond(ErrorOf(token.status()));
  if (*token) {
    auto decoded = objects::Base64Decode(**token);
    auto token_ms = decoded ? ParseU64(*decoded) : std::nullopt;
    if (!token_ms || *token_ms > static_cast<uint64_t>(*end))
      return respond(ErrorOf(Invalid("NextToken is not one this server gave")));
    first = static_cast<int64_t>(*token_ms);
    if (first < *start || first > *end || (first - *start) % **interval != 0)
      return respond(ErrorOf(Invalid("NextToken does not belong to this time range")));
  }
  auto stream = streams_.Find(*name);
  if (!stream) return respond(ErrorOf(NoStream(*name)));
  std::vector<int64_t> times;
  const size_t limit = static_cast<size_t>(max->value_or(100));
  for (int64_t t = first; t <= *end && times.size() < limit; t += **interval) times.push_back(t);
  std::optional<int64_t> next;
  if (!times.empty() && times.back() + **interval <= *end) next = times.back() + **interval;
  encode.width = static_cast<int>(width->value_or(0));
  encode.height = static_cast<int>(height->value_or(0));
  auto shared = std::make_shared<Respond>(std::move(respond));
  bool queued = workers_.TryPost([shared, fragments = stream->Fragments(), times, next, server,
                                  encode, max_pixels = options_.max_render_pixels] {
    json images = json::array();
    for (int64_t t : times) {
      json image = {{"TimeStamp", Seconds(t)}};
      // The fragment showing time t: it began at or before t and lasts past it.
      const store::FragmentView* f = nullptr;
      for (const auto& c : fragments)
        if (StartOf(c, server) <= t && t <= StartOf(c, server) + c.duration_ms) f = &c;
      if (f == nullptr || f->frames.empty() || !f->codec) {
        image["Error"] = "NO_MEDIA";
        images.push_back(image);
        continue;
      }
      // Decode up to the last frame shown at or before t.
      store::FragmentView upto = *f;
      const int64_t offset = t - StartOf(*f, server), first_pts = f->frames.front().pts_ms;
      size_t n = 1;
      for (size_t i = 0; i < f->frames.size(); ++i)
        if (f->frames[i].pts_ms - first_pts <= offset) n = i + 1;
      upto.frames.resize(n);
      auto frame = snapshot::DecodeNewestFrame(upto, 1);
      Result<media::EncodedImage> encoded = Status(Code::kMediaError, "undecodable");
      if (frame.ok()) {
        media::EncodeOptions fitted = encode;
        media::FitSize((*frame)->width, (*frame)->height, encode.width, encode.height,
                       &fitted.width, &fitted.height);
        media::ShrinkToPixels(max_pixels, &fitted.width, &fitted.height);
        encoded = media::EncodeImage(**frame, fitted);
      }
      if (!encoded.ok()) {
        image["Error"] = "MEDIA_ERROR";
      } else {
        image["ImageContent"] = objects::Base64Encode(encoded->bytes);
      }
      images.push_back(image);
    }
    json out = {{"Images", images}};
    if (next) out["NextToken"] = objects::Base64Encode(std::to_string(*next));
    (*shared)(JsonOk(out));
  });
  if (!queued) (*shared)(ErrorOf(Status(Code::kOverloaded, "the workers are busy; retry")));
}

void KvsApi::GetMedia(const json& body, Request& request, Respond respond) {
  auto name = StreamOf(body);
  if (!name.ok()) return respond(ErrorOf(name.status()));
  const json sel = body.value("StartSelector", json());
  if (!sel.is_object()) return respond(ErrorOf(Invalid("StartSelector is required")));
  const json type = sel.value("StartSelectorType", json());
  auto stream = streams_.Find(*name);
  if (!stream) return respond(ErrorOf(NoStream(*name)));
  std::vector<store::FragmentView> fragments = stream->Fragments();
  uint64_t first = 0;
  if (type == "NOW") {
    // The newest fragment, from its keyframe, then live.
    first = fragments.empty() ? 0 : fragments.back().number;
  } else if (type == "EARLIEST") {
    first = 0;
  } else if (type == "FRAGMENT_NUMBER" || type == "CONTINUATION_TOKEN") {
    const char* key = type == "FRAGMENT_NUMBER" ? "AfterFragmentNumber" : "ContinuationToken";
    const json v = sel.value(key, json());
    auto parsed = v.is_string() ? ParseU64(v.get<std::string>()) : std::nullopt;
    if (!parsed || *parsed == UINT64_MAX)
      return respond(ErrorOf(Invalid(std::string(key) + " (a fragment number) is required")));
    uint64_t n = *parsed;
    // A continuation token names the last chunk sent: go on after it.
    first = type == "CONTINUATION_TOKEN" ? n + 1 : n;
    if (type == "FRAGMENT_NUMBER" &&
        std::none_of(fragments.begin(), fragments.end(),
                     [n](const store::FragmentView& f) { return f.number == n; }))
      return respond(
          ErrorOf(Status(Code::kNotFound, "Fragment " + std::to_string(n) + " is not found.",
                         "ResourceNotFoundException")));
  } else if (type == "SERVER_TIMESTAMP" || type == "PRODUCER_TIMESTAMP") {
    auto t = TimestampMs(sel, "StartTimestamp");
    if (!t.ok()) return respond(ErrorOf(t.status()));
    bool server = type == "SERVER_TIMESTAMP";
    first = fragments.empty() ? 0 : fragments.back().number + 1;
    for (const auto& f : fragments)
      if (StartOf(f, server) + f.duration_ms >= *t) {
        first = f.number;
        break;
      }
  } else {
    return respond(ErrorOf(Invalid(
        "StartSelectorType must be FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, "
        "EARLIEST or CONTINUATION_TOKEN")));
  }
  Follower* follower = nullptr;
  {
    std::lock_guard lock(mu_);
    ReapFollowers();
    if (shut_down_) return respond(KvsError(503, "ServiceUnavailableException", "stopping"));
    size_t same = std::count_if(followers_.begin(), followers_.end(),
                                [&](const auto& f) { return f->stream == *name; });
    if (same >= options_.max_get_media_per_stream)
      return respond(ErrorOf(Status(Code::kOverloaded,
                                    "stream " + *name + " already has " + std::to_string(same) +
                                        " GetMedia connections, the most it may have",
                                    "ConnectionLimitExceededException")));
    followers_.push_back(std::make_unique<Follower>());
    follower = followers_.back().get();
    follower->stream = *name;
  }
  Response head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "video/webm");
  head.set("x-amzn-RequestId", RequestId());
  request.respond_streaming(std::move(head), [this, follower, stream,
                                              first](std::shared_ptr<BodyWriter> writer) {
    std::lock_guard lock(mu_);
    follower->writer = writer;
    if (shut_down_) {
      writer->End();
      follower->done = true;
      return;
    }
    follower->thread =
        std::thread([this, follower, stream, first] { Follow(follower, stream, first, false); });
  });
  (void)respond;  // answered through respond_streaming
}

void KvsApi::ReapFollowers() {
  for (auto it = followers_.begin(); it != followers_.end();) {
    if ((*it)->done && (*it)->thread.joinable()) {
      (*it)->thread.join();
      it = followers_.erase(it);
    } else if ((*it)->done && (*it)->writer) {
      it = followers_.erase(it);
    } else {
      ++it;
    }
  }
}

void KvsApi::Follow(Follower* follower, std::shared_ptr<store::Stream> stream,
                    uint64_t first_number, bool) {
  BodyWriter& out = *follower->writer;
  std::unique_ptr<kvs::MkvChunkWriter> chunk;
  uint64_t chunk_number = 0;
  size_t sent = 0;
  uint64_t next = first_number;
  bool ok = true;
  auto flush = [&] {
    std::string bytes = chunk->Take();
    if (!bytes.empty() && !out.Write(std::move(bytes))) ok = false;
  };
  auto end_chunk = [&](const store::FragmentView* f) {
    kvs::MkvTags trailing;
    if (f != nullptr) {
      int64_t behind = clock_.NowMs() - (f->server_ts_ms + f->duration_ms);
      trailing = {
          {"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", std::to_string(std::max<int64_t>(0, behind))},
          {"AWS_KINESISVIDEO_CONTINUATION_TOKEN", std::to_string(chunk_number)}};
    }
    if (!chunk->End(trailing).ok()) ok = false;
    flush();
    chunk.reset();
    next = chunk_number + 1;
  };
  while (ok && out.open() && !stream->closed() && !stopping_) {
    const uint64_t seen = stream->version();
    std::vector<store::FragmentView> fragments = stream->FragmentsFrom(chunk ? chunk_number : next);
    if (chunk && (fragments.empty() || fragments.front().number != chunk_number))
      end_chunk(nullptr);  // its fragment left the store before it was complete
    for (const auto& f : fragments) {
      if (!ok) break;
      if (f.number < next) continue;
      if (!chunk) {
        auto begun = kvs::MkvChunkWriter::Begin(f, kvs::FragmentTags(f));
        if (!begun.ok()) {
          spdlog::warn("GetMedia {}: fragment {}: {}", stream->name(), f.number,
                       begun.status().ToString());
          next = f.number + 1;
          continue;
        }
        chunk = std::move(*begun);
        chunk_number = f.number;
        sent = 0;
      }
      for (; sent < f.frames.size() && ok; ++sent)
        if (!chunk->Add(f.frames[sent], /*flush=*/!f.complete).ok()) ok = false;
      if (ok) flush();
      if (ok && f.complete) end_chunk(&f);
    }
    if (!ok) break;
    stream->WaitForChange(seen, std::chrono::seconds(1));
  }
  out.End();
  follower->done = true;
}

}  // namespace lastframe::http
