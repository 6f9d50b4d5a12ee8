#include "aws/aws_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace lastframe::aws {
namespace {

std::string Trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string_view::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return std::string(s.substr(a, b - a + 1));
}

// The file's sections, or an empty map when it does not exist.
Result<IniFile> ReadIni(const std::string& path) {
  std::ifstream in(path);
  if (!in) return IniFile{};
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = ParseIni(ss.str());
  if (!parsed.ok()) return InvalidArgument(path + ": " + parsed.status().message());
  return parsed;
}

const std::string* Get(const IniFile& ini, const std::string& section, const std::string& key) {
  auto s = ini.find(section);
  if (s == ini.end()) return nullptr;
  auto k = s->second.find(key);
  return k == s->second.end() || k->second.empty() ? nullptr : &k->second;
}

}  // namespace

Result<IniFile> ParseIni(std::string_view text) {
  IniFile out;
  std::string section;
  bool in_section = false;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        return InvalidArgument("line " + std::to_string(line_no) + ": unterminated [section]");
      section = Trim(std::string_view(line).substr(1, line.size() - 2));
      in_section = true;
      out[section];
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || !in_section)
      return InvalidArgument("line " + std::to_string(line_no) +
                             ": expected 'key = value' inside a [section]");
    out[section][Trim(std::string_view(line).substr(0, eq))] =
        Trim(std::string_view(line).substr(eq + 1));
  }
  return out;
}

Result<AwsSettings> ResolveAwsSettings(const AwsSources& sources) {
  auto env = [&](const char* name) -> std::string {
    if (sources.getenv) return sources.getenv(name).value_or("");
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  AwsSettings out;
  std::string home = env("HOME");
  std::string credentials_path = env("AWS_SHARED_CREDENTIALS_FILE");
  if (credentials_path.empty()) credentials_path = home + "/.aws/credentials";
  std::string config_path = env("AWS_CONFIG_FILE");
  if (config_path.empty()) config_path = home + "/.aws/config";
  bool profile_by_flag = !sources.profile.empty();
  std::string profile = profile_by_flag ? sources.profile : env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::string config_section = profile == "default" ? "default" : "profile " + profile;

  auto credentials_file = ReadIni(credentials_path);
  if (!credentials_file.ok()) return credentials_file.status();
  auto config_file = ReadIni(config_path);
  if (!config_file.ok()) return config_file.status();
  if (profile_by_flag && !credentials_file->count(profile) && !config_file->count(config_section))
    return InvalidArgument("the AWS profile '" + profile + "' is in neither " + credentials_path +
                           " nor " + config_path);

  if (!sources.access_key_id.empty() || !sources.secret_access_key.empty()) {
    if (sources.access_key_id.empty() || sources.secret_access_key.empty())
      return InvalidArgument("give both the access key and the secret key, or neither");
    out.credentials = {sources.access_key_id, Secret(sources.secret_access_key),
                       sources.session_token};
    out.source = "flags";
  } else if (!profile_by_flag && !env("AWS_ACCESS_KEY_ID").empty() &&
             !env("AWS_SECRET_ACCESS_KEY").empty()) {
    out.credentials = {env("AWS_ACCESS_KEY_ID"), Secret(env("AWS_SECRET_ACCESS_KEY")),
                       env("AWS_SESSION_TOKEN")};
    out.source = "environment";
  } else {
    for (const auto& [ini, section, path] :
         {std::tuple{&*credentials_file, profile, credentials_path},
          std::tuple{&*config_file, config_section, config_path}}) {
      const std::string* id = Get(*ini, section, "aws_access_key_id");
      const std::string* secret = Get(*ini, section, "aws_secret_access_key");
      if (id && secret) {
        const std::string* token = Get(*ini, section, "aws_session_token");
        out.credentials = {*id, Secret(*secret), token ? *token : ""};
        out.source = path + " [" + section + "]";
        break;
      }
    }
    if (out.source.empty())
      return InvalidArgument(
          "no credentials: give --" + sources.flag_prefix + "-access-key and --" +
          sources.flag_prefix +
          "-secret-key, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add the profile '" +
          profile + "' to " + credentials_path);
  }

  out.region = sources.region;
  if (out.region.empty()) out.region = env("AWS_REGION");
  if (out.region.empty()) out.region = env("AWS_DEFAULT_REGION");
  if (out.region.empty())
    if (const std::string* r = Get(*config_file, config_section, "region")) out.region = *r;
  if (out.region.empty()) out.region = "us-east-1";
  return out;
}

}  // namespace lastframe::aws
