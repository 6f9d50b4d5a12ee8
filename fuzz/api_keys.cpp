// API keys: bearer tokens as KeyRing::Authenticate reads an Authorization
// header ("Bearer lf_<id>_<secret>"), and the keys file (auth::ParseKeys),
// which a shared --keys-file lets other hands edit.
//
// Input: line 1 an Authorization header value; the rest a keys file. The ring
// holds fixed keys (an admin, a viewer of "lobby*", a revoked and an expired
// one). Invariants: a token is accepted only if it is exactly a live key's,
// for that key's role and streams; every refusal is Unauthenticated; a keys
// file that parses is saved and loaded back the same, and its globs match.

#include "auth/api_keys.h"

#include "aws/sigv4.h"
#include "core/clock.h"
#include "fuzz_support.h"

using namespace lastframe;

namespace {

constexpr int64_t kNowMs = 1'795'617'013'000;

struct Known {
  std::string token;
  auth::ApiKey key;
  bool live;
};

struct World {
  ManualClock clock{kNowMs};
  fuzz::ScratchDir dir;
  std::vector<Known> known;
  std::unique_ptr<auth::KeyRing> ring;
};
World* world = nullptr;

Known Make(const std::string& id, const std::string& secret, auth::Role role, std::string streams,
           std::optional<int64_t> expires, std::optional<int64_t> revoked) {
  auth::ApiKey k;
  k.id = id;
  k.role = role;
  k.streams = std::move(streams);
  k.created_ms = kNowMs - 86'400'000;
  k.expires_ms = expires;
  k.revoked_ms = revoked;
  k.secret_sha256 = aws::Sha256Hex(secret);
  return {"lf_" + id + "_" + secret, k, !revoked && (!expires || *expires > kNowMs)};
}

std::string Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

bool SameKeys(const std::vector<auth::ApiKey>& a, const std::vector<auth::ApiKey>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].role != b[i].role || a[i].streams != b[i].streams ||
        a[i].label != b[i].label || a[i].created_ms != b[i].created_ms ||
        a[i].expires_ms != b[i].expires_ms || a[i].revoked_ms != b[i].revoked_ms ||
        a[i].secret_sha256 != b[i].secret_sha256)
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  world = new World();
  world->known = {
      Make("a1b2c3d4e5f6", "8e1f00aa", auth::Role::kAdmin, "*", std::nullopt, std::nullopt),
      Make("0f0f0f0f0f0f", "lobbysecret", auth::Role::kViewer, "lobby*", std::nullopt,
           std::nullopt),
      Make("dead00000000", "revoked", auth::Role::kProducer, "*", std::nullopt, kNowMs - 1000),
      Make("0ld000000000", "expired", auth::Role::kViewer, "*", kNowMs, std::nullopt)};
  std::vector<auth::ApiKey> keys;
  for (const Known& k : world->known) keys.push_back(k.key);
  const auto file = world->dir.path() / "keys.json";
  Status saved = auth::SaveKeys(file, keys);
  FUZZ_CHECK(saved.ok(), saved.ToString());
  world->ring =
      std::make_unique<auth::KeyRing>(file, world->dir.path() / "keys-used.json", world->clock);
  Status loaded = world->ring->Reload();
  FUZZ_CHECK(loaded.ok(), loaded.ToString());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 2);
  const std::string authorization = fuzz::Field(fields, 0);
  auto who = world->ring->Authenticate(authorization);
  if (who.ok()) {
    // "Bearer " in any case, then exactly a live key's token, blanks around it aside.
    const std::string token = Trim(std::string_view(authorization).substr(7));
    const Known* match = nullptr;
    for (const Known& k : world->known)
      if (k.token == token) match = &k;
    FUZZ_CHECK(match != nullptr, "a token that is no key's was accepted: " + authorization);
    FUZZ_CHECK(match->live, "a revoked or expired key was accepted");
    FUZZ_CHECK(who->key_id == match->key.id && who->role == match->key.role &&
                   who->streams == match->key.streams,
               "the principal is not the key's");
  } else {
    FUZZ_CHECK(who.status().code() == Code::kUnauthenticated, who.status().ToString());
  }

  const std::string text = fuzz::Field(fields, 1);
  auto parsed = auth::ParseKeys(text, "keys.json");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == Code::kInvalidArgument, parsed.status().ToString());
    return 0;
  }
  for (const auth::ApiKey& k : *parsed) {
    FUZZ_CHECK(!k.id.empty(), "a key without an id");
    auth::Principal p{k.id, k.role, k.streams};
    (void)p.MayView("lobby1");
    (void)p.MayPush("cam-2.north_gate");
  }
  const auto file = world->dir.path() / "roundtrip.json";
  Status saved = auth::SaveKeys(file, *parsed);
  FUZZ_CHECK(saved.ok(), saved.ToString());
  auto again = auth::LoadKeys(file);
  FUZZ_CHECK(again.ok(), again.status().ToString());
  FUZZ_CHECK(SameKeys(*parsed, *again), "a keys file does not survive being saved and loaded");
  return 0;
}
