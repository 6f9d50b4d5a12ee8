#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"

namespace lastframe::auth {

// What a key may do. Each role includes the ones before it.
enum class Role { kViewer = 0, kProducer = 1, kAdmin = 2 };
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

// One API key as kept in the keys file. The secret itself is never kept:
// only its SHA-256 (secrets are 256 random bits, so a slow hash adds nothing).
struct ApiKey {
  std::string id;  // [a-z0-9], no '_': tokens are lf_<id>_<secret>
  Role role = Role::kViewer;
  std::string streams = "*";  // a glob (fnmatch) over stream names
  std::string label;
  int64_t created_ms = 0;
  std::optional<int64_t> expires_ms;
  std::optional<int64_t> revoked_ms;
  std::string secret_sha256;  // lower-case hex
};

// The keys file (JSON). NotFound when it does not exist.
Result<std::vector<ApiKey>> LoadKeys(const std::filesystem::path& file);
// The keys file's text; |name| is what messages call the file.
Result<std::vector<ApiKey>> ParseKeys(std::string_view text, const std::string& name);
// Writes |keys| to |file| atomically (a 0600 temp file, synced, renamed).
Status SaveKeys(const std::filesystem::path& file, const std::vector<ApiKey>& keys);

struct NewKey {
  ApiKey key;
  std::string token;  // shown once; nowhere stored
};
// Adds a key to |file| (created if absent), under an exclusive lock on
// |file|.lock so that concurrent CLI calls never lose each other's writes.
Result<NewKey> CreateKey(const std::filesystem::path& file, Role role, std::string streams,
                         std::optional<int64_t> expires_in_s, std::string label,
                         const Clock& clock);
// Marks key |id| revoked. NotFound if there is no such key.
Status RevokeKey(const std::filesystem::path& file, const std::string& id, const Clock& clock);

// A first start's keys: when |keys_file| does not exist yet, creates one admin
// and one viewer key and writes both tokens to |initial_file| (0600), so the
// first run needs no step of its own. Returns {admin, viewer} tokens, or
// nullopt when keys existed already.
struct InitialKeys {
  std::string admin_token;
  std::string viewer_token;
};
Result<std::optional<InitialKeys>> CreateInitialKeys(const std::filesystem::path& keys_file,
                                                     const std::filesystem::path& initial_file,
                                                     const Clock& clock);

// Who a request comes from, once its key is verified.
struct Principal {
  std::string key_id;
  Role role = Role::kViewer;
  std::string streams = "*";
  bool admin() const { return role == Role::kAdmin; }
  // Whether the key's glob covers |stream| (admins: every stream).
  bool Covers(std::string_view stream) const;
  bool MayView(std::string_view stream) const { return Covers(stream); }
  bool MayPush(std::string_view stream) const { return role >= Role::kProducer && Covers(stream); }
};

// The running server's keys: verifies bearer tokens, sees the CLI's changes
// to the keys file (Reload), and keeps when each key was last used in a file
// of its own (|used_file|), so that the server never writes the keys file.
// Thread-safe.
class KeyRing {
 public:
  KeyRing(std::filesystem::path keys_file, std::filesystem::path used_file, const Clock& clock);

  // Reads the keys file again if it changed since the last read. A file that
  // cannot be read keeps the keys already loaded (and says why).
  Status Reload();
  // Verifies an Authorization header value ("Bearer lf_<id>_<secret>").
  // kUnauthenticated with a message saying which: missing, malformed, unknown,
  // revoked, expired. Secrets are compared in constant time.
  Result<Principal> Authenticate(std::string_view authorization);
  // The key |key_id| as it stands now, for a credential that stands for a key
  // verified before (a dashboard session): kUnauthenticated when the key is
  // gone from the file, revoked or expired. Counts as a use of the key.
  Result<Principal> AuthenticateId(std::string_view key_id);
  // Writes the last-used times to |used_file| if any changed.
  Status SaveLastUsed();
  size_t size() const;

 private:
  // |key|, verified, as a Principal, unless revoked or expired at |now|; notes the use.
  Result<Principal> UseLocked(const ApiKey& key, int64_t now) LF_REQUIRES(mu_);

  const std::filesystem::path keys_file_;
  const std::filesystem::path used_file_;
  const Clock& clock_;
  mutable Mutex mu_;
  std::map<std::string, ApiKey, std::less<>> keys_ LF_GUARDED_BY(mu_);  // by id
  // Inode, size and mtime of the file last read.
  std::string loaded_version_ LF_GUARDED_BY(mu_);
  std::map<std::string, int64_t> last_used_ LF_GUARDED_BY(mu_);
  bool used_dirty_ LF_GUARDED_BY(mu_) = false;
};

// Reads the last-used times a server wrote (id -> epoch ms); empty if none.
std::map<std::string, int64_t> LoadLastUsed(const std::filesystem::path& used_file);

}  // namespace lastframe::auth
