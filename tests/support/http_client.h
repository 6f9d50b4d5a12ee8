#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <map>
#include <string>

namespace lastframe::testing {

struct HttpResult {
  int status = 0;  // 0: no answer (connection failed or closed)
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// The credentials the tests' requests to the server on |port| carry when they
// name none themselves ("Authorization" absent from |headers|): a bearer
// |token| on lastframe's own routes (/v1/..., /snapshot, /metrics), never on
// object URLs or S3 and Kinesis Video calls (they sign with SigV4), nor on
// /putMedia (producers that cannot send a header push unsigned). An empty
// token forgets the port's. LastframeServer registers an admin key here.
void SetDefaultBearer(uint16_t port, const std::string& token);

// Runs one asynchronous operation to its end on |ioc| and returns its error:
// Await(ioc, [&](auto done) { stream.async_connect(endpoint, done); }).
// Sync Beast calls ignore the stream's expiry: a peer that accepts and never
// answers (another process may own a port a test's server let go of) would
// hang the test. Async ones end at the expiry with beast::error::timeout.
template <typename Start>
boost::system::error_code Await(boost::asio::io_context& ioc, Start start) {
  boost::system::error_code result = boost::asio::error::would_block;
  start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// One HTTP/1.1 request over a fresh loopback connection (Boost.Beast, sync).
HttpResult HttpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {});
inline HttpResult HttpGet(uint16_t port, const std::string& target) {
  return HttpRequest(port, "GET", target);
}

// Sends |raw| bytes as they are and returns everything the server sends back
// until it closes the connection (or 10 s pass). The sending side is shut
// after |raw| unless |keep_sending_side_open| (a client that goes silent).
std::string RawExchange(uint16_t port, const std::string& raw, bool keep_sending_side_open = false);

// A loopback TCP listener that never accepts or answers (the kernel still
// completes the handshake): a peer that hangs, for timeout tests.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  uint16_t port() const { return port_; }
  // Whether any connection reached it (one is waiting in its backlog).
  bool ConnectionArrived() const;

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Whether this process holds a socket listening on loopback |port|. Once a
// server has let a port go, any process on the machine may take it: asking
// the port itself would ask whoever holds it now.
bool ThisProcessListensOn(uint16_t port);

// "http://127.0.0.1:8080/a/b?c" -> port 8080, target "/a/b?c". Fails the test
// on other shapes.
void SplitUrl(const std::string& url, uint16_t* port, std::string* target);

}  // namespace lastframe::testing
