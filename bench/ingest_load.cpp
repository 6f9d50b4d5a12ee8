// ingest_load: N paced Matroska producers over real sockets, one epoll loop (issue 14).
//
//   ingest_load --clip CLIP.mkv --producers N --seconds S [--stagger S] --port P
//               [--token TOKEN] [--stream-prefix load-] [--raw [--ports-file FILE]]
//               [--drain S] [--out FILE.json]
//
// Each producer sends the same pre-recorded clip, paced at its own timecodes: the bytes of a
// block (and whatever precedes it: the file's header, a cluster's header) are released when
// the block's timecode comes due, counted from the producer's start, so a 1 Mbit/s clip sends
// ~125 KB/s. Producers start staggered over --stagger seconds and all stop releasing at
// --seconds. Default mode: a chunked `POST /putMedia` per producer (Kinesis Video's headers,
// a Bearer key), one HTTP chunk per release; the JSON acknowledgement lines are read as they
// come and timed against the moment the fragment's last byte was written to the socket (the
// byte before the next keyframe's cluster). --raw: the bare Matroska bytes, no HTTP, no acks,
// to --port (every producer) or to the i-th port of --ports-file (one listener per producer).
// Prints one JSON object (also to --out).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "ingest_load: %s\n", message.c_str());
  std::exit(2);
}

// ---- The clip: where its blocks end and when they are due ----

struct Block {
  size_t end = 0;          // offset just past the block element
  int64_t timecode_ms = 0;  // cluster timecode + the block's own, in ms
  bool starts_fragment = false;  // a keyframe: the first frame of a fragment
};

struct Clip {
  std::string bytes;        // the file up to the end of its last cluster
  std::vector<Block> blocks;
  // Fragment k starts at keyframe fragment_tc[k]; its last byte is fragment_end[k] - 1, the byte
  // before the next keyframe's cluster (or block, when a cluster holds several GOPs).
  std::vector<int64_t> fragment_tc;
  std::vector<size_t> fragment_end;
};

struct Element {
  uint64_t id = 0;
  uint64_t size = 0;  // UINT64_MAX: unknown
  size_t header = 0;  // bytes of ID and size
};

bool ReadVint(const std::string& b, size_t pos, bool keep_marker, uint64_t* value, size_t* len) {
  if (pos >= b.size()) return false;
  const auto first = static_cast<uint8_t>(b[pos]);
  size_t n = 1;
  while (n <= 8 && !(first & (0x80 >> (n - 1)))) ++n;
  if (n > 8 || pos + n > b.size()) return false;
  uint64_t v = keep_marker ? first : (first & (0xFF >> n));
  bool all_ones = (first & (0xFF >> n)) == (0xFF >> n);
  for (size_t i = 1; i < n; ++i) {
    const auto byte = static_cast<uint8_t>(b[pos + i]);
    all_ones = all_ones && byte == 0xFF;
    v = (v << 8) | byte;
  }
  *value = (!keep_marker && all_ones) ? UINT64_MAX : v;
  *len = n;
  return true;
}

bool ReadElement(const std::string& b, size_t pos, Element* e) {
  size_t id_len = 0, size_len = 0;
  if (!ReadVint(b, pos, true, &e->id, &id_len)) return false;
  if (!ReadVint(b, pos + id_len, false, &e->size, &size_len)) return false;
  e->header = id_len + size_len;
  return true;
}

uint64_t ReadUint(const std::string& b, size_t pos, uint64_t size) {
  uint64_t v = 0;
  for (uint64_t i = 0; i < size; ++i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  return v;
}

constexpr uint64_t kSegment = 0x18538067, kInfo = 0x1549A966, kTimecodeScale = 0x2AD7B1,
                   kCluster = 0x1F43B675, kTimecode = 0xE7, kSimpleBlock = 0xA3,
                   kBlockGroup = 0xA0, kBlock = 0xA1, kReferenceBlock = 0xFB;

// Reads a Matroska file as ffmpeg writes it to a file (clusters of known size). The clip's
// timecodes must start at 0 or later and its single track be the video.
Clip LoadClip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read " + path);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Clip clip;
  Element e;
  size_t pos = 0;
  if (!ReadElement(b, pos, &e)) Die("not Matroska: " + path);
  pos += e.header + e.size;  // the EBML header
  if (!ReadElement(b, pos, &e) || e.id != kSegment) Die("no Segment in " + path);
  {
    // Sent as a live producer sends it: a Segment of unknown size (the run cuts it short).
    size_t id_len = 0, size_len = 0;
    uint64_t ignored = 0;
    ReadVint(b, pos, true, &ignored, &id_len);
    ReadVint(b, pos + id_len, false, &ignored, &size_len);
    b[pos + id_len] = static_cast<char>(0xFF >> (size_len - 1));
    for (size_t i = 1; i < size_len; ++i) b[pos + id_len + i] = static_cast<char>(0xFF);
  }
  pos += e.header;
  uint64_t scale_ns = 1000000;
  size_t clip_end = 0;
  bool fragment_open = false;
  while (pos < b.size() && ReadElement(b, pos, &e)) {
    if (e.size == UINT64_MAX || pos + e.header + e.size > b.size()) break;
    const size_t body = pos + e.header;
    if (e.id == kInfo) {
      for (size_t p = body; p < body + e.size;) {
        Element c;
        if (!ReadElement(b, p, &c)) break;
        if (c.id == kTimecodeScale) scale_ns = ReadUint(b, p + c.header, c.size);
        p += c.header + c.size;
      }
    } else if (e.id == kCluster) {
      int64_t cluster_tc = 0;
      bool first_in_cluster = true;
      for (size_t p = body; p < body + e.size;) {
        Element c;
        if (!ReadElement(b, p, &c) || c.size == UINT64_MAX) Die("a cluster's child is unreadable");
        const size_t cbody = p + c.header;
        size_t block = 0;  // offset of the Block's payload, if this child holds one
        bool keyframe = false;
        if (c.id == kTimecode) {
          cluster_tc = static_cast<int64_t>(ReadUint(b, cbody, c.size));
        } else if (c.id == kSimpleBlock) {
          block = cbody;
        } else if (c.id == kBlockGroup) {
          keyframe = true;
          for (size_t q = cbody; q < cbody + c.size;) {
            Element g;
            if (!ReadElement(b, q, &g)) break;
            if (g.id == kBlock) block = q + g.header;
            if (g.id == kReferenceBlock) keyframe = false;
            q += g.header + g.size;
          }
        }
        if (block) {
          uint64_t track = 0;
          size_t len = 0;
          if (!ReadVint(b, block, false, &track, &len)) Die("a block is unreadable");
          const auto rel = static_cast<int16_t>((static_cast<uint8_t>(b[block + len]) << 8) |
                                                static_cast<uint8_t>(b[block + len + 1]));
          if (c.id == kSimpleBlock) keyframe = static_cast<uint8_t>(b[block + len + 2]) & 0x80;
          const int64_t tc =
              static_cast<int64_t>((static_cast<double>(cluster_tc) + rel) * scale_ns / 1e6);
          if (keyframe) {
            // The fragment before ends with the byte before this keyframe's cluster.
            if (fragment_open) clip.fragment_end.push_back(first_in_cluster ? pos : p);
            clip.fragment_tc.push_back(tc);
            fragment_open = true;
          }
          if (!fragment_open) Die("the clip does not start with a keyframe");
          clip.blocks.push_back({p + c.header + c.size, tc, keyframe});
          first_in_cluster = false;
        }
        p += c.header + c.size;
      }
      clip_end = body + e.size;
    }
    pos = body + e.size;
  }
  if (clip.blocks.empty()) Die("no blocks in " + path);
  clip.fragment_end.push_back(clip_end);
  b.resize(clip_end);  // Cues and Tags after the last cluster are not sent
  clip.bytes = std::move(b);
  for (size_t i = 1; i < clip.blocks.size(); ++i)
    if (clip.blocks[i].timecode_ms < clip.blocks[i - 1].timecode_ms)
      Die("the clip's timecodes go back (B-frames?): pacing needs them in order");
  return clip;
}

// ---- Producers ----

enum class State { kWaiting, kConnecting, kSending, kDraining, kDone, kDropped };

struct FragmentTimes {
  int64_t sent = 0;       // its last byte written to the socket
  int64_t completed = 0;  // the next fragment's first frame written too (or the body's end)
  int64_t received = 0, persisted = 0;
};

struct Mark {
  uint64_t out_pos;  // the fragment's last byte is written once out_written reaches this
  size_t fragment;
  bool completes = false;  // this mark is the end of the next fragment's first frame
};

struct Producer {
  int index = 0;
  int fd = -1;
  State state = State::kWaiting;
  int port = 0;
  int64_t start_ns = 0;
  int64_t connect_deadline_ns = 0;
  size_t next_block = 0;
  size_t released = 0;  // clip bytes handed to the out buffer
  size_t fragment = 0;  // fragments begun
  std::string out;
  size_t out_sent = 0;       // of out
  uint64_t out_base = 0;     // bytes written before out[0]
  std::deque<Mark> marks;
  bool want_write = false;
  bool finished_body = false;
  // The response.
  std::string in;
  bool headers_done = false, chunked = false;
  int status = 0;
  uint64_t chunk_left = 0;
  bool ended = false;  // the response's last chunk arrived
  std::string lines;  // dechunked body not yet split into lines
  std::vector<FragmentTimes> fragments;
  int errors = 0;
  std::string error_text;
  std::string drop_reason;
};

struct Options {
  std::string clip, host = "127.0.0.1", token, prefix = "load-", out_path, ports_file;
  int producers = 1, port = 0;
  double seconds = 10, stagger = 0, drain = 15;
  bool raw = false;
};

class Load {
 public:
  Load(Options o, Clip clip) : o_(std::move(o)), clip_(std::move(clip)) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) Die("epoll_create1");
    for (size_t i = 0; i < clip_.fragment_tc.size(); ++i) fragment_of_tc_[clip_.fragment_tc[i]] = i;
    std::vector<int> ports;
    if (!o_.ports_file.empty()) {
      std::ifstream f(o_.ports_file);
      for (int p; f >> p;) ports.push_back(p);
      if (static_cast<int>(ports.size()) < o_.producers) Die("fewer ports than producers");
    }
    producers_.resize(o_.producers);
    start_ns_ = NowNs() + 100'000'000;
    end_ns_ = start_ns_ + static_cast<int64_t>(o_.seconds * 1e9);
    for (int i = 0; i < o_.producers; ++i) {
      Producer& p = producers_[i];
      p.index = i;
      p.port = ports.empty() ? o_.port : ports[i];
      p.start_ns =
          start_ns_ + static_cast<int64_t>(o_.stagger * 1e9 * i / std::max(1, o_.producers));
      p.fragments.resize(clip_.fragment_tc.size());
      Schedule(p.start_ns, i);
    }
  }

  void Run() {
    const int64_t hard_end = end_ns_ + static_cast<int64_t>(o_.drain * 1e9);
    std::vector<epoll_event> events(1024);
    while (true) {
      const int64_t now = NowNs();
      while (!timers_.empty() && timers_.top().first <= now) {
        const int i = timers_.top().second;
        timers_.pop();
        OnTimer(producers_[i], now);
      }
      if (now >= hard_end || Active() == 0) break;
      int64_t wait_ns = hard_end - now;
      if (!timers_.empty()) wait_ns = std::min(wait_ns, timers_.top().first - now);
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()),
                               static_cast<int>(std::max<int64_t>(0, (wait_ns + 999'999) / 1'000'000)));
      if (n < 0 && errno != EINTR) Die("epoll_wait");
      for (int k = 0; k < n; ++k) {
        Producer& p = producers_[events[k].data.u32];
        if (p.state == State::kDone || p.state == State::kDropped) continue;
        if (p.state == State::kConnecting) {
          OnConnected(p);
          continue;
        }
        if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable(p);
        if ((events[k].events & EPOLLOUT) && p.state != State::kDone &&
            p.state != State::kDropped)
          Flush(p);
      }
    }
    for (Producer& p : producers_)
      if (p.state != State::kDone && p.state != State::kDropped) {
        // Out of time: a producer that did not get its last acks is not dropped, its missing
        // acks are counted; one that never finished sending is.
        if (p.state != State::kDraining) Drop(p, "still sending at the end of the drain");
        else Close(p, State::kDone);
      }
  }

  std::string Report(double wall_s) const;

 private:
  void Schedule(int64_t when, int i) { timers_.push({when, i}); }

  int Active() const {
    int n = 0;
    for (const Producer& p : producers_) n += p.state != State::kDone && p.state != State::kDropped;
    return n;
  }

  void Arm(Producer& p, bool write) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (write ? uint32_t{EPOLLOUT} : 0u);
    ev.data.u32 = static_cast<uint32_t>(p.index);
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, p.fd, &ev) < 0) Die("epoll_ctl MOD");
    p.want_write = write;
  }

  void Close(Producer& p, State to) {
    if (p.fd >= 0) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, p.fd, nullptr);
      close(p.fd);
    }
    p.fd = -1;
    p.state = to;
  }

  void Drop(Producer& p, const std::string& why) {
    p.drop_reason = why;
    Close(p, State::kDropped);
  }

  void StartConnect(Producer& p, int64_t now) {
    p.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p.fd < 0) return Drop(p, std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    setsockopt(p.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(p.port));
    inet_pton(AF_INET, o_.host.c_str(), &a.sin_addr);
    if (p.connect_deadline_ns == 0) p.connect_deadline_ns = now + 10'000'000'000;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = static_cast<uint32_t>(p.index);
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, p.fd, &ev) < 0) Die("epoll_ctl ADD");
    p.state = State::kConnecting;
    if (connect(p.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS)
      RetryConnect(p, errno, now);
  }

  // A listener not up yet (an ffmpeg reference still starting) is tried again for 10 s.
  void RetryConnect(Producer& p, int err, int64_t now) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, p.fd, nullptr);
    close(p.fd);
    p.fd = -1;
    if (err == ECONNREFUSED && now < p.connect_deadline_ns) {
      p.state = State::kWaiting;
      Schedule(now + 100'000'000, p.index);
      return;
    }
    Drop(p, std::string("connect: ") + std::strerror(err));
  }

  void OnConnected(Producer& p) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return RetryConnect(p, err, NowNs());
    p.state = State::kSending;
    // The producer's clock starts now: its first block is due at once.
    p.start_ns = NowNs();
    if (!o_.raw) {
      char start[64];
      const double epoch = std::chrono::duration<double>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
      std::snprintf(start, sizeof start, "%.3f", epoch);
      char name[64];
      std::snprintf(name, sizeof name, "%s%04d", o_.prefix.c_str(), p.index);
      p.out += "POST /putMedia HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(p.port) +
               "\r\nx-amzn-stream-name: " + name +
               "\r\nx-amzn-fragment-timecode-type: RELATIVE"
               "\r\nx-amzn-producer-start-timestamp: " + start +
               (o_.token.empty() ? std::string() : "\r\nAuthorization: Bearer " + o_.token) +
               "\r\nContent-Type: application/octet-stream"
               "\r\nTransfer-Encoding: chunked\r\n\r\n";
    }
    Arm(p, false);
    OnTimer(p, NowNs());
  }

  void OnTimer(Producer& p, int64_t now) {
    if (p.state == State::kWaiting) return StartConnect(p, now);
    if (p.state != State::kSending) return;
    // Release every block now due, then schedule the next.
    const int64_t base_tc = clip_.blocks[0].timecode_ms;
    while (p.next_block < clip_.blocks.size()) {
      const int64_t due = p.start_ns + (clip_.blocks[p.next_block].timecode_ms - base_tc) * 1'000'000;
      // The run ends at its time, but each producer finishes the GOP it is sending, as a
      // producer that stops does: the body ends at the end of a cluster, every fragment whole.
      if (due > end_ns_ && clip_.blocks[p.next_block].starts_fragment) break;
      if (due > now) {
        Schedule(due, p.index);
        break;
      }
      Release(p, p.next_block);
      ++p.next_block;
    }
    if (p.next_block == clip_.blocks.size() ||
        (clip_.blocks[p.next_block].starts_fragment &&
         p.start_ns + (clip_.blocks[p.next_block].timecode_ms - base_tc) * 1'000'000 > end_ns_)) {
      FinishBody(p);
    }
    Flush(p);
  }

  void Release(Producer& p, size_t block) {
    const size_t from = p.released;
    const size_t to = clip_.blocks[block].end;
    if (to <= from) return;
    if (!o_.raw) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", to - from);
      p.out += size;
    }
    const uint64_t data_pos = p.out_base + p.out.size();  // out position of clip byte |from|
    p.out.append(clip_.bytes, from, to - from);
    if (!o_.raw) p.out += "\r\n";
    // Fragments whose last byte is in this release.
    for (size_t k = 0; k < clip_.fragment_end.size(); ++k) {
      const size_t end = clip_.fragment_end[k];
      if (end > from && end <= to) p.marks.push_back({data_pos + (end - from), k});
    }
    // A keyframe's frame, whole: the fragment before it can be complete.
    if (clip_.blocks[block].starts_fragment && p.fragment > 0)
      p.marks.push_back({data_pos + (to - from), p.fragment - 1, true});
    if (clip_.blocks[block].starts_fragment) ++p.fragment;
    p.released = to;
  }

  void FinishBody(Producer& p) {
    if (p.finished_body) return;
    p.finished_body = true;
    // The last fragment ends with the body: its last byte is the last byte sent (a clip that
    // ends before the run, too), and it is complete once the body's end is written.
    const uint64_t last = p.out_base + p.out.size();
    if (p.fragment > 0 && clip_.fragment_end[p.fragment - 1] != p.released)
      p.marks.push_back({last, p.fragment - 1});
    if (!o_.raw) p.out += "0\r\n\r\n";
    if (p.fragment > 0) p.marks.push_back({p.out_base + p.out.size(), p.fragment - 1, true});
  }

  void Flush(Producer& p) {
    while (p.out_sent < p.out.size()) {
      const ssize_t n = send(p.fd, p.out.data() + p.out_sent, p.out.size() - p.out_sent,
                             MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return Drop(p, std::string("send: ") + std::strerror(errno));
      }
      p.out_sent += static_cast<size_t>(n);
    }
    const uint64_t written = p.out_base + p.out_sent;
    const int64_t now = NowNs();
    while (!p.marks.empty() && p.marks.front().out_pos <= written) {
      FragmentTimes& f = p.fragments[p.marks.front().fragment];
      (p.marks.front().completes ? f.completed : f.sent) = now;
      p.marks.pop_front();
    }
    if (p.out_sent == p.out.size()) {
      p.out_base += p.out.size();
      p.out.clear();
      p.out_sent = 0;
      if (p.finished_body) {
        if (o_.raw) {
          shutdown(p.fd, SHUT_WR);
          return Close(p, State::kDone);
        }
        p.state = State::kDraining;
      }
    }
    const bool blocked = p.out_sent < p.out.size();
    if (blocked != p.want_write) Arm(p, blocked);
  }

  void OnReadable(Producer& p) {
    char buf[16384];
    while (true) {
      const ssize_t n = recv(p.fd, buf, sizeof buf, 0);
      if (n > 0) {
        p.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // Closed (or reset) by the server.
      ParseResponse(p);
      if (n < 0) return Drop(p, std::string("recv: ") + std::strerror(errno));
      if (p.state == State::kDraining) return Close(p, State::kDone);
      if (o_.raw) return Drop(p, "closed by the listener");
      return Drop(p, p.status && p.status != 200
                         ? "HTTP " + std::to_string(p.status) + ": " + p.error_text
                         : std::string("closed by the server while sending"));
    }
    if (o_.raw) {
      p.in.clear();
      return;
    }
    ParseResponse(p);
    if (p.status && p.status != 200 && p.state != State::kDropped)
      return Drop(p, "HTTP " + std::to_string(p.status) + ": " + p.error_text);
    if (p.state == State::kDraining && p.headers_done && p.chunked && p.chunk_left == 0 &&
        p.ended)
      return Close(p, State::kDone);
  }

  void ParseResponse(Producer& p) {
    if (!p.headers_done) {
      const size_t end = p.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      const std::string head = p.in.substr(0, end);
      p.in.erase(0, end + 4);
      p.headers_done = true;
      if (std::sscanf(head.c_str(), "HTTP/1.%*d %d", &p.status) != 1) p.status = -1;
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      p.chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
    }
    if (p.chunked) {
      while (!p.in.empty()) {
        if (p.chunk_left > 0) {
          const size_t take = std::min<uint64_t>(p.chunk_left, p.in.size());
          p.lines.append(p.in, 0, take);
          p.in.erase(0, take);
          p.chunk_left -= take;
          continue;
        }
        const size_t eol = p.in.find("\r\n");
        if (eol == std::string::npos) break;
        const std::string line = p.in.substr(0, eol);
        p.in.erase(0, eol + 2);
        if (line.empty()) continue;  // the CRLF after a chunk's data
        const uint64_t size = std::strtoull(line.c_str(), nullptr, 16);
        if (size == 0) p.ended = true;
        p.chunk_left = size;
      }
    } else {
      p.lines += p.in;
      p.in.clear();
    }
    size_t nl;
    while ((nl = p.lines.find('\n')) != std::string::npos) {
      OnLine(p, p.lines.substr(0, nl));
      p.lines.erase(0, nl + 1);
    }
    if (p.status != 200 && p.status != 0) p.error_text = p.lines.substr(0, 300);
  }

  // Fields of a one-line JSON object, enough for the acks: "EventType" and "FragmentTimecode".
  static std::string Field(const std::string& line, const char* name) {
    const std::string key = std::string("\"") + name + "\":";
    size_t at = line.find(key);
    if (at == std::string::npos) return {};
    at += key.size();
    while (at < line.size() && line[at] == ' ') ++at;
    if (at < line.size() && line[at] == '"') {
      const size_t end = line.find('"', at + 1);
      return line.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    }
    size_t end = at;
    while (end < line.size() && (std::isdigit(static_cast<unsigned char>(line[end])) || line[end] == '-'))
      ++end;
    return line.substr(at, end - at);
  }

  void OnLine(Producer& p, const std::string& line) {
    if (line.find('{') == std::string::npos) return;
    const int64_t now = NowNs();
    const std::string event = Field(line, "EventType");
    const std::string tc = Field(line, "FragmentTimecode");
    if (event == "ERROR") {
      ++p.errors;
      if (error_samples_.size() < 5) error_samples_.push_back(line);
      return;
    }
    if (event != "RECEIVED" && event != "PERSISTED") return;
    const auto it = tc.empty() ? fragment_of_tc_.end() : fragment_of_tc_.find(std::stoll(tc));
    if (it == fragment_of_tc_.end()) {
      ++unmatched_acks_;
      return;
    }
    FragmentTimes& f = p.fragments[it->second];
    (event == "RECEIVED" ? f.received : f.persisted) = now;
  }

  Options o_;
  Clip clip_;
  int epoll_ = -1;
  int64_t start_ns_ = 0, end_ns_ = 0;
  std::vector<Producer> producers_;
  std::priority_queue<std::pair<int64_t, int>, std::vector<std::pair<int64_t, int>>,
                      std::greater<>>
      timers_;
  std::unordered_map<int64_t, size_t> fragment_of_tc_;
  std::vector<std::string> error_samples_;
  int unmatched_acks_ = 0;
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

std::string Json(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
    else out += c;
  }
  return out + "\"";
}

std::string Num(double v) {
  if (std::isnan(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

std::string Load::Report(double wall_s) const {
  std::vector<double> received, persisted, received_completed, persisted_completed;
  int dropped = 0, errors = 0, with_received = 0, with_persisted = 0, sent = 0,
      missing_received = 0, missing_persisted = 0;
  uint64_t bytes = 0;
  std::map<std::string, int> reasons;
  for (const Producer& p : producers_) {
    if (p.state == State::kDropped) {
      ++dropped;
      ++reasons[p.drop_reason.substr(0, 120)];
    }
    errors += p.errors;
    bytes += p.out_base + p.out_sent;
    bool got_r = false, got_p = false;
    for (const FragmentTimes& f : p.fragments) {
      got_r = got_r || f.received;
      got_p = got_p || f.persisted;
      if (!f.sent) continue;
      ++sent;
      if (f.received) received.push_back((f.received - f.sent) / 1e6);
      else ++missing_received;
      if (f.persisted) persisted.push_back((f.persisted - f.sent) / 1e6);
      else ++missing_persisted;
      if (f.completed && f.received) received_completed.push_back((f.received - f.completed) / 1e6);
      if (f.completed && f.persisted)
        persisted_completed.push_back((f.persisted - f.completed) / 1e6);
    }
    with_received += got_r;
    with_persisted += got_p;
  }
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  const double cpu = self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                     (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  std::string j = "{";
  j += "\"mode\":" + Json(o_.raw ? "raw" : "putmedia");
  j += ",\"producers\":" + std::to_string(o_.producers);
  j += ",\"seconds\":" + Num(o_.seconds) + ",\"stagger\":" + Num(o_.stagger);
  j += ",\"wall_s\":" + Num(wall_s);
  j += ",\"bytes_sent\":" + std::to_string(bytes);
  j += ",\"mbit_s_per_producer\":" +
       Num(bytes * 8 / 1e6 / std::max(1e-9, o_.seconds - o_.stagger / 2) / o_.producers);
  j += ",\"dropped\":" + std::to_string(dropped);
  j += ",\"drop_reasons\":{";
  bool first = true;
  for (const auto& [why, n] : reasons) {
    j += (first ? "" : ",") + Json(why) + ":" + std::to_string(n);
    first = false;
  }
  j += "},\"error_acks\":" + std::to_string(errors);
  j += ",\"error_samples\":[";
  for (size_t i = 0; i < error_samples_.size(); ++i) j += (i ? "," : "") + Json(error_samples_[i]);
  j += "],\"unmatched_acks\":" + std::to_string(unmatched_acks_);
  j += ",\"fragments_sent\":" + std::to_string(sent);
  j += ",\"producers_with_received\":" + std::to_string(with_received);
  j += ",\"producers_with_persisted\":" + std::to_string(with_persisted);
  j += ",\"missing_received\":" + std::to_string(missing_received);
  j += ",\"missing_persisted\":" + std::to_string(missing_persisted);
  auto latency = [&](const char* name, const std::vector<double>& v) {
    j += std::string(",\"") + name + "\":{\"n\":" + std::to_string(v.size()) +
         ",\"p50\":" + Num(Percentile(v, 0.5)) + ",\"p90\":" + Num(Percentile(v, 0.9)) +
         ",\"p99\":" + Num(Percentile(v, 0.99)) + ",\"max\":" + Num(Percentile(v, 1.0)) + "}";
  };
  // After the fragment's last byte (it includes the wait for the next keyframe, which is what
  // completes a fragment), and after the next keyframe's frame was written whole.
  latency("received_ms", received);
  latency("persisted_ms", persisted);
  latency("received_after_next_keyframe_ms", received_completed);
  latency("persisted_after_next_keyframe_ms", persisted_completed);
  j += ",\"generator_cpu_s\":" + Num(cpu);
  j += "}";
  return j;
}

void Usage() {
  std::fprintf(stderr,
               "usage: ingest_load --clip FILE.mkv --producers N --seconds S [--stagger S]\n"
               "         --port P [--host 127.0.0.1] [--token TOKEN] [--stream-prefix load-]\n"
               "         [--raw [--ports-file FILE]] [--drain S] [--out FILE.json]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--clip") o.clip = value();
    else if (a == "--producers") o.producers = std::atoi(value().c_str());
    else if (a == "--seconds") o.seconds = std::atof(value().c_str());
    else if (a == "--stagger") o.stagger = std::atof(value().c_str());
    else if (a == "--drain") o.drain = std::atof(value().c_str());
    else if (a == "--port") o.port = std::atoi(value().c_str());
    else if (a == "--host") o.host = value();
    else if (a == "--token") o.token = value();
    else if (a == "--stream-prefix") o.prefix = value();
    else if (a == "--ports-file") o.ports_file = value();
    else if (a == "--out") o.out_path = value();
    else if (a == "--raw") o.raw = true;
    else Usage();
  }
  if (o.clip.empty() || o.producers < 1 || o.seconds <= 0 ||
      (o.port == 0 && o.ports_file.empty()))
    Usage();
  // A thousand producers need a thousand descriptors.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  Clip clip = LoadClip(o.clip);
  const double clip_s = (clip.blocks.back().timecode_ms - clip.blocks.front().timecode_ms) / 1e3;
  if (clip_s + 0.5 < o.seconds)
    std::fprintf(stderr, "ingest_load: the clip (%.1f s) is shorter than the run (%.1f s): "
                         "producers stop at its end\n", clip_s, o.seconds);
  Load load(o, std::move(clip));
  const int64_t t0 = NowNs();
  load.Run();
  const std::string report = load.Report((NowNs() - t0) / 1e9);
  std::printf("%s\n", report.c_str());
  if (!o.out_path.empty()) {
    std::ofstream f(o.out_path);
    f << report << "\n";
  }
  return 0;
}
