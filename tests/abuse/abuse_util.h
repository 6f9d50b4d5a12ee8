#pragma once

// What every abuse test checks after its attack: the server answers /healthz,
// another stream still gives its true newest frame, memory and threads stay
// within bounds, and the log grew by a bounded amount.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "e2e/e2e_util.h"

namespace lastframe::testing {

// What /proc says of a process.
struct ProcStats {
  uint64_t rss_bytes = 0;
  int threads = 0;
  uint64_t cpu_ticks = 0;  // user + system, in clock ticks
  int open_fds = 0;
};

inline ProcStats StatsOf(pid_t pid) {
  ProcStats out;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) out.rss_bytes = std::stoull(line.substr(6)) * 1024;
    if (line.rfind("Threads:", 0) == 0) out.threads = std::stoi(line.substr(8));
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i == 14 || i == 15) out.cpu_ticks += std::stoull(field);
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++out.open_fds;
  return out;
}

// A raw loopback TCP connection (blocking), optionally from another local address.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, const char* from = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (from != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, from, &local.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{10, 0};  // no read or write in these tests waits longer
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Whatever arrives until the peer closes, |limit| bytes, or 10 s of silence.
  std::string ReadUntilClosed(size_t limit = 1 << 20) {
    std::string out;
    char buf[16384];
    while (out.size() < limit) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // One HTTP/1.1 response to a request already sent (Content-Length bodies only).
  std::string ReadResponse() {
    std::string out;
    char buf[16384];
    for (;;) {
      size_t head = out.find("\r\n\r\n");
      if (head != std::string::npos) {
        size_t length = 0;
        size_t at = out.find("Content-Length: ");
        if (at != std::string::npos && at < head) length = std::stoul(out.substr(at + 16));
        if (out.size() >= head + 4 + length) return out;
      }
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // A keep-alive GET on this connection; the whole response.
  std::string Get(const std::string& target, const std::string& extra_headers = "") {
    if (!Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra_headers + "\r\n")) return "";
    return ReadResponse();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// A value of /metrics' lastframe_limit_* family for one limit, or -1 if absent.
inline double LimitMetric(uint16_t port, const std::string& family, const std::string& limit) {
  HttpResult r = HttpGet(port, "/metrics");
  std::string prefix = "\n" + family + "{limit=\"" + limit + "\"";
  size_t at = r.body.find(prefix);
  if (r.status != 200 || at == std::string::npos) return -1;
  size_t value = r.body.find("} ", at);
  return std::stod(r.body.substr(value + 2));
}

// "POST" with |body| as one chunk of a chunked body (the terminator not sent).
inline std::string Chunk(const std::string& bytes) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
  return size + bytes + "\r\n";
}

// The bytes of a Matroska file up to its first Cluster: the header a demuxer opens on.
inline std::string MatroskaHead(const std::string& file) {
  size_t cluster = file.find(std::string("\x1F\x43\xB6\x75", 4));
  EXPECT_NE(cluster, std::string::npos);
  return file.substr(0, cluster);
}

inline int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

// A server under attack, with a witness stream pushed before the attack whose
// newest frame is known (ffmpeg's decode of the clip's last frame).
class AbuseTest : public ::testing::Test {
 protected:
  // Starts the server with TestServerArgs() (its retention |retention_s|) plus
  // |args|, run by |launcher|.
  void Start(const std::vector<std::string>& args = {},
             const std::vector<std::string>& launcher = {}, int retention_s = 600) {
    std::vector<std::string> all = TestServerArgs();
    for (size_t i = 0; i + 1 < all.size(); ++i)
      if (all[i] == "--retention") all[i + 1] = std::to_string(retention_s);
    all.insert(all.end(), args.begin(), args.end());
    server_ = std::make_unique<LastframeServer>(dir_.file("data"), all, launcher);
    witness_clip_ = TestClip(dir_, "witness.mkv", 160, 120, 10, 2, 10);
    // Created with a retention of its own: it outlives whatever the test sets.
    HttpResult created =
        HttpRequest(port(), "POST", "/v1/streams", R"({"name":"witness","retention_s":3600})");
    ASSERT_EQ(created.status, 201) << created.body;
    HttpResult pushed = PushOneShot(port(), "witness", ReadFile(witness_clip_));
    ASSERT_EQ(pushed.status, 200) << pushed.body;
    ASSERT_NE(pushed.body.find("PERSISTED"), std::string::npos) << pushed.body;
    witness_last_ = DecodeAllFramesWithFfmpeg(witness_clip_, 160, 120).back();
    baseline_ = StatsOf(pid());
    attack_started_ = std::chrono::steady_clock::now();
    log_at_start_ = server_->process().Output().size();
  }
  uint16_t port() const { return server_->port(); }
  pid_t pid() const { return server_->process().pid(); }
  std::string Bearer() const { return "Authorization: Bearer " + server_->admin_token() + "\r\n"; }

  // After an attack: healthy, the witness intact, and within |max_rss| bytes
  // of memory and |max_threads| threads; the log grew by at most |max_log| bytes.
  void ExpectUnharmed(const std::string& attack, uint64_t max_rss = 384ull << 20,
                      int max_threads = 48, size_t max_log = 256 << 10) {
    auto t0 = std::chrono::steady_clock::now();
    HttpResult health = HttpGet(port(), "/healthz");
    double health_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(health.status, 200) << attack << ": " << health.body;
    HttpResult jpeg = HttpGet(port(), "/v1/streams/witness/latest.jpg");
    ASSERT_EQ(jpeg.status, 200) << attack << ": " << jpeg.body;
    EXPECT_GT(Psnr(DecodeJpeg(jpeg.body), witness_last_), 30.0)
        << attack << ": the witness stream no longer shows its newest frame";
    ProcStats now = StatsOf(pid());
    EXPECT_LE(now.rss_bytes, max_rss) << attack;
    EXPECT_LE(now.threads, max_threads) << attack;
    size_t log_growth = server_->process().Output().size() - log_at_start_;
    EXPECT_LE(log_growth, max_log) << attack;
    // The figures RELIABILITY.md quotes.
    std::printf(
        "[figures] %s: healthz %.1f ms, RSS %.0f MiB (%.0f at start), threads %d (%d), "
        "CPU %.2f s in %.1f s, log +%zu bytes\n",
        attack.c_str(), health_ms, now.rss_bytes / 1048576.0, baseline_.rss_bytes / 1048576.0,
        now.threads, baseline_.threads,
        static_cast<double>(now.cpu_ticks - baseline_.cpu_ticks) /
            static_cast<double>(::sysconf(_SC_CLK_TCK)),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - attack_started_).count(),
        log_growth);
  }

  TempDir dir_;
  std::unique_ptr<LastframeServer> server_;
  std::string witness_clip_;
  RgbImage witness_last_;
  ProcStats baseline_;
  std::chrono::steady_clock::time_point attack_started_;
  size_t log_at_start_ = 0;
};

}  // namespace lastframe::testing
