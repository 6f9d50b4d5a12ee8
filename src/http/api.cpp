#include "http/api.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "aws/sigv4.h"
#include "core/metrics.h"
#include "core/stream_name.h"
#include "core/time_format.h"
#include "http/params.h"
#include "ingest/push_session.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

// The paths of Api's own routes, as the router matches them; their first
// segments are ReservedPathSegments(), so a route added here is one the
// embedded store's bucket can never hide.
constexpr std::string_view kHealthzPath = "/healthz";
constexpr std::string_view kMetricsPath = "/metrics";
constexpr std::string_view kPutMediaPath = "/putMedia";
constexpr std::string_view kSnapshotPath = "/snapshot";
constexpr std::string_view kStreamsPath = "/v1/streams";
constexpr std::string_view kEventsPath = "/v1/events";
constexpr std::string_view kUiPath = "/ui";  // the dashboard's assets and sign-in (Dashboard)
constexpr std::array kRoutePaths = {kHealthzPath, kMetricsPath, kPutMediaPath, kSnapshotPath,
                                    kStreamsPath, kEventsPath,  kUiPath};

// Whether a GET of |path| puts an object in the store (the snapshot routes).
bool Publishes(const std::string& path) {
  return path == kSnapshotPath ||
         (path.starts_with(std::string(kStreamsPath) + "/") && path.ends_with("/snapshot"));
}

// NAME when |path| is /v1/streams/NAME/node with a valid NAME, else empty.
std::string NodeRouteStream(const std::string& path) {
  constexpr std::string_view kSuffix = "/node";
  const std::string prefix = std::string(kStreamsPath) + "/";
  if (!path.starts_with(prefix) || !path.ends_with(kSuffix)) return "";
  if (path.size() <= prefix.size() + kSuffix.size()) return "";
  std::string name = path.substr(prefix.size(), path.size() - prefix.size() - kSuffix.size());
  return ValidateStreamName(name).ok() ? name : "";
}

// The stream a PutMedia names: header x-amzn-stream-name, else the NAME of
// x-amzn-stream-arn (Kinesis Video takes either). The ARN's NAME alone counts:
// after a failover the node a router moves the stream to never made its ARN.
Result<std::string> PutMediaStream(const Request& req) {
  auto field = [&](const char* name) -> std::optional<std::string> {
    auto it = req.header.find(name);
    if (it == req.header.end()) return std::nullopt;
    return std::string(it->value());
  };
  if (auto name = field("x-amzn-stream-name")) {
    if (Status s = ValidateStreamName(*name); !s.ok()) return s;
    return *name;
  }
  if (auto arn = field("x-amzn-stream-arn")) return StreamNameOfArn(*arn);
  return InvalidArgument("header x-amzn-stream-name (or x-amzn-stream-arn) is required",
                         Reason::kMissingParameter);
}

Response MethodNotAllowed(const std::string& allow) {
  Response res = JsonError(405, "MethodNotAllowed", "allowed methods: " + allow);
  res.set(bhttp::field::allow, allow);
  return res;
}

bool IsGet(const Request& r) {
  return r.header.method() == bhttp::verb::get || r.header.method() == bhttp::verb::head;
}

// The snapshot routes' bounds for |caller|: admins may ask for S3's longest
// URL lifetime; other keys for --max-url-expiry at most.
SnapshotLimits LimitsFor(const ApiOptions& o, const Caller& caller) {
  return {.default_quality = o.default_quality,
          .max_dimension = o.max_dimension,
          .default_expires_s = o.default_expires_s,
          .max_expires_s = caller.admin() ? aws::kMaxPresignExpiresSeconds
                                          : std::min<int64_t>(o.max_url_expiry_s,
                                                              aws::kMaxPresignExpiresSeconds)};
}

// How old a frame that arrived at |arrival_ms| (server clock) is at |now_ms|.
int64_t FrameAge(int64_t now_ms, int64_t arrival_ms) {
  return std::max<int64_t>(0, now_ms - arrival_ms);
}

// 409 StaleFrame: the frame is older than the caller's max_age.
Response StaleFrame(const snapshot::Image& image, int64_t age_ms, int64_t max_age_ms) {
  return JsonResponse(409, json{{"code", "StaleFrame"},
                                {"message", "the newest frame is " + std::to_string(age_ms) +
                                                " ms old, older than max_age (" +
                                                std::to_string(max_age_ms / 1000) + " s)"},
                                {"frame_timestamp", FormatIso8601Ms(image.frame_timestamp_ms)},
                                {"frame_timestamp_ms", image.frame_timestamp_ms},
                                {"frame_age_ms", age_ms}}
                               .dump());
}

json PublishedJson(const snapshot::PublishedImage& p, int64_t expires_s, int64_t now_ms) {
  return {{"url", p.url},
          {"frame_age_ms", FrameAge(now_ms, p.image.frame_arrival_ms)},
          {"expires_at", FormatIso8601Ms(p.expires_at_ms)},
          {"expires_in", expires_s},
          {"frame_timestamp", FormatIso8601Ms(p.image.frame_timestamp_ms)},
          {"frame_timestamp_ms", p.image.frame_timestamp_ms},
          {"fragment_number", std::to_string(p.image.fragment_number)},
          {"width", p.image.width},
          {"height", p.image.height},
          {"format", snapshot::ImageFormatName(p.image.format)},
          {"bytes", p.bytes},
          {"key", p.key}};
}

// 401 for missing or bad credentials, with the challenge clients expect.
Response Unauthorized(const Status& why) {
  Response res = JsonError(401, "Unauthorized", why.message());
  res.set(bhttp::field::www_authenticate, "Bearer realm=\"lastframe\"");
  return res;
}

Status Forbidden(const Caller& caller, const std::string& what) {
  std::string who = caller.key ? std::string("this ") + auth::RoleName(caller.key->role) +
                                     " key (streams '" + caller.key->streams + "')"
                               : "this caller";
  return Status(Code::kPermissionDenied, who + " may not " + what, Reason::kForbidden);
}

// Adapts a PushSession to the server's streamed-upload interface.
class PushSink final : public UploadSink {
 public:
  // |limit| (may be null): the producer's place, given back when the upload ends.
  PushSink(std::unique_ptr<ingest::PushSession> session, Limit* limit)
      : session_(std::move(session)), limit_(limit) {}
  ~PushSink() override {
    session_.reset();  // the stream released; no callback after this
    if (limit_) limit_->Release();
  }
  bool Feed(const uint8_t* data, size_t size) override { return session_->Feed(data, size); }
  void Finish() override { session_->Finish(); }
  void Abort() override { session_->Abort(); }
  void Stalled() override { session_->Stalled(); }
  std::optional<std::chrono::steady_clock::time_point> LastProgress() const override {
    return session_->last_frame();
  }

 private:
  std::unique_ptr<ingest::PushSession> session_;
  Limit* const limit_;
};

}  // namespace

Api::Api(store::StreamStore& streams, const store::StreamSource& source,
         snapshot::SnapshotEngine& snapshots, objects::LocalStore* local_objects,
         WorkerPool& workers, const Clock& clock, ingest::PullSources* sources, ApiOptions options,
         KvsApi* kvs, auth::KeyRing* keys)
    : streams_(streams),
      source_(source),
      snapshots_(snapshots),
      clock_(clock),
      workers_(workers),
      sources_(sources),
      options_(options),
      kvs_(kvs),
      keys_(keys),
      dashboard_(keys, clock, options_.node) {
  if (local_objects != nullptr) s3_.emplace(*local_objects, workers);
  EventHubOptions events = options_.events;
  events.node = options_.node;
  events_ = std::make_unique<EventHub>([this] { return EventStates(); }, clock_, events);
}

void Api::Shutdown() { events_->Stop(); }

std::vector<StreamEventState> Api::EventStates() const {
  std::vector<StreamEventState> out;
  for (store::StreamInfo& s : streams_.List()) {
    StreamEventState e;
    e.name = std::move(s.name);
    e.state = std::move(s.state);
    e.reason = e.public_reason = std::move(s.last_error);
    e.width = s.width;
    e.height = s.height;
    e.last_frame_ms = s.last_frame_ms;
    e.last_frame_producer_ms = s.last_frame_producer_ms;
    e.fragment_number = s.last_fragment_number;
    // A pulled stream not reading says why, as GET /v1/streams does (StreamJson).
    if (sources_ != nullptr) {
      if (auto src = sources_->Find(e.name)) {
        if (src->state != "live" && e.state != "live") e.state = src->state;
        if (!src->last_error.empty()) {
          e.reason = src->last_error;
          e.public_reason = "the source failed (" +
                            (src->last_error_code.empty() ? std::string("SourceUnavailable")
                                                          : src->last_error_code) +
                            ")";
        }
      }
    }
    if (e.state == "live") e.reason.clear(), e.public_reason.clear();
    out.push_back(std::move(e));
  }
  return out;
}

void Api::Events(Request& req, const Caller& caller, Respond respond) {
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(JsonError(params.status()));
  for (const auto& [key, value] : params->all())
    if (key != "interval" && key != "streams")
      return respond(JsonError(
          InvalidArgument("unknown parameter '" + key + "' (interval and streams are known)")));
  auto interval = params->Int("interval", 1, 3600, 1);
  if (!interval.ok()) return respond(JsonError(interval.status()));
  EventSubscription sub;
  sub.interval_ms = *interval * 1000;
  sub.admin = caller.admin();
  sub.node = NodeName(options_.node, req);
  sub.may_view = [caller](std::string_view stream) { return caller.MayView(stream); };
  if (const std::string* list = params->Get("streams")) {
    sub.only.emplace();
    std::string_view rest = *list;
    while (true) {
      size_t comma = rest.find(',');
      std::string name(rest.substr(0, comma));
      if (Status st = ValidateStreamName(name); !st.ok())
        return respond(JsonError(InvalidArgument(
            "parameter 'streams' must be stream names separated by commas: " + st.message())));
      sub.only->insert(std::move(name));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    constexpr size_t kMaxNamed = 1000;
    if (sub.only->size() > kMaxNamed)
      return respond(JsonError(
          InvalidArgument("parameter 'streams' names at most " + std::to_string(kMaxNamed))));
  }
  // One caller's subscriptions are bounded apart from everyone's: its key's, or with
  // access control off its address's.
  sub.owner = caller.key ? "key:" + caller.key->key_id
                         : "ip:" + req.remote.substr(0, req.remote.rfind(':'));
  if (Status admitted = events_->Reserve(sub.owner); !admitted.ok()) {
    Response res = JsonError(admitted);
    res.set(bhttp::field::retry_after, "5");
    return respond(std::move(res));
  }
  // The credentials are checked again as events flow: a key revoked or expired, or a
  // dashboard session signed out, ends the subscription.
  if (keys_ != nullptr) {
    auto credentials = std::make_shared<Request>();
    credentials->header = req.header;
    credentials->path = req.path;
    sub.still_allowed = [this, credentials] { return Identify(*credentials).ok(); };
  }
  Response head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
  head.set(bhttp::field::cache_control, "no-store");
  head.set("X-Accel-Buffering", "no");  // a proxy in front must not hold events back
  req.respond_streaming(std::move(head), [hub = events_.get(), sub = std::move(sub)](
                                             std::shared_ptr<BodyWriter> writer) mutable {
    hub->Attach(std::move(writer), std::move(sub));
  });
}

json Api::StreamJson(const store::StreamInfo& s, bool admin) const {
  auto time = [](const std::optional<int64_t>& ms) -> json {
    return ms ? json(FormatIso8601Ms(*ms)) : json(nullptr);
  };
  json j = {{"name", s.name},
            {"state", s.state},
            {"producer_connected", s.producer_connected},
            {"codec", s.codec.empty() ? json(nullptr) : json(s.codec)},
            {"width", s.width},
            {"height", s.height},
            {"fps", std::round(s.fps * 100) / 100},
            {"bitrate_bps", s.bitrate_bps},
            {"last_fragment_time", time(s.last_fragment_ms)},
            {"last_frame_time", time(s.last_frame_ms)},
            {"fragment_count", s.fragment_count},
            {"bytes", s.bytes},
            {"retention_s", s.retention_ms / 1000},
            {"node", options_.node}};
  if (!s.last_error.empty()) j["last_error"] = s.last_error;
  if (sources_ != nullptr) {
    if (auto src = sources_->Find(s.name)) {
      // What a camera or its network answered is for admins: to others it could map the
      // inside of the network. Everyone sees the error's code.
      json error = src->last_error.empty() ? json(nullptr)
                   : admin                 ? json(src->last_error)
                                           : json("the source failed (" +
                                                  (src->last_error_code.empty() ? std::string("SourceUnavailable")
                                                                                : src->last_error_code) +
                                                  "); an admin key shows why");
      j["source"] = {{"url", src->url},
                     {"state", src->state},
                     {"reconnects", src->reconnects},
                     {"last_error", error},
                     {"last_error_code",
                      src->last_error_code.empty() ? json(nullptr) : json(src->last_error_code)},
                     {"connected_since", time(src->connected_since_ms)}};
      if (!src->rtsp_transport.empty()) j["source"]["rtsp_transport"] = src->rtsp_transport;
      // A pulled stream not reading now says why: still connecting, or failed and waiting.
      if (src->state != "live" && s.state != "live") j["state"] = src->state;
      if (!src->last_error.empty()) j["last_error"] = error;
    }
  }
  return j;
}

RouteInfo ApiRouteOf(const Request& r) {
  // Only a valid name is logged: anything else a client sends stays out of the log.
  auto named = [](std::string_view name) {
    return ValidateStreamName(name).ok() ? std::string(name) : std::string();
  };
  const std::string& path = r.path;
  if (path == kHealthzPath) return {RouteGroup::kHealthz};
  if (path == kMetricsPath) return {RouteGroup::kMetrics};
  if (path == kPutMediaPath) {
    auto name = PutMediaStream(r);
    return {RouteGroup::kPutMedia, name.ok() ? *name : ""};
  }
  if (path == kSnapshotPath) {
    auto params = Params::Parse(r.raw_query);
    const std::string* name = params.ok() ? params->Get("stream_name") : nullptr;
    return {RouteGroup::kSnapshot, name ? named(*name) : ""};
  }
  const std::string prefix = std::string(kStreamsPath) + "/";
  if (path.rfind(prefix, 0) == 0) {
    std::string rest = path.substr(prefix.size());
    size_t slash = rest.find('/');
    std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    bool renders =
        action == "snapshot" || action.rfind("latest.", 0) == 0 || action.rfind("preview.", 0) == 0;
    return {renders ? RouteGroup::kSnapshot : RouteGroup::kApi, named(rest.substr(0, slash))};
  }
  if (path == kStreamsPath || path.rfind("/v1/", 0) == 0) return {RouteGroup::kApi};
  return {RouteGroup::kOther};
}

RouteInfo Api::RouteOf(const Request& r) const {
  // As Handle dispatches: an upload first, then Kinesis Video's and S3's routes, then ours.
  if (s3_ && s3_->IsUpload(r)) return {RouteGroup::kObjects};
  if (IsUpload(r)) return ApiRouteOf(r);
  if (kvs_ && kvs_->Owns(r)) return {RouteGroup::kKvs};
  if (s3_ && s3_->Owns(r)) return {RouteGroup::kObjects};
  return ApiRouteOf(r);
}

std::optional<Response> Api::Admit(const Request& r) {
  if (kvs_ && kvs_->Owns(r)) return std::nullopt;
  if (s3_ && s3_->Owns(r)) return s3_->Admit(r);
  return std::nullopt;
}

std::optional<uint64_t> Api::BodyLimit(const Request& r) const {
  if (kvs_ && kvs_->Owns(r)) return std::nullopt;
  if (s3_ && s3_->Owns(r)) return s3_->BodyLimit(r);
  return std::nullopt;
}

Response Api::TooLarge(const Request& r, uint64_t limit) const {
  if (kvs_ && kvs_->Owns(r))
    return KvsError(413, "InvalidArgumentException",
                    "request body larger than " + std::to_string(limit) + " bytes");
  if (s3_ && s3_->Owns(r)) return s3_->TooLarge(r, limit);
  return Application::TooLarge(r, limit);
}

bool Api::IsUpload(const Request& r) const {
  // PutMedia, and the embedded store's object bodies (PutObject, UploadPart).
  return (r.path == kPutMediaPath && r.header.method() == bhttp::verb::post) ||
         (s3_ && s3_->IsUpload(r));
}

Result<Caller> Api::Identify(const Request& req) const {
  if (keys_ == nullptr) return Caller{};
  auto field = req.header.find(bhttp::field::authorization);
  std::string_view value;
  if (field != req.header.end())
    value = std::string_view(field->value().data(), field->value().size());
  // The dashboard's cookie: GET/HEAD only, and never on the snapshot routes, whose GETs
  // store an object (a cookie never authorises a change).
  else if (auto session = Publishes(req.path) ? std::nullopt : dashboard_.SessionOf(req)) {
    if (!session->ok()) return session->status();
    return Caller{**session};
  }
  auto who = keys_->Authenticate(value);
  if (!who.ok()) return who.status();
  return Caller{*who};
}

void Api::Handle(Request req, Respond respond) {
  // Kinesis Video's and S3's APIs check SigV4 with the server's key pair themselves.
  if (kvs_ && kvs_->Owns(req)) return kvs_->Handle(std::move(req), std::move(respond));
  if (s3_ && s3_->Owns(req)) return s3_->Handle(std::move(req), std::move(respond));
  // The dashboard (GET / without S3's credentials, /ui/...): open; it says who may call what.
  if (Dashboard::Owns(req)) return respond(dashboard_.Handle(req));
  const std::string& path = req.path;
  if (path == kHealthzPath) {  // open to all: load balancers and probes
    if (!IsGet(req)) return respond(MethodNotAllowed("GET, HEAD"));
    return respond(JsonResponse(200, json{{"status", "ok"}, {"node", options_.node}}.dump()));
  }
  // Which node a stream's requests reach (pull routing's probe, through the
  // router): open to all, as /healthz is. It names only this node, as every
  // answer's X-Lastframe-Node does, and not whether the stream exists.
  if (std::string node_of = NodeRouteStream(path); !node_of.empty()) {
    if (!IsGet(req)) return respond(MethodNotAllowed("GET, HEAD"));
    return respond(JsonResponse(200, json{{"stream", node_of}, {"node", options_.node}}.dump()));
  }
  if (path == kMetricsPath && options_.public_metrics) {
    if (!IsGet(req)) return respond(MethodNotAllowed("GET"));
    return respond(Metrics());
  }
  // PutMedia is a POST with credentials of its own (StartUpload); anything else is a 405.
  if (path == kPutMediaPath) return respond(MethodNotAllowed("POST"));
  // Every other route: a key first, then what the key may do.
  auto caller = Identify(req);
  if (!caller.ok()) {
    if (path != kSnapshotPath) return respond(Unauthorized(caller.status()));
    Response res = Unauthorized(caller.status());
    res.body() = json{{"statusCode", 401},
                      {"body", caller.status().message()},
                      {"code", "Unauthorized"},
                      {"message", caller.status().message()}}
                     .dump();
    res.prepare_payload();
    return respond(std::move(res));
  }
  if (path == kMetricsPath) {  // admins (or --public-metrics, above)
    if (!IsGet(req)) return respond(MethodNotAllowed("GET"));
    if (!caller->admin()) return respond(JsonError(Forbidden(*caller, "read /metrics")));
    return respond(Metrics());
  }
  if (path == kSnapshotPath) {  // viewers of the stream
    if (!IsGet(req)) return respond(MethodNotAllowed("GET"));
    return RecipeSnapshot(req, *caller, std::move(respond));
  }
  if (path == kEventsPath) {  // any key: the streams it may see
    if (req.header.method() != bhttp::verb::get) return respond(MethodNotAllowed("GET"));
    return Events(req, *caller, std::move(respond));
  }
  if (path == kStreamsPath || path == std::string(kStreamsPath) + "/") {
    if (req.header.method() == bhttp::verb::post) {  // admins
      if (!caller->admin()) return respond(JsonError(Forbidden(*caller, "create streams")));
      return AddSource(req, std::move(respond));
    }
    if (!IsGet(req)) return respond(MethodNotAllowed("GET, POST"));
    return ListStreams(req, *caller, std::move(respond));  // any key: the streams it may see
  }
  const std::string prefix = std::string(kStreamsPath) + "/";
  if (path.rfind(prefix, 0) == 0) {
    std::string rest = path.substr(prefix.size());
    size_t slash = rest.find('/');
    std::string name = rest.substr(0, slash);
    std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (Status s = ValidateStreamName(name); !s.ok()) return respond(JsonError(s));
    static const std::array<std::pair<std::string_view, snapshot::ImageFormat>, 4> kLatest = {
        {{"latest.jpg", snapshot::ImageFormat::kJpeg},
         {"latest.png", snapshot::ImageFormat::kPng},
         {"latest.webp", snapshot::ImageFormat::kWebp},
         {"latest.avif", snapshot::ImageFormat::kAvif}}};
    std::optional<snapshot::ImageFormat> latest, preview;
    for (const auto& [route, format] : kLatest)
      if (action == route) latest = format;
    if (action == "preview.webp") preview = snapshot::ImageFormat::kWebp;
    if (action == "preview.gif") preview = snapshot::ImageFormat::kGif;
    if (action != "" && action != "snapshot" && !latest && !preview && action != "fragments" &&
        action != "clip")
      return respond(JsonError(404, "NotFound", "no route for " + path));
    if (action.empty() && req.header.method() == bhttp::verb::delete_) {  // admins
      if (!caller->admin())
        return respond(JsonError(Forbidden(*caller, "delete stream '" + name + "'")));
      return DeleteStream(name, std::move(respond));
    }
    if (!IsGet(req)) return respond(MethodNotAllowed(action.empty() ? "GET, DELETE" : "GET"));
    // Everything else here reads the stream: viewers (and producers) of it.
    if (!caller->MayView(name))
      return respond(JsonError(Forbidden(*caller, "read stream '" + name + "'")));
    if (action == "snapshot") return Snapshot(req, *caller, name, std::move(respond));
    if (action == "fragments") return ListFragments(req, name, std::move(respond));
    if (action == "clip") return Clip(req, name, std::move(respond));
    if (latest) return LatestImage(req, *caller, name, *latest, std::move(respond));
    if (preview) return Preview(req, name, *preview, std::move(respond));
    auto stream = streams_.Find(name);
    if (!stream)
      return respond(
          JsonError(NotFound("no stream named '" + name + "'", Reason::kStreamNotFound)));
    return respond(JsonResponse(
        200,
        StreamJson(stream->Info(clock_.NowMs(), streams_.options().live_window_ms), caller->admin())
            .dump()));
  }
  respond(JsonError(404, "NotFound", "no route for " + path));
}

std::vector<std::string> Api::ReservedPathSegments() {
  std::vector<std::string> segments;
  for (std::string_view path : kRoutePaths) {
    std::string_view rest = path.substr(1);
    std::string segment(rest.substr(0, rest.find('/')));
    if (std::find(segments.begin(), segments.end(), segment) == segments.end())
      segments.push_back(std::move(segment));
  }
  return segments;
}

Response Api::Metrics() const {
  snapshot::SnapshotStats s = snapshots_.stats();
  size_t live = 0, producers = 0;
  auto streams = streams_.List();
  for (const auto& st : streams) {
    live += st.state == "live";
    producers += st.producer_connected;
  }
  metrics::TextWriter w;
  auto metric = [&w](const char* name, metrics::Type type, const char* help, double value) {
    w.Header(name, type, help);
    w.Sample(name, {}, {}, value);
  };
  metric("lastframe_streams", metrics::Type::kGauge, "Streams known.",
         static_cast<double>(streams.size()));
  metric("lastframe_streams_live", metrics::Type::kGauge,
         "Streams with a frame in the live window.", static_cast<double>(live));
  metric("lastframe_producers_connected", metrics::Type::kGauge, "Producers pushing now.",
         static_cast<double>(producers));
  metric("lastframe_snapshot_renders_total", metrics::Type::kCounter, "Decodes and encodes done.",
         static_cast<double>(s.renders));
  metric("lastframe_snapshot_cache_hits_total", metrics::Type::kCounter,
         "Snapshots answered from the image cache.", static_cast<double>(s.cache_hits));
  metric("lastframe_snapshot_coalesced_total", metrics::Type::kCounter,
         "Snapshots that joined a render in progress.", static_cast<double>(s.coalesced));
  metric("lastframe_warm_decoder_hits_total", metrics::Type::kCounter,
         "Renders that decoded only the frames new since the last look.",
         static_cast<double>(s.warm.warm_hits));
  metric("lastframe_warm_decoder_resets_total", metrics::Type::kCounter,
         "Renders that decoded from a fragment's keyframe.", static_cast<double>(s.warm.resets));
  metric("lastframe_warm_decoder_fallbacks_total", metrics::Type::kCounter,
         "Renders of reordering (B-frame) streams, decoded cold.",
         static_cast<double>(s.warm.fallbacks));
  metric("lastframe_warm_decoder_catch_ups_total", metrics::Type::kCounter,
         "Warm decoders brought forward off a look's path, after a look found one behind.",
         static_cast<double>(s.warm.catch_ups));
  metric("lastframe_warm_decoder_cold_starts_total", metrics::Type::kCounter,
         "Long runs answered by a multi-threaded cold decode.",
         static_cast<double>(s.warm.cold_starts));
  metric("lastframe_warm_decoders", metrics::Type::kGauge, "Decoders kept alive.",
         static_cast<double>(s.warm.decoders));
  std::string body = w.Take();
  if (options_.limits) body += options_.limits->Prometheus();
  if (options_.extra_metrics) body += options_.extra_metrics();
  body += metrics::Registry::Global().Prometheus();
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
  res.body() = std::move(body);
  return res;
}

void Api::ListStreams(const Request& req, const Caller& caller, Respond respond) {
  json list = json::array();
  for (const auto& s : streams_.List())
    if (caller.MayView(s.name)) list.push_back(StreamJson(s, caller.admin()));
  // A peer's fanned-out request (or anyone's who marks it so: the mark only
  // narrows the answer, the caller was identified above) gets this node's own.
  if (options_.cluster == nullptr ||
      req.header.find(boost::beast::string_view(kFanoutHeader.data(), kFanoutHeader.size())) !=
          req.header.end())
    return respond(JsonResponse(200, json{{"node", options_.node}, {"streams", list}}.dump()));
  // The same key works on every node (they share one keys file): it is
  // forwarded, and each peer lists what it lets the caller see.
  auto field = req.header.find(bhttp::field::authorization);
  std::string authorization =
      field == req.header.end() ? "" : std::string(field->value().data(), field->value().size());
  options_.cluster->AskPeers(
      std::move(authorization),
      [node = options_.node, url = options_.cluster->self_url(), own = std::move(list), caller,
       respond = std::move(respond)](std::vector<PeerAnswer> answers) {
        auto may_view = [&caller](std::string_view stream) { return caller.MayView(stream); };
        respond(JsonResponse(200, MergeListings(node, url, own, answers, may_view).dump()));
      });
}

void Api::AddSource(const Request& req, Respond respond) {
  json body = ParseJsonBody(req.body);
  if (body.is_discarded() || !body.is_object())
    return respond(JsonError(InvalidArgument(
        R"(the body must be a JSON object: {"name": "...", "url": "rtsp://...", "retention_s": 3600})")));
  for (const auto& [key, value] : body.items())
    if (key != "name" && key != "url" && key != "rtsp_transport" && key != "retention_s")
      return respond(JsonError(InvalidArgument("unknown field '" + key + "'")));
  if (!body.contains("name") || !body["name"].is_string())
    return respond(JsonError(
        InvalidArgument("field 'name' (a string) is required", Reason::kMissingParameter)));
  const std::string name = body["name"].get<std::string>();
  if (Status s = ValidateStreamName(name); !s.ok()) return respond(JsonError(s));
  std::optional<int64_t> retention_ms;
  if (body.contains("retention_s")) {
    constexpr int64_t kMaxRetentionS = 87'600 * 3600;  // Kinesis Video's: 10 years
    const json& r = body["retention_s"];
    if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > kMaxRetentionS)
      return respond(JsonError(InvalidArgument("retention_s must be an integer from 1 to " +
                                               std::to_string(kMaxRetentionS))));
    retention_ms = r.get<int64_t>() * 1000;
  }
  auto created = [this, name] {
    auto stream = streams_.Find(name);
    json j = stream ? StreamJson(stream->Info(clock_.NowMs(), streams_.options().live_window_ms),
                                 /*admin=*/true)
                    : json{{"name", name}};
    Response res = JsonResponse(201, j.dump());
    res.set(bhttp::field::location, "/v1/streams/" + name);
    return res;
  };
  if (!body.contains("url")) {  // a stream for producers to push to
    auto stream = streams_.Create(name, retention_ms);
    if (!stream.ok()) return respond(JsonError(stream.status()));
    return respond(created());
  }
  if (sources_ == nullptr)
    return respond(JsonError(404, "NotFound", "this server pulls no sources"));
  if (!body["url"].is_string())
    return respond(JsonError(InvalidArgument("field 'url' must be a string")));
  ingest::PullOptions o;
  o.stream = name;
  o.url = body["url"].get<std::string>();
  if (body.contains("rtsp_transport")) {
    if (!body["rtsp_transport"].is_string())
      return respond(JsonError(InvalidArgument("rtsp_transport must be \"tcp\" or \"udp\"")));
    o.rtsp_transport = body["rtsp_transport"].get<std::string>();
  }
  if (o.rtsp_transport != "tcp" && o.rtsp_transport != "udp")
    return respond(JsonError(InvalidArgument("rtsp_transport must be \"tcp\" or \"udp\"")));
  // Checking the URL resolves its host name, which may take seconds: on a worker.
  auto shared = std::make_shared<Respond>(std::move(respond));
  bool queued = workers_.TryPost([this, shared, o = std::move(o), retention_ms, created] {
    if (Status s = sources_->Add(o, /*configured=*/false); !s.ok()) return (*shared)(JsonError(s));
    if (retention_ms)
      if (Status s = streams_.SetRetention(o.stream, *retention_ms); !s.ok())
        return (*shared)(JsonError(s));
    (*shared)(created());
  });
  if (!queued) (*shared)(JsonError(Status(Code::kOverloaded, "the workers are busy")));
}

void Api::DeleteStream(const std::string& name, Respond respond) {
  bool pulled = sources_ != nullptr && sources_->Remove(name).ok();
  Status removed = streams_.Remove(name);
  if (!removed.ok() && !(pulled && removed.reason() == Reason::kStreamNotFound))
    return respond(JsonError(removed));
  respond(Response{bhttp::status::no_content, 11});
}

void Api::Snapshot(const Request& req, const Caller& caller, const std::string& stream,
                   Respond respond) {
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(JsonError(params.status()));
  auto parsed = ParseSnapshotRequest(*params, LimitsFor(options_, caller), std::nullopt);
  if (!parsed.ok()) return respond(JsonError(parsed.status()));
  SnapshotRequest r = *parsed;
  auto shared = std::make_shared<Respond>(std::move(respond));
  snapshots_.PublishAsync(
      stream, r.options, r.expires_s, [this, shared, r](Result<snapshot::PublishedImage> p) {
        if (!p.ok()) return (*shared)(JsonError(p.status()));
        const int64_t now = clock_.NowMs();
        const int64_t age = FrameAge(now, p->image.frame_arrival_ms);
        if (r.max_age_ms && age > *r.max_age_ms)
          return (*shared)(StaleFrame(p->image, age, *r.max_age_ms));
        Response res =
            JsonResponse(r.redirect ? 302 : 200, PublishedJson(*p, r.expires_s, now).dump());
        res.set("X-Frame-Age", std::to_string(age));
        if (r.redirect) res.set(bhttp::field::location, p->url);
        (*shared)(std::move(res));
      });
}

void Api::RecipeSnapshot(const Request& req, const Caller& caller, Respond respond) {
  // The original recipe's shape: the URL in "body", the status in "statusCode".
  auto recipe_error = [](const Status& s) {
    unsigned status = HttpStatusOf(s.code());
    Response res = JsonResponse(status, JsonText(json{{"statusCode", status},
                                                      {"body", s.message()},
                                                      {"code", s.reason_name()},
                                                      {"message", s.message()}}));
    if (s.code() == Code::kOverloaded) res.set(bhttp::field::retry_after, "1");
    return res;
  };
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(recipe_error(params.status()));
  const std::string* name = params->Get("stream_name");
  if (name == nullptr)
    return respond(recipe_error(
        InvalidArgument("parameter 'stream_name' is required", Reason::kMissingParameter)));
  if (Status s = ValidateStreamName(*name); !s.ok()) return respond(recipe_error(s));
  if (!caller.MayView(*name))
    return respond(recipe_error(Forbidden(caller, "read stream '" + *name + "'")));
  auto parsed = ParseSnapshotRequest(*params, LimitsFor(options_, caller), std::nullopt);
  if (!parsed.ok()) return respond(recipe_error(parsed.status()));
  SnapshotRequest r = *parsed;
  auto shared = std::make_shared<Respond>(std::move(respond));
  snapshots_.PublishAsync(*name, r.options, r.expires_s,
                          [this, shared, r, recipe_error](Result<snapshot::PublishedImage> p) {
                            if (!p.ok()) return (*shared)(recipe_error(p.status()));
                            const int64_t now = clock_.NowMs();
                            const int64_t age = FrameAge(now, p->image.frame_arrival_ms);
                            if (r.max_age_ms && age > *r.max_age_ms) {
                              Response stale = StaleFrame(p->image, age, *r.max_age_ms);
                              json j = json::parse(stale.body());
                              j["statusCode"] = 409;
                              j["body"] = j["message"];
                              stale.body() = j.dump();
                              stale.prepare_payload();
                              return (*shared)(std::move(stale));
                            }
                            json j = PublishedJson(*p, r.expires_s, now);
                            j["statusCode"] = 200;
                            j["body"] = p->url;
                            Response res = JsonResponse(200, j.dump());
                            res.set("X-Frame-Age", std::to_string(age));
                            (*shared)(std::move(res));
                          });
}

void Api::LatestImage(const Request& req, const Caller& caller, const std::string& stream,
                      snapshot::ImageFormat format, Respond respond) {
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(JsonError(params.status()));
  auto parsed = ParseSnapshotRequest(*params, LimitsFor(options_, caller), format);
  if (!parsed.ok()) return respond(JsonError(parsed.status()));
  auto shared = std::make_shared<Respond>(std::move(respond));
  snapshots_.RenderAsync(stream, parsed->options,
                         [this, shared, max_age = parsed->max_age_ms](Result<snapshot::Image> img) {
                           if (!img.ok()) return (*shared)(JsonError(img.status()));
                           (*shared)(ImageResponse(std::move(*img), max_age));
                         });
}

Response Api::ImageResponse(snapshot::Image img, std::optional<int64_t> max_age_ms) const {
  const int64_t age = FrameAge(clock_.NowMs(), img.frame_arrival_ms);
  if (max_age_ms && age > *max_age_ms) return StaleFrame(img, age, *max_age_ms);
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, snapshot::ImageContentType(img.format));
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Frame-Timestamp", FormatIso8601Ms(img.frame_timestamp_ms));
  res.set("X-Frame-Age", std::to_string(age));
  res.set("X-Fragment-Number", std::to_string(img.fragment_number));
  res.set("X-Image-Width", std::to_string(img.width));
  res.set("X-Image-Height", std::to_string(img.height));
  if (img.frames > 1) res.set("X-Preview-Frames", std::to_string(img.frames));
  res.body() = std::move(img.bytes);
  return res;
}

void Api::Preview(const Request& req, const std::string& stream, snapshot::ImageFormat format,
                  Respond respond) {
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(JsonError(params.status()));
  auto parsed = ParsePreviewRequest(*params, format);
  if (!parsed.ok()) return respond(JsonError(parsed.status()));
  auto shared = std::make_shared<Respond>(std::move(respond));
  snapshots_.RenderPreviewAsync(
      stream, parsed->options,
      [this, shared, max_age = parsed->max_age_ms](Result<snapshot::Image> img) {
        if (!img.ok()) return (*shared)(JsonError(img.status()));
        (*shared)(ImageResponse(std::move(*img), max_age));
      });
}

std::variant<std::unique_ptr<UploadSink>, Response> Api::StartUpload(const Request& req,
                                                                     UploadEvents events) {
  if (s3_ && s3_->IsUpload(req)) return s3_->StartUpload(req, std::move(events));
  // Who may push is settled before anything else is said about the request: a producer's
  // (or admin's) bearer key, or Kinesis Video's SigV4 with the server's key pair (or, where
  // --unsigned-putmedia allows it, nothing).
  std::optional<Caller> bearer;
  auto authorization = req.header.find(bhttp::field::authorization);
  if (keys_ != nullptr && authorization != req.header.end() &&
      boost::beast::iequals(authorization->value().substr(0, 7), "Bearer ")) {
    auto caller = Identify(req);
    if (!caller.ok()) return Unauthorized(caller.status());
    bearer = *caller;
  } else if (kvs_) {
    if (auto refused = kvs_->AuthorizePutMedia(req)) return std::move(*refused);
  }
  auto named = PutMediaStream(req);
  if (!named.ok()) return JsonError(named.status());
  const std::string name = std::move(*named);
  if (bearer && !bearer->MayPush(name))
    return JsonError(Forbidden(*bearer, "push to stream '" + name + "'"));
  // A pulled stream has its source: a push would mix two cameras in one stream.
  if (sources_ != nullptr && sources_->Find(name))
    return JsonError(Status(Code::kConflict,
                            "stream '" + name + "' is pulled from a camera; it takes no pushes",
                            Reason::kStreamBusy));
  ingest::PushOptions options;
  options.stream = name;
  options.fragment_limit = options_.fragment_limit;
  options.parse_on_caller = true;  // on this I/O thread: no hand-off per read (push_session.h)
  auto timing = ParsePushTiming(req.header);
  if (!timing.ok()) return JsonError(timing.status());
  options.absolute_timecodes = timing->absolute_timecodes;
  options.producer_start_ms = timing->producer_start_ms;
  auto length = req.header.find(bhttp::field::content_length);
  if (length != req.header.end() && length->value() == "0")
    return JsonError(
        InvalidArgument("the request body is empty: send a Matroska stream", Reason::kEmptyBody));
  Limit* limit = options_.producer_limit;
  if (limit && !limit->TryAcquire())
    return JsonError(Status(Code::kOverloaded,
                            "the server takes " + std::to_string(limit->max()) +
                                " producers at once, its limit (--max-producers); retry later",
                            Reason::kTooManyProducers));
  auto session =
      ingest::PushSession::Start(streams_, options,
                                 {.on_ack = events.on_line,
                                  .on_space = events.on_space,
                                  .on_done = [done = events.on_done](Status) { done(); }});
  if (!session.ok()) {
    if (limit) limit->Release();
    return JsonError(session.status());
  }
  return std::unique_ptr<UploadSink>(new PushSink(std::move(*session), limit));
}

}  // namespace lastframe::http
