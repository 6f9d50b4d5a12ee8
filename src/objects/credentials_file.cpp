#include "objects/credentials_file.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lastframe::objects {
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
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status(Code::kUnavailable, "cannot create " + path.string() + ": " + strerror(errno));
  std::string text = j.dump(2) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Status(Code::kUnavailable, "cannot write " + path.string());
  return c;
}

}  // namespace lastframe::objects
