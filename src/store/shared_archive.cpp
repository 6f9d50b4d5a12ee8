#include "store/shared_archive.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <future>
#include <set>
#include <tuple>

#include "core/metrics.h"
#include "core/stream_name.h"
#include "store/fragment_file.h"

namespace lastframe::store {
namespace {

constexpr const char* kContentType = "video/x-matroska";

struct SharedArchiveMetrics {
  metrics::Family<metrics::Counter>& uploads = metrics::Registry::Global().Counters(
      "lastframe_shared_archive_uploads_total",
      "Fragments uploaded to the shared archive (--archive), by result (ok, error).", {"result"});
  metrics::Counter& uploads_ok = uploads.With({"ok"});
  metrics::Counter& uploads_failed = uploads.With({"error"});
  metrics::Histogram& upload_seconds = metrics::Registry::Global().AddHistogram(
      "lastframe_shared_archive_upload_duration_seconds",
      "From a fragment durable in the local files to its object stored in the shared archive "
      "(or refused): what PERSISTED waits for beyond the local sync.",
      metrics::LatencyBuckets());
  metrics::Family<metrics::Counter>& reads = metrics::Registry::Global().Counters(
      "lastframe_shared_archive_reads_total",
      "Reads of the shared archive: listings (list) and fragments fetched (get), by result.",
      {"operation", "result"});
  metrics::Counter& lists_ok = reads.With({"list", "ok"});
  metrics::Counter& lists_failed = reads.With({"list", "error"});
  metrics::Counter& gets_ok = reads.With({"get", "ok"});
  metrics::Counter& gets_failed = reads.With({"get", "error"});
  metrics::Counter& junk = metrics::Registry::Global().AddCounter(
      "lastframe_shared_archive_ignored_objects_total",
      "Objects under the shared archive's prefix whose names are not a fragment's: left alone.");
};

SharedArchiveMetrics& Metrics() {
  static SharedArchiveMetrics m;
  return m;
}

// A signed decimal integer at the front of |s|, up to a '-' that follows it
// (or the end); |s| is left after that '-'.
std::optional<int64_t> TakeField(std::string_view& s, bool last) {
  size_t digits_from = !s.empty() && s.front() == '-' ? 1 : 0;
  size_t end = last ? s.size() : s.find('-', digits_from);
  if (end == std::string_view::npos || end == digits_from) return std::nullopt;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + end, value);
  if (ec != std::errc() || ptr != s.data() + end) return std::nullopt;
  s.remove_prefix(last ? end : end + 1);
  return value;
}

}  // namespace

SharedArchive::SharedArchive(objects::ObjectStore& objects, SharedArchiveOptions options)
    : objects_(objects), options_(options) {
  Metrics();  // every series shows in /metrics from the start
}

SharedArchive::~SharedArchive() { objects_.Shutdown(); }

std::string SharedArchive::FolderOf(std::string_view stream) {
  std::string folder = !stream.empty() && stream.front() == '.' ? "~" : "";
  folder += stream;
  folder += '/';
  return folder;
}

std::string SharedArchive::KeyOf(std::string_view stream, const FragmentView& f) {
  const size_t frames = f.frame_count > 0 ? f.frame_count : f.frames.size();
  char name[192];
  std::snprintf(name, sizeof name, "%015lld-%llu-%lld-%llu-%lld-%llu-%lld.mkv",
                static_cast<long long>(f.server_ts_ms), static_cast<unsigned long long>(f.number),
                static_cast<long long>(f.producer_ts_ms), static_cast<unsigned long long>(frames),
                static_cast<long long>(f.duration_ms), static_cast<unsigned long long>(f.bytes),
                static_cast<long long>(f.timecode_ms));
  return FolderOf(stream) + name;
}

std::optional<FragmentView> SharedArchive::ParseName(std::string_view name) {
  if (name.size() < 5 || !name.ends_with(".mkv")) return std::nullopt;
  name.remove_suffix(4);
  int64_t v[7];
  for (int i = 0; i < 7; ++i) {
    auto field = TakeField(name, i == 6);
    if (!field) return std::nullopt;
    v[i] = *field;
  }
  // Arrival, number, frames and bytes are never negative; a fragment has a frame.
  if (v[0] < 0 || v[1] <= 0 || v[3] < 1 || v[4] < 0 || v[5] < 0) return std::nullopt;
  FragmentView f;
  f.server_ts_ms = v[0];
  f.number = static_cast<uint64_t>(v[1]);
  f.producer_ts_ms = v[2];
  f.frame_count = static_cast<size_t>(v[3]);
  f.duration_ms = v[4];
  f.bytes = static_cast<size_t>(v[5]);
  f.timecode_ms = v[6];
  f.complete = true;
  return f;
}

uint64_t SharedArchive::NextSeq(const std::string& stream) {
  MutexLock lock(mu_);
  return orders_[stream].next++;
}

void SharedArchive::UploadAsync(const std::string& stream, const FragmentView& index,
                                std::shared_ptr<const std::string> bytes,
                                std::function<void(Status)> done) {
  const uint64_t seq = NextSeq(stream);
  const auto start = std::chrono::steady_clock::now();
  objects_.PutAsync(KeyOf(stream, index), std::move(bytes), kContentType,
                    [this, stream, seq, start, done = std::move(done)](Status status) mutable {
                      SharedArchiveMetrics& m = Metrics();
                      m.upload_seconds.Observe(metrics::SecondsSince(start));
                      if (status.ok()) {
                        m.uploads_ok.Add();
                      } else {
                        m.uploads_failed.Add();
                        status = Status(
                            Code::kUnavailable,
                            "not stored in the shared archive (--archive): " + status.message(),
                            Reason::kArchivalError);
                      }
                      Finish(stream, seq, std::move(status), std::move(done));
                    });
}

void SharedArchive::PassAsync(const std::string& stream, Status status,
                              std::function<void(Status)> done) {
  Finish(stream, NextSeq(stream), std::move(status), std::move(done));
}

Status SharedArchive::Upload(const std::string& stream, const FragmentView& index,
                             std::string_view bytes) {
  auto outcome = std::make_shared<std::promise<Status>>();
  std::future<Status> status = outcome->get_future();
  UploadAsync(stream, index, std::make_shared<const std::string>(bytes),
              [outcome](Status s) { outcome->set_value(std::move(s)); });
  return status.get();
}

void SharedArchive::Finish(const std::string& stream, uint64_t seq, Status status,
                           std::function<void(Status)> done) {
  MutexLock lock(mu_);
  Order* order = &orders_[stream];
  order->ended.emplace(seq, std::pair{std::move(status), std::move(done)});
  // One thread runs a stream's dones at a time, in sequence: whoever finds the
  // next one ended takes them all, those that end meanwhile included.
  if (order->draining) return;
  order->draining = true;
  for (;;) {
    auto it = order->ended.find(order->released);
    if (it == order->ended.end()) break;
    auto [s, callback] = std::move(it->second);
    order->ended.erase(it);
    ++order->released;
    lock.Unlock();
    if (callback) callback(std::move(s));
    lock.Lock();
    order = &orders_[stream];
  }
  order->draining = false;
  if (order->released == order->next && order->ended.empty()) orders_.erase(stream);
}

Result<std::vector<FragmentView>> SharedArchive::List(std::string_view stream,
                                                      int64_t since_ms) const {
  // Only a stream's name makes a folder: no other text reaches the bucket's keys.
  if (!ValidateStreamName(stream).ok()) return std::vector<FragmentView>();
  SharedArchiveMetrics& m = Metrics();
  const std::string folder = FolderOf(stream);
  // Keys begin with the arrival, 15 digits: those before |since_ms| sort before this.
  char start_after[32];
  std::snprintf(start_after, sizeof start_after, "%015lld",
                static_cast<long long>(std::max<int64_t>(since_ms, 0)));
  std::vector<FragmentView> out;
  std::set<uint64_t> numbers;
  std::string from;
  size_t listed = 0;
  do {
    auto page = objects_.ListPage(folder, folder + start_after, from, 1000);
    if (!page.ok()) {
      m.lists_failed.Add();
      return page.status();
    }
    for (const objects::ListedObject& o : page->objects) {
      std::optional<FragmentView> f;
      if (o.size <= options_.max_object_bytes && o.key.size() > folder.size())
        f = ParseName(std::string_view(o.key).substr(folder.size()));
      if (!f) {
        m.junk.Add();
        continue;
      }
      if (f->server_ts_ms < since_ms || !numbers.insert(f->number).second) continue;
      out.push_back(std::move(*f));
    }
    listed += page->objects.size();
    from = std::move(page->next);
  } while (!from.empty() && listed < options_.max_listed_objects);
  m.lists_ok.Add();
  std::sort(out.begin(), out.end(), [](const FragmentView& a, const FragmentView& b) {
    return std::tie(a.server_ts_ms, a.number) < std::tie(b.server_ts_ms, b.number);
  });
  return out;
}

Result<FragmentView> SharedArchive::Read(std::string_view stream, const FragmentView& index) const {
  if (Status valid = ValidateStreamName(stream); !valid.ok()) return valid;
  SharedArchiveMetrics& m = Metrics();
  const std::string key = KeyOf(stream, index);
  auto bytes = objects_.Get(key);
  if (!bytes.ok()) {
    m.gets_failed.Add();
    if (bytes.status().reason() == Reason::kNoSuchKey)
      return NotFound("fragment " + std::to_string(index.number) + " of stream '" +
                          std::string(stream) + "' is not in the shared archive",
                      Reason::kFragmentNotFound);
    return bytes.status();
  }
  if (bytes->size() > options_.max_object_bytes) {
    m.gets_failed.Add();
    return Status(Code::kMediaError, "fragment " + std::to_string(index.number) +
                                         " of the shared archive is larger than a fragment");
  }
  const fragment_file::FileName name{index.server_ts_ms, index.number, index.producer_ts_ms,
                                     static_cast<int64_t>(index.frame_count), index.timecode_ms};
  auto read = fragment_file::ReadFragmentBytes(*bytes, name);
  if (!read.ok()) {
    m.gets_failed.Add();
    return Status(Code::kMediaError,
                  "fragment " + std::to_string(index.number) + " of stream '" +
                      std::string(stream) +
                      "' does not read back from the shared archive: " + read.status().message());
  }
  m.gets_ok.Add();
  read->frame_count = read->frames.size();
  return read;
}

}  // namespace lastframe::store
