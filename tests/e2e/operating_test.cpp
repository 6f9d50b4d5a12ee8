// Operating lastframe (issue 19): the real server's /metrics, after it has
// ingested, snapshotted, refused and failed something, passes Debian's
// promtool and each family moves with its event; its JSON log lines parse
// one by one and carry no secret.

#include <fstream>
#include <map>
#include <regex>

#include "e2e/e2e_util.h"

namespace lastframe::testing {
namespace {

using nlohmann::json;

// Every sample of a Prometheus text body: "name{labels}" -> value.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// The sum of the samples of |name| whose labels contain each of |labels|
// (e.g. {"route=\"api\"", "code=\"4xx\""}); 0 when none.
double Sum(const std::map<std::string, double>& samples, const std::string& name,
           const std::vector<std::string>& labels = {}) {
  double total = 0;
  for (const auto& [series, value] : samples) {
    if (series != name && series.rfind(name + "{", 0) != 0) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && series.find(l) != std::string::npos;
    if (all) total += value;
  }
  return total;
}

std::string Scrape(uint16_t port) {
  HttpResult r = HttpGet(port, "/metrics");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4");
  return r.body;
}

// promtool's verdict on |text|: its exit status, its complaints in |output|.
int PromtoolCheckMetrics(const TempDir& dir, const std::string& text, std::string* output) {
  const std::string file = dir.file("metrics.txt");
  std::ofstream(file) << text;
  return RunCommand({"/bin/bash", "-c", "exec promtool check metrics < \"$0\"", file}, output);
}

TEST(Operating, MetricsPassPromtoolAndEachFamilyMovesWithItsEvent) {
  TempDir dir;
  std::vector<std::string> args = LoopbackPullArgs();
  args.insert(args.end(),
              {"--log-format", "json", "--log-level", "debug", "--request-log-level", "info"});
  LastframeServer server(dir.file("data"), args);
  const uint16_t port = server.port();
  const auto before = Samples(Scrape(port));

  // Ingested: a clip of 3 fragments pushed as a producer does.
  const std::string clip = TestClip(dir, "clip.mkv", 320, 240, 10, 3, 10);
  ASSERT_EQ(PushWithFfmpeg(port, "cam", clip), 0);
  // ffmpeg returns once its bytes are sent; the server parses them in its own time.
  ASSERT_TRUE(Eventually([&] {
    json info = JsonOf(HttpGet(port, "/v1/streams/cam"));
    return info["producer_connected"] == false && info["fragment_count"] == 3;
  }));
  // Snapshotted, and the image fetched from the embedded store.
  HttpResult snapshot = HttpGet(port, "/snapshot?stream_name=cam");
  ASSERT_EQ(snapshot.status, 200) << snapshot.body;
  uint16_t image_port = 0;
  std::string image_target;
  SplitUrl(JsonOf(snapshot)["body"], &image_port, &image_target);
  EXPECT_EQ(HttpGet(image_port, image_target).status, 200);
  // Refused: larger than --max-render-pixels (a limit), and without credentials.
  EXPECT_EQ(HttpGet(port, "/snapshot?stream_name=cam&width=8000&height=8000").status, 400);
  EXPECT_EQ(HttpRequest(port, "GET", "/v1/streams", "", {{"Authorization", "Bearer nope"}}).status,
            401);
  // Failed: bytes that are not Matroska, pushed to another stream.
  HttpResult garbage = PushOneShot(port, "junk", std::string(4096, 'x'));
  EXPECT_NE(garbage.body.find("\"ErrorId\""), std::string::npos) << garbage.body;
  // A pulled camera that is not there (its password must never be logged).
  HttpResult added = HttpRequest(port, "POST", "/v1/streams",
                                 R"({"name":"gone","url":"rtsp://user:topsecret@127.0.0.1:1/x"})");
  ASSERT_EQ(added.status, 201) << added.body;

  std::string text;
  std::map<std::string, double> after;
  // The pull's reconnect comes after its first attempt failed and its backoff passed.
  ASSERT_TRUE(Eventually(
      [&] {
        text = Scrape(port);
        after = Samples(text);
        return Sum(after, "lastframe_pull_reconnects_total") > 0;
      },
      std::chrono::seconds(30)))
      << text;

  std::string complaints;
  EXPECT_EQ(PromtoolCheckMetrics(dir, text, &complaints), 0) << complaints;

  auto moved = [&](const std::string& name, const std::vector<std::string>& labels = {}) {
    EXPECT_GT(Sum(after, name, labels), Sum(before, name, labels))
        << name << " " << ::testing::PrintToString(labels);
  };
  moved("lastframe_ingest_bytes_total");
  moved("lastframe_ingest_fragments_total");
  moved("lastframe_ingest_acks_total", {"type=\"PERSISTED\""});
  moved("lastframe_ingest_acks_total", {"type=\"ERROR\""});
  moved("lastframe_ingest_errors_total");
  moved("lastframe_ingest_producers_started_total");
  moved("lastframe_ingest_producers_ended_total");
  moved("lastframe_ingest_ack_delay_seconds_count", {"type=\"RECEIVED\""});
  moved("lastframe_ingest_ack_delay_seconds_count", {"type=\"PERSISTED\""});
  moved("lastframe_fragment_fsync_duration_seconds_count");
  moved("lastframe_http_request_duration_seconds_count", {"route=\"snapshot\"", "code=\"2xx\""});
  moved("lastframe_http_request_duration_seconds_count", {"route=\"api\"", "code=\"4xx\""});
  moved("lastframe_http_request_duration_seconds_count", {"route=\"put_media\""});
  moved("lastframe_http_request_duration_seconds_count", {"route=\"objects\"", "code=\"2xx\""});
  for (const char* stage : {"decode", "encode", "store", "sign"})
    moved("lastframe_snapshot_stage_duration_seconds_count",
          {std::string("stage=\"") + stage + "\""});
  moved("lastframe_object_store_requests_total", {"store=\"embedded\"", "operation=\"put\""});
  moved("lastframe_object_upload_duration_seconds_count", {"store=\"embedded\""});
  moved("lastframe_pull_reconnects_total");
  EXPECT_GE(Sum(after, "lastframe_pull_sources"), 1);
  moved("lastframe_limit_refusals_total", {"limit=\"render_pixels\""});
  // The process, as the standard names have it.
  EXPECT_GT(Sum(after, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Sum(after, "process_open_fds"), 3);
  EXPECT_GT(Sum(after, "process_max_fds"), Sum(after, "process_open_fds"));
  EXPECT_GT(Sum(after, "process_threads"), 1);
  EXPECT_GT(Sum(after, "process_cpu_seconds_total"), 0);
  EXPECT_GT(Sum(after, "process_start_time_seconds"), 1.7e9);
  EXPECT_EQ(Sum(after, "lastframe_build_info", {"version=\"0.1.0\""}), 1);

  // The log: one JSON object a line, request lines with their fields, no secret.
  const std::string token = server.admin_token();
  ASSERT_EQ(server.Stop(), 0);
  const std::string output = server.process().Output();
  std::istringstream lines(output);
  int requests = 0;
  bool saw_snapshot_request = false;
  for (std::string line; std::getline(lines, line);) {
    json entry = json::parse(line, nullptr, false);
    ASSERT_TRUE(entry.is_object()) << "not a JSON line: " << line;
    EXPECT_TRUE(entry["time"].is_string() && entry["level"].is_string() &&
                entry["message"].is_string())
        << line;
    for (const std::string& secret :
         {std::string("topsecret"), std::string(kSecretKey), token, std::string("X-Amz-Signature")})
      EXPECT_EQ(line.find(secret), std::string::npos) << "a secret in the log: " << line;
    if (entry["message"] != "request") continue;
    ++requests;
    EXPECT_TRUE(entry["method"].is_string() && entry["route"].is_string() &&
                entry["path"].is_string() && entry["status"].is_number() &&
                entry["duration_ms"].is_number())
        << line;
    EXPECT_EQ(entry["path"].get<std::string>().find('?'), std::string::npos) << line;
    saw_snapshot_request =
        saw_snapshot_request || (entry["path"] == "/snapshot" && entry["status"] == 200);
  }
  EXPECT_GE(requests, 5) << output;
  EXPECT_TRUE(saw_snapshot_request) << output;
}

}  // namespace
}  // namespace lastframe::testing
