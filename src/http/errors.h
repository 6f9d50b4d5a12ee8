#pragma once

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace lastframe::http {

using Response = boost::beast::http::response<boost::beast::http::string_body>;

// The one place where domain error codes become HTTP statuses.
unsigned HttpStatusOf(Code code);

// A JSON response: |status| with |body| (already serialised).
Response JsonResponse(unsigned status, std::string body);
// |j| as JSON text for a response. Strings that are not UTF-8 (a client's
// bytes quoted in an error message) become U+FFFD: nlohmann::json's dump()
// throws on them, and nothing on an I/O thread catches.
std::string JsonText(const nlohmann::json& j);
// {"code": reason, "message": message} with the status of |error|'s code.
// Overloaded errors carry Retry-After.
Response JsonError(const Status& error);
// The same for errors of the HTTP layer itself (405, 431, ...).
Response JsonError(unsigned status, const std::string& code, const std::string& message);
// S3's status and error code for |error|: the one map from our reasons to
// S3's errors. The status is S3's where S3 fixes it otherwise than
// HttpStatusOf would (EntityTooLarge 400, InvalidRange 416, NotImplemented
// 501, ...); the code is the reason's name unless S3 names it otherwise.
struct S3ErrorKind {
  unsigned status;
  std::string_view code;
};
S3ErrorKind S3ErrorKindOf(const Status& error);
// S3's XML error document, for the object routes that S3 clients call.
Response S3Error(const Status& error, const std::string& resource);
// Escapes the five XML special characters.
std::string XmlEscape(const std::string& text);

}  // namespace lastframe::http
