#pragma once

// The embedded store's object files, shared by local_store.cpp and
// multipart.cpp: a one-line JSON metadata header ("LFO1 {...}\n", padded with
// blanks where it was reserved before the body was known), then the bytes.
// Internal to the objects module.

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "objects/local_store.h"

namespace lastframe::objects::object_file {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// An object file, opened: its metadata read, its body at |body_offset|.
struct OpenedObject {
  std::unique_ptr<Fd> fd;
  uint64_t body_offset = 0;
  ObjectInfo info;
};

// Unavailable, with errno's text.
Status Unavailable(const std::string& what);
Status WriteAll(int fd, std::string_view bytes);
Status ReadAt(int fd, uint64_t offset, size_t size, std::string& out);
Status NoSuchKey();
Status KeyConflict(const std::string& key);
// The header line for |meta|, padded with blanks to |pad_to| bytes when shorter.
std::string EncodeHeader(const ObjectMeta& meta, size_t pad_to = 0);
// NotFound NoSuchKey for a missing file; |key| names it in ObjectInfo.
Result<OpenedObject> OpenObject(const std::filesystem::path& path, const std::string& key);

}  // namespace lastframe::objects::object_file
