#include "app/service.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http_client.h"
#include "support/media_check.h"
#include "support/temp_dir.h"

namespace lastframe::app {
namespace {

using testing::HttpGet;
using testing::HttpRequest;
using testing::HttpResult;
using testing::TempDir;

// Every line logged while it is the default logger, debug ones included.
class LogLines final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  // The index of the first line containing |text|, or -1.
  int Find(const std::string& text) {
    std::vector<std::string> all = lines();
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i].find(text) != std::string::npos) return static_cast<int>(i);
    return -1;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("service_test", log_);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  // A server on a free loopback port, its data in |data_dir|, light on threads.
  static ServeConfig Config(const std::string& data_dir) {
    ServeConfig c;
    c.listen = "127.0.0.1:0";
    c.data_dir = data_dir;
    c.io_threads = 2;
    c.workers = 2;
    return c;
  }

  static std::unique_ptr<Service> Started(const ServeConfig& config) {
    int exit_code = -1;
    auto service = Service::Create(config, &exit_code);
    EXPECT_TRUE(service.ok()) << service.status().ToString();
    if (!service.ok()) return nullptr;
    EXPECT_EQ(exit_code, 0);
    EXPECT_NE((*service)->port(), 0);
    Status started = (*service)->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return std::move(*service);
  }

  std::shared_ptr<LogLines> log_ = std::make_shared<LogLines>();
  std::shared_ptr<spdlog::logger> previous_;
};

// Repeats |probe| until it holds or |timeout| passes; whether it held.
bool Eventually(const std::function<bool()>& probe,
                std::chrono::seconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (probe()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return probe();
}

// Service::Run on a thread of its own. However the test ends, a failed
// assertion included, the service is stopped and Run has returned before the
// service goes: a test that fails reports it instead of hanging.
class Running {
 public:
  explicit Running(Service& service)
      : service_(service), run_(std::async(std::launch::async, [&service] { service.Run(); })) {}
  ~Running() {
    service_.Stop();
    run_.wait();
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

  bool Returned(std::chrono::seconds within) {
    return run_.wait_for(within) == std::future_status::ready;
  }

 private:
  Service& service_;
  std::future<void> run_;
};

TEST_F(ServiceTest, ServesTheDemoThenStopsInOrderAndItsFragmentsOutliveIt) {
  TempDir dir;
  ServeConfig config = Config(dir.file("data"));
  config.auth = "off";
  config.demo = true;
  std::unique_ptr<Service> service = Started(config);
  ASSERT_TRUE(service);
  const uint16_t port = service->port();
  EXPECT_EQ(service->listen_url(), "http://127.0.0.1:" + std::to_string(port));
  auto run = std::make_unique<Running>(*service);

  HttpResult health = HttpGet(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(nlohmann::json::parse(health.body, nullptr, false)["status"], "ok") << health.body;
  // The demo camera's newest frame, as a signed URL to the embedded store.
  nlohmann::json snapshot;
  ASSERT_TRUE(Eventually([&] {
    HttpResult r = HttpGet(port, "/snapshot?stream_name=demo");
    if (r.status != 200) return false;
    snapshot = nlohmann::json::parse(r.body, nullptr, false);
    return true;
  }));
  uint16_t image_port = 0;
  std::string image_target;
  testing::SplitUrl(snapshot["body"].get<std::string>(), &image_port, &image_target);
  EXPECT_EQ(image_port, port);
  HttpResult image = HttpGet(image_port, image_target);
  ASSERT_EQ(image.status, 200) << image.body;
  testing::RgbImage picture = testing::DecodeJpeg(image.body);
  EXPECT_EQ(picture.width, 640);
  EXPECT_EQ(picture.height, 480);
  // At least one fragment ended (a second begun), for the restart below.
  ASSERT_TRUE(Eventually([&] {
    auto info = nlohmann::json::parse(HttpGet(port, "/v1/streams/demo").body, nullptr, false);
    return info.is_object() && info["fragment_count"].is_number() && info["fragment_count"] >= 2;
  }));

  EXPECT_FALSE(run->Returned(std::chrono::seconds(0))) << "Run returned before Stop";
  EXPECT_TRUE(testing::ThisProcessListensOn(port));
  service->Stop();
  service->Stop();  // idempotent
  ASSERT_TRUE(run->Returned(std::chrono::seconds(30))) << "Run did not return after Stop";
  EXPECT_FALSE(testing::ThisProcessListensOn(port)) << "still listening after Run returned";
  // Drained first, then each module before what it feeds, and only then "stopped".
  std::vector<int> order;
  for (const char* line : {"listening on", "draining", "stopping GetMedia followers",
                           "stopping the Kinesis Video source", "stopping the demo producer",
                           "stopping pulled sources", "stopping workers",
                           "stopping object store uploads", "stopped"}) {
    order.push_back(log_->Find(line));
    EXPECT_GE(order.back(), 0) << "not logged: " << line;
  }
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()))
      << ::testing::PrintToString(order) << "\n"
      << ::testing::PrintToString(log_->lines());
  run.reset();
  service.reset();

  // The pushed fragments were synced as they came: a new service on the same
  // data directory has the stream back, and serves its last frame.
  config.demo = false;
  service = Started(config);
  ASSERT_TRUE(service);
  run = std::make_unique<Running>(*service);
  auto info =
      nlohmann::json::parse(HttpGet(service->port(), "/v1/streams/demo").body, nullptr, false);
  ASSERT_TRUE(info.is_object());
  EXPECT_GE(info["fragment_count"], 1) << info.dump();
  EXPECT_EQ(HttpGet(service->port(), "/snapshot?stream_name=demo").status, 200);
  service->Stop();
  ASSERT_TRUE(run->Returned(std::chrono::seconds(30)));
}

TEST_F(ServiceTest, FirstStartMakesKeysAndRoutesNeedOne) {
  TempDir dir;
  std::unique_ptr<Service> service = Started(Config(dir.file("data")));
  ASSERT_TRUE(service);
  Running run(*service);
  const uint16_t port = service->port();
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200);  // open to probes
  EXPECT_EQ(HttpGet(port, "/v1/streams").status, 401);
  // The first start wrote an admin and a viewer key, one a line.
  std::ifstream initial(dir.file("data") + "/initial-keys.txt");
  std::string line, viewer;
  while (std::getline(initial, line))
    if (line.rfind("viewer ", 0) == 0) viewer = line.substr(7);
  ASSERT_FALSE(viewer.empty());
  HttpResult listed =
      HttpRequest(port, "GET", "/v1/streams", "", {{"Authorization", "Bearer " + viewer}});
  EXPECT_EQ(listed.status, 200) << listed.body;
  HttpResult refused = HttpRequest(port, "POST", "/v1/streams", R"({"name":"x","url":"rtsp://x"})",
                                   {{"Authorization", "Bearer " + viewer}});
  EXPECT_EQ(refused.status, 403) << refused.body;  // a viewer adds no sources
  service->Stop();
  ASSERT_TRUE(run.Returned(std::chrono::seconds(30)));
}

TEST_F(ServiceTest, StopBeforeRunMakesRunReturnAtOnce) {
  TempDir dir;
  ServeConfig config = Config(dir.file("data"));
  config.auth = "off";
  std::unique_ptr<Service> service = Started(config);
  ASSERT_TRUE(service);
  service->Stop();
  Running run(*service);
  ASSERT_TRUE(run.Returned(std::chrono::seconds(10)));
  EXPECT_GE(log_->Find("stopped"), 0);
}

TEST_F(ServiceTest, BadConfigurationIsRefusedBeforeAnythingIsOpened) {
  TempDir dir;
  struct Case {
    std::function<void(ServeConfig&)> set;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {[](ServeConfig& f) { f.listen = "8080"; }, "--listen must be HOST:PORT, got '8080'"},
           {[](ServeConfig& f) { f.max_render_pixels = "huge"; },
            "--max-render-pixels must be WIDTHxHEIGHT, e.g. 3840x2160"},
           {[](ServeConfig& f) { f.access_key = "AKID"; },
            "--access-key and --secret-key go together"},
           {[](ServeConfig& f) { f.bucket = "snapshot"; },
            "--bucket 'snapshot' would hide the API's /snapshot routes: choose another name"},
       }) {
    ServeConfig config = Config(dir.file("data"));
    c.set(config);
    int exit_code = -1;
    auto service = Service::Create(config, &exit_code);
    ASSERT_FALSE(service.ok());
    EXPECT_EQ(service.status().message(), c.message);
    EXPECT_EQ(exit_code, kExitBadConfig);
    EXPECT_FALSE(std::filesystem::exists(dir.file("data"))) << "opened before the check";
  }
  // A configuration that only the disk refuses is the configuration's fault too.
  testing::WriteFile(dir.file("file"), "");
  int exit_code = -1;
  auto service = Service::Create(Config(dir.file("file") + "/data"), &exit_code);
  ASSERT_FALSE(service.ok());
  EXPECT_EQ(service.status().message().rfind("cannot create data directory ", 0), 0u)
      << service.status().message();
  EXPECT_EQ(exit_code, kExitBadConfig);
}

TEST_F(ServiceTest, AnAddressInUseIsNotTheConfigurationsFault) {
  TempDir dir;
  testing::SilentListener taken;
  ServeConfig config = Config(dir.file("data"));
  config.listen = "127.0.0.1:" + std::to_string(taken.port());
  int exit_code = -1;
  auto service = Service::Create(config, &exit_code);
  ASSERT_FALSE(service.ok());
  EXPECT_NE(service.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << service.status().message();
  EXPECT_EQ(exit_code, kExitCannotServe);
}

}  // namespace
}  // namespace lastframe::app
