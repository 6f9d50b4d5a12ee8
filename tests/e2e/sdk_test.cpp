// Current AWS SDKs work unchanged (issue 17): the AWS SDK for JavaScript v3
// (tests/sdk_js, pinned by its lock file to the newest release that runs on
// Debian 12's Node 18) with its defaults, checksums and aws-chunked bodies
// included; awscli v2 and boto3 uploading in parts. Each client is one test, so
// a failure names the client; each prints its checks, shown on failure.

#include <cstring>
#include <filesystem>
#include <random>

#include "core/clock.h"
#include "core/encoding.h"
#include "e2e/e2e_util.h"
#include "objects/local_store.h"

namespace lastframe::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

std::string SourceDir() { return LASTFRAME_SOURCE_DIR; }
std::string SdkJs(const std::string& script) { return SourceDir() + "/tests/sdk_js/" + script; }

// Fast, incompressible bytes.
std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = random();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

// S3's ETag of an object uploaded in parts of |part| bytes: the MD5 of the
// parts' MD5s, "-" and the count of parts.
std::string MultipartEtag(const std::string& body, uint64_t part) {
  std::string digests;
  size_t parts = 0;
  for (size_t at = 0; at < body.size(); at += part, ++parts)
    digests += *HexDecode(objects::Md5Hex(body.substr(at, part)));
  return "\"" + objects::Md5Hex(digests) + "-" + std::to_string(parts) + "\"";
}

// The server as the other end-to-end tests start it, its key pair known, with
// room for awscli's 48 MiB object.
class SdkTest : public ::testing::Test {
 protected:
  uint16_t port() { return server_.port(); }

  // Runs a script of tests/sdk_js with node, away from the machine's AWS
  // configuration (files that would change the SDK's defaults); its exit status.
  int Node(const std::string& script, const std::vector<std::string>& args, std::string* out) {
    if (!std::filesystem::exists(SdkJs("node_modules/@aws-sdk/client-s3"))) {
      ADD_FAILURE() << "tests/sdk_js/node_modules is missing: (cd tests/sdk_js && npm ci)";
      return -1;
    }
    std::vector<std::string> argv = {"node", SdkJs(script)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out,
                      {"AWS_CONFIG_FILE=" + dir_.file("no-aws-config"),
                       "AWS_SHARED_CREDENTIALS_FILE=" + dir_.file("no-aws-creds")});
  }

  TempDir dir_;
  LastframeServer server_{dir_.file("data"), [] {
                            auto args = TestServerArgs();
                            args.insert(args.end(), {"--max-object-size", "64MiB"});
                            return args;
                          }()};
};

// What the lock file installs must run on Debian 12's Node (18), not only on
// the Node 20 of a developer's machine: every package's engines.node admits it.
TEST(SdkJsLockFile, EveryPackageAdmitsDebiansNode18) {
  std::string out;
  ASSERT_EQ(RunCommand({"node", SdkJs("check_engines.mjs"), "18.19.0"}, &out), 0) << out;
}

TEST_F(SdkTest, JavaScriptSdkS3) {
  std::string out;
  int rc = Node(
      "s3_check.mjs",
      {server_.base_url(), "lastframe", kAccessKey, kSecretKey, "us-east-1", dir_.path().string()},
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\nsdk-js s3 checks passed"), std::string::npos) << out;
}

TEST_F(SdkTest, JavaScriptSdkKinesisVideo) {
  // testsrc2 320x240, 6 s at 10 fps, a keyframe a second: 6 fragments, pushed
  // as a producer that started a minute ago (whole seconds, as the SDK sends).
  const int64_t start_s = SystemClock::Get().NowMs() / 1000 - 60;
  const std::string clip = TestClip(dir_, "cam.mkv", 320, 240, 10, 6, 10);
  HttpResult pushed = HttpRequest(port(), "POST", "/putMedia", ReadFile(clip),
                                  {{"x-amzn-stream-name", "cam"},
                                   {"x-amzn-producer-start-timestamp", std::to_string(start_s)},
                                   {"x-amzn-fragment-timecode-type", "RELATIVE"}});
  ASSERT_EQ(pushed.status, 200) << pushed.body;
  size_t persisted = 0;
  for (const nlohmann::json& ack : Acks(pushed.body))
    persisted += ack.value("EventType", "") == "PERSISTED";
  ASSERT_EQ(persisted, 6u) << pushed.body;

  std::string out;
  int rc = Node("kvs_check.mjs", {"--endpoint",   server_.base_url(),
                                  "--access-key", kAccessKey,
                                  "--secret-key", kSecretKey,
                                  "--region",     "us-east-1",
                                  "--stream",     "cam",
                                  "--clip-start", std::to_string(start_s),
                                  "--seconds",    "6",
                                  "--fragments",  "6",
                                  "--width",      "320",
                                  "--height",     "240"},
                &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\nsdk-js kvs checks passed"), std::string::npos) << out;
}

// awscli v2 uploads and downloads anything over 8 MiB in 8 MiB parts.
TEST_F(SdkTest, AwsCliCopiesA48MiBFileInParts) {
  const std::string data = RandomBytes(48 * kMiB, 17);
  WriteFile(dir_.file("up.bin"), data);
  const std::string object = "s3://lastframe/cli/48MiB.bin";
  std::string out;
  ASSERT_EQ(RunAwsCli(dir_, server_.base_url(), {"s3", "cp", dir_.file("up.bin"), object}, &out), 0)
      << out;
  ASSERT_EQ(RunAwsCli(dir_, server_.base_url(), {"s3", "cp", object, dir_.file("down.bin")}, &out),
            0)
      << out;
  const std::string down = ReadFile(dir_.file("down.bin"));
  EXPECT_EQ(down.size(), data.size());
  EXPECT_TRUE(down == data) << "the downloaded file differs from the uploaded one";

  ASSERT_EQ(
      RunAwsCli(dir_, server_.base_url(),
                {"s3api", "head-object", "--bucket", "lastframe", "--key", "cli/48MiB.bin"}, &out),
      0)
      << out;
  nlohmann::json head = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(head.is_object()) << out;
  EXPECT_EQ(head.value("ETag", ""), MultipartEtag(data, 8 * kMiB)) << out;
  EXPECT_EQ(head.value("ContentLength", int64_t{0}), static_cast<int64_t>(data.size())) << out;
}

// boto3's upload_file with a 5 MiB multipart threshold and part size: 3 parts.
TEST_F(SdkTest, Boto3UploadsAFileInParts) {
  std::string out;
  int rc = RunCommand(
      {"/usr/bin/python3", SourceDir() + "/tests/e2e/s3_clients/boto3_check.py", "multipart",
       server_.base_url(), "lastframe", kAccessKey, kSecretKey, dir_.path().string()},
      &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("boto3 multipart checks passed"), std::string::npos) << out;
}

}  // namespace
}  // namespace lastframe::testing
