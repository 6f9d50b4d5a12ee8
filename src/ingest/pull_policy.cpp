#include "ingest/pull_policy.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace lastframe::ingest {
namespace {

using Bytes = std::array<uint8_t, 16>;

// IPv4 a.b.c.d as ::ffff:a.b.c.d, so one table holds both families.
Bytes Mapped(const in_addr& v4) {
  Bytes b{};
  b[10] = b[11] = 0xff;
  std::memcpy(&b[12], &v4, 4);
  return b;
}

std::optional<Bytes> BytesOf(const sockaddr* sa) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET) return Mapped(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
  if (sa->sa_family == AF_INET6) {
    Bytes b{};
    std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return b;
  }
  return std::nullopt;  // AF_UNIX and others are not network peers
}

bool IsMapped(const Bytes& b) {
  for (int i = 0; i < 10; ++i)
    if (b[i] != 0) return false;
  return b[10] == 0xff && b[11] == 0xff;
}

std::string Text(const Bytes& b) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (IsMapped(b))
    inet_ntop(AF_INET, &b[12], buf, sizeof buf);
  else
    inet_ntop(AF_INET6, b.data(), buf, sizeof buf);
  return buf;
}

const std::vector<Cidr>& DefaultDenied() {
  static const std::vector<Cidr> denied = [] {
    std::vector<Cidr> out;
    for (const char* range :
         {"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
          "255.255.255.255/32", "100.100.100.200/32",  // Alibaba's metadata address
          "::/128", "::1/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128"}) {
      auto c = ParseCidr(range);
      if (c.ok()) out.push_back(*c);
    }
    return out;
  }();
  return denied;
}

thread_local const PullPolicy* t_policy = nullptr;
thread_local Status* t_refusal = nullptr;

// Whether this thread may send to |sa|; records the first refusal.
bool Allowed(const sockaddr* sa) {
  if (t_policy == nullptr || sa == nullptr) return true;
  Status s = t_policy->Check(sa);
  if (s.ok()) return true;
  if (t_refusal != nullptr && t_refusal->ok()) *t_refusal = s;
  return false;
}

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

bool Cidr::Contains(const Bytes& a) const {
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.data(), address.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (address[full] & mask);
}

Result<Cidr> ParseCidr(const std::string& text) {
  Cidr c;
  c.text = text;
  // inet_pton reads a C string: "10.0.0.0\0junk" would pass as 10.0.0.0 (found by fuzz/cidr).
  if (text.find('\0') != std::string::npos)
    return InvalidArgument("a CIDR range may not contain a NUL byte");
  std::string addr = text;
  std::optional<int> bits;
  if (size_t slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    const std::string n = text.substr(slash + 1);
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("'" + text + "' is not a CIDR range (ADDRESS/BITS)");
    bits = std::stoi(n);
  }
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    if (bits && *bits > 32) return InvalidArgument("'" + text + "': an IPv4 prefix is 0-32 bits");
    c.address = Mapped(v4);
    c.prefix = 96 + bits.value_or(32);
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    if (bits && *bits > 128) return InvalidArgument("'" + text + "': an IPv6 prefix is 0-128 bits");
    std::memcpy(c.address.data(), &v6, 16);
    c.prefix = bits.value_or(128);
  } else {
    return InvalidArgument("'" + text + "' is not an IP address or CIDR range");
  }
  return c;
}

Status PullPolicy::Check(const sockaddr* address) const {
  auto bytes = BytesOf(address);
  if (!bytes) return Status::Ok();
  auto denied = [&](const std::string& why) {
    return Status(Code::kPermissionDenied,
                  "the pull policy refuses " + Text(*bytes) + " (" + why +
                      "; --pull-allow and --pull-deny change the policy)",
                  Reason::kPullAddressDenied);
  };
  for (const Cidr& c : deny_)
    if (c.Contains(*bytes)) return denied("--pull-deny " + c.text);
  for (const Cidr& c : allow_)
    if (c.Contains(*bytes)) return Status::Ok();
  for (const Cidr& c : DefaultDenied())
    if (c.Contains(*bytes)) return denied("in " + c.text + ", refused by default");
  return Status::Ok();
}

Status PullPolicy::CheckUrl(const std::string& url) const {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return Status::Ok();
  if (url.compare(0, scheme_end, "file") == 0) return Status::Ok();
  size_t start = scheme_end + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = authority.rfind('@'); at != std::string::npos)
    authority = authority.substr(at + 1);
  std::string host = authority;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  if (host.empty()) return InvalidArgument("the URL names no host", Reason::kInvalidSourceUrl);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0)
    return InvalidArgument("cannot resolve '" + host + "': " + gai_strerror(rc),
                           Reason::kInvalidSourceUrl);
  Status result = Status::Ok();
  for (addrinfo* a = found; a != nullptr && result.ok(); a = a->ai_next) result = Check(a->ai_addr);
  freeaddrinfo(found);
  return result;
}

ConnectGuard::ConnectGuard(const PullPolicy& policy) {
  t_policy = &policy;
  t_refusal = new Status(Status::Ok());
}

ConnectGuard::~ConnectGuard() {
  t_policy = nullptr;
  delete t_refusal;
  t_refusal = nullptr;
}

Status ConnectGuard::refusal() const { return t_refusal ? *t_refusal : Status::Ok(); }

}  // namespace lastframe::ingest

// The process's own connect/sendto/sendmsg: libraries that open sockets
// (libavformat's tcp, udp, http, rtsp, tls) resolve to these before libc's,
// so a guarded thread is checked at the address it really uses.
extern "C" {

int connect(int fd, const sockaddr* address, socklen_t length) {
  using Fn = int (*)(int, const sockaddr*, socklen_t);
  static Fn next = lastframe::ingest::Next<Fn>("connect");
  if (!lastframe::ingest::Allowed(address)) {
    errno = EACCES;
    return -1;
  }
  return next(fd, address, length);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* address,
               socklen_t length) {
  using Fn = ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t);
  static Fn next = lastframe::ingest::Next<Fn>("sendto");
  if (!lastframe::ingest::Allowed(address)) {
    errno = EACCES;
    return -1;
  }
  return next(fd, buf, n, flags, address, length);
}

ssize_t sendmsg(int fd, const msghdr* message, int flags) {
  using Fn = ssize_t (*)(int, const msghdr*, int);
  static Fn next = lastframe::ingest::Next<Fn>("sendmsg");
  if (message != nullptr &&
      !lastframe::ingest::Allowed(static_cast<const sockaddr*>(message->msg_name))) {
    errno = EACCES;
    return -1;
  }
  return next(fd, message, flags);
}

}  // extern "C"
