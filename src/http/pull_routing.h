#pragma once

// Pulled cameras in a cluster (issue 15): every node is given the same list
// of cameras (the shared config file's [[streams]]) and pulls only those that
// HAProxy routes to it. It does not compute the route itself: it asks HAProxy,
// GET ROUTE/v1/streams/NAME/node, which whatever node HAProxy sends it to
// answers with its id. So the nodes agree with HAProxy by construction,
// whatever its hash, weights or health checks say, and a camera moves when
// its node leaves HAProxy's backend (dead, or taken out) and back when it
// returns: within one probe interval of HAProxy's own decision.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "ingest/pull_source.h"

namespace lastframe::aws {
class HttpClient;
}

namespace lastframe::http {

struct PullRoutingOptions {
  // HAProxy (or any router in front of the nodes): http(s)://HOST[:PORT], no trailing '/'.
  std::string route_url;
  std::string node;                          // this node's id, as its answers name it
  std::chrono::milliseconds interval{2000};  // between rounds of probes
  std::chrono::milliseconds timeout{1000};   // one probe
};

// What a round found for one camera.
struct CameraRoute {
  std::string node;   // the node that answered its probe; empty when none did
  std::string error;  // why none did
  bool pulled_here = false;
};

class PullRouting {
 public:
  // Starts no thread: call Start, or ProbeOnce from a test.
  PullRouting(PullRoutingOptions options, std::vector<ingest::PullOptions> cameras,
              ingest::PullSources& sources);
  ~PullRouting();  // Stop
  PullRouting(const PullRouting&) = delete;
  PullRouting& operator=(const PullRouting&) = delete;

  // A round now, then one every |interval| on a thread of its own.
  void Start();
  // Ends the thread (a probe under way finishes, within its timeout).
  void Stop();
  // One round: probes every camera, starts pulling those routed here that are
  // not pulled, stops those routed elsewhere. A camera whose probe fails keeps
  // its state (HAProxy down must not stop every camera of the cluster);
  // a round whose probes all fail to connect stops at the first.
  void ProbeOnce();
  // The last round's findings, by camera.
  std::map<std::string, CameraRoute> Routes() const;

 private:
  void Loop();
  CameraRoute Probe(const std::string& camera) const;

  const PullRoutingOptions options_;
  const std::vector<ingest::PullOptions> cameras_;
  ingest::PullSources& sources_;
  std::unique_ptr<aws::HttpClient> client_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, CameraRoute> routes_;
  bool router_down_ = false;
  std::thread thread_;
};

}  // namespace lastframe::http
