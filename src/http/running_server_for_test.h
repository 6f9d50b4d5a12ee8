#pragma once

// Tests of http/: a Server on a loopback port, running on its own thread.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>

#include "http/server.h"

namespace lastframe::http {

class RunningServer {
 public:
  RunningServer(ServerOptions options, Application& app) : server_(std::move(options), app) {
    Status listening = server_.Listen();
    EXPECT_TRUE(listening.ok()) << listening.ToString();
    thread_ = std::thread([this] { server_.Run(); });
  }
  ~RunningServer() {
    server_.Stop();
    thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
  uint16_t port() const { return server_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

 private:
  Server server_;
  std::thread thread_;
};

}  // namespace lastframe::http
