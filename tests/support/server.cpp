#include "support/server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "support/http_client.h"
#include "support/temp_dir.h"

namespace lastframe::testing {
namespace {

// A prefix for the report files of one lastframe process, next to |near|
// (a data directory of the test's) and unique in this test process.
std::string NewReportPrefix(const std::filesystem::path& near) {
  static std::atomic<int> sequence{0};
  std::filesystem::path dir = near.has_parent_path() ? near.parent_path() : near;
  if (dir.empty() || !std::filesystem::is_directory(dir))
    dir = std::filesystem::temp_directory_path();
  return (dir / ("sanitizer-" + std::to_string(getpid()) + "-" + std::to_string(sequence++)))
      .string();
}

}  // namespace

std::string TokenIn(const std::string& output) {
  size_t at = output.rfind("\nlf_") != std::string::npos ? output.rfind("\nlf_") + 1
              : output.rfind("lf_", 0) == 0              ? 0
                                                         : std::string::npos;
  if (at == std::string::npos) return "";
  return output.substr(at, output.find('\n', at) - at);
}

namespace {

std::string Tail(const std::string& text, size_t n = 4000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

}  // namespace

std::string LastframeBinary() {
  const char* bin = std::getenv("LASTFRAME_BINARY");
  if (bin == nullptr) throw std::runtime_error("LASTFRAME_BINARY is not set (run through ctest)");
  return bin;
}

std::vector<std::string> SanitizerEnvironment(const std::string& report_prefix) {
  std::vector<std::string> env;
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    const char* set = std::getenv(name);
    std::string options = set != nullptr ? set : "";
    if (!options.empty()) options += ":";
    env.push_back(std::string(name) + "=" + options + "log_path=" + report_prefix);
  }
  return env;
}

namespace {

// The files sanitizers wrote at |report_prefix|.PID.
std::vector<std::filesystem::path> ReportFiles(const std::string& report_prefix) {
  std::filesystem::path prefix(report_prefix);
  std::string start = prefix.filename().string() + ".";
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(prefix.parent_path(), ec))
    if (entry.path().filename().string().rfind(start, 0) == 0) files.push_back(entry.path());
  return files;
}

}  // namespace

std::string ReadSanitizerReports(const std::string& report_prefix) {
  std::string reports;
  for (const auto& file : ReportFiles(report_prefix)) {
    std::string text = ReadFile(file.string());
    if (!text.empty()) reports += "== " + file.string() + "\n" + text;
  }
  return reports;
}

int RunLastframe(const std::vector<std::string>& args, std::string* output) {
  std::string prefix = NewReportPrefix(std::filesystem::temp_directory_path() / "x");
  std::vector<std::string> argv = {LastframeBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  int rc = RunCommand(argv, output, SanitizerEnvironment(prefix));
  EXPECT_EQ(ReadSanitizerReports(prefix), "") << "sanitizer reports from lastframe";
  for (const auto& file : ReportFiles(prefix)) std::filesystem::remove(file);
  return rc;
}

LastframeServer::LastframeServer(const std::string& data_dir,
                                 const std::vector<std::string>& extra_args,
                                 const std::vector<std::string>& launcher, uint16_t port)
    : report_prefix_(NewReportPrefix(data_dir)) {
  bool manages_keys = std::any_of(extra_args.begin(), extra_args.end(), [](const std::string& a) {
    return a == "--auth" || a == "--keys-file" || a.rfind("--auth=", 0) == 0;
  });
  if (!manages_keys) {
    std::string out;
    int rc = RunLastframe(
        {"keys", "create", "--data-dir", data_dir, "--role", "admin", "--label", "tests"}, &out);
    if (rc != 0) throw std::runtime_error("lastframe keys create failed:\n" + out);
    admin_token_ = TokenIn(out);
  }
  std::vector<std::string> argv = launcher;
  for (const std::string& arg :
       {LastframeBinary(), std::string("serve"), std::string("--listen"),
        "127.0.0.1:" + std::to_string(port), std::string("--data-dir"), data_dir})
    argv.push_back(arg);
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(argv, SanitizerEnvironment(report_prefix_));
  // The server prints its bound address once it accepts connections.
  const std::string marker = "listening on http://127.0.0.1:";
  std::string line = process_->WaitForLine(marker, std::chrono::seconds(30));
  if (line.empty())
    throw std::runtime_error("lastframe did not start:\n" + process_->Output() +
                             ReadSanitizerReports(report_prefix_));
  size_t at = line.find(marker) + marker.size();
  port_ = static_cast<uint16_t>(std::stoi(line.substr(at)));
  if (!admin_token_.empty()) SetDefaultBearer(port_, admin_token_);
}

LastframeServer::~LastframeServer() {
  if (!process_) return;
  if (!admin_token_.empty()) SetDefaultBearer(port_, "");
  if (process_->running()) {
    int code = Stop();
    EXPECT_EQ(code, 0) << "lastframe did not exit cleanly on SIGTERM; its output:\n"
                       << Tail(process_->Output());
  }
  EXPECT_EQ(SanitizerReports(), "") << "sanitizer reports from the lastframe server";
}

int LastframeServer::Stop() {
  process_->Signal(SIGTERM);
  int code = process_->WaitFor(std::chrono::seconds(60));
  if (code != -1) return code;
  ADD_FAILURE() << "lastframe did not stop within 60 s of SIGTERM:\n" << Tail(process_->Output());
  process_->Signal(SIGKILL);
  return process_->Wait();
}

std::string LastframeServer::SanitizerReports() const {
  return ReadSanitizerReports(report_prefix_);
}

}  // namespace lastframe::testing
