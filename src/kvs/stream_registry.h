#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "kvs/image_generation.h"

namespace lastframe::kvs {

// What Kinesis Video's control plane says of a stream beyond its media:
// device, media type, creation time (part of its ARN), version, the retention
// asked for, and its image generation configuration.
struct StreamMeta {
  std::string name;
  std::string device_name;
  std::string media_type;
  std::string kms_key_id;
  int64_t creation_ms = 0;
  uint64_t version = 1;  // grows with every change, as CurrentVersion checks expect
  // DataRetentionInHours as set through the API; nullopt for streams made
  // otherwise (a push, a pull), which keep the server's retention.
  std::optional<int64_t> retention_hours;
  std::optional<ImageGenerationConfig> image_generation;  // as last set, DISABLED included
};

// The streams' metadata, kept in one JSON file in the data directory
// (replaced atomically on each change) so that ARNs and versions survive
// restarts. Thread-safe.
class StreamRegistry {
 public:
  // |file| empty: memory only.
  static Result<std::unique_ptr<StreamRegistry>> Open(std::filesystem::path file);

  std::optional<StreamMeta> Find(const std::string& name) const;
  // The stream's metadata, made (and kept) now if it has none.
  StreamMeta Ensure(const std::string& name, int64_t now_ms);
  // Adds or replaces |meta|, then saves.
  Status Put(const StreamMeta& meta);
  void Remove(const std::string& name);
  std::vector<StreamMeta> All() const;

 private:
  explicit StreamRegistry(std::filesystem::path file) : file_(std::move(file)) {}
  Status SaveLocked() const LF_REQUIRES(mu_);

  const std::filesystem::path file_;
  mutable Mutex mu_;
  std::map<std::string, StreamMeta> streams_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe::kvs
