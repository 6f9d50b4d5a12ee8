#pragma once

// Byte encodings shared by the protocols we speak: hex, base64, and the
// percent-encoding of URI paths and queries. Pure functions, no dependency.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lastframe {

// Decoded query parameters, in the order they came.
using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Lower-case hex of |bytes|.
std::string HexEncode(std::string_view bytes);
// |s| with A-Z made a-z (header names, algorithm names); other bytes kept.
std::string AsciiLower(std::string_view s);
// The bytes of |hex| (either case); nullopt unless it is whole hex digit pairs.
std::optional<std::string> HexDecode(std::string_view hex);
// Standard base64 with padding (Content-MD5, JSON blobs and tokens).
std::string Base64Encode(std::string_view bytes);
// nullopt unless |text| is padded standard base64: non-empty, and exactly the
// text Base64Encode makes of the bytes it decodes to (no blanks, no '=' inside,
// no stray bits in the last character).
std::optional<std::string> Base64Decode(std::string_view text);

// URI-encodes as RFC 3986 (and SigV4) asks: A-Z a-z 0-9 - . _ ~ stay, every
// other byte becomes %XX (upper case); '/' stays unless |encode_slash|.
std::string UriEncode(std::string_view s, bool encode_slash);
// Decodes %XX escapes ('+' stays '+', as S3 reads paths). nullopt if malformed.
std::optional<std::string> UriDecode(std::string_view s);
// Parses "a=1&b=x%20y" into decoded pairs; a key without '=' has an empty
// value. nullopt if an escape is malformed. In queries '+' means space.
std::optional<QueryParams> ParseQuery(std::string_view raw);

}  // namespace lastframe
