#include "ingest/mkv_parser.h"

#include <webm/callback.h>
#include <webm/dom_types.h>
#include <webm/id.h>
#include <webm/reader.h>
#include <webm/status.h>
#include <webm/webm_parser.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>
#include <vector>

#include "ingest/ebml_boundary.h"
#include "ingest/ebml_nesting.h"

extern "C" {
#include <libavutil/mathematics.h>
#include <libavutil/mem.h>
}

namespace lastframe::ingest {
namespace {

constexpr size_t kMaxTracks = 3;  // Kinesis Video's limit
// A callback stopped the parse (the reason is kept beside it): above 0, so
// libwebm takes it for neither success nor one of its parsing errors.
constexpr auto kStopped = static_cast<webm::Status::Code>(1);

// Reads the bytes Feed was given; when they run out, says so (WouldBlock), or
// EndOfFile once the input has ended.
class SpanReader final : public webm::Reader {
 public:
  explicit SpanReader(EbmlBoundary& boundary) : boundary_(boundary) {}
  void Set(const uint8_t* data, size_t size) {
    data_ = data;
    size_ = size;
    off_ = 0;
  }
  void SetEnded() { ended_ = true; }

  webm::Status Read(std::size_t num_to_read, std::uint8_t* buffer,
                    std::uint64_t* num_actually_read) override {
    const size_t n = std::min(num_to_read, size_ - off_);
    *num_actually_read = n;
    if (n == 0) return Dry();
    std::memcpy(buffer, data_ + off_, n);
    boundary_.Feed(data_ + off_, n);
    off_ += n;
    position_ += n;
    return webm::Status(n == num_to_read ? webm::Status::kOkCompleted : webm::Status::kOkPartial);
  }
  webm::Status Skip(std::uint64_t num_to_skip, std::uint64_t* num_actually_skipped) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(num_to_skip, size_ - off_));
    *num_actually_skipped = n;
    if (n == 0) return Dry();
    boundary_.Feed(data_ + off_, n);
    off_ += n;
    position_ += n;
    return webm::Status(n == num_to_skip ? webm::Status::kOkCompleted : webm::Status::kOkPartial);
  }
  std::uint64_t Position() const override { return position_; }

 private:
  webm::Status Dry() const {
    return webm::Status(ended_ ? webm::Status::kEndOfFile : webm::Status::kWouldBlock);
  }

  EbmlBoundary& boundary_;  // sees every byte the parser takes
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t off_ = 0;
  uint64_t position_ = 0;
  bool ended_ = false;
};

struct Track {
  uint64_t number = 0;
  bool video = false;
  AVCodecID codec = AV_CODEC_ID_NONE;
  std::vector<uint8_t> codec_private;
  uint64_t width = 0, height = 0;
  uint64_t display_width = 0, display_height = 0;
  bool display_in_pixels = true;
  uint64_t default_duration_ns = 0;
};

Status InvalidMkv(const std::string& why) { return InvalidArgument(why, Reason::kInvalidMkvData); }

}  // namespace

AVCodecID CodecIdOfMatroska(const std::string& id) {
  // The video entries of libavformat's ff_mkv_codec_tags (matroska.c).
  struct Entry {
    const char* prefix;
    AVCodecID codec;
  };
  static constexpr Entry kTags[] = {
      {"V_MPEG4/ISO/AVC", AV_CODEC_ID_H264},
      {"V_MPEGH/ISO/HEVC", AV_CODEC_ID_HEVC},
      {"V_VP8", AV_CODEC_ID_VP8},
      {"V_VP9", AV_CODEC_ID_VP9},
      {"V_AV1", AV_CODEC_ID_AV1},
      {"V_MJPEG", AV_CODEC_ID_MJPEG},
      {"V_MPEG4/ISO/", AV_CODEC_ID_MPEG4},
      {"V_MPEG4/MS/V3", AV_CODEC_ID_MSMPEG4V3},
      {"V_MPEG1", AV_CODEC_ID_MPEG1VIDEO},
      {"V_MPEG2", AV_CODEC_ID_MPEG2VIDEO},
      {"V_THEORA", AV_CODEC_ID_THEORA},
      {"V_PRORES", AV_CODEC_ID_PRORES},
      {"V_FFV1", AV_CODEC_ID_FFV1},
      {"V_DIRAC", AV_CODEC_ID_DIRAC},
      {"V_SNOW", AV_CODEC_ID_SNOW},
      {"V_REAL/RV10", AV_CODEC_ID_RV10},
      {"V_REAL/RV20", AV_CODEC_ID_RV20},
      {"V_REAL/RV30", AV_CODEC_ID_RV30},
      {"V_REAL/RV40", AV_CODEC_ID_RV40},
  };
  // matroskadec matches a table entry as a prefix of the track's CodecID.
  for (const Entry& e : kTags)
    if (id.rfind(e.prefix, 0) == 0) return e.codec;
  return AV_CODEC_ID_NONE;
}

class MkvParser::Impl final : public webm::Callback {
 public:
  Impl(size_t max_element_bytes, MkvParserEvents events)
      : max_element_bytes_(max_element_bytes),
        events_(std::move(events)),
        boundary_(max_element_bytes),
        reader_(boundary_) {}

  Status Feed(const uint8_t* data, size_t size) {
    if (!error_.ok()) return error_;
    // Checked whole before libwebm reads any of it (see EbmlNesting): the
    // bytes before a fault in the same read are refused with it.
    if (!nesting_.Feed(data, size)) {
      if (nesting_.overflowing_size() > max_element_bytes_)
        return Fail(Oversized(nesting_.overflowing_size()));
      return Fail(InvalidMkv("invalid Matroska data: " + nesting_.error()));
    }
    reader_.Set(data, size);
    return Parse();
  }

  Status Finish() {
    if (!error_.ok()) return error_;
    reader_.Set(nullptr, 0);
    reader_.SetEnded();
    Status s = Parse();
    if (!s.ok()) return s;
    if (!seen_ebml_) return Fail(InvalidMkv("not a Matroska stream: the body is empty"));
    if (!decided_) {
      if (tracks_.empty() && !video_)
        return Fail(InvalidMkv("not a Matroska stream: no tracks before the end of the body"));
      if (Status d = DecideTracks(); !d.ok()) return Fail(d);
    }
    return Status::Ok();
  }

  uint64_t oversized() const { return oversized_; }
  bool has_video_track() const { return video_.has_value(); }

  // webm::Callback
  webm::Status OnElementBegin(const webm::ElementMetadata& metadata,
                              webm::Action* action) override {
    *action = webm::Action::kRead;
    if (!seen_ebml_) {
      if (metadata.id != webm::Id::kEbml)
        return Stop(InvalidMkv("not a Matroska stream: it does not begin with an EBML header"));
      seen_ebml_ = true;
    }
    const bool container = metadata.id == webm::Id::kSegment || metadata.id == webm::Id::kCluster;
    if (!container && metadata.size != webm::kUnknownElementSize &&
        metadata.size > max_element_bytes_)
      return Stop(Oversized(metadata.size));
    if (metadata.id == webm::Id::kSegment) {
      // A new document (Kinesis Video's GetMedia sends one per fragment): its
      // own tracks and timecode scale.
      tracks_.clear();
      timecode_scale_ = 1'000'000;
      decided_ = false;
    }
    if (metadata.id == webm::Id::kCluster) {
      cluster_blocks_ = 0;
      if (!decided_)
        if (Status d = DecideTracks(); !d.ok()) return Stop(d);
    }
    // libwebm keeps a small record of every block until its cluster ends: a cluster that
    // never ends (unknown size) would grow the session's memory for as long as it lasts.
    if ((metadata.id == webm::Id::kSimpleBlock || metadata.id == webm::Id::kBlockGroup) &&
        ++cluster_blocks_ > kMaxClusterBlocks)
      return Stop(InvalidMkv("a cluster of more than " + std::to_string(kMaxClusterBlocks) +
                             " blocks: end clusters (a cluster spans 32.7 s at most)"));
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnInfo(const webm::ElementMetadata&, const webm::Info& info) override {
    timecode_scale_ = info.timecode_scale.value();
    if (timecode_scale_ == 0) timecode_scale_ = 1'000'000;  // as matroskadec reads 0
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnTrackEntry(const webm::ElementMetadata&, const webm::TrackEntry& entry) override {
    Track t;
    t.number = entry.track_number.value();
    t.video = entry.track_type.value() == webm::TrackType::kVideo;
    t.codec = CodecIdOfMatroska(entry.codec_id.value());
    t.codec_private = entry.codec_private.value();
    t.default_duration_ns = entry.default_duration.value();
    if (entry.video.is_present()) {
      const webm::Video& v = entry.video.value();
      t.width = v.pixel_width.value();
      t.height = v.pixel_height.value();
      t.display_width = v.display_width.is_present() ? v.display_width.value() : 0;
      t.display_height = v.display_height.is_present() ? v.display_height.value() : 0;
      t.display_in_pixels = v.display_unit.value() == webm::DisplayUnit::kPixels;
    }
    tracks_.push_back(std::move(t));
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnClusterBegin(const webm::ElementMetadata&, const webm::Cluster& cluster,
                              webm::Action* action) override {
    *action = webm::Action::kRead;
    cluster_timecode_ =
        cluster.timecode.is_present() ? std::optional(cluster.timecode.value()) : std::nullopt;
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnSimpleBlockBegin(const webm::ElementMetadata&, const webm::SimpleBlock& block,
                                  webm::Action* action) override {
    BeginBlock(block, /*in_group=*/false, block.is_key_frame, action);
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnBlockGroupBegin(const webm::ElementMetadata&, webm::Action* action) override {
    *action = webm::Action::kRead;
    group_frames_.clear();
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnBlockBegin(const webm::ElementMetadata&, const webm::Block& block,
                            webm::Action* action) override {
    BeginBlock(block, /*in_group=*/true, false, action);
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnFrame(const webm::FrameMetadata& metadata, webm::Reader* reader,
                       std::uint64_t* bytes_remaining) override {
    if (!block_) return Skip(reader, bytes_remaining);
    if (!frame_) {
      if (metadata.size > static_cast<uint64_t>(INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE))
        return Stop(InvalidMkv("a frame of " + std::to_string(metadata.size) + " bytes"));
      frame_ = media::MakePacket();
      if (av_new_packet(frame_.get(), static_cast<int>(metadata.size)) < 0)
        return Stop(Status(Code::kInternal, "out of memory", Reason::kInvalidMkvData));
    }
    const uint64_t size = static_cast<uint64_t>(frame_->size);
    while (*bytes_remaining > 0) {
      std::uint64_t got = 0;
      webm::Status s = reader->Read(static_cast<size_t>(*bytes_remaining),
                                    frame_->data + (size - *bytes_remaining), &got);
      *bytes_remaining -= got;
      if (s.code != webm::Status::kOkCompleted && s.code != webm::Status::kOkPartial) return s;
    }
    const int lace = block_->laces_seen++;
    if (block_->in_group) {
      group_frames_.push_back({std::move(frame_), lace});
    } else {
      Emit(std::move(frame_), lace, block_->keyframe, DefaultDuration());
    }
    frame_.reset();
    return webm::Status(webm::Status::kOkCompleted);
  }

  webm::Status OnBlockGroupEnd(const webm::ElementMetadata&,
                               const webm::BlockGroup& group) override {
    if (block_ && block_->in_group) {
      // A Block without a ReferenceBlock depends on no other: a keyframe.
      const bool key = group.references.empty();
      int64_t lace_duration = DefaultDuration();
      if (group.duration.is_present() && !group_frames_.empty())
        lace_duration = static_cast<int64_t>(group.duration.value() / group_frames_.size());
      for (auto& [pkt, lace] : group_frames_) Emit(std::move(pkt), lace, key, lace_duration);
    }
    group_frames_.clear();
    block_.reset();
    return webm::Status(webm::Status::kOkCompleted);
  }

 private:
  // Blocks in one cluster at most: 500 a second for the 32.767 s that a block's 16-bit
  // timecode can reach from its cluster's (at the default 1 ms scale).
  static constexpr uint64_t kMaxClusterBlocks = 16384;
  uint64_t cluster_blocks_ = 0;

  struct OpenBlock {
    bool in_group = false;
    bool keyframe = false;
    int16_t timecode = 0;  // from the cluster's
    int laces_seen = 0;
  };

  Status Parse() {
    webm::Status s = parser_.Feed(this, &reader_);
    if (s.code == kStopped) return error_;
    // An element over the limit is refused from its header, even where libwebm
    // would first find it too large for its parent (ElementOverflow).
    if (s.is_parsing_error() && boundary_.oversized() > 0)
      return Fail(Oversized(boundary_.oversized()));
    if (s.code == webm::Status::kOkCompleted || s.code == webm::Status::kWouldBlock ||
        s.code == webm::Status::kOkPartial)
      return Status::Ok();
    if (s.code == webm::Status::kEndOfFile) {
      truncated_ = true;
      return Fail(InvalidMkv("the body ended inside a Matroska element"));
    }
    return Fail(InvalidMkv("invalid Matroska data (libwebm status " + std::to_string(s.code) +
                           ") at byte " + std::to_string(reader_.Position())));
  }

  Status Oversized(uint64_t size) {
    oversized_ = size;
    return Status(Code::kTooLarge,
                  "an element of " + std::to_string(size) +
                      " bytes exceeds the fragment limit of " + std::to_string(max_element_bytes_) +
                      " bytes",
                  Reason::kMaxFragmentSizeReached);
  }

  Status Fail(Status s) {
    error_ = std::move(s);
    return error_;
  }
  webm::Status Stop(Status why) {
    error_ = std::move(why);
    return webm::Status(kStopped);
  }

  // The stream's tracks are all known: check their count, choose the video track.
  Status DecideTracks() {
    if (tracks_.size() > kMaxTracks)
      return Status(Code::kInvalidArgument,
                    "the stream has " + std::to_string(tracks_.size()) + " tracks; at most " +
                        std::to_string(kMaxTracks) + " are allowed",
                    Reason::kMoreThanAllowedTracksFound);
    const Track* chosen = nullptr;
    for (const Track& t : tracks_)
      if (t.video && t.codec != AV_CODEC_ID_NONE && avcodec_find_decoder(t.codec) != nullptr) {
        chosen = &t;
        break;
      }
    if (chosen == nullptr) return InvalidMkv("the stream has no decodable video track");
    decided_ = true;
    video_number_ = chosen->number;
    default_duration_ns_ = chosen->default_duration_ns;
    segment_time_base_ =
        AVRational{static_cast<int>(std::min<uint64_t>(timecode_scale_, INT_MAX)), 1'000'000'000};
    av_reduce(&segment_time_base_.num, &segment_time_base_.den, segment_time_base_.num,
              segment_time_base_.den, INT_MAX);
    if (video_) return Status::Ok();  // a later document: the first one's codec stays
    AVCodecParameters* par = avcodec_parameters_alloc();
    if (par == nullptr) return Status(Code::kInternal, "out of memory");
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = chosen->codec;
    par->width = static_cast<int>(std::min<uint64_t>(chosen->width, INT_MAX));
    par->height = static_cast<int>(std::min<uint64_t>(chosen->height, INT_MAX));
    if (!chosen->codec_private.empty()) {
      const size_t n = chosen->codec_private.size();
      par->extradata = static_cast<uint8_t*>(av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE));
      if (par->extradata == nullptr) {
        avcodec_parameters_free(&par);
        return Status(Code::kInternal, "out of memory");
      }
      std::memcpy(par->extradata, chosen->codec_private.data(), n);
      par->extradata_size = static_cast<int>(n);
    }
    // The display size gives the pixels' shape, as matroskadec reads it.
    if (chosen->display_in_pixels && chosen->display_width > 0 && chosen->display_height > 0 &&
        chosen->width > 0 && chosen->height > 0)
      av_reduce(&par->sample_aspect_ratio.num, &par->sample_aspect_ratio.den,
                static_cast<int64_t>(chosen->display_height * chosen->width),
                static_cast<int64_t>(chosen->display_width * chosen->height), 255);
    auto shared = media::CopyCodecParameters(*par);
    avcodec_parameters_free(&par);
    if (!shared.ok()) return shared.status();
    video_.emplace(MkvVideoTrack{.codec = std::move(*shared), .time_base = segment_time_base_});
    if (events_.on_video_track) events_.on_video_track(*video_);
    return Status::Ok();
  }

  void BeginBlock(const webm::Block& block, bool in_group, bool keyframe, webm::Action* action) {
    frame_.reset();
    if (!decided_ || block.track_number != video_number_) {
      block_.reset();
      *action = webm::Action::kSkip;  // another track's: not read
      return;
    }
    *action = webm::Action::kRead;
    block_ = OpenBlock{.in_group = in_group, .keyframe = keyframe, .timecode = block.timecode};
  }

  // DefaultDuration in the track's time base (matroskadec's integer division).
  int64_t DefaultDuration() const {
    return static_cast<int64_t>(default_duration_ns_ / timecode_scale_);
  }

  void Emit(media::PacketPtr pkt, int lace, bool keyframe, int64_t lace_duration) {
    int64_t pts = AV_NOPTS_VALUE;
    if (cluster_timecode_ && cluster_timecode_ <= static_cast<uint64_t>(INT64_MAX - 32768)) {
      const int64_t t = static_cast<int64_t>(*cluster_timecode_) + block_->timecode;
      // Laces after the first follow at the track's frame duration (none known: no time).
      if (t >= 0 && (lace == 0 || lace_duration > 0)) pts = t + lace * lace_duration;
    }
    pkt->pts = pts;
    pkt->dts = AV_NOPTS_VALUE;
    pkt->duration = lace_duration;
    pkt->flags = keyframe ? AV_PKT_FLAG_KEY : 0;
    pkt->stream_index = 0;
    if (video_ && av_cmp_q(segment_time_base_, video_->time_base) != 0) {
      av_packet_rescale_ts(pkt.get(), segment_time_base_, video_->time_base);
    }
    if (events_.on_packet) events_.on_packet(pkt.get());
  }

  const size_t max_element_bytes_;
  const MkvParserEvents events_;
  webm::WebmParser parser_;
  // Where the body ended, and elements over the limit, from IDs and sizes alone.
  EbmlBoundary boundary_;
  // Every element fits in its parent, checked before libwebm reads the bytes.
  EbmlNesting nesting_;
  SpanReader reader_;
  Status error_;
  bool truncated_ = false;
  bool seen_ebml_ = false;
  uint64_t oversized_ = 0;
  uint64_t timecode_scale_ = 1'000'000;
  std::vector<Track> tracks_;
  bool decided_ = false;  // the current document's tracks are checked
  uint64_t video_number_ = 0;
  uint64_t default_duration_ns_ = 0;
  AVRational segment_time_base_{1, 1000};
  std::optional<MkvVideoTrack> video_;  // the first document's video track
  std::optional<uint64_t> cluster_timecode_;
  std::optional<OpenBlock> block_;  // a block of the video track being read
  media::PacketPtr frame_;          // the frame being assembled
  std::vector<std::pair<media::PacketPtr, int>> group_frames_;  // a BlockGroup's, until its end

  friend class MkvParser;
};

MkvParser::MkvParser(size_t max_element_bytes, MkvParserEvents events)
    : impl_(std::make_unique<Impl>(max_element_bytes, std::move(events))) {}
MkvParser::~MkvParser() = default;
Status MkvParser::Feed(const uint8_t* data, size_t size) { return impl_->Feed(data, size); }
Status MkvParser::Finish() { return impl_->Finish(); }
uint64_t MkvParser::oversized() const { return impl_->oversized(); }
bool MkvParser::has_video_track() const { return impl_->has_video_track(); }
bool MkvParser::truncated() const { return impl_->truncated_; }

}  // namespace lastframe::ingest
