#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace lastframe::testing {

// The real lastframe binary ($LASTFRAME_BINARY), started on a free loopback
// port with a data directory of the test's, and stopped (SIGTERM) at the end.
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
  // SIGTERM, then the exit code.
  int Stop();

 private:
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
};

// The path of the lastframe binary under test.
std::string LastframeBinary();

}  // namespace lastframe::testing
