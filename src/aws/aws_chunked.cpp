#include "aws/aws_chunked.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "core/encoding.h"

namespace lastframe::aws {
namespace {

constexpr std::string_view kSignedName = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
constexpr std::string_view kSignedTrailerName = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
constexpr std::string_view kUnsignedTrailerName = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
constexpr std::string_view kChunkSignaturePrefix = "chunk-signature=";
constexpr std::string_view kTrailerSignatureName = "x-amz-trailer-signature";
// Hex SHA-256 of "": the chunk string to sign's fixed line.
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Status Framing(std::string message) {
  return Status(Code::kInvalidArgument, "aws-chunked body: " + std::move(message),
                Reason::kInvalidRequest);
}
Status BadSize(std::string message) {
  return Status(Code::kInvalidArgument, "aws-chunked body: " + std::move(message),
                Reason::kInvalidChunkSizeError);
}
Status BadTrailer(std::string message) {
  return Status(Code::kInvalidArgument, "aws-chunked body: " + std::move(message),
                Reason::kMalformedTrailerError);
}
Status BadSignatureSyntax(std::string message) {
  return Status(Code::kInvalidArgument, "aws-chunked body: " + std::move(message),
                Reason::kIncompleteSignature);
}
// As SigV4 reports a request signature that does not match (403).
Status Mismatch(std::string what) {
  return Status(Code::kPermissionDenied,
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method. (aws-chunked body: " +
                    std::move(what) + ")",
                Reason::kSignatureDoesNotMatch);
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsHexSignature(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), IsHex);
}
// RFC 9110's tchar: what a header or extension name is made of.
bool IsTokenChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}
// A field value's bytes: visible, blank or obs-text; no control characters.
bool IsValueChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}
std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
// |s| for a message: at most 64 bytes, control bytes escaped.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || u == '\'' || u == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}
bool SignatureEquals(std::string_view given, std::string_view expected) {
  return given.size() == expected.size() &&
         CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

}  // namespace

std::optional<ChunkedMode> ParseChunkedMode(std::string_view content_sha256) {
  if (content_sha256 == kSignedName) return ChunkedMode::kSigned;
  if (content_sha256 == kSignedTrailerName) return ChunkedMode::kSignedWithTrailer;
  if (content_sha256 == kUnsignedTrailerName) return ChunkedMode::kUnsignedWithTrailer;
  return std::nullopt;
}

std::string_view ChunkedModeName(ChunkedMode mode) {
  switch (mode) {
    case ChunkedMode::kSigned:
      return kSignedName;
    case ChunkedMode::kSignedWithTrailer:
      return kSignedTrailerName;
    case ChunkedMode::kUnsignedWithTrailer:
      return kUnsignedTrailerName;
  }
  return "";
}

void AwsChunkedDecoder::DigestFree::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

AwsChunkedDecoder::AwsChunkedDecoder(ChunkedMode mode, std::optional<ChunkSigning> signing,
                                     std::string declared_trailer)
    : mode_(mode) {
  Status s = Init(std::move(signing), declared_trailer);
  if (!s.ok()) {
    state_ = State::kFailed;
    error_ = std::move(s);
  }
}

Status AwsChunkedDecoder::Init(std::optional<ChunkSigning> signing,
                               std::string_view declared_trailer) {
  if (signed_mode()) {
    if (!signing || signing->signing_key.empty() || !IsHexSignature(signing->seed_signature))
      return Internal("aws-chunked body: " + std::string(ChunkedModeName(mode_)) +
                      " needs the request's signing key and seed signature");
    signing_ = std::move(signing);
    previous_signature_ = signing_->seed_signature;
    digest_.reset(EVP_MD_CTX_new());
    if (!digest_) return Internal("aws-chunked body: out of memory for a SHA-256 context");
  }
  // "a, b" as HTTP's Trailer header lists names; empty elements are skipped.
  std::string_view rest = declared_trailer;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view name = TrimBlanks(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (name.empty()) continue;
    if (!IsToken(name))
      return Framing("x-amz-trailer " + Quote(declared_trailer) + " is not a list of header names");
    std::string lower = AsciiLower(name);
    if (lower == kTrailerSignatureName)
      return Framing("x-amz-trailer may not name x-amz-trailer-signature");
    if (std::find(declared_.begin(), declared_.end(), lower) == declared_.end())
      declared_.push_back(std::move(lower));
  }
  if (mode_ == ChunkedMode::kSigned && !declared_.empty())
    return Framing("x-amz-trailer is set, but " + std::string(kSignedName) +
                   " carries no trailer (use " + std::string(kSignedTrailerName) + ")");
  if (declared_.size() >= kMaxTrailerLines)
    return Framing("x-amz-trailer names " + std::to_string(declared_.size()) +
                   " headers; at most " + std::to_string(kMaxTrailerLines - 1) + " are allowed");
  return Status::Ok();
}

AwsChunkedDecoder::~AwsChunkedDecoder() = default;
AwsChunkedDecoder::AwsChunkedDecoder(AwsChunkedDecoder&&) noexcept = default;
AwsChunkedDecoder& AwsChunkedDecoder::operator=(AwsChunkedDecoder&&) noexcept = default;

Status AwsChunkedDecoder::Fail(Status status) {
  state_ = State::kFailed;
  error_ = std::move(status);
  line_.clear();
  return error_;
}

std::string AwsChunkedDecoder::Where() const {
  return "chunk " + std::to_string(chunk_number_) + " (body byte " + std::to_string(line_offset_) +
         ")";
}

Status AwsChunkedDecoder::Feed(std::string_view data, std::string& out) {
  while (!data.empty()) {
    Status s;
    switch (state_) {
      case State::kChunkLine:
        s = ReadChunkLine(data);
        break;
      case State::kData:
        s = ReadData(data, out);
        break;
      case State::kDataCr:
      case State::kDataLf: {
        char want = state_ == State::kDataCr ? '\r' : '\n';
        if (data.front() != want)
          return Fail(Framing("chunk " + std::to_string(chunk_number_) +
                              "'s data is not followed by CRLF (found " + Quote(data.substr(0, 1)) +
                              " at body byte " + std::to_string(offset_) + ")"));
        data.remove_prefix(1);
        ++offset_;
        if (state_ == State::kDataCr) {
          state_ = State::kDataLf;
        } else {
          ++chunk_number_;
          line_offset_ = offset_;
          state_ = State::kChunkLine;
        }
        break;
      }
      case State::kTrailer:
        s = ReadTrailer(data);
        break;
      case State::kDone:
        // Said the same however the bytes were cut.
        return Fail(Framing("bytes follow the end of the body (body byte " +
                            std::to_string(offset_) + " is " + Quote(data.substr(0, 1)) + ")"));
      case State::kFailed:
        return error_;
    }
    if (!s.ok()) return Fail(std::move(s));
  }
  return state_ == State::kFailed ? error_ : Status::Ok();
}

Status AwsChunkedDecoder::Finish() {
  std::string where;
  switch (state_) {
    case State::kDone:
      return Status::Ok();
    case State::kFailed:
      return error_;
    case State::kChunkLine:
      if (offset_ == 0)
        where = "the body is empty (no final 0-size chunk)";
      else if (line_.empty())
        where = "the body ends at byte " + std::to_string(offset_) + ", before chunk " +
                std::to_string(chunk_number_) + "'s size line (no final 0-size chunk)";
      else
        where = "the body ends inside " + Where() + "'s size line";
      break;
    case State::kData:
      where = "the body ends inside " + Where() + "'s data: " + std::to_string(chunk_remaining_) +
              " of its " + std::to_string(chunk_size_) + " bytes are missing";
      break;
    case State::kDataCr:
    case State::kDataLf:
      where = "the body ends after " + Where() + "'s data, before its CRLF";
      break;
    case State::kTrailer:
      where = mode_ == ChunkedMode::kSigned
                  ? "the body ends after the final chunk's line, before its closing CRLF"
                  : "the body ends inside the trailer section (from body byte " +
                        std::to_string(line_offset_) + "), before its closing empty line";
      break;
  }
  return Fail(
      Status(Code::kInvalidArgument, "aws-chunked body: " + where, Reason::kIncompleteBody));
}

Status AwsChunkedDecoder::ReadChunkLine(std::string_view& data) {
  size_t nl = data.find('\n');
  size_t take = nl == std::string_view::npos ? data.size() : nl;
  // The line's own bytes, and the CR that should end it.
  if (line_.size() + take > kMaxChunkLineBytes + 1)
    return Framing(Where() + ": the chunk-size line is longer than " +
                   std::to_string(kMaxChunkLineBytes) + " bytes");
  line_.append(data.substr(0, take));
  offset_ += take;
  data.remove_prefix(take);
  if (nl == std::string_view::npos) return Status::Ok();
  data.remove_prefix(1);
  ++offset_;
  return OnChunkLine();
}

Status AwsChunkedDecoder::OnChunkLine() {
  if (line_.empty() || line_.back() != '\r')
    return Framing(Where() + ": the chunk-size line " + Quote(line_) + " does not end in CRLF");
  line_.pop_back();
  std::string_view line = line_;
  size_t semi = line.find(';');
  std::string_view size_text = line.substr(0, semi);
  std::string_view extensions =
      semi == std::string_view::npos ? std::string_view() : line.substr(semi + 1);
  if (size_text.empty() || size_text.size() > kMaxChunkSizeDigits ||
      !std::all_of(size_text.begin(), size_text.end(), IsHex))
    return BadSize(Where() + ": the chunk size " + Quote(size_text) + " is not 1-" +
                   std::to_string(kMaxChunkSizeDigits) + " hex digits");
  uint64_t size = 0;
  for (char c : size_text)
    size = size << 4 | static_cast<uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  if (size > UINT64_MAX - decoded_bytes_)
    return BadSize(Where() + ": the chunk size 0x" + std::string(size_text) +
                   " takes the body past 2^64 bytes");

  if (signed_mode()) {
    // Exactly one extension, the signature: nothing else is signed.
    if (semi == std::string_view::npos ||
        extensions.substr(0, kChunkSignaturePrefix.size()) != kChunkSignaturePrefix)
      return Framing(Where() + ": the chunk-size line " + Quote(line_) +
                     " has no ';chunk-signature=' (" + std::string(ChunkedModeName(mode_)) +
                     " signs every chunk)");
    std::string_view signature = extensions.substr(kChunkSignaturePrefix.size());
    if (!IsHexSignature(signature))
      return BadSignatureSyntax(Where() + ": the chunk-signature " + Quote(signature) +
                                " is not 64 hex digits");
    chunk_signature_ = std::string(signature);
    if (EVP_DigestInit_ex(digest_.get(), EVP_sha256(), nullptr) != 1)
      return Internal("aws-chunked body: SHA-256 failed to start");
  } else {
    // Unsigned: extensions (";name" or ";name=value") are allowed and ignored.
    while (semi != std::string_view::npos) {
      size_t next = extensions.find(';');
      std::string_view ext = extensions.substr(0, next);
      size_t eq = ext.find('=');
      std::string_view value =
          eq == std::string_view::npos ? std::string_view() : ext.substr(eq + 1);
      if (!IsToken(ext.substr(0, eq)) || !std::all_of(value.begin(), value.end(), IsValueChar))
        return Framing(Where() + ": the chunk extension " + Quote(ext) + " is malformed");
      semi = next;
      if (next != std::string_view::npos) extensions.remove_prefix(next + 1);
    }
  }
  line_.clear();
  chunk_size_ = size;
  chunk_remaining_ = size;
  if (size > 0) {
    state_ = State::kData;
    return Status::Ok();
  }
  // The final chunk: its signature signs no data; the trailer section follows.
  LF_RETURN_IF_ERROR(OnChunkDataEnd());
  line_offset_ = offset_;
  state_ = State::kTrailer;
  return Status::Ok();
}

Status AwsChunkedDecoder::ReadData(std::string_view& data, std::string& out) {
  size_t take = static_cast<size_t>(std::min<uint64_t>(chunk_remaining_, data.size()));
  std::string_view piece = data.substr(0, take);
  out.append(piece);
  if (digest_ && EVP_DigestUpdate(digest_.get(), piece.data(), piece.size()) != 1)
    return Internal("aws-chunked body: SHA-256 failed");
  chunk_remaining_ -= take;
  decoded_bytes_ += take;
  offset_ += take;
  data.remove_prefix(take);
  if (chunk_remaining_ > 0) return Status::Ok();
  LF_RETURN_IF_ERROR(OnChunkDataEnd());
  state_ = State::kDataCr;
  return Status::Ok();
}

Status AwsChunkedDecoder::OnChunkDataEnd() {
  if (!signed_mode()) return Status::Ok();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_DigestFinal_ex(digest_.get(), digest, &digest_size) != 1)
    return Internal("aws-chunked body: SHA-256 failed to finish");
  std::string string_to_sign =
      "AWS4-HMAC-SHA256-PAYLOAD\n" + signing_->amz_date + "\n" + signing_->scope + "\n" +
      previous_signature_ + "\n" + std::string(kEmptySha256) + "\n" +
      HexEncode(std::string_view(reinterpret_cast<char*>(digest), digest_size));
  std::string expected = HexEncode(HmacSha256(signing_->signing_key, string_to_sign));
  if (!SignatureEquals(chunk_signature_, expected))
    return Mismatch("the chunk-signature of " + Where() + ", a chunk of " +
                    std::to_string(chunk_size_) + " bytes, does not match");
  previous_signature_ = std::move(expected);
  return Status::Ok();
}

Status AwsChunkedDecoder::ReadTrailer(std::string_view& data) {
  size_t nl = data.find('\n');
  size_t take = nl == std::string_view::npos ? data.size() : nl + 1;
  if (trailer_bytes_ + take > kMaxTrailerSectionBytes)
    return BadTrailer("the trailer section (from body byte " + std::to_string(line_offset_) +
                      ") is longer than " + std::to_string(kMaxTrailerSectionBytes) + " bytes");
  trailer_bytes_ += take;
  offset_ += take;
  if (nl == std::string_view::npos) {
    line_.append(data);
    data = std::string_view();
    return Status::Ok();
  }
  line_.append(data.substr(0, nl));
  data.remove_prefix(nl + 1);
  // Lines end in CRLF; LF alone is taken too (minio and s3s read them so).
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  std::string line = std::move(line_);
  line_.clear();
  if (line.empty()) return OnTrailerEnd();
  return OnTrailerLine(line);
}

Status AwsChunkedDecoder::OnTrailerLine(std::string_view line) {
  std::string where = "trailer line " + std::to_string(trailer_lines_ + 1) + " " + Quote(line);
  if (mode_ == ChunkedMode::kSigned)
    return BadTrailer(where + ": " + std::string(kSignedName) +
                      " has no trailer; its final chunk must be followed by CRLF alone");
  if (++trailer_lines_ > kMaxTrailerLines)
    return BadTrailer("more than " + std::to_string(kMaxTrailerLines) + " trailer lines");
  if (trailer_signature_)
    return BadTrailer(where + " follows x-amz-trailer-signature, which must come last");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon)))
    return BadTrailer(where + " is not 'name:value'");
  std::string name = AsciiLower(line.substr(0, colon));
  std::string_view value = TrimBlanks(line.substr(colon + 1));
  if (!std::all_of(value.begin(), value.end(), IsValueChar))
    return BadTrailer(where + ": the value holds a control character");
  if (name == kTrailerSignatureName) {
    if (mode_ != ChunkedMode::kSignedWithTrailer)
      return BadTrailer(where + ": " + std::string(ChunkedModeName(mode_)) +
                        " has no trailer signature");
    if (!IsHexSignature(value))
      return BadSignatureSyntax(where + ": the trailer signature is not 64 hex digits");
    trailer_signature_ = std::string(value);
    return Status::Ok();
  }
  if (std::find(declared_.begin(), declared_.end(), name) == declared_.end()) {
    std::string declared;
    for (const std::string& d : declared_) declared += (declared.empty() ? "" : ",") + d;
    return BadTrailer(where + ": '" + name + "' is not declared in x-amz-trailer (" +
                      (declared.empty() ? "absent" : "'" + declared + "'") + ")");
  }
  for (const auto& [k, v] : trailers_)
    if (k == name) return BadTrailer(where + ": '" + name + "' is given twice");
  trailers_.emplace_back(std::move(name), std::string(value));
  return Status::Ok();
}

Status AwsChunkedDecoder::OnTrailerEnd() {
  for (const std::string& name : declared_) {
    bool found = std::any_of(trailers_.begin(), trailers_.end(),
                             [&](const auto& t) { return t.first == name; });
    if (!found)
      return BadTrailer("the trailer '" + name +
                        "' declared in x-amz-trailer is missing from the trailer section");
  }
  if (mode_ == ChunkedMode::kSignedWithTrailer) {
    if (!trailer_signature_)
      return BadTrailer("the trailer section has no x-amz-trailer-signature (" +
                        std::string(kSignedTrailerName) + " signs its trailer)");
    // Canonical form, as aws-c-auth signs trailing headers: "name:value\n"
    // sorted by name, values trimmed with blank runs folded.
    HeaderList sorted = trailers_;
    std::sort(sorted.begin(), sorted.end());
    std::string canonical;
    for (const auto& [name, value] : sorted)
      canonical += name + ":" + *CanonicalHeaderValue({{name, value}}, name) + "\n";
    std::string string_to_sign = "AWS4-HMAC-SHA256-TRAILER\n" + signing_->amz_date + "\n" +
                                 signing_->scope + "\n" + previous_signature_ + "\n" +
                                 Sha256Hex(canonical);
    std::string expected = HexEncode(HmacSha256(signing_->signing_key, string_to_sign));
    if (!SignatureEquals(*trailer_signature_, expected))
      return Mismatch("the x-amz-trailer-signature does not match the trailer section");
  }
  line_.clear();
  state_ = State::kDone;
  return Status::Ok();
}

}  // namespace lastframe::aws
