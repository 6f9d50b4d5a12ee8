#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace lastframe::objects {

// One object of a listing: its key (as Put named it) and size.
struct ListedObject {
  std::string key;
  uint64_t size = 0;
};

// One page of a listing, in key order (bytewise, as S3 lists).
struct ObjectPage {
  std::vector<ListedObject> objects;
  std::string next;  // where the next page starts (ListPage's |from|); "" after the last
};

// Where snapshot images are kept and how viewers get them: the embedded
// LocalStore, or any S3-compatible store. Implementations are thread-safe.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Stores |bytes| under |key|, replacing what was there.
  virtual Status Put(const std::string& key, std::string_view bytes,
                     const std::string& content_type) = 0;
  // The same, answered through |done| exactly once, on this thread or another:
  // a remote store uploads on its own threads, so decode workers never wait
  // on the network.
  virtual void PutAsync(std::string key, std::shared_ptr<const std::string> bytes,
                        std::string content_type, std::function<void(Status)> done) {
    done(Put(key, *bytes, content_type));
  }
  // Whether |key| is (still) stored, when that is cheap to know; a remote
  // store answers true rather than ask the network.
  virtual bool Holds(const std::string& key) const {
    (void)key;
    return true;
  }
  // The bytes stored under |key|: NotFound ("NoSuchKey") when there is none;
  // Internal from a store that cannot read back. Blocks on a remote store.
  virtual Result<std::string> Get(const std::string& key) {
    return Status(Code::kInternal, "this object store cannot read back " + key);
  }
  // Up to |max_keys| (1..1000) objects whose keys begin with |prefix| and come
  // after |start_after| (keys <= it are skipped), continuing a listing from
  // |from| (an earlier page's |next|; "" for the first page). Blocks on a
  // remote store.
  virtual Result<ObjectPage> ListPage(const std::string& prefix, const std::string& start_after,
                                      const std::string& from, size_t max_keys) {
    (void)prefix, (void)start_after, (void)from, (void)max_keys;
    return Status(Code::kInternal, "this object store cannot list");
  }
  // Finishes the uploads queued by PutAsync (their callbacks run) and takes no
  // more; call before the callbacks' owners go away.
  virtual void Shutdown() {}
  // A URL anyone can GET for |expires_s| seconds (1..604800).
  virtual Result<std::string> PresignGet(const std::string& key, int64_t expires_s) = 0;
  // When a URL that PresignGet made at |signed_at_ms| for |expires_s| seconds
  // stops working. S3 (and MinIO) refuse it once its whole-second X-Amz-Date
  // plus |expires_s| has passed, which can be less than |expires_s| after it
  // was made; the embedded store counts whole seconds and honours the full
  // |expires_s| (see PresignedUrlExpiresAtMs).
  virtual int64_t UrlExpiresAtMs(int64_t signed_at_ms, int64_t expires_s) const {
    return signed_at_ms / 1000 * 1000 + expires_s * 1000;
  }
};

// Checks an object key: 1..1024 bytes, no control characters or backslashes,
// no empty, "." or ".." segments, no leading '/'. Keys that pass can never
// name a path outside the store's directory. InvalidArgument ("InvalidKey") otherwise.
Status ValidateObjectKey(std::string_view key);

}  // namespace lastframe::objects
