#include "aws/aws_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "aws/credentials_file.h"
#include "support/temp_dir.h"

namespace lastframe::aws {
namespace {

using testing::TempDir;

class AwsConfigTest : public ::testing::Test {
 protected:
  AwsSources Sources() {
    AwsSources s;
    s.getenv = [this](const char* name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return s;
  }
  void SetUp() override {
    env_["HOME"] = dir_.path().string();
    std::filesystem::create_directories(dir_.path() / ".aws");
    testing::WriteFile((dir_.path() / ".aws/credentials").string(),
                       "# a comment\n[default]\naws_access_key_id = DEFAULTKEY\n"
                       "aws_secret_access_key = defaultsecret\n\n"
                       "[cams]\naws_access_key_id=CAMSKEY\naws_secret_access_key=camssecret\n"
                       "aws_session_token = camstoken\n");
    testing::WriteFile((dir_.path() / ".aws/config").string(),
                       "[default]\nregion = eu-west-1\n[profile cams]\nregion = ap-south-1\n"
                       "[profile onlyconfig]\naws_access_key_id = CFGKEY\n"
                       "aws_secret_access_key = cfgsecret\n");
  }
  TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(AwsConfigTest, FlagsWinOverEverything) {
  env_["AWS_ACCESS_KEY_ID"] = "ENVKEY";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  AwsSources s = Sources();
  s.access_key_id = "FLAGKEY";
  s.secret_access_key = "flagsecret";
  s.region = "us-west-2";
  auto r = ResolveAwsSettings(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->credentials.access_key_id, "FLAGKEY");
  EXPECT_EQ(r->credentials.secret_access_key.Reveal(), "flagsecret");
  EXPECT_EQ(r->region, "us-west-2");
  EXPECT_EQ(r->source, "flags");
}

TEST_F(AwsConfigTest, EnvironmentThenDefaultProfile) {
  env_["AWS_ACCESS_KEY_ID"] = "ENVKEY";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  env_["AWS_SESSION_TOKEN"] = "envtoken";
  env_["AWS_REGION"] = "ca-central-1";
  auto r = ResolveAwsSettings(Sources());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credentials.access_key_id, "ENVKEY");
  EXPECT_EQ(r->credentials.session_token, "envtoken");
  EXPECT_EQ(r->region, "ca-central-1");
  env_.erase("AWS_ACCESS_KEY_ID");
  env_.erase("AWS_REGION");
  env_["AWS_DEFAULT_REGION"] = "sa-east-1";
  r = ResolveAwsSettings(Sources());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credentials.access_key_id, "DEFAULTKEY");  // half a pair in env is ignored
  EXPECT_EQ(r->region, "sa-east-1");
  env_.erase("AWS_DEFAULT_REGION");
  r = ResolveAwsSettings(Sources());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->region, "eu-west-1");  // the config file's [default]
}

TEST_F(AwsConfigTest, NamedProfiles) {
  env_["AWS_ACCESS_KEY_ID"] = "ENVKEY";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  AwsSources s = Sources();
  s.profile = "cams";  // a profile named by flag wins over the environment, as in the CLI
  auto r = ResolveAwsSettings(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credentials.access_key_id, "CAMSKEY");
  EXPECT_EQ(r->credentials.session_token, "camstoken");
  EXPECT_EQ(r->region, "ap-south-1");
  s.profile = "onlyconfig";
  r = ResolveAwsSettings(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credentials.access_key_id, "CFGKEY");
  s.profile = "nosuch";
  EXPECT_EQ(ResolveAwsSettings(s).status().code(), Code::kInvalidArgument);
  env_.clear();
  env_["HOME"] = dir_.path().string();
  env_["AWS_PROFILE"] = "cams";
  r = ResolveAwsSettings(Sources());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credentials.access_key_id, "CAMSKEY");
}

TEST_F(AwsConfigTest, MissingOrBrokenFiles) {
  env_["HOME"] = (dir_.path() / "nowhere").string();
  auto r = ResolveAwsSettings(Sources());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no credentials: give --s3-access-key"), std::string::npos);
  AwsSources for_kvs = Sources();
  for_kvs.flag_prefix = "kvs";  // the error names the flags of the service asked for
  EXPECT_NE(ResolveAwsSettings(for_kvs).status().message().find("--kvs-access-key"),
            std::string::npos);
  AwsSources half = Sources();
  half.access_key_id = "ONLYKEY";
  EXPECT_FALSE(ResolveAwsSettings(half).ok());
  testing::WriteFile((dir_.path() / "broken").string(), "[default\nkey=value\n");
  env_["AWS_SHARED_CREDENTIALS_FILE"] = (dir_.path() / "broken").string();
  r = ResolveAwsSettings(Sources());
  EXPECT_NE(r.status().message().find("line 1"), std::string::npos) << r.status().message();
  EXPECT_FALSE(ParseIni("key = value outside a section\n").ok());
}

TEST(Credentials, GeneratedOnceKeptPrivate) {
  TempDir dir;
  auto path = dir.path() / "credentials.json";
  auto first = LoadOrCreateCredentials(path);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->access_key_id.size(), 20u);
  EXPECT_EQ(first->secret_access_key.Reveal().size(), 40u);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = LoadOrCreateCredentials(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->access_key_id, first->access_key_id);
  EXPECT_EQ(second->secret_access_key.Reveal(), first->secret_access_key.Reveal());
  testing::WriteFile(path.string(), "{not json");
  EXPECT_FALSE(LoadOrCreateCredentials(path).ok());
}

}  // namespace
}  // namespace lastframe::aws
