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
  Response res = JsonError(HttpStatusOf(error.code()), error.reason(), error.message());
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

unsigned S3StatusOf(const Status& error) {
  static const std::pair<const char*, unsigned> kS3Statuses[] = {
      {"EntityTooLarge", 400},   {"InvalidRange", 416},         {"NotImplemented", 501},
      {"MethodNotAllowed", 405}, {"MissingContentLength", 411}, {"PreconditionFailed", 412},
      {"SlowDown", 503},
  };
  std::string reason = error.reason();
  for (const auto& [name, status] : kS3Statuses)
    if (reason == name) return status;
  return HttpStatusOf(error.code());
}

Response S3Error(const Status& error, const std::string& resource) {
  Response res{static_cast<bhttp::status>(S3StatusOf(error)), 11};
  res.set(bhttp::field::content_type, "application/xml");
  res.body() = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" +
               XmlEscape(error.reason()) + "</Code><Message>" + XmlEscape(error.message()) +
               "</Message><Resource>" + XmlEscape(resource) + "</Resource></Error>\n";
  return res;
}

}  // namespace lastframe::http
