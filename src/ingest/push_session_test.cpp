#include "ingest/push_session.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/test_metrics.h"
#include "ingest/demo_producer.h"
#include "ingest/parse_pool.h"
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
PushOutcome PushBytes(store::StreamStore& store, const std::string& stream,
                      const std::string& bytes, PushOptions options, size_t max_piece) {
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
    size_t n = std::min(bytes.size() - off, static_cast<size_t>(1 + rng() % max_piece));
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

class PushSessionFixture : public ::testing::Test {
 protected:
  TempDir dir_;
  store::StreamStore store_{SystemClock::Get(), {.retention_ms = 3'600'000}};
};

// Every behaviour holds both where the parse runs: on the pool (false) and on
// the thread that feeds (true, as a connection's I/O thread does).
class PushSessionTest : public PushSessionFixture, public ::testing::WithParamInterface<bool> {
 protected:
  PushOptions Opts(PushOptions o) const {
    o.parse_on_caller = GetParam();
    return o;
  }
  PushOutcome Push(store::StreamStore& store, const std::string& stream, const std::string& bytes,
                   PushOptions options = {}, size_t max_piece = 9000) const {
    return PushBytes(store, stream, bytes, Opts(std::move(options)), max_piece);
  }
};

INSTANTIATE_TEST_SUITE_P(ParseOn, PushSessionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Caller" : "Pool";
                         });

// What only the pool does: a queue between the socket and the parse.
using PushSessionPoolTest = PushSessionFixture;
// What only parse_on_caller does: no queue, no other thread.
using PushSessionCallerTest = PushSessionFixture;

TEST_P(PushSessionTest, H264WithoutBFramesOneFragmentPerGop) {
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

TEST_P(PushSessionTest, H264WithBFramesAndLongClusters) {
  // Clusters span several GOPs: fragments must still be cut at keyframes.
  std::string clip = MakeClip(
      dir_.file("b.mkv"),
      {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "4", "-c:v", "libx264", "-g",
       "20", "-bf", "2", "-cluster_time_limit", "30000", "-cluster_size_limit", "50000000"});
  PushOutcome o = Push(store_, "bframes", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "bframes", 2, 40);
}

TEST_P(PushSessionTest, H265) {
  std::string clip =
      MakeClip(dir_.file("c.mkv"),
               {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "2", "-c:v", "libx265",
                "-x265-params", "keyint=10:min-keyint=10:log-level=error", "-pix_fmt", "yuv420p"});
  PushOutcome o = Push(store_, "hevc", ReadFile(clip));
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "hevc", 2, 20);
  EXPECT_EQ(store_.Find("hevc")->Fragments()[0].codec->codec_id, AV_CODEC_ID_HEVC);
}

TEST_P(PushSessionTest, AudioTrackFirstIsIgnored) {
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

TEST_P(PushSessionTest, RandomBytesGiveAnInvalidMkvAck) {
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

// libwebm remembers every block of a cluster until it ends: a cluster of more blocks than
// any camera puts in one (16,384; 18,000 here, at 2,000 fps) is refused where it passes the
// bound, the frames before it kept.
TEST_P(PushSessionTest, AClusterOfTooManyBlocksIsAnInvalidMkvAck) {
  std::string clip = MakeClip(
      dir_.file("long-cluster.mkv"),
      {"-f", "lavfi", "-i", "testsrc2=size=32x32:rate=2000", "-t", "9", "-c:v", "libx264",
       "-preset", "ultrafast", "-g", "100000", "-bf", "0", "-cluster_time_limit", "30000",
       "-cluster_size_limit", "100000000"});
  PushOutcome o = Push(store_, "long", ReadFile(clip));
  EXPECT_EQ(o.status.reason(), Reason::kInvalidMkvData);
  ASSERT_FALSE(o.acks.empty());
  const nlohmann::json& last = o.acks.back();
  EXPECT_EQ(last["EventType"], "ERROR");
  EXPECT_EQ(last["ErrorId"], 4006);
  EXPECT_NE(last["Message"].get<std::string>().find("a cluster of more than 16384 blocks"),
            std::string::npos)
      << last.dump();
  // The fragment in progress (one keyframe, then 16,383 frames) was kept as far as it came.
  auto stream = store_.Find("long");
  ASSERT_TRUE(stream);
  auto fragments = stream->Fragments();
  ASSERT_EQ(fragments.size(), 1u);
  EXPECT_EQ(fragments[0].frames.size(), 16384u);
}

TEST_P(PushSessionTest, AnElementIdRunningPastItsParentIsAnInvalidMkvAckNotACrash) {
  std::string mkv = ReadFile(MakeClip(
      dir_.file("clip.mkv"),
      {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "1", "-c:v", "libx264"}));
  // ffmpeg's EBML header holds 35 bytes; said to hold 32, its last child's
  // 2-byte ID begins inside it and ends outside. libwebm, fed that a byte at a
  // time, fails an assertion (abort) on the read after the ID's first byte.
  ASSERT_EQ(static_cast<uint8_t>(mkv[4]), 0x80 | 35);
  mkv[4] = static_cast<char>(0x80 | 32);
  PushOutcome o = Push(store_, "cut", mkv, {}, /*max_piece=*/1);
  EXPECT_EQ(o.status.reason(), Reason::kInvalidMkvData);
  ASSERT_EQ(o.acks.size(), 1u);
  EXPECT_EQ(o.acks[0]["ErrorId"], 4006);
  EXPECT_NE(o.acks[0]["Message"].get<std::string>().find("runs past the end"), std::string::npos)
      << o.acks[0].dump();
}

TEST_P(PushSessionTest, EmptyBody) {
  PushOutcome o = Push(store_, "empty", "");
  EXPECT_EQ(o.status.reason(), Reason::kInvalidMkvData);
  ASSERT_EQ(o.acks.size(), 1u);
  EXPECT_EQ(o.acks[0]["ErrorId"], 4006);
}

TEST_P(PushSessionTest, TruncatedClipKeepsWhatArrived) {
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

TEST_P(PushSessionTest, OverLongFragmentIsRefusedAndTheNextOneKept) {
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

TEST_P(PushSessionTest, AFragmentLongerThanTenSecondsIsCut) {
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

TEST_P(PushSessionTest, AFragmentWhoseTimecodeGoesBackIsDropped) {
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

TEST_P(PushSessionTest, MoreThanThreeTracksAreRefused) {
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

TEST_P(PushSessionTest, SecondProducerOnTheSameStreamIsRefused) {
  std::promise<Status> done;
  auto first = PushSession::Start(store_, Opts({.stream = "busy"}),
                                  {.on_done = [&](Status s) { done.set_value(s); }});
  ASSERT_TRUE(first.ok());
  auto second = PushSession::Start(store_, Opts({.stream = "busy"}), {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().reason(), Reason::kStreamBusy);
  (*first)->Finish();
  done.get_future().wait();
  auto third = PushSession::Start(store_, Opts({.stream = "busy"}), {});
  EXPECT_TRUE(third.ok());
}

TEST_P(PushSessionTest, ProducerTimestampsFollowTheHeaders) {
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

TEST_P(PushSessionTest, AKeyframeOverTheFragmentLimitIsRefusedAsItArrivesAndNothingKept) {
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

TEST_P(PushSessionTest, TimecodesPastTheYear9999AreAnInvalidDataAckNotAnArchivalError) {
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

TEST_P(PushSessionTest, MetricsCountBytesFragmentsAcksAndProducers) {
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

TEST_P(PushSessionTest, MetricsCountErrorsByErrorIdAndTheirAcks) {
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

TEST_P(PushSessionTest, MediaThatIsNoProducersIsNotCountedAsIngest) {
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

// The process's thread count (/proc/self/status).
int ProcessThreads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

// Acks and the end of many sessions, for a test thread to wait on.
struct Outcomes {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<int> received;
  std::vector<std::optional<Status>> done;

  explicit Outcomes(size_t n) : received(n, 0), done(n) {}
  PushCallbacks For(size_t i) {
    return {.on_ack =
                [this, i](std::string ack) {
                  std::lock_guard lock(mu);
                  received[i] += nlohmann::json::parse(ack)["EventType"] == "RECEIVED";
                  changed.notify_all();
                },
            .on_space = nullptr,
            .on_done =
                [this, i](Status s) {
                  std::lock_guard lock(mu);
                  done[i] = s;
                  changed.notify_all();
                }};
  }
  // Waits (bounded) until |ready| holds; returns whether it did.
  template <class Ready>
  bool WaitUntil(Ready ready) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, std::chrono::seconds(60), ready);
  }
};

TEST_P(PushSessionTest, SixtyFourProducersAddNoThreads) {
  std::string clip =
      MakeClip(dir_.file("many.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t",
                                       "2", "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  // One push first: the shared pool's threads, and anything else made once, exist.
  ASSERT_TRUE(Push(store_, "warm", bytes).status.ok());
  const int before = ProcessThreads();
  ASSERT_GT(before, 0);

  constexpr size_t kSessions = 64;
  Outcomes out(kSessions);
  std::vector<std::unique_ptr<PushSession>> sessions;
  const size_t head = bytes.size() * 3 / 4;  // past the second keyframe: one fragment completes
  for (size_t i = 0; i < kSessions; ++i) {
    auto s = PushSession::Start(store_, Opts({.stream = "cam" + std::to_string(i)}), out.For(i));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sessions.push_back(std::move(*s));
    EXPECT_TRUE(sessions.back()->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), head));
  }
  // Every session is mid-stream at once, its first fragment acknowledged.
  ASSERT_TRUE(out.WaitUntil([&] {
    return std::all_of(out.received.begin(), out.received.end(), [](int n) { return n >= 1; });
  }));
  EXPECT_EQ(ProcessThreads(), before);
  for (auto& s : sessions) {
    s->Feed(reinterpret_cast<const uint8_t*>(bytes.data()) + head, bytes.size() - head);
    s->Finish();
  }
  ASSERT_TRUE(out.WaitUntil([&] {
    return std::all_of(out.done.begin(), out.done.end(),
                       [](const auto& d) { return d.has_value(); });
  }));
  EXPECT_EQ(ProcessThreads(), before);
  for (size_t i = 0; i < kSessions; ++i) {
    EXPECT_TRUE(out.done[i]->ok()) << i << ": " << out.done[i]->ToString();
    EXPECT_EQ(out.received[i], 2) << i;
    ExpectFragmentsStartAtKeyframes(store_, "cam" + std::to_string(i), 2, 20);
  }
}

TEST_F(PushSessionCallerTest, FeedParsesOnTheCallingThreadBeforeItReturns) {
  std::string clip =
      MakeClip(dir_.file("here.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t",
                                       "2", "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  std::vector<std::thread::id> ack_threads;  // written on this thread only, if the mode holds
  std::optional<Status> done;
  auto session = PushSession::Start(
      store_, {.stream = "here", .pipe_high_water = 1024, .parse_on_caller = true},
      {.on_ack = [&](std::string) { ack_threads.push_back(std::this_thread::get_id()); },
       .on_done = [&](Status s) { done = s; }});
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  // Far past the high-water mark at once: nothing is queued, so the writer is never paused.
  EXPECT_TRUE((*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  // The first fragment ended at the second keyframe: acknowledged before Feed returned, here.
  ASSERT_EQ(ack_threads.size(), 2u);  // RECEIVED, and PERSISTED (the store keeps no files)
  (*session)->Finish();
  ASSERT_TRUE(done.has_value());  // the end, too, on this thread before Finish returned
  EXPECT_TRUE(done->ok()) << done->ToString();
  ASSERT_EQ(ack_threads.size(), 4u);
  for (const auto& id : ack_threads) EXPECT_EQ(id, std::this_thread::get_id());
  EXPECT_EQ(store_.Find("here")->Fragments().size(), 2u);
}

// A callback that destroys the handle runs inside Feed, on the caller's thread: Feed returns
// safely (the sanitizer builds would see a use after free), no ack follows, the stream is free.
TEST_F(PushSessionCallerTest, DestroyingASessionFromItsOwnCallbackInFeedIsSafe) {
  std::string clip =
      MakeClip(dir_.file("self.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t",
                                       "3", "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  std::unique_ptr<PushSession> session;
  int acks = 0;
  auto started = PushSession::Start(store_, {.stream = "self", .parse_on_caller = true},
                                    {.on_ack =
                                         [&](std::string) {
                                           if (++acks > 1) return;
                                           session.reset();  // from within Feed
                                         },
                                     .on_done = [&](Status) { ADD_FAILURE() << "on_done"; }});
  ASSERT_TRUE(started.ok());
  session = std::move(*started);
  session->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  EXPECT_FALSE(session);
  EXPECT_EQ(acks, 1);  // none after the destructor began
  auto next = PushSession::Start(store_, {.stream = "self"}, {});
  EXPECT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(store_.Find("self")->Fragments().size(), 3u);  // what arrived whole is kept
}

TEST_F(PushSessionPoolTest, FeedPausesPastTheHighWaterMarkAndOnSpaceResumesIt) {
  std::string clip =
      MakeClip(dir_.file("bp.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t",
                                     "3", "-c:v", "libx264", "-g", "10", "-bf", "0", "-qp", "10"});
  const std::string bytes = ReadFile(clip);
  constexpr size_t kHighWater = 32 * 1024;
  constexpr size_t kPiece = 4096;
  ASSERT_GT(bytes.size(), 4 * kHighWater);

  ParsePool pool(1);
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  pool.Post([opened] { opened.wait(); });  // the pool's one thread is busy: nothing is parsed
  std::mutex mu;
  int spaces = 0;
  std::promise<void> space;
  std::promise<Status> done;
  PushOptions options;
  options.stream = "bp";
  options.pool = &pool;
  options.pipe_high_water = kHighWater;
  auto session = PushSession::Start(store_, options,
                                    {.on_ack = nullptr,
                                     .on_space =
                                         [&] {
                                           std::lock_guard lock(mu);
                                           if (++spaces == 1) space.set_value();
                                         },
                                     .on_done = [&](Status s) { done.set_value(s); }});
  ASSERT_TRUE(session.ok());
  auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t fed = 0;
  bool paused = false;
  while (!paused && fed < bytes.size()) {
    paused = !(*session)->Feed(data + fed, kPiece);
    fed += kPiece;
  }
  ASSERT_TRUE(paused);
  EXPECT_GE(fed, kHighWater);
  EXPECT_LT(fed, kHighWater + kPiece);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(spaces, 0);
  }
  gate.set_value();
  ASSERT_EQ(space.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  // The rest, pausing on WaitForSpace as an in-process producer does.
  while (fed < bytes.size()) {
    size_t n = std::min(kPiece, bytes.size() - fed);
    if (!(*session)->Feed(data + fed, n)) {
      EXPECT_TRUE((*session)->WaitForSpace());
    }
    fed += n;
  }
  (*session)->Finish();
  Status s = done.get_future().get();
  EXPECT_TRUE(s.ok()) << s.ToString();
  ExpectFragmentsStartAtKeyframes(store_, "bp", 3, 30);
  std::lock_guard lock(mu);
  EXPECT_GE(spaces, 1);
}

TEST_P(PushSessionTest, BytesFedOneAtATimeParseTheSameFragments) {
  std::string clip = MakeClip(dir_.file("one.mkv"),
                              {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
                               "-c:v", "libx264", "-g", "10", "-bf", "2", "-sc_threshold", "0"});
  const std::string bytes = ReadFile(clip);
  PushOutcome whole = Push(store_, "whole", bytes);
  ASSERT_TRUE(whole.status.ok()) << whole.status.ToString();

  std::promise<Status> done;
  auto session = PushSession::Start(store_, Opts({.stream = "bytes"}),
                                    {.on_done = [&](Status s) { done.set_value(s); }});
  ASSERT_TRUE(session.ok());
  for (char c : bytes) {
    auto byte = static_cast<uint8_t>(c);
    if (!(*session)->Feed(&byte, 1)) {
      ASSERT_TRUE((*session)->WaitForSpace());
    }
  }
  (*session)->Finish();
  Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.ToString();

  auto a = store_.Find("whole")->Fragments();
  auto b = store_.Find("bytes")->Fragments();
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].timecode_ms, a[i].timecode_ms);
    EXPECT_EQ(b[i].duration_ms, a[i].duration_ms);
    EXPECT_EQ(b[i].bytes, a[i].bytes);
    ASSERT_EQ(b[i].frames.size(), a[i].frames.size());
    for (size_t j = 0; j < a[i].frames.size(); ++j) {
      const auto& fa = a[i].frames[j];
      const auto& fb = b[i].frames[j];
      EXPECT_EQ(fb.pts_ms, fa.pts_ms) << i << "/" << j;
      EXPECT_EQ(fb.dts_ms, fa.dts_ms) << i << "/" << j;
      EXPECT_EQ(fb.keyframe, fa.keyframe) << i << "/" << j;
      ASSERT_EQ(fb.size(), fa.size()) << i << "/" << j;
      EXPECT_EQ(std::memcmp(fb.packet->data, fa.packet->data, fa.size()), 0) << i << "/" << j;
    }
  }
}

TEST_P(PushSessionTest, BFramesKeepTheirPresentationTimesInDecodeOrder) {
  std::string clip = MakeClip(
      dir_.file("bf.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "1", "-c:v",
                            "libx264", "-g", "10", "-bf", "2", "-sc_threshold", "0"});
  ASSERT_TRUE(Push(store_, "bf", ReadFile(clip)).status.ok());
  auto fragments = store_.Find("bf")->Fragments();
  ASSERT_EQ(fragments.size(), 1u);
  std::vector<int64_t> pts;
  for (const auto& f : fragments[0].frames) pts.push_back(f.pts_ms);
  ASSERT_EQ(pts.size(), 10u);
  EXPECT_FALSE(std::is_sorted(pts.begin(), pts.end()));  // decode order, as stored
  std::sort(pts.begin(), pts.end());
  for (size_t i = 0; i < pts.size(); ++i) EXPECT_EQ(pts[i], static_cast<int64_t>(i) * 100);
  EXPECT_EQ(fragments[0].duration_ms, 1000);  // DefaultDuration counts the last frame
}

// Persists held back, as a slow disk would: the test says when each is done.
struct HeldPersists {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::function<void(Status)>> done;

  PushOptions Options(const std::string& stream) {
    PushOptions o;
    o.stream = stream;
    o.persist = [this](const std::string&, store::FragmentView, std::function<void(Status)> d) {
      std::lock_guard lock(mu);
      done.push_back(std::move(d));
      changed.notify_all();
    };
    return o;
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, std::chrono::seconds(60), [&] { return done.size() >= n; });
  }
  // Completes them on a thread of their own, as a writer pool does.
  void Complete(Status s) {
    std::vector<std::function<void(Status)>> all;
    {
      std::lock_guard lock(mu);
      all.swap(done);
    }
    std::thread([&] {
      for (auto& d : all) d(s);
    }).join();
  }
};

TEST_P(PushSessionTest, OnDoneFollowsEveryPersistedAck) {
  std::string clip =
      MakeClip(dir_.file("p.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  HeldPersists held;
  std::mutex mu;
  std::vector<std::string> events;
  std::atomic<bool> released{false};
  std::promise<std::vector<std::string>> done;
  auto session =
      PushSession::Start(store_, Opts(held.Options("p")),
                         {.on_ack =
                              [&](std::string ack) {
                                std::lock_guard lock(mu);
                                events.push_back(nlohmann::json::parse(ack)["EventType"]);
                              },
                          .on_done =
                              [&](Status s) {
                                EXPECT_TRUE(s.ok()) << s.ToString();
                                EXPECT_TRUE(released.load());  // not before the persists were done
                                std::lock_guard lock(mu);
                                done.set_value(events);
                              }});
  ASSERT_TRUE(session.ok());
  (*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  (*session)->Finish();
  ASSERT_TRUE(held.WaitFor(3));
  released = true;
  held.Complete(Status::Ok());
  auto seen = done.get_future().get();
  EXPECT_EQ(seen, (std::vector<std::string>{"RECEIVED", "RECEIVED", "RECEIVED", "PERSISTED",
                                            "PERSISTED", "PERSISTED"}));
}

TEST_P(PushSessionTest, AFailedPersistIsAnArchivalErrorAck) {
  std::string clip =
      MakeClip(dir_.file("ae.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t",
                                     "1", "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  HeldPersists held;
  PushOutcome out;
  std::mutex mu;
  std::promise<Status> done;
  auto session = PushSession::Start(store_, Opts(held.Options("ae")),
                                    {.on_ack =
                                         [&](std::string ack) {
                                           std::lock_guard lock(mu);
                                           out.acks.push_back(nlohmann::json::parse(ack));
                                         },
                                     .on_done = [&](Status s) { done.set_value(s); }});
  ASSERT_TRUE(session.ok());
  (*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  (*session)->Finish();
  ASSERT_TRUE(held.WaitFor(1));
  held.Complete(Status(Code::kUnavailable, "disk full", Reason::kArchivalError));
  EXPECT_TRUE(done.get_future().get().ok());
  std::lock_guard lock(mu);
  ASSERT_EQ(out.acks.size(), 2u);
  EXPECT_EQ(out.acks[0]["EventType"], "RECEIVED");
  EXPECT_EQ(out.acks[1]["EventType"], "ERROR");
  EXPECT_EQ(out.acks[1]["ErrorId"], 5001);
  EXPECT_EQ(out.acks[1]["FragmentNumber"], out.acks[0]["FragmentNumber"]);
}

TEST_P(PushSessionTest, DestroyingASessionWithPersistsPendingIsSafe) {
  std::string clip =
      MakeClip(dir_.file("d.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
                                    "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  HeldPersists held;
  std::mutex mu;
  int acks = 0;
  bool finished = false;
  auto session = PushSession::Start(store_, Opts(held.Options("gone")),
                                    {.on_ack =
                                         [&](std::string) {
                                           std::lock_guard lock(mu);
                                           ++acks;
                                         },
                                     .on_done =
                                         [&](Status) {
                                           std::lock_guard lock(mu);
                                           finished = true;
                                         }});
  ASSERT_TRUE(session.ok());
  (*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  (*session)->Finish();
  ASSERT_TRUE(held.WaitFor(3));
  session->reset();  // returns with the persists still pending
  int acks_at_reset;
  {
    std::lock_guard lock(mu);
    acks_at_reset = acks;
    EXPECT_FALSE(finished);
  }
  EXPECT_EQ(acks_at_reset, 3);  // the RECEIVEDs
  // The stream was given back: another producer may push to it.
  auto next = PushSession::Start(store_, Opts({.stream = "gone"}), {});
  EXPECT_TRUE(next.ok()) << next.status().ToString();
  // The writers finish after the session is gone: nobody is acknowledged.
  held.Complete(Status::Ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(acks, acks_at_reset);
  EXPECT_FALSE(finished);
  EXPECT_EQ(store_.Find("gone")->Fragments().size(), 3u);
}

TEST_F(PushSessionPoolTest, DestroyingASessionFromItsOwnCallbackIsSafe) {
  std::string clip =
      MakeClip(dir_.file("cb.mkv"), {"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t",
                                     "3", "-c:v", "libx264", "-g", "10", "-bf", "0"});
  const std::string bytes = ReadFile(clip);
  ParsePool pool(1);  // one thread: a task posted later runs after the session's
  std::unique_ptr<PushSession> session;
  std::mutex mu;
  int acks = 0;
  std::promise<void> destroyed;
  PushOptions options;
  options.stream = "self";
  options.pool = &pool;
  auto started = PushSession::Start(store_, options,
                                    {.on_ack =
                                         [&](std::string) {
                                           std::unique_ptr<PushSession> gone;
                                           {
                                             std::lock_guard lock(mu);
                                             if (++acks > 1) return;
                                             gone = std::move(session);
                                           }
                                           gone.reset();  // from within the session's callback
                                           destroyed.set_value();
                                         },
                                     .on_done = [&](Status) { ADD_FAILURE() << "on_done"; }});
  ASSERT_TRUE(started.ok());
  PushSession* raw = started->get();
  {
    std::lock_guard lock(mu);
    session = std::move(*started);
  }
  raw->Feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  ASSERT_EQ(destroyed.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  std::promise<void> after;
  pool.Post([&] { after.set_value(); });
  after.get_future().wait();
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(acks, 1);  // none after the destructor began
  }
  // The strand ended the session: the stream is free, what arrived whole kept.
  auto next = PushSession::Start(store_, {.stream = "self"}, {});
  EXPECT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(store_.Find("self")->Fragments().size(), 3u);
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
