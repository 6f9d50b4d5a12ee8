#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace lastframe::ingest {

// An IPv4 or IPv6 network (IPv4 kept as IPv4-mapped IPv6), e.g. 10.0.0.0/8.
struct Cidr {
  std::array<uint8_t, 16> address{};
  int prefix = 0;  // of the 128 bits
  std::string text;
  bool Contains(const std::array<uint8_t, 16>& a) const;
};
// Parses "ADDRESS/BITS" or a single address. InvalidArgument if malformed.
Result<Cidr> ParseCidr(const std::string& text);

// Which addresses a pulled source may connect to. Refused by default:
// loopback, link-local (so 169.254.169.254), unspecified, multicast,
// broadcast and the IPv6 metadata address; private ranges are allowed
// (cameras live there). --pull-allow opens ranges the default refuses;
// --pull-deny closes ranges, and wins over an allow.
class PullPolicy {
 public:
  PullPolicy() = default;
  PullPolicy(std::vector<Cidr> allow, std::vector<Cidr> deny)
      : allow_(std::move(allow)), deny_(std::move(deny)) {}

  // Ok, or PermissionDenied "PullAddressDenied" naming the address.
  Status Check(const sockaddr* address) const;
  // Resolves |url|'s host and checks every address it resolves to (no
  // connection is made). Ok for URLs without a network host (file://).
  Status CheckUrl(const std::string& url) const;

 private:
  std::vector<Cidr> allow_;
  std::vector<Cidr> deny_;
};

// While one lives, every connect(), sendto() and sendmsg() made on this
// thread (libavformat's included: redirects, RTSP's RTP peers, playlist and
// segment URLs) is checked against |policy| first, at the address actually
// used; a refused one fails with EACCES and no packet leaves. The refusal is
// kept for refusal() to say which address it was.
class ConnectGuard {
 public:
  explicit ConnectGuard(const PullPolicy& policy);
  ~ConnectGuard();
  ConnectGuard(const ConnectGuard&) = delete;
  ConnectGuard& operator=(const ConnectGuard&) = delete;
  // The first refusal on this thread while guarded: Ok if none.
  Status refusal() const;
};

}  // namespace lastframe::ingest
