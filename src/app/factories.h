#pragma once

// The small factories Service builds the modules with, one concern each, and
// the two pieces of wiring it owns (DeferredApplication, RepeatingTimer).
// Internal to app/: the order they are called in is Service::Create's.

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "auth/api_keys.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/status.h"
#include "http/api.h"
#include "http/server.h"
#include "ingest/pull_source.h"
#include "kvs/kvs_source.h"
#include "kvs/stream_registry.h"
#include "objects/local_store.h"
#include "objects/s3_store.h"
#include "store/archived_source.h"
#include "store/fragment_archive.h"
#include "store/shared_archive.h"
#include "store/stream_store.h"

namespace lastframe::app {
namespace fs = std::filesystem;

// |why|, its message led by |context| ("--config: ..."): what the user is told.
Status Explained(const std::string& context, const Status& why);
// |why| with the message Status::ToString writes ("StreamNotFound: ...").
Status Named(const Status& why);

// Lets the server bind (and learn its port) before the routes, which need the
// public URL, exist. Nothing is served before Set: the server is not running.
class DeferredApplication final : public http::Application {
 public:
  void Set(http::Application* app) { app_ = app; }
  void Handle(http::Request r, http::Respond respond) override {
    app_->Handle(std::move(r), std::move(respond));
  }
  bool IsUpload(const http::Request& r) const override { return app_->IsUpload(r); }
  std::variant<std::unique_ptr<http::UploadSink>, http::Response> StartUpload(
      const http::Request& r, http::UploadEvents events) override {
    return app_->StartUpload(r, std::move(events));
  }
  std::optional<http::Response> Admit(const http::Request& r) override { return app_->Admit(r); }
  std::optional<uint64_t> BodyLimit(const http::Request& r) const override {
    return app_->BodyLimit(r);
  }
  http::Response TooLarge(const http::Request& r, uint64_t limit) const override {
    return app_->TooLarge(r, limit);
  }
  http::RouteInfo RouteOf(const http::Request& r) const override { return app_->RouteOf(r); }

 private:
  http::Application* app_ = nullptr;
};

// |tick| every |period| on the server's I/O threads, until Cancel. The timer
// lives on a strand of its own, so Cancel, from any thread, never races a tick.
class RepeatingTimer {
 public:
  RepeatingTimer(boost::asio::io_context& ioc, std::chrono::seconds period,
                 std::function<void()> tick)
      : strand_(boost::asio::make_strand(ioc)),
        timer_(strand_),
        period_(period),
        tick_(std::move(tick)) {}
  void Start() {
    boost::asio::post(strand_, [this] { Schedule(); });
  }
  void Cancel() {
    boost::asio::post(strand_, [this] {
      cancelled_ = true;
      timer_.cancel();
    });
  }

 private:
  void Schedule() {
    if (cancelled_) return;
    timer_.expires_after(period_);
    timer_.async_wait([this](boost::system::error_code e) {
      if (e || cancelled_) return;
      tick_();
      Schedule();
    });
  }

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  const std::chrono::seconds period_;
  const std::function<void()> tick_;
  bool cancelled_ = false;  // on the strand
};

// Where images go: the embedded store (served by our own S3 routes) or a remote S3.
struct ObjectStores {
  std::unique_ptr<objects::LocalStore> local;
  std::unique_ptr<objects::S3Store> remote;
  std::string description;  // for the log
  objects::ObjectStore& get() const {
    return local ? static_cast<objects::ObjectStore&>(*local) : *remote;
  }
};

// Access control: API keys from the keys file, re-read as the CLI changes it
// (no ring with --auth off), and the first keys when this start made them.
struct Keys {
  std::unique_ptr<auth::KeyRing> ring;
  std::optional<auth::InitialKeys> first;
};

// The data directory, made if need be, as an absolute path.
Result<fs::path> MakeDataDir(const std::string& flag);

// The embedded store's key pair: the flags', else the data directory's own
// (credentials.json, made at the first start).
Result<aws::Credentials> StoreCredentials(const ServeSettings& s, const fs::path& data_dir);

// The server's options; its limits are added to |limits|.
http::ServerOptions ServerOptionsFor(const ServeSettings& s, Limits& limits);

// The host as URLs name it: this host for "any address", IPv6 in brackets.
std::string UrlHost(const std::string& host);

// Deletes durable fragments past their retention and past the size bounds.
void TrimArchive(store::FragmentArchive& archive, const store::StreamStore& streams,
                 const ServeSettings& s, const Clock& clock);

// Durable fragments (DATA_DIR/fragments), trimmed and recovered into
// |streams|, which then persists new ones there; null with --no-persist.
Result<std::unique_ptr<store::FragmentArchive>> OpenArchive(const ServeSettings& s,
                                                            const fs::path& data_dir,
                                                            store::StreamStore& streams,
                                                            const Clock& clock);

// The shared archive (--archive s3://...): its bucket, reached with the --s3-*
// flags, and the archive over it; both null without --archive.
struct SharedArchiveParts {
  std::unique_ptr<objects::S3Store> objects;
  std::unique_ptr<store::SharedArchive> archive;
  std::string description;  // for the log
};
Result<SharedArchiveParts> OpenSharedArchive(const ServeSettings& s, const Clock& clock);

// Kinesis Video's view of the streams (ARNs, versions, image generation), and
// in |streams| every stream it names, with the retention it asked for.
Result<std::unique_ptr<kvs::StreamRegistry>> OpenRegistry(const ServeSettings& s,
                                                          const fs::path& data_dir,
                                                          store::StreamStore& streams);

// The cameras --config names (none without it).
Result<std::vector<ingest::PullOptions>> LoadConfiguredPulls(const ServeSettings& s);

// Where images go: the embedded store under DATA_DIR/objects, its expired
// objects swept (--store local), or a remote S3 (--store s3://...).
Result<ObjectStores> OpenObjectStores(const ServeSettings& s, const fs::path& data_dir,
                                      const std::string& public_url,
                                      const aws::Credentials& credentials, const Clock& clock);

// Where snapshots read video when not from our own store: a Kinesis Video
// endpoint (--source kvs); null for --source local.
Result<std::unique_ptr<kvs::KvsSource>> OpenKvsSource(const ServeSettings& s, const Clock& clock);

// Cameras pulled under --pull-allow and --pull-deny, those of |configured|
// started already.
Result<std::unique_ptr<ingest::PullSources>> MakePulls(const ServeSettings& s,
                                                       store::StreamStore& streams, Limits& limits,
                                                       std::vector<ingest::PullOptions> configured);

// The API keys (see Keys); at a first start without --keys-file, an admin and
// a viewer key, their tokens in DATA_DIR/initial-keys.txt.
Result<Keys> OpenKeys(const ServeSettings& s, const fs::path& data_dir, const Clock& clock);

// The API's options; its limits are added to |limits|, and /metrics shows the
// Kinesis Video source's counters when there is one.
http::ApiOptions ApiOptionsFor(const ServeSettings& s, Limits& limits,
                               const kvs::KvsSource* kvs_source);

}  // namespace lastframe::app
