#include "store/fragment_archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <tuple>

#include "core/metrics.h"
#include "core/stream_name.h"
#include "store/clip.h"
#include "store/fragment_file.h"

namespace lastframe::store {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFragmentFileBytes = 256ull << 20;
// Folders of forgotten streams, moved aside until the archive's thread removes them.
constexpr const char* kTrash = ".trash";
// A removal the disk refuses (EBUSY, EIO) is tried this often, 100 ms apart and doubling.
constexpr int kDeleteAttempts = 5;
constexpr std::chrono::milliseconds kFirstRetry{100};

Status StreamDeleted(const std::string& stream) {
  return NotFound("stream '" + stream + "' was deleted while this was being stored",
                  Reason::kStreamDeleted);
}

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
  return Status(Code::kUnavailable, what + ": " + std::strerror(errno), Reason::kArchivalError);
}

// fsync(2), timed: what durability costs each fragment, and a slow disk shows here first.
int TimedFsync(int fd) {
  static auto& seconds = metrics::Registry::Global().AddHistogram(
      "lastframe_fragment_fsync_duration_seconds",
      "Time spent in each fsync of the fragment archive's files and folders.",
      metrics::LatencyBuckets());
  const auto start = std::chrono::steady_clock::now();
  int rc = ::fsync(fd);
  const int fsync_errno = errno;  // for the caller's message
  seconds.Observe(metrics::SecondsSince(start));
  errno = fsync_errno;
  return rc;
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
  if (TimedFsync(fd) != 0) {
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
  TimedFsync(fd);
  ::close(fd);
}

}  // namespace

// Named and read as fragment_file.h says; fragment_archive_read.cpp reads with them too.
namespace fragment_file {

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

}  // namespace fragment_file

namespace {

using fragment_file::FileName;
using fragment_file::Format;
using fragment_file::Parse;
using fragment_file::ReadFragment;

std::optional<int64_t> ReadRetention(const fs::path& folder) {
  std::ifstream in(folder / "retention_ms");
  int64_t ms = 0;
  if (in >> ms && ms > 0) return ms;
  return std::nullopt;
}

}  // namespace

// Counts a write of one stream as under way from its construction: a Forget
// of the stream from then on drops it (Dropped), whether it is still writing
// aside or about to publish.
class FragmentArchive::Write {
 public:
  Write(FragmentArchive& archive, const std::string& stream) : archive_(archive), stream_(stream) {
    MutexLock lock(archive_.mu_);
    Writes& w = archive_.writes_[stream_];
    ++w.count;
    forgets_ = w.forgets;
  }
  ~Write() {
    MutexLock lock(archive_.mu_);
    auto it = archive_.writes_.find(stream_);
    if (--it->second.count == 0) archive_.writes_.erase(it);
  }
  const std::string& stream() const { return stream_; }
  // The stream's Forgets counted when the write began.
  uint64_t forgets() const { return forgets_; }

 private:
  FragmentArchive& archive_;
  const std::string stream_;
  uint64_t forgets_ = 0;
};

bool FragmentArchive::Dropped(const Write& write) const {
  return writes_.at(write.stream()).forgets != write.forgets() || doomed_.count(write.stream()) > 0;
}

FragmentArchive::FragmentArchive(fs::path root) : root_(std::move(root)) {
  deleter_ = std::thread([this] { DeleteLoop(); });
}

FragmentArchive::~FragmentArchive() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  deletions_cv_.notify_all();
  deleter_.join();
}

Status FragmentArchive::SetRetention(const std::string& stream, int64_t retention_ms) {
  Write write(*this, stream);
  if (write_started_hook_) write_started_hook_(stream);
  return StoreFile(write, stream, "retention_ms", std::to_string(retention_ms));
}

Status FragmentArchive::StoreFile(const Write& write, const std::string& stream,
                                  const std::string& file, const std::string& bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::string id = std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  const fs::path folder = FolderOf(stream);
  // Written and synced aside, outside any lock; only renames happen under mu_.
  const fs::path tmp = root_ / ".tmp" / (id + "-" + file);
  LF_RETURN_IF_ERROR(WriteFileDurably(tmp, bytes));
  std::error_code ec;
  fs::path name_tmp;  // the stream's name, while its folder has none
  if (!fs::exists(folder / "name", ec)) {
    name_tmp = root_ / ".tmp" / (id + "-name");
    if (Status s = WriteFileDurably(name_tmp, stream); !s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  bool created = false;
  Status published = [&]() -> Status {
    MutexLock lock(mu_);
    if (Dropped(write)) return StreamDeleted(stream);
    if (!fs::exists(folder, ec)) {
      if (!fs::create_directory(folder, ec)) {
        errno = ec ? ec.value() : EEXIST;
        return ArchivalError("cannot create the stream's folder");
      }
      created = true;
    }
    if (!name_tmp.empty() && !fs::exists(folder / "name", ec) &&
        std::rename(name_tmp.c_str(), (folder / "name").c_str()) != 0)
      return ArchivalError("cannot name the stream's folder");
    if (std::rename(tmp.c_str(), (folder / file).c_str()) != 0)
      return ArchivalError("cannot store " + file);
    return Status::Ok();
  }();
  if (!name_tmp.empty()) ::unlink(name_tmp.c_str());  // gone if it was renamed
  if (!published.ok()) {
    ::unlink(tmp.c_str());
    return published;
  }
  SyncFolder(folder);
  if (created) SyncFolder(root_);
  return Status::Ok();
}

Result<std::unique_ptr<FragmentArchive>> FragmentArchive::Open(fs::path root) {
  std::error_code ec;
  fs::create_directories(root / ".tmp", ec);
  if (!ec) fs::create_directories(root / kTrash, ec);
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
  Write write(*this, stream);
  if (write_started_hook_) write_started_hook_(stream);
  FileName name{fragment.server_ts_ms, fragment.number, fragment.producer_ts_ms,
                static_cast<int64_t>(fragment.frames.size()), fragment.timecode_ms};
  return StoreFile(write, stream, Format(name), *bytes);
}

void FragmentArchive::Forget(const std::string& stream) {
  const fs::path folder = FolderOf(stream);
  MutexLock lock(mu_);
  // Writes of the stream under way are dropped when they come to publish.
  if (auto it = writes_.find(stream); it != writes_.end()) ++it->second.forgets;
  std::error_code ec;
  if (!fs::exists(folder, ec) && !ec) return;
  // Renamed aside under mu_, so that no write publishes into it meanwhile.
  fs::path aside =
      root_ / kTrash / (std::to_string(::getpid()) + "-" + std::to_string(trash_sequence_++));
  if (std::rename(folder.c_str(), aside.c_str()) == 0) {
    deletions_.push_back({aside, ""});
  } else {
    // It will not move (EBUSY, EACCES...): removed where it is, and no write
    // of the stream may publish into it until that is done.
    ++doomed_[stream];
    deletions_.push_back({folder, stream});
  }
  deletions_cv_.notify_all();
}

void FragmentArchive::WaitForDeletions() {
  MutexLock lock(mu_);
  lock.Wait(idle_cv_, [this]() LF_REQUIRES(mu_) { return deletions_.empty() && !deleting_; });
}

bool FragmentArchive::RemoveFolder(const fs::path& path) const {
  std::error_code ec;
  fs::remove_all(path, ec);
  return !ec && !fs::exists(path, ec);
}

void FragmentArchive::DeleteLoop() {
  MutexLock lock(mu_);
  for (;;) {
    lock.Wait(deletions_cv_,
              [this]() LF_REQUIRES(mu_) { return stopping_ || !deletions_.empty(); });
    if (deletions_.empty()) return;  // stopping, and nothing left to do
    Deletion d = std::move(deletions_.front());
    deletions_.pop_front();
    deleting_ = true;
    auto backoff = kFirstRetry;
    for (int attempt = 1;; ++attempt) {
      lock.Unlock();
      bool removed;
      {
        MutexLock trim(trim_mu_);  // never in the middle of a Trim's walk
        removed = RemoveFolder(d.path);
      }
      lock.Lock();
      // Stopping: one try each, what is left in the trash goes at the next Recover.
      if (removed || attempt == kDeleteAttempts || stopping_) break;
      lock.WaitFor(deletions_cv_, backoff, [this]() LF_REQUIRES(mu_) { return stopping_; });
      backoff *= 2;
    }
    if (!d.stream.empty() && --doomed_[d.stream] == 0) doomed_.erase(d.stream);
    deleting_ = false;
    if (deletions_.empty()) idle_cv_.notify_all();
  }
}

RecoveryReport FragmentArchive::Recover() {
  RecoveryReport report;
  std::error_code ec;
  // Writes a crash cut short never got their names: they go.
  for (fs::directory_iterator it(root_ / ".tmp", ec), end; !ec && it != end; it.increment(ec)) {
    fs::remove(it->path(), ec);
    ++report.discarded;
  }
  // Folders of streams forgotten before a crash or stop removed them.
  {
    MutexLock trim(trim_mu_);
    for (fs::directory_iterator it(root_ / kTrash, ec), end; !ec && it != end; it.increment(ec))
      fs::remove_all(it->path(), ec);
  }
  ec.clear();
  for (fs::directory_iterator dir(root_, ec), end; !ec && dir != end; dir.increment(ec)) {
    if (!dir->is_directory() || dir->path().filename() == ".tmp" ||
        dir->path().filename() == kTrash)
      continue;
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
  MutexLock lock(trim_mu_);
  size_t deleted = 0;
  std::error_code ec;
  std::vector<std::tuple<int64_t, uint64_t, uint64_t, fs::path>> kept;  // of all streams
  uint64_t kept_bytes = 0;
  for (fs::directory_iterator dir(root_, ec), end; !ec && dir != end; dir.increment(ec)) {
    if (!dir->is_directory() || dir->path().filename() == ".tmp" ||
        dir->path().filename() == kTrash)
      continue;
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

}  // namespace lastframe::store
