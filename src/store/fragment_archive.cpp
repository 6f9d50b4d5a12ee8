#include "store/fragment_archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <tuple>

#include "core/stream_name.h"
#include "store/clip.h"

namespace lastframe::store {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFragmentFileBytes = 256ull << 20;

std::string Sha256Hex(const std::string& s) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Status ArchivalError(const std::string& what) {
  return Status(Code::kUnavailable, what + ": " + std::strerror(errno), "ArchivalError");
}

Status WriteFileDurably(const fs::path& tmp, const std::string& bytes) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ArchivalError("cannot create a fragment file");
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = ArchivalError("cannot write a fragment file");
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = ArchivalError("cannot sync a fragment file");
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  return Status::Ok();
}

void SyncFolder(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

struct FileName {
  int64_t server_ms = 0;
  uint64_t number = 0;
  int64_t producer_ms = 0;
  int64_t frames = 0;  // what a whole file holds: a file that reads short is torn
  int64_t timecode_ms = 0;
};

std::string Format(const FileName& n) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%015lld-%llu-%lld-%lld-%lld.mkv",
                static_cast<long long>(n.server_ms), static_cast<unsigned long long>(n.number),
                static_cast<long long>(n.producer_ms), static_cast<long long>(n.frames),
                static_cast<long long>(n.timecode_ms));
  return buf;
}

std::optional<FileName> Parse(const std::string& name) {
  if (name.size() < 5 || name.compare(name.size() - 4, 4, ".mkv") != 0) return std::nullopt;
  std::string_view s(name.data(), name.size() - 4);
  int64_t values[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < 5; ++i) {
    size_t dash = i < 4 ? s.find('-') : std::string_view::npos;
    // A timecode may be negative: the last field takes the rest.
    std::string_view field = i < 4 ? s.substr(0, dash) : s;
    if (i < 4 && dash == std::string_view::npos) return std::nullopt;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), values[i]);
    if (field.empty() || ec != std::errc() || end != field.data() + field.size())
      return std::nullopt;
    if (i < 4) s = s.substr(dash + 1);
  }
  if (values[3] < 1) return std::nullopt;
  return FileName{values[0], static_cast<uint64_t>(values[1]), values[2], values[3], values[4]};
}

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};

// Reads one fragment file back: its frames on the fragment's own timeline.
Result<FragmentView> ReadFragment(const fs::path& path, const FileName& name) {
  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0)
    return Status(Code::kMediaError, "unreadable");
  std::unique_ptr<AVFormatContext, FormatCloser> ctx(raw);
  if (ctx->nb_streams < 1 || ctx->streams[0]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO)
    return Status(Code::kMediaError, "no video track");
  FragmentView f;
  auto codec = media::CopyCodecParameters(*ctx->streams[0]->codecpar);
  if (!codec.ok()) return codec.status();
  f.codec = *codec;
  f.number = name.number;
  f.server_ts_ms = name.server_ms;
  f.producer_ts_ms = name.producer_ms;
  f.timecode_ms = name.timecode_ms;
  f.complete = true;
  const AVRational tb = ctx->streams[0]->time_base;
  std::vector<int64_t> pts, dts;
  std::vector<media::PacketPtr> packets;
  for (;;) {
    media::PacketPtr pkt = media::MakePacket();
    if (av_read_frame(ctx.get(), pkt.get()) < 0) break;
    if (pkt->stream_index != 0 || pkt->pts == AV_NOPTS_VALUE) continue;
    pts.push_back(av_rescale_q(pkt->pts, tb, AVRational{1, 1000}));
    dts.push_back(pkt->dts == AV_NOPTS_VALUE ? INT64_MIN
                                             : av_rescale_q(pkt->dts, tb, AVRational{1, 1000}));
    packets.push_back(std::move(pkt));
  }
  if (packets.empty() || !(packets.front()->flags & AV_PKT_FLAG_KEY))
    return Status(Code::kMediaError, "no frames, or not led by a keyframe");
  if (static_cast<int64_t>(packets.size()) != name.frames)
    return Status(Code::kMediaError, "torn: fewer frames than were written");
  // Matroska keeps presentation times only: decode times, where missing, are
  // the smallest presentation time still to come (monotonic, never after pts).
  int64_t upcoming = INT64_MAX;
  for (size_t i = pts.size(); i-- > 0;) {
    upcoming = std::min(upcoming, pts[i]);
    if (dts[i] == INT64_MIN) dts[i] = upcoming;
  }
  // Back on the timeline the fragment had in memory: frames and their packets
  // in milliseconds from the producer's timecode, as the fragmenter left them.
  const int64_t first = pts.front();
  for (size_t i = 0; i < packets.size(); ++i) {
    AVPacket* pkt = packets[i].get();
    int64_t duration = pkt->duration > 0 ? av_rescale_q(pkt->duration, tb, AVRational{1, 1000}) : 0;
    Frame frame;
    frame.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
    frame.pts_ms = name.timecode_ms + (pts[i] - first);
    frame.dts_ms = name.timecode_ms + (dts[i] - first);
    pkt->pts = frame.pts_ms;
    pkt->dts = frame.dts_ms;
    pkt->duration = duration;
    pkt->time_base = AVRational{1, 1000};
    f.duration_ms = std::max(f.duration_ms, pts[i] - first + duration);
    f.bytes += static_cast<size_t>(pkt->size);
    frame.packet = media::TakePacket(pkt);
    f.frames.push_back(std::move(frame));
  }
  return f;
}

std::optional<int64_t> ReadRetention(const fs::path& folder) {
  std::ifstream in(folder / "retention_ms");
  int64_t ms = 0;
  if (in >> ms && ms > 0) return ms;
  return std::nullopt;
}

}  // namespace

Status FragmentArchive::SetRetention(const std::string& stream, int64_t retention_ms) {
  fs::path folder = FolderOf(stream);
  std::error_code ec;
  fs::create_directories(folder, ec);
  static std::atomic<uint64_t> counter{0};
  fs::path tmp =
      root_ / ".tmp" /
      ("retention-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
  LF_RETURN_IF_ERROR(WriteFileDurably(tmp, std::to_string(retention_ms)));
  fs::rename(tmp, folder / "retention_ms", ec);
  if (!fs::exists(folder / "name", ec)) {
    fs::path name_tmp = tmp.string() + "-name";
    LF_RETURN_IF_ERROR(WriteFileDurably(name_tmp, stream));
    fs::rename(name_tmp, folder / "name", ec);
  }
  SyncFolder(folder);
  return Status::Ok();
}

Result<std::unique_ptr<FragmentArchive>> FragmentArchive::Open(fs::path root) {
  std::error_code ec;
  fs::create_directories(root / ".tmp", ec);
  if (ec) return Status(Code::kUnavailable, "cannot create " + root.string() + ": " + ec.message());
  return std::unique_ptr<FragmentArchive>(new FragmentArchive(std::move(root)));
}

fs::path FragmentArchive::FolderOf(const std::string& stream) const {
  if (stream == "." || stream == ".." || stream.size() > 200 || stream.front() == '.')
    return root_ / ("h-" + Sha256Hex(stream));
  return root_ / stream;
}

Status FragmentArchive::Persist(const std::string& stream, const FragmentView& fragment) {
  auto bytes = MuxClip({fragment}, ClipFormat::kMatroska, kMaxFragmentFileBytes);
  if (!bytes.ok()) return bytes.status();
  fs::path folder = FolderOf(stream);
  std::error_code ec;
  if (!fs::exists(folder / "name", ec)) {
    fs::create_directories(folder, ec);
    if (ec) {
      errno = ec.value();
      return ArchivalError("cannot create the stream's folder");
    }
    static std::atomic<uint64_t> counter{0};
    fs::path tmp =
        root_ / ".tmp" /
        ("name-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
    LF_RETURN_IF_ERROR(WriteFileDurably(tmp, stream));
    fs::rename(tmp, folder / "name", ec);
    SyncFolder(root_);
  }
  static std::atomic<uint64_t> counter{0};
  fs::path tmp = root_ / ".tmp" /
                 (std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ".mkv");
  LF_RETURN_IF_ERROR(WriteFileDurably(tmp, *bytes));
  FileName name{fragment.server_ts_ms, fragment.number, fragment.producer_ts_ms,
                static_cast<int64_t>(fragment.frames.size()), fragment.timecode_ms};
  if (std::rename(tmp.c_str(), (folder / Format(name)).c_str()) != 0) {
    Status s = ArchivalError("cannot store a fragment file");
    ::unlink(tmp.c_str());
    return s;
  }
  SyncFolder(folder);
  return Status::Ok();
}

RecoveryReport FragmentArchive::Recover() {
  RecoveryReport report;
  std::error_code ec;
  // Writes a crash cut short never got their names: they go.
  for (fs::directory_iterator it(root_ / ".tmp", ec), end; !ec && it != end; it.increment(ec)) {
    fs::remove(it->path(), ec);
    ++report.discarded;
  }
  for (fs::directory_iterator dir(root_, ec), end; !ec && dir != end; dir.increment(ec)) {
    if (!dir->is_directory() || dir->path().filename() == ".tmp") continue;
    std::string name;
    std::ifstream(dir->path() / "name") >> std::noskipws >> name;
    if (name.empty()) name = dir->path().filename().string();
    if (!ValidateStreamName(name).ok() || FolderOf(name) != dir->path()) continue;
    std::vector<std::pair<FileName, fs::path>> files;
    for (fs::directory_iterator f(dir->path(), ec); !ec && f != end; f.increment(ec))
      if (auto parsed = Parse(f->path().filename().string()))
        files.emplace_back(*parsed, f->path());
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.server_ms, a.first.number) <
             std::tie(b.first.server_ms, b.first.number);
    });
    RecoveredStream stream{name, ReadRetention(dir->path()), {}};
    for (const auto& [file_name, path] : files) {
      auto fragment = ReadFragment(path, file_name);
      if (!fragment.ok()) {
        fs::remove(path, ec);
        ++report.discarded;
        continue;
      }
      stream.fragments.push_back(std::move(*fragment));
    }
    report.fragments += stream.fragments.size();
    // A stream created with its own retention comes back even before its first fragment.
    if (!stream.fragments.empty() || stream.retention_ms)
      report.streams.push_back(std::move(stream));
  }
  return report;
}

size_t FragmentArchive::Trim(int64_t now_ms, int64_t default_retention_ms,
                             uint64_t max_bytes_per_stream, uint64_t max_total_bytes) {
  std::lock_guard lock(trim_mu_);
  size_t deleted = 0;
  std::error_code ec;
  std::vector<std::tuple<int64_t, uint64_t, uint64_t, fs::path>> kept;  // of all streams
  uint64_t kept_bytes = 0;
  for (fs::directory_iterator dir(root_, ec), end; !ec && dir != end; dir.increment(ec)) {
    if (!dir->is_directory() || dir->path().filename() == ".tmp") continue;
    const int64_t cutoff_ms = now_ms - ReadRetention(dir->path()).value_or(default_retention_ms);
    // Oldest first: by arrival, then number.
    std::vector<std::tuple<int64_t, uint64_t, uint64_t, fs::path>> files;
    uint64_t total = 0;
    for (fs::directory_iterator f(dir->path(), ec); !ec && f != end; f.increment(ec)) {
      auto parsed = Parse(f->path().filename().string());
      if (!parsed) continue;
      uint64_t size = f->file_size(ec);
      files.emplace_back(parsed->server_ms, parsed->number, size, f->path());
      total += size;
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      const auto& [server_ms, number, size, path] = file;
      if (server_ms >= cutoff_ms && total <= max_bytes_per_stream) {
        kept.push_back(file);
        kept_bytes += size;
        continue;
      }
      if (fs::remove(path, ec)) ++deleted;
      total -= size;
    }
  }
  // Over the total budget: the oldest of any stream go first.
  std::sort(kept.begin(), kept.end());
  for (const auto& [server_ms, number, size, path] : kept) {
    if (kept_bytes <= max_total_bytes) break;
    if (fs::remove(path, ec)) ++deleted;
    kept_bytes -= size;
  }
  return deleted;
}

void FragmentArchive::Forget(const std::string& stream) {
  std::error_code ec;
  fs::remove_all(FolderOf(stream), ec);
}

}  // namespace lastframe::store
