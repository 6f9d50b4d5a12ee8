#include "core/log.h"

#include <atomic>
#include <cmath>

#include "core/utf8.h"

namespace lastframe::log {
namespace {

std::atomic<Format> current{Format::kText};

// A text field's value: bare when it is one plain word, quoted otherwise.
std::string TextValue(const std::string& v) {
  bool bare = !v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) bare = false;
  return bare ? v : "\"" + JsonEscape(v) + "\"";
}

}  // namespace

void SetFormat(Format f) { current.store(f, std::memory_order_relaxed); }
Format format() { return current.load(std::memory_order_relaxed); }

Field::Field(std::string_view key, double value) : key_(key) {
  if (std::isfinite(value)) {
    text_ = fmt::format("{}", value);
  } else {
    text_ = "null";  // JSON has no NaN or infinity
  }
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  // A line must stay JSON whatever a message holds: in text that is not
  // UTF-8 (bytes from outside, an FFmpeg message), each byte past ASCII
  // becomes U+FFFD.
  const bool utf8 = IsValidUtf8(s);
  for (char c : s) {
    if (!utf8 && static_cast<unsigned char>(c) >= 0x80) {
      out += "\ufffd";
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
  return out;
}

std::string Payload(std::string_view message, std::initializer_list<Field> fields) {
  std::string out;
  if (format() == Format::kJson) {
    out += kFieldsMarker;
    bool first = true;
    for (const Field& f : fields) {
      if (!first) out += ',';
      first = false;
      out += "\"" + JsonEscape(f.key()) + "\":";
      out += f.quoted() ? "\"" + JsonEscape(f.text()) + "\"" : f.text();
    }
    out += kFieldsMarker;
    out += message;
    return out;
  }
  out = message;
  for (const Field& f : fields) {
    out += ' ';
    out += f.key();
    out += '=';
    out += f.quoted() ? TextValue(f.text()) : f.text();
  }
  return out;
}

}  // namespace lastframe::log
