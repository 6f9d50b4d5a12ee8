#include "store/stream_store.h"

extern "C" {
#include <libavcodec/avcodec.h>
}

#include <algorithm>

namespace lastframe::store {

Stream::Stream(std::string name, StreamStore* store)
    : name_(std::move(name)), store_(store), touched_ms_(store->clock().NowMs()) {}

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
  bytes_ += first.size();
  f.view.frames.push_back(std::move(first));
  fragments_.push_back(std::move(f));
  ++version_;
  changed_.notify_all();
  // Retention runs here too, so a busy stream never waits for the sweeper.
  int64_t cutoff = arrival_ms - retention_ms_.value_or(opt.retention_ms);
  size_t max_bytes = opt.max_bytes_per_stream;
  while (fragments_.size() > 1) {
    const StoredFragment& oldest = fragments_.front();
    if (oldest.last_arrival_ms >= cutoff && bytes_ <= max_bytes) break;
    bytes_ -= oldest.view.bytes;
    fragments_.pop_front();
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
  f.view.duration_ms = std::max(f.view.duration_ms, end - f.view.frames.front().pts_ms);
  f.view.bytes += frame.size();
  bytes_ += frame.size();
  f.last_arrival_ms = arrival_ms;
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
  fragments_.pop_back();
  ++version_;
  changed_.notify_all();
  return true;
}

std::vector<FragmentView> Stream::FragmentsFrom(uint64_t first) const {
  MutexLock lock(mu_);
  std::vector<FragmentView> out;
  for (const auto& f : fragments_)
    if (f.view.number >= first) out.push_back(f.view);
  return out;
}

std::vector<FragmentView> Stream::Select(const FragmentQuery& query) const {
  MutexLock lock(mu_);
  std::vector<FragmentView> out;
  for (const auto& f : fragments_)
    if (query.Wants(f.view)) out.push_back(f.view);  // frames are shared, not copied
  return out;
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
    bytes_ += f.bytes;
    stored.view = std::move(f);
    fragments_.push_back(std::move(stored));
  }
}

void Stream::MarkPersisted(uint64_t /*number*/) {}

size_t Stream::OpenFragmentBytes() const {
  MutexLock lock(mu_);
  if (fragments_.empty() || fragments_.back().view.complete) return 0;
  return fragments_.back().view.bytes;
}

std::optional<FragmentView> Stream::Latest() const {
  MutexLock lock(mu_);
  if (fragments_.empty()) return std::nullopt;
  return fragments_.back().view;  // copies refs to the packets, not their data
}

std::vector<FragmentView> Stream::Fragments() const {
  MutexLock lock(mu_);
  std::vector<FragmentView> out;
  out.reserve(fragments_.size());
  for (const auto& f : fragments_) out.push_back(f.view);
  return out;
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
  if (!v.frames.empty()) {
    int64_t newest_pts = v.frames.front().pts_ms;
    for (const Frame& fr : v.frames) newest_pts = std::max(newest_pts, fr.pts_ms);
    info.last_frame_producer_ms = v.producer_ts_ms + (newest_pts - v.frames.front().pts_ms);
  }
  // Rates over the retained fragments: frames and bytes per producer second.
  size_t frames = 0, bytes = 0;
  int64_t span_ms = 0;
  for (const auto& f : fragments_) {
    frames += f.view.frames.size();
    bytes += f.view.bytes;
  }
  const FragmentView& oldest = fragments_.front().view;
  if (!oldest.frames.empty() && !v.frames.empty()) {
    int64_t first = oldest.frames.front().pts_ms;
    int64_t last = first;
    for (const Frame& fr : v.frames) last = std::max(last, fr.pts_ms);
    span_ms = last - first;
  }
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
  MutexLock lock(mu_);
  while (!fragments_.empty()) {
    const StoredFragment& oldest = fragments_.front();
    bool open = !oldest.view.complete;
    if (open) break;
    if (oldest.last_arrival_ms >= cutoff_ms && bytes_ <= max_bytes) break;
    bytes_ -= oldest.view.bytes;
    fragments_.pop_front();
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

Status StreamStore::Persist(const std::string& stream, const FragmentView& fragment) {
  return archive_ ? archive_->Persist(stream, fragment) : Status::Ok();
}

void StreamStore::PersistAsync(const std::string& stream, FragmentView fragment,
                               std::function<void(Status)> done) {
  // For now synchronous on the caller's thread; the archive's writer pool replaces it.
  Status status = Persist(stream, fragment);
  if (status.ok() && archive_ != nullptr) {
    if (auto s = Find(stream)) s->MarkPersisted(fragment.number);
  }
  if (done) done(std::move(status));
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
  uint64_t lowest = numbers.empty() ? 0 : *std::min_element(numbers.begin(), numbers.end());
  std::vector<FragmentView> held = stream->FragmentsFrom(lowest);
  std::vector<FragmentView> out;
  out.reserve(numbers.size());
  for (uint64_t n : numbers) {
    auto it = std::lower_bound(held.begin(), held.end(), n,
                               [](const FragmentView& f, uint64_t v) { return f.number < v; });
    if (it == held.end() || it->number != n)
      return NotFound("fragment " + std::to_string(n) + " of stream '" + std::string(name) +
                          "' is not retained (past the retention, or never there)",
                      Reason::kFragmentNotFound);
    out.push_back(*it);
  }
  return out;
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
