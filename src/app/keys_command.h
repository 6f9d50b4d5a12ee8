#pragma once

// `lastframe keys create|list|revoke|init`: the keys file, as running servers share it.

#include <string_view>

#include "app/config.h"

namespace lastframe::app {

// Runs `lastframe keys |command|` ("create", "list", "revoke" or "init") with
// |config|: what it made or found on stdout (create: the token alone, for
// scripts), what it did on stderr. Returns the process's exit status: 0, or 1
// when the keys file cannot be read or changed.
int RunKeysCommand(std::string_view command, const KeysConfig& config);

}  // namespace lastframe::app
