#include "store/stream_store.h"

extern "C" {
#include <libavcodec/avcodec.h>
}

#include <algorithm>
#include <limits>

#include "core/metrics.h"
#include "store/clip.h"

namespace lastframe::store {
namespace {

// Bytes of frames every stream store of the process holds in memory.
metrics::Gauge& MemoryGauge() {
  static metrics::Gauge& gauge = metrics::Registry::Global().AddGauge(
      "lastframe_store_memory_bytes",
      "Bytes of video frames the stream stores hold in memory (the rest of the retention is "
      "read back from the fragment files).");
  return gauge;
}

Status NotRetained(uint64_t number, const std::string& stream) {
  return NotFound("fragment " + std::to_string(number) + " of stream '" + stream +
                      "' is not retained (past the retention, or never there)",
                  Reason::kFragmentNotFound);
}

}  // namespace

Stream::Stream(std::string name, StreamStore* store)
    : name_(std::move(name)), store_(store), touched_ms_(store->clock().NowMs()) {
  MemoryGauge();  // shown from the first stream on, zero or not
}

Stream::~Stream() {
  MutexLock lock(mu_);
  AccountLocked(-static_cast<int64_t>(memory_bytes_));
}

void Stream::AccountLocked(int64_t delta) {
  memory_bytes_ = static_cast<size_t>(static_cast<int64_t>(memory_bytes_) + delta);
  MemoryGauge().Add(static_cast<double>(delta));
}

bool Stream::NeededLocked(size_t i) const {
  const size_t last = fragments_.size() - 1;
  if (i == last) return true;  // arriving, or the newest complete with none arriving
  // The newest complete one while the one arriving has no frame yet.
  const StoredFragment& back = fragments_[last];
  return i + 1 == last && !back.view.complete && back.frame_count == 0;
}

void Stream::MaybeEvictLocked(size_t i) {
  StoredFragment& f = fragments_[i];
  if (!f.in_memory || !f.persisted || !f.view.complete || NeededLocked(i)) return;
  f.in_memory = false;
  f.view.frames = {};  // readers' copies keep their packets alive as long as they need them
  AccountLocked(-static_cast<int64_t>(f.view.bytes));
}

void Stream::PopOldestLocked() {
  const StoredFragment& oldest = fragments_.front();
  bytes_ -= oldest.view.bytes;
  if (oldest.in_memory) AccountLocked(-static_cast<int64_t>(oldest.view.bytes));
  fragments_.pop_front();
}

int64_t Stream::MemoryCutoff(int64_t now_ms) const {
  const int64_t keep = store_->options().memory_retention_ms;
  if (store_->archive() != nullptr || keep <= 0) return std::numeric_limits<int64_t>::min();
  return now_ms - keep;
}

void Stream::SetOwned() {
  MutexLock lock(mu_);
  owned_ = true;
}

void Stream::Touch(int64_t now_ms) {
  MutexLock lock(mu_);
  touched_ms_ = now_ms;
}

bool Stream::Abandoned(int64_t now_ms) const {
  int64_t retention = retention_ms();
  MutexLock lock(mu_);
  return !owned_ && !framed_ && !writer_ && fragments_.empty() && now_ms - touched_ms_ > retention;
}

bool Stream::AcquireWriter() {
  MutexLock lock(mu_);
  if (writer_ || closed_) return false;
  writer_ = true;
  last_error_.clear();
  return true;
}

void Stream::ReleaseWriter(const std::string& error) {
  MutexLock lock(mu_);
  writer_ = false;
  last_error_ = error;
}

uint64_t Stream::BeginFragment(media::SharedCodecParameters codec, int64_t producer_ts_ms,
                               int64_t timecode_ms, Frame first, int64_t arrival_ms) {
  uint64_t number = store_->NextFragmentNumber();
  InsertFragment(number, std::move(codec), producer_ts_ms, timecode_ms, std::move(first),
                 arrival_ms);
  store_->NotifyFrame(name_);
  return number;
}

void Stream::InsertFragment(uint64_t number, media::SharedCodecParameters codec,
                            int64_t producer_ts_ms, int64_t timecode_ms, Frame first,
                            int64_t arrival_ms) {
  const StoreOptions& opt = store_->options();
  const int64_t memory_cutoff = MemoryCutoff(arrival_ms);
  MutexLock lock(mu_);
  framed_ = true;
  if (!fragments_.empty()) fragments_.back().view.complete = true;
  StoredFragment f;
  f.view.number = number;
  f.view.producer_ts_ms = producer_ts_ms;
  f.view.server_ts_ms = arrival_ms;
  f.view.timecode_ms = timecode_ms;
  f.view.codec = std::move(codec);
  f.view.bytes = first.size();
  f.last_arrival_ms = arrival_ms;
  f.frame_count = 1;
  f.first_pts_ms = f.newest_pts_ms = first.pts_ms;
  bytes_ += first.size();
  AccountLocked(static_cast<int64_t>(first.size()));
  f.view.frames.push_back(std::move(first));
  fragments_.push_back(std::move(f));
  // The one before holds the newest frame no longer: on disk, it leaves memory.
  if (fragments_.size() > 1) MaybeEvictLocked(fragments_.size() - 2);
  ++version_;
  changed_.notify_all();
  // Retention runs here too, so a busy stream never waits for the sweeper.
  int64_t cutoff = std::max(arrival_ms - retention_ms_.value_or(opt.retention_ms), memory_cutoff);
  size_t max_bytes = opt.max_bytes_per_stream;
  while (fragments_.size() > 1) {
    const StoredFragment& oldest = fragments_.front();
    if (oldest.last_arrival_ms >= cutoff && bytes_ <= max_bytes) break;
    PopOldestLocked();
  }
}

bool Stream::Append(Frame frame, int64_t arrival_ms) {
  if (!InsertFrame(std::move(frame), arrival_ms)) return false;
  store_->NotifyFrame(name_);
  return true;
}

bool Stream::InsertFrame(Frame frame, int64_t arrival_ms) {
  MutexLock lock(mu_);
  if (fragments_.empty() || fragments_.back().view.complete) return false;
  StoredFragment& f = fragments_.back();
  int64_t end = frame.pts_ms;
  if (frame.packet && frame.packet->duration > 0) end += frame.packet->duration;
  f.view.duration_ms = std::max(f.view.duration_ms, end - f.first_pts_ms);
  f.view.bytes += frame.size();
  bytes_ += frame.size();
  AccountLocked(static_cast<int64_t>(frame.size()));
  f.last_arrival_ms = arrival_ms;
  f.newest_pts_ms = std::max(f.newest_pts_ms, frame.pts_ms);
  ++f.frame_count;
  f.view.frames.push_back(std::move(frame));
  ++version_;
  changed_.notify_all();
  return true;
}

std::optional<FragmentView> Stream::CompleteFragment() {
  MutexLock lock(mu_);
  if (fragments_.empty() || fragments_.back().view.complete) return std::nullopt;
  fragments_.back().view.complete = true;
  ++version_;
  changed_.notify_all();
  return fragments_.back().view;
}

bool Stream::DropOpenFragment() {
  MutexLock lock(mu_);
  if (fragments_.empty() || fragments_.back().view.complete) return false;
  bytes_ -= fragments_.back().view.bytes;
  AccountLocked(-static_cast<int64_t>(fragments_.back().view.bytes));
  fragments_.pop_back();
  // The one before is the newest again; if its frames left memory, Latest
  // reads them back from its file.
  ++version_;
  changed_.notify_all();
  return true;
}

Stream::Taken Stream::TakeLocked(const StoredFragment& f) const {
  // Frames are shared, not copied.
  Taken taken{f.view, f.frame_count, !f.in_memory};
  taken.view.frame_count = f.frame_count;
  return taken;
}

Result<FragmentView> Stream::Load(Taken taken) const {
  if (!taken.evicted) return std::move(taken.view);
  const FragmentArchive* archive = store_->archive();
  if (archive == nullptr) return NotRetained(taken.view.number, name_);
  // The file is named after the index, its frame count included.
  FragmentView index = taken.view;
  index.frames.resize(taken.frame_count);
  auto read = archive->Read(name_, index);
  if (!read.ok()) return read.status();
  // The index as it was in memory (codec, duration, bytes), the frames from the file.
  taken.view.frames = std::move(read->frames);
  return std::move(taken.view);
}

std::vector<FragmentView> Stream::LoadAll(std::vector<Taken> taken) const {
  std::vector<FragmentView> out;
  out.reserve(taken.size());
  for (Taken& t : taken) {
    auto loaded = Load(std::move(t));
    if (loaded.ok()) out.push_back(std::move(*loaded));  // else trimmed or deleted meanwhile
  }
  return out;
}

std::vector<FragmentView> Stream::FragmentsFrom(uint64_t first) const {
  std::vector<Taken> taken;
  {
    MutexLock lock(mu_);
    for (const auto& f : fragments_)
      if (f.view.number >= first) taken.push_back(TakeLocked(f));
  }
  return LoadAll(std::move(taken));
}

std::vector<FragmentView> Stream::Select(const FragmentQuery& query) const {
  std::vector<Taken> taken;
  {
    MutexLock lock(mu_);
    for (const auto& f : fragments_)
      if (query.Wants(f.view)) taken.push_back(TakeLocked(f));
  }
  if (!query.with_frames) {
    // The index alone, as a remote source answers it: no file is read back, and
    // no view has frames (callers such as /clip fetch them all by number then).
    std::vector<FragmentView> out;
    out.reserve(taken.size());
    for (Taken& t : taken) {
      t.view.frames.clear();
      t.view.codec.reset();
      out.push_back(std::move(t.view));
    }
    return out;
  }
  return LoadAll(std::move(taken));
}

Result<std::vector<FragmentView>> Stream::FragmentsByNumber(
    const std::vector<uint64_t>& numbers) const {
  std::vector<Taken> taken;
  taken.reserve(numbers.size());
  {
    MutexLock lock(mu_);
    for (uint64_t n : numbers) {
      auto it =
          std::lower_bound(fragments_.begin(), fragments_.end(), n,
                           [](const StoredFragment& f, uint64_t v) { return f.view.number < v; });
      if (it == fragments_.end() || it->view.number != n) return NotRetained(n, name_);
      taken.push_back(TakeLocked(*it));
    }
  }
  std::vector<FragmentView> out;
  out.reserve(taken.size());
  for (Taken& t : taken) {
    const uint64_t number = t.view.number;
    auto loaded = Load(std::move(t));
    if (loaded.ok()) {
      out.push_back(std::move(*loaded));
    } else if (loaded.status().reason() == Reason::kFragmentNotFound) {
      return NotRetained(number, name_);  // its file was trimmed or deleted meanwhile
    } else {
      return loaded.status();
    }
  }
  return out;
}

size_t Stream::MemoryBytes() const {
  MutexLock lock(mu_);
  return memory_bytes_;
}

size_t Stream::FragmentsInMemory() const {
  MutexLock lock(mu_);
  return static_cast<size_t>(std::count_if(fragments_.begin(), fragments_.end(),
                                           [](const StoredFragment& f) { return f.in_memory; }));
}

uint64_t Stream::version() const {
  MutexLock lock(mu_);
  return version_;
}

uint64_t Stream::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  lock.WaitFor(changed_, timeout, [&]() LF_REQUIRES(mu_) { return version_ != seen || closed_; });
  return version_;
}

void Stream::Close() {
  MutexLock lock(mu_);
  closed_ = true;
  changed_.notify_all();
}

bool Stream::CloseUnlessWritten() {
  MutexLock lock(mu_);
  if (writer_) return false;
  closed_ = true;
  changed_.notify_all();
  return true;
}

bool Stream::closed() const {
  MutexLock lock(mu_);
  return closed_;
}

int64_t Stream::retention_ms() const {
  MutexLock lock(mu_);
  return retention_ms_.value_or(store_->options().retention_ms);
}

void Stream::SetRetention(std::optional<int64_t> retention_ms) {
  MutexLock lock(mu_);
  retention_ms_ = retention_ms;
}

void Stream::Restore(std::vector<FragmentView> fragments) {
  MutexLock lock(mu_);
  framed_ = framed_ || !fragments.empty();
  for (auto& f : fragments) {
    StoredFragment stored;
    stored.last_arrival_ms = f.server_ts_ms + f.duration_ms;
    stored.frame_count = f.frames.size();
    if (!f.frames.empty()) {
      stored.first_pts_ms = f.frames.front().pts_ms;
      stored.newest_pts_ms = stored.first_pts_ms;
      for (const Frame& fr : f.frames)
        stored.newest_pts_ms = std::max(stored.newest_pts_ms, fr.pts_ms);
    }
    stored.persisted = true;  // read from its file
    bytes_ += f.bytes;
    AccountLocked(static_cast<int64_t>(f.bytes));
    stored.view = std::move(f);
    fragments_.push_back(std::move(stored));
  }
  // Only the newest stays in memory; the rest is read back when asked for
  // (where there is an archive to read from; else at SetArchive).
  if (store_->archive() != nullptr)
    for (size_t i = 0; i < fragments_.size(); ++i) MaybeEvictLocked(i);
}

void Stream::EvictPersisted() {
  MutexLock lock(mu_);
  for (size_t i = 0; i < fragments_.size(); ++i) MaybeEvictLocked(i);
}

void Stream::MarkPersisted(uint64_t number) {
  MutexLock lock(mu_);
  // Persisted in order, so it is at the back or near it.
  for (size_t i = fragments_.size(); i-- > 0;) {
    StoredFragment& f = fragments_[i];
    if (f.view.number == number) {
      f.persisted = true;
      MaybeEvictLocked(i);
      return;
    }
    if (f.view.number < number) return;  // trimmed or dropped meanwhile
  }
}

size_t Stream::OpenFragmentBytes() const {
  MutexLock lock(mu_);
  if (fragments_.empty() || fragments_.back().view.complete) return 0;
  return fragments_.back().view.bytes;
}

std::optional<FragmentView> Stream::Latest() const {
  Taken newest;
  {
    MutexLock lock(mu_);
    if (fragments_.empty()) return std::nullopt;
    newest = TakeLocked(fragments_.back());  // copies refs to the packets, not their data
  }
  // Only on disk after the fragment that followed it was dropped (cut short).
  auto loaded = Load(std::move(newest));
  if (!loaded.ok()) return std::nullopt;
  return std::move(*loaded);
}

std::vector<FragmentView> Stream::Fragments() const {
  std::vector<Taken> taken;
  {
    MutexLock lock(mu_);
    taken.reserve(fragments_.size());
    for (const auto& f : fragments_) taken.push_back(TakeLocked(f));
  }
  return LoadAll(std::move(taken));
}

StreamInfo Stream::Info(int64_t now_ms, int64_t live_window_ms) const {
  MutexLock lock(mu_);
  StreamInfo info;
  info.name = name_;
  info.producer_connected = writer_;
  info.fragment_count = fragments_.size();
  info.bytes = bytes_;
  info.last_error = last_error_;
  info.retention_ms = retention_ms_.value_or(store_->options().retention_ms);
  if (fragments_.empty()) {
    info.state = last_error_.empty() ? "idle" : "error";
    return info;
  }
  const StoredFragment& newest = fragments_.back();
  const FragmentView& v = newest.view;
  if (v.codec) {
    info.codec = avcodec_get_name(v.codec->codec_id);
    info.width = v.codec->width;
    info.height = v.codec->height;
  }
  info.last_fragment_ms = v.server_ts_ms;
  info.last_frame_ms = newest.last_arrival_ms;
  info.last_fragment_number = v.number;
  if (newest.frame_count > 0)
    info.last_frame_producer_ms = v.producer_ts_ms + (newest.newest_pts_ms - newest.first_pts_ms);
  // Rates over the retained fragments: frames and bytes per producer second.
  size_t frames = 0, bytes = 0;
  int64_t span_ms = 0;
  for (const auto& f : fragments_) {
    frames += f.frame_count;
    bytes += f.view.bytes;
  }
  const StoredFragment& oldest = fragments_.front();
  if (oldest.frame_count > 0 && newest.frame_count > 0)
    span_ms = std::max(oldest.first_pts_ms, newest.newest_pts_ms) - oldest.first_pts_ms;
  if (span_ms > 0 && frames > 1) {
    info.fps = static_cast<double>(frames - 1) * 1000.0 / static_cast<double>(span_ms);
    info.bitrate_bps = static_cast<int64_t>(static_cast<double>(bytes) * 8000.0 /
                                            static_cast<double>(span_ms + span_ms / (frames - 1)));
  }
  bool live = now_ms - newest.last_arrival_ms <= live_window_ms;
  info.state = live ? "live" : (last_error_.empty() ? "stale" : "error");
  return info;
}

void Stream::Trim(int64_t cutoff_ms, size_t max_bytes) {
  cutoff_ms = std::max(cutoff_ms, MemoryCutoff(store_->clock().NowMs()));
  MutexLock lock(mu_);
  while (!fragments_.empty()) {
    const StoredFragment& oldest = fragments_.front();
    bool open = !oldest.view.complete;
    if (open) break;
    if (oldest.last_arrival_ms >= cutoff_ms && bytes_ <= max_bytes) break;
    PopOldestLocked();
  }
}

StreamStore::StreamStore(const Clock& clock, StoreOptions options)
    : clock_(clock),
      options_(options),
      // Numbers start from the clock so that they keep rising across restarts.
      next_number_(static_cast<uint64_t>(clock.NowMs()) * 1000) {}

Result<std::shared_ptr<Stream>> StreamStore::AddLocked(const std::string& name, bool bounded) {
  if (options_.stream_limit) {
    if (!bounded) {
      options_.stream_limit->AcquireAnyway();
    } else if (!options_.stream_limit->TryAcquire()) {
      return Status(Code::kOverloaded,
                    "the server holds " + std::to_string(options_.stream_limit->max()) +
                        " streams, its limit (--max-streams); delete one first",
                    Reason::kTooManyStreams);
    }
  }
  auto stream = std::make_shared<Stream>(name, this);
  streams_.emplace(name, stream);
  return stream;
}

Result<std::shared_ptr<Stream>> StreamStore::Open(const std::string& name) {
  MutexLock lock(mu_);
  auto it = streams_.find(name);
  if (it == streams_.end()) return AddLocked(name, /*bounded=*/true);
  it->second->Touch(clock_.NowMs());  // not abandoned while someone is about to write
  return it->second;
}

Result<std::shared_ptr<Stream>> StreamStore::OpenForWriting(const std::string& name) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto opened = Open(name);
    if (!opened.ok()) return opened.status();
    if ((*opened)->AcquireWriter()) return opened;
    if (!(*opened)->closed()) break;  // deleted meanwhile: a new one is made on the next Open
  }
  return Status(Code::kConflict, "another producer is already pushing to stream '" + name + "'",
                Reason::kStreamBusy);
}

std::shared_ptr<Stream> StreamStore::Find(std::string_view name) const {
  MutexLock lock(mu_);
  auto it = streams_.find(name);
  return it == streams_.end() ? nullptr : it->second;
}

void StreamStore::SetArchive(FragmentArchive* archive) {
  archive_ = archive;
  if (archive == nullptr) return;
  std::vector<std::shared_ptr<Stream>> streams;
  {
    MutexLock lock(mu_);
    for (const auto& [name, s] : streams_) streams.push_back(s);
  }
  for (const auto& s : streams) s->EvictPersisted();
}

Status StreamStore::Persist(const std::string& stream, const FragmentView& fragment) {
  if (archive_ == nullptr) return Status::Ok();
  std::weak_ptr<Stream> target = Find(stream);
  // Waits for room in the archive's queue, where PersistAsync is refused.
  Status status = archive_->Persist(stream, fragment);
  if (!status.ok()) return status;
  if (auto s = target.lock()) s->MarkPersisted(fragment.number);
  if (shared_ == nullptr) return status;
  auto bytes = MuxClip({fragment}, ClipFormat::kMatroska, SIZE_MAX);
  if (!bytes.ok()) return bytes.status();
  return shared_->Upload(stream, fragment, *bytes);
}

void StreamStore::PersistAsync(const std::string& stream, FragmentView fragment,
                               std::function<void(Status)> done) {
  if (archive_ == nullptr) {
    if (done) done(Status::Ok());
    return;
  }
  // The stream the call was about: a deleted one's writes are dropped anyway.
  std::weak_ptr<Stream> target = Find(stream);
  const uint64_t number = fragment.number;
  if (shared_ != nullptr) {
    // Once the file is durable, its very bytes go to the shared archive: one
    // mux for both. Only then is the fragment PERSISTED.
    FragmentView index = fragment;
    index.frame_count = fragment.frames.size();
    index.frames.clear();
    index.codec.reset();
    archive_->PersistAsyncKeepingBytes(
        stream, std::move(fragment),
        [this, target, number, stream, index = std::move(index), done = std::move(done)](
            Status status, std::shared_ptr<const std::string> bytes) mutable {
          if (!status.ok()) {  // told in its turn after the uploads before it
            shared_->PassAsync(stream, std::move(status), std::move(done));
            return;
          }
          if (auto s = target.lock()) s->MarkPersisted(number);
          shared_->UploadAsync(stream, index, std::move(bytes), std::move(done));
        });
    return;
  }
  archive_->PersistAsync(stream, std::move(fragment),
                         [target, number, done = std::move(done)](Status status) {
                           if (status.ok())
                             if (auto s = target.lock()) s->MarkPersisted(number);
                           if (done) done(std::move(status));
                         });
}

Result<std::shared_ptr<Stream>> StreamStore::Create(const std::string& name,
                                                    std::optional<int64_t> retention_ms) {
  std::shared_ptr<Stream> stream;
  {
    MutexLock lock(mu_);
    if (streams_.count(name))
      return Status(Code::kConflict, "stream '" + name + "' exists", Reason::kStreamExists);
    auto added = AddLocked(name, /*bounded=*/true);
    if (!added.ok()) return added.status();
    stream = std::move(*added);
    stream->SetRetention(retention_ms);
    stream->SetOwned();
  }
  if (archive_ && retention_ms) LF_RETURN_IF_ERROR(archive_->SetRetention(name, *retention_ms));
  return stream;
}

Status StreamStore::SetRetention(const std::string& name, int64_t retention_ms) {
  std::shared_ptr<Stream> stream = Find(name);
  if (!stream) return NotFound("no stream named '" + name + "'", Reason::kStreamNotFound);
  stream->SetRetention(retention_ms);
  return archive_ ? archive_->SetRetention(name, retention_ms) : Status::Ok();
}

void StreamStore::Restore(std::vector<RecoveredStream> streams) {
  uint64_t highest = 0;
  for (auto& s : streams) {
    for (const auto& f : s.fragments) highest = std::max(highest, f.number);
    std::shared_ptr<Stream> stream;
    {
      MutexLock lock(mu_);
      auto it = streams_.find(s.name);
      // What the archive holds comes back whatever the limit: it was admitted once.
      stream = it != streams_.end() ? it->second : *AddLocked(s.name, /*bounded=*/false);
    }
    stream->SetRetention(s.retention_ms);
    if (s.retention_ms || !s.fragments.empty()) stream->SetOwned();
    stream->Restore(std::move(s.fragments));
  }
  // New fragments are numbered after every restored one, whatever the clock did.
  MutexLock lock(number_mu_);
  next_number_ = std::max(next_number_, highest + 1);
}

Status StreamStore::Remove(std::string_view name) {
  MutexLock lock(mu_);
  auto it = streams_.find(name);
  if (it == streams_.end())
    return NotFound("no stream named '" + std::string(name) + "'", Reason::kStreamNotFound);
  // Checked and closed in one step: a producer that opened the stream cannot
  // claim it after the check and write (and persist) into a deleted stream.
  if (!it->second->CloseUnlessWritten())
    return Status(Code::kConflict, "a producer is writing to stream '" + std::string(name) + "'",
                  Reason::kStreamBusy);
  streams_.erase(it);
  if (options_.stream_limit) options_.stream_limit->Release();
  if (archive_) archive_->Forget(std::string(name));
  return Status::Ok();
}

Result<FragmentView> StreamStore::LatestFragment(std::string_view name) const {
  std::shared_ptr<Stream> stream = Find(name);
  if (!stream)
    return NotFound("no stream named '" + std::string(name) + "'", Reason::kStreamNotFound);
  std::optional<FragmentView> latest = stream->Latest();
  if (!latest)
    return NotFound("stream '" + std::string(name) + "' has no frame yet (or none retained)",
                    Reason::kNoFrame);
  return std::move(*latest);
}

Result<std::vector<FragmentView>> StreamStore::Fragments(std::string_view name,
                                                         const FragmentQuery& query) const {
  std::shared_ptr<Stream> stream = Find(name);
  if (!stream)
    return NotFound("no stream named '" + std::string(name) + "'", Reason::kStreamNotFound);
  return stream->Select(query);
}

Result<std::vector<FragmentView>> StreamStore::FragmentsByNumber(
    std::string_view name, const std::vector<uint64_t>& numbers) const {
  std::shared_ptr<Stream> stream = Find(name);
  if (!stream)
    return NotFound("no stream named '" + std::string(name) + "'", Reason::kStreamNotFound);
  return stream->FragmentsByNumber(numbers);
}

std::vector<StreamInfo> StreamStore::List() const {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    MutexLock lock(mu_);
    for (const auto& [name, s] : streams_) streams.push_back(s);
  }
  int64_t now = clock_.NowMs();
  std::vector<StreamInfo> out;
  out.reserve(streams.size());
  for (const auto& s : streams) out.push_back(s->Info(now, options_.live_window_ms));
  return out;
}

void StreamStore::ApplyRetention() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    MutexLock lock(mu_);
    for (const auto& [name, s] : streams_) streams.push_back(s);
  }
  int64_t now = clock_.NowMs();
  for (const auto& s : streams) {
    s->Trim(now - s->retention_ms(), options_.max_bytes_per_stream);
    if (s->Abandoned(now)) {
      MutexLock lock(mu_);
      auto it = streams_.find(s->name());
      // Checked again under the lock: a producer may have claimed it meanwhile.
      if (it == streams_.end() || it->second != s || !s->Abandoned(now)) continue;
      if (!s->CloseUnlessWritten()) continue;  // claimed since the check
      streams_.erase(it);
      if (options_.stream_limit) options_.stream_limit->Release();
    }
  }
}

uint64_t StreamStore::NextFragmentNumber() {
  MutexLock lock(number_mu_);
  return next_number_++;
}

}  // namespace lastframe::store
