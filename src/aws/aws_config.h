#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.h"
#include "core/status.h"

namespace lastframe::aws {

// Where AWS credentials and the region may come from. Empty strings are unset.
struct AwsSources {
  // The service the settings are for, as its flags are named ("s3", "kvs"),
  // so that an error names the flags the user has.
  std::string flag_prefix = "s3";
  std::string access_key_id;  // flags
  std::string secret_access_key;
  std::string session_token;
  std::string region;
  std::string profile;
  // The environment, injected so that tests need not touch the process's.
  std::function<std::optional<std::string>(const char* name)> getenv;
};

struct AwsSettings {
  Credentials credentials;
  std::string region;
  std::string source;  // where the credentials came from, for the log: "flags", "environment", ...
};

// Resolves credentials and region the way the AWS CLI does:
// credentials from flags; else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN (unless a profile was named by flag); else the profile
// (flag, AWS_PROFILE, or "default") in the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials), then in the config file
// (AWS_CONFIG_FILE, ~/.aws/config, section "[profile NAME]").
// Region: flag, AWS_REGION, AWS_DEFAULT_REGION, the profile's "region", us-east-1.
// InvalidArgument when no complete key pair is found, or a named profile does not exist.
Result<AwsSettings> ResolveAwsSettings(const AwsSources& sources);

using IniFile = std::map<std::string, std::map<std::string, std::string>>;
// Parses the AWS CLI's INI files: [section], "key = value", '#' and ';' comments.
// Malformed lines are InvalidArgument, naming the line.
Result<IniFile> ParseIni(std::string_view text);

}  // namespace lastframe::aws
