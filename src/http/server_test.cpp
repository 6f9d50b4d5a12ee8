#include "http/server.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <thread>

#include "core/metrics.h"
#include "core/test_metrics.h"
#include "http/api.h"
#include "http/running_server_for_test.h"
#include "support/http_client.h"

namespace lastframe::http {
namespace {

namespace bhttp = boost::beast::http;

using metrics::test::MetricValue;

// Requests counted in lastframe_http_request_duration_seconds for |route| and |code|.
double Requests(const std::string& route, const std::string& code) {
  return MetricValue(R"(lastframe_http_request_duration_seconds_count{route=")" + route +
                     R"(",code=")" + code + "\"}");
}

Request MakeRequest(bhttp::verb method, const std::string& target,
                    const std::map<std::string, std::string>& headers = {}) {
  Request r;
  r.header.method(method);
  r.header.target(target);
  for (const auto& [k, v] : headers) r.header.set(k, v);
  EXPECT_TRUE(SplitTarget(target, r)) << target;
  return r;
}

TEST(ApiRouteOf, GroupsApisRoutesAndNamesTheirStream) {
  struct Case {
    bhttp::verb method;
    std::string target;
    std::map<std::string, std::string> headers;
    RouteGroup group;
    std::string stream;
  };
  const Case cases[] = {
      {bhttp::verb::get, "/healthz", {}, RouteGroup::kHealthz, ""},
      {bhttp::verb::get, "/metrics", {}, RouteGroup::kMetrics, ""},
      {bhttp::verb::post,
       "/putMedia",
       {{"x-amzn-stream-name", "cam1"}},
       RouteGroup::kPutMedia,
       "cam1"},
      {bhttp::verb::get,
       "/snapshot?stream_name=cam2&X-Amz-Signature=s",
       {},
       RouteGroup::kSnapshot,
       "cam2"},
      {bhttp::verb::get, "/v1/streams/cam3/snapshot", {}, RouteGroup::kSnapshot, "cam3"},
      {bhttp::verb::get, "/v1/streams/cam3/latest.png", {}, RouteGroup::kSnapshot, "cam3"},
      {bhttp::verb::get, "/v1/streams/cam3/fragments?start=1", {}, RouteGroup::kApi, "cam3"},
      {bhttp::verb::delete_, "/v1/streams/cam3", {}, RouteGroup::kApi, "cam3"},
      {bhttp::verb::get, "/v1/streams", {}, RouteGroup::kApi, ""},
      // A name that is not a stream's stays out of the log.
      {bhttp::verb::get, "/v1/streams/a%20b/clip", {}, RouteGroup::kApi, ""},
      {bhttp::verb::get, "/favicon.ico", {}, RouteGroup::kOther, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    RouteInfo route = ApiRouteOf(MakeRequest(c.method, c.target, c.headers));
    EXPECT_EQ(RouteGroupName(route.group), RouteGroupName(c.group));
    EXPECT_EQ(route.stream, c.stream);
  }
}

// An upload that ends as soon as its body has.
class EndingSink final : public UploadSink {
 public:
  explicit EndingSink(UploadEvents events) : events_(std::move(events)) {}
  bool Feed(const uint8_t*, size_t) override { return true; }
  void Finish() override { events_.on_done(); }
  void Abort() override { events_.on_done(); }

 private:
  UploadEvents events_;
};

// Routes as Api groups them; answers 404 on /missing, 200 otherwise.
class StubApp final : public Application {
 public:
  void Handle(Request r, Respond respond) override {
    if (r.path == "/missing") return respond(JsonError(404, "NotFound", "no route"));
    respond(JsonResponse(200, "{\"ok\":true}"));
  }
  bool IsUpload(const Request& r) const override { return r.path == "/putMedia"; }
  std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request&,
                                                                  UploadEvents events) override {
    return std::make_unique<EndingSink>(std::move(events));
  }
  RouteInfo RouteOf(const Request& r) const override { return ApiRouteOf(r); }
};

// The process's default logger, replaced by one whose lines the test reads.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    sink_->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  // The lines logged so far that start with |prefix|.
  std::vector<std::string> Lines(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto& line : sink_->last_formatted())
      if (line.rfind(prefix, 0) == 0) out.push_back(line);
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
};


TEST(ServerOptions, RequestsAreLoggedAtDebugByDefault) {
  EXPECT_EQ(ServerOptions{}.request_log_level, spdlog::level::debug);
}

// The registry is the process's: each check compares before and after. The
// metric and the line are recorded before the answer is written, so they are
// there once the client has it.
TEST(Server, EachRequestIsTimedByRouteAndStatusClassAndLoggedWithoutItsQuery) {
  CapturedLog log;
  StubApp app;
  RunningServer server(
      {.host = "127.0.0.1", .port = 0, .io_threads = 1, .request_log_level = spdlog::level::info},
      app);
  const double snapshots = Requests("snapshot", "2xx"), missing = Requests("other", "4xx"),
               health = Requests("healthz", "2xx");

  auto r = testing::HttpGet(server.port(),
                            "/v1/streams/cam1/snapshot?X-Amz-Signature=s3cr3t&token=t0ken");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(testing::HttpGet(server.port(), "/missing?key=k3y").status, 404);
  EXPECT_EQ(testing::HttpGet(server.port(), "/healthz").status, 200);

  EXPECT_EQ(Requests("snapshot", "2xx") - snapshots, 1);
  EXPECT_EQ(Requests("other", "4xx") - missing, 1);
  EXPECT_EQ(Requests("healthz", "2xx") - health, 1);

  auto lines = log.Lines("info request ");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("info request method=GET route=snapshot path=/v1/streams/cam1/snapshot "
                           "status=200 duration_ms=",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find(" bytes=" + std::to_string(r.body.size()) + " stream=cam1 remote="),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("info request method=GET route=other path=/missing status=404 ", 0), 0u)
      << lines[1];
  for (const auto& line : lines) {
    EXPECT_EQ(line.find('?'), std::string::npos) << line;
    for (const char* secret : {"s3cr3t", "t0ken", "k3y", "X-Amz"})
      EXPECT_EQ(line.find(secret), std::string::npos) << line;
  }
}

TEST(Server, AnUploadIsTimedAsItsAnswerStarts) {
  CapturedLog log;
  StubApp app;
  RunningServer server({.host = "127.0.0.1", .port = 0, .io_threads = 1}, app);
  const double uploads = Requests("put_media", "2xx");
  auto r = testing::HttpRequest(server.port(), "POST", "/putMedia?X-Amz-Signature=s3cr3t", "mkv",
                                {{"x-amzn-stream-name", "cam9"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Requests("put_media", "2xx") - uploads, 1);
  // At the default level, debug; the body's size is not known when its answer starts.
  auto lines = log.Lines("debug request ");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("debug request method=POST route=put_media path=/putMedia status=200 "
                           "duration_ms=",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find(" stream=cam9 remote="), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("bytes="), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("s3cr3t"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace lastframe::http
