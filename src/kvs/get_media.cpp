#include "kvs/get_media.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "kvs/mkv_chunk.h"

namespace lastframe::kvs {

Result<uint64_t> FirstFragmentNumber(const std::vector<store::FragmentView>& fragments,
                                     const StartSelector& start) {
  using Type = StartSelector::Type;
  switch (start.type) {
    case Type::kNow:  // the newest fragment, from its keyframe, then live
      return fragments.empty() ? 0 : fragments.back().number;
    case Type::kEarliest:
      return 0;
    case Type::kFragmentNumber:
      if (std::none_of(fragments.begin(), fragments.end(),
                       [&](const store::FragmentView& f) { return f.number == start.number; }))
        return NotFound("Fragment " + std::to_string(start.number) + " is not found.",
                        Reason::kFragmentNotFound);
      return start.number;
    case Type::kContinuationToken:  // names the last chunk sent: go on after it
      return start.number + 1;
    case Type::kServerTimestamp:
    case Type::kProducerTimestamp:
      for (const auto& f : fragments) {
        int64_t begin = start.type == Type::kServerTimestamp ? f.server_ts_ms : f.producer_ts_ms;
        if (begin + f.duration_ms >= start.timestamp_ms) return f.number;
      }
      return fragments.empty() ? 0 : fragments.back().number + 1;
  }
  return 0;
}

MediaFollowers::MediaFollowers(const Clock& clock, size_t max_per_stream)
    : core_(std::make_shared<Core>(clock, max_per_stream)) {}

MediaFollowers::~MediaFollowers() { Shutdown(); }

void MediaFollowers::Shutdown() {
  std::list<std::unique_ptr<Follower>> followers;
  core_->stopping = true;
  {
    MutexLock lock(core_->mu);
    core_->shut_down = true;
    followers.swap(core_->followers);
  }
  for (auto& f : followers)
    if (auto* sink = f->sink.get()) sink->End();  // no more chunks; the thread sees it closed
  for (auto& f : followers)
    if (f->thread.joinable()) f->thread.join();
}

Result<MediaFollowers::Session> MediaFollowers::Open(std::shared_ptr<store::Stream> stream,
                                                     uint64_t first_number) {
  MutexLock lock(core_->mu);
  core_->ReapLocked();
  if (core_->shut_down) return Status(Code::kUnavailable, "stopping", Reason::kStopping);
  auto& followers = core_->followers;
  size_t same = std::count_if(followers.begin(), followers.end(),
                              [&](const auto& f) { return f->stream == stream->name(); });
  if (same >= core_->max_per_stream)
    return Status(Code::kOverloaded,
                  "stream " + stream->name() + " already has " + std::to_string(same) +
                      " GetMedia connections, the most it may have",
                  Reason::kTooManyGetMediaConnections);
  followers.push_back(std::make_unique<Follower>());
  Follower* follower = followers.back().get();
  follower->stream = stream->name();
  return Session(core_, follower, std::move(stream), first_number);
}

MediaFollowers::Session::Session(std::shared_ptr<Core> core, Follower* follower,
                                 std::shared_ptr<store::Stream> stream, uint64_t first_number)
    : core_(std::move(core)),
      follower_(follower),
      stream_(std::move(stream)),
      first_number_(first_number) {}

MediaFollowers::Session::Session(Session&& other) noexcept
    : core_(std::move(other.core_)),
      follower_(std::exchange(other.follower_, nullptr)),
      stream_(std::move(other.stream_)),
      first_number_(other.first_number_) {}

MediaFollowers::Session::~Session() {
  if (follower_ == nullptr) return;
  MutexLock lock(core_->mu);
  // Never started: the next Open reaps it (after Shutdown it is gone already).
  if (!core_->shut_down) follower_->done = true;
}

void MediaFollowers::Session::Start(std::shared_ptr<ChunkSink> sink) {
  Follower* follower = std::exchange(follower_, nullptr);
  if (follower == nullptr) return;
  MutexLock lock(core_->mu);
  if (core_->shut_down) {  // Shutdown let go of |follower|: end the sink here
    sink->End();
    return;
  }
  follower->sink = std::move(sink);
  follower->thread =
      std::thread([core = core_, follower, stream = std::move(stream_), first = first_number_] {
        core->Follow(follower, stream, first);
      });
}

void MediaFollowers::Core::ReapLocked() {
  for (auto it = followers.begin(); it != followers.end();) {
    if (!(*it)->done) {
      ++it;
      continue;
    }
    if ((*it)->thread.joinable()) (*it)->thread.join();
    it = followers.erase(it);
  }
}

void MediaFollowers::Core::Follow(Follower* follower, const std::shared_ptr<store::Stream>& stream,
                                  uint64_t first_number) {
  ChunkSink& out = *follower->sink;
  std::unique_ptr<MkvChunkWriter> chunk;
  uint64_t chunk_number = 0;
  size_t sent = 0;
  uint64_t next = first_number;
  bool ok = true;
  auto flush = [&] {
    std::string bytes = chunk->Take();
    if (!bytes.empty() && !out.Write(std::move(bytes))) ok = false;
  };
  auto end_chunk = [&](const store::FragmentView* f) {
    MkvTags trailing;
    if (f != nullptr) {
      int64_t behind = clock.NowMs() - (f->server_ts_ms + f->duration_ms);
      trailing = {
          {"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", std::to_string(std::max<int64_t>(0, behind))},
          {"AWS_KINESISVIDEO_CONTINUATION_TOKEN", std::to_string(chunk_number)}};
    }
    if (!chunk->End(trailing).ok()) ok = false;
    flush();
    chunk.reset();
    next = chunk_number + 1;
  };
  while (ok && out.open() && !stream->closed() && !stopping) {
    const uint64_t seen = stream->version();
    std::vector<store::FragmentView> fragments = stream->FragmentsFrom(chunk ? chunk_number : next);
    if (chunk && (fragments.empty() || fragments.front().number != chunk_number))
      end_chunk(nullptr);  // its fragment left the store before it was complete
    for (const auto& f : fragments) {
      if (!ok) break;
      if (f.number < next) continue;
      if (!chunk) {
        auto begun = MkvChunkWriter::Begin(f, FragmentTags(f));
        if (!begun.ok()) {
          spdlog::warn("GetMedia {}: fragment {}: {}", stream->name(), f.number,
                       begun.status().ToString());
          next = f.number + 1;
          continue;
        }
        chunk = std::move(*begun);
        chunk_number = f.number;
        sent = 0;
      }
      for (; sent < f.frames.size() && ok; ++sent)
        if (!chunk->Add(f.frames[sent], /*flush=*/!f.complete).ok()) ok = false;
      if (ok) flush();
      if (ok && f.complete) end_chunk(&f);
    }
    if (!ok) break;
    stream->WaitForChange(seen, std::chrono::seconds(1));
  }
  out.End();
  follower->done = true;
}

}  // namespace lastframe::kvs
