#include "ingest/push_session.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "core/test_metrics.h"
#include "ingest/demo_producer.h"
#include "support/media_check.h"
#include "support/temp_dir.h"

namespace lastframe::ingest {
namespace {

using metrics::test::MetricDeltas;
using testing::MakeClip;
using testing::ReadFile;
using testing::TempDir;

struct PushOutcome {
  Status status;
  std::vector<nlohmann::json> acks;
};

// Pushes |bytes| through a PushSession in random-sized pieces, as a socket
// would deliver them, and waits for the session to finish.
PushOutcome Push(store::StreamStore& store, const std::string& stream, const std::string& bytes,
                 PushOptions options = {}) {
  PushOutcome out;
  std::mutex mu;
  std::promise<Status> done;
  options.stream = stream;
  auto session = PushSession::Start(store, options,
                                    {.on_ack =
                                         [&](std::string ack) {
                                           std::lock_guard lock(mu);
                                           out.acks.push_back(nlohmann::json::parse(ack));
                                         },
                                     .on_space = nullptr,
                                     .on_done = [&](Status s) { done.set_value(s); }});
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return out;
  std::mt19937 rng(42);
  size_t off = 0;
  while (off < bytes.size()) {
    size_t n = std::min(bytes.size() - off, static_cast<size_t>(1 + rng() % 9000));
    if (!(*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data() + off), n))
      (*session)->WaitForSpace();
    off += n;
  }
  (*session)->Finish();
  out.status = done.get_future().get();
  return out;
}

int CountEvents(const PushOutcome& o, const std::string& type) {
  int n = 0;
  for (const auto& a : o.acks) n += a["EventType"] == type;
  return n;
}

void ExpectFragmentsStartAtKeyframes(const store::StreamStore& store, const std::string& name,
                                     size_t expected_fragments, size_t expected_frames) {
  auto stream = store.Find(name);
  ASSERT_TRUE(stream);
  auto fragments = stream->Fragments();
  ASSERT_EQ(fragments.size(), expected_fragments);
  size_t frames = 0;
  uint64_t last_number = 0;
  for (const auto& f : fragments) {
    ASSERT_FALSE(f.frames.empty());
    EXPECT_TRUE(f.frames.front().keyframe);
    for (size_t i = 1; i < f.frames.size(); ++i) EXPECT_FALSE(f.frames[i].keyframe);
    EXPECT_TRUE(f.complete);
    EXPECT_GT(f.number, last_number);
    last_number = f.number;
    ASSERT_TRUE(f.codec);
    frames += f.frames.size();
  }
  EXPECT_EQ(frames, expected_frames);
}

class PushSessionTest : public ::testing::Test {
 protected:
  TempDir dir_;
  store::StreamStore store_{SystemClock::Get(), {.retention_ms = 3'600'000}};
};

TEST_F(PushSessionTest, H264WithoutBFramesOneFragmentPerGop) {
  std::string clip = MakeClip(
      dir_.file("a.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "3", "-c:v",
                           "libx264", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p"});
  PushOutcome o = Push(store_, "cam", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "cam", 3, 30);
  EXPECT_EQ(CountEvents(o, "RECEIVED"), 3);
  EXPECT_EQ(CountEvents(o, "PERSISTED"), 3);
  EXPECT_EQ(CountEvents(o, "ERROR"), 0);
  // Acks carry the fragment's timecode and number as Kinesis Video does.
  auto fragments = store_.Find("cam")->Fragments();
  EXPECT_EQ(o.acks[0]["FragmentNumber"], std::to_string(fragments[0].number));
  EXPECT_EQ(o.acks[2]["FragmentTimecode"], 1000);
  EXPECT_EQ(fragments[1].timecode_ms, 1000);
  EXPECT_EQ(fragments[2].duration_ms, 1000);
}

TEST_F(PushSessionTest, H264WithBFramesAndLongClusters) {
  // Clusters span several GOPs: fragments must still be cut at keyframes.
  std::string clip = MakeClip(
      dir_.file("b.mkv"),
      {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "4", "-c:v", "libx264", "-g",
       "20", "-bf", "2", "-cluster_time_limit", "30000", "-cluster_size_limit", "50000000"});
  PushOutcome o = Push(store_, "bframes", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "bframes", 2, 40);
}

TEST_F(PushSessionTest, H265) {
  std::string clip =
      MakeClip(dir_.file("c.mkv"),
               {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "2", "-c:v", "libx265",
                "-x265-params", "keyint=10:min-keyint=10:log-level=error", "-pix_fmt", "yuv420p"});
  PushOutcome o = Push(store_, "hevc", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "hevc", 2, 20);
  EXPECT_EQ(store_.Find("hevc")->Fragments()[0].codec->codec_id, AV_CODEC_ID_HEVC);
}

TEST_F(PushSessionTest, AudioTrackFirstIsIgnored) {
  std::string clip = MakeClip(dir_.file("d.mkv"),
                              {"-f",   "lavfi",   "-i",   "testsrc2=size=320x240:rate=10",
                               "-f",   "lavfi",   "-i",   "sine=frequency=440:sample_rate=48000",
                               "-t",   "2",       "-map", "1:a",
                               "-map", "0:v",     "-c:a", "libopus",
                               "-c:v", "libx264", "-g",   "10",
                               "-bf",  "0"});
  PushOutcome o = Push(store_, "av", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "av", 2, 20);
}

TEST_F(PushSessionTest, RandomBytesGiveAnInvalidMkvAck) {
  std::string junk(100'000, '\0');
  std::mt19937 rng(7);
  for (char& c : junk) c = static_cast<char>(rng());
  PushOutcome o = Push(store_, "junk", junk);
  EXPECT_EQ(o.status.reason(), Reason::kInvalidMkvData);
  ASSERT_EQ(o.acks.size(), 1u);
  EXPECT_EQ(o.acks[0]["EventType"], "ERROR");
  EXPECT_EQ(o.acks[0]["ErrorId"], 4006);
  EXPECT_EQ(store_.LatestFragment("junk").status().reason(), Reason::kNoFrame);
}

TEST_F(PushSessionTest, EmptyBody) {
  PushOutcome o = Push(store_, "empty", "");
  EXPECT_EQ(o.status.reason(), Reason::kInvalidMkvData);
  ASSERT_EQ(o.acks.size(), 1u);
  EXPECT_EQ(o.acks[0]["ErrorId"], 4006);
}

TEST_F(PushSessionTest, TruncatedClipKeepsWhatArrived) {
  std::string clip =
      MakeClip(dir_.file("e.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "3",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  std::string bytes = ReadFile(clip);
  PushOutcome o = Push(store_, "cut", bytes.substr(0, bytes.size() * 2 / 3));
  auto stream = store_.Find("cut");
  ASSERT_TRUE(stream);
  auto fragments = stream->Fragments();
  ASSERT_GE(fragments.size(), 1u);
  ASSERT_LE(fragments.size(), 3u);
  EXPECT_TRUE(fragments.front().frames.front().keyframe);
  EXPECT_GE(CountEvents(o, "PERSISTED"), static_cast<int>(fragments.size()));
}

TEST_F(PushSessionTest, OverLongFragmentIsRefusedAndTheNextOneKept) {
  std::string clip =
      MakeClip(dir_.file("f.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "3",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  std::string bytes = ReadFile(clip);
  PushOptions options;
  options.max_fragment_bytes = 20'000;  // less than one 10-frame GOP of testsrc2
  PushOutcome o = Push(store_, "big", bytes, options);
  EXPECT_TRUE(o.status.ok());
  int errors = 0;
  for (const auto& a : o.acks)
    if (a["EventType"] == "ERROR") {
      EXPECT_EQ(a["ErrorId"], 4001);
      ++errors;
    }
  EXPECT_GE(errors, 1);
  for (const auto& f : store_.Find("big")->Fragments()) EXPECT_LE(f.bytes, 20'000u);
}

TEST_F(PushSessionTest, AFragmentLongerThanTenSecondsIsCut) {
  // One keyframe, then 13 s of frames: Kinesis Video's limit is 10 s a fragment.
  std::string clip = MakeClip(
      dir_.file("long.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=2", "-t", "13", "-c:v",
                              "libx264", "-g", "100", "-bf", "0", "-sc_threshold", "0"});
  PushOutcome o = Push(store_, "long", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ASSERT_EQ(CountEvents(o, "ERROR"), 1);
  for (const auto& a : o.acks)
    if (a["EventType"] == "ERROR") {
      EXPECT_EQ(a["ErrorId"], 4002);
      EXPECT_EQ(a["ErrorCode"], "MAX_FRAGMENT_DURATION_REACHED");
    }
  auto fragments = store_.Find("long")->Fragments();
  ASSERT_EQ(fragments.size(), 1u);
  EXPECT_EQ(fragments[0].frames.size(), 20u);  // 0.0 s to 9.5 s
  EXPECT_LT(fragments[0].duration_ms, 10'000 + 1);
}

// Sets the Timecode of the |index|th Matroska Cluster of |mkv| to 0.
void ZeroClusterTimecode(std::string& mkv, int index) {
  const std::string cluster_id("\x1F\x43\xB6\x75", 4);
  size_t at = 0;
  for (int i = 0; i <= index; ++i) {
    at = mkv.find(cluster_id, at + 1);
    ASSERT_NE(at, std::string::npos) << "fewer than " << index + 1 << " clusters";
  }
  // ClusterTimecode (0xE7) follows the cluster's size; its value is 1-8 bytes.
  size_t tc = mkv.find('\xE7', at + 4);
  ASSERT_LT(tc, at + 16);
  auto size_byte = static_cast<unsigned char>(mkv[tc + 1]);
  ASSERT_GE(size_byte, 0x81);
  ASSERT_LE(size_byte, 0x88);
  for (int i = 0; i < size_byte - 0x80; ++i) mkv[tc + 2 + i] = '\0';
}

TEST_F(PushSessionTest, AFragmentWhoseTimecodeGoesBackIsDropped) {
  // A keyframe, and a cluster, every 0.5 s.
  std::string clip =
      MakeClip(dir_.file("back.mkv"),
               {"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-t", "3", "-c:v", "libx264",
                "-g", "5", "-bf", "0", "-sc_threshold", "0", "-cluster_time_limit", "450"});
  std::string bytes = ReadFile(clip);
  ZeroClusterTimecode(bytes, 3);  // the fourth cluster now claims to start at 0
  PushOutcome o = Push(store_, "back", bytes);
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  int backwards = 0;
  for (const auto& a : o.acks)
    if (a["EventType"] == "ERROR") {
      EXPECT_EQ(a["ErrorId"], 4004);
      EXPECT_EQ(a["ErrorCode"], "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS");
      ++backwards;
    }
  EXPECT_EQ(backwards, 1);
  auto fragments = store_.Find("back")->Fragments();
  EXPECT_EQ(fragments.size(), 5u);  // six GOPs, one dropped
  for (size_t i = 1; i < fragments.size(); ++i)
    EXPECT_GT(fragments[i].timecode_ms, fragments[i - 1].timecode_ms);
}

TEST_F(PushSessionTest, MoreThanThreeTracksAreRefused) {
  std::string clip =
      MakeClip(dir_.file("tracks.mkv"),
               {"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-t", "1", "-map", "0", "-map",
                "0", "-map", "0", "-map", "0", "-c:v", "libx264", "-g", "10"});
  PushOutcome o = Push(store_, "tracks", ReadFile(clip));
  EXPECT_EQ(o.status.reason(), Reason::kMoreThanAllowedTracksFound);
  ASSERT_EQ(o.acks.size(), 1u);
  EXPECT_EQ(o.acks[0]["ErrorId"], 4005);
  EXPECT_EQ(o.acks[0]["ErrorCode"], "MORE_THAN_ALLOWED_TRACKS_FOUND");
  EXPECT_FALSE(store_.Find("tracks")->Latest());
}

TEST_F(PushSessionTest, SecondProducerOnTheSameStreamIsRefused) {
  std::promise<Status> done;
  auto first = PushSession::Start(store_, {.stream = "busy"},
                                  {.on_done = [&](Status s) { done.set_value(s); }});
  ASSERT_TRUE(first.ok());
  auto second = PushSession::Start(store_, {.stream = "busy"}, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().reason(), Reason::kStreamBusy);
  (*first)->Finish();
  done.get_future().wait();
  auto third = PushSession::Start(store_, {.stream = "busy"}, {});
  EXPECT_TRUE(third.ok());
}

TEST_F(PushSessionTest, ProducerTimestampsFollowTheHeaders) {
  std::string clip =
      MakeClip(dir_.file("g.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "2",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  PushOptions options;
  options.producer_start_ms = 1'700'000'000'000;
  Push(store_, "ts", ReadFile(clip), options);
  auto fragments = store_.Find("ts")->Fragments();
  ASSERT_EQ(fragments.size(), 2u);
  EXPECT_EQ(fragments[0].producer_ts_ms, 1'700'000'000'000);
  EXPECT_EQ(fragments[1].producer_ts_ms, 1'700'000'001'000);
}

TEST_F(PushSessionTest, AKeyframeOverTheFragmentLimitIsRefusedAsItArrivesAndNothingKept) {
  // High-quality 320x240 keyframes are tens of kilobytes: over a 4 KiB limit.
  std::string clip =
      MakeClip(dir_.file("big.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t",
                                      "2", "-c:v", "libx264", "-g", "10", "-bf", "0", "-qp", "0"});
  PushOptions options;
  options.max_fragment_bytes = 4096;
  PushOutcome o = Push(store_, "big", ReadFile(clip), options);
  EXPECT_EQ(o.status.reason(), Reason::kMaxFragmentSizeReached) << o.status.ToString();
  ASSERT_EQ(CountEvents(o, "ERROR"), 1);
  EXPECT_EQ(o.acks.back()["ErrorId"], 4001);
  EXPECT_NE(o.acks.back()["Message"].get<std::string>().find("exceeds the fragment limit"),
            std::string::npos);
  EXPECT_EQ(CountEvents(o, "RECEIVED"), 0);
  ASSERT_TRUE(store_.Find("big"));
  EXPECT_TRUE(store_.Find("big")->Fragments().empty());
}

TEST_F(PushSessionTest, TimecodesPastTheYear9999AreAnInvalidDataAckNotAnArchivalError) {
  std::string clip =
      MakeClip(dir_.file("t.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  PushOptions options;
  // The first keyframe lands on 9999-12-31T23:59:59.000Z; the next ones after it.
  options.producer_start_ms = 253'402'300'799'000;
  PushOutcome o = Push(store_, "far", ReadFile(clip), options);
  EXPECT_EQ(CountEvents(o, "PERSISTED"), 1);
  EXPECT_EQ(CountEvents(o, "ERROR"), 2);
  for (const auto& a : o.acks)
    if (a["EventType"] == "ERROR") {
      EXPECT_EQ(a["ErrorId"], 4006) << a.dump();
    }
  ASSERT_EQ(store_.Find("far")->Fragments().size(), 1u);
  EXPECT_EQ(store_.Find("far")->Fragments()[0].producer_ts_ms, 253'402'300'799'000);
}

TEST_F(PushSessionTest, MetricsCountBytesFragmentsAcksAndProducers) {
  std::string clip =
      MakeClip(dir_.file("m.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  MetricDeltas delta({"lastframe_ingest_bytes_total", "lastframe_ingest_fragments_total",
                      "lastframe_ingest_producers_started_total",
                      "lastframe_ingest_producers_ended_total",
                      R"(lastframe_ingest_acks_total{type="RECEIVED"})",
                      R"(lastframe_ingest_acks_total{type="PERSISTED"})",
                      R"(lastframe_ingest_acks_total{type="ERROR"})",
                      R"(lastframe_ingest_ack_delay_seconds_count{type="RECEIVED"})",
                      R"(lastframe_ingest_ack_delay_seconds_count{type="PERSISTED"})"});
  PushOutcome o = Push(store_, "metered", bytes);
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(delta["lastframe_ingest_bytes_total"], static_cast<double>(bytes.size()));
  EXPECT_EQ(delta["lastframe_ingest_fragments_total"], 3);
  // Ended before on_done, which Push waited for.
  EXPECT_EQ(delta["lastframe_ingest_producers_started_total"], 1);
  EXPECT_EQ(delta["lastframe_ingest_producers_ended_total"], 1);
  EXPECT_EQ(delta[R"(lastframe_ingest_acks_total{type="RECEIVED"})"], 3);
  EXPECT_EQ(delta[R"(lastframe_ingest_acks_total{type="PERSISTED"})"], 3);
  EXPECT_EQ(delta[R"(lastframe_ingest_acks_total{type="ERROR"})"], 0);
  EXPECT_EQ(delta[R"(lastframe_ingest_ack_delay_seconds_count{type="RECEIVED"})"], 3);
  EXPECT_EQ(delta[R"(lastframe_ingest_ack_delay_seconds_count{type="PERSISTED"})"], 3);
}

TEST_F(PushSessionTest, MetricsCountErrorsByErrorIdAndTheirAcks) {
  std::string junk(50'000, '\0');
  std::mt19937 rng(11);
  for (char& c : junk) c = static_cast<char>(rng());
  MetricDeltas delta({R"(lastframe_ingest_errors_total{error="4006"})",
                      R"(lastframe_ingest_acks_total{type="ERROR"})",
                      "lastframe_ingest_fragments_total"});
  PushOutcome o = Push(store_, "junk", junk);
  EXPECT_EQ(o.status.reason(), Reason::kInvalidMkvData);
  EXPECT_EQ(delta[R"(lastframe_ingest_errors_total{error="4006"})"], 1);
  EXPECT_EQ(delta[R"(lastframe_ingest_acks_total{type="ERROR"})"], 1);
  EXPECT_EQ(delta["lastframe_ingest_fragments_total"], 0);
}

TEST_F(PushSessionTest, MediaThatIsNoProducersIsNotCountedAsIngest) {
  std::string clip =
      MakeClip(dir_.file("n.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "2",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  MetricDeltas delta({"lastframe_ingest_bytes_total", "lastframe_ingest_fragments_total",
                      "lastframe_ingest_producers_started_total",
                      R"(lastframe_ingest_acks_total{type="RECEIVED"})"});
  PushOptions options;
  options.from_producer = false;
  PushOutcome o = Push(store_, "cache", ReadFile(clip), options);
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(CountEvents(o, "RECEIVED"), 2);
  EXPECT_EQ(delta["lastframe_ingest_bytes_total"], 0);
  EXPECT_EQ(delta["lastframe_ingest_fragments_total"], 0);
  EXPECT_EQ(delta["lastframe_ingest_producers_started_total"], 0);
  EXPECT_EQ(delta[R"(lastframe_ingest_acks_total{type="RECEIVED"})"], 0);
}

TEST(DemoProducer, PushesLiveH264Fragments) {
  store::StreamStore store(SystemClock::Get(), {});
  DemoOptions options;
  options.width = 160;
  options.height = 120;
  options.fps = 25;
  options.gop = 5;
  DemoProducer demo(store, options);
  ASSERT_TRUE(demo.Start().ok());
  // Wait (bounded) for two whole GOPs; the demo runs in real time.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::shared_ptr<store::Stream> stream;
  while (std::chrono::steady_clock::now() < deadline) {
    stream = store.Find("demo");
    if (stream && stream->Fragments().size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling, bounded by deadline
  }
  demo.Stop();
  ASSERT_TRUE(stream);
  auto fragments = stream->Fragments();
  ASSERT_GE(fragments.size(), 3u);
  EXPECT_EQ(fragments[1].frames.size(), 5u);
  EXPECT_TRUE(fragments[1].frames[0].keyframe);
  EXPECT_EQ(fragments[1].codec->codec_id, AV_CODEC_ID_H264);
  EXPECT_EQ(fragments[1].codec->width, 160);
}

}  // namespace
}  // namespace lastframe::ingest
