#include "kvs/kvs_client.h"

#include <nlohmann/json.hpp>

namespace lastframe::kvs {

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "http://host:port/base" -> host ("host:port") and base path ("/base" or "").
void SplitUrl(const std::string& url, std::string* host, std::string* base) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t slash = url.find('/', start);
  *host = url.substr(start, slash - start);
  *base = slash == std::string::npos ? "" : url.substr(slash);
  // Default ports are not part of the signed host, as clients send it.
  if (url.starts_with("http://") && host->ends_with(":80")) host->resize(host->size() - 3);
  if (url.starts_with("https://") && host->ends_with(":443")) host->resize(host->size() - 4);
}

// x-amzn-ErrorType, before any ':' ("ResourceNotFoundException:http://...").
std::string ErrorType(const aws::HttpResponse& r) {
  const std::string* v = r.Header("x-amzn-errortype");
  return v == nullptr ? "" : v->substr(0, v->find(':'));
}

bool Retryable(const aws::HttpResponse& r) {
  return r.status != 200 && (r.status >= 500 || ErrorType(r) == "ClientLimitExceededException");
}

aws::HttpClientOptions ClientOptions(const KvsClientOptions& o) {
  return {.budget = o.budget,
          .retryable = Retryable,
          .max_body_bytes = 1 << 20,  // an error body past 1 MiB is not one
          // A fresh connection for each try, as this client has always made.
          .reuse_connections = false};
}

}  // namespace

KvsClient::KvsClient(KvsClientOptions options, const Clock& clock)
    : endpoint_(options.endpoint.empty()
                    ? "https://kinesisvideo." + options.region + ".amazonaws.com"
                    : Trim(options.endpoint)),
      client_(ClientOptions(options),
              aws::SigV4(options.credentials, options.region, "kinesisvideo", clock), clock) {}

aws::HttpRequest KvsClient::RequestOf(const std::string& endpoint, const std::string& operation,
                                      const std::string& json_body) {
  std::string host, base;
  SplitUrl(endpoint, &host, &base);
  return {.method = "POST",
          .url = endpoint + "/" + operation,
          .host = host,
          .path = base + "/" + operation,
          .signed_headers = {{"content-type", "application/json"}},
          .body = json_body};
}

Status KvsClient::ErrorOf(const aws::HttpResponse& a, const std::string& operation) {
  std::string message;
  auto j = nlohmann::json::parse(a.body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("message") && j["message"].is_string()) message = j["message"];
    if (j.contains("Message") && j["Message"].is_string()) message = j["Message"];
  }
  const std::string error_type = ErrorType(a);
  std::string what = operation + ": " +
                     (error_type.empty() ? "HTTP " + std::to_string(a.status) : error_type) +
                     (message.empty() ? "" : " (" + message + ")");
  if (error_type == "ResourceNotFoundException")
    return NotFound("Kinesis Video: " + what, Reason::kStreamNotFound);
  if (a.status >= 500)
    return Status(Code::kUpstreamFailed, "Kinesis Video endpoint failed: " + what,
                  Reason::kKvsUnavailable);
  return Status(Code::kUpstreamFailed, "Kinesis Video refused " + what, Reason::kKvsError);
}

Status KvsClient::FailureOf(const Status& failure, const std::string& endpoint) {
  if (failure.code() == Code::kTimeout)
    return Status(Code::kTimeout, "Kinesis Video endpoint " + endpoint + " did not answer in time",
                  Reason::kKvsTimeout);
  if (failure.code() == Code::kUnavailable)
    return Status(Code::kUpstreamFailed,
                  "Kinesis Video endpoint " + endpoint + " failed: " + failure.message(),
                  Reason::kKvsUnavailable);
  return failure;
}

Result<std::string> KvsClient::Call(const std::string& endpoint, const std::string& operation,
                                    const std::string& json_body) const {
  const std::string url = Trim(endpoint);
  auto answer = client_.Send(RequestOf(url, operation, json_body));
  if (!answer.ok()) return FailureOf(answer.status(), url);
  if (answer->status != 200) return ErrorOf(*answer, operation);
  return std::move(answer->body);
}

Status KvsClient::Stream(const std::string& endpoint, const std::string& operation,
                         const std::string& json_body,
                         const std::function<bool(const char*, size_t)>& on_data,
                         const std::atomic<bool>& stop) const {
  const std::string url = Trim(endpoint);
  auto answer = client_.Stream(RequestOf(url, operation, json_body), on_data, stop);
  if (!answer.ok()) return FailureOf(answer.status(), url);
  if (answer->stopped) {
    // Stopped before any answer came: as good as a stream that ended.
    if (answer->status == 0 || answer->status == 200) return Status::Ok();
    return ErrorOf(aws::HttpResponse{.status = answer->status}, operation);
  }
  if (answer->status != 200) return ErrorOf(*answer, operation);
  return Status::Ok();
}

Result<std::string> KvsClient::DataEndpoint(const std::string& stream,
                                            const std::string& api_name) const {
  auto body = Call(endpoint_, "getDataEndpoint",
                   nlohmann::json{{"StreamName", stream}, {"APIName", api_name}}.dump());
  if (!body.ok()) return body.status();
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (!j.is_object() || !j.contains("DataEndpoint") || !j["DataEndpoint"].is_string())
    return Status(Code::kUpstreamFailed, "GetDataEndpoint answered without a DataEndpoint",
                  Reason::kKvsError);
  return j["DataEndpoint"].get<std::string>();
}

}  // namespace lastframe::kvs
