#include "http/pull_routing.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "http/api.h"
#include "http/running_server_for_test.h"
#include "http/server.h"
#include "store/stream_store.h"

namespace lastframe::http {
namespace {

using nlohmann::json;

// A router's side, as HAProxy in front of the nodes is seen by a probe:
// GET /v1/streams/NAME/node answered by whichever node |routes| names.
class RouterApp final : public Application {
 public:
  void Route(const std::string& camera, const std::string& node) {
    std::lock_guard lock(mu_);
    routes_[camera] = node;
  }
  void Answer(unsigned status) {
    std::lock_guard lock(mu_);
    status_ = status;
  }
  int probes() const {
    std::lock_guard lock(mu_);
    return probes_;
  }
  void Handle(Request r, Respond respond) override {
    std::lock_guard lock(mu_);
    ++probes_;
    const std::string prefix = "/v1/streams/";
    std::string camera = r.path.substr(prefix.size(), r.path.size() - prefix.size() - 5);
    auto it = routes_.find(camera);
    if (status_ != 200 || it == routes_.end())
      return respond(JsonError(status_ != 200 ? status_ : 503, "Unavailable", "no server"));
    Response res = JsonResponse(200, json{{"stream", camera}, {"node", it->second}}.dump());
    res.set("X-Lastframe-Node", it->second);
    respond(std::move(res));
  }
  bool IsUpload(const Request&) const override { return false; }
  std::variant<std::unique_ptr<UploadSink>, Response> StartUpload(const Request&,
                                                                  UploadEvents) override {
    return JsonError(400, "BadRequest", "no uploads here");
  }
  RouteInfo RouteOf(const Request& r) const override { return ApiRouteOf(r); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> routes_;
  unsigned status_ = 200;
  int probes_ = 0;
};

ServerOptions Router() { return ServerOptions{.host = "127.0.0.1", .port = 0, .io_threads = 1}; }

// Cameras that never connect (no such file): a pull of one keeps retrying,
// which is all a routing test needs to see it pulled or not.
std::vector<ingest::PullOptions> Cameras() {
  return {{.stream = "cam-a", .url = "file:///nonexistent/lastframe/cam-a.mkv"},
          {.stream = "cam-b", .url = "file:///nonexistent/lastframe/cam-b.mkv"},
          {.stream = "cam-c", .url = "file:///nonexistent/lastframe/cam-c.mkv"}};
}

TEST(PullRouting, PullsExactlyTheCamerasTheRouterSendsToThisNode) {
  RouterApp app;
  RunningServer router(Router(), app);
  app.Route("cam-a", "n1");
  app.Route("cam-b", "n2");
  app.Route("cam-c", "n1");
  store::StreamStore store(SystemClock::Get(), {});
  ingest::PullSources sources(store);
  PullRouting routing({.route_url = router.url(), .node = "n1"}, Cameras(), sources);
  routing.ProbeOnce();
  EXPECT_TRUE(sources.Find("cam-a").has_value());
  EXPECT_FALSE(sources.Find("cam-b").has_value());
  EXPECT_TRUE(sources.Find("cam-c").has_value());
  auto routes = routing.Routes();
  EXPECT_EQ(routes["cam-b"].node, "n2");
  EXPECT_FALSE(routes["cam-b"].pulled_here);
  EXPECT_TRUE(routes["cam-a"].pulled_here);

  // n2 died: the router sends cam-b here now. Later cam-a moves away.
  app.Route("cam-b", "n1");
  routing.ProbeOnce();
  EXPECT_TRUE(sources.Find("cam-b").has_value());
  app.Route("cam-a", "n3");
  routing.ProbeOnce();
  EXPECT_FALSE(sources.Find("cam-a").has_value());
  EXPECT_TRUE(sources.Find("cam-b").has_value());
  EXPECT_TRUE(sources.Find("cam-c").has_value());
}

TEST(PullRouting, ARouterThatFailsChangesNothing) {
  RouterApp app;
  auto router = std::make_unique<RunningServer>(Router(), app);
  const std::string url = router->url();
  app.Route("cam-a", "n1");
  app.Route("cam-b", "n2");
  app.Route("cam-c", "n1");
  store::StreamStore store(SystemClock::Get(), {});
  ingest::PullSources sources(store);
  PullRouting routing({.route_url = url, .node = "n1"}, Cameras(), sources);
  routing.ProbeOnce();
  ASSERT_TRUE(sources.Find("cam-a").has_value());

  // Error answers (no node named): nothing moves.
  app.Answer(503);
  routing.ProbeOnce();
  EXPECT_TRUE(sources.Find("cam-a").has_value());
  EXPECT_FALSE(sources.Find("cam-b").has_value());
  EXPECT_NE(routing.Routes()["cam-a"].error.find("503"), std::string::npos);

  // The router gone: the first probe fails to connect and the round stops there.
  router.reset();
  const int before = app.probes();
  routing.ProbeOnce();
  EXPECT_EQ(app.probes(), before);
  EXPECT_TRUE(sources.Find("cam-a").has_value());
  EXPECT_TRUE(sources.Find("cam-c").has_value());
  auto routes = routing.Routes();
  EXPECT_NE(routes["cam-a"].error.find("unreachable"), std::string::npos) << routes["cam-a"].error;
  EXPECT_NE(routes["cam-b"].error.find("not probed"), std::string::npos) << routes["cam-b"].error;
}

TEST(PullRouting, StartProbesAtOnceThenEachInterval) {
  RouterApp app;
  RunningServer router(Router(), app);
  for (const auto& c : Cameras()) app.Route(c.stream, "n1");
  store::StreamStore store(SystemClock::Get(), {});
  ingest::PullSources sources(store);
  PullRouting routing({.route_url = router.url(), .node = "n1", .interval = std::chrono::hours(1)},
                      Cameras(), sources);
  routing.Start();
  // The first round runs at once: wait (bounded) for its report.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (routing.Routes().size() < Cameras().size() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  routing.Stop();  // wakes the thread from its hour-long wait at once
  routing.Stop();  // twice is harmless
  auto routes = routing.Routes();
  ASSERT_EQ(routes.size(), Cameras().size());
  for (const auto& [camera, route] : routes) {
    EXPECT_TRUE(route.pulled_here) << camera;
    EXPECT_TRUE(sources.Find(camera).has_value()) << camera;
  }
  EXPECT_EQ(app.probes(), 3);  // one round: the next was an hour away
}

}  // namespace
}  // namespace lastframe::http
