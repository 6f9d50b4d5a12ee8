#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace lastframe::testing {

// The real lastframe binary ($LASTFRAME_BINARY), started on a free loopback
// port with a data directory of the test's, and stopped (SIGTERM) at the end.
// Sanitizer reports (ASan, UBSan, LSan's leaks at exit, TSan) go to files of
// its own; at destruction a report, or a server that the destructor stopped and
// that did not exit 0, fails the test that started it. A test that stops or
// kills the server itself checks the exit code it gets.
// Unless |extra_args| name --auth or --keys-file (a test of access control
// itself), an admin key is made for the server first (`lastframe keys
// create`), and the tests' requests to it carry that key (SetDefaultBearer).
class LastframeServer {
 public:
  // |launcher|, when given, runs the binary (e.g. {"prlimit", "--fsize=4096", "--"}).
  // |port| 0 takes any free port; another, that one (a restart where peers
  // know the address).
  LastframeServer(const std::string& data_dir, const std::vector<std::string>& extra_args = {},
                  const std::vector<std::string>& launcher = {}, uint16_t port = 0);
  ~LastframeServer();

  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }
  // SIGTERM, then the exit code; a server still running 60 s later is killed
  // (the test fails) and 128 + SIGKILL returned.
  int Stop();
  // What sanitizers reported in this server so far; "" when nothing.
  std::string SanitizerReports() const;
  // The admin token made for this server ("" when the test manages keys).
  const std::string& admin_token() const { return admin_token_; }

 private:
  std::string admin_token_;
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
  std::string report_prefix_;
};

// The environment a lastframe process runs with in the tests: the sanitizer
// options of this process, each with log_path=|report_prefix| added.
std::vector<std::string> SanitizerEnvironment(const std::string& report_prefix);

// The token line (lf_...) that `lastframe keys create` printed in |output|; "" if none.
std::string TokenIn(const std::string& output);

// The contents of the files sanitizers wrote at |report_prefix|.PID; "" when none.
std::string ReadSanitizerReports(const std::string& report_prefix);

// Runs the lastframe binary with |args| to completion (a command, or a server
// expected to refuse to start); fails the test on any sanitizer report.
int RunLastframe(const std::vector<std::string>& args, std::string* output = nullptr);

// The path of the lastframe binary under test.
std::string LastframeBinary();

}  // namespace lastframe::testing
