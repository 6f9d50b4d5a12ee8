#include "kvs/kvs_source.h"

#include <spdlog/spdlog.h>

#include <future>
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "ingest/push_session.h"

namespace lastframe::kvs {

using nlohmann::json;

namespace {

// Followed streams keep what a snapshot needs: the newest fragments.
store::StoreOptions CacheOptions() {
  return {.retention_ms = 30'000, .max_bytes_per_stream = 32 << 20, .live_window_ms = 10'000};
}

// The longest a fragment may last (the fragmenter's bound): a range read that
// wants fragments overlapping a range lists from this much before it.
constexpr int64_t kMaxFragmentSpanMs = 10'000;
// Endpoint fragment numbers too long for 64 bits are given ours from here on.
constexpr uint64_t kFirstLongNumber = uint64_t{1} << 63;
constexpr size_t kMaxLongNumbers = 1 << 20;
constexpr int kMaxRangePages = 100;

// The value of tag |name| in a Kinesis Video chunk (SimpleTag: TagName 0x45A3
// |name|, then TagString 0x4487), if there is one.
std::optional<std::string> ChunkTag(const std::string& chunk, std::string_view name) {
  size_t at = chunk.find(name);
  if (at == std::string::npos) return std::nullopt;
  size_t p = at + name.size();
  if (p + 3 > chunk.size() || static_cast<uint8_t>(chunk[p]) != 0x44 ||
      static_cast<uint8_t>(chunk[p + 1]) != 0x87)
    return std::nullopt;
  p += 2;
  const auto first = static_cast<uint8_t>(chunk[p]);
  int length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) ++length;
  if (length > 8 || p + static_cast<size_t>(length) > chunk.size()) return std::nullopt;
  uint64_t size = first & (0xFF >> length);
  for (int i = 1; i < length; ++i) size = (size << 8) | static_cast<uint8_t>(chunk[p + i]);
  p += static_cast<size_t>(length);
  if (size > 64 || p + size > chunk.size()) return std::nullopt;
  return chunk.substr(p, size);
}

// A decimal fragment number that fits 64 bits.
std::optional<uint64_t> ShortNumber(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

}  // namespace

KvsSource::KvsSource(KvsSourceOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      client_(options_.client, clock),
      warm_cache_(clock, CacheOptions()),
      fetchers_(options_.fetch_threads, 4096) {
  // A frame that arrives on a followed stream makes it answer warm.
  warm_cache_.SetFrameObserver([this](const std::string& stream) {
    MutexLock lock(mu_);
    if (auto it = followers_.find(stream); it != followers_.end()) it->second.follower->live = true;
  });
}

KvsSource::~KvsSource() { Stop(); }

void KvsSource::Stop() {
  std::map<std::string, Followed, std::less<>> followers;
  {
    MutexLock lock(mu_);
    stopped_ = true;
    followers.swap(followers_);
  }
  for (auto& [name, f] : followers) f.follower->stop = true;
  for (auto& [name, f] : followers)
    if (f.follower->thread.joinable()) f.follower->thread.join();
  fetchers_.Shutdown();
}

KvsSourceStats KvsSource::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

Result<store::FragmentView> KvsSource::LatestFragment(std::string_view stream) const {
  std::promise<Result<store::FragmentView>> answer;
  auto future = answer.get_future();
  LatestFragmentAsync(stream,
                      [&answer](Result<store::FragmentView> r) { answer.set_value(std::move(r)); });
  return future.get();
}

void KvsSource::LatestFragmentAsync(std::string_view stream_view, FragmentCallback done) const {
  const std::string stream(stream_view);
  {
    MutexLock lock(mu_);
    if (stopped_) {
      lock.Unlock();
      return done(Status(Code::kUnavailable, "stopping", Reason::kStopping));
    }
    auto it = followers_.find(stream);
    if (it != followers_.end() && it->second.follower->live) {
      it->second.last_used_ms = clock_.NowMs();
      ++stats_.warm_answers;
      lock.Unlock();
      auto latest = warm_cache_.LatestFragment(stream);
      if (latest.ok()) return done(std::move(latest));
      lock.Lock();
    }
    EnsureFollowed(stream);
    auto& waiters = cold_waiters_[stream];
    waiters.push_back(std::move(done));
    if (waiters.size() > 1) return;  // joins the fetch in progress
    ++stats_.cold_fetches;
  }
  bool queued = fetchers_.TryPost([this, stream] {
    Result<store::FragmentView> r = FetchCold(stream);
    std::vector<FragmentCallback> waiters;
    std::unique_ptr<Follower> gone;
    {
      MutexLock lock(mu_);
      waiters = std::move(cold_waiters_[stream]);
      cold_waiters_.erase(stream);
      // A stream the endpoint does not have is not followed.
      if (!r.ok() && r.status().reason() == Reason::kStreamNotFound)
        if (auto it = followers_.find(stream); it != followers_.end()) {
          gone = std::move(it->second.follower);
          followers_.erase(it);
        }
    }
    if (gone) {
      gone->stop = true;
      gone->thread.join();
    }
    for (auto& w : waiters) w(r);
  });
  if (!queued) {
    std::vector<FragmentCallback> waiters;
    {
      MutexLock lock(mu_);
      waiters = std::move(cold_waiters_[stream]);
      cold_waiters_.erase(stream);
    }
    for (auto& w : waiters)
      w(Status(Code::kOverloaded, "too many Kinesis Video fetches in progress",
               Reason::kOverloaded));
  }
}

void KvsSource::EnsureFollowed(const std::string& stream) const {
  auto it = followers_.find(stream);
  const int64_t now = clock_.NowMs();
  if (it != followers_.end()) {
    it->second.last_used_ms = now;
    return;
  }
  if (followers_.size() >= options_.max_warm_streams) return;  // cold only, until a slot frees
  auto f = std::make_unique<Follower>();
  f->stream = stream;
  Follower* raw = f.get();
  followers_.emplace(stream, Followed{std::move(f), now});
  raw->thread = std::thread([this, raw] { Follow(raw); });
}

void KvsSource::SweepIdle() {
  std::vector<std::unique_ptr<Follower>> idle;
  {
    MutexLock lock(mu_);
    const int64_t cutoff = clock_.NowMs() - options_.warm_idle_ms;
    for (auto it = followers_.begin(); it != followers_.end();) {
      if (it->second.last_used_ms < cutoff) {
        idle.push_back(std::move(it->second.follower));
        it = followers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& f : idle) f->stop = true;
  for (auto& f : idle) f->thread.join();
  for (auto& f : idle) (void)warm_cache_.Remove(f->stream);
}

Status KvsSource::Ingest(store::StreamStore& store, const std::string& name,
                         const std::string& chunks) {
  std::promise<Status> finished;
  auto future = finished.get_future();
  ingest::PushOptions o;
  o.stream = name;
  o.absolute_timecodes = true;  // chunks carry the producer's epoch milliseconds
  o.from_producer = false;      // read from Kinesis Video, not pushed: no ingest metrics
  auto session = ingest::PushSession::Start(
      store, o,
      {.on_ack = [](std::string) {},
       .on_space = [] {},
       .on_done = [&finished](Status s) { finished.set_value(std::move(s)); }});
  if (!session.ok()) return session.status();
  constexpr size_t kPiece = 256 * 1024;
  for (size_t at = 0; at < chunks.size(); at += kPiece) {
    size_t n = std::min(kPiece, chunks.size() - at);
    if (!(*session)->Feed(reinterpret_cast<const uint8_t*>(chunks.data() + at), n) &&
        !(*session)->WaitForSpace())
      break;
  }
  (*session)->Finish();
  Status s = future.get();
  session->reset();
  return s;
}

Result<store::FragmentView> KvsSource::FetchCold(const std::string& stream) const {
  // The fragments that arrived in the last minutes (and any stamped a little
  // ahead of our clock); the newest is the one that arrived last.
  const int64_t now = clock_.NowMs();
  store::FragmentQuery recent;
  recent.timeline = store::FragmentQuery::Timeline::kServer;
  recent.match = store::FragmentQuery::Match::kStartsWithin;
  recent.start_ms = now - options_.cold_lookback_ms;
  recent.end_ms = now + 60'000;
  recent.with_frames = false;
  auto listed = Fragments(stream, recent);
  if (!listed.ok()) return listed.status();
  if (listed->empty())
    return NotFound("stream '" + stream + "' has no fragment in the last " +
                        std::to_string(options_.cold_lookback_ms / 1000) + " s at " +
                        client_.endpoint(),
                    Reason::kNoFrame);
  const uint64_t number = listed->back().number;
  const std::optional<std::string> newest = RemoteNumber(number);
  if (!newest) return Internal("fragment " + std::to_string(number) + " listed but not named");
  // Numbered as the endpoint numbers it: a later cold look at another fragment
  // with as many frames is not mistaken for this one (the snapshot cache's key).
  auto latest = FetchFragment(stream, *newest);
  if (!latest.ok()) return latest.status();
  latest->number = number;
  return latest;
}

uint64_t KvsSource::LocalNumber(const std::string& remote) const {
  if (auto n = ShortNumber(remote); n && *n < kFirstLongNumber) return *n;
  MutexLock lock(mu_);
  if (auto it = long_numbers_back_.find(remote); it != long_numbers_back_.end()) return it->second;
  const uint64_t n = long_numbers_.empty() ? kFirstLongNumber : long_numbers_.rbegin()->first + 1;
  if (long_numbers_.size() >= kMaxLongNumbers) {  // the oldest go first
    long_numbers_back_.erase(long_numbers_.begin()->second);
    long_numbers_.erase(long_numbers_.begin());
  }
  long_numbers_.emplace(n, remote);
  long_numbers_back_.emplace(remote, n);
  return n;
}

std::optional<std::string> KvsSource::RemoteNumber(uint64_t local) const {
  if (local < kFirstLongNumber) return std::to_string(local);
  MutexLock lock(mu_);
  if (auto it = long_numbers_.find(local); it != long_numbers_.end()) return it->second;
  return std::nullopt;
}

Result<std::vector<store::FragmentView>> KvsSource::Fragments(
    std::string_view stream_view, const store::FragmentQuery& query) const {
  const std::string stream(stream_view);
  auto endpoint = client_.DataEndpoint(stream, "LIST_FRAGMENTS");
  if (!endpoint.ok()) return endpoint.status();
  const bool server = query.timeline == store::FragmentQuery::Timeline::kServer;
  // The endpoint lists fragments that begin within the range: for overlaps,
  // from as long before it as a fragment may last.
  int64_t from = query.start_ms;
  if (query.match != store::FragmentQuery::Match::kStartsWithin)
    from = from < kMaxFragmentSpanMs ? 0 : from - kMaxFragmentSpanMs;
  from = std::clamp<int64_t>(from, 0, kMaxTimestampMs);
  const int64_t to = std::clamp<int64_t>(query.end_ms, from, kMaxTimestampMs);
  json request = {{"StreamName", stream},
                  {"MaxResults", 1000},
                  {"FragmentSelector",
                   {{"FragmentSelectorType", server ? "SERVER_TIMESTAMP" : "PRODUCER_TIMESTAMP"},
                    {"TimestampRange",
                     {{"StartTimestamp", static_cast<double>(from) / 1000.0},
                      {"EndTimestamp", static_cast<double>(to) / 1000.0}}}}}};
  std::vector<std::pair<store::FragmentView, std::string>> listed;  // with the endpoint's number
  for (int page = 0;; ++page) {
    if (page == kMaxRangePages)
      return Status(Code::kTooLarge,
                    "the range holds more than " + std::to_string(kMaxRangePages * 1000) +
                        " fragments at " + client_.endpoint(),
                    Reason::kTooManyFragments);
    auto body = client_.Call(*endpoint, "listFragments", request.dump());
    if (!body.ok()) return body.status();
    json j = json::parse(*body, nullptr, false);
    if (!j.is_object() || !j.contains("Fragments") || !j["Fragments"].is_array())
      return Status(Code::kUpstreamFailed, "ListFragments answered without Fragments",
                    Reason::kKvsError);
    for (const json& f : j["Fragments"]) {
      if (!f.is_object() || !f.contains("FragmentNumber") || !f["FragmentNumber"].is_string())
        continue;
      auto ms = [&](const char* key) -> std::optional<int64_t> {
        if (!f.contains(key) || !f[key].is_number()) return std::nullopt;
        return EpochSecondsToMs(f[key].get<double>());
      };
      auto server_ms = ms("ServerTimestamp"), producer_ms = ms("ProducerTimestamp");
      if (!server_ms || !producer_ms) continue;
      store::FragmentView v;
      const std::string remote = f["FragmentNumber"].get<std::string>();
      v.number = LocalNumber(remote);
      v.server_ts_ms = *server_ms;
      v.producer_ts_ms = *producer_ms;
      v.duration_ms = f.value("FragmentLengthInMilliseconds", json(0)).is_number_integer()
                          ? f["FragmentLengthInMilliseconds"].get<int64_t>()
                          : 0;
      v.bytes = f.value("FragmentSizeInBytes", json(0)).is_number_unsigned()
                    ? f["FragmentSizeInBytes"].get<size_t>()
                    : 0;
      v.complete = true;  // listings hold whole fragments only
      if (query.Wants(v)) listed.emplace_back(std::move(v), remote);
    }
    if (!j.contains("NextToken") || !j["NextToken"].is_string()) break;
    request["NextToken"] = j["NextToken"];
  }
  // Listings come in no particular order. Several fragments of one fast push
  // can share a millisecond: then the producer's time, then the endpoint's
  // number (numbers grow along a stream; decimal strings, AWS's longer than
  // 64 bits) decide.
  std::sort(listed.begin(), listed.end(), [server](const auto& a, const auto& b) {
    const int64_t ta = server ? a.first.server_ts_ms : a.first.producer_ts_ms;
    const int64_t tb = server ? b.first.server_ts_ms : b.first.producer_ts_ms;
    if (ta != tb) return ta < tb;
    if (a.first.producer_ts_ms != b.first.producer_ts_ms)
      return a.first.producer_ts_ms < b.first.producer_ts_ms;
    return a.second.size() != b.second.size() ? a.second.size() < b.second.size()
                                              : a.second < b.second;
  });
  std::vector<store::FragmentView> out;
  out.reserve(listed.size());
  for (auto& [view, remote] : listed) {
    if (!query.with_frames) {
      out.push_back(std::move(view));
      continue;
    }
    auto whole = FetchFragment(stream, remote);
    if (!whole.ok()) return whole.status();
    whole->number = view.number;
    whole->server_ts_ms = view.server_ts_ms;
    whole->producer_ts_ms = view.producer_ts_ms;
    out.push_back(std::move(*whole));
  }
  return out;
}

Result<std::vector<store::FragmentView>> KvsSource::FragmentsByNumber(
    std::string_view stream_view, const std::vector<uint64_t>& numbers) const {
  const std::string stream(stream_view);
  std::vector<store::FragmentView> out;
  out.reserve(numbers.size());
  for (uint64_t n : numbers) {
    auto remote = RemoteNumber(n);
    if (!remote)
      return NotFound(
          "fragment " + std::to_string(n) + " of stream '" + stream + "' was not listed here",
          Reason::kFragmentNotFound);
    auto whole = FetchFragment(stream, *remote);
    if (!whole.ok()) return whole.status();
    whole->number = n;
    out.push_back(std::move(*whole));
  }
  return out;
}

Result<store::FragmentView> KvsSource::FetchFragment(const std::string& stream,
                                                     const std::string& remote_number) const {
  auto endpoint = client_.DataEndpoint(stream, "GET_MEDIA_FOR_FRAGMENT_LIST");
  if (!endpoint.ok()) return endpoint.status();
  auto media = client_.Call(*endpoint, "getMediaForFragmentList",
                            json{{"StreamName", stream}, {"Fragments", {remote_number}}}.dump());
  if (!media.ok()) return media.status();
  store::StreamStore parsed(clock_, {.retention_ms = 24 * 3'600'000});
  Status ingested = Ingest(parsed, stream, *media);
  auto pieces = parsed.Fragments(stream, {});
  if (!pieces.ok() || pieces->empty())
    return Status(Code::kUpstreamFailed,
                  "fragment " + remote_number + " of '" + stream + "' holds no frame we can read" +
                      (ingested.ok() ? "" : ": " + ingested.message()),
                  Reason::kKvsError);
  // One endpoint fragment may hold more than one keyframe: its frames are one fragment here.
  store::FragmentView whole = std::move(pieces->front());
  for (size_t i = 1; i < pieces->size(); ++i) {
    auto& more = (*pieces)[i];
    whole.duration_ms = more.producer_ts_ms + more.duration_ms - whole.producer_ts_ms;
    whole.bytes += more.bytes;
    for (auto& frame : more.frames) whole.frames.push_back(std::move(frame));
  }
  whole.complete = true;
  // The endpoint's times, as its chunk tags them (our parse knows only the producer's).
  for (auto [tag, slot] : {std::pair{"AWS_KINESISVIDEO_SERVER_TIMESTAMP", &whole.server_ts_ms},
                           std::pair{"AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", &whole.producer_ts_ms}})
    if (auto text = ChunkTag(*media, tag))
      if (auto ms = ParseEpochSecondsMs(*text)) *slot = *ms;
  return whole;
}

void KvsSource::PostFetch(std::function<Result<std::vector<store::FragmentView>>()> work,
                          FragmentsCallback done) const {
  auto shared = std::make_shared<FragmentsCallback>(std::move(done));
  bool queued = fetchers_.TryPost([work = std::move(work), shared] { (*shared)(work()); });
  if (!queued)
    (*shared)(Status(Code::kOverloaded, "too many Kinesis Video fetches in progress",
                     Reason::kOverloaded));
}

void KvsSource::FragmentsAsync(std::string_view stream, const store::FragmentQuery& query,
                               FragmentsCallback done) const {
  PostFetch([this, stream = std::string(stream), query] { return Fragments(stream, query); },
            std::move(done));
}

void KvsSource::FragmentsByNumberAsync(std::string_view stream,
                                       const std::vector<uint64_t>& numbers,
                                       FragmentsCallback done) const {
  PostFetch(
      [this, stream = std::string(stream), numbers] { return FragmentsByNumber(stream, numbers); },
      std::move(done));
}

void KvsSource::Follow(Follower* f) const {
  std::chrono::milliseconds backoff{200};
  while (!f->stop) {
    bool went_live = false;
    auto endpoint = client_.DataEndpoint(f->stream, "GET_MEDIA");
    if (endpoint.ok()) {
      std::promise<Status> finished;
      auto future = finished.get_future();
      ingest::PushOptions o;
      o.stream = f->stream;
      o.absolute_timecodes = true;
      o.from_producer = false;
      auto session = ingest::PushSession::Start(
          warm_cache_, o,
          {.on_ack =
               [this](const std::string& ack) {
                 // Counted so that a warm look can be told from a cold one (metrics, tests).
                 if (ack.find(R"("EventType":"RECEIVED")") == std::string::npos) return;
                 MutexLock lock(mu_);
                 ++stats_.follower_fragments;
               },
           .on_space = [] {},
           .on_done = [&finished](Status s) { finished.set_value(std::move(s)); }});
      if (session.ok()) {
        Status s = client_.Stream(
            *endpoint, "getMedia",
            json{{"StreamName", f->stream}, {"StartSelector", {{"StartSelectorType", "NOW"}}}}
                .dump(),
            [&](const char* data, size_t size) {
              auto* bytes = reinterpret_cast<const uint8_t*>(data);
              if (!(*session)->Feed(bytes, size) && !(*session)->WaitForSpace()) return false;
              return !f->stop.load();
            },
            f->stop);
        went_live = f->live;
        f->live = false;
        (*session)->Finish();
        future.wait();
        session->reset();
        if (!s.ok() && !f->stop)
          spdlog::warn("kvs source {}: GetMedia ended: {}", f->stream, s.ToString());
      } else {
        spdlog::warn("kvs source {}: {}", f->stream, session.status().ToString());
      }
    } else if (!f->stop) {
      spdlog::warn("kvs source {}: {}", f->stream, endpoint.status().ToString());
    }
    if (f->stop) break;
    {
      MutexLock lock(mu_);
      ++stats_.reconnects;
    }
    if (went_live) backoff = std::chrono::milliseconds(200);
    // Wait before reconnecting, waking at once if told to stop.
    for (auto waited = std::chrono::milliseconds(0); waited < backoff && !f->stop;
         waited += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
  }
}

}  // namespace lastframe::kvs
