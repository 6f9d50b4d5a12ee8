#include "auth/session_store.h"

#include <gtest/gtest.h>

#include <set>

#include "auth/api_keys.h"
#include "support/temp_dir.h"

namespace lastframe::auth {
namespace {

constexpr int64_t kT0 = 1'800'000'000'000;

TEST(SessionStore, ATokenIs256RandomBitsAndFindsItsKeyUntilItExpires) {
  ManualClock clock(kT0);
  SessionStore store(clock, {.ttl_ms = 60'000, .max_sessions = 10});
  auto token = store.Create("k1");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 64u);  // 32 bytes, hex
  EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos);
  auto other = store.Create("k1");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*token, *other);  // each sign-in its own session
  EXPECT_EQ(store.Find(*token), "k1");
  clock.Advance(59'999);
  EXPECT_EQ(store.Find(*token), "k1");
  clock.Advance(1);
  EXPECT_EQ(store.Find(*token), std::nullopt);
  EXPECT_EQ(store.size(), 1u);  // the expired one is forgotten once seen
}

TEST(SessionStore, UnknownForgedAndSignedOutTokensFindNothing) {
  ManualClock clock(kT0);
  SessionStore store(clock);
  auto token = store.Create("k1");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(store.Find(""), std::nullopt);
  EXPECT_EQ(store.Find("nope"), std::nullopt);
  std::string forged = *token;
  forged.back() = forged.back() == '0' ? '1' : '0';
  EXPECT_EQ(store.Find(forged), std::nullopt);
  EXPECT_EQ(store.Find(token->substr(0, 63)), std::nullopt);
  store.Remove(forged);  // another token's sign-out ends nothing else
  EXPECT_EQ(store.Find(*token), "k1");
  store.Remove(*token);
  EXPECT_EQ(store.Find(*token), std::nullopt);
  EXPECT_EQ(store.size(), 0u);
  store.Remove(*token);  // twice is harmless
}

TEST(SessionStore, PastItsBoundTheOldestSessionsGo) {
  ManualClock clock(kT0);
  SessionStore store(clock, {.ttl_ms = 3'600'000, .max_sessions = 3});
  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) {
    auto t = store.Create("k" + std::to_string(i));
    ASSERT_TRUE(t.ok());
    tokens.push_back(*t);
    clock.Advance(1);
  }
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.Find(tokens[0]), std::nullopt);
  EXPECT_EQ(store.Find(tokens[1]), std::nullopt);
  EXPECT_EQ(store.Find(tokens[2]), "k2");
  EXPECT_EQ(store.Find(tokens[4]), "k4");
  // A sign-out makes room without evicting anyone.
  store.Remove(tokens[3]);
  ASSERT_TRUE(store.Create("k5").ok());
  EXPECT_EQ(store.Find(tokens[2]), "k2");
  EXPECT_EQ(store.size(), 3u);
}

TEST(SessionStore, OneKeySigningInOverAndOverPushesOutOnlyItsOwnSessions) {
  ManualClock clock(kT0);
  SessionStore store(clock, {.ttl_ms = 3'600'000, .max_sessions = 10, .max_per_key = 2});
  auto other = store.Create("other");
  ASSERT_TRUE(other.ok());
  std::vector<std::string> mine;
  for (int i = 0; i < 50; ++i) {
    auto t = store.Create("busy");
    ASSERT_TRUE(t.ok());
    mine.push_back(*t);
  }
  EXPECT_EQ(store.Find(*other), "other");
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.Find(mine[47]), std::nullopt);
  EXPECT_EQ(store.Find(mine[48]), "busy");
  EXPECT_EQ(store.Find(mine[49]), "busy");
  // Its sessions signed out or expired give their places back.
  store.Remove(mine[48]);
  store.Remove(mine[49]);
  ASSERT_TRUE(store.Create("busy").ok());
  EXPECT_EQ(store.size(), 2u);
}

// A session stands for its key as the keys file has it now: revoked or
// expired there, the session is refused (the store keeps only the key's id).
TEST(SessionStore, ASessionIsCheckedAgainstTheKeyRingOnEveryUse) {
  testing::TempDir dir;
  ManualClock clock(kT0);
  const auto file = dir.path() / "keys.json";
  auto viewer = CreateKey(file, Role::kViewer, "cam*", 120, "", clock);
  auto admin = CreateKey(file, Role::kAdmin, "*", std::nullopt, "", clock);
  ASSERT_TRUE(viewer.ok() && admin.ok());
  KeyRing ring(file, dir.path() / "used.json", clock);
  ASSERT_TRUE(ring.Reload().ok());
  auto who = ring.AuthenticateId(viewer->key.id);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->role, Role::kViewer);
  EXPECT_EQ(who->streams, "cam*");
  EXPECT_FALSE(ring.AuthenticateId("nosuchkey").ok());
  clock.Advance(120'000);
  auto expired = ring.AuthenticateId(viewer->key.id);
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  ASSERT_TRUE(RevokeKey(file, admin->key.id, clock).ok());
  clock.Advance(1000);
  ASSERT_TRUE(ring.Reload().ok());
  auto revoked = ring.AuthenticateId(admin->key.id);
  ASSERT_FALSE(revoked.ok());
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos);
}

}  // namespace
}  // namespace lastframe::auth
