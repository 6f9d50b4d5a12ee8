#include "kvs/kvs_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "core/mutex.h"
#include "core/stream_name.h"
#include "kvs/mkv_chunk.h"
#include "snapshot/scheduled_images.h"
#include "store/clip.h"

namespace lastframe::kvs {

namespace {

constexpr int64_t kHourMs = 3'600'000;

Status NoStream(const std::string& name) {
  return NotFound("The requested stream " + name + " is not found or not active.",
                  Reason::kStreamNotFound);
}

// A source's error for |stream|, told as the control plane tells it.
Status SourceError(const Status& s, const std::string& stream) {
  return s.code() == Code::kNotFound && s.reason() == Reason::kStreamNotFound ? NoStream(stream)
                                                                              : s;
}

std::string MediaTypeOf(const store::StreamInfo& info) {
  if (info.codec == "h264") return "video/h264";
  if (info.codec == "hevc") return "video/h265";
  return info.codec.empty() ? "" : "video/" + info.codec;
}

store::FragmentQuery QueryOf(const TimeRange& range, store::FragmentQuery::Match match) {
  store::FragmentQuery q;
  q.timeline = range.server ? store::FragmentQuery::Timeline::kServer
                            : store::FragmentQuery::Timeline::kProducer;
  q.match = match;
  q.start_ms = range.start_ms;
  q.end_ms = range.end_ms;
  return q;
}

}  // namespace

KvsService::KvsService(store::StreamStore& streams, const store::StreamSource& source,
                       StreamRegistry& registry, snapshot::SnapshotEngine* engine,
                       snapshot::ScheduledImages* images, WorkerPool& workers, const Clock& clock,
                       KvsServiceOptions options)
    : streams_(streams),
      source_(source),
      registry_(registry),
      engine_(engine),
      images_(images),
      workers_(workers),
      clock_(clock),
      options_(std::move(options)),
      followers_(clock, options_.max_get_media_per_stream) {}

KvsService::~KvsService() { Shutdown(); }

void KvsService::Shutdown() { followers_.Shutdown(); }

std::string KvsService::Arn(const StreamMeta& m) const {
  return "arn:aws:kinesisvideo:" + options_.region + ":" + options_.account_id + ":stream/" +
         m.name + "/" + std::to_string(m.creation_ms);
}

Result<std::string> KvsService::Resolve(const StreamRef& ref, bool here) const {
  if (!ref.name && !ref.arn) return InvalidArgument("StreamName or StreamARN is required");
  std::string stream;
  if (ref.name) {
    stream = *ref.name;
    if (Status s = ValidateStreamName(stream); !s.ok()) return InvalidArgument(s.message());
  }
  if (ref.arn) {
    // arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION
    const std::string& a = *ref.arn;
    size_t at = a.find(":stream/");
    size_t last = a.rfind('/');
    if (!a.starts_with("arn:") || at == std::string::npos || last <= at + 8)
      return InvalidArgument("StreamARN is not a Kinesis Video stream ARN");
    std::string from_arn = a.substr(at + 8, last - at - 8);
    if (ref.name && from_arn != stream)
      return InvalidArgument("StreamName and StreamARN name different streams");
    auto meta = registry_.Find(from_arn);
    if (!meta || !streams_.Find(from_arn) || Arn(*meta) != a) return NoStream(a);
    stream = from_arn;
  }
  if (here && !streams_.Find(stream)) return NoStream(stream);
  return stream;
}

StreamMeta KvsService::MetaOf(const std::string& name) {
  if (auto known = registry_.Find(name)) return *known;
  // A stream made by a push or a pull began no later than its oldest fragment
  // (looked up once: listings run on I/O threads).
  int64_t since = clock_.NowMs();
  store::FragmentQuery index;  // times only: no fragment file read back
  index.with_frames = false;
  if (auto s = streams_.Find(name))
    for (const auto& f : s->Select(index)) since = std::min(since, f.server_ts_ms);
  return registry_.Ensure(name, since);
}

int64_t KvsService::RetentionHours(const StreamMeta& m) const {
  if (m.retention_hours) return *m.retention_hours;
  auto s = streams_.Find(m.name);
  int64_t ms = s ? s->retention_ms() : options_.default_retention_ms;
  return (ms + kHourMs - 1) / kHourMs;  // whole hours, rounded up: never less than is kept
}

StreamDescription KvsService::Describe(const std::string& name) {
  StreamMeta m = MetaOf(name);
  store::StreamInfo info;
  if (auto s = streams_.Find(name))
    info = s->Info(clock_.NowMs(), streams_.options().live_window_ms);
  StreamDescription d;
  d.name = name;
  d.arn = Arn(m);
  d.version = m.version;
  d.creation_ms = m.creation_ms;
  d.retention_hours = RetentionHours(m);
  d.device_name = m.device_name;
  d.media_type = m.media_type.empty() ? MediaTypeOf(info) : m.media_type;
  d.kms_key_id = m.kms_key_id;
  return d;
}

Status KvsService::CheckVersion(const StreamMeta& m, const std::string& version) const {
  if (version == std::to_string(m.version)) return Status::Ok();
  return Status(Code::kInvalidArgument,
                "The stream version " + version + " is not the current version " +
                    std::to_string(m.version) + ".",
                Reason::kVersionMismatch);
}

Result<std::string> KvsService::CreateStream(const CreateStreamRequest& r) {
  if (Status s = ValidateStreamName(r.name); !s.ok()) return InvalidArgument(s.message());
  if (!r.media_type.empty() && r.media_type.find('/') == std::string::npos)
    return InvalidArgument("MediaType must be a media type such as video/h264");
  if (r.retention_hours < 0 || r.retention_hours > kMaxRetentionHours)
    return InvalidArgument("DataRetentionInHours must be an integer from 0 to " +
                           std::to_string(kMaxRetentionHours));
  if (r.tags > kMaxTags)
    return Status(Code::kInvalidArgument,
                  "Tags must be a map of at most " + std::to_string(kMaxTags) + " tags",
                  Reason::kTooManyTags);
  StreamMeta m;
  m.name = r.name;
  m.device_name = r.device_name;
  m.media_type = r.media_type;
  m.kms_key_id = r.kms_key_id;
  m.retention_hours = r.retention_hours;
  m.creation_ms = clock_.NowMs();
  std::optional<int64_t> retention;  // 0: no archive in Kinesis Video; here the live window
  if (r.retention_hours > 0) retention = r.retention_hours * kHourMs;
  auto created = streams_.Create(m.name, retention);
  if (!created.ok() && created.status().reason() == Reason::kTooManyStreams)  // --max-streams
    return created.status();
  if (!created.ok())
    return Status(Code::kConflict, "The stream " + m.name + " already exists.",
                  Reason::kStreamExists);
  LF_RETURN_IF_ERROR(registry_.Put(m));
  return Arn(m);
}

Result<StreamDescription> KvsService::DescribeStream(const StreamRef& ref) {
  auto name = Resolve(ref, /*here=*/true);
  if (!name.ok()) return name.status();
  return Describe(*name);
}

Result<ListStreamsResult> KvsService::ListStreams(const ListStreamsRequest& r) {
  std::vector<std::string> names;
  for (const auto& s : streams_.List())
    if (s.name.starts_with(r.prefix) && (r.after.empty() || s.name > r.after))
      names.push_back(s.name);
  std::sort(names.begin(), names.end());
  const size_t limit = std::clamp<size_t>(r.max_results, 1, kMaxStreamsListed);
  ListStreamsResult out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out.streams.push_back(Describe(names[i]));
  if (names.size() > limit) out.last = names[limit - 1];
  return out;
}

Status KvsService::DeleteStream(const DeleteStreamRequest& r) {
  auto name = Resolve(r.stream, /*here=*/true);
  if (!name.ok()) return name.status();
  StreamMeta m = MetaOf(*name);
  if (r.current_version) LF_RETURN_IF_ERROR(CheckVersion(m, *r.current_version));
  LF_RETURN_IF_ERROR(streams_.Remove(*name));  // Conflict ("StreamBusy") while pushed to
  registry_.Remove(*name);
  if (images_) images_->Remove(*name);
  return Status::Ok();
}

Status KvsService::UpdateDataRetention(const UpdateDataRetentionRequest& r) {
  auto name = Resolve(r.stream, /*here=*/true);
  if (!name.ok()) return name.status();
  StreamMeta m = MetaOf(*name);
  LF_RETURN_IF_ERROR(CheckVersion(m, r.current_version));
  const int64_t current = RetentionHours(m);
  const int64_t next = r.increase ? current + r.change_hours : current - r.change_hours;
  if (next < 0 || next > kMaxRetentionHours)
    return InvalidArgument("the retention would be " + std::to_string(next) +
                           " hours; it must stay from 0 to " + std::to_string(kMaxRetentionHours));
  LF_RETURN_IF_ERROR(
      streams_.SetRetention(*name, next > 0 ? next * kHourMs : options_.default_retention_ms));
  m.retention_hours = next;
  ++m.version;
  return registry_.Put(m);
}

Result<std::string> KvsService::GetDataEndpoint(const StreamRef& ref) {
  auto name = Resolve(ref, /*here=*/true);
  if (!name.ok()) return name.status();
  return options_.public_url;  // one server answers every API
}

Status KvsService::Schedule(const std::string& stream, const ImageGenerationConfig& config) {
  auto prefix = ImageKeyPrefix(config, options_.images_bucket);
  if (!prefix.ok()) return prefix.status();
  if (config.enabled)
    images_->Set(stream, ImageScheduleOf(config, *prefix));
  else
    images_->Remove(stream);
  return Status::Ok();
}

Status KvsService::UpdateImageGeneration(const UpdateImageGenerationRequest& r) {
  auto name = Resolve(r.stream, /*here=*/true);
  if (!name.ok()) return name.status();
  if (images_ == nullptr) return InvalidArgument("this server writes no images");
  StreamMeta m = MetaOf(*name);
  if (!r.config) {  // no configuration: image generation is removed
    images_->Remove(*name);
    m.image_generation.reset();
    return registry_.Put(m);
  }
  const ImageGenerationConfig& c = *r.config;
  if (c.sampling_interval_ms < kMinSamplingIntervalMs ||
      c.sampling_interval_ms > kMaxSamplingIntervalMs)
    return InvalidArgument("SamplingInterval must be an integer from " +
                           std::to_string(kMinSamplingIntervalMs) + " to " +
                           std::to_string(kMaxSamplingIntervalMs));
  if (auto prefix = ImageKeyPrefix(c, options_.images_bucket); !prefix.ok()) return prefix.status();
  if (c.enabled && m.retention_hours && *m.retention_hours == 0)
    return Status(Code::kInvalidArgument,
                  "image generation needs a stream with data retention (it has 0 hours)",
                  Reason::kNoDataRetention);
  LF_RETURN_IF_ERROR(Schedule(*name, c));
  m.image_generation = c;
  return registry_.Put(m);
}

void KvsService::RestoreImageGeneration() {
  if (images_ == nullptr) return;
  for (const StreamMeta& m : registry_.All()) {
    if (!m.image_generation || !m.image_generation->enabled || !streams_.Find(m.name)) continue;
    if (Status s = Schedule(m.name, *m.image_generation); !s.ok())
      spdlog::warn("image generation of {} not restored: {}", m.name, s.message());
  }
}

Result<std::optional<ImageGenerationConfig>> KvsService::DescribeImageGeneration(
    const StreamRef& ref) {
  auto name = Resolve(ref, /*here=*/true);
  if (!name.ok()) return name.status();
  auto m = registry_.Find(*name);
  return m ? m->image_generation : std::nullopt;
}

void KvsService::Post(std::function<void()> work, const std::function<void(Status)>& fail) {
  if (!workers_.TryPost(std::move(work)))
    fail(Status(Code::kOverloaded, "the workers are busy; retry"));
}

void KvsService::ListFragments(const ListFragmentsRequest& r, ListFragmentsCallback done) {
  auto name = Resolve(r.stream, /*here=*/false);
  if (!name.ok()) return done(name.status());
  // Listed once whole, as Kinesis Video lists them; numbers and times only.
  store::FragmentQuery q;  // no range: every fragment
  if (r.range) q = QueryOf(*r.range, store::FragmentQuery::Match::kStartsWithin);
  q.first_number = r.first_number;
  q.complete_only = true;
  q.with_frames = false;
  const size_t limit = std::clamp<size_t>(r.max_results, 1, kMaxListFragments);
  source_.FragmentsAsync(*name, q,
                         [done = std::move(done), stream = *name,
                          limit](Result<std::vector<store::FragmentView>> fragments) {
                           if (!fragments.ok())
                             return done(SourceError(fragments.status(), stream));
                           ListFragmentsResult out;
                           for (size_t i = 0; i < fragments->size() && i < limit; ++i) {
                             const auto& f = (*fragments)[i];
                             out.fragments.push_back({f.number, f.bytes, f.producer_ts_ms,
                                                      f.server_ts_ms, f.duration_ms});
                           }
                           if (fragments->size() > limit)
                             out.next_number = (*fragments)[limit].number;
                           done(std::move(out));
                         });
}

void KvsService::GetMediaForFragmentList(const GetMediaForFragmentListRequest& r,
                                         MediaCallback done) {
  auto name = Resolve(r.stream, /*here=*/false);
  if (!name.ok()) return done(name.status());
  if (r.numbers.empty() || r.numbers.size() > kMaxListFragments)
    return done(InvalidArgument("Fragments must list 1 to " + std::to_string(kMaxListFragments) +
                                " fragment numbers"));
  source_.FragmentsByNumberAsync(
      *name, r.numbers,
      [this, done = std::move(done),
       stream = *name](Result<std::vector<store::FragmentView>> fragments) {
        if (!fragments.ok()) return done(SourceError(fragments.status(), stream));
        size_t bytes = 0;
        for (const auto& f : *fragments) bytes += f.bytes;
        if (bytes > kMaxFragmentListBytes)
          return done(InvalidArgument("the fragments hold " + std::to_string(bytes) +
                                      " bytes; one call may return at most 100 MB"));
        Post(
            [done, chosen = std::move(*fragments)] {
              std::string out;
              for (const auto& f : chosen) {
                auto chunk = MkvChunk(f);
                if (!chunk.ok()) return done(chunk.status());
                out += *chunk;
              }
              done(std::move(out));
            },
            done);
      });
}

void KvsService::GetClip(const GetClipRequest& r, ClipCallback done) {
  auto name = Resolve(r.stream, /*here=*/false);
  if (!name.ok()) return done(name.status());
  if (r.range.end_ms <= r.range.start_ms)
    return done(InvalidArgument("The StartTimestamp must be before the EndTimestamp."));
  source_.FragmentsAsync(*name, QueryOf(r.range, store::FragmentQuery::Match::kOverlaps),
                         [this, done = std::move(done),
                          stream = *name](Result<std::vector<store::FragmentView>> fragments) {
                           if (!fragments.ok())
                             return done(SourceError(fragments.status(), stream));
                           std::vector<store::FragmentView> chosen;
                           size_t bytes = 0;
                           std::string truncated;
                           for (auto& f : *fragments) {
                             // Kinesis Video's GetClip: the first 200 fragments or 100 MB of the
                             // range.
                             if (chosen.size() == kMaxClipFragments) {
                               truncated = "the first 200 fragments";
                               break;
                             }
                             if (bytes + f.bytes > kMaxClipBytes) {
                               truncated = "the first 100 MB";
                               break;
                             }
                             bytes += f.bytes;
                             chosen.push_back(std::move(f));
                           }
                           if (chosen.empty())
                             return done(NotFound("No fragments found in the specified time range.",
                                                  Reason::kNoFragments));
                           Post(
                               [done, chosen = std::move(chosen), truncated] {
                                 auto clip = store::MuxClip(chosen, store::ClipFormat::kMp4,
                                                            kMaxClipBytes + (8 << 20));
                                 if (!clip.ok()) return done(clip.status());
                                 done(ClipResult{std::move(*clip), truncated});
                               },
                               done);
                         });
}

void KvsService::GetImages(const GetImagesRequest& r, ImagesCallback done) {
  auto name = Resolve(r.stream, /*here=*/false);
  if (!name.ok()) return done(name.status());
  if (engine_ == nullptr) return done(Status(Code::kUnavailable, "this server renders no images"));
  if (r.end_ms < r.start_ms || r.first_ms < r.start_ms || r.first_ms > r.end_ms ||
      r.interval_ms < kMinSamplingIntervalMs || r.interval_ms > kMaxSamplingIntervalMs ||
      (r.first_ms - r.start_ms) % r.interval_ms != 0)
    return done(InvalidArgument("the sampled times do not fit the time range"));
  // The images gathered, answered once the last render has.
  struct Gather {
    Mutex mu;
    size_t left LF_GUARDED_BY(mu) = 0;
    GetImagesResult result LF_GUARDED_BY(mu);
    std::optional<Status> failed LF_GUARDED_BY(mu);  // the whole call's error
    ImagesCallback done;
    // Counts |n| renders as answered; the last one answers the call.
    void Settle(size_t n) LF_EXCLUDES(mu) {
      MutexLock lock(mu);
      left -= n;
      if (left > 0) return;
      std::optional<Status> error = std::move(failed);
      GetImagesResult images = std::move(result);
      lock.Unlock();
      if (error) return done(std::move(*error));
      done(std::move(images));
    }
  };
  // Kinesis Video's sizes go up to 3840x2160: past this server's render bound
  // (--max-render-pixels) they are scaled down to it, keeping their shape, not refused.
  snapshot::SnapshotOptions options = r.image;
  options.shrink_to_fit = true;
  auto g = std::make_shared<Gather>();
  g->done = std::move(done);
  std::vector<int64_t> times;
  const size_t limit = std::clamp<size_t>(r.max_results, 1, kMaxImagesListed);
  for (int64_t t = r.first_ms; t <= r.end_ms && times.size() < limit; t += r.interval_ms)
    times.push_back(t);
  {
    MutexLock lock(g->mu);
    g->left = times.size();
    for (int64_t t : times) g->result.images.push_back({.time_ms = t});
    if (times.back() + r.interval_ms <= r.end_ms) g->result.next_ms = times.back() + r.interval_ms;
  }
  for (size_t i = 0; i < times.size(); ++i) {
    bool failed = false;
    {
      MutexLock lock(g->mu);
      failed = g->failed.has_value();
    }
    if (failed) return g->Settle(times.size() - i);  // the call has failed: render no more
    engine_->RenderAtAsync(*name,
                           snapshot::FrameTime{.at_ms = times[i], .server_timeline = r.server},
                           options, [g, i, stream = *name](Result<snapshot::Image> image) {
                             {
                               MutexLock lock(g->mu);
                               SampledImage& out = g->result.images[i];
                               if (image.ok()) {
                                 out.bytes = std::move(image->bytes);
                               } else if (image.status().code() == Code::kOverloaded ||
                                          image.status().reason() == Reason::kStreamNotFound) {
                                 if (!g->failed) g->failed = SourceError(image.status(), stream);
                               } else {
                                 out.error = (image.status().reason() == Reason::kNoMedia ||
                                              image.status().reason() == Reason::kNoFrame)
                                                 ? SampledImage::Error::kNoMedia
                                                 : SampledImage::Error::kMediaError;
                               }
                             }
                             g->Settle(1);
                           });
  }
}

Result<MediaFollowers::Session> KvsService::GetMedia(const GetMediaRequest& r) {
  auto name = Resolve(r.stream, /*here=*/true);
  if (!name.ok()) return name.status();
  std::shared_ptr<store::Stream> stream = streams_.Find(*name);
  if (!stream) return NoStream(*name);
  store::FragmentQuery index;  // numbers and times only: no fragment file read back
  index.with_frames = false;
  auto first = FirstFragmentNumber(stream->Select(index), r.start);
  if (!first.ok()) return first.status();
  return followers_.Open(std::move(stream), *first);
}

}  // namespace lastframe::kvs
