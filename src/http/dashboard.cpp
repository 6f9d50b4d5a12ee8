#include "http/dashboard.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "http/params.h"
#include "http/ui_assets.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::string_view kUiPrefix = "/ui/";
constexpr std::string_view kSessionPath = "/ui/session";

// The page loads only its own scripts and styles (no inline ones), talks only
// to this origin, and shows images from it and the blob: URLs it makes of
// fetched stills; nobody may frame it.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

bool IsGet(const Request& r) {
  return r.header.method() == bhttp::verb::get || r.header.method() == bhttp::verb::head;
}

Response& Secure(Response& res) {
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  return res;
}

Response Secured(Response res) {
  Secure(res);
  return res;
}

Response NotAllowed(const std::string& allow) {
  Response res = JsonError(405, "MethodNotAllowed", "allowed methods: " + allow);
  res.set(bhttp::field::allow, allow);
  return Secured(std::move(res));
}

std::string_view ContentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

const EmbeddedFile* FindAsset(std::string_view name) {
  for (const EmbeddedFile& f : UiAssets())
    if (f.name == name) return &f;
  return nullptr;
}

// Whether the browser reached us over TLS (a proxy in front says so).
bool OverTls(const Request& r) {
  auto proto = r.header.find("X-Forwarded-Proto");
  return proto != r.header.end() && boost::beast::iequals(proto->value(), "https");
}

std::string SessionCookie(const Request& r, const std::string& value, int64_t max_age_s) {
  std::string cookie = std::string(Dashboard::kCookie) + "=" + value +
                       "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (OverTls(r)) cookie += "; Secure";
  return cookie;
}

Response Unauthorized(const std::string& message) {
  Response res = JsonError(401, "Unauthorized", message);
  res.set(bhttp::field::www_authenticate, "Bearer realm=\"lastframe\"");
  return Secured(std::move(res));
}

}  // namespace

// This node, as the page shows it (in a cluster, events are per node): |name|
// (the machine's name when empty) and the port the browser reached.
std::string NodeName(const std::string& name, const Request& r) {
  std::string node = name;
  if (node.empty()) {
    char host[256] = {};
    node = ::gethostname(host, sizeof host - 1) == 0 && host[0] ? host : "lastframe";
  }
  auto host = r.header.find(bhttp::field::host);
  if (host != r.header.end()) {
    std::string_view h(host->value().data(), host->value().size());
    size_t colon = h.rfind(':');
    if (colon != std::string_view::npos && h.find(']', colon) == std::string_view::npos) {
      std::string_view port = h.substr(colon + 1);
      if (!port.empty() && port.size() <= 5 &&
          port.find_first_not_of("0123456789") == std::string_view::npos)
        node += ":" + std::string(port);
    }
  }
  return node;
}

std::optional<std::string> CookieValue(const Request& request, std::string_view name) {
  auto [first, last] = request.header.equal_range(bhttp::field::cookie);
  for (auto it = first; it != last; ++it) {
    std::string_view rest(it->value().data(), it->value().size());
    while (!rest.empty()) {
      size_t end = rest.find(';');
      std::string_view pair = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      while (!pair.empty() && pair.back() == ' ') pair.remove_suffix(1);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name)
        return std::string(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

Dashboard::Dashboard(auth::KeyRing* keys, const Clock& clock, std::string node,
                     auth::SessionStore::Options sessions)
    : keys_(keys), node_(std::move(node)), sessions_(clock, sessions) {}

bool Dashboard::Owns(const Request& r) {
  return r.path == "/" || r.path == "/ui" || r.path.starts_with(kUiPrefix);
}

std::optional<Result<auth::Principal>> Dashboard::SessionOf(const Request& r) const {
  if (keys_ == nullptr || !IsGet(r)) return std::nullopt;
  auto token = CookieValue(r, kCookie);
  if (!token) return std::nullopt;
  auto key_id = sessions_.Find(*token);
  if (!key_id)
    return Result<auth::Principal>(Status(Code::kUnauthenticated,
                                          "the dashboard session is unknown or expired: sign in "
                                          "again",
                                          Reason::kUnauthorized));
  auto who = keys_->AuthenticateId(*key_id);
  if (!who.ok()) sessions_.Remove(*token);  // its key is gone for good: so is the session
  return who;
}

Response Dashboard::Handle(const Request& r) {
  if (r.path == "/") {
    if (!IsGet(r)) return NotAllowed("GET, HEAD");
    return Asset(r, "index.html");
  }
  if (r.path == kSessionPath) {
    switch (r.header.method()) {
      case bhttp::verb::get:
      case bhttp::verb::head:
        return SessionState(r);
      case bhttp::verb::post:
        return SignIn(r);
      case bhttp::verb::delete_:
        return SignOut(r);
      default:
        return NotAllowed("GET, HEAD, POST, DELETE");
    }
  }
  std::string_view name =
      std::string_view(r.path).substr(std::min(r.path.size(), kUiPrefix.size()));
  // index.html is the page at "/" only; everything else under /ui/ is an asset.
  const EmbeddedFile* file = name == "index.html" ? nullptr : FindAsset(name);
  if (file == nullptr) return Secured(JsonError(404, "NotFound", "no route for " + r.path));
  if (!IsGet(r)) return NotAllowed("GET, HEAD");
  return Asset(r, name);
}

Response Dashboard::Asset(const Request& r, std::string_view name) {
  const EmbeddedFile* file = FindAsset(name);
  if (file == nullptr) return Secured(JsonError(404, "NotFound", "no route for " + r.path));
  const std::string etag = "\"" + std::string(file->etag) + "\"";
  // The page names its assets /ui/NAME?v=HASH: that URL's bytes never change,
  // so browsers keep them; the page itself, and other URLs, are revalidated.
  const bool versioned = name != "index.html" && r.raw_query == "v=" + std::string(file->etag);
  Response res{bhttp::status::ok, 11};
  auto inm = r.header.find(bhttp::field::if_none_match);
  if (inm != r.header.end() && inm->value().find(etag) != boost::beast::string_view::npos)
    res.result(bhttp::status::not_modified);
  else
    res.body() = std::string(file->bytes);
  res.set(bhttp::field::content_type, std::string(ContentTypeOf(name)));
  res.set(bhttp::field::etag, etag);
  res.set(bhttp::field::cache_control,
          versioned ? "public, max-age=31536000, immutable" : "no-cache");
  return Secured(std::move(res));
}

Response Dashboard::SessionState(const Request& r) {
  json state = {{"auth", keys_ != nullptr},
                {"signed_in", false},
                {"role", nullptr},
                {"streams", nullptr},
                {"node", NodeName(node_, r)}};
  if (auto who = SessionOf(r); who && who->ok()) {
    state["signed_in"] = true;
    state["role"] = auth::RoleName((*who)->role);
    state["streams"] = (*who)->streams;
  }
  Response res = JsonResponse(200, JsonText(state));
  res.set(bhttp::field::cache_control, "no-store");
  return Secured(std::move(res));
}

Response Dashboard::SignIn(const Request& r) {
  if (keys_ == nullptr)
    return Secured(JsonError(
        InvalidArgument("access control is off (--auth off): there is nothing to sign in to")));
  // Only a script of this origin sends JSON: a cross-site form cannot sign a
  // browser in with a key of the attacker's (login CSRF) without a preflight.
  auto type = r.header.find(bhttp::field::content_type);
  if (type == r.header.end() ||
      !boost::beast::iequals(type->value().substr(0, 16), "application/json"))
    return Secured(JsonError(415, "UnsupportedMediaType",
                             "send the key as JSON: Content-Type: application/json"));
  json body = ParseJsonBody(r.body);
  if (body.is_discarded() || !body.is_object() || !body.contains("key") || !body["key"].is_string())
    return Secured(JsonError(
        InvalidArgument(R"(the body must be {"key": "lf_..."})", Reason::kMissingParameter)));
  auto who = keys_->Authenticate("Bearer " + body["key"].get<std::string>());
  if (!who.ok()) return Unauthorized(who.status().message());
  auto token = sessions_.Create(who->key_id);
  if (!token.ok()) return Secured(JsonError(token.status()));
  Response res{bhttp::status::no_content, 11};
  res.set(bhttp::field::set_cookie, SessionCookie(r, *token, sessions_.options().ttl_ms / 1000));
  res.set(bhttp::field::cache_control, "no-store");
  return Secured(std::move(res));
}

Response Dashboard::SignOut(const Request& r) {
  if (auto token = CookieValue(r, kCookie)) sessions_.Remove(*token);
  Response res{bhttp::status::no_content, 11};
  res.set(bhttp::field::set_cookie, SessionCookie(r, "", 0));
  res.set(bhttp::field::cache_control, "no-store");
  return Secured(std::move(res));
}

}  // namespace lastframe::http
