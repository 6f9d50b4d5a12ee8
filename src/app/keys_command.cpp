#include "app/keys_command.h"

#include <spdlog/fmt/fmt.h>
#include <sys/stat.h>

#include <iostream>
#include <optional>

#include "auth/api_keys.h"
#include "core/clock.h"
#include "core/time_format.h"

namespace lastframe::app {
namespace {

int Create(const std::filesystem::path& file, const KeysConfig& k, const Clock& clock) {
  auto role = auth::ParseRole(k.role);
  auto made = auth::CreateKey(file, *role, k.streams,
                              k.expires_in_s > 0 ? std::optional(k.expires_in_s) : std::nullopt,
                              k.label, clock);
  if (!made.ok()) {
    std::cerr << "lastframe keys create: " << made.status().message() << "\n";
    return 1;
  }
  std::cout << made->token << "\n" << std::flush;  // the only line on stdout: scripts read it
  std::cerr << "created " << auth::RoleName(made->key.role) << " key " << made->key.id
            << " for streams '" << made->key.streams << "' in " << file.string()
            << " (the token is shown once)\n";
  return 0;
}

int Revoke(const std::filesystem::path& file, const KeysConfig& k, const Clock& clock) {
  Status s = auth::RevokeKey(file, k.id, clock);
  if (!s.ok()) {
    std::cerr << "lastframe keys revoke: " << s.message() << "\n";
    return 1;
  }
  std::cerr << "revoked key " << k.id << " (a running server refuses it within 2 s)\n";
  return 0;
}

int Init(const std::filesystem::path& file, const KeysConfig& k, const Clock& clock) {
  const std::filesystem::path initial = std::filesystem::path(k.data_dir) / "initial-keys.txt";
  auto made = auth::CreateInitialKeys(file, initial, clock);
  if (!made.ok()) {
    std::cerr << "lastframe keys init: " << made.status().message() << "\n";
    return 1;
  }
  std::cerr << (*made ? "created an admin and a viewer key: " : "keys exist already: ")
            << initial.string() << "\n";
  return 0;
}

int List(const std::filesystem::path& file, const KeysConfig& k, const Clock& clock) {
  auto keys = auth::LoadKeys(file);
  if (!keys.ok()) {
    std::cerr << "lastframe keys list: " << keys.status().message() << "\n";
    return 1;
  }
  // The server keeps last-used times in its data directory, apart from a shared keys file.
  auto used = auth::LoadLastUsed(std::filesystem::path(k.data_dir) / "keys-used.json");
  auto when = [](std::optional<int64_t> ms) {
    return ms ? FormatIso8601Ms(*ms) : std::string("-");
  };
  std::cout << "ID            ROLE      STREAMS          CREATED                   EXPIRES         "
               "          "
               "LAST USED                 STATE    LABEL\n";
  for (const auth::ApiKey& key : *keys) {
    auto last = used.find(key.id);
    std::string state = key.revoked_ms                                       ? "revoked"
                        : key.expires_ms && *key.expires_ms <= clock.NowMs() ? "expired"
                                                                             : "active";
    std::cout << fmt::format(
        "{:<13} {:<9} {:<16} {:<25} {:<25} {:<25} {:<8} {}\n", key.id, auth::RoleName(key.role),
        key.streams, FormatIso8601Ms(key.created_ms), when(key.expires_ms),
        when(last == used.end() ? std::nullopt : std::optional(last->second)), state, key.label);
  }
  return 0;
}

}  // namespace

int RunKeysCommand(std::string_view command, const KeysConfig& config) {
  // Keys are the owner's (and its group's), never the world's.
  ::umask(027);
  const Clock& clock = SystemClock::Get();
  const std::filesystem::path file = KeysFileOf(config.data_dir, config.keys_file);
  if (command == "create") return Create(file, config, clock);
  if (command == "revoke") return Revoke(file, config, clock);
  if (command == "init") return Init(file, config, clock);
  return List(file, config, clock);
}

}  // namespace lastframe::app
