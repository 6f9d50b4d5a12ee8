// lastframe: the newest frame of any live stream, as a signed URL.
// This file reads the command line, prepares the process and hands over to
// app::Service (serve) or app::RunKeysCommand (keys).

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include "app/config.h"
#include "app/keys_command.h"
#include "app/log_format.h"
#include "app/service.h"
#include "media/ffmpeg.h"

namespace lastframe::app {
namespace {

// What a server process needs of its environment, whatever it serves.
void PrepareProcess(const ServeConfig& config) {
  // Fragments, objects and keys are the owner's (and its group's), never the world's.
  ::umask(027);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  media::QuietFfmpegLogs();
  // A file-size limit (ulimit -f) must fail a write, as a full disk does, not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
  // Every connection, fragment file and decoder takes a descriptor: use all we may.
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &fds) != 0) spdlog::warn("cannot raise the descriptor limit");
  }
}

// `lastframe serve`: runs until SIGINT or SIGTERM, which drain it.
int Serve(const ServeConfig& config) {
  PrepareProcess(config);
  int exit_code = 0;
  auto service = Service::Create(config, &exit_code);
  if (!service.ok()) {
    spdlog::critical("{}", service.status().message());
    return exit_code;
  }
  if (Status s = (*service)->Start(); !s.ok()) {
    spdlog::critical("{}", s.message());
    return kExitCannotServe;
  }
  // Signals are awaited on a thread of their own: Stop only asks the server
  // to drain, and Run, here, returns once it has.
  boost::asio::io_context signal_context;
  boost::asio::signal_set signals(signal_context, SIGINT, SIGTERM);
  signals.async_wait([&service](boost::system::error_code e, int sig) {
    if (e) return;
    spdlog::info("signal {}: draining", sig);
    (*service)->Stop();
  });
  std::thread signal_thread([&signal_context] { signal_context.run(); });
  (*service)->Run();
  signal_context.stop();
  signal_thread.join();
  return 0;
}

}  // namespace
}  // namespace lastframe::app

int main(int argc, char** argv) {
  namespace app = lastframe::app;
  CLI::App cli{"lastframe: the newest frame of any live stream, as a signed URL"};
  cli.require_subcommand(1);
  app::ServeConfig serve_config;
  CLI::App* serve = cli.add_subcommand("serve", "run the HTTP service");
  app::AddServeFlags(*serve, serve_config);

  app::KeysConfig keys_config;
  CLI::App* keys = cli.add_subcommand("keys", "create, list and revoke API keys");
  keys->require_subcommand(1);
  CLI::App* keys_create = keys->add_subcommand("create", "make a key; prints its token, once");
  app::AddKeysFileFlags(*keys_create, keys_config);
  keys_create->add_option("--role", keys_config.role, "admin, producer or viewer")
      ->required()
      ->check(CLI::IsMember({"admin", "producer", "viewer"}));
  keys_create->add_option("--streams", keys_config.streams, "the streams it covers (a glob)")
      ->capture_default_str();
  keys_create->add_option("--expires-in", keys_config.expires_in_s, "seconds it is valid")
      ->check(CLI::Range(int64_t{1}, int64_t{100} * 365 * 86400));
  keys_create->add_option("--label", keys_config.label, "a note to tell keys apart");
  CLI::App* keys_list = keys->add_subcommand("list", "list keys (never their secrets)");
  app::AddKeysFileFlags(*keys_list, keys_config);
  CLI::App* keys_revoke = keys->add_subcommand("revoke", "revoke a key by its id");
  app::AddKeysFileFlags(*keys_revoke, keys_config);
  keys_revoke->add_option("id", keys_config.id, "the key's id (lf_<id>_...)")->required();
  CLI::App* keys_init = keys->add_subcommand(
      "init", "make the first admin and viewer keys (DATA_DIR/initial-keys.txt) if there are none");
  app::AddKeysFileFlags(*keys_init, keys_config);
  cli.add_subcommand("version", "print the version")->callback([] {
    std::cout << "lastframe " << app::kVersion << "\n";
  });
  CLI11_PARSE(cli, argc, argv);

  if (serve->parsed()) {
    // The file of --config fills in what neither a flag nor LASTFRAME_* gave.
    if (lastframe::Status s = app::ApplyConfigFile(*serve, serve_config); !s.ok()) {
      std::cerr << "lastframe serve: " << s.message() << "\n";
      return app::kExitBadConfig;
    }
    // Lines are written by a thread of the logger's own: an I/O thread never
    // waits on a slow stderr (a full pipe, a busy journal). Past 8 Ki queued
    // lines (about 3 MiB, allocated up front) the oldest are dropped, and the
    // count is logged at exit.
    spdlog::init_thread_pool(8192, 1);
    auto logger = spdlog::create_async_nb<spdlog::sinks::stderr_color_sink_mt>("lastframe");
    spdlog::set_default_logger(logger);
    app::UseLogFormat(*logger, serve_config.log_format == "json" ? lastframe::log::Format::kJson
                                                                 : lastframe::log::Format::kText);
    int rc = app::Serve(serve_config);
    if (size_t dropped = spdlog::thread_pool()->overrun_counter(); dropped > 0)
      spdlog::warn("{} log lines dropped: the log was written slower than lines came", dropped);
    spdlog::shutdown();  // writes what is queued
    return rc;
  }
  for (CLI::App* c : {keys_create, keys_list, keys_revoke, keys_init})
    if (c->parsed()) return app::RunKeysCommand(c->get_name(), keys_config);
  return 0;
}
