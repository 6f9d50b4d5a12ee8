#include "aws/credentials_file.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"

namespace lastframe::aws {
namespace {

std::string RandomString(size_t n, std::string_view alphabet) {
  std::string out;
  unsigned char buf[64];
  while (out.size() < n) {
    RAND_bytes(buf, sizeof buf);
    for (unsigned char b : buf) {
      // Rejection sampling keeps every character equally likely.
      if (b >= 256 - 256 % alphabet.size()) continue;
      out.push_back(alphabet[b % alphabet.size()]);
      if (out.size() == n) break;
    }
  }
  return out;
}

}  // namespace

Result<Credentials> LoadOrCreateCredentials(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.contains("access_key_id") || !j.contains("secret_access_key") ||
        !j["access_key_id"].is_string() || !j["secret_access_key"].is_string())
      return InvalidArgument("credentials file " + path.string() +
                             " is not valid JSON with "
                             "access_key_id and secret_access_key");
    return Credentials{j["access_key_id"], Secret(j["secret_access_key"].get<std::string>()), ""};
  }
  Credentials c;
  c.access_key_id = "LF" + RandomString(18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  c.secret_access_key =
      Secret(RandomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"));
  nlohmann::json j = {{"access_key_id", c.access_key_id},
                      {"secret_access_key", c.secret_access_key.Reveal()}};
  // Whole or absent: a first start on a full disk must not leave an empty file behind.
  if (Status s = WriteFileAtomically(path, j.dump(2) + "\n"); !s.ok()) return s;
  return c;
}

}  // namespace lastframe::aws
