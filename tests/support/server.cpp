#include "support/server.h"

#include <signal.h>

#include <cstdlib>
#include <stdexcept>

namespace lastframe::testing {

std::string LastframeBinary() {
  const char* bin = std::getenv("LASTFRAME_BINARY");
  if (bin == nullptr) throw std::runtime_error("LASTFRAME_BINARY is not set (run through ctest)");
  return bin;
}

LastframeServer::LastframeServer(const std::string& data_dir,
                                 const std::vector<std::string>& extra_args,
                                 const std::vector<std::string>& launcher, uint16_t port) {
  std::vector<std::string> argv = launcher;
  for (const std::string& arg : {LastframeBinary(), std::string("serve"), std::string("--listen"),
                                 "127.0.0.1:" + std::to_string(port), std::string("--data-dir"), data_dir})
    argv.push_back(arg);
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(argv);
  // The server prints its bound address once it accepts connections.
  const std::string marker = "listening on http://127.0.0.1:";
  std::string line = process_->WaitForLine(marker, std::chrono::seconds(30));
  if (line.empty()) throw std::runtime_error("lastframe did not start:\n" + process_->Output());
  size_t at = line.find(marker) + marker.size();
  port_ = static_cast<uint16_t>(std::stoi(line.substr(at)));
}

LastframeServer::~LastframeServer() {
  if (process_ && process_->running()) Stop();
}

int LastframeServer::Stop() {
  process_->Signal(SIGTERM);
  return process_->Wait();
}

}  // namespace lastframe::testing
