#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/mutex.h"
#include "core/status.h"

namespace lastframe::auth {

// The dashboard's sign-in sessions: a random token handed to a browser (in an
// HttpOnly cookie) standing for the API key it signed in with. Only the key's
// id is kept, never its role or streams: every use asks the KeyRing again, so
// a key revoked or expired in the keys file ends its sessions at once.
// Tokens are kept by their SHA-256 (a lookup by hash tells nothing through
// timing about a token's bytes), in memory only: a restart signs everyone out.
// Bounded: past |max_per_key| sessions of one key its own oldest goes (a key
// signing in over and over cannot push other keys' sessions out), past
// |max_sessions| in all the oldest of any key. Thread-safe.
class SessionStore {
 public:
  struct Options {
    int64_t ttl_ms = 12 * 3600 * 1000;  // a session's lifetime from sign-in
    size_t max_sessions = 10'000;
    size_t max_per_key = 32;
  };
  SessionStore(const Clock& clock, Options options);
  explicit SessionStore(const Clock& clock) : SessionStore(clock, Options{}) {}

  // A new session for key |key_id|: its token (256 random bits, hex), or
  // Internal when the system's random source fails.
  Result<std::string> Create(std::string key_id);
  // The key id of the live session |token| names; nullopt when there is
  // none (unknown, signed out, evicted) or it expired (then it is forgotten).
  std::optional<std::string> Find(std::string_view token);
  // Forgets session |token| (sign-out); nothing when there is none.
  void Remove(std::string_view token);
  // Sessions held now, expired ones not yet noticed included.
  size_t size() const;
  const Options& options() const { return options_; }

 private:
  struct Entry {
    std::string key_id;
    int64_t expires_ms = 0;
    std::list<std::string>::iterator order;  // its place in order_
  };
  void EraseLocked(std::unordered_map<std::string, Entry>::iterator it) LF_REQUIRES(mu_);

  const Clock& clock_;
  const Options options_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> sessions_ LF_GUARDED_BY(mu_);  // by token's SHA-256
  std::list<std::string> order_ LF_GUARDED_BY(mu_);                     // hashes, oldest first
  std::unordered_map<std::string, size_t> per_key_ LF_GUARDED_BY(mu_);  // sessions by key id
};

}  // namespace lastframe::auth
