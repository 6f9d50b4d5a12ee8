// The range routes: /v1/streams/NAME/fragments and /clip, read through the
// StreamSource (the embedded store, or --source kvs's endpoint).
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "http/api.h"
#include "http/params.h"
#include "store/clip.h"

namespace lastframe::http {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

// The fragments a listing or clip wants: those overlapping [start, end] of the
// request's range on the producer's (default) or the server's timeline.
Result<store::FragmentQuery> RangeQuery(const Params& p, bool with_frames) {
  auto range = ParseTimeRange(p);
  if (!range.ok()) return range.status();
  store::FragmentQuery q;
  q.timeline = range->server ? store::FragmentQuery::Timeline::kServer
                             : store::FragmentQuery::Timeline::kProducer;
  q.match = store::FragmentQuery::Match::kOverlaps;
  q.start_ms = range->start_ms;
  q.end_ms = range->end_ms;
  q.with_frames = with_frames;
  return q;
}

}  // namespace

void Api::ListFragments(const Request& req, const std::string& name, Respond respond) {
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(JsonError(params.status()));
  auto query = RangeQuery(*params, /*with_frames=*/false);
  if (!query.ok()) return respond(JsonError(query.status()));
  source_.FragmentsAsync(
      name, *query,
      [respond = std::move(respond)](Result<std::vector<store::FragmentView>> fragments) {
        if (!fragments.ok()) return respond(JsonError(fragments.status()));
        json list = json::array();
        for (const auto& f : *fragments) {
          json j = {{"fragment_number", std::to_string(f.number)},
                    {"producer_timestamp", FormatIso8601Ms(f.producer_ts_ms)},
                    {"producer_timestamp_ms", f.producer_ts_ms},
                    {"server_timestamp", FormatIso8601Ms(f.server_ts_ms)},
                    {"server_timestamp_ms", f.server_ts_ms},
                    {"duration_ms", f.duration_ms},
                    {"bytes", f.bytes},
                    {"complete", f.complete}};
          // A remote source lists without fetching the media: frames unknown.
          j["frames"] = f.frame_count ? json(f.frame_count) : json();
          list.push_back(std::move(j));
        }
        respond(JsonResponse(200, json{{"fragments", list}}.dump()));
      });
}

void Api::Clip(const Request& req, const std::string& name, Respond respond) {
  auto params = Params::Parse(req.raw_query);
  if (!params.ok()) return respond(JsonError(params.status()));
  store::ClipFormat format = store::ClipFormat::kMp4;
  if (const std::string* f = params->Get("format")) {
    if (*f == "mkv")
      format = store::ClipFormat::kMatroska;
    else if (*f != "mp4")
      return respond(JsonError(InvalidArgument("parameter 'format' must be mp4 or mkv")));
  }
  auto query = RangeQuery(*params, /*with_frames=*/false);
  if (!query.ok()) return respond(JsonError(query.status()));
  constexpr size_t kMaxFragments = 200;  // Kinesis Video's GetClip limits
  constexpr size_t kMaxClipBytes = 100 * 1024 * 1024;
  auto shared = std::make_shared<Respond>(std::move(respond));
  // Listed first, without media: a range too large is refused before any is fetched.
  source_.FragmentsAsync(
      name, *query, [this, shared, name, format](Result<std::vector<store::FragmentView>> listed) {
        if (!listed.ok()) return (*shared)(JsonError(listed.status()));
        if (listed->empty())
          return (*shared)(JsonError(
              NotFound("no fragments of '" + name + "' in the range", Reason::kNoFragments)));
        if (listed->size() > kMaxFragments)
          return (*shared)(JsonError(Status(Code::kTooLarge,
                                            "the range holds " + std::to_string(listed->size()) +
                                                " fragments; a clip may have at most 200",
                                            Reason::kClipTooLarge)));
        auto mux = [this, shared, name, format](Result<std::vector<store::FragmentView>> frags) {
          if (!frags.ok()) return (*shared)(JsonError(frags.status()));
          // Remuxing copies every frame: on a worker, not on an I/O thread.
          bool queued = workers_.TryPost([shared, name, format, frags = std::move(*frags)] {
            auto clip = store::MuxClip(frags, format, kMaxClipBytes);
            if (!clip.ok()) return (*shared)(JsonError(clip.status()));
            Response res{bhttp::status::ok, 11};
            bool mp4 = format == store::ClipFormat::kMp4;
            res.set(bhttp::field::content_type, mp4 ? "video/mp4" : "video/x-matroska");
            res.set(bhttp::field::content_disposition,
                    "attachment; filename=\"" + name + "-" +
                        std::to_string(frags.front().producer_ts_ms) + (mp4 ? ".mp4\"" : ".mkv\""));
            res.set(bhttp::field::cache_control, "no-store");
            res.body() = std::move(*clip);
            (*shared)(std::move(res));
          });
          if (!queued) (*shared)(JsonError(Status(Code::kOverloaded, "the workers are busy")));
        };
        if (listed->front().codec) return mux(std::move(*listed));  // the frames came too
        std::vector<uint64_t> numbers;
        for (const auto& f : *listed) numbers.push_back(f.number);
        source_.FragmentsByNumberAsync(name, numbers, std::move(mux));
      });
}

}  // namespace lastframe::http
