#include "auth/api_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "support/temp_dir.h"

namespace lastframe::auth {
namespace {

class ApiKeysTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::filesystem::path file_ = dir_.path() / "keys.json";
  ManualClock clock_{1'800'000'000'000};
};

TEST_F(ApiKeysTest, ATokenVerifiesAsItsKeyAndOnlyItsHashIsKept) {
  auto made = CreateKey(file_, Role::kProducer, "cam*", std::nullopt, "door", clock_);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const std::string& token = made->token;
  ASSERT_EQ(token.rfind("lf_" + made->key.id + "_", 0), 0u);
  EXPECT_EQ(made->key.id.find('_'), std::string::npos);
  EXPECT_GE(token.size() - made->key.id.size() - 4, 32u);  // >= 128 bits of hex secret
  std::string stored = testing::ReadFile(file_.string());
  EXPECT_EQ(stored.find(token.substr(token.rfind('_') + 1)), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  KeyRing ring(file_, dir_.path() / "used.json", clock_);
  ASSERT_TRUE(ring.Reload().ok());
  auto who = ring.Authenticate("Bearer " + token);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->role, Role::kProducer);
  EXPECT_TRUE(who->MayPush("cam1"));
  EXPECT_TRUE(who->MayView("cam1"));
  EXPECT_FALSE(who->MayView("lobby"));
  EXPECT_FALSE(who->admin());
  ASSERT_TRUE(ring.SaveLastUsed().ok());
  EXPECT_EQ(LoadLastUsed(dir_.path() / "used.json").at(made->key.id), clock_.NowMs());
}

TEST_F(ApiKeysTest, BadTokensSayWhy) {
  auto made = CreateKey(file_, Role::kViewer, "*", 60, "", clock_);
  ASSERT_TRUE(made.ok());
  KeyRing ring(file_, dir_.path() / "used.json", clock_);
  ASSERT_TRUE(ring.Reload().ok());
  auto why = [&](const std::string& header) {
    auto r = ring.Authenticate(header);
    EXPECT_FALSE(r.ok()) << header;
    EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(why("").find("required"), std::string::npos);
  EXPECT_NE(why("Basic abc").find("malformed"), std::string::npos);
  EXPECT_NE(why("Bearer xyz").find("malformed"), std::string::npos);
  EXPECT_NE(why("Bearer lf_" + made->key.id + "_").find("malformed"), std::string::npos);
  std::string wrong = made->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_NE(why("Bearer " + wrong).find("unknown or wrong"), std::string::npos);
  EXPECT_NE(why("Bearer lf_nosuchid_" + std::string(64, 'a')).find("unknown"), std::string::npos);
  clock_.Advance(61'000);
  EXPECT_NE(why("Bearer " + made->token).find("expired"), std::string::npos);
}

TEST_F(ApiKeysTest, RevocationAndNewKeysAreSeenOnReload) {
  auto first = CreateKey(file_, Role::kAdmin, "*", std::nullopt, "", clock_);
  ASSERT_TRUE(first.ok());
  KeyRing ring(file_, dir_.path() / "used.json", clock_);
  ASSERT_TRUE(ring.Reload().ok());
  ASSERT_TRUE(ring.Authenticate("Bearer " + first->token).ok());
  auto second = CreateKey(file_, Role::kViewer, "*", std::nullopt, "", clock_);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(RevokeKey(file_, first->key.id, clock_).ok());
  ASSERT_TRUE(ring.Reload().ok());
  auto revoked = ring.Authenticate("Bearer " + first->token);
  ASSERT_FALSE(revoked.ok());
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos);
  EXPECT_TRUE(ring.Authenticate("Bearer " + second->token).ok());
  EXPECT_EQ(RevokeKey(file_, "nope", clock_).code(), Code::kNotFound);
}

TEST_F(ApiKeysTest, ConcurrentCreatesLoseNothing) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back(
        [&] { ASSERT_TRUE(CreateKey(file_, Role::kViewer, "*", {}, "", clock_).ok()); });
  for (auto& t : threads) t.join();
  auto keys = LoadKeys(file_);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 8u);
}

TEST_F(ApiKeysTest, ABrokenFileIsRefusedAndKeepsTheKeysLoaded) {
  auto made = CreateKey(file_, Role::kViewer, "*", std::nullopt, "", clock_);
  ASSERT_TRUE(made.ok());
  KeyRing ring(file_, dir_.path() / "used.json", clock_);
  ASSERT_TRUE(ring.Reload().ok());
  testing::WriteFile(file_.string(), "{not json");
  EXPECT_FALSE(ring.Reload().ok());
  EXPECT_TRUE(ring.Authenticate("Bearer " + made->token).ok());
  EXPECT_EQ(CreateKey(file_, Role::kViewer, "*", {}, "", clock_).status().code(),
            Code::kInvalidArgument);
}

TEST_F(ApiKeysTest, AFieldOfTheWrongTypeIsAMalformedEntryNotACrash) {
  // Found by fuzz/api_keys: json::value() threw on a label or streams that was
  // not a string, through KeyRing::Reload (a server re-reads a shared file).
  const std::string key = R"("id":"k1","role":"viewer","secret_sha256":"ab")";
  for (const std::string extra :
       {R"("label":5)", R"("streams":["*"])", R"("created_ms":"1")", R"("created_ms":1.5)",
        R"("expires_ms":"soon")", R"("revoked_ms":true)", R"("revoked_ms":18446744073709551615)"}) {
    auto keys = ParseKeys(R"({"keys":[{)" + key + "," + extra + "}]}", "keys.json");
    EXPECT_EQ(keys.status().code(), Code::kInvalidArgument) << extra;
  }
  auto fine = ParseKeys(R"({"keys":[{)" + key + R"(,"expires_ms":null,"label":"door"}]})", "k");
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(fine->at(0).label, "door");
  EXPECT_EQ(fine->at(0).streams, "*");
  EXPECT_FALSE(fine->at(0).expires_ms);
  auto made = CreateKey(file_, Role::kViewer, "*", std::nullopt, "", clock_);
  ASSERT_TRUE(made.ok());
  KeyRing ring(file_, dir_.path() / "used.json", clock_);
  ASSERT_TRUE(ring.Reload().ok());
  testing::WriteFile(file_.string(), R"({"keys":[{)" + key + R"(,"label":5}]})");
  EXPECT_EQ(ring.Reload().code(), Code::kInvalidArgument);
  EXPECT_TRUE(ring.Authenticate("Bearer " + made->token).ok());  // the keys loaded stay
}

}  // namespace
}  // namespace lastframe::auth
