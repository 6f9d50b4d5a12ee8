#include "support/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace lastframe::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::mutex bearer_mu;
std::map<uint16_t, std::string> bearers;  // guarded by bearer_mu

std::string DefaultBearer(uint16_t port, const std::string& target) {
  if (target.rfind("/v1/", 0) != 0 && target.rfind("/snapshot", 0) != 0 &&
      target.rfind("/metrics", 0) != 0)
    return "";
  std::lock_guard lock(bearer_mu);
  auto it = bearers.find(port);
  return it == bearers.end() ? "" : it->second;
}

}  // namespace

void SetDefaultBearer(uint16_t port, const std::string& token) {
  std::lock_guard lock(bearer_mu);
  if (token.empty())
    bearers.erase(port);
  else
    bearers[port] = token;
}

HttpResult HttpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, const std::map<std::string, std::string>& headers) {
  HttpResult result;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(60));
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  if (Await(ioc, [&](auto done) { stream.async_connect(endpoint, done); })) return result;
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  bool named = false;
  for (const auto& [k, v] : headers) {
    req.set(k, v);
    named = named || boost::iequals(k, "authorization");
  }
  if (!named)
    if (std::string token = DefaultBearer(port, target); !token.empty())
      req.set(http::field::authorization, "Bearer " + token);
  req.body() = body;
  if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
  if (Await(ioc, [&](auto done) { http::async_write(stream, req, done); })) return result;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  parser.skip(method == "HEAD");  // a HEAD answer has a Content-Length but no body
  beast::error_code ec =
      Await(ioc, [&](auto done) { http::async_read(stream, buffer, parser, done); });
  if (ec && ec != http::error::end_of_stream) return result;
  auto& res = parser.get();
  result.status = res.result_int();
  result.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    result.headers[name] = std::string(field.value());
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return result;
}

SilentListener::SilentListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd_, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

bool SilentListener::ConnectionArrived() const {
  pollfd p{.fd = fd_, .events = POLLIN};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

SilentListener::~SilentListener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string RawExchange(uint16_t port, const std::string& raw, bool keep_sending_side_open) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(10));
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  if (Await(ioc, [&](auto done) { stream.async_connect(endpoint, done); })) return "";
  Await(ioc, [&](auto done) { net::async_write(stream, net::buffer(raw), done); });
  if (!keep_sending_side_open) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = 0;
    ec = Await(ioc, [&](auto done) {
      stream.async_read_some(net::buffer(buf), [&n, done](beast::error_code e, size_t got) mutable {
        n = got;
        done(e);
      });
    });
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

bool ThisProcessListensOn(uint16_t port) {
  // The sockets listening on |port| (state 0A in /proc/net/tcp), by inode.
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      size_t colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inodes.insert(inode);
    }
  }
  // Whether one of them is open here.
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string link = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && link.rfind("socket:[", 0) == 0 && inodes.count(link.substr(8, link.size() - 9)) != 0)
      return true;
  }
  return false;
}

void SplitUrl(const std::string& url, uint16_t* port, std::string* target) {
  const std::string prefix = "http://127.0.0.1:";
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  size_t slash = url.find('/', prefix.size());
  ASSERT_NE(slash, std::string::npos) << url;
  *port = static_cast<uint16_t>(std::stoi(url.substr(prefix.size(), slash - prefix.size())));
  *target = url.substr(slash);
}

}  // namespace lastframe::testing
