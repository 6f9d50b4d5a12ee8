#pragma once

#include <optional>
#include <string>

#include "auth/api_keys.h"
#include "auth/session_store.h"
#include "core/clock.h"
#include "http/server.h"

namespace lastframe::http {

// The dashboard (README "Dashboard"): the page at GET /, its assets under
// /ui/ (src/http/ui/, built into the binary), and its sign-in, /ui/session.
// Who may call: the page, its assets and /ui/session are open to anyone; what
// the page shows comes from the API's own routes, which a session cookie opens
// for GET and HEAD with the role of the key that signed in (Api::Identify asks
// SessionOf). Every answer carries a strict Content-Security-Policy.
// This node, as the page and /v1/events name it (in a cluster, events are per
// node): |name| (the machine's name when empty) and the port the browser reached.
std::string NodeName(const std::string& name, const Request& request);

class Dashboard {
 public:
  // |keys| null: access control is off, and there is no sign-in. |node|: this
  // node's name as the page shows it (as /v1/events names it; "" for the host
  // name), with the port the browser reached.
  Dashboard(auth::KeyRing* keys, const Clock& clock, std::string node = "",
            auth::SessionStore::Options sessions = auth::SessionStore::Options{});

  // Whether |request| is the dashboard's: "/", "/ui" and "/ui/...". (GET /
  // with S3 credentials is S3's ListBuckets: Api asks S3 first.)
  static bool Owns(const Request& request);
  // Answers a request Owns; cheap, on the I/O thread.
  Response Handle(const Request& request);
  // The key a request's lf_session cookie stands for, checked against the key
  // ring now: nullopt when the request carries no such cookie, or is not a GET
  // or HEAD (the page only reads: a cookie never authorises a change);
  // kUnauthenticated when the session is unknown, expired or its key is gone,
  // revoked or expired.
  std::optional<Result<auth::Principal>> SessionOf(const Request& request) const;

  static constexpr const char* kCookie = "lf_session";

 private:
  Response Asset(const Request& request, std::string_view name);
  Response SessionState(const Request& request);
  Response SignIn(const Request& request);
  Response SignOut(const Request& request);

  auth::KeyRing* const keys_;
  const std::string node_;
  mutable auth::SessionStore sessions_;  // Find forgets what expired
};

// The value of cookie |name| in |request|'s Cookie headers; nullopt if absent.
std::optional<std::string> CookieValue(const Request& request, std::string_view name);

}  // namespace lastframe::http
