#pragma once

// TEMPORARY forwarding header (issue 13): remove when kvs_api/api/main include aws/ directly.

#include "aws/aws_config.h"
#include "objects/sigv4.h"

namespace lastframe::objects {

using aws::AwsSettings;
using aws::AwsSources;
using aws::IniFile;
using aws::ParseIni;
using aws::ResolveAwsSettings;

}  // namespace lastframe::objects
