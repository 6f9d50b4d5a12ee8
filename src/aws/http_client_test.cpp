#include "aws/http_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <thread>

#include "support/http_client.h"

namespace lastframe::aws {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using std::chrono::milliseconds;

// One answer of the scripted server.
struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// What the scripted server was sent.
struct Received {
  std::string method;
  std::string target;
  HeaderList headers;  // lower-case names
  std::string body;
};

// A loopback HTTP/1.1 server that answers with |script|, one reply per
// request, the last one again once the script runs out; keep-alive honoured.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<Reply> script) : script_(std::move(script)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    {
      // Wakes the blocking accept.
      asio::io_context io;
      tcp::socket wake(io);
      boost::system::error_code ec;
      wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    }
    accept_thread_.join();
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    for (auto& t : connection_threads_) t.join();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<Received> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  int connections() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(sockets_.size());
  }

 private:
  void AcceptLoop() {
    while (true) {
      auto socket = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stopping_) return;
      std::lock_guard lock(mu_);
      sockets_.push_back(socket);
      connection_threads_.emplace_back([this, socket] { Serve(*socket); });
    }
  }

  void Serve(tcp::socket& socket) {
    boost::beast::flat_buffer buffer;
    while (true) {
      bhttp::request<bhttp::string_body> req;
      boost::system::error_code ec;
      bhttp::read(socket, buffer, req, ec);
      if (ec) return;
      Reply reply;
      {
        std::lock_guard lock(mu_);
        Received r{std::string(req.method_string()), std::string(req.target()), {}, req.body()};
        for (const auto& field : req) {
          std::string name(field.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers.emplace_back(name, std::string(field.value()));
        }
        received_.push_back(std::move(r));
        reply = script_[std::min(next_++, script_.size() - 1)];
      }
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status),
                                              req.version()};
      for (const auto& [k, v] : reply.headers) res.set(k, v);
      res.body() = reply.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      bhttp::write(socket, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  const std::vector<Reply> script_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;  // guarded by mu_
  std::vector<std::thread> connection_threads_;        // guarded by mu_
  std::vector<Received> received_;                     // guarded by mu_
  size_t next_ = 0;                                    // guarded by mu_
};

// A loopback port nothing listens on.
uint16_t ClosedPort() {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

const Credentials kCredentials{"AKIDEXAMPLE", Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                               ""};
constexpr int64_t kNowMs = 1'764'000'000'000;

bool FiveHundreds(const HttpResponse& r) { return r.status >= 500; }

class HttpClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<HttpClient> Client(HttpClientOptions o,
                                     const Credentials& credentials = kCredentials) {
    return std::make_unique<HttpClient>(std::move(o), SigV4(credentials, "us-east-1", "s3", clock_),
                                        clock_);
  }
  HttpRequest Get(const ScriptedServer& server, const std::string& path = "/b/k") {
    return {.method = "GET", .url = server.url(path), .host = server.host(), .path = path};
  }
  HttpRequest GetFrom(uint16_t port) {
    return {.method = "GET",
            .url = "http://127.0.0.1:" + std::to_string(port) + "/k",
            .host = "127.0.0.1:" + std::to_string(port),
            .path = "/k"};
  }
  static HttpClientOptions Fast() {
    return {.budget = {.attempt_timeout = milliseconds(2000),
                       .deadline = milliseconds(5000),
                       .max_attempts = 3,
                       .backoff_base = milliseconds(1)},
            .retryable = FiveHundreds};
  }

  ManualClock clock_{kNowMs};
};

TEST_F(HttpClientTest, SignsWhatSigV4Verifies) {
  ScriptedServer server(
      std::vector<Reply>{{.status = 200, .body = "hello", .headers = {{"X-Thing", "  v  "}}}});
  auto client = Client(Fast(), {"AKIDEXAMPLE", kCredentials.secret_access_key, "tok/en"});
  SigV4 verifier({"AKIDEXAMPLE", kCredentials.secret_access_key, "tok/en"}, "us-east-1", "s3",
                 clock_);
  // As S3 asks: the payload hash sent, unsigned headers beside the signed ones.
  HttpRequest put{.method = "PUT",
                  .url = server.url("/b/a%20b"),
                  .host = server.host(),
                  .path = "/b/a b",
                  .headers = {{"Content-MD5", "abc"}},
                  .body = "body",
                  .send_payload_hash = true};
  auto r = client->Send(put);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  ASSERT_NE(r->Header("x-thing"), nullptr);
  EXPECT_EQ(*r->Header("x-thing"), "v");
  // As Kinesis Video asks: a signed content type, no payload hash header.
  HttpRequest post{.method = "POST",
                   .url = server.url("/describeStream"),
                   .host = server.host(),
                   .path = "/describeStream",
                   .signed_headers = {{"content-type", "application/json"}},
                   .body = "{}"};
  ASSERT_TRUE(client->Send(post).ok());

  auto got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].method, "PUT");
  EXPECT_EQ(got[0].target, "/b/a%20b");
  EXPECT_EQ(got[0].body, "body");
  EXPECT_EQ(CanonicalHeaderValue(got[0].headers, "content-md5"), "abc");
  EXPECT_EQ(CanonicalHeaderValue(got[0].headers, "x-amz-content-sha256"), Sha256Hex("body"));
  EXPECT_EQ(CanonicalHeaderValue(got[0].headers, "x-amz-security-token"), "tok/en");
  EXPECT_FALSE(CanonicalHeaderValue(got[0].headers, "expect"));
  auto verified = verifier.VerifyHeaderAuth("PUT", "/b/a b", {}, got[0].headers);
  EXPECT_TRUE(verified.ok()) << verified.status().ToString();

  EXPECT_EQ(got[1].method, "POST");
  EXPECT_EQ(got[1].body, "{}");
  EXPECT_FALSE(CanonicalHeaderValue(got[1].headers, "x-amz-content-sha256"));
  EXPECT_EQ(CanonicalHeaderValue(got[1].headers, "content-type"), "application/json");
  auto auth = CanonicalHeaderValue(got[1].headers, "authorization");
  ASSERT_TRUE(auth);
  EXPECT_NE(auth->find("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            std::string::npos)
      << *auth;
  verified =
      verifier.VerifyHeaderAuth("POST", "/describeStream", {}, got[1].headers, Sha256Hex("{}"));
  EXPECT_TRUE(verified.ok()) << verified.status().ToString();
}

TEST_F(HttpClientTest, AnUnsignedRequestCarriesItsOwnHeadersAndNoSigV4) {
  ScriptedServer server(std::vector<Reply>{{.status = 200, .body = "{}"}});
  auto client = Client(Fast(), {"AKIDEXAMPLE", kCredentials.secret_access_key, "tok/en"});
  HttpRequest get = Get(server, "/v1/streams");
  get.sign = false;
  get.headers = {{"Authorization", "Bearer lf_abc"}, {"X-Lastframe-Fanout", "1"}};
  auto r = client->Send(get);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  auto got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/v1/streams");
  // One Authorization header, the caller's; none of SigV4's.
  int authorizations = 0;
  for (const auto& [name, value] : got[0].headers) authorizations += name == "authorization";
  EXPECT_EQ(authorizations, 1);
  EXPECT_EQ(CanonicalHeaderValue(got[0].headers, "authorization"), "Bearer lf_abc");
  EXPECT_EQ(CanonicalHeaderValue(got[0].headers, "x-lastframe-fanout"), "1");
  EXPECT_FALSE(CanonicalHeaderValue(got[0].headers, "x-amz-date"));
  EXPECT_FALSE(CanonicalHeaderValue(got[0].headers, "x-amz-security-token"));
}

TEST_F(HttpClientTest, RetriesRetryableAnswersUntilOneIsNot) {
  ScriptedServer server({{.status = 503}, {.status = 500}, {.status = 200, .body = "ok"}});
  auto client = Client(Fast());
  auto r = client->Send(Get(server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(client->stats().attempts, 3u);
  EXPECT_EQ(client->stats().retries, 2u);
  EXPECT_EQ(server.received().size(), 3u);
}

TEST_F(HttpClientTest, ARequestsRetryCounterCountsItsRetriesOnly) {
  ScriptedServer server({{.status = 503}, {.status = 200}, {.status = 503}, {.status = 200}});
  auto client = Client(Fast());
  metrics::Counter retries;
  HttpRequest counted = Get(server);
  counted.retries = &retries;
  ASSERT_TRUE(client->Send(counted).ok());
  EXPECT_EQ(retries.value(), 1u);
  // Another request's retries are its own.
  ASSERT_TRUE(client->Send(Get(server)).ok());
  EXPECT_EQ(retries.value(), 1u);
  EXPECT_EQ(client->stats().retries, 2u);
}

TEST_F(HttpClientTest, AnswersNotRetryableAreReturnedAtOnce) {
  ScriptedServer server({{.status = 404, .body = "<Code>NoSuchKey</Code>"}, {.status = 200}});
  auto client = Client(Fast());
  auto r = client->Send(Get(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "<Code>NoSuchKey</Code>");
  EXPECT_EQ(client->stats().attempts, 1u);
  EXPECT_EQ(client->stats().retries, 0u);
}

TEST_F(HttpClientTest, WithoutARetryPredicateNoAnswerIsRetried) {
  ScriptedServer server({{.status = 503}, {.status = 200}});
  HttpClientOptions o = Fast();
  o.retryable = nullptr;
  auto client = Client(o);
  auto r = client->Send(Get(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(client->stats().attempts, 1u);
}

TEST_F(HttpClientTest, StopsAfterMaxAttemptsWithTheLastAnswer) {
  ScriptedServer server({{.status = 502, .body = "first"}, {.status = 503, .body = "again"}});
  auto client = Client(Fast());
  auto r = client->Send(Get(server));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "again");
  EXPECT_EQ(client->stats().attempts, 3u);
  EXPECT_EQ(client->stats().retries, 2u);
}

TEST_F(HttpClientTest, ARefusedConnectionIsRetriedThenUnavailable) {
  auto client = Client(Fast());
  auto r = client->Send(GetFrom(ClosedPort()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_FALSE(r.status().message().empty());
  EXPECT_EQ(client->stats().attempts, 3u);
  EXPECT_EQ(client->stats().retries, 2u);
}

TEST_F(HttpClientTest, ASilentServerTimesOutAndIsRetriedWithinTheDeadline) {
  testing::SilentListener silent;
  HttpClientOptions o = Fast();
  o.budget.attempt_timeout = milliseconds(200);
  o.budget.deadline = milliseconds(700);
  o.budget.max_attempts = 10;
  auto client = Client(o);
  auto start = std::chrono::steady_clock::now();
  auto r = client->Send(GetFrom(silent.port()));
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_GE(client->stats().attempts, 2u);
  EXPECT_LE(client->stats().attempts, 4u);
  EXPECT_LT(waited, milliseconds(2000));
}

TEST_F(HttpClientTest, ARequestsTimeoutBoundsItsCallBelowTheClientsDeadline) {
  testing::SilentListener silent;
  HttpClientOptions o = Fast();  // 2 s a try, 5 s in all
  auto client = Client(o);
  HttpRequest get = GetFrom(silent.port());
  get.timeout = milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto r = client->Send(get);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(1500));
}

TEST_F(HttpClientTest, BackoffNeverOutlastsTheDeadline) {
  ScriptedServer server(std::vector<Reply>{{.status = 503}});
  HttpClientOptions o = Fast();
  o.budget.backoff_base = milliseconds(10'000);  // waits drawn from [0, 10 s), [0, 20 s), ...
  o.budget.deadline = milliseconds(300);
  o.budget.max_attempts = 5;
  auto client = Client(o);
  auto start = std::chrono::steady_clock::now();
  auto r = client->Send(Get(server));
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_LT(waited, milliseconds(1500));
}

TEST_F(HttpClientTest, NoTimeForATryIsATimeout) {
  HttpClientOptions o = Fast();
  o.budget.deadline = milliseconds(0);
  auto client = Client(o);
  auto r = client->Send(GetFrom(ClosedPort()));
  EXPECT_EQ(r.status().code(), Code::kTimeout);
  EXPECT_EQ(client->stats().attempts, 0u);
}

TEST(BackoffCap, DoublesEachTryUpToTenDoublings) {
  EXPECT_EQ(BackoffCap(milliseconds(100), 0), milliseconds(100));
  EXPECT_EQ(BackoffCap(milliseconds(100), 1), milliseconds(200));
  EXPECT_EQ(BackoffCap(milliseconds(100), 3), milliseconds(800));
  EXPECT_EQ(BackoffCap(milliseconds(100), 10), milliseconds(102'400));
  EXPECT_EQ(BackoffCap(milliseconds(100), 40), milliseconds(102'400));
}

TEST_F(HttpClientTest, ConnectionsAreKeptOnlyWhenAsked) {
  for (bool reuse : {true, false}) {
    ScriptedServer server(std::vector<Reply>{{.status = 200}});
    HttpClientOptions o = Fast();
    o.reuse_connections = reuse;
    {
      auto client = Client(o);
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(client->Send(Get(server)).ok());
    }
    EXPECT_EQ(server.received().size(), 3u);
    EXPECT_EQ(server.connections(), reuse ? 1 : 3) << reuse;
  }
}

TEST_F(HttpClientTest, ABodyOverItsBoundFails) {
  ScriptedServer server(std::vector<Reply>{{.status = 200, .body = std::string(100, 'x')}});
  HttpClientOptions o = Fast();
  o.max_body_bytes = 10;
  o.budget.max_attempts = 1;
  auto client = Client(o);
  auto r = client->Send(Get(server));
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
}

TEST_F(HttpClientTest, StreamsA200AndKeepsAnErrorsBody) {
  ScriptedServer server({{.status = 200, .body = "abcdef"},
                         {.status = 500, .body = "oops", .headers = {{"X-Amzn-ErrorType", "E"}}},
                         {.status = 200, .body = "abcdef"}});
  auto client = Client(Fast());
  std::atomic<bool> stop{false};
  std::string streamed;
  auto keep = [&](const char* data, size_t size) {
    streamed.append(data, size);
    return true;
  };
  auto r = client->Stream(Get(server), keep, stop);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->stopped);
  EXPECT_EQ(streamed, "abcdef");
  EXPECT_TRUE(r->body.empty());

  streamed.clear();
  r = client->Stream(Get(server), keep, stop);  // not retried
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "oops");
  EXPECT_EQ(*r->Header("x-amzn-errortype"), "E");
  EXPECT_TRUE(streamed.empty());
  EXPECT_EQ(client->stats().retries, 0u);

  r = client->Stream(
      Get(server), [](const char*, size_t) { return false; }, stop);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->status, 200);

  stop = true;
  r = client->Stream(Get(server), keep, stop);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stopped);
}

}  // namespace
}  // namespace lastframe::aws
