#include "auth/session_store.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/encoding.h"

namespace lastframe::auth {
namespace {

// The map's key for |token|: its SHA-256, so that finding a session compares
// digests, never the token's own bytes.
std::string Digest(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

}  // namespace

SessionStore::SessionStore(const Clock& clock, Options options)
    : clock_(clock), options_(options) {}

Result<std::string> SessionStore::Create(std::string key_id) {
  unsigned char random[32];  // 256 bits
  if (RAND_bytes(random, sizeof random) != 1) return Internal("the system's random source failed");
  std::string token =
      HexEncode(std::string_view(reinterpret_cast<const char*>(random), sizeof random));
  std::string hash = Digest(token);
  const int64_t now = clock_.NowMs();
  MutexLock lock(mu_);
  // This key's own oldest first (sessions are made oldest first, so the list's order is theirs).
  for (auto it = order_.begin(); it != order_.end() && per_key_[key_id] >= options_.max_per_key;) {
    auto entry = sessions_.find(*it++);
    if (entry->second.key_id == key_id) EraseLocked(entry);
  }
  while (!order_.empty() && sessions_.size() >= options_.max_sessions)
    EraseLocked(sessions_.find(order_.front()));
  order_.push_back(hash);
  ++per_key_[key_id];
  sessions_[hash] = Entry{std::move(key_id), now + options_.ttl_ms, std::prev(order_.end())};
  return token;
}

std::optional<std::string> SessionStore::Find(std::string_view token) {
  if (token.empty()) return std::nullopt;
  std::string hash = Digest(token);
  const int64_t now = clock_.NowMs();
  MutexLock lock(mu_);
  auto it = sessions_.find(hash);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires_ms <= now) {
    EraseLocked(it);
    return std::nullopt;
  }
  return it->second.key_id;
}

void SessionStore::Remove(std::string_view token) {
  std::string hash = Digest(token);
  MutexLock lock(mu_);
  auto it = sessions_.find(hash);
  if (it != sessions_.end()) EraseLocked(it);
}

size_t SessionStore::size() const {
  MutexLock lock(mu_);
  return sessions_.size();
}

void SessionStore::EraseLocked(std::unordered_map<std::string, Entry>::iterator it) {
  auto count = per_key_.find(it->second.key_id);
  if (count != per_key_.end() && --count->second == 0) per_key_.erase(count);
  order_.erase(it->second.order);
  sessions_.erase(it);
}

}  // namespace lastframe::auth
