#include "auth/api_keys.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"

namespace lastframe::auth {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string Hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return Hex(digest, sizeof digest);
}

Result<std::string> RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
    return Internal("the system's random source failed");
  return Hex(buf.data(), buf.size());
}

Status Unauthenticated(std::string message) {
  return Status(Code::kUnauthenticated, std::move(message), Reason::kUnauthorized);
}

json ToJson(const ApiKey& k) {
  json j = {{"id", k.id},       {"role", RoleName(k.role)},   {"streams", k.streams},
            {"label", k.label}, {"created_ms", k.created_ms}, {"secret_sha256", k.secret_sha256}};
  if (k.expires_ms) j["expires_ms"] = *k.expires_ms;
  if (k.revoked_ms) j["revoked_ms"] = *k.revoked_ms;
  return j;
}

// A field of the wrong type makes the entry malformed. (json::value() threw
// on one, and the server re-reads a keys file that others may edit with
// --keys-file: found by fuzz/api_keys.) A revocation or expiry that cannot be
// read is never taken as none.
std::optional<ApiKey> FromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  bool ok = true;
  auto text = [&](const char* name, const char* absent) {
    auto it = j.find(name);
    if (it == j.end() && absent != nullptr) return std::string(absent);
    if (it == j.end() || !it->is_string()) {
      ok = false;
      return std::string();
    }
    return it->get<std::string>();
  };
  auto millis = [&](const char* name) -> std::optional<int64_t> {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer() ||
        (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{INT64_MAX})) {
      ok = false;
      return std::nullopt;
    }
    return it->get<int64_t>();
  };
  ApiKey k;
  k.id = text("id", nullptr);
  auto role = ParseRole(text("role", nullptr));
  k.secret_sha256 = text("secret_sha256", nullptr);
  k.streams = text("streams", "*");
  k.label = text("label", "");
  k.created_ms = millis("created_ms").value_or(0);
  k.expires_ms = millis("expires_ms");
  k.revoked_ms = millis("revoked_ms");
  if (!ok || !role || k.id.empty()) return std::nullopt;
  k.role = *role;
  return k;
}

// An exclusive lock on |file|.lock for as long as it lives.
class FileLock {
 public:
  explicit FileLock(const fs::path& file) {
    fs::path lock = file;
    lock += ".lock";
    fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kProducer:
      return "producer";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "producer") return Role::kProducer;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

bool Principal::Covers(std::string_view stream) const {
  if (admin()) return true;
  std::string name(stream);
  return ::fnmatch(streams.c_str(), name.c_str(), 0) == 0;
}

Result<std::vector<ApiKey>> LoadKeys(const fs::path& file) {
  std::ifstream in(file);
  if (!in) {
    if (!fs::exists(file)) return NotFound("no keys file at " + file.string());
    return Status(Code::kUnavailable, "cannot read " + file.string());
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseKeys(text.str(), file.string());
}

Result<std::vector<ApiKey>> ParseKeys(std::string_view text, const std::string& name) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.value("keys", json()).is_array())
    return InvalidArgument(name + " is not a keys file (JSON with \"keys\")");
  std::vector<ApiKey> keys;
  for (const json& k : j["keys"]) {
    auto key = FromJson(k);
    if (!key) return InvalidArgument(name + " holds a malformed key entry");
    keys.push_back(std::move(*key));
  }
  return keys;
}

Status SaveKeys(const fs::path& file, const std::vector<ApiKey>& keys) {
  json list = json::array();
  for (const ApiKey& k : keys) list.push_back(ToJson(k));
  return WriteFileAtomically(file, json{{"keys", list}}.dump(2) + "\n");
}

Result<NewKey> CreateKey(const fs::path& file, Role role, std::string streams,
                         std::optional<int64_t> expires_in_s, std::string label,
                         const Clock& clock) {
  if (streams.empty()) return InvalidArgument("--streams must not be empty");
  if (expires_in_s && *expires_in_s <= 0)
    return InvalidArgument("--expires-in must be a positive number of seconds");
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  FileLock lock(file);
  if (!lock.ok()) return Status(Code::kUnavailable, "cannot lock " + file.string());
  std::vector<ApiKey> keys;
  if (auto loaded = LoadKeys(file); loaded.ok())
    keys = std::move(*loaded);
  else if (loaded.status().code() != Code::kNotFound)
    return loaded.status();
  auto id = RandomHex(6);
  auto secret = RandomHex(32);  // 256 bits
  if (!id.ok()) return id.status();
  if (!secret.ok()) return secret.status();
  NewKey out;
  out.key.id = *id;
  out.key.role = role;
  out.key.streams = std::move(streams);
  out.key.label = std::move(label);
  out.key.created_ms = clock.NowMs();
  if (expires_in_s) out.key.expires_ms = out.key.created_ms + *expires_in_s * 1000;
  out.key.secret_sha256 = Sha256Hex(*secret);
  out.token = "lf_" + *id + "_" + *secret;
  keys.push_back(out.key);
  if (Status s = SaveKeys(file, keys); !s.ok()) return s;
  return out;
}

Status RevokeKey(const fs::path& file, const std::string& id, const Clock& clock) {
  FileLock lock(file);
  if (!lock.ok()) return Status(Code::kUnavailable, "cannot lock " + file.string());
  auto keys = LoadKeys(file);
  if (!keys.ok()) return keys.status();
  for (ApiKey& k : *keys)
    if (k.id == id) {
      if (!k.revoked_ms) k.revoked_ms = clock.NowMs();
      return SaveKeys(file, *keys);
    }
  return NotFound("no key with id '" + id + "' in " + file.string());
}

Result<std::optional<InitialKeys>> CreateInitialKeys(const fs::path& keys_file,
                                                     const fs::path& initial_file,
                                                     const Clock& clock) {
  if (fs::exists(keys_file)) return std::optional<InitialKeys>();
  auto admin = CreateKey(keys_file, Role::kAdmin, "*", std::nullopt, "initial admin", clock);
  if (!admin.ok()) return admin.status();
  auto viewer = CreateKey(keys_file, Role::kViewer, "*", std::nullopt, "initial viewer", clock);
  if (!viewer.ok()) return viewer.status();
  std::string text =
      "# lastframe's first keys, made at its first start. Keep this file private; list keys with\n"
      "# `lastframe keys list`, revoke one with `lastframe keys revoke ID`.\n"
      "admin " +
      admin->token +
      "\n"
      "viewer " +
      viewer->token + "\n";
  if (Status s = WriteFileAtomically(initial_file, text); !s.ok()) return s;
  return std::optional<InitialKeys>(InitialKeys{admin->token, viewer->token});
}

std::map<std::string, int64_t> LoadLastUsed(const fs::path& used_file) {
  std::map<std::string, int64_t> out;
  std::ifstream in(used_file);
  if (!in) return out;
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& [id, ms] : j.items())
    if (ms.is_number_integer()) out[id] = ms.get<int64_t>();
  return out;
}

KeyRing::KeyRing(fs::path keys_file, fs::path used_file, const Clock& clock)
    : keys_file_(std::move(keys_file)),
      used_file_(std::move(used_file)),
      clock_(clock),
      last_used_(LoadLastUsed(used_file_)) {}

Status KeyRing::Reload() {
  struct stat st {};
  if (::stat(keys_file_.c_str(), &st) != 0)
    return Status(Code::kUnavailable,
                  "cannot read " + keys_file_.string() + ": " + strerror(errno));
  // The CLI replaces the file by a rename: a new inode, whatever its time and size.
  const std::string version = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                              std::to_string(st.st_mtim.tv_sec) + "." +
                              std::to_string(st.st_mtim.tv_nsec);
  {
    MutexLock lock(mu_);
    if (version == loaded_version_) return Status::Ok();
  }
  auto keys = LoadKeys(keys_file_);
  if (!keys.ok()) return keys.status();
  std::map<std::string, ApiKey, std::less<>> by_id;
  for (ApiKey& k : *keys) by_id[k.id] = std::move(k);
  MutexLock lock(mu_);
  keys_ = std::move(by_id);
  loaded_version_ = version;
  return Status::Ok();
}

Result<Principal> KeyRing::Authenticate(std::string_view authorization) {
  if (authorization.empty())
    return Unauthenticated("credentials required: send Authorization: Bearer <key>");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
    return Unauthenticated("malformed Authorization header: expected Bearer <key>");
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.substr(0, 3) != "lf_")
    return Unauthenticated("malformed key: expected lf_<id>_<secret>");
  std::string_view rest = token.substr(3);
  size_t sep = rest.find('_');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 >= rest.size())
    return Unauthenticated("malformed key: expected lf_<id>_<secret>");
  std::string_view id = rest.substr(0, sep);
  std::string hash = Sha256Hex(rest.substr(sep + 1));
  const int64_t now = clock_.NowMs();
  MutexLock lock(mu_);
  auto it = keys_.find(id);
  // Unknown ids still cost one comparison, so timing tells nothing either way.
  const std::string& expected = it != keys_.end() ? it->second.secret_sha256 : hash;
  bool match = expected.size() == hash.size() &&
               CRYPTO_memcmp(expected.data(), hash.data(), hash.size()) == 0 && it != keys_.end();
  if (!match) return Unauthenticated("unknown or wrong key");
  return UseLocked(it->second, now);
}

Result<Principal> KeyRing::AuthenticateId(std::string_view key_id) {
  const int64_t now = clock_.NowMs();
  MutexLock lock(mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return Unauthenticated("the key of this session is gone");
  return UseLocked(it->second, now);
}

Result<Principal> KeyRing::UseLocked(const ApiKey& key, int64_t now) {
  if (key.revoked_ms) return Unauthenticated("this key was revoked");
  if (key.expires_ms && *key.expires_ms <= now) return Unauthenticated("this key has expired");
  // Kept to the second: a write a second at most, however busy the key.
  int64_t& used = last_used_[key.id];
  if (now - used >= 1000) {
    used = now;
    used_dirty_ = true;
  }
  return Principal{key.id, key.role, key.streams};
}

Status KeyRing::SaveLastUsed() {
  json j = json::object();
  {
    MutexLock lock(mu_);
    if (!used_dirty_) return Status::Ok();
    used_dirty_ = false;
    for (const auto& [id, ms] : last_used_) j[id] = ms;
  }
  return WriteFileAtomically(used_file_, j.dump() + "\n");
}

size_t KeyRing::size() const {
  MutexLock lock(mu_);
  return keys_.size();
}

}  // namespace lastframe::auth
