// The HTTP request head and bodies, read as http::Server reads them: Beast's
// request_parser with the server's header limit and per-route body limits
// (src/http/server.cpp, Session::ReadHeader/OnHeader/OnBody/OnUploadRead),
// then the request target split and percent-decoded as the server does
// (UriDecode), the query as handlers parse it (ParseQuery),
// and the header names lower-cased as the SigV4 routes read them.
//
// Input: one flags byte (bit 0: the body is a streamed upload, as PutMedia's;
// bits 1-2: the route's body limit; bits 3-4: how the bytes are cut into socket
// reads), then the bytes a client sends. Invariants: the same bytes cut
// otherwise parse to the same request and body, or both fail; a body never passes
// its limit; a Content-Length body is as long as it says; a decoded path
// encodes and decodes back to itself.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>

#include "aws/sigv4.h"
#include "core/encoding.h"
#include "fuzz_support.h"
#include "http/server.h"

using namespace lastframe;
namespace bhttp = boost::beast::http;
using boost::beast::error_code;

namespace {

const size_t kMaxHeaderBytes = http::ServerOptions{}.max_header_bytes;

struct Outcome {
  error_code header_error;
  error_code body_error;
  std::string method, target, path, raw_query;
  bool target_ok = false;
  bool keep_alive = false;
  std::string body;
  bool operator==(const Outcome&) const = default;
};

// Feeds |text| to |parser| in pieces of at most |cut| bytes, as a socket
// delivers them; stops at |until| (the header, or the whole message).
template <bool kUpload = false, class Parser, class Until>
error_code Feed(Parser& parser, std::string_view& text, size_t cut, Until until,
                std::string* upload_sink) {
  std::string buffer;  // bytes read but not yet consumed (the session's flat_buffer)
  size_t given = 0;
  char scratch[4096];
  for (;;) {
    if (until()) {
      text.remove_prefix(given - buffer.size());
      return {};
    }
    if constexpr (kUpload) {
      auto& body = parser.get().body();
      body.data = scratch;
      body.size = sizeof scratch;
    }
    error_code ec;
    size_t used = buffer.empty() ? 0 : parser.put(boost::asio::buffer(buffer), ec);
    if constexpr (kUpload) {
      upload_sink->append(scratch, sizeof scratch - parser.get().body().size);
      if (ec == bhttp::error::need_buffer) ec = {};
    }
    buffer.erase(0, used);
    if (ec && ec != bhttp::error::need_more) {
      text.remove_prefix(given - buffer.size());
      return ec;
    }
    if (ec == bhttp::error::need_more || used == 0) {
      if (given == text.size()) {  // the client closed: as Beast's read operations see it
        if (!parser.got_some()) return bhttp::error::end_of_stream;
        parser.put_eof(ec);
        text.remove_prefix(given - buffer.size());
        return ec ? ec : error_code(bhttp::error::end_of_stream);
      }
      size_t n = std::min(cut, text.size() - given);
      buffer.append(text.substr(given, n));
      given += n;
    }
  }
}

Outcome Read(std::string_view text, bool upload, uint64_t body_limit, size_t cut) {
  Outcome out;
  bhttp::request_parser<bhttp::empty_body> header;  // configured as Session::ReadHeader does
  header.header_limit(static_cast<uint32_t>(kMaxHeaderBytes));
  header.body_limit(std::numeric_limits<std::uint64_t>::max());
  out.header_error = Feed(
      header, text, cut, [&] { return header.is_header_done(); }, nullptr);
  if (out.header_error) return out;

  // Session::OnHeader
  const auto& h = header.get();
  out.method = std::string(h.method_string());
  out.target = std::string(h.target());
  http::Request request;
  out.target_ok = http::SplitTarget(out.target, request);
  out.raw_query = request.raw_query;
  if (out.target_ok) {
    out.path = request.path;
    FUZZ_CHECK(request.raw_path + (out.target.find('?') == std::string::npos ? "" : "?") +
                       request.raw_query ==
                   out.target,
               "a split target does not join back: " + out.target);
    auto again = UriDecode(UriEncode(request.path, false));
    FUZZ_CHECK(again && *again == request.path,
               "a decoded path does not survive encoding: " + request.raw_path);
  }
  if (auto query = ParseQuery(out.raw_query)) {
    // What a query parses to is what SigV4 signs: encoded canonically, it parses back.
    auto canonical = ParseQuery(aws::CanonicalQueryString(*query));
    FUZZ_CHECK(canonical && canonical->size() == query->size(), "query: " + out.raw_query);
  }
  out.keep_alive = h.keep_alive();
  aws::HeaderList lower;  // as S3Api and KvsApi read them
  for (const auto& field : h) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lower.emplace_back(std::move(name), std::string(field.value()));
  }
  (void)aws::CanonicalHeaderValue(lower, "authorization");
  auto expect = h.find(bhttp::field::expect);
  if (expect != h.end()) (void)boost::beast::iequals(expect->value(), "100-continue");
  if (!out.target_ok) return out;
  // Only chunked framing is understood (501 otherwise), as the server checks.
  if (auto te = h.find(bhttp::field::transfer_encoding);
      te != h.end() && !boost::beast::iequals(te->value(), "chunked"))
    return out;

  if (upload) {  // Session::StartUpload / OnUploadRead: streamed, unbounded
    bhttp::request_parser<bhttp::buffer_body> body(std::move(header));
    body.body_limit(std::numeric_limits<std::uint64_t>::max());
    out.body_error = Feed<true>(
        body, text, cut, [&] { return body.is_done(); }, &out.body);
  } else {
    if (auto length = header.content_length(); length && *length > body_limit) {
      out.body_error = bhttp::error::body_limit;  // refused before the body is read
      return out;
    }
    bhttp::request_parser<bhttp::string_body> body(std::move(header));
    body.body_limit(body_limit);
    out.body_error = Feed(
        body, text, cut, [&] { return body.is_done(); }, nullptr);
    out.body = body.get().body();
    FUZZ_CHECK(out.body.size() <= body_limit, "a body passed its limit");
    if (!out.body_error) {
      if (auto length = body.content_length())
        FUZZ_CHECK(out.body.size() == *length, "a body shorter or longer than its Content-Length");
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string_view text = fuzz::AsText(data + 1, size - 1);
  const bool upload = flags & 1;
  static const uint64_t kLimits[] = {http::ServerOptions{}.max_body_bytes, 16, 0, 1000};
  static const size_t kCuts[] = {1, 3, 64, 1 << 20};
  const uint64_t limit = kLimits[(flags >> 1) & 3];
  Outcome a = Read(text, upload, limit, kCuts[(flags >> 3) & 3]);
  Outcome b = Read(text, upload, limit, 1 << 20);
  // Beast parses a header eagerly when it arrives whole and waits for its end
  // otherwise, so a malformed one may fail with another error (or at the end of
  // input): what must agree is whether it fails, and everything read when not.
  FUZZ_CHECK(!a.header_error == !b.header_error,
             a.header_error.message() + " / " + b.header_error.message());
  if (a.header_error) return 0;
  FUZZ_CHECK(!a.body_error == !b.body_error,
             a.body_error.message() + " / " + b.body_error.message());
  a.header_error = b.header_error;
  a.body_error = b.body_error;
  FUZZ_CHECK(a == b, "the same bytes cut otherwise read differently");
  return 0;
}
