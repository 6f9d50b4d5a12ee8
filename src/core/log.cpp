#include "core/log.h"

#include <atomic>
#include <charconv>
#include <cmath>
#include <functional>

#include "core/utf8.h"

namespace lastframe::log {
namespace {

std::atomic<Format> current{Format::kText};

// A text field's value: bare when it is one plain word, quoted otherwise.
void AppendTextValue(std::string& out, std::string_view v) {
  bool bare = !v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) bare = false;
  if (bare) {
    out += v;
    return;
  }
  out += '"';
  AppendJsonEscaped(out, v);
  out += '"';
}

}  // namespace

void SetFormat(Format f) { current.store(f, std::memory_order_relaxed); }
Format format() { return current.load(std::memory_order_relaxed); }

Field::Field(std::string_view key, int64_t value) : key_(key) {
  auto end = std::to_chars(number_, number_ + sizeof number_, value).ptr;
  text_ = std::string_view(number_, static_cast<size_t>(end - number_));
}

Field::Field(std::string_view key, uint64_t value) : key_(key) {
  auto end = std::to_chars(number_, number_ + sizeof number_, value).ptr;
  text_ = std::string_view(number_, static_cast<size_t>(end - number_));
}

Field::Field(std::string_view key, double value) : key_(key) {
  if (!std::isfinite(value)) {
    text_ = "null";  // JSON has no NaN or infinity
    return;
  }
  auto end = std::to_chars(number_, number_ + sizeof number_, value).ptr;  // shortest form
  text_ = std::string_view(number_, static_cast<size_t>(end - number_));
}

Field::Field(const Field& other) : key_(other.key_), text_(other.text_), quoted_(other.quoted_) {
  // std::less: a total order even for pointers into different objects.
  const std::less<const char*> before;
  if (!before(text_.data(), other.number_) &&
      before(text_.data(), other.number_ + sizeof other.number_)) {
    std::memcpy(number_, other.number_, sizeof number_);
    text_ = std::string_view(number_ + (other.text_.data() - other.number_), other.text_.size());
  }
}

void AppendJsonEscaped(std::string& out, std::string_view s) {
  // A line must stay JSON whatever a message holds: in text that is not
  // UTF-8 (bytes from outside, an FFmpeg message), each byte past ASCII
  // becomes U+FFFD.
  const bool utf8 = IsValidUtf8(s);
  for (char c : s) {
    if (!utf8 && static_cast<unsigned char>(c) >= 0x80) {
      out += "\\ufffd";
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else
          out += c;
    }
  }
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendJsonEscaped(out, s);
  return out;
}

std::string Payload(std::string_view message, std::initializer_list<Field> fields) {
  std::string out;
  out.reserve(message.size() + 24 * fields.size() + 8);
  if (format() == Format::kJson) {
    out += kFieldsMarker;
    bool first = true;
    for (const Field& f : fields) {
      if (!first) out += ',';
      first = false;
      out += '"';
      AppendJsonEscaped(out, f.key());
      out += "\":";
      if (f.quoted()) {
        out += '"';
        AppendJsonEscaped(out, f.text());
        out += '"';
      } else {
        out += f.text();
      }
    }
    out += kFieldsMarker;
    out += message;
    return out;
  }
  out += message;
  for (const Field& f : fields) {
    out += ' ';
    out += f.key();
    out += '=';
    if (f.quoted())
      AppendTextValue(out, f.text());
    else
      out += f.text();
  }
  return out;
}

}  // namespace lastframe::log
