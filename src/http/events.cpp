#include "http/events.h"

#include <nlohmann/json.hpp>
#include <unordered_set>

namespace lastframe::http {

using nlohmann::json;

EventHub::EventHub(Lister lister, const Clock& clock, EventHubOptions options)
    : lister_(std::move(lister)), clock_(clock), options_(std::move(options)) {}

EventHub::~EventHub() { Stop(); }

Status EventHub::Reserve(const std::string& owner) {
  MutexLock lock(mu_);
  if (stopping_) return Status(Code::kUnavailable, "the server is stopping", Reason::kStopping);
  if (places_ >= options_.max_subscribers)
    return Status(Code::kUnavailable,
                  "the server has " + std::to_string(options_.max_subscribers) +
                      " event subscribers, its most; retry later",
                  Reason::kOverloaded);
  size_t& owned = owned_[owner];
  if (owned >= options_.max_per_owner)
    return Status(Code::kOverloaded,
                  "this caller has " + std::to_string(options_.max_per_owner) +
                      " event subscriptions open, its most; close one",
                  Reason::kOverloaded);
  ++owned;
  ++places_;
  return Status::Ok();
}

void EventHub::Release(const std::vector<std::unique_ptr<Subscriber>>& gone) {
  MutexLock lock(mu_);
  for (const auto& s : gone) {
    --places_;
    auto it = owned_.find(s->sub.owner);
    if (it != owned_.end() && --it->second == 0) owned_.erase(it);
  }
}

void EventHub::Attach(std::shared_ptr<BodyWriter> writer, EventSubscription subscription) {
  auto s = std::make_unique<Subscriber>();
  s->writer = std::move(writer);
  s->sub = std::move(subscription);
  MutexLock lock(mu_);
  if (stopping_) {
    lock.Unlock();
    std::vector<std::unique_ptr<Subscriber>> gone;
    gone.push_back(std::move(s));
    Release(gone);
    gone.front()->writer->End();
    return;
  }
  joining_.push_back(std::move(s));
  // The thread starts with the first subscriber: a server nobody watches has none.
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  wake_.notify_all();
}

void EventHub::Stop() {
  std::thread thread;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    thread = std::move(thread_);
    wake_.notify_all();
  }
  if (thread.joinable()) thread.join();
  // Subscribers that joined after the thread's last look.
  std::vector<std::unique_ptr<Subscriber>> joining;
  {
    MutexLock lock(mu_);
    joining.swap(joining_);
  }
  Release(joining);
  for (auto& s : joining) s->writer->End();
}

size_t EventHub::subscribers() const {
  MutexLock lock(mu_);
  return places_;
}

std::string EventHub::Event(std::string_view name, const std::string& data) {
  std::string out;
  out.reserve(name.size() + data.size() + 16);
  out.append("event: ").append(name).append("\ndata: ").append(data).append("\n\n");
  return out;
}

std::string EventHub::Changes(Subscriber& s, const std::vector<StreamEventState>& streams,
                              int64_t now_ms) {
  std::string out;
  if (!s.greeted) {
    s.greeted = true;
    // EventSource reconnects after |retry| ms when the connection drops.
    out += "retry: 2000\n";
    out += Event("hello", json{{"node", s.sub.node.empty() ? options_.node : s.sub.node},
                               {"interval_s", s.sub.interval_ms / 1000}}
                              .dump());
  }
  std::unordered_set<std::string_view> seen;
  for (const StreamEventState& st : streams) {
    if (s.sub.only && !s.sub.only->count(st.name)) continue;
    if (!s.sub.may_view(st.name)) continue;
    seen.insert(st.name);
    auto [it, added] = s.known.try_emplace(st.name);
    Known& k = it->second;
    const std::string& reason = s.sub.admin ? st.reason : st.public_reason;
    if (added || k.state != st.state || k.reason != reason || k.width != st.width ||
        k.height != st.height) {
      k.state = st.state;
      k.reason = reason;
      k.width = st.width;
      k.height = st.height;
      out += Event("state", json{{"stream", st.name},
                                 {"state", st.state},
                                 {"reason", reason.empty() ? json(nullptr) : json(reason)},
                                 {"width", st.width},
                                 {"height", st.height}}
                                .dump());
    }
    if (st.last_frame_ms && st.last_frame_ms != k.frame_ms &&
        now_ms - k.frame_told_at_ms >= s.sub.interval_ms) {
      k.frame_ms = st.last_frame_ms;
      k.frame_told_at_ms = now_ms;
      json frame = {{"stream", st.name},
                    {"fragment_number", std::to_string(st.fragment_number)},
                    {"frame_time_ms", *st.last_frame_ms},
                    {"frame_age_ms", std::max<int64_t>(0, now_ms - *st.last_frame_ms)}};
      frame["frame_timestamp_ms"] =
          st.last_frame_producer_ms ? json(*st.last_frame_producer_ms) : json(nullptr);
      out += Event("frame", frame.dump());
    }
  }
  for (auto it = s.known.begin(); it != s.known.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    out += Event("removed", json{{"stream", it->first}}.dump());
    it = s.known.erase(it);
  }
  return out;
}

void EventHub::Run() {
  for (;;) {
    {
      MutexLock lock(mu_);
      lock.WaitFor(wake_, options_.tick,
                   [this]() LF_REQUIRES(mu_) { return stopping_ || !joining_.empty(); });
      if (stopping_) break;
      for (auto& s : joining_) subscribers_.push_back(std::move(s));
      joining_.clear();
    }
    if (subscribers_.empty()) continue;
    const std::vector<StreamEventState> streams = lister_();
    const int64_t now = clock_.NowMs();
    std::vector<std::unique_ptr<Subscriber>> gone;
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      Subscriber& s = **it;
      std::string out = Changes(s, streams, now);
      if (out.empty() && now - s.last_write_ms >= options_.keepalive.count())
        out = ": keepalive\n\n";  // also finds a reader that went away
      bool kept = true;
      if (!out.empty()) {
        kept = s.writer->TryWrite(std::move(out), options_.max_queued_bytes);
        s.last_write_ms = now;
      }
      // Credentials that no longer hold end the subscription, as they end a session.
      if (kept && s.sub.still_allowed && now - s.last_check_ms >= options_.recheck.count()) {
        s.last_check_ms = now;
        kept = s.sub.still_allowed();
      }
      if (kept && s.writer->open()) {
        ++it;
        continue;
      }
      // Gone, or too far behind: its EventSource reconnects and starts afresh.
      gone.push_back(std::move(*it));
      it = subscribers_.erase(it);
    }
    if (!gone.empty()) {
      Release(gone);
      for (auto& s : gone) s->writer->End();
    }
  }
  Release(subscribers_);
  for (auto& s : subscribers_) s->writer->End();
  subscribers_.clear();
}

}  // namespace lastframe::http
