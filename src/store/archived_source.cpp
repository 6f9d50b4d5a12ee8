#include "store/archived_source.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

namespace lastframe::store {
namespace {

// The local store trims each second: a stream held here whose oldest fragment
// is this close to the retention has everything the archive could add.
constexpr int64_t kTrimSlackMs = 2000;

Status NoStream(std::string_view stream) {
  return NotFound("no stream named '" + std::string(stream) + "'", Reason::kStreamNotFound);
}

int64_t BeginOf(const FragmentView& f, FragmentQuery::Timeline timeline) {
  return timeline == FragmentQuery::Timeline::kServer ? f.server_ts_ms : f.producer_ts_ms;
}

void SortByArrival(std::vector<FragmentView>& fragments) {
  std::stable_sort(fragments.begin(), fragments.end(),
                   [](const FragmentView& a, const FragmentView& b) {
                     return std::tie(a.server_ts_ms, a.number) < std::tie(b.server_ts_ms, b.number);
                   });
}

}  // namespace

ArchivedSource::ArchivedSource(const StreamStore& local, const SharedArchive& archive,
                               const Clock& clock, ArchivedSourceOptions options)
    : local_(local),
      archive_(archive),
      clock_(clock),
      options_(options),
      fetchers_(std::max<size_t>(options.fetch_threads, 1), options.max_queued) {}

ArchivedSource::~ArchivedSource() { Stop(); }

void ArchivedSource::Stop() { fetchers_.Shutdown(); }

void ArchivedSource::Post(std::function<void()> work,
                          const std::function<void(Status)>& fail) const {
  if (!fetchers_.TryPost(std::move(work)))
    fail(Status(Code::kOverloaded, "too many reads of the shared archive in progress",
                Reason::kOverloaded));
}

Result<std::vector<FragmentView>> ArchivedSource::ListArchive(std::string_view stream) const {
  return archive_.List(stream, clock_.NowMs() - options_.retention_ms);
}

bool ArchivedSource::NeedsArchive(std::string_view stream, const FragmentQuery& query) const {
  FragmentQuery all;
  all.with_frames = false;
  auto held = local_.Fragments(stream, all);
  if (!held.ok() || held->empty()) return true;
  // Everything within the retention is here already (the stream has lived here that long).
  const FragmentView& oldest = held->front();
  if (oldest.server_ts_ms <= clock_.NowMs() - options_.retention_ms + kTrimSlackMs) return false;
  int64_t oldest_begin = BeginOf(oldest, query.timeline);
  for (const FragmentView& f : *held)
    oldest_begin = std::min(oldest_begin, BeginOf(f, query.timeline));
  return query.start_ms < oldest_begin;
}

Result<std::vector<FragmentView>> ArchivedSource::FetchFrames(
    std::string_view stream, std::vector<FragmentView> fragments) const {
  uint64_t bytes = 0;
  for (const FragmentView& f : fragments) bytes += f.bytes;
  if (fragments.size() > options_.max_fetched_fragments || bytes > options_.max_fetched_bytes)
    return Status(Code::kTooLarge,
                  "the range holds " + std::to_string(fragments.size()) + " fragments (" +
                      std::to_string(bytes) + " bytes) of the shared archive; one read fetches " +
                      "at most " + std::to_string(options_.max_fetched_fragments) +
                      " fragments and " + std::to_string(options_.max_fetched_bytes) +
                      " bytes: ask for a shorter range",
                  Reason::kClipTooLarge);
  std::vector<FragmentView> out;
  out.reserve(fragments.size());
  for (const FragmentView& index : fragments) {
    auto read = archive_.Read(stream, index);
    if (read.ok()) {
      out.push_back(std::move(*read));
      continue;
    }
    // Gone meanwhile, or not a fragment after all: not retained, as a local
    // file that does not read back. A store that fails is the read's error.
    const Code code = read.status().code();
    if (code != Code::kNotFound && code != Code::kMediaError) return read.status();
  }
  return out;
}

Result<FragmentView> ArchivedSource::LatestFragment(std::string_view stream) const {
  auto held = local_.LatestFragment(stream);
  if (held.ok() || (held.status().reason() != Reason::kStreamNotFound &&
                    held.status().reason() != Reason::kNoFrame))
    return held;
  auto listed = ListArchive(stream);
  if (!listed.ok()) return listed.status();
  // Newest first: one whose object is gone or torn gives way to the one before.
  for (auto it = listed->rbegin(); it != listed->rend(); ++it) {
    auto read = archive_.Read(stream, *it);
    if (read.ok()) return read;
    const Code code = read.status().code();
    if (code != Code::kNotFound && code != Code::kMediaError) return read.status();
  }
  return held;  // the archive has nothing either: this node's answer
}

void ArchivedSource::LatestFragmentAsync(std::string_view stream, FragmentCallback done) const {
  auto held = local_.LatestFragment(stream);
  if (held.ok() || (held.status().reason() != Reason::kStreamNotFound &&
                    held.status().reason() != Reason::kNoFrame))
    return done(std::move(held));
  auto shared = std::make_shared<FragmentCallback>(std::move(done));
  Post([this, stream = std::string(stream), shared] { (*shared)(LatestFragment(stream)); },
       [shared](Status s) { (*shared)(std::move(s)); });
}

Result<std::vector<FragmentView>> ArchivedSource::Fragments(std::string_view stream,
                                                            const FragmentQuery& query) const {
  if (!NeedsArchive(stream, query)) return local_.Fragments(stream, query);
  auto held = local_.Fragments(stream, query);
  const bool here = held.ok();
  if (!here && held.status().reason() != Reason::kStreamNotFound) return held;
  auto listed = ListArchive(stream);
  if (!listed.ok()) return listed.status();
  if (!here && listed->empty()) return NoStream(stream);
  std::set<uint64_t> numbers;
  std::vector<FragmentView> out;
  if (here) {
    // Every number held here, wanted or not: the archive's copy of one is never added.
    FragmentQuery all;
    all.with_frames = false;
    auto index = local_.Fragments(stream, all);
    if (index.ok())
      for (const FragmentView& f : *index) numbers.insert(f.number);
    for (const FragmentView& f : *held) numbers.insert(f.number);
    out = std::move(*held);
  }
  std::vector<FragmentView> archived;
  for (FragmentView& f : *listed)
    if (query.Wants(f) && !numbers.count(f.number)) archived.push_back(std::move(f));
  if (query.with_frames) {
    auto fetched = FetchFrames(stream, std::move(archived));
    if (!fetched.ok()) return fetched.status();
    archived = std::move(*fetched);
  }
  for (FragmentView& f : archived) out.push_back(std::move(f));
  SortByArrival(out);
  return out;
}

void ArchivedSource::FragmentsAsync(std::string_view stream, const FragmentQuery& query,
                                    FragmentsCallback done) const {
  if (!NeedsArchive(stream, query)) return done(local_.Fragments(stream, query));
  auto shared = std::make_shared<FragmentsCallback>(std::move(done));
  Post([this, stream = std::string(stream), query, shared] { (*shared)(Fragments(stream, query)); },
       [shared](Status s) { (*shared)(std::move(s)); });
}

Result<std::vector<FragmentView>> ArchivedSource::FragmentsByNumber(
    std::string_view stream, const std::vector<uint64_t>& numbers) const {
  auto held = local_.FragmentsByNumber(stream, numbers);
  if (held.ok() || (held.status().reason() != Reason::kStreamNotFound &&
                    held.status().reason() != Reason::kFragmentNotFound))
    return held;
  // Those held here from here, the rest from the archive.
  std::set<uint64_t> here;
  FragmentQuery all;
  all.with_frames = false;
  if (auto index = local_.Fragments(stream, all); index.ok())
    for (const FragmentView& f : *index) here.insert(f.number);
  std::vector<uint64_t> local_numbers;
  for (uint64_t n : numbers)
    if (here.count(n)) local_numbers.push_back(n);
  std::map<uint64_t, FragmentView> found;
  if (!local_numbers.empty()) {
    auto local = local_.FragmentsByNumber(stream, local_numbers);
    if (local.ok()) {
      for (FragmentView& f : *local) found.emplace(f.number, std::move(f));
    } else if (local.status().reason() != Reason::kFragmentNotFound) {
      return local.status();
    }  // else trimmed meanwhile: the archive may have them
  }
  std::vector<FragmentView> wanted;
  std::set<uint64_t> missing;
  for (uint64_t n : numbers)
    if (!found.count(n)) missing.insert(n);
  if (!missing.empty()) {
    auto listed = ListArchive(stream);
    if (!listed.ok()) return listed.status();
    for (FragmentView& f : *listed)
      if (missing.count(f.number)) wanted.push_back(std::move(f));
    auto fetched = FetchFrames(stream, std::move(wanted));
    if (!fetched.ok()) return fetched.status();
    for (FragmentView& f : *fetched) found.emplace(f.number, std::move(f));
  }
  std::vector<FragmentView> out;
  out.reserve(numbers.size());
  for (uint64_t n : numbers) {
    auto it = found.find(n);
    if (it == found.end())
      return NotFound("fragment " + std::to_string(n) + " of stream '" + std::string(stream) +
                          "' is not retained here nor in the shared archive",
                      Reason::kFragmentNotFound);
    out.push_back(it->second);
  }
  return out;
}

void ArchivedSource::FragmentsByNumberAsync(std::string_view stream,
                                            const std::vector<uint64_t>& numbers,
                                            FragmentsCallback done) const {
  // Held here (the usual case): answered as the local store answers it.
  auto held = local_.FragmentsByNumber(stream, numbers);
  if (held.ok() || (held.status().reason() != Reason::kStreamNotFound &&
                    held.status().reason() != Reason::kFragmentNotFound))
    return done(std::move(held));
  auto shared = std::make_shared<FragmentsCallback>(std::move(done));
  Post([this, stream = std::string(stream), numbers,
        shared] { (*shared)(FragmentsByNumber(stream, numbers)); },
       [shared](Status s) { (*shared)(std::move(s)); });
}

}  // namespace lastframe::store
