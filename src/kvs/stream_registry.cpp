#include "kvs/stream_registry.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

namespace lastframe::kvs {

using nlohmann::json;

namespace {

json ToJson(const StreamMeta& m) {
  json j = {{"name", m.name},
            {"device_name", m.device_name},
            {"media_type", m.media_type},
            {"kms_key_id", m.kms_key_id},
            {"creation_ms", m.creation_ms},
            {"version", m.version},
            {"image_generation", nullptr}};
  if (m.retention_hours) j["retention_hours"] = *m.retention_hours;
  if (m.image_generation) j["image_generation"] = ImageGenerationJson(*m.image_generation);
  return j;
}

}  // namespace

Result<std::unique_ptr<StreamRegistry>> StreamRegistry::Open(std::filesystem::path file) {
  std::unique_ptr<StreamRegistry> r(new StreamRegistry(file));
  if (file.empty() || !std::filesystem::exists(file)) return r;
  std::ifstream in(file);
  json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("streams") ||
      !doc["streams"].is_array())
    return InvalidArgument(file.string() + " is not a stream registry (remove it to start afresh)");
  MutexLock lock(r->mu_);  // not yet shared: taken for the analysis' sake
  for (const json& j : doc["streams"]) {
    try {
      StreamMeta m;
      m.name = j.at("name").get<std::string>();
      m.device_name = j.value("device_name", "");
      m.media_type = j.value("media_type", "");
      m.kms_key_id = j.value("kms_key_id", "");
      m.creation_ms = j.at("creation_ms").get<int64_t>();
      m.version = j.value("version", uint64_t{1});
      if (j.contains("retention_hours")) m.retention_hours = j["retention_hours"].get<int64_t>();
      if (j.contains("image_generation") && !j["image_generation"].is_null()) {
        auto config = ImageGenerationFromJson(j["image_generation"]);
        if (!config.ok())
          return InvalidArgument(file.string() + ": stream '" + m.name +
                                 "': " + config.status().message());
        m.image_generation = *config;
      }
      r->streams_[m.name] = std::move(m);
    } catch (const json::exception& e) {
      return InvalidArgument(file.string() + ": a malformed stream entry: " + e.what());
    }
  }
  return r;
}

std::optional<StreamMeta> StreamRegistry::Find(const std::string& name) const {
  MutexLock lock(mu_);
  auto it = streams_.find(name);
  if (it == streams_.end()) return std::nullopt;
  return it->second;
}

StreamMeta StreamRegistry::Ensure(const std::string& name, int64_t now_ms) {
  MutexLock lock(mu_);
  auto it = streams_.find(name);
  if (it != streams_.end()) return it->second;
  StreamMeta m;
  m.name = name;
  m.creation_ms = now_ms;
  streams_[name] = m;
  if (Status s = SaveLocked(); !s.ok()) spdlog::warn("stream registry: {}", s.message());
  return m;
}

Status StreamRegistry::Put(const StreamMeta& meta) {
  MutexLock lock(mu_);
  streams_[meta.name] = meta;
  return SaveLocked();
}

void StreamRegistry::Remove(const std::string& name) {
  MutexLock lock(mu_);
  if (streams_.erase(name) == 0) return;
  if (Status s = SaveLocked(); !s.ok()) spdlog::warn("stream registry: {}", s.message());
}

std::vector<StreamMeta> StreamRegistry::All() const {
  MutexLock lock(mu_);
  std::vector<StreamMeta> out;
  for (const auto& [name, m] : streams_) out.push_back(m);
  return out;
}

Status StreamRegistry::SaveLocked() const {
  if (file_.empty()) return Status::Ok();
  json list = json::array();
  for (const auto& [name, m] : streams_) list.push_back(ToJson(m));
  return WriteFileAtomically(file_, json{{"streams", list}}.dump(1) + "\n");
}

}  // namespace lastframe::kvs
