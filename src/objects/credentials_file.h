#pragma once

// TEMPORARY forwarding header (issue 13): remove when kvs_api/api/main include aws/ directly.

#include "aws/credentials_file.h"
#include "objects/sigv4.h"

namespace lastframe::objects {

using aws::LoadOrCreateCredentials;

}  // namespace lastframe::objects
