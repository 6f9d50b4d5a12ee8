#pragma once

#include <filesystem>

#include "aws/sigv4.h"
#include "core/status.h"

namespace lastframe::aws {

// The embedded store's own key pair: read from |path| (JSON
// {"access_key_id","secret_access_key"}), or generated from the system's
// random source and written there, readable by the owner only (0600).
Result<Credentials> LoadOrCreateCredentials(const std::filesystem::path& path);

}  // namespace lastframe::aws
