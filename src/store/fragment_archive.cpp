#include "store/fragment_archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <optional>
#include <set>
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
constexpr const char* kFree = ".free";
// Recycled files kept at most: what retention lets go between two trims (30 s) at
// hundreds of streams, within a bound on the disk they hold.
constexpr size_t kMaxFreeFiles = 16384;
constexpr uint64_t kMaxFreeBytes = 1ull << 30;
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

struct ArchiveMetrics {
  metrics::Histogram& sync_seconds = metrics::Registry::Global().AddHistogram(
      "lastframe_fragment_fsync_duration_seconds",
      "Time spent in each sync (fsync or syncfs) of the fragment archive's files and folders.",
      metrics::LatencyBuckets());
  metrics::Counter& syncs = metrics::Registry::Global().AddCounter(
      "lastframe_archive_syncs_total",
      "Sync system calls (fsync, fdatasync, syncfs) the fragment archive made.");
  metrics::Counter& persisted =
      metrics::Registry::Global().AddCounter("lastframe_archive_fragments_persisted_total",
                                             "Fragments the fragment archive made durable.");
  metrics::Histogram& commit_fragments = metrics::Registry::Global().AddHistogram(
      "lastframe_archive_commit_fragments",
      "Fragments made durable together by one commit round of the fragment archive.",
      {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  metrics::Gauge& queue_bytes = metrics::Registry::Global().AddGauge(
      "lastframe_archive_queue_bytes",
      "Bytes of fragments queued for the fragment archive's writers.");
};

ArchiveMetrics& Metrics() {
  static ArchiveMetrics m;
  return m;
}

// A sync system call, counted and timed: what durability costs, and a slow
// disk shows here first. Keeps errno for the caller's message.
template <typename Call>
int TimedSync(Call call) {
  ArchiveMetrics& m = Metrics();
  const auto start = std::chrono::steady_clock::now();
  int rc = call();
  const int sync_errno = errno;
  m.syncs.Add();
  m.sync_seconds.Observe(metrics::SecondsSince(start));
  errno = sync_errno;
  return rc;
}

// Writes |bytes| from the start of |fd| (open on |path|), cut to their length, fsync'd if
// |sync|, and closes it; on failure |path| is removed.
Status WriteFileAndClose(int fd, const fs::path& path, const std::string& bytes, bool sync) {
  auto fail = [&](const char* what) {
    Status s = ArchivalError(what);
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  };
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::pwrite(fd, bytes.data() + off, bytes.size() - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return fail("cannot write a fragment file");
    }
    off += static_cast<size_t>(n);
  }
  // A file written over loses what it had past the new bytes' end.
  if (::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0)
    return fail("cannot write a fragment file");
  if (sync && TimedSync([fd] { return ::fsync(fd); }) != 0)
    return fail("cannot sync a fragment file");
  if (::close(fd) != 0) {
    Status s = ArchivalError("cannot write a fragment file");
    ::unlink(path.c_str());
    return s;
  }
  return Status::Ok();
}

// Writes |bytes| to a new file |path|, fsync'd if |sync|; on failure nothing is left.
Status WriteNewFile(const fs::path& path, const std::string& bytes, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ArchivalError("cannot create a fragment file");
  return WriteFileAndClose(fd, path, bytes, sync);
}

// fsync(2) of the file or folder at |path|; false (errno set) if it fails.
bool SyncPath(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = TimedSync([fd] { return ::fsync(fd); }) == 0;
  const int sync_errno = errno;
  ::close(fd);
  errno = sync_errno;
  return ok;
}

// Whether this kernel's syncfs(2) reports write-back errors (Linux 5.8 on);
// before, it returned 0 whatever was lost, and only fsync can be trusted.
bool SyncfsReportsErrors() {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 8);
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

// Bytes in memory as libavformat's input: read and seek over them.
struct MemoryInput {
  std::string_view bytes;
  size_t at = 0;
  static int Read(void* opaque, uint8_t* buf, int size) {
    auto* in = static_cast<MemoryInput*>(opaque);
    const size_t n = std::min(static_cast<size_t>(size), in->bytes.size() - in->at);
    if (n == 0) return AVERROR_EOF;
    std::memcpy(buf, in->bytes.data() + in->at, n);
    in->at += n;
    return static_cast<int>(n);
  }
  static int64_t Seek(void* opaque, int64_t offset, int whence) {
    auto* in = static_cast<MemoryInput*>(opaque);
    const int64_t size = static_cast<int64_t>(in->bytes.size());
    int64_t to = 0;
    switch (whence & ~AVSEEK_FORCE) {
      case AVSEEK_SIZE:
        return size;
      case SEEK_SET:
        to = offset;
        break;
      case SEEK_CUR:
        to = static_cast<int64_t>(in->at) + offset;
        break;
      case SEEK_END:
        to = size + offset;
        break;
      default:
        return AVERROR(EINVAL);
    }
    if (to < 0 || to > size) return AVERROR(EINVAL);
    in->at = static_cast<size_t>(to);
    return to;
  }
};

struct IoCloser {
  void operator()(AVIOContext* io) const {
    if (io) av_freep(&io->buffer);
    avio_context_free(&io);
  }
};

Result<FragmentView> ReadOpened(std::unique_ptr<AVFormatContext, FormatCloser> ctx,
                                const FileName& name);

// Reads one fragment file back: its frames on the fragment's own timeline.
Result<FragmentView> ReadFragment(const fs::path& path, const FileName& name) {
  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0)
    return Status(Code::kMediaError, "unreadable");
  return ReadOpened(std::unique_ptr<AVFormatContext, FormatCloser>(raw), name);
}

Result<FragmentView> ReadFragmentBytes(std::string_view bytes, const FileName& name) {
  constexpr int kBufferBytes = 64 * 1024;
  MemoryInput input{bytes};
  auto* buffer = static_cast<unsigned char*>(av_malloc(kBufferBytes));
  if (buffer == nullptr) return Internal("out of memory");
  std::unique_ptr<AVIOContext, IoCloser> io(avio_alloc_context(
      buffer, kBufferBytes, 0, &input, &MemoryInput::Read, nullptr, &MemoryInput::Seek));
  if (!io) {
    av_free(buffer);
    return Internal("out of memory");
  }
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return Internal("out of memory");
  raw->pb = io.get();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  // Freed by avformat_open_input on failure; the AVIO stays ours.
  if (avformat_open_input(&raw, nullptr, av_find_input_format("matroska"), nullptr) < 0)
    return Status(Code::kMediaError, "unreadable");
  // The format context goes before the AVIO it reads from.
  Result<FragmentView> read = ReadOpened(std::unique_ptr<AVFormatContext, FormatCloser>(raw), name);
  return read;
}

Result<FragmentView> ReadOpened(std::unique_ptr<AVFormatContext, FormatCloser> ctx,
                                const FileName& name) {
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

// One write in the writers' queue, and what its round made of it.
struct FragmentArchive::Job {
  std::string stream;
  std::optional<FragmentView> fragment;             // muxed by its writer, or else:
  std::string file;                                 // the file's name in the stream's folder
  std::string bytes;                                // and its bytes (a small file)
  uint64_t queued_bytes = 0;                        // what it counts against the queue's bound
  std::chrono::steady_clock::time_point queued_at;  // when it joined the queue
  std::unique_ptr<Write> write;                     // from the call on: a Forget drops it
  std::function<void(Status)> done;
  // Instead of |done|: told the file's bytes too (PersistAsyncKeepingBytes).
  BytesCallback done_with_bytes;
  std::shared_ptr<const std::string> kept;  // the bytes written, for done_with_bytes
  Status status;  // not Ok once refused, dropped or failed: then left alone
  // Set as its round goes:
  std::filesystem::path folder;
  std::filesystem::path tmp;       // its bytes, aside
  std::filesystem::path name_tmp;  // the stream's name, while its folder has none
  bool written = false;            // aside (and synced, by the time it publishes)
  bool published = false;          // renamed into place
  bool created_folder = false;
};

namespace {
// Set on the archive's writer threads: a Persist there would wait for itself.
thread_local bool on_writer_thread = false;
}  // namespace

FragmentArchive::FragmentArchive(fs::path root, ArchiveOptions options)
    : root_(std::move(root)),
      options_(options),
      use_syncfs_(options.sync == ArchiveOptions::Sync::kAuto && SyncfsReportsErrors()) {
  Metrics();  // every series shows in /metrics from the start
  deleter_ = std::thread([this] { DeleteLoop(); });
  const int writers = std::clamp(options_.writer_threads, 1, 2);
  {
    MutexLock lock(queue_mu_);
    writers_running_ = writers;
  }
  for (int i = 0; i < writers; ++i) writers_.emplace_back([this] { WriterLoop(); });
}

FragmentArchive::~FragmentArchive() {
  // The writers first: they finish every queued write (a Forget's folder may
  // still be renamed aside meanwhile), then the deleter.
  {
    MutexLock lock(queue_mu_);
    writers_stopping_ = true;
  }
  queue_cv_.notify_all();
  room_cv_.notify_all();
  for (std::thread& writer : writers_) writer.join();
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  deletions_cv_.notify_all();
  deleter_.join();
}

void FragmentArchive::PauseWritersForTest(bool paused) {
  {
    MutexLock lock(queue_mu_);
    paused_ = paused;
  }
  queue_cv_.notify_all();
}

void FragmentArchive::PersistAsync(const std::string& stream, FragmentView fragment,
                                   std::function<void(Status)> done) {
  auto job = std::make_unique<Job>();
  job->stream = stream;
  job->queued_bytes = fragment.bytes;
  job->fragment = std::move(fragment);
  job->done = std::move(done);
  job->write = std::make_unique<Write>(*this, stream);
  if (write_started_hook_) write_started_hook_(stream);
  Enqueue(std::move(job), /*wait_for_room=*/false);
}

void FragmentArchive::PersistAsyncKeepingBytes(const std::string& stream, FragmentView fragment,
                                               BytesCallback done) {
  auto job = std::make_unique<Job>();
  job->stream = stream;
  job->queued_bytes = fragment.bytes;
  job->fragment = std::move(fragment);
  job->done_with_bytes = std::move(done);
  job->write = std::make_unique<Write>(*this, stream);
  if (write_started_hook_) write_started_hook_(stream);
  Enqueue(std::move(job), /*wait_for_room=*/false);
}

Status FragmentArchive::Persist(const std::string& stream, const FragmentView& fragment) {
  auto job = std::make_unique<Job>();
  job->stream = stream;
  job->queued_bytes = fragment.bytes;
  job->fragment = fragment;
  job->write = std::make_unique<Write>(*this, stream);
  if (write_started_hook_) write_started_hook_(stream);
  return EnqueueAndWait(std::move(job));
}

Status FragmentArchive::SetRetention(const std::string& stream, int64_t retention_ms) {
  auto job = std::make_unique<Job>();
  job->stream = stream;
  job->file = "retention_ms";
  job->bytes = std::to_string(retention_ms);
  job->queued_bytes = job->bytes.size();
  job->write = std::make_unique<Write>(*this, stream);
  if (write_started_hook_) write_started_hook_(stream);
  return EnqueueAndWait(std::move(job));
}

Status FragmentArchive::EnqueueAndWait(std::unique_ptr<Job> job) {
  if (on_writer_thread)
    return Status(Code::kInternal, "a write waited on the archive's own writer thread");
  // Shared: |done| may still be returning from set_value when get() does.
  auto outcome = std::make_shared<std::promise<Status>>();
  std::future<Status> status = outcome->get_future();
  job->done = [outcome](Status s) { outcome->set_value(std::move(s)); };
  Enqueue(std::move(job), /*wait_for_room=*/true);
  return status.get();
}

void FragmentArchive::Enqueue(std::unique_ptr<Job> job, bool wait_for_room) {
  MutexLock lock(queue_mu_);
  const uint64_t max = options_.max_queued_bytes;
  auto fits = [&]() LF_REQUIRES(queue_mu_) {
    return queued_bytes_ == 0 || queued_bytes_ + job->queued_bytes <= max;
  };
  if (wait_for_room)
    lock.Wait(room_cv_, [&]() LF_REQUIRES(queue_mu_) { return writers_stopping_ || fits(); });
  if (writers_stopping_) {
    job->status = Status(Code::kUnavailable, "the fragment archive is closing: not stored",
                         Reason::kArchivalError);
  } else if (!fits()) {
    job->status = Status(Code::kUnavailable,
                         "the fragment archive is behind (" + std::to_string(queued_bytes_) +
                             " bytes queued for the disk): not stored",
                         Reason::kArchivalError);
  }
  if (!job->status.ok()) job->queued_bytes = 0;
  if (writers_running_ == 0) {
    // Every writer is gone (the archive is closing): nothing queued is left
    // to run before this one.
    lock.Unlock();
    std::function<void(Status)> done = std::move(job->done);
    BytesCallback done_with_bytes = std::move(job->done_with_bytes);
    Status status = job->status;
    job.reset();
    if (done) done(std::move(status));
    if (done_with_bytes) done_with_bytes(std::move(status), nullptr);
    return;
  }
  // Refused writes are queued all the same (costing no bytes): their |done|s
  // run in order with the others'.
  queued_bytes_ += job->queued_bytes;
  Metrics().queue_bytes.Add(static_cast<double>(job->queued_bytes));
  job->queued_at = std::chrono::steady_clock::now();
  queue_.push_back(std::move(job));
  queue_cv_.notify_one();
}

void FragmentArchive::WriterLoop() {
  on_writer_thread = true;
  const size_t max_round = std::max<size_t>(options_.max_round_writes, 1);
  // syncfs reports a write-back error once per descriptor (since it last
  // looked): a descriptor of each writer's own, so that neither misses one
  // the other's call reported (then it falls back to fsync of each file).
  const int sync_fd = use_syncfs_ ? ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  MutexLock lock(queue_mu_);
  for (;;) {
    lock.Wait(queue_cv_, [this]() LF_REQUIRES(queue_mu_) {
      return writers_stopping_ || (!paused_ && !queue_.empty());
    });
    if (queue_.empty()) break;  // stopping, and all done
    // Group commit that groups: a round begins once the oldest queued write has waited
    // commit_delay (a full round, a pause or the end cuts it short), then takes all.
    auto cut_short = [&]() LF_REQUIRES(queue_mu_) {
      return writers_stopping_ || paused_ || queue_.empty() || queue_.size() >= max_round ||
             queued_bytes_ >= options_.max_queued_bytes / 2;  // nor near refusing writes
    };
    while (options_.commit_delay.count() > 0 && !cut_short()) {
      const auto due = queue_.front()->queued_at + options_.commit_delay;
      if (std::chrono::steady_clock::now() >= due) break;
      lock.WaitUntil(queue_cv_, due, cut_short);  // then looks at the front again
    }
    if (queue_.empty() || (paused_ && !writers_stopping_)) continue;  // taken, or paused
    std::vector<std::unique_ptr<Job>> round;
    uint64_t bytes = 0;
    while (!queue_.empty() && round.size() < max_round) {
      bytes += queue_.front()->queued_bytes;
      round.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_bytes_ -= bytes;
    Metrics().queue_bytes.Add(-static_cast<double>(bytes));
    const uint64_t ticket = ++rounds_taken_;
    room_cv_.notify_all();
    if (!queue_.empty()) queue_cv_.notify_one();  // the other writer takes the next round
    lock.Unlock();
    CommitRound(round, ticket, sync_fd);
    round.clear();  // their Writes go (taking mu_) outside queue_mu_
    lock.Lock();
  }
  --writers_running_;
  if (sync_fd >= 0) ::close(sync_fd);
}

void FragmentArchive::WriteAside(Job& job) {
  {
    MutexLock lock(mu_);
    if (Dropped(*job.write)) {
      job.status = StreamDeleted(job.stream);
      return;
    }
  }
  std::string muxed;
  const std::string* bytes = &job.bytes;
  if (job.fragment) {
    const FragmentView& f = *job.fragment;
    job.file = Format(FileName{f.server_ts_ms, f.number, f.producer_ts_ms,
                               static_cast<int64_t>(f.frames.size()), f.timecode_ms});
    auto m = MuxClip({std::move(*job.fragment)}, ClipFormat::kMatroska, kMaxFragmentFileBytes);
    job.fragment.reset();  // its frames' packets are the store's to let go now
    if (!m.ok()) {
      job.status = m.status();
      return;
    }
    if (job.done_with_bytes) {
      job.kept = std::make_shared<const std::string>(std::move(*m));
      bytes = job.kept.get();
    } else {
      muxed = std::move(*m);
      bytes = &muxed;
    }
  }
  static std::atomic<uint64_t> counter{0};
  const std::string id = std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  job.folder = FolderOf(job.stream);
  // Without syncfs each file is fsync'd as it is written.
  const bool sync_each = !use_syncfs_;
  job.tmp = root_ / ".tmp" / (id + "-" + job.file);
  if (Status s = WriteOverFreeFile(job.tmp, *bytes, sync_each); !s.ok()) {
    job.status = s;
    return;
  }
  std::error_code ec;
  if (!fs::exists(job.folder / "name", ec)) {
    job.name_tmp = root_ / ".tmp" / (id + "-name");
    if (Status s = WriteNewFile(job.name_tmp, job.stream, sync_each); !s.ok()) {
      ::unlink(job.tmp.c_str());
      job.status = s;
      return;
    }
  }
  job.written = true;
}

Status FragmentArchive::WriteOverFreeFile(const fs::path& path, const std::string& bytes,
                                          bool sync) {
  for (;;) {
    fs::path free;
    {
      MutexLock lock(free_mu_);
      if (free_files_.empty()) break;
      free = std::move(free_files_.back().path);
      free_bytes_ -= free_files_.back().size;
      free_files_.pop_back();
    }
    // Gone (a Recover cleared .free): the next, else a new file.
    if (std::rename(free.c_str(), path.c_str()) != 0) {
      ::unlink(free.c_str());
      continue;
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      ::unlink(path.c_str());
      continue;
    }
    return WriteFileAndClose(fd, path, bytes, sync);
  }
  return WriteNewFile(path, bytes, sync);
}

bool FragmentArchive::Recycle(const fs::path& file, uint64_t size, uint64_t max_free_bytes,
                              std::vector<Recycled>& recycled) {
  fs::path free;
  {
    MutexLock lock(free_mu_);
    if (free_files_.size() + recycled.size() < kMaxFreeFiles &&
        free_bytes_ + size <= max_free_bytes) {
      free = root_ / kFree / std::to_string(free_sequence_++);
      free_bytes_ += size;  // held for it from now on
    }
  }
  if (!free.empty()) {
    if (std::rename(file.c_str(), free.c_str()) == 0) {
      recycled.push_back({std::move(free), file.parent_path(), size});
      return true;
    }
    MutexLock lock(free_mu_);
    free_bytes_ -= size;
  }
  std::error_code ec;
  return fs::remove(file, ec);
}

void FragmentArchive::GiveToWriters(std::vector<Recycled> recycled) {
  if (recycled.empty()) return;
  bool durable = false;
  if (use_syncfs_) {
    const int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      durable = TimedSync([fd] { return ::syncfs(fd); }) == 0;
      ::close(fd);
    }
  }
  if (!durable) {  // each folder they left, and .free
    std::set<fs::path> folders{root_ / kFree};
    for (const Recycled& r : recycled) folders.insert(r.from);
    durable = true;
    for (const fs::path& folder : folders) durable &= SyncPath(folder);
  }
  MutexLock lock(free_mu_);
  for (Recycled& r : recycled) {
    if (durable) {
      free_files_.push_back({std::move(r.free), r.size});
    } else {
      ::unlink(r.free.c_str());
      free_bytes_ -= r.size;
    }
  }
}

void FragmentArchive::SyncEachFile(std::vector<std::unique_ptr<Job>>& round) {
  for (auto& job : round) {
    if (!job->written) continue;
    if (SyncPath(job->tmp) && (job->name_tmp.empty() || SyncPath(job->name_tmp))) continue;
    job->status = ArchivalError("cannot sync a fragment file");
    ::unlink(job->tmp.c_str());
    if (!job->name_tmp.empty()) ::unlink(job->name_tmp.c_str());
    job->written = false;
  }
}

void FragmentArchive::Publish(Job& job) {
  std::error_code ec;
  Status published = [&]() -> Status {
    MutexLock lock(mu_);
    if (Dropped(*job.write)) return StreamDeleted(job.stream);
    if (!fs::exists(job.folder, ec)) {
      if (!fs::create_directory(job.folder, ec)) {
        errno = ec ? ec.value() : EEXIST;
        return ArchivalError("cannot create the stream's folder");
      }
      job.created_folder = true;
    }
    if (!job.name_tmp.empty() && !fs::exists(job.folder / "name", ec) &&
        std::rename(job.name_tmp.c_str(), (job.folder / "name").c_str()) != 0)
      return ArchivalError("cannot name the stream's folder");
    if (std::rename(job.tmp.c_str(), (job.folder / job.file).c_str()) != 0)
      return ArchivalError("cannot store " + job.file);
    return Status::Ok();
  }();
  if (!job.name_tmp.empty()) ::unlink(job.name_tmp.c_str());  // gone if it was renamed
  if (!published.ok()) {
    ::unlink(job.tmp.c_str());
    job.status = published;
    return;
  }
  job.published = true;
}

void FragmentArchive::CommitRound(std::vector<std::unique_ptr<Job>>& round, uint64_t ticket,
                                  int sync_fd) {
  // 1. Each written aside, outside any lock (fsync'd too, without syncfs).
  bool any_written = false;
  for (auto& job : round) {
    if (job->status.ok()) WriteAside(*job);
    any_written |= job->written;
  }
  // 2. All made durable at once: the file system's dirty data, one call.
  auto sync_all = [sync_fd] {
    return sync_fd >= 0 && TimedSync([=] { return ::syncfs(sync_fd); }) == 0;
  };
  if (any_written && use_syncfs_ && !sync_all()) SyncEachFile(round);
  // 3. Published in the order the rounds took their writes: |done|s of one
  // stream run in the order of its calls, whichever writer has them.
  {
    MutexLock lock(queue_mu_);
    lock.Wait(turn_cv_, [&]() LF_REQUIRES(queue_mu_) { return rounds_committed_ + 1 == ticket; });
  }
  std::map<fs::path, bool> folders;  // published into: created by this round?
  for (auto& job : round) {
    if (!job->written) continue;
    Publish(*job);
    if (job->published) folders[job->folder] |= job->created_folder;
  }
  // 4. The renames made durable: one syncfs, else each folder (and the root,
  // for folders made) fsync'd. A file whose rename may not last is not kept.
  if (!folders.empty() && !(use_syncfs_ && sync_all())) {
    bool any_created = false;
    for (const auto& [folder, created] : folders) any_created |= created;
    std::optional<Status> root_failed;
    if (any_created && !SyncPath(root_)) root_failed = ArchivalError("cannot sync the archive");
    std::map<fs::path, Status> failed;
    for (const auto& [folder, created] : folders) {
      if (!SyncPath(folder))
        failed.emplace(folder, ArchivalError("cannot sync the stream's folder"));
      else if (created && root_failed)
        failed.emplace(folder, *root_failed);
    }
    for (auto& job : round) {
      if (!job->published) continue;
      auto it = failed.find(job->folder);
      if (it == failed.end()) continue;
      ::unlink((job->folder / job->file).c_str());
      job->published = false;
      job->status = it->second;
    }
  }
  // 5. Told, in order.
  ArchiveMetrics& m = Metrics();
  size_t fragments = 0;
  for (const auto& job : round) fragments += job->published && job->file != "retention_ms";
  if (fragments > 0) {
    m.commit_fragments.Observe(static_cast<double>(fragments));
    m.persisted.Add(fragments);
  }
  for (auto& job : round) {
    job->write.reset();
    if (job->done) job->done(job->status);
    if (job->done_with_bytes)
      job->done_with_bytes(job->status, job->status.ok() ? std::move(job->kept) : nullptr);
  }
  {
    MutexLock lock(queue_mu_);
    rounds_committed_ = ticket;
  }
  turn_cv_.notify_all();
}

Result<std::unique_ptr<FragmentArchive>> FragmentArchive::Open(fs::path root,
                                                               ArchiveOptions options) {
  std::error_code ec;
  fs::create_directories(root / ".tmp", ec);
  if (!ec) fs::create_directories(root / kTrash, ec);
  if (!ec) fs::create_directories(root / kFree, ec);
  if (ec) return Status(Code::kUnavailable, "cannot create " + root.string() + ": " + ec.message());
  return std::unique_ptr<FragmentArchive>(new FragmentArchive(std::move(root), options));
}

fs::path FragmentArchive::FolderOf(const std::string& stream) const {
  if (stream == "." || stream == ".." || stream.size() > 200 || stream.front() == '.')
    return root_ / ("h-" + Sha256Hex(stream));
  return root_ / stream;
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
  // Recycled files of an earlier run: removed (those of this run are not, to be written over).
  {
    MutexLock lock(free_mu_);
    std::set<fs::path> ours;
    for (const FreeFile& f : free_files_) ours.insert(f.path);
    ec.clear();
    for (fs::directory_iterator it(root_ / kFree, ec), end; !ec && it != end; it.increment(ec))
      if (!ours.count(it->path())) fs::remove(it->path(), ec);
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
        dir->path().filename() == kTrash || dir->path().filename() == kFree)
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
  // Files kept to be written over hold at most an eighth of the archive's budget.
  const uint64_t max_free_bytes = std::min(kMaxFreeBytes, max_total_bytes / 8);
  std::vector<Recycled> recycled;
  std::vector<std::tuple<int64_t, uint64_t, uint64_t, fs::path>> kept;  // of all streams
  uint64_t kept_bytes = 0;
  for (fs::directory_iterator dir(root_, ec), end; !ec && dir != end; dir.increment(ec)) {
    if (!dir->is_directory() || dir->path().filename() == ".tmp" ||
        dir->path().filename() == kTrash || dir->path().filename() == kFree)
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
      if (Recycle(path, size, max_free_bytes, recycled)) ++deleted;
      total -= size;
    }
  }
  // Over the total budget: the oldest of any stream go first.
  std::sort(kept.begin(), kept.end());
  for (const auto& [server_ms, number, size, path] : kept) {
    if (kept_bytes <= max_total_bytes) break;
    if (Recycle(path, size, max_free_bytes, recycled)) ++deleted;
    kept_bytes -= size;
  }
  GiveToWriters(std::move(recycled));
  return deleted;
}

}  // namespace lastframe::store
