#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/secret.h"
#include "core/time_format.h"
#include "support/http_client.h"
#include "support/media_check.h"
#include "support/process.h"
#include "support/server.h"
#include "support/temp_dir.h"

namespace lastframe::testing {

// Credentials the tests give the server, so they can sign URLs themselves.
inline const char* kAccessKey = "LFTESTKEY0000000000";
inline const char* kSecretKey = "test-secret-key-for-e2e-only";

// With credentials the server wants PutMedia signed; the tests' producers
// (ffmpeg, plain POSTs) cannot sign, so unsigned pushes stay allowed here.
// kvs_test.cpp starts a server without --unsigned-putmedia to check signing.
inline std::vector<std::string> TestServerArgs() {
  return {"--access-key", kAccessKey, "--secret-key",       kSecretKey,
          "--retention",  "600",      "--unsigned-putmedia"};
}

// TestServerArgs, and pulls may reach loopback (where the tests' cameras are),
// which the default pull policy refuses.
inline std::vector<std::string> LoopbackPullArgs() {
  std::vector<std::string> args = TestServerArgs();
  args.insert(args.end(), {"--pull-allow", "127.0.0.0/8"});
  return args;
}

// Runs Debian's awscli v2 (/usr/bin/aws) against |base_url| with the test
// key pair (|secret| for the secret half), isolated from any AWS
// configuration of the machine (files under |dir| that do not exist); returns
// its exit status, its stdout and stderr in |output|.
inline int RunAwsCli(const TempDir& dir, const std::string& base_url,
                     const std::vector<std::string>& args, std::string* output,
                     const std::string& secret = kSecretKey) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   std::string("AWS_ACCESS_KEY_ID=") + kAccessKey,
                                   "AWS_SECRET_ACCESS_KEY=" + secret,
                                   "AWS_DEFAULT_REGION=us-east-1",
                                   "AWS_CONFIG_FILE=" + dir.file("no-aws-config"),
                                   "AWS_SHARED_CREDENTIALS_FILE=" + dir.file("no-aws-creds"),
                                   "AWS_PAGER=",
                                   "/usr/bin/aws",
                                   "--endpoint-url",
                                   base_url};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, output);
}

// Repeats |probe| until it returns true or |timeout| passes: for state that
// a live producer reaches in its own time. Returns whether it became true.
inline bool Eventually(const std::function<bool()>& probe,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (probe()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));  // poll interval, bounded
  }
  return probe();
}

// Base64 as the tests read it: written apart from the server's, to check it.
inline std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int n = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string::npos) {
      ADD_FAILURE() << "not base64: " << in.substr(0, 40);
      return "";
    }
    bits = (bits << 6) | static_cast<uint32_t>(v);
    n += 6;
    if (n >= 8) {
      n -= 8;
      out.push_back(static_cast<char>((bits >> n) & 0xff));
    }
  }
  return out;
}

inline nlohmann::json JsonOf(const HttpResult& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.body;
  return j;
}

// A value of lastframe's /metrics (Prometheus text), or -1 if absent.
inline double Metric(uint16_t port, const std::string& name) {
  HttpResult r = HttpGet(port, "/metrics");
  size_t at = r.body.find("\n" + name + " ");
  if (r.status != 200 || at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + name.size() + 2));
}

// The acknowledgement lines of a PutMedia response body.
inline std::vector<nlohmann::json> Acks(const std::string& body) {
  std::vector<nlohmann::json> out;
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    std::string line = body.substr(start, nl - start);
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

// The fragment numbers PERSISTED in a PutMedia answer's acks, in order.
inline std::vector<std::string> PersistedFragments(const std::string& body) {
  std::vector<std::string> out;
  for (const nlohmann::json& ack : Acks(body))
    if (ack.value("EventType", "") == "PERSISTED") out.push_back(ack["FragmentNumber"]);
  return out;
}

// A clip made by ffmpeg: testsrc2 |seconds| long, H.264 GOP |gop|, no B-frames.
inline std::string TestClip(const TempDir& dir, const std::string& name, int w, int h, int fps,
                            double seconds, int gop) {
  return MakeClip(dir.file(name),
                  {"-f", "lavfi", "-i",
                   "testsrc2=size=" + std::to_string(w) + "x" + std::to_string(h) +
                       ":rate=" + std::to_string(fps),
                   "-t", std::to_string(seconds), "-c:v", "libx264", "-g", std::to_string(gop),
                   "-bf", "0", "-sc_threshold", "0", "-pix_fmt", "yuv420p"});
}

// A Kinesis Video call, POST /<operation> with a JSON body to 127.0.0.1:|port|,
// signed with |access_key|/|secret| in its Authorization header as the SDKs
// sign it (the body's hash signed, not sent).
inline HttpResult SignedKvsCall(uint16_t port, const std::string& op, const std::string& body,
                                const std::string& access_key, const std::string& secret) {
  const SystemClock& clock = SystemClock::Get();
  int64_t now = clock.NowMs();
  aws::SigV4 signer({access_key, Secret(secret), ""}, "us-east-1", "kinesisvideo", clock);
  aws::CanonicalRequest req;
  req.method = "POST";
  req.path = "/" + op;
  req.payload_hash = aws::Sha256Hex(body);
  std::map<std::string, std::string> headers = {{"x-amz-date", FormatAmzDate(now)},
                                                {"content-type", "application/json"}};
  req.headers = {{"host", "127.0.0.1:" + std::to_string(port)}};
  for (const auto& [k, v] : headers) req.headers.emplace_back(k, v);
  headers["Authorization"] = signer.Authorization(req, now);
  return HttpRequest(port, "POST", "/" + op, body, headers);
}

// Pushes a file in one plain POST (Content-Length), as a batch uploader would.
inline HttpResult PushOneShot(uint16_t port, const std::string& stream, const std::string& bytes) {
  return HttpRequest(port, "POST", "/putMedia", bytes, {{"x-amzn-stream-name", stream}});
}

// Creates an API key in |data_dir| (`lastframe keys create` with |args|) and
// returns its token.
inline std::string MakeKey(const std::string& data_dir, const std::vector<std::string>& args) {
  std::vector<std::string> lastframe_args = {"keys", "create", "--data-dir", data_dir};
  lastframe_args.insert(lastframe_args.end(), args.begin(), args.end());
  std::string out;
  EXPECT_EQ(RunLastframe(lastframe_args, &out), 0) << out;
  std::string token = TokenIn(out);
  EXPECT_EQ(token.rfind("lf_", 0), 0u) << out;
  return token;
}

// The argv of a live camera-style producer: ffmpeg pushing testsrc2 of |size|
// in real time (10 fps, a keyframe a second, low delay) for up to |seconds|,
// with a producer's bearer |token| when one is given.
inline std::vector<std::string> LiveProducer(uint16_t port, const std::string& stream,
                                             const std::string& size, const std::string& token = "",
                                             int seconds = 30) {
  return {"ffmpeg",
          "-hide_banner",
          "-loglevel",
          "error",
          "-re",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=" + size + ":rate=10",
          "-t",
          std::to_string(seconds),
          "-c:v",
          "libx264",
          "-g",
          "10",
          "-bf",
          "0",
          "-tune",
          "zerolatency",
          "-pix_fmt",
          "yuv420p",
          "-f",
          "matroska",
          "-live",
          "1",
          "-cluster_time_limit",
          "200",
          "-flush_packets",
          "1",
          "-method",
          "POST",
          "-chunked_post",
          "1",
          "-headers",
          "x-amzn-stream-name: " + stream + "\r\n" +
              (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n"),
          "http://127.0.0.1:" + std::to_string(port) + "/putMedia"};
}

// Pushes a file with the ffmpeg CLI, chunked, as a live producer does (without -re).
inline int PushWithFfmpeg(uint16_t port, const std::string& stream, const std::string& clip) {
  std::string out;
  int rc = RunCommand({"ffmpeg", "-hide_banner", "-loglevel", "error", "-i", clip, "-c", "copy",
                       "-f", "matroska", "-live", "1", "-method", "POST", "-chunked_post", "1",
                       "-headers", "x-amzn-stream-name: " + stream + "\r\n",
                       "http://127.0.0.1:" + std::to_string(port) + "/putMedia"},
                      &out);
  EXPECT_EQ(rc, 0) << out;
  return rc;
}

}  // namespace lastframe::testing
