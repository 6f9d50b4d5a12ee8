#include "http/errors.h"

#include <nlohmann/json.hpp>

namespace lastframe::http {

namespace bhttp = boost::beast::http;

unsigned HttpStatusOf(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kConflict:
      return 409;
    case Code::kTooLarge:
      return 413;
    case Code::kMediaError:
      return 422;
    case Code::kOverloaded:
      return 429;
    case Code::kInternal:
      return 500;
    case Code::kUpstreamFailed:
      return 502;
    case Code::kUnavailable:
      return 503;
    case Code::kTimeout:
      return 504;
  }
  return 500;
}

Response JsonResponse(unsigned status, std::string body) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.body().push_back('\n');
  return res;
}

std::string JsonText(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response JsonError(unsigned status, const std::string& code, const std::string& message) {
  return JsonResponse(status, JsonText(nlohmann::json{{"code", code}, {"message", message}}));
}

Response JsonError(const Status& error) {
  Response res = JsonError(HttpStatusOf(error.code()), error.reason_name(), error.message());
  if (error.code() == Code::kOverloaded) res.set(bhttp::field::retry_after, "1");
  return res;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

S3ErrorKind S3ErrorKindOf(const Status& error) {
  // Our reasons that S3 answers with another status than their code's, or names otherwise.
  static constexpr std::pair<Reason, S3ErrorKind> kByReason[] = {
      {Reason::kEntityTooLarge, {400, "EntityTooLarge"}},
      {Reason::kInvalidRange, {416, "InvalidRange"}},
      {Reason::kNotImplemented, {501, "NotImplemented"}},
      {Reason::kMethodNotAllowed, {405, "MethodNotAllowed"}},
      {Reason::kMissingContentLength, {411, "MissingContentLength"}},
      {Reason::kPreconditionFailed, {412, "PreconditionFailed"}},
      {Reason::kSlowDown, {503, "SlowDown"}},
      {Reason::kStopping, {503, "ServiceUnavailable"}},
      {Reason::kCredentialScopeMismatch, {400, "AuthorizationHeaderMalformed"}},
  };
  for (const auto& [reason, kind] : kByReason)
    if (error.reason() == reason) return kind;
  // The embedded store's reasons are S3's own names (NoSuchKey, SignatureDoesNotMatch, ...).
  return {HttpStatusOf(error.code()), ReasonName(error.reason())};
}

Response S3Error(const Status& error, const std::string& resource) {
  const S3ErrorKind kind = S3ErrorKindOf(error);
  Response res{static_cast<bhttp::status>(kind.status), 11};
  res.set(bhttp::field::content_type, "application/xml");
  res.body() = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" +
               XmlEscape(std::string(kind.code)) + "</Code><Message>" + XmlEscape(error.message()) +
               "</Message><Resource>" + XmlEscape(resource) + "</Resource></Error>\n";
  return res;
}

}  // namespace lastframe::http
