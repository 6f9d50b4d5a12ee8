#pragma once

#include <filesystem>

#include "core/status.h"
#include "objects/sigv4.h"

namespace lastframe::objects {

// The embedded store's own key pair: read from |path| (JSON
// {"access_key_id","secret_access_key"}), or generated from the system's
// random source and written there, readable by the owner only (0600).
Result<Credentials> LoadOrCreateCredentials(const std::filesystem::path& path);

}  // namespace lastframe::objects
