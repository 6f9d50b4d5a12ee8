#include "ingest/pull_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "core/metrics.h"
#include "ingest/fragmenter.h"
#include "media/ffmpeg.h"

namespace lastframe::ingest {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string SchemeOf(const std::string& url) {
  size_t colon = url.find("://");
  std::string scheme = colon == std::string::npos ? "" : url.substr(0, colon);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return scheme;
}

// The protocols libavformat may use for a scheme: an http URL must not be
// able to open local files (or anything else) through a redirect or playlist.
const char* ProtocolWhitelist(const std::string& scheme) {
  if (scheme == "rtsp" || scheme == "rtsps") return "rtsp,rtsps,rtp,srtp,udp,tcp,tls";
  if (scheme == "rtmp" || scheme == "rtmps") return "rtmp,rtmps,tcp,tls";
  if (scheme == "srt") return "srt,udp";
  if (scheme == "http" || scheme == "https") return "http,https,tcp,tls";
  if (scheme == "file") return "file";
  return "";
}

std::string AvErrorText(int rc) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(rc, buf, sizeof buf);
  return buf;
}

struct FormatContextCloser {
  void operator()(AVFormatContext* ctx) const { avformat_close_input(&ctx); }
};

// Pulled sources in |state|: each source is counted in its state's gauge from
// its start to its end, and moved between them as it changes state.
metrics::Gauge& SourcesIn(const std::string& state) {
  static auto& family = metrics::Registry::Global().Gauges("lastframe_pull_sources",
                                                           "Pulled sources, by state.", {"state"});
  // The states SourceInfo names, looked up once; any other through the lock.
  static metrics::Gauge& connecting = family.With({"connecting"});
  static metrics::Gauge& live = family.With({"live"});
  static metrics::Gauge& error = family.With({"error"});
  if (state == "connecting") return connecting;
  if (state == "live") return live;
  if (state == "error") return error;
  return family.With({state});
}

metrics::Counter& Reconnects() {
  static auto& c = metrics::Registry::Global().AddCounter(
      "lastframe_pull_reconnects_total", "Connections pulled sources opened after their first.");
  return c;
}

metrics::Histogram& FirstFrameSeconds() {
  static auto& h = metrics::Registry::Global().AddHistogram(
      "lastframe_pull_first_frame_seconds",
      "From a pull's connection attempt to its first video frame.", metrics::LatencyBuckets());
  return h;
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return url;
  start += 3;
  std::string out = url;
  size_t path = out.find_first_of("/?#", start);
  size_t at = out.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at != std::string::npos && at >= start) {
    size_t colon = out.find(':', start);
    if (colon != std::string::npos && colon < at)
      out = out.substr(0, colon + 1) + "***" + out.substr(at);
    else
      out = out.substr(0, start) + "***" + out.substr(at);
  }
  // Secrets in query parameters (SRT's passphrase, tokens of HTTP feeds).
  size_t q = out.find('?');
  while (q != std::string::npos && q < out.size()) {
    size_t eq = out.find('=', q);
    size_t amp = out.find('&', q + 1);
    if (eq == std::string::npos) break;
    if (amp != std::string::npos && eq > amp) {
      q = amp;
      continue;
    }
    std::string key = out.substr(q + 1, eq - q - 1);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (key.find("pass") != std::string::npos || key.find("token") != std::string::npos ||
        key.find("secret") != std::string::npos || key.find("key") != std::string::npos ||
        key.find("auth") != std::string::npos) {
      size_t end = amp == std::string::npos ? out.size() : amp;
      out = out.substr(0, eq + 1) + "***" + out.substr(end);
      amp = out.find('&', eq + 1);
    }
    q = amp;
  }
  return out;
}

Status ValidateSourceUrl(const std::string& url, bool allow_file) {
  auto bad = [](const std::string& why) { return InvalidArgument(why, Reason::kInvalidSourceUrl); };
  if (url.empty() || url.size() > 2048) return bad("the source URL must be 1 to 2048 bytes");
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f)
      return bad(
          "the source URL may not contain spaces or control characters (percent-encode "
          "them)");
  std::string scheme = SchemeOf(url);
  if (*ProtocolWhitelist(scheme) == '\0')
    return bad(
        "unsupported source URL scheme: use rtsp, rtsps, rtmp, rtmps, srt, http, https or "
        "file");
  std::string rest = url.substr(scheme.size() + 3);
  if (scheme == "file") {
    if (!allow_file)
      return bad("file:// sources can only be configured in the --config file, not over the API");
    if (rest.empty() || rest[0] != '/')
      return bad("a file:// source needs an absolute path: file:///path/to/clip.mkv");
    return Status::Ok();
  }
  std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  std::string host =
      authority.substr(authority.rfind('@') == std::string::npos ? 0 : authority.rfind('@') + 1);
  if (host.empty() || host[0] == ':') return bad("the source URL has no host");
  return Status::Ok();
}

Result<std::unique_ptr<PullSource>> PullSource::Start(store::StreamStore& store,
                                                      PullOptions options) {
  LF_RETURN_IF_ERROR(ValidateSourceUrl(options.url, true));
  if (options.rtsp_transport != "tcp" && options.rtsp_transport != "udp")
    return InvalidArgument("rtsp_transport must be tcp or udp", Reason::kInvalidArgument);
  std::unique_ptr<PullSource> source(new PullSource(store, std::move(options)));
  auto thread = Thread::Start(Thread::kMediaStackBytes, [s = source.get()] { s->Run(); });
  if (!thread.ok())
    return Status(Code::kOverloaded,
                  "cannot start the source's thread: " + thread.status().message(),
                  Reason::kTooManyPulls);
  source->thread_ = std::move(*thread);
  return source;
}

PullSource::PullSource(store::StreamStore& store, PullOptions options)
    : store_(store), options_(std::move(options)), redacted_url_(RedactUrl(options_.url)) {
  info_.url = redacted_url_;
  info_.state = "connecting";
  info_.rtsp_transport =
      SchemeOf(options_.url).rfind("rtsp", 0) == 0 ? options_.rtsp_transport : "";
  SourcesIn(info_.state).Add(1);
  // Listed from now on, before the first frame (PullSources::Add took its place).
  if (auto opened = store_.Open(options_.stream); opened.ok()) (*opened)->SetOwned();
}

PullSource::~PullSource() {
  Stop();
  MutexLock lock(mu_);
  SourcesIn(info_.state).Add(-1);
}

void PullSource::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SourceInfo PullSource::Info() const {
  MutexLock lock(mu_);
  return info_;
}

void PullSource::SetState(const std::string& state, const std::string& error,
                          const std::string& code) {
  MutexLock lock(mu_);
  if (state != info_.state) {
    SourcesIn(state).Add(1);
    SourcesIn(info_.state).Add(-1);
  }
  info_.state = state;
  if (!error.empty()) {
    info_.last_error = error;
    info_.last_error_code = code;
  }
  if (state == "live")
    info_.connected_since_ms = store_.clock().NowMs();
  else
    info_.connected_since_ms.reset();
}

bool PullSource::SleepFor(std::chrono::milliseconds d) {
  MutexLock lock(mu_);
  return !lock.WaitFor(cv_, d, [this] { return stopping_.load(); });
}

int PullSource::Interrupt(void* opaque) {
  auto* self = static_cast<PullSource*>(opaque);
  return self->stopping_.load() || NowNs() > self->deadline_ns_.load() ? 1 : 0;
}

void PullSource::Run() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  int failures = 0;
  bool first = true;
  while (!stopping_) {
    if (!first) {
      MutexLock lock(mu_);
      ++info_.reconnects;
      Reconnects().Add();
    }
    first = false;
    SetState("connecting");
    bool stable = false;
    Status ended = Session();
    {
      MutexLock lock(mu_);
      stable = info_.state == "live" && info_.connected_since_ms &&
               store_.clock().NowMs() - *info_.connected_since_ms >= options_.stable_after.count();
    }
    if (stopping_) break;
    // Only a connection that stayed up a while starts the backoff over: a
    // source that delivers a frame and drops is retried ever more slowly.
    failures = stable ? 0 : std::min(failures + 1, 16);
    SetState("error", ended.message(), ended.reason_name());
    auto cap = std::min<int64_t>(options_.backoff_max.count(), options_.backoff_base.count()
                                                                   << std::min(failures, 16));
    // Half fixed, half random: never a hot loop, never in step with other sources.
    auto wait = std::chrono::milliseconds(
        cap / 2 + std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap / 2, 1))(rng));
    spdlog::warn("source stream={} url={} ended: {}; reconnecting in {} ms", options_.stream,
                 redacted_url_, ended.message(), wait.count());
    if (!SleepFor(wait)) break;
  }
}

Status PullSource::Session() {
  // Not OpenForWriting: a stream deleted under its pull must not be made again.
  auto opened = store_.Open(options_.stream);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<store::Stream> stream = std::move(*opened);
  stream->SetOwned();
  if (!stream->AcquireWriter())
    return Status(Code::kConflict, "a producer is pushing to this stream", Reason::kStreamBusy);
  std::string error;
  // Every connection this thread makes is checked against the pull policy.
  static const PullPolicy kDefaultPolicy;
  ConnectGuard guard(options_.policy ? *options_.policy : kDefaultPolicy);
  Status ended = [&]() -> Status {
    const auto attempt = Clock::now();
    const std::string scheme = SchemeOf(options_.url);
    AVFormatContext* raw = avformat_alloc_context();
    if (raw == nullptr) return Internal("out of memory");
    raw->interrupt_callback = {&PullSource::Interrupt, this};
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "protocol_whitelist", ProtocolWhitelist(scheme), 0);
    if (scheme == "rtsp" || scheme == "rtsps")
      av_dict_set(&opts, "rtsp_transport", options_.rtsp_transport.c_str(), 0);
    deadline_ns_ = NowNs() + std::chrono::nanoseconds(options_.open_timeout).count();
    int rc = avformat_open_input(&raw, options_.url.c_str(), nullptr, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
      if (stopping_) return Status(Code::kUnavailable, "stopped");
      return Status(Code::kUnavailable,
                    NowNs() > deadline_ns_ ? "cannot open the source: timed out"
                                           : "cannot open the source: " + AvErrorText(rc),
                    Reason::kSourceUnavailable);
    }
    std::unique_ptr<AVFormatContext, FormatContextCloser> ctx(raw);
    ctx->max_analyze_duration = 2 * AV_TIME_BASE;
    rc = avformat_find_stream_info(ctx.get(), nullptr);
    if (rc < 0)
      return Status(Code::kUnavailable, "cannot read the source's streams: " + AvErrorText(rc),
                    Reason::kSourceUnavailable);
    int video = FindVideoStream(*ctx);
    if (video < 0) return Status(Code::kUnavailable, "the source has no decodable video track");
    for (unsigned i = 0; i < ctx->nb_streams; ++i)
      if (static_cast<int>(i) != video) ctx->streams[i]->discard = AVDISCARD_ALL;
    const AVStream* vst = ctx->streams[video];
    auto codec = media::CopyCodecParameters(*vst->codecpar);
    if (!codec.ok()) return codec.status();
    const AVRational tb = vst->time_base;
    const bool file = scheme == "file";
    // A frame's duration when packets carry none: from the frame rate, else 40 ms.
    AVRational rate = vst->avg_frame_rate.num > 0 ? vst->avg_frame_rate : AVRational{25, 1};
    const int64_t default_duration = std::max<int64_t>(1, av_rescale_q(1, av_inv_q(rate), tb));

    std::optional<Fragmenter> fragmenter;
    media::PacketPtr pkt = media::MakePacket();
    int64_t shift = 0;                  // added to this pass's timestamps (looped files)
    int64_t end_shifted = 0;            // the end of the newest frame so far, shifted
    std::optional<int64_t> pass_first;  // the first timestamp of this pass through a file
    int64_t first_ts = 0;               // the first timestamp of the session, shifted
    auto session_start = Clock::now();
    uint64_t frames = 0;
    for (;;) {
      deadline_ns_ = NowNs() + std::chrono::nanoseconds(options_.read_timeout).count();
      rc = av_read_frame(ctx.get(), pkt.get());
      if (rc == AVERROR_EOF && file && frames > 0 && pass_first) {
        // Loop: the next pass continues the timeline where this one ended.
        pass_first.reset();
        if (av_seek_frame(ctx.get(), -1, 0, AVSEEK_FLAG_BACKWARD) < 0)
          return Status(Code::kUnavailable, "cannot loop the file: seek failed");
        continue;
      }
      if (rc < 0) {
        if (fragmenter) fragmenter->Finish();
        if (stopping_) return Status(Code::kUnavailable, "stopped");
        if (rc == AVERROR_EOF) return Status(Code::kUnavailable, "the source ended");
        if (NowNs() > deadline_ns_)
          return Status(Code::kUnavailable,
                        "no data for " + std::to_string(options_.read_timeout.count()) + " ms",
                        Reason::kSourceTimeout);
        return Status(Code::kUnavailable, "read failed: " + AvErrorText(rc),
                      Reason::kSourceUnavailable);
      }
      if (pkt->stream_index != video) {
        av_packet_unref(pkt.get());
        continue;
      }
      int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts == AV_NOPTS_VALUE) {
        av_packet_unref(pkt.get());
        continue;
      }
      if (!pass_first) {
        pass_first = ts;
        shift = frames == 0 ? 0 : end_shifted - ts;
      }
      if (pkt->pts != AV_NOPTS_VALUE) pkt->pts += shift;
      if (pkt->dts != AV_NOPTS_VALUE) pkt->dts += shift;
      ts += shift;
      end_shifted =
          std::max(end_shifted, ts + (pkt->duration > 0 ? pkt->duration : default_duration));
      if (!fragmenter) {
        FirstFrameSeconds().Observe(metrics::SecondsSince(attempt));
        first_ts = ts;
        // Pulled timestamps name when frames arrived: the first one now.
        int64_t start = store_.clock().NowMs() - av_rescale_q(ts, tb, AVRational{1, 1000});
        fragmenter.emplace(
            store_, stream, *codec, tb, FragmenterOptions{.producer_start_ms = start},
            FragmenterEvents{
                .on_fragment =
                    [this](const store::FragmentView& f) {
                      // Pulled fragments are made durable as pushed ones are, by
                      // the archive's writers: the pull thread never waits on the
                      // disk. The |done| may outlive this source: it holds the name.
                      store_.PersistAsync(options_.stream, f, [stream = options_.stream](Status s) {
                        if (!s.ok()) spdlog::warn("source stream={} {}", stream, s.message());
                      });
                    },
                .on_error =
                    [this](AckError id, const std::string& m, int64_t, std::optional<uint64_t>) {
                      spdlog::warn("source stream={} {}: {}", options_.stream, AckErrorName(id), m);
                    }});
        SetState("live");
        spdlog::info("source stream={} url={} live: {} {}x{}", options_.stream, redacted_url_,
                     avcodec_get_name(vst->codecpar->codec_id), vst->codecpar->width,
                     vst->codecpar->height);
      }
      if (file) {
        // A file is read at its own pace, as a camera would send it.
        auto due = session_start +
                   std::chrono::milliseconds(av_rescale_q(ts - first_ts, tb, AVRational{1, 1000}));
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now());
        if (wait.count() > 0 && !SleepFor(wait)) {
          fragmenter->Finish();
          return Status(Code::kUnavailable, "stopped");
        }
      }
      ++frames;
      fragmenter->Push(pkt.get());
      av_packet_unref(pkt.get());
    }
  }();
  // A refused hop (a redirect, a playlist's segment, an RTP peer) is why it failed.
  if (Status refused = guard.refusal(); !refused.ok() && !stopping_) ended = refused;
  stream->ReleaseWriter(stopping_ ? "" : ended.message());
  return ended;
}

PullSources::~PullSources() { StopAll(); }

Status PullSources::Add(PullOptions options, bool configured) {
  LF_RETURN_IF_ERROR(ValidateSourceUrl(options.url, /*allow_file=*/configured));
  options.policy = policy_;
  if (!configured) {  // configured sources are checked as they connect, and go to state error
    Status allowed = policy_->CheckUrl(options.url);
    if (!allowed.ok()) return Status(Code::kInvalidArgument, allowed.message(), allowed.reason());
  }
  MutexLock lock(mu_);
  if (sources_.count(options.stream))
    return Status(Code::kConflict, "stream '" + options.stream + "' is already pulled",
                  Reason::kStreamExists);
  if (auto existing = store_.Find(options.stream); existing && !configured) {
    auto info = existing->Info(store_.clock().NowMs(), store_.options().live_window_ms);
    if (info.producer_connected)
      return Status(Code::kConflict, "a producer is pushing to stream '" + options.stream + "'",
                    Reason::kStreamBusy);
    return Status(Code::kConflict,
                  "stream '" + options.stream + "' exists: a pull never takes over a stream",
                  Reason::kStreamExists);
  }
  if (limit_ && !limit_->TryAcquire())
    return Status(Code::kOverloaded,
                  "the server pulls " + std::to_string(limit_->max()) +
                      " sources, its limit (--max-pulls); delete one first",
                  Reason::kTooManyPulls);
  auto opened = store_.Open(options.stream);
  if (!opened.ok()) {
    if (limit_) limit_->Release();
    return opened.status();
  }
  (*opened)->SetOwned();
  std::string name = options.stream;
  auto source = PullSource::Start(store_, std::move(options));
  if (!source.ok()) {
    if (limit_) limit_->Release();
    return source.status();
  }
  sources_.emplace(name, std::move(*source));
  return Status::Ok();
}

Status PullSources::Remove(const std::string& stream) {
  std::unique_ptr<PullSource> source;
  {
    MutexLock lock(mu_);
    auto it = sources_.find(stream);
    if (it == sources_.end())
      return NotFound("stream '" + stream + "' is not pulled", Reason::kSourceNotFound);
    source = std::move(it->second);
    sources_.erase(it);
    if (limit_) limit_->Release();
  }
  source->Stop();  // outside the lock: joins its thread
  return Status::Ok();
}

std::optional<SourceInfo> PullSources::Find(const std::string& stream) const {
  MutexLock lock(mu_);
  auto it = sources_.find(stream);
  if (it == sources_.end()) return std::nullopt;
  return it->second->Info();
}

std::map<std::string, SourceInfo> PullSources::List() const {
  MutexLock lock(mu_);
  std::map<std::string, SourceInfo> out;
  for (const auto& [name, source] : sources_) out.emplace(name, source->Info());
  return out;
}

void PullSources::StopAll() {
  std::map<std::string, std::unique_ptr<PullSource>> all;
  {
    MutexLock lock(mu_);
    all.swap(sources_);
    if (limit_) limit_->Release(all.size());
  }
  for (auto& [name, source] : all) source->Stop();
}

}  // namespace lastframe::ingest
