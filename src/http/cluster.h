#pragma once

// A node among its peers (issue 15, "the cluster as one service"): the node's
// id, which every answer names (X-Lastframe-Node), the peers it knows
// (--peers: URLs, or dns://HOST:PORT whose addresses are the peers), and
// GET /v1/streams for the whole cluster: each peer's own listing asked
// concurrently, off the I/O threads, within a short timeout, and merged.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "core/worker_pool.h"

namespace lastframe::aws {
class HttpClient;
}

namespace lastframe::http {

// Names the node on every answer it sends (all routes, errors, streamed
// answers, the embedded store's).
inline constexpr std::string_view kNodeHeader = "X-Lastframe-Node";
// Marks a listing asked by another node: the node answers for itself only.
// It never widens what a caller may do: the listing is still behind its key.
inline constexpr std::string_view kFanoutHeader = "X-Lastframe-Fanout";

// OK when |id| is a node id: 1 to 64 characters of [A-Za-z0-9._-];
// InvalidArgument saying why otherwise.
Status ValidateNodeId(std::string_view id);

// The machine's host name when it is a valid node id (its first label when
// only that fits), else "lastframe".
std::string DefaultNodeId();

// One entry of --peers.
struct PeerSpec {
  // http(s)://HOST[:PORT][/PREFIX], without a trailing '/': the peer's API.
  // For a dns:// entry, the entry as given.
  std::string url;
  // dns://HOST:PORT: every address HOST resolves to (A and AAAA) is a peer,
  // asked at http://ADDRESS:PORT. Empty for a URL.
  std::string dns_host;
  uint16_t dns_port = 0;
  bool operator==(const PeerSpec&) const = default;
};

// |text| as a peer: "http://10.0.0.5:8080", "https://cams-b.example/", or
// "dns://lastframe.internal:8080". InvalidArgument naming it otherwise.
Result<PeerSpec> ParsePeer(std::string_view text);

// |url| as peers are compared: scheme and host in lower case, no trailing '/'.
std::string NormalizedPeerUrl(std::string_view url);

// A client for other nodes (and the router in front of them): requests sent
// unsigned, one try each, the whole of it within |timeout|, bodies up to |max_body_bytes|.
std::unique_ptr<aws::HttpClient> UnsignedHttpClient(std::chrono::milliseconds timeout,
                                                    size_t max_body_bytes);

// What one peer answered to its fanned-out listing.
struct PeerAnswer {
  std::string url;   // the peer asked (for dns:// entries, the address's URL)
  bool ok = false;   // a 200 whose body held a "streams" array
  std::string node;  // the node it named (X-Lastframe-Node, else the body's "node")
  nlohmann::json streams = nlohmann::json::array();  // when ok
  std::string error;       // when not ok: "timeout after 1.5 s", "HTTP 401: ...", ...
  int64_t elapsed_ms = 0;  // from the start of the listing to its answer
};

// GET /v1/streams of the cluster, from this node's |own| listing (the
// streams array of its own answer) and its peers' |answers|: each stream once
// (sorted by name) with the "node" that holds it; a name held by several
// nodes is shown as the one with the newest frame (live first), the others in
// "also_on". Streams |may_view| refuses are left out, whatever a peer sent.
// "nodes" lists this node first ("self": true), then each peer asked, with
// "ok", and "error" for one that did not answer.
nlohmann::json MergeListings(const std::string& node, const std::string& url,
                             const nlohmann::json& own, const std::vector<PeerAnswer>& answers,
                             const std::function<bool(std::string_view)>& may_view);

struct ClusterOptions {
  std::string node;                         // this node's id
  std::vector<PeerSpec> peers;              // --peers
  std::vector<std::string> self_urls;       // this node's URLs: a peer named so is never asked
  std::chrono::milliseconds timeout{1500};  // --peer-timeout: the whole fan-out
  size_t threads = 8;                       // peer requests at once (each waits on the network)
  size_t max_queued = 1024;                 // past it, a peer is answered "busy" at once
  std::chrono::milliseconds dns_ttl{5000};  // how long a dns:// entry's addresses are kept
};

// The peers of this node, asked on threads of its own. Thread-safe.
class Cluster {
 public:
  // Timers and name lookups run on |ioc| (the server's): its handlers never block.
  Cluster(ClusterOptions options, boost::asio::io_context& ioc);
  ~Cluster();  // Shutdown
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const ClusterOptions& options() const { return options_; }
  // The URL this node names itself by in "nodes" (its first self URL).
  std::string self_url() const;

  // Asks each peer's GET /v1/streams at once, marked kFanoutHeader, with
  // |authorization| (the caller's header, when not empty) forwarded, and
  // calls |done| exactly once with an answer per peer asked, in --peers
  // order: when all have answered, or when the timeout has passed (those not
  // answered by then: "timeout after S s"; one that fails is named by the
  // node id it last answered with). A peer that names this node's own
  // id is this node (e.g. its address among a dns:// name's) and is left
  // out. Never blocks: |done| runs on a peer thread or an I/O thread.
  void AskPeers(std::string authorization, std::function<void(std::vector<PeerAnswer>)> done);

  // Stops taking listings and waits for the requests under way (each bounded
  // by the timeout). Idempotent.
  void Shutdown();

 private:
  struct Gather;
  void Ask(const std::shared_ptr<Gather>& gather, size_t slot, std::string url);
  void Resolve(const std::shared_ptr<Gather>& gather, size_t slot, const PeerSpec& peer);
  void Fetch(const std::shared_ptr<Gather>& gather, size_t slot, const std::string& url);

  // A dns:// entry's peers as last resolved, and when.
  struct Resolved {
    std::chrono::steady_clock::time_point at;
    std::vector<std::string> urls;
  };

  const ClusterOptions options_;
  boost::asio::io_context& ioc_;
  mutable Mutex mu_;
  std::map<std::string, Resolved> resolved_ LF_GUARDED_BY(mu_);  // by entry
  std::unique_ptr<aws::HttpClient> client_;
  // The node each peer URL last named itself, so that one that fails is
  // still named. Shared with the listings' callbacks, which may outlive this.
  struct KnownNodes;
  std::shared_ptr<KnownNodes> known_;
  WorkerPool pool_;
};

}  // namespace lastframe::http
