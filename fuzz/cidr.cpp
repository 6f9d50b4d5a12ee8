// CIDR lists (--pull-allow, --pull-deny) and the pull policy's verdicts.
//
// Input: line 1 the allow list, line 2 the deny list (CIDRs separated by ','),
// every further line an address to check. Invariants: a parsed range prints
// and parses back to itself and contains its own address; a verdict follows
// the lists (deny wins, then allow, then the default refusals).

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "fuzz_support.h"
#include "ingest/pull_policy.h"

using namespace lastframe;
using lastframe::fuzz::Field;
using lastframe::fuzz::Fields;

namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string Print(const ingest::Cidr& c) {
  char buf[INET6_ADDRSTRLEN] = {0};
  bool v4 =
      c.prefix >= 96 &&
      std::all_of(c.address.begin(), c.address.begin() + 10, [](uint8_t b) { return b == 0; }) &&
      c.address[10] == 0xff && c.address[11] == 0xff;
  if (v4) {
    inet_ntop(AF_INET, &c.address[12], buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(c.prefix - 96);
  }
  inet_ntop(AF_INET6, c.address.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(c.prefix);
}

std::vector<ingest::Cidr> ParseList(const std::string& line) {
  std::vector<ingest::Cidr> out;
  for (const std::string& text : SplitComma(line)) {
    auto c = ingest::ParseCidr(text);
    if (!c.ok()) continue;
    FUZZ_CHECK(text.find('\0') == std::string::npos, "a range with a NUL byte was accepted");
    FUZZ_CHECK(c->prefix >= 0 && c->prefix <= 128, text);
    FUZZ_CHECK(c->Contains(c->address), "a range does not contain its own address: " + text);
    std::string printed = Print(*c);
    auto again = ingest::ParseCidr(printed);
    FUZZ_CHECK(again.ok(), "'" + text + "' prints as '" + printed + "', which does not parse");
    FUZZ_CHECK(again->address == c->address && again->prefix == c->prefix,
               "'" + text + "' does not round trip through '" + printed + "'");
    out.push_back(*c);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = Fields(fuzz::AsText(data, size), 16);
  std::vector<ingest::Cidr> allow = ParseList(Field(fields, 0));
  std::vector<ingest::Cidr> deny = ParseList(Field(fields, 1));
  ingest::PullPolicy policy(allow, deny);
  for (size_t i = 2; i < fields.size(); ++i) {
    std::string text(fields[i]);
    sockaddr_storage ss{};
    std::array<uint8_t, 16> bytes{};
    if (sockaddr_in* v4 = reinterpret_cast<sockaddr_in*>(&ss);
        inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      bytes[10] = bytes[11] = 0xff;
      std::memcpy(&bytes[12], &v4->sin_addr, 4);
    } else if (sockaddr_in6* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
               inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      std::memcpy(bytes.data(), &v6->sin6_addr, 16);
    } else {
      continue;
    }
    Status verdict = policy.Check(reinterpret_cast<const sockaddr*>(&ss));
    bool denied =
        std::any_of(deny.begin(), deny.end(), [&](const auto& c) { return c.Contains(bytes); });
    bool allowed =
        std::any_of(allow.begin(), allow.end(), [&](const auto& c) { return c.Contains(bytes); });
    if (denied) FUZZ_CHECK(!verdict.ok(), "a denied address passed: " + text);
    if (!denied && allowed) FUZZ_CHECK(verdict.ok(), "an allowed address was refused: " + text);
    if (!verdict.ok())
      FUZZ_CHECK(verdict.reason() == Reason::kPullAddressDenied, verdict.ToString());
  }
  return 0;
}
