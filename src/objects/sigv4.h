#pragma once

// TEMPORARY forwarding header (issue 13): remove when kvs_api/api/main include aws/ directly
// (http/params.{h,cpp} read it too). SigV4 lives in aws/, the encodings in core/.

#include "aws/sigv4.h"
#include "core/encoding.h"

namespace lastframe::objects {

using aws::CanonicalHeaderValue;
using aws::CanonicalQueryString;
using aws::CanonicalRequest;
using aws::Credentials;
using aws::HeaderList;
using aws::HmacSha256;
using aws::kMaxPresignExpiresSeconds;
using aws::PresignedUrlExpiresAtMs;
using aws::Sha256Hex;
using aws::SigV4;
using lastframe::Base64Decode;
using lastframe::Base64Encode;
using lastframe::HexEncode;
using lastframe::ParseQuery;
using lastframe::QueryParams;
using lastframe::UriDecode;
using lastframe::UriEncode;

}  // namespace lastframe::objects
