#pragma once

// @20minutes/s3rver behind tests/s3rver/server.js (tests/s3rver/README.md), on
// a free loopback port: the independent S3 server S3Store and the shared
// archive are tested against. Header-only: it finds the script through
// LASTFRAME_SOURCE_DIR, which lastframe_test defines for every test binary.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace lastframe::testing {

inline const char* kS3rverKey = "S3RVERTESTKEY";
inline const char* kS3rverSecret = "s3rver-test-secret";

class S3rver {
 public:
  // Keeps its objects in |dir|/s3rver; |extra| are server.js's fault flags
  // (--fail-first N, --delay-ms MS, ...).
  explicit S3rver(const TempDir& dir, const std::vector<std::string>& extra = {},
                  const std::string& bucket = "snaps") {
    // s3rver makes ListObjectsV2's continuation tokens with DES, which OpenSSL 3
    // keeps in its legacy provider: without it every truncated listing is a 500.
    std::vector<std::string> argv = {"node",
                                     "--openssl-legacy-provider",
                                     std::string(LASTFRAME_SOURCE_DIR) + "/tests/s3rver/server.js",
                                     "--port",
                                     "0",
                                     "--dir",
                                     dir.file("s3rver"),
                                     "--bucket",
                                     bucket,
                                     "--access-key",
                                     kS3rverKey,
                                     "--secret-key",
                                     kS3rverSecret};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Process>(argv);
    const std::string ready = "s3rver listening on http://127.0.0.1:";
    std::string line = process_->WaitForLine(ready, std::chrono::seconds(60));
    EXPECT_FALSE(line.empty()) << process_->Output();
    if (!line.empty())
      port_ = static_cast<uint16_t>(std::stoi(line.substr(line.find(ready) + ready.size())));
  }
  ~S3rver() { Stop(); }
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;

  void Stop() {
    if (process_->running()) {
      process_->Signal(SIGTERM);
      process_->Wait();
    }
  }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // What it printed so far: a "request METHOD TARGET STATUS" line per request.
  std::string Output() { return process_->Output(); }
  Process& process() { return *process_; }

 private:
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
};

}  // namespace lastframe::testing
