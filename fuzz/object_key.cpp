// Object keys and what rides with them into the embedded store: key
// validation (the only thing between a client's key and a path on disk),
// Range headers, and the metadata written beside each object.
//
// Input lines: the key (as a client's decoded path has it); a Range header; a
// Content-Type; "x-amz-meta-NAME: VALUE" user metadata; the rest is the body.
// Invariants: a valid key's path stays inside the bucket's folder; what is put
// is what is read (bytes, metadata, ranges as S3 defines them), and listed;
// a deleted object is gone and leaves no folder behind.

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "fuzz_support.h"
#include "objects/local_store.h"

using namespace lastframe;
namespace fs = std::filesystem;

namespace {

struct World {
  ManualClock clock{1'795'617'013'000};
  fuzz::ScratchDir dir;
  std::unique_ptr<objects::LocalStore> store;
};
World* world = nullptr;

// nlohmann::json's own verdict, independent of the store's.
size_t CountFiles(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  world = new World();
  objects::LocalStoreOptions o;
  o.root = world->dir.path() / "objects";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = {"AKIDEXAMPLE", Secret("secret"), ""};
  o.max_object_bytes = 1 << 20;
  auto opened = objects::LocalStore::Open(o, world->clock);
  FUZZ_CHECK(opened.ok(), opened.status().ToString());
  world->store = std::move(*opened);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 5);
  const std::string key = fuzz::Field(fields, 0);
  const std::string range_header = fuzz::Field(fields, 1);
  objects::ObjectMeta meta;
  meta.content_type = fuzz::Field(fields, 2);
  const std::string user = fuzz::Field(fields, 3);
  const std::string body = fuzz::Field(fields, 4);
  if (size_t colon = user.find(':');
      user.rfind("x-amz-meta-", 0) == 0 && colon != std::string::npos)
    meta.user.emplace_back(user.substr(11, colon - 11), user.substr(colon + 1));

  // Bucket names and public URLs are configuration, checked the same way.
  (void)objects::ValidBucketName(key);
  (void)objects::HostOfUrl(key);

  auto range = objects::ParseByteRange(range_header);
  if (range) {
    FUZZ_CHECK(range->first || range->last, "a range with neither end: " + range_header);
    if (range->first && range->last)
      FUZZ_CHECK(*range->first <= *range->last, "an inverted range: " + range_header);
  }

  const fs::path bucket = world->dir.path() / "objects" / "lastframe";
  Status valid = objects::ValidateObjectKey(key);
  if (!valid.ok()) {
    FUZZ_CHECK(valid.reason() == Reason::kInvalidKey, valid.ToString());
    FUZZ_CHECK(!world->store->PutObject(key, body, meta).ok(), "an invalid key was stored");
    FUZZ_CHECK(!world->store->GetObject(key).ok(), "an invalid key was read");
    return 0;
  }
  FUZZ_CHECK(key.find('\0') == std::string::npos, "a key with a NUL byte is valid");
  fs::path path = (bucket / key).lexically_normal();
  FUZZ_CHECK(path == bucket / key, "a valid key's path is not its own: " + key);
  auto rel = path.lexically_relative(bucket);
  FUZZ_CHECK(!rel.empty() && *rel.begin() != "..", "a valid key leaves the bucket: " + key);

  auto put = world->store->PutObject(key, body, meta);
  if (!put.ok()) {
    // Only the store's own limits, and metadata JSON cannot hold, may refuse a valid key.
    bool utf8 = fuzz::JsonSerialisable(meta.content_type);
    for (const auto& [k, v] : meta.user)
      utf8 = utf8 && fuzz::JsonSerialisable(k) && fuzz::JsonSerialisable(v);
    FUZZ_CHECK(put.status().reason() == Reason::kEntityTooLarge ||
                   (!utf8 && put.status().reason() == Reason::kInvalidArgument),
               put.status().ToString());
    return 0;
  }
  auto head = world->store->HeadObject(key);
  FUZZ_CHECK(head.ok(), head.status().ToString());
  FUZZ_CHECK(head->size == body.size(), "the size read is not the size put");
  FUZZ_CHECK(
      head->meta.content_type == meta.content_type,
      "Content-Type '" + meta.content_type + "' came back as '" + head->meta.content_type + "'");
  FUZZ_CHECK(head->meta.user == meta.user, "user metadata did not come back as put");
  auto got = world->store->GetObject(key);
  FUZZ_CHECK(got.ok() && got->bytes == body && !got->partial,
             "the bytes read are not the bytes put");
  if (range) {
    auto part = world->store->GetObject(key, range);
    // S3: bytes=A-B (B clipped to the end), bytes=A-, bytes=-N (the last N).
    uint64_t n = body.size(), first, last;
    if (!range->first) {
      first = n > *range->last ? n - *range->last : 0;
      last = n - 1;
    } else {
      first = *range->first;
      last = range->last ? std::min<uint64_t>(*range->last, n - 1) : n - 1;
    }
    if (first >= n) {
      FUZZ_CHECK(!part.ok() && part.status().reason() == Reason::kInvalidRange, range_header);
    } else {
      FUZZ_CHECK(part.ok() && part->partial && part->first == first, range_header);
      FUZZ_CHECK(part->bytes == body.substr(first, last - first + 1), "range " + range_header);
    }
  }
  auto listed = world->store->List({.prefix = key});
  FUZZ_CHECK(listed.ok() && !listed->objects.empty() && listed->objects.front().key == key,
             "a stored key is not listed under itself: " + key);
  FUZZ_CHECK(world->store->DeleteObject(key).ok(), "delete");
  FUZZ_CHECK(!world->store->HeadObject(key).ok(), "a deleted object is still there");
  FUZZ_CHECK(CountFiles(bucket) == 0, "a deleted object left files or folders: " + key);
  return 0;
}
