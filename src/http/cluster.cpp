#include "http/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "aws/http_client.h"
#include "core/clock.h"

namespace lastframe::http {

namespace asio = boost::asio;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxNodeId = 64;
constexpr std::string_view kStreamsPath = "/v1/streams";

bool NodeIdChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "1.5", "2", "0.05": seconds as a person reads them.
std::string SecondsText(std::chrono::milliseconds ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ms.count()) / 1000);
  std::string s = text;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

int64_t MsSince(Steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - start).count();
}

// What a peer's error answer says, briefly: its JSON "message", or the start of its body.
std::string ErrorText(const aws::HttpResponse& r) {
  std::string what;
  json body = json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("message") && body["message"].is_string())
    what = body["message"].get<std::string>();
  else
    what = r.body.substr(0, 200);
  return "HTTP " + std::to_string(r.status) + (what.empty() ? "" : ": " + what);
}

}  // namespace

Status ValidateNodeId(std::string_view id) {
  if (id.empty() || id.size() > kMaxNodeId || !std::all_of(id.begin(), id.end(), NodeIdChar))
    return InvalidArgument(
        "a node id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', "
        "got '" +
        std::string(id.substr(0, 80)) + "'");
  return Status::Ok();
}

std::string DefaultNodeId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "lastframe";
  std::string name = host;
  if (ValidateNodeId(name).ok()) return name;
  name = name.substr(0, name.find('.'));  // a long fully qualified name: its first label
  return ValidateNodeId(name).ok() ? name : "lastframe";
}

std::string NormalizedPeerUrl(std::string_view url) {
  std::string out(url);
  while (!out.empty() && out.back() == '/') out.pop_back();
  size_t scheme_end = out.find("://");
  if (scheme_end == std::string::npos) return out;
  size_t host_end = out.find('/', scheme_end + 3);
  if (host_end == std::string::npos) host_end = out.size();
  return Lower(std::string_view(out).substr(0, host_end)) + out.substr(host_end);
}

Result<PeerSpec> ParsePeer(std::string_view text) {
  auto refuse = [&](const std::string& why) -> Result<PeerSpec> {
    return InvalidArgument("--peers: '" + std::string(text) + "' " + why);
  };
  const std::string lower = Lower(text);
  for (char c : text)
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c)))
      return refuse("holds a space or a control character");
  PeerSpec peer;
  if (lower.rfind("dns://", 0) == 0) {
    std::string_view rest = text.substr(6);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return refuse("must be dns://HOST:PORT (the port every address serves on)");
    std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
    if (host.find_first_of("/?#@[]") != std::string_view::npos)
      return refuse("must be dns://HOST:PORT with a host name");
    int p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535)
        return refuse("must be dns://HOST:PORT with a port from 1 to 65535");
      p = p * 10 + (c - '0');
    }
    if (port.empty() || p < 1 || p > 65535)
      return refuse("must be dns://HOST:PORT with a port from 1 to 65535");
    peer.url = std::string(text);
    peer.dns_host = std::string(host);
    peer.dns_port = static_cast<uint16_t>(p);
    return peer;
  }
  size_t host_at = lower.rfind("http://", 0) == 0    ? 7
                   : lower.rfind("https://", 0) == 0 ? 8
                                                     : std::string::npos;
  if (host_at == std::string::npos)
    return refuse("must be http(s)://HOST[:PORT] (a node's URL) or dns://HOST:PORT");
  std::string_view authority = text.substr(host_at);
  authority = authority.substr(0, authority.find('/'));
  std::string url = NormalizedPeerUrl(text);
  if (authority.empty() || authority.front() == ':') return refuse("names no host");
  if (url.find_first_of("?#") != std::string::npos || authority.find('@') != std::string::npos)
    return refuse("must be a base URL, without credentials, query or fragment");
  peer.url = std::move(url);
  return peer;
}

json MergeListings(const std::string& node, const std::string& url, const json& own,
                   const std::vector<PeerAnswer>& answers,
                   const std::function<bool(std::string_view)>& may_view) {
  // Each name's entries, this node's first, then the peers' in order.
  std::map<std::string, std::vector<json>> by_name;
  auto take = [&](const json& streams, const std::string& holder) {
    if (!streams.is_array()) return;
    for (const json& s : streams) {
      if (!s.is_object() || !s.contains("name") || !s["name"].is_string()) continue;
      const std::string name = s["name"].get<std::string>();
      if (!may_view(name)) continue;
      json entry = s;
      entry["node"] = holder;
      entry.erase("also_on");
      by_name[name].push_back(std::move(entry));
    }
  };
  take(own, node);
  json nodes = json::array();
  nodes.push_back({{"node", node},
                   {"url", url},
                   {"ok", true},
                   {"self", true},
                   {"streams", own.is_array() ? own.size() : 0}});
  for (const PeerAnswer& a : answers) {
    json n = {{"node", a.node.empty() ? json(nullptr) : json(a.node)},
              {"url", a.url},
              {"ok", a.ok},
              {"ms", a.elapsed_ms}};
    if (a.ok) {
      n["streams"] = a.streams.is_array() ? a.streams.size() : 0;
      // Held by the node that answered; one that named no node is named by its URL.
      take(a.streams, a.node.empty() ? a.url : a.node);
    } else {
      n["error"] = a.error;
    }
    nodes.push_back(std::move(n));
  }
  // The entry a name is shown as: live before anything else, then the newest
  // frame (ISO 8601 times in one format compare as strings), then the first.
  auto rank = [](const json& e) {
    bool live = e.contains("state") && e["state"] == "live";
    std::string last = e.contains("last_frame_time") && e["last_frame_time"].is_string()
                           ? e["last_frame_time"]
                           : "";
    return std::make_pair(live, last);
  };
  json streams = json::array();
  for (auto& [name, entries] : by_name) {
    size_t best = 0;
    for (size_t i = 1; i < entries.size(); ++i)
      if (rank(entries[i]) > rank(entries[best])) best = i;
    json shown = std::move(entries[best]);
    if (entries.size() > 1) {
      json also = json::array();
      for (size_t i = 0; i < entries.size(); ++i)
        if (i != best) also.push_back(entries[i]["node"]);
      shown["also_on"] = std::move(also);
    }
    streams.push_back(std::move(shown));
  }
  return {{"node", node}, {"streams", std::move(streams)}, {"nodes", std::move(nodes)}};
}

// One listing's fan-out: a slot per peer asked (a dns:// entry's slot stands
// for its addresses until they are known), finished once, when nothing is
// pending or at the deadline, whichever comes first. Holds no reference to
// the Cluster: a timer may outlive it.
struct Cluster::Gather {
  struct Slot {
    PeerAnswer answer;
    std::pair<size_t, size_t> order;  // (--peers entry, address of a dns:// entry)
    bool done = false;
    bool drop = false;       // a resolved dns:// entry's slot, or this node itself
    bool resolving = false;  // a dns:// entry's slot
  };

  explicit Gather(asio::io_context& ioc) : timer(ioc) {}

  // Records |answer| for |slot|; the last one pending finishes the listing.
  void Answer(size_t slot, PeerAnswer answer) {
    {
      MutexLock lock(mu);
      if (finished) return;
      Slot& s = slots[slot];
      s.done = true;
      // A node whose own id comes back is this node (an address of a dns:// name).
      s.drop = answer.ok && answer.node == node;
      s.answer = std::move(answer);
      if (--pending > 0) return;
    }
    Finish();
  }

  // Replaces dns:// |slot| by a slot per address in |urls|; returns the new slots' numbers.
  std::vector<size_t> Expand(size_t slot, const std::vector<std::string>& urls) {
    std::vector<size_t> added;
    {
      MutexLock lock(mu);
      if (finished) return added;
      slots[slot].drop = true;
      slots[slot].done = true;
      for (size_t i = 0; i < urls.size(); ++i) {
        Slot s;
        s.answer.url = urls[i];
        s.order = {slots[slot].order.first, i};
        added.push_back(slots.size());
        slots.push_back(std::move(s));
      }
      pending += added.size();
      if (--pending > 0) return added;
    }
    Finish();
    return {};
  }

  bool finished_now() {
    MutexLock lock(mu);
    return finished;
  }

  // Calls |done| with every slot's answer, a timeout for those without one. Once.
  void Finish() {
    std::vector<PeerAnswer> out;
    {
      MutexLock lock(mu);
      if (finished) return;
      finished = true;
      std::vector<const Slot*> shown;
      for (const Slot& s : slots)
        if (!s.drop) shown.push_back(&s);
      std::stable_sort(shown.begin(), shown.end(),
                       [](const Slot* a, const Slot* b) { return a->order < b->order; });
      for (const Slot* s : shown) {
        PeerAnswer a = s->answer;
        if (!s->done) {
          a.ok = false;
          a.error = "timeout after " + timeout_text + " s" +
                    (s->resolving ? " (resolving its name)" : "");
          a.elapsed_ms = MsSince(start);
        }
        out.push_back(std::move(a));
      }
    }
    auto call = std::move(done);
    call(std::move(out));
  }

  Mutex mu;
  std::vector<Slot> slots LF_GUARDED_BY(mu);
  size_t pending LF_GUARDED_BY(mu) = 0;
  bool finished LF_GUARDED_BY(mu) = false;
  // Set before any other thread sees the gather; |done| is moved out by the one Finish.
  std::string node;
  std::string authorization;
  std::string timeout_text;
  Steady::time_point start;
  Steady::time_point deadline;
  std::function<void(std::vector<PeerAnswer>)> done;
  asio::steady_timer timer;
};

struct Cluster::KnownNodes {
  Mutex mu;
  std::map<std::string, std::string> by_url LF_GUARDED_BY(mu);
};

std::unique_ptr<aws::HttpClient> UnsignedHttpClient(std::chrono::milliseconds timeout,
                                                    size_t max_body_bytes) {
  // HttpClient wants a signer; with HttpRequest::sign false it never signs.
  aws::SigV4 no_signer(aws::Credentials{}, "none", "none", SystemClock::Get());
  return std::make_unique<aws::HttpClient>(
      aws::HttpClientOptions{.budget = {.connect_timeout = timeout,
                                        .attempt_timeout = timeout,
                                        .deadline = timeout,
                                        .max_attempts = 1},
                             .max_body_bytes = max_body_bytes},
      std::move(no_signer), SystemClock::Get());
}

Cluster::Cluster(ClusterOptions options, asio::io_context& ioc)
    : options_(std::move(options)),
      ioc_(ioc),
      client_(UnsignedHttpClient(options_.timeout, 64u << 20)),
      known_(std::make_shared<KnownNodes>()),
      pool_(std::max<size_t>(1, options_.threads), options_.max_queued) {}

Cluster::~Cluster() { Shutdown(); }

void Cluster::Shutdown() { pool_.Shutdown(); }

std::string Cluster::self_url() const {
  return options_.self_urls.empty() ? "" : options_.self_urls.front();
}

void Cluster::AskPeers(std::string authorization,
                       std::function<void(std::vector<PeerAnswer>)> done) {
  auto gather = std::make_shared<Gather>(ioc_);
  gather->node = options_.node;
  gather->authorization = std::move(authorization);
  gather->timeout_text = SecondsText(options_.timeout);
  gather->start = Steady::now();
  gather->deadline = gather->start + options_.timeout;
  gather->done = [known = known_, done = std::move(done)](std::vector<PeerAnswer> answers) {
    {
      MutexLock lock(known->mu);
      for (PeerAnswer& a : answers) {
        if (a.ok && !a.node.empty())
          known->by_url[a.url] = a.node;
        else if (auto it = known->by_url.find(a.url); a.node.empty() && it != known->by_url.end())
          a.node = it->second;
      }
    }
    done(std::move(answers));
  };
  std::set<std::string> self;
  for (const std::string& u : options_.self_urls) self.insert(NormalizedPeerUrl(u));
  std::vector<std::pair<size_t, const PeerSpec*>> to_ask;
  {
    MutexLock lock(gather->mu);
    for (size_t i = 0; i < options_.peers.size(); ++i) {
      const PeerSpec& peer = options_.peers[i];
      if (peer.dns_host.empty() && self.contains(peer.url)) continue;  // this node
      Gather::Slot slot;
      slot.answer.url = peer.url;
      slot.order = {i, 0};
      slot.resolving = !peer.dns_host.empty();
      to_ask.emplace_back(gather->slots.size(), &peer);
      gather->slots.push_back(std::move(slot));
    }
    gather->pending = to_ask.size();
  }
  if (to_ask.empty()) return gather->Finish();
  // The deadline first: whatever happens to the requests, the listing answers by then.
  gather->timer.expires_at(gather->deadline);
  gather->timer.async_wait([gather](const boost::system::error_code& ec) {
    if (!ec) gather->Finish();
  });
  for (const auto& [slot, peer] : to_ask) {
    if (peer->dns_host.empty())
      Ask(gather, slot, peer->url);
    else
      Resolve(gather, slot, *peer);
  }
}

void Cluster::Ask(const std::shared_ptr<Gather>& gather, size_t slot, std::string url) {
  bool queued = pool_.TryPost([this, gather, slot, url] { Fetch(gather, slot, url); });
  if (!queued) {
    PeerAnswer a;
    a.url = std::move(url);
    a.error = "not asked: this node has too many peer requests under way";
    a.elapsed_ms = MsSince(gather->start);
    gather->Answer(slot, std::move(a));
  }
}

void Cluster::Resolve(const std::shared_ptr<Gather>& gather, size_t slot, const PeerSpec& peer) {
  auto expand = [this, gather, slot](const std::vector<std::string>& urls) {
    std::set<std::string> self;
    for (const std::string& u : options_.self_urls) self.insert(NormalizedPeerUrl(u));
    std::vector<std::string> others;
    for (const std::string& u : urls)
      if (!self.contains(u)) others.push_back(u);
    std::vector<size_t> added = gather->Expand(slot, others);
    for (size_t i = 0; i < added.size(); ++i) Ask(gather, added[i], others[i]);
  };
  std::vector<std::string> cached_urls;
  bool fresh = false;
  {
    MutexLock lock(mu_);
    auto cached = resolved_.find(peer.url);
    if (cached != resolved_.end() && Steady::now() - cached->second.at < options_.dns_ttl) {
      cached_urls = cached->second.urls;
      fresh = true;
    }
  }
  if (fresh) return expand(cached_urls);
  // Asio resolves on a thread of its own; the handler runs on an I/O thread.
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(ioc_);
  resolver->async_resolve(
      peer.dns_host, std::to_string(peer.dns_port),
      [this, resolver, gather, slot, peer, expand](const boost::system::error_code& ec,
                                                   asio::ip::tcp::resolver::results_type results) {
        if (ec) {
          PeerAnswer a;
          a.url = peer.url;
          a.error = "cannot resolve " + peer.dns_host + ": " + ec.message();
          a.elapsed_ms = MsSince(gather->start);
          return gather->Answer(slot, std::move(a));
        }
        std::vector<std::string> urls;
        for (const auto& entry : results) {
          const asio::ip::address address = entry.endpoint().address();
          std::string host =
              address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
          std::string url = "http://" + host + ":" + std::to_string(peer.dns_port);
          if (std::find(urls.begin(), urls.end(), url) == urls.end()) urls.push_back(url);
        }
        {
          MutexLock lock(mu_);
          resolved_[peer.url] = Resolved{Steady::now(), urls};
        }
        expand(urls);
      });
}

void Cluster::Fetch(const std::shared_ptr<Gather>& gather, size_t slot, const std::string& url) {
  PeerAnswer a;
  a.url = url;
  if (gather->finished_now()) return;  // answered already: the deadline passed
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(gather->deadline - Steady::now());
  if (left.count() <= 0) {
    a.error = "timeout after " + gather->timeout_text + " s";
    a.elapsed_ms = MsSince(gather->start);
    return gather->Answer(slot, std::move(a));
  }
  aws::HttpRequest request;
  request.method = "GET";
  request.url = url + std::string(kStreamsPath);
  request.path = std::string(kStreamsPath);
  request.sign = false;
  request.timeout = left;
  request.headers = {{std::string(kFanoutHeader), "1"}, {"Accept", "application/json"}};
  if (!gather->authorization.empty())
    request.headers.emplace_back("Authorization", gather->authorization);
  auto r = client_->Send(request);
  a.elapsed_ms = MsSince(gather->start);
  if (!r.ok()) {
    a.error = r.status().code() == Code::kTimeout ? "timeout after " + gather->timeout_text + " s"
                                                  : "unreachable: " + r.status().message();
    return gather->Answer(slot, std::move(a));
  }
  if (const std::string* node = r->Header("x-lastframe-node")) a.node = *node;
  if (r->status != 200) {
    a.error = ErrorText(*r);
    return gather->Answer(slot, std::move(a));
  }
  json body = json::parse(r->body, nullptr, false);
  if (!body.is_object() || !body.contains("streams") || !body["streams"].is_array()) {
    a.error = "not a listing: the answer holds no \"streams\" array";
    return gather->Answer(slot, std::move(a));
  }
  if (a.node.empty() && body.contains("node") && body["node"].is_string())
    a.node = body["node"].get<std::string>();
  a.ok = true;
  a.streams = std::move(body["streams"]);
  gather->Answer(slot, std::move(a));
}

}  // namespace lastframe::http
