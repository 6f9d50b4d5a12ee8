#include "http/pull_routing.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "aws/http_client.h"
#include "http/cluster.h"

namespace lastframe::http {

PullRouting::PullRouting(PullRoutingOptions options, std::vector<ingest::PullOptions> cameras,
                         ingest::PullSources& sources)
    : options_(std::move(options)),
      cameras_(std::move(cameras)),
      sources_(sources),
      client_(UnsignedHttpClient(options_.timeout, 64u << 10)) {}

PullRouting::~PullRouting() { Stop(); }

void PullRouting::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void PullRouting::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PullRouting::Loop() {
  for (;;) {
    ProbeOnce();
    std::unique_lock lock(mu_);
    // A periodic timer, woken early only to stop.
    if (wake_.wait_for(lock, options_.interval, [this] { return stopping_; })) return;
  }
}

CameraRoute PullRouting::Probe(const std::string& camera) const {
  CameraRoute route;
  aws::HttpRequest request;
  request.method = "GET";
  // Stream names are [a-zA-Z0-9_.-]: nothing to encode.
  request.path = "/v1/streams/" + camera + "/node";
  request.url = options_.route_url + request.path;
  request.sign = false;
  request.headers = {{"Accept", "application/json"}};
  auto r = client_->Send(request);
  if (!r.ok()) {
    route.error = "unreachable: " + r.status().message();
    return route;
  }
  const std::string* node = r->Header("x-lastframe-node");
  if (r->status != 200 || node == nullptr || node->empty()) {
    route.error = "HTTP " + std::to_string(r->status) + (node ? "" : " without a node header");
    return route;
  }
  route.node = *node;
  return route;
}

void PullRouting::ProbeOnce() {
  std::map<std::string, CameraRoute> found;
  bool router_down = false;
  for (const auto& camera : cameras_) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    CameraRoute route;
    if (router_down) {
      route.error = "not probed: the router did not answer";
    } else {
      route = Probe(camera.stream);
      router_down = route.node.empty() && route.error.starts_with("unreachable");
    }
    const bool pulled = sources_.Find(camera.stream).has_value();
    route.pulled_here = pulled;
    if (!route.node.empty()) {
      if (route.node == options_.node && !pulled) {
        Status st = sources_.Add(camera, /*configured=*/true);
        if (st.ok()) {
          route.pulled_here = true;
          spdlog::info("pull routing: camera '{}' routes to this node: pulling it", camera.stream);
        } else {
          spdlog::warn("pull routing: camera '{}' routes to this node but cannot be pulled: {}",
                       camera.stream, st.ToString());
          route.error = st.ToString();
        }
      } else if (route.node != options_.node && pulled) {
        (void)sources_.Remove(camera.stream);
        route.pulled_here = false;
        spdlog::info("pull routing: camera '{}' routes to node '{}': no longer pulled here",
                     camera.stream, route.node);
      }
    }
    found[camera.stream] = std::move(route);
  }
  std::lock_guard lock(mu_);
  // Said once when the router stops answering, and once when it answers again.
  if (router_down && !router_down_)
    spdlog::warn("pull routing: {} does not answer: cameras keep their current node",
                 options_.route_url);
  if (!router_down && router_down_)
    spdlog::info("pull routing: {} answers again", options_.route_url);
  router_down_ = router_down;
  routes_ = std::move(found);
}

std::map<std::string, CameraRoute> PullRouting::Routes() const {
  std::lock_guard lock(mu_);
  return routes_;
}

}  // namespace lastframe::http
