#pragma once

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

// "http://127.0.0.1:8080/a/b?c" -> port 8080, target "/a/b?c". Fails the test
// on other shapes.
void SplitUrl(const std::string& url, uint16_t* port, std::string* target);

}  // namespace lastframe::testing
