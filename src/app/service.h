#pragma once

// The composition root of `lastframe serve`: every module a ServeConfig names,
// built by small factories (service.cpp) in the order that makes each safe to
// use, the maintenance timers, and the order it all stops in.

#include <cstdint>
#include <memory>
#include <string>

#include "app/config.h"
#include "core/status.h"

namespace lastframe::app {

// `lastframe serve`'s exit statuses when it cannot start.
inline constexpr int kExitBadConfig = 2;    // the configuration cannot be served
inline constexpr int kExitCannotServe = 1;  // the address cannot be listened on (or --demo fails)

// One lastframe server in this process:
//
//   int exit_code = 0;
//   auto service = Service::Create(config, &exit_code);  // or log, exit exit_code
//   if (Status s = (*service)->Start(); !s.ok()) ...     // exit kExitCannotServe
//   (*service)->Run();                                   // until Stop, from any thread
//
// Signals are the caller's: main calls Stop on SIGINT and SIGTERM.
class Service {
 public:
  // Checks |config| (ValidateServeConfig), then opens everything it names:
  // the data directory and the embedded store's key pair; the listening
  // socket, before the rest, because the URLs the modules hand out name its
  // port (--listen HOST:0 takes any free one); the fragments recovered from
  // disk and the streams the Kinesis Video registry names; the pulls of
  // --config; the object store; the stream source; the workers, snapshots,
  // pulls, Kinesis Video service, API keys and the API. Nothing is served
  // before Run. On failure the message is what the user is told, and
  // *exit_code (when not null) is kExitCannotServe if the socket could not be
  // had, else kExitBadConfig.
  static Result<std::unique_ptr<Service>> Create(const ServeConfig& config,
                                                 int* exit_code = nullptr);
  // Destroys the modules newest first. After Run they are stopped already;
  // without Run (a failed Start) they stop as they go, as a failed start did.
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Starts the maintenance timers (each second: retention, idle decoders, the
  // keys file, idle Kinesis Video streams; each 30 s: the embedded store's
  // expiry sweep and the durable fragments' trim) and --demo's producer, and
  // says where the service listens. Call once, before Run. Fails only when the
  // demo producer cannot start ("demo: ...").
  Status Start();

  // The port listened on (the one taken, for --listen HOST:0).
  uint16_t port() const;
  // http://HOST:PORT as clients on this host reach it.
  const std::string& listen_url() const;

  // Serves on the I/O threads until Stop, then stops the modules in their
  // order (service.cpp says why each goes when it does) and logs "stopped".
  // Blocks; call once.
  void Run();
  // Makes Run return: cancels the timers, stops accepting, lets in-flight
  // requests finish (up to the server's drain timeout). Thread-safe and
  // idempotent; before Run, Run returns at once.
  void Stop();

 private:
  struct Parts;
  explicit Service(std::unique_ptr<Parts> parts);
  // What Run does after the server stopped, in order.
  void Shutdown();

  std::unique_ptr<Parts> parts_;
};

}  // namespace lastframe::app
