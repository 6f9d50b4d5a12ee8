#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

// Log lines with fields (stream, route, status, duration, error code...), in
// the format the process logs in: "message key=value ..." as text, or the
// fields as members of the line's JSON object (--log-format json, whose
// formatter is app/log_format). Never pass a secret as a field: keys, tokens,
// signatures and query strings stay out of logs.
namespace lastframe::log {

enum class Format { kText, kJson };
// Set once at start, before any thread logs; text by default.
void SetFormat(Format format);
Format format();

// A field's key and value. Strings are viewed, not copied (a line per request
// must cost little): the value must outlive the Event call, as arguments do.
class Field {
 public:
  Field(std::string_view key, std::string_view value) : key_(key), text_(value), quoted_(true) {}
  Field(std::string_view key, const std::string& value) : Field(key, std::string_view(value)) {}
  Field(std::string_view key, const char* value) : Field(key, std::string_view(value)) {}
  Field(std::string_view key, int64_t value);
  Field(std::string_view key, int value) : Field(key, static_cast<int64_t>(value)) {}
  Field(std::string_view key, uint64_t value);
  Field(std::string_view key, double value);
  // A number's text lives in the field itself: a copy points at its own.
  Field(const Field& other);
  Field& operator=(const Field&) = delete;

  std::string_view key() const { return key_; }
  std::string_view text() const { return text_; }
  bool quoted() const { return quoted_; }

 private:
  std::string_view key_;
  std::string_view text_;
  bool quoted_ = false;
  char number_[32];
};

// In JSON mode the payload handed to spdlog is this marker, the fields as
// JSON members, the marker again, then the message; the JSON formatter
// splits them. (A unit separator: never in a message of ours.)
inline constexpr char kFieldsMarker = '\x1f';

// The payload for |message| and |fields| in the current format.
std::string Payload(std::string_view message, std::initializer_list<Field> fields);

inline void Event(spdlog::level::level_enum level, std::string_view message,
                  std::initializer_list<Field> fields) {
  if (!spdlog::should_log(level)) return;
  spdlog::log(level, "{}", Payload(message, fields));
}

// |s| as a JSON string's contents (no quotes).
std::string JsonEscape(std::string_view s);
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace lastframe::log
