#pragma once

#include <ostream>
#include <string>

namespace lastframe {

// A secret string (an access secret, a password). It prints as "***" so that
// it cannot reach a log line by accident; Reveal() is the one way to read it.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& Reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

 private:
  std::string value_;
};

}  // namespace lastframe
